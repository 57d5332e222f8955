//! The kill breaker with the real programs (signal tier, host kernel): a kernel kill rule
//! that would kill more distinct binaries than its `breaker:` allows is disarmed by the
//! daemon: one `disarmed` record, its kernel plan entries are rewritten in monitor mode, and
//! the next matching exec runs, recorded as `would_kill` (outcome `disarmed`). The other rails
//! have their own tests: `--never-kill` in `host_never_kill.rs`, PID reuse and the protected
//! processes in `enforcer/src/actions/` unit tests.
//! Needs root; skips loudly otherwise (fails under ENFORCER_REQUIRE_HOST=1, as in CI).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod host;

use std::{os::unix::process::ExitStatusExt as _, path::Path, process::Command, time::Duration};

use host::{Engine, actions, can_run, install};

const WRITE_MARKER: &str = env!("CARGO_BIN_EXE_write-marker");

const POLICY: &str = r#"version: 1
rules:
  - id: rail-kill
    description: test rule, kills four test binaries by name, at most two of them
    severity: high
    expression: exec.file.name in ("rail-a", "rail-b", "rail-c", "rail-d")
    action: kill
    breaker: {max_targets: 2, window: 1m}
"#;

/// Runs the payload `name`; true when it was killed before writing its marker.
fn killed(dir: &Path, name: &str) -> bool {
    let exe = install(Path::new(WRITE_MARKER), dir, name);
    let marker = dir.join(format!("{name}.ran"));
    let status = Command::new(exe).arg(&marker).arg("x").status().unwrap();
    let killed = status.signal() == Some(libc::SIGKILL);
    assert_eq!(killed, !marker.exists(), "{name}: {status}");
    killed
}

#[test]
fn a_kernel_kill_rule_past_its_breaker_is_disarmed_in_the_kernel_too() {
    if !can_run("a_kernel_kill_rule_past_its_breaker_is_disarmed_in_the_kernel_too") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut engine = Engine::start(dir.path(), POLICY, "block");
    assert!(killed(dir.path(), "rail-a"), "first target");
    assert!(killed(dir.path(), "rail-b"), "second target");
    // The third distinct binary is killed in the kernel (the plan is armed when it runs);
    // the daemon counts it and trips the breaker.
    assert!(
        killed(dir.path(), "rail-c"),
        "third target, killed before the trip"
    );
    let disarmed = engine.wait_for(Duration::from_secs(20), "disarmed record", |r| {
        r["type"] == "action" && r["action"] == "disarmed" && r["rule"] == "rail-kill"
    });
    println!("disarmed: {disarmed}");
    assert!(
        !killed(dir.path(), "rail-d"),
        "after the trip the kernel plan is in monitor mode"
    );
    let records = engine.stop();
    let kills = actions(&records, "kill", Some("rail-kill"));
    assert_eq!(kills.len(), 3, "{kills:#?}");
    let would = actions(&records, "would_kill", Some("rail-kill"));
    assert_eq!(would.len(), 1, "{records:#?}");
    assert_eq!(would[0]["event"]["exec"]["file"]["name"], "rail-d");
    assert_eq!(would[0]["report"]["outcome"], "disarmed", "{:#}", would[0]);
    assert_eq!(would[0]["decided_in"], "kernel");
    assert_eq!(actions(&records, "disarmed", Some("rail-kill")).len(), 1);
}
