//! The default policy against the CATALOG fixtures (F1, F2, F4..F7, F9, F10, F17 must match
//! the intended rules, N3 at most the info alert; N1, N2, N4, N5 must match nothing). Events are JSON files under fixtures/.
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
    for f in [
        "F1", "F2", "F4", "F5", "F6", "F7", "F9", "F10", "F17", "N3", "K1",
    ] {
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

#[test]
fn default_policy_denies_pool_lookups_in_the_kernel() {
    let p = default_policy();
    let plan = p.lower();
    let index = |id: &str| -> u32 {
        let i = p.rules().iter().position(|r| r.id == id).expect(id);
        u32::try_from(i).unwrap()
    };
    let (host, domain) = (index("pool-host-lookup"), index("pool-domain-lookup"));
    for id in ["pool-host-lookup", "pool-domain-lookup"] {
        let r = &p.rules()[index(id) as usize];
        assert!(r.actions.deny, "{id}");
        assert_eq!(r.kernel, Enforcement::Kernel, "{id}");
        assert!(r.description.contains("EPERM") && r.description.contains("signal tier"));
    }
    for id in ["maltrail-host-lookup", "maltrail-ip-connect"] {
        let r = &p.rules()[index(id) as usize];
        assert!(r.actions.alert && !r.actions.blocks(), "{id}");
    }
    // The alert-only address rule is in the connect plan as record-only entries (the kernel
    // reports only the connects it is about); no blocking rule is.
    let maltrail = index("maltrail-ip-connect");
    assert!(!plan.connect_nets.is_empty());
    assert!(
        plan.connect_nets
            .iter()
            .all(|e| e.rules.iter().all(|&r| r == maltrail))
    );
    assert!(plan.connect_filtered);
    let kernel = |name: &str| -> Vec<u32> {
        plan.dns_lookup(name)
            .map(|e| e.rules.clone())
            .unwrap_or_default()
    };
    let user = |name: &str| -> Vec<u32> {
        let ev =
            Event::from_json(&serde_json::json!({"kind":"dns","dns":{"question":{"name":name}}}))
                .unwrap();
        p.eval(&ev)
            .iter()
            .map(|m| m.rule_index)
            .filter(|i| [host, domain].contains(i))
            .collect()
    };
    for (name, want) in [
        // Falco exact names (one is also under a Datadog domain).
        ("xmr.pool.minergate.com", vec![host]),
        ("XMR.Pool.MinerGate.com.", vec![host]),
        ("pool.supportxmr.com", vec![host, domain]),
        // Datadog domains and their sub-domains.
        ("c3pool.com", vec![domain]),
        ("auto.c3pool.com", vec![domain]),
        ("gulf.moneroocean.stream", vec![domain]),
        // Not pools (N4) and excluded coin projects.
        ("pool.ntp.org", vec![]),
        ("pool.ntp.org.", vec![]),
        ("2.debian.pool.ntp.org", vec![]),
        ("carpool.example.com", vec![]),
        ("poolside.example.org", vec![]),
        ("h9.com", vec![]),
        ("www.h9.com", vec![]),
        ("explorer.safex.org", vec![]),
        ("sub.minergate.com", vec![]),
    ] {
        assert_eq!(kernel(name), want, "kernel: {name}");
        assert_eq!(user(name), want, "evaluator: {name}");
    }
    // Every key, an unlisted sub-domain and the parent of each: kernel == evaluator.
    for e in plan.dns_names.iter().chain(&plan.dns_domains) {
        let parent = e.value.split_once('.').map_or("", |(_, p)| p).to_string();
        for name in [e.value.clone(), format!("zz.{}", e.value), parent] {
            assert_eq!(kernel(&name), user(&name), "{name}");
        }
    }
    assert!(plan.dns_names.len() >= 60 && plan.dns_domains.len() >= 50);
}
