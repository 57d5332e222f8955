//! Kernel-activity records (issue 4, "kernel" family): module load/unload, bpf(), ptrace,
//! kexec, set*id / capset transitions, unshare / setns and memfd_create. One record type,
//! [`KernelRecord`], with a [`KernelSyscall`] saying what was called; the meaning of its
//! `args` and `data` per syscall is written on each variant. Emitted by the
//! `sys_enter_*` tracepoint program (every tier) or, for the operations an LSM hook can refuse
//! (module loads, kexec, ptrace attach), by that hook in the lsm tier when a rule acts on them;
//! a loaded module, by the `module:module_load` tracepoint.

use crate::event::{COMM_LEN, EventHeader};

/// Bytes of the name a [`KernelRecord`] carries (module name, file basename, memfd name,
/// bpf object name).
pub const KERNEL_NAME_LEN: usize = 64;
/// Bytes of user (or kernel) data a [`KernelRecord`] carries: module parameters, the start of
/// a `union bpf_attr`, the `capset` data structs.
pub const KERNEL_DATA_LEN: usize = 128;

/// What the process called (or, from an LSM hook, what it was doing). The value is the
/// record's `syscall`; `KERNEL_SYSCALLS` maps the architecture's syscall numbers to it.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelSyscall {
    /// `init_module(umod, len, uargs)`: args `[umod, len]`; `data` = `uargs` (string); no
    /// name (the image is not read: `KERNEL_NAME_UNKNOWN`). From LSM `kernel_load_data` the
    /// args and `uargs` are read from the caller's saved registers (`KERNEL_DATA_UNREAD` when
    /// they are not the syscall's).
    InitModule = 1,
    /// `finit_module(fd, uargs, flags)`: args `[fd, flags]`; `name` = the file's basename
    /// (dentry), `data` = `uargs` (from LSM `kernel_read_file`: as for `InitModule`).
    FinitModule = 2,
    /// `delete_module(name, flags)`: args `[flags]`; `name` = the module name (user string).
    DeleteModule = 3,
    /// `bpf(cmd, attr, size)`: args `[cmd, size]`; `data` = the first bytes of `attr`.
    Bpf = 4,
    /// `ptrace(request, pid, addr, data)`: args `[request, pid]`.
    Ptrace = 5,
    /// `process_vm_writev(pid, ...)`: args `[pid, liovcnt, riovcnt]`.
    ProcessVmWritev = 6,
    /// `kexec_load(entry, nr_segments, segments, flags)`: args `[entry, nr_segments, flags]`.
    KexecLoad = 7,
    /// `kexec_file_load(kernel_fd, initrd_fd, cmdline_len, cmdline, flags)`: args
    /// `[kernel_fd, initrd_fd, flags]`; `name` = the kernel file's basename.
    KexecFileLoad = 8,
    /// `setuid(uid)`: args `[uid]`.
    Setuid = 9,
    /// `setgid(gid)`: args `[gid]`.
    Setgid = 10,
    /// `setreuid(ruid, euid)`: args `[ruid, euid]` (`u32::MAX`: unchanged).
    Setreuid = 11,
    /// `setregid(rgid, egid)`: args `[rgid, egid]`.
    Setregid = 12,
    /// `setresuid(ruid, euid, suid)`: args `[ruid, euid, suid]`.
    Setresuid = 13,
    /// `setresgid(rgid, egid, sgid)`: args `[rgid, egid, sgid]`.
    Setresgid = 14,
    /// `setfsuid(fsuid)`: args `[fsuid]`.
    Setfsuid = 15,
    /// `setfsgid(fsgid)`: args `[fsgid]`.
    Setfsgid = 16,
    /// `capset(hdrp, datap)`: args `[version, pid]` (from the user header); `data` = the two
    /// `__user_cap_data_struct` (effective, permitted, inheritable; 24 bytes).
    Capset = 17,
    /// `unshare(flags)`: args `[flags]`.
    Unshare = 18,
    /// `setns(fd, nstype)`: args `[fd, nstype]`.
    Setns = 19,
    /// `memfd_create(name, flags)`: args `[flags]`; `name` = the name asked for.
    MemfdCreate = 20,
    /// LSM `ptrace_access_check(child, mode)` with an attach mode (PTRACE_ATTACH/SEIZE,
    /// process_vm_*, /proc/PID/mem): args `[mode, target tgid]`. lsm tier only.
    PtraceAccess = 21,
    /// LSM `ptrace_traceme(parent)`: args `[0, parent tgid]`. lsm tier only.
    PtraceTraceme = 22,
    /// Tracepoint `module:module_load`: a module was loaded (by `init_module`,
    /// `finit_module` or the kernel's own `request_module`), just before its init function
    /// runs; `name` = the module's name, from the kernel's `struct module` (so an
    /// `init_module` image is named too); no `data`: the kernel has parsed the parameters in
    /// place by then (`=` and spaces turned into NULs), so they are left to the syscall's
    /// record. Every tier, where the kernel has modules.
    ModuleLoaded = 23,
}

/// Number of [`KernelSyscall`] values, plus one (0 is "none").
pub const KERNEL_SYSCALL_SLOTS: u32 = 24;

impl TryFrom<u32> for KernelSyscall {
    type Error = crate::event::UnknownKind;

    fn try_from(value: u32) -> Result<Self, Self::Error> {
        use KernelSyscall as S;
        Ok(match value {
            1 => S::InitModule,
            2 => S::FinitModule,
            3 => S::DeleteModule,
            4 => S::Bpf,
            5 => S::Ptrace,
            6 => S::ProcessVmWritev,
            7 => S::KexecLoad,
            8 => S::KexecFileLoad,
            9 => S::Setuid,
            10 => S::Setgid,
            11 => S::Setreuid,
            12 => S::Setregid,
            13 => S::Setresuid,
            14 => S::Setresgid,
            15 => S::Setfsuid,
            16 => S::Setfsgid,
            17 => S::Capset,
            18 => S::Unshare,
            19 => S::Setns,
            20 => S::MemfdCreate,
            21 => S::PtraceAccess,
            22 => S::PtraceTraceme,
            23 => S::ModuleLoaded,
            other => return Err(crate::event::UnknownKind(other)),
        })
    }
}

/// Operation classes: what rules (`kernel.op`) and the kernel plan (`KERNEL_OP_PLAN`, the
/// `PlanSettings::kernel_ops` bits) speak of.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelOp {
    /// `init_module`, `finit_module`.
    ModuleLoad = 0,
    /// `delete_module`.
    ModuleUnload = 1,
    /// `bpf` (program loads, map creations, attaches; not look-ups).
    Bpf = 2,
    /// `ptrace` attach / seize / traceme, `process_vm_writev`.
    Ptrace = 3,
    /// `kexec_load`, `kexec_file_load`.
    Kexec = 4,
    /// `setuid`, `setreuid`, `setresuid`, `setfsuid`.
    Setuid = 5,
    /// `setgid`, `setregid`, `setresgid`, `setfsgid`.
    Setgid = 6,
    /// `capset`.
    Capset = 7,
    /// `unshare`.
    Unshare = 8,
    /// `setns`.
    Setns = 9,
    /// `memfd_create`.
    MemfdCreate = 10,
    /// A module loaded (`module:module_load`): unlike `ModuleLoad`, the attempt, it names
    /// the module whatever the syscall, and comes only for a load that got that far.
    ModuleLoaded = 11,
}

/// Slots of `KERNEL_OP_PLAN` (every [`KernelOp`] value is below).
pub const KERNEL_OP_SLOTS: u32 = 16;

impl KernelOp {
    /// Every operation, in value order.
    pub const ALL: [KernelOp; 12] = [
        KernelOp::ModuleLoad,
        KernelOp::ModuleUnload,
        KernelOp::Bpf,
        KernelOp::Ptrace,
        KernelOp::Kexec,
        KernelOp::Setuid,
        KernelOp::Setgid,
        KernelOp::Capset,
        KernelOp::Unshare,
        KernelOp::Setns,
        KernelOp::MemfdCreate,
        KernelOp::ModuleLoaded,
    ];

    /// The name rules use (`kernel.op`).
    pub const fn name(self) -> &'static str {
        match self {
            KernelOp::ModuleLoad => "module_load",
            KernelOp::ModuleUnload => "module_unload",
            KernelOp::Bpf => "bpf",
            KernelOp::Ptrace => "ptrace",
            KernelOp::Kexec => "kexec",
            KernelOp::Setuid => "setuid",
            KernelOp::Setgid => "setgid",
            KernelOp::Capset => "capset",
            KernelOp::Unshare => "unshare",
            KernelOp::Setns => "setns",
            KernelOp::MemfdCreate => "memfd_create",
            KernelOp::ModuleLoaded => "module_loaded",
        }
    }

    /// The operation named `name`.
    pub fn from_name(name: &str) -> Option<KernelOp> {
        Self::ALL.into_iter().find(|op| op.name() == name)
    }

    /// Its bit in `PlanSettings::kernel_ops`.
    pub const fn bit(self) -> u32 {
        1 << (self as u32)
    }

    /// Whether an LSM hook of the lsm tier can refuse it (and then reports it instead of the
    /// tracepoint when the plan has a rule acting on it).
    pub const fn lsm_enforced(self) -> bool {
        matches!(
            self,
            KernelOp::ModuleLoad | KernelOp::Kexec | KernelOp::Ptrace
        )
    }

    /// Whether the lsm tier's LSM hooks report every call of it from the caller's registers
    /// (`kernel_lsm.rs`), so its `sys_enter_*` tracepoints are not attached there (where the
    /// engine reads the registers: x86_64). Module unloads, credential changes, namespaces and
    /// memfd have no such hook.
    pub const fn reported_by_lsm(self) -> bool {
        matches!(
            self,
            KernelOp::ModuleLoad | KernelOp::Kexec | KernelOp::Ptrace | KernelOp::Bpf
        )
    }
}

impl KernelSyscall {
    /// The operation class of the call.
    #[inline(always)]
    pub const fn op(self) -> KernelOp {
        use KernelSyscall as S;
        match self {
            S::InitModule | S::FinitModule => KernelOp::ModuleLoad,
            S::DeleteModule => KernelOp::ModuleUnload,
            S::Bpf => KernelOp::Bpf,
            S::Ptrace | S::ProcessVmWritev | S::PtraceAccess | S::PtraceTraceme => KernelOp::Ptrace,
            S::KexecLoad | S::KexecFileLoad => KernelOp::Kexec,
            S::Setuid | S::Setreuid | S::Setresuid | S::Setfsuid => KernelOp::Setuid,
            S::Setgid | S::Setregid | S::Setresgid | S::Setfsgid => KernelOp::Setgid,
            S::Capset => KernelOp::Capset,
            S::Unshare => KernelOp::Unshare,
            S::Setns => KernelOp::Setns,
            S::MemfdCreate => KernelOp::MemfdCreate,
            S::ModuleLoaded => KernelOp::ModuleLoaded,
        }
    }

    /// The syscall's name (the LSM-only values name their hook).
    pub const fn name(self) -> &'static str {
        use KernelSyscall as S;
        match self {
            S::InitModule => "init_module",
            S::FinitModule => "finit_module",
            S::DeleteModule => "delete_module",
            S::Bpf => "bpf",
            S::Ptrace => "ptrace",
            S::ProcessVmWritev => "process_vm_writev",
            S::KexecLoad => "kexec_load",
            S::KexecFileLoad => "kexec_file_load",
            S::Setuid => "setuid",
            S::Setgid => "setgid",
            S::Setreuid => "setreuid",
            S::Setregid => "setregid",
            S::Setresuid => "setresuid",
            S::Setresgid => "setresgid",
            S::Setfsuid => "setfsuid",
            S::Setfsgid => "setfsgid",
            S::Capset => "capset",
            S::Unshare => "unshare",
            S::Setns => "setns",
            S::MemfdCreate => "memfd_create",
            S::PtraceAccess => "ptrace_access_check",
            S::PtraceTraceme => "ptrace_traceme",
            S::ModuleLoaded => "module:module_load",
        }
    }
}

/// Kernel flag: `name` was longer than [`KERNEL_NAME_LEN`] - 1 bytes and is cut.
pub const KERNEL_NAME_TRUNCATED: u32 = 1;
/// Kernel flag: `data` holds a string that was longer than [`KERNEL_DATA_LEN`] - 1 bytes.
pub const KERNEL_DATA_TRUNCATED: u32 = 2;
/// Kernel flag: the name could not be known (`init_module` of an image in memory, an
/// unreadable user string or descriptor).
pub const KERNEL_NAME_UNKNOWN: u32 = 4;
/// Kernel flag: the `old` credentials could not be read.
pub const KERNEL_CREDS_UNKNOWN: u32 = 8;
/// Kernel flag: `data` could not be read from the caller's memory (or, for a module load
/// seen by an LSM hook, its registers were not the syscall's): the event has no module args.
pub const KERNEL_DATA_UNREAD: u32 = 16;

/// The caller's credentials before the call (`current->cred`), for set*id and capset.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CredIds {
    /// `uid, gid, suid, sgid, euid, egid, fsuid, fsgid`, in the kernel's order.
    pub ids: [u32; 8],
    /// `cap_inheritable`, `cap_permitted`, `cap_effective` (64-bit masks).
    pub caps: [u64; 3],
}

/// A kernel-activity event; `header.kind == EventKind::Kernel`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelRecord {
    /// Common header.
    pub header: EventHeader,
    /// A [`KernelSyscall`] value.
    pub syscall: u32,
    /// `KERNEL_*` flags.
    pub flags: u32,
    /// Valid bytes in `name`.
    pub name_len: u32,
    /// Valid bytes in `data`.
    pub data_len: u32,
    /// Arguments, per [`KernelSyscall`].
    pub args: [u64; 3],
    /// Credentials before the call (set*id, capset; zero otherwise).
    pub old: CredIds,
    /// Name, per [`KernelSyscall`].
    pub name: [u8; KERNEL_NAME_LEN],
    /// Data, per [`KernelSyscall`].
    pub data: [u8; KERNEL_DATA_LEN],
    /// The caller's comm.
    pub comm: [u8; COMM_LEN],
}

const _: () = assert!(core::mem::size_of::<CredIds>() == 56);
const _: () = assert!(core::mem::offset_of!(KernelRecord, args) == 80);
const _: () = assert!(core::mem::offset_of!(KernelRecord, old) == 104);
const _: () = assert!(core::mem::offset_of!(KernelRecord, name) == 160);
const _: () = assert!(core::mem::offset_of!(KernelRecord, data) == 160 + KERNEL_NAME_LEN);
const _: () = assert!(
    core::mem::size_of::<KernelRecord>() == 160 + KERNEL_NAME_LEN + KERNEL_DATA_LEN + COMM_LEN
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syscalls_round_trip_and_have_an_op() {
        for v in 1..KERNEL_SYSCALL_SLOTS {
            let s = KernelSyscall::try_from(v);
            assert!(s.is_ok(), "{v}");
            let Ok(s) = s else { continue };
            assert_eq!(s as u32, v);
            assert!((s.op() as u32) < KERNEL_OP_SLOTS);
        }
        assert!(KernelSyscall::try_from(0).is_err());
        assert!(KernelSyscall::try_from(KERNEL_SYSCALL_SLOTS).is_err());
        for op in KernelOp::ALL {
            assert_eq!(KernelOp::from_name(op.name()), Some(op));
        }
    }
}
