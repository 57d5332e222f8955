//! Host-tier process lifecycle records (raw tracepoints `sched_process_fork` and
//! `sched_process_exit`): a child this test spawns appears as a fork of this process with the
//! child's pid, and its exit as an exit record with the right code or signal; threads make no
//! records. Needs root; skips loudly otherwise (fails under ENFORCER_REQUIRE_HOST=1, as in CI).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod host;

use std::{process::Command, time::Duration};

use host::{Engine, can_run};
use serde_json::Value;

const POLICY: &str = "version: 1\nrules: []\n";

fn exit_of(records: &[Value], pid: u32) -> Option<&Value> {
    records
        .iter()
        .find(|r| r["event"]["kind"] == "exit" && r["event"]["process"]["pid"] == pid)
}

#[test]
fn forks_and_exits_of_processes_are_recorded_and_threads_are_not() {
    if !can_run("forks_and_exits_of_processes_are_recorded_and_threads_are_not") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut engine = Engine::start(dir.path(), POLICY, "monitor");
    let exits_3 = Command::new("/bin/sh")
        .args(["-c", "exit 3"])
        .spawn()
        .unwrap();
    let exits_3_pid = exits_3.id();
    let status = exits_3.wait_with_output().unwrap().status;
    assert_eq!(status.code(), Some(3));
    let killed = Command::new("/bin/sh")
        .args(["-c", "kill -9 $$"])
        .spawn()
        .unwrap();
    let killed_pid = killed.id();
    let _ = killed.wait_with_output().unwrap();
    let worker = std::thread::spawn(|| std::thread::sleep(Duration::from_millis(10)));
    worker.join().unwrap();

    engine.wait_for(Duration::from_secs(10), "exit of the killed child", |r| {
        r["event"]["kind"] == "exit" && r["event"]["process"]["pid"] == killed_pid
    });
    let records = engine.stop();
    let me = std::process::id();
    for pid in [exits_3_pid, killed_pid] {
        assert!(
            records.iter().any(|r| r["event"]["kind"] == "fork"
                && r["event"]["process"]["pid"] == me
                && r["event"]["fork"]["child"]["pid"] == pid),
            "fork of {pid} by {me}"
        );
    }
    let exec = records
        .iter()
        .find(|r| r["event"]["kind"] == "exec" && r["event"]["process"]["pid"] == exits_3_pid)
        .expect("exec record of the `exit 3` child");
    assert_eq!(
        exec["event"]["process"]["ancestors"][0]["pid"], me,
        "the process cache names this test as the parent: {exec:#}"
    );
    assert_eq!(exec["event"]["process"]["ppid"], me, "{exec:#}");
    let exit = exit_of(&records, exits_3_pid).expect("exit of the `exit 3` child");
    assert_eq!(exit["event"]["exit"]["code"], 3, "{exit:#}");
    assert_eq!(exit["event"]["exit"]["signal"], 0, "{exit:#}");
    let exit = exit_of(&records, killed_pid).expect("exit of the killed child");
    assert_eq!(exit["event"]["exit"]["signal"], 9, "{exit:#}");
    assert!(
        exit["event"]["exit"]["runtime"].as_u64().unwrap() > 0,
        "{exit:#}"
    );
    assert!(
        records.iter().all(|r| !(r["event"]["kind"] == "fork"
            && r["event"]["process"]["pid"] == me
            && r["event"]["fork"]["child"]["pid"] == me)),
        "a thread of this process is not a fork record"
    );
    assert!(
        exit_of(&records, me).is_none(),
        "a thread that ends is not an exit of the process"
    );
}
