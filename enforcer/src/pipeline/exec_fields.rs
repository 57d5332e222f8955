//! The rule language's fields of a typed exec event: what `Event::from_json` would read from
//! the event's JSON tree (the policy crate's schema, `policy/src/schema/fields.rs`), read from
//! the struct instead. A field this file does not know answers `Given::Unknown`, and the
//! handler then decodes the JSON tree: a new schema field is never silently absent. The test
//! below compares every field of the exec kind and the common `process.*` ones with the
//! decoded JSON of the same events.

use enforcer_policy::{Given, Val};

use super::exec_typed::ExecEvent;
use crate::enrich::process_part::FilePart;

/// A JSON integer as decoding reads it: a `u64` beyond `i64` is a type error there, so the
/// JSON path decides.
fn int(v: impl Into<u64>) -> Given {
    i64::try_from(v.into()).map_or(Given::Unknown, |i| Given::Value(Val::Int(i)))
}

fn text(s: &str) -> Given {
    Given::Value(Val::text(s))
}

fn opt<T>(v: Option<T>, given: impl FnOnce(T) -> Given) -> Given {
    v.map_or(Given::Absent, given)
}

impl ExecEvent {
    /// The value of the rule field `name` (see the module documentation).
    pub(crate) fn field(&self, name: &str) -> Given {
        let (p, e) = (&self.process, &self.exec);
        let ancestors = || p.ancestors.as_deref().unwrap_or_default().iter();
        let ancestor_files = || ancestors().filter_map(|a| a.file.as_ref());
        let parent_file = || p.ancestors.as_ref().and_then(|a| a.first()?.file.as_ref());
        match name {
            "process.pid" => int(p.pid),
            "process.ppid" => opt(p.ppid, int),
            "process.uid" => int(p.uid),
            "process.gid" => int(p.gid),
            "process.comm" => text(&p.comm),
            "process.file.path" => opt(p.file.as_ref(), |f| text(&f.path)),
            "process.file.name" => opt(p.file.as_ref(), |f| text(&f.name)),
            "process.cgroup" => opt(p.cgroup.path.as_deref(), text),
            "process.cgroup.id" => int(p.cgroup.id),
            "process.container.id" => opt(p.container.as_ref(), |c| text(&c.id)),
            "process.parent.file.name" => opt(parent_file(), |f: &FilePart| text(&f.name)),
            "process.parent.file.path" => opt(parent_file(), |f: &FilePart| text(&f.path)),
            "process.ancestors.file.name" => opt(p.ancestors.as_ref(), |_| {
                Given::Value(Val::texts(ancestor_files().map(|f| f.name.as_str())))
            }),
            "process.ancestors.file.path" => opt(p.ancestors.as_ref(), |_| {
                Given::Value(Val::texts(ancestor_files().map(|f| f.path.as_str())))
            }),
            "process.ancestors.pid" => opt(p.ancestors.as_ref(), |_| {
                let pids = ancestors().take(enforcer_policy::event::MAX_LIST);
                Given::Value(Val::List(pids.map(|a| Val::Int(a.pid.into())).collect()))
            }),
            // Not members of an exec event.
            "process.euid" | "process.cwd" => Given::Absent,
            "exec.file.path" => text(&e.file.path),
            "exec.file.name" => text(&e.file.name),
            "exec.file.hash.sha256" => {
                opt(e.file.hash.as_ref().and_then(|h| h.sha256.as_deref()), text)
            }
            "exec.file.inode" => opt(e.file.inode, int),
            "exec.file.dev" => opt(e.file.dev, int),
            "exec.args" => Given::Value(Val::texts(e.args.iter().map(String::as_str))),
            "exec.argv0" => opt(e.argv0.as_deref(), text),
            "exec.envs" => opt(e.envs.as_ref(), |envs| {
                Given::Value(Val::texts(envs.iter().map(String::as_str)))
            }),
            "exec.interpreter" => opt(e.interpreter.as_deref(), text),
            "exec.is_memfd" => Given::Value(Val::Bool(e.is_memfd)),
            "exec.cwd" => opt(e.cwd.as_deref(), text),
            "exec.is_deleted" => Given::Value(Val::Bool(e.is_deleted)),
            "exec.euid" => opt(e.euid, int),
            "exec.caps.effective" => opt(e.caps.as_ref(), |c| int(c.effective)),
            "exec.caps.permitted" => opt(e.caps.as_ref(), |c| int(c.permitted)),
            _ => Given::Unknown,
        }
    }
}

#[cfg(test)]
#[path = "exec_fields_tests.rs"]
mod tests;
