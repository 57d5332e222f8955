//! Turns decoded `FileRecord`s into the event JSON of the file kinds (`open`, `unlink`,
//! `rename`, `chmod`, `chown`, `link`, `mkdir`, `rmdir`, `setxattr`, `utimes`, `truncate`,
//! `mount`, `umount`): the kind's own object (`open.file.path`, `open.flags`,
//! `rename.old.path`, `rename.new.path`, `chmod.mode`, `chown.uid`, `link.target.path`,
//! `link.is_symlink`, `setxattr.name`, `mount.target`, `mount.source`, `mount.fstype`, ...),
//! and a common `file` object (`file.operation`, `file.path`, `file.name`,
//! `file.path_truncated`, and the path flags; `file.new_path` for two-path kinds), so
//! truncation or an unresolved path is never silent.

use enforcer_common::file::{
    FILE_NEW_PATH_TRUNCATED, FILE_PATH_DOTS, FILE_PATH_RELATIVE, FILE_PATH_TRUNCATED,
    FILE_PATH_UNRESOLVED, FileOp, FileRecord,
};
use serde_json::{Map, Value, json};

use super::{
    exec_event::{hook_name, process_json, text},
    lexical_path::has_dot_component,
};

/// The event kind and operation name of a record's `op`.
fn kind_of(op: u32) -> (&'static str, &'static str) {
    match FileOp::from_u32(op) {
        Some(FileOp::OpenWrite) => ("open", "open_write"),
        Some(FileOp::OpenRead) => ("open", "open_read"),
        Some(FileOp::Unlink) => ("unlink", "unlink"),
        Some(FileOp::Rename) => ("rename", "rename"),
        Some(FileOp::Chmod) => ("chmod", "chmod"),
        Some(FileOp::Chown) => ("chown", "chown"),
        Some(FileOp::Link) => ("link", "link"),
        Some(FileOp::Symlink) => ("link", "symlink"),
        Some(FileOp::Mkdir) => ("mkdir", "mkdir"),
        Some(FileOp::Rmdir) => ("rmdir", "rmdir"),
        Some(FileOp::Setxattr) => ("setxattr", "setxattr"),
        Some(FileOp::Utimes) => ("utimes", "utimes"),
        Some(FileOp::Truncate) => ("truncate", "truncate"),
        Some(FileOp::Mount) => ("mount", "mount"),
        Some(FileOp::Umount) => ("umount", "umount"),
        None => ("file", "unknown"),
    }
}

/// The last component of `path`.
fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// A `{"path", "name"}` object.
fn path_obj(path: &str) -> Value {
    json!({ "path": path, "name": basename(path) })
}

/// The event JSON of a file record.
pub fn file_event(rec: &FileRecord, ts: &str) -> Value {
    let written = text(&rec.path, rec.path_len as usize);
    let new_written = text(&rec.new_path, rec.new_path_len as usize);
    let (kind, operation) = kind_of(rec.op);
    // Rules see the cleaned paths (`lexical_path`); the second string is a path only for a
    // rename and a hard link (a symlink's is its text, a setxattr's an attribute name).
    let second_is_path = matches!((kind, operation), ("rename", _) | ("link", "link"));
    let path = super::lexical_path::clean(&written).unwrap_or_else(|| written.clone());
    let new_path = second_is_path
        .then(|| super::lexical_path::clean(&new_written))
        .flatten()
        .unwrap_or_else(|| new_written.clone());
    let body = match kind {
        "open" => json!({
            "file": path_obj(&path),
            "flags": rec.open_flags,
            "mode": rec.mode,
        }),
        "rename" => json!({
            "old": path_obj(&path),
            "new": path_obj(&new_path),
        }),
        "chmod" => json!({ "file": path_obj(&path), "mode": rec.mode & 0o7777 }),
        "chown" => {
            let mut obj = Map::new();
            obj.insert("file".into(), path_obj(&path));
            // u32::MAX (-1): unchanged; left out so a rule on the new owner never sees it.
            if rec.uid != u32::MAX {
                obj.insert("uid".into(), Value::from(rec.uid));
            }
            if rec.gid != u32::MAX {
                obj.insert("gid".into(), Value::from(rec.gid));
            }
            Value::Object(obj)
        }
        "link" => json!({
            "file": path_obj(&path),
            "target": path_obj(&new_path),
            "is_symlink": operation == "symlink",
        }),
        "mkdir" => json!({ "file": path_obj(&path), "mode": rec.mode & 0o7777 }),
        "setxattr" => json!({ "file": path_obj(&path), "name": new_path }),
        "mount" => json!({
            "target": path,
            "source": new_path,
            "fstype": text(&rec.fstype, rec.fstype.len()),
            "flags": rec.open_flags,
        }),
        "umount" => json!({ "target": path, "flags": rec.open_flags }),
        _ => json!({ "file": path_obj(&path) }),
    };
    let flag = |bit: u32| rec.flags & bit != 0;
    let mut file = json!({
        "operation": operation,
        "path": path,
        "name": basename(&path),
        "path_truncated": flag(FILE_PATH_TRUNCATED),
        "path_relative": flag(FILE_PATH_RELATIVE),
        "path_dots": flag(FILE_PATH_DOTS)
            || has_dot_component(&written)
            || (second_is_path && has_dot_component(&new_written)),
        "path_unresolved": flag(FILE_PATH_UNRESOLVED),
    });
    if let Value::Object(map) = &mut file {
        if path != written {
            map.insert("path_as_written".into(), Value::from(written));
        }
        if new_path != new_written {
            map.insert("new_path_as_written".into(), Value::from(new_written));
        }
    }
    if matches!(kind, "rename" | "link")
        && let Value::Object(map) = &mut file
    {
        map.insert("new_path".into(), Value::from(new_path));
        map.insert(
            "new_path_truncated".into(),
            Value::from(flag(FILE_NEW_PATH_TRUNCATED)),
        );
    }
    let mut event = json!({
        "kind": kind,
        "ts": ts,
        "hook": hook_name(rec.header.hook),
        "process": process_json(&rec.header, &rec.comm),
        "file": file,
    });
    if let Value::Object(map) = &mut event {
        map.insert(kind.into(), body);
    }
    event
}

/// A file record for tests: `op` on `path` (and `new_path`).
#[cfg(test)]
#[allow(clippy::cast_possible_truncation)]
pub(crate) fn test_file_record(op: FileOp, path: &str, new_path: &str) -> FileRecord {
    use enforcer_common::{
        event::{COMM_LEN, EventKind, Hook},
        file::FILE_PATH_LEN,
    };
    let mut rec = FileRecord {
        header: super::decode::test_header::<FileRecord>(EventKind::File, Hook::TpSysEnterPath),
        op: op as u32,
        flags: 0,
        open_flags: 0o1,
        mode: 0o100644,
        uid: u32::MAX,
        gid: u32::MAX,
        path_len: path.len() as u32,
        new_path_len: new_path.len() as u32,
        path: [0; FILE_PATH_LEN],
        new_path: [0; FILE_PATH_LEN],
        comm: [0; COMM_LEN],
        fstype: [0; enforcer_common::file::FILE_FSTYPE_LEN],
    };
    rec.path[..path.len()].copy_from_slice(path.as_bytes());
    rec.new_path[..new_path.len()].copy_from_slice(new_path.as_bytes());
    rec.comm[..2].copy_from_slice(b"sh");
    rec
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]
    use super::*;
    use crate::pipeline::decode::{Decoded, as_bytes, decode};

    #[test]
    fn file_records_round_trip() {
        let rec = test_file_record(FileOp::Rename, "/etc/a", "/etc/b");
        assert_eq!(decode(as_bytes(&rec)), Ok(Decoded::File(rec)));
        let bytes = as_bytes(&rec);
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_err());
        }
    }

    #[test]
    fn open_event_has_the_schema_fields() {
        let rec = test_file_record(FileOp::OpenWrite, "/etc/shadow", "");
        let ev = file_event(&rec, "t");
        assert_eq!(ev["kind"], "open");
        assert_eq!(ev["open"]["file"]["path"], "/etc/shadow");
        assert_eq!(ev["open"]["file"]["name"], "shadow");
        assert_eq!(ev["open"]["flags"], 1);
        assert_eq!(ev["file"]["operation"], "open_write");
        assert_eq!(ev["file"]["path_truncated"], false);
        let policy = enforcer_policy::load_str(
            "p.yaml",
            "rules:\n  - id: w\n    expression: open.file.path == \"/etc/shadow\" && open.is_write\n    action: alert\n",
        )
        .unwrap();
        let event = enforcer_policy::Event::from_json(&ev).unwrap();
        assert_eq!(policy.eval(&event).len(), 1);
    }

    #[test]
    fn rename_and_truncation_are_reported() {
        let mut rec = test_file_record(FileOp::Rename, "/etc/a", "/etc/cron.d/b");
        rec.flags = FILE_PATH_TRUNCATED | FILE_NEW_PATH_TRUNCATED;
        let ev = file_event(&rec, "t");
        assert_eq!(ev["rename"]["old"]["path"], "/etc/a");
        assert_eq!(ev["rename"]["new"]["path"], "/etc/cron.d/b");
        assert_eq!(ev["file"]["path_truncated"], true);
        assert_eq!(ev["file"]["new_path_truncated"], true);
    }

    /// Catalog F7/F8: the default policy's MSR and huge-page rules match the file events the
    /// kernel now reports, and the CPU correlator counts them as miner indicators.
    #[test]
    fn default_miner_file_rules_are_cpu_indicators() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policy/default");
        let policy = enforcer_policy::load(&dir).unwrap();
        for (path, rule) in [
            ("/proc/sys/vm/nr_hugepages", "hugepages-write"),
            ("/dev/cpu/0/msr", "msr-device-write"),
            (
                "/sys/module/msr/parameters/allow_writes",
                "msr-allow-writes-sysfs",
            ),
        ] {
            let rec = test_file_record(FileOp::OpenWrite, path, "");
            let event = enforcer_policy::Event::from_json(&file_event(&rec, "t")).unwrap();
            let matches = policy.eval(&event);
            let m = matches
                .iter()
                .find(|m| &*m.rule_id == rule)
                .unwrap_or_else(|| panic!("{path}: {rule} did not match: {matches:?}"));
            let info = &policy.rules()[m.rule_index as usize];
            assert!(crate::cpu::indicators::is_miner_indicator(info), "{rule}");
        }
        // A read-only open of /dev/mem (F7) is reported as `open_read` and alerted.
        let mut rec = test_file_record(FileOp::OpenRead, "/dev/mem", "");
        rec.open_flags = 0;
        let event = enforcer_policy::Event::from_json(&file_event(&rec, "t")).unwrap();
        assert!(
            policy
                .eval(&event)
                .iter()
                .any(|m| &*m.rule_id == "raw-memory-device-open")
        );
    }

    /// The operations of issue 4 beyond open/unlink/rename/chmod/chown: each op's kind, body
    /// and the default policy's two new rules.
    #[test]
    fn new_file_operations_have_their_kind_and_fields() {
        let rec = test_file_record(FileOp::Symlink, "/etc/cron.d/job", "/tmp/x");
        let ev = file_event(&rec, "t");
        assert_eq!(ev["kind"], "link");
        assert_eq!(ev["file"]["operation"], "symlink");
        assert_eq!(ev["link"]["file"]["path"], "/etc/cron.d/job");
        assert_eq!(ev["link"]["target"]["path"], "/tmp/x");
        assert_eq!(ev["link"]["is_symlink"], true);
        assert_eq!(ev["file"]["new_path"], "/tmp/x");
        let ev = file_event(&test_file_record(FileOp::Link, "/a/h", "/a/f"), "t");
        assert_eq!(
            (&ev["kind"], &ev["link"]["is_symlink"]),
            (&"link".into(), &false.into())
        );
        let mut rec = test_file_record(FileOp::Mkdir, "/a/d", "");
        rec.mode = 0o40750;
        let ev = file_event(&rec, "t");
        assert_eq!(
            (&ev["kind"], &ev["mkdir"]["mode"]),
            (&"mkdir".into(), &0o750.into())
        );
        let ev = file_event(&test_file_record(FileOp::Setxattr, "/a/f", "user.x"), "t");
        assert_eq!(ev["setxattr"]["name"], "user.x");
        assert_eq!(ev["setxattr"]["file"]["path"], "/a/f");
        assert!(ev["file"].get("new_path").is_none());
        for (op, kind) in [
            (FileOp::Rmdir, "rmdir"),
            (FileOp::Utimes, "utimes"),
            (FileOp::Truncate, "truncate"),
        ] {
            let ev = file_event(&test_file_record(op, "/a/f", ""), "t");
            assert_eq!(
                (&ev["kind"], &ev[kind]["file"]["path"]),
                (&kind.into(), &"/a/f".into())
            );
            assert_eq!(ev["file"]["operation"], kind);
        }
        let mut rec = test_file_record(FileOp::Mount, "/proc/1234", "/tmp/empty");
        rec.fstype[..4].copy_from_slice(b"none");
        rec.open_flags = 4096;
        let ev = file_event(&rec, "t");
        assert_eq!(ev["mount"]["target"], "/proc/1234");
        assert_eq!(ev["mount"]["source"], "/tmp/empty");
        assert_eq!(ev["mount"]["fstype"], "none");
        assert_eq!(ev["mount"]["flags"], 4096);
        let ev = file_event(&test_file_record(FileOp::Umount, "/mnt/x", ""), "t");
        assert_eq!(ev["umount"]["target"], "/mnt/x");

        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policy/default");
        let policy = enforcer_policy::load(&dir).unwrap();
        let rules = |rec: &FileRecord| -> Vec<String> {
            let event = enforcer_policy::Event::from_json(&file_event(rec, "t")).unwrap();
            policy
                .eval(&event)
                .iter()
                .map(|m| m.rule_id.to_string())
                .collect()
        };
        assert!(rules(&rec).contains(&"mount-over-proc-pid".to_owned()));
        let sys = test_file_record(FileOp::Mount, "/proc/sys/fs/binfmt_misc", "binfmt_misc");
        assert!(!rules(&sys).contains(&"mount-over-proc-pid".to_owned()));
        let link = test_file_record(FileOp::Symlink, "/etc/cron.d/job", "/tmp/x");
        assert!(rules(&link).contains(&"fim-persistence-link".to_owned()));
        let unit = test_file_record(
            FileOp::Symlink,
            "/etc/systemd/system/multi-user.target.wants/a.service",
            "/lib/systemd/system/a.service",
        );
        assert!(!rules(&unit).contains(&"fim-persistence-link".to_owned()));
    }

    #[test]
    fn chown_leaves_unchanged_ids_out() {
        let mut rec = test_file_record(FileOp::Chown, "/etc/passwd", "");
        rec.uid = 0;
        let ev = file_event(&rec, "t");
        assert_eq!(ev["chown"]["uid"], 0);
        assert_eq!(ev["file"]["path_dots"], false);
        let rec = test_file_record(FileOp::Unlink, "/tmp/../etc/passwd", "");
        assert_eq!(file_event(&rec, "t")["file"]["path_dots"], true);
        assert!(ev["chown"].get("gid").is_none());
    }

    #[test]
    fn paths_written_with_dots_are_cleaned_but_a_symlink_text_is_not() {
        let rec = test_file_record(FileOp::Rename, "/tmp/../etc/a", "/etc//cron.d/./b");
        let ev = file_event(&rec, "t");
        assert_eq!(ev["rename"]["old"]["path"], "/etc/a");
        assert_eq!(ev["rename"]["new"]["path"], "/etc/cron.d/b");
        assert_eq!(ev["file"]["path_as_written"], "/tmp/../etc/a");
        assert_eq!(ev["file"]["new_path_as_written"], "/etc//cron.d/./b");
        let rec = test_file_record(FileOp::Symlink, "/usr/lib/x", "../../lib/x");
        let ev = file_event(&rec, "t");
        assert_eq!(ev["link"]["target"]["path"], "../../lib/x");
        assert_eq!(ev["file"]["path_dots"], false, "{ev}");
        assert!(ev["file"].get("new_path_as_written").is_none());
    }
}
