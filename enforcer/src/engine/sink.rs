//! Where records go: the audit log (when configured) and a one-line summary on stdout; with
//! `enforcer run --events none`, without the `event` records; with `--events-log`, the
//! `event` records in a log of their own, so that their volume never rotates the actions out
//! of the audit log.

use std::{io::Write as _, path::Path};

use serde_json::Value;

use crate::audit::{
    AuditWriter, EventsLogFailing, EventsLogRestored, Record, Rotation, guarded::GuardedLog,
    writer::WriteError,
};

/// The engine's record sinks.
#[derive(Debug)]
pub struct Sink {
    audit: Option<GuardedLog>,
    /// The log of `event` records (`--events-log`); without it they go to `audit`.
    events_log: Option<GuardedLog>,
    /// Whether the audit log holds an `events_log_failing` record for the events log's
    /// current outage.
    events_log_failing: bool,
    print: bool,
    /// Whether `event` records (observed activity) are written; the others always are.
    events: bool,
}

impl Sink {
    /// Opens the audit log at `audit_log`, if any, never rotated.
    pub fn open(audit_log: Option<&Path>, print: bool) -> Result<Self, WriteError> {
        Self::open_rotating(audit_log, Rotation::NEVER, print)
    }

    /// Opens the audit log at `audit_log`, if any, rotated as `rotation` says. Only the open
    /// can fail: later write failures are absorbed ([`GuardedLog`]).
    pub fn open_rotating(
        audit_log: Option<&Path>,
        rotation: Rotation,
        print: bool,
    ) -> Result<Self, WriteError> {
        let writer = audit_log
            .map(|path| AuditWriter::open_rotating(path, rotation))
            .transpose()?;
        Ok(Self {
            audit: writer.map(GuardedLog::new),
            events_log: None,
            events_log_failing: false,
            print,
            events: true,
        })
    }

    /// The same sink, writing `event` records to their own log at `path` (rotated as
    /// `rotation` says) instead of the audit log.
    pub fn with_events_log(mut self, path: &Path, rotation: Rotation) -> Result<Self, WriteError> {
        let writer = AuditWriter::open_rotating(path, rotation)?;
        self.events_log = Some(GuardedLog::new(writer));
        Ok(self)
    }

    /// The same sink, leaving `event` records out: the audit log and stdout then hold what
    /// the engine did or would do (actions, enforcement and engine records) and no activity.
    pub fn without_events(mut self) -> Self {
        self.events = false;
        self
    }

    /// Whether `event` records are written (callers skip building them otherwise).
    pub fn records_events(&self) -> bool {
        self.events
    }

    /// Writes the audit log's gathered event records (after each ring-buffer drain); while
    /// the log fails, tries it again when due. Never fails (the `Result` is the callers').
    pub fn flush(&mut self) -> Result<(), WriteError> {
        for log in [&mut self.audit, &mut self.events_log]
            .into_iter()
            .flatten()
        {
            log.flush();
        }
        self.note_events_log()
    }

    /// Tells the audit log when the events log starts failing (`events_log_failing`) and when
    /// it can be written again (`events_log_restored`): the events log's own `audit_lost`
    /// record comes only once it recovers, and an outage that never ends would leave no trace.
    fn note_events_log(&mut self) -> Result<(), WriteError> {
        let Some(events) = &mut self.events_log else {
            return Ok(());
        };
        let ended = events.take_ended();
        if ended.is_some() {
            self.events_log_failing = false;
        }
        let failing = if self.events_log_failing {
            None
        } else {
            events.failing()
        };
        // Nothing to tell (every drain tick, almost always).
        if ended.is_none() && failing.is_none() {
            return Ok(());
        }
        let events_log = events.path().display().to_string();
        let mut records = Vec::new();
        if let Some(lost) = ended {
            records.push(Record::EventsLogRestored(EventsLogRestored {
                events_log: events_log.clone(),
                lost,
            }));
        }
        if let Some((since, error)) = failing {
            records.push(Record::EventsLogFailing(EventsLogFailing {
                events_log,
                since,
                error,
            }));
            self.events_log_failing = true;
        }
        for record in &records {
            self.write(record)?;
        }
        Ok(())
    }

    /// The files of the audit log and of the events log (the open ones first, then the
    /// rotated ones, as `st_dev`, `st_ino`) when they may have changed since the last call;
    /// `None` otherwise, or without a log.
    pub fn log_files_if_changed(&mut self) -> Option<Vec<(u64, u64)>> {
        // Both are asked (each remembers what it said).
        let mut changed = false;
        for log in [&mut self.audit, &mut self.events_log]
            .into_iter()
            .flatten()
        {
            changed |= log.files_changed();
        }
        if !changed {
            return None;
        }
        let files: Vec<Vec<(u64, u64)>> = [&self.audit, &self.events_log]
            .into_iter()
            .flatten()
            .map(GuardedLog::files)
            .collect();
        // The open files first: they are what a guard must not lose.
        let open = files.iter().filter_map(|f| f.first().copied());
        let rotated = files.iter().flat_map(|f| f.iter().skip(1).copied());
        Some(open.chain(rotated).collect())
    }

    /// Makes the events log's next check and retry due now.
    #[cfg(test)]
    fn make_events_log_due(&mut self) {
        if let Some(events) = &mut self.events_log {
            events.make_due();
        }
    }

    /// Writes `record` to the audit log and prints its summary. A log that cannot be written
    /// does not fail this (see [`GuardedLog`]); `Err` only when the record cannot be
    /// serialized.
    pub fn write(&mut self, record: &Record) -> Result<(), WriteError> {
        if !self.events && record.is_event() {
            return Ok(());
        }
        match &mut self.events_log {
            Some(events_log) if record.is_event() => {
                events_log.write(record)?;
                if events_log.is_failing() != self.events_log_failing {
                    self.note_events_log()?;
                }
            }
            _ => {
                if let Some(audit) = &mut self.audit {
                    audit.write(record)?;
                }
            }
        }
        if self.print {
            let line = summary(record);
            // A closed stdout (e.g. `| head`) must not stop enforcement.
            let _ = writeln!(std::io::stdout().lock(), "{line}");
        }
        Ok(())
    }
}

fn exec_summary(event: &Value) -> String {
    let p = &event["process"];
    let e = &event["exec"];
    format!(
        "pid={} ppid={} uid={} cgroup={} path={} argv0={} args={}",
        p["pid"], p["ppid"], p["uid"], p["cgroup"]["id"], e["file"]["path"], e["argv0"], e["args"]
    )
}

/// The one-line human summary of a record.
pub(crate) fn summary(record: &Record) -> String {
    match record {
        Record::EngineStart {
            tier,
            mode,
            kernel,
            rules,
            tier_reason,
            ..
        } => {
            format!(
                "engine_start tier={tier} mode={mode} kernel={kernel} rules={rules} ({tier_reason})"
            )
        }
        Record::EngineStop {
            reason,
            counters,
            decode_errors,
            polling_periods,
        } => {
            format!(
                "engine_stop reason={reason} counters={counters} decode_errors={decode_errors} polling_periods={polling_periods}"
            )
        }
        Record::PolicyReload(reload) => format!(
            "policy_reload trigger={} outcome={} generation={} rules={} added={:?} removed={:?}{}",
            reload.trigger,
            reload.outcome,
            reload.policy_generation,
            reload.rules,
            reload.added,
            reload.removed,
            reload
                .reason
                .as_deref()
                .map(|r| format!(" reason={r}"))
                .unwrap_or_default()
        ),
        Record::EngineStats {
            period_s,
            records_lost_since_last,
            counters,
            ..
        } => format!(
            "engine_stats period_s={period_s} records_lost_since_last={records_lost_since_last} exec_seen={} ringbuf_full={}",
            counters["exec_seen"], counters["ringbuf_full"]
        ),
        Record::TamperDenied { event } => {
            let p = &event["process"];
            format!(
                "tamper_denied guard={} hook={} pid={} uid={} comm={} exe={} tamper={}",
                event["tamper"]["guard"],
                event["hook"],
                p["pid"],
                p["uid"],
                p["comm"],
                p["exe"],
                event["tamper"]
            )
        }
        Record::AuditLost(lost) => format!(
            "audit_lost since={} until={} events_lost={} records_lost={} records_held={} error={}",
            lost.since,
            lost.until,
            lost.events_lost,
            lost.records_lost,
            lost.records_held,
            lost.error
        ),
        Record::EventsLogFailing(failing) => format!(
            "events_log_failing events_log={} since={} error={}",
            failing.events_log, failing.since, failing.error
        ),
        Record::EventsLogRestored(restored) => format!(
            "events_log_restored events_log={} since={} until={} events_lost={}",
            restored.events_log,
            restored.lost.since,
            restored.lost.until,
            restored.lost.events_lost
        ),
        Record::AuditReopened(reopened) => format!(
            "audit_reopened found={} noticed={}",
            reopened.found, reopened.noticed
        ),
        Record::EngineGap(gap) => format!(
            "engine_gap previous_run={} enforcement={} unenforced_from={} pins_removed={}",
            gap.previous_run_id.as_deref().unwrap_or("?"),
            gap.enforcement,
            gap.unenforced_from.as_deref().unwrap_or("-"),
            gap.pins_removed
        ),
        Record::Event { event } => format!(
            "{} {}",
            event["kind"].as_str().unwrap_or("?"),
            exec_summary(event)
        ),
        Record::LifecycleEvent { event } => event.summary(),
        Record::ExecEvent { event } => event.summary(),
        Record::Action {
            action,
            rule,
            event,
            report,
            ..
        } => {
            let action = serde_json::to_value(action).unwrap_or_default();
            let report = report.as_ref().map_or(String::new(), |r| {
                let outcome = serde_json::to_value(r.outcome).unwrap_or_default();
                format!(
                    " outcome={} response_us={}",
                    outcome.as_str().unwrap_or("?"),
                    r.response_us
                )
            });
            format!(
                "{} rule={rule} {}{report}",
                action.as_str().unwrap_or("?").to_uppercase(),
                exec_summary(event)
            )
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::enrich::Enricher;
    use crate::pipeline::{
        decode::{Decoded, test_exit_record, test_fork_record},
        process_event::{exit_event, fork_event},
    };

    /// An events log that cannot be written is said in the audit log when its outage starts
    /// (once, however long it lasts) and when it ends, with what it lost.
    #[test]
    fn the_audit_log_hears_when_the_events_log_fails_and_recovers() {
        use crate::audit::test_records::event;
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        std::fs::create_dir(&logs).unwrap();
        let (audit, events) = (dir.path().join("audit.jsonl"), logs.join("events.jsonl"));
        let mut sink = Sink::open(Some(&audit), false)
            .unwrap()
            .with_events_log(&events, Rotation::NEVER)
            .unwrap();
        sink.write(&event(0)).unwrap();
        sink.flush().unwrap();
        assert!(types_in(&audit).is_empty());
        // The events log's directory goes away: it cannot be opened again.
        std::fs::rename(&logs, dir.path().join("gone")).unwrap();
        sink.make_events_log_due();
        sink.flush().unwrap();
        for n in 1..=5 {
            sink.write(&event(n)).unwrap();
            sink.make_events_log_due();
            sink.flush().unwrap();
        }
        assert_eq!(types_in(&audit), ["events_log_failing"]);
        let failing: Value =
            serde_json::from_str(std::fs::read_to_string(&audit).unwrap().trim()).unwrap();
        assert_eq!(failing["events_log"], events.display().to_string());
        assert!(failing["error"].as_str().is_some_and(|e| !e.is_empty()));
        std::fs::create_dir(&logs).unwrap();
        sink.make_events_log_due();
        sink.flush().unwrap();
        assert_eq!(
            types_in(&audit),
            ["events_log_failing", "events_log_restored"]
        );
        let text = std::fs::read_to_string(&audit).unwrap();
        let restored: Value = serde_json::from_str(text.lines().nth(1).unwrap()).unwrap();
        assert_eq!(restored["events_lost"], 5, "{restored}");
        assert_eq!(restored["since"], failing["since"]);
        // The events log itself starts again with its own account of the outage.
        assert_eq!(types_in(&events)[0], "audit_lost");
    }

    fn types_in(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| {
                let r: Value = serde_json::from_str(l).unwrap();
                r["type"].as_str().unwrap().to_owned()
            })
            .collect()
    }

    /// With an events log, `event` records go there and nowhere else; the rest to the audit
    /// log. Each log rotates on its own, and the guards are given both logs' open files first.
    #[test]
    fn an_events_log_takes_the_event_records_and_rotates_on_its_own() {
        use crate::audit::test_records::{event, stop};
        let dir = tempfile::tempdir().unwrap();
        let (audit, events) = (
            dir.path().join("audit.jsonl"),
            dir.path().join("events.jsonl"),
        );
        let rotation = Rotation {
            max_bytes: 2_000,
            keep: 3,
        };
        let mut sink = Sink::open_rotating(Some(&audit), rotation, false)
            .unwrap()
            .with_events_log(&events, rotation)
            .unwrap();
        let first = sink.log_files_if_changed().unwrap();
        assert_eq!(first.len(), 2, "both open files");
        assert_eq!(sink.log_files_if_changed(), None);
        sink.write(&stop("start")).unwrap();
        for n in 0..200 {
            sink.write(&event(n)).unwrap();
            sink.flush().unwrap();
        }
        sink.write(&stop("end")).unwrap();
        assert_eq!(types_in(&audit), ["engine_stop", "engine_stop"]);
        assert!(!crate::audit::writer::rotated_path(&audit, 1).exists());
        assert!(types_in(&events).iter().all(|t| t == "event"));
        assert!(crate::audit::writer::rotated_path(&events, 3).exists());
        let files = sink.log_files_if_changed().unwrap();
        assert_eq!(
            files.len(),
            5,
            "two open files and the events log's three rotated ones"
        );
        let id = |path: &Path| {
            use std::os::unix::fs::MetadataExt as _;
            let meta = std::fs::metadata(path).unwrap();
            (meta.dev(), meta.ino())
        };
        assert_eq!(
            files[..2],
            [id(&audit), id(&events)],
            "the open files first"
        );
        assert_eq!(files[0], first[0], "the audit log did not rotate");
    }

    /// `enforcer run` prints the same line for a fork or exit written from its typed form as
    /// for the same event as a JSON tree.
    #[test]
    fn typed_lifecycle_events_print_the_json_tree_summary() {
        for (record, mut tree) in [
            (
                Decoded::Fork(test_fork_record(77, 40)),
                fork_event(&test_fork_record(77, 40), "t"),
            ),
            (
                Decoded::Exit(test_exit_record(9, 40)),
                exit_event(&test_exit_record(9, 40), "t"),
            ),
        ] {
            Enricher::default().observe(&record, &mut tree);
            let typed = Enricher::default()
                .lifecycle_event(&record, "t".to_owned())
                .unwrap();
            assert_eq!(
                summary(&Record::LifecycleEvent { event: typed }),
                summary(&Record::Event { event: tree })
            );
        }
    }

    /// The same for an exec, with and without a `ppid` and arguments.
    #[test]
    fn typed_exec_events_print_the_json_tree_summary() {
        use crate::enrich::process_part::ProcessPart;
        use crate::pipeline::{decode::test_exec_record, exec_event::exec_event};
        let mut bare = test_exec_record();
        (bare.header.ppid, bare.args_len) = (0, 0);
        for rec in [test_exec_record(), bare] {
            let process = ProcessPart::new(&rec.header, &rec.comm, None, None);
            let typed = crate::pipeline::exec_typed::ExecEvent::new(&rec, "t".into(), process);
            assert_eq!(
                summary(&Record::ExecEvent {
                    event: Box::new(typed)
                }),
                summary(&Record::Event {
                    event: exec_event(&rec, "t")
                })
            );
        }
    }
}
