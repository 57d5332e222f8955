//! The audit log under pressure on the host (signal tier): a disk that fills under the log does
//! not stop the engine (the kernel and the daemon keep acting; an `audit_lost` record says what
//! was lost once the log can be written again, and the actions held meanwhile follow it), a
//! log past its size is rotated (and with `--events-log` the activity rotates on its own and
//! every action stays), a deleted log is started again, and `engine_stats` records
//! give the kernel's counters while the engine runs. Needs root (and `mount` for a small tmpfs); skips loudly
//! otherwise (fails under ENFORCER_REQUIRE_HOST=1, as in CI).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod host;

use std::{
    io::Write as _,
    os::unix::process::ExitStatusExt as _,
    path::{Path, PathBuf},
    process::Command,
    sync::Mutex,
    time::{Duration, Instant},
};

use host::{Engine, can_run, install};
use serde_json::Value;

/// Engines are started one at a time: each would see the others' processes.
static SERIAL: Mutex<()> = Mutex::new(());

const WRITE_MARKER: &str = env!("CARGO_BIN_EXE_write-marker");

/// A kernel deny (the exec of `app-deny`) and a userspace kill (a pool URL in the
/// environment, which the kernel does not read).
const POLICY: &str = r#"version: 1
rules:
  - id: deny-app
    expression: exec.file.name == "app-deny"
    action: deny
  - id: env-pool
    expression: exec.envs contains "stratum+tcp://"
    action: kill
"#;

/// A work directory with `app-deny` (a `write-marker` copy) and [`POLICY`] in it.
fn workdir() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let work = tempfile::tempdir().unwrap();
    let app = install(Path::new(WRITE_MARKER), work.path(), "app-deny");
    let policy = work.path().join("policy.yaml");
    std::fs::write(&policy, POLICY).unwrap();
    (work, app, policy)
}

/// A tmpfs of `size` mounted at `dir`, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mount tmpfs on {}: {status}",
            dir.display()
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the file system of `dir` with `dir/filler` until a write fails.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 4096];
    while file.write_all(&chunk).is_ok() {}
    // The last bytes of a page.
    while file.write_all(&[0]).is_ok() {}
    path
}

/// Runs `app` (a `write-marker` copy) with a marker in `dir`; true when it was let run.
fn ran(app: &Path, dir: &Path) -> bool {
    let marker = dir.join("marker");
    let _ = std::fs::remove_file(&marker);
    let status = Command::new(app).arg(&marker).arg("x").status().unwrap();
    assert_eq!(marker.exists(), status.signal() != Some(libc::SIGKILL));
    marker.exists()
}

/// Starts `sleeper` with a pool URL in its environment; returns how it ended (the daemon
/// kills it after the exec).
fn env_miner_ends(sleeper: &Path) -> std::process::ExitStatus {
    let mut child = Command::new(sleeper)
        .arg("30")
        .env("POOL_URL", "stratum+tcp://pool.example.com:3333")
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// 50 execs of `/bin/true` run, and `app` is still denied (while a log cannot be written).
fn execs_go_on_and_the_kernel_still_denies(app: &Path, work: &Path) {
    for _ in 0..50 {
        assert!(Command::new("/bin/true").status().unwrap().success());
    }
    assert!(!ran(app, work), "the kernel still denies");
}

fn engine_alive(engine: &Engine) -> bool {
    std::fs::read_to_string(format!("/proc/{}/stat", engine.pid()))
        .is_ok_and(|stat| !stat.contains(") Z "))
}

#[test]
fn a_full_disk_under_the_audit_log_does_not_stop_enforcement() {
    if !can_run("a_full_disk_under_the_audit_log_does_not_stop_enforcement") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (work, app, policy) = workdir();
    let sleeper = install(Path::new("/bin/sleep"), work.path(), "sleeper");
    let logs = work.path().join("logs");
    let _tmpfs = Tmpfs::mount(&logs, "1m");
    let mut engine = Engine::start_at(
        &logs,
        &policy,
        "block",
        &["--policy-watch", "1s", "--audit-max-mib", "0"],
    );
    let filler = fill(&logs);

    // The log takes nothing now: the engine goes on deciding, in the kernel and in userspace.
    execs_go_on_and_the_kernel_still_denies(&app, work.path());
    let status = env_miner_ends(&sleeper);
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "the daemon still kills: {status}"
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert!(engine_alive(&engine), "the engine is still running");
    assert!(
        !engine.records().iter().any(|r| r["type"] == "audit_lost"),
        "nothing can be written yet"
    );

    // Room again: the next try writes what was lost, then the held actions.
    std::fs::remove_file(&filler).unwrap();
    let lost = engine.wait_for(Duration::from_secs(20), "the audit_lost record", |r| {
        r["type"] == "audit_lost"
    });
    eprintln!("{lost}");
    assert!(lost["events_lost"].as_u64().unwrap() > 0, "{lost}");
    assert!(lost["records_held"].as_u64().unwrap() >= 2, "{lost}");
    assert_eq!(lost["records_lost"], 0, "{lost}");
    assert!(
        lost["error"]
            .as_str()
            .unwrap()
            .contains("No space left on device"),
        "{lost}"
    );
    assert!(!ran(&app, work.path()));
    let records = engine.stop();
    let at = records
        .iter()
        .position(|r| r["type"] == "audit_lost")
        .unwrap();
    let held_kill = |rule: &str, decided_in: &str| {
        records[at..].iter().any(|r| {
            r["type"] == "action"
                && r["action"] == "kill"
                && r["rule"] == rule
                && r["decided_in"] == decided_in
        })
    };
    assert!(held_kill("deny-app", "kernel"), "{records:#?}");
    assert!(held_kill("env-pool", "userspace"), "{records:#?}");
    assert!(records.iter().any(|r| r["type"] == "engine_stop"));
    // No line was left in part: a write the full disk cut short was cut off the file.
    let text = std::fs::read_to_string(engine_log(&logs)).unwrap();
    let unreadable = text
        .lines()
        .filter(|l| serde_json::from_str::<Value>(l).is_err())
        .count();
    assert_eq!(unreadable, 0, "torn or corrupt lines in the log");
}

fn engine_log(dir: &Path) -> PathBuf {
    dir.join("audit-block.jsonl")
}

/// A block-mode engine whose logs rotate past 1 MiB, two rotated files kept, with `extra`.
fn start_rotating(work: &Path, policy: &Path, extra: &[&str]) -> Engine {
    let mut args = vec![
        "--policy-watch",
        "off",
        "--audit-max-mib",
        "1",
        "--audit-keep",
        "2",
    ];
    args.extend_from_slice(extra);
    Engine::start_at(work, policy, "block", &args)
}

/// `app` killed, 1,500 execs of `/bin/true` (about 2.5 KB of event records each: three or
/// more log files' worth), `app` killed again.
fn kill_around_a_busy_spell(app: &Path, work: &Path) {
    assert!(!ran(app, work));
    for _ in 0..1500 {
        Command::new("/bin/true").status().unwrap();
    }
    assert!(!ran(app, work));
}

#[test]
fn a_log_past_its_size_is_rotated_and_reported_whole() {
    if !can_run("a_log_past_its_size_is_rotated_and_reported_whole") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (work, app, policy) = workdir();
    let engine = start_rotating(work.path(), &policy, &[]);
    kill_around_a_busy_spell(&app, work.path());
    engine.stop();
    let log = engine_log(work.path());
    let rotated = |n: u32| PathBuf::from(format!("{}.{n}", log.display()));
    assert!(
        rotated(1).exists() && rotated(2).exists(),
        "rotated twice or more"
    );
    assert!(!rotated(3).exists(), "--audit-keep 2");
    for file in [rotated(2), rotated(1), log.clone()] {
        let len = std::fs::metadata(&file).unwrap().len();
        assert!(len <= 1 << 20, "{} is {len} bytes", file.display());
    }
    // The report reads the three files as one log, oldest first.
    let out = Command::new(host::enforcer_bin())
        .args(["report", "--format", "json", "--audit-log"])
        .arg(&log)
        .output()
        .unwrap();
    assert!(out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["source"]["files"].as_array().unwrap().len(), 3);
    assert_eq!(report["source"]["corrupt"], 0);
    assert_eq!(report["source"]["torn_tail"], 0);
    let kills = report["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == "deny-app")
        .map(|r| r["actions"]["kill"].as_u64().unwrap_or(0));
    // The first kill may be in a file rotated away; the last is in the newest files.
    assert!(kills.is_some_and(|k| k >= 1), "{report:#}");
    let current = std::fs::read_to_string(&log).unwrap();
    let last: Value = serde_json::from_str(current.lines().last().unwrap()).unwrap();
    assert_eq!(
        last["type"], "engine_stop",
        "the stop is in the current file"
    );
}

/// `--events-log`: the activity rotates in its own files, and the audit log keeps every
/// action, the first kill included, however busy the host.
#[test]
fn an_events_log_keeps_activity_from_rotating_actions_out_of_the_audit_log() {
    if !can_run("an_events_log_keeps_activity_from_rotating_actions_out_of_the_audit_log") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (work, app, policy) = workdir();
    let events = work.path().join("events.jsonl");
    let engine = start_rotating(
        work.path(),
        &policy,
        &["--events-log", events.to_str().unwrap()],
    );
    kill_around_a_busy_spell(&app, work.path());
    engine.stop();
    let rotated = |log: &Path, n: u32| PathBuf::from(format!("{}.{n}", log.display()));
    let log = engine_log(work.path());
    assert!(!rotated(&log, 1).exists(), "the audit log did not rotate");
    assert!(
        rotated(&events, 1).exists() && rotated(&events, 2).exists(),
        "the events log rotated twice or more"
    );
    assert!(!rotated(&events, 3).exists(), "--audit-keep 2");
    let records = |path: &Path| -> Vec<Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let audit = records(&log);
    let types: Vec<&str> = audit.iter().filter_map(|r| r["type"].as_str()).collect();
    assert!(!types.contains(&"event"), "{types:?}");
    assert_eq!(types.first(), Some(&"engine_start"));
    assert_eq!(types.last(), Some(&"engine_stop"));
    assert_eq!(audit[0]["events_log"], events.to_str().unwrap());
    let kills: Vec<&Value> = audit
        .iter()
        .filter(|r| r["type"] == "action" && r["rule"] == "deny-app")
        .collect();
    assert_eq!(kills.len(), 2, "both kills, the first one too: {types:?}");
    assert!(
        kills
            .iter()
            .all(|k| k["event"]["exec"]["file"]["name"] == "app-deny"),
        "an action carries its event: {kills:?}"
    );
    // The activity is in the events log, each file within its budget.
    let current = records(&events);
    assert!(current.iter().all(|r| r["type"] == "event"));
    assert!(
        current
            .iter()
            .any(|r| r["event"]["kind"] == "exec" && r["event"]["exec"]["file"]["name"] == "true"),
        "the execs of /bin/true are in the events log"
    );
    for file in [rotated(&events, 2), rotated(&events, 1), events.clone()] {
        let len = std::fs::metadata(&file).unwrap().len();
        assert!(len <= 1 << 20, "{} is {len} bytes", file.display());
    }
}

#[test]
fn a_log_deleted_while_the_engine_runs_is_started_again() {
    if !can_run("a_log_deleted_while_the_engine_runs_is_started_again") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (work, app, policy) = workdir();
    let mut engine = Engine::start_at(
        work.path(),
        &policy,
        "block",
        &["--policy-watch", "off", "--events", "none"],
    );
    // Removing evidence: the log is deleted under the running engine.
    std::fs::remove_file(engine_log(work.path())).unwrap();
    let reopened = engine.wait_for(Duration::from_secs(10), "audit_reopened", |r| {
        r["type"] == "audit_reopened"
    });
    assert_eq!(reopened["found"], "deleted or moved", "{reopened}");
    assert!(!ran(&app, work.path()));
    let records = engine.stop();
    let types: Vec<&str> = records
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["audit_reopened", "action", "engine_stop"],
        "{records:#?}"
    );
    assert_eq!(records[1]["rule"], "deny-app");
}

#[test]
fn engine_stats_records_give_the_counters_while_the_engine_runs() {
    if !can_run("engine_stats_records_give_the_counters_while_the_engine_runs") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (work, _, policy) = workdir();
    let mut engine = Engine::start_at(
        work.path(),
        &policy,
        "block",
        &[
            "--policy-watch",
            "off",
            "--events",
            "none",
            "--stats-interval",
            "1s",
        ],
    );
    for _ in 0..20 {
        Command::new("/bin/true").status().unwrap();
    }
    let first = engine.wait_for(Duration::from_secs(10), "engine_stats", |r| {
        r["type"] == "engine_stats"
    });
    let later = engine.wait_for(Duration::from_secs(10), "a later engine_stats", |r| {
        r["type"] == "engine_stats" && r["ts"].as_str() > first["ts"].as_str()
    });
    let records = engine.stop();
    let stop = records.iter().find(|r| r["type"] == "engine_stop").unwrap();
    for stats in [&first, &later] {
        assert!(stats["period_s"].as_u64().unwrap() <= 2, "{stats}");
        assert_eq!(stats["records_lost_since_last"], 0, "{stats}");
        assert!(stats["counters"]["ringbuf_full"].is_u64(), "{stats}");
    }
    // Counters so far: they only grow, and the stop's are the last.
    let execs = |r: &Value| r["counters"]["exec_seen"].as_u64().unwrap();
    assert!(execs(&later) >= 20, "{later}");
    assert!(execs(&first) <= execs(&later) && execs(&later) <= execs(stop));
}

#[test]
fn a_symbolic_link_at_the_audit_log_path_is_refused() {
    if !can_run("a_symbolic_link_at_the_audit_log_path_is_refused") {
        return;
    }
    let (work, _, policy) = workdir();
    // What someone who can write a shared log directory could plant.
    let target = work.path().join("precious");
    std::fs::write(&target, "untouched\n").unwrap();
    let log = work.path().join("audit.jsonl");
    std::os::unix::fs::symlink(&target, &log).unwrap();
    let out = Command::new(host::enforcer_bin())
        .args(["run", "--quiet", "--on-crash", "stop", "--policy"])
        .arg(&policy)
        .arg("--audit-log")
        .arg(&log)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("is a symbolic link"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "untouched\n");
}

/// An events log on a disk of its own that fills: the audit log (elsewhere) is told when the
/// events log starts failing and when it can be written again, and enforcement goes on.
#[test]
fn a_full_disk_under_the_events_log_is_reported_in_the_audit_log() {
    if !can_run("a_full_disk_under_the_events_log_is_reported_in_the_audit_log") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (work, app, policy) = workdir();
    let logs = work.path().join("events");
    let _tmpfs = Tmpfs::mount(&logs, "1m");
    let events = logs.join("events.jsonl");
    let mut engine = Engine::start_at(
        work.path(),
        &policy,
        "block",
        &[
            "--policy-watch",
            "off",
            "--audit-max-mib",
            "0",
            "--events-log",
            events.to_str().unwrap(),
        ],
    );
    let filler = fill(&logs);
    execs_go_on_and_the_kernel_still_denies(&app, work.path());
    let failing = engine.wait_for(
        Duration::from_secs(20),
        "the events_log_failing record",
        |r| r["type"] == "events_log_failing",
    );
    assert_eq!(failing["events_log"], events.to_str().unwrap(), "{failing}");
    assert!(
        failing["error"]
            .as_str()
            .unwrap_or("")
            .contains("No space left on device"),
        "{failing}"
    );
    std::fs::remove_file(&filler).unwrap();
    // The drain tick tries the events log again every second.
    let restored = engine.wait_for(
        Duration::from_secs(20),
        "the events_log_restored record",
        |r| r["type"] == "events_log_restored",
    );
    assert!(
        restored["events_lost"].as_u64().unwrap_or(0) > 0,
        "{restored}"
    );
    assert_eq!(restored["since"], failing["since"], "{restored}");
    let records = engine.stop();
    let count = |kind: &str| records.iter().filter(|r| r["type"] == kind).count();
    assert_eq!(count("events_log_failing"), 1, "one record per outage");
    assert_eq!(count("events_log_restored"), 1);
    assert!(
        records
            .iter()
            .any(|r| r["type"] == "action" && r["rule"] == "deny-app"),
        "the kill is in the audit log"
    );
    let first: Value = serde_json::from_str(
        std::fs::read_to_string(&events)
            .unwrap()
            .lines()
            .find(|l| l.contains("\"audit_lost\""))
            .expect("the events log's own audit_lost record"),
    )
    .unwrap();
    assert_eq!(first["since"], failing["since"]);
}
