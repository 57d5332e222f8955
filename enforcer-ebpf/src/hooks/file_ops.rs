//! LSM hooks of the path operations added to unlink/rename/chmod/chown (lsm tier): link,
//! symlink, mkdir, rmdir, truncate, mount, umount. Same gate, path walk, match and verdict
//! as `file_path.rs`: the path is built from the kernel's dentry and mount, a deny match
//! returns `-EPERM` and the operation does not happen.
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

use aya_ebpf::{macros::lsm, programs::LsmContext};
use enforcer_common::{
    event::{Counter, Hook},
    file::{FILE_NEW_PATH_TRUNCATED, FileOp},
};

use super::file_path::{finish, lsm_gate, lsm_one, lsm_path, path_dentry, second_is_matched};
use crate::{
    file::{self, Slot, Space},
    kernel::{self, read_at},
    maps::{count, offset},
    plan::Site,
    typed::Typed,
};

/// LSM `path_link(struct dentry *old_dentry, const struct path *new_dir,
/// struct dentry *new_dentry)`.
#[lsm(hook = "path_link")]
pub(crate) fn lsm_path_link(ctx: LsmContext) -> i32 {
    let previous: i32 = ctx.arg(3);
    let Some(bits) = lsm_gate(previous) else {
        return previous;
    };
    let Some(s) = file::scratch() else {
        return 0;
    };
    file::reset(s, FileOp::Link as u32);
    let dir: *const u8 = ctx.arg(1);
    // A hard link stays on its mount: the existing file is under `new_dir`'s mount too.
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
    finish(s, bits, Hook::LsmPathLink, Site::Lsm).ret()
}

/// LSM `path_symlink(const struct path *dir, struct dentry *dentry, const char *old_name)`.
#[lsm(hook = "path_symlink")]
pub(crate) fn lsm_path_symlink(ctx: LsmContext) -> i32 {
    let previous: i32 = ctx.arg(3);
    let Some(bits) = lsm_gate(previous) else {
        return previous;
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
    finish(s, bits, Hook::LsmPathSymlink, Site::Lsm).ret()
}

/// LSM `path_mkdir(const struct path *dir, struct dentry *dentry, umode_t mode)`.
#[lsm(hook = "path_mkdir")]
pub(crate) fn lsm_path_mkdir(ctx: LsmContext) -> i32 {
    let previous: i32 = ctx.arg(3);
    let Some(bits) = lsm_gate(previous) else {
        return previous;
    };
    let Some(s) = file::scratch() else {
        return 0;
    };
    file::reset(s, FileOp::Mkdir as u32);
    let mode: u64 = ctx.arg(2);
    s.record.mode = (mode & 0xffff) as u32;
    lsm_one(
        s,
        bits,
        ctx.arg(0),
        ctx.arg(1),
        FileOp::Mkdir,
        Hook::LsmPathMkdir,
    )
}

/// LSM `path_rmdir(const struct path *dir, struct dentry *dentry)`.
#[lsm(hook = "path_rmdir")]
pub(crate) fn lsm_path_rmdir(ctx: LsmContext) -> i32 {
    let previous: i32 = ctx.arg(2);
    let Some(bits) = lsm_gate(previous) else {
        return previous;
    };
    let Some(s) = file::scratch() else {
        return 0;
    };
    file::reset(s, FileOp::Rmdir as u32);
    lsm_one(
        s,
        bits,
        ctx.arg(0),
        ctx.arg(1),
        FileOp::Rmdir,
        Hook::LsmPathRmdir,
    )
}

/// A one-`struct path *` event (the path's own mount and dentry).
#[inline(always)]
fn on_path(path: *const u8, op: FileOp, hook: Hook, bits: u32) -> i32 {
    let Some(s) = file::scratch() else {
        return 0;
    };
    file::reset(s, op as u32);
    let Ok(dentry) = path_dentry(path) else {
        count(Counter::ReadError);
        return 0;
    };
    lsm_one(s, bits, path, dentry, op, hook)
}

/// LSM `path_truncate(const struct path *path)`.
#[lsm(hook = "path_truncate")]
pub(crate) fn lsm_path_truncate(ctx: LsmContext) -> i32 {
    let previous: i32 = ctx.arg(1);
    let Some(bits) = lsm_gate(previous) else {
        return previous;
    };
    on_path(ctx.arg(0), FileOp::Truncate, Hook::LsmPathTruncate, bits)
}

/// LSM `file_truncate(struct file *file)` (kernels 6.2+: ftruncate and `O_TRUNC` opens).
#[lsm(hook = "file_truncate")]
pub(crate) fn lsm_file_truncate(ctx: LsmContext) -> i32 {
    let previous: i32 = ctx.arg(1);
    let Some(bits) = lsm_gate(previous) else {
        return previous;
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
    let Ok(len) = file::build_dentry_path(s, Slot::Path, mnt, dentry) else {
        count(Counter::ReadError);
        return 0;
    };
    s.record.path_len = len;
    file::match_path(s, Slot::Path, len, FileOp::Truncate as u32);
    finish(s, bits, Hook::LsmPathTruncate, Site::Lsm).ret()
}

/// LSM `sb_mount(const char *dev_name, const struct path *path, const char *type,
/// unsigned long flags, void *data)`.
#[lsm(hook = "sb_mount")]
pub(crate) fn lsm_sb_mount(ctx: LsmContext) -> i32 {
    let previous: i32 = ctx.arg(5);
    let Some(bits) = lsm_gate(previous) else {
        return previous;
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
    lsm_one(s, bits, path, dentry, FileOp::Mount, Hook::LsmSbMount)
}

/// LSM `move_mount(const struct path *from_path, const struct path *to_path)`.
#[lsm(hook = "move_mount")]
pub(crate) fn lsm_move_mount(ctx: LsmContext) -> i32 {
    let previous: i32 = ctx.arg(2);
    let Some(bits) = lsm_gate(previous) else {
        return previous;
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
    finish(s, bits, Hook::LsmSbMount, Site::Lsm).ret()
}

/// LSM `sb_umount(struct vfsmount *mnt, int flags)`: the mount point is the path of the
/// mount's root (the walk crosses into the parent mount at once).
#[lsm(hook = "sb_umount")]
pub(crate) fn lsm_sb_umount(ctx: LsmContext) -> i32 {
    let previous: i32 = ctx.arg(2);
    let Some(bits) = lsm_gate(previous) else {
        return previous;
    };
    let Some(s) = file::scratch() else {
        return 0;
    };
    file::reset(s, FileOp::Umount as u32);
    let flags: u64 = ctx.arg(1);
    s.record.open_flags = flags as u32;
    let mnt: *const u8 = ctx.arg(0);
    let Ok(root) = read_at::<*const u8>(mnt, offset(|o| &o.vfsmount_root)) else {
        count(Counter::ReadError);
        return 0;
    };
    let Ok(len) = file::build_dentry_path(s, Slot::Path, mnt, root) else {
        count(Counter::ReadError);
        return 0;
    };
    s.record.path_len = len;
    file::match_path(s, Slot::Path, len, FileOp::Umount as u32);
    finish(s, bits, Hook::LsmSbUmount, Site::Lsm).ret()
}
