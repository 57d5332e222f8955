//! Host-tier CPU-pattern tests (catalog F17 both ways, N3), with the policy of
//! `fixtures/cpu-patterns.yaml` (short thresholds: 40% of the machine for 3 s, sampled every
//! second) and the `fake-miner` fixture:
//! - F17 alone: a spinner gets an `alert` of the CPU rule and runs to its end;
//! - F17 with F9: a spinner whose helper child looks up a pool name (an alert-only rule, so the
//!   kernel does not stop it) is killed by the correlated CPU rule in userspace;
//! - N3: a CPU-bound job whose sibling (not itself, not an ancestor) looked up the pool runs to
//!   its end;
//! - monitor mode: the correlated spinner gets `would_kill` and runs to its end;
//! - a spinner moved into a cgroup of its own gives cgroup-scope samples naming that cgroup
//!   and the spinner as its busiest process (the test makes and removes the cgroup).
//!
//! Loopback only: a stub resolver in this test. Needs root; skips loudly otherwise (fails
//! under ENFORCER_REQUIRE_HOST=1, as in CI). The machine's other busy processes get `cpu`
//! events too; the assertions only look at the fixtures' pids.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod host;

use std::{
    os::unix::process::ExitStatusExt as _,
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};

use enforcer_integration::dns_fixture::{StubDns, dns_query};
use host::{Engine, actions, can_run};
use serde_json::Value;

static SERIAL: Mutex<()> = Mutex::new(());

const POLICY: &str = include_str!("../fixtures/cpu-patterns.yaml");
const FAKE_MINER: &str = env!("CARGO_BIN_EXE_fake-miner");
const STUB_DNS: &str = env!("CARGO_BIN_EXE_stub-dns");
const DNS_CLIENT: &str = env!("CARGO_BIN_EXE_dns-client");
const POOL: &str = "pool.cpu-fixture-miner.test";
const SUSTAINED: &str = "cpu-sustained-test";
const CORRELATED: &str = "cpu-with-indicator-test";
/// Sample every second; a spinner is in a window from 20% of the machine.
const ENGINE_ARGS: [&str; 4] = ["--cpu-interval", "1s", "--cpu-floor", "20"];
/// Longest wait for a CPU verdict (a window of 3 s takes 4-5 rounds; the machine is shared).
const VERDICT: Duration = Duration::from_secs(40);

fn stub(dir: &Path) -> StubDns {
    let answer = format!("{POOL}=127.0.0.77");
    StubDns::start(
        Path::new(STUB_DNS),
        "127.0.0.1:0",
        &[answer.as_str()],
        &dir.join("stub.jsonl"),
    )
    .unwrap()
}

/// A running fake miner, killed on drop.
struct Miner(Child);

impl Miner {
    fn start(secs: u64, extra: &[String]) -> Miner {
        let child = Command::new(FAKE_MINER)
            .args(["--spin-threads", "all", "--spin-secs", &secs.to_string()])
            .args(extra)
            .arg("--dns-client")
            .arg(DNS_CLIENT)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Miner(child)
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Waits for the exit (at most `timeout`).
    fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "fake-miner still runs");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Miner {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn resolve_args(stub: &StubDns) -> Vec<String> {
    vec![
        "--resolve".into(),
        POOL.into(),
        "--dns".into(),
        stub.addr.to_string(),
    ]
}

fn of_pid(r: &Value, pid: u32) -> bool {
    r["event"]["process"]["pid"] == pid
}

/// The `cpu` events of `pid` in `records`.
fn cpu_events(records: &[Value], pid: u32) -> Vec<&Value> {
    records
        .iter()
        .filter(|r| r["type"] == "event" && r["event"]["kind"] == "cpu" && of_pid(r, pid))
        .collect()
}

#[test]
fn f17_alone_alerts_and_does_not_kill() {
    if !can_run("f17_alone_alerts_and_does_not_kill") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let mut engine = Engine::start_with(dir.path(), POLICY, "block", &ENGINE_ARGS);
    let mut miner = Miner::start(12, &[]);
    let pid = miner.pid();
    let alert = engine.wait_for(VERDICT, "the sustained-CPU alert", |r| {
        r["action"] == "alert" && r["rule"] == SUSTAINED && of_pid(r, pid)
    });
    assert_eq!(alert["event"]["kind"], "cpu", "{alert:#}");
    assert_eq!(alert["event"]["cpu"]["correlated"], false, "{alert:#}");
    assert!(
        alert["event"]["cpu"]["window"].as_u64().unwrap() >= 3_000_000_000,
        "{alert:#}"
    );
    assert!(alert["event"]["cpu"]["usage"]["percent"].as_i64().unwrap() >= 40);
    assert_eq!(alert["event"]["process"]["file"]["name"], "fake-miner");
    let status = miner.wait(Duration::from_secs(40));
    assert!(status.success(), "F17 alone must not be killed: {status}");
    let records = engine.stop();
    assert!(
        records
            .iter()
            .all(|r| r["type"] != "action" || r["rule"] != CORRELATED),
        "{records:#?}"
    );
}

#[test]
fn f17_with_a_pool_lookup_is_killed() {
    if !can_run("f17_with_a_pool_lookup_is_killed") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let stub = stub(dir.path());
    let mut engine = Engine::start_with(dir.path(), POLICY, "block", &ENGINE_ARGS);
    let mut miner = Miner::start(60, &resolve_args(&stub));
    let pid = miner.pid();
    let kill = engine.wait_for(VERDICT, "the correlated CPU kill", |r| {
        r["action"] == "kill" && r["rule"] == CORRELATED && of_pid(r, pid)
    });
    let status = miner.wait(Duration::from_secs(10));
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
    assert_eq!(kill["decided_in"], "userspace", "{kill:#}");
    assert_eq!(kill["report"]["outcome"], "performed", "{kill:#}");
    let cpu = &kill["event"]["cpu"];
    assert_eq!(cpu["indicators"], serde_json::json!(["pool-lookup-alert"]));
    assert_eq!(cpu["correlated"], true);
    assert!(cpu["window"].as_u64().unwrap() >= 3_000_000_000, "{kill:#}");
    let records = engine.stop();
    // The indicator: the helper child's lookup, attributed to it with the miner as its parent.
    let lookups = actions(&records, "alert", Some("pool-lookup-alert"));
    assert!(
        lookups
            .iter()
            .any(|r| r["event"]["process"]["comm"] == "dns-client"
                && r["event"]["process"]["ancestors"][0]["pid"] == pid),
        "{lookups:#?}"
    );
    assert_eq!(
        actions(&records, "kill", Some(CORRELATED))
            .iter()
            .filter(|r| of_pid(r, pid))
            .count(),
        1,
        "one kill: {records:#?}"
    );
}

#[test]
fn n3_a_cpu_bound_job_next_to_a_pool_lookup_is_not_killed() {
    if !can_run("n3_a_cpu_bound_job_next_to_a_pool_lookup_is_not_killed") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let stub = stub(dir.path());
    let mut engine = Engine::start_with(dir.path(), POLICY, "block", &ENGINE_ARGS);
    // A sibling of the job (a child of this test, as the job is) looks up the pool.
    let run = dns_query(Path::new(DNS_CLIENT), stub.addr, POOL, "sendto").unwrap();
    assert!(run.answers().is_some(), "{run:?}");
    engine.wait_for(Duration::from_secs(10), "the lookup alert", |r| {
        r["action"] == "alert" && r["rule"] == "pool-lookup-alert"
    });
    let mut job = Miner::start(10, &[]);
    let pid = job.pid();
    engine.wait_for(VERDICT, "a sustained cpu event of the job", |r| {
        r["type"] == "event"
            && r["event"]["kind"] == "cpu"
            && of_pid(r, pid)
            && r["event"]["cpu"]["window"].as_u64() >= Some(3_000_000_000)
    });
    let status = job.wait(Duration::from_secs(40));
    assert!(status.success(), "N3 must not be killed: {status}");
    let records = engine.stop();
    assert!(
        cpu_events(&records, pid)
            .iter()
            .all(|r| r["event"]["cpu"]["correlated"] == false),
        "a sibling's lookup does not correlate"
    );
    assert!(
        records
            .iter()
            .all(|r| r["type"] != "action" || r["rule"] != CORRELATED || !of_pid(r, pid)),
        "{records:#?}"
    );
}

#[test]
fn monitor_mode_records_would_kill_for_f17_with_a_pool_lookup() {
    if !can_run("monitor_mode_records_would_kill_for_f17_with_a_pool_lookup") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let stub = stub(dir.path());
    let mut engine = Engine::start_with(dir.path(), POLICY, "monitor", &ENGINE_ARGS);
    let mut miner = Miner::start(12, &resolve_args(&stub));
    let pid = miner.pid();
    let would = engine.wait_for(VERDICT, "would_kill", |r| {
        r["action"] == "would_kill" && r["rule"] == CORRELATED && of_pid(r, pid)
    });
    assert_eq!(
        would["event"]["cpu"]["indicators"],
        serde_json::json!(["pool-lookup-alert"])
    );
    let status = miner.wait(Duration::from_secs(40));
    assert!(status.success(), "monitor mode must not kill: {status}");
    let records = engine.stop();
    assert!(
        records.iter().all(|r| r["action"] != "kill"),
        "{records:#?}"
    );
}

/// The mount point of the cgroup v2 hierarchy (`/sys/fs/cgroup`, or `.../unified` on a hybrid
/// host), from `/proc/self/mountinfo`.
fn cgroup2_root() -> Option<std::path::PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        (right.split_whitespace().next()? == "cgroup2")
            .then(|| left.split_whitespace().nth(4).map(std::path::PathBuf::from))
            .flatten()
    })
}

/// A cgroup made for the test, removed on drop (once its processes are gone).
struct TestCgroup(std::path::PathBuf);

impl Drop for TestCgroup {
    fn drop(&mut self) {
        for _ in 0..100 {
            if std::fs::remove_dir(&self.0).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("could not remove the test cgroup {}", self.0.display());
    }
}

#[test]
fn a_spinner_in_its_own_cgroup_gives_cgroup_samples() {
    if !can_run("a_spinner_in_its_own_cgroup_gives_cgroup_samples") {
        return;
    }
    let Some(root) = cgroup2_root() else {
        assert!(!host::required(), "no cgroup v2 hierarchy mounted");
        eprintln!("SKIPPED a_spinner_in_its_own_cgroup_gives_cgroup_samples: no cgroup v2");
        return;
    };
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let name = format!("enforcer-cpu-test-{}", std::process::id());
    let path = format!("/{name}");
    let policy = format!(
        "{POLICY}
  - id: cpu-cgroup-test
    description: A leaf cgroup at 40% of the machine for 3 s. Alert.
    severity: info
    expression: cpu.scope == \"cgroup\" && cpu.cgroup == \"{path}\" && cpu.usage.percent >= 40 && cpu.window >= 3s
    action: alert
"
    );
    let mut engine = Engine::start_with(dir.path(), &policy, "block", &ENGINE_ARGS);
    std::fs::create_dir(root.join(&name)).unwrap();
    let cgroup = TestCgroup(root.join(&name));
    let mut miner = Miner::start(12, &[]);
    let pid = miner.pid();
    std::fs::write(cgroup.0.join("cgroup.procs"), pid.to_string()).unwrap();
    let alert = engine.wait_for(VERDICT, "the cgroup alert", |r| {
        r["action"] == "alert" && r["rule"] == "cpu-cgroup-test"
    });
    let cpu = &alert["event"]["cpu"];
    assert_eq!(cpu["scope"], "cgroup", "{alert:#}");
    assert_eq!(cpu["cgroup"]["path"], path.as_str(), "{alert:#}");
    assert!(cpu["cgroup"]["id"].as_u64().unwrap() > 0);
    assert_eq!(alert["event"]["process"]["pid"], pid, "the busiest process");
    let status = miner.wait(Duration::from_secs(40));
    assert!(status.success(), "an alert only: {status}");
    drop(engine.stop());
    drop(cgroup);
}
