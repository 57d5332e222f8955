//! The process cache: what userspace knows about each process, keyed by tgid. Owns the
//! process records, their identity under PID reuse, the ancestor walk and the memory bound.
//! Records come from exec/fork/exit records ([`ProcessCache::on_exec`], [`ProcessCache::on_fork`],
//! [`ProcessCache::on_exit`]) and from `/proc` (see `proc_load.rs`: seeding at start and
//! loading on a miss).
//!
//! # Identity
//! A process incarnation is `(tgid, start)`. The start time is kept as nanoseconds since boot
//! (CLOCK_BOOTTIME, the kernel's `task->start_boottime`); `/proc/<pid>/stat` gives it in clock
//! ticks (`USER_HZ`, 10 ms), truncated. So two start times name the same incarnation exactly
//! when they fall in the same clock tick ([`ProcessCache::same_start`]). A pid cannot be reused
//! within one tick: the old process must exit and the pid space wrap around first.
//!
//! A record is never merged with another incarnation: an event for a later start replaces the
//! record, one for an earlier start (a late event of a previous incarnation) is ignored, and
//! a look-up for a start the record does not have finds nothing rather than the wrong process.
//! `ppid` is the parent at fork/exec time as the kernel reported it; reparenting after the
//! parent's exit is not followed. An ancestor must have started no later than its child, which
//! rejects a parent pid that has since been reused.
//!
//! # Memory bound
//! At most `capacity` records. When an insert finds the cache full, a batch of
//! `max(1, capacity / 64)` records is evicted, in this order: exited processes whose grace
//! period is over (least recently used first); then live processes, least recently used first
//! (a live process can be read back from `/proc` on the next miss); last exited processes
//! still in their grace period (they cannot be read back: late events of a just-exited process
//! must keep resolving). "Use" is an insert, an update or a look-up that returned the record.

use foldhash::{HashMap, HashMapExt as _};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::container::container_id;

mod lookup;
mod proc_load;
mod record;

pub use proc_load::{SeedReport, read_record};
pub(crate) use record::cut;
pub use record::{ExecInfo, Exit, Origin, ProcessRecord, bound_argv};

/// Default number of records kept.
pub const DEFAULT_CAPACITY: usize = 65_536;
/// Default time an exited process stays preferred over live ones when evicting.
pub const DEFAULT_EXIT_GRACE: Duration = Duration::from_secs(30);
/// Default depth of an ancestor walk.
pub const DEFAULT_MAX_DEPTH: usize = 16;
/// Deepest ancestor walk allowed whatever the caller asks.
pub const MAX_DEPTH_LIMIT: usize = 64;
/// Bytes of argv a record keeps (each argument counts its length plus one NUL).
pub const ARGV_MAX_BYTES: usize = 4096;
/// Bytes of an executable or cgroup path a record keeps.
pub const PATH_MAX_BYTES: usize = 4096;
/// Bytes of comm a record keeps.
pub const COMM_MAX_BYTES: usize = 64;

/// Settings of a [`ProcessCache`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheConfig {
    /// Most records kept (at least 1).
    pub capacity: usize,
    /// How long an exited process is kept in preference to live ones.
    pub exit_grace: Duration,
    /// Where `/proc` is read from on a miss.
    pub procfs_root: PathBuf,
    /// Nanoseconds per `/proc` clock tick (`1e9 / USER_HZ`).
    pub tick_ns: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            capacity: DEFAULT_CAPACITY,
            exit_grace: DEFAULT_EXIT_GRACE,
            procfs_root: PathBuf::from("/proc"),
            tick_ns: 1_000_000_000 / procfs::ticks_per_second().max(1),
        }
    }
}

/// Counters of a [`ProcessCache`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Records replaced by a later incarnation of the same pid.
    pub replaced: u64,
    /// Events for an earlier incarnation than the cached one, ignored.
    pub stale_ignored: u64,
    /// Records evicted to stay within capacity.
    pub evicted: u64,
    /// Records read from `/proc`.
    pub proc_loads: u64,
    /// `/proc` reads that found no (matching) process.
    pub proc_misses: u64,
}

#[derive(Debug)]
struct Entry {
    rec: ProcessRecord,
    last_use: u64,
}

/// Process records by tgid, bounded and PID-reuse safe (see the module documentation).
#[derive(Debug)]
pub struct ProcessCache {
    entries: HashMap<u32, Entry>,
    config: CacheConfig,
    uses: u64,
    stats: CacheStats,
}

impl ProcessCache {
    /// An empty cache.
    pub fn new(mut config: CacheConfig) -> Self {
        config.capacity = config.capacity.max(1);
        config.tick_ns = config.tick_ns.max(1);
        Self {
            entries: HashMap::new(),
            config,
            uses: 0,
            stats: CacheStats::default(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &CacheConfig {
        &self.config
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The counters.
    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    /// Whether two start times name the same incarnation (same clock tick).
    pub fn same_start(&self, a_ns: u64, b_ns: u64) -> bool {
        a_ns / self.config.tick_ns == b_ns / self.config.tick_ns
    }

    /// The cached record of `tgid`, whatever its incarnation, without loading or marking use.
    pub fn peek(&self, tgid: u32) -> Option<&ProcessRecord> {
        self.entries.get(&tgid).map(|e| &e.rec)
    }

    /// Iterates over the cached records (no particular order).
    pub fn records(&self) -> impl Iterator<Item = &ProcessRecord> {
        self.entries.values().map(|e| &e.rec)
    }

    fn touch(&mut self, tgid: u32) -> Option<&ProcessRecord> {
        self.uses += 1;
        let uses = self.uses;
        self.entries.get_mut(&tgid).map(|e| {
            e.last_use = uses;
            &e.rec
        })
    }

    /// Stores `rec` under the identity rules: the same incarnation is overwritten, a later one
    /// replaces, an earlier one is ignored (returns false). Makes room first when full.
    pub fn insert(&mut self, rec: ProcessRecord) -> bool {
        let tgid = rec.tgid;
        if let Some(cached) = self.entries.get(&tgid).map(|e| e.rec.start_ns) {
            let tick = self.config.tick_ns;
            if rec.start_ns / tick < cached / tick {
                self.stats.stale_ignored += 1;
                return false;
            }
            if !self.same_start(rec.start_ns, cached) {
                self.stats.replaced += 1;
            }
        } else {
            self.make_room();
        }
        self.entries.insert(tgid, Entry { rec, last_use: 0 });
        self.touch(tgid);
        true
    }

    /// Evicts a batch when the cache is full (order in the module documentation).
    fn make_room(&mut self) {
        if self.entries.len() < self.config.capacity {
            return;
        }
        let now = Instant::now();
        let grace = self.config.exit_grace;
        let mut order: Vec<(u8, u64, u32)> = self
            .entries
            .iter()
            .map(|(&tgid, e)| {
                let class = match e.rec.exited_at {
                    Some(x) if now.saturating_duration_since(x.at) >= grace => 0,
                    None => 1,
                    Some(_) => 2,
                };
                (class, e.last_use, tgid)
            })
            .collect();
        let batch = (self.config.capacity / 64).clamp(1, order.len().max(1));
        if batch < order.len() {
            order.select_nth_unstable(batch - 1);
        }
        for &(_, _, tgid) in order.iter().take(batch) {
            self.entries.remove(&tgid);
            self.stats.evicted += 1;
        }
    }

    /// Removes exited records whose grace period is over; returns how many.
    pub fn evict_expired(&mut self) -> usize {
        let now = Instant::now();
        let grace = self.config.exit_grace;
        let before = self.entries.len();
        self.entries.retain(|_, e| {
            e.rec
                .exited_at
                .is_none_or(|x| now.saturating_duration_since(x.at) < grace)
        });
        let gone = before - self.entries.len();
        self.stats.evicted += gone as u64;
        gone
    }

    /// Records an exec: the same incarnation is updated in place (new exe, argv, comm, uid,
    /// cgroup), a later incarnation replaces the record, an earlier one is ignored.
    pub fn on_exec(&mut self, info: ExecInfo) {
        let (argv, argv_truncated) = bound_argv(info.argv);
        let cgroup_path = info.cgroup_path.map(|p| cut(p, PATH_MAX_BYTES));
        let same = self
            .entries
            .get(&info.tgid)
            .is_some_and(|e| self.same_start(e.rec.start_ns, info.start_ns));
        let (exited_at, ppid, cgroup_id, cgroup_path) = match self.entries.get(&info.tgid) {
            // Keep what the exec does not tell over what is known of this incarnation.
            Some(e) if same => (
                e.rec.exited_at,
                if info.ppid == 0 {
                    e.rec.ppid
                } else {
                    info.ppid
                },
                info.cgroup_id.or(e.rec.cgroup_id),
                cgroup_path.or_else(|| e.rec.cgroup_path.clone()),
            ),
            _ => (None, info.ppid, info.cgroup_id, cgroup_path),
        };
        let container = cgroup_path.as_deref().and_then(container_id);
        self.insert(ProcessRecord {
            tgid: info.tgid,
            ppid,
            start_ns: info.start_ns,
            exe: cut(info.exe, PATH_MAX_BYTES),
            comm: cut(info.comm, COMM_MAX_BYTES),
            argv,
            argv_truncated,
            uid: Some(info.uid),
            cgroup_id,
            cgroup_path,
            container,
            exited_at,
            origin: Origin::Exec,
        });
    }

    /// Records a fork: the child inherits exe, argv, comm, uid and cgroup of the parent
    /// incarnation that started no later than it (from the cache, else `/proc`); with no such
    /// parent the child's record holds only its identity. A thread (`child == parent`) is
    /// ignored, and so is a fork of an incarnation already known (its exec arrived first).
    pub fn on_fork(&mut self, parent_tgid: u32, child_tgid: u32, child_start_ns: u64) {
        let known = self
            .entries
            .get(&child_tgid)
            .is_some_and(|e| self.same_start(e.rec.start_ns, child_start_ns));
        if parent_tgid == child_tgid || known {
            return;
        }
        let parent = self.parent_of(parent_tgid, child_start_ns).cloned();
        let rec = match parent {
            Some(p) => ProcessRecord {
                tgid: child_tgid,
                ppid: parent_tgid,
                start_ns: child_start_ns,
                exited_at: None,
                origin: Origin::Fork,
                ..p
            },
            None => ProcessRecord {
                tgid: child_tgid,
                ppid: parent_tgid,
                start_ns: child_start_ns,
                exe: String::new(),
                comm: String::new(),
                argv: Vec::new(),
                argv_truncated: false,
                uid: None,
                cgroup_id: None,
                cgroup_path: None,
                container: None,
                exited_at: None,
                origin: Origin::Fork,
            },
        };
        self.insert(rec);
    }

    /// Marks the cached record of `tgid` exited (the first exit report wins). Returns whether a
    /// live record was marked.
    pub fn on_exit(&mut self, tgid: u32, code: i32, signal: i32) -> bool {
        match self.entries.get_mut(&tgid) {
            Some(e) if e.rec.exited_at.is_none() => {
                e.rec.exited_at = Some(Exit {
                    at: Instant::now(),
                    code,
                    signal,
                });
                true
            }
            _ => false,
        }
    }
}
