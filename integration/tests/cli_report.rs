//! `enforcer report` on audit logs written here (no root needed): the three formats, the time
//! window, unreadable lines counted, and bad input refused with a one-line reason. The host
//! suite (`host_default_policy`) reports on the logs of real engine runs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod host;

use std::process::Command;

use serde_json::Value;

const LOG: &str = r#"{"ts":"2026-11-01T10:00:00.000000Z","type":"engine_start","mode":"monitor","tier":"monitor","kernel":"6.12","policy":"policy/default","rules":31,"version":"0.1.0"}
{"ts":"2026-11-01T10:00:01.000000Z","type":"action","action":"would_kill","rule":"miner-exec-name","severity":"critical","decided_in":"kernel","tier":"monitor","event":{"kind":"exec","exec":{"file":{"path":"/tmp/xmrig"}},"process":{"comm":"xmrig","container":{"id":""}}}}
{"ts":"2026-11-01T10:00:02.000000Z","type":"action","action":"would_kill","rule":"miner-exec-name","severity":"critical","decided_in":"kernel","tier":"monitor","event":{"kind":"exec","exec":{"file":{"path":"/tmp/xmrig"}},"process":{"comm":"xmrig","container":{"id":""}}}}
{"ts":"2026-11-01T10:00:03.000000Z","type":"action","action":"alert","rule":"pool-lookup","severity":"high","decided_in":"userspace","tier":"monitor","event":{"kind":"dns","process":{"comm":"curl","file":{"path":"/usr/bin/curl"}}}}
not json
{"ts":"2026-11-02T10:00:00.000000Z","type":"engine_stop","reason":"SIGTERM"}
{"ts":"2026-11-02T10:00:00.5"#;

fn enforcer_report(args: &[&str]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    std::fs::write(&log, LOG).unwrap();
    let out = Command::new(host::enforcer_bin())
        .arg("report")
        .arg("--audit-log")
        .arg(&log)
        .args(args)
        .output()
        .expect("run enforcer");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_dry_run_log_is_reported_rule_by_rule() {
    let (code, json, stderr) = enforcer_report(&["--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["source"]["records"], 5);
    assert_eq!(report["source"]["corrupt"], 1);
    assert_eq!(report["source"]["torn_tail"], 1);
    assert_eq!(report["runs"][0]["mode"], "monitor");
    assert_eq!(report["runs"][0]["stop_reason"], "SIGTERM");
    let rules = report["rules"].as_array().unwrap();
    assert_eq!(rules[0]["rule"], "miner-exec-name", "enforcing rules first");
    assert_eq!(rules[0]["actions"]["would_kill"], 2);
    assert_eq!(rules[0]["top_executables"][0]["name"], "/tmp/xmrig");
    assert_eq!(rules[0]["top_containers"][0]["name"], "host");
    assert_eq!(rules[1]["rule"], "pool-lookup");

    let (code, md, _) = enforcer_report(&[]);
    assert_eq!(code, 0);
    assert!(md.contains("would have acted"), "{md}");
    assert!(
        md.contains("| miner-exec-name | critical | would_kill 2 |"),
        "{md}"
    );
    assert!(md.contains("2 line(s) could not be read"), "{md}");

    let (code, html, _) = enforcer_report(&["--format", "html"]);
    assert_eq!(code, 0);
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<td>pool-lookup</td>"));
}

#[test]
fn the_time_window_keeps_the_records_inside_it() {
    let (code, json, stderr) = enforcer_report(&[
        "--format",
        "json",
        "--since",
        "2026-11-01T10:00:02Z",
        "--until",
        "2026-11-01T10:00:02Z",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let report: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(report["source"]["in_window"], 1);
    assert_eq!(report["rules"][0]["actions"]["would_kill"], 1);
}

#[test]
fn bad_input_is_refused_with_a_reason() {
    let (code, _, stderr) = enforcer_report(&["--since", "yesterday"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("yesterday"), "{stderr}");
    let out = Command::new(host::enforcer_bin())
        .args(["report", "--audit-log", "/nonexistent/audit.jsonl"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("enforcer: error: cannot read the audit log /nonexistent/audit.jsonl"),
        "{stderr}"
    );
}

#[test]
fn rotated_files_are_read_oldest_first_and_lost_records_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let start = r#"{"ts":"2026-11-01T10:00:00.000000Z","type":"engine_start","mode":"block","tier":"signal","kernel":"6.18","policy":"p","rules":1,"version":"0.1.0"}"#;
    let kill = |ts: &str| {
        format!(
            r#"{{"ts":"{ts}","type":"action","action":"kill","rule":"r","severity":"high","decided_in":"kernel","tier":"signal","event":{{"kind":"exec","exec":{{"file":{{"path":"/tmp/m"}}}},"process":{{"container":{{"id":""}}}}}}}}"#
        )
    };
    let lost = r#"{"ts":"2026-11-01T10:00:05.000000Z","type":"audit_lost","since":"2026-11-01T10:00:03.000000Z","until":"2026-11-01T10:00:05.000000Z","error":"No space left on device","events_lost":40,"records_lost":2,"records_held":1}"#;
    let stop = r#"{"ts":"2026-11-01T10:00:09.000000Z","type":"engine_stop","reason":"SIGTERM"}"#;
    // Written as `enforcer run` rotates: the oldest in .2.
    std::fs::write(
        dir.path().join("audit.jsonl.2"),
        format!("{start}\n{}\n", kill("2026-11-01T10:00:01.000000Z")),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("audit.jsonl.1"),
        format!("{}\n{lost}\n", kill("2026-11-01T10:00:02.000000Z")),
    )
    .unwrap();
    let reopened = r#"{"ts":"2026-11-01T10:00:07.000000Z","type":"audit_reopened","found":"deleted or moved","noticed":"2026-11-01T10:00:07.000000Z"}"#;
    std::fs::write(
        &log,
        format!(
            "{reopened}\n{}\n{stop}\n",
            kill("2026-11-01T10:00:06.000000Z")
        ),
    )
    .unwrap();
    let report = |extra: &[&str]| {
        let out = Command::new(host::enforcer_bin())
            .arg("report")
            .arg("--audit-log")
            .arg(&log)
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let all: Value = serde_json::from_str(&report(&["--format", "json"])).unwrap();
    let files: Vec<&str> = all["source"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().rsplit('/').next().unwrap())
        .collect();
    assert_eq!(files, ["audit.jsonl.2", "audit.jsonl.1", "audit.jsonl"]);
    assert_eq!(all["rules"][0]["actions"]["kill"], 3);
    assert_eq!(
        all["runs"][0]["stop_reason"], "SIGTERM",
        "one run across the files"
    );
    assert_eq!(all["source"]["outages"], 1);
    assert_eq!(all["source"]["events_lost"], 40);
    assert_eq!(all["source"]["records_lost"], 2);
    let md = report(&[]);
    assert!(
        md.contains("could not write the audit log 1 time(s)")
            && md.contains("40 event record(s) and 2 other record(s) were lost"),
        "{md}"
    );
    assert!(md.contains("Files read, oldest first:"), "{md}");
    assert!(md.contains("deleted or moved away 1 time(s)"), "{md}");
    assert_eq!(all["source"]["reopened"], 1);
    let html = report(&["--format", "html"]);
    assert!(html.contains("2 other record(s) were lost"), "{html}");
    // The current file alone.
    let alone: Value =
        serde_json::from_str(&report(&["--format", "json", "--no-rotated"])).unwrap();
    assert_eq!(alone["rules"][0]["actions"]["kill"], 1);
    assert_eq!(alone["source"]["files"].as_array().unwrap().len(), 1);
}
