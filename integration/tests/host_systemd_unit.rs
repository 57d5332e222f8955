//! The systemd unit (`deploy/systemd/enforcer.service`): `systemd-analyze verify` accepts it,
//! and its command lines do what the unit says when run as systemd would run them (this host's
//! init is not systemd): `ExecStart` with the unit's environment starts a monitor-mode engine
//! on the installed policy and logs (the activity in its own events log), `ExecReload`
//! reloads the policy, and SIGTERM (systemd's stop, `KillMode=process`) is a clean stop. Needs
//! root and `systemd-analyze`; skips loudly otherwise (fails under ENFORCER_REQUIRE_HOST=1, as
//! in CI).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod host;

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

/// Where the unit installs things, and what the test uses instead.
struct Installed {
    binary: PathBuf,
    policy: PathBuf,
    logs: PathBuf,
}

fn unit_text() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/systemd/enforcer.service");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `[Service]` settings of `unit` (the last value of a repeated key; `Environment` lines
/// merged into one map).
fn service(unit: &str) -> (HashMap<String, String>, HashMap<String, String>) {
    let (mut settings, mut environment) = (HashMap::new(), HashMap::new());
    let mut in_service = false;
    for line in unit.lines().map(str::trim) {
        if line.starts_with('[') {
            in_service = line == "[Service]";
            continue;
        }
        if !in_service || line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (key, value) = line.split_once('=').unwrap();
        if key == "Environment" {
            // `Environment="NAME=a value with spaces"`: the quotes are systemd's.
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            let (name, default) = value.split_once('=').unwrap();
            environment.insert(name.to_owned(), default.to_owned());
        } else {
            settings.insert(key.to_owned(), value.to_owned());
        }
    }
    (settings, environment)
}

/// `command` as systemd runs it: `${VAR}` is one word, `$VAR` splits on whitespace (nothing
/// when unset), the installed paths replaced by the test's.
fn expand(command: &str, environment: &HashMap<String, String>, at: &Installed) -> Vec<String> {
    command
        .split_whitespace()
        .flat_map(|word| {
            if let Some(name) = word.strip_prefix("${").and_then(|w| w.strip_suffix('}')) {
                vec![environment.get(name).cloned().unwrap_or_default()]
            } else if let Some(name) = word.strip_prefix('$') {
                environment
                    .get(name)
                    .map(|v| v.split_whitespace().map(str::to_owned).collect())
                    .unwrap_or_default()
            } else {
                vec![word.to_owned()]
            }
        })
        .map(|word| {
            word.replace("/usr/local/bin/enforcer", at.binary.to_str().unwrap())
                .replace("/etc/enforcer/policy", at.policy.to_str().unwrap())
                .replace("/var/log/enforcer", at.logs.to_str().unwrap())
        })
        .collect()
}

fn records(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn wait_for(log: &Path, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(r) = records(log).into_iter().find(|r| pred(r)) {
            return r;
        }
        assert!(Instant::now() < deadline, "no {what}: {:#?}", records(log));
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_systemd_unit_verifies_and_its_commands_run_reload_and_stop_the_engine() {
    if !host::can_run("the_systemd_unit_verifies_and_its_commands_run_reload_and_stop_the_engine") {
        return;
    }
    let analyze = Command::new("systemd-analyze").arg("--version").output();
    if analyze.is_err() {
        assert!(
            !host::required(),
            "systemd-analyze is missing (ENFORCER_REQUIRE_HOST=1)"
        );
        eprintln!("SKIPPED: systemd-analyze is not installed");
        return;
    }
    let unit = unit_text();
    let dir = tempfile::tempdir().unwrap();
    let at = Installed {
        binary: host::enforcer_bin(),
        policy: Path::new(env!("CARGO_MANIFEST_DIR")).join("../policy/default"),
        logs: dir.path().join("logs"),
    };
    std::fs::create_dir(&at.logs).unwrap();

    // systemd's own check, on the unit as installed but for the binary's place.
    let installed = dir.path().join("enforcer.service");
    std::fs::write(
        &installed,
        unit.replace("/usr/local/bin/enforcer", at.binary.to_str().unwrap()),
    )
    .unwrap();
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&installed)
        .output()
        .unwrap();
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&verify.stderr)
    );

    let (settings, environment) = service(&unit);
    assert_eq!(
        environment["ENFORCER_MODE"], "monitor",
        "a dry run by default"
    );
    assert_eq!(settings["KillMode"], "process");
    let start = expand(&settings["ExecStart"], &environment, &at);
    let log = at.logs.join("audit.jsonl");
    assert!(
        start.iter().any(|w| Path::new(w) == log),
        "the log goes under LogsDirectory: {start:?}"
    );
    let mut engine = Command::new(&start[0])
        .args(&start[1..])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let started = wait_for(&log, "engine_start", |r| r["type"] == "engine_start");
    assert_eq!(started["mode"], "monitor", "{started}");
    assert!(
        started["policy"]
            .as_str()
            .unwrap()
            .ends_with("policy/default"),
        "{started}"
    );

    // `systemctl reload`: the unit's ExecReload with $MAINPID.
    let mut env_with_pid = environment.clone();
    env_with_pid.insert("MAINPID".into(), engine.id().to_string());
    let reload = expand(&settings["ExecReload"], &env_with_pid, &at);
    assert!(
        Command::new(&reload[0])
            .args(&reload[1..])
            .status()
            .unwrap()
            .success()
    );
    let reloaded = wait_for(&log, "policy_reload", |r| r["type"] == "policy_reload");
    assert_eq!(reloaded["trigger"], "sighup", "{reloaded}");
    assert_eq!(reloaded["outcome"], "unchanged", "{reloaded}");

    // `systemctl stop`: SIGTERM to the main process, a clean stop.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(engine.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = engine.wait().unwrap();
    assert!(status.success(), "{status}");
    let stopped = wait_for(&log, "engine_stop", |r| r["type"] == "engine_stop");
    assert_eq!(stopped["reason"], "SIGTERM", "{stopped}");

    // The activity is in its own log (the reload command's exec at least), none in the audit
    // log.
    let events = at.logs.join("events.jsonl");
    assert_eq!(started["events_log"], events.to_str().unwrap(), "{started}");
    assert!(records(&log).iter().all(|r| r["type"] != "event"));
    let activity = records(&events);
    assert!(
        activity
            .iter()
            .any(|r| r["type"] == "event" && r["event"]["kind"] == "exec"),
        "{} records in {}",
        activity.len(),
        events.display()
    );
}
