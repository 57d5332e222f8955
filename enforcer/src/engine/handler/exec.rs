//! A successful exec (the `sched_process_exec` tracepoint's record), handled in typed form
//! (`pipeline/exec_typed.rs`): most execs of a busy host match no rule, carry no kernel
//! verdict and need nothing completed from `/proc`, and their event goes to the audit log
//! without a JSON tree being built, decoded or copied. Any other exec becomes the same event
//! as a JSON tree and takes the handler's general path (`report_exec`).

use std::path::PathBuf;

use enforcer_common::event::ExecRecord;
use enforcer_policy::Kind;

use super::{Handler, Sink};
use crate::{
    audit::{Record, writer::WriteError},
    enrich::{exec_blocks, process_part::ProcessPart},
    hash::Begin,
    pipeline::exec_typed::ExecEvent,
};

impl Handler<'_> {
    /// Handles the exec record `rec`; `exited`: its process is known to be gone, so nothing
    /// is read from its `/proc/<pid>` (see [`Handler::handle_knowing`]).
    pub(super) fn handle_exec(
        &mut self,
        rec: &ExecRecord,
        exited: bool,
        sink: &mut Sink,
    ) -> Result<(), WriteError> {
        let header = rec.header;
        let kernel_process = ProcessPart::new(&header, &rec.comm, None, None);
        let mut event = ExecEvent::with_selected_envs(
            rec,
            self.ts(&header),
            kernel_process,
            &self.env_selector,
        );
        self.enricher.observe_exec(rec, &mut event);
        self.expire_learned(header.timestamp_ns);
        let proc_dir = (!exited).then(|| PathBuf::from(format!("/proc/{}", header.tgid)));
        let proc_dir = proc_dir.as_deref();
        event.add_cwd(proc_dir);
        let begun = self.begin_hash(rec, &event.exec.file.path);
        if let Some(Begin::Ready(info)) = &begun {
            event.exec.file.hash = Some(info.part());
        }
        let waits_for_hash = matches!(begun, Some(Begin::Queued(_)));
        if event.cut_blocks() || header.outcome != 0 || waits_for_hash || self.may_match(&event) {
            event.restore_envs(rec);
            let mut tree = match serde_json::to_value(&event) {
                Ok(tree) => tree,
                Err(err) => {
                    // Not reachable: the event has string keys only.
                    self.decode_errors += 1;
                    tracing::error!("exec event of pid {} not evaluated: {err}", header.tgid);
                    return Ok(());
                }
            };
            exec_blocks::complete_envs(&mut tree, proc_dir);
            exec_blocks::complete_args(&mut tree, proc_dir);
            return self.report_exec(&header, rec, tree, begun, sink);
        }
        if !sink.records_events() {
            return Ok(());
        }
        sink.write(&Record::ExecEvent {
            event: Box::new(event),
        })
    }

    /// Whether a rule may match the typed `event`: one does, or the event cannot give a field
    /// a rule reads (its JSON tree will be decoded).
    fn may_match(&self, event: &ExecEvent) -> bool {
        let policy = self.policy();
        if policy.rules_of_kind(Kind::Exec).is_empty() {
            return false;
        }
        policy
            .typed_event(Kind::Exec, |name| event.field(name))
            .is_none_or(|ev| !policy.eval(&ev).is_empty())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use enforcer_common::event::EXEC_ARGS_TRUNCATED;
    use serde_json::Value;

    use super::*;
    use crate::{
        audit::AuditReader,
        engine::enforce::testing,
        pipeline::decode::{as_bytes, test_exec_record},
    };

    /// An exec of this test process (seeded from `/proc` with its parents, its working
    /// directory readable) with the environment `A=1 POOL=x`.
    fn my_exec() -> ExecRecord {
        let mut rec = test_exec_record();
        let me = std::process::id();
        (rec.header.tgid, rec.header.pid) = (me, me);
        rec.header.ppid = std::os::unix::process::parent_id();
        // Late enough for this process's start time.
        rec.header.timestamp_ns = u64::MAX / 2;
        rec.env[..10].copy_from_slice(b"A=1\0POOL=x");
        rec.env_len = 10;
        rec
    }

    /// The audit records of `rec` handled under a policy of the one exec rule `expression`.
    fn records(expression: &str, rec: &ExecRecord) -> Vec<Value> {
        let policy = std::rc::Rc::new(
            enforcer_policy::load_str(
                "p.yaml",
                &format!("rules:\n  - id: r\n    expression: {expression}\n    action: alert\n"),
            )
            .unwrap(),
        );
        let dir = tempfile::tempdir().unwrap();
        let (mut handler, mut sink, log) = testing::handler(&policy, dir.path());
        handler.handle(as_bytes(rec), &mut sink).unwrap();
        sink.flush().unwrap();
        AuditReader::read_path(&log).unwrap().0
    }

    /// The one event record's event as a line, without its wall-clock time (each handler
    /// has its own boot clock).
    fn event_record(records: &[Value]) -> String {
        let events: Vec<_> = records.iter().filter(|r| r["type"] == "event").collect();
        assert_eq!(events.len(), 1, "{records:#?}");
        let mut event = events[0]["event"].clone();
        event.as_object_mut().unwrap().remove("ts");
        serde_json::to_string(&event).unwrap()
    }

    #[test]
    fn an_exec_no_rule_matches_is_written_as_the_general_path_writes_it() {
        let rec = my_exec();
        // Both policies test the environment: only `POOL=` entries are kept.
        let unmatched = records(
            r#"exec.envs startswith "POOL=" && exec.file.name == "nothing""#,
            &rec,
        );
        assert_eq!(unmatched.len(), 1, "the event alone: {unmatched:#?}");
        let matched = records(
            r#"exec.envs startswith "POOL=" && exec.file.name == "true""#,
            &rec,
        );
        assert!(
            matched.iter().any(|r| r["action"] == "alert"),
            "{matched:#?}"
        );
        let line = event_record(&unmatched);
        assert_eq!(line, event_record(&matched));
        let event: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(event["exec"]["envs"], serde_json::json!(["POOL=x"]));
        assert_eq!(event["exec"]["envs_omitted"], 1);
        assert!(event["exec"]["cwd"].is_string(), "{event}");
        assert!(
            event["process"]["ancestors"][0]["pid"].is_number(),
            "{event}"
        );
    }

    #[test]
    fn rules_judge_the_environment_as_if_the_entries_left_out_were_there() {
        // A negated test on a list holds when no entry matches: the typed path, which holds
        // only the entries some test matches, must judge it as the whole environment would.
        let rule = r#"exec.envs != "STAGE=prod""#;
        let alerts = |env: &[u8]| {
            let mut rec = my_exec();
            rec.env[..env.len()].copy_from_slice(env);
            rec.env_len = u32::try_from(env.len()).unwrap();
            let records = records(rule, &rec);
            let alerts = records.iter().filter(|r| r["action"] == "alert").count();
            (
                alerts,
                serde_json::from_str::<Value>(&event_record(&records)).unwrap(),
            )
        };
        let (n, event) = alerts(b"A=1\0B=2");
        assert_eq!(n, 1, "no entry is STAGE=prod: {event}");
        assert_eq!(event["exec"]["envs"], serde_json::json!([]));
        assert_eq!(event["exec"]["envs_omitted"], 2);
        let (n, event) = alerts(b"A=1\0STAGE=prod");
        assert_eq!(n, 0, "{event}");
        assert_eq!(event["exec"]["envs"], serde_json::json!(["STAGE=prod"]));
        assert_eq!(event["exec"]["envs_omitted"], 1);
    }

    #[test]
    fn a_cut_command_line_or_a_kernel_verdict_takes_the_general_path() {
        // A cut command line is completed from /proc/<pid>/cmdline when that starts with the
        // kernel's part: the test binary's does not, and the event says the kernel's stays.
        let mut cut = my_exec();
        cut.flags |= EXEC_ARGS_TRUNCATED;
        let event = event_record(&records(r#"exec.file.name == "nothing""#, &cut));
        let event: Value = serde_json::from_str(&event).unwrap();
        assert_eq!(event["exec"]["args_source"], "kernel", "{event}");
        // A record the kernel acted on gets its enforcement record.
        let mut killed = my_exec();
        killed.header.outcome = enforcer_common::event::OUTCOME_KILLED;
        let kill = records(r#"exec.file.name == "nothing""#, &killed);
        assert!(
            kill.iter().any(|r| r["decided_in"] == "kernel"),
            "{kill:#?}"
        );
    }
}
