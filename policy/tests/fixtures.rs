//! The default policy against the CATALOG fixtures (F1, F2, F4..F7, F9, F10 must match the
//! intended rules; N1, N2, N4, N5 must match nothing). Events are JSON files under fixtures/.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

mod common;

use enforcer_policy::{CompiledPolicy, Enforcement, Event, load};

fn default_policy() -> CompiledPolicy {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("default");
    load(&dir).unwrap_or_else(|d| panic!("default policy must check clean:\n{d}"))
}

fn run_fixture(policy: &CompiledPolicy, name: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(format!("{name}.json"));
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert!(!cases.is_empty());
    for (i, case) in cases.iter().enumerate() {
        common::check_case(policy, case, &format!("{name}[{i}]"));
    }
}

#[test]
fn positive_fixtures_match_their_rules() {
    let p = default_policy();
    for f in ["F1", "F2", "F4", "F5", "F6", "F7", "F9", "F10"] {
        run_fixture(&p, f);
    }
}

#[test]
fn negative_fixtures_match_nothing() {
    let p = default_policy();
    for f in ["N1", "N2", "N4", "N5"] {
        run_fixture(&p, f);
    }
}

#[test]
fn default_policy_denies_miner_names_in_the_kernel() {
    let p = default_policy();
    let plan = p.lower();
    let xmrig = plan
        .exec_names
        .iter()
        .find(|e| e.value == "xmrig")
        .expect("xmrig in the plan");
    let rule = &p.rules()[xmrig.rules[0] as usize];
    assert_eq!(rule.id, "miner-exec-name");
    assert!(rule.actions.deny);
    assert_eq!(rule.kernel, Enforcement::Kernel);
    // Every deny rule of the default policy is in the kernel; every rule documents its risk.
    for r in p.rules() {
        if r.actions.deny {
            assert_eq!(r.kernel, Enforcement::Kernel, "{}", r.id);
        }
        assert!(
            r.description.contains("False-positive risk"),
            "{} lacks a false-positive note",
            r.id
        );
    }
    assert!(plan.exec_paths.is_empty());
}

#[test]
fn default_policy_denies_stratum_v1_first_writes_in_the_kernel() {
    let p = default_policy();
    let plan = p.lower();
    let methods: Vec<&str> = plan
        .payload_methods
        .iter()
        .map(|e| e.value.as_str())
        .collect();
    assert_eq!(
        methods,
        [
            "mining.authorize",
            "mining.configure",
            "mining.extranonce.subscribe",
            "mining.submit",
            "mining.subscribe"
        ]
    );
    for e in &plan.payload_methods {
        let rule = &p.rules()[e.rules[0] as usize];
        assert_eq!(rule.id, "stratum-v1-payload");
        assert!(rule.actions.deny && rule.actions.kill);
        assert!(rule.description.contains("signal tier"));
    }
    // `login` / `submit` alone are ordinary JSON-RPC methods (N5): not in the kernel.
    let cn = p
        .rules()
        .iter()
        .find(|r| r.id == "stratum-cryptonote-payload")
        .expect("cryptonote rule");
    assert_eq!(cn.kernel, Enforcement::Userspace);
    assert!(cn.actions.kill && !cn.actions.deny);
}

#[test]
fn monitor_mode_is_reported_on_matches() {
    let src = "rules:\n  - id: dry\n    expression: exec.file.name == \"xmrig\"\n    action: [deny, kill]\n    mode: monitor\n";
    let p = enforcer_policy::load_str("m.yaml", src).unwrap();
    let ev =
        Event::from_json(&serde_json::json!({"kind":"exec","exec":{"file":{"path":"/x/xmrig"}}}))
            .unwrap();
    let m = p.eval(&ev);
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].mode, Some(enforcer_policy::Mode::Monitor));
    assert!(m[0].actions.deny && m[0].actions.kill && !m[0].actions.alert);
    assert_eq!(p.lower().exec_names[0].rules, vec![0]);
}
