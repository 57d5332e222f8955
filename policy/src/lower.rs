//! Lowering: decides, per rule, whether the kernel plan can match it exactly, and builds the
//! [`KernelPlan`]. A rule lowers when its expression is a disjunction (`||`, through macros)
//! of terms `field == "v"` / `field in list` over a kernel-matchable field
//! ([`crate::schema::FieldDef::kernel`]) with values that fit the kernel keys. Anything else is
//! a [`Blocker`] naming the sub-expression that prevents it. A rule applies to one event kind,
//! so its terms never mix hook families across kinds (exec names with payload methods).

use std::collections::BTreeMap;

use crate::ir::{Cond, CondNode, Matcher};
use crate::plan::{KernelPlan, MAX_METHOD_LEN, MAX_NAME_LEN, MAX_PATH_LEN, PlanEntry};
use crate::schema::{self, KernelFamily};
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

/// The map values a lowerable expression contributes.
pub type Terms = Vec<(KernelFamily, String)>;

fn block(span: Span, reason: impl Into<String>) -> Blocker {
    Blocker {
        span,
        reason: reason.into(),
        via: Vec::new(),
    }
}

/// The kernel terms of `c`, or why there are none.
pub fn analyze(c: &Cond) -> Result<Terms, Blocker> {
    match &c.node {
        CondNode::Or(items) => {
            let mut out = Vec::new();
            for i in items {
                out.extend(analyze(i)?);
            }
            Ok(out)
        }
        CondNode::Macro(name, body) => analyze(body).map_err(|mut b| {
            b.via.insert(0, (name.to_string(), c.span));
            b
        }),
        CondNode::And(items) => {
            let blocker = items.iter().find_map(|i| analyze(i).err());
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

/// Builds the plan from the terms of each kernel rule (`(rule index, terms)`).
pub fn build_plan(rules: &[(u32, Terms)]) -> KernelPlan {
    let mut names: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    let mut paths: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    let mut methods: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for (idx, terms) in rules {
        for (family, v) in terms {
            let map = match family {
                KernelFamily::ExecName => &mut names,
                KernelFamily::ExecPath => &mut paths,
                KernelFamily::PayloadMethod => &mut methods,
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
    KernelPlan {
        exec_names: entries(names),
        exec_paths: entries(paths),
        payload_methods: entries(methods),
    }
}
