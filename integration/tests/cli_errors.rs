//! Bad input to the engine's command line: a non-zero exit with a one-line reason naming the
//! file. These need no root (the policy is read before anything is loaded).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod host;

use std::process::Command;

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(host::enforcer_bin())
        .args(args)
        .output()
        .expect("run enforcer");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_missing_policy_is_refused_naming_the_file() {
    let (code, stderr) = run(&["run", "--policy", "/nonexistent/policy.yaml"]);
    assert_ne!(code, 0);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("enforcer: error:"), "{stderr}");
    assert!(last.contains("/nonexistent/policy.yaml"), "{stderr}");
}

#[test]
fn an_invalid_policy_is_refused_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("bad.yaml");
    std::fs::write(
        &policy,
        "version: 1\nrules:\n  - id: r\n    description: d\n    severity: high\n    expression: exec.file.nmae == \"x\"\n    action: deny\n",
    )
    .unwrap();
    let (code, stderr) = run(&["run", "--policy", policy.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("bad.yaml:6:17"),
        "one-line reason names file:line:col: {stderr}"
    );
}

#[test]
fn an_unknown_mode_is_a_usage_error() {
    let (code, stderr) = run(&["run", "--policy", "x.yaml", "--mode", "maybe"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("maybe"), "{stderr}");
}

#[test]
fn keep_enforcing_in_monitor_mode_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("p.yaml");
    std::fs::write(&policy, "version: 1\nrules: []\n").unwrap();
    let policy = policy.to_str().unwrap();
    let (code, stderr) = run(&[
        "run",
        "--policy",
        policy,
        "--mode",
        "monitor",
        "--on-crash",
        "keep-enforcing",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("needs --mode block"), "{stderr}");
    let (code, stderr) = run(&["run", "--policy", policy, "--on-crash", "sometimes"]);
    assert_eq!(code, 2, "{stderr}");
}

#[test]
fn an_events_log_without_events_or_on_the_audit_log_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("p.yaml");
    std::fs::write(&policy, "version: 1\nrules: []\n").unwrap();
    let (policy, audit) = (policy.to_str().unwrap(), dir.path().join("a.jsonl"));
    let audit = audit.to_str().unwrap();
    let rotated = format!("{audit}.1");
    for (events_log, events, want) in [
        ("e.jsonl", "none", "--events-log needs --events all"),
        (audit, "all", "name the same file"),
        (&rotated, "all", "name the same file"),
    ] {
        let (code, stderr) = run(&[
            "run",
            "--policy",
            policy,
            "--audit-log",
            audit,
            "--events",
            events,
            "--events-log",
            events_log,
        ]);
        assert_eq!(code, 2, "{events_log}: {stderr}");
        assert!(stderr.contains(want), "{events_log}: {stderr}");
    }
}

/// A policy with `count` executable names to deny.
fn names_policy(count: usize) -> String {
    let names: Vec<String> = (0..count).map(|i| format!("n{i:05}")).collect();
    format!(
        "version: 1\nlists:\n  - name: names\n    type: string\n    items: [{}]\nrules:\n  - id: too-many\n    expression: exec.file.name in names\n    action: deny\n",
        names.join(", ")
    )
}

#[test]
fn a_policy_the_kernel_maps_cannot_hold_is_refused_by_check_and_run() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("big.yaml");
    std::fs::write(&policy, names_policy(4097)).unwrap();
    let policy = policy.to_str().unwrap();
    let out = Command::new(host::enforcer_bin())
        .args(["policy", "check", policy])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("EXEC_NAME_PLAN           4097 / 4096  TOO MANY"),
        "{stdout}"
    );
    let (code, stderr) = run(&["policy", "check", policy]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(
            "4097 executable names (map EXEC_NAME_PLAN holds 4096), from rule too-many at"
        ) && stderr.contains("big.yaml:7"),
        "{stderr}"
    );
    let (code, stderr) = run(&["run", "--policy", policy]);
    assert_eq!(code, 2, "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("enforcer: error: invalid policy") && last.contains("EXEC_NAME_PLAN"),
        "{stderr}"
    );
    // One name fewer fits.
    std::fs::write(dir.path().join("big.yaml"), names_policy(4096)).unwrap();
    let (code, stderr) = run(&["policy", "check", policy]);
    assert_eq!(code, 0, "{stderr}");
}
