//! Whole-system memory soak: the daemon's resident memory while the host starts and ends a
//! long run of short-lived processes, each a distinct incarnation the process cache learns
//! (its executable, arguments and parents) and must bound. Reports the daemon's resident set
//! (`VmRSS`) and peak (`VmHWM`) every `--sample-every` processes, and how much it grew over
//! the second half of the run (once the cache holds as many records as it may, it should
//! not).
//!
//! `sudo target/release/memory_soak --processes 200000 --arg-bytes 4000`
//! Needs root (the engine loads BPF programs).

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{Context as _, bail};
use clap::Parser;
use enforcer_benches::{EngineSpec, start_engine, stop_engine};

/// The daemon's memory over many short-lived processes.
#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    engine: EngineSpec,
    /// Processes started and ended (one after another), after the engine has started.
    #[arg(long, default_value_t = 200_000)]
    processes: usize,
    /// Copies of the program under distinct names that the processes cycle through.
    #[arg(long, default_value_t = 50)]
    names: usize,
    /// Bytes of arguments each process gets (four arguments of a quarter each, the first
    /// made unique by the process's number).
    #[arg(long, default_value_t = 1000)]
    arg_bytes: usize,
    /// A sample of the daemon's memory every this many processes.
    #[arg(long, default_value_t = 10_000)]
    sample_every: usize,
    /// The program copied and executed.
    #[arg(long, default_value = "/bin/true")]
    program: PathBuf,
}

/// The daemon's resident set and its peak, in KiB (`/proc/<pid>/status`).
fn memory_kib(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("read /proc/{pid}/status"))?;
    let field = |name: &str| -> anyhow::Result<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .with_context(|| format!("no {name} in /proc/{pid}/status"))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// `names` copies of `program` in `dir`, named `soak-0` ...
fn copies(program: &Path, dir: &Path, names: usize) -> anyhow::Result<Vec<PathBuf>> {
    (0..names.max(1))
        .map(|n| {
            let path = dir.join(format!("soak-{n}"));
            std::fs::copy(program, &path)
                .with_context(|| format!("copy {} to {}", program.display(), path.display()))?;
            Ok(path)
        })
        .collect()
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir().context("temporary directory")?;
    let programs = copies(&args.program, dir.path(), args.names)?;
    let quarter = "a".repeat(args.arg_bytes / 4);
    let engine = start_engine(&args.engine, &dir.path().join("audit.jsonl"))?;
    let pid = engine.id();
    let started = Instant::now();
    let mut samples = vec![(0, memory_kib(pid)?)];
    println!(
        "memory soak: {} processes, {} names, {} bytes of arguments each, engine policy {}",
        args.processes,
        programs.len(),
        args.arg_bytes,
        args.engine.policy.display()
    );
    println!("processes  rss_mib  peak_mib  seconds");
    let print = |n: usize, (rss, hwm): (u64, u64)| {
        println!(
            "{n:>9}  {:>7.1}  {:>8.1}  {:>7.1}",
            rss as f64 / 1024.0,
            hwm as f64 / 1024.0,
            started.elapsed().as_secs_f64()
        );
    };
    print(0, samples[0].1);
    for n in 1..=args.processes {
        let program = &programs[n % programs.len()];
        let status = Command::new(program)
            .arg(format!("{n}{quarter}"))
            .args([&quarter, &quarter, &quarter])
            .status()
            .with_context(|| format!("run {}", program.display()))?;
        if !status.success() {
            bail!("{} failed: {status}", program.display());
        }
        if n % args.sample_every.max(1) == 0 || n == args.processes {
            let memory = memory_kib(pid)?;
            print(n, memory);
            samples.push((n, memory));
        }
    }
    stop_engine(engine)?;
    // Growth over the second half: the last sample against the one at the half-way point
    // (the first samples include the start's peak: the kernel's BTF, the verifier's logs).
    let half = args.processes / 2;
    let at_half = samples.iter().rev().find(|(n, _)| *n <= half);
    if let (Some((n_half, (rss_half, _))), Some((_, (last, peak)))) = (at_half, samples.last()) {
        println!(
            "second half: resident {:.1} MiB at {n_half} processes, {:.1} MiB at the end ({:+.1}); peak {:.1} MiB",
            *rss_half as f64 / 1024.0,
            *last as f64 / 1024.0,
            (*last as f64 - *rss_half as f64) / 1024.0,
            *peak as f64 / 1024.0
        );
    }
    Ok(())
}
