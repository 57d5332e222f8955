//! The exec event in typed form: the one place that says what an exec record becomes. The
//! engine handles a successful exec (the tracepoint's record) in this form: enriched, judged by
//! the rules (`exec_fields.rs` gives them its fields) and written to the audit log without a
//! JSON tree, which was most of the daemon's CPU per exec. An event a rule matches, one with a
//! kernel verdict or one waiting for its hash becomes a JSON tree (`serde_json::to_value`, the
//! same members) for the handler's general path; `exec_event::exec_event` is that tree.
//!
//! Members are declared in the order `serde_json`'s sorted maps write them, so both forms
//! write the same line.

use enforcer_common::event::{
    EXEC_ARGS_MISSING, EXEC_ARGS_TRUNCATED, EXEC_CREDS, EXEC_CWD, EXEC_CWD_TRUNCATED, EXEC_DELETED,
    EXEC_ENV_MISSING, EXEC_ENV_TRUNCATED, EXEC_NAME_TRUNCATED, EXEC_PATH_TRUNCATED,
    EXEC_SHA256_KERNEL, ExecRecord,
};
use serde::Serialize;

use enforcer_policy::selection::EntrySelector;

use super::exec_event::{hook_name, text};
use crate::{
    enrich::{
        proc_read::{nul_entries, nul_entry_bytes},
        process_part::ProcessPart,
    },
    hash::HashPart,
};

/// An exec event (see the module documentation).
#[derive(Debug, Serialize)]
pub struct ExecEvent {
    pub(crate) exec: ExecPart,
    hook: &'static str,
    kind: &'static str,
    pub(crate) process: ProcessPart,
    ts: String,
}

/// The event's `exec` object.
#[derive(Debug, Serialize)]
pub(crate) struct ExecPart {
    pub(crate) args: Vec<String>,
    args_missing: bool,
    /// `null` when the record has no arguments at all.
    pub(crate) argv0: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) caps: Option<Caps>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) cwd: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    env_truncated: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) envs: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    envs_omitted: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) euid: Option<u32>,
    pub(crate) file: ExecFile,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) interpreter: Option<String>,
    pub(crate) is_deleted: bool,
    pub(crate) is_memfd: bool,
    truncated: Truncated,
}

/// `exec.caps`.
#[derive(Debug, Serialize)]
pub(crate) struct Caps {
    pub(crate) effective: u64,
    pub(crate) permitted: u64,
}

/// `exec.file`: the executed file.
#[derive(Debug, Serialize)]
pub(crate) struct ExecFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) dev: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) hash: Option<HashPart>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) inode: Option<u64>,
    pub(crate) name: String,
    pub(crate) path: String,
}

/// `exec.truncated`: which of the record's strings the kernel cut.
#[derive(Debug, Serialize)]
struct Truncated {
    args: bool,
    name: bool,
    path: bool,
}

/// The memfd prefix of a memfd's dentry name (`memfd:NAME`).
const MEMFD_PREFIX: &str = "memfd:";

/// The NUL-separated entries of a block (`len` clamped to the buffer).
fn entries(buf: &[u8], len: usize) -> Vec<String> {
    nul_entries(&buf[..len.min(buf.len())])
}

/// Which of the record's environment entries a typed event holds.
#[derive(Clone, Copy)]
enum Envs<'a> {
    /// Every entry: the JSON tree's, which the handler's general path evaluates and completes
    /// from `/proc` before it selects (`env_evidence::keep_selected_envs`).
    All,
    /// Only the entries some rule tests, the others counted in `exec.envs_omitted`: what the
    /// audit log gets (`env_evidence.rs`), and all the rules need. A test on a list matches
    /// when one of its entries does (`Matcher::matches`, negated or not), and the selector
    /// keeps every entry that any test on `exec.envs` matches, so an entry left out changes
    /// no rule's outcome. Most execs of a busy host match no rule: their environment (tens of
    /// entries) is then never copied entry by entry, only the few a rule names.
    Selected(&'a EntrySelector),
}

/// The environment entries of `rec` that `which` keeps, and how many it left out.
fn env_entries(rec: &ExecRecord, which: Envs<'_>) -> (Vec<String>, usize) {
    let block = &rec.env[..(rec.env_len as usize).min(rec.env.len())];
    let Envs::Selected(selector) = which else {
        return (nul_entries(block), 0);
    };
    let mut omitted = 0;
    let kept = nul_entry_bytes(block)
        .filter_map(|bytes| {
            let entry = String::from_utf8_lossy(bytes);
            if selector.selects(&entry) {
                Some(entry.into_owned())
            } else {
                omitted += 1;
                None
            }
        })
        .collect();
    (kept, omitted)
}

/// The working directory the kernel read at the exec (`current->fs->pwd`), when the record
/// has a whole one (not cut, not empty).
fn kernel_cwd(rec: &ExecRecord) -> Option<String> {
    let whole = rec.flags & EXEC_CWD != 0 && rec.flags & EXEC_CWD_TRUNCATED == 0;
    let cwd = text(&rec.cwd, rec.cwd_len as usize);
    (whole && !cwd.is_empty()).then_some(cwd)
}

impl ExecFile {
    fn new(rec: &ExecRecord, name: String, path: String) -> Self {
        let known = rec.file.ino != 0;
        Self {
            dev: known.then(|| rec.file.user_dev()),
            // Hashed in the kernel by IMA (`bpf_ima_file_hash`) in the exec hook itself.
            hash: (rec.flags & EXEC_SHA256_KERNEL != 0).then(|| HashPart {
                bytes: None,
                queued_us: None,
                reason: None,
                sha256: Some(crate::hash::hex(&rec.sha256)),
                source: Some("kernel"),
                status: "hashed",
                took_us: None,
            }),
            inode: known.then_some(rec.file.ino),
            name,
            path,
        }
    }
}

impl ExecPart {
    /// What the record carries: the file, the arguments (`argv[0]` apart), credentials and
    /// interpreter (when read), the memfd / unlinked flags, the working directory (when whole)
    /// and the environment (when read; the entries `envs` keeps).
    fn new(rec: &ExecRecord, envs: Envs<'_>) -> Self {
        let name = text(&rec.name, rec.name_len as usize);
        let path = text(&rec.path, rec.path_len as usize);
        let mut args = entries(&rec.args, rec.args_len as usize);
        let argv0 = (!args.is_empty()).then(|| args.remove(0));
        let creds = rec.flags & EXEC_CREDS != 0;
        let env = rec.flags & EXEC_ENV_MISSING == 0;
        let (envs, omitted) = if env {
            let (kept, omitted) = env_entries(rec, envs);
            (Some(kept), omitted)
        } else {
            (None, 0)
        };
        // For a script the kernel finally runs its interpreter: `bprm->interp` differs from
        // the path given to execve.
        let interpreter = creds.then(|| {
            let interp = text(&rec.interp, rec.interp_len as usize);
            if interp == path {
                String::new()
            } else {
                interp
            }
        });
        Self {
            args,
            args_missing: rec.flags & EXEC_ARGS_MISSING != 0,
            argv0,
            caps: creds.then_some(Caps {
                effective: rec.cap_effective,
                permitted: rec.cap_permitted,
            }),
            cwd: kernel_cwd(rec),
            env_truncated: env.then_some(rec.flags & EXEC_ENV_TRUNCATED != 0),
            envs,
            envs_omitted: (omitted > 0).then_some(omitted),
            euid: creds.then_some(rec.euid),
            interpreter,
            is_deleted: rec.flags & EXEC_DELETED != 0,
            is_memfd: name.starts_with(MEMFD_PREFIX),
            truncated: Truncated {
                args: rec.flags & EXEC_ARGS_TRUNCATED != 0,
                name: rec.flags & EXEC_NAME_TRUNCATED != 0,
                path: rec.flags & EXEC_PATH_TRUNCATED != 0,
            },
            file: ExecFile::new(rec, name, path),
        }
    }
}

impl ExecEvent {
    /// The event of an exec record, its `process` completed with the cache's `process`.
    /// `ts` is the wall-clock time of the kernel timestamp.
    pub(crate) fn new(rec: &ExecRecord, ts: String, process: ProcessPart) -> Self {
        Self::with_envs(rec, ts, process, Envs::All)
    }

    /// [`ExecEvent::new`] with only the environment entries `selector` selects (see
    /// [`Envs::Selected`]): what the handler builds first. Its general path takes them all
    /// back ([`ExecEvent::restore_envs`]).
    pub(crate) fn with_selected_envs(
        rec: &ExecRecord,
        ts: String,
        process: ProcessPart,
        selector: &EntrySelector,
    ) -> Self {
        Self::with_envs(rec, ts, process, Envs::Selected(selector))
    }

    fn with_envs(rec: &ExecRecord, ts: String, process: ProcessPart, envs: Envs<'_>) -> Self {
        Self {
            exec: ExecPart::new(rec, envs),
            hook: hook_name(rec.header.hook),
            kind: "exec",
            process,
            ts,
        }
    }

    /// Whether the kernel cut the arguments or the environment: `exec_blocks` then completes
    /// them from `/proc` (on the event's JSON).
    pub(crate) fn cut_blocks(&self) -> bool {
        self.exec.truncated.args || self.exec.env_truncated == Some(true)
    }

    /// Completes `exec.cwd` when the record has no whole working directory of its own (a path
    /// the kernel had to cut, or a record without one): from `<proc_dir>/cwd` when the record
    /// is handled (`proc_dir`: its `/proc/<pid>`, `None` when it is known to be gone). Best
    /// effort: left out when the process is gone; a process that changed directory since its
    /// exec shows the new one.
    pub(crate) fn add_cwd(&mut self, proc_dir: Option<&std::path::Path>) {
        if self.exec.cwd.is_some() {
            return;
        }
        if let Some(Ok(cwd)) = proc_dir.map(|dir| std::fs::read_link(dir.join("cwd"))) {
            self.exec.cwd = Some(cwd.to_string_lossy().into_owned());
        }
    }

    /// Gives the event every environment entry of `rec` (the one it was built from) again,
    /// none counted as omitted: the handler's general path evaluates and completes the whole
    /// environment before it selects.
    pub(crate) fn restore_envs(&mut self, rec: &ExecRecord) {
        if self.exec.envs.is_some() {
            self.exec.envs = Some(env_entries(rec, Envs::All).0);
            self.exec.envs_omitted = None;
        }
    }

    /// The one-line summary `enforcer run` prints: what `engine/sink.rs` prints for the same
    /// event as a JSON tree (strings and lists as JSON, an absent `ppid` as `null`).
    pub fn summary(&self) -> String {
        fn json(v: &impl Serialize) -> String {
            serde_json::to_string(v).unwrap_or_default()
        }
        let (p, e) = (&self.process, &self.exec);
        format!(
            "exec pid={} ppid={} uid={} cgroup={} path={} argv0={} args={}",
            p.pid,
            json(&p.ppid),
            p.uid,
            p.cgroup.id,
            json(&e.file.path),
            json(&e.argv0),
            json(&e.args)
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use enforcer_common::event::EXEC_CWD;

    use super::*;
    use crate::pipeline::decode::test_exec_record;

    /// The event of `rec` with the kernel's `process` alone.
    fn typed(rec: &ExecRecord) -> ExecEvent {
        ExecEvent::new(
            rec,
            "t".to_owned(),
            ProcessPart::new(&rec.header, &rec.comm, None, None),
        )
    }

    #[test]
    fn the_working_directory_comes_from_procfs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("42")).unwrap();
        std::os::unix::fs::symlink("/srv/work", dir.path().join("42/cwd")).unwrap();
        let mut ev = typed(&test_exec_record());
        ev.add_cwd(Some(&dir.path().join("43")));
        assert!(ev.exec.cwd.is_none(), "process gone");
        ev.add_cwd(None);
        assert!(ev.exec.cwd.is_none(), "known to be gone: not read");
        ev.add_cwd(Some(&dir.path().join("42")));
        assert_eq!(ev.exec.cwd.as_deref(), Some("/srv/work"));
    }

    #[test]
    fn the_kernel_working_directory_wins_unless_it_was_cut() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("42")).unwrap();
        std::os::unix::fs::symlink("/from/procfs", dir.path().join("42/cwd")).unwrap();
        let mut rec = test_exec_record();
        rec.cwd[..9].copy_from_slice(b"/home/bob");
        rec.cwd_len = 9;
        // Without the flag the bytes are not a working directory.
        let ev = typed(&rec);
        assert!(ev.exec.cwd.is_none(), "{ev:?}");
        rec.flags |= EXEC_CWD;
        let mut ev = typed(&rec);
        assert_eq!(ev.exec.cwd.as_deref(), Some("/home/bob"));
        ev.add_cwd(Some(&dir.path().join("42")));
        assert_eq!(
            ev.exec.cwd.as_deref(),
            Some("/home/bob"),
            "the kernel's, /proc not read"
        );
        // A cut one is completed from /proc, or left out.
        rec.flags |= EXEC_CWD_TRUNCATED;
        let mut ev = typed(&rec);
        assert!(ev.exec.cwd.is_none(), "{ev:?}");
        ev.add_cwd(Some(&dir.path().join("42")));
        assert_eq!(ev.exec.cwd.as_deref(), Some("/from/procfs"));
        // An empty one is no working directory.
        rec.flags = EXEC_CWD;
        rec.cwd_len = 0;
        assert!(typed(&rec).exec.cwd.is_none());
    }

    #[test]
    fn selected_envs_hold_what_a_rule_tests_and_restoring_gives_them_all() {
        let policy = enforcer_policy::load_str(
            "p.yaml",
            "rules:\n  - id: a\n    expression: exec.envs startswith \"POOL=\"\n    action: alert\n",
        )
        .unwrap();
        let selector = policy.entry_selector("exec.envs");
        let mut rec = test_exec_record();
        let env = b"A=1\0POOL=x\0\xff=\0POOL=\xfe\0";
        rec.env[..env.len()].copy_from_slice(env);
        rec.env_len = u32::try_from(env.len()).unwrap();
        let selected = |rec: &ExecRecord| {
            let process = ProcessPart::new(&rec.header, &rec.comm, None, None);
            ExecEvent::with_selected_envs(rec, "t".to_owned(), process, &selector)
        };
        let mut ev = selected(&rec);
        assert_eq!(
            ev.exec.envs.as_deref(),
            Some(&["POOL=x".to_owned(), "POOL=\u{fffd}".to_owned()][..]),
            "invalid UTF-8 is judged as the JSON tree holds it"
        );
        assert_eq!(ev.exec.envs_omitted, Some(2));
        ev.restore_envs(&rec);
        let all = serde_json::to_string(&typed(&rec)).unwrap();
        assert_eq!(serde_json::to_string(&ev).unwrap(), all);
        // Only `A=1` left out; nothing left out: no count; no environment read: none restored.
        rec.env_len = 11;
        assert_eq!(selected(&rec).exec.envs_omitted, Some(1));
        rec.env_len = 0;
        assert_eq!(selected(&rec).exec.envs_omitted, None);
        rec.flags |= EXEC_ENV_MISSING;
        let mut missing = selected(&rec);
        missing.restore_envs(&rec);
        assert!(missing.exec.envs.is_none());
    }

    /// Exec records covering every member of the event.
    fn golden_records() -> Vec<(&'static str, ExecRecord)> {
        use enforcer_common::event::*;
        let plain = crate::pipeline::decode::test_exec_record();
        let mut rich = plain;
        rich.flags = EXEC_CREDS
            | EXEC_DELETED
            | EXEC_ENV_TRUNCATED
            | EXEC_CWD
            | EXEC_SHA256_KERNEL
            | EXEC_NAME_TRUNCATED
            | EXEC_PATH_TRUNCATED
            | EXEC_ARGS_TRUNCATED;
        rich.header.ppid = 0;
        rich.euid = 1000;
        rich.cap_effective = 1 << 21;
        rich.cap_permitted = (1 << 41) - 1;
        rich.interp[..7].copy_from_slice(b"/bin/sh");
        rich.interp_len = 7;
        rich.env[..10].copy_from_slice(b"A=1\0POOL=x");
        rich.env_len = 10;
        rich.cwd[..9].copy_from_slice(b"/home/b\"b");
        rich.cwd_len = 9;
        rich.sha256 = [0xab; 32];
        rich.file = enforcer_common::plan::InodeKey {
            ino: 1234,
            ctime_sec: 5,
            ctime_nsec: 6,
            dev: (8 << 20) | 1,
        };
        rich.name[..9].copy_from_slice(b"memfd:abc");
        rich.name_len = 9;
        rich.comm[..3].copy_from_slice(&[0xff, b'\\', b'x']);
        let mut bare = plain;
        bare.args_len = 0;
        bare.flags = EXEC_ARGS_MISSING | EXEC_ENV_MISSING | EXEC_CREDS | EXEC_CWD_TRUNCATED;
        bare.interp[..13].copy_from_slice(b"/usr/bin/true");
        bare.interp_len = 13;
        bare.cwd_len = 3;
        let mut only_argv0 = plain;
        only_argv0.args_len = 5;
        only_argv0.env_len = 0;
        vec![
            ("plain", plain),
            ("rich", rich),
            ("bare", bare),
            ("only argv0", only_argv0),
        ]
    }

    /// The lines the JSON-tree builder this typed form replaced wrote for
    /// [`golden_records`] (captured from it before the change, commit 50545c4).
    const GOLDEN: [(&str, &str); 4] = [
        (
            "plain",
            r#"{"exec":{"args":["-x","yz"],"args_missing":false,"argv0":"true","env_truncated":false,"envs":[],"file":{"name":"true","path":"/usr/bin/true"},"is_deleted":false,"is_memfd":false,"truncated":{"args":false,"name":false,"path":false}},"hook":"tp_btf/sched_process_exec","kind":"exec","process":{"cgroup":{"id":7},"comm":"true","gid":1000,"pid":10,"ppid":1,"tid":10,"uid":1000},"ts":"t"}"#,
        ),
        (
            "rich",
            r#"{"exec":{"args":["-x","yz"],"args_missing":false,"argv0":"true","caps":{"effective":2097152,"permitted":2199023255551},"cwd":"/home/b\"b","env_truncated":true,"envs":["A=1","POOL=x"],"euid":1000,"file":{"dev":2049,"hash":{"sha256":"abababababababababababababababababababababababababababababababab","source":"kernel","status":"hashed"},"inode":1234,"name":"memfd:abc","path":"/usr/bin/true"},"interpreter":"/bin/sh","is_deleted":true,"is_memfd":true,"truncated":{"args":true,"name":true,"path":true}},"hook":"tp_btf/sched_process_exec","kind":"exec","process":{"cgroup":{"id":7},"comm":"�\\xe","gid":1000,"pid":10,"tid":10,"uid":1000},"ts":"t"}"#,
        ),
        (
            "bare",
            r#"{"exec":{"args":[],"args_missing":true,"argv0":null,"caps":{"effective":0,"permitted":0},"euid":0,"file":{"name":"true","path":"/usr/bin/true"},"interpreter":"","is_deleted":false,"is_memfd":false,"truncated":{"args":false,"name":false,"path":false}},"hook":"tp_btf/sched_process_exec","kind":"exec","process":{"cgroup":{"id":7},"comm":"true","gid":1000,"pid":10,"ppid":1,"tid":10,"uid":1000},"ts":"t"}"#,
        ),
        (
            "only argv0",
            r#"{"exec":{"args":[],"args_missing":false,"argv0":"true","env_truncated":false,"envs":[],"file":{"name":"true","path":"/usr/bin/true"},"is_deleted":false,"is_memfd":false,"truncated":{"args":false,"name":false,"path":false}},"hook":"tp_btf/sched_process_exec","kind":"exec","process":{"cgroup":{"id":7},"comm":"true","gid":1000,"pid":10,"ppid":1,"tid":10,"uid":1000},"ts":"t"}"#,
        ),
    ];

    #[test]
    fn the_typed_event_writes_the_json_tree_builder_lines() {
        for ((what, rec), (golden_what, line)) in golden_records().into_iter().zip(GOLDEN) {
            assert_eq!(what, golden_what);
            assert_eq!(serde_json::to_string(&typed(&rec)).unwrap(), line, "{what}");
            let tree = crate::pipeline::exec_event::exec_event(&rec, "t");
            assert_eq!(
                serde_json::to_string(&tree).unwrap(),
                line,
                "{what} as a tree"
            );
        }
    }
}
