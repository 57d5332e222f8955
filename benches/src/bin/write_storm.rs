//! Whole-system write-storm benchmark for the payload tracepoints (`sys_enter_write`,
//! `sys_enter_sendto`), which run on every write on the host: many small writes with and
//! without the engine, alternating rounds, reporting the ratio and the per-write latency delta.
//!
//! `--kind file`: 64-byte writes to /dev/null (the common case: one 8-byte user read, no `{`).
//! `--kind json-socket`: JSON-RPC lines (`{"id":1,"method":"eth_blockNumber",...}`, not in the
//! plan) written to a connected UNIX socket pair: the full path (socket check, 128-byte read,
//! method search, plan look-up, record).
//!
//! `--kind getppid`: a syscall that is neither write nor sendto: what every other syscall pays
//! once a syscall tracepoint is enabled (the kernel then sends every syscall through its
//! tracing slow path).
//!
//! `cargo run --release -p enforcer-benches --bin write_storm -- --kind file`. Needs root.

use std::{
    fs::OpenOptions,
    io::{Read as _, Write as _},
    os::unix::net::UnixStream,
};

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use enforcer_benches::{EngineSpec, Round, alternate, report};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Kind {
    File,
    JsonSocket,
    Getppid,
}

/// Write storm with and without the engine.
#[derive(Debug, Parser)]
struct Args {
    /// The engine and its policy.
    #[command(flatten)]
    engine: EngineSpec,
    /// What to write to.
    #[arg(long, value_enum, default_value_t = Kind::File)]
    kind: Kind,
    /// Writes per round.
    #[arg(long, default_value_t = 200_000)]
    iterations: usize,
    /// Rounds per side (with/without), alternating.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
}

const JSON_LINE: &[u8] = br#"{"id":1,"jsonrpc":"2.0","method":"eth_blockNumber","params":[]}
"#;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let spec = args.engine.clone();
    let (without, with) = match args.kind {
        Kind::File => {
            let mut null = OpenOptions::new()
                .write(true)
                .open("/dev/null")
                .context("/dev/null")?;
            let buf = [b'x'; 64];
            alternate(&spec, args.rounds, || {
                Round::measure(args.iterations, || Ok(null.write_all(&buf)?))
            })?
        }
        Kind::JsonSocket => {
            let (mut tx, mut rx) = UnixStream::pair().context("socketpair")?;
            let mut sink = vec![0u8; JSON_LINE.len()];
            alternate(&spec, args.rounds, || {
                Round::measure(args.iterations, || {
                    tx.write_all(JSON_LINE)?;
                    rx.read_exact(&mut sink)?;
                    Ok(())
                })
            })?
        }
        Kind::Getppid => alternate(&spec, args.rounds, || {
            Round::measure(args.iterations, || {
                std::hint::black_box(nix::unistd::getppid());
                Ok(())
            })
        })?,
    };
    report(
        &format!(
            "write storm ({:?}, {} writes per round)",
            args.kind, args.iterations
        ),
        &without,
        &with,
    );
    Ok(())
}
