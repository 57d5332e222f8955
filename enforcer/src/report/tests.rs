#![allow(clippy::unwrap_used)]
use serde_json::json;

use super::*;

fn action(ts: &str, action: &str, rule: &str, exe: &str, container: &str) -> Value {
    json!({"ts": ts, "type": "action", "action": action, "rule": rule, "severity": "high",
           "decided_in": "kernel", "tier": "lsm",
           "report": {"response_us": 40},
           "event": {"kind": "exec",
                     "exec": {"file": {"path": exe}, "argv0": "xmrig",
                              "args": ["-o", "pool.example:3333"]},
                     "process": {"pid": 42, "comm": "x", "container": {"id": container},
                                 "ancestors": [{"file": {"path": "/bin/bash"}}]}}})
}

fn aggregate(records: &[Value]) -> AuditReport {
    let mut aggregator = Aggregator::new("audit.jsonl", None, None);
    for r in records {
        aggregator.add(r);
    }
    aggregator.finish()
}

#[test]
fn actions_are_summed_per_rule_with_their_targets() {
    let records = vec![
        json!({"ts": "2026-01-01T00:00:00Z", "type": "engine_start", "mode": "monitor",
               "tier": "monitor", "kernel": "6.12", "policy": "policy/default", "rules": 30,
               "version": "0.1.0"}),
        action(
            "2026-01-01T00:00:01Z",
            "would_kill",
            "miner-name",
            "/tmp/xmrig",
            "",
        ),
        action(
            "2026-01-01T00:00:02Z",
            "would_kill",
            "miner-name",
            "/tmp/xmrig",
            "",
        ),
        action(
            "2026-01-01T00:00:03Z",
            "would_kill",
            "miner-name",
            "/opt/minerd",
            "abcdef0123456789",
        ),
        action(
            "2026-01-01T00:00:04Z",
            "alert",
            "shell-in-container",
            "/bin/sh",
            "abcdef0123456789",
        ),
        json!({"ts": "2026-01-01T00:00:05Z", "type": "event", "event": {"kind": "exec"}}),
        json!({"ts": "2026-01-01T00:00:06Z", "type": "policy_reload", "trigger": "sighup",
               "outcome": "refused", "policy_generation": 1, "added": [], "removed": [],
               "reason": "p.yaml:3:5: unknown field"}),
        json!({"ts": "2026-01-01T00:00:07Z", "type": "engine_stop", "reason": "SIGTERM"}),
    ];
    let report = aggregate(&records);
    assert!(report.dry_run());
    assert_eq!(report.runs.len(), 1);
    let run = &report.runs[0];
    assert_eq!(run.stop_reason.as_deref(), Some("SIGTERM"));
    assert_eq!(run.reloads[0].outcome, "refused");
    assert_eq!(report.rules.len(), 2);
    let miner = &report.rules[0];
    assert_eq!(miner.rule, "miner-name", "enforcing rules first");
    assert_eq!(miner.actions["would_kill"], 3);
    assert_eq!(miner.executables, 2);
    assert_eq!(
        miner.top_executables[0],
        Target {
            name: "/tmp/xmrig".into(),
            count: 2
        }
    );
    assert_eq!(miner.containers, 2);
    assert!(miner.top_containers.iter().any(|c| c.name == "host"));
    assert!(
        miner
            .top_containers
            .iter()
            .any(|c| c.name == "abcdef012345")
    );
    assert_eq!(
        (miner.first_seen.as_str(), miner.last_seen.as_str()),
        ("2026-01-01T00:00:01Z", "2026-01-01T00:00:03Z")
    );
    assert!(miner.response_us.is_empty(), "nothing was performed");
    assert_eq!(report.would_act().count(), 1);
    let sample = miner.sample.as_ref().unwrap();
    assert_eq!(
        (
            sample.at.as_str(),
            sample.executable.as_str(),
            sample.cmdline.as_str()
        ),
        (
            "2026-01-01T00:00:01Z",
            "/tmp/xmrig",
            "xmrig -o pool.example:3333"
        ),
    );
    assert_eq!(sample.parent.as_deref(), Some("/bin/bash"));
    assert!(
        markdown::render(&report)
            .contains("first, pid 42: xmrig -o pool.example:3333 (parent /bin/bash)")
    );
    assert_eq!(report.events["exec"], 1);
    assert_eq!(report.actions["alert"], 1);
}

#[test]
fn response_times_of_performed_actions_and_the_time_window() {
    let mut records: Vec<Value> = (0..100)
        .map(|i| {
            let mut r = action(
                &format!("2026-01-01T00:01:{:02}Z", i % 60),
                "kill",
                "k",
                "/x",
                "",
            );
            r["report"]["response_us"] = json!(i + 1);
            r
        })
        .collect();
    records.push(action("2026-01-02T00:00:00Z", "kill", "late", "/y", ""));
    let report = aggregate(&records);
    let p = report
        .rules
        .iter()
        .find(|r| r.rule == "k")
        .unwrap()
        .response_us["kernel"];
    assert_eq!((p.n, p.p50, p.p99, p.max), (100, 50, 99, 100));
    let mut windowed = Aggregator::new("a", Some("2026-01-02T00:00:00Z".into()), None);
    for r in &records {
        windowed.add(r);
    }
    let windowed = windowed.finish();
    assert_eq!(windowed.source.records, 101);
    assert_eq!(windowed.source.in_window, 1);
    assert_eq!(windowed.rules.len(), 1);
    assert_eq!(windowed.rules[0].rule, "late");
}

#[test]
fn targets_and_rules_are_bounded() {
    let mut aggregator = Aggregator::new("a", None, None);
    for i in 0..(MAX_TARGETS + 50) {
        aggregator.add(&action("t", "kill", "r", &format!("/bin/{i}"), ""));
    }
    for i in 0..(MAX_RULES + 5) {
        aggregator.add(&action("t", "alert", &format!("rule-{i}"), "/x", ""));
    }
    let report = aggregator.finish();
    let r = report.rules.iter().find(|r| r.rule == "r").unwrap();
    assert_eq!(r.executables, MAX_TARGETS + 1, "the rest counted as one");
    assert_eq!(r.top_executables[0].name, OTHER_TARGETS);
    assert_eq!(r.top_executables[0].count, 50);
    assert_eq!(r.top_executables.len(), TOP_TARGETS);
    assert_eq!(
        report.rules.len(),
        MAX_RULES + 1,
        "and the bucket of the rest"
    );
    let other = report.rules.iter().find(|r| r.rule == OTHER_RULES).unwrap();
    assert_eq!(other.actions["alert"], 6);
}

#[test]
fn renderings_escape_what_the_log_holds() {
    let records = vec![
        json!({"ts": "t0", "type": "engine_start", "mode": "block", "tier": "lsm"}),
        action("t1", "kill", "<script>alert(1)</script>", "/tmp/a|b", ""),
    ];
    let report = aggregate(&records);
    let page = html::render(&report);
    assert!(!page.contains("<script>"), "{page}");
    assert!(page.contains("&lt;script&gt;"));
    let md = markdown::render(&report);
    assert!(md.contains("/tmp/a\\|b (1)"), "{md}");
    assert!(md.contains("## Rules"));
    assert!(
        !md.contains("would have acted"),
        "a block run acted for real"
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["rules"][0]["actions"]["kill"], 1);
}

#[test]
fn percentiles_by_nearest_rank() {
    assert_eq!(Percentiles::of(&mut []), None);
    let one = Percentiles::of(&mut [7]).unwrap();
    assert_eq!((one.p50, one.p99, one.max), (7, 7, 7));
    let p = Percentiles::of(&mut [5, 1, 4, 2, 3]).unwrap();
    assert_eq!((p.n, p.p50, p.p99, p.max), (5, 3, 5, 5));
}

#[test]
fn kernel_records_lost_are_the_runs_last_count() {
    let start = json!({"ts": "2026-01-01T00:00:00Z", "type": "engine_start", "mode": "block"});
    let stats = |ts: &str, lost: u64| json!({"ts": ts, "type": "engine_stats", "counters": {"ringbuf_full": lost}});
    let report = aggregate(&[
        start.clone(),
        stats("2026-01-01T00:01:00Z", 5),
        json!({"ts": "2026-01-01T00:02:00Z", "type": "engine_stop",
               "counters": {"ringbuf_full": 9}}),
        start,
        stats("2026-01-01T00:04:00Z", 3),
    ]);
    let lost: Vec<u64> = report.runs.iter().map(|r| r.kernel_records_lost).collect();
    assert_eq!(lost, [9, 3], "each run's total, not a sum of its records");
    let note = report.kernel_lost_note().unwrap();
    assert!(note.contains("could not hand 12 record(s)"), "{note}");
    assert!(aggregate(&[]).kernel_lost_note().is_none());
}

#[test]
fn events_log_outages_are_counted_and_an_unended_one_is_said() {
    let failing = |ts: &str| {
        json!({"ts": ts, "type": "events_log_failing",
                                    "events_log": "/var/log/e.jsonl", "since": ts,
                                    "error": "No space left on device"})
    };
    let report = aggregate(&[
        failing("2026-01-01T00:00:00Z"),
        json!({"ts": "2026-01-01T00:01:00Z", "type": "events_log_restored",
               "events_log": "/var/log/e.jsonl", "events_lost": 40}),
        failing("2026-01-01T00:02:00Z"),
    ]);
    let source = &report.source;
    assert_eq!(
        (
            source.events_log_outages,
            source.events_log_events_lost,
            source.events_log_unended
        ),
        (2, 40, 1)
    );
    let note = source.events_log_note().unwrap();
    assert!(
        note.contains("2 time(s): 40 event record(s)")
            && note.contains("1 outage(s) had not ended"),
        "{note}"
    );
    assert!(report.warnings().contains(&note));
    assert!(aggregate(&[]).source.events_log_note().is_none());
}

#[test]
fn a_run_whose_start_was_rotated_away_is_still_a_run() {
    let report = aggregate(&[
        json!({"ts": "2026-01-01T00:01:00Z", "type": "policy_reload", "outcome": "applied",
               "policy_generation": 2}),
        json!({"ts": "2026-01-01T00:02:00Z", "type": "engine_stop", "reason": "SIGTERM",
               "counters": {"ringbuf_full": 0}}),
    ]);
    assert_eq!(report.runs.len(), 1);
    let run = &report.runs[0];
    assert_eq!(run.started, START_UNSEEN);
    assert_eq!(run.stop_reason.as_deref(), Some("SIGTERM"));
    assert_eq!(run.reloads.len(), 1);
}

#[test]
fn refused_tamper_attempts_are_counted_by_guard_and_named_in_every_format() {
    let tamper = |ts: &str, guard: &str, exe: &str| {
        json!({"ts": ts, "type": "tamper_denied",
               "event": {"kind": "tamper", "tamper": {"guard": guard},
                         "process": {"pid": 77, "file": {"path": exe}, "argv": [exe]}}})
    };
    let report = aggregate(&[
        json!({"ts": "2026-01-01T00:00:00Z", "type": "engine_start", "mode": "block"}),
        tamper("2026-01-01T00:00:01Z", "signal", "/usr/bin/kill"),
        tamper("2026-01-01T00:00:02Z", "signal", "/usr/bin/kill"),
        tamper("2026-01-01T00:00:03Z", "unpin", "/usr/bin/rm"),
    ]);
    let by_guard: Vec<(&str, u64)> = report
        .tamper
        .by_guard
        .iter()
        .map(|(g, n)| (g.as_str(), *n))
        .collect();
    assert_eq!(by_guard, [("signal", 2), ("unpin", 1)]);
    let note = report.tamper.note().unwrap();
    assert!(
        note.contains("refused 3 attempt(s)") && note.contains("/usr/bin/rm (pid 77)"),
        "{note}"
    );
    assert!(markdown::render(&report).contains("refused 3 attempt(s)"));
    assert!(html::render(&report).contains("refused 3 attempt(s)"));
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["tamper"]["by_guard"]["signal"], 2);
    assert!(aggregate(&[]).tamper.note().is_none());
}

/// Any bytes as an audit log: the reader and the aggregator take them, and every format
/// renders, without a panic (the property-test twin of the `audit_report` fuzz target).
mod arbitrary_logs {
    use proptest::prelude::*;

    use super::*;
    use crate::audit::AuditReader;

    /// Lines that look like records enough to reach the aggregator's branches.
    fn line() -> impl Strategy<Value = Vec<u8>> {
        let types = prop_oneof![
            Just("engine_start"),
            Just("engine_stop"),
            Just("engine_gap"),
            Just("policy_reload"),
            Just("audit_lost"),
            Just("audit_reopened"),
            Just("events_log_failing"),
            Just("events_log_restored"),
            Just("tamper_denied"),
            Just("event"),
            Just("action"),
        ];
        let value = prop_oneof![
            Just("null".to_owned()),
            any::<i64>().prop_map(|n| n.to_string()),
            "[^\"\\\\]{0,12}".prop_map(|s| format!("\"{s}\"")),
            Just("{\"exec\":{\"file\":{\"path\":\"|<b>\"}}}".to_owned()),
            Just("[1,\"a\"]".to_owned()),
        ];
        let key = prop_oneof![
            Just("ts"),
            Just("action"),
            Just("rule"),
            Just("event"),
            Just("report"),
            Just("events_lost"),
            Just("added"),
            Just("decided_in"),
        ];
        (
            types,
            proptest::collection::vec((key, value), 0..6),
            any::<bool>(),
        )
            .prop_map(|(kind, fields, torn)| {
                let body: Vec<String> =
                    fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                let mut line = format!("{{\"type\":\"{kind}\",{}}}", body.join(",")).into_bytes();
                if torn {
                    line.truncate(line.len() / 2);
                }
                line
            })
    }

    proptest! {
        #[test]
        fn any_log_reads_aggregates_and_renders(
            lines in proptest::collection::vec(line(), 0..40),
            noise in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let mut text = lines.join(&b"\n"[..]);
            text.extend_from_slice(&noise);
            let mut aggregator = Aggregator::new("a.jsonl", None, Some("2026".to_owned()));
            let summary = AuditReader::for_each(&text[..], |record| aggregator.add(&record)).unwrap();
            aggregator.read_summary("a.jsonl", summary);
            let report = aggregator.finish();
            let _ = super::super::markdown::render(&report);
            let _ = super::super::html::render(&report);
            let _ = serde_json::to_string(&report).unwrap();
        }
    }
}

#[test]
fn denies_whose_connection_was_not_aborted_are_counted_and_warned_about() {
    let deny = |ts: &str, aborted: bool| {
        let mut record = action(ts, "deny", "stratum-login-deny", "/tmp/miner", "");
        record["connection"] = if aborted {
            json!({"aborted": true})
        } else {
            json!({"aborted": false, "error": "no netns to enter"})
        };
        record
    };
    let report = aggregate(&[
        json!({"ts": "2026-01-01T00:00:00Z", "type": "engine_start", "mode": "block",
               "tier": "signal", "security_hooks": "fentry", "kernel": "6.12",
               "policy": "p", "rules": 3, "version": "0.1.0"}),
        deny("2026-01-01T00:00:01Z", true),
        deny("2026-01-01T00:00:02Z", false),
        deny("2026-01-01T00:00:03Z", false),
    ]);
    let rule = report
        .rules
        .iter()
        .find(|r| r.rule == "stratum-login-deny")
        .unwrap();
    assert_eq!(rule.connections_not_aborted, 2);
    assert_eq!(
        rule.last_detail.as_deref(),
        Some("connection not aborted: no netns to enter")
    );
    let note = report.not_aborted_note().unwrap();
    assert!(note.contains("stratum-login-deny (2)"), "{note}");
    assert!(report.warnings().contains(&note));
    assert_eq!(report.runs[0].tier_and_hooks(), "signal, fentry");
    let lsm = Run {
        tier: "lsm".to_owned(),
        security_hooks: "lsm".to_owned(),
        ..Run::default()
    };
    assert_eq!(lsm.tier_and_hooks(), "lsm");
    let tracepoints = Run {
        tier: "signal".to_owned(),
        security_hooks: "tracepoints (fentry program ... does not load)".to_owned(),
        ..Run::default()
    };
    assert_eq!(tracepoints.tier_and_hooks(), "signal, tracepoints");
    assert!(aggregate(&[]).not_aborted_note().is_none());
}
