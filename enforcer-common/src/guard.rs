//! Self-protection (`enforcer run --self-protect`, lsm tier): what the guard programs protect
//! and the record of an attempt they refused. The guards refuse, to every process but the
//! engine itself, a signal that would stop the engine, a ptrace attach to it, the removal of
//! its pins from bpffs (unlink, rmdir, rename, umount), a writable descriptor of its maps, and
//! the removal, truncation or writing of its audit log files.

use crate::event::{COMM_LEN, EventHeader};

/// Slot 0 of [`crate::maps::SELF_GUARD`]: whom and what the guards protect. Written by the
/// loader before the guard programs are attached; all zero (the map's initial value) means
/// nothing is guarded.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GuardSettings {
    /// The engine's process id (initial pid namespace); 0: the guards are off.
    pub engine_tgid: u32,
    /// The process that started the engine (its service manager, container shim or shell):
    /// allowed to signal it, so `systemctl stop` and a pod's termination still work.
    pub parent_tgid: u32,
    /// That parent's start time in clock ticks since boot (`/proc/PID/stat` field 22), so a
    /// process that reuses its pid is not it.
    pub parent_start_ticks: u64,
    /// Nanoseconds per clock tick (`1e9 / sysconf(_SC_CLK_TCK)`); the kernel divides the
    /// caller's `group_leader->start_boottime` by it.
    pub tick_ns: u64,
    /// Kernel `dev_t` of the bpffs super block holding the pins (0: no pins to guard).
    pub pin_dev: u32,
    /// Explicit padding.
    pub _pad: u32,
    /// Inode number of the pin root (`/sys/fs/bpf/enforcer`) on `pin_dev`.
    pub pin_root_ino: u64,
    /// Inode number of this run's pin directory on `pin_dev`.
    pub run_dir_ino: u64,
}

const _: () = assert!(core::mem::size_of::<GuardSettings>() == 48);

/// Signals anyone may send the engine under self-protection: 0 (an existence check) and
/// `SIGHUP` (reload the policy).
pub const GUARD_ALLOWED_SIGNALS: [u32; 2] = [0, 1];

/// `PTRACE_MODE_ATTACH`: the ptrace modes the guard refuses (attach, `/proc/PID/mem`,
/// `process_vm_writev`, `pidfd_getfd`); read-only modes (`/proc/PID/stat`) pass.
pub const GUARD_PTRACE_ATTACH: u32 = 2;

/// `FMODE_WRITE`: a map descriptor, or a file, opened for writing.
pub const GUARD_FMODE_WRITE: u32 = 2;

/// `TamperRecord::detail` of an unlink, rmdir or rename refused because it touched a pin
/// directory.
pub const GUARD_DETAIL_PINS: u32 = 0;
/// `TamperRecord::detail` of an unlink or rename refused because it touched an audit log file
/// (`GUARDED_FILES`).
pub const GUARD_DETAIL_AUDIT_LOG: u32 = 1;

/// Capacity of [`crate::maps::GUARDED_FILES`]: the audit log and its rotated files.
pub const GUARDED_FILES_CAPACITY: u32 = 256;

/// What a guard refused; `header.kind == EventKind::Tamper`, `header.hook` names the guard
/// (`Hook::LsmGuard*`), `header.outcome` is `OUTCOME_DENIED`. The header's ids are the
/// process that tried.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TamperRecord {
    /// Common header.
    pub header: EventHeader,
    /// The object: the engine's pid (signal, ptrace), the inode number (unlink, rmdir,
    /// rename, truncate, open), the super block's `dev_t` (umount), or the map id (map write).
    pub target: u64,
    /// The signal number (signal), the ptrace mode, the umount flags, the `fmode` (map, open),
    /// or `GUARD_DETAIL_*` (unlink, rmdir, rename).
    pub detail: u32,
    /// Explicit padding.
    pub _pad: u32,
    /// The caller's comm.
    pub comm: [u8; COMM_LEN],
}

const _: () = assert!(core::mem::offset_of!(TamperRecord, target) == 64);
const _: () = assert!(core::mem::size_of::<TamperRecord>() == 64 + 16 + COMM_LEN);
