//! Feeds decoded kernel records into the process cache (fork, exec, exit) and adds what the
//! cache knows (parent chain, container, start time) to every event's `process` object, as a
//! JSON tree or in typed form ([`ProcessPart`]).

use std::path::Path;

use enforcer_common::event::{EventHeader, ExecRecord};
use serde_json::Value;

use super::{Chain, Enricher, process_cache::ExecInfo, process_part::ProcessPart};
use crate::pipeline::{decode::Decoded, exec_typed::ExecEvent, process_event::split_status};

/// Where `/proc` is.
const PROC: &str = "/proc";

impl Enricher {
    /// Updates the cache from `record`, then enriches `event` (its JSON) in place: a fork or
    /// exit gets the ancestor chain only as [`super::LifecycleChains`] says.
    pub fn observe(&mut self, record: &Decoded, event: &mut Value) {
        let header = *record.header();
        let chain = match record {
            Decoded::Fork(_) if !self.lifecycle_chains.fork => Chain::Without,
            Decoded::Exit(_) if !self.lifecycle_chains.exit => Chain::Without,
            _ => Chain::With,
        };
        if self.observe_lifecycle(record) {
            if let Some(process) = event.get_mut("process") {
                self.enrich_exiting_process_at(process, header.tgid, header.timestamp_ns, chain);
            }
            return;
        }
        // A successful exec (the tracepoint's record) is handled in typed form
        // ([`Enricher::observe_exec`]); an exec record here is the LSM hook's, which the cache
        // does not take (the exec may still fail).
        if let Some(process) = event.get_mut("process") {
            self.enrich_process_at(process, header.tgid, header.timestamp_ns, chain);
        }
    }

    /// Updates the cache from a fork or an exit record (nothing for the others), all a
    /// lifecycle record does when no rule and no sink reads its event. `true` for the exit of
    /// a process the cache holds: its event then describes the process as it was.
    pub fn observe_lifecycle(&mut self, record: &Decoded) -> bool {
        let header = record.header();
        match record {
            Decoded::Fork(r) => {
                self.cache_mut()
                    .on_fork(header.tgid, r.child_tgid, r.child_start_ns);
                false
            }
            Decoded::Exit(r) => {
                let (code, signal, _) = split_status(r.exit_code);
                let code = i32::try_from(code).unwrap_or(i32::MAX);
                let signal = i32::try_from(signal).unwrap_or(i32::MAX);
                self.cache_mut().on_exit(header.tgid, code, signal)
            }
            _ => false,
        }
    }

    /// Updates the cache from the exec record `rec` and completes its typed `event`'s
    /// `process` with the cache's, ancestors included: what [`Enricher::observe`] does for
    /// the JSON tree of the same record.
    pub(crate) fn observe_exec(&mut self, rec: &ExecRecord, event: &mut ExecEvent) {
        let h = &rec.header;
        let mut argv: Vec<String> = event.exec.argv0.iter().cloned().collect();
        argv.extend(event.exec.args.iter().cloned());
        let (exe, comm) = (event.exec.file.path.clone(), event.process.comm.clone());
        self.on_exec(h, exe, argv, comm);
        event.process = self.process_part(h, &rec.comm, false, Chain::With);
    }

    /// The typed `process` object of an event of `h` (whose task's name is `comm`): the
    /// kernel's members completed with what the cache holds of the process at the event's
    /// time (`exiting`: see [`Enricher::knows_at`]), the ancestors with [`Chain::With`].
    pub(crate) fn process_part(
        &mut self,
        h: &EventHeader,
        comm: &[u8],
        exiting: bool,
        chain: Chain,
    ) -> ProcessPart {
        if !self.knows_at(h.tgid, h.timestamp_ns, exiting) {
            return ProcessPart::new(h, comm, None, None);
        }
        let pids = match chain {
            Chain::With => Some(self.cache.ancestor_pids(h.tgid, self.max_depth)),
            Chain::Without => None,
        };
        let Some(rec) = self.cache.peek(h.tgid) else {
            return ProcessPart::new(h, comm, None, None);
        };
        let ancestors = pids.map(|pids| {
            let records: Vec<_> = pids.iter().filter_map(|p| self.cache.peek(*p)).collect();
            self.ancestry.chain(&records)
        });
        ProcessPart::new(h, comm, Some(rec), ancestors)
    }

    /// An exec keeps the process's identity (pid and start time): the start comes from the
    /// cached record (its fork) or from `/proc`; a process known to neither is not cached.
    fn on_exec(&mut self, h: &EventHeader, exe: String, argv: Vec<String>, comm: String) {
        let cgroup_path = self
            .cgroup_paths
            .path_of(h.cgroup_id, h.tgid, Path::new(PROC));
        let cache = self.cache_mut();
        let start_ns = match cache.peek(h.tgid) {
            Some(rec) => rec.start_ns,
            None => match cache.lookup_or_load(h.tgid) {
                Some(rec) => rec.start_ns,
                None => return,
            },
        };
        cache.on_exec(ExecInfo {
            tgid: h.tgid,
            ppid: h.ppid,
            start_ns,
            exe,
            argv,
            comm,
            uid: h.uid,
            cgroup_id: Some(h.cgroup_id),
            cgroup_path,
        });
    }
}
