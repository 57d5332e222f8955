//! Argument rules the kernel can act on before the program runs (fixture F2: a renamed miner
//! given a pool URL; F11: one given a miner's flag).
//!
//! A blocking exec rule qualifies when its condition is, through macros, a conjunction of
//! exactly one *argument test* and any number of *exceptions*:
//!
//! - the argument test is either a disjunction of `exec.args contains "scheme://"` tests (a
//!   string or a list), each value a URL scheme of 1 to [`MAX_SCHEME_LEN`] printable ASCII
//!   bytes followed by `://`; or a disjunction of `exec.args startswith "--flag"` tests, each
//!   value `--` and 1 to [`MAX_FLAG_LEN`] - 2 printable ASCII bytes, no `=`, or of
//!   `exec.args in <long_option list>` tests (every name, abbreviations spelled out, such a
//!   flag: the kernel's test is then the rule's own);
//! - an exception is a negation (`!E`, `exec.file.name != "v"`, `exec.file.name not in list`)
//!   whose inner condition `E` can only hold for executables whose basename is in a set this
//!   module computes ([`names_over`]): `exec.file.name == / in` tests, unions of them (`||`),
//!   and conjunctions holding one of them (`&&`, the rest of the conjunction is ignored, which
//!   only widens the set).
//!
//! The kernel (`sched_process_exec`, every tier) kills an exec whose arguments after `argv[0]`
//! contain a listed `scheme://`, or hold an argument whose bytes up to its first `=` (or its
//! end) are a listed flag, and whose basename is in no rule's set
//! ([`KernelPlan::exec_args_spared`] is the union). Such an argument starts with the flag, the
//! sets over-approximate the exceptions, so every exec the kernel kills is one the rule
//! matches; the kernel never stops what the rule would spare. The rule stays a userspace rule
//! for what the kernel leaves (spared basenames, arguments past its copy, `--flagX`).
//!
//! [`KernelPlan::exec_args_spared`]: crate::plan::KernelPlan::exec_args_spared

use std::collections::{BTreeMap, BTreeSet};

use crate::ir::{Cond, CondNode, Matcher};
use crate::plan::{MAX_FLAG_LEN, MAX_NAME_LEN, MAX_SCHEME_LEN, PlanEntry};
use crate::schema::{self, FieldId};

/// What an argument rule contributes to the kernel plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgsRule {
    /// URL schemes (without `://`) whose `scheme://` in an argument makes the rule hold.
    pub schemes: Vec<String>,
    /// Long flags an argument starting with makes the rule hold.
    pub flags: Vec<String>,
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
    let mut test = None;
    let mut spared = BTreeSet::new();
    for part in parts {
        if let Some(found) = argument_test(part, args) {
            if test.replace(found).is_some() {
                // Two argument tests must both hold; the kernel checks one.
                return None;
            }
            continue;
        }
        spared.extend(exception(part, name)?);
    }
    let (schemes, flags) = match test? {
        ArgumentTest::Schemes(schemes) => (schemes, Vec::new()),
        ArgumentTest::Flags(flags) => (Vec::new(), flags),
    };
    if schemes.is_empty() && flags.is_empty() {
        return None;
    }
    Some(ArgsRule {
        schemes,
        flags,
        spared,
    })
}

/// What an argument test asks the kernel to find.
enum ArgumentTest {
    /// A `scheme://` in an argument.
    Schemes(Vec<String>),
    /// An argument starting with a long flag.
    Flags(Vec<String>),
}

/// The argument test `c` is, if any (see the module documentation).
fn argument_test(c: &Cond, args: FieldId) -> Option<ArgumentTest> {
    if let Some(schemes) = scheme_test(c, args) {
        return Some(ArgumentTest::Schemes(schemes));
    }
    flag_test(c, args).map(ArgumentTest::Flags)
}

/// The plan entries of the argument rules `(index, rule)`: one per scheme, and one per flag,
/// each with its rules; and the union of their spared basenames.
pub fn entries(rules: &[(u32, ArgsRule)]) -> (Vec<PlanEntry>, Vec<PlanEntry>, Vec<String>) {
    let mut spared = BTreeSet::new();
    for (_, rule) in rules {
        spared.extend(rule.spared.iter().cloned());
    }
    let schemes = values_entries(rules, |rule| &rule.schemes);
    let flags = values_entries(rules, |rule| &rule.flags);
    (schemes, flags, spared.into_iter().collect())
}

/// One plan entry per value `values` gives a rule, with the rules giving it (sorted).
fn values_entries(
    rules: &[(u32, ArgsRule)],
    values: impl Fn(&ArgsRule) -> &Vec<String>,
) -> Vec<PlanEntry> {
    let mut by_value: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    for (idx, rule) in rules {
        for value in values(rule) {
            by_value.entry(value).or_default().push(*idx);
        }
    }
    by_value
        .into_iter()
        .map(|(value, mut rules)| {
            rules.sort_unstable();
            rules.dedup();
            PlanEntry {
                value: value.to_string(),
                rules,
            }
        })
        .collect()
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
    disjunction_values(c, args, &|matcher| match matcher {
        Matcher::Contains(finder) => Some(vec![
            String::from_utf8(finder.needle().to_vec())
                .ok()
                .and_then(|v| scheme_of(&v))?,
        ]),
        Matcher::ContainsAny(_, patterns) => patterns.iter().map(|p| scheme_of(p)).collect(),
        _ => None,
    })
}

/// The flags of a disjunction of positive `exec.args startswith "--flag"` tests; `None` when
/// `c` is anything else or a value is not a flag the kernel can find.
fn flag_test(c: &Cond, args: FieldId) -> Option<Vec<String>> {
    disjunction_values(c, args, &|matcher| match matcher {
        Matcher::StartsWith(prefix) => Some(vec![flag_of(prefix)?]),
        Matcher::StartsWithAny(_, prefixes) => prefixes.iter().map(|p| flag_of(p)).collect(),
        // `exec.args in <long_option list>`: the kernel's own test, exactly.
        Matcher::OptionIn(names) => {
            let mut flags: Vec<String> = names.iter().map(|n| flag_of(n)).collect::<Option<_>>()?;
            flags.sort_unstable();
            Some(flags)
        }
        _ => None,
    })
}

/// The values `values` takes from each positive test on `args` of the disjunction `c`
/// (through macros); `None` when `c` holds anything else or `values` refuses a test.
fn disjunction_values(
    c: &Cond,
    args: FieldId,
    values: &dyn Fn(&Matcher) -> Option<Vec<String>>,
) -> Option<Vec<String>> {
    match &c.node {
        CondNode::Or(items) => {
            let mut out = Vec::new();
            for i in items {
                out.extend(disjunction_values(i, args, values)?);
            }
            Some(out)
        }
        CondNode::Macro(_, inner) => disjunction_values(inner, args, values),
        CondNode::Test(t) if t.field == args && !t.negate => values(&t.matcher),
        _ => None,
    }
}

/// `value` when it is a long flag the kernel can find: `--` and 1 to [`MAX_FLAG_LEN`] - 2
/// printable ASCII bytes, no `=` (the kernel's key ends at the first `=`).
fn flag_of(value: &str) -> Option<String> {
    let ok = value.len() > 2
        && value.len() <= MAX_FLAG_LEN
        && value.starts_with("--")
        && value.bytes().all(|b| b.is_ascii_graphic() && b != b'=');
    ok.then(|| value.to_string())
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
