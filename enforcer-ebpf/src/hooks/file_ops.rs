//! LSM hooks of the path operations added to unlink/rename/chmod/chown: link, symlink, mkdir,
//! rmdir, truncate, mount, umount, each an LSM program (lsm tier) and its fentry twin on the
//! `security_*` function (signal tier with BPF trampolines; `hook_ctx.rs`). Same gate, path
//! walk, match and verdict as `file_path.rs`: the path is built from the kernel's dentry and
//! mount; in the lsm tier a deny match returns `-EPERM` and the operation does not happen, at
//! the fentry twin it is a SIGKILL (the operation completes).
//!
//! | hook | `path` | `new_path` |
//! |---|---|---|
//! | `path_link(old_dentry, new_dir, new_dentry)` | the new name | the existing file |
//! | `path_symlink(dir, dentry, old_name)` | the new name | the link's text |
//! | `path_mkdir(dir, dentry, mode)`, `path_rmdir(dir, dentry)` | the directory | |
//! | `path_truncate(path)`, `file_truncate(file)` (6.2+) | the file | |
//! | `sb_mount(dev_name, path, type, flags, data)` | the mount point | the source (`fstype`: the type) |
//! | `move_mount(from_path, to_path)` | the mount point | the mount moved |
//! | `sb_umount(mnt, flags)` | the mount point | |
//!
//! setxattr and utimes have no path LSM hook (`inode_setxattr`/`inode_setattr` give a dentry
//! without its mount, and `inode_setattr`'s arguments changed in 6.3): the path tracepoint
//! stays attached for those syscalls in the lsm tier (a deny there is a kill).

use enforcer_common::{
    event::{Counter, Hook},
    file::{FILE_NEW_PATH_TRUNCATED, FileOp},
};

use super::{
    file_path::{
        all_unwatched, finish, hook_gate, lsm_one, lsm_path, one_path, path_dentry,
        second_is_matched,
    },
    hook_ctx::{HookCtx, hook_programs},
};
use crate::{
    file::{self, Slot, Space},
    kernel,
    maps::{count, offset},
    typed::{Access, Typed},
};

/// `path_link(struct dentry *old_dentry, const struct path *new_dir,
/// struct dentry *new_dentry)`.
#[inline(always)]
fn path_link<C: HookCtx>(ctx: &C) -> i32 {
    let bits = match hook_gate(ctx, 3) {
        Ok(bits) => bits,
        Err(ret) => return ret,
    };
    let Some(s) = file::scratch() else {
        return 0;
    };
    file::reset(s, FileOp::Link as u32);
    let dir: *const u8 = ctx.arg(1);
    // A hard link stays on its mount: the existing file is under `new_dir`'s mount too.
    if all_unwatched(s, bits, [(dir, ctx.arg(2)), (dir, ctx.arg(0))]) {
        return 0;
    }
    let (Ok(len), Ok(old_len)) = (
        lsm_path(s, Slot::Path, dir, ctx.arg(2)),
        lsm_path(s, Slot::NewPath, dir, ctx.arg(0)),
    ) else {
        count(Counter::ReadError);
        return 0;
    };
    s.record.path_len = len;
    s.record.new_path_len = old_len;
    file::match_path(s, Slot::Path, len, FileOp::Link as u32);
    file::match_path(s, Slot::NewPath, old_len, FileOp::Link as u32);
    finish(s, bits, C::hook(Hook::LsmPathLink), C::SITE).ret()
}

hook_programs!(
    path_link,
    "path_link",
    lsm_path_link,
    "security_path_link",
    fentry_path_link
);

/// `path_symlink(const struct path *dir, struct dentry *dentry, const char *old_name)`.
#[inline(always)]
fn path_symlink<C: HookCtx>(ctx: &C) -> i32 {
    let bits = match hook_gate(ctx, 3) {
        Ok(bits) => bits,
        Err(ret) => return ret,
    };
    let Some(s) = file::scratch() else {
        return 0;
    };
    let op = FileOp::Symlink as u32;
    file::reset(s, op);
    let old_name: u64 = ctx.arg(2);
    // One after the other, each with its own exit: evaluated as a pair, LLVM loaded a stack
    // slot that the path walk's early failure leaves unwritten (6.1 refuses the program).
    let Ok(len) = lsm_path(s, Slot::Path, ctx.arg(0), ctx.arg(1)) else {
        count(Counter::ReadError);
        return 0;
    };
    let Ok(text_len) = file::read_str(s, Slot::NewPath, Space::Kernel, old_name) else {
        count(Counter::ReadError);
        return 0;
    };
    s.record.path_len = len;
    s.record.new_path_len = text_len;
    file::match_path(s, Slot::Path, len, op);
    if second_is_matched(op) {
        file::match_path(s, Slot::NewPath, text_len, op);
    }
    finish(s, bits, C::hook(Hook::LsmPathSymlink), C::SITE).ret()
}

hook_programs!(
    path_symlink,
    "path_symlink",
    lsm_path_symlink,
    "security_path_symlink",
    fentry_path_symlink
);

/// `path_mkdir(const struct path *dir, struct dentry *dentry, umode_t mode)`.
#[inline(always)]
fn path_mkdir<C: HookCtx>(ctx: &C) -> i32 {
    let bits = match hook_gate(ctx, 3) {
        Ok(bits) => bits,
        Err(ret) => return ret,
    };
    let Some(s) = file::scratch() else {
        return 0;
    };
    file::reset(s, FileOp::Mkdir as u32);
    let mode: u64 = ctx.arg(2);
    s.record.mode = (mode & 0xffff) as u32;
    lsm_one::<C>(
        s,
        bits,
        ctx.arg(0),
        ctx.arg(1),
        FileOp::Mkdir,
        Hook::LsmPathMkdir,
    )
}

hook_programs!(
    path_mkdir,
    "path_mkdir",
    lsm_path_mkdir,
    "security_path_mkdir",
    fentry_path_mkdir
);

/// `path_rmdir(const struct path *dir, struct dentry *dentry)`.
#[inline(always)]
fn path_rmdir<C: HookCtx>(ctx: &C) -> i32 {
    let bits = match hook_gate(ctx, 2) {
        Ok(bits) => bits,
        Err(ret) => return ret,
    };
    let Some(s) = file::scratch() else {
        return 0;
    };
    file::reset(s, FileOp::Rmdir as u32);
    lsm_one::<C>(
        s,
        bits,
        ctx.arg(0),
        ctx.arg(1),
        FileOp::Rmdir,
        Hook::LsmPathRmdir,
    )
}

hook_programs!(
    path_rmdir,
    "path_rmdir",
    lsm_path_rmdir,
    "security_path_rmdir",
    fentry_path_rmdir
);

/// A one-`struct path *` event (the path's own mount and dentry).
#[inline(always)]
fn on_path<C: HookCtx>(path: *const u8, op: FileOp, hook: Hook, bits: u32) -> i32 {
    let Some(s) = file::scratch() else {
        return 0;
    };
    file::reset(s, op as u32);
    let Ok(dentry) = path_dentry(path) else {
        count(Counter::ReadError);
        return 0;
    };
    lsm_one::<C>(s, bits, path, dentry, op, hook)
}

/// `path_truncate(const struct path *path)`.
#[inline(always)]
fn path_truncate<C: HookCtx>(ctx: &C) -> i32 {
    let bits = match hook_gate(ctx, 1) {
        Ok(bits) => bits,
        Err(ret) => return ret,
    };
    on_path::<C>(ctx.arg(0), FileOp::Truncate, Hook::LsmPathTruncate, bits)
}

hook_programs!(
    path_truncate,
    "path_truncate",
    lsm_path_truncate,
    "security_path_truncate",
    fentry_path_truncate
);

/// `file_truncate(struct file *file)` (kernels 6.2+: ftruncate and `O_TRUNC` opens).
#[inline(always)]
fn file_truncate<C: HookCtx>(ctx: &C) -> i32 {
    let bits = match hook_gate(ctx, 1) {
        Ok(bits) => bits,
        Err(ret) => return ret,
    };
    let f: *const u8 = ctx.arg(0);
    // `f_path` is a `struct path` inside the file: its dentry and mount are read from it.
    let Some(s) = file::scratch() else {
        return 0;
    };
    file::reset(s, FileOp::Truncate as u32);
    let Ok((mnt, dentry)) = kernel::file_path::<Typed>(f) else {
        count(Counter::ReadError);
        return 0;
    };
    one_path::<C>(
        s,
        bits,
        mnt,
        dentry,
        FileOp::Truncate,
        Hook::LsmPathTruncate,
    )
}

hook_programs!(
    file_truncate,
    "file_truncate",
    lsm_file_truncate,
    "security_file_truncate",
    fentry_file_truncate
);

/// `sb_mount(const char *dev_name, const struct path *path, const char *type,
/// unsigned long flags, void *data)`.
#[inline(always)]
fn sb_mount<C: HookCtx>(ctx: &C) -> i32 {
    let bits = match hook_gate(ctx, 5) {
        Ok(bits) => bits,
        Err(ret) => return ret,
    };
    let Some(s) = file::scratch() else {
        return 0;
    };
    file::reset(s, FileOp::Mount as u32);
    let flags: u64 = ctx.arg(3);
    s.record.open_flags = flags as u32;
    let dev_name: u64 = ctx.arg(0);
    if dev_name != 0 {
        // The source is informative only: an unreadable one leaves it empty.
        if let Ok(len) = file::read_str(s, Slot::NewPath, Space::Kernel, dev_name) {
            s.record.new_path_len = len;
        }
        // Not a path to match: a long source is no reason to report (`file::reported`).
        s.record.flags &= !FILE_NEW_PATH_TRUNCATED;
    }
    let fstype: u64 = ctx.arg(2);
    file::read_fstype(s, Space::Kernel, fstype);
    let path: *const u8 = ctx.arg(1);
    let Ok(dentry) = path_dentry(path) else {
        count(Counter::ReadError);
        return 0;
    };
    lsm_one::<C>(s, bits, path, dentry, FileOp::Mount, Hook::LsmSbMount)
}

hook_programs!(
    sb_mount,
    "sb_mount",
    lsm_sb_mount,
    "security_sb_mount",
    fentry_sb_mount
);

/// `move_mount(const struct path *from_path, const struct path *to_path)`.
#[inline(always)]
fn move_mount<C: HookCtx>(ctx: &C) -> i32 {
    let bits = match hook_gate(ctx, 2) {
        Ok(bits) => bits,
        Err(ret) => return ret,
    };
    let Some(s) = file::scratch() else {
        return 0;
    };
    file::reset(s, FileOp::Mount as u32);
    let from: *const u8 = ctx.arg(0);
    let to: *const u8 = ctx.arg(1);
    let (Ok(from_dentry), Ok(to_dentry)) = (path_dentry(from), path_dentry(to)) else {
        count(Counter::ReadError);
        return 0;
    };
    // Only the mount point is matched (the source is recorded).
    if all_unwatched(s, bits, [(to, to_dentry)]) {
        return 0;
    }
    let (Ok(len), Ok(from_len)) = (
        lsm_path(s, Slot::Path, to, to_dentry),
        lsm_path(s, Slot::NewPath, from, from_dentry),
    ) else {
        count(Counter::ReadError);
        return 0;
    };
    s.record.path_len = len;
    s.record.new_path_len = from_len;
    file::match_path(s, Slot::Path, len, FileOp::Mount as u32);
    finish(s, bits, C::hook(Hook::LsmSbMount), C::SITE).ret()
}

hook_programs!(
    move_mount,
    "move_mount",
    lsm_move_mount,
    "security_move_mount",
    fentry_move_mount
);

/// `sb_umount(struct vfsmount *mnt, int flags)`: the mount point is the path of the
/// mount's root (the walk crosses into the parent mount at once).
#[inline(always)]
fn sb_umount<C: HookCtx>(ctx: &C) -> i32 {
    let bits = match hook_gate(ctx, 2) {
        Ok(bits) => bits,
        Err(ret) => return ret,
    };
    let Some(s) = file::scratch() else {
        return 0;
    };
    file::reset(s, FileOp::Umount as u32);
    let flags: u64 = ctx.arg(1);
    s.record.open_flags = flags as u32;
    let mnt: *const u8 = ctx.arg(0);
    let Ok(root) = Typed::read::<*const u8>(mnt, offset(|o| &o.vfsmount_root)) else {
        count(Counter::ReadError);
        return 0;
    };
    one_path::<C>(s, bits, mnt, root, FileOp::Umount, Hook::LsmSbUmount)
}

hook_programs!(
    sb_umount,
    "sb_umount",
    lsm_sb_umount,
    "security_sb_umount",
    fentry_sb_umount
);
