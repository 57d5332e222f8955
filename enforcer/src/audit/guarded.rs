//! The audit log as the running engine writes it ([`GuardedLog`]): a write that fails (the
//! disk is full, an I/O error) never stops the engine. Enforcement does not depend on the log;
//! an engine that exited on a full disk would hand whoever can fill that disk a way to turn it
//! off.
//!
//! During an outage, event records are counted and dropped, and the other records (actions,
//! engine and reload records) are held in memory, at most [`HELD_BYTES`] of them (beyond, they
//! are counted). Every [`RETRY`] the log is tried again; once it takes a write, an
//! `audit_lost` record says what was lost and the held records follow it, with their own
//! times. The outage is logged when it starts, every [`WARN_EVERY`] while it lasts, and when it
//! ends.
//!
//! A log file deleted or moved away while the engine runs (an operator's rotation, or someone
//! removing evidence) would swallow every later record: every [`CHECK_EVERY`] the path is
//! compared with the open file, and opened again when it names another file or none, starting
//! with an `audit_reopened` record.

use std::time::{Duration, Instant, SystemTime};

use super::{
    AuditLost, AuditReopened, Record,
    writer::{AuditWriter, WriteError, timestamp},
};

/// Most bytes of records held during an outage.
pub const HELD_BYTES: usize = 16 << 20;
/// How often a failing log is tried again.
pub const RETRY: Duration = Duration::from_secs(1);
/// How often a lasting outage is logged.
pub const WARN_EVERY: Duration = Duration::from_secs(60);
/// How often the engine looks whether its log file was deleted or moved away.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// An audit log whose write failures are absorbed (see the module documentation).
#[derive(Debug)]
pub struct GuardedLog {
    writer: AuditWriter,
    outage: Option<Outage>,
    /// When to look again whether the log file was deleted or moved away.
    next_check: Instant,
    /// The log file was deleted or moved away and opening it again failed: retried with the
    /// outage, and this record written first once it succeeds.
    reopen_due: Option<AuditReopened>,
    /// The writer's generation when [`GuardedLog::files_changed`] last said so.
    files_seen: Option<u64>,
    /// The last outage that ended, until [`GuardedLog::take_ended`] takes it.
    ended: Option<AuditLost>,
}

/// A time during which the log could not be written.
#[derive(Debug)]
struct Outage {
    since: SystemTime,
    error: String,
    events_lost: u64,
    records_lost: u64,
    /// Durable records' lines, in order, stamped when they were made.
    held: Vec<Vec<u8>>,
    held_bytes: usize,
    next_try: Instant,
    next_warning: Instant,
}

impl GuardedLog {
    /// Guards `writer`.
    pub fn new(writer: AuditWriter) -> Self {
        Self {
            writer,
            outage: None,
            next_check: Instant::now() + CHECK_EVERY,
            reopen_due: None,
            files_seen: None,
            ended: None,
        }
    }

    /// The log's path.
    pub fn path(&self) -> &std::path::Path {
        self.writer.path()
    }

    /// Whether the log fails now.
    pub fn is_failing(&self) -> bool {
        self.outage.is_some()
    }

    /// While the log fails: since when, and the first error.
    pub fn failing(&self) -> Option<(String, String)> {
        self.outage
            .as_ref()
            .map(|o| (timestamp(o.since), o.error.clone()))
    }

    /// The last outage that ended since the previous call (what its `audit_lost` record says).
    pub fn take_ended(&mut self) -> Option<AuditLost> {
        self.ended.take()
    }

    /// Makes the next check for a moved log and the next retry of a failing one due now.
    #[cfg(test)]
    pub(crate) fn make_due(&mut self) {
        self.next_check = Instant::now();
        if let Some(outage) = &mut self.outage {
            outage.next_try = Instant::now();
        }
    }

    /// Whether the log is failing now, and how many records it lost so far (events, others).
    #[cfg(test)]
    fn outage(&self) -> Option<(u64, u64)> {
        self.outage
            .as_ref()
            .map(|o| (o.events_lost, o.records_lost))
    }

    /// Writes `record` (see [`AuditWriter::write`]); a failed write starts an outage instead of
    /// an error. `Err` only when the record cannot be serialized.
    pub fn write(&mut self, record: &Record) -> Result<(), serde_json::Error> {
        if record.is_durable() {
            self.write_durable(AuditWriter::line_of(record)?, false);
            self.try_again();
            return Ok(());
        }
        if let Some(outage) = &mut self.outage {
            outage.events_lost += 1;
            self.try_again();
            return Ok(());
        }
        match self.writer.write(record) {
            Ok(()) => Ok(()),
            Err(WriteError::Serialize(err)) => Err(err),
            Err(err) => {
                self.fail(&err);
                Ok(())
            }
        }
    }

    /// Whether the log's files may have changed since the last call (the first call always
    /// says so).
    pub fn files_changed(&mut self) -> bool {
        let generation = self.writer.generation();
        if self.files_seen == Some(generation) {
            return false;
        }
        self.files_seen = Some(generation);
        true
    }

    /// The log's files (see [`AuditWriter::files`]): the open one first.
    pub fn files(&self) -> Vec<(u64, u64)> {
        self.writer.files()
    }

    /// Writes the gathered event records; during an outage, tries the log again when due.
    /// Every [`CHECK_EVERY`], opens the log again if its file was deleted or moved away.
    pub fn flush(&mut self) {
        self.check_detached();
        if self.outage.is_some() {
            self.try_again();
        } else if let Err(err) = self.writer.flush() {
            self.fail(&err);
        }
    }

    /// When due, opens the log again if its path no longer names the open file, and writes an
    /// `audit_reopened` record first in it (on failure, the outage retries the open).
    fn check_detached(&mut self) {
        let now = Instant::now();
        if now < self.next_check {
            return;
        }
        self.next_check = now + CHECK_EVERY;
        if self.reopen_due.is_some() || !self.writer.detached() {
            return;
        }
        let found = if self.writer.path().exists() {
            "replaced"
        } else {
            "deleted or moved"
        };
        tracing::warn!(
            "the audit log {} was {found} while the engine ran: opening it again",
            self.writer.path().display()
        );
        let reopened = AuditReopened {
            found,
            noticed: timestamp(SystemTime::now()),
        };
        if let Err(err) = self.writer.reopen() {
            self.fail(&err);
            self.reopen_due = Some(reopened);
            return;
        }
        // Serializing this record cannot fail.
        if let Ok(line) = AuditWriter::line_of(&Record::AuditReopened(reopened)) {
            self.write_durable(line, true);
        }
    }

    /// Writes a durable record's line after the gathered event records (`first`: ahead of
    /// them) and syncs it; holds it when the log fails (or already failed).
    fn write_durable(&mut self, line: Vec<u8>, first: bool) {
        if self.outage.is_none() {
            let flushed = if first { Ok(()) } else { self.writer.flush() };
            let written = flushed.and_then(|()| {
                self.writer
                    .write_durable_line_first(&line)
                    .inspect_err(|_| {
                        // The line itself is held, not lost.
                        let _ = self.writer.take_unwritten();
                    })
            });
            match written {
                Ok(()) => return,
                Err(err) => self.fail(&err),
            }
        }
        self.hold(line);
    }

    /// Starts an outage (or adds to it) after `err`, counting what the writer left unwritten.
    fn fail(&mut self, err: &WriteError) {
        let unwritten = self.writer.take_unwritten();
        let now = Instant::now();
        let outage = self.outage.get_or_insert_with(|| {
            tracing::error!(
                "{err}: enforcement goes on; event records are counted as lost and up to {} MiB of other records are held until the log can be written (tried every {} s)",
                HELD_BYTES >> 20,
                RETRY.as_secs()
            );
            Outage {
                since: SystemTime::now(),
                error: err.to_string(),
                events_lost: 0,
                records_lost: 0,
                held: Vec::new(),
                held_bytes: 0,
                next_try: now + RETRY,
                next_warning: now + WARN_EVERY,
            }
        });
        outage.events_lost += unwritten;
    }

    /// Holds a durable record's line for after the outage (counted as lost beyond the bound).
    fn hold(&mut self, line: Vec<u8>) {
        let Some(outage) = &mut self.outage else {
            return;
        };
        if outage.held_bytes + line.len() > HELD_BYTES {
            outage.records_lost += 1;
        } else {
            outage.held_bytes += line.len();
            outage.held.push(line);
        }
    }

    /// When due, writes the `audit_lost` record and the held lines (one write, one sync); on
    /// success the outage ends.
    fn try_again(&mut self) {
        let now = Instant::now();
        let Some(outage) = &mut self.outage else {
            return;
        };
        if now < outage.next_try {
            return;
        }
        outage.next_try = now + RETRY;
        if let Some(reopened) = self.reopen_due.take() {
            if self.writer.reopen().is_err() {
                self.reopen_due = Some(reopened);
                return;
            }
            // The first record of the new file, before what the outage lost.
            if let Ok(line) = AuditWriter::line_of(&Record::AuditReopened(reopened)) {
                outage.held_bytes += line.len();
                outage.held.insert(0, line);
            }
        }
        if now >= outage.next_warning {
            outage.next_warning = now + WARN_EVERY;
            tracing::warn!(
                "the audit log {} still cannot be written: {} event records and {} other records lost, {} held, since {}",
                self.writer.path().display(),
                outage.events_lost,
                outage.records_lost,
                outage.held.len(),
                timestamp(outage.since)
            );
        }
        let lost = AuditLost {
            since: timestamp(outage.since),
            until: timestamp(SystemTime::now()),
            error: outage.error.clone(),
            events_lost: outage.events_lost,
            records_lost: outage.records_lost,
            records_held: outage.held.len() as u64,
        };
        let Ok(mut lines) = AuditWriter::line_of(&Record::AuditLost(lost.clone())) else {
            return;
        };
        for line in &outage.held {
            lines.extend_from_slice(line);
        }
        if self.writer.write_durable_line(&lines).is_err() {
            // Still failing (a write that went in part is closed by the next one).
            let _ = self.writer.take_unwritten();
            return;
        }
        tracing::warn!(
            "the audit log {} can be written again (since {}): {} event records and {} other records were lost; {} held records written",
            self.writer.path().display(),
            lost.since,
            lost.events_lost,
            lost.records_lost,
            lost.records_held
        );
        self.outage = None;
        self.ended = Some(lost);
    }
}

impl Drop for GuardedLog {
    /// A last try at the end of the run; what cannot be written then is said on stderr, the
    /// one place left.
    fn drop(&mut self) {
        if let Some(outage) = &mut self.outage {
            outage.next_try = Instant::now();
        }
        self.flush();
        if let Some(outage) = &self.outage {
            tracing::error!(
                "the audit log {} could not be written before the engine stopped: {} event records and {} other records lost, {} held records not written (since {})",
                self.writer.path().display(),
                outage.events_lost,
                outage.records_lost,
                outage.held.len(),
                timestamp(outage.since)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::audit::test_records::{event, stop};

    #[test]
    fn the_files_are_given_first_and_then_only_once_they_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let rotation = crate::audit::Rotation {
            max_bytes: 300,
            keep: 2,
        };
        let mut log = GuardedLog::new(AuditWriter::open_rotating(&path, rotation).unwrap());
        assert!(log.files_changed());
        assert_eq!(log.files().len(), 1);
        assert!(!log.files_changed(), "unchanged");
        while !log.files_changed() {
            log.write(&stop("rotate")).unwrap();
        }
        assert_eq!(log.files().len(), 2);
        assert!(!log.files_changed(), "said once per change");
    }

    /// `/dev/full` takes no write (ENOSPC): the log keeps going, counting and holding.
    #[test]
    fn a_log_that_takes_no_write_counts_events_and_holds_the_rest() {
        let writer = AuditWriter::open(std::path::Path::new("/dev/full")).unwrap();
        let mut log = GuardedLog::new(writer);
        for n in 0..3 {
            log.write(&event(n)).unwrap();
        }
        assert_eq!(log.outage(), None, "events wait for a flush");
        log.flush();
        assert_eq!(log.outage(), Some((3, 0)), "the flushed batch was lost");
        log.write(&stop("a")).unwrap();
        log.write(&event(4)).unwrap();
        log.flush();
        let outage = log.outage.as_ref().unwrap();
        assert_eq!((outage.events_lost, outage.held.len()), (4, 1));
        assert!(
            outage.error.contains("No space left on device"),
            "{outage:?}"
        );
    }

    #[test]
    fn a_log_deleted_or_moved_away_is_opened_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let mut log = GuardedLog::new(AuditWriter::open(&path).unwrap());
        log.write(&stop("one")).unwrap();
        for (how, found) in [("moved", "deleted or moved"), ("replaced", "replaced")] {
            let away = dir.path().join(format!("{how}.jsonl"));
            std::fs::rename(&path, &away).unwrap();
            if how == "replaced" {
                std::fs::write(&path, "").unwrap();
            }
            log.write(&event(1)).unwrap();
            log.next_check = Instant::now();
            log.flush();
            log.write(&stop(how)).unwrap();
            let text = std::fs::read_to_string(&path).unwrap();
            let types: Vec<String> = text
                .lines()
                .map(|l| {
                    let r: serde_json::Value = serde_json::from_str(l).unwrap();
                    format!(
                        "{}{}",
                        r["type"].as_str().unwrap(),
                        r["found"].as_str().unwrap_or("")
                    )
                })
                .collect();
            assert_eq!(
                types,
                [
                    format!("audit_reopened{found}"),
                    "event".into(),
                    "engine_stop".into()
                ],
                "{how}"
            );
            assert_eq!(log.outage(), None);
        }
        // Not looked at before CHECK_EVERY has passed, and not when nothing changed.
        log.flush();
        assert!(!log.writer.detached());
    }

    #[test]
    fn a_log_whose_directory_is_gone_is_an_outage_until_it_can_be_opened() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        std::fs::create_dir(&logs).unwrap();
        let path = logs.join("audit.jsonl");
        let mut log = GuardedLog::new(AuditWriter::open(&path).unwrap());
        std::fs::rename(&logs, dir.path().join("gone")).unwrap();
        log.next_check = Instant::now();
        log.flush();
        assert!(log.outage().is_some() && log.reopen_due.is_some());
        log.write(&stop("during")).unwrap();
        std::fs::create_dir(&logs).unwrap();
        log.outage.as_mut().unwrap().next_try = Instant::now();
        log.flush();
        assert_eq!(log.outage(), None);
        let text = std::fs::read_to_string(&path).unwrap();
        let types: Vec<String> = text
            .lines()
            .map(|l| {
                let r: serde_json::Value = serde_json::from_str(l).unwrap();
                r["type"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(types, ["audit_lost", "audit_reopened", "engine_stop"]);
    }

    #[test]
    fn the_end_of_the_run_tries_once_more() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let mut log = GuardedLog::new(AuditWriter::open(&path).unwrap());
        log.fail(&WriteError::Write {
            path: path.clone(),
            source: std::io::Error::from_raw_os_error(libc::ENOSPC),
        });
        log.write(&stop("last")).unwrap();
        drop(log);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("\"type\":\"audit_lost\"") && text.contains("\"reason\":\"last\""),
            "{text}"
        );
    }

    #[test]
    fn held_records_beyond_the_bound_are_counted() {
        let writer = AuditWriter::open(std::path::Path::new("/dev/full")).unwrap();
        let mut log = GuardedLog::new(writer);
        let big = "x".repeat(1 << 20);
        for _ in 0..(HELD_BYTES >> 20) + 3 {
            log.write(&stop(&big)).unwrap();
        }
        let outage = log.outage.as_ref().unwrap();
        assert!(outage.held_bytes <= HELD_BYTES);
        assert_eq!(outage.records_lost, 4, "{} held", outage.held.len());
    }

    #[test]
    fn the_lost_record_and_the_held_records_follow_the_outage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let mut log = GuardedLog::new(AuditWriter::open(&path).unwrap());
        log.write(&stop("before")).unwrap();
        // An outage as a full disk makes it (the file itself stays writable here).
        log.fail(&WriteError::Write {
            path: path.clone(),
            source: std::io::Error::from_raw_os_error(libc::ENOSPC),
        });
        log.write(&event(1)).unwrap();
        log.write(&stop("during")).unwrap();
        assert!(log.outage().is_some(), "retried only after RETRY");
        log.outage.as_mut().unwrap().next_try = Instant::now();
        log.flush();
        assert_eq!(log.outage(), None);
        log.write(&stop("after")).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let records: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let kinds: Vec<String> = records
            .iter()
            .map(|r| format!("{}{}", r["type"].as_str().unwrap(), r["reason"]))
            .collect();
        assert_eq!(
            kinds,
            [
                "engine_stop\"before\"",
                "audit_lostnull",
                "engine_stop\"during\"",
                "engine_stop\"after\""
            ]
        );
        assert_eq!(records[1]["events_lost"], 1);
        assert_eq!(records[1]["records_held"], 1);
        assert!(
            records[2]["ts"].as_str().unwrap() <= records[1]["ts"].as_str().unwrap(),
            "held records keep their own time"
        );
    }
}
