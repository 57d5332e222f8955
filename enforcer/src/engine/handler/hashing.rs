//! Exec events and the executed file's hash: a cached (or unavailable) hash goes into the event
//! at once; otherwise the event's other rules are evaluated now, the event waits, and when the
//! hash arrives the rules that read it are evaluated and the completed event is written.

use std::collections::HashMap;

use enforcer_common::event::{EventHeader, ExecRecord};
use serde_json::Value;

use super::{Handler, Select, Sink};
use crate::{
    audit::{Record, writer::WriteError},
    hash::{Begin, Done, ExecHasher, HashInfo, KernelIdentity, Unavailable},
};

/// The handler's hashing state.
#[derive(Debug)]
pub(crate) struct Hashing {
    hasher: ExecHasher,
    /// Per rule index: whether the rule reads `exec.file.hash.*`.
    rules: Vec<bool>,
    /// Events waiting for their hash: job id -> (header, event).
    waiting: HashMap<u64, (EventHeader, Value)>,
}

/// The kernel's identity of the executed file, when the record carries it.
fn kernel_identity(_rec: &ExecRecord) -> Option<KernelIdentity> {
    None
}

impl Handler<'_> {
    /// Hashes executed files with `hasher` and evaluates the rules that read the hash.
    pub(crate) fn with_hasher(mut self, hasher: ExecHasher) -> Self {
        let rules = self.policy.rules_reading("exec.file.hash.");
        self.hashing = Some(Hashing {
            hasher,
            rules,
            waiting: HashMap::new(),
        });
        self
    }

    /// Whether rule `index` is one `select` picks.
    pub(super) fn selected(&self, select: Select, index: u32) -> bool {
        let reads_hash = self
            .hashing
            .as_ref()
            .and_then(|h| h.rules.get(index as usize).copied())
            .unwrap_or(false);
        match select {
            Select::All => true,
            Select::WithoutHash => !reads_hash,
            Select::OnlyHash => reads_hash,
        }
    }

    /// Reports an exec the tracepoint saw, with its file's hash when the policy reads it.
    pub(super) fn report_exec(
        &mut self,
        header: &EventHeader,
        rec: &ExecRecord,
        mut event: Value,
        sink: &mut Sink,
    ) -> Result<(), WriteError> {
        let Some(hashing) = self.hashing.as_mut() else {
            return self.report(header, event, true, sink);
        };
        let path = event["exec"]["file"]["path"].as_str().unwrap_or("");
        let begun = hashing
            .hasher
            .begin(header.tgid, path, kernel_identity(rec).as_ref());
        match begun {
            Begin::Ready(info) => {
                info.write_into(&mut event);
                self.report(header, event, true, sink)
            }
            Begin::Queued(id) => {
                self.kernel_records(header, &event, sink)?;
                self.userspace_rules(header, &event, Select::WithoutHash, sink)?;
                if let Some(hashing) = self.hashing.as_mut() {
                    hashing.waiting.insert(id, (*header, event));
                }
                Ok(())
            }
        }
    }

    /// A hash came back: evaluates the rules that read it on the completed event, then writes
    /// the event.
    pub(crate) fn hash_done(&mut self, done: Done, sink: &mut Sink) -> Result<(), WriteError> {
        let Some(hashing) = self.hashing.as_mut() else {
            return Ok(());
        };
        let (id, info) = hashing.hasher.finish(done);
        let Some((header, event)) = hashing.waiting.remove(&id) else {
            return Ok(());
        };
        self.complete(&header, event, &info, sink)
    }

    fn complete(
        &mut self,
        header: &EventHeader,
        mut event: Value,
        info: &HashInfo,
        sink: &mut Sink,
    ) -> Result<(), WriteError> {
        info.write_into(&mut event);
        self.userspace_rules(header, &event, Select::OnlyHash, sink)?;
        sink.write(&Record::Event { event })
    }

    /// Writes the events still waiting for a hash, as unavailable (the engine is stopping).
    pub(crate) fn stop_hashing(&mut self, sink: &mut Sink) -> Result<(), WriteError> {
        let Some(hashing) = self.hashing.as_mut() else {
            return Ok(());
        };
        let waiting: Vec<_> = hashing.waiting.drain().collect();
        let info = HashInfo::unavailable(Unavailable::Stopping, None, None);
        for (_, (header, event)) in waiting {
            self.complete(&header, event, &info, sink)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::time::Duration;

    use super::*;
    use crate::{
        actions::breaker::Limits,
        audit::AuditReader,
        clock::BootClock,
        engine::enforce::testing::{self, FakePlan},
        hash::HashConfig,
        pipeline::decode::{as_bytes, test_exec_record},
    };

    /// SHA-256("abc").
    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn hash_rules_are_evaluated_when_the_hash_arrives_and_others_at_once() {
        let policy = enforcer_policy::load_str(
            "p.yaml",
            &format!(
                r#"rules:
  - id: by-name
    expression: exec.file.name == "true"
    action: alert
  - id: by-hash
    expression: exec.file.hash.sha256 in ("{ABC}")
    action: kill
    mode: monitor
"#
            ),
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("abc");
        std::fs::write(&exe, b"abc").unwrap();
        // Process 10 of the test record runs `exe` in this fake procfs.
        let proc_root = dir.path().join("proc");
        std::fs::create_dir_all(proc_root.join("10")).unwrap();
        std::os::unix::fs::symlink(&exe, proc_root.join("10/exe")).unwrap();
        let (hasher, mut results) = ExecHasher::start(HashConfig {
            proc_root,
            settle: Duration::ZERO,
            ..HashConfig::default()
        })
        .unwrap();

        let log = dir.path().join("audit.jsonl");
        let mut sink = Sink::open(Some(&log), false).unwrap();
        let clock = BootClock::new().unwrap();
        let enforcer = testing::enforcer(
            &policy,
            &[],
            Limits::DEFAULT,
            FakePlan::default(),
            clock,
            false,
        );
        let mut handler =
            Handler::new(&policy, "signal", false, clock, enforcer).with_hasher(hasher);
        handler
            .handle(as_bytes(&test_exec_record()), &mut sink)
            .unwrap();
        sink.flush().unwrap();
        let (records, _) = AuditReader::read_path(&log).unwrap();
        assert_eq!(records.len(), 1, "only the name rule so far: {records:#?}");
        assert_eq!(records[0]["rule"], "by-name");

        handler
            .hash_done(results.blocking_recv().unwrap(), &mut sink)
            .unwrap();
        sink.flush().unwrap();
        let (records, _) = AuditReader::read_path(&log).unwrap();
        assert_eq!(records.len(), 3, "{records:#?}");
        assert_eq!(records[1]["action"], "would_kill");
        assert_eq!(records[1]["rule"], "by-hash");
        assert_eq!(records[1]["event"]["exec"]["file"]["hash"]["sha256"], ABC);
        assert_eq!(records[2]["type"], "event");
        assert_eq!(
            records[2]["event"]["exec"]["file"]["hash"]["status"],
            "hashed"
        );
        // The second exec of the same file is answered from the cache, in one pass.
        handler
            .handle(as_bytes(&test_exec_record()), &mut sink)
            .unwrap();
        sink.flush().unwrap();
        let (records, _) = AuditReader::read_path(&log).unwrap();
        let rules: Vec<_> = records[3..].iter().map(|r| r["rule"].as_str()).collect();
        assert_eq!(rules, [Some("by-name"), Some("by-hash"), None]);
        assert_eq!(
            records[5]["event"]["exec"]["file"]["hash"]["status"],
            "cached"
        );
        assert!(handler.hashing.as_ref().unwrap().waiting.is_empty());
    }
}
