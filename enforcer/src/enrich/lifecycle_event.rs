//! Fork and exit events written from their typed form, without a JSON tree. Most records of a
//! busy host are forks and exits that no rule reads; building their `serde_json::Value`
//! (the event, the cache's `process` object, the merge of the two) and serializing it was
//! about a third of the daemon's CPU in an exec storm. [`LifecycleEvent`] serializes to the
//! same JSON, byte for byte, as `pipeline::process_event` + [`Enricher::observe`] +
//! `process_json::merge_missing` without ancestors (the test below compares the two), so the
//! audit log does not change.
//!
//! Members are declared in the order `serde_json`'s sorted maps write them.

use serde::Serialize;

use super::{Chain, Enricher, process_part::ProcessPart};
use crate::pipeline::{decode::Decoded, exec_event::hook_name, process_event::split_status};

/// A fork or exit event (see the module documentation).
#[derive(Debug, Serialize)]
pub struct LifecycleEvent {
    #[serde(skip_serializing_if = "Option::is_none")]
    exit: Option<ExitPart>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fork: Option<ForkPart>,
    hook: &'static str,
    kind: &'static str,
    process: ProcessPart,
    ts: String,
}

impl LifecycleEvent {
    /// The one-line summary `enforcer run` prints: what `engine/sink.rs` prints for the same
    /// event as a JSON tree (a fork or exit has no executable or arguments of its own).
    pub fn summary(&self) -> String {
        let p = &self.process;
        let ppid = p
            .ppid
            .map_or_else(|| "null".to_owned(), |ppid| ppid.to_string());
        format!(
            "{} pid={} ppid={ppid} uid={} cgroup={} path=null argv0=null args=null",
            self.kind, p.pid, p.uid, p.cgroup.id
        )
    }
}

#[derive(Debug, Serialize)]
struct ForkPart {
    child: Child,
}

#[derive(Debug, Serialize)]
struct Child {
    pid: u32,
    start_ns: u64,
}

#[derive(Debug, Serialize)]
struct ExitPart {
    code: u32,
    core_dumped: bool,
    runtime: u64,
    signal: u32,
    start_ns: u64,
}

impl Enricher {
    /// Updates the cache from the fork or exit `record` (as [`Enricher::observe`] does) and
    /// returns its event, without ancestors; `None` for any other record. `ts` is the event's
    /// wall-clock time.
    pub fn lifecycle_event(&mut self, record: &Decoded, ts: String) -> Option<LifecycleEvent> {
        let header = *record.header();
        let at = header.timestamp_ns;
        let exiting = self.observe_lifecycle(record);
        let (comm, fork, exit) = match record {
            Decoded::Fork(r) => (
                &r.comm,
                Some(ForkPart {
                    child: Child {
                        pid: r.child_tgid,
                        start_ns: r.child_start_ns,
                    },
                }),
                None,
            ),
            Decoded::Exit(r) => {
                let (code, signal, core) = split_status(r.exit_code);
                let exit = ExitPart {
                    code,
                    core_dumped: core,
                    runtime: at.saturating_sub(r.start_ns),
                    signal,
                    start_ns: r.start_ns,
                };
                (&r.comm, None, Some(exit))
            }
            _ => return None,
        };
        Some(LifecycleEvent {
            exit,
            kind: if fork.is_some() { "fork" } else { "exit" },
            fork,
            hook: hook_name(header.hook),
            process: self.process_part(&header, comm, exiting, Chain::Without),
            ts,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use serde_json::Value;

    use super::*;
    use crate::audit::Record;
    use crate::enrich::{
        LifecycleChains,
        process_cache::{CacheConfig, ExecInfo},
    };
    use crate::pipeline::{
        decode::{test_exit_record, test_fork_record},
        process_event::{exit_event, fork_event},
    };

    /// An enricher that never reads `/proc`, with no ancestors on lifecycle events (no fork
    /// or exit rule: the only case the typed path serves).
    fn enricher() -> Enricher {
        Enricher::new(CacheConfig {
            capacity: 64,
            exit_grace: Duration::from_secs(3600),
            procfs_root: "/nonexistent-procfs-root".into(),
            tick_ns: 1,
        })
        .with_lifecycle_chains(LifecycleChains {
            fork: false,
            exit: false,
        })
    }

    /// With `Some(cgroup_path)`, caches process 10 (the test records' process), started at
    /// 5 ns; with `None`, leaves the cache empty.
    fn setup(e: &mut Enricher, cached: Option<Option<&str>>) {
        let Some(cgroup_path) = cached else {
            return;
        };
        e.cache_mut().on_exec(ExecInfo {
            tgid: 10,
            ppid: 3,
            start_ns: 5,
            exe: "/usr/bin/bash".into(),
            argv: vec!["bash".into(), "-c".into(), "echo \"x\"\\".into()],
            comm: "bash".into(),
            uid: 1000,
            cgroup_id: Some(99),
            cgroup_path: cgroup_path.map(str::to_owned),
        });
    }

    /// The line of the JSON-tree path (event JSON, `observe`) and of the typed path, for the
    /// same record and cache.
    fn both(record: &Decoded, cached: Option<Option<&str>>) -> (String, String) {
        let (mut tree, mut typed) = (enricher(), enricher());
        setup(&mut tree, cached);
        setup(&mut typed, cached);
        let mut event = match record {
            Decoded::Fork(r) => fork_event(r, "t"),
            Decoded::Exit(r) => exit_event(r, "t"),
            _ => Value::Null,
        };
        tree.observe(record, &mut event);
        let typed = typed.lifecycle_event(record, "t".to_owned()).unwrap();
        (
            serde_json::to_string(&event).unwrap(),
            serde_json::to_string(&typed).unwrap(),
        )
    }

    fn fork(ppid: u32, comm: &[u8]) -> Decoded {
        let mut rec = test_fork_record(77, 40);
        rec.header.ppid = ppid;
        rec.comm[..comm.len()].copy_from_slice(comm);
        Decoded::Fork(rec)
    }

    fn exit(status: u32) -> Decoded {
        let mut rec = test_exit_record(status, 5);
        rec.comm[..4].copy_from_slice(b"bash");
        Decoded::Exit(rec)
    }

    const DOCKER: &str = "/system.slice/docker-\
        0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope";

    #[test]
    fn typed_lifecycle_events_are_the_json_tree_events_byte_for_byte() {
        let cases = [
            ("fork, unknown process", fork(1, b"bash"), None),
            ("fork, unknown, no ppid", fork(0, b"sh"), None),
            ("fork, cached", fork(1, b"bash"), Some(None)),
            ("fork, cached, no ppid", fork(0, b"bash"), Some(None)),
            (
                "fork, host cgroup",
                fork(1, b"bash"),
                Some(Some("/user.slice")),
            ),
            ("fork, container", fork(1, b"bash"), Some(Some(DOCKER))),
            ("fork, odd comm", fork(1, &[0xff, b'a', b'"']), Some(None)),
            ("exit, unknown", exit(3 << 8), None),
            ("exit, cached, code", exit(3 << 8), Some(Some(DOCKER))),
            ("exit, cached, signal and core", exit(0x80 | 9), Some(None)),
        ];
        for (what, record, cached) in cases {
            let (tree, typed) = both(&record, cached);
            assert_eq!(typed, tree, "{what}");
        }
    }

    #[test]
    fn the_audit_record_is_an_event_record_and_prints_the_same_summary() {
        let mut e = enricher();
        setup(&mut e, Some(Some(DOCKER)));
        let event = e
            .lifecycle_event(&fork(1, b"bash"), "t".to_owned())
            .unwrap();
        let record = serde_json::to_value(Record::LifecycleEvent { event }).unwrap();
        assert_eq!(record["type"], "event");
        assert_eq!(record["event"]["kind"], "fork");
        assert_eq!(record["event"]["fork"]["child"]["pid"], 77);
        assert_eq!(record["event"]["process"]["file"]["name"], "bash");
        assert!(
            Record::LifecycleEvent {
                event: e.lifecycle_event(&exit(0), "t".to_owned()).unwrap()
            }
            .is_event()
        );
        let mut e = enricher();
        assert!(
            e.lifecycle_event(
                &Decoded::Exec(crate::pipeline::decode::test_exec_record()),
                "t".into()
            )
            .is_none(),
            "only forks and exits"
        );
    }
}
