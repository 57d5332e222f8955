//! Property test of the connect kernel family: for random policies (CIDR lists with nested,
//! overlapping-by-nesting and disjoint prefixes of both families, IPv4-mapped ones, extra
//! public ranges, rules of the lowerable shape with and without `connect.addr.is_public` and
//! arbitrary `&&` / `||` / `!` formulas) and addresses at and around every listed prefix,
//! non-public range and extra range (also in their IPv4-mapped IPv6 form), the kernel's
//! longest-prefix lookup simulated over `connect_nets` returns exactly the kernel-lowered rules
//! the evaluator matches. The simulation is independent of `KernelPlan::connect_lookup`, which
//! is checked against it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use enforcer_policy::{CompiledPolicy, Enforcement, Event, KernelPlan, Kind, load_str};
use ipnet::IpNet;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::json;

/// Prefixes along the interesting boundaries (private, loopback, documentation, CGNAT,
/// multicast, unique-local, the mapped range) and public ones.
const POOL: &[&str] = &[
    "0.0.0.0/0",
    "128.0.0.0/1",
    "8.0.0.0/7",
    "8.8.8.0/24",
    "8.8.8.8",
    "1.1.1.1",
    "10.0.0.0/8",
    "10.1.0.0/16",
    "10.1.2.0/24",
    "10.1.2.3",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "127.0.0.0/24",
    "127.0.0.77",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "203.0.113.0/24",
    "203.0.113.5",
    "224.0.0.0/4",
    "::ffff:10.0.0.0/104",
    "::ffff:8.8.8.8",
    "::/0",
    "::/1",
    "::ffff:0:0/95",
    "2000::/3",
    "2001:db8::/32",
    "2001:db8:1::/48",
    "2606:4700::/32",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
    "::1",
];

/// Ranges an operator could declare public.
const EXTRA: &[&str] = &[
    "127.0.0.77/32",
    "198.18.0.0/15",
    "10.1.0.0/16",
    "192.168.0.0/16",
    "2001:db8:1::/48",
    "fc00::/8",
    "::ffff:127.0.0.0/120",
];

fn net(s: &str) -> IpNet {
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .unwrap()
}

/// A pool prefix, or a random prefix inside one (so prefixes nest at random depths).
fn prefix() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => prop::sample::select(POOL).prop_map(str::to_string),
        1 => (prop::sample::select(POOL), any::<u128>(), any::<u8>()).prop_map(|(p, bits, len)| {
            let p = net(p);
            match p {
                IpNet::V4(n) => {
                    let host = u32::try_from(bits & u128::from(u32::MAX)).unwrap() & !u32::from(n.netmask());
                    let a = Ipv4Addr::from(u32::from(n.network()) | host);
                    let len = n.prefix_len() + len % (33 - n.prefix_len());
                    IpNet::new(IpAddr::V4(a), len).unwrap().trunc().to_string()
                }
                IpNet::V6(n) => {
                    let a = Ipv6Addr::from(u128::from(n.network()) | (bits & !u128::from(n.netmask())));
                    let len = n.prefix_len() + len % (129 - n.prefix_len());
                    IpNet::new(IpAddr::V6(a), len).unwrap().trunc().to_string()
                }
            }
        }),
    ]
}

fn inline(ps: &[String]) -> String {
    // Literals must start with a digit; others go through the lists.
    let ok: Vec<&str> = ps
        .iter()
        .map(String::as_str)
        .filter(|p| p.starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    if ok.is_empty() {
        "()".into()
    } else {
        format!("({},)", ok.join(", "))
    }
}

/// A positive address term, rendered positively or negated.
#[derive(Debug, Clone)]
enum Term {
    List(usize),
    Tuple(Vec<String>),
    Eq(String),
}

impl Term {
    fn render(&self, positive: bool) -> String {
        let (eq, inn) = if positive {
            ("==", "in")
        } else {
            ("!=", "not in")
        };
        match self {
            Term::List(k) => format!("connect.addr.ip {inn} N{k}"),
            Term::Tuple(ps) => format!("connect.addr.ip {inn} {}", inline(ps)),
            Term::Eq(a) => format!("connect.addr.ip {eq} {a}"),
        }
    }
}

fn term() -> impl Strategy<Value = Term> {
    prop_oneof![
        3 => (0..3usize).prop_map(Term::List),
        1 => prop::collection::vec(prefix(), 1..3).prop_map(Term::Tuple),
        1 => prop::sample::select(&["8.8.8.8", "10.1.2.3", "127.0.0.77", "203.0.113.5", "1.1.1.1"][..])
            .prop_map(|a| Term::Eq(a.to_string())),
    ]
}

const PUBLIC: &[&str] = &[
    "connect.addr.is_public",
    "!connect.addr.is_public",
    "connect.addr.is_public == false",
    "connect.addr.is_public != true",
];

fn atom() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (term(), any::<bool>()).prop_map(|(t, pos)| t.render(pos)),
        2 => prop::sample::select(PUBLIC).prop_map(str::to_string),
        1 => Just("connect.addr.port == 3333".to_string()),
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

/// `(P1 || ...) && !(E1 || ...)` or `P && ip not in X`, optionally `&& [!]is_public`.
fn shaped() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(term(), 1..3),
        prop::collection::vec(term(), 0..3),
        any::<bool>(),
        prop::option::weighted(0.6, prop::sample::select(PUBLIC)),
    )
        .prop_map(|(ps, es, grouped, public)| {
            let p: Vec<String> = ps.iter().map(|t| t.render(true)).collect();
            let mut out = format!("({})", p.join(" || "));
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
            if let Some(pb) = public {
                out.push_str(&format!(" && {pb}"));
            }
            out
        })
}

#[derive(Debug, Clone)]
struct Case {
    lists: Vec<Vec<String>>,
    extra: Vec<String>,
    rules: Vec<String>,
    /// Random bits for addresses inside the probed networks.
    noise: Vec<u128>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(prop::collection::vec(prefix(), 0..4), 3),
        prop::collection::vec(prop::sample::select(EXTRA).prop_map(str::to_string), 0..3),
        prop::collection::vec(prop_oneof![3 => shaped(), 2 => formula()], 1..6),
        prop::collection::vec(any::<u128>(), 2),
    )
        .prop_map(|(lists, extra, rules, noise)| Case {
            lists,
            extra,
            rules,
            noise,
        })
}

fn source(c: &Case) -> String {
    let mut s = String::from("lists:\n");
    for (k, items) in c.lists.iter().enumerate() {
        let items: Vec<String> = items.iter().map(|v| format!("\"{v}\"")).collect();
        s.push_str(&format!(
            "  - name: N{k}\n    type: cidr\n    items: [{}]\n",
            items.join(", ")
        ));
    }
    if !c.extra.is_empty() {
        let items: Vec<String> = c.extra.iter().map(|v| format!("\"{v}\"")).collect();
        s.push_str(&format!(
            "network:\n  extra_public_ranges: [{}]\n",
            items.join(", ")
        ));
    }
    s.push_str("rules:\n");
    for (i, r) in c.rules.iter().enumerate() {
        s.push_str(&format!(
            "  - id: r{i}\n    expression: '{r}'\n    action: kill\n"
        ));
    }
    s
}

/// Addresses at, just outside and inside every network that matters.
fn probes(c: &Case) -> Vec<String> {
    let mut nets: Vec<IpNet> = POOL.iter().chain(EXTRA).map(|s| net(s)).collect();
    nets.extend(c.lists.iter().flatten().map(|s| net(s)));
    nets.extend(c.rules.iter().flat_map(|r| {
        r.split(['(', ')', ',', ' '])
            .filter_map(|w| {
                w.parse::<IpNet>()
                    .ok()
                    .or_else(|| w.parse::<IpAddr>().ok().map(IpNet::from))
            })
            .collect::<Vec<_>>()
    }));
    nets.extend(enforcer_policy::net::NON_PUBLIC);
    let mut out = BTreeSet::new();
    for n in nets {
        match n {
            IpNet::V4(n) => {
                let (lo, hi) = (u32::from(n.network()), u32::from(n.broadcast()));
                let span = u128::from(hi - lo) + 1;
                let mut xs = vec![lo, hi, lo.wrapping_sub(1), hi.wrapping_add(1)];
                xs.extend(
                    c.noise
                        .iter()
                        .map(|r| lo + u32::try_from(r % span).unwrap()),
                );
                for x in xs {
                    let a = Ipv4Addr::from(x);
                    out.insert(IpAddr::V4(a));
                    out.insert(IpAddr::V6(a.to_ipv6_mapped()));
                }
            }
            IpNet::V6(n) => {
                let (lo, hi) = (u128::from(n.network()), u128::from(n.broadcast()));
                let mut xs = vec![lo, hi, lo.wrapping_sub(1), hi.wrapping_add(1)];
                xs.extend(c.noise.iter().map(|r| lo | (r & (hi - lo))));
                out.extend(xs.into_iter().map(|x| IpAddr::V6(Ipv6Addr::from(x))));
            }
        }
    }
    out.into_iter().map(|a| a.to_string()).collect()
}

/// The kernel's lookup, written from the plan's documentation: an IPv4-mapped address as
/// IPv4, then the longest prefix of the same family.
fn kernel_lookup(plan: &KernelPlan, ip: IpAddr) -> Vec<u32> {
    let ip = match ip {
        IpAddr::V6(a) => a.to_ipv4_mapped().map_or(IpAddr::V6(a), IpAddr::V4),
        v4 => v4,
    };
    plan.connect_nets
        .iter()
        .map(|e| (e.value.parse::<IpNet>().unwrap(), e))
        .filter(|(n, _)| n.contains(&ip))
        .max_by_key(|(n, _)| n.prefix_len())
        .map(|(_, e)| e.rules.clone())
        .unwrap_or_default()
}

fn kernel_rules(p: &CompiledPolicy) -> BTreeSet<u32> {
    p.rules()
        .iter()
        .enumerate()
        .filter(|(_, r)| r.kernel == Enforcement::Kernel && r.event_kind == Kind::Connect)
        .map(|(i, _)| u32::try_from(i).unwrap())
        .collect()
}

fn check(c: &Case) -> Result<(), TestCaseError> {
    let src = source(c);
    let p = load_str("p.yaml", &src).unwrap_or_else(|d| panic!("{d}\n{src}"));
    let plan = p.lower();
    let kernel = kernel_rules(&p);
    prop_assert!(
        plan.connect_nets
            .windows(2)
            .all(|w| w[0].value < w[1].value)
    );
    for e in &plan.connect_nets {
        let n: IpNet = e.value.parse().unwrap();
        prop_assert_eq!(n.trunc().to_string(), e.value.clone(), "canonical");
        prop_assert!(
            !matches!(n, IpNet::V6(v) if v.prefix_len() >= 96 && v.network().to_ipv4_mapped().is_some())
        );
        prop_assert!(e.rules.iter().all(|r| kernel.contains(r)));
    }
    for a in probes(c) {
        let ev = Event::from_json(&json!({"kind":"connect","connect":{"addr":{"ip": a}}})).unwrap();
        let want: Vec<u32> = p
            .eval(&ev)
            .iter()
            .map(|m| m.rule_index)
            .filter(|i| kernel.contains(i))
            .collect();
        let ip: IpAddr = a.parse().unwrap();
        let got = kernel_lookup(&plan, ip);
        prop_assert_eq!(
            &got,
            &want,
            "address {}\n{}\n{:?}",
            a,
            src,
            plan.connect_nets
        );
        let crate_sim = plan
            .connect_lookup(ip)
            .map(|e| e.rules.clone())
            .unwrap_or_default();
        prop_assert_eq!(&crate_sim, &want, "connect_lookup of {}", a);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn kernel_connect_lookup_equals_evaluation(c in case()) {
        check(&c)?;
    }
}

/// The generator is not vacuous: most policies lower connect rules, `is_public` is folded
/// into lowered rules, exclusions occur, and rules are rejected for mixing public and
/// non-public addresses under one prefix.
#[test]
fn connect_generator_exercises_every_outcome() {
    let mut runner = TestRunner::deterministic();
    let strategy = case();
    let (mut lowered, mut public_lowered, mut exclusions, mut mixes) = (0, 0, 0, 0);
    let total = 300;
    for _ in 0..total {
        let c = strategy.new_tree(&mut runner).unwrap().current();
        let p = load_str("p.yaml", &source(&c)).unwrap();
        let plan = p.lower();
        let kernel = kernel_rules(&p);
        lowered += usize::from(!kernel.is_empty());
        public_lowered += usize::from(
            kernel
                .iter()
                .any(|i| c.rules[*i as usize].contains("is_public")),
        );
        exclusions += usize::from(plan.connect_nets.iter().any(|e| e.rules.is_empty()));
        mixes += usize::from(p.rules().iter().any(|r| {
            r.userspace_reason
                .as_deref()
                .is_some_and(|w| w.contains("mixes public and non-public addresses"))
        }));
    }
    eprintln!(
        "of {total}: lowered {lowered}, is_public lowered {public_lowered}, exclusions {exclusions}, mixes {mixes}"
    );
    assert!(lowered > total * 7 / 10, "lowered {lowered}/{total}");
    assert!(
        public_lowered > total / 4,
        "public lowered {public_lowered}/{total}"
    );
    assert!(exclusions > total / 4, "exclusions {exclusions}/{total}");
    assert!(mixes > total / 10, "mixes {mixes}/{total}");
}
