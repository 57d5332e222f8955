//! `enforcer run`.

use std::{
    ops::RangeInclusive,
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use anyhow::Context as _;
use enforcer::{
    actions::breaker::Limits,
    audit::Rotation,
    cpu::CpuSettings,
    engine::{self, Mode, OnCrash, Options},
    hash::HashConfig,
    loader::plan_capacity,
};

/// Arguments of `enforcer run`.
#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    /// Policy file or directory of policy files (YAML). `policy/default` is the shipped set.
    #[arg(long, value_name = "PATH")]
    policy: PathBuf,
    /// `block`: deny and kill as the rules say. `monitor`: a dry run, nothing is denied or
    /// killed and every would-be action is recorded.
    #[arg(long, value_enum, default_value_t = ModeArg::Block)]
    mode: ModeArg,
    /// Append audit records (JSON lines) to FILE; created with mode 0600; a symbolic link is
    /// refused. A disk that fills never stops the engine: event records are then counted as
    /// lost, the others held in memory (16 MiB), and an `audit_lost` record says what was lost
    /// once FILE can be written again. A FILE deleted or moved away is started again.
    #[arg(long, value_name = "FILE")]
    audit_log: Option<PathBuf>,
    /// Rotate the audit log when it would grow past this many MiB: FILE becomes FILE.1, older
    /// ones shift up to FILE.<--audit-keep>, the oldest is removed. 0: never rotate.
    #[arg(long, value_name = "MIB", default_value_t = 100, value_parser = clap::value_parser!(u64).range(0..=1_048_576))]
    audit_max_mib: u64,
    /// Rotated audit logs kept (FILE.1 .. FILE.N); `enforcer report` reads them with FILE.
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    audit_keep: u32,
    /// Do not print events and actions on stdout.
    #[arg(long)]
    quiet: bool,
    /// Which observed activity is written (audit log and stdout) as `event` records: `all`
    /// (every exec, fork, exit, file, network and kernel event the programs report) or `none`
    /// (only what the engine did or would do: actions with the event that caused them,
    /// enforcement and engine records). `none` keeps the audit log small on busy hosts and
    /// spares the daemon the writing; rules see every event either way.
    #[arg(long, value_enum, default_value_t = EventsArg::All)]
    events: EventsArg,
    /// Write the `event` records (observed activity) to FILE instead of the audit log, rotated
    /// as the audit log is (--audit-max-mib, --audit-keep, each file its own budget; guarded
    /// by --self-protect too). The audit log then holds only what the engine did or would do,
    /// so that a busy host's activity (about 2.5 KB of records per exec) never rotates a kill
    /// or a deny out of it. Needs `--events all`.
    #[arg(long, value_name = "FILE")]
    events_log: Option<PathBuf>,
    /// Never kill a process running this executable (absolute path; repeatable). Besides
    /// these, pid 1, kernel threads and the engine itself are never killed; a rule that
    /// matches them writes a `spared` record instead. Applies to the kills the daemon performs
    /// and, by the file's inode and device at start, to kills inside the kernel hooks.
    #[arg(long, value_name = "PATH", value_parser = absolute_path)]
    never_kill: Vec<PathBuf>,
    /// Do not add the local DNS resolvers found on the host (systemd-resolved, dnsmasq,
    /// unbound, named, ...) to `--never-kill`. By default they are spared: they forward every
    /// process's lookups, so a forwarded pool lookup would otherwise kill the host's resolver
    /// in the signal tier (the asking process is stopped either way).
    #[arg(long)]
    no_default_never_kill: bool,
    /// Kill breaker: a rule that would kill more than N distinct binaries (by executable path)
    /// or N distinct cgroups within the breaker window is disarmed until restart (its matches
    /// are recorded as `would_kill`). A rule's `breaker:` overrides it.
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    breaker_max_targets: u32,
    /// Kill breaker window (e.g. `60s`, `5m`).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = window)]
    breaker_window: Duration,
    /// CPU sampling interval (e.g. `5s`): how often every process's and leaf cgroup's CPU time
    /// is read from /proc and the cgroup v2 hierarchy for the `cpu` rules (`cpu.usage.percent`,
    /// `cpu.window`, ...). Nothing is sampled when the policy has no `cpu` rule.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = cpu_interval)]
    cpu_interval: Duration,
    /// CPU floor, percent of the machine (100 = N-1 of N cores busy): a process or cgroup at or
    /// above it is in a sustained window (`cpu.window`) and gets a `cpu` event every interval;
    /// below it its window starts again. Keep it at or below the lowest `cpu.usage.percent`
    /// threshold of the policy.
    #[arg(long, value_name = "PERCENT", default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=10_000))]
    cpu_floor: i64,
    /// Executables larger than this many MiB are not hashed (`exec.file.hash.status:
    /// unavailable`, reason `too large`); rules on other fields still apply.
    #[arg(long, value_name = "MIB", default_value_t = 256, value_parser = clap::value_parser!(u64).range(1..=65_536))]
    hash_max_mib: u64,
    /// Hashing budget in MiB per second (token bucket, bursts of 8 seconds' worth): an exec
    /// storm of distinct files beyond it gets `hash budget exhausted` instead of a hash.
    #[arg(long, value_name = "MIB", default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..=65_536))]
    hash_rate_mib: u64,
    /// Do not hash executables in the kernel (lsm tier): first execs of listed files are then
    /// killed after the fact by the userspace hasher, as in the signal tier.
    #[arg(long)]
    no_kernel_hash: bool,
    /// Use syscall tracepoints even where the kernel has BPF trampolines: in the signal tier
    /// for file operations and kernel activity (module loads, ptrace, bpf), in either tier for
    /// the kernel-activity syscalls no LSM hook reports (set*id, capset, unshare, setns,
    /// memfd_create, delete_module). By default the engine attaches fentry programs there (to
    /// the LSM hooks' security_* functions, and to those syscalls' entry functions): paths come
    /// resolved from the kernel (symbolic links followed) and system calls no rule is about
    /// cost nothing, where any syscall tracepoint slows every system call of the host.
    #[arg(long)]
    no_fentry: bool,
    /// What happens to enforcement when the engine dies without a clean stop (SIGKILL, OOM
    /// kill, crash). `keep-enforcing` (default in block mode): the programs that deny and kill
    /// are pinned under /sys/fs/bpf/enforcer/<run id>/ and keep enforcing the policy in the
    /// kernel with no daemon (no records, no userspace rules) until the next `enforcer run`
    /// replaces them (it attaches first, then removes them, and writes an `engine_gap` record)
    /// or `enforcer unpin` removes them. `stop` (fail-open; the only choice in monitor mode):
    /// the programs detach with the engine. A clean stop (SIGINT/SIGTERM) always ends
    /// enforcement.
    #[arg(long, value_enum, value_name = "WHAT")]
    on_crash: Option<OnCrashArg>,
    /// Self-protection (lsm tier only; refused on a kernel without BPF LSM). Kernel guards
    /// refuse every other process: a signal to the engine other than 0 and SIGHUP (except from
    /// pid 1 and from the process that started the engine, so `systemctl stop` and a
    /// container's stop still work; Ctrl-C in a terminal comes from the kernel and works too),
    /// a ptrace attach to it (and /proc/PID/mem, process_vm_writev, pidfd_getfd), removing
    /// or renaming its pins under /sys/fs/bpf/enforcer, unmounting that bpffs, a writable
    /// descriptor of its BPF maps, and removing, renaming, truncating or writing its audit log,
    /// its events log and their rotated files (the engine rotates them itself:
    /// --audit-max-mib). Each refusal is a
    /// `tamper_denied` audit record. The
    /// guards end with the engine's process. Root keeps other ways around them (reboot,
    /// kernel modules, cgroup.kill): see SECURITY.md.
    #[arg(long)]
    self_protect: bool,
    /// How often the policy files (and the list files they name) are checked for changes,
    /// e.g. `2s`; `off`: reload only on SIGHUP. A change, once it has stayed for one more
    /// interval, reloads the policy as SIGHUP does: an invalid policy, or one that needs
    /// programs this run did not load, is refused and the running policy stays in force; a
    /// `policy_reload` audit record says which.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = interval_or_off)]
    policy_watch: IntervalArg,
    /// How often an `engine_stats` record gives the kernel's counters so far, e.g. `60s`;
    /// `off`: only `engine_stop` does. Records the kernel could not hand over (a full ring
    /// buffer: the kernel's verdicts still applied, userspace rules did not see them) are also
    /// logged as a warning at each interval that had some.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = interval_or_off)]
    stats_interval: IntervalArg,
    /// While kernel records come fast (two wake-ups less than 2 ms apart), the daemon stops
    /// being woken for each one and reads the event ring on this period instead, e.g. `8ms`
    /// (1ms to 20ms). A record that only a userspace rule acts on (an exec, file or connect
    /// record) then waits up to this long: a shorter period answers sooner, a longer one
    /// costs the daemon less CPU per record on a busy host (benches/README.md). Verdicts the
    /// kernel takes never wait; payload and DNS records still wake the daemon at once.
    #[arg(long, value_name = "DURATION", default_value = DEFAULT_POLL_INTERVAL, value_parser = poll_interval)]
    poll_interval: Duration,
}

/// `--poll-interval`'s default.
const DEFAULT_POLL_INTERVAL: &str = "8ms";

/// `--policy-watch`, `--stats-interval`: an interval, or `off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct IntervalArg(Option<Duration>);

/// An interval between 100 ms and 1 h, or `off`.
fn interval_or_off(value: &str) -> Result<IntervalArg, String> {
    if value == "off" {
        return Ok(IntervalArg(None));
    }
    let interval = within(
        value,
        INTERVALS,
        "the interval must be between 100ms and 1h (or `off`)",
    )?;
    Ok(IntervalArg(Some(interval)))
}

/// `--policy-watch`, `--stats-interval` and `--cpu-interval`: 100 ms to 1 h.
const INTERVALS: RangeInclusive<Duration> = Duration::from_millis(100)..=Duration::from_secs(3600);

/// `value` as a duration within `range`, else `out_of_range` (or humantime's parse error).
fn within(
    value: &str,
    range: RangeInclusive<Duration>,
    out_of_range: &str,
) -> Result<Duration, String> {
    let duration = humantime::parse_duration(value).map_err(|e| e.to_string())?;
    if range.contains(&duration) {
        Ok(duration)
    } else {
        Err(out_of_range.to_owned())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum OnCrashArg {
    KeepEnforcing,
    Stop,
}

/// A CPU sampling interval between 100 ms and 1 h.
fn cpu_interval(value: &str) -> Result<Duration, String> {
    within(
        value,
        INTERVALS,
        "the interval must be between 100ms and 1h",
    )
}

/// A poll period between 1 ms and 20 ms (`--poll-interval`): at most the 20 ms tick that
/// drains the rings whatever happens.
fn poll_interval(value: &str) -> Result<Duration, String> {
    within(
        value,
        Duration::from_millis(1)..=Duration::from_millis(20),
        "the poll interval must be between 1ms and 20ms",
    )
}

/// An absolute path (`--never-kill`).
fn absolute_path(value: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(value);
    if path.is_absolute() {
        Ok(path)
    } else {
        Err(format!("{value:?} is not an absolute path"))
    }
}

/// A breaker window between 1 s and 24 h.
fn window(value: &str) -> Result<Duration, String> {
    within(
        value,
        Duration::from_secs(1)..=Duration::from_secs(24 * 3600),
        "the window must be between 1s and 24h",
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum EventsArg {
    All,
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum ModeArg {
    Block,
    Monitor,
}

/// `--events-log` needs `--events all`, and must not name the audit log or one of the
/// rotated files of either log (each rotation would then move the other's file).
fn check_events_log(args: &RunArgs) -> Result<(), String> {
    let Some(events_log) = &args.events_log else {
        return Ok(());
    };
    if args.events == EventsArg::None {
        return Err(
            "--events-log needs --events all (with --events none no event record is written)"
                .to_owned(),
        );
    }
    let Some(audit_log) = &args.audit_log else {
        return Ok(());
    };
    let names = |path: &Path| -> Vec<PathBuf> {
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
        let rotated =
            (1..=args.audit_keep).map(|n| enforcer::audit::writer::rotated_path(&path, n));
        std::iter::once(path.clone()).chain(rotated).collect()
    };
    let (audit_names, events_names) = (names(audit_log), names(events_log));
    let clash = audit_names.iter().any(|name| events_names.contains(name))
        || same_file(audit_log, events_log);
    if clash {
        return Err(format!(
            "--events-log {} and --audit-log {} name the same file (or one is the other's rotated file)",
            events_log.display(),
            audit_log.display()
        ));
    }
    Ok(())
}

/// Whether `a` and `b` both exist and are the same file (a hard link, a symbolic link to a
/// directory on the way).
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

/// Loads the policy, then runs the engine on a tokio runtime.
pub(crate) fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let policy = match enforcer_policy::load(&args.policy) {
        Ok(policy) => policy,
        Err(diagnostics) => {
            eprintln!("{diagnostics}");
            eprintln!(
                "enforcer: error: invalid policy {}: {}",
                args.policy.display(),
                diagnostics.first_line()
            );
            return Ok(ExitCode::from(2));
        }
    };
    if let Err(too_large) = plan_capacity::check(policy.rules(), policy.plan()) {
        eprintln!(
            "enforcer: error: invalid policy {}: {too_large}",
            args.policy.display()
        );
        return Ok(ExitCode::from(2));
    }
    let on_crash = match (args.mode, args.on_crash) {
        (ModeArg::Monitor, Some(OnCrashArg::KeepEnforcing)) => {
            eprintln!(
                "enforcer: error: --on-crash keep-enforcing needs --mode block (monitor mode enforces nothing)"
            );
            return Ok(ExitCode::from(2));
        }
        (ModeArg::Block, None | Some(OnCrashArg::KeepEnforcing)) => OnCrash::KeepEnforcing,
        (_, _) => OnCrash::Stop,
    };
    if let Err(conflict) = check_events_log(&args) {
        eprintln!("enforcer: error: {conflict}");
        return Ok(ExitCode::from(2));
    }
    let options = Options {
        policy_path: args.policy,
        mode: match args.mode {
            ModeArg::Block => Mode::Block,
            ModeArg::Monitor => Mode::Monitor,
        },
        audit_log: args.audit_log,
        audit_rotation: Rotation {
            max_bytes: args.audit_max_mib << 20,
            keep: args.audit_keep,
        },
        events_log: args.events_log,
        print: !args.quiet,
        events: args.events == EventsArg::All,
        never_kill: if args.no_default_never_kill {
            args.never_kill
        } else {
            super::default_never_kill::with_local_resolvers(args.never_kill, Path::new("/"))
        },
        breaker: Limits {
            max_targets: args.breaker_max_targets as usize,
            window: args.breaker_window,
        },
        cpu: CpuSettings {
            interval: args.cpu_interval,
            floor: args.cpu_floor,
            ..CpuSettings::default()
        },
        hash: HashConfig {
            max_size: args.hash_max_mib << 20,
            bytes_per_s: args.hash_rate_mib << 20,
            burst_bytes: (args.hash_rate_mib << 20).saturating_mul(8),
            ..HashConfig::default()
        },
        kernel_hash: !args.no_kernel_hash,
        trampolines: !args.no_fentry,
        on_crash,
        self_protect: args.self_protect,
        policy_watch: args.policy_watch.0,
        stats_interval: args.stats_interval.0,
        poll_interval: args.poll_interval,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(engine::run(options, policy))?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use clap::Parser as _;

    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Wrap {
        #[command(flatten)]
        run: RunArgs,
    }

    fn parse(args: &[&str]) -> Result<RunArgs, clap::Error> {
        let all = ["enforcer", "--policy", "p.yaml"].iter().chain(args);
        Wrap::try_parse_from(all).map(|w| w.run)
    }

    #[test]
    fn kill_flags_defaults_and_values() {
        let args = parse(&[]).unwrap();
        assert!(args.never_kill.is_empty());
        assert!(!args.no_default_never_kill);
        assert_eq!(args.breaker_max_targets, 5);
        assert_eq!(args.breaker_window, Duration::from_secs(60));
        let args = parse(&[
            "--never-kill",
            "/usr/sbin/sshd",
            "--never-kill",
            "/opt/agent/agent",
            "--breaker-max-targets",
            "3",
            "--breaker-window",
            "5m",
        ])
        .unwrap();
        assert_eq!(
            args.never_kill,
            [
                PathBuf::from("/usr/sbin/sshd"),
                PathBuf::from("/opt/agent/agent")
            ]
        );
        assert_eq!(args.breaker_max_targets, 3);
        assert_eq!(args.breaker_window, Duration::from_secs(300));
    }

    #[test]
    fn cpu_flags_defaults_values_and_bounds() {
        let args = parse(&[]).unwrap();
        assert_eq!(args.cpu_interval, Duration::from_secs(5));
        assert_eq!(args.cpu_floor, 50);
        let args = parse(&["--cpu-interval", "1s", "--cpu-floor", "30"]).unwrap();
        assert_eq!(args.cpu_interval, Duration::from_secs(1));
        assert_eq!(args.cpu_floor, 30);
        for bad in [
            &["--cpu-interval", "10ms"][..],
            &["--cpu-interval", "2h"],
            &["--cpu-interval", "often"],
            &["--cpu-floor", "0"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn policy_watch_defaults_to_2s_and_can_be_off() {
        let every = |d| IntervalArg(Some(Duration::from_secs(d)));
        assert_eq!(parse(&[]).unwrap().policy_watch, every(2));
        assert_eq!(
            parse(&["--policy-watch", "30s"]).unwrap().policy_watch,
            every(30)
        );
        let off = parse(&["--policy-watch", "off"]).unwrap();
        assert_eq!(off.policy_watch, IntervalArg(None));
        for bad in ["10ms", "2h", "sometimes"] {
            assert!(parse(&["--policy-watch", bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn poll_interval_defaults_to_8ms_within_1ms_and_20ms() {
        assert_eq!(parse(&[]).unwrap().poll_interval, Duration::from_millis(8));
        for (given, ms) in [("1ms", 1), ("20ms", 20), ("2500us", 2)] {
            let interval = parse(&["--poll-interval", given]).unwrap().poll_interval;
            assert_eq!(interval.as_millis(), ms, "{given}");
        }
        for bad in ["500us", "21ms", "1s", "0", "fast"] {
            assert!(parse(&["--poll-interval", bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn stats_interval_defaults_to_a_minute_and_can_be_off() {
        assert_eq!(
            parse(&[]).unwrap().stats_interval,
            IntervalArg(Some(Duration::from_secs(60)))
        );
        let off = parse(&["--stats-interval", "off"]).unwrap();
        assert_eq!(off.stats_interval, IntervalArg(None));
        assert!(parse(&["--stats-interval", "1ms"]).is_err());
    }

    #[test]
    fn on_crash_is_unset_by_default_and_takes_two_values() {
        assert_eq!(parse(&[]).unwrap().on_crash, None);
        let keep = parse(&["--on-crash", "keep-enforcing"]).unwrap();
        assert_eq!(keep.on_crash, Some(OnCrashArg::KeepEnforcing));
        let stop = parse(&["--on-crash", "stop"]).unwrap();
        assert_eq!(stop.on_crash, Some(OnCrashArg::Stop));
        assert!(parse(&["--on-crash", "maybe"]).is_err());
    }

    #[test]
    fn an_events_log_needs_events_and_a_file_of_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let audit = dir.path().join("audit.jsonl");
        let path = |name: &str| dir.path().join(name).display().to_string();
        let check = |extra: &[&str]| {
            let mut all = vec!["--audit-log", audit.to_str().unwrap()];
            all.extend_from_slice(extra);
            check_events_log(&parse(&all).unwrap())
        };
        assert_eq!(check(&[]), Ok(()));
        assert_eq!(check(&["--events-log", &path("events.jsonl")]), Ok(()));
        let none = check(&["--events-log", &path("events.jsonl"), "--events", "none"]);
        assert!(none.unwrap_err().contains("needs --events all"));
        for clash in ["audit.jsonl", "audit.jsonl.3", "audit.jsonl.10"] {
            let err = check(&["--events-log", &path(clash)]).unwrap_err();
            assert!(err.contains("name the same file"), "{clash}: {err}");
        }
        // The audit log as one of the events log's rotated files.
        let err = check(&["--events-log", &path("audit")]);
        assert_eq!(err, Ok(()), "audit.jsonl is not a rotated name of `audit`");
        // A relative path and an absolute one (nothing is created: only names compared).
        let events = std::env::current_dir().unwrap().join("no-such-events-log");
        let all = [
            "--audit-log",
            "no-such-events-log.2",
            "--events-log",
            events.to_str().unwrap(),
        ];
        assert!(
            check_events_log(&parse(&all).unwrap()).is_err(),
            "relative and absolute"
        );
        // A hard link to the audit log.
        std::fs::write(&audit, "").unwrap();
        std::fs::hard_link(&audit, dir.path().join("link.jsonl")).unwrap();
        assert!(check(&["--events-log", &path("link.jsonl")]).is_err());
    }

    #[test]
    fn bad_kill_flags_are_refused() {
        for bad in [
            &["--never-kill", "sshd"][..],
            &["--breaker-max-targets", "0"],
            &["--breaker-window", "0s"],
            &["--breaker-window", "2d"],
            &["--breaker-window", "soon"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        let err = parse(&["--never-kill", "sshd"]).unwrap_err().to_string();
        assert!(err.contains("\"sshd\" is not an absolute path"), "{err}");
    }
}
