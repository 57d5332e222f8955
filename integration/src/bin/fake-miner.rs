//! Fake miner fixture (catalog F17, with F9/F10; N3 with `--spin` alone): behaves like a CPU
//! miner without mining anything, and never contacts anything but loopback.
//!
//! ```text
//! fake-miner [--spin-threads N|all] [--spin-secs S]
//!            [--resolve NAME --dns IP:PORT [--dns-client PATH]]
//!            [--stratum IP:PORT [--dialect v1|ethereum|monero|jsonrpc]]
//!            [--touch-hugepages] [-- MINER_ARGS...]
//! ```
//!
//! - `--spin-threads N|all` (default `all`: one per online CPU, at most 256) busy-loop threads
//!   for `--spin-secs S` (default 10, at most 3600).
//! - `--resolve NAME --dns IP:PORT`: once the spinners run, one DNS lookup of NAME at the
//!   (stub) resolver, made by a `dns-client` child (`--dns-client PATH`, default the
//!   `dns-client` next to this binary; `--via sendto`), as a miner that runs a helper would.
//!   The address must be loopback.
//! - `--stratum IP:PORT`: then a TCP connect to the (mock) pool and the first message of
//!   `--dialect` (default `v1`), written with `write(2)` (the code `stratum-client` uses). The
//!   address must be loopback.
//! - `-- MINER_ARGS...`: ignored, so the command line can look like a real miner's
//!   (`--url=stratum+ssl://... --cpu-priority=0`).
//! - `--touch-hugepages`: then opens `/proc/sys/vm/nr_hugepages` for writing and writes back
//!   the value it holds (no change), best effort.
//!
//! Output, one line per step, flushed: `SPINNING <threads> <secs>`, `RESOLVED <dns-client
//! outcome JSON>` or `RESOLVE_FAILED <reason>`, `STRATUM_SENT <bytes>` or `STRATUM_FAILED
//! <reason>`, `HUGEPAGES_TOUCHED <value>` or `HUGEPAGES_FAILED <reason>`, `DONE` when the
//! spinners stop. Exit 0 (a failed step is reported, not fatal), 2 on bad usage (a
//! non-loopback address too). Killed by the engine, it prints nothing more.

use std::{
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    os::fd::AsRawFd as _,
    path::PathBuf,
    process::ExitCode,
    time::{Duration, Instant},
};

use enforcer_integration::{
    dns_fixture::dns_query,
    stratum::{Dialect, WriteCall, describe, send_all},
};

/// Most spinner threads.
const MAX_THREADS: usize = 256;
/// Longest spin.
const MAX_SECS: u64 = 3600;
/// Longest wait for the TCP handshake with the pool.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The huge-page control touched.
const NR_HUGEPAGES: &str = "/proc/sys/vm/nr_hugepages";

/// A CPU spinner that can also resolve a pool, speak stratum and touch huge pages.
#[derive(Debug, clap::Parser)]
struct Args {
    /// Spinner threads: a number (1..=256) or `all` (one per online CPU).
    #[arg(long, default_value = "all", value_parser = threads)]
    spin_threads: usize,
    /// How long the spinners run, in seconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=MAX_SECS))]
    spin_secs: u64,
    /// A name to look up at `--dns` (a pool name).
    #[arg(long, requires = "dns")]
    resolve: Option<String>,
    /// The (stub) resolver, a loopback IP:PORT.
    #[arg(long, value_parser = loopback)]
    dns: Option<SocketAddr>,
    /// The DNS client fixture that makes the lookup; default `dns-client` next to this binary.
    #[arg(long)]
    dns_client: Option<PathBuf>,
    /// A (mock) pool to send the first stratum message to, a loopback IP:PORT.
    #[arg(long, value_parser = loopback)]
    stratum: Option<SocketAddr>,
    /// The stratum dialect.
    #[arg(long, value_enum, default_value = "v1")]
    dialect: Dialect,
    /// Open /proc/sys/vm/nr_hugepages for writing and write its value back.
    #[arg(long)]
    touch_hugepages: bool,
    /// Arguments after `--`, ignored: a real miner's command line (pool URL, wallet, flags)
    /// for the rules that read `exec.args`.
    #[arg(last = true)]
    miner_args: Vec<String>,
}

/// `all` or 1..=256.
fn threads(value: &str) -> Result<usize, String> {
    if value == "all" {
        return Ok(std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(MAX_THREADS));
    }
    match value.parse::<usize>() {
        Ok(n) if (1..=MAX_THREADS).contains(&n) => Ok(n),
        _ => Err(format!("{value:?} is not `all` or 1..={MAX_THREADS}")),
    }
}

/// A loopback socket address.
fn loopback(value: &str) -> Result<SocketAddr, String> {
    let addr: SocketAddr = value.parse().map_err(|e| format!("{value:?}: {e}"))?;
    if addr.ip().is_loopback() {
        Ok(addr)
    } else {
        Err(format!("{addr} is not a loopback address"))
    }
}

/// Prints one line and flushes it (a closed stdout is ignored).
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Busy-loops until `until`.
fn spin(until: Instant) {
    let mut x: u64 = 1;
    while Instant::now() < until {
        for _ in 0..100_000 {
            x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
        }
    }
}

fn resolve(name: &str, server: SocketAddr, client: Option<PathBuf>) -> String {
    let client = client.or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|exe| Some(exe.parent()?.join("dns-client")))
    });
    let Some(client) = client else {
        return "RESOLVE_FAILED no dns-client next to this binary".to_owned();
    };
    match dns_query(&client, server, name, "sendto") {
        Ok(run) if run.status.success() => format!("RESOLVED {}", run.outcome),
        Ok(run) => format!("RESOLVE_FAILED {} {}", run.status, run.outcome),
        Err(err) => format!("RESOLVE_FAILED {err}"),
    }
}

fn stratum(pool: SocketAddr, dialect: Dialect) -> String {
    let stream = match TcpStream::connect_timeout(&pool, CONNECT_TIMEOUT) {
        Ok(stream) => stream,
        Err(err) => return format!("STRATUM_FAILED connect {pool} {}", describe(&err)),
    };
    let _ = stream.set_write_timeout(Some(CONNECT_TIMEOUT));
    match send_all(stream.as_raw_fd(), dialect.message(), WriteCall::Write) {
        Ok(n) => format!("STRATUM_SENT {n}"),
        Err(err) => format!("STRATUM_FAILED write {}", describe(&err)),
    }
}

fn touch_hugepages() -> String {
    let touch = || -> std::io::Result<String> {
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(NR_HUGEPAGES)?;
        let mut value = String::new();
        (&mut file).take(64).read_to_string(&mut value)?;
        let value = value.trim().to_owned();
        file.write_all(value.as_bytes())?;
        Ok(value)
    };
    match touch() {
        Ok(value) => format!("HUGEPAGES_TOUCHED {value}"),
        Err(err) => format!("HUGEPAGES_FAILED {NR_HUGEPAGES}: {}", describe(&err)),
    }
}

fn main() -> ExitCode {
    let args = <Args as clap::Parser>::parse();
    if args.resolve.is_some() != args.dns.is_some() {
        eprintln!("--resolve and --dns go together");
        return ExitCode::from(2);
    }
    let until = Instant::now() + Duration::from_secs(args.spin_secs);
    let spinners: Vec<_> = (0..args.spin_threads)
        .map(|_| std::thread::spawn(move || spin(until)))
        .collect();
    say(&format!(
        "SPINNING {} {}",
        args.spin_threads, args.spin_secs
    ));
    if let (Some(name), Some(server)) = (&args.resolve, args.dns) {
        say(&resolve(name, server, args.dns_client.clone()));
    }
    if let Some(pool) = args.stratum {
        say(&stratum(pool, args.dialect));
    }
    if args.touch_hugepages {
        say(&touch_hugepages());
    }
    for s in spinners {
        let _ = s.join();
    }
    say("DONE");
    ExitCode::SUCCESS
}
