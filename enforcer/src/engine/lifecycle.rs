//! The `LIFECYCLE` ring buffer (fork and exit records) and its merge with `EVENTS`.
//!
//! The kernel writes fork and exit records there without waking the daemon (unless a rule is
//! about them, `RECORD_LIFECYCLE_WAKE`), so an exec storm wakes the daemon once per exec
//! instead of three times. They are read: before each `EVENTS` record, the ones made before it
//! (by kernel timestamp) are handled first, so the process cache sees a process's fork before
//! its exec and the audit log keeps the kernel's order; after each `EVENTS` drain, the rest;
//! and on [`DRAIN_INTERVAL`] when no other record comes (or when the kernel wakes the daemon
//! because a quarter of the ring is pending). Records are copied out of the ring so that the
//! ones newer than the current `EVENTS` record can wait; at most one ring's worth is held.
//! An exit record still waiting when an `EVENTS` record of its process is handled was made
//! after it: the handler is told the process is gone ([`Pending::exited`]) and reads nothing
//! of it from `/proc`.

use std::{collections::VecDeque, time::Duration};

use aya::maps::{MapData, RingBuf};
use enforcer_common::event::{EventHeader, EventKind};

use super::{handler::Handler, sink::Sink};
use crate::audit::writer::WriteError;

/// How long a fork or exit record waits at most when no other record wakes the daemon.
pub(crate) const DRAIN_INTERVAL: Duration = Duration::from_millis(20);

/// The kernel timestamp of a record (0 for a record too short for a header: handled first,
/// and counted as a decode error by the handler).
pub(crate) fn timestamp(bytes: &[u8]) -> u64 {
    let start = std::mem::offset_of!(EventHeader, timestamp_ns);
    bytes
        .get(start..start + 8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_ne_bytes)
}

/// The `u32` header field at `offset` of a record (`None` for a record too short).
fn header_u32(bytes: &[u8], offset: usize) -> Option<u32> {
    bytes
        .get(offset..offset + 4)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_ne_bytes)
}

/// The process of an exit record (`None` for any other record).
fn exiting_tgid(bytes: &[u8]) -> Option<u32> {
    let kind = header_u32(bytes, std::mem::offset_of!(EventHeader, kind))?;
    (kind == EventKind::Exit as u32)
        .then(|| header_u32(bytes, std::mem::offset_of!(EventHeader, tgid)))
        .flatten()
}

/// Handles every record of `events` in order, each after the lifecycle records made before it,
/// then the remaining lifecycle records. Returns how many `events` records there were.
pub(crate) fn drain(
    events: &mut RingBuf<MapData>,
    ring: &mut RingBuf<MapData>,
    pending: &mut Pending,
    handler: &mut Handler<'_>,
    sink: &mut Sink,
) -> Result<usize, WriteError> {
    let mut handled = 0;
    while let Some(item) = events.next() {
        // Pulled after the event record was read: every fork or exit made before it is in.
        pending.pull(ring);
        pending.handle_until(timestamp(&item), handler, sink)?;
        // What is still pending was made after this record: an exit there means the process
        // is gone, and `/proc/<pid>` is no longer its (nothing, or a reused pid's process).
        let gone = header_u32(&item, std::mem::offset_of!(EventHeader, tgid))
            .is_some_and(|tgid| pending.exited(tgid));
        handler.handle_knowing(&item, sink, gone)?;
        handled += 1;
    }
    pending.pull(ring);
    pending.handle_all(handler, sink)?;
    Ok(handled)
}

/// Fork and exit records read from the ring and not handled yet, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    records: VecDeque<(u64, Vec<u8>)>,
    /// Processes with an exit record among `records`, with how many (a reused pid can exit
    /// twice within one drain).
    exits: foldhash::HashMap<u32, u32>,
}

impl Pending {
    /// Copies every record the ring holds (in the ring's order) and consumes it.
    pub(crate) fn pull(&mut self, ring: &mut RingBuf<MapData>) {
        while let Some(item) = ring.next() {
            self.push(&item);
        }
    }

    /// Queues one record (as [`Pending::pull`] does; tests, which have no ring buffer, call it
    /// directly).
    fn push(&mut self, bytes: &[u8]) {
        if let Some(tgid) = exiting_tgid(bytes) {
            *self.exits.entry(tgid).or_default() += 1;
        }
        self.records.push_back((timestamp(bytes), bytes.to_vec()));
    }

    /// Whether an exit record of process `tgid` is waiting.
    pub(crate) fn exited(&self, tgid: u32) -> bool {
        self.exits.contains_key(&tgid)
    }

    /// Handles the pulled records made no later than `ts`.
    pub(crate) fn handle_until(
        &mut self,
        ts: u64,
        handler: &mut Handler<'_>,
        sink: &mut Sink,
    ) -> Result<(), WriteError> {
        while self.records.front().is_some_and(|(t, _)| *t <= ts) {
            if let Some((_, bytes)) = self.records.pop_front() {
                if let Some(tgid) = exiting_tgid(&bytes)
                    && let Some(count) = self.exits.get_mut(&tgid)
                {
                    *count -= 1;
                    if *count == 0 {
                        self.exits.remove(&tgid);
                    }
                }
                handler.handle(&bytes, sink)?;
            }
        }
        Ok(())
    }

    /// Handles every pulled record.
    pub(crate) fn handle_all(
        &mut self,
        handler: &mut Handler<'_>,
        sink: &mut Sink,
    ) -> Result<(), WriteError> {
        self.handle_until(u64::MAX, handler, sink)
    }

    /// Records waiting.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{
        audit::AuditReader,
        engine::enforce::testing,
        pipeline::decode::{as_bytes, test_exec_record, test_exit_record, test_fork_record},
    };

    #[test]
    fn timestamps_come_from_the_header_and_short_records_sort_first() {
        let mut rec = test_exec_record();
        rec.header.timestamp_ns = 1234;
        assert_eq!(timestamp(as_bytes(&rec)), 1234);
        assert_eq!(timestamp(&[1, 2, 3]), 0);
    }

    #[test]
    fn older_lifecycle_records_are_handled_before_the_event_record() {
        let policy = std::rc::Rc::new(enforcer_policy::load_str(
            "p.yaml",
            "rules:\n  - id: a\n    expression: exec.file.name == \"nothing\"\n    action: alert\n",
        )
        .unwrap());
        let dir = tempfile::tempdir().unwrap();
        let (mut handler, mut sink, log) = testing::handler(&policy, dir.path());
        let mut fork = test_fork_record(10, 30);
        fork.header.timestamp_ns = 30;
        fork.header.tgid = 1;
        let mut exit = test_exit_record(0, 30);
        exit.header.timestamp_ns = 50;
        let mut exec = test_exec_record();
        exec.header.timestamp_ns = 42;
        let mut pending = Pending::default();
        pending.push(as_bytes(&fork));
        pending.push(as_bytes(&exit));
        // The exec record (42 ns) comes: the fork (30 ns) first, the exit (50 ns) after it.
        pending
            .handle_until(timestamp(as_bytes(&exec)), &mut handler, &mut sink)
            .unwrap();
        assert_eq!(pending.len(), 1);
        handler.handle(as_bytes(&exec), &mut sink).unwrap();
        pending.handle_all(&mut handler, &mut sink).unwrap();
        assert_eq!(pending.len(), 0);
        sink.flush().unwrap();
        let (records, _) = AuditReader::read_path(&log).unwrap();
        let kinds: Vec<_> = records
            .iter()
            .filter(|r| r["type"] == "event")
            .map(|r| r["event"]["kind"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(kinds, ["fork", "exec", "exit"]);
    }

    #[test]
    fn a_waiting_exit_record_marks_its_process_gone_until_it_is_handled() {
        let policy = std::rc::Rc::new(enforcer_policy::load_str("p.yaml", "rules: []\n").unwrap());
        let dir = tempfile::tempdir().unwrap();
        let (mut handler, mut sink, _) = testing::handler(&policy, dir.path());
        let mut pending = Pending::default();
        let mut exit = test_exit_record(0, 30);
        exit.header.timestamp_ns = 50;
        pending.push(as_bytes(&test_fork_record(10, 30)));
        assert!(!pending.exited(10), "a fork is not an exit");
        pending.push(as_bytes(&exit));
        // The same pid exiting twice in one drain (reused): gone until both are handled.
        exit.header.timestamp_ns = 70;
        pending.push(as_bytes(&exit));
        assert!(pending.exited(10) && !pending.exited(11));
        pending.handle_until(60, &mut handler, &mut sink).unwrap();
        assert!(pending.exited(10));
        pending.handle_all(&mut handler, &mut sink).unwrap();
        assert!(!pending.exited(10));
    }
}
