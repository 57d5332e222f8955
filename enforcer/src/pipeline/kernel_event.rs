//! Turns a decoded `KernelRecord` into the event JSON of kind `kernel` (`kernel.op`,
//! `kernel.module.name`, `kernel.bpf.cmd`, `kernel.target.pid`, `kernel.creds.*`, ...; the
//! policy crate's schema lists them). Every length is clamped to its buffer; unknown numeric
//! values (bpf commands and types, namespace bits) are reported as numbers, never dropped.

use enforcer_common::{
    event::Hook,
    kernel_event::{
        CredIds, KERNEL_CREDS_UNKNOWN, KERNEL_DATA_TRUNCATED, KERNEL_DATA_UNREAD,
        KERNEL_NAME_TRUNCATED, KERNEL_NAME_UNKNOWN, KernelOp, KernelRecord, KernelSyscall,
    },
};
use serde_json::{Map, Value, json};

use super::exec_event::{hook_name, process_json, text};

/// `bpf(2)` command names of the commands the kernel reports.
fn bpf_cmd(cmd: u64) -> String {
    match cmd {
        0 => "map_create".into(),
        5 => "prog_load".into(),
        8 => "prog_attach".into(),
        17 => "raw_tracepoint_open".into(),
        18 => "btf_load".into(),
        28 => "link_create".into(),
        other => format!("cmd{other}"),
    }
}

/// `enum bpf_prog_type` names (UAPI, append-only).
const PROG_TYPES: [&str; 33] = [
    "unspec",
    "socket_filter",
    "kprobe",
    "sched_cls",
    "sched_act",
    "tracepoint",
    "xdp",
    "perf_event",
    "cgroup_skb",
    "cgroup_sock",
    "lwt_in",
    "lwt_out",
    "lwt_xmit",
    "sock_ops",
    "sk_skb",
    "cgroup_device",
    "sk_msg",
    "raw_tracepoint",
    "cgroup_sock_addr",
    "lwt_seg6local",
    "lirc_mode2",
    "sk_reuseport",
    "flow_dissector",
    "cgroup_sysctl",
    "raw_tracepoint_writable",
    "cgroup_sockopt",
    "tracing",
    "struct_ops",
    "ext",
    "lsm",
    "sk_lookup",
    "syscall",
    "netfilter",
];

/// `enum bpf_map_type` names (UAPI, append-only).
const MAP_TYPES: [&str; 34] = [
    "unspec",
    "hash",
    "array",
    "prog_array",
    "perf_event_array",
    "percpu_hash",
    "percpu_array",
    "stack_trace",
    "cgroup_array",
    "lru_hash",
    "lru_percpu_hash",
    "lpm_trie",
    "array_of_maps",
    "hash_of_maps",
    "devmap",
    "sockmap",
    "cpumap",
    "xskmap",
    "sockhash",
    "cgroup_storage",
    "reuseport_sockarray",
    "percpu_cgroup_storage",
    "queue",
    "stack",
    "sk_storage",
    "devmap_hash",
    "struct_ops",
    "ringbuf",
    "inode_storage",
    "task_storage",
    "bloom_filter",
    "user_ringbuf",
    "cgrp_storage",
    "arena",
];

fn type_name(names: &[&str], value: u32) -> String {
    names
        .get(value as usize)
        .map_or_else(|| format!("type{value}"), |s| (*s).to_owned())
}

/// A little-endian u32 at `at` of the valid `data`, `None` beyond it.
fn le_u32(data: &[u8], at: usize) -> Option<u32> {
    let bytes = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

/// A NUL-padded name of `len` bytes at `at` of `data`, `None` beyond it.
fn fixed_name(data: &[u8], at: usize, len: usize) -> Option<String> {
    let bytes = data.get(at..at.checked_add(len)?)?;
    Some(text(bytes, len))
}

/// The `bpf` object: the command, and for a program load / map creation the type and name
/// from `union bpf_attr` (`prog_type` at 0, `prog_name` at 48; `map_type` at 0, `map_name`
/// at 28), when the caller's structure is long enough to hold them.
fn bpf_json(rec: &KernelRecord, data: &[u8]) -> Value {
    let cmd = rec.args[0];
    let mut obj = json!({ "cmd": bpf_cmd(cmd), "cmd_id": cmd, "attr_size": rec.args[1] });
    match cmd {
        5 => {
            let mut prog = Map::new();
            if let Some(t) = le_u32(data, 0) {
                prog.insert("type".into(), Value::from(type_name(&PROG_TYPES, t)));
            }
            if let Some(name) = fixed_name(data, 48, 16) {
                prog.insert("name".into(), Value::from(name));
            }
            obj["prog"] = Value::Object(prog);
        }
        0 => {
            let mut map = Map::new();
            if let Some(t) = le_u32(data, 0) {
                map.insert("type".into(), Value::from(type_name(&MAP_TYPES, t)));
            }
            if let Some(name) = fixed_name(data, 28, 16) {
                map.insert("name".into(), Value::from(name));
            }
            obj["map"] = Value::Object(map);
        }
        _ => {}
    }
    obj
}

/// `ptrace` request names.
fn ptrace_request(request: u64) -> String {
    match request {
        0 => "traceme".into(),
        16 => "attach".into(),
        0x4206 => "seize".into(),
        other => format!("request{other}"),
    }
}

/// Namespace names of `CLONE_NEW*` bits.
const NS_BITS: [(u64, &str); 8] = [
    (0x0002_0000, "mnt"),
    (0x0200_0000, "cgroup"),
    (0x0400_0000, "uts"),
    (0x0800_0000, "ipc"),
    (0x1000_0000, "user"),
    (0x2000_0000, "pid"),
    (0x4000_0000, "net"),
    (0x0000_0080, "time"),
];

fn ns_types(flags: u64) -> Vec<&'static str> {
    NS_BITS
        .iter()
        .filter(|(bit, _)| flags & bit != 0)
        .map(|(_, name)| *name)
        .collect()
}

/// What a record's hook saw: a syscall at entry (`attempt`), a loaded module (`loaded`), or
/// an LSM permission check (`permission_check`).
fn stage(hook: u32) -> &'static str {
    match Hook::try_from(hook) {
        Ok(Hook::TpSysEnterKernel | Hook::FentrySysEnterKernel) => "attempt",
        Ok(Hook::TpModuleLoad) => "loaded",
        _ => "permission_check",
    }
}

/// The module name a module file's basename stands for: `msr.ko.zst` -> `msr`, dashes as
/// underscores (the kernel's spelling).
pub fn module_name_of_file(file: &str) -> String {
    let mut name = file;
    for ext in [".zst", ".xz", ".gz"] {
        name = name.strip_suffix(ext).unwrap_or(name);
    }
    name = name.strip_suffix(".ko").unwrap_or(name);
    name.replace('-', "_")
}

const OLD_IDS: [&str; 8] = [
    "uid", "gid", "suid", "sgid", "euid", "egid", "fsuid", "fsgid",
];

fn old_json(old: &CredIds) -> Value {
    let mut obj: Map<String, Value> = OLD_IDS
        .iter()
        .zip(old.ids)
        .map(|(k, v)| ((*k).to_owned(), Value::from(v)))
        .collect();
    obj.insert(
        "caps".into(),
        json!({
            "inheritable": old.caps[0],
            "permitted": old.caps[1],
            "effective": old.caps[2],
        }),
    );
    Value::Object(obj)
}

/// `CAP_SETGID`, `CAP_SETUID`.
const CAP_SETGID: u32 = 6;
const CAP_SETUID: u32 = 7;

/// The ids a set*id call asks for, as the kernel would set them (`-1`: unchanged), with
/// `CAP_SETUID` / `CAP_SETGID` of the old effective set standing for "privileged". Returns
/// the `new` object (keys `uid, euid, suid, fsuid` or the gid ones) and the new effective id.
fn new_ids(syscall: KernelSyscall, args: [u64; 3], old: &CredIds) -> (Value, u32) {
    use KernelSyscall as S;
    let gid = matches!(
        syscall,
        S::Setgid | S::Setregid | S::Setresgid | S::Setfsgid
    );
    // (real, saved, effective, fs) indices into CredIds::ids.
    let (r, s, e, f) = if gid { (1, 3, 5, 7) } else { (0, 2, 4, 6) };
    let cap = if gid { CAP_SETGID } else { CAP_SETUID };
    let privileged = old.caps[2] & (1 << cap) != 0;
    let arg = |i: usize| -> Option<u32> {
        let v = u32::try_from(args[i] & 0xffff_ffff).ok()?;
        (v != u32::MAX).then_some(v)
    };
    let mut ids = old.ids;
    match syscall {
        S::Setuid | S::Setgid => {
            if let Some(v) = arg(0) {
                if privileged {
                    ids[r] = v;
                    ids[s] = v;
                }
                ids[e] = v;
                ids[f] = v;
            }
        }
        S::Setreuid | S::Setregid => {
            let old_real = ids[r];
            if let Some(v) = arg(0) {
                ids[r] = v;
            }
            if let Some(v) = arg(1) {
                ids[e] = v;
            }
            if arg(0).is_some() || arg(1).is_some_and(|v| v != old_real) {
                ids[s] = ids[e];
            }
            ids[f] = ids[e];
        }
        S::Setresuid | S::Setresgid => {
            if let Some(v) = arg(0) {
                ids[r] = v;
            }
            if let Some(v) = arg(1) {
                ids[e] = v;
            }
            if let Some(v) = arg(2) {
                ids[s] = v;
            }
            ids[f] = ids[e];
        }
        S::Setfsuid | S::Setfsgid => {
            if let Some(v) = arg(0) {
                ids[f] = v;
            }
        }
        _ => {}
    }
    let names = if gid {
        ["gid", "egid", "sgid", "fsgid"]
    } else {
        ["uid", "euid", "suid", "fsuid"]
    };
    let new = json!({
        names[0]: ids[r],
        names[1]: ids[e],
        names[2]: ids[s],
        names[3]: ids[f],
    });
    (new, ids[e])
}

/// The three 64-bit masks of `capset`'s two `__user_cap_data_struct` (effective, permitted,
/// inheritable; low 32 bits in the first struct).
fn capset_masks(data: &[u8]) -> Option<[u64; 3]> {
    let mut out = [0u64; 3];
    for (i, slot) in out.iter_mut().enumerate() {
        let low = u64::from(le_u32(data, 4 * i)?);
        let high = u64::from(le_u32(data, 12 + 4 * i)?);
        *slot = low | (high << 32);
    }
    Some(out)
}

/// The event JSON of a kernel-activity record. `ts` is the wall-clock time of the kernel
/// timestamp. A record whose syscall is unknown (the decoder refuses those) gets `op: unknown`.
pub fn kernel_event(rec: &KernelRecord, ts: &str) -> Value {
    let h = &rec.header;
    let name = text(&rec.name, rec.name_len as usize);
    let data = &rec.data[..(rec.data_len as usize).min(rec.data.len())];
    let Ok(syscall) = KernelSyscall::try_from(rec.syscall) else {
        return json!({
            "kind": "kernel", "ts": ts, "hook": hook_name(h.hook),
            "process": process_json(h, &rec.comm),
            "kernel": { "op": "unknown", "syscall_id": rec.syscall },
        });
    };
    let op = syscall.op();
    let hook = match Hook::try_from(h.hook) {
        Ok(Hook::TpSysEnterKernel) => format!("tp/syscalls/sys_enter_{}", syscall.name()),
        Ok(Hook::FentrySysEnterKernel) => format!("fentry/__x64_sys_{}", syscall.name()),
        _ => hook_name(h.hook).to_owned(),
    };
    let name_unknown = rec.flags & KERNEL_NAME_UNKNOWN != 0;
    let mut k = json!({
        "op": op.name(),
        "syscall": syscall.name(),
        "stage": stage(h.hook),
        "truncated": {
            "name": rec.flags & KERNEL_NAME_TRUNCATED != 0,
            "data": rec.flags & KERNEL_DATA_TRUNCATED != 0,
        },
    });
    if rec.flags & KERNEL_DATA_UNREAD != 0 {
        k["data_unread"] = Value::Bool(true);
    }
    use KernelSyscall as S;
    match syscall {
        S::InitModule | S::FinitModule | S::DeleteModule | S::ModuleLoaded => {
            let mut module = Map::new();
            if syscall == S::FinitModule && !name_unknown {
                module.insert("file".into(), Value::from(name.clone()));
                module.insert("name".into(), Value::from(module_name_of_file(&name)));
            } else if matches!(syscall, S::DeleteModule | S::ModuleLoaded) && !name_unknown {
                module.insert("name".into(), Value::from(name.clone()));
            } else {
                module.insert("name_unknown".into(), Value::Bool(true));
            }
            // Both the tracepoint and the LSM hooks read the parameters; when they could not
            // (`KERNEL_DATA_UNREAD`) the event says so rather than claiming none were given.
            // A loaded module's parameters are not in its record (see `KernelSyscall`).
            if !matches!(syscall, S::DeleteModule | S::ModuleLoaded) {
                if rec.flags & KERNEL_DATA_UNREAD != 0 {
                    module.insert("args_unknown".into(), Value::Bool(true));
                } else {
                    module.insert("args".into(), Value::from(text(data, data.len())));
                }
            }
            if syscall == S::DeleteModule {
                module.insert("flags".into(), Value::from(rec.args[0]));
            }
            k["module"] = Value::Object(module);
        }
        S::Bpf => k["bpf"] = bpf_json(rec, data),
        S::Ptrace => {
            k["ptrace"] = json!({ "request": ptrace_request(rec.args[0]) });
            if rec.args[0] != 0 {
                k["target"] = json!({ "pid": rec.args[1] });
            }
        }
        S::ProcessVmWritev => {
            k["ptrace"] = json!({ "request": "process_vm_writev" });
            k["target"] = json!({ "pid": rec.args[0] });
        }
        S::PtraceAccess => {
            k["ptrace"] = json!({ "request": "access", "mode": rec.args[0] });
            k["target"] = json!({ "pid": rec.args[1] });
        }
        S::PtraceTraceme => {
            k["ptrace"] = json!({ "request": "traceme" });
            k["target"] = json!({ "pid": rec.args[1] });
        }
        S::KexecLoad => {
            k["kexec"] =
                json!({ "entry": rec.args[0], "segments": rec.args[1], "flags": rec.args[2] });
        }
        S::KexecFileLoad => {
            let mut kexec =
                json!({ "kernel_fd": rec.args[0], "initrd_fd": rec.args[1], "flags": rec.args[2] });
            if !name_unknown {
                kexec["file"] = Value::from(name.clone());
                k["target"] = json!({ "path": name.clone() });
            }
            k["kexec"] = kexec;
        }
        S::Setuid
        | S::Setgid
        | S::Setreuid
        | S::Setregid
        | S::Setresuid
        | S::Setresgid
        | S::Setfsuid
        | S::Setfsgid => {
            let mut creds = json!({ "args": rec.args });
            if rec.flags & KERNEL_CREDS_UNKNOWN == 0 {
                let (new, effective) = new_ids(syscall, rec.args, &rec.old);
                creds["old"] = old_json(&rec.old);
                creds["new"] = new;
                k["value"] = Value::from(effective);
            } else {
                creds["unknown"] = Value::Bool(true);
            }
            k["creds"] = creds;
        }
        S::Capset => {
            let mut caps = json!({ "version": rec.args[0], "target": { "pid": rec.args[1] } });
            if rec.flags & KERNEL_CREDS_UNKNOWN == 0 {
                caps["old"] = old_json(&rec.old)["caps"].clone();
            }
            if let Some([effective, permitted, inheritable]) = capset_masks(data) {
                caps["new"] = json!({
                    "effective": effective,
                    "permitted": permitted,
                    "inheritable": inheritable,
                });
            }
            k["caps"] = caps;
        }
        S::Unshare => {
            k["ns"] = json!({ "flags": rec.args[0], "types": ns_types(rec.args[0]) });
        }
        S::Setns => {
            k["ns"] =
                json!({ "fd": rec.args[0], "flags": rec.args[1], "types": ns_types(rec.args[1]) });
        }
        S::MemfdCreate => {
            let mut memfd = json!({ "flags": rec.args[0] });
            if name_unknown {
                memfd["name_unknown"] = Value::Bool(true);
            } else {
                memfd["name"] = Value::from(name.clone());
            }
            k["memfd"] = memfd;
        }
    }
    let _ = KernelOp::ALL;
    json!({
        "kind": "kernel",
        "ts": ts,
        "hook": hook,
        "process": process_json(h, &rec.comm),
        "kernel": k,
    })
}

/// Adds what userspace knows of a ptrace target (`kernel.target.pid`): its real user id from
/// `/proc/PID/status` and whether it differs from the caller's (`kernel.target.other_user`).
/// A target that is gone (or a pid of another pid namespace) gets neither.
pub fn enrich_target(event: &mut Value) {
    let Some(pid) = event.pointer("/kernel/target/pid").and_then(Value::as_u64) else {
        return;
    };
    if pid == 0 || pid > u64::from(u32::MAX) {
        return;
    }
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return;
    };
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|u| u.parse::<u64>().ok());
    let Some(uid) = uid else {
        return;
    };
    let caller = event.pointer("/process/uid").and_then(Value::as_u64);
    if let Some(target) = event.pointer_mut("/kernel/target") {
        target["uid"] = Value::from(uid);
        if let Some(caller) = caller {
            target["other_user"] = Value::Bool(caller != uid);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::pipeline::decode::tests::test_kernel_record;

    #[test]
    fn a_module_load_has_its_name_and_args() {
        let ev = kernel_event(&test_kernel_record(), "t");
        assert_eq!(ev["kind"], "kernel");
        assert_eq!(ev["kernel"]["op"], "module_load");
        assert_eq!(ev["kernel"]["syscall"], "finit_module");
        assert_eq!(ev["kernel"]["module"]["name"], "msr");
        assert_eq!(ev["kernel"]["module"]["file"], "msr.ko.zst");
        assert_eq!(ev["kernel"]["module"]["args"], "allow_writes=on");
        assert_eq!(ev["hook"], "tp/syscalls/sys_enter_finit_module");
        assert_eq!(ev["process"]["comm"], "modprobe");
    }

    #[test]
    fn a_loaded_module_is_named_by_the_kernel() {
        let mut rec = test_kernel_record();
        rec.header.hook = Hook::TpModuleLoad as u32;
        rec.syscall = KernelSyscall::ModuleLoaded as u32;
        rec.name = [0; enforcer_common::kernel_event::KERNEL_NAME_LEN];
        rec.name[..3].copy_from_slice(b"msr");
        rec.name_len = 3;
        let ev = kernel_event(&rec, "t");
        assert_eq!(ev["kernel"]["op"], "module_loaded");
        assert_eq!(ev["kernel"]["syscall"], "module:module_load");
        assert_eq!(ev["kernel"]["stage"], "loaded");
        assert_eq!(ev["kernel"]["module"]["name"], "msr");
        assert!(ev["kernel"]["module"].get("file").is_none(), "{ev}");
        assert!(ev["kernel"]["module"].get("args").is_none(), "{ev}");
        assert!(ev["kernel"]["module"].get("args_unknown").is_none(), "{ev}");
        assert_eq!(ev["hook"], "raw_tp/module_load");
        rec.flags = KERNEL_NAME_UNKNOWN;
        let ev = kernel_event(&rec, "t");
        assert_eq!(ev["kernel"]["module"]["name_unknown"], true);
    }

    #[test]
    fn an_lsm_module_load_has_its_args_and_unread_args_are_unknown() {
        let mut rec = test_kernel_record();
        rec.header.hook = Hook::LsmKernelReadFile as u32;
        let ev = kernel_event(&rec, "t");
        assert_eq!(ev["hook"], "lsm/kernel_read_file");
        assert_eq!(ev["kernel"]["stage"], "permission_check");
        assert_eq!(ev["kernel"]["module"]["args"], "allow_writes=on");
        assert!(ev["kernel"]["module"].get("args_unknown").is_none());
        for hook in [Hook::LsmKernelReadFile, Hook::TpSysEnterKernel] {
            rec.header.hook = hook as u32;
            rec.flags |= KERNEL_DATA_UNREAD;
            rec.data_len = 0;
            let ev = kernel_event(&rec, "t");
            assert!(ev["kernel"]["module"].get("args").is_none(), "{ev}");
            assert_eq!(ev["kernel"]["module"]["args_unknown"], true);
            assert_eq!(ev["kernel"]["data_unread"], true);
        }
        rec.syscall = KernelSyscall::InitModule as u32;
        rec.header.hook = Hook::LsmKernelLoadData as u32;
        rec.flags = KERNEL_NAME_UNKNOWN;
        rec.data[..12].copy_from_slice(b"kernel_ops=1");
        rec.data_len = 12;
        let ev = kernel_event(&rec, "t");
        assert_eq!(ev["hook"], "lsm/kernel_load_data");
        assert_eq!(ev["kernel"]["module"]["name_unknown"], true);
        assert_eq!(ev["kernel"]["module"]["args"], "kernel_ops=1");
    }

    #[test]
    fn a_syscall_seen_at_its_entry_function_names_it_like_the_tracepoint() {
        let mut rec = test_kernel_record();
        rec.syscall = KernelSyscall::DeleteModule as u32;
        for (hook, name) in [
            (
                Hook::TpSysEnterKernel,
                "tp/syscalls/sys_enter_delete_module",
            ),
            (Hook::FentrySysEnterKernel, "fentry/__x64_sys_delete_module"),
        ] {
            rec.header.hook = hook as u32;
            let ev = kernel_event(&rec, "t");
            assert_eq!(ev["hook"], name);
            assert_eq!(ev["kernel"]["stage"], "attempt", "no result known at entry");
        }
    }

    #[test]
    fn module_names_follow_the_kernel_spelling() {
        assert_eq!(module_name_of_file("msr.ko"), "msr");
        assert_eq!(module_name_of_file("nf-nat.ko.xz"), "nf_nat");
        assert_eq!(module_name_of_file("notamodule"), "notamodule");
    }

    #[test]
    fn setresuid_resolves_unchanged_ids() {
        let mut rec = test_kernel_record();
        rec.syscall = KernelSyscall::Setresuid as u32;
        rec.old.ids = [0, 0, 0, 0, 0, 0, 0, 0];
        rec.args = [u64::from(u32::MAX), 1000, u64::from(u32::MAX)];
        let ev = kernel_event(&rec, "t");
        assert_eq!(ev["kernel"]["op"], "setuid");
        assert_eq!(ev["kernel"]["creds"]["new"]["uid"], 0);
        assert_eq!(ev["kernel"]["creds"]["new"]["euid"], 1000);
        assert_eq!(ev["kernel"]["creds"]["new"]["fsuid"], 1000);
        assert_eq!(ev["kernel"]["creds"]["old"]["euid"], 0);
        assert_eq!(ev["kernel"]["value"], 1000);
    }

    #[test]
    fn setuid_without_cap_setuid_changes_the_effective_id_only() {
        let mut rec = test_kernel_record();
        rec.syscall = KernelSyscall::Setuid as u32;
        rec.old.ids = [1000, 1000, 1000, 1000, 0, 1000, 0, 1000];
        rec.args = [1000, 0, 0];
        let ev = kernel_event(&rec, "t");
        assert_eq!(ev["kernel"]["creds"]["new"]["euid"], 1000);
        rec.old.caps[2] = 1 << CAP_SETUID;
        rec.args = [5, 0, 0];
        let ev = kernel_event(&rec, "t");
        assert_eq!(ev["kernel"]["creds"]["new"]["uid"], 5);
        assert_eq!(ev["kernel"]["creds"]["new"]["suid"], 5);
    }

    #[test]
    fn bpf_prog_loads_have_type_and_name_within_the_attr_size() {
        let mut rec = test_kernel_record();
        rec.syscall = KernelSyscall::Bpf as u32;
        rec.data = [0; enforcer_common::kernel_event::KERNEL_DATA_LEN];
        rec.data[0] = 2;
        rec.data[48..53].copy_from_slice(b"probe");
        rec.args = [5, 128, 0];
        rec.data_len = 80;
        let ev = kernel_event(&rec, "t");
        assert_eq!(ev["kernel"]["bpf"]["cmd"], "prog_load");
        assert_eq!(ev["kernel"]["bpf"]["prog"]["type"], "kprobe");
        assert_eq!(ev["kernel"]["bpf"]["prog"]["name"], "probe");
        rec.data_len = 20;
        let ev = kernel_event(&rec, "t");
        assert!(ev["kernel"]["bpf"]["prog"].get("name").is_none());
        rec.data_len = 9999;
        let _ = kernel_event(&rec, "t");
    }

    #[test]
    fn capset_and_namespaces_decode() {
        let mut rec = test_kernel_record();
        rec.syscall = KernelSyscall::Capset as u32;
        rec.data = [0; enforcer_common::kernel_event::KERNEL_DATA_LEN];
        rec.data[0] = 0x21; // effective low
        rec.data[16] = 1; // permitted high
        rec.data_len = 24;
        let ev = kernel_event(&rec, "t");
        assert_eq!(ev["kernel"]["caps"]["new"]["effective"], 0x21);
        assert_eq!(ev["kernel"]["caps"]["new"]["permitted"], 1u64 << 32);
        rec.syscall = KernelSyscall::Unshare as u32;
        rec.args = [0x0400_0000 | 0x4000_0000, 0, 0];
        let ev = kernel_event(&rec, "t");
        assert_eq!(ev["kernel"]["ns"]["types"], json!(["uts", "net"]));
    }
}
