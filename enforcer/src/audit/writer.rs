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

/// When the log is rotated: once a write would take it past `max_bytes`, it is renamed
/// `PATH.1` (older ones shift to `PATH.2` .. `PATH.<keep>`, the oldest is removed) and a new
/// `PATH` is started. `max_bytes == 0`: never.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rotation {
    /// Size past which the log is rotated (0: never).
    pub max_bytes: u64,
    /// Rotated files kept (at least 1 when rotating).
    pub keep: u32,
}

impl Rotation {
    /// No rotation: the log grows without bound.
    pub const NEVER: Rotation = Rotation {
        max_bytes: 0,
        keep: 0,
    };
}

/// An open audit log.
#[derive(Debug)]
pub struct AuditWriter {
    file: File,
    path: PathBuf,
    /// Event records not yet written (see [`AuditWriter::write`]).
    pending: Vec<u8>,
    /// How many records `pending` holds.
    pending_records: u64,
    /// Records a failed write did not write whole (see [`AuditWriter::take_unwritten`]).
    unwritten: u64,
    /// A write failed: the file may end in part of a line, to be closed before the next one.
    maybe_torn: bool,
    rotation: Rotation,
    /// The file's size, as far as this writer knows.
    size: u64,
    /// The size past which the next write rotates (moved on when a rotation fails).
    rotate_at: u64,
    /// Goes up each time another file is opened (rotation, reopening): see
    /// [`AuditWriter::files`].
    generation: u64,
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
    /// Opens (creating, mode 0600) `path` for appending, never rotated. A torn last line is
    /// closed with a newline so the next record starts whole.
    pub fn open(path: &Path) -> Result<Self, WriteError> {
        Self::open_rotating(path, Rotation::NEVER)
    }

    /// [`AuditWriter::open`], rotated as `rotation` says.
    pub fn open_rotating(path: &Path, rotation: Rotation) -> Result<Self, WriteError> {
        let (file, size) = open_log(path)?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
            pending: Vec::with_capacity(PENDING_LIMIT),
            pending_records: 0,
            unwritten: 0,
            maybe_torn: false,
            rotation,
            size,
            rotate_at: rotation.max_bytes,
            generation: 0,
        })
    }

    /// Goes up each time the writer opens another file (a rotation, a reopening): the
    /// identities [`AuditWriter::files`] gives may then have changed.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Device and inode (`st_dev`, `st_ino`) of the open log file and of the rotated files
    /// that exist (`PATH.1` .. `PATH.<keep>`): what self-protection guards.
    pub fn files(&self) -> Vec<(u64, u64)> {
        use std::os::unix::fs::MetadataExt as _;
        let open = self.file.metadata().ok();
        let rotated = (1..=self.rotation.keep)
            .filter_map(|n| std::fs::metadata(rotated_path(&self.path, n)).ok());
        open.into_iter()
            .chain(rotated)
            .map(|m| (m.dev(), m.ino()))
            .collect()
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the path no longer names the open file: it was deleted, or moved (and maybe
    /// replaced by another file). `false` when that cannot be told.
    pub fn detached(&self) -> bool {
        use std::os::unix::fs::MetadataExt as _;
        let Ok(open) = self.file.metadata() else {
            return false;
        };
        match std::fs::metadata(&self.path) {
            Ok(named) => (named.dev(), named.ino()) != (open.dev(), open.ino()),
            Err(err) => err.kind() == std::io::ErrorKind::NotFound,
        }
    }

    /// Opens the path again (the log was deleted or moved): the next records go to the file
    /// it names now, created if need be. Gathered event records are kept for it.
    pub fn reopen(&mut self) -> Result<(), WriteError> {
        (self.file, self.size) = open_log(&self.path)?;
        self.maybe_torn = false;
        self.generation += 1;
        Ok(())
    }

    /// Writes one record as one whole line. Event records are gathered and written together
    /// (at 64 KiB, at [`AuditWriter::flush`], or before the next durable record, so the order
    /// of the log is the order of the calls); lifecycle and action records are written at once
    /// and synced to disk. Every `write` call carries whole lines only.
    pub fn write(&mut self, record: &Record) -> Result<(), WriteError> {
        if !record.is_durable() {
            // Serialized in place after the gathered lines; a record that fails halfway is
            // taken back out, so only whole lines are ever written.
            let start = self.pending.len();
            if let Err(err) = serde_json::to_writer(&mut self.pending, &envelope(record)) {
                self.pending.truncate(start);
                return Err(err.into());
            }
            self.pending.push(b'\n');
            self.pending_records += 1;
            if self.pending.len() >= PENDING_LIMIT {
                self.flush()?;
            }
            return Ok(());
        }
        let line = Self::line_of(record)?;
        self.write_durable_line(&line)
    }

    /// `record` as one line, stamped now (for a durable record written later, with
    /// [`AuditWriter::write_durable_line`]).
    pub fn line_of(record: &Record) -> Result<Vec<u8>, serde_json::Error> {
        let mut line = serde_json::to_vec(&envelope(record))?;
        line.push(b'\n');
        Ok(line)
    }

    /// Writes a durable record's line (from [`AuditWriter::line_of`]) after the gathered
    /// event records, and syncs it to disk.
    pub fn write_durable_line(&mut self, line: &[u8]) -> Result<(), WriteError> {
        self.flush()?;
        self.write_durable_line_first(line)
    }

    /// Writes a durable record's line ahead of the gathered event records (the first record
    /// of a file opened again), and syncs it.
    pub fn write_durable_line_first(&mut self, line: &[u8]) -> Result<(), WriteError> {
        self.put(line, 1)?;
        self.file.sync_data().map_err(|source| {
            self.unwritten += 1;
            self.write_err(source)
        })
    }

    /// Writes the gathered event records (one `write` call).
    pub fn flush(&mut self) -> Result<(), WriteError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        let records = std::mem::take(&mut self.pending_records);
        let result = self.put(&pending, records);
        self.pending = pending;
        self.pending.clear();
        result
    }

    /// How many records failed writes left unwritten (or in part) since the last call.
    pub fn take_unwritten(&mut self) -> u64 {
        std::mem::take(&mut self.unwritten)
    }

    /// Writes `bytes` (`records` whole lines) with one `write_all`, rotating first when they
    /// would take the log past its size. A write that fails part-way is cut off the file, so
    /// lines are whole and a batch is in the log entirely or not at all; when the cut fails,
    /// the next write closes the torn line.
    fn put(&mut self, bytes: &[u8], records: u64) -> Result<(), WriteError> {
        if self.maybe_torn {
            self.size = close_torn_tail(&mut self.file).map_err(|source| {
                self.unwritten += records;
                self.write_err(source)
            })?;
            self.maybe_torn = false;
        }
        let len = bytes.len() as u64;
        if self.rotation.max_bytes > 0 && self.size > 0 && self.size + len > self.rotate_at {
            match self.rotate() {
                Ok(()) => self.rotate_at = self.rotation.max_bytes,
                Err(err) => {
                    tracing::warn!(
                        "cannot rotate the audit log {}: {err}; it grows past its size until the next try",
                        self.path.display()
                    );
                    self.rotate_at = self.size + self.rotation.max_bytes;
                }
            }
        }
        match self.file.write_all(bytes) {
            Ok(()) => {
                self.size += len;
                Ok(())
            }
            Err(source) => {
                // Part of `bytes` may be in the file: cut it off (a full disk allows that), else
                // the next write closes the torn line.
                if self.file.set_len(self.size).is_err() {
                    self.maybe_torn = true;
                }
                self.unwritten += records;
                Err(self.write_err(source))
            }
        }
    }

    /// Renames the log `PATH.1` (shifting the older ones, dropping the oldest) and opens a
    /// new one.
    fn rotate(&mut self) -> std::io::Result<()> {
        let keep = self.rotation.keep.max(1);
        let numbered = |n: u32| rotated_path(&self.path, n);
        for n in (1..keep).rev() {
            match std::fs::rename(numbered(n), numbered(n + 1)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        std::fs::rename(&self.path, numbered(1))?;
        self.file = open_append(&self.path)?;
        self.size = 0;
        self.generation += 1;
        // The renames and the new file survive a power loss with their directory.
        if let Some(dir) = self.path.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    }

    fn write_err(&self, source: std::io::Error) -> WriteError {
        WriteError::Write {
            path: self.path.clone(),
            source,
        }
    }
}

/// The `n`th rotated log of `path` (`PATH.n`; 1 is the newest).
pub fn rotated_path(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// `record` with its timestamp (now).
fn envelope(record: &Record) -> Envelope<'_> {
    Envelope {
        ts: timestamp(SystemTime::now()),
        record,
    }
}

/// Opens the log at `path` ([`open_append`]) with a torn last line closed; returns the file
/// and its size.
fn open_log(path: &Path) -> Result<(File, u64), WriteError> {
    let open_err = |source| WriteError::Open {
        path: path.to_path_buf(),
        source,
    };
    let mut file = open_append(path).map_err(open_err)?;
    let size = close_torn_tail(&mut file).map_err(open_err)?;
    Ok((file, size))
}

/// Opens `path` for appending (created with mode 0600). A symbolic link is refused
/// (`O_NOFOLLOW`): one planted at the log's path in a shared directory would make the engine,
/// as root, append to whatever file it names. A log that someone other than root can write is
/// opened with a warning: its records can be altered.
fn open_append(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::MetadataExt as _;
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|err| {
            if err.raw_os_error() == Some(libc::ELOOP) {
                std::io::Error::other(
                    "it is a symbolic link (refused: give the path of the file itself)",
                )
            } else {
                err
            }
        })?;
    let meta = file.metadata()?;
    if meta.uid() != 0 || meta.mode() & 0o022 != 0 {
        tracing::warn!(
            "the audit log {} can be written by a user other than root (owner uid {}, mode {:o}): its records can be altered",
            path.display(),
            meta.uid(),
            meta.mode() & 0o7777
        );
    }
    Ok(file)
}

/// Ends `file` with a newline when its last byte is not one (a torn line); returns its size.
fn close_torn_tail(file: &mut File) -> std::io::Result<u64> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(0);
    }
    let mut last = [0u8; 1];
    file.seek(SeekFrom::Start(len - 1))?;
    file.read_exact(&mut last)?;
    if last[0] == b'\n' {
        return Ok(len);
    }
    file.write_all(b"\n")?;
    Ok(len + 1)
}

impl Drop for AuditWriter {
    fn drop(&mut self) {
        // Best effort: an error here has nowhere to go, and the lines are whole either way.
        let _ = self.flush();
    }
}

pub use super::timestamp::timestamp;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::io::Write as _;

    use super::*;
    use crate::audit::{
        AuditReader, ReadSummary,
        test_records::{event, stop},
    };

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
        w.write(&stop("t")).unwrap();
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
    fn the_files_to_guard_follow_rotation_and_reopening() {
        use std::os::unix::fs::MetadataExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let rotation = Rotation {
            max_bytes: 300,
            keep: 2,
        };
        let id = |p: &Path| {
            let m = std::fs::metadata(p).unwrap();
            (m.dev(), m.ino())
        };
        let mut w = AuditWriter::open_rotating(&path, rotation).unwrap();
        assert_eq!((w.generation(), w.files()), (0, vec![id(&path)]));
        while w.generation() == 0 {
            w.write(&event(1)).unwrap();
            w.flush().unwrap();
        }
        let mut want = vec![id(&path), id(&rotated_path(&path, 1))];
        let mut files = w.files();
        want.sort_unstable();
        files.sort_unstable();
        assert_eq!(files, want, "the new file and the rotated one");
        std::fs::remove_file(&path).unwrap();
        let before = w.generation();
        w.reopen().unwrap();
        assert_eq!(w.generation(), before + 1);
        assert!(w.files().contains(&id(&path)), "the reopened file");
    }

    #[test]
    fn a_log_past_its_size_is_rotated_between_whole_lines_keeping_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let rotation = Rotation {
            max_bytes: 300,
            keep: 2,
        };
        let mut w = AuditWriter::open_rotating(&path, rotation).unwrap();
        for n in 0..20 {
            w.write(&event(n)).unwrap();
            w.flush().unwrap();
        }
        drop(w);
        let numbers = |p: &Path| -> Vec<u64> {
            let (records, summary) = AuditReader::read_path(p).unwrap();
            assert_eq!((summary.torn_tail, summary.corrupt), (0, 0));
            records
                .iter()
                .map(|r| r["event"]["n"].as_u64().unwrap())
                .collect()
        };
        let (older, newer, current) = (
            numbers(&rotated_path(&path, 2)),
            numbers(&rotated_path(&path, 1)),
            numbers(&path),
        );
        assert!(!rotated_path(&path, 3).exists(), "keep: 2");
        for file in [&rotated_path(&path, 2), &rotated_path(&path, 1), &path] {
            assert!(std::fs::metadata(file).unwrap().len() <= 300, "{file:?}");
        }
        let all: Vec<u64> = older
            .iter()
            .chain(&newer)
            .chain(&current)
            .copied()
            .collect();
        assert_eq!(all.last(), Some(&19));
        assert!(
            all.windows(2).all(|w| w[1] == w[0] + 1),
            "in order: {all:?}"
        );
        assert!(
            !older.is_empty() && all[0] > 0,
            "the oldest were removed: {all:?}"
        );
        // Reopened, the writer knows the size again: the limit still holds.
        for n in 20..30 {
            let mut w = AuditWriter::open_rotating(&path, rotation).unwrap();
            w.write(&event(n)).unwrap();
            w.flush().unwrap();
            assert!(std::fs::metadata(&path).unwrap().len() <= 300);
        }
        let newest: Vec<u64> = numbers(&rotated_path(&path, 1))
            .into_iter()
            .chain(numbers(&path))
            .collect();
        assert_eq!(newest.last(), Some(&29));
        assert!(newest.windows(2).all(|w| w[1] == w[0] + 1), "{newest:?}");
    }

    #[test]
    fn a_write_that_fails_part_way_is_closed_by_the_next_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let mut w = AuditWriter::open(&path).unwrap();
        w.write(&event(1)).unwrap();
        w.flush().unwrap();
        // What a write cut short by a full disk leaves, as the writer would see it.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"ts\":\"20")
            .unwrap();
        w.maybe_torn = true;
        w.write(&event(2)).unwrap();
        w.flush().unwrap();
        let (records, summary) = AuditReader::read_path(&path).unwrap();
        assert_eq!((summary.records, summary.corrupt), (2, 1), "{summary:?}");
        assert_eq!(records[1]["event"]["n"], 2);
    }

    #[test]
    fn unwritten_records_are_counted() {
        let mut w = AuditWriter::open(Path::new("/dev/full")).unwrap();
        w.write(&event(1)).unwrap();
        w.write(&event(2)).unwrap();
        assert!(w.flush().is_err());
        assert_eq!(w.take_unwritten(), 2);
        assert!(w.write(&Record::AuditLost(Default::default())).is_err());
        assert_eq!(w.take_unwritten(), 1);
        assert_eq!(w.take_unwritten(), 0);
    }

    #[test]
    fn a_symbolic_link_at_the_log_path_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("shadow");
        std::fs::write(&target, "root:x:0\n").unwrap();
        let path = dir.path().join("audit.jsonl");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let err = AuditWriter::open(&path).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "root:x:0\n");
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
