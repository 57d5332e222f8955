//! Host-tier stratum tests (signal tier: no BPF LSM on the host): a stratum login is dropped on
//! its way out by the cgroup egress program, so the pool never receives it, and its sender is
//! killed by the daemon (fixture F10, every dialect, through `write(2)` and `send(2)`); an
//! ordinary JSON-RPC client on the same port is left alone (N5), and monitor mode only
//! records.
//! Needs root; skips loudly otherwise (fails under ENFORCER_REQUIRE_HOST=1, as in CI).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod host;

use std::{
    os::unix::process::ExitStatusExt as _,
    process::{Command, Stdio},
    sync::Mutex,
    time::Duration,
};

use host::{Engine, MockPool, actions, can_run, io_uring_client};

static SERIAL: Mutex<()> = Mutex::new(());

const CLIENT: &str = env!("CARGO_BIN_EXE_stratum-client");

const POLICY: &str = r#"version: 1
lists:
  - name: stratum_methods
    type: string
    items: [mining.subscribe, mining.authorize, login, submit]
rules:
  - id: stratum-login
    description: test rule, a stratum login on any port
    severity: critical
    expression: payload.stratum.method in stratum_methods
    action: [deny, kill]
"#;

/// A mock pool on ephemeral loopback ports; returns the process and its addresses.
/// A mock pool on `listeners` loopback ports (any free ones), recording into `record`.
fn start_pool(record: &std::path::Path, listeners: usize) -> (MockPool, Vec<String>) {
    let pool = MockPool::start(&vec!["127.0.0.1:0"; listeners], record);
    let addrs = pool.addrs.clone();
    (pool, addrs)
}

/// The lines the mock pool received so far (its record file). Read while the engine runs: a
/// dropped segment whose connection could not be aborted stays queued in its socket, and
/// TCP's further tries of it pass once the egress hook is detached.
fn pool_lines(record: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(record)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|r| r["line"].as_str().map(str::to_owned))
        .collect()
}

/// The stratum client's first message to `addr`, written with `call`; it then waits for a
/// reply (a dropped login gets none: the client is still there when the kill comes).
fn client(addr: &str, dialect: &str, call: &str) -> std::process::ExitStatus {
    Command::new(CLIENT)
        .args([
            "--connect",
            addr,
            "--dialect",
            dialect,
            "--write-call",
            call,
            "--expect-reply",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
}

/// The `deny` records of `rule` (any with `None`) whose process is `comm`: a login an earlier
/// engine dropped may still be retried by an orphaned socket whose connection could not be
/// aborted (no owner: no process in the record), so only this test's clients count.
fn denies_by<'a>(
    records: &'a [serde_json::Value],
    rule: Option<&str>,
    comm: &str,
) -> Vec<&'a serde_json::Value> {
    actions(records, "deny", rule)
        .into_iter()
        .filter(|r| r["event"]["process"]["comm"] == comm)
        .collect()
}

/// A `stratum-client --expect-reply` run that ended without a reply because its connection
/// was aborted (exit 5, `ECONNABORTED`), not killed and not answered.
fn assert_aborted_while_waiting(output: &std::process::Output) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(5), "{}: {stderr}", output.status);
    assert!(
        stderr.contains(&format!("errno={}", libc::ECONNABORTED)),
        "the connection was not aborted: {stderr}"
    );
}

#[test]
fn signal_tier_drops_stratum_logins_and_spares_ordinary_json_rpc() {
    if !can_run("signal_tier_drops_stratum_logins_and_spares_ordinary_json_rpc") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (pool, addrs) = start_pool(&dir.path().join("pool.jsonl"), 3);
    let mut engine = Engine::start(dir.path(), POLICY, "block");

    let mut expected_kills = 0;
    for (addr, dialect, call) in [
        (&addrs[0], "v1", "write"),
        (&addrs[1], "ethereum", "send"),
        (&addrs[2], "monero", "write"),
        (&addrs[0], "monero", "send"),
    ] {
        let status = client(addr, dialect, call);
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "{dialect} via {call} to {addr}: {status}"
        );
        expected_kills += 1;
    }
    let status = client(&addrs[0], "jsonrpc", "write");
    assert!(
        status.success(),
        "ordinary JSON-RPC must pass (and be answered): {status}"
    );

    engine.wait_for(
        Duration::from_secs(10),
        "payload event of the JSON-RPC client",
        |r| r["type"] == "event" && r["event"]["payload"]["stratum"]["method"] == "eth_blockNumber",
    );
    // The pool received the ordinary call and not one login.
    let received = pool_lines(&dir.path().join("pool.jsonl"));
    let records = engine.stop();
    drop(pool);
    assert_eq!(received.len(), 1, "{received:?}");
    assert!(received[0].contains("eth_blockNumber"), "{received:?}");
    let denies = denies_by(&records, None, "stratum-client");
    assert_eq!(denies.len(), expected_kills, "{records:#?}");
    assert!(
        denies
            .iter()
            .all(|r| r["event"]["hook"] == "cgroup_skb/egress" && r["decided_in"] == "kernel"),
        "{denies:#?}"
    );
    // Each refused login's connection was aborted, before its sender was killed; the record
    // names the pool it was sent to.
    for r in &denies {
        assert_eq!(r["connection"]["aborted"], true, "{r:#}");
        let pool = r["event"]["payload"]["addr"]["port"].as_u64().unwrap_or(0);
        assert!(
            addrs.iter().any(|a| a.ends_with(&format!(":{pool}"))),
            "{r:#}"
        );
        assert_eq!(r["event"]["payload"]["local"]["ip"], "127.0.0.1", "{r:#}");
    }
    let kills = actions(&records, "kill", None);
    assert_eq!(kills.len(), expected_kills, "{records:#?}");
    assert!(kills.iter().all(|r| r["rule"] == "stratum-login"
        && r["tier"] == "signal"
        && r["decided_in"] == "userspace"));
    let methods: Vec<&str> = kills
        .iter()
        .filter_map(|r| r["event"]["payload"]["stratum"]["method"].as_str())
        .collect();
    assert!(
        methods.contains(&"mining.subscribe") && methods.contains(&"login"),
        "{methods:?}"
    );
    assert!(
        records.iter().all(|r| r["type"] != "action"
            || r["event"]["payload"]["stratum"]["method"] != "eth_blockNumber"),
        "N5 must not fire: {records:#?}"
    );
}

/// Runs the engine in a mount namespace of its own where no cgroup v2 file system is
/// mounted (`unshare -m`, the cgroup mount detached there only), as on a host without cgroup
/// v2: the engine cannot attach its cgroup hooks and falls back to the send tracepoints.
const WITHOUT_CGROUP2: [&str; 6] = ["unshare", "--mount", "--propagation", "private", "sh", "-c"];

/// The shell script [`WITHOUT_CGROUP2`] runs: detach every cgroup v2 mount of this namespace
/// (the file system type follows the `-` of each `/proc/self/mountinfo` line), then exec the
/// engine's command line (`$0 "$@"`).
const DETACH_CGROUP2_THEN_EXEC: &str = r#"set -e
awk '{ for (i = 7; i < NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") print $5; break } }' \
    /proc/self/mountinfo | while read -r m; do umount -l "$m"; done
exec "$0" "$@""#;

/// Without cgroup v2 the send tracepoints (`sys_enter_{write,sendto,...}`) stand in for the
/// cgroup egress hook: the start record says why, and a stratum login is killed in the kernel
/// at the tracepoint (the bytes are on their way: a tracepoint cannot drop them), while an
/// ordinary JSON-RPC call passes.
#[test]
fn without_cgroup_v2_the_send_tracepoints_kill_a_stratum_login() {
    if !can_run("without_cgroup_v2_the_send_tracepoints_kill_a_stratum_login") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (pool, addrs) = start_pool(&dir.path().join("pool.jsonl"), 1);
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, POLICY).unwrap();
    let mut launcher = WITHOUT_CGROUP2.to_vec();
    launcher.push(DETACH_CGROUP2_THEN_EXEC);
    let mut engine = Engine::start_by(&launcher, dir.path(), &policy, "block", &[]);
    let start = engine.wait_for(Duration::from_secs(5), "engine_start", |r| {
        r["type"] == "engine_start"
    });
    let send_hook = start["send_hook"].as_str().unwrap_or_default();
    assert!(
        send_hook.starts_with("tp/syscalls/sys_enter_{write,sendto,sendmsg,sendmmsg,writev}")
            && send_hook.contains("no cgroup v2"),
        "{start:#}"
    );
    assert!(
        start["connect_hook"]
            .as_str()
            .unwrap_or_default()
            .starts_with("tp/syscalls/sys_enter_connect"),
        "{start:#}"
    );

    for (dialect, call) in [("v1", "write"), ("monero", "send")] {
        let status = client(&addrs[0], dialect, call);
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "{dialect} via {call}: {status}"
        );
    }
    let status = client(&addrs[0], "jsonrpc", "write");
    assert!(status.success(), "ordinary JSON-RPC must pass: {status}");
    for method in ["mining.subscribe", "login"] {
        engine.wait_for(Duration::from_secs(10), method, |r| {
            r["type"] == "action"
                && r["action"] == "kill"
                && r["event"]["payload"]["stratum"]["method"] == method
        });
    }
    let records = engine.stop();
    drop(pool);
    let kills: Vec<_> = actions(&records, "kill", Some("stratum-login"))
        .into_iter()
        .filter(|r| r["event"]["process"]["comm"] == "stratum-client")
        .collect();
    assert_eq!(kills.len(), 2, "{records:#?}");
    for r in &kills {
        let hook = r["event"]["hook"].as_str().unwrap_or_default();
        assert!(hook.starts_with("tp/syscalls/sys_enter_"), "{r:#}");
        assert_eq!(r["decided_in"], "kernel", "{r:#}");
        assert_eq!(r["tier"], "signal", "{r:#}");
    }
    assert!(
        records.iter().all(|r| r["type"] != "action"
            || r["event"]["payload"]["stratum"]["method"] != "eth_blockNumber"),
        "N5 must not fire: {records:#?}"
    );
}

#[test]
fn monitor_mode_records_would_kill_for_stratum() {
    if !can_run("monitor_mode_records_would_kill_for_stratum") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (pool, addrs) = start_pool(&dir.path().join("pool.jsonl"), 1);
    let mut engine = Engine::start(dir.path(), POLICY, "monitor");
    let status = client(&addrs[0], "monero", "write");
    assert!(status.success(), "monitor mode must not kill: {status}");
    engine.wait_for(Duration::from_secs(10), "would_kill", |r| {
        r["action"] == "would_kill"
    });
    let records = engine.stop();
    drop(pool);
    assert!(actions(&records, "kill", None).is_empty(), "{records:#?}");
    assert_eq!(
        actions(&records, "would_kill", None).len(),
        1,
        "{records:#?}"
    );
}

#[test]
fn a_python_stratum_client_is_stopped_by_the_network_rule_alone() {
    if !can_run("a_python_stratum_client_is_stopped_by_the_network_rule_alone") {
        return;
    }
    let Some(python) = ["/usr/bin/python3", "/usr/local/bin/python3"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
    else {
        assert!(!host::required(), "python3 is needed for fixture F13");
        eprintln!(
            "SKIPPED a_python_stratum_client_is_stopped_by_the_network_rule_alone: no python3"
        );
        return;
    };
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (pool, addrs) = start_pool(&dir.path().join("pool.jsonl"), 1);
    let (host_part, port) = addrs[0].rsplit_once(':').unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/stratum_client.py");
    let engine = Engine::start(dir.path(), POLICY, "block");
    let status = Command::new(python)
        .args([script, host_part, port])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "F13 python client: {status}"
    );
    let records = engine.stop();
    drop(pool);
    let kills = actions(&records, "kill", None);
    assert_eq!(kills.len(), 1, "{records:#?}");
    assert_eq!(kills[0]["event"]["process"]["comm"], "python3");
    assert_eq!(kills[0]["event"]["payload"]["stratum"]["method"], "login");
}

/// A stratum login sent through io_uring (`IORING_OP_SEND`: no `write(2)` or `send(2)` for a
/// syscall tracepoint to see) is dropped at the egress hook all the same, and its sender killed.
#[test]
fn an_io_uring_stratum_login_is_dropped_and_its_sender_killed() {
    if !can_run("an_io_uring_stratum_login_is_dropped_and_its_sender_killed") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (pool, addrs) = start_pool(&dir.path().join("pool.jsonl"), 1);
    let mut engine = Engine::start(dir.path(), POLICY, "block");
    let out = io_uring_client(&[
        "--connect",
        &addrs[0],
        "--send",
        r#"{"id":1,"method":"mining.subscribe","params":["cpuminer/2.5.1"]}"#,
        "--linger-ms",
        "5000",
    ]);
    assert_eq!(out.status.signal(), Some(libc::SIGKILL), "{out:?}");
    engine.wait_for(Duration::from_secs(10), "the kill", |r| {
        r["action"] == "kill"
    });
    let received = pool_lines(&dir.path().join("pool.jsonl"));
    let records = engine.stop();
    drop(pool);
    assert!(
        received.is_empty(),
        "the login reached the pool: {received:?}"
    );
    let denies = denies_by(&records, Some("stratum-login"), "io-uring-client");
    assert_eq!(denies.len(), 1, "{records:#?}");
    assert_eq!(denies[0]["event"]["hook"], "cgroup_skb/egress");
    assert_eq!(
        denies[0]["event"]["process"]["comm"], "io-uring-client",
        "{:#}",
        denies[0]
    );
    let kills = actions(&records, "kill", Some("stratum-login"));
    assert_eq!(kills.len(), 1, "{records:#?}");
    assert_eq!(kills[0]["decided_in"], "userspace", "{:#}", kills[0]);
}

/// A socket connected before the engine started has no owner noted: its login is dropped all
/// the same, and the kill its rule asks for is reported failed, never sent to whichever
/// process the CPU happened to run.
#[test]
fn a_login_on_a_socket_connected_before_the_engine_is_dropped_and_nobody_is_killed() {
    if !can_run("a_login_on_a_socket_connected_before_the_engine_is_dropped_and_nobody_is_killed") {
        return;
    }
    use std::io::{BufRead as _, BufReader, Write as _};
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let (pool, addrs) = start_pool(&dir.path().join("pool.jsonl"), 1);
    let mut client = Command::new(CLIENT)
        .args(["--connect", &addrs[0], "--dialect", "v1"])
        .args(["--write-on-stdin", "--expect-reply"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(client.stdout.take().unwrap()).lines();
    let connected = lines.next().unwrap().unwrap();
    assert!(connected.starts_with("CONNECTED"), "{connected}");
    let mut engine = Engine::start(dir.path(), POLICY, "block");
    writeln!(client.stdin.take().unwrap(), "go").unwrap();
    // Not killed; its connection aborted while it waited for a reply.
    assert_aborted_while_waiting(&client.wait_with_output().unwrap());
    engine.wait_for(Duration::from_secs(10), "the refused kill", |r| {
        r["type"] == "action" && r["action"] != "deny"
    });
    let received = pool_lines(&dir.path().join("pool.jsonl"));
    let records = engine.stop();
    drop(pool);
    assert!(
        received.is_empty(),
        "the login reached the pool: {received:?}"
    );
    // (An earlier test's orphaned socket may add its own ownerless records: at least one.)
    let denies = actions(&records, "deny", Some("stratum-login"));
    assert!(!denies.is_empty(), "{records:#?}");
    assert!(
        denies
            .iter()
            .all(|d| d["event"]["process"]["pid"].as_u64().unwrap_or(0) == 0),
        "no owner: {denies:#?}"
    );
    // No owner, so no namespace to enter: the engine's own holds this loopback connection.
    assert!(
        denies.iter().any(|d| d["connection"]["aborted"] == true),
        "{denies:#?}"
    );
    assert!(actions(&records, "kill", None).is_empty(), "{records:#?}");
    let failed = actions(&records, "kill_failed", Some("stratum-login"));
    assert!(!failed.is_empty(), "{records:#?}");
    assert!(
        failed.iter().all(|f| f["report"]["outcome"] == "failed"),
        "{failed:#?}"
    );
}

const DENY_ONLY: &str = r#"version: 1
rules:
  - id: stratum-login-deny
    description: test rule, a stratum login is refused, its sender left alive
    severity: high
    expression: payload.stratum.method == "mining.subscribe"
    action: deny
"#;

/// A refused login is discarded, not just held back: its connection is aborted, so a stopped
/// engine (an upgrade, a crash without `keep-enforcing`) lets no try of it through. TCP would
/// otherwise try the queued segment again within a second, and deliver it once the egress hook
/// is gone.
#[test]
fn a_refused_login_never_reaches_the_pool_after_the_engine_stops() {
    if !can_run("a_refused_login_never_reaches_the_pool_after_the_engine_stops") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("pool.jsonl");
    let (pool, addrs) = start_pool(&record, 1);
    let mut engine = Engine::start(dir.path(), DENY_ONLY, "block");
    let client = Command::new(CLIENT)
        .args(["--connect", &addrs[0], "--dialect", "v1", "--expect-reply"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    engine.wait_for(Duration::from_secs(10), "the deny record", |r| {
        r["type"] == "action" && r["action"] == "deny"
    });
    // Stopped while the client still waits for its reply (5 s): TCP's tries of a queued
    // segment come 0.2, 0.4, 0.8 s apart at first, and the pool answers a login it receives.
    let records = engine.stop();
    assert_aborted_while_waiting(&client.wait_with_output().unwrap());
    let received = pool_lines(&record);
    drop(pool);
    assert!(
        received.is_empty(),
        "the refused login reached the pool after the engine stopped: {received:?}"
    );
    let denies = denies_by(&records, Some("stratum-login-deny"), "stratum-client");
    assert_eq!(denies.len(), 1, "{records:#?}");
    assert_eq!(denies[0]["connection"]["aborted"], true, "{:#}", denies[0]);
    let start = records
        .iter()
        .find(|r| r["type"] == "engine_start")
        .expect("engine_start");
    assert_eq!(
        start["connection_abort"], "sock_diag SOCK_DESTROY",
        "{start:#}"
    );
}
