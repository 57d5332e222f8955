//! The checked, compiled form of an expression: a tree of [`Cond`] nodes whose leaves are field
//! [`Test`]s with ready-to-run [`Matcher`]s (hash sets, Aho-Corasick automata, regex sets, glob
//! sets). Evaluation of one leaf against one event value lives here too.

use foldhash::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use aho_corasick::{AhoCorasick, Anchored, Input};
use globset::{GlobMatcher, GlobSet};
use memchr::memmem;
use regex::{Regex, RegexSet};

use crate::ast::CmpOp;
use crate::event::Val;
use crate::schema::FieldId;
use crate::source::Span;

/// A compiled condition with its source span.
#[derive(Debug, Clone)]
pub struct Cond {
    /// The node.
    pub node: CondNode,
    /// Where it came from (for a macro use: the use site).
    pub span: Span,
}

impl Cond {
    /// Whether some field test in the condition (macros included) satisfies `pred`.
    pub fn reads(&self, pred: &dyn Fn(FieldId) -> bool) -> bool {
        match &self.node {
            CondNode::Const(_) => false,
            CondNode::And(items) | CondNode::Or(items) => items.iter().any(|c| c.reads(pred)),
            CondNode::Not(inner) | CondNode::Macro(_, inner) => inner.reads(pred),
            CondNode::Test(t) => pred(t.field),
        }
    }
}

/// Condition nodes.
#[derive(Debug, Clone)]
pub enum CondNode {
    /// A constant (`true` / `false` literals).
    Const(bool),
    /// All must hold (evaluated left to right, short-circuit).
    And(Vec<Cond>),
    /// Any must hold (evaluated left to right, short-circuit).
    Or(Vec<Cond>),
    /// Negation.
    Not(Box<Cond>),
    /// A macro's body, inlined (kept for diagnostics).
    Macro(Arc<str>, Box<Cond>),
    /// A field test.
    Test(Test),
}

/// One field test: `field <matcher>`, optionally negated.
#[derive(Debug, Clone)]
pub struct Test {
    /// The field.
    pub field: FieldId,
    /// The operator as written (for reports).
    pub op: CmpOp,
    /// `!=`, `not in`, `!~`: the negation of the positive matcher (still false when absent).
    pub negate: bool,
    /// The compiled matcher.
    pub matcher: Arc<Matcher>,
}

/// A compiled value matcher.
#[derive(Debug)]
pub enum Matcher {
    /// Bool equality.
    Bool(bool),
    /// String equality.
    StrEq(Box<str>),
    /// String membership in a hash set (foldhash: the keys come from the policy).
    StrIn(HashSet<Box<str>>),
    /// Domain membership: the name or any parent domain is in the set.
    Domain(HashSet<Box<str>>),
    /// Long option membership: the value starts with `--` and its bytes up to its first `=`
    /// are in the set (`long_option` lists, abbreviations spelled out).
    OptionIn(HashSet<Box<str>>),
    /// Substring.
    Contains(memmem::Finder<'static>),
    /// Any of several substrings (automaton, patterns).
    ContainsAny(AhoCorasick, Vec<Box<str>>),
    /// Prefix.
    StartsWith(Box<str>),
    /// Any of several prefixes (anchored automaton, patterns).
    StartsWithAny(AhoCorasick, Vec<Box<str>>),
    /// Suffix.
    EndsWith(Box<str>),
    /// Any of several suffixes.
    EndsWithAny(Vec<Box<str>>),
    /// Regular expression search.
    Regex(Regex),
    /// Any of several regular expressions.
    RegexSet(RegexSet),
    /// Glob on the whole value.
    Glob(GlobMatcher),
    /// Any of several globs (with their patterns, for the file watch plan).
    GlobSet(GlobSet, Vec<Box<str>>),
    /// Integer comparison.
    Int(CmpOp, i64),
    /// Integer membership.
    IntIn(HashSet<i64>),
    /// Duration comparison (nanoseconds).
    Dur(CmpOp, u64),
    /// Address equality.
    IpEq(IpAddr),
    /// Address inside any of the networks.
    IpIn(crate::ipset::IpSet),
    /// Any of the inner matchers (mixed lists).
    Any(Vec<Matcher>),
}

fn cmp<T: Ord>(op: CmpOp, a: T, b: T) -> bool {
    match op {
        CmpOp::Eq => a == b,
        CmpOp::Ne => a != b,
        CmpOp::Lt => a < b,
        CmpOp::Le => a <= b,
        CmpOp::Gt => a > b,
        CmpOp::Ge => a >= b,
        _ => false,
    }
}

impl Matcher {
    /// Whether one string matches (false for the matchers of other types).
    pub fn matches_str(&self, x: &str) -> bool {
        match self {
            Matcher::StrEq(s) => **s == *x,
            Matcher::StrIn(set) => set.contains(x),
            Matcher::Domain(set) => domain_in(set, x),
            Matcher::OptionIn(set) => {
                x.starts_with("--") && set.contains(x.split('=').next().unwrap_or(x))
            }
            Matcher::Contains(f) => f.find(x.as_bytes()).is_some(),
            Matcher::ContainsAny(ac, _) => ac.is_match(x),
            Matcher::StartsWith(p) => x.starts_with(&**p),
            Matcher::StartsWithAny(ac, _) => ac.is_match(Input::new(x).anchored(Anchored::Yes)),
            Matcher::EndsWith(p) => x.ends_with(&**p),
            Matcher::EndsWithAny(ps) => ps.iter().any(|p| x.ends_with(&**p)),
            Matcher::Regex(r) => r.is_match(x),
            Matcher::RegexSet(r) => r.is_match(x),
            Matcher::Glob(g) => g.is_match(x),
            Matcher::GlobSet(g, _) => g.is_match(x),
            Matcher::Any(ms) => ms.iter().any(|m| m.matches_str(x)),
            _ => false,
        }
    }

    /// Whether one scalar value matches.
    pub fn matches(&self, v: &Val) -> bool {
        match (self, v) {
            (Matcher::Bool(b), Val::Bool(x)) => b == x,
            (Matcher::Any(ms), v) => ms.iter().any(|m| m.matches(v)),
            (_, Val::Str(x)) => self.matches_str(x),
            (Matcher::Int(op, b), Val::Int(x)) => cmp(*op, *x, *b),
            (Matcher::IntIn(set), Val::Int(x)) => set.contains(x),
            (Matcher::Dur(op, b), Val::Dur(x)) => cmp(*op, *x, *b),
            (Matcher::IpEq(a), Val::Ip(x)) => a == x,
            (Matcher::IpIn(set), Val::Ip(x)) => set.contains(x),
            (_, Val::List(items)) => items.iter().any(|i| self.matches(i)),
            _ => false,
        }
    }
}

/// `name` equals an entry or is a sub-domain of one.
fn domain_in(set: &HashSet<Box<str>>, name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    let mut rest = name;
    loop {
        if set.contains(rest) {
            return true;
        }
        match rest.find('.') {
            Some(i) => rest = &rest[i + 1..],
            None => return false,
        }
    }
}

impl Test {
    /// Evaluates the test on a field value (`None`: absent, always false).
    pub fn eval(&self, v: Option<&Val>) -> bool {
        match v {
            None => false,
            Some(v) => self.matcher.matches(v) != self.negate,
        }
    }
}
