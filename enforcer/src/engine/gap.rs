//! Restart after an unclean stop. Before loading, the engine reads the end of its audit log
//! (an `engine_start` without `engine_stop`: the previous run died) and lists the pinned runs
//! under `/sys/fs/bpf/enforcer/`; once its own programs are attached it removes the pins of
//! runs whose engine is gone (no moment without enforcement) and describes each previous run
//! in an `engine_gap` record. Pins of a running engine are left alone.

use std::path::Path;

use crate::{
    audit::{EngineGap, tail::Tail},
    loader::pins::{self, PinnedRun, RunId},
};

/// What the previous runs left: the end of the audit log and the pinned runs.
#[derive(Debug, Default)]
pub(crate) struct Previous {
    tail: Option<Tail>,
    runs: Vec<PinnedRun>,
}

/// Reads the audit log's end and the pinned runs under `pin_root` (errors are logged: they
/// cost the gap record, never the start).
pub(crate) fn survey(audit_log: Option<&Path>, pin_root: &Path) -> Previous {
    let tail = audit_log.and_then(log_tail);
    let runs = pins::runs(pin_root)
        .inspect_err(|e| tracing::warn!("cannot list {}: {e}", pin_root.display()))
        .unwrap_or_default();
    Previous { tail, runs }
}

/// The end of the audit log at `path`. When it holds no lifecycle record (it was rotated
/// during the last run, whose `engine_start` is in `PATH.1`), or is missing (a crash between
/// the rename and the new file), the newest rotated log supplies what it lacks.
fn log_tail(path: &Path) -> Option<Tail> {
    let read = |path: &Path| {
        crate::audit::tail::read(path)
            .inspect_err(|e| tracing::warn!("cannot read the end of {}: {e}", path.display()))
            .ok()
            .flatten()
    };
    let current = read(path);
    if current.as_ref().is_some_and(|t| t.lifecycle.is_some()) {
        return current;
    }
    let Some(older) = read(&crate::audit::writer::rotated_path(path, 1)) else {
        return current;
    };
    Some(match current {
        Some(tail) => Tail {
            last_ts: tail.last_ts.or(older.last_ts),
            lifecycle: older.lifecycle,
        },
        None => older,
    })
}

/// Whether the engine that wrote `start` (an `engine_start` record) still runs: its run id
/// names a live process, or (older records, pid only) its pid is an `enforcer`.
fn still_running(start: &serde_json::Value) -> bool {
    if let Some(run) = start["run_id"].as_str().and_then(RunId::parse) {
        return run.alive();
    }
    start["pid"]
        .as_u64()
        .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).ok())
        .is_some_and(|comm| comm.trim() == "enforcer")
}

/// Removes the pins of dead runs (call once this engine's programs are attached) and returns
/// one `engine_gap` record per previous run that did not stop cleanly; `this_start` is now.
pub(crate) fn take_over(previous: Previous, this_start: &str) -> Vec<EngineGap> {
    let mut unclean = previous
        .tail
        .as_ref()
        .and_then(|t| t.unclean_start().map(|start| (start, t.last_ts.clone())))
        .filter(|(start, _)| !still_running(start));
    let mut gaps = Vec::new();
    for run in previous.runs.iter().filter(|r| !r.alive) {
        let counters = run.counters();
        let removed = match run.remove() {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!("cannot remove the pins in {}: {e}", run.dir.display());
                run.links.len()
            }
        };
        tracing::warn!(
            "removed {removed} pinned link(s) of a previous engine run in {} (its programs enforced without a daemon until now)",
            run.dir.display()
        );
        let run_id = run
            .run
            .map_or_else(|| run.dir.display().to_string(), |id| id.to_string());
        let mut gap = EngineGap {
            previous_pid: run.run.map(|r| r.pid),
            this_start: this_start.to_owned(),
            enforcement: "pinned",
            pins_removed: removed,
            pinned_counters: counters,
            detected_by: vec!["pins"],
            ..EngineGap::default()
        };
        if let Some((start, last_ts)) = unclean.take_if(|(start, _)| start["run_id"] == run_id) {
            gap.previous_start = start["ts"].as_str().map(str::to_owned);
            gap.previous_last_record = last_ts;
            gap.detected_by.insert(0, "audit_log");
        }
        gap.previous_run_id = Some(run_id);
        gaps.push(gap);
    }
    if let Some((start, last_ts)) = unclean {
        gaps.push(EngineGap {
            previous_run_id: start["run_id"].as_str().map(str::to_owned),
            previous_pid: start["pid"].as_u64().and_then(|p| u32::try_from(p).ok()),
            previous_start: start["ts"].as_str().map(str::to_owned),
            previous_last_record: last_ts.clone(),
            this_start: this_start.to_owned(),
            enforcement: "none",
            unenforced_from: last_ts,
            detected_by: vec!["audit_log"],
            ..EngineGap::default()
        });
    }
    gaps
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tail(lines: &str) -> Tail {
        crate::audit::tail::read_from_str(lines)
    }

    #[test]
    fn a_log_rotated_during_the_last_run_takes_its_start_from_the_rotated_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        std::fs::write(
            crate::audit::writer::rotated_path(&path, 1),
            "{\"ts\":\"2026-01-01T00:00:00Z\",\"type\":\"engine_start\",\"pid\":7}\n{\"ts\":\"2026-01-01T00:00:01Z\",\"type\":\"event\"}\n",
        )
        .unwrap();
        std::fs::write(
            &path,
            "{\"ts\":\"2026-01-01T00:00:02Z\",\"type\":\"event\"}\n",
        )
        .unwrap();
        let tail = log_tail(&path).unwrap();
        assert_eq!(tail.unclean_start().unwrap()["pid"], 7);
        assert_eq!(tail.last_ts.as_deref(), Some("2026-01-01T00:00:02Z"));
        // A crash between the rename and the new file: the rotated log says it all.
        std::fs::remove_file(&path).unwrap();
        let tail = log_tail(&path).unwrap();
        assert_eq!(tail.last_ts.as_deref(), Some("2026-01-01T00:00:01Z"));
        assert!(tail.unclean_start().is_some());
    }

    #[test]
    fn an_unclean_log_without_pins_is_a_gap_without_enforcement() {
        let previous = Previous {
            tail: Some(tail(
                "{\"ts\":\"t1\",\"type\":\"engine_start\",\"pid\":4000000,\"run_id\":\"4000000-1-2\"}\n{\"ts\":\"t2\",\"type\":\"event\"}\n",
            )),
            runs: Vec::new(),
        };
        let gaps = take_over(previous, "t9");
        assert_eq!(gaps.len(), 1, "{gaps:?}");
        let gap = &gaps[0];
        assert_eq!(gap.enforcement, "none");
        assert_eq!(gap.previous_run_id.as_deref(), Some("4000000-1-2"));
        assert_eq!(gap.previous_pid, Some(4_000_000));
        assert_eq!(gap.previous_start.as_deref(), Some("t1"));
        assert_eq!(gap.unenforced_from.as_deref(), Some("t2"));
        assert_eq!(gap.this_start, "t9");
        assert_eq!(gap.detected_by, ["audit_log"]);
    }

    #[test]
    fn a_clean_log_or_a_running_engine_is_no_gap() {
        let clean = Previous {
            tail: Some(tail(
                "{\"ts\":\"t1\",\"type\":\"engine_start\",\"pid\":4000000}\n{\"ts\":\"t2\",\"type\":\"engine_stop\"}\n",
            )),
            runs: Vec::new(),
        };
        assert!(take_over(clean, "t9").is_empty());
        let me = RunId::current().unwrap();
        let running = Previous {
            tail: Some(tail(&format!(
                "{{\"ts\":\"t1\",\"type\":\"engine_start\",\"pid\":{},\"run_id\":\"{me}\"}}\n",
                me.pid
            ))),
            runs: Vec::new(),
        };
        assert!(take_over(running, "t9").is_empty());
    }
}
