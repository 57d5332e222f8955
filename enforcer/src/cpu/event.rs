//! The JSON of a `cpu` event, in the shape the policy evaluator reads (`cpu.*` in
//! `policy/src/schema/fields.rs`), and the process tree an event's `process` object names:
//!
//! ```text
//! { "kind": "cpu", "ts": "...",
//!   "process": { ...enriched like every event (pid, start_ns, file, ancestors, cgroup)... },
//!   "cpu": {
//!     "scope": "process" | "cgroup",                 // cpu.scope
//!     "cgroup": { "id": 7, "path": "/x.scope" },     // cgroup scope only; cpu.cgroup
//!     "usage": { "percent": 97, "last_percent": 99 }, // cpu.usage.percent: mean over the window
//!     "window": 61000000000,                          // cpu.window, nanoseconds at or above the floor
//!     "indicators": ["pool-domain-lookup"],           // cpu.indicators
//!     "correlated": true                              // cpu.correlated
//!   } }
//! ```

use serde_json::{Value, json};

use super::{
    indicators::ProcId,
    sampler::{Hot, Scope},
};

/// The event JSON of a hot sample for `process` (its enriched `process` object), with the
/// miner `indicators` correlated with it.
pub fn cpu_event(hot: &Hot, ts: &str, process: Value, indicators: &[String]) -> Value {
    let mut cpu = json!({
        "scope": match hot.scope {
            Scope::Process => "process",
            Scope::Cgroup { .. } => "cgroup",
        },
        "usage": {
            "percent": hot.usage.percent,
            "last_percent": hot.usage.last_percent,
        },
        "window": hot.usage.window_ns,
        "indicators": indicators,
        "correlated": !indicators.is_empty(),
    });
    if let Scope::Cgroup { id, path } = &hot.scope {
        cpu["cgroup"] = json!({ "id": id, "path": path });
    }
    json!({ "kind": "cpu", "ts": ts, "process": process, "cpu": cpu })
}

/// The incarnation named by an object with `pid` and `start_ns`.
fn proc_id(v: &Value, tick_ns: u64) -> Option<ProcId> {
    let pid = u32::try_from(v.get("pid")?.as_u64()?).ok()?;
    Some(ProcId::new(pid, v.get("start_ns")?.as_u64()?, tick_ns))
}

/// The process an event's `process` object names and its ancestors (parent first, those with
/// a known start time); `None` when the process's own start time is unknown (it is then not
/// identified safely under PID reuse).
pub fn process_tree(process: &Value, tick_ns: u64) -> Option<(ProcId, Vec<ProcId>)> {
    let me = proc_id(process, tick_ns)?;
    let ancestors = process
        .get("ancestors")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|p| proc_id(p, tick_ns)).collect())
        .unwrap_or_default();
    Some((me, ancestors))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use enforcer_policy::Event;

    use super::*;
    use crate::cpu::tracker::Sustained;

    fn hot(scope: Scope) -> Hot {
        Hot {
            scope,
            pid: 42,
            start_ns: 7_000_000_000,
            usage: Sustained {
                percent: 95,
                last_percent: 99,
                window_ns: 61_000_000_000,
            },
        }
    }

    #[test]
    fn the_event_evaluates_with_the_cpu_fields() {
        let policy = enforcer_policy::load_str(
            "p.yaml",
            r#"rules:
  - id: sustained
    expression: cpu.usage.percent >= 90 && cpu.window >= 60s && cpu.scope == "process"
    action: alert
  - id: correlated
    expression: cpu.correlated && cpu.indicators contains "pool-lookup"
    action: kill
  - id: cgroup
    expression: cpu.scope == "cgroup" && cpu.cgroup == "/x.scope" && process.pid == 42
    action: alert
  - id: longer
    expression: cpu.window >= 2m
    action: alert
"#,
        )
        .unwrap();
        let process = json!({ "pid": 42, "start_ns": 7_000_000_000u64, "comm": "spin" });
        let matched = |ev: &Value| -> Vec<String> {
            policy
                .eval(&Event::from_json(ev).unwrap())
                .iter()
                .map(|m| m.rule_id.to_string())
                .collect()
        };
        let ev = cpu_event(&hot(Scope::Process), "t", process.clone(), &[]);
        assert_eq!(ev["cpu"]["correlated"], false);
        assert_eq!(matched(&ev), ["sustained"]);
        let ev = cpu_event(
            &hot(Scope::Process),
            "t",
            process.clone(),
            &["pool-lookup".to_owned()],
        );
        assert_eq!(matched(&ev), ["sustained", "correlated"]);
        let scope = Scope::Cgroup {
            id: 9,
            path: "/x.scope".into(),
        };
        let ev = cpu_event(&hot(scope), "t", process, &[]);
        assert_eq!(matched(&ev), ["cgroup"]);
        assert_eq!(ev["cpu"]["cgroup"]["id"], 9);
    }

    #[test]
    fn the_process_tree_needs_start_times() {
        let tick = 10_000_000;
        let process = json!({
            "pid": 30, "start_ns": 70_000_000u64,
            "ancestors": [
                { "pid": 20, "start_ns": 60_000_000u64 },
                { "pid": 10 },
                { "pid": -1, "start_ns": 1 },
                { "pid": 1, "start_ns": 0 }
            ]
        });
        let (me, up) = process_tree(&process, tick).unwrap();
        assert_eq!(me, ProcId::new(30, 70_000_000, tick));
        assert_eq!(
            up,
            [ProcId::new(20, 60_000_000, tick), ProcId::new(1, 0, tick)]
        );
        assert!(process_tree(&json!({ "pid": 30 }), tick).is_none());
        assert!(process_tree(&json!("nonsense"), tick).is_none());
    }
}
