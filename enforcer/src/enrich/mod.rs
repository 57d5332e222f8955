//! Userspace enrichment: what an event needs that the kernel record does not carry, resolved
//! in userspace without global state, threads or async (plain `&mut self` calls from the
//! record handler).
//!
//! | resolver | owns |
//! |---|---|
//! | [`process_cache`] | process records by tgid (exe, argv, comm, uid, cgroup, container, exit), their identity under PID reuse (`(tgid, start time)`), the ancestor walk, the memory bound and eviction policy, reading `/proc` to seed and on a miss |
//! | [`container`] | container id and runtime from a cgroup path; choosing the cgroup path in `/proc/<pid>/cgroup` |
//! | [`cgroup_paths`] | cgroup id -> path, so an exec in a known cgroup reads nothing from `/proc` |
//! | `proc_read` | bounded reads of `/proc` files and their NUL-separated blocks |
//! | [`exec_blocks`] | completing a truncated exec command line or environment from `/proc/<pid>/cmdline`, `environ` |
//! | [`process_json`] | the JSON shape of process records that the policy evaluator reads (`process.*`, `process.ancestors.*`) |
//! | `process_part` | the same `process` object in typed form, for the events written without a JSON tree (fork, exit, exec) |
//! | `ancestry` | the typed ancestor chains, built and serialized once per parent and shared while the cache still agrees with them |
//! | [`Enricher`] | the facade the handler holds: a cache and the ancestor depth, producing a `process` object with `ancestors` and `container` |

mod ancestry;
mod cgroup_paths;
pub mod container;
pub mod exec_blocks;
mod lifecycle_event;
mod observe;
pub(crate) mod proc_read;
pub mod process_cache;
pub mod process_json;
pub(crate) mod process_part;

use std::path::Path;

use serde_json::{Value, json};

pub use lifecycle_event::LifecycleEvent;
use process_cache::{CacheConfig, DEFAULT_MAX_DEPTH, ProcessCache, SeedReport};

/// The enrichment facade: a process cache and the depth of ancestor chains.
#[derive(Debug)]
pub struct Enricher {
    cache: ProcessCache,
    max_depth: usize,
    cgroup_paths: cgroup_paths::CgroupPaths,
    lifecycle_chains: LifecycleChains,
    ancestry: ancestry::AncestryMemo,
}

/// Whether fork and exit events get the ancestor chain in their `process` object. Every
/// other event always does. A process's chain is already in the records of its exec (and of
/// whatever it does), so a fork or exit needs it only when a rule of its kind may read it;
/// in an exec storm, it was about a third of the audit log's bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LifecycleChains {
    /// Fork events get `process.ancestors`.
    pub fork: bool,
    /// Exit events get `process.ancestors`.
    pub exit: bool,
}

impl LifecycleChains {
    /// Both kinds get the chain.
    pub const ALL: LifecycleChains = LifecycleChains {
        fork: true,
        exit: true,
    };
}

/// Whether an enriched `process` object gets its `ancestors` array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Chain {
    /// With `ancestors` (parent first).
    With,
    /// Without it.
    Without,
}

impl Default for Enricher {
    fn default() -> Self {
        Self::new(CacheConfig::default())
    }
}

impl Enricher {
    /// An enricher with an empty cache of `config` and ancestor chains of
    /// [`DEFAULT_MAX_DEPTH`].
    pub fn new(config: CacheConfig) -> Self {
        Self {
            cache: ProcessCache::new(config),
            max_depth: DEFAULT_MAX_DEPTH,
            cgroup_paths: cgroup_paths::CgroupPaths::default(),
            lifecycle_chains: LifecycleChains::ALL,
            ancestry: ancestry::AncestryMemo::default(),
        }
    }

    /// Sets which lifecycle events (fork, exit) get the ancestor chain (all by default).
    pub fn with_lifecycle_chains(mut self, chains: LifecycleChains) -> Self {
        self.lifecycle_chains = chains;
        self
    }

    /// Changes which lifecycle events get the ancestor chain (a policy reload).
    pub fn set_lifecycle_chains(&mut self, chains: LifecycleChains) {
        self.lifecycle_chains = chains;
    }

    /// Sets the depth of ancestor chains (capped at [`process_cache::MAX_DEPTH_LIMIT`]).
    pub fn with_max_depth(mut self, max_depth: usize) -> Self {
        self.max_depth = max_depth.min(process_cache::MAX_DEPTH_LIMIT);
        self
    }

    /// The cache.
    pub fn cache(&self) -> &ProcessCache {
        &self.cache
    }

    /// The cache, to feed it exec/fork/exit records.
    pub fn cache_mut(&mut self) -> &mut ProcessCache {
        &mut self.cache
    }

    /// Seeds the cache from `procfs_root` (see [`ProcessCache::seed_from_proc`]).
    pub fn seed_from_proc(&mut self, procfs_root: &Path) -> procfs::ProcResult<SeedReport> {
        self.cache.seed_from_proc(procfs_root)
    }

    /// The `process` object (with `ancestors` and `container`, see [`process_json`]) of the
    /// incarnation of `tgid` that started at `start_ns` (nanoseconds since boot); only
    /// `{"pid": tgid}` when that incarnation is unknown to the cache and `/proc`.
    pub fn process_json_for(&mut self, tgid: u32, start_ns: u64) -> Value {
        if self.cache.lookup(tgid, start_ns).is_none() {
            return json!({ "pid": tgid });
        }
        self.json_of(tgid, Chain::With)
    }

    /// Like [`Enricher::process_json_for`] for an event at `event_ns` whose process start time
    /// is not known (see [`ProcessCache::lookup_at`]); `ancestors` only with [`Chain::With`].
    pub fn process_json_at(&mut self, tgid: u32, event_ns: u64, chain: Chain) -> Value {
        if !self.knows_at(tgid, event_ns, false) {
            return json!({ "pid": tgid });
        }
        self.json_of(tgid, chain)
    }

    /// Whether the cache holds the incarnation of `tgid` an event at `event_ns` is about
    /// (then [`ProcessCache::peek`] gives it). `exiting`: the event is the exit that has just
    /// marked the live cached record exited, which answers without reading `/proc` (see
    /// [`ProcessCache::lookup_cached_at`]); otherwise, or when it does not fit,
    /// [`ProcessCache::lookup_at`].
    pub(crate) fn knows_at(&mut self, tgid: u32, event_ns: u64, exiting: bool) -> bool {
        (exiting && self.cache.lookup_cached_at(tgid, event_ns).is_some())
            || self.cache.lookup_at(tgid, event_ns).is_some()
    }

    /// Like [`Enricher::enrich_process_at`] for the exit record that has just marked the live
    /// cached record of `tgid` exited: that record answers, `/proc` is not read (see
    /// [`ProcessCache::lookup_cached_at`]).
    pub fn enrich_exiting_process_at(
        &mut self,
        process: &mut Value,
        tgid: u32,
        event_ns: u64,
        chain: Chain,
    ) {
        let extra = if self.knows_at(tgid, event_ns, true) {
            self.json_of(tgid, chain)
        } else {
            json!({ "pid": tgid })
        };
        process_json::merge_missing(process, extra);
    }

    /// Adds what the cache knows of the process at `event_ns` to an event's `process` object
    /// (built from the kernel record) without overwriting a member it has (see
    /// [`process_json::merge_missing`]); `ancestors` only with [`Chain::With`].
    pub fn enrich_process_at(
        &mut self,
        process: &mut Value,
        tgid: u32,
        event_ns: u64,
        chain: Chain,
    ) {
        let extra = self.process_json_at(tgid, event_ns, chain);
        process_json::merge_missing(process, extra);
    }

    /// The JSON of the cached record of `tgid`, with its ancestors when `chain` says so.
    fn json_of(&mut self, tgid: u32, chain: Chain) -> Value {
        if chain == Chain::Without {
            return self
                .cache
                .peek(tgid)
                .map_or_else(|| json!({ "pid": tgid }), process_json::to_json);
        }
        let pids = self.cache.ancestor_pids(tgid, self.max_depth);
        let Some(rec) = self.cache.peek(tgid) else {
            return json!({ "pid": tgid });
        };
        let ancestors: Vec<_> = pids.iter().filter_map(|p| self.cache.peek(*p)).collect();
        process_json::process_with_ancestors(rec, &ancestors)
    }
}

#[cfg(test)]
mod cache_tests;
#[cfg(test)]
mod enricher_tests;
#[cfg(test)]
mod proptests;
