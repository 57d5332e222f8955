//! Kernel lowering of DNS rules (`dns_names` / `dns_domains`): the effective rule sets per key,
//! case folding of values, what is rejected and where, and the reports.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{errors, positions};
use enforcer_policy::{Code, CompiledPolicy, Enforcement, Event, PlanEntry, load_str, report};
use serde_json::json;

fn entry(value: &str, rules: &[u32]) -> PlanEntry {
    PlanEntry {
        value: value.to_string(),
        rules: rules.to_vec(),
    }
}

fn dns(name: &str) -> Event {
    Event::from_json(
        &json!({"kind":"dns","process":{"pid":7},"dns":{"question":{"name":name,"type":"A"}}}),
    )
    .unwrap()
}

/// Rule indices the evaluator matches for `name`.
fn matched(p: &CompiledPolicy, name: &str) -> Vec<u32> {
    p.eval(&dns(name)).iter().map(|m| m.rule_index).collect()
}

/// Rule indices of the entry the kernel's lookup of `name` ends at.
fn kernel(p: &CompiledPolicy, name: &str) -> Vec<u32> {
    p.lower()
        .dns_lookup(name)
        .map(|e| e.rules.clone())
        .unwrap_or_default()
}

/// `line:col` of the first `needle` in `src` (1-based).
fn at(src: &str, needle: &str) -> String {
    let off = src.find(needle).unwrap();
    let line = src[..off].matches('\n').count() + 1;
    let col = off - src[..off].rfind('\n').map_or(0, |i| i + 1) + 1;
    format!("{line}:{col}")
}

const POOLS: &str = r#"lists:
  - name: hosts
    items: [xmr.pool.example, Mine.Example.ORG.]
  - name: pools
    type: domain
    items: [pool.example, minexmr.com]
  - name: coins
    type: domain
    items: [wallet.pool.example]
rules:
  - id: hosts
    expression: dns.question.name in hosts
    action: deny
  - id: domains
    expression: >-
      dns.question.name in pools && dns.question.name not in coins
      && dns.question.name != "www.minexmr.com"
    action: [deny, kill]
  - id: watch
    expression: dns.question.name in pools
    action: alert
"#;

#[test]
fn dns_lists_lower_to_exact_names_and_domain_suffixes() {
    let p = load_str("p.yaml", POOLS).unwrap();
    assert!(
        p.rules()[..2]
            .iter()
            .all(|r| r.kernel == Enforcement::Kernel)
    );
    assert_eq!(p.rules()[2].kernel, Enforcement::Userspace);
    let plan = p.lower();
    // Every exact value is a key, with the rules that hold for that very name; the exclusion
    // `!= "www.minexmr.com"` answers "no rule" before the walk would reach minexmr.com.
    assert_eq!(
        plan.dns_names,
        vec![
            entry("mine.example.org", &[0]),
            entry("www.minexmr.com", &[]),
            entry("xmr.pool.example", &[0, 1]),
        ]
    );
    // Every domain is a key, with the rules that hold for an unlisted sub-domain; the
    // excluded domain stops the walk with no match.
    assert_eq!(
        plan.dns_domains,
        vec![
            entry("minexmr.com", &[1]),
            entry("pool.example", &[1]),
            entry("wallet.pool.example", &[]),
        ]
    );
    assert_eq!(plan.len(), 6);
    for (name, want) in [
        ("xmr.pool.example", vec![0, 1]),
        ("XMR.Pool.Example.", vec![0, 1]),
        ("mine.example.org", vec![0]),
        ("sub.mine.example.org", vec![]),
        ("pool.example", vec![1]),
        ("a.b.pool.example", vec![1]),
        ("wallet.pool.example", vec![]),
        ("x.wallet.pool.example", vec![]),
        ("www.minexmr.com", vec![]),
        ("a.www.minexmr.com", vec![1]),
        ("minexmr.com", vec![1]),
        ("example", vec![]),
        ("minexmr.com.evil", vec![]),
    ] {
        let user: Vec<u32> = matched(&p, name).into_iter().filter(|i| *i < 2).collect();
        assert_eq!(user, want, "evaluator, {name}");
        assert_eq!(kernel(&p, name), want, "kernel, {name}");
    }
    let text = report::check_report(&p);
    assert!(text.contains("dns_names: 3 entries"), "{text}");
    assert!(text.contains("dns_domains: 3 entries"), "{text}");
    assert!(
        text.contains("wallet.pool.example") && text.contains("none: an exclusion"),
        "{text}"
    );
    let ev = dns("a.pool.example");
    let view = report::eval_report(&p, &ev, &p.eval(&ev));
    assert!(
        view.contains(
            "kernel plan: `a.pool.example` ends its lookup at `pool.example` (rules: domains)"
        ),
        "{view}"
    );
}

#[test]
fn dns_values_fold_case_and_the_trailing_dot_in_evaluation_and_plan() {
    let src = "rules:\n  - id: r\n    expression: dns.question.name == \"Pool.Example.COM.\" || dns.question.name in (\"XMR.example.net\",)\n    action: deny\n";
    let p = load_str("p.yaml", src).unwrap();
    assert_eq!(
        p.lower().dns_names,
        vec![
            entry("pool.example.com", &[0]),
            entry("xmr.example.net", &[0])
        ]
    );
    for name in ["pool.example.com", "POOL.example.com.", "xmr.EXAMPLE.net"] {
        assert_eq!(matched(&p, name), vec![0], "{name}");
        assert_eq!(kernel(&p, name), vec![0], "{name}");
    }
    // `!=` folds too: the exclusion holds for every spelling.
    let src = "lists:\n  - name: d\n    type: domain\n    items: [example.com]\nrules:\n  - id: r\n    expression: dns.question.name in d && dns.question.name != \"WWW.example.com\"\n    action: deny\n";
    let p = load_str("p.yaml", src).unwrap();
    assert!(matched(&p, "www.EXAMPLE.com").is_empty());
    assert!(kernel(&p, "www.EXAMPLE.com").is_empty());
    assert_eq!(matched(&p, "ftp.example.com"), vec![0]);
}

#[test]
fn macros_and_negated_groups_lower() {
    let src = r#"lists:
  - name: pools
    type: domain
    items: [pool.example]
macros:
  - name: pool_lookup
    expression: dns.question.name in pools || dns.question.name == "solo.example"
  - name: allowed
    expression: dns.question.name in ("www.pool.example", "solo.example")
rules:
  - id: r
    expression: pool_lookup && !(allowed)
    action: deny
"#;
    let p = load_str("p.yaml", src).unwrap();
    assert_eq!(p.rules()[0].kernel, Enforcement::Kernel);
    let plan = p.lower();
    assert_eq!(
        plan.dns_names,
        vec![entry("solo.example", &[]), entry("www.pool.example", &[])]
    );
    assert_eq!(plan.dns_domains, vec![entry("pool.example", &[0])]);
}

#[test]
fn dns_deny_rules_the_kernel_cannot_match_are_rejected_with_the_reason() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "dns.question.name not in (\"a.example\",)",
            "dns.question.name not in",
            "the expression holds for names in none of its lists",
        ),
        (
            "dns.question.name in (\"a.example\",) && dns.question.type == \"A\"",
            "dns.question.type",
            "`dns.question.type` is not visible to the kernel plan (the DNS hook matches `dns.question.name` only)",
        ),
        (
            "dns.question.name == \"a..example\"",
            "dns.question.name ==",
            "value `a..example` has an empty label",
        ),
        (
            "dns.question.name in (\"ok.example\", \"bad example\")",
            "dns.question.name in",
            "value `bad example` contains whitespace",
        ),
        (
            "dns.question.name == \".\"",
            "dns.question.name ==",
            "value `` is empty",
        ),
        (
            "dns.question.name endswith \".example\"",
            "dns.question.name endswith",
            "the kernel matches `dns.question.name` only by equality or membership in string and domain lists",
        ),
    ];
    for (expr, needle, why) in cases {
        let src = format!("rules:\n  - id: r1\n    expression: '{expr}'\n    action: deny\n");
        assert_eq!(
            positions(&src),
            vec![(Code::NotLowerable, at(&src, needle))],
            "{expr}"
        );
        let text = errors(&src).to_string();
        assert!(text.contains(why), "{expr}: {text}");
        // As a kill rule it runs in userspace and says why.
        let p = load_str("p.yaml", &src.replace("action: deny", "action: kill")).unwrap();
        assert_eq!(p.rules()[0].kernel, Enforcement::Userspace);
        let reason = p.rules()[0].userspace_reason.clone().unwrap();
        assert!(reason.contains(why), "{reason}");
        assert!(p.lower().is_empty());
    }
    let label = "a".repeat(64);
    let src = format!(
        "rules:\n  - id: r1\n    expression: dns.question.name == \"{label}.example\"\n    action: deny\n"
    );
    assert!(
        errors(&src)
            .to_string()
            .contains("has a label longer than 63 bytes, the DNS label limit")
    );
    let name = vec!["abcdefgh"; 29].join(".");
    assert_eq!(name.len(), 260);
    let src = format!(
        "rules:\n  - id: r1\n    expression: dns.question.name == \"{name}\"\n    action: deny\n"
    );
    assert!(
        errors(&src)
            .to_string()
            .contains("is longer than 253 bytes, the DNS name limit")
    );
    // Through a macro: the span is in the macro, with a note at its use.
    let src = "macros:\n  - name: typed\n    expression: dns.question.type == \"TXT\"\nrules:\n  - id: r1\n    expression: dns.question.name == \"a.example\" && typed\n    action: deny\n";
    assert_eq!(
        positions(src),
        vec![(Code::NotLowerable, "3:17".to_string())]
    );
    assert!(
        errors(src)
            .to_string()
            .contains("through macro `typed` used here")
    );
}
