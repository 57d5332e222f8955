//! Property test of the argument plan (`exec_arg_schemes`, `exec_args_spared`): for random
//! kill rules `exec.args contains <schemes> && <exceptions>` (exceptions: random `&&` / `||` /
//! `!` formulas over the basename, `argv[0]` and the arguments) and random execs, whenever the
//! kernel's search (simulated here from its description: basename not spared, arguments after
//! `argv[0]`, the 1 to 16 bytes before each `://` looked up) finds an entry, the evaluator
//! matches every rule of that entry. The kernel may find less than the rules match (spared
//! basenames), never more.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use enforcer_policy::{Event, KernelPlan, PlanEntry, load_str};
use proptest::prelude::*;
use serde_json::json;

const SCHEMES: &[&str] = &["ab", "b", "xab", "s+t"];
const NAMES: &[&str] = &["grep", "x", "busybox", "ab"];
/// Argument bytes: scheme letters, the separator's characters and a filler.
const ALPHABET: &[char] = &['a', 'b', 'x', 's', '+', 't', ':', '/', 'q'];

fn q(s: &str) -> String {
    format!("\"{s}\"")
}

/// An exception formula over the basename, `argv[0]` and the arguments.
fn formula() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        prop::sample::select(NAMES).prop_map(|n| format!("exec.file.name == {}", q(n))),
        prop::sample::subsequence(NAMES, 1..=3).prop_map(|ns| {
            let items: Vec<String> = ns.iter().map(|n| q(n)).collect();
            format!("exec.file.name in ({},)", items.join(", "))
        }),
        prop::sample::select(NAMES).prop_map(|n| format!("exec.argv0 == {}", q(n))),
        Just("exec.args contains \"q\"".to_string()),
    ];
    leaf.prop_recursive(2, 6, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} && {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} || {b})")),
            inner.prop_map(|a| format!("!({a})")),
        ]
    })
}

/// One rule: its schemes (as a list or a single value) and 0 to 2 negated exceptions.
fn rule() -> impl Strategy<Value = String> {
    (
        prop::sample::subsequence(SCHEMES, 1..=3),
        prop::collection::vec(formula(), 0..=2),
    )
        .prop_map(|(schemes, exceptions)| {
            let values: Vec<String> = schemes.iter().map(|s| q(&format!("{s}://"))).collect();
            let mut expr = if values.len() == 1 {
                format!("exec.args contains {}", values[0])
            } else {
                format!("exec.args contains ({},)", values.join(", "))
            };
            for e in exceptions {
                expr.push_str(&format!(" && !({e})"));
            }
            expr
        })
}

/// An argument: random bytes of the alphabet, sometimes with a listed `scheme://` inside.
fn arg() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop::sample::select(ALPHABET), 0..8),
        prop::option::weighted(0.5, prop::sample::select(SCHEMES)),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(chars, scheme, at)| {
            let mut s: String = chars.into_iter().collect();
            if let Some(scheme) = scheme {
                let at = at.index(s.len() + 1);
                s.insert_str(at, &format!("{scheme}://"));
            }
            s
        })
}

/// The kernel's search, from its description.
fn kernel<'p>(plan: &'p KernelPlan, name: &str, args: &[String]) -> Option<&'p PlanEntry> {
    if plan.exec_args_spared.iter().any(|s| s == name) {
        return None;
    }
    for a in args {
        let bytes = a.as_bytes();
        for pos in 0..bytes.len() {
            if !bytes[pos..].starts_with(b"://") {
                continue;
            }
            for len in 1..=16.min(pos) {
                let key = &bytes[pos - len..pos];
                if let Some(e) = plan
                    .exec_arg_schemes
                    .iter()
                    .find(|e| e.value.as_bytes() == key)
                {
                    return Some(e);
                }
            }
        }
    }
    None
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn the_kernel_kills_only_what_the_rules_match(
        rules in prop::collection::vec(rule(), 1..=3),
        name in prop::sample::select(NAMES),
        argv0 in prop::sample::select(NAMES),
        args in prop::collection::vec(arg(), 0..=3),
    ) {
        let mut text = String::from("rules:\n");
        for (i, r) in rules.iter().enumerate() {
            text.push_str(&format!("  - id: r{i}\n    expression: '{r}'\n    action: kill\n"));
        }
        let policy = load_str("p.yaml", &text).unwrap();
        let plan = policy.lower();
        let event = Event::from_json(&json!({
            "kind": "exec",
            "exec": { "file": { "name": name, "path": format!("/bin/{name}") },
                      "argv0": argv0, "args": args },
        }))
        .unwrap();
        let matched: Vec<u32> = policy.eval(&event).iter().map(|m| m.rule_index).collect();
        if let Some(entry) = kernel(&plan, name, &args) {
            for r in &entry.rules {
                prop_assert!(
                    matched.contains(r),
                    "kernel acts for rule {r} ({}) on {name} {args:?}, evaluator matches {matched:?}",
                    rules[*r as usize]
                );
            }
        }
    }
}

#[test]
fn the_simulation_finds_schemes_mid_argument_and_skips_spared_names() {
    let policy = load_str(
        "p.yaml",
        "rules:\n  - id: u\n    expression: exec.args contains \"s+t://\" && exec.file.name != \"grep\"\n    action: kill\n",
    )
    .unwrap();
    let plan = policy.lower();
    let args = |a: &str| vec![a.to_string()];
    assert!(kernel(&plan, "x", &args("--url=s+t://h")).is_some());
    assert!(kernel(&plan, "x", &args("xs+t://h")).is_some());
    assert!(kernel(&plan, "x", &args("s+t:/h")).is_none());
    assert!(kernel(&plan, "grep", &args("s+t://h")).is_none());
}
