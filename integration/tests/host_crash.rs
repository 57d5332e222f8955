//! F16 on the host (signal tier): SIGKILL the engine, then run F1.
//! - `--on-crash keep-enforcing`: the enforcing programs stay pinned under
//!   /sys/fs/bpf/enforcer/<run id>/ and the kernel still kills F1 with no daemon; `enforcer
//!   status` lists the pins; a restart attaches, removes the old pins and writes an
//!   `engine_gap` record (`enforcement: pinned`, the old run's counters); a clean stop leaves
//!   no pins and F1 runs again.
//! - `--on-crash stop`: F1 runs unhindered once the engine is killed; the restart's
//!   `engine_gap` says nothing enforced from the last record to the restart.
//! - A reload that attaches a program (a ptrace rule's tracepoint) pins it with the others:
//!   with the engine killed, the tracer is still killed.
//! - A reload whose policy drops the ptrace rule unpins and detaches its tracepoints (no
//!   pin and no descriptor of the engine is a link to them, the tracer lives); a reload that brings the
//!   rule back attaches and pins it again (the tracer is killed).
//! - The path-syscall tracepoints beyond the base set (mkdir here) are pinned too: with the
//!   engine killed, a denied mkdir is still killed.
//!
//! F1 here is the catalog's exec-deny shape (`write-marker` installed as a miner, denied in
//! the kernel at exec) under the name `xmrig-f16`, without the catalog's miner flags, and
//! denied by its unique temporary path: other engines on a shared machine (e.g. one running
//! `policy/default`) kill `xmrig` by name and its flags by argv, which would make the "F1 runs
//! unhindered" checks flaky, and the pinned programs of this test must not touch anything but
//! its own payload. Needs root; skips loudly otherwise (fails under ENFORCER_REQUIRE_HOST=1, as in CI).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod host;

use std::{
    os::unix::process::ExitStatusExt as _,
    path::{Path, PathBuf},
    process::{Command, ExitStatus, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};

use enforcer_integration::pins::PIN_ROOT;
use host::{Engine, MockPool, can_run, enforcer_bin, install};
use serde_json::Value;

/// One test at a time: a restart takes over every dead run's pins.
static SERIAL: Mutex<()> = Mutex::new(());

const WRITE_MARKER: &str = env!("CARGO_BIN_EXE_write-marker");
/// Pinned links are released by the kernel after their last reference goes (deferred work
/// and an RCU grace period): how long a detach may take to show.
const DETACH: Duration = Duration::from_secs(5);

/// Removes the pins of the engine processes it names when dropped (a failed test must not
/// leave enforcement behind on a shared machine).
struct PinGuard {
    pids: Vec<u32>,
}

impl PinGuard {
    fn pin_dirs(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(PIN_ROOT) else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .filter(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let pid = name.split('-').next().and_then(|p| p.parse::<u32>().ok());
                pid.is_some_and(|p| self.pids.contains(&p))
            })
            .map(|e| e.path())
            .collect()
    }
}

impl Drop for PinGuard {
    fn drop(&mut self) {
        for dir in self.pin_dirs() {
            if let Ok(entries) = std::fs::read_dir(&dir) {
                for entry in entries.filter_map(Result::ok) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
            let _ = std::fs::remove_dir(&dir);
        }
    }
}

fn policy_text(f1: &Path) -> String {
    format!(
        r#"version: 1
rules:
  - id: deny-f1
    description: F1 (xmrig) denied at exec by its path
    severity: high
    expression: exec.file.path == "{}"
    action: deny
"#,
        f1.display()
    )
}

/// F1's install name (see the module documentation).
const F1_NAME: &str = "xmrig-f16";

/// Runs F1: it writes `marker` when it runs at all.
fn run_f1(f1: &Path, marker: &Path) -> ExitStatus {
    Command::new(f1).arg(marker).status().unwrap()
}

/// Runs F1 until it is not killed (the old programs detach a moment after their pins go).
fn f1_runs_within(f1: &Path, marker: &Path, within: Duration) -> ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        let status = run_f1(f1, marker);
        if status.signal() != Some(libc::SIGKILL) || Instant::now() > deadline {
            return status;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn records(audit: &Path) -> Vec<Value> {
    std::fs::read_to_string(audit)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn status_json() -> Value {
    let out = Command::new(enforcer_bin())
        .args(["status", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let f1 = install(Path::new(WRITE_MARKER), dir.path(), F1_NAME);
    std::fs::write(dir.path().join("policy.yaml"), policy_text(&f1)).unwrap();
    (dir, f1)
}

#[test]
fn keep_enforcing_a_killed_engine_still_kills_f1_and_the_restart_reports_the_gap() {
    if !can_run("keep_enforcing_a_killed_engine_still_kills_f1_and_the_restart_reports_the_gap") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (dir, f1) = setup();
    let policy = dir.path().join("policy.yaml");
    let keep = ["--on-crash", "keep-enforcing"];
    let mut guard = PinGuard { pids: Vec::new() };

    let engine = Engine::start_at(dir.path(), &policy, "block", &keep);
    guard.pids.push(engine.pid());
    let start = records(&engine.audit)
        .into_iter()
        .find(|r| r["type"] == "engine_start")
        .unwrap();
    assert_eq!(start["on_crash"], "keep-enforcing", "{start}");
    assert!(start["pinned_links"].as_u64().unwrap() >= 1, "{start}");
    let run_id = start["run_id"].as_str().unwrap().to_owned();
    assert!(
        Path::new(PIN_ROOT).join(&run_id).is_dir(),
        "pins of {run_id}"
    );
    let old_pid = engine.pid();
    let audit = engine.sigkill();

    // No daemon: the pinned sched_process_exec program kills F1 in the kernel.
    let marker = dir.path().join("m-alone");
    for _ in 0..3 {
        let status = run_f1(&f1, &marker);
        assert_eq!(status.signal(), Some(libc::SIGKILL), "F1 alone: {status}");
    }
    assert!(!marker.exists(), "F1 ran user code with no daemon");
    let status = status_json();
    let pinned = status["pinned"].as_array().unwrap();
    let left = pinned
        .iter()
        .find(|p| p["run_id"] == run_id.as_str())
        .unwrap_or_else(|| panic!("status lists {run_id}: {status:#}"));
    assert_eq!(left["engine_running"], false, "{left}");
    assert!(
        left["counters"]["exec_matched"].as_u64().unwrap() >= 3,
        "{left}"
    );

    // Restart: own programs first, then the old pins go, and the gap is recorded.
    let mut engine = Engine::start_at(dir.path(), &policy, "block", &keep);
    guard.pids.push(engine.pid());
    let gap = engine.wait_for(Duration::from_secs(10), "engine_gap", |r| {
        r["type"] == "engine_gap"
    });
    assert_eq!(gap["previous_run_id"], run_id.as_str(), "{gap:#}");
    assert_eq!(gap["previous_pid"], old_pid, "{gap:#}");
    assert_eq!(gap["enforcement"], "pinned", "{gap:#}");
    assert_eq!(gap["detected_by"], serde_json::json!(["audit_log", "pins"]));
    assert_eq!(gap["previous_start"], start["ts"], "{gap:#}");
    assert!(gap["previous_last_record"].is_string(), "{gap:#}");
    assert!(gap["this_start"].is_string(), "{gap:#}");
    assert!(gap["pins_removed"].as_u64().unwrap() >= 1, "{gap:#}");
    assert!(
        gap["pinned_counters"]["exec_matched"].as_u64().unwrap() >= 3,
        "the old run's denials while alone: {gap:#}"
    );
    assert!(
        !Path::new(PIN_ROOT).join(&run_id).exists(),
        "old pins removed"
    );
    let marker = dir.path().join("m-restarted");
    let status = run_f1(&f1, &marker);
    assert_eq!(status.signal(), Some(libc::SIGKILL), "restarted: {status}");

    // Clean stop: pins gone, F1 runs.
    let records = engine.stop();
    let new_run = records
        .iter()
        .rfind(|r| r["type"] == "engine_start")
        .unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        !Path::new(PIN_ROOT).join(&new_run).exists(),
        "a clean stop removes the pins"
    );
    assert!(guard.pin_dirs().is_empty(), "{:?}", guard.pin_dirs());
    let marker = dir.path().join("m-stopped");
    let status = f1_runs_within(&f1, &marker, DETACH);
    assert!(status.success(), "F1 after a clean stop: {status}");
    assert!(marker.exists());
    assert_eq!(audit, dir.path().join("audit-block.jsonl"));
}

/// Starts an engine on `policy` in block mode with `--on-crash keep-enforcing`, reloading on
/// SIGHUP only: the guard of its pins (bind it first, so it drops after the engine), the
/// engine, and its `engine_start` record.
fn start_pinned(dir: &Path, policy: &Path) -> (PinGuard, Engine, Value) {
    let extra = ["--on-crash", "keep-enforcing", "--policy-watch", "off"];
    let engine = Engine::start_at(dir, policy, "block", &extra);
    let guard = PinGuard {
        pids: vec![engine.pid()],
    };
    let start = records(&engine.audit)
        .into_iter()
        .find(|r| r["type"] == "engine_start")
        .unwrap();
    (guard, engine, start)
}

/// The links in the pin directory of run `run_id`.
fn pinned_links(run_id: &str) -> Vec<String> {
    std::fs::read_dir(Path::new(PIN_ROOT).join(run_id))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.starts_with("link-"))
                .collect()
        })
        .unwrap_or_default()
}

/// Asserts that run `run_id` pinned each link of `pins`.
fn assert_pinned(run_id: &str, pins: &[&str]) {
    let pinned = pinned_links(run_id);
    for pin in pins {
        assert!(
            pinned.iter().any(|l| l == pin),
            "{pin} not pinned: {pinned:?}"
        );
    }
}

#[test]
fn keep_enforcing_pins_what_a_reload_attached() {
    if !can_run("keep_enforcing_pins_what_a_reload_attached") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (dir, f1) = setup();
    let policy = dir.path().join("policy.yaml");
    let (_guard, mut engine, start) = start_pinned(dir.path(), &policy);
    let run_id = start["run_id"].as_str().unwrap().to_owned();
    let ptrace_pin = "link-tp_sys_enter_kernel-sys_enter_ptrace";
    assert!(
        !pinned_links(&run_id).iter().any(|l| l == ptrace_pin),
        "no kernel rule at start: {:?}",
        pinned_links(&run_id)
    );

    // A reload adds a ptrace rule: its tracepoint is attached, and pinned with the others.
    let reloaded = format!(
        "{}  - id: deny-ptrace\n    expression: kernel.op == \"ptrace\"\n    action: deny\n",
        policy_text(&f1)
    );
    std::fs::write(&policy, reloaded).unwrap();
    engine.sighup();
    let reload = engine.wait_for(Duration::from_secs(20), "policy_reload", |r| {
        r["type"] == "policy_reload"
    });
    assert_eq!(reload["outcome"], "applied", "{reload}");
    assert!(
        pinned_links(&run_id).iter().any(|l| l == ptrace_pin),
        "{:?}",
        pinned_links(&run_id)
    );
    engine.sigkill();

    // No daemon: the pinned ptrace program still kills the tracer, and F1 is still denied.
    let status = Command::new(env!("CARGO_BIN_EXE_kernel-ops"))
        .arg("ptrace-attach")
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "tracer alone: {status}"
    );
    let marker = dir.path().join("m-alone");
    assert_eq!(run_f1(&f1, &marker).signal(), Some(libc::SIGKILL));
    assert!(!marker.exists());
    // The guard removes the pins (the programs detach a moment later).
}

/// How many of the engine's descriptors are BPF links to tracepoint `tracepoint` (their
/// `fdinfo` names it, kernels 6.6+). With its pin, the engine's descriptor is a link's only
/// reference: neither left means the link is released.
fn link_fds(pid: u32, tracepoint: &str) -> usize {
    let want = format!("tp_name:\t{tracepoint}\n");
    std::fs::read_dir(format!("/proc/{pid}/fdinfo"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| std::fs::read_to_string(e.path()).is_ok_and(|info| info.contains(&want)))
        .count()
}

/// Runs the `kernel-ops ptrace-attach` fixture: its exit status.
fn ptrace_attach() -> ExitStatus {
    Command::new(env!("CARGO_BIN_EXE_kernel-ops"))
        .arg("ptrace-attach")
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap()
}

/// The `n`-th (1-based) `policy_reload` record, once written.
fn nth_reload(engine: &mut Engine, n: usize) -> Value {
    engine.wait_for(Duration::from_secs(20), "policy_reload", |_| true);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let reloads: Vec<Value> = records(&engine.audit)
            .into_iter()
            .filter(|r| r["type"] == "policy_reload")
            .collect();
        if let Some(r) = reloads.get(n - 1) {
            return r.clone();
        }
        assert!(Instant::now() < deadline, "no reload {n}: {reloads:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn has_tracepoint(record: &Value, tracepoint: &str) -> bool {
    record["syscall_tracepoints"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t == tracepoint)
}

#[test]
fn a_reload_detaches_what_the_policy_no_longer_needs_and_a_later_one_attaches_it_again() {
    if !can_run(
        "a_reload_detaches_what_the_policy_no_longer_needs_and_a_later_one_attaches_it_again",
    ) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (dir, f1) = setup();
    let policy = dir.path().join("policy.yaml");
    let with_ptrace = format!(
        "{}  - id: deny-ptrace\n    expression: kernel.op == \"ptrace\"\n    action: deny\n",
        policy_text(&f1)
    );
    std::fs::write(&policy, &with_ptrace).unwrap();
    let (_guard, mut engine, start) = start_pinned(dir.path(), &policy);
    let pid = engine.pid();
    let run_id = start["run_id"].as_str().unwrap().to_owned();
    let ptrace_pin = "link-tp_sys_enter_kernel-sys_enter_ptrace";
    let is_pinned = || pinned_links(&run_id).iter().any(|l| l == ptrace_pin);
    assert!(has_tracepoint(&start, "sys_enter_ptrace"), "{start}");
    assert!(is_pinned(), "{:?}", pinned_links(&run_id));
    assert_eq!(link_fds(pid, "sys_enter_ptrace"), 1);
    assert_eq!(ptrace_attach().signal(), Some(libc::SIGKILL), "tracer");

    // The ptrace rule goes: its tracepoint is unpinned and detached.
    std::fs::write(&policy, policy_text(&f1)).unwrap();
    engine.sighup();
    let narrowed = nth_reload(&mut engine, 1);
    assert_eq!(narrowed["outcome"], "applied", "{narrowed}");
    // `kernel.op == "ptrace"` watches ptrace and process_vm_writev: both go.
    assert_eq!(
        narrowed["detached"],
        serde_json::json!([
            "tp_sys_enter_kernel:sys_enter_ptrace",
            "tp_sys_enter_kernel:sys_enter_process_vm_writev"
        ]),
        "{narrowed}"
    );
    for tracepoint in ["sys_enter_ptrace", "sys_enter_process_vm_writev"] {
        assert!(!has_tracepoint(&narrowed, tracepoint), "{narrowed}");
    }
    assert!(!is_pinned(), "{:?}", pinned_links(&run_id));
    for tracepoint in ["sys_enter_ptrace", "sys_enter_process_vm_writev"] {
        assert_eq!(
            link_fds(pid, tracepoint),
            0,
            "the engine still holds {tracepoint}"
        );
    }
    let status = ptrace_attach();
    assert!(status.success(), "tracer after the rule went: {status}");

    // The rule comes back: attached and pinned again, and it kills the tracer.
    std::fs::write(&policy, &with_ptrace).unwrap();
    engine.sighup();
    let widened = nth_reload(&mut engine, 2);
    assert_eq!(widened["outcome"], "applied", "{widened}");
    assert!(widened.get("detached").is_none(), "{widened}");
    assert!(has_tracepoint(&widened, "sys_enter_ptrace"), "{widened}");
    assert!(is_pinned(), "{:?}", pinned_links(&run_id));
    assert_eq!(link_fds(pid, "sys_enter_ptrace"), 1);
    assert_eq!(
        ptrace_attach().signal(),
        Some(libc::SIGKILL),
        "tracer again"
    );
    engine.stop();
}

#[test]
fn keep_enforcing_pins_the_path_syscall_tracepoints_a_file_rule_uses() {
    if !can_run("keep_enforcing_pins_the_path_syscall_tracepoints_a_file_rule_uses") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (dir, f1) = setup();
    let policy = dir.path().join("policy.yaml");
    let denied = dir.path().join("deny");
    std::fs::create_dir(&denied).unwrap();
    std::fs::write(
        &policy,
        format!(
            "{}  - id: deny-mkdir\n    expression: mkdir.file.path startswith \"{}/\"\n    action: deny\n",
            policy_text(&f1),
            denied.display()
        ),
    )
    .unwrap();
    let (_guard, engine, start) = start_pinned(dir.path(), &policy);
    let run_id = start["run_id"].as_str().unwrap().to_owned();
    assert_pinned(
        &run_id,
        &[
            "link-tp_sys_enter_path-sys_enter_mkdir",
            "link-tp_sys_enter_path-sys_enter_mkdirat",
        ],
    );
    engine.sigkill();

    // No daemon: the pinned path program still kills a mkdir under the denied directory.
    let target = denied.join("x");
    let status = Command::new("mkdir").arg(&target).status().unwrap();
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "mkdir alone: {status}"
    );
    // The guard removes the pins (the programs detach a moment later).
}

/// The signal tier's cgroup hooks enforce: pinned, the connect hooks keep refusing a denied
/// connect and the egress hook keeps dropping a denied stratum login, with the engine
/// SIGKILLed.
#[test]
fn keep_enforcing_pins_the_cgroup_connect_and_egress_hooks() {
    if !can_run("keep_enforcing_pins_the_cgroup_connect_and_egress_hooks") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (dir, f1) = setup();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        format!(
            "{}lists:\n  - name: crash_pool\n    type: cidr\n    items: [127.0.0.76/32]\n",
            policy_text(&f1).replace(
                "rules:\n",
                "rules:\n  - id: deny-pool-ip\n    expression: connect.addr.ip in crash_pool\n    action: deny\n  - id: deny-subscribe\n    expression: payload.stratum.method == \"mining.subscribe\"\n    action: deny\n"
            )
        ),
    )
    .unwrap();
    let pool = MockPool::start(&["127.0.0.1:0"], &dir.path().join("pool.jsonl"));
    let (_guard, engine, start) = start_pinned(dir.path(), &policy);
    assert_eq!(start["connect_hook"], "cgroup/connect4,6", "{start:#}");
    assert_eq!(start["send_hook"], "cgroup_skb/egress", "{start:#}");
    let run_id = start["run_id"].as_str().unwrap().to_owned();
    assert_pinned(
        &run_id,
        &[
            "link-cgroup_connect4",
            "link-cgroup_connect6",
            "link-cgroup_skb_egress",
            "link-cgroup_sendmsg4",
            "link-cgroup_sendmsg6",
        ],
    );
    engine.sigkill();
    // No daemon: the pinned hook still refuses the connect (nothing listens there: without
    // the hook it would be ECONNREFUSED).
    let out = Command::new(env!("CARGO_BIN_EXE_io-uring-client"))
        .args(["--connect", "127.0.0.76:9"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() == Some(4) && stderr.contains("errno=1"),
        "want EPERM: {} {stderr}",
        out.status
    );
    // And the pinned egress hook drops the login: no reply comes (exit 5), the pool received
    // no line.
    let status = Command::new(env!("CARGO_BIN_EXE_stratum-client"))
        .args([
            "--connect",
            &pool.addrs[0],
            "--dialect",
            "v1",
            "--expect-reply",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(5), "want no reply: {status}");
    drop(pool);
    let received = std::fs::read_to_string(dir.path().join("pool.jsonl")).unwrap();
    assert!(!received.contains("\"line\""), "{received}");
}

#[test]
fn stop_a_killed_engine_lets_f1_run_and_the_restart_reports_the_unenforced_gap() {
    if !can_run("stop_a_killed_engine_lets_f1_run_and_the_restart_reports_the_unenforced_gap") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (dir, f1) = setup();
    let policy = dir.path().join("policy.yaml");
    let stop = ["--on-crash", "stop"];
    let mut guard = PinGuard { pids: Vec::new() };

    let engine = Engine::start_at(dir.path(), &policy, "block", &stop);
    guard.pids.push(engine.pid());
    let marker = dir.path().join("m-enforced");
    let status = run_f1(&f1, &marker);
    assert_eq!(status.signal(), Some(libc::SIGKILL), "enforced: {status}");
    let start = records(&engine.audit)
        .into_iter()
        .find(|r| r["type"] == "engine_start")
        .unwrap();
    assert_eq!(start["on_crash"], "stop", "{start}");
    assert_eq!(start["pinned_links"], 0, "{start}");
    let run_id = start["run_id"].as_str().unwrap().to_owned();
    let old_pid = engine.pid();
    assert!(guard.pin_dirs().is_empty(), "no pins with --on-crash stop");
    let audit = engine.sigkill();
    let last = records(&audit).last().unwrap()["ts"].clone();

    let marker = dir.path().join("m-alone");
    let status = f1_runs_within(&f1, &marker, DETACH);
    assert!(status.success(), "F1 with no engine (fail-open): {status}");
    assert!(marker.exists());

    let mut engine = Engine::start_at(dir.path(), &policy, "block", &stop);
    guard.pids.push(engine.pid());
    let gap = engine.wait_for(Duration::from_secs(10), "engine_gap", |r| {
        r["type"] == "engine_gap"
    });
    assert_eq!(gap["previous_run_id"], run_id.as_str(), "{gap:#}");
    assert_eq!(gap["previous_pid"], old_pid, "{gap:#}");
    assert_eq!(gap["enforcement"], "none", "{gap:#}");
    assert_eq!(gap["detected_by"], serde_json::json!(["audit_log"]));
    assert_eq!(gap["unenforced_from"], last, "{gap:#}");
    assert_eq!(gap["previous_last_record"], last, "{gap:#}");
    assert_eq!(gap["pins_removed"], 0, "{gap:#}");
    assert!(gap.get("pinned_counters").is_none(), "{gap:#}");
    let records = engine.stop();
    assert_eq!(
        records.iter().filter(|r| r["type"] == "engine_gap").count(),
        1,
        "a clean stop leaves nothing to report"
    );
}
