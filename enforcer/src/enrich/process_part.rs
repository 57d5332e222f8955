//! An event's `process` object in typed form: what the kernel record carries (its header and
//! `comm`), completed with what the process cache knows, with or without the ancestor chain.
//! It serializes to the same JSON, byte for byte, as `pipeline::exec_event::process_json`
//! merged with the cache's `process_json::to_json` (and `ancestors_json`) by
//! `process_json::merge_missing`: the typed fork, exit and exec events
//! (`lifecycle_event.rs`, `pipeline/exec_event.rs`) write what the JSON-tree path writes, and
//! their tests compare the two.
//!
//! Members are declared in the order `serde_json`'s sorted maps write them.

use enforcer_common::event::EventHeader;
use serde::Serialize;

use super::{ancestry::Ancestors, process_cache::ProcessRecord, process_json::basename};
use crate::pipeline::exec_event::text;

/// The event's `process`: the kernel record's members, then what the cache adds.
#[derive(Debug, Serialize)]
pub(crate) struct ProcessPart {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) ancestors: Option<Ancestors>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) argv: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    argv_truncated: Option<bool>,
    pub(crate) cgroup: CgroupPart,
    pub(crate) comm: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) container: Option<ContainerPart>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit: Option<ExitStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) file: Option<FilePart>,
    pub(crate) gid: u32,
    pub(crate) pid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) ppid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    start_ns: Option<u64>,
    tid: u32,
    pub(crate) uid: u32,
}

/// One process of the `ancestors` array (`process_json::ancestors_json`).
#[derive(Debug, Serialize)]
pub(crate) struct AncestorPart {
    comm: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) file: Option<FilePart>,
    pub(crate) pid: u32,
    ppid: u32,
    start_ns: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<u32>,
}

#[derive(Debug, Serialize)]
pub(crate) struct CgroupPart {
    pub(crate) id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) path: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ContainerPart {
    pub(crate) id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    runtime: Option<&'static str>,
}

#[derive(Debug, Serialize)]
struct ExitStatus {
    code: i32,
    signal: i32,
}

#[derive(Debug, Serialize)]
pub(crate) struct FilePart {
    pub(crate) name: String,
    pub(crate) path: String,
}

/// The executable of a cached record, when it is known.
fn file_of(rec: &ProcessRecord) -> Option<FilePart> {
    (!rec.exe.is_empty()).then(|| FilePart {
        name: basename(&rec.exe).to_owned(),
        path: rec.exe.clone(),
    })
}

impl AncestorPart {
    /// The members `process_json::common` gives a cached record.
    pub(crate) fn new(rec: &ProcessRecord) -> Self {
        Self {
            comm: rec.comm.clone(),
            file: file_of(rec),
            pid: rec.tgid,
            ppid: rec.ppid,
            start_ns: rec.start_ns,
            uid: rec.uid,
        }
    }

    /// Whether this part is what [`AncestorPart::new`] makes of `rec` now (the file's name is
    /// the path's basename, so the path decides it).
    pub(crate) fn describes(&self, rec: &ProcessRecord) -> bool {
        self.pid == rec.tgid
            && self.ppid == rec.ppid
            && self.start_ns == rec.start_ns
            && self.uid == rec.uid
            && self.comm == rec.comm
            && match &self.file {
                Some(file) => file.path == rec.exe,
                None => rec.exe.is_empty(),
            }
    }
}

impl ProcessPart {
    /// The record's members (`process_json`), completed with `cached`'s where the record has
    /// none (`merge_missing` of `process_json::to_json`), with `ancestors` (parent first) when
    /// given: the cache's chain of a `cached` process.
    pub(crate) fn new(
        h: &EventHeader,
        comm: &[u8],
        cached: Option<&ProcessRecord>,
        ancestors: Option<Ancestors>,
    ) -> Self {
        let ppid = match (h.ppid, cached) {
            (0, Some(rec)) => Some(rec.ppid),
            (0, None) => None,
            (ppid, _) => Some(ppid),
        };
        let container =
            cached
                .filter(|rec| rec.cgroup_path.is_some())
                .map(|rec| match &rec.container {
                    Some(c) => ContainerPart {
                        id: c.id.clone(),
                        runtime: Some(c.runtime.name()),
                    },
                    None => ContainerPart {
                        id: String::new(),
                        runtime: None,
                    },
                });
        Self {
            ancestors,
            argv: cached.map(|rec| rec.argv.clone()),
            argv_truncated: cached.map(|rec| rec.argv_truncated),
            cgroup: CgroupPart {
                id: h.cgroup_id,
                path: cached.and_then(|rec| rec.cgroup_path.clone()),
            },
            comm: text(comm, comm.len()),
            container,
            exit: cached.and_then(|rec| rec.exited_at).map(|e| ExitStatus {
                code: e.code,
                signal: e.signal,
            }),
            file: cached.and_then(file_of),
            gid: h.gid,
            pid: h.tgid,
            ppid,
            start_ns: cached.map(|rec| rec.start_ns),
            tid: h.pid,
            uid: h.uid,
        }
    }
}
