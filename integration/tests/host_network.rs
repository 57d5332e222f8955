//! Host-tier network tests (signal tier: no BPF LSM on the host), with the policy of
//! `fixtures/deny-network.yaml`: a DNS lookup of a pool domain or a sub-domain of it is dropped
//! on its way out by the cgroup egress hook, whichever system call sends the query (catalog F9:
//! UDP sends fail with EPERM, a TCP query is never answered), and a kill rule's asker is killed
//! by the daemon; its
//! excluded documentation site and ordinary names containing "pool" are answered (N4); a
//! connect to the pool address is refused with EPERM by the cgroup connect hooks, through
//! `connect(2)` or io_uring, and a kill rule's connect is refused and its process killed by the
//! daemon; monitor mode only records. Loopback only: a stub resolver and a mock pool in this
//! test, never a real resolver or pool.
//! Needs root; skips loudly otherwise (fails under ENFORCER_REQUIRE_HOST=1, as in CI).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod host;

use std::{
    path::Path,
    process::{Command, Stdio},
    sync::Mutex,
    time::Duration,
};

use enforcer_integration::dns_fixture::{ALL_VIAS, StubDns, dns_query, dns_query_lingering};
use host::{Engine, MockPool, actions, can_run, io_uring_client};
use serde_json::Value;

static SERIAL: Mutex<()> = Mutex::new(());

const POLICY: &str = include_str!("../fixtures/deny-network.yaml");
/// A policy about binds to 127.0.0.79 and about accepted TCP connections.
const SOCKET_POLICY: &str = include_str!("../fixtures/watch-sockets.yaml");
/// A policy with one question rule and one answer rule.
const DNS_POLICY: &str = include_str!("../fixtures/watch-dns.yaml");
/// A policy that watches pool lookups and denies connects to the addresses they resolve to.
const LEARNED_POLICY: &str = include_str!("../fixtures/learned-pool.yaml");
const STUB_DNS: &str = env!("CARGO_BIN_EXE_stub-dns");
const DNS_CLIENT: &str = env!("CARGO_BIN_EXE_dns-client");
const STRATUM_CLIENT: &str = env!("CARGO_BIN_EXE_stratum-client");
const IO_URING_CLIENT: &str = env!("CARGO_BIN_EXE_io-uring-client");

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

/// Asserts that a client's connect was refused with EPERM (exit 4, `errno=1` on stderr).
fn assert_refused(out: &std::process::Output, what: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() == Some(4) && stderr.contains("errno=1"),
        "{what}: want EPERM, got {} {stderr}",
        out.status
    );
}

/// The stratum client's connect to `addr`, its output captured.
fn stratum_connect(addr: &str) -> std::process::Output {
    Command::new(STRATUM_CLIENT)
        .args(["--connect", addr, "--dialect", "jsonrpc"])
        .output()
        .unwrap()
}

/// A connect to `addr` submitted through io_uring, then `linger_ms` alive; its output.
fn io_uring_connect(addr: &str, linger_ms: u32) -> std::process::Output {
    io_uring_client(&["--connect", addr, "--linger-ms", &linger_ms.to_string()])
}

#[test]
fn signal_tier_drops_pool_lookups_and_refuses_pool_connects() {
    if !can_run("signal_tier_drops_pool_lookups_and_refuses_pool_connects") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let stub = stub(dir.path());
    let mut engine = Engine::start(dir.path(), POLICY, "block");

    // The egress hook drops the query: a UDP send fails with EPERM; a TCP segment never
    // leaves, and the daemon aborts its connection, so the wait for an answer fails.
    for via in ALL_VIAS {
        let run = query(&stub, "pool.example-miner.test", via);
        let stopped = if via.starts_with("tcp") {
            run.aborted()
        } else {
            run.send_refused()
        };
        assert!(stopped, "F9 via {via}: want the query dropped, got {run:?}");
    }
    let run = query(&stub, "A.B.Example-Miner.TEST", "send");
    assert!(run.send_refused(), "sub-domain, any case: {run:?}");
    // A kill rule: refused in the kernel, killed by the daemon (the client lingers for it).
    let run = dns_query_lingering(
        Path::new(DNS_CLIENT),
        stub.addr,
        "kill.pool.test",
        "sendto",
        10_000,
    )
    .unwrap();
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

    let (_pool, addrs) = start_pool(dir.path(), "127.0.0.77");
    assert_refused(
        &stratum_connect(&addrs[0]),
        "connect(2) to the pool address",
    );
    // No connect(2) system call: the cgroup hook still runs.
    assert_refused(
        &io_uring_connect(&addrs[0], 0),
        "io_uring connect to the pool address",
    );
    assert!(
        stratum_client(&addrs[1]).success(),
        "connect elsewhere passes"
    );

    engine.wait_for(Duration::from_secs(10), "dns event of pool.ntp.org", |r| {
        r["type"] == "event" && r["event"]["dns"]["question"]["name"] == "pool.ntp.org"
    });
    // Not one pool query reached the resolver (read while the engine runs: a dropped TCP
    // segment stays queued, and passes once the egress hook is detached).
    let asked: Vec<String> = StubDns::queries(&dir.path().join("stub.jsonl"))
        .iter()
        .filter_map(|q| q["name"].as_str().map(str::to_owned))
        .collect();
    let records = engine.stop();
    assert!(asked.iter().any(|n| n == "pool.ntp.org"), "{asked:?}");
    assert!(
        asked.iter().all(|n| n == "docs.example-miner.test"
            || !(n.ends_with("example-miner.test") || n == "kill.pool.test")),
        "a refused query reached the resolver: {asked:?}"
    );
    // A TCP query an earlier engine dropped may still be retried by its orphaned socket (no
    // owner: no process in the record): only this test's clients count.
    let lookups: Vec<&Value> = actions(&records, "deny", Some("pool-lookup-deny"))
        .into_iter()
        .filter(|r| r["event"]["process"]["comm"] == "dns-client")
        .collect();
    assert_eq!(lookups.len(), ALL_VIAS.len() + 1, "{records:#?}");
    for r in &lookups {
        assert_eq!(r["tier"], "signal");
        assert_eq!(r["event"]["hook"], "cgroup_skb/egress", "{r:#}");
        assert_eq!(r["event"]["process"]["comm"], "dns-client", "{r:#}");
        assert!(
            r["event"]["dns"]["question"]["name"]
                .as_str()
                .unwrap()
                .ends_with("example-miner.test"),
            "{r:#}"
        );
    }
    for r in &lookups {
        let tcp = r["event"]["dns"]["transport"] == "tcp";
        // A TCP query's connection is aborted (its segment stays queued otherwise); a UDP send
        // failed, nothing is left to abort.
        let want = if tcp {
            serde_json::json!({ "aborted": true })
        } else {
            Value::Null
        };
        assert_eq!(r["connection"], want, "{r:#}");
        assert_eq!(r["event"]["dns"]["client"]["ip"], "127.0.0.1", "{r:#}");
    }
    assert!(
        lookups
            .iter()
            .any(|r| r["event"]["dns"]["transport"] == "tcp"),
        "the TCP query was seen as TCP"
    );
    assert!(actions(&records, "kill", Some("pool-lookup-deny")).is_empty());
    assert_eq!(actions(&records, "deny", Some("pool-lookup-kill")).len(), 1);
    let kills = actions(&records, "kill", Some("pool-lookup-kill"));
    assert_eq!(kills.len(), 1, "{records:#?}");
    assert_eq!(kills[0]["decided_in"], "userspace", "{:#}", kills[0]);
    let connects = actions(&records, "deny", Some("pool-ip-deny"));
    assert_eq!(connects.len(), 2, "{records:#?}");
    for (connect, comm) in connects.iter().zip(["stratum-client", "io-uring-client"]) {
        assert_eq!(connect["event"]["connect"]["addr"]["ip"], "127.0.0.77");
        assert_eq!(connect["event"]["hook"], "cgroup/connect");
        assert_eq!(connect["event"]["process"]["comm"], comm, "{connect:#}");
    }
    assert!(actions(&records, "kill", Some("pool-ip-deny")).is_empty());
    // In-kernel approvers: every connect rule of the policy is in the plan, so the connect to
    // 127.0.0.1 concerns no rule and never leaves the kernel; the counters saw it.
    assert!(
        records
            .iter()
            .all(|r| r["event"]["connect"]["addr"]["ip"] != "127.0.0.1"),
        "a connect no rule is about must stay in the kernel: {records:#?}"
    );
    assert!(
        records
            .iter()
            .all(|r| !matches!(r["event"]["kind"].as_str(), Some("bind" | "accept"))),
        "no rule is about binds or accepts: the kernel must not report them: {records:#?}"
    );
    let stop = records
        .iter()
        .find(|r| r["type"] == "engine_stop")
        .expect("engine_stop");
    assert!(
        stop["counters"]["connect_seen"].as_u64().unwrap_or(0) >= 2,
        "{stop:#}"
    );
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
fn monitor_mode_answers_pool_lookups_and_records_would_deny() {
    if !can_run("monitor_mode_answers_pool_lookups_and_records_would_deny") {
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
    engine.wait_for(Duration::from_secs(10), "would_deny", |r| {
        r["action"] == "would_deny"
            && r["rule"] == "pool-lookup-deny"
            && r["event"]["hook"] == "cgroup_skb/egress"
    });
    let records = engine.stop();
    assert!(
        records.iter().all(|r| r["action"] != "kill"),
        "{records:#?}"
    );
}

#[test]
fn binds_and_accepts_are_reported_when_a_rule_is_about_them() {
    if !can_run("binds_and_accepts_are_reported_when_a_rule_is_about_them") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let mut engine = Engine::start(dir.path(), SOCKET_POLICY, "block");
    let (pool, addrs) = start_pool(dir.path(), "127.0.0.79");
    let port: u64 = addrs[0].rsplit(':').next().unwrap().parse().unwrap();
    assert!(stratum_client(&addrs[0]).success(), "the client connects");
    engine.wait_for(Duration::from_secs(10), "accept alert", |r| {
        r["rule"] == "watch-accept" && r["event"]["accept"]["local"]["port"] == port
    });
    let records = engine.stop();
    let binds = actions(&records, "alert", Some("watch-bind"));
    assert_eq!(binds.len(), 1, "{records:#?}");
    let bind = &binds[0]["event"];
    assert_eq!(bind["kind"], "bind");
    assert_eq!(bind["hook"], "tp/syscalls/sys_enter_bind");
    let pool_pid = pool.pid();
    assert_eq!(bind["process"]["pid"], pool_pid, "{bind:#}");
    assert_eq!(bind["bind"]["protocol"], "tcp");
    let accepts: Vec<&Value> = actions(&records, "alert", Some("watch-accept"))
        .into_iter()
        .map(|r| &r["event"])
        .filter(|e| e["accept"]["local"]["port"] == port)
        .collect();
    assert_eq!(accepts.len(), 1, "{records:#?}");
    let accept = accepts[0];
    // The accepting thread has its own comm; the process is the mock pool.
    assert_eq!(accept["process"]["pid"], pool_pid, "{accept:#}");
    assert_eq!(accept["hook"], "tp/syscalls/sys_exit_accept{,4}");
    assert!(
        accept["accept"]["addr"]["ip"]
            .as_str()
            .is_some_and(|ip| ip.starts_with("127.")),
        "the peer is the loopback client: {accept:#}"
    );
    assert!(accept["accept"]["addr"]["port"].as_u64().unwrap_or(0) > 0);
    // Every bind the kernel reported reached the audit log as an event too.
    assert!(records.iter().any(|r| r["type"] == "event"
        && r["event"]["kind"] == "bind"
        && r["event"]["bind"]["addr"]["ip"] == "127.0.0.1"));
}

#[test]
fn dns_responses_are_attributed_to_the_asking_process() {
    if !can_run("dns_responses_are_attributed_to_the_asking_process") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let stub = stub(dir.path());
    // The stub answers from a port of its own: the policy names it as a DNS server port.
    let policy = format!(
        "{DNS_POLICY}network:\n  dns_server_ports: [{}]\n",
        stub.addr.port()
    );
    let mut engine = Engine::start(dir.path(), &policy, "block");
    for via in ["send", "tcp"] {
        let run = query(&stub, "pool.ntp.org", via);
        assert_eq!(run.answers(), Some(vec!["127.0.0.2".to_owned()]), "{run:?}");
    }
    engine.wait_for(Duration::from_secs(10), "two answer alerts", |r| {
        r["rule"] == "answer-watch" && r["event"]["dns"]["transport"] == "tcp"
    });
    let records = engine.stop();
    let answers = actions(&records, "alert", Some("answer-watch"));
    assert_eq!(answers.len(), 2, "one per response: {records:#?}");
    for r in &answers {
        let ev = &r["event"];
        assert_eq!(ev["hook"], "cgroup_skb/ingress", "{ev:#}");
        assert_eq!(ev["dns"]["is_response"], true);
        assert_eq!(ev["dns"]["question"]["name"], "pool.ntp.org");
        assert_eq!(ev["dns"]["answers"][0]["ip"], "127.0.0.2");
        assert_eq!(ev["dns"]["answers"][0]["ttl"], 60);
        assert_eq!(ev["dns"]["rcode"], 0);
        assert_eq!(ev["process"]["comm"], "dns-client", "attributed: {ev:#}");
        assert!(ev["process"]["pid"].as_u64().unwrap_or(0) > 0);
    }
    let transports: Vec<&str> = answers
        .iter()
        .filter_map(|r| r["event"]["dns"]["transport"].as_str())
        .collect();
    assert!(
        transports.contains(&"udp") && transports.contains(&"tcp"),
        "{transports:?}"
    );
    // The question rule fires on each query, never again on the responses.
    let asked = actions(&records, "alert", Some("ntp-asked"));
    assert_eq!(asked.len(), 2, "{records:#?}");
    assert!(
        asked
            .iter()
            .all(|r| r["event"]["dns"]["is_response"] == false)
    );
    let stop = records
        .iter()
        .find(|r| r["type"] == "engine_stop")
        .expect("engine_stop");
    assert!(
        stop["counters"]["dns_response_seen"].as_u64().unwrap_or(0) >= 2,
        "{stop:#}"
    );
}

#[test]
fn signal_tier_refuses_connects_to_addresses_learned_from_pool_answers() {
    if !can_run("signal_tier_refuses_connects_to_addresses_learned_from_pool_answers") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let stub = stub(dir.path());
    let policy = format!(
        "{LEARNED_POLICY}network:\n  dns_server_ports: [{}]\n",
        stub.addr.port()
    );
    let mut engine = Engine::start(dir.path(), &policy, "block");
    let (_pool, addrs) = start_pool(dir.path(), "127.0.0.77");
    assert!(
        stratum_client(&addrs[0]).success(),
        "before any answer the address is not a pool's"
    );
    let run = query(&stub, "pool.example-miner.test", "send");
    assert_eq!(
        run.answers(),
        Some(vec!["127.0.0.77".to_owned()]),
        "{run:?}"
    );
    // The daemon learns the address when it handles the response, before it logs it.
    engine.wait_for(Duration::from_secs(10), "the pool answer", |r| {
        r["type"] == "event"
            && r["event"]["dns"]["is_response"] == true
            && r["event"]["dns"]["question"]["name"] == "pool.example-miner.test"
    });
    assert_refused(
        &stratum_connect(&addrs[0]),
        "connect to the learned pool address",
    );
    assert!(stratum_client(&addrs[1]).success(), "elsewhere passes");
    let records = engine.stop();
    let denies = actions(&records, "deny", Some("learned-pool-connect"));
    assert_eq!(denies.len(), 1, "{records:#?}");
    let connect = &denies[0]["event"]["connect"];
    assert_eq!(connect["addr"]["ip"], "127.0.0.77");
    assert_eq!(connect["addr"]["dns_name"], "pool.example-miner.test");
    // This test's lookup; a TCP query an earlier test's engine dropped may still be retried
    // by its orphaned socket (no owner: no process in the record) and seen here too.
    let lookups: Vec<&Value> = actions(&records, "alert", Some("pool-lookup-watch"))
        .into_iter()
        .filter(|r| r["event"]["process"]["comm"] == "dns-client")
        .collect();
    assert_eq!(lookups.len(), 1, "{records:#?}");
}

/// A connect kill rule in the signal tier: the cgroup hook refuses the connect (it cannot send
/// a signal) and the daemon kills the process through its kill path; `--never-kill` spares it
/// the kill, not the refusal.
#[test]
fn a_connect_kill_rule_refuses_the_connect_and_the_daemon_kills() {
    if !can_run("a_connect_kill_rule_refuses_the_connect_and_the_daemon_kills") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let policy = POLICY.replace(
        "expression: connect.addr.ip in test_pool_ips && connect.addr.is_public\n    action: deny",
        "expression: connect.addr.ip in test_pool_ips && connect.addr.is_public\n    action: kill",
    );
    assert_ne!(policy, POLICY, "the fixture's connect rule was not found");
    let spared = host::install(Path::new(IO_URING_CLIENT), dir.path(), "spared-connect");
    let spared_arg = spared.to_str().unwrap();
    let engine = Engine::start_at(
        dir.path(),
        &{
            let path = dir.path().join("policy.yaml");
            std::fs::write(&path, &policy).unwrap();
            path
        },
        "block",
        &["--never-kill", spared_arg],
    );
    let (_pool, addrs) = start_pool(dir.path(), "127.0.0.77");
    let out = io_uring_connect(&addrs[0], 3000);
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&out.status),
        Some(libc::SIGKILL),
        "killed while it lingers after the refused connect: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Whether it printed the refusal before the kill landed is a race; the kernel's `deny`
    // record below says the connect was refused.
    let out = Command::new(&spared)
        .args(["--connect", &addrs[0], "--linger-ms", "300"])
        .output()
        .unwrap();
    assert_refused(&out, "a --never-kill executable is still refused");
    let records = engine.stop();
    let of = |action: &str| actions(&records, action, Some("pool-ip-deny"));
    let (denies, kills, spares) = (of("deny"), of("kill"), of("spared"));
    assert_eq!(denies.len(), 2, "{records:#?}");
    assert!(denies.iter().all(|r| r["decided_in"] == "kernel"));
    assert_eq!(kills.len(), 1, "{records:#?}");
    assert_eq!(kills[0]["decided_in"], "userspace", "{:#}", kills[0]);
    assert_eq!(kills[0]["report"]["outcome"], "performed", "{:#}", kills[0]);
    assert_eq!(kills[0]["event"]["process"]["comm"], "io-uring-client");
    assert_eq!(spares.len(), 1, "{records:#?}");
    assert_eq!(spares[0]["event"]["process"]["comm"], "spared-connect");
}

/// Kills the child on drop.
/// Starts a mock pool listening on `special:0` and `127.0.0.1:0` (recording into `dir`);
/// returns it (killed on drop) and its two addresses.
fn start_pool(dir: &Path, special: &str) -> (MockPool, Vec<String>) {
    let listen = format!("{special}:0");
    let pool = MockPool::start(&[&listen, "127.0.0.1:0"], &dir.join("pool.jsonl"));
    let addrs = pool.addrs.clone();
    (pool, addrs)
}
