//! Property tests of the evaluator: set membership and substring operators agree with their
//! definitions, and the indexed evaluation equals the exhaustive one on random policies.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use enforcer_policy::{Event, Kind, Val, load_str};
use proptest::prelude::*;

fn word() -> impl Strategy<Value = String> {
    "[ab]{0,3}"
}

fn quote(s: &str) -> String {
    format!("\"{s}\"")
}

/// `("a", "b",)`, or `()` when empty.
fn tuple(ws: &[String]) -> String {
    if ws.is_empty() {
        return "()".to_string();
    }
    let items: Vec<String> = ws.iter().map(|w| quote(w)).collect();
    format!("({},)", items.join(", "))
}

/// A random boolean expression over a few exec / process fields.
fn expr() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        word().prop_map(|w| format!("exec.file.name == {}", quote(&w))),
        word().prop_map(|w| format!("exec.file.name != {}", quote(&w))),
        prop::collection::vec(word(), 0..4)
            .prop_map(|ws| format!("exec.file.name in {}", tuple(&ws))),
        prop::collection::vec(word(), 1..4).prop_map(|ws| {
            let items: Vec<String> = ws.iter().map(|w| quote(w)).collect();
            format!("exec.argv0 not in ({},)", items.join(", "))
        }),
        word().prop_map(|w| format!("exec.args contains {}", quote(&w))),
        prop::collection::vec(word(), 2..4).prop_map(|ws| {
            let items: Vec<String> = ws.iter().map(|w| quote(w)).collect();
            format!("exec.args startswith ({})", items.join(", "))
        }),
        word().prop_map(|w| format!("exec.argv0 endswith {}", quote(&w))),
        word().prop_map(|w| format!("exec.argv0 =~ r\"^{w}b\"")),
        (0i64..3).prop_map(|u| format!("process.uid == {u}")),
        (0i64..3).prop_map(|u| format!("process.uid in ({u}, 7)")),
        (0i64..3).prop_map(|u| format!("process.uid > {u}")),
        Just("exec.is_memfd".to_string()),
    ];
    leaf.prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) && ({b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) || ({b})")),
            inner.prop_map(|a| format!("!({a})")),
        ]
    })
}

fn exec_event() -> impl Strategy<Value = Event> {
    (
        prop::option::of(word()),
        prop::option::of(word()),
        prop::option::of(prop::collection::vec(word(), 0..4)),
        prop::option::of(0i64..3),
        any::<bool>(),
    )
        .prop_map(|(name, argv0, args, uid, memfd)| {
            let mut v: Vec<(&'static str, Val)> = vec![("exec.is_memfd", Val::Bool(memfd))];
            if let Some(n) = name {
                v.push(("exec.file.name", Val::Str(n.into())));
            }
            if let Some(a) = argv0 {
                v.push(("exec.argv0", Val::Str(a.into())));
            }
            if let Some(args) = args {
                v.push((
                    "exec.args",
                    Val::List(args.into_iter().map(|a| Val::Str(a.into())).collect()),
                ));
            }
            if let Some(u) = uid {
                v.push(("process.uid", Val::Int(u)));
            }
            Event::from_values(Kind::Exec, v)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn indexed_eval_equals_exhaustive(exprs in prop::collection::vec(expr(), 1..12),
                                      events in prop::collection::vec(exec_event(), 1..8)) {
        let mut src = String::from("rules:\n");
        for (i, e) in exprs.iter().enumerate() {
            // The extra exec term pins the kind when `e` only uses `process.*` fields.
            src.push_str(&format!("  - id: r{i}\n    expression: '({e}) || exec.interpreter == \"zz\"'\n"));
        }
        let p = load_str("p.yaml", &src).unwrap_or_else(|d| panic!("{d}\n{src}"));
        for ev in &events {
            let got = p.eval(ev);
            prop_assert_eq!(&got, &p.eval_exhaustive(ev));
            prop_assert!(got.windows(2).all(|w| w[0].rule_index < w[1].rule_index));
            prop_assert_eq!(got.len(), p.count_matches(ev));
        }
    }

    #[test]
    fn membership_matches_its_definition(set in prop::collection::vec("[a-c]{1,4}", 0..6), name in "[a-c]{1,4}") {
        let t = tuple(&set);
        let src = format!(
            "rules:\n  - id: in\n    expression: 'exec.file.name in {t}'\n  - id: not-in\n    expression: 'exec.file.name not in {t}'\n"
        );
        let p = load_str("p.yaml", &src).unwrap();
        let ev = Event::from_values(Kind::Exec, [("exec.file.name", Val::Str(name.clone().into()))]);
        let ids: Vec<String> = p.eval(&ev).into_iter().map(|m| m.rule_id.to_string()).collect();
        let expected = if set.contains(&name) { "in" } else { "not-in" };
        prop_assert_eq!(ids, vec![expected.to_string()]);
        // Absent field: neither the operator nor its negation holds.
        prop_assert!(p.eval(&Event::from_values(Kind::Exec, [])).is_empty());
    }

    #[test]
    fn substring_operators_match_their_definitions(args in prop::collection::vec("[a-c]{0,5}", 0..5),
                                                   pats in prop::collection::vec("[a-c]{1,3}", 1..4)) {
        let items: Vec<String> = pats.iter().map(|w| quote(w)).collect();
        let list = items.join(", ");
        let src = format!(
            "rules:\n  - id: c\n    expression: 'exec.args contains ({list},)'\n  - id: s\n    expression: 'exec.args startswith ({list},)'\n  - id: e\n    expression: 'exec.args endswith ({list},)'\n"
        );
        let p = load_str("p.yaml", &src).unwrap();
        let ev = Event::from_values(Kind::Exec, [("exec.args", Val::List(args.iter().map(|a| Val::Str(a.as_str().into())).collect()))]);
        let ids: Vec<String> = p.eval(&ev).into_iter().map(|m| m.rule_id.to_string()).collect();
        let any = |f: &dyn Fn(&str, &str) -> bool| args.iter().any(|a| pats.iter().any(|x| f(a, x)));
        let mut want = Vec::new();
        if any(&|a, x| a.contains(x)) { want.push("c".to_string()); }
        if any(&|a, x| a.starts_with(x)) { want.push("s".to_string()); }
        if any(&|a, x| a.ends_with(x)) { want.push("e".to_string()); }
        prop_assert_eq!(ids, want);
    }
}
