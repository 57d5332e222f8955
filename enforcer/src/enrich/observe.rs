//! Feeds decoded kernel records into the process cache (fork, exec, exit) and adds what the
//! cache knows (parent chain, container, start time) to every event's `process` object.

use std::path::Path;

use enforcer_common::event::Hook;
use serde_json::Value;

use super::{Chain, Enricher, process_cache::ExecInfo};
use crate::pipeline::{decode::Decoded, process_event::split_status};

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
        match record {
            Decoded::Exec(_) if header.hook == Hook::TpSchedProcessExec as u32 => {
                self.on_exec_event(
                    header.tgid,
                    header.ppid,
                    header.uid,
                    header.cgroup_id,
                    event,
                );
            }
            _ => {}
        }
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

    /// An exec keeps the process's identity (pid and start time): the start comes from the
    /// cached record (its fork) or from `/proc`.
    fn on_exec_event(&mut self, tgid: u32, ppid: u32, uid: u32, cgroup_id: u64, event: &Value) {
        let cgroup_path = self.cgroup_paths.path_of(cgroup_id, tgid, Path::new(PROC));
        let cache = self.cache_mut();
        let start_ns = match cache.peek(tgid) {
            Some(rec) => rec.start_ns,
            None => match cache.lookup_or_load(tgid) {
                Some(rec) => rec.start_ns,
                None => return,
            },
        };
        let text = |ptr: &str| {
            event
                .pointer(ptr)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let mut argv: Vec<String> = text("/exec/argv0").into_iter().collect();
        if let Some(args) = event.pointer("/exec/args").and_then(Value::as_array) {
            argv.extend(args.iter().filter_map(|a| a.as_str().map(str::to_owned)));
        }
        cache.on_exec(ExecInfo {
            tgid,
            ppid,
            start_ns,
            exe: text("/exec/file/path").unwrap_or_default(),
            argv,
            comm: text("/process/comm").unwrap_or_default(),
            uid,
            cgroup_id: Some(cgroup_id),
            cgroup_path,
        });
    }
}
