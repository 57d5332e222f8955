//! Property test of the DNS kernel family: for random policies (string and domain lists,
//! macros, rules of the lowerable shape and arbitrary `&&` / `||` / `!` formulas, deny and
//! kill, disabled ones) and names around every listed value (the value, sub-domains, parents,
//! other case, trailing dot), the kernel lookup simulated over the plan (exact map first, else
//! the suffix walk longest first, first hit wins) returns exactly the kernel-lowered rules the
//! evaluator matches. The simulation here is written independently of the crate's
//! `KernelPlan::dns_lookup`, which is checked against it too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeSet, HashMap};

use enforcer_policy::{CompiledPolicy, Enforcement, Event, KernelPlan, Kind, PlanEntry, load_str};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::json;

const LABELS: &[&str] = &["a", "b", "ab", "c"];

/// A name of 1 to 3 labels from a tiny alphabet (so values nest and collide), with random
/// upper case and sometimes a trailing dot.
fn name() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop::sample::select(LABELS), 1..=3),
        any::<u16>(),
        prop::bool::weighted(0.15),
    )
        .prop_map(|(labels, mask, dot)| {
            let mut s: String = labels
                .join(".")
                .chars()
                .enumerate()
                .map(|(i, c)| {
                    if mask & (1 << (i % 16)) != 0 && i % 3 == 0 {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    }
                })
                .collect();
            if dot {
                s.push('.');
            }
            s
        })
}

fn q(s: &str) -> String {
    format!("\"{s}\"")
}

fn tuple(vs: &[String]) -> String {
    if vs.is_empty() {
        return "()".into();
    }
    let items: Vec<String> = vs.iter().map(|v| q(v)).collect();
    format!("({},)", items.join(", "))
}

/// A positive DNS term; rendered positively (`==`, `in`) or as its negation (`!=`, `not in`).
#[derive(Debug, Clone)]
enum Term {
    Eq(String),
    List(usize),
    Tuple(Vec<String>),
    Mixed(usize, String),
}

impl Term {
    fn render(&self, positive: bool) -> String {
        let (eq, inn) = if positive {
            ("==", "in")
        } else {
            ("!=", "not in")
        };
        match self {
            Term::Eq(v) => format!("dns.question.name {eq} {}", q(v)),
            Term::List(k) => format!("dns.question.name {inn} L{k}"),
            Term::Tuple(vs) => format!("dns.question.name {inn} {}", tuple(vs)),
            Term::Mixed(k, v) => format!("dns.question.name {inn} (L{k}, {})", q(v)),
        }
    }
}

fn term() -> impl Strategy<Value = Term> {
    prop_oneof![
        name().prop_map(Term::Eq),
        (0..3usize).prop_map(Term::List),
        prop::collection::vec(name(), 0..3).prop_map(Term::Tuple),
        (0..3usize, name()).prop_map(|(k, v)| Term::Mixed(k, v)),
    ]
}

/// Any term or macro, positive or negated: the atoms of arbitrary formulas.
fn atom() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (term(), any::<bool>()).prop_map(|(t, pos)| t.render(pos)),
        1 => Just("MP".to_string()),
        1 => Just("MN".to_string()),
        1 => Just("dns.question.type == \"TXT\"".to_string()),
        1 => Just("dns.question.name endswith \"b\"".to_string()),
    ]
}

fn formula() -> impl Strategy<Value = String> {
    atom().prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(|v| v
                .iter()
                .map(|x| format!("({x})"))
                .collect::<Vec<_>>()
                .join(" && ")),
            prop::collection::vec(inner.clone(), 2..4).prop_map(|v| v
                .iter()
                .map(|x| format!("({x})"))
                .collect::<Vec<_>>()
                .join(" || ")),
            inner.prop_map(|a| format!("!({a})")),
        ]
    })
}

/// The documented shape: `(P1 || P2 ...) && !(E1 || ...)`, or `P && name not in X && ...`.
fn shaped() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(
            prop_oneof![4 => term().prop_map(|t| t.render(true)), 1 => Just("MP".to_string())],
            1..3,
        ),
        prop::collection::vec(term(), 0..3),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(ps, es, grouped, with_mn)| {
            let mut out = format!("({})", ps.join(" || "));
            if !es.is_empty() {
                if grouped {
                    let e: Vec<String> = es.iter().map(|t| t.render(true)).collect();
                    out.push_str(&format!(" && !({})", e.join(" || ")));
                } else {
                    for t in &es {
                        out.push_str(&format!(" && {}", t.render(false)));
                    }
                }
            }
            if with_mn {
                out.push_str(" && MN");
            }
            out
        })
}

#[derive(Debug, Clone)]
struct Rule {
    expr: String,
    deny: bool,
    disabled: bool,
    alert_only: bool,
}

fn rule() -> impl Strategy<Value = Rule> {
    prop_oneof![
        3 => (shaped(), any::<bool>(), prop::bool::weighted(0.1)).prop_map(|(expr, deny, disabled)| Rule { expr, deny, disabled, alert_only: false }),
        2 => formula().prop_map(|expr| Rule { expr, deny: false, disabled: false, alert_only: false }),
        1 => shaped().prop_map(|expr| Rule { expr, deny: false, disabled: false, alert_only: true }),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    /// (domain list?, items) for L0..L2.
    lists: Vec<(bool, Vec<String>)>,
    mp: (usize, String),
    mn: usize,
    rules: Vec<Rule>,
    extra_names: Vec<String>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec((any::<bool>(), prop::collection::vec(name(), 0..4)), 3),
        (0..3usize, name()),
        0..3usize,
        prop::collection::vec(rule(), 1..6),
        prop::collection::vec(name(), 0..6),
    )
        .prop_map(|(lists, mp, mn, rules, extra_names)| Case {
            lists,
            mp,
            mn,
            rules,
            extra_names,
        })
}

fn source(c: &Case) -> String {
    let mut s = String::from("lists:\n");
    for (k, (domain, items)) in c.lists.iter().enumerate() {
        let ty = if *domain { "domain" } else { "string" };
        let items: Vec<String> = items.iter().map(|v| q(v)).collect();
        s.push_str(&format!(
            "  - name: L{k}\n    type: {ty}\n    items: [{}]\n",
            items.join(", ")
        ));
    }
    s.push_str(&format!(
        "macros:\n  - name: MP\n    expression: 'dns.question.name in L{} || dns.question.name == {}'\n  - name: MN\n    expression: 'dns.question.name not in L{}'\n",
        c.mp.0,
        q(&c.mp.1),
        c.mn
    ));
    s.push_str(
        "rules:\n  - id: exec\n    expression: exec.file.name == \"xmrig\"\n    action: deny\n",
    );
    for (i, r) in c.rules.iter().enumerate() {
        let action = match (r.alert_only, r.deny) {
            (true, _) => "alert",
            (false, true) => "deny",
            (false, false) => "kill",
        };
        s.push_str(&format!(
            "  - id: r{i}\n    expression: '{}'\n    action: {action}\n    disabled: {}\n",
            r.expr, r.disabled
        ));
    }
    s
}

/// Every value of the case, and names around it: sub-domains (also under an unlisted label),
/// parents, other case, trailing dot.
fn probes(c: &Case) -> Vec<String> {
    let mut base: Vec<String> = c
        .lists
        .iter()
        .flat_map(|(_, v)| v.iter().cloned())
        .collect();
    base.push(c.mp.1.clone());
    base.extend(c.extra_names.iter().cloned());
    for r in &c.rules {
        // Quoted values of the expression.
        base.extend(r.expr.split('"').skip(1).step_by(2).map(str::to_string));
    }
    let mut out = BTreeSet::new();
    for v in base {
        let v = v.trim_end_matches('.').to_string();
        let mut parent = v.as_str();
        while let Some(i) = parent.find('.') {
            parent = &parent[i + 1..];
            out.insert(parent.to_string());
        }
        for l in LABELS.iter().chain(&["zz"]) {
            out.insert(format!("{l}.{v}"));
            out.insert(format!("zz.{l}.{v}"));
        }
        out.insert(v.to_ascii_uppercase());
        out.insert(format!("{v}."));
        out.insert(v);
    }
    out.into_iter().collect()
}

/// The kernel's lookup, written from the plan's documentation.
fn kernel_lookup(plan: &KernelPlan, name: &str) -> Vec<u32> {
    let exact: HashMap<&str, &PlanEntry> = plan
        .dns_names
        .iter()
        .map(|e| (e.value.as_str(), e))
        .collect();
    let domains: HashMap<&str, &PlanEntry> = plan
        .dns_domains
        .iter()
        .map(|e| (e.value.as_str(), e))
        .collect();
    // The question as the kernel reads it: lowercase, no root label.
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if let Some(e) = exact.get(name.as_str()) {
        return e.rules.clone();
    }
    let labels: Vec<&str> = name.split('.').collect();
    for i in 0..labels.len() {
        if let Some(e) = domains.get(labels[i..].join(".").as_str()) {
            return e.rules.clone();
        }
    }
    Vec::new()
}

fn kernel_dns_rules(p: &CompiledPolicy) -> BTreeSet<u32> {
    p.rules()
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            r.kernel == Enforcement::Kernel && !r.disabled && r.event_kind == Kind::Dns
        })
        .map(|(i, _)| u32::try_from(i).unwrap())
        .collect()
}

fn check(c: &Case) -> Result<(), TestCaseError> {
    let src = source(c);
    let p = load_str("p.yaml", &src).unwrap_or_else(|d| panic!("{d}\n{src}"));
    let plan = p.lower();
    let kernel = kernel_dns_rules(&p);
    for entries in [&plan.dns_names, &plan.dns_domains] {
        prop_assert!(entries.windows(2).all(|w| w[0].value < w[1].value));
        for e in entries {
            prop_assert_eq!(&e.value, &e.value.to_ascii_lowercase());
            prop_assert!(!e.value.ends_with('.') && !e.value.is_empty());
            prop_assert!(e.rules.windows(2).all(|w| w[0] < w[1]));
            prop_assert!(e.rules.iter().all(|r| kernel.contains(r)), "{:?}", e);
        }
    }
    // Deny rules all lowered (the load would have failed otherwise).
    for (i, r) in p.rules().iter().enumerate() {
        if r.actions.deny {
            prop_assert_eq!(r.kernel, Enforcement::Kernel, "rule {}", i);
        }
    }
    for n in probes(c) {
        let ev = Event::from_json(&json!({"kind":"dns","dns":{"question":{"name": n}}})).unwrap();
        let want: Vec<u32> = p
            .eval(&ev)
            .iter()
            .map(|m| m.rule_index)
            .filter(|i| kernel.contains(i))
            .collect();
        let got = kernel_lookup(&plan, &n);
        prop_assert_eq!(&got, &want, "name {:?}\n{}\n{:?}", n, src, plan);
        let crate_sim = plan
            .dns_lookup(&n)
            .map(|e| e.rules.clone())
            .unwrap_or_default();
        prop_assert_eq!(&crate_sim, &want, "dns_lookup of {:?}", n);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn kernel_dns_lookup_equals_evaluation(c in case()) {
        check(&c)?;
    }
}

/// The generator is not vacuous: most policies lower DNS rules, exclusion entries (empty
/// rules) occur, and some rules are rejected (and run in userspace).
#[test]
fn dns_generator_exercises_every_outcome() {
    let mut runner = TestRunner::deterministic();
    let strategy = case();
    let (mut lowered, mut exclusions, mut userspace, mut exact_and_domain) = (0, 0, 0, 0);
    let total = 300;
    for _ in 0..total {
        let c = strategy.new_tree(&mut runner).unwrap().current();
        let p = load_str("p.yaml", &source(&c)).unwrap();
        let plan = p.lower();
        lowered += usize::from(!kernel_dns_rules(&p).is_empty());
        exclusions += usize::from(
            plan.dns_names
                .iter()
                .chain(&plan.dns_domains)
                .any(|e| e.rules.is_empty()),
        );
        exact_and_domain += usize::from(!plan.dns_names.is_empty() && !plan.dns_domains.is_empty());
        userspace += usize::from(p.rules().iter().any(|r| {
            r.event_kind == Kind::Dns && r.actions.kill && r.kernel == Enforcement::Userspace
        }));
    }
    eprintln!(
        "of {total}: lowered {lowered}, exclusions {exclusions}, exact+domain {exact_and_domain}, userspace {userspace}"
    );
    assert!(lowered > total * 8 / 10, "lowered {lowered}/{total}");
    assert!(exclusions > total / 4, "exclusions {exclusions}/{total}");
    assert!(
        exact_and_domain > total / 3,
        "exact+domain {exact_and_domain}/{total}"
    );
    assert!(userspace > total / 4, "userspace {userspace}/{total}");
}
