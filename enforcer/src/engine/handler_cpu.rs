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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::{
        os::unix::process::ExitStatusExt as _,
        path::Path,
        process::{Child, Command},
    };

    use serde_json::json;

    use super::*;
    use crate::{
        actions::kill::boot_now_ns,
        audit::AuditReader,
        cpu::{proc_source, tracker::Sustained},
        engine::enforce::testing,
    };

    const POLICY: &str = r#"rules:
  - id: pool-lookup
    tags: [T1496]
    expression: dns.question.name == "pool.test"
    action: alert
  - id: cpu-alone
    expression: cpu.window >= 1s && !cpu.correlated
    action: alert
  - id: cpu-correlated
    expression: cpu.window >= 1s && cpu.indicators contains "pool-lookup"
    action: kill
"#;

    /// A hot sample of the child `c` (start time from the real /proc).
    fn hot(c: &Child) -> Hot {
        let pid = c.id();
        let start_ns = proc_source::read_all(Path::new("/proc"), 10_000_000, usize::MAX)
            .into_iter()
            .find(|s| s.pid == pid)
            .expect("the child in /proc")
            .start_ns;
        Hot {
            scope: Scope::Process,
            pid,
            start_ns,
            usage: Sustained {
                percent: 99,
                last_percent: 99,
                window_ns: 2_000_000_000,
            },
        }
    }

    #[test]
    fn a_correlated_sample_is_killed_and_a_lone_one_alerts() {
        let policy = std::rc::Rc::new(enforcer_policy::load_str("p.yaml", POLICY).unwrap());
        let dir = tempfile::tempdir().unwrap();
        let (mut handler, mut sink, log) = testing::handler(&policy, dir.path());
        let mut miner = Command::new("sleep").arg("30").spawn().unwrap();
        let mut job = Command::new("sleep").arg("30").spawn().unwrap();
        let (m, j) = (hot(&miner), hot(&job));
        // The miner's pool lookup, as the dns event of its process would give it.
        let lookup = json!({ "kind": "dns", "process": { "pid": m.pid, "start_ns": m.start_ns } });
        let header = cpu_header(m.pid, boot_now_ns(), &json!({}), 0);
        handler.note_indicator(&policy.rules()[0], &header, &lookup);
        // A rule that is not an indicator is not remembered.
        handler.note_indicator(&policy.rules()[1], &header, &lookup);
        handler
            .cpu_round(&[m.clone(), j.clone()], boot_now_ns(), &mut sink)
            .unwrap();
        sink.flush().unwrap();
        assert_eq!(miner.wait().unwrap().signal(), Some(libc::SIGKILL));
        let job_alive = job.try_wait().unwrap().is_none();
        let _ = job.kill();
        let _ = job.wait();
        assert!(job_alive, "the job without an indicator runs on");

        let (records, _) = AuditReader::read_path(&log).unwrap();
        let of = |r: &Value, pid: u32| r["event"]["process"]["pid"] == pid;
        let acts: Vec<(String, String, u32)> = records
            .iter()
            .filter(|r| r["type"] == "action")
            .map(|r| {
                let pid = if of(r, m.pid) { m.pid } else { j.pid };
                (
                    r["action"].as_str().unwrap().to_owned(),
                    r["rule"].as_str().unwrap().to_owned(),
                    pid,
                )
            })
            .collect();
        assert_eq!(
            acts,
            [
                ("kill".to_owned(), "cpu-correlated".to_owned(), m.pid),
                ("alert".to_owned(), "cpu-alone".to_owned(), j.pid),
            ],
            "{records:#?}"
        );
        let kill = &records.iter().find(|r| r["action"] == "kill").unwrap()["event"];
        assert_eq!(kill["kind"], "cpu");
        assert_eq!(kill["cpu"]["indicators"], json!(["pool-lookup"]));
        assert_eq!(kill["process"]["file"]["name"], "sleep");
        let events = records
            .iter()
            .filter(|r| r["type"] == "event" && r["event"]["kind"] == "cpu")
            .count();
        assert_eq!(events, 2);
    }
}
