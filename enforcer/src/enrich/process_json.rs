//! The JSON of process records, in the shape the policy evaluator reads (the `process.*` and
//! `process.ancestors.*` fields of `policy/src/schema/fields.rs`). Owns that shape:
//!
//! ```text
//! "process": {
//!   "pid": 4242, "ppid": 4200, "uid": 1000, "comm": "bash",    // process.pid/ppid/uid/comm
//!   "start_ns": 123456789,                                      // identity (not a policy field)
//!   "file": { "path": "/usr/bin/bash", "name": "bash" },        // process.file.path/name
//!   "argv": ["bash", "-c", "x"], "argv_truncated": false,       // audit only
//!   "cgroup": { "id": 7, "path": "/system.slice/x.service" },   // process.cgroup.id, process.cgroup
//!   "container": { "id": "<64 hex>", "runtime": "docker" },     // process.container.id
//!   "exit": { "code": 0, "signal": 9 },                         // only once the process exited
//!   "ancestors": [                                              // parent first
//!     { "pid": 4200, "ppid": 1, "uid": 1000, "comm": "sshd", "start_ns": 42,
//!       "file": { "path": "/usr/sbin/sshd", "name": "sshd" } }, // process.ancestors.*,
//!     ...                                                       // process.parent.* = [0]
//!   ]
//! }
//! ```
//! A member whose value is unknown is left out (the evaluator reads a missing member and a
//! `null` alike as absent): `file` when the executable is unknown, `uid`, the cgroup members,
//! `container` when the cgroup path is unknown. `container.id` is `""` when the cgroup path
//! is known and names no container (the host: `process.container.id == ""`). `file.name` is
//! written out although the evaluator could derive it for the process itself: it cannot for
//! the ancestors' list items.

use serde_json::{Map, Value, json};

use super::process_cache::ProcessRecord;

/// Basename of a path (the whole string when it has no `/`).
pub(crate) fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The members every record shares (process and ancestor objects).
fn common(rec: &ProcessRecord) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("pid".into(), json!(rec.tgid));
    m.insert("ppid".into(), json!(rec.ppid));
    if let Some(uid) = rec.uid {
        m.insert("uid".into(), json!(uid));
    }
    m.insert("comm".into(), json!(rec.comm));
    m.insert("start_ns".into(), json!(rec.start_ns));
    if !rec.exe.is_empty() {
        m.insert(
            "file".into(),
            json!({ "path": rec.exe, "name": basename(&rec.exe) }),
        );
    }
    m
}

/// The `process` object of a record, without `ancestors` (see the module documentation).
pub fn to_json(rec: &ProcessRecord) -> Value {
    let mut m = common(rec);
    m.insert("argv".into(), json!(rec.argv));
    m.insert("argv_truncated".into(), json!(rec.argv_truncated));
    let mut cgroup = Map::new();
    if let Some(id) = rec.cgroup_id {
        cgroup.insert("id".into(), json!(id));
    }
    if let Some(path) = &rec.cgroup_path {
        cgroup.insert("path".into(), json!(path));
    }
    if !cgroup.is_empty() {
        m.insert("cgroup".into(), Value::Object(cgroup));
    }
    if rec.cgroup_path.is_some() {
        let container = match &rec.container {
            Some(c) => json!({ "id": c.id, "runtime": c.runtime.name() }),
            None => json!({ "id": "" }),
        };
        m.insert("container".into(), container);
    }
    if let Some(exit) = rec.exited_at {
        m.insert(
            "exit".into(),
            json!({ "code": exit.code, "signal": exit.signal }),
        );
    }
    Value::Object(m)
}

/// The `ancestors` array: one object per record, in the order given (parent first).
pub fn ancestors_json(ancestors: &[&ProcessRecord]) -> Value {
    Value::Array(
        ancestors
            .iter()
            .map(|rec| Value::Object(common(rec)))
            .collect(),
    )
}

/// The `process` object of a record with its `ancestors` array.
pub fn process_with_ancestors(rec: &ProcessRecord, ancestors: &[&ProcessRecord]) -> Value {
    let mut v = to_json(rec);
    if let Value::Object(m) = &mut v {
        m.insert("ancestors".into(), ancestors_json(ancestors));
    }
    v
}

/// Adds to `base` the members of `extra` it lacks, recursively into objects present in both;
/// a member `base` already has keeps its value. Used to enrich the `process` object built from
/// the kernel record (whose values are the kernel's view at the event) with the cache's.
pub fn merge_missing(base: &mut Value, extra: Value) {
    let (Value::Object(b), Value::Object(e)) = (base, extra) else {
        return;
    };
    for (key, value) in e {
        match b.get_mut(&key) {
            Some(existing) => merge_missing(existing, value),
            None => {
                b.insert(key, value);
            }
        }
    }
}
