//! Detection-to-kill latency of the stratum path: a victim process connects to a local
//! listener and sends a miner's first stratum message; the engine (block mode, default policy)
//! kills it. The latency is measured between two kernel timestamps of the audit log, so the
//! harness's own scheduling does not enter it: the payload record (the send, taken in the
//! send hook) and the victim's exit record (`sched_process_exit`, the kill taking effect).
//!
//! - `v1` (stratum `mining.subscribe`): decided in the kernel, SIGKILL from the hook;
//! - `monero` (CryptoNote `login`): decided in userspace (the kernel cannot tell an xmrig
//!   login from an ordinary JSON-RPC `login`), killed through the pidfd path.
//!
//! `sudo target/release/kill_latency --iterations 50`. Needs root. The victims are this
//! binary re-executed with `--victim ADDR DIALECT`.

use std::{
    collections::HashMap,
    io::Write as _,
    net::{SocketAddr, TcpListener, TcpStream},
    os::unix::process::ExitStatusExt as _,
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{Context as _, bail};
use clap::Parser;
use enforcer_benches::{EngineSpec, percentile, start_engine, stop_engine};
use enforcer_integration::stratum::Dialect;
use serde_json::Value;

/// Stratum detection-to-kill latency.
#[derive(Debug, Parser)]
struct Args {
    /// The engine and its policy (it must kill both dialects).
    #[command(flatten)]
    engine: EngineSpec,
    /// Victims per dialect (1..=1000).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
    iterations: u32,
    /// Internal: run as a victim that sends DIALECT's first message to ADDR, then waits.
    #[arg(long, num_args = 2, value_names = ["ADDR", "DIALECT"])]
    victim: Option<Vec<String>>,
}

/// How long a victim waits to be killed before it exits on its own (a failed kill).
const VICTIM_WAIT: Duration = Duration::from_secs(5);

fn victim(addr: &str, dialect: &str) -> anyhow::Result<()> {
    let dialect = <Dialect as clap::ValueEnum>::from_str(dialect, true)
        .map_err(|e| anyhow::anyhow!("dialect {dialect}: {e}"))?;
    let addr: SocketAddr = addr.parse().context("victim address")?;
    let mut stream = TcpStream::connect(addr).context("connect")?;
    stream.write_all(dialect.message()).context("send")?;
    std::thread::sleep(VICTIM_WAIT);
    Ok(())
}

/// Microseconds since midnight of an RFC 3339 UTC time `YYYY-MM-DDTHH:MM:SS.ffffffZ` (the
/// audit log's `ts`); the runs are seconds long, so the day is left out.
fn micros_of_day(ts: &str) -> Option<i64> {
    let time = ts.split_once('T')?.1.strip_suffix('Z')?;
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut parts = hms.split(':').map(str::parse::<i64>);
    let (h, m, s) = (
        parts.next()?.ok()?,
        parts.next()?.ok()?,
        parts.next()?.ok()?,
    );
    let frac: String = frac.chars().chain(std::iter::repeat('0')).take(6).collect();
    Some(((h * 60 + m) * 60 + s) * 1_000_000 + frac.parse::<i64>().ok()?)
}

/// Per victim pid: (send time, exit time), both kernel timestamps, from the audit log.
fn kernel_times(audit: &str) -> HashMap<u64, (Option<i64>, Option<i64>)> {
    let mut times: HashMap<u64, (Option<i64>, Option<i64>)> = HashMap::new();
    for line in audit.lines() {
        let Ok(record) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if record["type"] != "event" {
            continue;
        }
        let event = &record["event"];
        let Some(pid) = event["process"]["pid"].as_u64() else {
            continue;
        };
        let ts = event["ts"].as_str().and_then(micros_of_day);
        let entry = times.entry(pid).or_default();
        match event["kind"].as_str() {
            Some("payload") => entry.0 = entry.0.or(ts),
            Some("exit") if event["exit"]["signal"] == libc::SIGKILL => entry.1 = ts,
            _ => {}
        }
    }
    times
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(v) = &args.victim {
        let [addr, dialect] = v.as_slice() else {
            bail!("--victim ADDR DIALECT");
        };
        return victim(addr, dialect);
    }
    let listener = TcpListener::bind("127.0.0.1:0").context("bind")?;
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        // Hold every connection until its victim is gone.
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let spec = args.engine.clone();
    let audit_path = std::env::temp_dir().join("enforcer-kill-latency.jsonl");
    let engine = start_engine(&spec, &audit_path)?;
    let me = std::env::current_exe()?;
    let mut victims: Vec<(&str, u64)> = Vec::new();
    let mut survivors = 0;
    for dialect in ["v1", "monero"] {
        for _ in 0..args.iterations {
            let mut child = Command::new(&me)
                .args(["--victim", &addr.to_string(), dialect])
                .stdin(Stdio::null())
                .spawn()
                .context("spawn victim")?;
            let pid = u64::from(child.id());
            let status = child.wait()?;
            if status.signal() != Some(libc::SIGKILL) {
                survivors += 1;
            }
            victims.push((dialect, pid));
        }
    }
    // Let the daemon write the last exit records.
    std::thread::sleep(Duration::from_millis(500));
    stop_engine(engine)?;
    let times = kernel_times(&std::fs::read_to_string(&audit_path)?);
    println!(
        "kill_latency: {} victims per dialect, policy {}",
        args.iterations,
        args.engine.policy.display()
    );
    for dialect in ["v1", "monero"] {
        let mut lat: Vec<Duration> = victims
            .iter()
            .filter(|(d, _)| *d == dialect)
            .filter_map(|(_, pid)| match times.get(pid) {
                Some((Some(sent), Some(exited))) if exited >= sent => {
                    Some(Duration::from_micros(u64::try_from(exited - sent).ok()?))
                }
                _ => None,
            })
            .collect();
        lat.sort();
        let us = |q| percentile(&lat, q).as_secs_f64() * 1e6;
        println!(
            "{dialect}: {} measured; send -> exit: min {:.0} us, p50 {:.0} us, p90 {:.0} us, max {:.0} us",
            lat.len(),
            us(0),
            us(500),
            us(900),
            us(1000)
        );
    }
    println!("victims not killed: {survivors}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::micros_of_day;

    #[test]
    fn parses_audit_times() {
        assert_eq!(
            micros_of_day("2026-11-28T13:34:20.113444Z"),
            Some(((13 * 60 + 34) * 60 + 20) * 1_000_000 + 113_444)
        );
        assert_eq!(micros_of_day("2026-11-28T00:00:01.5Z"), Some(1_500_000));
        assert_eq!(micros_of_day("garbage"), None);
    }
}
