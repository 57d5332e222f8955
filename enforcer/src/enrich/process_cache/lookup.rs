//! Look-ups of the process cache: by exact incarnation, by event time, the newest known, and
//! the ancestor walk. A miss reads `/proc` (see `proc_load.rs`).

use super::{MAX_DEPTH_LIMIT, ProcessCache, ProcessRecord};

impl ProcessCache {
    /// The incarnation of `tgid` that started at `start_ns` (same tick), from the cache or, on
    /// a miss or another incarnation, from `/proc`. `None` when neither has it: an event of
    /// an old incarnation is never answered with the new one.
    pub fn lookup(&mut self, tgid: u32, start_ns: u64) -> Option<&ProcessRecord> {
        let hit = self
            .entries
            .get(&tgid)
            .is_some_and(|e| self.same_start(e.rec.start_ns, start_ns));
        if !hit {
            let rec = self.load(tgid)?;
            let ok = self.same_start(rec.start_ns, start_ns);
            // /proc holds the newest incarnation: keep it even when it is not the one asked for.
            self.insert(rec);
            if !ok {
                self.stats.proc_misses += 1;
                return None;
            }
        }
        self.touch(tgid)
    }

    /// The incarnation of `tgid` that existed at `event_ns` (nanoseconds since boot): one that
    /// started no later than the event's clock tick. A live cached record that fits is the
    /// answer; one that started after the event means the event's process is gone (`None`);
    /// for an exited or missing record `/proc` is read, and a later incarnation found there
    /// that fits the event replaces the exited one.
    pub fn lookup_at(&mut self, tgid: u32, event_ns: u64) -> Option<&ProcessRecord> {
        let tick = self.config.tick_ns;
        let fits = |r: &ProcessRecord| r.start_ns / tick <= event_ns / tick;
        let cached = self
            .entries
            .get(&tgid)
            .map(|e| (fits(&e.rec), e.rec.exited_at.is_some(), e.rec.start_ns));
        match cached {
            Some((true, false, _)) => {}
            Some((false, _, _)) => return None,
            Some((true, true, start)) => {
                if let Some(rec) = self.load(tgid)
                    && fits(&rec)
                    && !self.same_start(rec.start_ns, start)
                {
                    self.insert(rec);
                }
            }
            None => {
                let rec = self.load(tgid)?;
                let ok = fits(&rec);
                self.insert(rec);
                if !ok {
                    return None;
                }
            }
        }
        self.touch(tgid)
    }

    /// The cached record of `tgid` when it started no later than `event_ns`'s clock tick,
    /// live or exited, without reading `/proc`. For the exit record of a process whose live
    /// record [`ProcessCache::on_exit`] has just marked: that record is the exiting
    /// incarnation, and [`ProcessCache::lookup_at`] would read `/proc` for an exited record
    /// (a zombie or nothing: the same answer, at the cost of four file reads per exit).
    pub fn lookup_cached_at(&mut self, tgid: u32, event_ns: u64) -> Option<&ProcessRecord> {
        let tick = self.config.tick_ns;
        let fits = self
            .entries
            .get(&tgid)
            .is_some_and(|e| e.rec.start_ns / tick <= event_ns / tick);
        if !fits {
            return None;
        }
        self.touch(tgid)
    }

    /// The newest known incarnation of `tgid`: the cached live record, else `/proc`'s (which
    /// replaces an exited cached one), else the cached exited record.
    pub fn lookup_or_load(&mut self, tgid: u32) -> Option<&ProcessRecord> {
        let live = self
            .entries
            .get(&tgid)
            .is_some_and(|e| e.rec.exited_at.is_none());
        if !live && let Some(rec) = self.load(tgid) {
            self.insert(rec);
        }
        self.touch(tgid)
    }

    /// The parent incarnation of a child that started at `child_start_ns`: the record of
    /// `ppid` if it started no later than the child (from the cache, else `/proc`).
    pub(super) fn parent_of(&mut self, ppid: u32, child_start_ns: u64) -> Option<&ProcessRecord> {
        let tick = self.config.tick_ns;
        let before = |r: &ProcessRecord| r.start_ns / tick <= child_start_ns / tick;
        match self.entries.get(&ppid) {
            Some(e) if before(&e.rec) => {}
            Some(_) => return None,
            None => {
                let rec = self.load(ppid)?;
                let ok = before(&rec);
                self.insert(rec);
                if !ok {
                    return None;
                }
            }
        }
        self.touch(ppid)
    }

    /// The pids of the ancestors of the cached record of `tgid`, parent first: at most
    /// `max_depth` (itself at most [`MAX_DEPTH_LIMIT`]), ending after pid 1, before pid 0, at a
    /// parent that is unknown (cache and `/proc`) or started after its child, or where a pid
    /// would repeat (a loop). Missing parents are read from `/proc`.
    pub fn ancestor_pids(&mut self, tgid: u32, max_depth: usize) -> Vec<u32> {
        let depth = max_depth.min(MAX_DEPTH_LIMIT);
        let mut chain: Vec<u32> = Vec::with_capacity(depth);
        let Some(first) = self.entries.get(&tgid) else {
            return chain;
        };
        let (mut ppid, mut start) = (first.rec.ppid, first.rec.start_ns);
        while chain.len() < depth && ppid != 0 && ppid != tgid && !chain.contains(&ppid) {
            let Some(parent) = self.parent_of(ppid, start) else {
                break;
            };
            let next = (parent.ppid, parent.start_ns);
            chain.push(ppid);
            if ppid == 1 {
                break;
            }
            (ppid, start) = next;
        }
        // Loading a parent can evict under a tiny capacity: keep the records still present.
        chain.retain(|pid| self.entries.contains_key(pid));
        chain
    }

    /// The ancestor records of the cached record of `tgid`, parent first (see
    /// [`ProcessCache::ancestor_pids`]).
    pub fn ancestors(&mut self, tgid: u32, max_depth: usize) -> Vec<&ProcessRecord> {
        let pids = self.ancestor_pids(tgid, max_depth);
        pids.iter().filter_map(|pid| self.peek(*pid)).collect()
    }
}
