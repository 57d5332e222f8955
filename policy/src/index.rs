//! The per-kind rule index that keeps evaluation cheap with thousands of rules. For each rule
//! the index extracts a *necessary condition* from its expression: a set of exact values of a
//! string or integer field, or a set of substrings of a string field (any of them must be
//! present for the rule to possibly match). Exact values go into hash maps; substrings of one
//! field go into one Aho-Corasick automaton. Rules without such a condition are always
//! candidates. Evaluating an event: look its values up, collect the indexed hits, sort them
//! by rule index, merge them with the always-candidates, and run each candidate's full
//! condition.
//!
//! Cost notes: the value maps use foldhash (the keys come from the policy, so an event cannot
//! lengthen a probe sequence); each substring index is a concrete DFA (or a contiguous NFA for
//! large pattern sets) driven without dynamic dispatch; the items of a list field are scanned
//! in one pass, joined by the byte `0xFF`, which never occurs in UTF-8 and so in no pattern,
//! so no match can span two items. Buffers live in a reusable [`Scratch`].

use aho_corasick::automaton::{Automaton, OverlappingState};
use aho_corasick::{Input, dfa, nfa};
use foldhash::HashMap;

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
                Matcher::Domain(set) | Matcher::OptionIn(set) => {
                    sub(&set.iter().cloned().collect::<Vec<_>>())
                }
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

/// Total pattern bytes up to which a substring index is a DFA (a few MiB at most); larger
/// sets use a contiguous NFA.
const DFA_MAX_PATTERN_BYTES: usize = 16 * 1024;

/// Separator of list items in a joined scan: not UTF-8, so in no pattern.
const ITEM_SEP: u8 = 0xFF;

/// A substring automaton, kept as a concrete type so the scan loop is monomorphic.
#[derive(Debug)]
enum Substrings {
    Dfa(dfa::DFA),
    Nfa(nfa::contiguous::NFA),
}

impl Substrings {
    fn build(patterns: &[&str]) -> Option<Substrings> {
        let bytes: usize = patterns.iter().map(|p| p.len()).sum();
        if bytes <= DFA_MAX_PATTERN_BYTES
            && let Ok(d) = dfa::DFA::new(patterns)
        {
            return Some(Substrings::Dfa(d));
        }
        nfa::contiguous::NFA::new(patterns)
            .ok()
            .map(Substrings::Nfa)
    }

    /// Calls `f` with the id of every (overlapping) pattern occurrence in `hay`; `false` if
    /// the search failed (the caller then treats every pattern as found).
    fn scan(&self, hay: &[u8], f: &mut dyn FnMut(usize)) -> bool {
        match self {
            Substrings::Dfa(a) => scan(a, hay, f),
            Substrings::Nfa(a) => scan(a, hay, f),
        }
    }
}

fn scan<A: Automaton>(a: &A, hay: &[u8], f: &mut dyn FnMut(usize)) -> bool {
    let input = Input::new(hay);
    let mut state = OverlappingState::start();
    loop {
        if a.try_find_overlapping(&input, &mut state).is_err() {
            return false;
        }
        match state.get_match() {
            Some(m) => f(m.pattern().as_usize()),
            None => return true,
        }
    }
}

/// Substring index of one field.
#[derive(Debug)]
struct SubIndex {
    field: FieldId,
    automaton: Substrings,
    rules: Vec<Vec<u32>>,
}

impl SubIndex {
    /// Pushes the rules of every pattern found in the value `v` (a string or a list).
    fn hits(&self, v: Option<&Val>, text: &mut Vec<u8>, out: &mut Vec<u32>) {
        let hay: &[u8] = match v {
            Some(Val::Str(s)) => s.as_bytes(),
            Some(Val::List(items)) => {
                text.clear();
                join_strs(items, text);
                text
            }
            _ => return,
        };
        let rules = &self.rules;
        let ok = self.automaton.scan(hay, &mut |p| {
            if let Some(r) = rules.get(p) {
                out.extend_from_slice(r);
            }
        });
        if !ok {
            rules.iter().for_each(|r| out.extend_from_slice(r));
        }
    }
}

fn join_strs(items: &[Val], text: &mut Vec<u8>) {
    for i in items {
        match i {
            Val::Str(s) => {
                text.extend_from_slice(s.as_bytes());
                text.push(ITEM_SEP);
            }
            Val::List(inner) => join_strs(inner, text),
            _ => {}
        }
    }
}

/// Reusable buffers of one evaluation (candidate hits, joined list text). Keep one per thread
/// and pass it to [`crate::CompiledPolicy::eval_with`] to evaluate without allocating.
#[derive(Debug, Default)]
pub struct Scratch {
    hits: Vec<u32>,
    text: Vec<u8>,
}

impl Scratch {
    /// Bytes held by the buffers.
    pub fn capacity(&self) -> usize {
        self.hits.capacity() * 4 + self.text.capacity()
    }
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
            let mut ids: HashMap<&str, usize> = HashMap::default();
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
            match Substrings::build(&uniq) {
                Some(automaton) => b.subs.push(SubIndex {
                    field,
                    automaton,
                    rules,
                }),
                // Too large for an automaton: fall back to evaluating these rules always.
                None => b.always.extend(pats.iter().map(|(_, i)| *i)),
            }
        }
        b.always.sort_unstable();
        b.always.dedup();
        b
    }

    /// Rule indices that may match `ev`, ascending, without duplicates.
    pub fn candidates(&self, ev: &Event, out: &mut Vec<u32>) {
        let mut scratch = Scratch::default();
        self.indexed(ev, &mut scratch);
        merge(&self.always, &scratch.hits, |i| out.push(i));
    }

    /// Every candidate of `ev` in ascending order, without duplicates: the indexed hits (left
    /// in `scratch.hits`) merged with the always-candidates.
    pub(crate) fn each_candidate(&self, ev: &Event, scratch: &mut Scratch, f: impl FnMut(u32)) {
        self.indexed(ev, scratch);
        merge(&self.always, &scratch.hits, f);
    }

    /// The indexed hits of `ev` into `scratch.hits`, sorted, without duplicates.
    fn indexed(&self, ev: &Event, scratch: &mut Scratch) {
        let out = &mut scratch.hits;
        out.clear();
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
            s.hits(ev.get(s.field), &mut scratch.text, out);
        }
        if out.len() > 1 {
            out.sort_unstable();
            out.dedup();
        }
    }
}

/// Calls `f` on the union of two ascending, duplicate-free lists, ascending.
fn merge(a: &[u32], b: &[u32], mut f: impl FnMut(u32)) {
    if b.is_empty() {
        return a.iter().for_each(|&i| f(i));
    }
    let (mut i, mut j) = (0, 0);
    while let (Some(&x), Some(&y)) = (a.get(i), b.get(j)) {
        if x <= y {
            f(x);
            i += 1;
            j += usize::from(x == y);
        } else {
            f(y);
            j += 1;
        }
    }
    a.get(i..).unwrap_or(&[]).iter().for_each(|&x| f(x));
    b.get(j..).unwrap_or(&[]).iter().for_each(|&y| f(y));
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
