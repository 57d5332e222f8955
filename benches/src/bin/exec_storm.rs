//! Whole-system exec-storm benchmark: fork+exec of /bin/true, thousands of times, with the
//! engine attached (block mode) and without it, alternating rounds, reporting the throughput
//! ratio and the p50/p99 exec latency delta.
//!
//! `cargo run --release -p enforcer-benches --bin exec_storm -- --enforcer target/release/enforcer`
//! Needs root (the engine loads BPF programs).

use std::{path::PathBuf, process::Command};

use anyhow::{Context as _, bail};
use clap::Parser;
use enforcer_benches::{EngineSpec, Round, alternate, report};

/// Exec storm with and without the engine.
#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    engine: EngineSpec,
    /// Execs per round.
    #[arg(long, default_value_t = 3000)]
    iterations: usize,
    /// Rounds per side (with/without), alternating.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// The program to exec.
    #[arg(long, default_value = "/bin/true")]
    program: PathBuf,
    /// An argument to exec the program with (repeat for several, in order; `--arg=--x=1` or
    /// `--arg --x=1`): the kernel's argument search walks them.
    #[arg(long = "arg", allow_hyphen_values = true)]
    program_args: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let exec = || -> anyhow::Result<()> {
        let status = Command::new(&args.program)
            .args(&args.program_args)
            .status()
            .context("exec")?;
        if !status.success() {
            bail!("{} failed: {status}", args.program.display());
        }
        Ok(())
    };
    Round::measure(args.iterations / 10 + 1, exec)?; // warm-up
    let (without, with) = alternate(&args.engine, args.rounds, || {
        Round::measure(args.iterations, exec)
    })?;
    report(
        &format!(
            "exec storm ({} execs of {}{} per round)",
            args.iterations,
            args.program.display(),
            if args.program_args.is_empty() {
                String::new()
            } else {
                format!(" with {} arguments", args.program_args.len())
            }
        ),
        &without,
        &with,
    );
    Ok(())
}
