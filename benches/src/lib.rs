//! Whole-system benchmark support: run a workload in rounds with and without the engine
//! attached, alternating which side goes first so machine drift hits both alike, and report
//! throughput ratios and latency percentiles. Used by the `exec_storm` and `write_storm`
//! binaries; criterion micro-benchmarks live in `benches/`.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};

/// One round of a workload: its throughput, the latency of each operation, and the CPU time
/// it used.
#[derive(Debug)]
pub struct Round {
    /// Operations per second.
    pub per_sec: f64,
    /// Latency of every operation.
    pub latencies: Vec<Duration>,
    /// CPU time (user and system) per operation of this process and of the children it
    /// reaped during the round: the workload's own processes, including the kernel programs
    /// that ran in their context. Less sensitive than the wall clock to when the machine's
    /// vCPUs are scheduled.
    pub cpu_per_op: Duration,
    /// CPU time per operation of the engine's daemon during the round (its threads'
    /// `schedstat`), on the "with" side.
    pub engine_cpu_per_op: Option<Duration>,
    /// With `--program-stats`, on the "with" side: what each BPF program (by name) ran during
    /// the round.
    pub programs: ProgramStats,
}

/// Run count and run time of BPF programs, summed by program name. The kernel keeps the first
/// 15 bytes of a name: a name cut there gets the low 16 bits of the program's tag (a hash of
/// its instructions) after a `~`, so `tp_sched_process_exec` and `_fork` stay apart.
pub type ProgramStats = BTreeMap<String, (u64, Duration)>;

/// The run counts and times of every BPF program loaded on the host, by name. They only
/// advance while statistics are enabled ([`aya::sys::enable_stats`]).
fn program_stats() -> ProgramStats {
    let mut stats = ProgramStats::new();
    for info in aya::programs::loaded_programs().flatten() {
        let name = match info.name_as_str().unwrap_or("?") {
            cut if cut.len() >= 15 => format!("{cut}~{:04x}", info.tag() & 0xffff),
            whole => whole.to_owned(),
        };
        add_runs(&mut stats, name, info.run_count(), info.run_time());
    }
    stats
}

/// Adds `runs` runs taking `time` to `name`'s entry of `stats`.
fn add_runs(stats: &mut ProgramStats, name: String, runs: u64, time: Duration) {
    let entry = stats.entry(name).or_default();
    entry.0 += runs;
    entry.1 += time;
}

/// What ran between two [`program_stats`] snapshots (programs that did not run are left out).
fn program_stats_since(before: &ProgramStats, after: ProgramStats) -> ProgramStats {
    after
        .into_iter()
        .filter_map(|(name, (count, time))| {
            let (count0, time0) = before.get(&name).copied().unwrap_or_default();
            let runs = count.saturating_sub(count0);
            (runs > 0).then(|| (name, (runs, time.saturating_sub(time0))))
        })
        .collect()
}

/// A `timeval` as a duration (0 for a negative one).
fn duration_of(tv: nix::sys::time::TimeVal) -> Duration {
    let secs = u64::try_from(tv.tv_sec()).unwrap_or(0);
    let micros = u64::try_from(tv.tv_usec()).unwrap_or(0);
    Duration::from_secs(secs) + Duration::from_micros(micros)
}

/// CPU time used so far by this process and its reaped children.
fn own_cpu() -> Duration {
    use nix::sys::resource::{UsageWho, getrusage};
    [UsageWho::RUSAGE_SELF, UsageWho::RUSAGE_CHILDREN]
        .into_iter()
        .filter_map(|who| getrusage(who).ok())
        .map(|u| duration_of(u.user_time()) + duration_of(u.system_time()))
        .sum()
}

/// CPU time used so far by the threads of process `pid` (the first field of each
/// `/proc/<pid>/task/<tid>/schedstat`, in nanoseconds).
pub fn process_cpu(pid: u32) -> Option<Duration> {
    let mut total = 0u64;
    for entry in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let stat = std::fs::read_to_string(entry.ok()?.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

/// `total` divided among `ops` operations.
fn per_op(total: Duration, ops: usize) -> Duration {
    total / u32::try_from(ops.max(1)).unwrap_or(u32::MAX)
}

impl Round {
    /// Times `iterations` calls of `op`.
    pub fn measure(
        iterations: usize,
        mut op: impl FnMut() -> anyhow::Result<()>,
    ) -> anyhow::Result<Self> {
        let mut latencies = Vec::with_capacity(iterations);
        let cpu_before = own_cpu();
        let start = Instant::now();
        for _ in 0..iterations {
            let t = Instant::now();
            op()?;
            latencies.push(t.elapsed());
        }
        let elapsed = start.elapsed().as_secs_f64();
        Ok(Round {
            per_sec: iterations as f64 / elapsed,
            cpu_per_op: per_op(own_cpu().saturating_sub(cpu_before), iterations),
            latencies,
            engine_cpu_per_op: None,
            programs: ProgramStats::new(),
        })
    }
}

/// How to start the engine for the "with" side; also the harnesses' `--enforcer` and
/// `--policy` options (`#[command(flatten)]`).
#[derive(Clone, Debug, clap::Args)]
pub struct EngineSpec {
    /// The engine binary.
    #[arg(long = "enforcer", default_value = "target/release/enforcer")]
    pub binary: PathBuf,
    /// Policy the engine runs (block mode).
    #[arg(long, default_value = "policy/default")]
    pub policy: PathBuf,
    /// Diagnostic: stop the daemon (SIGSTOP) once the engine has started, so the "with" side
    /// measures the kernel programs alone: no ring-buffer wake-up fires (the reader lags) and
    /// the daemon takes no CPU; records past a full ring are dropped. Not a way to run the
    /// engine: with the daemon stopped nothing is evaluated in userspace.
    #[arg(long)]
    pub freeze_daemon: bool,
    /// Seconds to wait before every round, with or without the engine: the engine's start
    /// (the verifier) and stop (freeing its programs) are seconds of CPU, and a round measured
    /// right after them runs slower for reasons that are not the engine's steady cost.
    #[arg(long, default_value_t = 0.0)]
    pub settle: f64,
    /// The engine's `--events`: `all` (every observed event written, the default) or `none`
    /// (only actions and engine records).
    #[arg(long = "engine-events", default_value = "all", value_parser = ["all", "none"])]
    pub events: String,
    /// One more `enforcer run` argument (repeatable), e.g. `--engine-arg=--self-protect`.
    #[arg(long = "engine-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub extra_args: Vec<String>,
    /// Diagnostic: turn the kernel's BPF run-time statistics on during the rounds with the
    /// engine and report each program's runs and run time per operation. The statistics cost
    /// two clock reads per program run, so the ratios of such a run are not the engine's.
    #[arg(long)]
    pub program_stats: bool,
    /// Diagnostic: profile the whole machine with `perf record -a -e cpu-clock` into this file
    /// during each round with the engine (the last such round's profile is kept), after the
    /// engine has started, and into FILE.without during each round without it. Sampling
    /// perturbs the figures.
    #[arg(long, value_name = "FILE")]
    pub perf_record: Option<PathBuf>,
    /// `--perf-record`'s sampling period, in nanoseconds of CPU clock.
    #[arg(long, default_value_t = 20_000)]
    pub perf_period: u64,
}

/// A running `perf record` (see [`EngineSpec::perf_record`]).
struct Profiler(Child);

impl Profiler {
    /// Starts `perf record` of the whole machine into `data`.
    fn start(data: &Path, period: u64) -> anyhow::Result<Self> {
        // The kernel lowers the sample rate when its sampling interrupt looks slow, and under
        // QEMU's emulator every interrupt does: the guest's profile ended with one sample.
        // 0 turns that throttling off for this diagnostic run.
        std::fs::write("/proc/sys/kernel/perf_cpu_time_max_percent", "0")
            .context("turn off perf's sample-rate throttling (perf_cpu_time_max_percent)")?;
        let child = Command::new("perf")
            .args(["record", "-q", "-a", "-e", "cpu-clock", "-c"])
            .arg(period.to_string())
            .arg("-o")
            .arg(data)
            .stdin(Stdio::null())
            .spawn()
            .context("start perf record")?;
        // perf opens its events before it writes the file header.
        let deadline = Instant::now() + Duration::from_secs(30);
        while !data.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(Self(child))
    }

    /// Stops it with SIGINT (perf then writes its file and ends by that signal) and waits.
    fn stop(mut self) -> anyhow::Result<()> {
        use std::os::unix::process::ExitStatusExt as _;
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.0.id())?);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT)?;
        let status = self.0.wait()?;
        if !status.success() && status.signal() != Some(libc::SIGINT) {
            bail!("perf record exit status {status}");
        }
        Ok(())
    }
}

/// Starts the engine of `spec` in block mode with its audit log at `audit` (an old one is
/// removed) and waits for its `engine_start` record.
pub fn start_engine(spec: &EngineSpec, audit: &Path) -> anyhow::Result<Child> {
    let _ = std::fs::remove_file(audit);
    let child = Command::new(&spec.binary)
        .args(["run", "--quiet", "--mode", "block", "--policy"])
        .arg(&spec.policy)
        .arg("--audit-log")
        .arg(audit)
        // A killed benchmark must not leave its policy enforced host-wide.
        .args(["--on-crash", "stop"])
        .args(["--events", spec.events.as_str()])
        .args(&spec.extra_args)
        .stdin(Stdio::null())
        .spawn()
        .context("start enforcer")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if std::fs::read_to_string(audit)
            .unwrap_or_default()
            .contains("\"engine_start\"")
        {
            return Ok(child);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("engine did not start within 30 s")
}

/// Stops an engine with SIGTERM and checks its clean exit.
pub fn stop_engine(mut child: Child) -> anyhow::Result<()> {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id())?);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)?;
    let status = child.wait()?;
    if !status.success() {
        bail!("engine exit status {status}");
    }
    Ok(())
}

/// One round of `workload` with the engine attached.
fn with_engine(
    spec: &EngineSpec,
    audit: &Path,
    workload: &mut impl FnMut() -> anyhow::Result<Round>,
) -> anyhow::Result<Round> {
    let engine = start_engine(spec, audit)?;
    let pid = nix::unistd::Pid::from_raw(i32::try_from(engine.id())?);
    if spec.freeze_daemon {
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP)?;
    }
    let stats_on = if spec.program_stats {
        Some(aya::sys::enable_stats(aya::sys::Stats::RunTime).context("enable BPF statistics")?)
    } else {
        None
    };
    let profiler = match &spec.perf_record {
        Some(data) => {
            let _ = std::fs::remove_file(data);
            Some(Profiler::start(data, spec.perf_period)?)
        }
        None => None,
    };
    // Listing every loaded program costs a few system calls per program: only with stats on.
    let programs_before = stats_on.as_ref().map(|_| program_stats());
    let engine_before = process_cpu(engine.id());
    let on = workload().map(|mut round| {
        if let (Some(before), Some(after)) = (engine_before, process_cpu(engine.id())) {
            round.engine_cpu_per_op =
                Some(per_op(after.saturating_sub(before), round.latencies.len()));
        }
        if let Some(before) = &programs_before {
            round.programs = program_stats_since(before, program_stats());
        }
        round
    });
    drop(stats_on);
    if let Some(profiler) = profiler {
        profiler.stop()?;
    }
    if spec.freeze_daemon {
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT)?;
    }
    stop_engine(engine)?;
    on
}

/// Runs `rounds` rounds of `workload` without and with the engine, alternating the order.
/// Returns (without, with).
pub fn alternate(
    spec: &EngineSpec,
    rounds: usize,
    mut workload: impl FnMut() -> anyhow::Result<Round>,
) -> anyhow::Result<(Vec<Round>, Vec<Round>)> {
    let audit = std::env::temp_dir().join("enforcer-bench-audit.jsonl");
    let (mut without, mut with) = (Vec::new(), Vec::new());
    let settle = Duration::try_from_secs_f64(spec.settle).unwrap_or(Duration::ZERO);
    let mut workload = || {
        std::thread::sleep(settle);
        workload()
    };
    // With `--perf-record FILE`, the rounds without the engine are profiled into FILE.without,
    // so that the two profiles can be compared symbol by symbol.
    let without_data = spec.perf_record.as_ref().map(|data| {
        let mut name = data.clone().into_os_string();
        name.push(".without");
        PathBuf::from(name)
    });
    let without_engine = |workload: &mut dyn FnMut() -> anyhow::Result<Round>| {
        let profiler = match &without_data {
            Some(data) => {
                let _ = std::fs::remove_file(data);
                Some(Profiler::start(data, spec.perf_period)?)
            }
            None => None,
        };
        let base = workload();
        if let Some(profiler) = profiler {
            profiler.stop()?;
        }
        base
    };
    for round in 0..rounds {
        let (base, on) = if round % 2 == 0 {
            let base = without_engine(&mut workload)?;
            (base, with_engine(spec, &audit, &mut workload)?)
        } else {
            let on = with_engine(spec, &audit, &mut workload)?;
            (without_engine(&mut workload)?, on)
        };
        eprintln!(
            "round {round}: without {:.0}/s, with {:.0}/s, ratio {:.3}; CPU per operation \
             without {:?}, with {:?}",
            base.per_sec,
            on.per_sec,
            on.per_sec / base.per_sec,
            base.cpu_per_op,
            on.cpu_per_op
        );
        without.push(base);
        with.push(on);
    }
    Ok((without, with))
}

/// The `per_mille`/1000 quantile of sorted latencies (nearest rank).
pub fn percentile(sorted: &[Duration], per_mille: usize) -> Duration {
    let last = sorted.len().saturating_sub(1);
    sorted
        .get((last * per_mille + 500) / 1000)
        .copied()
        .unwrap_or(Duration::ZERO)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// A distribution-free ~95 % confidence interval of the median of `sorted` values: the order
/// statistics `k` places in from either end, with `k` from the normal approximation of the
/// binomial (`(n - 1.96 sqrt(n)) / 2`). `None` below 6 values, where no such interval exists.
pub fn median_interval(sorted: &[f64]) -> Option<(f64, f64)> {
    let n = sorted.len();
    if n < 6 {
        return None;
    }
    // The largest k with n - 2k >= 1.96 sqrt(n), in integers: (n - 2k)^2 * 10^4 >= 38416 n.
    let holds = |k: usize| {
        let spread = n.saturating_sub(2 * k) as u128;
        spread * spread * 10_000 >= 38_416 * n as u128
    };
    let k = (0..n / 2).take_while(|&k| holds(k)).last()?;
    Some((*sorted.get(k)?, *sorted.get(n - 1 - k)?))
}

/// Prints the median of per-round `ratios` under `label`, with its confidence interval.
fn print_median_ratio(label: &str, ratios: &mut [f64]) {
    println!(
        "{label} (median of per-round ratios): {:.3}",
        median(ratios)
    );
    if let Some((low, high)) = median_interval(ratios) {
        println!("  95% confidence interval of that median: {low:.3} .. {high:.3}");
    } else {
        println!("  (too few rounds for a confidence interval: 6 or more give one)");
    }
}

/// Prints throughput medians, the median per-round ratio and the p50/p99 latency deltas.
pub fn report(what: &str, without: &[Round], with: &[Round]) {
    let mut ratios: Vec<f64> = with
        .iter()
        .zip(without)
        .map(|(w, b)| w.per_sec / b.per_sec)
        .collect();
    let all = |rounds: &[Round]| {
        let mut l: Vec<Duration> = rounds
            .iter()
            .flat_map(|r| r.latencies.iter().copied())
            .collect();
        l.sort();
        l
    };
    let (lw, lb) = (all(with), all(without));
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let mut with_rate: Vec<f64> = with.iter().map(|r| r.per_sec).collect();
    let mut without_rate: Vec<f64> = without.iter().map(|r| r.per_sec).collect();
    println!("{what}: {} rounds per side, alternating", without.len());
    println!(
        "throughput without engine (median): {:.0}/s",
        median(&mut without_rate)
    );
    println!(
        "throughput with engine    (median): {:.0}/s",
        median(&mut with_rate)
    );
    print_median_ratio("ratio with/without", &mut ratios);
    let mut cpu_without: Vec<f64> = without.iter().map(|r| us(r.cpu_per_op)).collect();
    let mut cpu_with: Vec<f64> = with.iter().map(|r| us(r.cpu_per_op)).collect();
    let mut cpu_ratios: Vec<f64> = with
        .iter()
        .zip(without)
        .map(|(w, b)| b.cpu_per_op.as_secs_f64() / w.cpu_per_op.as_secs_f64().max(1e-12))
        .collect();
    println!(
        "workload CPU per operation (median): without {:.2} us, with {:.2} us",
        median(&mut cpu_without),
        median(&mut cpu_with)
    );
    print_median_ratio("CPU ratio without/with", &mut cpu_ratios);
    let mut daemon: Vec<f64> = with
        .iter()
        .filter_map(|r| r.engine_cpu_per_op.map(us))
        .collect();
    if !daemon.is_empty() {
        println!(
            "engine daemon CPU per operation (median): {:.2} us",
            median(&mut daemon)
        );
    }
    report_programs(with);
    for (name, q) in [("p50", 500), ("p99", 990)] {
        let (b, w) = (us(percentile(&lb, q)), us(percentile(&lw, q)));
        println!(
            "latency {name}: without {b:.2} us, with {w:.2} us, delta {:+.2} us",
            w - b
        );
    }
}

/// Prints each BPF program's runs and run time per operation over all `rounds` (nothing when
/// no statistics were taken), most expensive first.
fn report_programs(rounds: &[Round]) {
    let ops: usize = rounds
        .iter()
        .filter(|r| !r.programs.is_empty())
        .map(|r| r.latencies.len())
        .sum();
    let mut total = ProgramStats::new();
    for (name, (runs, time)) in rounds.iter().flat_map(|r| r.programs.iter()) {
        add_runs(&mut total, name.clone(), *runs, *time);
    }
    if ops == 0 || total.is_empty() {
        return;
    }
    let mut rows: Vec<(String, u64, Duration)> =
        total.into_iter().map(|(n, (r, t))| (n, r, t)).collect();
    rows.sort_by_key(|row| std::cmp::Reverse(row.2));
    let all: Duration = rows.iter().map(|r| r.2).sum();
    println!(
        "BPF programs per operation (with statistics on): {:.3} us in all",
        all.as_secs_f64() * 1e6 / ops as f64
    );
    for (name, runs, time) in rows {
        println!(
            "  {name:<21} {:>8.2} runs {:>9.3} us",
            runs as f64 / ops as f64,
            time.as_secs_f64() * 1e6 / ops as f64
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_interval_widens_with_fewer_values() {
        let v: Vec<f64> = (1..=16).map(f64::from).collect();
        // k = floor((16 - 7.84) / 2) = 4: the 5th and 12th values.
        assert_eq!(median_interval(&v), Some((5.0, 12.0)));
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(median_interval(&v), Some((41.0, 60.0)));
        assert_eq!(median_interval(&[1.0; 5]), None);
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        assert_eq!(percentile(&v, 500), Duration::from_micros(51));
        assert_eq!(percentile(&v, 990), Duration::from_micros(99));
        assert_eq!(percentile(&[], 500), Duration::ZERO);
    }
}
