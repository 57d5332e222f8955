//! `enforcer run`: load the policy, probe the tier, load and attach the programs with the plan
//! in their maps, write `engine_start`, then drain the ring buffers (`EVENTS`, and merged into
//! it the fork and exit records of `LIFECYCLE`, see `lifecycle.rs`; and, when the policy has
//! `cpu` rules, run a CPU sampling round every `--cpu-interval`; on SIGHUP or a change of the
//! policy files, reload the policy, see `reload.rs`) until SIGINT/SIGTERM and write
//! `engine_stop`. `live_plan.rs` writes the kernel plan after start.

mod enforce;
mod gap;
mod generations;
mod handler;
mod learned;
mod lifecycle;
mod live_plan;
mod polling;
mod reload;
mod sink;
mod stats;

use std::{
    cell::RefCell,
    path::{Path, PathBuf},
    rc::Rc,
    time::Duration,
};

use aya::{
    Ebpf,
    maps::{MapData, RingBuf},
};
use enforcer_common::maps::{EVENTS, LIFECYCLE};
use enforcer_policy::CompiledPolicy;
use tokio::{
    io::{Interest, unix::AsyncFd},
    signal::unix::{SignalKind, signal},
};

use crate::{
    actions::{
        breaker::Limits,
        cgroupfs::CgroupFs,
        procfs::ProcFs,
        protect::{EngineIdentity, Protection},
        scope::Killer,
    },
    audit::{BreakerSettings, Record, writer::WriteError},
    btf::BtfError,
    clock::BootClock,
    hash::{Done, ExecHasher, HashConfig},
    loader::{
        self, KernelTier, LoadError, SecurityHooks, counters, inode_plan::InodePlan, plan_settings,
        plan_sync,
    },
};
pub use sink::Sink;

/// Engine-wide mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Deny and kill as the rules say.
    Block,
    /// Dry run: record what would be denied or killed, do nothing.
    Monitor,
}

impl Mode {
    /// Name used in records.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Block => "block",
            Mode::Monitor => "monitor",
        }
    }
}

/// What happens to enforcement when the engine dies without a clean stop (SIGKILL, OOM kill,
/// a crash).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnCrash {
    /// The enforcing programs are pinned under bpffs and keep denying and killing until the
    /// next engine replaces them or `enforcer unpin` removes them (fail-closed).
    KeepEnforcing,
    /// The programs detach with the engine's file descriptors (fail-open).
    Stop,
}

impl OnCrash {
    /// Name used in records and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            OnCrash::KeepEnforcing => "keep-enforcing",
            OnCrash::Stop => "stop",
        }
    }
}

/// Options of `enforcer run`.
#[derive(Debug)]
pub struct Options {
    /// Policy file or directory, as given.
    pub policy_path: PathBuf,
    /// Engine-wide mode.
    pub mode: Mode,
    /// Audit log path (JSON lines); none means stdout only.
    pub audit_log: Option<PathBuf>,
    /// When the audit log (and the events log) is rotated.
    pub audit_rotation: crate::audit::Rotation,
    /// Where `event` records go, when not into the audit log (`--events-log`).
    pub events_log: Option<PathBuf>,
    /// How often an `engine_stats` record is written (`None`: never).
    pub stats_interval: Option<Duration>,
    /// Print events and actions on stdout.
    pub print: bool,
    /// Write `event` records (observed activity) to the audit log and stdout; without them
    /// only actions, enforcement and engine records are written.
    pub events: bool,
    /// Executables (absolute paths) never killed, besides the built-in protected processes.
    pub never_kill: Vec<PathBuf>,
    /// The kill breaker's limits for rules without a `breaker:` override.
    pub breaker: Limits,
    /// CPU sampling (only when the policy has `cpu` rules).
    pub cpu: crate::cpu::CpuSettings,
    /// Bounds of the executable hasher (used when a rule reads `exec.file.hash.*`).
    pub hash: HashConfig,
    /// Hash first-seen executables in the kernel in the lsm tier (`bprm_creds_from_file`).
    pub kernel_hash: bool,
    /// Signal tier: watch the file and kernel-activity families with fentry programs on the
    /// LSM hooks' functions where the kernel allows (`loader::trampolines`); false keeps the
    /// syscall tracepoints (`--no-fentry`).
    pub trampolines: bool,
    /// Enforcement after an unclean stop (monitor mode has nothing to keep: always `Stop`).
    pub on_crash: OnCrash,
    /// Attach the self-protection guards (`loader::self_guard`; lsm tier only).
    pub self_protect: bool,
    /// How often the policy files are checked for changes (a change reloads the policy, as
    /// `SIGHUP` does); `None`: only on `SIGHUP`.
    pub policy_watch: Option<Duration>,
    /// How often the daemon reads `EVENTS` while records come fast (`engine/polling.rs`).
    pub poll_interval: Duration,
}

/// The kill path: exclusions (`never_kill`, pid 1, kernel threads, this engine), the process
/// table and the cgroup v2 hierarchy.
fn killer(never_kill: &[PathBuf]) -> Killer {
    let proc = ProcFs::real();
    let engine = EngineIdentity::current(&proc);
    let cgroups = CgroupFs::discover();
    if cgroups.is_none() {
        tracing::warn!("no cgroup v2 hierarchy mounted: rules with kill_scope cgroup cannot kill");
    }
    Killer::new(proc, cgroups, Protection::new(engine, never_kill))
}

/// Why the engine could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Not running as root.
    #[error(
        "enforcer run needs root (CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN to load BPF programs and read kernel BTF); effective uid is {0}"
    )]
    NotRoot(u32),
    /// The kernel BTF is missing or unreadable.
    #[error(
        "kernel BTF is needed to find struct offsets (CONFIG_DEBUG_INFO_BTF=y, /sys/kernel/btf/vmlinux): {0}"
    )]
    Btf(#[from] BtfError),
    /// Loading or attaching failed.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// Writing the plan into the kernel maps failed.
    #[error(transparent)]
    Plan(#[from] plan_sync::PlanError),
    /// The audit log failed.
    #[error(transparent)]
    Audit(#[from] WriteError),
    /// Pinning the enforcing programs (`--on-crash keep-enforcing`) failed.
    #[error("cannot pin the enforcing programs (`--on-crash stop` runs without pins)")]
    Pin(#[from] loader::pins::PinFailure),
    /// Self-protection (`--self-protect`) could not be turned on.
    #[error(transparent)]
    SelfProtect(#[from] loader::self_guard::GuardError),
    /// An I/O error of the event loop (ring buffer, signals, clock).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The cause.
        source: std::io::Error,
    },
}

/// The `--never-kill` executables a kernel plan entry matches (by path or by name), with the
/// rules: the kernel spares them from kills (`NEVER_KILL`), but a deny rule still refuses their
/// exec in the lsm tier (the engine warns at start).
fn never_kill_in_kernel_plan(policy: &CompiledPolicy, never_kill: &[PathBuf]) -> Vec<String> {
    let plan = policy.plan();
    let rule_ids = |indices: &[u32]| {
        indices
            .iter()
            .filter_map(|&i| policy.rules().get(i as usize).map(|r| r.id.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut found = Vec::new();
    for path in never_kill {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let by_path = plan
            .exec_paths
            .iter()
            .filter(|e| Path::new(&e.value) == path);
        let by_name = plan.exec_names.iter().filter(|e| e.value == name);
        for entry in by_path.chain(by_name) {
            found.push(format!(
                "--never-kill {}: kernel rule(s) {} match {:?}: the kernel spares it from kills, but a deny still refuses its exec in the lsm tier",
                path.display(),
                rule_ids(&entry.rules),
                entry.value
            ));
        }
    }
    found
}

/// The CPU sampler, when the policy has an enabled `cpu` rule (else nothing is sampled).
fn cpu_sampler(
    policy: &CompiledPolicy,
    settings: crate::cpu::CpuSettings,
) -> Option<crate::cpu::Sampler> {
    if !crate::cpu::policy_needs_cpu(policy) {
        return None;
    }
    let cgroups = crate::actions::cgroupfs::CgroupFs::discover();
    tracing::info!(
        "sampling CPU every {:?} (floor {}%)",
        settings.interval,
        settings.floor
    );
    Some(crate::cpu::Sampler::new(
        settings,
        Path::new("/proc"),
        cgroups.as_ref().map(|c| c.root()),
        crate::cpu::usage::Capacity::this_machine(),
        crate::enrich::process_cache::CacheConfig::default().tick_ns,
    ))
}

/// The next finished hash, or never when nothing is hashed.
async fn next_hash(
    results: &mut Option<tokio::sync::mpsc::UnboundedReceiver<Done>>,
) -> Option<Done> {
    match results {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Largest file the kernel hashes: the userspace cap, at most 64 MiB (a bigger first exec
/// would stall in the hook; userspace hashes it after the exec instead).
const KERNEL_HASH_MAX: u64 = 64 << 20;

/// Seconds of slack over the userspace settle time before the kernel caches a file clean:
/// the kernel compares the change time with `CLOCK_TAI`, which runs ahead of the realtime
/// clock by the TAI offset (0, or 37 s once NTP sets it, possibly after start).
const KERNEL_FRESH_MARGIN_S: u64 = 2;

/// The in-kernel hash limits from the userspace hasher's settings: the same size cap (at most
/// [`KERNEL_HASH_MAX`]) and settle time, plus the TAI offset measured now and a margin.
fn kernel_hash_limits(hash: &HashConfig) -> plan_settings::HashLimits {
    let now = |clock| {
        nix::time::clock_gettime(clock)
            .map(|t| t.tv_sec())
            .unwrap_or(0)
    };
    let tai_offset = now(nix::time::ClockId::CLOCK_TAI) - now(nix::time::ClockId::CLOCK_REALTIME);
    plan_settings::HashLimits {
        max_size: hash.max_size.min(KERNEL_HASH_MAX),
        fresh_s: hash.settle.as_secs().max(1) + tai_offset.unsigned_abs() + KERNEL_FRESH_MARGIN_S,
    }
}

/// How executed files are hashed under `policy` with the kernel hash programs in the state
/// `kernel_hash`, for the start and reload records and the log.
fn exec_hash_state(policy: &CompiledPolicy, kernel_hash: &Result<(), String>) -> String {
    if !policy.hash_needed().contains(&true) {
        return "off (no rule can match a hash)".to_owned();
    }
    if policy.plan().exec_hashes.is_empty() {
        return "userspace (no deny/kill rule on hash lists for the kernel)".to_owned();
    }
    match kernel_hash {
        Ok(()) => "kernel (bpf_ima_file_hash in bprm_creds_from_file; userspace for larger files and when the helper fails)".to_owned(),
        Err(why) => format!("userspace, after the exec (not in the kernel: {why})"),
    }
}

/// `connection_abort` of `engine_start`: whether the daemon can abort the connection of a TCP
/// segment the egress hook drops (a warning when it cannot); `None` where nothing is dropped at
/// egress.
fn connection_abort(loaded: &loader::Loaded, dry_run: bool) -> Option<String> {
    if dry_run || loaded.tier == KernelTier::Lsm || loaded.cgroup_egress.is_err() {
        return None;
    }
    Some(match crate::actions::abort::probe() {
        Ok(()) => "sock_diag SOCK_DESTROY".to_owned(),
        Err(err) => {
            tracing::warn!(
                "refused TCP segments cannot be discarded: {err}; a refused segment stays queued in its socket, and TCP tries it again until the connection times out"
            );
            format!("unavailable: {err}")
        }
    })
}

fn io_err(what: &'static str) -> impl FnOnce(std::io::Error) -> EngineError {
    move |source| EngineError::Io { what, source }
}

/// Takes a ring buffer map out of the loaded object and registers it with the event loop.
fn ring_buffer(
    ebpf: &mut Ebpf,
    name: &'static str,
) -> Result<AsyncFd<RingBuf<MapData>>, EngineError> {
    let map = ebpf.take_map(name).ok_or(LoadError::MissingProgram(name))?;
    let ring =
        RingBuf::try_from(map).map_err(|e| io_err("ring buffer")(std::io::Error::other(e)))?;
    // SAFETY: the AsyncFd takes ownership of the RingBuf, which owns the map fd, so the fd
    // stays open for as long as it is registered and is deregistered before it closes.
    unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
        .map_err(|e| io_err("ring buffer fd")(e.into()))
}

/// What woke the run loop.
enum Wake {
    /// `EVENTS` has records (its readiness is cleared before the drain, so a record that comes
    /// during the drain wakes the loop again).
    Events,
    /// `LIFECYCLE` has records (its wake-up: a rule is about them, or the ring fills up).
    Lifecycle,
    /// The drain timer ([`lifecycle::DRAIN_INTERVAL`]): pending fork and exit records are
    /// handled.
    Tick,
    /// The poll timer ([`Options::poll_interval`]), while records come fast.
    Poll,
    /// The CPU sampling timer.
    Cpu,
    /// A file hash is done.
    Hash(Done),
    /// The policy file watch timer (`--policy-watch`).
    Watch,
    /// A policy reload was asked for.
    Reload(reload::Trigger),
    /// The `--stats-interval` timer.
    Stats,
}

/// What `policy` asks the kernel to watch beyond the tier's fixed programs (`kernel_hash`:
/// `--no-kernel-hash` is not given).
fn needs(policy: &CompiledPolicy, kernel_hash: bool) -> loader::on_demand::Needs {
    loader::on_demand::Needs {
        kernel_ops: plan_settings::kernel_op_bits(policy),
        records: plan_settings::socket_record_bits(policy),
        kernel_hash: kernel_hash && !policy.plan().exec_hashes.is_empty(),
    }
}

/// Attaches what reloaded `policy` needs that the start did not: the tracepoints of kernel
/// operations, binds and accepts (`Loaded::widen`; a failure refuses the reload) and, when it
/// lists SHA-256 values and `kernel_hash` allows it, the kernel hash programs (lsm tier; a
/// failure is left in `loaded.kernel_hash`: files are then hashed in userspace after the
/// exec, as the reload record's `exec_hash` says). Pins the enforcing ones with the run's
/// others.
fn attach_for(
    loaded: &mut loader::Loaded,
    pins: Option<&mut loader::pins::Pins>,
    policy: &CompiledPolicy,
    kernel_hash: bool,
) -> Result<(), String> {
    let wanted = needs(policy, kernel_hash);
    loaded
        .widen(wanted.kernel_ops, wanted.records)
        .map_err(|err| format!("cannot attach what the new policy needs: {err}"))?;
    if wanted.kernel_hash
        && let Err(err) = loaded.enable_kernel_hash()
    {
        loaded.kernel_hash = Err(format!("cannot load the kernel hash programs: {err}"));
    }
    // A link whose pin fails is gone: enforcing without it would downgrade the new policy's
    // denials; the reload is refused instead.
    if let Some(pins) = pins {
        loaded.pin_on_demand(pins).map_err(|err| {
            format!("cannot pin what the new policy needs (--on-crash keep-enforcing): {err}")
        })?;
    }
    if loaded.self_protected
        && let Err(err) = loader::self_guard::protect_maps(&mut loaded.ebpf)
    {
        tracing::warn!("the maps of programs attached by the reload are not guarded: {err}");
    }
    Ok(())
}

/// Starts the executable hasher when the handler's policy reads hashes and none runs yet.
fn start_hashing(
    handler: &mut handler::Handler<'_>,
    config: &HashConfig,
    inode_plan: &Rc<RefCell<InodePlan>>,
    results: &mut Option<tokio::sync::mpsc::UnboundedReceiver<Done>>,
) -> Result<(), EngineError> {
    if handler.is_hashing() || !handler.policy().hash_needed().contains(&true) {
        return Ok(());
    }
    let (hasher, rx) = ExecHasher::start(config.clone()).map_err(io_err("hash threads"))?;
    handler.start_hashing(hasher, Some(Rc::clone(inode_plan)));
    *results = Some(rx);
    Ok(())
}

/// Runs the engine until SIGINT or SIGTERM.
pub async fn run(options: Options, policy: CompiledPolicy) -> Result<(), EngineError> {
    let policy = Rc::new(policy);
    let euid = nix::unistd::geteuid();
    if !euid.is_root() {
        return Err(EngineError::NotRoot(euid.as_raw()));
    }
    // Handled from here on: a SIGTERM while starting stops the engine cleanly once it runs
    // (with pins, the default action would leave them behind).
    let mut sigterm = signal(SignalKind::terminate()).map_err(io_err("SIGTERM handler"))?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(io_err("SIGINT handler"))?;
    let mut sighup = signal(SignalKind::hangup()).map_err(io_err("SIGHUP handler"))?;
    let run_id = loader::pins::RunId::current().map_err(io_err("run id"))?;
    let pin_root = Path::new(loader::pins::PIN_ROOT);
    // Before the sink opens the log (and closes a torn tail): what the previous run left.
    let previous = gap::survey(options.audit_log.as_deref(), pin_root);
    let mut sink = Sink::open_rotating(
        options.audit_log.as_deref(),
        options.audit_rotation,
        options.print,
    )?;
    if !options.events {
        sink = sink.without_events();
    } else if let Some(events_log) = &options.events_log {
        sink = sink.with_events_log(events_log, options.audit_rotation)?;
    }
    let mut offsets =
        loader::offsets::from_btf_file(std::path::Path::new(crate::btf::VMLINUX_BTF_PATH))?;
    let dry_run = options.mode == Mode::Monitor;
    // The hash program only when the policy lists SHA-256 values for the kernel.
    let wanted = needs(&policy, options.kernel_hash);
    let kernel_hash = wanted.kernel_hash;
    let file_ops = loader::file_plan::ops_wanted(policy.plan());
    let load_options = loader::LoadOptions {
        dry_run,
        kernel_hash,
        file_ops,
        trampolines: options.trampolines,
    };
    let mut loaded = loader::load_with(load_options, &mut offsets)?;
    if options.self_protect {
        loader::self_guard::require_lsm(&loaded)?;
    }
    let generation = 1;
    for conflict in never_kill_in_kernel_plan(&policy, &options.never_kill) {
        tracing::warn!("{conflict}");
    }
    for (path, why) in loader::never_kill::write(&mut loaded.ebpf, &options.never_kill)? {
        tracing::warn!(
            "--never-kill {}: {why}; the kernel cannot spare it (the daemon's kills still do)",
            path.display()
        );
    }
    plan_settings::write_hash_limits(&mut loaded.ebpf, kernel_hash_limits(&options.hash))?;
    plan_sync::write(&mut loaded.ebpf, &policy, generation)?;
    let exec_hash = exec_hash_state(&policy, &loaded.kernel_hash);
    tracing::info!("content hashes of executed files: {exec_hash}");
    let inode_plan = Rc::new(RefCell::new(InodePlan::take(&mut loaded.ebpf, generation)?));
    loaded.kernel_ops_wanted = wanted.kernel_ops;
    loaded.records_wanted = wanted.records;
    loaded.attach()?;
    match &loaded.dns_responses {
        Ok(root) => tracing::info!("DNS responses watched at ingress of {}", root.display()),
        Err(why) => tracing::warn!("DNS responses are not seen: {why}"),
    }

    // Monitor mode denies and kills nothing: nothing to keep.
    let on_crash = if dry_run {
        OnCrash::Stop
    } else {
        options.on_crash
    };
    let enforcing_links = std::mem::take(&mut loaded.enforcing_links);
    let pins = match on_crash {
        OnCrash::KeepEnforcing => {
            let mut pins = loader::pins::pin(&mut loaded.ebpf, enforcing_links, pin_root, run_id)?;
            if let Err(err) = loaded.pin_on_demand(&mut pins) {
                // As `pins::pin` does on a failure: the engine stops, leaving no pins.
                let _ = pins.remove();
                return Err(err.into());
            }
            Some(pins)
        }
        OnCrash::Stop => None,
    };
    if let Some(pins) = &pins {
        tracing::info!(
            "{} enforcing link(s) pinned in {}",
            pins.links(),
            pins.dir().display()
        );
    }
    // This run's programs are attached (and pinned): only now do a dead run's pins go.
    let this_start = crate::audit::writer::timestamp(std::time::SystemTime::now());
    let gaps = gap::take_over(previous, &this_start);
    // Last: the guards would refuse nothing to this process, but they keep the pins just made.
    let self_protect = if options.self_protect {
        let dirs = pins.as_ref().map(|p| loader::self_guard::PinDirs {
            root: pin_root,
            run: p.dir(),
        });
        let guarded = match loader::self_guard::enable(&mut loaded, dirs) {
            Ok(guarded) => guarded,
            Err(err) => {
                // Not started: leave no pins behind.
                if let Some(pins) = pins {
                    let _ = pins.remove();
                }
                return Err(err.into());
            }
        };
        let files = sink.log_files_if_changed().unwrap_or_default();
        let files = loader::self_guard::guard_files(&mut loaded.ebpf, &files)?;
        tracing::info!(
            "self-protection on: {} engine maps and {files} audit log file(s) guarded, pins {}, pid {} (the engine's parent) and pid 1 may stop it",
            guarded.maps,
            if guarded.pins { "guarded" } else { "none" },
            guarded.parent_pid
        );
        true
    } else {
        false
    };

    let tier = if dry_run {
        "monitor"
    } else {
        loaded.tier.name()
    };
    sink.write(&Record::EngineStart {
        tier,
        kernel_tier: loaded.tier.name(),
        mode: options.mode.name(),
        kernel: loader::tier::kernel_release(),
        policy_generation: generation,
        policy: options.policy_path.display().to_string(),
        rules: policy.rules().len(),
        version: env!("CARGO_PKG_VERSION"),
        pid: std::process::id(),
        tier_reason: loaded.tier_reason.clone(),
        kernel_syscalls_unseen: loaded
            .kernel_tracepoints
            .iter()
            .filter_map(|(entry, state)| {
                let why = state.as_ref().err()?;
                Some((entry.syscall.name().to_owned(), why.clone()))
            })
            .chain(loaded.file_hooks.iter().filter_map(|(hook, state)| {
                let why = state.as_ref().err()?;
                Some((hook.name(), why.clone()))
            }))
            .chain(
                loaded
                    .module_loads
                    .as_ref()
                    .err()
                    .map(|why| (loader::module_loads::TRACEPOINT.to_owned(), why.clone())),
            )
            .collect(),
        connect_hook: match (&loaded.tier, &loaded.cgroup_connect) {
            (KernelTier::Lsm, _) => "lsm/socket_connect".to_owned(),
            (_, Ok(())) => "cgroup/connect4,6".to_owned(),
            (_, Err(why)) => format!("tp/syscalls/sys_enter_connect ({why})"),
        },
        send_hook: match (&loaded.tier, &loaded.cgroup_egress) {
            (KernelTier::Lsm, _) => "lsm/socket_sendmsg".to_owned(),
            (_, Ok(())) => "cgroup_skb/egress".to_owned(),
            (_, Err(why)) => {
                format!("tp/syscalls/sys_enter_{{write,sendto,sendmsg,sendmmsg,writev}} ({why})")
            }
        },
        connection_abort: connection_abort(&loaded, dry_run),
        security_hooks: match (&loaded.security_hooks, &loaded.trampolines) {
            (SecurityHooks::Lsm, _) => "lsm".to_owned(),
            (SecurityHooks::Fentry, _) => "fentry".to_owned(),
            (SecurityHooks::Tracepoints, Some(Err(why))) => format!("tracepoints ({why})"),
            (SecurityHooks::Tracepoints, _) => "tracepoints".to_owned(),
        },
        syscall_tracepoints: loaded.syscall_tracepoints(),
        never_kill: options
            .never_kill
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        kill_breaker: BreakerSettings {
            max_targets: options.breaker.max_targets,
            window_s: options.breaker.window.as_secs(),
        },
        exec_hash,
        run_id: run_id.to_string(),
        on_crash: on_crash.name(),
        events: if options.events { "all" } else { "none" },
        events_log: options
            .events_log
            .as_ref()
            .filter(|_| options.events)
            .map(|p| p.display().to_string()),
        pinned_links: pins.as_ref().map_or(0, loader::pins::Pins::links),
        self_protect,
    })?;
    for gap in gaps {
        sink.write(&Record::EngineGap(gap))?;
    }
    if loaded.tier == KernelTier::Signal && !dry_run {
        tracing::warn!(
            "BPF LSM unavailable ({}): signal tier, exec deny rules stop the process with SIGKILL before it runs",
            loaded.tier_reason
        );
    }

    let mut ring = ring_buffer(&mut loaded.ebpf, EVENTS)?;
    let mut lifecycle_ring = ring_buffer(&mut loaded.ebpf, LIFECYCLE)?;
    let mut lifecycle = lifecycle::Pending::default();
    let mut poll_flag = polling::PollFlag::take(&mut loaded.ebpf)?;
    let mut poller = polling::Poller::default();
    let clock = BootClock::new().map_err(|e| io_err("boot clock")(e.into()))?;
    let coverage = reload::Coverage {
        hooks: loaded.security_hooks,
        file_ops: match loaded.security_hooks {
            // The fentry programs of every file operation with a hook are loaded.
            SecurityHooks::Fentry => file_ops | loader::trampolines::file_ops(),
            _ => file_ops,
        },
    };
    let mut reloader = reload::Reloader::new(&options.policy_path, &policy, coverage);
    reloader.warn_writable();
    let mut pins = pins;
    let loaded = Rc::new(RefCell::new(loaded));
    let plan = live_plan::LivePlan::new(
        Rc::clone(&loaded),
        Rc::clone(&policy),
        generation,
        Rc::clone(&inode_plan),
    );
    let enforcer = enforce::Enforcer::new(
        &policy,
        killer(&options.never_kill),
        options.breaker,
        Box::new(plan),
        clock,
        dry_run,
    );
    let mut handler = handler::Handler::new(
        Rc::clone(&policy),
        generation,
        tier,
        dry_run,
        clock,
        enforcer,
    );
    let mut hash_results = None;
    start_hashing(&mut handler, &options.hash, &inode_plan, &mut hash_results)?;
    let mut cpu_timer = tokio::time::interval(options.cpu.interval);
    let mut cpu = cpu_sampler(&policy, options.cpu.clone());
    // Never ticks when the watch is off.
    let mut watch_timer =
        tokio::time::interval(options.policy_watch.unwrap_or(Duration::from_secs(3600)));
    watch_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    cpu_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut lifecycle_timer = tokio::time::interval(lifecycle::DRAIN_INTERVAL);
    lifecycle_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut poll_timer = tokio::time::interval(options.poll_interval);
    poll_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Never ticks when off; the first tick (at once) is skipped.
    let stats_period = options.stats_interval.unwrap_or(Duration::from_secs(3600));
    let mut stats_timer =
        tokio::time::interval_at(tokio::time::Instant::now() + stats_period, stats_period);
    stats_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stats = stats::Stats::default();
    let mut stats_at = std::time::Instant::now();

    let reason = loop {
        let wake = tokio::select! {
            guard = ring.readable_mut() => {
                guard.map_err(io_err("ring buffer poll"))?.clear_ready();
                Wake::Events
            }
            guard = lifecycle_ring.readable_mut() => {
                guard.map_err(io_err("ring buffer poll"))?.clear_ready();
                Wake::Lifecycle
            }
            _ = poll_timer.tick(), if poller.polling() => Wake::Poll,
            _ = lifecycle_timer.tick() => Wake::Tick,
            _ = cpu_timer.tick(), if cpu.is_some() => Wake::Cpu,
            Some(done) = next_hash(&mut hash_results) => Wake::Hash(done),
            _ = sighup.recv() => Wake::Reload(reload::Trigger::Signal),
            _ = watch_timer.tick(), if options.policy_watch.is_some() => Wake::Watch,
            _ = stats_timer.tick(), if options.stats_interval.is_some() => Wake::Stats,
            _ = sigterm.recv() => break "SIGTERM",
            _ = sigint.recv() => break "SIGINT",
        };
        // Whatever woke the loop, both rings are drained first, in the kernel's order.
        let handled = lifecycle::drain(
            ring.get_mut(),
            lifecycle_ring.get_mut(),
            &mut lifecycle,
            &mut handler,
            &mut sink,
        )?;
        let switch = match wake {
            Wake::Events => poller.woken(std::time::Instant::now()),
            Wake::Poll => poller.polled(handled),
            _ => polling::Switch::Keep,
        };
        if switch == polling::Switch::StartPolling {
            poll_timer.reset();
        }
        poll_flag.apply(switch);
        match wake {
            // Event records are written after every drain, not only on the tick: gathering
            // 20 ms of them made the next action record's durable write (which writes them
            // first) slow, and the userspace kill of the CryptoNote login took 1.4 ms at p50
            // instead of 0.4 ms (benches/README.md, kill latency).
            Wake::Events | Wake::Lifecycle | Wake::Tick | Wake::Poll => {}
            Wake::Cpu => {
                if let Some(sampler) = cpu.as_mut() {
                    let now = crate::actions::kill::boot_now_ns();
                    let hot = sampler.round(now);
                    handler.cpu_round(&hot, now, &mut sink)?;
                }
            }
            Wake::Hash(done) => handler.hash_done(done, &mut sink)?,
            Wake::Stats => {
                let now = std::time::Instant::now();
                let period_s = now.duration_since(stats_at).as_secs();
                stats_at = now;
                let counters = counters::read(&loaded.borrow().ebpf);
                sink.write(&stats.record(counters, handler.decode_errors(), period_s))?;
            }
            Wake::Watch if !reloader.files_changed() => {}
            Wake::Watch | Wake::Reload(_) => {
                let trigger = match wake {
                    Wake::Reload(trigger) => trigger,
                    _ => reload::Trigger::FileChange,
                };
                let mut record = reloader.reload(
                    trigger,
                    &mut handler,
                    |new| {
                        attach_for(
                            &mut loaded.borrow_mut(),
                            pins.as_mut(),
                            new,
                            options.kernel_hash,
                        )
                    },
                    |p| exec_hash_state(p, &loaded.borrow().kernel_hash),
                );
                if record.outcome == "applied" {
                    for conflict in never_kill_in_kernel_plan(handler.policy(), &options.never_kill)
                    {
                        tracing::warn!("{conflict}");
                    }
                }
                // Whatever the outcome: what the policy in force no longer needs goes (a
                // rule removed, or what a refused or failed reload attached).
                let mut loaded = loaded.borrow_mut();
                record.detached =
                    loaded.narrow(needs(handler.policy(), options.kernel_hash), pins.as_mut());
                record.syscall_tracepoints = loaded.syscall_tracepoints();
                drop(loaded);
                sink.write(&Record::PolicyReload(record))?;
                // What the new policy needs in userspace: the hasher, the CPU sampler.
                start_hashing(&mut handler, &options.hash, &inode_plan, &mut hash_results)?;
                if !crate::cpu::policy_needs_cpu(handler.policy()) {
                    cpu = None;
                } else if cpu.is_none() {
                    cpu = cpu_sampler(handler.policy(), options.cpu.clone());
                }
            }
        }
        sink.flush()?;
        // A rotated or reopened log: guard its new files (and no longer the ones gone).
        if self_protect && let Some(files) = sink.log_files_if_changed() {
            let guarded = loader::self_guard::guard_files(&mut loaded.borrow_mut().ebpf, &files);
            if let Err(err) = guarded {
                tracing::warn!("the audit log's new files are not guarded: {err}");
            }
        }
    };
    // Drain what is left before detaching.
    lifecycle::drain(
        ring.get_mut(),
        lifecycle_ring.get_mut(),
        &mut lifecycle,
        &mut handler,
        &mut sink,
    )?;
    handler.stop_hashing(&mut sink)?;
    sink.flush()?;
    let decode_errors = handler.decode_errors();
    drop(handler);
    sink.write(&Record::EngineStop {
        reason: reason.to_owned(),
        counters: counters::read(&loaded.borrow().ebpf),
        decode_errors,
        polling_periods: poller.periods(),
    })?;
    // A clean stop ends enforcement: the pins go, then the programs detach.
    if let Some(pins) = pins
        && let Err(e) = pins.remove()
    {
        tracing::warn!("cannot remove the pins of this run: {e}");
    }
    drop(loaded);
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn never_kill_paths_the_kernel_plan_matches_are_reported() {
        let policy = enforcer_policy::load_str(
            "p.yaml",
            "rules:\n  - id: miner-name\n    expression: exec.file.name in (\"xmrig\", \"minerd\")\n    action: kill\n  - id: miner-path\n    expression: exec.file.path == \"/opt/x/minerd\"\n    action: deny\n",
        )
        .unwrap();
        let never_kill = [
            PathBuf::from("/opt/x/minerd"),
            PathBuf::from("/usr/bin/agent"),
        ];
        let found = never_kill_in_kernel_plan(&policy, &never_kill);
        assert_eq!(found.len(), 2, "{found:#?}");
        assert!(found[0].contains("miner-path"), "{found:#?}");
        assert!(found[1].contains("miner-name"), "{found:#?}");
        assert!(never_kill_in_kernel_plan(&policy, &never_kill[1..]).is_empty());
    }
}
