//! Shared by the policy tests: run one `{"event":{...},"expect":[ids]}` case, and collect
//! the diagnostics of a policy that must not load.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use enforcer_policy::{Code, CompiledPolicy, Diagnostics, Event, load_str};
use serde_json::Value;

/// Evaluates `case["event"]` and asserts the matched rule ids equal `case["expect"]` as a set
/// and come in ascending rule-index order, and that the event decoded for the policy (only
/// the fields its rules test) matches the same. `what` names the case in failure messages.
pub(crate) fn check_case(policy: &CompiledPolicy, case: &Value, what: &str) {
    let ev = Event::from_json(&case["event"]).unwrap_or_else(|e| panic!("{what}: {e}"));
    let matches = policy.eval(&ev);
    let lean = policy
        .decode_event(&case["event"])
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(policy.eval(&lean), matches, "{what}: decode_event");
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

/// The diagnostics of `src` (as file `p.yaml`), which must not load.
pub(crate) fn errors(src: &str) -> Diagnostics {
    match load_str("p.yaml", src) {
        Ok(_) => panic!("expected diagnostics for:\n{src}"),
        Err(d) => d,
    }
}

/// (code, "line:col") of every diagnostic of `src`.
pub(crate) fn positions(src: &str) -> Vec<(Code, String)> {
    let d = errors(src);
    d.items()
        .iter()
        .map(|x| {
            let loc = d.location(x);
            (x.code, loc.trim_start_matches("p.yaml:").to_string())
        })
        .collect()
}
