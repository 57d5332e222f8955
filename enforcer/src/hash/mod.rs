//! Content hashes of executed files (issue 6, "deny by content hash").
//!
//! This module owns turning an exec event into the SHA-256 of the file the process executed:
//! [`open`] finds that file (`/proc/<pid>/exe`, or the checked exec path), [`key`] is its
//! identity, [`cache`] remembers hashes by identity, [`budget`] and the size cap bound the
//! work, [`worker`] hashes off the event path, [`digest`] hashes, and [`ExecHasher`] puts them
//! together for the engine: a cache hit answers at once; a miss is queued and its result comes
//! back on the channel the engine's loop selects on, which then evaluates the hash rules.
//!
//! A hash that cannot be had (too large, budget spent, process gone, ...) is reported with a
//! reason and never allows anything: rules on other fields decide as they would without it.

pub mod budget;
pub mod cache;
pub mod digest;
pub mod error;
pub mod key;
pub mod open;
pub mod worker;

#[cfg(test)]
mod tests;

use std::{
    collections::HashMap,
    path::PathBuf,
    time::{Duration, Instant, SystemTime},
};

use serde_json::Value;
use tokio::sync::mpsc::UnboundedReceiver;

use self::{budget::ByteBudget, cache::HashCache, worker::Workers};
pub use self::{
    digest::{Hashed, Sha256Value, hex},
    error::Unavailable,
    key::FileKey,
    open::{KernelIdentity, Source},
    worker::Done,
};

/// Bounds and settings of the hasher.
#[derive(Clone, Debug)]
pub struct HashConfig {
    /// Larger files are not hashed (`too large`).
    pub max_size: u64,
    /// Most cached hashes.
    pub cache_entries: usize,
    /// Bytes per second the hasher may read (token bucket rate).
    pub bytes_per_s: u64,
    /// Bytes the hasher may read in a burst (token bucket size).
    pub burst_bytes: u64,
    /// Most files waiting to be hashed.
    pub queue: usize,
    /// Hashing threads.
    pub threads: usize,
    /// A file changed less than this long ago is hashed but not cached (see
    /// [`FileKey::is_settled`]).
    pub settle: Duration,
    /// The procfs root.
    pub proc_root: PathBuf,
}

impl Default for HashConfig {
    fn default() -> Self {
        Self {
            max_size: 256 << 20,
            cache_entries: 16_384,
            bytes_per_s: 128 << 20,
            burst_bytes: 1 << 30,
            queue: 64,
            threads: 1,
            settle: Duration::from_secs(1),
            proc_root: PathBuf::from("/proc"),
        }
    }
}

/// How a hash result was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Hashed for this event.
    Hashed,
    /// From the cache.
    Cached,
    /// Not available (see the reason).
    Unavailable,
}

impl Status {
    /// Name used in events (`exec.file.hash.status`).
    pub fn name(self) -> &'static str {
        match self {
            Status::Hashed => "hashed",
            Status::Cached => "cached",
            Status::Unavailable => "unavailable",
        }
    }
}

/// The hash of an exec's file, or why there is none, with how it was obtained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HashInfo {
    /// The hash or the reason.
    pub result: Result<Hashed, Unavailable>,
    /// How.
    pub status: Status,
    /// Where the bytes came from (when a file was opened).
    pub source: Option<Source>,
    /// The hashed file's identity (when a file was opened).
    pub key: Option<FileKey>,
    /// Time queued, microseconds (hashed results).
    pub queued_us: u64,
    /// Time hashing, microseconds (hashed results).
    pub took_us: u64,
}

impl HashInfo {
    /// A result with no hash, for `why`.
    pub fn unavailable(why: Unavailable, source: Option<Source>, key: Option<FileKey>) -> Self {
        Self {
            result: Err(why),
            status: Status::Unavailable,
            source,
            key,
            queued_us: 0,
            took_us: 0,
        }
    }

    /// The SHA-256 as lowercase hex, when known.
    pub fn sha256_hex(&self) -> Option<String> {
        self.result.as_ref().ok().map(|h| hex(&h.sha256))
    }

    /// The event's `exec.file.hash` (`sha256` only when known; `status`, and `reason` when
    /// unavailable; where it came from and what it cost).
    pub fn part(&self) -> HashPart {
        let (sha256, bytes, reason) = match &self.result {
            Ok(h) => (Some(hex(&h.sha256)), Some(h.bytes), None),
            Err(why) => (None, None, Some(why.to_string())),
        };
        let hashed = self.status == Status::Hashed;
        HashPart {
            bytes,
            queued_us: hashed.then_some(self.queued_us),
            reason,
            sha256,
            source: self.source.map(Source::name),
            status: self.status.name(),
            took_us: hashed.then_some(self.took_us),
        }
    }

    /// Writes [`HashInfo::part`] into an exec event's JSON as `exec.file.hash`.
    pub fn write_into(&self, event: &mut Value) {
        if let Some(Value::Object(file)) = event.pointer_mut("/exec/file")
            && let Ok(hash) = serde_json::to_value(self.part())
        {
            file.insert("hash".to_owned(), hash);
        }
    }
}

/// An exec event's `exec.file.hash`, as the audit log and the rules read it. Members are
/// declared in the order `serde_json`'s sorted maps write them.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct HashPart {
    /// Bytes hashed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    /// Time queued, microseconds (hashed for this event).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queued_us: Option<u64>,
    /// Why there is no hash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The SHA-256, lowercase hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Where the bytes came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<&'static str>,
    /// `hashed`, `cached` or `unavailable`.
    pub status: &'static str,
    /// Time hashing, microseconds (hashed for this event).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub took_us: Option<u64>,
}

/// What [`ExecHasher::begin`] gives: the answer now, or a ticket for a result to come.
#[derive(Debug)]
pub enum Begin {
    /// Known now (cache hit, or unavailable).
    Ready(HashInfo),
    /// Queued; the result arrives on the receiver with this id.
    Queued(u64),
}

/// The hasher of exec events: cache, bounds and worker threads.
#[derive(Debug)]
pub struct ExecHasher {
    cfg: HashConfig,
    cache: HashCache,
    budget: ByteBudget,
    workers: Workers,
    next_id: u64,
    /// Queued jobs: id -> where the file came from.
    pending: HashMap<u64, Source>,
}

impl ExecHasher {
    /// A hasher with `cfg`; results of queued jobs arrive on the returned receiver.
    pub fn start(cfg: HashConfig) -> std::io::Result<(Self, UnboundedReceiver<Done>)> {
        let (workers, done) = Workers::start(cfg.threads, cfg.queue)?;
        Ok((
            Self {
                cache: HashCache::new(cfg.cache_entries),
                budget: ByteBudget::new(cfg.bytes_per_s, cfg.burst_bytes, Instant::now()),
                cfg,
                workers,
                next_id: 0,
                pending: HashMap::new(),
            },
            done,
        ))
    }

    /// Starts hashing the executable of process `pid`, exec'd as `exec_path` (the kernel's
    /// identity of the file, when the record has it, allows the path when the process is gone).
    pub fn begin(&mut self, pid: u32, exec_path: &str, kernel: Option<&KernelIdentity>) -> Begin {
        let opened = match open::open_exe(&self.cfg.proc_root, pid, exec_path, kernel) {
            Ok(opened) => opened,
            Err(why) => return Begin::Ready(HashInfo::unavailable(why, None, None)),
        };
        let (source, key) = (Some(opened.source), Some(opened.key));
        if let Some(hit) = self.cache.get(&opened.key) {
            return Begin::Ready(HashInfo {
                result: Ok(hit),
                status: Status::Cached,
                source,
                key,
                queued_us: 0,
                took_us: 0,
            });
        }
        let size = opened.key.size;
        if size > self.cfg.max_size {
            let why = Unavailable::TooLarge {
                size,
                cap: self.cfg.max_size,
            };
            return Begin::Ready(HashInfo::unavailable(why, source, key));
        }
        let now = Instant::now();
        if !self.budget.take(size, now) {
            return Begin::Ready(HashInfo::unavailable(Unavailable::Budget, source, key));
        }
        let id = self.next_id;
        self.next_id += 1;
        let job = worker::Job {
            id,
            file: opened.file,
            key: opened.key,
            cap: self.cfg.max_size,
            queued: now,
        };
        if self.workers.submit(job).is_err() {
            return Begin::Ready(HashInfo::unavailable(Unavailable::QueueFull, source, key));
        }
        self.pending.insert(id, opened.source);
        Begin::Queued(id)
    }

    /// The result of a queued job (cached when the file is settled).
    pub fn finish(&mut self, done: Done) -> (u64, HashInfo) {
        let source = self.pending.remove(&done.id);
        if let Ok(hashed) = &done.result
            && done.key.is_settled(SystemTime::now(), self.cfg.settle)
        {
            self.cache.insert(done.key, *hashed);
        }
        let status = if done.result.is_ok() {
            Status::Hashed
        } else {
            Status::Unavailable
        };
        let info = HashInfo {
            result: done.result,
            status,
            source,
            key: Some(done.key),
            queued_us: done.queued_us,
            took_us: done.took_us,
        };
        (done.id, info)
    }

    /// Jobs queued or being hashed.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Hashes cached.
    pub fn cached(&self) -> usize {
        self.cache.len()
    }
}
