//! Shared by the data-driven tests: run one `{"event":{...},"expect":[ids]}` case.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use enforcer_policy::{CompiledPolicy, Event};
use serde_json::Value;

/// Evaluates `case["event"]` and asserts the matched rule ids equal `case["expect"]` as a set
/// and come in ascending rule-index order. `what` names the case in failure messages.
pub(crate) fn check_case(policy: &CompiledPolicy, case: &Value, what: &str) {
    let ev = Event::from_json(&case["event"]).unwrap_or_else(|e| panic!("{what}: {e}"));
    let matches = policy.eval(&ev);
    let got: Vec<String> = matches.iter().map(|m| m.rule_id.to_string()).collect();
    let mut want: Vec<String> = case["expect"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let mut sorted = got.clone();
    sorted.sort();
    want.sort();
    assert_eq!(sorted, want, "{what} matched {got:?}");
    let idx: Vec<u32> = matches.iter().map(|m| m.rule_index).collect();
    assert!(idx.windows(2).all(|w| w[0] < w[1]), "{what}: order {idx:?}");
}
