//! The whole-system storms (`exec_storm`, `open_storm`, ...) run inside a QEMU VM whose clock
//! counts instructions: the lsm tier's cost (BPF LSM is active in the VM, not on the host),
//! as a figure that does not move with what else the host is doing.
//!
//! QEMU runs the guest under TCG with `-icount shift=N,sleep=off`: the guest's clocks advance
//! by 2^N ns per instruction executed, and an idle guest jumps to its next timer at once. Every
//! time a storm prints (throughput, latency, CPU per operation) is then an instruction count:
//! with the default `--icount-shift 0`, 1 us is 1,000 guest instructions. That is not real
//! time on real hardware (no caches, no pipeline, no mitigations' costs), and the guest's
//! "real time" counts every vCPU's instructions in turn; the default `--cpus 1` keeps the
//! workload's own CPU time (`CPU per operation`) free of the daemon's. The ratios and the
//! deltas in instructions are the figures to read; a storm's noise is what the guest itself
//! does differently between rounds, not the host.
//!
//! `sudo target/release/vm_storm [--kernel 6.12] [--storm "exec_storm --iterations 500
//! --rounds 6"]...`; the storms are run in order in one boot, each with `--enforcer` and
//! `--policy` set to the guest's copies. Needs what the VM tests need (root, QEMU, busybox, a
//! cached kernel: `scripts/setup`) and `cargo build --release -p enforcer -p enforcer-benches`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser;
use enforcer_integration::vm::init_script::{self, InitConfig};
use enforcer_integration::vm::initramfs::InitramfsBuilder;
use enforcer_integration::vm::qemu::{self, QemuConfig};
use enforcer_integration::vm::{console, kernels, layout, paths, preflight};

mod profile_diff;

/// The storms run when `--storm` is not given.
const DEFAULT_STORMS: &[&str] = &[
    "exec_storm --iterations 500 --rounds 6 --settle 1",
    "open_storm --access read --iterations 20000 --rounds 6 --settle 1",
    "open_storm --access write --iterations 20000 --rounds 6 --settle 1",
];
/// The storm binaries copied into the guest (from beside this program).
const STORM_BINARIES: &[&str] = &[
    "exec_storm",
    "open_storm",
    "write_storm",
    "net_storm",
    "kill_latency",
];
/// The guest directory of the storm binaries and of the exec storm's default program.
const GUEST_BENCH_DIR: &str = "/opt/bench";
/// Where the guest's policy is copied.
const GUEST_POLICY: &str = "/etc/enforcer/bench-policy";
/// Where `--perf` puts the host's perf in the guest.
const GUEST_PERF: &str = "/bin/perf";
/// The console markers around one storm's output: `VMBENCH-BEGIN <n>`, `VMBENCH-END <n> <rc>`.
const BEGIN: &str = "VMBENCH-BEGIN";
const END: &str = "VMBENCH-END";
/// The console markers before the guest's profile of the last round with the engine and of
/// the last round without it (`--perf`).
const PROFILE_WITH: &str = "VMBENCH-PROFILE-WITH";
const PROFILE_WITHOUT: &str = "VMBENCH-PROFILE-WITHOUT";
/// Rows of `--perf`'s summary (symbols whose cost the engine changed most).
const PROFILE_ROWS: usize = 40;
/// The audit log the storms' engine writes (`enforcer_benches::alternate`, in the guest's
/// temporary directory).
const GUEST_AUDIT: &str = "/tmp/enforcer-bench-audit.jsonl";

/// Runs the whole-system storms in a VM (lsm tier), timed in guest instructions.
#[derive(Debug, Parser)]
struct Args {
    /// The cached kernel to boot (a directory name under `.cache/kernels`); the newest when
    /// not given.
    #[arg(long)]
    kernel: Option<String>,
    /// A storm and its options, without `--enforcer` and `--policy` (set to the guest's
    /// copies); repeat for several, run in order in one boot. The exec storm's `--program`
    /// defaults to the host's `/bin/true` with its libraries, copied to `/opt/bench/true`.
    #[arg(long = "storm")]
    storms: Vec<String>,
    /// The policy the engine runs: a file or a directory like `policy/default`.
    #[arg(long, default_value = "policy/default")]
    policy: PathBuf,
    /// Guest vCPUs. With more than one, the guest's clock also counts the other vCPUs'
    /// instructions (QEMU runs them in turn).
    #[arg(long, default_value_t = 1)]
    cpus: u32,
    /// The kernel tier the engine runs in: `lsm` (BPF LSM active, the default) or `signal`
    /// (the guest kernel boots without `bpf` in its LSM list, as on a host without BPF LSM:
    /// the tier of the host's own storms, measured here in instructions).
    #[arg(long, default_value = "lsm", value_parser = ["lsm", "signal"])]
    tier: String,
    /// One guest instruction per 2^N ns of guest time.
    #[arg(long, default_value_t = 0)]
    icount_shift: u8,
    /// Diagnostic: profile the last round with and the last round without the engine of each
    /// storm (the storms' `--perf-record`, with the host's `perf` copied into the guest) and
    /// print, symbol by symbol, what the engine adds to the workload (all commands but the
    /// engine and perf), then the engine's daemon's own symbols, in instructions per
    /// operation. The guest's clock counts instructions, so the samples are spread by
    /// instructions executed. Sampling perturbs the storm's figures.
    #[arg(long)]
    perf: bool,
    /// `--perf`'s sampling period in guest nanoseconds (instructions at shift 0).
    #[arg(long, default_value_t = 20_000)]
    perf_period: u64,
    /// Hard limit for the whole boot, in minutes (QEMU is killed when it expires).
    #[arg(long, default_value_t = 90)]
    timeout_minutes: u64,
}

fn main() -> ExitCode {
    match run(&Args::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("vm_storm: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Boots once, runs every storm, prints their reports; `Ok(false)` when a storm failed.
fn run(args: &Args) -> anyhow::Result<bool> {
    let root = paths::workspace_root();
    let tools = preflight::check_host()
        .map_err(|problems| anyhow::anyhow!("the VM cannot run here: {}", problems.join("; ")))?;
    let kernel = pick_kernel(&root, args.kernel.as_deref())?;
    let enforcer = paths::engine_under_test(&root)
        .map_err(anyhow::Error::msg)?
        .context("no enforcer build: run `cargo build --release -p enforcer`")?;
    let storms: Vec<String> = if args.storms.is_empty() {
        DEFAULT_STORMS.iter().map(|s| (*s).to_owned()).collect()
    } else {
        args.storms.clone()
    };
    let commands = storms
        .iter()
        .map(|storm| guest_command(storm))
        .collect::<anyhow::Result<Vec<_>>>()?;

    let profile = args.perf.then_some(args.perf_period);
    // The socket diagnostics modules, loaded before the storms as a distribution loads them
    // on demand (the guest has no modprobe): the signal tier aborts refused connections.
    let modules: Vec<(PathBuf, String)> = match &kernel.release {
        Some(release) => kernel
            .diag_modules
            .iter()
            .zip(layout::DIAG_MODULES)
            .map(|(path, name)| (path.clone(), layout::module(release, name)))
            .collect(),
        None => Vec::new(),
    };
    let loads: Vec<String> = modules.iter().map(|(_, guest)| guest.clone()).collect();
    let script = bench_script(&commands, &loads, profile);
    let init = init_script::render(&InitConfig {
        harness: vec!["/bin/sh".to_owned(), "/bench.sh".to_owned()],
    });
    let here = std::env::current_exe().context("locate this program")?;
    let bin_dir = here.parent().context("this program's directory")?;
    let mut builder = InitramfsBuilder::new(&tools.busybox, init)
        .binary(&enforcer, layout::ENFORCER)
        .binary("/bin/true", format!("{GUEST_BENCH_DIR}/true"))
        .file("/bench.sh", script, 0o755)
        .strip_debug(true);
    for (host, guest) in &modules {
        builder = builder.host_file(host, guest, 0o644);
    }
    if args.perf {
        let perf = paths::find_in_path("perf")
            .context("--perf: no perf on PATH (apt-get install linux-perf)")?;
        builder = builder.binary(perf, GUEST_PERF);
    }
    for name in STORM_BINARIES {
        let path = bin_dir.join(name);
        if !paths::is_executable_file(&path) {
            bail!(
                "{} missing: run `cargo build --release -p enforcer-benches`",
                path.display()
            );
        }
        builder = builder.binary(path, format!("{GUEST_BENCH_DIR}/{name}"));
    }
    let policy = root.join(&args.policy);
    builder = if policy.is_dir() {
        builder.policy_dir(&policy, Path::new(GUEST_POLICY))?
    } else {
        let contents =
            std::fs::read(&policy).with_context(|| format!("read {}", policy.display()))?;
        builder.file(GUEST_POLICY, contents, 0o644)
    };
    let cache_dir = paths::vm_cache_dir(&root);
    std::fs::create_dir_all(&cache_dir).context("create the VM cache directory")?;
    // One image (and log) per kernel and tier: runs of different tiers may go side by side.
    let run_name = format!("vm-storm-{}-{}", kernel.name, args.tier);
    let image = builder.build(&cache_dir.join(format!("{run_name}.cpio.gz")))?;

    let mut config = QemuConfig::new(
        &tools.qemu,
        Duration::from_secs(args.timeout_minutes.saturating_mul(60)),
    );
    config.cpus = args.cpus;
    if args.tier == "signal" {
        // Without `bpf` in the LSM list.
        config
            .without_bpf_lsm()
            .map_err(|why| anyhow::anyhow!("--tier signal: {why}"))?;
    }
    config.icount_shift = Some(args.icount_shift);
    config.echo = Some(kernel.name.clone());
    println!(
        "vm_storm: kernel {} ({}), {} tier wanted, {} vCPU, -icount shift={} (1 us of guest \
         time = {} guest instructions), policy {}",
        kernel.name,
        kernel.package_label(),
        args.tier,
        args.cpus,
        args.icount_shift,
        1000u64 >> args.icount_shift.min(10),
        args.policy.display()
    );
    let capture = qemu::boot(&kernel.vmlinuz, &image.path, &config)?;
    let log = cache_dir.join(format!("{run_name}.log"));
    let _ = std::fs::write(&log, capture.timestamped_text());
    let text = capture.console_text();
    let report = console::parse(&text);
    println!(
        "guest: release {}, LSMs {}, whole run {:.0} s (host), console {}",
        report.info.get("kernel").map_or("unknown", String::as_str),
        report.info.get("lsm").map_or("unknown", String::as_str),
        capture.elapsed.as_secs_f64(),
        log.display()
    );
    let mut all_passed = true;
    for (index, command) in commands.iter().enumerate() {
        println!("\n$ {command}");
        match storm_output(&text, index) {
            Some((lines, 0)) => print_storm(&lines, command, profile),
            Some((lines, rc)) => {
                lines.iter().for_each(|l| println!("{l}"));
                println!("FAILED: exit status {rc}");
                all_passed = false;
            }
            None => {
                println!("FAILED: no end marker (timeout or crash: see the console log)");
                all_passed = false;
            }
        }
    }
    Ok(all_passed)
}

/// Prints a storm's output; with a profile (`--perf`, sampling `period`), the two listings are
/// replaced by what the engine adds to the workload, symbol by symbol, and by the daemon's own
/// symbols.
fn print_storm(lines: &[String], command: &str, profile: Option<u64>) {
    let start = lines.iter().position(|l| l == PROFILE_WITH);
    let middle = lines.iter().position(|l| l == PROFILE_WITHOUT);
    let (Some(period), Some(start), Some(middle)) = (profile, start, middle) else {
        lines.iter().for_each(|l| println!("{l}"));
        return;
    };
    lines[..start].iter().for_each(|l| println!("{l}"));
    let with = profile_diff::parse(&lines[start + 1..middle.max(start + 1)]);
    let without = profile_diff::parse(&lines[middle + 1..]);
    let operations = iterations(command);
    let deltas = profile_diff::workload_deltas(&with, &without, period, operations.unwrap_or(1));
    let unit = match operations {
        Some(n) => format!("thousands of guest instructions per operation ({n} per round)"),
        None => "thousands of guest instructions per round (no --iterations given)".to_owned(),
    };
    println!("\nprofile of the workload, last round with vs without the engine, in {unit}:");
    println!("{:>10} {:>10} {:>10}  symbol", "with", "without", "added");
    let total: f64 = deltas.iter().map(profile_diff::Delta::added).sum();
    for d in deltas.iter().take(PROFILE_ROWS) {
        println!(
            "{:>10.3} {:>10.3} {:>+10.3}  {}",
            d.with / 1e3,
            d.without / 1e3,
            d.added() / 1e3,
            d.symbol
        );
    }
    println!("all symbols: {:+.3} (sampling noise included)", total / 1e3);
    let engine = profile_diff::engine_costs(&with, period, operations.unwrap_or(1));
    println!("\nprofile of the engine's daemon, last round with it, in {unit}:");
    for (symbol, cost) in engine.iter().take(PROFILE_ROWS) {
        println!("{:>10.3}  {symbol}", cost / 1e3);
    }
    let daemon: f64 = engine.iter().map(|(_, cost)| cost).sum();
    println!("all symbols: {:.3}", daemon / 1e3);
}

/// The storm's `--iterations N` (operations per round), if given.
fn iterations(command: &str) -> Option<u64> {
    let mut words = command.split_whitespace();
    while let Some(word) = words.next() {
        if word == "--iterations" {
            return words.next()?.trim_matches('\'').parse().ok();
        }
        if let Some(n) = word.strip_prefix("--iterations=") {
            return n.trim_matches('\'').parse().ok();
        }
    }
    None
}

/// The cached kernel named `name`, else the newest.
fn pick_kernel(root: &Path, name: Option<&str>) -> anyhow::Result<kernels::Kernel> {
    let cache = paths::kernel_cache_dir(root);
    let all = kernels::discover(&cache)?;
    let (mut chosen, missing) = kernels::select(all, name);
    if !missing.is_empty() {
        bail!(
            "kernel {} is not cached in {} (run scripts/setup)",
            missing.join(", "),
            cache.display()
        );
    }
    chosen.pop().with_context(|| {
        format!(
            "no kernel cached in {} (run scripts/setup)",
            cache.display()
        )
    })
}

/// The guest command line of `storm` (`NAME OPTIONS...`): the binary's guest path, the guest's
/// engine and policy, and for the exec storm the copied `/bin/true` unless `--program` is
/// given.
fn guest_command(storm: &str) -> anyhow::Result<String> {
    let mut words = storm.split_whitespace();
    let name = words.next().context("an empty --storm")?;
    if !STORM_BINARIES.contains(&name) {
        bail!(
            "unknown storm {name:?}: one of {}",
            STORM_BINARIES.join(", ")
        );
    }
    let options: Vec<&str> = words.collect();
    if let Some(bad) = options.iter().find(|o| {
        o.starts_with("--enforcer") || o.starts_with("--policy") || o.starts_with("--perf")
    }) {
        bail!("--storm {storm:?}: {bad} is set by vm_storm (profiles: vm_storm --perf)");
    }
    let mut command = vec![
        format!("{GUEST_BENCH_DIR}/{name}"),
        "--enforcer".to_owned(),
        layout::ENFORCER.to_owned(),
        "--policy".to_owned(),
        GUEST_POLICY.to_owned(),
    ];
    let sets_program = |o: &&str| *o == "--program" || o.starts_with("--program=");
    if name == "exec_storm" && !options.iter().any(sets_program) {
        command.extend(["--program".to_owned(), format!("{GUEST_BENCH_DIR}/true")]);
    }
    command.extend(options.iter().map(|o| init_script::shell_quote(o)));
    Ok(command.join(" "))
}

/// The guest's `/bench.sh`: the loopback interface brought up (the network storms use it), the
/// `modules` loaded, each command between its console markers, then the engine's tier
/// from the last storm's audit log; with `profile` (a sampling period), each command with
/// `--perf-record` and the two flat profiles after it (with the engine, then without).
fn bench_script(commands: &[String], modules: &[String], profile: Option<u64>) -> String {
    let mut s = String::from("#!/bin/busybox sh\ncd /tmp\n/bin/busybox ip link set lo up\n");
    for module in modules {
        s.push_str(&format!("/bin/busybox insmod {module}\n"));
    }
    for (index, command) in commands.iter().enumerate() {
        s.push_str(&format!("echo \"{BEGIN} {index}\"\n"));
        let data = format!("/tmp/perf-{index}.data");
        match profile {
            Some(period) => s.push_str(&format!(
                "{command} --perf-record {data} --perf-period {period} 2>&1\n"
            )),
            None => s.push_str(&format!("{command} 2>&1\n")),
        }
        s.push_str(&format!(
            "rc=$?\ngrep -o '\"kernel_tier\":\"[a-z]*\"' {GUEST_AUDIT} | head -n 1\n"
        ));
        if profile.is_some() {
            for (marker, file) in [
                (PROFILE_WITH, data.clone()),
                (PROFILE_WITHOUT, format!("{data}.without")),
            ] {
                s.push_str(&format!(
                    "echo {marker}\n{GUEST_PERF} report -i {file} --stdio --no-children \
                     --show-nr-samples --sort comm,sym 2>/dev/null | grep -v '^$'\n"
                ));
            }
        }
        s.push_str(&format!("echo \"{END} {index} $rc\"\n"));
    }
    s
}

/// The lines storm `index` printed and its exit status, or `None` without its end marker.
fn storm_output(console: &str, index: usize) -> Option<(Vec<String>, i32)> {
    let begin = format!("{BEGIN} {index}");
    let end = format!("{END} {index} ");
    let mut lines = Vec::new();
    let mut inside = false;
    for line in console.lines() {
        let line = line.trim_end_matches('\r');
        if line == begin {
            inside = true;
        } else if let Some(rc) = line.strip_prefix(&end).filter(|_| inside) {
            return Some((lines, rc.trim().parse().unwrap_or(-1)));
        } else if inside {
            lines.push(line.to_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_storm_runs_with_the_guest_engine_policy_and_program() {
        let command = guest_command("exec_storm --iterations 10").unwrap();
        assert_eq!(
            command,
            "/opt/bench/exec_storm --enforcer /bin/enforcer --policy \
             /etc/enforcer/bench-policy --program /opt/bench/true --iterations 10"
        );
        let own = guest_command("exec_storm --program-stats --program=/bin/true").unwrap();
        assert!(!own.contains("/opt/bench/true"), "{own}");
        let stats = guest_command("exec_storm --program-stats").unwrap();
        assert!(stats.contains("--program /opt/bench/true"), "{stats}");
        let open = guest_command("open_storm --access write").unwrap();
        assert!(!open.contains("--program"), "{open}");
        assert!(guest_command("exec_storm --policy x").is_err());
        assert!(guest_command("exec_storm --perf-record /tmp/p").is_err());
        assert!(guest_command("rm -rf /").is_err());
        assert!(guest_command("  ").is_err());
    }

    #[test]
    fn each_storm_output_is_cut_at_its_markers() {
        let console = "boot\nVMBENCH-BEGIN 0\nround 0\r\nratio 1.0\nVMBENCH-END 0 0\n\
                       VMBENCH-BEGIN 1\nhalf\n";
        let (lines, rc) = storm_output(console, 0).unwrap();
        assert_eq!(lines, ["round 0", "ratio 1.0"]);
        assert_eq!(rc, 0);
        assert_eq!(storm_output(console, 1), None);
        let failed = "VMBENCH-BEGIN 0\nVMBENCH-END 0 2\n";
        assert_eq!(storm_output(failed, 0), Some((vec![], 2)));
    }
}
