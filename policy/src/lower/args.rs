//! Argument rules the kernel can act on before the program runs (fixture F2: a renamed miner
//! given a pool URL).
//!
//! A blocking exec rule qualifies when its condition is, through macros, a conjunction of
//! exactly one *scheme test* and any number of *exceptions*:
//!
//! - the scheme test is a disjunction of `exec.args contains "scheme://"` tests (a string or a
//!   list), each value a URL scheme of 1 to [`MAX_SCHEME_LEN`] printable ASCII bytes followed by
//!   `://`;
//! - an exception is a negation (`!E`, `exec.file.name != "v"`, `exec.file.name not in list`)
//!   whose inner condition `E` can only hold for executables whose basename is in a set this
//!   module computes ([`names_over`]): `exec.file.name == / in` tests, unions of them (`||`),
//!   and conjunctions holding one of them (`&&`, the rest of the conjunction is ignored, which
//!   only widens the set).
//!
//! The kernel (`sched_process_exec`, every tier) kills an exec whose arguments after `argv[0]`
//! contain a listed `scheme://` and whose basename is in no rule's set ([`KernelPlan::exec_args_spared`]
//! is the union). The sets over-approximate the exceptions, so every exec the kernel kills is
//! one the rule matches; the kernel never stops what the rule would spare. The rule stays a
//! userspace rule for what the kernel leaves (spared basenames, arguments past its copy).
//!
//! [`KernelPlan::exec_args_spared`]: crate::plan::KernelPlan::exec_args_spared

use std::collections::{BTreeMap, BTreeSet};

use crate::ir::{Cond, CondNode, Matcher};
use crate::plan::{MAX_NAME_LEN, MAX_SCHEME_LEN, PlanEntry};
use crate::schema::{self, FieldId};

/// What an argument rule contributes to the kernel plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgsRule {
    /// URL schemes (without `://`) whose `scheme://` in an argument makes the rule hold.
    pub schemes: Vec<String>,
    /// Basenames the rule's exceptions may hold for: the kernel leaves their execs to
    /// userspace.
    pub spared: BTreeSet<String>,
}

/// The kernel's part of rule `c`, or `None` when `c` does not have the shape above.
pub fn analyze(c: &Cond) -> Option<ArgsRule> {
    let args = schema::lookup("exec.args")?;
    let name = schema::lookup("exec.file.name")?;
    let mut parts = Vec::new();
    conjuncts(c, &mut parts);
    let mut schemes = None;
    let mut spared = BTreeSet::new();
    for part in parts {
        if let Some(found) = scheme_test(part, args) {
            if schemes.replace(found).is_some() {
                // Two scheme tests must both hold; the kernel checks one.
                return None;
            }
            continue;
        }
        spared.extend(exception(part, name)?);
    }
    let schemes = schemes.filter(|s| !s.is_empty())?;
    Some(ArgsRule { schemes, spared })
}

/// The plan entries of the argument rules `(index, rule)`: one per scheme, its rules; and the
/// union of their spared basenames.
pub fn entries(rules: &[(u32, ArgsRule)]) -> (Vec<PlanEntry>, Vec<String>) {
    let mut schemes: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    let mut spared = BTreeSet::new();
    for (idx, rule) in rules {
        for s in &rule.schemes {
            let e = schemes.entry(s).or_default();
            if e.last() != Some(idx) {
                e.push(*idx);
            }
        }
        spared.extend(rule.spared.iter().cloned());
    }
    let entries = schemes
        .into_iter()
        .map(|(value, mut rules)| {
            rules.sort_unstable();
            rules.dedup();
            PlanEntry {
                value: value.to_string(),
                rules,
            }
        })
        .collect();
    (entries, spared.into_iter().collect())
}

/// The terms of the conjunction `c` (flattening `&&` and macros).
fn conjuncts<'c>(c: &'c Cond, out: &mut Vec<&'c Cond>) {
    match &c.node {
        CondNode::And(items) => items.iter().for_each(|i| conjuncts(i, out)),
        CondNode::Macro(_, inner) => conjuncts(inner, out),
        _ => out.push(c),
    }
}

/// The schemes of a disjunction of positive `exec.args contains "scheme://"` tests; `None`
/// when `c` is anything else or a value is not a scheme the kernel can find.
fn scheme_test(c: &Cond, args: FieldId) -> Option<Vec<String>> {
    match &c.node {
        CondNode::Or(items) => {
            let mut out = Vec::new();
            for i in items {
                out.extend(scheme_test(i, args)?);
            }
            Some(out)
        }
        CondNode::Macro(_, inner) => scheme_test(inner, args),
        CondNode::Test(t) if t.field == args && !t.negate => {
            let values: Vec<String> = match &*t.matcher {
                Matcher::Contains(finder) => {
                    vec![String::from_utf8(finder.needle().to_vec()).ok()?]
                }
                Matcher::ContainsAny(_, patterns) => {
                    patterns.iter().map(|p| p.to_string()).collect()
                }
                _ => return None,
            };
            values.iter().map(|v| scheme_of(v)).collect()
        }
        _ => None,
    }
}

/// The scheme of `value` when it is `scheme://` with a scheme the kernel can find.
fn scheme_of(value: &str) -> Option<String> {
    let scheme = value.strip_suffix("://")?;
    let ok = !scheme.is_empty()
        && scheme.len() <= MAX_SCHEME_LEN
        && scheme.bytes().all(|b| b.is_ascii_graphic());
    ok.then(|| scheme.to_string())
}

/// For an exception `c = !E` (a term of the conjunction besides the scheme test): the
/// basenames `E` may hold for, i.e. where the exception may spare the exec. `None` when `c` is
/// not a negation or that set cannot be computed.
fn exception(c: &Cond, name: FieldId) -> Option<BTreeSet<String>> {
    match &c.node {
        CondNode::Not(inner) => names_over(inner, name),
        CondNode::Macro(_, inner) => exception(inner, name),
        // `exec.file.name != "v"` / `not in [...]` is `!(exec.file.name == / in ...)`.
        CondNode::Test(t) if t.field == name && t.negate => name_values(&t.matcher),
        _ => None,
    }
}

/// A set of basenames outside which `c` cannot hold (an over-approximation), or `None`.
fn names_over(c: &Cond, name: FieldId) -> Option<BTreeSet<String>> {
    match &c.node {
        CondNode::Test(t) if t.field == name && !t.negate => name_values(&t.matcher),
        CondNode::Or(items) => {
            let mut out = BTreeSet::new();
            for i in items {
                out.extend(names_over(i, name)?);
            }
            Some(out)
        }
        // Holds only where every item holds: any item's set bounds it; take the smallest.
        CondNode::And(items) => items
            .iter()
            .filter_map(|i| names_over(i, name))
            .min_by_key(BTreeSet::len),
        CondNode::Macro(_, inner) => names_over(inner, name),
        CondNode::Const(false) => Some(BTreeSet::new()),
        _ => None,
    }
}

/// The values of an `exec.file.name == / in` matcher, when the kernel's basename key can hold
/// each of them exactly (no `/`, no NUL, at most [`MAX_NAME_LEN`] bytes, and no U+FFFD: the
/// daemon's name replaces invalid UTF-8 with it, so a basename that is not valid UTF-8 could
/// equal such a value in userspace and not in the kernel).
fn name_values(m: &Matcher) -> Option<BTreeSet<String>> {
    let values: Vec<&str> = match m {
        Matcher::StrEq(v) => vec![v],
        Matcher::StrIn(set) => set.iter().map(|s| &**s).collect(),
        _ => return None,
    };
    let fits = |v: &&str| {
        !v.is_empty()
            && v.len() <= MAX_NAME_LEN
            && !v.contains(['/', '\0', char::REPLACEMENT_CHARACTER])
    };
    values
        .iter()
        .all(fits)
        .then(|| values.into_iter().map(str::to_string).collect())
}

#[cfg(test)]
#[path = "args_tests.rs"]
mod tests;
