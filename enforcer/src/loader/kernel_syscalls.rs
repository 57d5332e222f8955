//! The kernel-activity syscalls: which `syscalls/sys_enter_*` tracepoint each one has, this
//! architecture's syscall number for `KERNEL_SYSCALLS`, and which of them the running kernel
//! has at all (without `CONFIG_MODULES` or `CONFIG_KEXEC*` those syscalls and their
//! tracepoints do not exist: the engine runs without them and says so).

use std::{fs, path::Path};

use aya::{Ebpf, maps::Array};
use enforcer_common::{kernel_event::KernelSyscall, maps::KERNEL_SYSCALLS};

use super::tracefs::{self, SyscallLayout, TRACEFS};

/// One kernel-activity syscall: its value, tracepoint, number and argument names (as in the
/// tracepoint's format file, checked against the shared layout before attaching).
#[derive(Debug, Clone, Copy)]
pub struct KernelTracepoint {
    /// What the record calls it.
    pub syscall: KernelSyscall,
    /// The `syscalls/` tracepoint.
    pub tracepoint: &'static str,
    /// This architecture's syscall number.
    pub nr: libc::c_long,
    /// Argument names, in order.
    pub args: &'static [&'static str],
}

const fn tp(
    syscall: KernelSyscall,
    tracepoint: &'static str,
    nr: libc::c_long,
    args: &'static [&'static str],
) -> KernelTracepoint {
    KernelTracepoint {
        syscall,
        tracepoint,
        nr,
        args,
    }
}

use KernelSyscall as S;

/// Whether the kernel programs read a syscall's arguments from the caller's saved registers
/// (`enforcer-ebpf/src/user_regs.rs`: the x86_64 register layout only), which lets the lsm
/// tier's LSM hooks report the operations of `KernelOp::reported_by_lsm` without tracepoints.
pub const LSM_READS_SYSCALL_REGISTERS: bool = cfg!(target_arch = "x86_64");

/// The fentry programs on the entry functions of the kernel-activity syscalls no LSM hook
/// reports (enforcer-ebpf's `hooks/syscall_fentry.rs`): the syscall, the program, the
/// function. Where the kernel has BPF trampolines the loader attaches these instead of the
/// syscalls' tracepoints ([`super::Loaded::attach`]); x86_64 function names.
pub const FENTRY_SYSCALLS: [(KernelSyscall, &str, &str); 13] = [
    (
        S::DeleteModule,
        "fentry_sys_delete_module",
        "__x64_sys_delete_module",
    ),
    (S::Setuid, "fentry_sys_setuid", "__x64_sys_setuid"),
    (S::Setgid, "fentry_sys_setgid", "__x64_sys_setgid"),
    (S::Setreuid, "fentry_sys_setreuid", "__x64_sys_setreuid"),
    (S::Setregid, "fentry_sys_setregid", "__x64_sys_setregid"),
    (S::Setresuid, "fentry_sys_setresuid", "__x64_sys_setresuid"),
    (S::Setresgid, "fentry_sys_setresgid", "__x64_sys_setresgid"),
    (S::Setfsuid, "fentry_sys_setfsuid", "__x64_sys_setfsuid"),
    (S::Setfsgid, "fentry_sys_setfsgid", "__x64_sys_setfsgid"),
    (S::Capset, "fentry_sys_capset", "__x64_sys_capset"),
    (S::Unshare, "fentry_sys_unshare", "__x64_sys_unshare"),
    (S::Setns, "fentry_sys_setns", "__x64_sys_setns"),
    (
        S::MemfdCreate,
        "fentry_sys_memfd_create",
        "__x64_sys_memfd_create",
    ),
];

/// The fentry program of `syscall` and its function ([`FENTRY_SYSCALLS`]), if it has one
/// (on x86_64 only).
pub fn fentry_of(syscall: KernelSyscall) -> Option<(&'static str, &'static str)> {
    if !cfg!(target_arch = "x86_64") {
        return None;
    }
    FENTRY_SYSCALLS
        .iter()
        .find(|(s, ..)| *s == syscall)
        .map(|(_, program, function)| (*program, *function))
}

/// Every kernel-activity syscall the tracepoint program serves.
pub const TRACEPOINTS: [KernelTracepoint; 20] = [
    tp(
        S::InitModule,
        "sys_enter_init_module",
        libc::SYS_init_module,
        &["umod", "len", "uargs"],
    ),
    tp(
        S::FinitModule,
        "sys_enter_finit_module",
        libc::SYS_finit_module,
        &["fd", "uargs", "flags"],
    ),
    tp(
        S::DeleteModule,
        "sys_enter_delete_module",
        libc::SYS_delete_module,
        &["name_user", "flags"],
    ),
    tp(
        S::Bpf,
        "sys_enter_bpf",
        libc::SYS_bpf,
        &["cmd", "uattr", "size"],
    ),
    tp(
        S::Ptrace,
        "sys_enter_ptrace",
        libc::SYS_ptrace,
        &["request", "pid", "addr", "data"],
    ),
    tp(
        S::ProcessVmWritev,
        "sys_enter_process_vm_writev",
        libc::SYS_process_vm_writev,
        &["pid", "lvec", "liovcnt", "rvec", "riovcnt", "flags"],
    ),
    tp(
        S::KexecLoad,
        "sys_enter_kexec_load",
        libc::SYS_kexec_load,
        &["entry", "nr_segments", "segments", "flags"],
    ),
    tp(
        S::KexecFileLoad,
        "sys_enter_kexec_file_load",
        libc::SYS_kexec_file_load,
        &[
            "kernel_fd",
            "initrd_fd",
            "cmdline_len",
            "cmdline_ptr",
            "flags",
        ],
    ),
    tp(S::Setuid, "sys_enter_setuid", libc::SYS_setuid, &["uid"]),
    tp(S::Setgid, "sys_enter_setgid", libc::SYS_setgid, &["gid"]),
    tp(
        S::Setreuid,
        "sys_enter_setreuid",
        libc::SYS_setreuid,
        &["ruid", "euid"],
    ),
    tp(
        S::Setregid,
        "sys_enter_setregid",
        libc::SYS_setregid,
        &["rgid", "egid"],
    ),
    tp(
        S::Setresuid,
        "sys_enter_setresuid",
        libc::SYS_setresuid,
        &["ruid", "euid", "suid"],
    ),
    tp(
        S::Setresgid,
        "sys_enter_setresgid",
        libc::SYS_setresgid,
        &["rgid", "egid", "sgid"],
    ),
    tp(
        S::Setfsuid,
        "sys_enter_setfsuid",
        libc::SYS_setfsuid,
        &["uid"],
    ),
    tp(
        S::Setfsgid,
        "sys_enter_setfsgid",
        libc::SYS_setfsgid,
        &["gid"],
    ),
    tp(
        S::Capset,
        "sys_enter_capset",
        libc::SYS_capset,
        &["header", "data"],
    ),
    tp(
        S::Unshare,
        "sys_enter_unshare",
        libc::SYS_unshare,
        &["unshare_flags"],
    ),
    tp(
        S::Setns,
        "sys_enter_setns",
        libc::SYS_setns,
        &["fd", "flags"],
    ),
    tp(
        S::MemfdCreate,
        "sys_enter_memfd_create",
        libc::SYS_memfd_create,
        &["uname", "flags"],
    ),
];

/// Whether `entry`'s tracepoint exists and shares `layout`; `Err` says why not.
pub fn check(entry: &KernelTracepoint, layout: SyscallLayout) -> Result<(), String> {
    let path = Path::new(TRACEFS)
        .join("events/syscalls")
        .join(entry.tracepoint)
        .join("format");
    let text = fs::read_to_string(&path)
        .map_err(|_| "no such syscall tracepoint on this kernel (not configured)".to_owned())?;
    let nr = tracefs::check_layout(entry.tracepoint, &text, &["__syscall_nr"])
        .map_err(|e| e.to_string())?;
    let args =
        tracefs::check_layout(entry.tracepoint, &text, entry.args).map_err(|e| e.to_string())?;
    if (SyscallLayout { nr, args }) == layout {
        Ok(())
    } else {
        Err(format!(
            "{} does not share the syscall tracepoint layout",
            entry.tracepoint
        ))
    }
}

/// The tracepoints of [`TRACEPOINTS`] this kernel has, with the reason for the others.
pub fn available(layout: SyscallLayout) -> Vec<(KernelTracepoint, Result<(), String>)> {
    TRACEPOINTS
        .iter()
        .map(|entry| (*entry, check(entry, layout)))
        .collect()
}

/// Whether the running kernel has the tracepoint of `syscall` (for `enforcer status`; no
/// layout check).
pub fn present(syscall: KernelSyscall) -> bool {
    TRACEPOINTS
        .iter()
        .filter(|e| e.syscall == syscall)
        .any(|e| {
            Path::new(TRACEFS)
                .join("events/syscalls")
                .join(e.tracepoint)
                .exists()
        })
}

/// Writes `KERNEL_SYSCALLS`: syscall number -> `KernelSyscall` value, for every syscall.
pub fn write_table(ebpf: &mut Ebpf) -> Result<(), aya::maps::MapError> {
    let map = ebpf
        .map_mut(KERNEL_SYSCALLS)
        .ok_or_else(|| aya::maps::MapError::InvalidName {
            name: KERNEL_SYSCALLS.to_owned(),
        })?;
    let mut array: Array<_, u32> = map.try_into()?;
    for entry in TRACEPOINTS {
        let Ok(nr) = u32::try_from(entry.nr) else {
            continue;
        };
        if nr < array.len() {
            array.set(nr, entry.syscall as u32, 0)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_syscall_has_one_tracepoint_and_a_distinct_number() {
        let mut nrs: Vec<_> = TRACEPOINTS.iter().map(|e| e.nr).collect();
        nrs.sort_unstable();
        nrs.dedup();
        assert_eq!(nrs.len(), TRACEPOINTS.len());
        for e in TRACEPOINTS {
            assert!(e.nr >= 0 && e.nr < 1024, "{e:?}");
            assert_eq!(e.tracepoint, format!("sys_enter_{}", e.syscall.name()));
        }
    }
}
