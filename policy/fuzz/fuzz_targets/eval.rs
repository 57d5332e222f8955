//! Fuzz target: arbitrary JSON events against a fixed policy covering every operator family.
//! Decoding and evaluation must never panic, and the indexed evaluation must agree with the
//! exhaustive one.
#![no_main]

use std::sync::LazyLock;

use enforcer_policy::{CompiledPolicy, load_str};
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
});
