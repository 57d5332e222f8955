//! Whole-system exec-storm benchmark: fork+exec of /bin/true, thousands of times, with the
//! engine attached (block mode) and without it, alternating rounds, reporting the throughput
//! ratio and the p50/p99 exec latency delta.
//!
//! `cargo run --release -p enforcer-benches --bin exec_storm -- --enforcer target/release/enforcer`
//! Needs root (the engine loads BPF programs).

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use clap::Parser;

/// Exec storm with and without the engine.
#[derive(Debug, Parser)]
struct Args {
    /// The engine binary.
    #[arg(long, default_value = "target/release/enforcer")]
    enforcer: PathBuf,
    /// Policy the engine runs (block mode).
    #[arg(long, default_value = "benches/policies/exec-storm.yaml")]
    policy: PathBuf,
    /// Execs per round.
    #[arg(long, default_value_t = 3000)]
    iterations: usize,
    /// Rounds per side (with/without), alternating.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// The program to exec.
    #[arg(long, default_value = "/bin/true")]
    program: PathBuf,
}

struct Round {
    per_sec: f64,
    latencies: Vec<Duration>,
}

fn storm(program: &PathBuf, iterations: usize) -> anyhow::Result<Round> {
    let mut latencies = Vec::with_capacity(iterations);
    let start = Instant::now();
    for _ in 0..iterations {
        let t = Instant::now();
        let status = Command::new(program).status().context("exec")?;
        latencies.push(t.elapsed());
        if !status.success() {
            bail!("{} failed: {status}", program.display());
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    Ok(Round {
        per_sec: iterations as f64 / elapsed,
        latencies,
    })
}

fn start_engine(args: &Args, audit: &PathBuf) -> anyhow::Result<Child> {
    let _ = std::fs::remove_file(audit);
    let child = Command::new(&args.enforcer)
        .args(["run", "--quiet", "--mode", "block", "--policy"])
        .arg(&args.policy)
        .arg("--audit-log")
        .arg(audit)
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

fn stop_engine(mut child: Child) -> anyhow::Result<()> {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id())?);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)?;
    let status = child.wait()?;
    if !status.success() {
        bail!("engine exit status {status}");
    }
    Ok(())
}

/// The `per_mille`/1000 quantile of sorted latencies (nearest rank).
fn percentile(sorted: &[Duration], per_mille: usize) -> Duration {
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

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let audit = std::env::temp_dir().join("enforcer-exec-storm-audit.jsonl");
    // Warm-up: page cache and fork paths.
    storm(&args.program, args.iterations / 10 + 1)?;
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for round in 0..args.rounds {
        // Alternate which side goes first, so a drift of the machine hits both sides alike.
        let with_engine = |args: &Args| -> anyhow::Result<Round> {
            let engine = start_engine(args, &audit)?;
            let on = storm(&args.program, args.iterations);
            stop_engine(engine)?;
            on
        };
        let (base, on) = if round % 2 == 0 {
            let base = storm(&args.program, args.iterations)?;
            (base, with_engine(&args)?)
        } else {
            let on = with_engine(&args)?;
            (storm(&args.program, args.iterations)?, on)
        };
        eprintln!(
            "round {round}: without {:.0}/s, with {:.0}/s",
            base.per_sec, on.per_sec
        );
        without.push(base);
        with.push(on);
    }
    let mut ratios: Vec<f64> = with
        .iter()
        .zip(&without)
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
    let (lw, lb) = (all(&with), all(&without));
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let mut with_rate: Vec<f64> = with.iter().map(|r| r.per_sec).collect();
    let mut without_rate: Vec<f64> = without.iter().map(|r| r.per_sec).collect();
    println!(
        "exec storm: {} execs x {} rounds per side, alternating",
        args.iterations, args.rounds
    );
    println!(
        "throughput without engine (median): {:.0} execs/s",
        median(&mut without_rate)
    );
    println!(
        "throughput with engine    (median): {:.0} execs/s",
        median(&mut with_rate)
    );
    println!(
        "ratio with/without (median of per-round ratios): {:.3}",
        median(&mut ratios)
    );
    println!(
        "latency p50: without {:.1} us, with {:.1} us, delta {:+.1} us",
        us(percentile(&lb, 500)),
        us(percentile(&lw, 500)),
        us(percentile(&lw, 500)) - us(percentile(&lb, 500))
    );
    println!(
        "latency p99: without {:.1} us, with {:.1} us, delta {:+.1} us",
        us(percentile(&lb, 990)),
        us(percentile(&lw, 990)),
        us(percentile(&lw, 990)) - us(percentile(&lb, 990))
    );
    Ok(())
}
