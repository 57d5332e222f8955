//! Turns a decoded `ExecRecord` into the event JSON that the audit log holds and the policy
//! evaluates (`field a.b.c` at JSON pointer `/a/b/c`, see the policy crate's schema).

use enforcer_common::event::{
    EXEC_ARGS_MISSING, EXEC_ARGS_TRUNCATED, EXEC_NAME_TRUNCATED, EXEC_PATH_TRUNCATED, EventHeader,
    ExecRecord, Hook,
};
use serde_json::{Value, json};

/// The bytes of `buf` up to `len` (clamped to the buffer) and before the first NUL, as text.
pub(crate) fn text(buf: &[u8], len: usize) -> String {
    let valid = &buf[..len.min(buf.len())];
    let end = valid.iter().position(|&b| b == 0).unwrap_or(valid.len());
    String::from_utf8_lossy(&valid[..end]).into_owned()
}

/// Splits the NUL-separated argument block into `argv0` and the remaining arguments.
fn split_args(rec: &ExecRecord) -> (Option<String>, Vec<String>) {
    let valid = &rec.args[..(rec.args_len as usize).min(rec.args.len())];
    let mut parts = valid
        .strip_suffix(&[0])
        .unwrap_or(valid)
        .split(|&b| b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned());
    if valid.is_empty() {
        return (None, Vec::new());
    }
    let argv0 = parts.next();
    (argv0, parts.collect())
}

/// Name of the hook that produced a record.
pub fn hook_name(hook: u32) -> &'static str {
    match Hook::try_from(hook) {
        Ok(Hook::LsmBprmCheckSecurity) => "lsm/bprm_check_security",
        Ok(Hook::TpSchedProcessExec) => "raw_tp/sched_process_exec",
        Ok(Hook::TpSysEnterWrite) => "tp/syscalls/sys_enter_write",
        Ok(Hook::TpSysEnterSendto) => "tp/syscalls/sys_enter_sendto",
        Ok(Hook::LsmSocketSendmsg) => "lsm/socket_sendmsg",
        Ok(Hook::TpSysEnterSendmsg) => "tp/syscalls/sys_enter_sendmsg",
        Ok(Hook::TpSysEnterSendmmsg) => "tp/syscalls/sys_enter_sendmmsg",
        Ok(Hook::TpSysEnterConnect) => "tp/syscalls/sys_enter_connect",
        Ok(Hook::LsmSocketConnect) => "lsm/socket_connect",
        Ok(Hook::TpSchedProcessFork) => "raw_tp/sched_process_fork",
        Ok(Hook::TpSchedProcessExit) => "raw_tp/sched_process_exit",
        Ok(Hook::TpSysEnterBind) => "tp/syscalls/sys_enter_bind",
        Ok(Hook::TpSysExitAccept) => "tp/syscalls/sys_exit_accept{,4}",
        Ok(Hook::CgroupSkbIngress) => "cgroup_skb/ingress",
        Ok(Hook::TpSysEnterWritev) => "tp/syscalls/sys_enter_writev",
        Ok(Hook::TpSysEnterKernel) => "tp/syscalls/sys_enter_*",
        Ok(Hook::LsmKernelReadFile) => "lsm/kernel_read_file",
        Ok(Hook::LsmKernelLoadData) => "lsm/kernel_load_data",
        Ok(Hook::LsmPtraceAccessCheck) => "lsm/ptrace_access_check",
        Ok(Hook::LsmPtraceTraceme) => "lsm/ptrace_traceme",
        Err(_) => "unknown",
    }
}

/// The `process` object of an event, from its header and the task's comm. `ppid` is left out
/// when the record does not carry it (0), so the process cache can fill it in.
pub(crate) fn process_json(h: &EventHeader, comm: &[u8]) -> Value {
    let mut process = json!({
        "pid": h.tgid,
        "tid": h.pid,
        "uid": h.uid,
        "gid": h.gid,
        "comm": text(comm, comm.len()),
        "cgroup": { "id": h.cgroup_id },
    });
    if h.ppid != 0
        && let Value::Object(map) = &mut process
    {
        map.insert("ppid".into(), Value::from(h.ppid));
    }
    process
}

/// The event JSON of an exec record. `ts` is the wall-clock time of the kernel timestamp.
pub fn exec_event(rec: &ExecRecord, ts: &str) -> Value {
    let h = &rec.header;
    let (argv0, args) = split_args(rec);
    let name = text(&rec.name, rec.name_len as usize);
    let path = text(&rec.path, rec.path_len as usize);
    let mut file = json!({ "path": path, "name": name });
    if rec.file.ino != 0 {
        file["inode"] = Value::from(rec.file.ino);
        file["dev"] = Value::from(rec.file.user_dev());
    }
    json!({
        "kind": "exec",
        "ts": ts,
        "hook": hook_name(h.hook),
        "process": process_json(h, &rec.comm),
        "exec": {
            "file": file,
            "argv0": argv0,
            "args": args,
            "truncated": {
                "name": rec.flags & EXEC_NAME_TRUNCATED != 0,
                "path": rec.flags & EXEC_PATH_TRUNCATED != 0,
                "args": rec.flags & EXEC_ARGS_TRUNCATED != 0,
            },
            "args_missing": rec.flags & EXEC_ARGS_MISSING != 0,
            // The kernel names a memfd's file `memfd:<name>` (fileless execution, F11).
            "is_memfd": name.starts_with("memfd:"),
        },
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::pipeline::decode::test_exec_record;

    #[test]
    fn exec_event_has_the_policy_shape() {
        let ev = exec_event(&test_exec_record(), "t");
        assert_eq!(ev["kind"], "exec");
        assert_eq!(ev["exec"]["file"]["path"], "/usr/bin/true");
        assert_eq!(ev["exec"]["file"]["name"], "true");
        assert_eq!(ev["exec"]["argv0"], "true");
        assert_eq!(ev["exec"]["args"], json!(["-x", "yz"]));
        assert_eq!(ev["process"]["pid"], 10);
        assert_eq!(ev["process"]["ppid"], 1);
        assert_eq!(ev["process"]["comm"], "true");
        assert_eq!(ev["process"]["cgroup"]["id"], 7);
        assert_eq!(ev["exec"]["truncated"]["args"], false);
        assert_eq!(ev["exec"]["is_memfd"], false);
        assert!(ev["exec"]["file"].get("inode").is_none(), "identity unread");
    }

    #[test]
    fn the_file_identity_is_reported_in_stat_terms() {
        let mut rec = test_exec_record();
        rec.file = enforcer_common::plan::InodeKey {
            ino: 1234,
            ctime_sec: 5,
            ctime_nsec: 6,
            dev: (8 << 20) | 1,
        };
        let ev = exec_event(&rec, "t");
        assert_eq!(ev["exec"]["file"]["inode"], 1234);
        assert_eq!(ev["exec"]["file"]["dev"], 0x801);
    }

    #[test]
    fn lengths_beyond_buffers_are_clamped() {
        let mut rec = test_exec_record();
        rec.name_len = u32::MAX;
        rec.args_len = u32::MAX;
        rec.path_len = 0;
        let ev = exec_event(&rec, "t");
        assert_eq!(ev["exec"]["file"]["name"], "true");
        assert_eq!(ev["exec"]["file"]["path"], "");
        // The whole buffer is read: the real arguments come first, then the padding.
        assert_eq!(ev["exec"]["argv0"], "true");
        assert_eq!(ev["exec"]["args"][0], "-x");
        assert_eq!(ev["exec"]["args"][1], "yz");
    }

    #[test]
    fn missing_args_give_no_argv0() {
        let mut rec = test_exec_record();
        rec.args_len = 0;
        rec.flags = EXEC_ARGS_MISSING;
        let ev = exec_event(&rec, "t");
        assert_eq!(ev["exec"]["argv0"], Value::Null);
        assert_eq!(ev["exec"]["args_missing"], true);
    }
}
