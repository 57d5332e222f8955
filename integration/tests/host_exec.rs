//! Host-tier exec tests: load the real programs on the host kernel (no BPF LSM here, so the
//! engine runs in the signal tier) and check that a denied binary is killed before it runs user
//! code, an allowed one runs, monitor mode only records, and exec records carry argv.
//! Needs root; skips loudly otherwise (fails under ENFORCER_REQUIRE_HOST=1, as in CI).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod host;

use std::{
    os::unix::process::ExitStatusExt as _, path::Path, process::Command, sync::Mutex,
    time::Duration,
};

use host::{Engine, actions, can_run, install};
use serde_json::Value;

/// Engines are started one at a time: each would see the others' payloads.
static SERIAL: Mutex<()> = Mutex::new(());

const WRITE_MARKER: &str = env!("CARGO_BIN_EXE_write-marker");

fn policy(denied_name: &str, denied_path: &Path) -> String {
    format!(
        r#"version: 1
rules:
  - id: deny-by-name
    description: test rule, denies a payload by basename
    severity: high
    expression: exec.file.name == "{denied_name}"
    action: deny
  - id: deny-by-path
    description: test rule, denies a payload by path
    severity: high
    expression: exec.file.path == "{}"
    action: deny
"#,
        denied_path.display()
    )
}

fn exec_events<'a>(records: &'a [Value], name: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r["type"] == "event" && r["event"]["exec"]["file"]["name"] == name)
        .collect()
}

#[test]
fn block_mode_kills_denied_execs_before_user_code_and_lets_others_run() {
    if !can_run("block_mode_kills_denied_execs_before_user_code_and_lets_others_run") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let by_name = install(Path::new(WRITE_MARKER), dir.path(), "denied-by-name");
    let by_path = install(Path::new(WRITE_MARKER), dir.path(), "denied-by-path");
    let allowed = install(Path::new(WRITE_MARKER), dir.path(), "allowed-payload");
    let engine = Engine::start(dir.path(), &policy("denied-by-name", &by_path), "block");
    let start = engine
        .records()
        .into_iter()
        .find(|r| r["type"] == "engine_start")
        .unwrap();
    assert_eq!(
        start["tier"], "signal",
        "host kernel has no BPF LSM: {start}"
    );
    assert_eq!(start["mode"], "block");

    for (payload, marker) in [(&by_name, "m-name"), (&by_path, "m-path")] {
        let marker = dir.path().join(marker);
        let status = Command::new(payload)
            .arg(&marker)
            .arg("x")
            .status()
            .unwrap();
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "{} must be killed: {status}",
            payload.display()
        );
        assert!(
            !marker.exists(),
            "{} ran user code before it was killed",
            payload.display()
        );
    }
    let marker = dir.path().join("m-allowed");
    let status = Command::new(&allowed)
        .arg(&marker)
        .args(["alpha", "beta gamma"])
        .status()
        .unwrap();
    assert!(status.success(), "allowed payload: {status}");
    assert!(marker.exists(), "allowed payload did not run");

    let mut engine = engine;
    engine.wait_for(Duration::from_secs(10), "allowed exec event", |r| {
        r["type"] == "event" && r["event"]["exec"]["file"]["name"] == "allowed-payload"
    });
    let records = engine.stop();
    assert_eq!(
        actions(&records, "kill", Some("deny-by-name")).len(),
        1,
        "{records:#?}"
    );
    assert_eq!(
        actions(&records, "kill", Some("deny-by-path")).len(),
        1,
        "{records:#?}"
    );
    let kill = actions(&records, "kill", Some("deny-by-path"))[0];
    assert_eq!(
        kill["event"]["exec"]["file"]["path"],
        by_path.display().to_string()
    );
    assert_eq!(kill["decided_in"], "kernel");
    assert!(
        actions(&records, "kill", Some("deny-by-name"))
            .iter()
            .all(|r| r["tier"] == "signal")
    );

    let allowed_events = exec_events(&records, "allowed-payload");
    assert_eq!(allowed_events.len(), 1, "{records:#?}");
    let ev = &allowed_events[0]["event"];
    assert_eq!(ev["exec"]["argv0"], allowed.display().to_string());
    assert_eq!(
        ev["exec"]["args"],
        serde_json::json!([marker.display().to_string(), "alpha", "beta gamma"])
    );
    assert_eq!(ev["process"]["uid"], 0);
    assert_eq!(ev["process"]["ppid"], std::process::id());
    assert!(ev["process"]["cgroup"]["id"].as_u64().unwrap_or(0) > 0);
    assert!(
        records.iter().any(|r| r["type"] == "engine_stop"),
        "{records:#?}"
    );
}

/// `--events none`: the kernel's kill and a userspace rule's alert are written with the
/// events that caused them, and no activity is (no `event` record at all).
#[test]
fn with_events_none_only_actions_are_written() {
    if !can_run("with_events_none_only_actions_are_written") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let denied = install(Path::new(WRITE_MARKER), dir.path(), "denied-by-name");
    let watched = install(Path::new(WRITE_MARKER), dir.path(), "watched-payload");
    let policy = format!(
        "{}  - id: alert-watched\n    description: test rule, alerts on a payload in userspace\n    severity: low\n    expression: exec.file.name == \"watched-payload\" && exec.args contains \"alpha\"\n    action: alert\n",
        policy("denied-by-name", &dir.path().join("nothing"))
    );
    let mut engine = Engine::start_with(dir.path(), &policy, "block", &["--events", "none"]);
    let status = Command::new(&denied)
        .arg(dir.path().join("m-denied"))
        .status()
        .unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
    let status = Command::new(&watched)
        .arg(dir.path().join("m-watched"))
        .arg("alpha")
        .status()
        .unwrap();
    assert!(status.success(), "{status}");
    engine.wait_for(Duration::from_secs(10), "alert of alert-watched", |r| {
        r["type"] == "action" && r["rule"] == "alert-watched"
    });
    let records = engine.stop();
    let start = records
        .iter()
        .find(|r| r["type"] == "engine_start")
        .unwrap();
    assert_eq!(start["events"], "none", "{start}");
    let alert = actions(&records, "alert", Some("alert-watched"));
    assert_eq!(alert.len(), 1, "{records:#?}");
    assert_eq!(
        alert[0]["event"]["exec"]["args"][1], "alpha",
        "{}",
        alert[0]
    );
    // Forks and exits still feed the process cache (only their events are not built).
    let process = &alert[0]["event"]["process"];
    assert_eq!(process["ppid"], std::process::id(), "{process}");
    assert_eq!(
        process["ancestors"][0]["pid"],
        std::process::id(),
        "{process}"
    );
    assert_eq!(
        actions(&records, "kill", Some("deny-by-name")).len(),
        1,
        "{records:#?}"
    );
    let events: Vec<&Value> = records.iter().filter(|r| r["type"] == "event").collect();
    assert!(
        events.is_empty(),
        "event records with --events none: {events:#?}"
    );
    assert!(records.iter().any(|r| r["type"] == "engine_stop"));
}

#[test]
fn monitor_mode_records_would_kill_and_lets_the_binary_run() {
    if !can_run("monitor_mode_records_would_kill_and_lets_the_binary_run") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let by_name = install(Path::new(WRITE_MARKER), dir.path(), "denied-by-name");
    let by_path = dir.path().join("never-created");
    let mut engine = Engine::start(dir.path(), &policy("denied-by-name", &by_path), "monitor");
    let start = engine
        .records()
        .into_iter()
        .find(|r| r["type"] == "engine_start")
        .unwrap();
    assert_eq!(start["tier"], "monitor");
    assert_eq!(start["mode"], "monitor");

    let marker = dir.path().join("m-monitor");
    let status = Command::new(&by_name).arg(&marker).status().unwrap();
    assert!(status.success(), "monitor mode must not kill: {status}");
    assert!(marker.exists());
    engine.wait_for(Duration::from_secs(10), "would_kill", |r| {
        r["action"] == "would_kill"
    });
    let records = engine.stop();
    assert_eq!(
        actions(&records, "would_kill", Some("deny-by-name")).len(),
        1,
        "{records:#?}"
    );
    assert!(actions(&records, "kill", Some("deny-by-name")).is_empty());
}

/// A policy whose only rule reads `exec.envs`, so exec records carry the environment.
const ENV_POLICY: &str = r#"version: 1
rules:
  - id: watch-env
    description: test rule, reads the environment
    severity: low
    expression: exec.envs startswith "ENFORCER_TEST_VAR="
    action: alert
"#;

/// The exec event whose path is `path`.
fn exec_event_at<'a>(records: &'a [Value], path: &str) -> Option<&'a Value> {
    records
        .iter()
        .find(|r| r["type"] == "event" && r["event"]["exec"]["file"]["path"] == path)
        .map(|r| &r["event"])
}

#[test]
fn exec_records_carry_credentials_interpreter_environment_and_the_unlinked_flag() {
    use std::os::fd::AsRawFd as _;
    if !can_run("exec_records_carry_credentials_interpreter_environment_and_the_unlinked_flag") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let payload = install(Path::new(WRITE_MARKER), dir.path(), "enriched-payload");
    let script = dir.path().join("script.sh");
    // Alive for a second: its record is handled while /proc still shows its directory.
    std::fs::write(&script, "#!/bin/sh\nsleep 1\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // A file executed after its last name is gone (through the engine-side /proc path).
    let doomed = install(Path::new(WRITE_MARKER), dir.path(), "doomed-payload");
    let doomed_fd = std::fs::File::open(&doomed).unwrap();
    std::fs::remove_file(&doomed).unwrap();
    let doomed_path = format!("/proc/{}/fd/{}", std::process::id(), doomed_fd.as_raw_fd());

    let mut engine = Engine::start(dir.path(), ENV_POLICY, "block");
    let marker = dir.path().join("m-enriched");
    for (program, args) in [
        (
            payload.display().to_string(),
            vec![marker.display().to_string()],
        ),
        (script.display().to_string(), vec![]),
        (
            doomed_path.clone(),
            vec![dir.path().join("m-doomed").display().to_string()],
        ),
    ] {
        let status = Command::new(&program)
            .args(&args)
            .current_dir(dir.path())
            .env_clear()
            .env("ENFORCER_TEST_VAR", "hello")
            .env("PATH", "/usr/bin:/bin")
            .status()
            .unwrap();
        assert!(status.success(), "{program}: {status}");
    }
    engine.wait_for(Duration::from_secs(10), "the unlinked file's exec", |r| {
        r["type"] == "event" && r["event"]["exec"]["file"]["path"] == doomed_path.as_str()
    });
    let records = engine.stop();

    let ev = exec_event_at(&records, &payload.display().to_string()).expect("payload event");
    let exec = &ev["exec"];
    assert_eq!(exec["euid"], 0, "{ev}");
    // Root keeps its capabilities: CAP_SYS_ADMIN (21) among them.
    let caps = exec["caps"]["effective"].as_u64().unwrap();
    assert_ne!(caps & (1 << 21), 0, "{ev}");
    assert_ne!(exec["caps"]["permitted"].as_u64().unwrap(), 0, "{ev}");
    assert_eq!(exec["interpreter"], "", "an ELF has no interpreter: {ev}");
    // Only the entries a rule tests are written; PATH is left out and counted.
    assert_eq!(
        exec["envs"],
        serde_json::json!(["ENFORCER_TEST_VAR=hello"]),
        "{ev}"
    );
    assert_eq!(exec["envs_omitted"], 1, "{ev}");
    assert_eq!(exec["is_deleted"], false);
    assert_eq!(exec["is_memfd"], false);

    let ev = exec_event_at(&records, &script.display().to_string()).expect("script event");
    assert_eq!(ev["exec"]["interpreter"], "/bin/sh", "{ev}");
    // The working directory is walked in the kernel at the exec: every record has it, also
    // those of processes gone before the daemon handled them (nothing left in /proc).
    let cwd = dir.path().canonicalize().unwrap().display().to_string();
    assert_eq!(ev["exec"]["cwd"], cwd.as_str(), "{ev}");
    for path in [payload.display().to_string(), doomed_path.clone()] {
        let ev = exec_event_at(&records, &path).expect("exec event");
        assert_eq!(ev["exec"]["cwd"], cwd.as_str(), "{ev}");
    }

    let ev = exec_event_at(&records, &doomed_path).expect("unlinked file event");
    assert_eq!(ev["exec"]["is_deleted"], true, "{ev}");
    assert_eq!(ev["exec"]["file"]["name"], "doomed-payload", "{ev}");
    drop(doomed_fd);
}
