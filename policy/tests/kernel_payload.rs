//! Kernel lowering of payload-method rules (`payload_methods` in the plan): what lowers, what
//! is rejected and where, and how payload events carry the method.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::positions;
use enforcer_policy::{Code, Enforcement, Event, PlanEntry, load_str, report};
use serde_json::json;

const FOUR: &str = "rules:\n  - id: stratum\n    description: stratum first write\n    expression: payload.stratum.method in (\"mining.subscribe\", \"mining.authorize\", \"login\", \"submit\")\n    action: [deny, kill]\n";

fn entry(value: &str, rules: &[u32]) -> PlanEntry {
    PlanEntry {
        value: value.to_string(),
        rules: rules.to_vec(),
    }
}

fn payload(body: serde_json::Value) -> Event {
    Event::from_json(&json!({"kind":"payload","process":{"pid":7,"comm":"m"},"payload":body}))
        .unwrap()
}

#[test]
fn method_list_lowers_to_payload_methods() {
    let p = load_str("p.yaml", FOUR).unwrap();
    let rule = &p.rules()[0];
    assert_eq!(rule.kernel, Enforcement::Kernel);
    assert!(rule.actions.deny && rule.actions.kill);
    let plan = p.lower();
    assert_eq!(
        plan.payload_methods,
        vec![
            entry("login", &[0]),
            entry("mining.authorize", &[0]),
            entry("mining.subscribe", &[0]),
            entry("submit", &[0]),
        ]
    );
    assert!(plan.exec_names.is_empty() && plan.exec_paths.is_empty());
    assert_eq!(plan.len(), 4);
    let text = report::check_report(&p);
    assert!(text.contains("payload_methods: 4 entries"), "{text}");
    assert!(text.contains("mining.subscribe"), "{text}");
}

#[test]
fn disjunctions_of_method_terms_and_kill_only_rules_lower() {
    let src = "lists:\n  - name: v1\n    items: [mining.subscribe]\nrules:\n  - id: a\n    expression: payload.stratum.method == \"login\" || payload.stratum.method in v1\n    action: deny\n  - id: b\n    expression: payload.stratum.method == \"login\"\n    action: kill\n";
    let p = load_str("p.yaml", src).unwrap();
    assert!(p.rules().iter().all(|r| r.kernel == Enforcement::Kernel));
    assert_eq!(
        p.lower().payload_methods,
        vec![entry("login", &[0, 1]), entry("mining.subscribe", &[0])]
    );
}

#[test]
fn deny_with_a_non_kernel_conjunct_is_rejected() {
    let src = "rules:\n  - id: r1\n    expression: payload.stratum.method == \"login\" && payload.data contains \"pass\"\n    action: [deny, kill]\n";
    assert_eq!(
        positions(src),
        vec![(Code::NotLowerable, "3:54".to_string())]
    );
    let text = load_str("p.yaml", src).unwrap_err().to_string();
    assert!(
        text.contains("`payload.data` is not visible to the kernel plan; a deny rule cannot require it with `&&`"),
        "{text}"
    );
    // As a kill rule it runs in userspace, and says why.
    let p = load_str("p.yaml", &src.replace("[deny, kill]", "kill")).unwrap();
    assert_eq!(p.rules()[0].kernel, Enforcement::Userspace);
    assert!(p.lower().payload_methods.is_empty());
    let why = p.rules()[0].userspace_reason.clone().unwrap();
    assert!(why.contains("`payload.data` is not visible"), "{why}");
}

#[test]
fn methods_the_kernel_cannot_compare_are_rejected() {
    let long = "m".repeat(32);
    let src = format!(
        "rules:\n  - id: r1\n    expression: payload.stratum.method in (\"login\", \"{long}\")\n    action: deny\n"
    );
    assert_eq!(
        positions(&src),
        vec![(Code::NotLowerable, "3:17".to_string())]
    );
    let text = load_str("p.yaml", &src).unwrap_err().to_string();
    assert!(
        text.contains(&format!(
            "value `{long}` is longer than 31 bytes, the kernel's method limit"
        )),
        "{text}"
    );
    // 31 bytes fit.
    let ok = src.replace(&long, &"m".repeat(31));
    assert_eq!(
        load_str("p.yaml", &ok)
            .unwrap()
            .lower()
            .payload_methods
            .len(),
        2
    );
    for bad in [r#""""#, r#""a\"b""#, r#""a\\b""#] {
        let src = format!(
            "rules:\n  - id: r1\n    expression: 'payload.stratum.method == {bad}'\n    action: deny\n"
        );
        assert_eq!(
            positions(&src),
            vec![(Code::NotLowerable, "3:18".to_string())],
            "{bad}"
        );
    }
}

#[test]
fn payload_events_carry_the_method_explicitly_or_in_the_data() {
    let p = load_str("p.yaml", FOUR).unwrap();
    let ids =
        |ev: &Event| -> Vec<String> { p.eval(ev).iter().map(|m| m.rule_id.to_string()).collect() };
    // The sensor's shape: the method decoded in the kernel, the first bytes as text.
    let ev = payload(
        json!({"data":"{\"id\":1,\"method\":\"login\",\"params\":{}}\n","size":42,
        "stratum":{"method":"login"},"fd":5}),
    );
    assert_eq!(ids(&ev), vec!["stratum"]);
    // Explicit method only.
    assert_eq!(
        ids(&payload(json!({"stratum":{"method":"submit"},"size":3}))),
        vec!["stratum"]
    );
    // Derived from the data when absent, including a capture cut inside the first line.
    assert_eq!(
        ids(&payload(
            json!({"data":"{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[]}\n"})
        )),
        vec!["stratum"]
    );
    assert_eq!(
        ids(&payload(
            json!({"data":"{\"id\":1,\"method\":\"mining.authorize\",\"params\":[\"4FAKE"})
        )),
        vec!["stratum"]
    );
    // The explicit method wins over the data.
    assert!(
        ids(&payload(
            json!({"data":"{\"method\":\"login\"}\n","stratum":{"method":"eth_call"}})
        ))
        .is_empty()
    );
    assert!(
        ids(&payload(
            json!({"data":"GET / HTTP/1.1\r\n","size":16,"fd":5})
        ))
        .is_empty()
    );
    // `policy eval` shows the kernel's view.
    let text = report::eval_report(&p, &ev, &p.eval(&ev));
    assert!(
        text.contains("kernel plan: payload_methods holds `login` (rules: stratum)"),
        "{text}"
    );
}
