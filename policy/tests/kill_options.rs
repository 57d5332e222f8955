//! `kill_scope:` and `breaker:`: parsed onto `RuleInfo`, every bad value reported at its
//! line:col, and refused on rules that do not kill.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{errors, positions};
use enforcer_policy::{BreakerOverride, Code, KillScope, load_str};

const HEAD: &str =
    "rules:\n  - id: r1\n    expression: exec.file.name == \"xmrig\"\n    action: kill\n";

#[test]
fn scopes_and_breaker_reach_rule_info() {
    let src = format!(
        "{HEAD}    kill_scope: cgroup\n    breaker: {{max_targets: 3, window: 5m}}\n  - id: r2\n    expression: exec.file.name == \"minerd\"\n    action: [alert, kill]\n    kill_scope: process_group\n    breaker:\n      window: 90s\n  - id: r3\n    expression: exec.file.name == \"cpuminer\"\n    action: kill\n"
    );
    let policy = load_str("p.yaml", &src).unwrap();
    let rules = policy.rules();
    assert_eq!(rules[0].kill_scope, KillScope::Cgroup);
    assert_eq!(
        rules[0].breaker,
        Some(BreakerOverride {
            max_targets: Some(3),
            window: Some(Duration::from_secs(300)),
        })
    );
    assert_eq!(rules[1].kill_scope, KillScope::ProcessGroup);
    assert_eq!(
        rules[1].breaker,
        Some(BreakerOverride {
            max_targets: None,
            window: Some(Duration::from_secs(90)),
        })
    );
    assert_eq!(rules[2].kill_scope, KillScope::Process, "the default");
    assert_eq!(rules[2].breaker, None);
    let json = serde_json::to_value(&rules[0]).unwrap();
    assert_eq!(json["kill_scope"], "cgroup");
    assert_eq!(json["breaker"]["max_targets"], 3);
    assert_eq!(json["breaker"]["window_ms"], 300_000);
}

#[test]
fn a_bad_scope_is_reported_at_its_value() {
    let src = format!("{HEAD}    kill_scope: session\n");
    assert_eq!(positions(&src), vec![(Code::BadValue, "5:17".to_string())]);
    let text = errors(&src).to_string();
    assert!(text.contains("unknown kill scope"), "{text}");
    assert!(
        text.contains("expected process, process_group or cgroup"),
        "{text}"
    );
}

#[test]
fn bad_breaker_values_are_reported_at_their_values() {
    let src = format!("{HEAD}    breaker: {{max_targets: 0, window: 0s}}\n");
    assert_eq!(
        positions(&src),
        vec![
            (Code::BadValue, "5:28".to_string()),
            (Code::BadValue, "5:39".to_string())
        ]
    );
    let src = format!("{HEAD}    breaker:\n      max_targets: lots\n      window: 48h\n");
    assert_eq!(
        positions(&src),
        vec![
            (Code::BadValue, "6:20".to_string()),
            (Code::BadValue, "7:15".to_string())
        ]
    );
    let text = errors(&src).to_string();
    assert!(text.contains("invalid `breaker.max_targets`"), "{text}");
    assert!(text.contains("invalid `breaker.window`"), "{text}");
}

#[test]
fn breaker_shape_errors() {
    let src = format!("{HEAD}    breaker: 5\n");
    assert_eq!(positions(&src), vec![(Code::Structure, "5:14".to_string())]);
    let src = format!("{HEAD}    breaker: {{max: 5}}\n");
    assert_eq!(positions(&src), vec![(Code::Structure, "5:15".to_string())]);
    assert!(errors(&src).to_string().contains("unknown breaker key"));
    let src = format!("{HEAD}    breaker: {{}}\n");
    assert_eq!(positions(&src), vec![(Code::BadValue, "5:14".to_string())]);
}

#[test]
fn kill_options_need_a_kill_action() {
    let src = "rules:\n  - id: r1\n    expression: exec.file.name == \"xmrig\"\n    action: alert\n    kill_scope: cgroup\n    breaker: {max_targets: 2}\n";
    assert_eq!(
        positions(src),
        vec![
            (Code::BadValue, "5:5".to_string()),
            (Code::BadValue, "6:5".to_string())
        ]
    );
    let text = errors(src).to_string();
    assert!(
        text.contains("`kill_scope` applies only to rules whose action includes `kill`"),
        "{text}"
    );
}
