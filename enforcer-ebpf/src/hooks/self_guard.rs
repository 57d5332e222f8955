//! Self-protection guards (`enforcer run --self-protect`, lsm tier): LSM programs that refuse,
//! to every process but the engine, what would stop the engine or take its enforcement away.
//! Attached only with the option and never pinned: they end with the engine's process.
//!
//! | program | hook (args) | refuses (`-EPERM`) |
//! |---|---|---|
//! | `lsm_guard_task_kill` | `task_kill(p, info, sig, cred)` | a signal other than 0 and `SIGHUP` to the engine, unless it comes from pid 1 or the engine's parent (pid and start time) |
//! | `lsm_guard_ptrace` | `ptrace_access_check(child, mode)` | an attach-mode access to the engine (`ptrace`, `/proc/PID/mem`, `process_vm_writev`, `pidfd_getfd`) |
//! | `lsm_guard_path_unlink`, `lsm_guard_path_rmdir` | `path_unlink(dir, dentry)`, `path_rmdir(dir, dentry)` | removing an entry of the pin root or of this run's pin directory, or an audit log file (`GUARDED_FILES`) |
//! | `lsm_guard_path_rename` | `path_rename(old_dir, old_dentry, new_dir, new_dentry, flags)` | a rename out of, into or of those directories, or of or over an audit log file |
//! | `lsm_guard_sb_umount` | `sb_umount(mnt, flags)` | unmounting the bpffs that holds the pins |
//! | `lsm_guard_bpf_map` | `bpf_map(map, fmode)` | a writable descriptor of an engine map (`GUARDED_MAPS`); read-only ones pass |
//! | `lsm_guard_file_open` | `file_open(file)` | opening an audit log file for writing |
//! | `lsm_guard_path_truncate`, `lsm_guard_file_truncate` | `path_truncate(path)`, `file_truncate(file)` (6.2+) | truncating an audit log file (`truncate`, `O_TRUNC`) |
//!
//! Kernel-originated signals (the OOM killer, a terminal's Ctrl-C) do not reach `task_kill`.
//! Every hook argument is BTF-typed, so members are plain loads (`typed.rs`), no helper calls;
//! `file_open` and the truncate hooks look the file up in `GUARDED_FILES` before anything else,
//! so an unguarded file costs a few loads and one hash look-up.
//! Each refusal bumps `Counter::TamperDenied` and emits a `TamperRecord`. An earlier LSM's
//! refusal is returned unchanged; a failed kernel read allows (counted in `ReadError`).

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, generated::bpf_get_current_comm},
    macros::lsm,
    programs::LsmContext,
};
use enforcer_common::{
    event::{COMM_LEN, Counter, EventKind, Hook, OUTCOME_DENIED},
    guard::{
        GUARD_ALLOWED_SIGNALS, GUARD_DETAIL_AUDIT_LOG, GUARD_DETAIL_PINS, GUARD_FMODE_WRITE,
        GUARD_PTRACE_ATTACH, GuardSettings, TamperRecord,
    },
    plan::FileId,
};

use super::Verdict;
use crate::{
    emit::{self, urgent_event_flags},
    kernel::ReadError,
    maps::{GUARDED_FILES, GUARDED_MAPS, SELF_GUARD, count, offset},
    typed::{self, Access, Typed},
};

/// The guard settings when the guards are on and the caller is not the engine: the checks
/// only run for other processes.
#[inline(always)]
fn settings_for_others() -> Option<&'static GuardSettings> {
    let settings = SELF_GUARD.get(0)?;
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    (settings.engine_tgid != 0 && tgid != settings.engine_tgid).then_some(settings)
}

/// Refuses the attempt: counts it, reports it, returns `-EPERM`.
#[inline(always)]
fn refuse(hook: Hook, target: u64, detail: u32) -> i32 {
    count(Counter::TamperDenied);
    if let Some(mut entry) = emit::reserve::<TamperRecord>() {
        let rec = entry.as_mut_ptr();
        let verdict = emit::Verdict {
            outcome: OUTCOME_DENIED,
            rule_index: 0,
            generation: 0,
        };
        // SAFETY: `rec` points at a reserved, writable TamperRecord-sized slot.
        unsafe {
            (*rec).header = emit::header(
                EventKind::Tamper,
                size_of::<TamperRecord>(),
                hook,
                0,
                &verdict,
            );
            (*rec).target = target;
            (*rec).detail = detail;
            (*rec)._pad = 0;
            // On failure the helper zeroes the buffer itself.
            bpf_get_current_comm((*rec).comm.as_mut_ptr().cast(), COMM_LEN as u32);
        }
        entry.submit(urgent_event_flags());
    }
    Verdict::Deny.ret()
}

/// `task->tgid` of a task pointer.
#[inline(always)]
fn tgid_of(task: *const u8) -> Result<u32, ReadError> {
    Typed::read::<i32>(task, offset(|o| &o.task_tgid)).map(|t| t as u32)
}

/// Whether the caller may send a signal that stops the engine: the host's init, or the
/// engine's parent (same pid and start time).
#[inline(always)]
fn may_stop_engine(settings: &GuardSettings) -> bool {
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    if tgid == 1 {
        return true;
    }
    if tgid != settings.parent_tgid || settings.parent_tgid == 0 {
        return false;
    }
    // The process's start time, as `/proc/PID/stat` gives it: the group leader's, in ticks
    // (the caller may be any thread of the parent).
    if settings.tick_ns == 0 {
        return false;
    }
    let task = typed::current_task();
    let leader: Result<*const u8, _> = Typed::read(task, offset(|o| &o.task_group_leader));
    let start = leader.and_then(|l| Typed::read::<u64>(l, offset(|o| &o.task_start_boottime)));
    matches!(start, Ok(ns) if ns / settings.tick_ns == settings.parent_start_ticks)
}

/// LSM `task_kill(struct task_struct *p, struct kernel_siginfo *info, int sig, const struct
/// cred *cred)`.
#[lsm(hook = "task_kill")]
pub(crate) fn lsm_guard_task_kill(ctx: LsmContext) -> i32 {
    let previous: i32 = ctx.arg(4);
    if previous != 0 {
        return previous;
    }
    let Some(settings) = settings_for_others() else {
        return 0;
    };
    let sig: i32 = ctx.arg(2);
    let sig = sig as u32;
    if GUARD_ALLOWED_SIGNALS.contains(&sig) {
        return 0;
    }
    match tgid_of(ctx.arg(0)) {
        Ok(target) if target == settings.engine_tgid && !may_stop_engine(settings) => {
            refuse(Hook::LsmGuardTaskKill, u64::from(target), sig)
        }
        Ok(_) => 0,
        Err(ReadError) => read_failed(),
    }
}

/// LSM `ptrace_access_check(struct task_struct *child, unsigned int mode)`.
#[lsm(hook = "ptrace_access_check")]
pub(crate) fn lsm_guard_ptrace(ctx: LsmContext) -> i32 {
    let previous: i32 = ctx.arg(2);
    if previous != 0 {
        return previous;
    }
    let Some(settings) = settings_for_others() else {
        return 0;
    };
    let mode: u32 = ctx.arg(1);
    if mode & GUARD_PTRACE_ATTACH == 0 {
        return 0;
    }
    match tgid_of(ctx.arg(0)) {
        Ok(target) if target == settings.engine_tgid => {
            refuse(Hook::LsmGuardPtrace, u64::from(target), mode)
        }
        Ok(_) => 0,
        Err(ReadError) => read_failed(),
    }
}

/// A failed kernel read: counted, allowed.
#[inline(always)]
fn read_failed() -> i32 {
    count(Counter::ReadError);
    Verdict::Allow.ret()
}

/// What guards `dentry`: `(inode number, GUARD_DETAIL_PINS)` for a pin directory,
/// `(inode number, GUARD_DETAIL_AUDIT_LOG)` for an audit log file, `None` for anything else (a
/// negative dentry included).
#[inline(always)]
fn guarded(settings: &GuardSettings, dentry: *const u8) -> Result<Option<(u64, u32)>, ReadError> {
    match dentry_inode(dentry)? {
        Some(inode) => guarded_inode(settings, inode),
        None => Ok(None),
    }
}

/// [`guarded`] for an inode.
#[inline(always)]
fn guarded_inode(
    settings: &GuardSettings,
    inode: *const u8,
) -> Result<Option<(u64, u32)>, ReadError> {
    let ino: u64 = Typed::read(inode, offset(|o| &o.inode_ino))?;
    let sb: *const u8 = Typed::read(inode, offset(|o| &o.inode_sb))?;
    let dev: u32 = Typed::read(sb, offset(|o| &o.sb_dev))?;
    if settings.pin_dev != 0
        && dev == settings.pin_dev
        && (ino == settings.run_dir_ino || ino == settings.pin_root_ino)
    {
        return Ok(Some((ino, GUARD_DETAIL_PINS)));
    }
    let id = FileId { ino, dev, _pad: 0 };
    Ok(GUARDED_FILES
        .get_ptr(id)
        .map(|_| (ino, GUARD_DETAIL_AUDIT_LOG)))
}

/// The dentry of a `const struct path *`.
#[inline(always)]
fn path_dentry(path: *const u8) -> Result<*const u8, ReadError> {
    Typed::read(path, offset(|o| &o.path_dentry))
}

/// Guards an unlink or rmdir of `dentry` in directory `dir`: refused when either is a pin
/// directory, or `dentry` an audit log file.
#[inline(always)]
fn guard_removal(hook: Hook, dir: *const u8, dentry: *const u8) -> i32 {
    let Some(settings) = settings_for_others() else {
        return 0;
    };
    let found = path_dentry(dir).and_then(|d| guarded(settings, d));
    let found = match found {
        Ok(None) => guarded(settings, dentry),
        other => other,
    };
    match found {
        Ok(Some((ino, detail))) => refuse(hook, ino, detail),
        Ok(None) => 0,
        Err(ReadError) => read_failed(),
    }
}

/// LSM `path_unlink(const struct path *dir, struct dentry *dentry)`.
#[lsm(hook = "path_unlink")]
pub(crate) fn lsm_guard_path_unlink(ctx: LsmContext) -> i32 {
    let previous: i32 = ctx.arg(2);
    if previous != 0 {
        return previous;
    }
    guard_removal(Hook::LsmGuardPathUnlink, ctx.arg(0), ctx.arg(1))
}

/// LSM `path_rmdir(const struct path *dir, struct dentry *dentry)`.
#[lsm(hook = "path_rmdir")]
pub(crate) fn lsm_guard_path_rmdir(ctx: LsmContext) -> i32 {
    let previous: i32 = ctx.arg(2);
    if previous != 0 {
        return previous;
    }
    guard_removal(Hook::LsmGuardPathRmdir, ctx.arg(0), ctx.arg(1))
}

/// LSM `path_rename(const struct path *old_dir, struct dentry *old_dentry, const struct path
/// *new_dir, struct dentry *new_dentry, unsigned int flags)`: refused when the source or
/// target directory, or the entry renamed or replaced, is a pin directory.
#[lsm(hook = "path_rename")]
pub(crate) fn lsm_guard_path_rename(ctx: LsmContext) -> i32 {
    let previous: i32 = ctx.arg(5);
    if previous != 0 {
        return previous;
    }
    let Some(settings) = settings_for_others() else {
        return 0;
    };
    // One dentry after the other, each with its own exit (an array of results let LLVM spill
    // an unset register, which the 6.1 verifier refuses).
    let old_dir: *const u8 = ctx.arg(0);
    let found = path_dentry(old_dir).and_then(|d| guarded(settings, d));
    if let Some(ret) = rename_verdict(found) {
        return ret;
    }
    if let Some(ret) = rename_verdict(guarded(settings, ctx.arg(1))) {
        return ret;
    }
    let new_dir: *const u8 = ctx.arg(2);
    let found = path_dentry(new_dir).and_then(|d| guarded(settings, d));
    if let Some(ret) = rename_verdict(found) {
        return ret;
    }
    rename_verdict(guarded(settings, ctx.arg(3))).unwrap_or(0)
}

/// The rename's return value when one of its dentries decided it (a pin directory: refused; a
/// failed read: allowed), `None` to look at the next.
#[inline(always)]
fn rename_verdict(found: Result<Option<(u64, u32)>, ReadError>) -> Option<i32> {
    match found {
        Ok(Some((ino, detail))) => Some(refuse(Hook::LsmGuardPathRename, ino, detail)),
        Ok(None) => None,
        Err(ReadError) => Some(read_failed()),
    }
}

/// LSM `sb_umount(struct vfsmount *mnt, int flags)`: refused for the pins' bpffs.
#[lsm(hook = "sb_umount")]
pub(crate) fn lsm_guard_sb_umount(ctx: LsmContext) -> i32 {
    let previous: i32 = ctx.arg(2);
    if previous != 0 {
        return previous;
    }
    let Some(settings) = settings_for_others() else {
        return 0;
    };
    if settings.pin_dev == 0 {
        return 0;
    }
    let mnt: *const u8 = ctx.arg(0);
    let flags: i32 = ctx.arg(1);
    let sb: Result<*const u8, _> = Typed::read(mnt, offset(|o| &o.vfsmount_sb));
    match sb.and_then(|sb| Typed::read::<u32>(sb, offset(|o| &o.sb_dev))) {
        Ok(dev) if dev == settings.pin_dev => {
            refuse(Hook::LsmGuardSbUmount, u64::from(dev), flags as u32)
        }
        Ok(_) => 0,
        Err(ReadError) => read_failed(),
    }
}

/// LSM `bpf_map(struct bpf_map *map, fmode_t fmode)`: a new descriptor of a map (by id, or
/// from a pin); refused when it can write an engine map.
#[lsm(hook = "bpf_map")]
pub(crate) fn lsm_guard_bpf_map(ctx: LsmContext) -> i32 {
    let previous: i32 = ctx.arg(2);
    if previous != 0 {
        return previous;
    }
    if settings_for_others().is_none() {
        return 0;
    }
    let fmode: u32 = ctx.arg(1);
    if fmode & GUARD_FMODE_WRITE == 0 {
        return 0;
    }
    match Typed::read::<u32>(ctx.arg(0), offset(|o| &o.bpf_map_id)) {
        Ok(id) if GUARDED_MAPS.get_ptr(id).is_some() => {
            refuse(Hook::LsmGuardBpfMap, u64::from(id), fmode)
        }
        Ok(_) => 0,
        Err(ReadError) => read_failed(),
    }
}

/// The inode number of `inode` when it is an audit log file (`GUARDED_FILES`) and the caller
/// is not the engine; `None` otherwise.
#[inline(always)]
fn log_file_of_others(inode: *const u8) -> Result<Option<u64>, ReadError> {
    let ino: u64 = Typed::read(inode, offset(|o| &o.inode_ino))?;
    let sb: *const u8 = Typed::read(inode, offset(|o| &o.inode_sb))?;
    let dev: u32 = Typed::read(sb, offset(|o| &o.sb_dev))?;
    if GUARDED_FILES
        .get_ptr(FileId { ino, dev, _pad: 0 })
        .is_none()
    {
        return Ok(None);
    }
    Ok(settings_for_others().map(|_| ino))
}

/// Refuses `hook` when `found` (from [`log_file_of_others`]) names an audit log file.
#[inline(always)]
fn guard_log_file(hook: Hook, found: Result<Option<u64>, ReadError>, detail: u32) -> i32 {
    match found {
        Ok(Some(ino)) => refuse(hook, ino, detail),
        Ok(None) => 0,
        Err(ReadError) => read_failed(),
    }
}

/// The inode of a dentry, `Ok(None)` for a negative one.
#[inline(always)]
fn dentry_inode(dentry: *const u8) -> Result<Option<*const u8>, ReadError> {
    let inode: *const u8 = Typed::read(dentry, offset(|o| &o.dentry_inode))?;
    Ok((!inode.is_null()).then_some(inode))
}

/// LSM `path_truncate(const struct path *path)`: `truncate(2)`, and on kernels before 6.2 an
/// `O_TRUNC` open and `ftruncate`.
#[lsm(hook = "path_truncate")]
pub(crate) fn lsm_guard_path_truncate(ctx: LsmContext) -> i32 {
    let previous: i32 = ctx.arg(1);
    if previous != 0 {
        return previous;
    }
    let found = path_dentry(ctx.arg(0))
        .and_then(dentry_inode)
        .and_then(|inode| inode.map_or(Ok(None), log_file_of_others));
    guard_log_file(Hook::LsmGuardPathTruncate, found, 0)
}

/// The inode of `struct file *file`.
#[inline(always)]
fn file_inode(file: *const u8) -> Result<*const u8, ReadError> {
    Typed::read(file, offset(|o| &o.file_inode))
}

/// LSM `file_truncate(struct file *file)` (6.2+): `ftruncate` and an `O_TRUNC` open.
#[lsm(hook = "file_truncate")]
pub(crate) fn lsm_guard_file_truncate(ctx: LsmContext) -> i32 {
    let previous: i32 = ctx.arg(1);
    if previous != 0 {
        return previous;
    }
    let found = file_inode(ctx.arg(0)).and_then(log_file_of_others);
    guard_log_file(Hook::LsmGuardFileTruncate, found, 0)
}

/// LSM `file_open(struct file *file)`: an audit log file opened for writing. A read-only open
/// leaves after one load (`f_mode`).
#[lsm(hook = "file_open")]
pub(crate) fn lsm_guard_file_open(ctx: LsmContext) -> i32 {
    let previous: i32 = ctx.arg(1);
    if previous != 0 {
        return previous;
    }
    let file: *const u8 = ctx.arg(0);
    let fmode = match Typed::read::<u32>(file, offset(|o| &o.file_mode)) {
        Ok(fmode) if fmode & GUARD_FMODE_WRITE != 0 => fmode,
        Ok(_) => return 0,
        Err(ReadError) => return read_failed(),
    };
    let found = file_inode(file).and_then(log_file_of_others);
    guard_log_file(Hook::LsmGuardFileOpen, found, fmode)
}
