//! The enforcement records the handler writes, end to end (record in, audit lines out):
//! action reports, exclusions, kill scopes on real `sleep` children, and the kill breaker
//! (userspace kills and kernel kills, with the kernel plan downgrade).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    os::unix::process::{CommandExt as _, ExitStatusExt as _},
    path::PathBuf,
    process::{Child, Command},
    rc::Rc,
    time::Duration,
};

use enforcer_common::event::{ExecRecord, OUTCOME_KILLED, OUTCOME_WOULD_KILL};
use enforcer_policy::CompiledPolicy;
use serde_json::Value;

use super::testing::{self, FakePlan};
use crate::{
    actions::{breaker::Limits, kill::boot_now_ns, procfs::ProcFs},
    audit::AuditReader,
    clock::BootClock,
    engine::{handler::Handler, sink::Sink},
    pipeline::decode::{as_bytes, test_exec_record},
};

/// A userspace kill rule (the kernel cannot match `contains`) on the test record
/// (`/usr/bin/true -x yz`), and a kernel kill rule on the name `true`.
fn policy(extra: &str, kernel: bool) -> Rc<CompiledPolicy> {
    let expression = if kernel {
        "exec.file.name == \"true\""
    } else {
        "exec.argv0 == \"true\" && exec.args contains \"-x\""
    };
    let src = format!(
        "rules:\n  - id: kill-it\n    expression: {expression:?}\n    action: kill\n{extra}"
    );
    Rc::new(enforcer_policy::load_str("p.yaml", &src).unwrap())
}

/// Runs `records` through a handler and returns the audit records written.
fn run(
    policy: &Rc<CompiledPolicy>,
    never_kill: &[PathBuf],
    limits: Limits,
    plan: &FakePlan,
    records: &[ExecRecord],
) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let mut sink = Sink::open(Some(&log), false).unwrap();
    let clock = BootClock::new().unwrap();
    let enforcer = testing::enforcer(policy, never_kill, limits, plan.clone(), clock, false);
    let mut handler = Handler::new(Rc::clone(policy), 1, "signal", false, clock, enforcer);
    for rec in records {
        handler.handle(as_bytes(rec), &mut sink).unwrap();
    }
    AuditReader::read_path(&log).unwrap().0
}

fn actions(records: &[Value]) -> Vec<&Value> {
    records.iter().filter(|r| r["type"] == "action").collect()
}

fn spawn(program: &str, arg: &str, group: Option<i32>) -> Child {
    let mut cmd = Command::new(program);
    cmd.arg(arg);
    if let Some(pgid) = group {
        cmd.process_group(pgid);
    }
    let child = cmd.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(30));
    child
}

/// The test exec record, for process `pid`, seen now, with the kernel `outcome`.
fn record_for(pid: u32, outcome: u32) -> ExecRecord {
    let mut rec = test_exec_record();
    rec.header.tgid = pid;
    rec.header.pid = pid;
    rec.header.timestamp_ns = boot_now_ns();
    rec.header.outcome = outcome;
    rec
}

/// A pid that no process holds (above the kernel's `pid_max` limit).
const NO_PID: u32 = 4_194_304 + 10;

fn killed(child: &mut Child) -> bool {
    child.wait().unwrap().signal() == Some(libc::SIGKILL)
}

fn reap(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn a_userspace_kill_reports_when_it_was_detected_and_done() {
    let policy = policy("", false);
    let mut child = spawn("sleep", "30", None);
    let rec = record_for(child.id(), 0);
    let records = run(&policy, &[], Limits::DEFAULT, &FakePlan::default(), &[rec]);
    assert!(killed(&mut child));
    let kill = actions(&records)[0];
    assert_eq!(
        (&kill["action"], &kill["decided_in"]),
        (&"kill".into(), &"userspace".into())
    );
    assert!(kill.get("detail").is_none(), "process scope: as before");
    let report = &kill["report"];
    assert_eq!(report["outcome"], "performed");
    assert_eq!(report["detected_at"], kill["event"]["ts"], "the event time");
    let detected = humantime::parse_rfc3339(report["detected_at"].as_str().unwrap()).unwrap();
    let acted = humantime::parse_rfc3339(report["acted_at"].as_str().unwrap()).unwrap();
    let elapsed = acted.duration_since(detected).unwrap();
    let response = Duration::from_micros(report["response_us"].as_u64().unwrap());
    assert!(
        elapsed.abs_diff(response) <= Duration::from_micros(1),
        "{report}"
    );
    assert!(response < Duration::from_secs(5), "{report}");
}

#[test]
fn a_never_kill_executable_is_spared() {
    let policy = policy("", false);
    let mut child = spawn("sleep", "30", None);
    let exe = ProcFs::real().exe(child.id()).unwrap();
    let rec = record_for(child.id(), 0);
    let records = run(
        &policy,
        std::slice::from_ref(&exe),
        Limits::DEFAULT,
        &FakePlan::default(),
        &[rec],
    );
    assert_eq!(child.try_wait().unwrap(), None, "must still run");
    reap(&mut child);
    let spared = actions(&records)[0];
    assert_eq!(spared["action"], "spared");
    assert_eq!(
        spared["detail"],
        format!(
            "pid {} runs {}, listed with --never-kill",
            child.id(),
            exe.display()
        )
    );
    assert_eq!(spared["report"]["outcome"], "spared");
    assert!(spared["report"].get("errno").is_none());
}

#[test]
fn a_failed_kill_carries_its_errno() {
    let policy = policy("", false);
    let records = run(
        &policy,
        &[],
        Limits::DEFAULT,
        &FakePlan::default(),
        &[record_for(NO_PID, 0)],
    );
    let failed = actions(&records)[0];
    assert_eq!(failed["action"], "kill_failed");
    assert_eq!(failed["report"]["outcome"], "failed");
    assert_eq!(failed["report"]["errno"], libc::ESRCH);
}

#[test]
fn process_group_scope_kills_the_group_from_the_handler() {
    let policy = policy("    kill_scope: process_group\n", false);
    let leader = spawn("sleep", "30", Some(0));
    let pgid = i32::try_from(leader.id()).unwrap();
    let mut group = [leader, spawn("sleep", "30", Some(pgid))];
    let rec = record_for(group[1].id(), 0);
    let records = run(&policy, &[], Limits::DEFAULT, &FakePlan::default(), &[rec]);
    assert!(group.iter_mut().all(killed));
    let kill = actions(&records)[0];
    assert_eq!(kill["action"], "kill");
    assert_eq!(
        kill["detail"],
        format!("kill_scope process_group: killed process group {pgid} (2 processes)")
    );
}

#[test]
fn a_kernel_kill_is_widened_to_the_rule_scope() {
    let policy = policy("    kill_scope: process_group\n", true);
    let leader = spawn("sleep", "30", Some(0));
    let pgid = i32::try_from(leader.id()).unwrap();
    let mut group = [leader, spawn("sleep", "30", Some(pgid))];
    // The record says the kernel killed group[0]; here it still runs, as it may for a moment.
    let rec = record_for(group[0].id(), OUTCOME_KILLED);
    let gone = record_for(NO_PID, OUTCOME_KILLED);
    let records = run(
        &policy,
        &[],
        Limits::DEFAULT,
        &FakePlan::default(),
        &[rec, gone],
    );
    assert!(group.iter_mut().all(killed));
    let acts = actions(&records);
    assert_eq!(acts[0]["action"], "kill");
    assert_eq!(acts[0]["decided_in"], "kernel");
    assert_eq!(acts[0]["report"]["outcome"], "performed");
    assert_eq!(
        acts[0]["report"]["response_us"], 0,
        "the kernel acts synchronously"
    );
    assert_eq!(
        acts[0]["report"]["acted_at"],
        acts[0]["report"]["detected_at"]
    );
    assert_eq!(acts[1]["decided_in"], "userspace");
    assert_eq!(
        acts[1]["detail"],
        format!(
            "kill_scope process_group: widened the kernel kill to process group {pgid} (2 processes)"
        )
    );
    // The second process is gone: the group cannot be found, and the record says so.
    assert_eq!(acts[3]["action"], "kill_failed", "{acts:#?}");
    let detail = acts[3]["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("kill_scope process_group: the kernel kill was not widened: cannot find the process group of pid"),
        "{detail}"
    );
    assert_eq!(acts[3]["report"]["errno"], libc::ESRCH);
}

/// The test record for process `pid` executing `path`, with the kernel `outcome`.
fn exec_of(path: &str, pid: u32, outcome: u32) -> ExecRecord {
    let mut rec = record_for(pid, outcome);
    rec.path = [0; enforcer_common::plan::PATH_LEN];
    rec.path[..path.len()].copy_from_slice(path.as_bytes());
    rec.path_len = u32::try_from(path.len()).unwrap();
    rec
}

#[test]
fn kernel_kills_trip_the_breaker_and_downgrade_the_kernel_plan() {
    let policy = policy("", true);
    let plan = FakePlan::default();
    let limits = Limits {
        max_targets: 2,
        window: Duration::from_secs(60),
    };
    let records = run(
        &policy,
        &[],
        limits,
        &plan,
        &[
            exec_of("/tmp/a/true", NO_PID, OUTCOME_KILLED),
            exec_of("/tmp/a/true", NO_PID, OUTCOME_KILLED),
            exec_of("/tmp/b/true", NO_PID, OUTCOME_KILLED),
            exec_of("/tmp/c/true", NO_PID, OUTCOME_KILLED),
            exec_of("/tmp/d/true", NO_PID, OUTCOME_WOULD_KILL),
        ],
    );
    let acts = actions(&records);
    let names: Vec<&str> = acts.iter().map(|a| a["action"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["kill", "kill", "kill", "kill", "disarmed", "would_kill"]
    );
    let disarmed = acts[4];
    assert_eq!(disarmed["rule"], "kill-it");
    assert_eq!(
        disarmed["breaker"],
        serde_json::json!({"binaries": 3, "cgroups": 1, "max_targets": 2, "window_s": 60})
    );
    assert_eq!(disarmed["report"]["outcome"], "disarmed");
    let detail = disarmed["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("rule kill-it disarmed by the kill breaker: 3 distinct binaries and 1 distinct cgroups within 1m (limit 2)"),
        "{detail}"
    );
    assert!(
        detail.contains("kernel plan rewritten (1 entries)"),
        "{detail}"
    );
    assert_eq!(*plan.0.borrow(), [std::collections::HashSet::from([0])]);
    assert_eq!(acts[5]["report"]["outcome"], "disarmed");
}

#[test]
fn the_breaker_stops_userspace_kills_of_a_second_binary() {
    let policy = policy("    breaker: {max_targets: 1}\n", false);
    let plan = FakePlan::default();
    let mut sleep = spawn("sleep", "30", None);
    let mut tail = spawn("tail", "-f", None);
    let records = run(
        &policy,
        &[],
        Limits::DEFAULT,
        &plan,
        &[
            record_for(sleep.id(), 0),
            record_for(tail.id(), 0),
            record_for(tail.id(), 0),
        ],
    );
    assert!(killed(&mut sleep));
    assert_eq!(
        tail.try_wait().unwrap(),
        None,
        "the disarmed rule kills nothing"
    );
    reap(&mut tail);
    let acts = actions(&records);
    let names: Vec<&str> = acts.iter().map(|a| a["action"].as_str().unwrap()).collect();
    assert_eq!(names, ["kill", "disarmed", "would_kill"]);
    assert_eq!(acts[1]["breaker"]["binaries"], 2);
    assert_eq!(acts[1]["breaker"]["max_targets"], 1, "the rule's override");
    assert_eq!(acts[2]["report"]["outcome"], "disarmed");
    assert!(
        plan.0.borrow().is_empty(),
        "a userspace rule has no kernel entries"
    );
}

#[test]
fn monitor_mode_reports_would_perform() {
    let policy = policy("    mode: monitor\n", false);
    let records = run(
        &policy,
        &[],
        Limits::DEFAULT,
        &FakePlan::default(),
        &[record_for(NO_PID, 0)],
    );
    let would = actions(&records)[0];
    assert_eq!(would["action"], "would_kill");
    assert_eq!(would["report"]["outcome"], "would_perform");
}
