//! Path operations on watched files: unlink, rename, chmod, chown (LSM hooks here), and the
//! one path-syscall tracepoint program of every path operation (the LSM hooks of link,
//! symlink, mkdir, rmdir, truncate, mount and umount are in `file_ops.rs`).
//!
//! | operation | lsm tier | signal / monitor tier |
//! |---|---|---|
//! | unlink | LSM `path_unlink(dir, dentry)` | `sys_enter_unlink(pathname)`, `sys_enter_unlinkat(dfd, pathname, flag)` |
//! | rename | LSM `path_rename(old_dir, old_dentry, new_dir, new_dentry, flags)` | `sys_enter_rename`, `sys_enter_renameat`, `sys_enter_renameat2` |
//! | chmod | LSM `path_chmod(path, mode)` (fchmod too) | `sys_enter_chmod`, `sys_enter_fchmodat`, `sys_enter_fchmodat2`, `sys_enter_fchmod` |
//! | chown | LSM `path_chown(path, uid, gid)` (fchown too) | `sys_enter_chown`, `sys_enter_lchown`, `sys_enter_fchownat`, `sys_enter_fchown` |
//! | link, symlink | LSM `path_link`, `path_symlink` | `sys_enter_{link,linkat,symlink,symlinkat}` |
//! | mkdir, rmdir | LSM `path_mkdir`, `path_rmdir` | `sys_enter_{mkdir,mkdirat,rmdir}` |
//! | setxattr | the tracepoint (no path LSM hook) | `sys_enter_{setxattr,lsetxattr,fsetxattr,setxattrat}` |
//! | utimes | the tracepoint (no path LSM hook) | `sys_enter_{utimensat,utimes,utime,futimesat}` |
//! | truncate | LSM `path_truncate`, `file_truncate` (6.2+) | `sys_enter_{truncate,ftruncate}` |
//! | mount, umount | LSM `sb_mount`, `move_mount`, `sb_umount` | `sys_enter_{mount,move_mount,umount}` |
//!
//! The signal tier attaches the LSM hooks' fentry twins instead of the tracepoints where the
//! kernel has BPF trampolines (`hook_ctx.rs`): same column as the lsm tier, a deny there is a
//! kill. The LSM hooks (either program) build the path from the kernel's dentry and mount
//! (resolved, symlinks followed where the syscall follows them) and return `-EPERM` for a deny
//! match; a one-path operation's path is first judged by its directories
//! (`file::build_watched_path`: one outside every watched directory is dropped before its
//! string is built); a rename or link is dropped when both its paths are, a move_mount when
//! its mount point is (`all_unwatched`), after the walks and before the strings; a symlink
//! (its target is text) is always built. The
//! tracepoint (one program, told apart by `__syscall_nr`) sees the user's string before the
//! kernel resolves it: an absolute path is taken as written; a relative one is joined to the
//! working directory or the directory descriptor (`FILE_PATH_RELATIVE`); a path with `.`,
//! `..` or empty components (`FILE_PATH_DOTS`, flagged by the match walk) is reported whatever
//! it matched and not acted on in the kernel: userspace cleans it lexically, matches the rules
//! and kills after the fact (symbolic links are not followed); a deny there is a SIGKILL, sent
//! before the syscall runs but delivered when it returns, so the operation itself completes. Calls on a
//! descriptor (fchmod, fchown, fsetxattr, ftruncate, futimens) take the descriptor's path.

use aya_ebpf::{macros::tracepoint, programs::TracePointContext};
use enforcer_common::{
    event::{Counter, Hook},
    file::{
        FILE_NEW_PATH_TRUNCATED, FILE_PATH_DOTS, FILE_PATH_RELATIVE, FILE_PATH_UNRESOLVED, FileOp,
    },
    plan::{RECORD_FILE_DIRS, RECORD_FILES},
};

use super::{
    Verdict,
    hook_ctx::{HookCtx, hook_programs},
};
use crate::{
    emit,
    file::{self, DirVerdict, FileScratch, Slot, Space},
    kernel::{self, ReadError},
    maps::{config, count, offset, path_syscall, plan_settings},
    plan::{Site, act},
    syscall_record::{syscall_arg, syscall_nr},
    typed::{Access, Probed, Typed},
};

/// `AT_FDCWD`.
const AT_FDCWD: i32 = -100;

/// Acts on the match the scratch slot holds and reports the event when it is watched (or
/// acted on); returns the LSM verdict. A path written with `.`, `..` or `//` components (only
/// the signal tier's user paths have them, `FILE_PATH_DOTS`) is not acted on: its match on the
/// path as written means nothing either way (`/etc/cron.d/../../tmp/x` is not under
/// `/etc/cron.d`); it is reported, and userspace matches the cleaned path and kills.
#[inline(always)]
pub(super) fn finish(s: &mut FileScratch, bits: u32, hook: Hook, site: Site) -> Verdict {
    let mut verdict = emit::Verdict::NONE;
    let mut deny = false;
    if s.acting != 0 && s.record.flags & FILE_PATH_DOTS == 0 {
        let plan = s.verdict;
        (verdict, deny) = act(&plan, &config(), site);
    }
    if file::reported(s, bits) || verdict.outcome != 0 {
        file::emit(s, hook, &verdict);
    }
    Verdict::deny_if(deny)
}

/// How the tracepoint reads a call's second string ([`PathCall::second`]).
pub(crate) const SECOND_NONE: u32 = 0;
/// A path, resolved like the first one (rename's new path, a hard link's existing file,
/// move_mount's source).
pub(crate) const SECOND_PATH: u32 = 1;
/// A string taken as written (a symlink's text, an attribute name, a mount source).
pub(crate) const SECOND_STR: u32 = 2;

/// The arguments of one path syscall, gathered per syscall number and read back once, so the
/// verifier checks the rest of the program once (see `SEND_SCRATCH` in the architecture notes).
/// A null `path` means the call is about descriptor `dfd` itself (fchmod, fchown, fsetxattr,
/// ftruncate, futimens).
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct PathCall {
    pub(crate) op: u32,
    pub(crate) dfd: i32,
    pub(crate) path: u64,
    pub(crate) new_dfd: i32,
    pub(crate) mode: u32,
    pub(crate) new_path: u64,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    /// `SECOND_*`: what `new_path` is.
    pub(crate) second: u32,
    /// Mount flags (mount), else 0.
    pub(crate) flags: u32,
    /// The file system type string (mount), else null.
    pub(crate) fstype: u64,
}

/// Arguments every path syscall tracepoint has (`unlink`, `rmdir`: 1): the ones
/// `syscall_arg` may load directly.
const PATH_ARGS: usize = 1;

/// The arguments of syscall `nr`, `None` for a syscall this program does not handle.
#[inline(always)]
fn gather(ctx: &TracePointContext, nr: u32) -> Result<Option<PathCall>, ReadError> {
    let a = |i| syscall_arg::<PATH_ARGS>(ctx, i);
    let mut c = PathCall {
        op: 0,
        dfd: AT_FDCWD,
        path: 0,
        new_dfd: AT_FDCWD,
        mode: 0,
        new_path: 0,
        uid: u32::MAX,
        gid: u32::MAX,
        second: SECOND_NONE,
        flags: 0,
        fstype: 0,
    };
    if nr == offset(|o| &o.nr_unlink) {
        c.op = FileOp::Unlink as u32;
        c.path = a(0)?;
    } else if nr == offset(|o| &o.nr_unlinkat) {
        c.op = FileOp::Unlink as u32;
        c.dfd = a(0)? as i32;
        c.path = a(1)?;
    } else if nr == offset(|o| &o.nr_rename) {
        c.op = FileOp::Rename as u32;
        c.path = a(0)?;
        c.new_path = a(1)?;
        c.second = SECOND_PATH;
    } else if nr == offset(|o| &o.nr_renameat) || nr == offset(|o| &o.nr_renameat2) {
        c.op = FileOp::Rename as u32;
        c.dfd = a(0)? as i32;
        c.path = a(1)?;
        c.new_dfd = a(2)? as i32;
        c.new_path = a(3)?;
        c.second = SECOND_PATH;
    } else if nr == offset(|o| &o.nr_chmod) {
        c.op = FileOp::Chmod as u32;
        c.path = a(0)?;
        c.mode = a(1)? as u32;
    } else if nr == offset(|o| &o.nr_fchmodat) || nr == path_syscall(|n| &n.fchmodat2) {
        c.op = FileOp::Chmod as u32;
        c.dfd = a(0)? as i32;
        c.path = a(1)?;
        c.mode = a(2)? as u32;
    } else if nr == path_syscall(|n| &n.fchmod) {
        c.op = FileOp::Chmod as u32;
        c.dfd = a(0)? as i32;
        c.mode = a(1)? as u32;
    } else if nr == offset(|o| &o.nr_chown) || nr == offset(|o| &o.nr_lchown) {
        c.op = FileOp::Chown as u32;
        c.path = a(0)?;
        c.uid = a(1)? as u32;
        c.gid = a(2)? as u32;
    } else if nr == offset(|o| &o.nr_fchownat) {
        c.op = FileOp::Chown as u32;
        c.dfd = a(0)? as i32;
        c.path = a(1)?;
        c.uid = a(2)? as u32;
        c.gid = a(3)? as u32;
    } else if nr == path_syscall(|n| &n.fchown) {
        c.op = FileOp::Chown as u32;
        c.dfd = a(0)? as i32;
        c.uid = a(1)? as u32;
        c.gid = a(2)? as u32;
    } else {
        return gather_more(ctx, nr, c);
    }
    Ok(Some(c))
}

/// [`gather`] for the link, directory, attribute, time, truncate and mount syscalls.
#[inline(always)]
fn gather_more(
    ctx: &TracePointContext,
    nr: u32,
    mut c: PathCall,
) -> Result<Option<PathCall>, ReadError> {
    let a = |i| syscall_arg::<PATH_ARGS>(ctx, i);
    if nr == path_syscall(|n| &n.link) || nr == path_syscall(|n| &n.symlink) {
        // (oldname, newname): the new name is the path acted on.
        c.op = if nr == path_syscall(|n| &n.link) {
            c.second = SECOND_PATH;
            FileOp::Link as u32
        } else {
            c.second = SECOND_STR;
            FileOp::Symlink as u32
        };
        c.new_path = a(0)?;
        c.path = a(1)?;
    } else if nr == path_syscall(|n| &n.linkat) {
        c.op = FileOp::Link as u32;
        c.new_dfd = a(0)? as i32;
        c.new_path = a(1)?;
        c.dfd = a(2)? as i32;
        c.path = a(3)?;
        c.second = SECOND_PATH;
    } else if nr == path_syscall(|n| &n.symlinkat) {
        c.op = FileOp::Symlink as u32;
        c.new_path = a(0)?;
        c.dfd = a(1)? as i32;
        c.path = a(2)?;
        c.second = SECOND_STR;
    } else if nr == path_syscall(|n| &n.mkdir) {
        c.op = FileOp::Mkdir as u32;
        c.path = a(0)?;
        c.mode = a(1)? as u32;
    } else if nr == path_syscall(|n| &n.mkdirat) {
        c.op = FileOp::Mkdir as u32;
        c.dfd = a(0)? as i32;
        c.path = a(1)?;
        c.mode = a(2)? as u32;
    } else if nr == path_syscall(|n| &n.rmdir) {
        c.op = FileOp::Rmdir as u32;
        c.path = a(0)?;
    } else if nr == path_syscall(|n| &n.setxattr)
        || nr == path_syscall(|n| &n.lsetxattr)
        || nr == path_syscall(|n| &n.fsetxattr)
    {
        c.op = FileOp::Setxattr as u32;
        if nr == path_syscall(|n| &n.fsetxattr) {
            c.dfd = a(0)? as i32;
        } else {
            c.path = a(0)?;
        }
        c.new_path = a(1)?;
        c.second = SECOND_STR;
    } else if nr == path_syscall(|n| &n.setxattrat) {
        c.op = FileOp::Setxattr as u32;
        c.dfd = a(0)? as i32;
        c.path = a(1)?;
        c.new_path = a(3)?;
        c.second = SECOND_STR;
    } else if nr == path_syscall(|n| &n.utimes) || nr == path_syscall(|n| &n.utime) {
        c.op = FileOp::Utimes as u32;
        c.path = a(0)?;
    } else if nr == path_syscall(|n| &n.utimensat) || nr == path_syscall(|n| &n.futimesat) {
        // utimensat(fd, NULL, ...) is futimens: the descriptor's own times.
        c.op = FileOp::Utimes as u32;
        c.dfd = a(0)? as i32;
        c.path = a(1)?;
    } else if nr == path_syscall(|n| &n.truncate) {
        c.op = FileOp::Truncate as u32;
        c.path = a(0)?;
    } else if nr == path_syscall(|n| &n.ftruncate) {
        c.op = FileOp::Truncate as u32;
        c.dfd = a(0)? as i32;
    } else if nr == path_syscall(|n| &n.mount) {
        // (dev_name, dir_name, type, flags, data)
        c.op = FileOp::Mount as u32;
        c.new_path = a(0)?;
        c.path = a(1)?;
        c.fstype = a(2)?;
        c.flags = a(3)? as u32;
        c.second = SECOND_STR;
    } else if nr == path_syscall(|n| &n.move_mount) {
        // (from_dfd, from_pathname, to_dfd, to_pathname, flags)
        c.op = FileOp::Mount as u32;
        c.new_dfd = a(0)? as i32;
        c.new_path = a(1)?;
        c.dfd = a(2)? as i32;
        c.path = a(3)?;
        c.second = SECOND_PATH;
    } else if nr == path_syscall(|n| &n.umount2) {
        c.op = FileOp::Umount as u32;
        c.path = a(0)?;
        c.flags = a(1)? as u32;
    } else {
        return Ok(None);
    }
    Ok(Some(c))
}

/// The user path `ptr` (relative to `dfd`) as an absolute path in `slot`; returns its length.
/// A null `ptr` is descriptor `dfd`'s own path.
#[inline(always)]
fn user_path(s: &mut FileScratch, slot: Slot, dfd: i32, ptr: u64) -> Result<u32, ReadError> {
    let mut len = 0;
    if ptr != 0 {
        len = file::read_user_path(s, slot, ptr)?;
        let first = match slot {
            Slot::Path => s.record.path[0],
            Slot::NewPath => s.record.new_path[0],
        };
        if first == b'/' {
            return Ok(len);
        }
        s.record.flags |= FILE_PATH_RELATIVE;
    } else if dfd == AT_FDCWD {
        return Err(ReadError);
    }
    let base = if dfd == AT_FDCWD {
        kernel::current_pwd().ok()
    } else {
        kernel::fd_file(dfd as u32).and_then(|f| kernel::file_path::<Probed>(f).ok())
    };
    let Some((mnt, dentry)) = base else {
        if ptr == 0 {
            return Err(ReadError);
        }
        s.record.flags |= FILE_PATH_UNRESOLVED;
        return Ok(len);
    };
    let base_len = file::build_dentry_path::<Probed>(s, slot, mnt, dentry)?;
    if ptr == 0 {
        return Ok(base_len);
    }
    file::append_user(s, slot, base_len, ptr)
}

/// `syscalls/sys_enter_*` of the path syscalls: unlink, unlinkat, rename, renameat,
/// renameat2, chmod, fchmodat, fchmodat2, fchmod, chown, lchown, fchownat, fchown, link,
/// linkat, symlink, symlinkat, mkdir, mkdirat, rmdir, setxattr, lsetxattr, fsetxattr,
/// setxattrat, utimensat, utimes, utime, futimesat, truncate, ftruncate, mount, move_mount,
/// umount (umount2).
#[tracepoint(category = "syscalls", name = "sys_enter_unlinkat")]
pub(crate) fn tp_sys_enter_path(ctx: TracePointContext) -> u32 {
    let bits = plan_settings().record;
    if bits & RECORD_FILES == 0 {
        return 0;
    }
    let Ok(nr) = syscall_nr(&ctx) else {
        count(Counter::ReadError);
        return 0;
    };
    let call = match gather(&ctx, nr as u32) {
        Ok(Some(call)) => call,
        Ok(None) => return 0,
        Err(ReadError) => {
            count(Counter::ReadError);
            return 0;
        }
    };
    let Some(s) = file::scratch() else {
        return 0;
    };
    // One state for the verifier whatever the syscall (see `PathCall`).
    // SAFETY: both pointers are to the scratch slot's `call` field, valid and aligned.
    unsafe { core::ptr::write_volatile(&mut s.call, call) };
    // SAFETY: as above.
    let call = unsafe { core::ptr::read_volatile(&s.call) };
    file::reset(s, call.op);
    s.record.mode = call.mode;
    s.record.uid = call.uid;
    s.record.gid = call.gid;
    s.record.open_flags = call.flags;
    let Ok(len) = user_path(s, Slot::Path, call.dfd, call.path) else {
        count(Counter::ReadError);
        return 0;
    };
    s.record.path_len = len;
    file::match_path(s, Slot::Path, len, call.op);
    if call.second != SECOND_NONE && call.new_path != 0 {
        let second = if call.second == SECOND_PATH {
            user_path(s, Slot::NewPath, call.new_dfd, call.new_path)
        } else {
            file::read_str(s, Slot::NewPath, Space::User, call.new_path)
        };
        let Ok(len) = second else {
            count(Counter::ReadError);
            return 0;
        };
        s.record.new_path_len = len;
        if second_is_matched(call.op) {
            file::match_path(s, Slot::NewPath, len, call.op);
        } else {
            // A long attribute name or mount source is no path to match: not a reason to
            // report an unwatched event (`file::reported`).
            s.record.flags &= !FILE_NEW_PATH_TRUNCATED;
        }
    }
    file::read_fstype(s, Space::User, call.fstype);
    let _ = finish(s, bits, Hook::TpSysEnterPath, Site::Tracepoint);
    0
}

/// Whether the second path of `op` is matched against the watch too (a rename's either side,
/// a link's target); an attribute name or a mount source is not a path to watch.
#[inline(always)]
pub(super) fn second_is_matched(op: u32) -> bool {
    op == FileOp::Rename as u32 || op == FileOp::Link as u32 || op == FileOp::Symlink as u32
}

/// The hook gate (either program, see `hook_ctx.rs`): an earlier LSM's refusal stands
/// (`Err` holds what to return), and nothing runs outside the program's tier or without file
/// rules. `previous_at` is the hook's arity. Returns the plan's record bits when the hook
/// should run.
#[inline(always)]
pub(super) fn hook_gate<C: HookCtx>(ctx: &C, previous_at: usize) -> Result<u32, i32> {
    let previous = ctx.previous(previous_at);
    if previous != 0 {
        return Err(previous);
    }
    if !C::in_tier() {
        return Err(0);
    }
    let bits = plan_settings().record;
    if bits & RECORD_FILES == 0 {
        return Err(0);
    }
    Ok(bits)
}

/// Path of `dentry` under the mount of `struct path *dir` into `slot` (both BTF-typed: hook
/// arguments, or loaded through them).
#[inline(always)]
pub(super) fn lsm_path(
    s: &mut FileScratch,
    slot: Slot,
    dir: *const u8,
    dentry: *const u8,
) -> Result<u32, ReadError> {
    file::build_dentry_path::<Typed>(s, slot, path_mount(dir)?, dentry)
}

/// The mount (`struct vfsmount *`) of BTF-typed `struct path *path` (typed itself).
#[inline(always)]
pub(super) fn path_mount(path: *const u8) -> Result<*const u8, ReadError> {
    Typed::read(path, offset(|o| &o.path_mnt))
}

/// The dentry of BTF-typed `struct path *path` (typed itself).
#[inline(always)]
pub(super) fn path_dentry(path: *const u8) -> Result<*const u8, ReadError> {
    Typed::read(path, offset(|o| &o.path_dentry))
}

/// Builds, matches and finishes a one-path hook event (`hook`: the LSM hook's name, turned
/// into the fentry twin's by `C`), unless the directory filter drops its path (`mnt` the
/// mount the path is under).
#[inline(always)]
pub(super) fn one_path<C: HookCtx>(
    s: &mut FileScratch,
    bits: u32,
    mnt: *const u8,
    dentry: *const u8,
    op: FileOp,
    hook: Hook,
) -> i32 {
    let len = match file::build_watched_path::<Typed>(s, Slot::Path, mnt, dentry, bits) {
        Ok(Some(len)) => len,
        Ok(None) => return 0,
        Err(ReadError) => {
            count(Counter::ReadError);
            return 0;
        }
    };
    s.record.path_len = len;
    file::match_path(s, Slot::Path, len, op as u32);
    finish(s, bits, C::hook(hook), C::SITE).ret()
}

/// Whether the directory filter (`file::dirs_verdict`, with `RECORD_FILE_DIRS`) drops every
/// path of `paths` (each a `dentry` under the mount of BTF-typed `struct path *dir`): a
/// rename or link outside every watched directory is then dropped after its walks, before
/// either string is built (counted seen and filtered). A path in the same directory (same
/// mount, same parent dentry) as one dropped above its last component is dropped without a
/// walk of its own: a rename or link within one directory walks once. A failed read drops
/// nothing: the event goes on to be built as before. A path passed on is walked again by the
/// build (the walks share `FileScratch::comps`): the extra walk is paid only by events that
/// may be watched.
#[inline(always)]
pub(super) fn all_unwatched<const N: usize>(
    s: &mut FileScratch,
    bits: u32,
    paths: [(*const u8, *const u8); N],
) -> bool {
    if bits & RECORD_FILE_DIRS == 0 {
        return false;
    }
    // The mount and parent of a path dropped above its last component.
    let mut dropped_dir = None;
    for (dir, dentry) in paths {
        let (Ok(mnt), Ok(parent)) = (
            path_mount(dir),
            Typed::read::<*const u8>(dentry, offset(|o| &o.dentry_parent)),
        ) else {
            return false;
        };
        if dropped_dir == Some((mnt, parent)) {
            continue;
        }
        let Ok(complete) = file::walk_dentry::<Typed>(s, mnt, dentry) else {
            return false;
        };
        match file::dirs_verdict(s, complete) {
            DirVerdict::PassOn => return false,
            DirVerdict::DroppedAtLeaf => {}
            DirVerdict::DroppedAbove => dropped_dir = Some((mnt, parent)),
        }
    }
    file::count_dropped_by_dirs();
    true
}

/// [`one_path`] of `dentry` under the mount of BTF-typed `struct path *dir`.
#[inline(always)]
pub(super) fn lsm_one<C: HookCtx>(
    s: &mut FileScratch,
    bits: u32,
    dir: *const u8,
    dentry: *const u8,
    op: FileOp,
    hook: Hook,
) -> i32 {
    let Ok(mnt) = path_mount(dir) else {
        count(Counter::ReadError);
        return 0;
    };
    one_path::<C>(s, bits, mnt, dentry, op, hook)
}

/// `path_unlink(const struct path *dir, struct dentry *dentry)`.
#[inline(always)]
fn path_unlink<C: HookCtx>(ctx: &C) -> i32 {
    let bits = match hook_gate(ctx, 2) {
        Ok(bits) => bits,
        Err(ret) => return ret,
    };
    let Some(s) = file::scratch() else {
        return 0;
    };
    file::reset(s, FileOp::Unlink as u32);
    lsm_one::<C>(
        s,
        bits,
        ctx.arg(0),
        ctx.arg(1),
        FileOp::Unlink,
        Hook::LsmPathUnlink,
    )
}

hook_programs!(
    path_unlink,
    "path_unlink",
    lsm_path_unlink,
    "security_path_unlink",
    fentry_path_unlink
);

/// `path_chmod(const struct path *path, umode_t mode)`.
#[inline(always)]
fn path_chmod<C: HookCtx>(ctx: &C) -> i32 {
    let bits = match hook_gate(ctx, 2) {
        Ok(bits) => bits,
        Err(ret) => return ret,
    };
    let Some(s) = file::scratch() else {
        return 0;
    };
    file::reset(s, FileOp::Chmod as u32);
    let mode: u64 = ctx.arg(1);
    s.record.mode = (mode & 0xffff) as u32;
    let path: *const u8 = ctx.arg(0);
    let Ok(dentry) = path_dentry(path) else {
        count(Counter::ReadError);
        return 0;
    };
    lsm_one::<C>(s, bits, path, dentry, FileOp::Chmod, Hook::LsmPathChmod)
}

hook_programs!(
    path_chmod,
    "path_chmod",
    lsm_path_chmod,
    "security_path_chmod",
    fentry_path_chmod
);

/// `path_chown(const struct path *path, kuid_t uid, kgid_t gid)`.
#[inline(always)]
fn path_chown<C: HookCtx>(ctx: &C) -> i32 {
    let bits = match hook_gate(ctx, 3) {
        Ok(bits) => bits,
        Err(ret) => return ret,
    };
    let Some(s) = file::scratch() else {
        return 0;
    };
    file::reset(s, FileOp::Chown as u32);
    let uid: u64 = ctx.arg(1);
    let gid: u64 = ctx.arg(2);
    s.record.uid = uid as u32;
    s.record.gid = gid as u32;
    let path: *const u8 = ctx.arg(0);
    let Ok(dentry) = path_dentry(path) else {
        count(Counter::ReadError);
        return 0;
    };
    lsm_one::<C>(s, bits, path, dentry, FileOp::Chown, Hook::LsmPathChown)
}

hook_programs!(
    path_chown,
    "path_chown",
    lsm_path_chown,
    "security_path_chown",
    fentry_path_chown
);

/// `path_rename(const struct path *old_dir, struct dentry *old_dentry,
/// const struct path *new_dir, struct dentry *new_dentry, unsigned int flags)`.
#[inline(always)]
fn path_rename<C: HookCtx>(ctx: &C) -> i32 {
    let bits = match hook_gate(ctx, 5) {
        Ok(bits) => bits,
        Err(ret) => return ret,
    };
    let Some(s) = file::scratch() else {
        return 0;
    };
    file::reset(s, FileOp::Rename as u32);
    if all_unwatched(
        s,
        bits,
        [(ctx.arg(0), ctx.arg(1)), (ctx.arg(2), ctx.arg(3))],
    ) {
        return 0;
    }
    let (Ok(len), Ok(new_len)) = (
        lsm_path(s, Slot::Path, ctx.arg(0), ctx.arg(1)),
        lsm_path(s, Slot::NewPath, ctx.arg(2), ctx.arg(3)),
    ) else {
        count(Counter::ReadError);
        return 0;
    };
    s.record.path_len = len;
    s.record.new_path_len = new_len;
    file::match_path(s, Slot::Path, len, FileOp::Rename as u32);
    file::match_path(s, Slot::NewPath, new_len, FileOp::Rename as u32);
    finish(s, bits, C::hook(Hook::LsmPathRename), C::SITE).ret()
}

hook_programs!(
    path_rename,
    "path_rename",
    lsm_path_rename,
    "security_path_rename",
    fentry_path_rename
);
