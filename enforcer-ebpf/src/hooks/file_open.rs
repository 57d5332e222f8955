//! Opens of watched files: tracepoints `syscalls/sys_exit_{open,openat,openat2,creat}` (one
//! program; signal and monitor tiers), LSM `file_open` (lsm tier) and its fentry twin on
//! `security_file_open` (signal tier with BPF trampolines, in place of the tracepoints; see
//! `hook_ctx.rs`).
//!
//! Cheap exits first, so an ordinary open never leaves the kernel: no file rule in the plan
//! (`RECORD_FILES`), a failed open, a read-only open when no rule watches reads
//! (`RECORD_FILE_READS`), or watches only device reads (`RECORD_FILE_READ_DEVICES`) and the
//! file is not a device. Then the dentry and mount chain is walked; when the plan allows it
//! (`RECORD_FILE_DIRS`), the path is followed down from its first component and dropped at
//! the first directory on the way to no watched path (`file::dirs_verdict`: `/tmp/x`,
//! `/var/log/x`, `/dev/null` under a policy that watches `/etc/passwd`, `/var/spool/cron/`,
//! `/dev/mem`, ...). Otherwise the path string is built and matched against `FILE_WATCH`
//! (`file::match_path`); unmatched events are counted (`file_filtered`) and dropped.
//!
//! | tier | match with deny/kill | action |
//! |---|---|---|
//! | lsm (`file_open`) | deny | `-EPERM`: the open fails (a file `O_CREAT` made stays, empty; `O_TRUNC` has not run yet) |
//! | signal (`sys_exit_open*`, or fentry `security_file_open`) | deny or kill | SIGKILL before the open returns to the process (the file is open and, with `O_TRUNC`, truncated) |
//! | any | monitor mode | `would_deny` / `would_kill` |
//!
//! The tracepoint sees the open file's `f_flags`, from which the kernel has cleared `O_CREAT`
//! and `O_TRUNC`: a read-only `O_CREAT`/`O_TRUNC` open is a read there. The hook (either
//! program) runs before they are cleared. The hook also sees opens the syscalls do not make:
//! an exec's open of its file, the kernel's own opens (a module's file).

use aya_ebpf::{macros::tracepoint, programs::TracePointContext};
use enforcer_common::{
    event::{Counter, Hook},
    file::FileOp,
    plan::{RECORD_FILE_READ_DEVICES, RECORD_FILE_READS, RECORD_FILES},
};

use super::{
    Verdict,
    file_path::finish,
    hook_ctx::{HookCtx, hook_programs},
};
use crate::syscall_record::syscall_ret;
use crate::{
    file::{self, Slot},
    kernel,
    maps::{count, offset, plan_settings},
    plan::Site,
    typed::{Access, Probed, Typed},
};

/// `O_ACCMODE` bits that write.
const O_WRITE_MODES: u32 = 0o3;
/// `S_IFMT`, `S_IFCHR`, `S_IFBLK` of `i_mode`.
const S_IFMT: u16 = 0o170000;
const S_IFCHR: u16 = 0o020000;
const S_IFBLK: u16 = 0o060000;
/// `O_CREAT | O_TRUNC`.
const O_CREAT_TRUNC: u32 = 0o100 | 0o1000;

/// `syscalls/sys_exit_open*(ret)`: `ret` is the new descriptor or a negative errno.
#[tracepoint(category = "syscalls", name = "sys_exit_openat")]
pub(crate) fn tp_sys_exit_open(ctx: TracePointContext) -> u32 {
    let bits = plan_settings().record;
    if bits & RECORD_FILES == 0 {
        return 0;
    }
    let Ok(ret) = syscall_ret(&ctx) else {
        count(Counter::ReadError);
        return 0;
    };
    let fd = ret as i64;
    if !(0..=i64::from(i32::MAX)).contains(&fd) {
        return 0;
    }
    let Some(f) = kernel::fd_file(fd as u32) else {
        return 0;
    };
    let _ = on_open::<Probed>(f, bits, Site::Tracepoint);
    0
}

/// `file_open(struct file *file)`: LSM program `lsm_file_open`, fentry program
/// `fentry_file_open`.
#[inline(always)]
fn file_open<C: HookCtx>(ctx: &C) -> i32 {
    let previous = ctx.previous(1);
    if previous != 0 {
        return previous;
    }
    if !C::in_tier() {
        return 0;
    }
    let bits = plan_settings().record;
    if bits & RECORD_FILES == 0 {
        return 0;
    }
    let f: *const u8 = ctx.arg(0);
    on_open::<Typed>(f, bits, C::SITE).ret()
}

hook_programs!(
    file_open,
    "file_open",
    lsm_file_open,
    "security_file_open",
    fentry_file_open
);

/// The flags check, path, match, action and record of an open of file `f` (read as `A` says:
/// the LSM hook's `file` is BTF-typed, the tracepoint's comes from the descriptor table).
#[inline(always)]
fn on_open<A: Access>(f: *const u8, bits: u32, site: Site) -> Verdict {
    let Ok((inode, flags, path)) = kernel::file_inode_flags::<A>(f) else {
        count(Counter::ReadError);
        return Verdict::Allow;
    };
    let write =
        flags & O_WRITE_MODES != 0 || (site != Site::Tracepoint && flags & O_CREAT_TRUNC != 0);
    let read_mode = || A::read::<u16>(inode, offset(|o| &o.inode_mode)).unwrap_or(0);
    // The mode is read here only when a read open is judged by it, and for the record once
    // the path is known to be watched (an unwatched write open never reads the inode).
    if !write && bits & RECORD_FILE_READS == 0 {
        if bits & RECORD_FILE_READ_DEVICES == 0 {
            return Verdict::Allow;
        }
        let fmt = read_mode() & S_IFMT;
        if fmt != S_IFCHR && fmt != S_IFBLK {
            return Verdict::Allow;
        }
    }
    let op = if write {
        FileOp::OpenWrite
    } else {
        FileOp::OpenRead
    };
    let Some(s) = file::scratch() else {
        return Verdict::Allow;
    };
    file::reset(s, op as u32);
    s.record.open_flags = flags;
    let path = if path.0.is_null() {
        kernel::file_path::<A>(f)
    } else {
        Ok(path)
    };
    let Ok((mnt, dentry)) = path else {
        count(Counter::ReadError);
        return Verdict::Allow;
    };
    let len = match file::build_watched_path::<A>(s, Slot::Path, mnt, dentry, bits) {
        Ok(Some(len)) => len,
        Ok(None) => return Verdict::Allow,
        Err(_) => {
            count(Counter::ReadError);
            return Verdict::Allow;
        }
    };
    s.record.path_len = len;
    s.record.mode = u32::from(read_mode());
    file::match_path(s, Slot::Path, len, op as u32);
    let hook = match site {
        Site::Lsm => Hook::LsmFileOpen,
        Site::Tracepoint => Hook::TpSysExitOpen,
        Site::Trampoline => Hook::FentryFileOpen,
    };
    finish(s, bits, hook, site)
}
