//! The per-kind rule index that keeps evaluation cheap with thousands of rules. For each rule
//! the index extracts a *necessary condition* from its expression: a set of exact values of a
//! string or integer field, or a set of substrings of a string field (any of them must be
//! present for the rule to possibly match). Exact values go into hash maps; substrings of one
//! field go into one Aho-Corasick automaton. Rules without such a condition are always
//! candidates. Evaluating an event: look its values up, collect the candidate rules, sort them
//! by rule index, and run each candidate's full condition.

use std::collections::HashMap;

use aho_corasick::AhoCorasick;

use crate::event::{Event, Val};
use crate::ir::{Cond, CondNode, Matcher};
use crate::schema::FieldId;

/// A necessary condition: one of these must hold.
#[derive(Debug, Clone)]
enum Need {
    /// The string field equals one of these.
    Str(FieldId, Vec<Box<str>>),
    /// The integer field equals one of these.
    Int(FieldId, Vec<i64>),
    /// The string field contains one of these.
    Sub(FieldId, Vec<Box<str>>),
}

impl Need {
    /// Cost used to pick the best conjunct: exact beats substring; fewer values beat more.
    fn cost(&self) -> usize {
        match self {
            Need::Str(_, v) => v.len(),
            Need::Int(_, v) => v.len(),
            Need::Sub(_, v) => 1000 + v.len(),
        }
    }
}

fn cost(needs: &[Need]) -> usize {
    needs.iter().map(Need::cost).sum()
}

/// Alternatives (any must hold), or `None` when nothing useful is known.
fn need(c: &Cond) -> Option<Vec<Need>> {
    match &c.node {
        CondNode::Macro(_, body) => need(body),
        CondNode::Or(items) => {
            let mut out = Vec::new();
            for i in items {
                out.extend(need(i)?);
            }
            Some(out)
        }
        CondNode::And(items) => items.iter().filter_map(need).min_by_key(|n| cost(n)),
        CondNode::Const(false) => Some(Vec::new()),
        CondNode::Const(true) | CondNode::Not(_) => None,
        CondNode::Test(t) if t.negate => None,
        CondNode::Test(t) => {
            let f = t.field;
            let sub = |v: &[Box<str>]| {
                (!v.iter().any(|s| s.is_empty())).then(|| vec![Need::Sub(f, v.to_vec())])
            };
            match &*t.matcher {
                Matcher::StrEq(s) => Some(vec![Need::Str(f, vec![s.clone()])]),
                Matcher::StrIn(set) => Some(vec![Need::Str(f, set.iter().cloned().collect())]),
                Matcher::Int(crate::ast::CmpOp::Eq, v) => Some(vec![Need::Int(f, vec![*v])]),
                Matcher::IntIn(set) => Some(vec![Need::Int(f, set.iter().copied().collect())]),
                Matcher::Domain(set) => sub(&set.iter().cloned().collect::<Vec<_>>()),
                Matcher::Contains(finder) => {
                    let s = String::from_utf8_lossy(finder.needle())
                        .into_owned()
                        .into_boxed_str();
                    sub(&[s])
                }
                Matcher::ContainsAny(_, pats) | Matcher::StartsWithAny(_, pats) => sub(pats),
                Matcher::StartsWith(s) | Matcher::EndsWith(s) => sub(std::slice::from_ref(s)),
                Matcher::EndsWithAny(pats) => sub(pats),
                Matcher::Regex(r) => regex_literals(r.as_str()).and_then(|l| sub(&l)),
                _ => None,
            }
        }
    }
}

/// Literals one of which every match of the regex contains (its prefix literals), when the
/// regex-syntax extractor finds a finite set of non-empty ones.
fn regex_literals(pattern: &str) -> Option<Vec<Box<str>>> {
    use regex_syntax::hir::literal::Extractor;
    let hir = regex_syntax::parse(pattern).ok()?;
    let seq = Extractor::new().extract(&hir);
    let lits = seq.literals()?;
    if lits.is_empty() || lits.len() > 64 {
        return None;
    }
    lits.iter()
        .map(|l| {
            std::str::from_utf8(l.as_bytes())
                .ok()
                .filter(|s| !s.is_empty())
                .map(Box::from)
        })
        .collect()
}

/// Substring index of one field.
#[derive(Debug)]
struct SubIndex {
    field: FieldId,
    automaton: AhoCorasick,
    rules: Vec<Vec<u32>>,
}

/// Rules by exact string value of one field.
type StrIndex = (FieldId, HashMap<Box<str>, Vec<u32>>);
/// Rules by exact integer value of one field.
type IntIndex = (FieldId, HashMap<i64, Vec<u32>>);
/// Substrings (with their rule) of one field, before building the automaton.
type SubPatterns = (FieldId, Vec<(Box<str>, u32)>);

/// The index of one event kind's rules.
#[derive(Debug, Default)]
pub struct Bucket {
    /// Every enabled rule of the kind, ascending.
    pub all: Vec<u32>,
    always: Vec<u32>,
    strs: Vec<StrIndex>,
    ints: Vec<IntIndex>,
    subs: Vec<SubIndex>,
}

fn slot<K, V: Default>(v: &mut Vec<(K, V)>, k: K) -> &mut V
where
    K: PartialEq + Copy,
{
    let i = match v.iter().position(|(x, _)| *x == k) {
        Some(i) => i,
        None => {
            v.push((k, V::default()));
            v.len() - 1
        }
    };
    &mut v[i].1
}

impl Bucket {
    /// Indexes `rules` (rule index, condition), given in ascending index order.
    pub fn build(rules: &[(u32, &Cond)]) -> Bucket {
        let mut b = Bucket::default();
        let mut subs: Vec<SubPatterns> = Vec::new();
        for &(idx, cond) in rules {
            b.all.push(idx);
            let Some(needs) = need(cond) else {
                b.always.push(idx);
                continue;
            };
            for n in needs {
                match n {
                    Need::Str(f, vals) => {
                        let m = slot(&mut b.strs, f);
                        for v in vals {
                            m.entry(v).or_default().push(idx);
                        }
                    }
                    Need::Int(f, vals) => {
                        let m = slot(&mut b.ints, f);
                        for v in vals {
                            m.entry(v).or_default().push(idx);
                        }
                    }
                    Need::Sub(f, vals) => {
                        slot(&mut subs, f).extend(vals.into_iter().map(|v| (v, idx)))
                    }
                }
            }
        }
        for (field, pats) in subs {
            let mut ids: HashMap<&str, usize> = HashMap::new();
            let mut uniq: Vec<&str> = Vec::new();
            let mut rules: Vec<Vec<u32>> = Vec::new();
            for (p, idx) in &pats {
                let i = *ids.entry(p).or_insert_with(|| {
                    uniq.push(p);
                    rules.push(Vec::new());
                    uniq.len() - 1
                });
                rules[i].push(*idx);
            }
            match AhoCorasick::new(&uniq) {
                Ok(automaton) => b.subs.push(SubIndex {
                    field,
                    automaton,
                    rules,
                }),
                // Too large for an automaton: fall back to evaluating these rules always.
                Err(_) => b.always.extend(pats.iter().map(|(_, i)| *i)),
            }
        }
        b.always.sort_unstable();
        b.always.dedup();
        b
    }

    /// Rule indices that may match `ev`, ascending, without duplicates.
    pub fn candidates(&self, ev: &Event, out: &mut Vec<u32>) {
        out.extend_from_slice(&self.always);
        for (f, map) in &self.strs {
            each_str(ev.get(*f), &mut |s| {
                if let Some(r) = map.get(s) {
                    out.extend_from_slice(r);
                }
            });
        }
        for (f, map) in &self.ints {
            each_int(ev.get(*f), &mut |v| {
                if let Some(r) = map.get(&v) {
                    out.extend_from_slice(r);
                }
            });
        }
        for s in &self.subs {
            each_str(ev.get(s.field), &mut |text| {
                for m in s.automaton.find_overlapping_iter(text) {
                    if let Some(r) = s.rules.get(m.pattern().as_usize()) {
                        out.extend_from_slice(r);
                    }
                }
            });
        }
        out.sort_unstable();
        out.dedup();
    }
}

fn each_str<'a>(v: Option<&'a Val>, f: &mut dyn FnMut(&'a str)) {
    match v {
        Some(Val::Str(s)) => f(s),
        Some(Val::List(items)) => items.iter().for_each(|i| each_str(Some(i), f)),
        _ => {}
    }
}

fn each_int(v: Option<&Val>, f: &mut dyn FnMut(i64)) {
    match v {
        Some(Val::Int(x)) => f(*x),
        Some(Val::List(items)) => items.iter().for_each(|i| each_int(Some(i), f)),
        _ => {}
    }
}
