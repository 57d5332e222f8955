//! Whole-system network benchmarks for the connect and DNS paths, against servers in this
//! process on loopback, with and without the engine, alternating rounds, reporting the ratio
//! and the per-operation latency delta.
//!
//! `--kind connect`: TCP connect + close to a local listener (an accept thread drains it): the
//! `sys_enter_connect` tracepoint (signal tier) or LSM `socket_connect` (lsm tier): address
//! read, plan look-up (LPM trie), one connect record per call.
//!
//! `--kind dns`: a DNS query for a name that is not in the plan, sent with `send` on a
//! connected UDP socket to a local responder thread that echoes it back as the answer: the
//! send tracepoint's query path (header check, 512-byte copy, name parse, one look-up per
//! label, one record per query).
//!
//! `cargo run --release -p enforcer-benches --bin net_storm -- --kind connect`. Needs root.

use std::{
    net::{TcpListener, TcpStream, UdpSocket},
    time::Duration,
};

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use enforcer_benches::{EngineSpec, Round, alternate, report};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Kind {
    Connect,
    Dns,
}

/// Connect or DNS storm with and without the engine.
#[derive(Debug, Parser)]
struct Args {
    /// The engine and its policy.
    #[command(flatten)]
    engine: EngineSpec,
    /// What to storm.
    #[arg(long, value_enum, default_value_t = Kind::Connect)]
    kind: Kind,
    /// Operations per round.
    #[arg(long, default_value_t = 20_000)]
    iterations: usize,
    /// Rounds per side (with/without), alternating.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
}

/// A query for `www.example.org` type A with the RD bit, as a stub resolver sends it.
const QUERY: &[u8] = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03www\x07example\x03org\x00\x00\x01\x00\x01";

fn connect_storm(spec: &EngineSpec, args: &Args) -> anyhow::Result<(Vec<Round>, Vec<Round>)> {
    let listener = TcpListener::bind("127.0.0.1:0").context("bind")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            drop(stream);
        }
    });
    alternate(spec, args.rounds, || {
        Round::measure(args.iterations, || {
            drop(TcpStream::connect(addr)?);
            Ok(())
        })
    })
}

fn dns_storm(spec: &EngineSpec, args: &Args) -> anyhow::Result<(Vec<Round>, Vec<Round>)> {
    // Port 53 when it is free, so the engine's response path (cgroup ingress copy, decode,
    // attribution) is in the measurement; any port otherwise (queries only).
    let server = UdpSocket::bind("127.0.0.1:53")
        .or_else(|_| UdpSocket::bind("127.0.0.1:0"))
        .context("bind")?;
    let server_addr = server.local_addr()?;
    eprintln!("DNS responder on {server_addr} (responses watched: port 53 only)");
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = server.recv_from(&mut buf) {
            if let Some(byte) = buf.get_mut(2) {
                *byte |= 0x80; // QR: a response
            }
            let _ = server.send_to(&buf[..n], from);
        }
    });
    let client = UdpSocket::bind("127.0.0.1:0").context("bind")?;
    client.connect(server_addr)?;
    client.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut answer = [0u8; 512];
    alternate(spec, args.rounds, || {
        Round::measure(args.iterations, || {
            client.send(QUERY)?;
            client.recv(&mut answer)?;
            Ok(())
        })
    })
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let spec = args.engine.clone();
    let (without, with) = match args.kind {
        Kind::Connect => connect_storm(&spec, &args)?,
        Kind::Dns => dns_storm(&spec, &args)?,
    };
    report(
        &format!(
            "{:?} storm ({} operations per round)",
            args.kind, args.iterations
        ),
        &without,
        &with,
    );
    Ok(())
}
