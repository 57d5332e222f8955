//! The event JSON of a self-protection refusal (`TamperRecord`, `--self-protect`): who tried
//! what on the engine. The audit log writes it in a `tamper_denied` record.

use enforcer_common::{
    event::Hook,
    guard::{GUARD_DETAIL_AUDIT_LOG, TamperRecord},
};
use serde_json::{Value, json};

use super::exec_event::{hook_name, process_json};

/// What a guard protects, by the hook that refused and its detail: `signal`, `ptrace`, `unpin`
/// (unlink, rmdir or rename in the pin directories), `umount` (the pins' bpffs), `map_write`
/// or `audit_log` (an audit log file removed, renamed, truncated or opened for writing).
pub fn guard_name(hook: u32, detail: u32) -> &'static str {
    match Hook::try_from(hook) {
        Ok(Hook::LsmGuardTaskKill) => "signal",
        Ok(Hook::LsmGuardPtrace) => "ptrace",
        Ok(Hook::LsmGuardPathUnlink | Hook::LsmGuardPathRmdir | Hook::LsmGuardPathRename) => {
            if detail == GUARD_DETAIL_AUDIT_LOG {
                "audit_log"
            } else {
                "unpin"
            }
        }
        Ok(Hook::LsmGuardSbUmount) => "umount",
        Ok(Hook::LsmGuardBpfMap) => "map_write",
        Ok(Hook::LsmGuardPathTruncate | Hook::LsmGuardFileTruncate | Hook::LsmGuardFileOpen) => {
            "audit_log"
        }
        _ => "unknown",
    }
}

/// The operation an `audit_log` refusal stopped.
fn log_operation(hook: u32) -> &'static str {
    match Hook::try_from(hook) {
        Ok(Hook::LsmGuardPathUnlink) => "unlink",
        Ok(Hook::LsmGuardPathRename) => "rename",
        Ok(Hook::LsmGuardPathTruncate | Hook::LsmGuardFileTruncate) => "truncate",
        Ok(Hook::LsmGuardFileOpen) => "open_write",
        _ => "other",
    }
}

/// The event of a refused attempt; `ts` is the wall-clock time of its kernel timestamp.
pub fn tamper_event(rec: &TamperRecord, ts: &str) -> Value {
    let h = &rec.header;
    let guard = guard_name(h.hook, rec.detail);
    let tamper = match guard {
        "signal" => json!({ "guard": guard, "engine_pid": rec.target, "signal": rec.detail }),
        "ptrace" => json!({ "guard": guard, "engine_pid": rec.target, "mode": rec.detail }),
        "unpin" => json!({ "guard": guard, "dir_inode": rec.target }),
        "umount" => json!({ "guard": guard, "dev": rec.target, "flags": rec.detail }),
        "map_write" => json!({ "guard": guard, "map_id": rec.target, "fmode": rec.detail }),
        "audit_log" => json!({
            "guard": guard, "inode": rec.target, "operation": log_operation(h.hook),
        }),
        _ => json!({ "guard": guard, "target": rec.target, "detail": rec.detail }),
    };
    json!({
        "kind": "tamper",
        "ts": ts,
        "hook": hook_name(h.hook),
        "process": process_json(h, &rec.comm),
        "tamper": tamper,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::pipeline::decode::{Decoded, as_bytes, decode, test_header};
    use enforcer_common::event::{EventKind, OUTCOME_DENIED};

    fn record(hook: Hook, target: u64, detail: u32) -> TamperRecord {
        let mut header = test_header::<TamperRecord>(EventKind::Tamper, hook);
        header.outcome = OUTCOME_DENIED;
        let mut comm = [0u8; 16];
        comm[..4].copy_from_slice(b"kill");
        TamperRecord {
            header,
            target,
            detail,
            _pad: 0,
            comm,
        }
    }

    #[test]
    fn a_refused_signal_decodes_into_a_tamper_event() {
        let rec = record(Hook::LsmGuardTaskKill, 4242, 9);
        let decoded = decode(as_bytes(&rec)).expect("decodes");
        let Decoded::Tamper(back) = decoded else {
            panic!("not a tamper record: {decoded:?}");
        };
        let event = tamper_event(&back, "t");
        assert_eq!(event["kind"], "tamper");
        assert_eq!(event["hook"], "lsm/task_kill");
        assert_eq!(event["tamper"]["guard"], "signal");
        assert_eq!(event["tamper"]["signal"], 9);
        assert_eq!(event["tamper"]["engine_pid"], 4242);
        assert_eq!(event["process"]["comm"], "kill");
    }

    #[test]
    fn each_guard_hook_has_its_name_and_fields() {
        let cases = [
            (Hook::LsmGuardPtrace, "ptrace", "mode"),
            (Hook::LsmGuardPathUnlink, "unpin", "dir_inode"),
            (Hook::LsmGuardPathRmdir, "unpin", "dir_inode"),
            (Hook::LsmGuardPathRename, "unpin", "dir_inode"),
            (Hook::LsmGuardSbUmount, "umount", "flags"),
            (Hook::LsmGuardBpfMap, "map_write", "map_id"),
            (Hook::LsmGuardPathTruncate, "audit_log", "operation"),
            (Hook::LsmGuardFileTruncate, "audit_log", "operation"),
            (Hook::LsmGuardFileOpen, "audit_log", "operation"),
        ];
        for (hook, guard, field) in cases {
            let event = tamper_event(&record(hook, 7, 2), "t");
            assert_eq!(event["tamper"]["guard"], guard, "{hook:?}");
            assert!(event["tamper"].get(field).is_some(), "{hook:?}: {event}");
            assert_ne!(event["hook"], "unknown", "{hook:?}");
        }
        assert_eq!(guard_name(Hook::LsmBpf as u32, 0), "unknown");
        let unlink = tamper_event(
            &record(Hook::LsmGuardPathUnlink, 7, GUARD_DETAIL_AUDIT_LOG),
            "t",
        );
        assert_eq!(unlink["tamper"]["guard"], "audit_log");
        assert_eq!(unlink["tamper"]["operation"], "unlink");
    }

    #[test]
    fn a_short_tamper_record_is_an_error() {
        let rec = record(Hook::LsmGuardTaskKill, 1, 9);
        let bytes = as_bytes(&rec);
        assert!(decode(&bytes[..bytes.len() - 1]).is_err());
    }
}
