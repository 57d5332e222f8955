//! Lowering: decides, per rule, whether the kernel plan can match it exactly, and builds the
//! [`KernelPlan`]. Anything that cannot be lowered is a [`Blocker`] naming the sub-expression
//! that prevents it. A rule applies to one event kind, so it never mixes hook families across
//! kinds. Two kinds of families:
//!
//! - Scalar families (exec names and paths, payload methods): the expression must be a
//!   disjunction (`||`, through macros) of terms `field == "v"` / `field in list` over a
//!   kernel-matchable field ([`crate::schema::FieldDef::kernel`]) with values that fit the
//!   kernel keys; each value becomes a map entry of the rule ([`analyze`] here).
//! - Set families (DNS question names, connection destinations): any `&&` / `||` / `!` of
//!   tests on `dns.question.name` (`==`, `!=`, `in`, `not in` with strings and domain lists),
//!   or on `connect.addr.ip` (`==`, `in`, negated, with addresses and CIDRs) and
//!   `connect.addr.is_public`, that holds for no name or address outside its lists
//!   ([`formula`]). The plan then holds, per listed key, the rules that hold for the names or
//!   addresses whose kernel lookup ends at that key ([`sets`]).

pub mod args;
pub mod files;
mod formula;
mod sets;

use std::collections::BTreeMap;

use ipnet::IpNet;

pub use formula::{DnsRule, NetRule, dns_key};

use crate::ir::{Cond, CondNode, Matcher};
use crate::plan::{KERNEL_OPS, KernelPlan, MAX_METHOD_LEN, MAX_NAME_LEN, MAX_PATH_LEN, PlanEntry};
use crate::schema::{self, FieldId, KernelFamily};
use crate::source::Span;

/// Why a rule cannot be lowered, and where.
#[derive(Debug, Clone)]
pub struct Blocker {
    /// The sub-expression that blocks.
    pub span: Span,
    /// The reason.
    pub reason: String,
    /// Macro uses the blocker was reached through (name, use site), outermost first.
    pub via: Vec<(String, Span)>,
}

/// The map values a lowerable expression of a scalar family contributes.
pub type Terms = Vec<(KernelFamily, String)>;

/// What a lowerable rule contributes to the plan.
#[derive(Debug, Clone)]
pub enum Lowered {
    /// Values of a scalar family (exec names and paths, payload methods): the rule matches
    /// exactly the events whose value is one of them.
    Terms(Terms),
    /// A DNS rule, evaluated per listed name and domain when the plan is built.
    Dns(DnsRule),
    /// A connect rule, evaluated per listed prefix when the plan is built.
    Connect(NetRule),
}

pub(crate) fn block(span: Span, reason: impl Into<String>) -> Blocker {
    Blocker {
        span,
        reason: reason.into(),
        via: Vec::new(),
    }
}

/// Whether `c` is a rule on addresses learned from DNS answers: it reads
/// `connect.addr.dns_name`, no field but that, `connect.addr.ip` and `connect.addr.is_public`,
/// and cannot hold without a positive test on the name (so an address no answer gave never
/// matches). `Ok(false)` when it does not read the name; `Err` names the blocking test.
pub fn learned_rule(c: &Cond) -> Result<bool, Blocker> {
    let Some(name) = schema::lookup("connect.addr.dns_name") else {
        return Ok(false);
    };
    if !c.reads(&|f| f == name) {
        return Ok(false);
    }
    let allowed = [
        "connect.addr.dns_name",
        "connect.addr.ip",
        "connect.addr.is_public",
    ];
    if let Some(span) = first_test(c, &|f| !allowed.contains(&schema::def(f).name)) {
        return Err(block(
            span,
            "a rule on `connect.addr.dns_name` may only also test `connect.addr.ip` and `connect.addr.is_public` (the daemon decides it from a DNS answer alone)",
        ));
    }
    if !requires(c, name) {
        return Err(block(
            c.span,
            "a rule on `connect.addr.dns_name` must require a positive test on it (`==`, `in`, ... joined with `&&`), so that an address no DNS answer gave cannot match",
        ));
    }
    Ok(true)
}

/// The span of the first field test of `c` whose field satisfies `pred`.
fn first_test(c: &Cond, pred: &dyn Fn(FieldId) -> bool) -> Option<Span> {
    match &c.node {
        CondNode::Const(_) => None,
        CondNode::And(items) | CondNode::Or(items) => {
            items.iter().find_map(|i| first_test(i, pred))
        }
        CondNode::Not(inner) | CondNode::Macro(_, inner) => first_test(inner, pred),
        CondNode::Test(t) => pred(t.field).then_some(c.span),
    }
}

/// Whether `c` can only hold when a positive (not negated) test on `field` holds.
fn requires(c: &Cond, field: FieldId) -> bool {
    match &c.node {
        CondNode::Test(t) => t.field == field && !t.negate,
        CondNode::And(items) => items.iter().any(|i| requires(i, field)),
        CondNode::Or(items) => !items.is_empty() && items.iter().all(|i| requires(i, field)),
        CondNode::Macro(_, inner) => requires(inner, field),
        CondNode::Not(_) | CondNode::Const(_) => false,
    }
}

/// The SHA-256 field the hash plan matches.
pub const HASH_FIELD: &str = "exec.file.hash.sha256";

/// When `c` is a disjunction (`||`, through macros) of `exec.file.hash.sha256 == "v"` /
/// `in list` tests, the values it matches: 64 lowercase hex digits each (a value of another
/// shape can never equal a computed hash and is left out). `None` when `c` is anything else.
/// An empty result means the rule can never match.
pub fn hash_values(c: &Cond) -> Option<Vec<String>> {
    let field = schema::lookup(HASH_FIELD)?;
    match &c.node {
        CondNode::Or(items) => {
            let mut out = Vec::new();
            for i in items {
                out.extend(hash_values(i)?);
            }
            Some(out)
        }
        CondNode::Macro(_, inner) => hash_values(inner),
        CondNode::Test(t) if t.field == field && !t.negate => {
            let values: Vec<&str> = match &*t.matcher {
                Matcher::StrEq(v) => vec![v],
                Matcher::StrIn(set) => set.iter().map(|s| &**s).collect(),
                _ => return None,
            };
            Some(
                values
                    .into_iter()
                    .filter(|v| {
                        v.len() == 64 && v.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
                    })
                    .map(str::to_owned)
                    .collect(),
            )
        }
        _ => None,
    }
}

/// The hash plan entries of the blocking rules `(index, values)`: one per digest, its rules.
pub fn hash_entries(rules: &[(u32, Vec<String>)]) -> Vec<PlanEntry> {
    let mut map: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for (idx, values) in rules {
        for v in values {
            let e = map.entry(v.clone()).or_default();
            if e.last() != Some(idx) {
                e.push(*idx);
            }
        }
    }
    map.into_iter()
        .map(|(value, mut rules)| {
            rules.sort_unstable();
            rules.dedup();
            PlanEntry { value, rules }
        })
        .collect()
}

/// The values `field` must equal for `c` to hold (`field == "v"` / `field in [...]` required
/// through `&&`, every branch of an `||` requiring some), or `None` when `c` can hold for any
/// value of `field`. The kernel-activity tracepoint reports only the operations some rule
/// requires this way (`kernel.op`), and every operation when a rule requires none.
pub fn required_values(c: &Cond, field: FieldId) -> Option<Vec<String>> {
    match &c.node {
        CondNode::Test(t) if t.field == field && !t.negate => match &*t.matcher {
            Matcher::StrEq(v) => Some(vec![v.to_string()]),
            Matcher::StrIn(set) => Some(set.iter().map(|v| v.to_string()).collect()),
            _ => None,
        },
        CondNode::And(items) => {
            let mut best: Option<Vec<String>> = None;
            for i in items {
                if let Some(v) = required_values(i, field)
                    && best.as_ref().is_none_or(|b| v.len() < b.len())
                {
                    best = Some(v);
                }
            }
            best
        }
        CondNode::Or(items) => {
            let mut all = Vec::new();
            for i in items {
                all.extend(required_values(i, field)?);
            }
            (!items.is_empty()).then_some(all)
        }
        CondNode::Macro(_, inner) => required_values(inner, field),
        CondNode::Const(false) => Some(Vec::new()),
        CondNode::Test(_) | CondNode::Not(_) | CondNode::Const(_) => None,
    }
}

/// How the kernel can match `c`, or why it cannot.
pub fn analyze(c: &Cond) -> Result<Lowered, Blocker> {
    match set_family(c) {
        Some(KernelFamily::DnsName) => formula::dns(c).map(Lowered::Dns),
        Some(_) => formula::connect(c).map(Lowered::Connect),
        None => scalar(c).map(Lowered::Terms),
    }
}

/// The set family (DNS or connect) of the first test of `c` on a set-family field, if any.
fn set_family(c: &Cond) -> Option<KernelFamily> {
    match &c.node {
        CondNode::Const(_) => None,
        CondNode::And(items) | CondNode::Or(items) => items.iter().find_map(set_family),
        CondNode::Not(inner) | CondNode::Macro(_, inner) => set_family(inner),
        CondNode::Test(t) => schema::def(t.field).kernel.filter(|f| {
            matches!(
                f,
                KernelFamily::DnsName | KernelFamily::ConnectAddr | KernelFamily::ConnectPublic
            )
        }),
    }
}

/// The terms of `c` in a scalar family, or why there are none.
fn scalar(c: &Cond) -> Result<Terms, Blocker> {
    match &c.node {
        CondNode::Or(items) => {
            let mut out = Vec::new();
            for i in items {
                out.extend(scalar(i)?);
            }
            Ok(out)
        }
        CondNode::Macro(name, body) => scalar(body).map_err(|mut b| {
            b.via.insert(0, (name.to_string(), c.span));
            b
        }),
        CondNode::And(items) => {
            let blocker = items.iter().find_map(|i| scalar(i).err());
            Err(match blocker {
                Some(mut b) => {
                    b.reason = format!("{}; a deny rule cannot require it with `&&`", b.reason);
                    b
                }
                None => block(
                    c.span,
                    "the kernel plan matches single values; a conjunction (`&&`) cannot be lowered",
                ),
            })
        }
        CondNode::Not(_) => Err(block(
            c.span,
            "a negation (`!`) cannot be matched in the kernel",
        )),
        CondNode::Const(_) => Err(block(c.span, "a constant cannot be matched in the kernel")),
        CondNode::Test(t) => {
            let def = schema::def(t.field);
            let Some(family) = def.kernel else {
                return Err(block(
                    c.span,
                    format!("`{}` is not visible to the kernel plan", def.name),
                ));
            };
            if t.negate {
                return Err(block(
                    c.span,
                    format!("`{}` cannot be matched in the kernel (negated)", t.op),
                ));
            }
            let values: Vec<&str> = match &*t.matcher {
                Matcher::StrEq(v) => vec![v],
                Matcher::StrIn(set) => {
                    let mut v: Vec<&str> = set.iter().map(|s| &**s).collect();
                    v.sort_unstable();
                    v
                }
                _ => {
                    return Err(block(
                        c.span,
                        format!(
                            "the kernel matches `{}` only by equality or membership in a string list",
                            def.name
                        ),
                    ));
                }
            };
            let mut out = Vec::with_capacity(values.len());
            for v in values {
                check_value(family, v)
                    .map_err(|why| block(c.span, format!("value `{v}` {why}")))?;
                out.push((family, v.to_string()));
            }
            Ok(out)
        }
    }
}

fn check_value(family: KernelFamily, v: &str) -> Result<(), String> {
    if v.contains('\0') {
        return Err("contains a NUL byte".into());
    }
    match family {
        // Set families are analysed by `formula`; their fields never reach here.
        KernelFamily::DnsName | KernelFamily::ConnectAddr | KernelFamily::ConnectPublic => {
            return Err("is not a value of a scalar kernel family".into());
        }
        KernelFamily::ExecName => {
            if v.is_empty() || v.contains('/') {
                return Err("is not a basename".into());
            }
            if v.len() > MAX_NAME_LEN {
                return Err(format!(
                    "is longer than {MAX_NAME_LEN} bytes, the kernel's basename limit"
                ));
            }
        }
        KernelFamily::ExecPath => {
            if !v.starts_with('/') {
                return Err("is not an absolute path".into());
            }
            if v.len() > MAX_PATH_LEN {
                return Err(format!(
                    "is longer than {MAX_PATH_LEN} bytes, the kernel's path limit"
                ));
            }
        }
        KernelFamily::KernelOp => {
            if !KERNEL_OPS.contains(&v) {
                return Err(format!(
                    "is not an operation the kernel plan matches ({})",
                    KERNEL_OPS.join(", ")
                ));
            }
        }
        KernelFamily::PayloadMethod => {
            if v.is_empty() {
                return Err("is empty".into());
            }
            if v.len() > MAX_METHOD_LEN {
                return Err(format!(
                    "is longer than {MAX_METHOD_LEN} bytes, the kernel's method limit"
                ));
            }
            // The kernel compares the raw bytes between the JSON quotes, unescaped.
            if let Some(c) = v
                .chars()
                .find(|c| matches!(c, '"' | '\\') || c.is_control())
            {
                return Err(format!(
                    "contains {c:?}, which a JSON string carries escaped (the kernel does not unescape)"
                ));
            }
        }
    }
    Ok(())
}

/// Builds the plan from the lowered kernel rules (`(rule index, lowered)`, enabled rules only)
/// and the policy's extra public ranges. Also returns the connect rules that cannot be lowered
/// after all: their result changes inside the range of one prefix (through
/// `connect.addr.is_public`); those rules are left out of the plan.
pub fn build_plan(
    rules: &[(u32, Lowered)],
    extra_public: &[IpNet],
) -> (KernelPlan, Vec<(u32, Blocker)>) {
    let mut names: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    let mut paths: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    let mut methods: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    let mut ops: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    let mut dns = Vec::new();
    let mut nets = Vec::new();
    for (idx, lowered) in rules {
        let terms = match lowered {
            Lowered::Terms(terms) => terms,
            Lowered::Dns(r) => {
                dns.push((*idx, r));
                continue;
            }
            Lowered::Connect(r) => {
                nets.push((*idx, r));
                continue;
            }
        };
        for (family, v) in terms {
            let map = match family {
                KernelFamily::ExecName => &mut names,
                KernelFamily::ExecPath => &mut paths,
                KernelFamily::PayloadMethod => &mut methods,
                KernelFamily::KernelOp => &mut ops,
                KernelFamily::DnsName | KernelFamily::ConnectAddr | KernelFamily::ConnectPublic => {
                    continue;
                }
            };
            let e = map.entry(v.clone()).or_default();
            if e.last() != Some(idx) {
                e.push(*idx);
            }
        }
    }
    let entries = |m: BTreeMap<String, Vec<u32>>| {
        m.into_iter()
            .map(|(value, mut rules)| {
                rules.sort_unstable();
                rules.dedup();
                PlanEntry { value, rules }
            })
            .collect()
    };
    let (dns_names, dns_domains) = sets::dns_entries(&dns);
    let (connect_nets, blocked) = sets::connect_entries(&nets, extra_public);
    let plan = KernelPlan {
        exec_names: entries(names),
        exec_paths: entries(paths),
        payload_methods: entries(methods),
        dns_names,
        dns_domains,
        connect_nets,
        connect_filtered: false,
        learned_rules: Vec::new(),
        file_watches: Vec::new(),
        file_rules: false,
        file_filtered: false,
        exec_hashes: Vec::new(),
        exec_arg_schemes: Vec::new(),
        exec_arg_flags: Vec::new(),
        exec_args_spared: Vec::new(),
        kernel_ops: entries(ops),
    };
    (plan, blocked)
}
