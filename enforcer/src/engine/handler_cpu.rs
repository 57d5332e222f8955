//! The CPU side of the record handler: it remembers the miner indicators that other events
//! match (for their process tree and cgroup), and turns each hot sample of a CPU round into a
//! `cpu` event that goes through the same path as a kernel record's event (userspace rules,
//! alerts, kills with their rails, the audit log). See `crate::cpu`.

use enforcer_common::event::EventHeader;
use enforcer_policy::RuleInfo;
use serde_json::Value;

use super::Handler;
use crate::{
    audit::writer::{WriteError, timestamp},
    cpu::{
        Hot, INDICATOR_CAPACITY, INDICATOR_TTL, Scope,
        event::{cpu_event, process_tree},
        indicators::{Indicators, is_miner_indicator},
    },
    engine::sink::Sink,
};

/// The handler's empty indicator store.
pub(super) fn new_indicators() -> Indicators {
    let ttl = u64::try_from(INDICATOR_TTL.as_nanos()).unwrap_or(u64::MAX);
    Indicators::new(INDICATOR_CAPACITY, ttl)
}

/// A header for a `cpu` event of `pid` at `now_ns`: no kernel outcome, so only the
/// userspace rules act on it. A kill is pinned to a process that started no later than
/// `now_ns`, and reaches `cgroup_id` with `kill_scope: cgroup`.
fn cpu_header(pid: u32, now_ns: u64, process: &Value, cgroup_id: u64) -> EventHeader {
    let num = |key: &str| {
        process[key]
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(0)
    };
    EventHeader {
        kind: 0,
        size: 0,
        timestamp_ns: now_ns,
        pid,
        tgid: pid,
        ppid: num("ppid"),
        uid: num("uid"),
        gid: num("gid"),
        outcome: 0,
        cgroup_id,
        rule_index: u32::MAX,
        generation: 0,
        hook: 0,
        _pad: 0,
    }
}

impl Handler<'_> {
    fn tick_ns(&self) -> u64 {
        self.enricher.cache().config().tick_ns
    }

    /// Remembers a match of a miner-indicator rule for the event's process tree and cgroup.
    pub(super) fn note_indicator(&mut self, rule: &RuleInfo, header: &EventHeader, event: &Value) {
        if !is_miner_indicator(rule) {
            return;
        }
        let process = &event["process"];
        let Some((me, ancestors)) = process_tree(process, self.tick_ns()) else {
            return;
        };
        let cgroup = process["cgroup"]["path"].as_str();
        self.indicators
            .record(header.timestamp_ns, me, &ancestors, cgroup, &rule.id);
    }

    /// Evaluates one `cpu` event per hot sample of a round made at `now_ns` (CLOCK_BOOTTIME).
    pub(crate) fn cpu_round(
        &mut self,
        hot: &[Hot],
        now_ns: u64,
        sink: &mut Sink,
    ) -> Result<(), WriteError> {
        self.indicators.expire(now_ns);
        let tick = self.tick_ns();
        let ts = timestamp(self.clock.wall(now_ns));
        for h in hot {
            let process = self.enricher.process_json_for(h.pid, h.start_ns);
            let (indicators, cgroup_id) = match &h.scope {
                Scope::Process => (
                    process_tree(&process, tick)
                        .map(|(me, up)| self.indicators.for_process(now_ns, me, &up))
                        .unwrap_or_default(),
                    process["cgroup"]["id"].as_u64().unwrap_or(0),
                ),
                Scope::Cgroup { id, path } => (self.indicators.for_cgroup(now_ns, path), *id),
            };
            let header = cpu_header(h.pid, now_ns, &process, cgroup_id);
            let event = cpu_event(h, &ts, process, &indicators);
            self.report(&header, event, true, sink)?;
        }
        Ok(())
    }
}
