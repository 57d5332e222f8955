//! Kernel lowering of connect rules (`connect_nets`): canonical prefixes, effective rule sets
//! per prefix, `connect.addr.is_public` folded in (with `network.extra_public_ranges`), what
//! is rejected and where; and the extra public ranges in evaluation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::IpAddr;

use common::{errors, positions};
use enforcer_policy::{
    Code, CompiledPolicy, Enforcement, Event, PlanEntry, load, load_str, report,
};
use ipnet::IpNet;
use serde_json::json;

fn entry(value: &str, rules: &[u32]) -> PlanEntry {
    PlanEntry {
        value: value.to_string(),
        rules: rules.to_vec(),
    }
}

fn connect(ip: &str, port: i64) -> Event {
    Event::from_json(
        &json!({"kind":"connect","process":{"pid":7},"connect":{"addr":{"ip":ip,"port":port},"protocol":"tcp"}}),
    )
    .unwrap()
}

fn matched(p: &CompiledPolicy, ev: &Event) -> Vec<u32> {
    p.eval(ev).iter().map(|m| m.rule_index).collect()
}

fn kernel(p: &CompiledPolicy, ip: &str) -> Vec<u32> {
    p.lower()
        .connect_lookup(ip.parse::<IpAddr>().unwrap())
        .map(|e| e.rules.clone())
        .unwrap_or_default()
}

fn at(src: &str, needle: &str) -> String {
    let off = src.find(needle).unwrap();
    let line = src[..off].matches('\n').count() + 1;
    let col = off - src[..off].rfind('\n').map_or(0, |i| i + 1) + 1;
    format!("{line}:{col}")
}

#[test]
fn cidr_rules_lower_to_canonical_prefixes_with_effective_sets() {
    let src = r#"lists:
  - name: pools
    type: cidr
    items: [203.0.113.0/24, 198.51.100.7, "2001:db8::/32", "::ffff:192.0.2.0/120", 8.8.8.9/24]
rules:
  - id: pools
    expression: connect.addr.ip in pools && connect.addr.ip != 203.0.113.9
    action: deny
"#;
    let p = load_str("p.yaml", src).unwrap();
    assert_eq!(p.rules()[0].kernel, Enforcement::Kernel);
    assert_eq!(
        p.lower().connect_nets,
        vec![
            entry("192.0.2.0/24", &[0]),
            entry("198.51.100.7/32", &[0]),
            entry("2001:db8::/32", &[0]),
            entry("203.0.113.0/24", &[0]),
            entry("203.0.113.9/32", &[]),
            entry("8.8.8.0/24", &[0]),
        ]
    );
    for (ip, want) in [
        ("203.0.113.5", vec![0]),
        ("203.0.113.9", vec![]),
        ("::ffff:203.0.113.5", vec![0]),
        ("::ffff:203.0.113.9", vec![]),
        ("192.0.2.200", vec![0]),
        ("2001:db8::1", vec![0]),
        ("2001:db9::1", vec![]),
        ("198.51.100.8", vec![]),
        ("8.8.8.255", vec![0]),
    ] {
        assert_eq!(matched(&p, &connect(ip, 443)), want, "evaluator, {ip}");
        assert_eq!(kernel(&p, ip), want, "kernel, {ip}");
    }
    let text = report::check_report(&p);
    assert!(text.contains("connect_nets: 6 entries"), "{text}");
    let ev = connect("::ffff:203.0.113.5", 443);
    let view = report::eval_report(&p, &ev, &p.eval(&ev));
    assert!(
        view.contains(
            "kernel plan: connect_nets holds `203.0.113.0/24` for `203.0.113.5` (rules: pools)"
        ),
        "{view}"
    );
}

#[test]
fn is_public_is_folded_into_the_prefixes() {
    let src = "rules:\n  - id: r\n    expression: connect.addr.ip in (8.8.8.0/24, 10.0.0.0/8, 10.1.0.0/16) && connect.addr.is_public\n    action: deny\n  - id: private\n    expression: connect.addr.ip in (10.0.0.0/8, 8.8.8.8) && !connect.addr.is_public\n    action: kill\n";
    let p = load_str("p.yaml", src).unwrap();
    assert!(p.rules().iter().all(|r| r.kernel == Enforcement::Kernel));
    assert_eq!(
        p.lower().connect_nets,
        vec![
            entry("10.0.0.0/8", &[1]),
            entry("10.1.0.0/16", &[1]),
            entry("8.8.8.0/24", &[0]),
            entry("8.8.8.8/32", &[0]),
        ]
    );
}

#[test]
fn a_prefix_mixing_public_and_private_addresses_blocks_an_is_public_rule() {
    let src = "rules:\n  - id: r1\n    expression: connect.addr.ip in 0.0.0.0/0 && connect.addr.is_public\n    action: deny\n";
    assert_eq!(
        positions(src),
        vec![(Code::NotLowerable, at(src, "connect.addr.is_public"))]
    );
    let text = errors(src).to_string();
    assert!(
        text.contains("prefix `0.0.0.0/0` mixes public and non-public addresses"),
        "{text}"
    );
    // As a kill rule: userspace, and its prefix stays a key that matches nothing.
    let p = load_str("p.yaml", &src.replace("action: deny", "action: kill")).unwrap();
    assert_eq!(p.rules()[0].kernel, Enforcement::Userspace);
    let why = p.rules()[0].userspace_reason.clone().unwrap();
    assert!(
        why.contains("mixes public and non-public addresses"),
        "{why}"
    );
    assert_eq!(p.lower().connect_nets, vec![entry("0.0.0.0/0", &[])]);
    // Excluding every non-public IPv4 range makes the rest of 0.0.0.0/0 public: it lowers.
    let private: Vec<String> = enforcer_policy::net::NON_PUBLIC
        .iter()
        .filter(|n| matches!(n, IpNet::V4(_)))
        .map(|n| format!("\"{n}\""))
        .collect();
    let src = format!(
        "lists:\n  - name: private\n    type: cidr\n    items: [{}]\nrules:\n  - id: r1\n    expression: connect.addr.ip in 0.0.0.0/0 && connect.addr.ip not in private && connect.addr.is_public\n    action: deny\n",
        private.join(", ")
    );
    let p = load_str("p.yaml", &src).unwrap();
    assert_eq!(p.rules()[0].kernel, Enforcement::Kernel);
    assert_eq!(kernel(&p, "1.2.3.4"), vec![0]);
    assert_eq!(kernel(&p, "10.2.3.4"), Vec::<u32>::new());
    // The IPv4-mapped range is never looked up as IPv6, so it does not mix a v6 prefix.
    let src = "lists:\n  - name: n\n    type: cidr\n    items: [\"::ffff:0:0/95\"]\nnetwork:\n  extra_public_ranges: [\"::fffe:1:0/112\"]\nrules:\n  - id: r1\n    expression: connect.addr.ip in n && connect.addr.is_public\n    action: deny\n";
    let p = load_str("p.yaml", src).unwrap();
    assert_eq!(p.lower().connect_nets, vec![entry("::fffe:0:0/95", &[0])]);
}

#[test]
fn connect_deny_rules_the_kernel_cannot_match_are_rejected_with_the_reason() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "connect.addr.ip in (203.0.113.0/24) && connect.addr.port == 3333",
            "connect.addr.port",
            "`connect.addr.port` is not visible to the kernel plan (the connect hook matches `connect.addr.ip` and `connect.addr.is_public` only)",
        ),
        (
            "connect.addr.ip == 203.0.113.7 && connect.protocol == \"tcp\"",
            "connect.protocol",
            "`connect.protocol` is not visible to the kernel plan",
        ),
        (
            "connect.addr.ip not in (10.0.0.0/8)",
            "connect.addr.ip",
            "the expression holds for addresses in none of its networks",
        ),
        (
            "connect.addr.is_public",
            "connect.addr.is_public",
            "the expression holds for addresses in none of its networks",
        ),
        (
            "connect.addr.ip in (203.0.113.0/24) || connect.addr.is_public",
            "connect.addr.ip",
            "the expression holds for addresses in none of its networks",
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
        let p = load_str("p.yaml", &src.replace("action: deny", "action: kill")).unwrap();
        assert_eq!(p.rules()[0].kernel, Enforcement::Userspace);
        assert!(p.lower().is_empty());
    }
}

const MOCK_POOL: &str = "rules:\n  - id: public-pool-port\n    expression: connect.addr.is_public && connect.addr.port == 3333\n  - id: deny-public-loopback\n    expression: connect.addr.ip in (127.0.0.0/24, 127.0.0.77) && connect.addr.is_public\n    action: deny\n  - id: payload-public\n    expression: payload.addr.is_public && payload.stratum.method == \"login\"\n";

#[test]
fn a_mock_pool_on_loopback_is_public_only_when_listed() {
    let plain = load_str("p.yaml", MOCK_POOL).unwrap();
    let listed = load_str(
        "p.yaml",
        &format!("{MOCK_POOL}network:\n  extra_public_ranges: [127.0.0.77/32]\n"),
    )
    .unwrap();
    assert!(plain.extra_public_ranges().is_empty());
    assert_eq!(
        listed.extra_public_ranges(),
        &["127.0.0.77/32".parse::<IpNet>().unwrap()]
    );
    let pool = connect("127.0.0.77", 3333);
    assert!(matched(&plain, &pool).is_empty());
    assert_eq!(matched(&listed, &pool), vec![0, 1]);
    assert_eq!(
        matched(&listed, &connect("::ffff:127.0.0.77", 3333)),
        vec![0, 1]
    );
    assert!(matched(&listed, &connect("127.0.0.78", 3333)).is_empty());
    // The kernel plan uses the same definition.
    assert_eq!(
        plain.lower().connect_nets,
        vec![entry("127.0.0.0/24", &[]), entry("127.0.0.77/32", &[])]
    );
    assert_eq!(
        listed.lower().connect_nets,
        vec![entry("127.0.0.0/24", &[]), entry("127.0.0.77/32", &[1])]
    );
    // An event that says `is_public` itself keeps its value.
    let declared = Event::from_json(&json!({"kind":"connect","connect":{"addr":{"ip":"127.0.0.77","port":3333,"is_public":false}}})).unwrap();
    assert!(matched(&listed, &declared).is_empty());
    assert_eq!(listed.eval_exhaustive(&pool), listed.eval(&pool));
    assert_eq!(listed.count_matches(&pool), 2);
    // `payload.addr.is_public` honours the ranges too.
    let payload = Event::from_json(&json!({"kind":"payload","payload":{"addr":{"ip":"127.0.0.77","port":3333},"stratum":{"method":"login"}}})).unwrap();
    assert!(matched(&plain, &payload).is_empty());
    assert_eq!(matched(&listed, &payload), vec![2]);
    // A listed extra range inside a listed prefix makes that prefix mixed.
    let src = "network:\n  extra_public_ranges: [127.0.0.77/32]\nrules:\n  - id: r1\n    expression: connect.addr.ip in 127.0.0.0/8 && connect.addr.is_public\n    action: deny\n";
    assert!(
        errors(src)
            .to_string()
            .contains("prefix `127.0.0.0/8` mixes public and non-public addresses")
    );
    let text = report::check_report(&listed);
    assert!(
        text.contains("extra public ranges: 127.0.0.77/32"),
        "{text}"
    );
}

#[test]
fn extra_public_ranges_are_validated_and_merged_across_files() {
    let src = "network:\n  extra_public_ranges: [127.0.0.77/32, 10.0.0.0/33, nope]\nrules:\n  - id: r\n    expression: connect.addr.is_public\n";
    assert_eq!(
        positions(src),
        vec![
            (Code::BadValue, at(src, "10.0.0.0/33")),
            (Code::BadValue, at(src, "nope")),
        ]
    );
    assert!(
        errors(src)
            .to_string()
            .contains("invalid extra public range `10.0.0.0/33`")
    );
    let src = "network:\n  extra_public: [1.2.3.4]\nrules:\n  - id: r\n    expression: connect.addr.is_public\n";
    assert_eq!(
        positions(src),
        vec![(Code::Structure, at(src, "extra_public:"))]
    );
    let src = "network: [1.2.3.4]\nrules:\n  - id: r\n    expression: connect.addr.is_public\n";
    assert_eq!(positions(src), vec![(Code::Structure, at(src, "[1.2"))]);
    // Several files: the union, canonical and sorted.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.yaml"),
        "network:\n  extra_public_ranges: [198.18.0.0/15, 127.0.0.77]\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("b.yaml"),
        "network:\n  extra_public_ranges: [\"::ffff:127.0.0.77/128\", 198.19.1.2/15]\nrules:\n  - id: r\n    expression: connect.addr.is_public\n",
    )
    .unwrap();
    let p = load(dir.path()).unwrap();
    let want: Vec<IpNet> = ["127.0.0.77/32", "198.18.0.0/15"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(p.extra_public_ranges(), want.as_slice());
}

#[test]
fn large_nested_lists_lower() {
    // 20,000 addresses inside one listed /8: the /8's range is cut around each of them.
    let items: Vec<String> = (0..20_000u32)
        .map(|i| {
            let [_, b, c, d] = (i * 797).to_be_bytes();
            format!("8.{b}.{c}.{d}")
        })
        .collect();
    let src = format!(
        "lists:\n  - name: big\n    type: cidr\n    items: [8.0.0.0/8, {}]\nrules:\n  - id: r\n    expression: connect.addr.ip in big && connect.addr.ip not in (8.0.0.1) && connect.addr.is_public\n    action: deny\n",
        items.join(", ")
    );
    let start = std::time::Instant::now();
    let p = load_str("p.yaml", &src).unwrap();
    let plan = p.lower();
    assert_eq!(plan.connect_nets.len(), 20_002);
    assert_eq!(kernel(&p, "8.0.0.1"), Vec::<u32>::new());
    assert_eq!(kernel(&p, "8.0.0.2"), vec![0]);
    assert_eq!(kernel(&p, &items[12_345]), vec![0]);
    eprintln!("lowered in {:?}", start.elapsed());
}

#[test]
fn alert_only_connect_rules_enter_the_plan_as_record_only_entries() {
    let src = r#"lists:
  - name: pools
    type: cidr
    items: [203.0.113.0/24]
rules:
  - id: watch
    expression: connect.addr.ip in pools
    action: alert
"#;
    let p = load_str("p.yaml", src).unwrap();
    assert_eq!(p.rules()[0].kernel, Enforcement::Userspace);
    assert_eq!(kernel(&p, "203.0.113.5"), vec![0]);
    assert!(kernel(&p, "192.0.2.1").is_empty());
    assert!(
        p.lower().connect_filtered,
        "every connect rule is in the plan: the kernel may filter"
    );
}

#[test]
fn one_connect_rule_outside_the_plan_makes_the_kernel_report_every_connect() {
    let src = r#"rules:
  - id: deny-pool
    expression: connect.addr.ip == 203.0.113.9
    action: deny
  - id: odd-port
    expression: connect.addr.port == 3333
    action: alert
"#;
    let p = load_str("p.yaml", src).unwrap();
    assert_eq!(kernel(&p, "203.0.113.9"), vec![0]);
    assert!(!p.lower().connect_filtered, "odd-port needs every connect");
    // A disabled rule matches nothing, so it does not stop the filtering.
    let disabled = src.replace("action: alert\n", "action: alert\n    disabled: true\n");
    assert!(
        load_str("p.yaml", &disabled)
            .unwrap()
            .lower()
            .connect_filtered
    );
    // No connect rule at all: nothing to report.
    let none = "rules:\n  - id: x\n    expression: exec.file.name == \"xmrig\"\n    action: deny\n";
    assert!(load_str("p.yaml", none).unwrap().lower().connect_filtered);
    // Unless the policy asks for every connect in the audit log.
    let all = format!("{none}network:\n  record_all_connects: true\n");
    assert!(!load_str("p.yaml", &all).unwrap().lower().connect_filtered);
}

#[test]
fn the_default_policy_lets_the_kernel_filter_connects() {
    let p = load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/default"
    )))
    .unwrap();
    assert!(p.lower().connect_filtered);
}

#[test]
fn rules_on_learned_names_are_enforced_through_learned_addresses() {
    let src = r#"lists:
  - name: pools
    type: domain
    items: [example-miner.test]
rules:
  - id: learned
    expression: connect.addr.dns_name in pools && connect.addr.is_public
    action: deny
  - id: listed
    expression: connect.addr.ip == 203.0.113.9
    action: alert
"#;
    let p = load_str("p.yaml", src).unwrap();
    assert_eq!(p.rules()[0].kernel, Enforcement::Kernel);
    assert_eq!(p.plan().learned_rules, vec![0]);
    assert!(
        p.lower().connect_filtered,
        "a learned rule is in the plan through its addresses"
    );
}

#[test]
fn a_rule_on_learned_names_must_require_the_name_and_read_nothing_else() {
    for (expr, why) in [
        (
            "connect.addr.dns_name == \"a.test\" && connect.addr.port == 3333",
            "may only also test",
        ),
        (
            "!(connect.addr.dns_name == \"a.test\")",
            "must require a positive test",
        ),
        (
            "connect.addr.dns_name == \"a.test\" || connect.addr.ip == 203.0.113.9",
            "must require a positive test",
        ),
    ] {
        let src = format!("rules:\n  - id: r\n    expression: '{expr}'\n    action: deny\n");
        let err = load_str("p.yaml", &src).unwrap_err().to_string();
        assert!(err.contains(why), "{expr}: {err}");
    }
}
