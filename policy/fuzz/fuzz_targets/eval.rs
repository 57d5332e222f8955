//! Fuzz target: arbitrary JSON events against a fixed policy covering every operator family.
//! Decoding and evaluation must never panic, the indexed evaluation must agree with the
//! exhaustive one, and for DNS and connect events the kernel plan's lookup
//! (`KernelPlan::dns_lookup` / `connect_lookup`) must give the kernel rules the evaluator
//! matches.
#![no_main]

use std::sync::LazyLock;

use enforcer_policy::{CompiledPolicy, Enforcement, Kind, Val, load_str, schema};
use libfuzzer_sys::fuzz_target;

const POLICY: &str = r#"
lists:
  - name: miners
    items: [xmrig, minerd]
  - name: pools
    type: domain
    items: [supportxmr.com, nanopool.org]
  - name: nets
    type: cidr
    items: [203.0.113.0/24, "2001:db8::/32"]
  - name: lab
    type: cidr
    items: [198.51.100.0/24, 8.8.8.0/24, "2606:4700::/32"]
  - name: globs
    type: glob
    items: ["/dev/cpu/*/msr", "/proc/sys/vm/**"]
macros:
  - name: shells
    expression: ("sh", "bash")
rules:
  - id: name
    expression: exec.file.name in miners || exec.file.path == "/opt/m"
    action: deny
  - id: args
    expression: exec.args contains ("stratum+tcp://", "stratum+ssl://") && exec.file.name not in shells
  - id: regex
    expression: exec.argv0 =~ r"^k(worker|thread)[a-z_]*$" || exec.envs startswith "POOL_"
  - id: anc
    expression: process.ancestors.file.name in shells && exec.is_memfd
  - id: dns
    expression: dns.question.name in pools && dns.question.type != "TXT"
  - id: net
    expression: connect.addr.ip in nets && connect.addr.port >= 1024 && connect.addr.is_public
  - id: open
    expression: open.file.path in globs && open.is_write
  - id: stratum
    expression: payload.stratum.method in ("mining.subscribe", "login")
  - id: cpu
    expression: cpu.usage.percent > 90 && cpu.window >= 2m
  - id: dns-deny
    expression: (dns.question.name in pools || dns.question.name == "xmr.example") && dns.question.name not in ("www.supportxmr.com",)
    action: deny
  - id: net-deny
    expression: connect.addr.ip in lab && connect.addr.ip != 198.51.100.7 && connect.addr.is_public
    action: kill
network:
  extra_public_ranges: [198.51.100.0/24]
"#;

static POLICY_COMPILED: LazyLock<Option<CompiledPolicy>> =
    LazyLock::new(|| load_str("fuzz.yaml", POLICY).ok());

fuzz_target!(|data: &[u8]| {
    let Some(policy) = POLICY_COMPILED.as_ref() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(event) = enforcer_policy::report::parse_event(text) else {
        return;
    };
    let matches = policy.eval(&event);
    assert_eq!(matches, policy.eval_exhaustive(&event));
    let _ = enforcer_policy::report::eval_report(policy, &event, &matches);
    // The kernel plan's DNS / connect lookups give the kernel rules the evaluator matches.
    let plan = policy.lower();
    let kernel_rules: Vec<u32> = matches
        .iter()
        .map(|m| m.rule_index)
        .filter(|i| {
            policy
                .rules()
                .get(*i as usize)
                .is_some_and(|r| r.kernel == Enforcement::Kernel)
        })
        .collect();
    let field = |name: &str| schema::lookup(name).and_then(|id| event.get(id));
    let planned = match (
        event.kind(),
        field("dns.question.name"),
        field("connect.addr.ip"),
    ) {
        (Kind::Dns, Some(Val::Str(name)), _) => plan.dns_lookup(name),
        (Kind::Connect, _, Some(Val::Ip(ip))) => {
            // An event may carry `is_public` itself; the kernel derives it.
            if carries_is_public(text) {
                return;
            }
            plan.connect_lookup(*ip)
        }
        _ => return,
    };
    assert_eq!(
        planned.map(|e| e.rules.clone()).unwrap_or_default(),
        kernel_rules
    );
});

/// Whether the event (bare or in an audit record, as `Event::from_json` reads it) carries
/// `connect.addr.is_public` rather than letting the evaluator derive it.
fn carries_is_public(text: &str) -> bool {
    let Ok(mut v) = serde_json::from_str::<serde_json::Value>(text) else {
        return true;
    };
    while v.get("kind").is_none() {
        match v.get_mut("event") {
            Some(inner) => v = inner.take(),
            None => return true,
        }
    }
    v.pointer("/connect/addr/is_public")
        .is_some_and(|x| !x.is_null())
}
