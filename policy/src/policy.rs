//! The compiled policy: rule table, conditions bucketed by event kind, the kernel plan, and
//! evaluation.
//!
//! Evaluation order (stable, documented): a policy's rules are numbered in load order (files
//! sorted by file name, then rules in file order); that number is the `rule_index` used by the
//! kernel plan. `eval` takes the event's kind bucket, collects candidate rules from the index,
//! evaluates each candidate's condition (`&&` / `||` left to right, short-circuit), and returns
//! every match in ascending `rule_index`. Disabled rules never match. An `is_public` field
//! derived from the event's address honours the policy's `network.extra_public_ranges`.
//!
//! Allocation: [`CompiledPolicy::eval_with`] allocates nothing once its [`Scratch`] and output
//! vector have grown (rule ids are shared `Arc<str>`); [`CompiledPolicy::eval`] and
//! [`CompiledPolicy::eval_into`] use a per-thread [`Scratch`].

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::Arc;

use ipnet::IpNet;
use serde::Serialize;

use crate::event::{Event, EventError, Val};
use crate::index::{Bucket, Scratch};
use crate::ir::{Cond, CondNode};
use crate::model::{Actions, Mode, RuleInfo};
use crate::net;
use crate::plan::KernelPlan;
use crate::schema::{self, FieldId, Kind};
use crate::source::SourceMap;

/// A matching rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Match {
    /// Index into [`CompiledPolicy::rules`].
    pub rule_index: u32,
    /// The rule's id (shared with the policy: cloning a match does not copy it).
    #[serde(serialize_with = "ser_id")]
    pub rule_id: Arc<str>,
    /// Its actions.
    pub actions: Actions,
    /// Its mode override.
    pub mode: Option<Mode>,
}

/// A checked, compiled policy, ready to evaluate and lower.
#[derive(Debug)]
pub struct CompiledPolicy {
    pub(crate) rules: Vec<RuleInfo>,
    /// `rules[i].id`, shared by the matches.
    pub(crate) ids: Vec<Arc<str>>,
    pub(crate) conds: Vec<Cond>,
    pub(crate) buckets: Vec<Bucket>,
    pub(crate) plan: KernelPlan,
    /// `network.extra_public_ranges`: canonical, sorted, deduplicated.
    pub(crate) extra_public: Vec<IpNet>,
    pub(crate) sources: Arc<SourceMap>,
    pub(crate) files: Vec<String>,
    /// `network.dns_server_ports` plus 53: sorted, deduplicated, at most [`MAX_DNS_PORTS`].
    pub(crate) dns_ports: Vec<u16>,
    /// Per rule: whether it needs the file hash to be computed (it reads `exec.file.hash.*`
    /// and is not a test on hash lists that are all empty).
    pub(crate) hash_needed: Vec<bool>,
    /// By field id: whether an enabled rule tests the field ([`CompiledPolicy::decode_event`]
    /// reads only those).
    pub(crate) read_fields: Vec<bool>,
    /// By kind ([`Kind::index`]): the ids of the fields read for an event of that kind (its
    /// own and the common ones), for [`CompiledPolicy::typed_event`].
    read_by_kind: Vec<Vec<FieldId>>,
}

/// Most DNS server ports a policy may name (53 included): the kernel compares each.
pub const MAX_DNS_PORTS: usize = 8;

impl CompiledPolicy {
    pub(crate) fn new(
        rules: Vec<RuleInfo>,
        conds: Vec<Cond>,
        plan: KernelPlan,
        extra_public: Vec<IpNet>,
        sources: Arc<SourceMap>,
        files: Vec<String>,
    ) -> CompiledPolicy {
        let mut buckets = Vec::with_capacity(Kind::ALL.len());
        for kind in Kind::ALL {
            let members: Vec<(u32, &Cond)> = rules
                .iter()
                .zip(&conds)
                .enumerate()
                .filter(|(_, (r, _))| r.event_kind == kind && !r.disabled)
                .filter_map(|(i, (_, c))| u32::try_from(i).ok().map(|i| (i, c)))
                .collect();
            buckets.push(Bucket::build(&members));
        }
        let ids = rules.iter().map(|r| Arc::from(r.id.as_str())).collect();
        let read_fields = crate::fields_used::fields_read(
            rules
                .iter()
                .zip(&conds)
                .filter(|(r, _)| !r.disabled)
                .map(|(_, c)| c),
        );
        let read_by_kind = Kind::ALL
            .iter()
            .map(|kind| {
                let of_kind = |(i, def): (usize, &schema::FieldDef)| {
                    let wanted = read_fields.get(i).copied().unwrap_or(false)
                        && def.kind.is_none_or(|k| k == *kind);
                    wanted.then(|| FieldId::try_from(i).ok()).flatten()
                };
                schema::FIELDS
                    .iter()
                    .enumerate()
                    .filter_map(of_kind)
                    .collect()
            })
            .collect();
        CompiledPolicy {
            rules,
            ids,
            conds,
            buckets,
            plan,
            extra_public,
            sources,
            files,
            dns_ports: vec![53],
            hash_needed: Vec::new(),
            read_fields,
            read_by_kind,
        }
    }

    /// Ports DNS servers answer from (53 and `network.dns_server_ports`): the kernel copies
    /// the responses that come from them.
    pub fn dns_server_ports(&self) -> &[u16] {
        &self.dns_ports
    }

    /// Every rule; the position is the `rule_index` of [`Match`] and of the kernel plan.
    pub fn rules(&self) -> &[RuleInfo] {
        &self.rules
    }

    /// The kernel plan, borrowed (see [`CompiledPolicy::lower`]).
    pub fn plan(&self) -> &KernelPlan {
        &self.plan
    }

    /// The kernel plan: what the kernel maps must hold.
    pub fn lower(&self) -> KernelPlan {
        self.plan.clone()
    }

    /// The policy's `network.extra_public_ranges` (union over its files; canonical networks,
    /// sorted, without duplicates): addresses inside them are public for
    /// `connect.addr.is_public` and `payload.addr.is_public`, in evaluation and in the plan.
    pub fn extra_public_ranges(&self) -> &[IpNet] {
        &self.extra_public
    }

    /// The event as this policy sees it: an `is_public` field the event derived from its
    /// address (rather than carried) is recomputed with the extra public ranges.
    fn view<'e>(&self, event: &'e Event) -> Cow<'e, Event> {
        match event.derived_public() {
            Some((id, ip))
                if !self.extra_public.is_empty()
                    && event.get(id) != Some(&Val::Bool(true))
                    && net::is_public_with(ip, &self.extra_public) =>
            {
                Cow::Owned(event.with_value(id, Val::Bool(true)))
            }
            _ => Cow::Borrowed(event),
        }
    }

    /// The policy files that were loaded, in merge order.
    pub fn files(&self) -> &[String] {
        &self.files
    }

    /// The sources (for rendering positions of rules).
    pub fn sources(&self) -> &SourceMap {
        &self.sources
    }

    /// The `kernel.op` values the enabled `kernel` rules can match: `None` when some rule can
    /// match any operation (the kernel then reports them all), else the union of the values
    /// each rule requires (see [`crate::lower::required_values`]).
    pub fn kernel_ops_needed(&self) -> Option<std::collections::BTreeSet<String>> {
        let field = crate::schema::lookup("kernel.op")?;
        let mut out = std::collections::BTreeSet::new();
        for (rule, cond) in self.rules.iter().zip(&self.conds) {
            if rule.disabled || rule.event_kind != crate::schema::Kind::Kernel {
                continue;
            }
            out.extend(crate::lower::required_values(cond, field)?);
        }
        Some(out)
    }

    /// For each rule (by index), whether its condition reads a field whose name starts with
    /// `prefix` (e.g. `"exec.file.hash."`): the daemon evaluates those rules again once a
    /// value it computes after the fact (a file hash) is known.
    pub fn rules_reading(&self, prefix: &str) -> Vec<bool> {
        self.conds
            .iter()
            .map(|c| crate::fields_used::reads(c, prefix))
            .collect()
    }

    /// For each rule (by index), whether the daemon must hash executed files for it: it
    /// reads `exec.file.hash.*` and can match (a rule on empty hash lists never does, so the
    /// default policy with an empty `miner_sha256` hashes nothing).
    pub fn hash_needed(&self) -> Vec<bool> {
        let reading = self.rules_reading("exec.file.hash.");
        reading
            .iter()
            .enumerate()
            .map(|(i, r)| *r && self.hash_needed.get(i).copied().unwrap_or(true))
            .collect()
    }

    /// Decodes `value` (an event's JSON, see [`Event::from_json`]) for this policy: only the
    /// fields its enabled rules test are read, so [`CompiledPolicy::eval`] gives the same
    /// matches as on the whole event at a fraction of the decoding.
    pub fn decode_event(&self, value: &serde_json::Value) -> Result<Event, EventError> {
        Event::from_json_reading(value, &self.read_fields)
    }

    /// Builds the event of a typed source for this policy, reading only the fields its enabled
    /// rules test, as [`CompiledPolicy::decode_event`] does from JSON (see
    /// [`Event::from_typed`]; `None`: decode the JSON instead).
    pub fn typed_event(
        &self,
        kind: Kind,
        get: impl FnMut(&'static str) -> crate::event::Given,
    ) -> Option<Event> {
        let read = self
            .read_by_kind
            .get(kind.index())
            .map_or(&[][..], Vec::as_slice);
        Event::from_typed(kind, read, get)
    }

    /// Rule indices of the rules of `kind` (enabled ones), ascending.
    pub fn rules_of_kind(&self, kind: Kind) -> &[u32] {
        self.buckets.get(kind.index()).map_or(&[], |b| &b.all)
    }

    /// Every rule matching `event`, in ascending rule index.
    pub fn eval(&self, event: &Event) -> Vec<Match> {
        let mut out = Vec::new();
        self.eval_into(event, &mut out);
        out
    }

    /// Like [`CompiledPolicy::eval`], appending the matches to `out` (reuse it across events
    /// to avoid allocating). Uses a per-thread [`Scratch`].
    pub fn eval_into(&self, event: &Event, out: &mut Vec<Match>) {
        with_scratch(|s| self.eval_with(event, s, out));
    }

    /// Like [`CompiledPolicy::eval_into`] with an explicit [`Scratch`].
    pub fn eval_with(&self, event: &Event, scratch: &mut Scratch, out: &mut Vec<Match>) {
        let Some(bucket) = self.buckets.get(event.kind().index()) else {
            return;
        };
        let event = &*self.view(event);
        bucket.each_candidate(event, scratch, |idx| {
            if let Some(m) = self.check(idx, event) {
                out.push(m);
            }
        });
    }

    /// The match of rule `idx` on `event`, if its condition holds.
    fn check(&self, idx: u32, event: &Event) -> Option<Match> {
        let i = idx as usize;
        let (rule, cond, id) = (self.rules.get(i)?, self.conds.get(i)?, self.ids.get(i)?);
        eval_cond(cond, event).then(|| Match {
            rule_index: idx,
            rule_id: Arc::clone(id),
            actions: rule.actions,
            mode: rule.mode,
        })
    }

    /// Reference evaluation without the index: every enabled rule of the event's kind is
    /// evaluated. Gives the same result as [`CompiledPolicy::eval`] (property-tested); for
    /// tests and debugging.
    pub fn eval_exhaustive(&self, event: &Event) -> Vec<Match> {
        let event = &*self.view(event);
        self.rules_of_kind(event.kind())
            .iter()
            .filter_map(|&idx| self.check(idx, event))
            .collect()
    }

    /// Counts matching rules without building [`Match`] values (benchmarks, hot paths).
    pub fn count_matches(&self, event: &Event) -> usize {
        let Some(bucket) = self.buckets.get(event.kind().index()) else {
            return 0;
        };
        let event = &*self.view(event);
        let mut n = 0;
        with_scratch(|s| {
            bucket.each_candidate(event, s, |i| {
                n += usize::from(
                    self.conds
                        .get(i as usize)
                        .is_some_and(|c| eval_cond(c, event)),
                );
            });
        });
        n
    }
}

/// Largest joined-text buffer a thread keeps between evaluations.
const KEEP_SCRATCH_BYTES: usize = 1 << 16;

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Runs `f` with this thread's scratch (a fresh one if it is in use or gone).
fn with_scratch(mut f: impl FnMut(&mut Scratch)) {
    let used = SCRATCH.try_with(|cell| match cell.try_borrow_mut() {
        Ok(mut s) => {
            f(&mut s);
            if s.capacity() > KEEP_SCRATCH_BYTES {
                *s = Scratch::default();
            }
            true
        }
        Err(_) => false,
    });
    if used != Ok(true) {
        f(&mut Scratch::default());
    }
}

fn ser_id<S: serde::Serializer>(id: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(id)
}

/// Evaluates a condition on an event.
pub fn eval_cond(c: &Cond, ev: &Event) -> bool {
    match &c.node {
        CondNode::Const(b) => *b,
        CondNode::And(items) => items.iter().all(|i| eval_cond(i, ev)),
        CondNode::Or(items) => items.iter().any(|i| eval_cond(i, ev)),
        CondNode::Not(inner) => !eval_cond(inner, ev),
        CondNode::Macro(_, body) => eval_cond(body, ev),
        CondNode::Test(t) => t.eval(ev.get(t.field)),
    }
}
