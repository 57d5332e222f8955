//! Exec events and the executed file's hash: a cached (or unavailable) hash goes into the event
//! at once; otherwise the event's other rules are evaluated now, the event waits, and when the
//! hash arrives the rules that read it are evaluated and the completed event is written.

use std::{cell::RefCell, collections::HashMap, rc::Rc};

use enforcer_common::{
    event::{EventHeader, ExecRecord},
    plan::InodeKey,
};
use serde_json::Value;

use super::{Handler, Select, Sink};
use crate::{
    audit::{Record, writer::WriteError},
    hash::{Begin, Done, ExecHasher, HashInfo, KernelIdentity, Unavailable},
    loader::inode_plan::InodePlan,
};

/// The handler's hashing state.
#[derive(Debug)]
pub(crate) struct Hashing {
    hasher: ExecHasher,
    /// Per rule index: whether the rule reads `exec.file.hash.*`.
    pub(super) rules: Vec<bool>,
    /// Events waiting for their hash: job id -> (header, event, the kernel's file identity).
    waiting: HashMap<u64, (EventHeader, Value, InodeKey)>,
    /// Where a hash match becomes a kernel verdict for the file (none in unit tests that do
    /// not look at it).
    inode_plan: Option<Rc<RefCell<InodePlan>>>,
}

/// The kernel's identity of the executed file, when the record carries it.
fn kernel_identity(file: &InodeKey) -> Option<KernelIdentity> {
    (file.ino != 0).then(|| KernelIdentity {
        dev: file.user_dev(),
        ino: file.ino,
        ctime_sec: file.ctime_sec,
        ctime_nsec: file.ctime_nsec,
    })
}

/// Whether `info` is the hash of the very file version the kernel executed (inode and change
/// time; the device is not compared, its number differs between `stat` and the superblock on
/// btrfs subvolumes).
fn hashed_this_version(info: &HashInfo, file: &InodeKey) -> bool {
    info.result.is_ok()
        && file.ino != 0
        && info.key.is_some_and(|k| {
            k.ino == file.ino && k.ctime_sec == file.ctime_sec && k.ctime_nsec == file.ctime_nsec
        })
}

impl Handler<'_> {
    /// Hashes executed files with `hasher` from now on (at start, or after a reload to a
    /// policy that reads hashes) and evaluates the rules that read the hash; a deny or kill
    /// match is written into `inode_plan` for the file.
    pub(crate) fn start_hashing(
        &mut self,
        hasher: ExecHasher,
        inode_plan: Option<Rc<RefCell<InodePlan>>>,
    ) {
        let rules = self.policy().rules_reading("exec.file.hash.");
        self.hashing = Some(Hashing {
            hasher,
            rules,
            waiting: HashMap::new(),
            inode_plan,
        });
    }

    /// Whether executed files are hashed.
    pub(crate) fn is_hashing(&self) -> bool {
        self.hashing.is_some()
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

    /// Starts hashing the file of the exec `rec` (at `path`) when the policy reads hashes:
    /// the hash now (cached, or unavailable), or a ticket for it.
    pub(super) fn begin_hash(&mut self, rec: &ExecRecord, path: &str) -> Option<Begin> {
        let hashing = self.hashing.as_mut()?;
        Some(
            hashing
                .hasher
                .begin(rec.header.tgid, path, kernel_identity(&rec.file).as_ref()),
        )
    }

    /// Reports an exec the tracepoint saw as the JSON tree `event`, whose hash (when the policy
    /// reads it) `begun` gave: a ready one is in `event` already and may teach the inode plan;
    /// a queued one leaves the rules that read it, and the event record, for [`Self::hash_done`].
    pub(super) fn report_exec(
        &mut self,
        header: &EventHeader,
        rec: &ExecRecord,
        event: Value,
        begun: Option<Begin>,
        sink: &mut Sink,
    ) -> Result<(), WriteError> {
        match begun {
            None => self.report(header, event, true, sink),
            Some(Begin::Ready(info)) => {
                self.learn(&rec.file, &info, &event);
                self.report(header, event, true, sink)
            }
            Some(Begin::Queued(id)) => {
                self.kernel_records(header, &event, None, sink)?;
                self.userspace_rules(header, &event, Select::WithoutHash, sink)?;
                if let Some(hashing) = self.hashing.as_mut() {
                    hashing.waiting.insert(id, (*header, event, rec.file));
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
        let Some((mut header, mut event, file)) = hashing.waiting.remove(&id) else {
            return Ok(());
        };
        // A reload may have come while the file was hashed.
        self.generations.translate(&mut header);
        info.write_into(&mut event);
        self.userspace_rules(&header, &event, Select::OnlyHash, sink)?;
        self.learn(&file, &info, &event);
        sink.write(&Record::Event {
            event: self.recorded(event),
        })
    }

    /// When the hash of the executed file matches deny or kill rules, gives the file (as the
    /// kernel identified it) their verdict in the kernel's inode plan: its next exec is stopped
    /// in the hook.
    fn learn(&self, file: &InodeKey, info: &HashInfo, event: &Value) {
        let Some(hashing) = self.hashing.as_ref() else {
            return;
        };
        let Some(plan) = hashing.inode_plan.as_ref() else {
            return;
        };
        if !hashed_this_version(info, file) {
            return;
        }
        let Ok(ev) = self.policy().decode_event(event) else {
            return;
        };
        let indices: Vec<u32> = self
            .policy()
            .eval(&ev)
            .iter()
            .map(|m| m.rule_index)
            .filter(|&i| self.selected(Select::OnlyHash, i))
            .collect();
        if indices.is_empty() {
            return;
        }
        let judged = plan.borrow_mut().judge(
            *file,
            self.policy().rules(),
            &indices,
            self.enforcer.disarmed(),
        );
        match judged {
            Ok(Some(v)) => tracing::info!(
                "inode plan: {}:{} (ctime {}.{:09}) -> rule #{} actions {:#x}",
                file.dev,
                file.ino,
                file.ctime_sec,
                file.ctime_nsec,
                v.rule_index,
                v.actions
            ),
            Ok(None) => {}
            Err(err) => tracing::warn!("cannot write the inode plan: {err}"),
        }
    }

    /// Writes the events still waiting for a hash, as unavailable (the engine is stopping).
    pub(crate) fn stop_hashing(&mut self, sink: &mut Sink) -> Result<(), WriteError> {
        let Some(hashing) = self.hashing.as_mut() else {
            return Ok(());
        };
        let waiting: Vec<_> = hashing.waiting.drain().collect();
        let info = HashInfo::unavailable(Unavailable::Stopping, None, None);
        for (_, (_, mut event, _)) in waiting {
            info.write_into(&mut event);
            sink.write(&Record::Event {
                event: self.recorded(event),
            })?;
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
        let policy = std::rc::Rc::new(
            enforcer_policy::load_str(
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
            .unwrap(),
        );
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
        let mut handler = Handler::new(Rc::clone(&policy), 1, "signal", false, clock, enforcer);
        handler.start_hashing(hasher, None);
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
