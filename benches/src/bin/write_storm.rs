//! Whole-system write-storm benchmark for what the engine puts on sends: the signal tier's
//! `cgroup_skb/egress` program (every packet a socket sends; the send tracepoints, which ran on
//! every `write(2)` of the host, without cgroup v2) and the lsm tier's `socket_sendmsg`. Many
//! small writes with and without the engine, alternating rounds, reporting the ratio and the
//! per-write latency delta.
//!
//! `--kind file`: 64-byte writes to /dev/null (the common case: one 8-byte user read, no `{`).
//! `--kind json-socket`: JSON-RPC lines (`{"id":1,"method":"eth_blockNumber",...}`, not in the
//! plan) written to a connected UNIX socket pair: the full path (socket check, 128-byte read,
//! method search, plan look-up, record).
//!
//! `--kind tcp`: 64-byte writes (no `{`) on a loopback TCP connection (`TCP_NODELAY`, so one
//! segment each), read back on the other end: a socket send the classifier drops after its
//! first bytes, plus the egress and ingress programs' per-packet parsing.
//! `--kind json-tcp`: the JSON-RPC line of `json-socket` on a loopback TCP connection: the
//! egress program's full path (method search, plan look-up, record) on every segment.
//!
//! `--kind getppid`: a syscall that is neither write nor sendto: what every other syscall pays
//! once a syscall tracepoint is enabled (the kernel then sends every syscall through its
//! tracing slow path).
//!
//! `cargo run --release -p enforcer-benches --bin write_storm -- --kind file`. Needs root.

use std::{
    fs::OpenOptions,
    io::{Read as _, Write as _},
    net::{TcpListener, TcpStream},
    os::unix::net::UnixStream,
};

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use enforcer_benches::{EngineSpec, Round, alternate, report};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Kind {
    File,
    JsonSocket,
    Tcp,
    JsonTcp,
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
        Kind::Tcp | Kind::JsonTcp => {
            let (mut tx, mut rx) = tcp_pair()?;
            let line: &[u8] = if matches!(args.kind, Kind::Tcp) {
                &[b'x'; 64]
            } else {
                JSON_LINE
            };
            let mut sink = vec![0u8; line.len()];
            alternate(&spec, args.rounds, || {
                Round::measure(args.iterations, || {
                    tx.write_all(line)?;
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

/// A connected loopback TCP pair (sender with `TCP_NODELAY`, receiver).
fn tcp_pair() -> anyhow::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind("127.0.0.1:0").context("bind")?;
    let tx = TcpStream::connect(listener.local_addr()?).context("connect")?;
    tx.set_nodelay(true).context("TCP_NODELAY")?;
    let (rx, _) = listener.accept().context("accept")?;
    Ok((tx, rx))
}
