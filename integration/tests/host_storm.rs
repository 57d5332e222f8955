//! Catalog fixture F15 on the host (signal tier): an exec storm (short execs of `/bin/true`
//! from two threads, thousands a second on this machine) while F1 (`xmrig` with its catalog
//! command line) is started again and again under the shipped policy. Every F1 must still be
//! killed in the kernel before its user code runs, the engine must survive and stop cleanly,
//! and what it could not record must be counted (`ringbuf_full`), never silently lost: every
//! F1 kill has its action record unless the kernel counted ring-buffer losses.
//! Needs root; skips loudly otherwise (fails under ENFORCER_REQUIRE_HOST=1, as in CI).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod host;

use std::{
    os::unix::process::ExitStatusExt as _,
    path::Path,
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use enforcer_integration::catalog;
use host::{Engine, actions, can_run, install, stop_counter};

const WRITE_MARKER: &str = env!("CARGO_BIN_EXE_write-marker");
const FAKE_MINER: &str = env!("CARGO_BIN_EXE_fake-miner");

/// Threads running the storm.
const STORM_THREADS: usize = 2;
/// F1 starts during the storm.
const F1_RUNS: usize = 30;

/// Runs `/bin/true` in a loop on each of [`STORM_THREADS`] threads until `stop`; counts the
/// execs in `execs`.
fn storm(stop: &Arc<AtomicBool>, execs: &Arc<AtomicU64>) -> Vec<std::thread::JoinHandle<()>> {
    (0..STORM_THREADS)
        .map(|_| {
            let (stop, execs) = (Arc::clone(stop), Arc::clone(execs));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let status = Command::new("/bin/true").status().unwrap();
                    assert!(status.success(), "/bin/true: {status}");
                    execs.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect()
}

#[test]
fn f1_is_still_killed_during_an_exec_storm_and_losses_are_counted() {
    if !can_run("f1_is_still_killed_during_an_exec_storm_and_losses_are_counted") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let policy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policy/default");
    let engine = Engine::start_at(dir.path(), &policy, "block", &[]);
    let f1 = catalog::NAMED_MINERS[0];
    let exe = install(Path::new(WRITE_MARKER), dir.path(), f1.name);

    let (stop, execs) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let storm_threads = storm(&stop, &execs);
    std::thread::sleep(Duration::from_millis(500));
    for run in 0..F1_RUNS {
        let marker = dir.path().join(format!("f1-{run}.ran"));
        let status = Command::new(&exe)
            .arg(&marker)
            .args(f1.args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "F1 run {run}: {status}"
        );
        assert!(
            !marker.exists(),
            "F1 run {run}: its code ran before the kill"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    storm_threads.into_iter().for_each(|t| t.join().unwrap());
    let storm_execs = execs.load(Ordering::Relaxed);

    let records = engine.stop();
    let stopped = records
        .iter()
        .find(|r| r["type"] == "engine_stop")
        .expect("a clean engine_stop record");
    let lost = stop_counter(&records, "ringbuf_full");
    let seen = stop_counter(&records, "exec_seen");
    let kill_records = actions(&records, "kill", Some(f1.rule))
        .into_iter()
        .filter(|r| r["event"]["exec"]["file"]["name"] == f1.name)
        .count();
    println!(
        "F15: {storm_execs} storm execs, exec_seen {seen}, ringbuf_full {lost}, \
         F1 killed {F1_RUNS}/{F1_RUNS}, kill records {kill_records}, decode_errors {}",
        stopped["decode_errors"]
    );
    assert!(
        seen >= storm_execs + F1_RUNS as u64,
        "the kernel saw {seen} execs, fewer than the {storm_execs} + {F1_RUNS} run"
    );
    assert_eq!(stopped["decode_errors"], 0);
    assert!(
        kill_records == F1_RUNS || lost > 0,
        "{kill_records} kill records for {F1_RUNS} kills and no counted loss"
    );
}

/// Starts F4 (the fake miner configured by its environment, killed in userspace by the
/// daemon) and asserts that it dies by SIGKILL well before its 20 s spin ends, with the
/// engine's kill record.
fn f4_is_killed(engine: &mut Engine, exe: &Path, what: &str) {
    let f4 = catalog::ENV_MINER;
    let mut child = Command::new(exe)
        .args(["--spin-threads", "1", "--spin-secs", "20"])
        .env_clear()
        .envs(f4.envs.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let record = engine.wait_for(Duration::from_secs(10), what, |r| {
        r["type"] == "action" && r["rule"] == f4.rule && r["event"]["process"]["pid"] == pid
    });
    if record["action"] != "kill" {
        // Both tests of this file run an engine at once, and each sees every exec: the other
        // engine may kill F4 first. This one must still report a kill (the signal reaches a
        // dying process), not a refusal.
        let about_f4: Vec<String> = engine
            .records()
            .iter()
            .filter(|r| r["event"]["process"]["pid"] == pid)
            .map(ToString::to_string)
            .collect();
        panic!(
            "{what}: {record}\nevery record of pid {pid}:\n{}",
            about_f4.join("\n")
        );
    }
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{what}: {status}");
}

#[test]
fn userspace_kills_work_while_the_daemon_polls_and_after() {
    if !can_run("userspace_kills_work_while_the_daemon_polls_and_after") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let policy = Path::new(env!("CARGO_MANIFEST_DIR")).join("../policy/default");
    let mut engine = Engine::start_at(dir.path(), &policy, "block", &[]);
    let exe = install(Path::new(FAKE_MINER), dir.path(), catalog::ENV_MINER.name);

    let (stop, execs) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let storm_threads = storm(&stop, &execs);
    std::thread::sleep(Duration::from_millis(500));
    for run in 0..5 {
        f4_is_killed(
            &mut engine,
            &exe,
            &format!("F4 during the storm, run {run}"),
        );
    }
    stop.store(true, Ordering::Relaxed);
    storm_threads.into_iter().for_each(|t| t.join().unwrap());
    // The daemon stops polling after a few empty polls; a lone record then wakes it again.
    for run in 0..3 {
        std::thread::sleep(Duration::from_millis(300));
        f4_is_killed(&mut engine, &exe, &format!("F4 after the storm, run {run}"));
    }
    let records = engine.stop();
    let stopped = records
        .iter()
        .find(|r| r["type"] == "engine_stop")
        .expect("a clean engine_stop record");
    println!(
        "{} storm execs, polling periods {}",
        execs.load(Ordering::Relaxed),
        stopped["polling_periods"]
    );
    assert!(
        stopped["polling_periods"].as_u64().unwrap_or(0) >= 1,
        "the storm never made the daemon poll: {stopped}"
    );
}
