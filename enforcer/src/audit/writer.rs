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
}

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
        let open_err = |source| WriteError::Open { path: path.to_path_buf(), source };
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
        Ok(Self { file, path: path.to_path_buf(), line: Vec::with_capacity(1024) })
    }

    /// Writes one record as one line with one `write` call; lifecycle and action records are
    /// also synced to disk.
    pub fn write(&mut self, record: &Record) -> Result<(), WriteError> {
        self.line.clear();
        let envelope = Envelope { ts: timestamp(SystemTime::now()), record };
        serde_json::to_writer(&mut self.line, &envelope)?;
        self.line.push(b'\n');
        let write_err = |source| WriteError::Write { path: self.path.clone(), source };
        self.file.write_all(&self.line).map_err(write_err)?;
        if record.is_durable() {
            self.file.sync_data().map_err(write_err)?;
        }
        Ok(())
    }
}

/// RFC 3339 UTC timestamp with microseconds.
pub fn timestamp(at: SystemTime) -> String {
    humantime::format_rfc3339_micros(at).to_string()
}
