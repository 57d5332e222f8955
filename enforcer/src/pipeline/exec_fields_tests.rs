//! The typed exec path against the JSON-tree path it stands for: the enriched event (cache,
//! ancestors, container) is the same line, and every rule field reads the same value.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::time::Duration;

use enforcer_common::event::ExecRecord;
use enforcer_policy::{Event, Given, Kind, schema};
use serde_json::Value;

use crate::enrich::{
    Chain, Enricher,
    process_cache::{CacheConfig, ExecInfo},
    process_part::ProcessPart,
};
use crate::pipeline::{decode, exec_event::exec_event, exec_typed::ExecEvent};

const DOCKER: &str = "/system.slice/docker-\
    0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope";

/// An enricher that never reads `/proc`; with `cached`, it holds the test record's process
/// (10, in `cgroup_path`) under its parents 3 (`/usr/sbin/sshd`) and 1 (no executable known).
fn enricher(cached: Option<Option<&str>>) -> Enricher {
    let mut e = Enricher::new(CacheConfig {
        capacity: 64,
        exit_grace: Duration::from_secs(3600),
        procfs_root: "/nonexistent-procfs-root".into(),
        tick_ns: 1,
    });
    let Some(cgroup_path) = cached else {
        return e;
    };
    let info = |tgid, ppid, exe: &str, comm: &str| ExecInfo {
        tgid,
        ppid,
        start_ns: 5,
        exe: exe.into(),
        argv: vec![comm.into(), "-c".into(), "echo \"x\"\\".into()],
        comm: comm.into(),
        uid: 1000,
        cgroup_id: Some(99),
        cgroup_path: cgroup_path.map(str::to_owned),
    };
    e.cache_mut().on_exec(info(1, 0, "", "init"));
    e.cache_mut().on_exec(info(3, 1, "/usr/sbin/sshd", "sshd"));
    e.cache_mut().on_exec(info(10, 3, "/usr/bin/bash", "bash"));
    e
}

/// The typed event of `rec` enriched by `enricher(cached)`, and the JSON tree of the same
/// record enriched by the general path (`Enricher::enrich_process_at`, the merge of the
/// cache's `process` JSON) from the cache as the exec left it.
fn both(rec: &ExecRecord, cached: Option<Option<&str>>) -> (ExecEvent, Value) {
    let mut e = enricher(cached);
    let process = || ProcessPart::new(&rec.header, &rec.comm, None, None);
    let mut typed = ExecEvent::new(rec, "t".to_owned(), process());
    e.observe_exec(rec, &mut typed);
    let mut tree = exec_event(rec, "t");
    let h = rec.header;
    e.enrich_process_at(&mut tree["process"], h.tgid, h.timestamp_ns, Chain::With);
    (typed, tree)
}

/// Exec records of the test process under its cached parent 3: with that ppid in the header,
/// and without one (the cache's).
fn records() -> Vec<ExecRecord> {
    let mut plain = decode::test_exec_record();
    plain.header.ppid = 3;
    let mut no_ppid = plain;
    no_ppid.header.ppid = 0;
    vec![plain, no_ppid]
}

const CACHES: [Option<Option<&str>>; 4] = [
    None,
    Some(None),
    Some(Some("/user.slice")),
    Some(Some(DOCKER)),
];

#[test]
fn the_enriched_typed_event_is_the_enriched_json_tree_byte_for_byte() {
    let mut chains = 0;
    for rec in records() {
        for cached in CACHES {
            let (typed, tree) = both(&rec, cached);
            let line = serde_json::to_string(&typed).unwrap();
            assert_eq!(line, serde_json::to_string(&tree).unwrap(), "{cached:?}");
            chains += usize::from(tree.pointer("/process/ancestors/1/pid").is_some());
        }
    }
    assert_eq!(chains, 6, "the cached cases carry a chain of two parents");
}

#[test]
fn every_exec_and_process_field_reads_as_from_the_json_tree() {
    let fields: Vec<_> = schema::FIELDS
        .iter()
        .filter(|d| d.kind.is_none_or(|k| k == Kind::Exec))
        .collect();
    let read: Vec<_> = fields
        .iter()
        .map(|d| schema::lookup(d.name).unwrap())
        .collect();
    for rec in records() {
        for cached in CACHES {
            let (typed, tree) = both(&rec, cached);
            let decoded = Event::from_json(&tree).unwrap();
            for def in &fields {
                let given = typed.field(def.name);
                assert_ne!(given, Given::Unknown, "{} unknown", def.name);
                let id = schema::lookup(def.name).unwrap();
                let want = decoded.get(id).cloned();
                let got = match given {
                    Given::Value(v) => Some(v),
                    _ => None,
                };
                assert_eq!(got, want, "{} ({cached:?})", def.name);
            }
            let whole = Event::from_typed(Kind::Exec, &read, |name| typed.field(name)).unwrap();
            for def in &fields {
                let id = schema::lookup(def.name).unwrap();
                assert_eq!(whole.get(id), decoded.get(id), "{}", def.name);
            }
        }
    }
    // Fields of other kinds are not the exec event's to give.
    let (typed, _) = both(&records()[0], None);
    assert_eq!(typed.field("open.file.path"), Given::Unknown);
}
