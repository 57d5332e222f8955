//! Host-tier network tests (signal tier: no BPF LSM on the host), with the policy of
//! `fixtures/deny-network.yaml`: a DNS lookup of a pool domain or a sub-domain of it kills the
//! asking process in the kernel, whichever system call sends the query (catalog F9); its
//! excluded documentation site and ordinary names containing "pool" are answered (N4); a
//! connect to the pool address kills the caller; monitor mode only records. Loopback only: a
//! stub resolver and a mock pool in this test, never a real resolver or pool.
//! Needs root; skips loudly otherwise (fails under ENFORCER_REQUIRE_HOST=1, as in CI).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod host;

use std::{
    path::Path,
    process::{Command, Stdio},
    sync::Mutex,
    time::Duration,
};

use enforcer_integration::dns_fixture::{ALL_VIAS, StubDns, dns_query};
use host::{Engine, actions, can_run};

static SERIAL: Mutex<()> = Mutex::new(());

const POLICY: &str = include_str!("../fixtures/deny-network.yaml");
const STUB_DNS: &str = env!("CARGO_BIN_EXE_stub-dns");
const DNS_CLIENT: &str = env!("CARGO_BIN_EXE_dns-client");
const MOCK_POOL: &str = env!("CARGO_BIN_EXE_mock-pool");
const STRATUM_CLIENT: &str = env!("CARGO_BIN_EXE_stratum-client");

const ANSWERS: [&str; 4] = [
    "pool.example-miner.test=127.0.0.77",
    "docs.example-miner.test=127.0.0.1",
    "pool.ntp.org=127.0.0.2",
    "kill.pool.test=127.0.0.77",
];

fn stub(dir: &Path) -> StubDns {
    StubDns::start(
        Path::new(STUB_DNS),
        "127.0.0.1:0",
        &ANSWERS,
        &dir.join("stub.jsonl"),
    )
    .unwrap()
}

fn query(stub: &StubDns, name: &str, via: &str) -> enforcer_integration::dns_fixture::DnsRun {
    dns_query(Path::new(DNS_CLIENT), stub.addr, name, via).unwrap()
}

/// Runs the ordinary JSON-RPC client against a pool at `addr`; returns its exit status.
fn stratum_client(addr: &str) -> std::process::ExitStatus {
    Command::new(STRATUM_CLIENT)
        .args([
            "--connect",
            addr,
            "--dialect",
            "jsonrpc",
            "--write-call",
            "write",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
}

#[test]
fn signal_tier_kills_pool_lookups_and_pool_connects() {
    if !can_run("signal_tier_kills_pool_lookups_and_pool_connects") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let stub = stub(dir.path());
    let mut engine = Engine::start(dir.path(), POLICY, "block");

    for via in ALL_VIAS {
        let run = query(&stub, "pool.example-miner.test", via);
        assert!(run.killed(), "F9 via {via}: want SIGKILL, got {run:?}");
    }
    let run = query(&stub, "A.B.Example-Miner.TEST", "send");
    assert!(run.killed(), "sub-domain, any case: {run:?}");
    let run = query(&stub, "kill.pool.test", "sendto");
    assert!(run.killed(), "exact pool host: {run:?}");
    for (name, want) in [
        ("docs.example-miner.test", "127.0.0.1"),
        ("pool.ntp.org", "127.0.0.2"),
    ] {
        let run = query(&stub, name, "send");
        assert_eq!(
            run.answers(),
            Some(vec![want.to_owned()]),
            "{name} must be answered: {run:?}"
        );
    }

    let pool = Command::new(MOCK_POOL)
        .args([
            "--listen",
            "127.0.0.77:0",
            "--listen",
            "127.0.0.1:0",
            "--record",
        ])
        .arg(dir.path().join("pool.jsonl"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pool = scopeguard(pool);
    let addrs = pool_addrs(&mut pool.0);
    let status = stratum_client(&addrs[0]);
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL),
        "connect to the pool address: {status}"
    );
    assert!(
        stratum_client(&addrs[1]).success(),
        "connect elsewhere passes"
    );

    engine.wait_for(Duration::from_secs(10), "dns event of pool.ntp.org", |r| {
        r["type"] == "event" && r["event"]["dns"]["question"]["name"] == "pool.ntp.org"
    });
    let records = engine.stop();
    let lookups = actions(&records, "kill", Some("pool-lookup-deny"));
    assert_eq!(lookups.len(), ALL_VIAS.len() + 1, "{records:#?}");
    for r in &lookups {
        assert_eq!(r["tier"], "signal");
        assert_eq!(r["event"]["process"]["comm"], "dns-client", "{r:#}");
        assert!(
            r["event"]["dns"]["question"]["name"]
                .as_str()
                .unwrap()
                .ends_with("example-miner.test"),
            "{r:#}"
        );
    }
    let hooks: Vec<&str> = lookups
        .iter()
        .filter_map(|r| r["event"]["hook"].as_str())
        .collect();
    for hook in ["sendto", "sendmsg", "sendmmsg", "write"] {
        assert!(
            hooks.iter().any(|h| h.ends_with(hook)),
            "a kill from sys_enter_{hook}: {hooks:?}"
        );
    }
    assert!(
        lookups
            .iter()
            .any(|r| r["event"]["dns"]["transport"] == "tcp"),
        "the TCP query was seen as TCP"
    );
    assert_eq!(actions(&records, "kill", Some("pool-lookup-kill")).len(), 1);
    let connects = actions(&records, "kill", Some("pool-ip-deny"));
    assert_eq!(connects.len(), 1, "{records:#?}");
    assert_eq!(connects[0]["event"]["connect"]["addr"]["ip"], "127.0.0.77");
    assert!(
        records.iter().all(|r| r["type"] != "action"
            || !matches!(
                r["event"]["dns"]["question"]["name"].as_str(),
                Some("pool.ntp.org" | "docs.example-miner.test")
            )),
        "N4 and the excluded name must not fire: {records:#?}"
    );
}

#[test]
fn monitor_mode_answers_pool_lookups_and_records_would_kill() {
    if !can_run("monitor_mode_answers_pool_lookups_and_records_would_kill") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let stub = stub(dir.path());
    let mut engine = Engine::start(dir.path(), POLICY, "monitor");
    let run = query(&stub, "pool.example-miner.test", "sendmmsg");
    assert_eq!(
        run.answers(),
        Some(vec!["127.0.0.77".to_owned()]),
        "monitor mode must not stop the lookup: {run:?}"
    );
    engine.wait_for(Duration::from_secs(10), "would_kill", |r| {
        r["action"] == "would_kill" && r["rule"] == "pool-lookup-deny"
    });
    let records = engine.stop();
    assert!(
        records.iter().all(|r| r["action"] != "kill"),
        "{records:#?}"
    );
}

/// Kills the child on drop.
struct Guard(std::process::Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn scopeguard(child: std::process::Child) -> Guard {
    Guard(child)
}

/// The addresses of a mock pool's `READY` line.
fn pool_addrs(child: &mut std::process::Child) -> Vec<String> {
    use std::io::{BufRead as _, BufReader};
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addrs: Vec<String> = line
        .strip_prefix("READY ")
        .unwrap_or_else(|| panic!("mock-pool said {line:?}"))
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(addrs.len(), 2, "{line:?}");
    addrs
}
