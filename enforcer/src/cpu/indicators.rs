//! Miner indicators remembered per process tree and per cgroup, for the correlation of CPU
//! samples (`cpu.indicators`, `cpu.correlated`).
//!
//! An *indicator* is the id of a rule tagged `T1496` or `cryptomining` (any case) that is not
//! itself a `cpu` rule, matched by an event of some process P: a pool lookup, a stratum
//! payload, a miner's arguments, an MSR or huge-page write ([`is_miner_indicator`]). It is
//! remembered for P itself (*direct*), for every ancestor of P (*below*: seen on a
//! descendant) and for P's cgroup path. A CPU sample of process Q is correlated with:
//! - the direct and below indicators of Q (Q did it, or a child Q started did it: a miner that
//!   runs a helper to resolve its pool);
//! - the direct indicators of Q's ancestors (a launcher that resolved the pool, then started
//!   the worker).
//!
//! Not the below indicators of Q's ancestors: they would make siblings and cousins (every
//! process under the same shell or under init) correlated. A CPU sample of a cgroup is
//! correlated with the indicators seen in that cgroup.
//!
//! Identity is `(pid, start time in clock ticks)`, as in the process cache, so a reused pid
//! never inherits an indicator. Bounded: indicators expire after `ttl`; each map holds at most
//! `capacity` entries (the least recently updated go first, a batch of `capacity / 64` at a
//! time) and each entry at most [`MAX_PER_ENTRY`] rule ids (the oldest is replaced).

use std::collections::HashMap;
use std::hash::Hash;

use enforcer_policy::{Kind, RuleInfo};

/// Most rule ids kept per process or cgroup.
pub const MAX_PER_ENTRY: usize = 16;

/// Whether a match of `rule` is a miner indicator: tagged `T1496` or `cryptomining` and not a
/// `cpu` rule.
pub fn is_miner_indicator(rule: &RuleInfo) -> bool {
    rule.event_kind != Kind::Cpu
        && rule
            .tags
            .iter()
            .any(|t| t.eq_ignore_ascii_case("T1496") || t.eq_ignore_ascii_case("cryptomining"))
}

/// A process incarnation: pid and start time in clock ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProcId {
    /// Process id.
    pub pid: u32,
    /// Start time in clock ticks (`start_ns / tick_ns`).
    pub start_tick: u64,
}

impl ProcId {
    /// The incarnation of `pid` that started at `start_ns`, with `tick_ns` per clock tick.
    pub fn new(pid: u32, start_ns: u64, tick_ns: u64) -> Self {
        Self {
            pid,
            start_tick: start_ns / tick_ns.max(1),
        }
    }
}

/// The rule ids of one process or cgroup, each with when it was last seen.
#[derive(Debug, Default)]
struct Entry {
    rules: Vec<(String, u64)>,
    last_ns: u64,
}

impl Entry {
    fn add(&mut self, rule: &str, now_ns: u64) {
        self.last_ns = now_ns;
        if let Some(seen) = self.rules.iter_mut().find(|(r, _)| r == rule) {
            seen.1 = now_ns;
            return;
        }
        if self.rules.len() >= MAX_PER_ENTRY
            && let Some(oldest) = self
                .rules
                .iter()
                .enumerate()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(i, _)| i)
        {
            self.rules.swap_remove(oldest);
        }
        self.rules.push((rule.to_owned(), now_ns));
    }
}

/// One bounded map of entries.
#[derive(Debug)]
struct Table<K> {
    entries: HashMap<K, Entry>,
    capacity: usize,
}

impl<K: Hash + Eq + Clone> Table<K> {
    fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    fn add(&mut self, key: &K, rule: &str, now_ns: u64) {
        if !self.entries.contains_key(key) && self.entries.len() >= self.capacity {
            let mut order: Vec<(u64, K)> = self
                .entries
                .iter()
                .map(|(k, e)| (e.last_ns, k.clone()))
                .collect();
            let batch = (self.capacity / 64).clamp(1, order.len());
            if batch < order.len() {
                order.select_nth_unstable_by_key(batch - 1, |(at, _)| *at);
            }
            for (_, k) in order.into_iter().take(batch) {
                self.entries.remove(&k);
            }
        }
        self.entries
            .entry(key.clone())
            .or_default()
            .add(rule, now_ns);
    }

    fn collect(&self, key: &K, since_ns: u64, out: &mut Vec<String>) {
        if let Some(e) = self.entries.get(key) {
            out.extend(
                e.rules
                    .iter()
                    .filter(|(_, at)| *at >= since_ns)
                    .map(|(r, _)| r.clone()),
            );
        }
    }

    fn expire(&mut self, since_ns: u64) {
        self.entries.retain(|_, e| {
            e.rules.retain(|(_, at)| *at >= since_ns);
            !e.rules.is_empty()
        });
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Indicators by process tree and by cgroup (see the module documentation).
#[derive(Debug)]
pub struct Indicators {
    direct: Table<ProcId>,
    below: Table<ProcId>,
    cgroups: Table<String>,
    ttl_ns: u64,
}

impl Indicators {
    /// An empty store: at most `capacity` processes (and as many cgroups), indicators kept for
    /// `ttl_ns` nanoseconds.
    pub fn new(capacity: usize, ttl_ns: u64) -> Self {
        Self {
            direct: Table::new(capacity),
            below: Table::new(capacity),
            cgroups: Table::new(capacity),
            ttl_ns,
        }
    }

    /// Entries held (direct, below, cgroups).
    pub fn len(&self) -> (usize, usize, usize) {
        (self.direct.len(), self.below.len(), self.cgroups.len())
    }

    /// Remembers that `rule` matched an event of `process` (whose ancestors are `ancestors`,
    /// parent first) in `cgroup` at `now_ns`.
    pub fn record(
        &mut self,
        now_ns: u64,
        process: ProcId,
        ancestors: &[ProcId],
        cgroup: Option<&str>,
        rule: &str,
    ) {
        self.direct.add(&process, rule, now_ns);
        for a in ancestors {
            self.below.add(a, rule, now_ns);
        }
        if let Some(cg) = cgroup.filter(|c| !c.is_empty()) {
            self.cgroups.add(&cg.to_owned(), rule, now_ns);
        }
    }

    fn since(&self, now_ns: u64) -> u64 {
        now_ns.saturating_sub(self.ttl_ns)
    }

    /// The unexpired indicators correlated with a CPU sample of `process` (sorted, without
    /// duplicates).
    pub fn for_process(&self, now_ns: u64, process: ProcId, ancestors: &[ProcId]) -> Vec<String> {
        let since = self.since(now_ns);
        let mut out = Vec::new();
        self.direct.collect(&process, since, &mut out);
        self.below.collect(&process, since, &mut out);
        for a in ancestors {
            self.direct.collect(a, since, &mut out);
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The unexpired indicators seen in `cgroup` (sorted, without duplicates).
    pub fn for_cgroup(&self, now_ns: u64, cgroup: &str) -> Vec<String> {
        let mut out = Vec::new();
        self.cgroups
            .collect(&cgroup.to_owned(), self.since(now_ns), &mut out);
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Forgets the expired indicators.
    pub fn expire(&mut self, now_ns: u64) {
        let since = self.since(now_ns);
        self.direct.expire(since);
        self.below.expire(since);
        self.cgroups.expire(since);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const S: u64 = 1_000_000_000;

    fn p(pid: u32, start_tick: u64) -> ProcId {
        ProcId { pid, start_tick }
    }

    /// init(1) -> bash(10) -> launcher(20) -> miner(30) -> resolver(40); bash -> make(21).
    fn store() -> Indicators {
        Indicators::new(64, 600 * S)
    }

    #[test]
    fn the_process_its_descendants_and_its_ancestors_correlate_but_not_siblings() {
        let mut s = store();
        let (init, bash, launcher, miner, resolver, make) =
            (p(1, 0), p(10, 5), p(20, 6), p(30, 7), p(40, 8), p(21, 9));
        // The miner's helper resolves the pool.
        s.record(
            S,
            resolver,
            &[miner, launcher, bash, init],
            Some("/user.slice/s.scope"),
            "pool-lookup",
        );
        let at = 2 * S;
        assert_eq!(s.for_process(at, resolver, &[miner]), ["pool-lookup"]);
        assert_eq!(
            s.for_process(at, miner, &[launcher, bash, init]),
            ["pool-lookup"],
            "a child of the miner resolved"
        );
        assert!(
            s.for_process(at, make, &[bash, init]).is_empty(),
            "a sibling branch under the same shell is not correlated"
        );
        // The launcher itself connects to the pool: its later children correlate.
        s.record(at, launcher, &[bash, init], None, "stratum");
        let worker = p(50, 10);
        assert_eq!(
            s.for_process(at, worker, &[launcher, bash, init]),
            ["stratum"]
        );
        assert_eq!(
            s.for_process(at, miner, &[launcher, bash, init]),
            ["pool-lookup", "stratum"]
        );
        assert_eq!(s.for_cgroup(at, "/user.slice/s.scope"), ["pool-lookup"]);
        assert!(s.for_cgroup(at, "/other").is_empty());
    }

    #[test]
    fn a_reused_pid_does_not_inherit() {
        let mut s = store();
        s.record(S, p(30, 7), &[], None, "pool-lookup");
        assert!(s.for_process(S, p(30, 99), &[]).is_empty());
        assert!(s.for_process(S, p(31, 0), &[p(30, 99)]).is_empty());
    }

    #[test]
    fn indicators_expire() {
        let mut s = Indicators::new(64, 10 * S);
        s.record(S, p(30, 7), &[p(20, 1)], Some("/c"), "pool-lookup");
        assert_eq!(s.for_process(11 * S, p(30, 7), &[]).len(), 1);
        assert!(s.for_process(12 * S, p(30, 7), &[]).is_empty());
        assert!(s.for_cgroup(12 * S, "/c").is_empty());
        s.expire(12 * S);
        assert_eq!(s.len(), (0, 0, 0));
    }

    #[test]
    fn bounded_in_entries_and_rules_per_entry() {
        let mut s = Indicators::new(4, 600 * S);
        for pid in 0..100u32 {
            s.record(u64::from(pid), p(pid, 0), &[], None, "r");
        }
        assert!(s.len().0 <= 4);
        assert_eq!(s.for_process(100, p(99, 0), &[]), ["r"], "the newest stays");
        for i in 0..40u64 {
            s.record(1000 + i, p(7, 0), &[], None, &format!("rule-{i:02}"));
        }
        let got = s.for_process(2000, p(7, 0), &[]);
        assert_eq!(got.len(), MAX_PER_ENTRY);
        assert!(got.contains(&"rule-39".to_owned()) && !got.contains(&"rule-00".to_owned()));
    }

    #[test]
    fn which_rules_are_indicators() {
        let policy = enforcer_policy::load_str(
            "p.yaml",
            r#"rules:
  - id: tagged
    tags: [T1496]
    expression: dns.question.name == "pool.test"
    action: alert
  - id: lower-case-tag
    tags: [CryptoMining]
    expression: exec.file.name == "x"
    action: alert
  - id: untagged
    expression: exec.file.name == "y"
    action: alert
  - id: cpu-rule
    tags: [T1496]
    expression: cpu.usage.percent >= 90
    action: alert
"#,
        )
        .unwrap();
        let ids: Vec<&str> = policy
            .rules()
            .iter()
            .filter(|r| is_miner_indicator(r))
            .map(|r| r.id.as_str())
            .collect();
        assert_eq!(ids, ["tagged", "lower-case-tag"]);
    }
}
