//! Appends records to the audit log (see the module documentation of `audit` for the contract).

use std::{
    fs::{File, OpenOptions},
    io::{Read as _, Seek as _, SeekFrom, Write as _},
    os::unix::fs::OpenOptionsExt as _,
    path::{Path, PathBuf},
    time::SystemTime,
};

use serde::Serialize;

use super::record::Record;

/// Errors of the audit writer.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The log could not be opened.
    #[error("cannot open audit log {path}: {source}")]
    Open {
        /// The log path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A record could not be written.
    #[error("cannot write to audit log {path}: {source}")]
    Write {
        /// The log path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A record could not be serialized.
    #[error("cannot serialize audit record: {0}")]
    Serialize(#[from] serde_json::Error),
}

/// An open audit log.
#[derive(Debug)]
pub struct AuditWriter {
    file: File,
    path: PathBuf,
    line: Vec<u8>,
    /// Event records not yet written (see [`AuditWriter::write`]).
    pending: Vec<u8>,
}

/// Event records are written once this many bytes are pending, or at [`AuditWriter::flush`].
const PENDING_LIMIT: usize = 64 * 1024;

#[derive(Serialize)]
struct Envelope<'a> {
    ts: String,
    #[serde(flatten)]
    record: &'a Record,
}

impl AuditWriter {
    /// Opens (creating, mode 0600) `path` for appending. A torn last line is closed with a
    /// newline so the next record starts whole.
    pub fn open(path: &Path) -> Result<Self, WriteError> {
        let open_err = |source| WriteError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .mode(0o600)
            .open(path)
            .map_err(open_err)?;
        let len = file.metadata().map_err(open_err)?.len();
        if len > 0 {
            let mut last = [0u8; 1];
            file.seek(SeekFrom::Start(len - 1)).map_err(open_err)?;
            file.read_exact(&mut last).map_err(open_err)?;
            if last[0] != b'\n' {
                file.write_all(b"\n").map_err(open_err)?;
            }
        }
        Ok(Self {
            file,
            path: path.to_path_buf(),
            line: Vec::with_capacity(1024),
            pending: Vec::with_capacity(PENDING_LIMIT),
        })
    }

    /// Writes one record as one whole line. Event records are gathered and written together
    /// (at 64 KiB, at [`AuditWriter::flush`], or before the next durable record, so the order
    /// of the log is the order of the calls); lifecycle and action records are written at once
    /// and synced to disk. Every `write` call carries whole lines only.
    pub fn write(&mut self, record: &Record) -> Result<(), WriteError> {
        let envelope = Envelope {
            ts: timestamp(SystemTime::now()),
            record,
        };
        if !record.is_durable() {
            // Serialized in place after the gathered lines; a record that fails halfway is
            // taken back out, so only whole lines are ever written.
            let start = self.pending.len();
            if let Err(err) = serde_json::to_writer(&mut self.pending, &envelope) {
                self.pending.truncate(start);
                return Err(err.into());
            }
            self.pending.push(b'\n');
            if self.pending.len() >= PENDING_LIMIT {
                self.flush()?;
            }
            return Ok(());
        }
        self.line.clear();
        serde_json::to_writer(&mut self.line, &envelope)?;
        self.line.push(b'\n');
        self.flush()?;
        let write_err = |source| WriteError::Write {
            path: self.path.clone(),
            source,
        };
        self.file.write_all(&self.line).map_err(write_err)?;
        self.file.sync_data().map_err(write_err)?;
        Ok(())
    }

    /// Writes the gathered event records (one `write` call).
    pub fn flush(&mut self) -> Result<(), WriteError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let result = self.file.write_all(&self.pending);
        self.pending.clear();
        result.map_err(|source| WriteError::Write {
            path: self.path.clone(),
            source,
        })
    }
}

impl Drop for AuditWriter {
    fn drop(&mut self) {
        // Best effort: an error here has nowhere to go, and the lines are whole either way.
        let _ = self.flush();
    }
}

/// RFC 3339 UTC timestamp with microseconds.
pub fn timestamp(at: SystemTime) -> String {
    humantime::format_rfc3339_micros(at).to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::io::Write as _;

    use super::*;
    use crate::audit::{AuditReader, ReadSummary};

    fn event(n: u64) -> Record {
        Record::Event {
            event: serde_json::json!({ "kind": "exec", "n": n }),
        }
    }

    #[test]
    fn events_wait_for_a_flush_or_a_durable_record_and_keep_their_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let mut w = AuditWriter::open(&path).unwrap();
        w.write(&event(1)).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "",
            "held until a flush"
        );
        w.flush().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
        w.write(&event(2)).unwrap();
        w.write(&Record::EngineStop {
            reason: "t".into(),
            counters: serde_json::json!({}),
            decode_errors: 0,
            polling_periods: 0,
        })
        .unwrap();
        w.write(&event(3)).unwrap();
        drop(w);
        let text = std::fs::read_to_string(&path).unwrap();
        let kinds: Vec<String> = text
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                format!("{}{}", v["type"], v["event"]["n"])
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "\"event\"1",
                "\"event\"2",
                "\"engine_stop\"null",
                "\"event\"3"
            ],
            "the durable record flushed event 2 first; drop flushed event 3"
        );
    }

    #[test]
    fn records_are_whole_lines_with_ts_and_type() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let mut w = AuditWriter::open(&path).unwrap();
        w.write(&event(1)).unwrap();
        w.write(&event(2)).unwrap();
        w.flush().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(text.ends_with('\n'));
        let (records, summary) = AuditReader::read_path(&path).unwrap();
        assert_eq!(
            summary,
            ReadSummary {
                records: 2,
                torn_tail: 0,
                corrupt: 0
            }
        );
        assert_eq!(records[1]["type"], "event");
        assert_eq!(records[1]["event"]["n"], 2);
        assert!(records[0]["ts"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn a_torn_tail_is_counted_then_closed_on_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        AuditWriter::open(&path).unwrap().write(&event(1)).unwrap();
        // A crash in the middle of a write leaves half a record.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"ts\":\"2026")
            .unwrap();
        let (_, summary) = AuditReader::read_path(&path).unwrap();
        assert_eq!(
            summary,
            ReadSummary {
                records: 1,
                torn_tail: 1,
                corrupt: 0
            }
        );

        // The restarted engine appends after a newline: the next record is whole.
        AuditWriter::open(&path).unwrap().write(&event(2)).unwrap();
        let (records, summary) = AuditReader::read_path(&path).unwrap();
        assert_eq!(
            summary,
            ReadSummary {
                records: 2,
                torn_tail: 0,
                corrupt: 1
            }
        );
        assert_eq!(records[1]["event"]["n"], 2);
    }

    #[test]
    fn the_log_is_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        AuditWriter::open(&path).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
