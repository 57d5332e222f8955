//! Reads of kernel structures through the offsets the loader found in the running kernel's BTF
//! (`enforcer_common::offsets::KernelOffsets`). A read through a BTF-typed pointer is a plain
//! load (`typed.rs`; functions generic over `typed::Access` let the caller say which pointer
//! it holds); every other read goes through `bpf_probe_read_kernel`. Either way a wrong
//! pointer yields an error or a zero, never a fault.
//!
//! Each probed read is a helper call (40-90 ns on the AMD EPYC build machine, where every
//! return pays the SRSO "safe RET" mitigation; about 12 ns on an Intel Xeon one, where one
//! read fewer per open brought the open tracepoint from 0.118 to 0.106 us), so members the
//! kernel lays out side by side are read as one group (`KernelOffsets::layout`, `LAYOUT_*`),
//! and a pointer a program already holds is passed on, not read again. The groups of
//! `LAYOUT_REQUIRED` are read without a check (the loader refuses a kernel without them: a
//! branch per group took the 6.1 verifier past its limit on the exec program);
//! `LAYOUT_FILE_INODE_FLAGS` and `LAYOUT_FILE_WINDOW` (not in 6.1) are checked.

use aya_ebpf::helpers::{bpf_probe_read_kernel, bpf_probe_read_kernel_str_bytes};

use crate::typed::{self, Access, Typed};
use enforcer_common::{
    event::EXEC_NAME_TRUNCATED,
    offsets::{FILE_WINDOW_WORDS, FileWindow, LAYOUT_FILE_INODE_FLAGS, LAYOUT_FILE_WINDOW},
    plan::{FileId, InodeKey, NAME_LEN, PATH_LEN},
};

use crate::maps::offset;

/// A kernel read failed (the helper's negative errno).
#[derive(Clone, Copy)]
pub(crate) struct ReadError;

/// Reads a `T` at `base + offset` in kernel memory.
#[inline(always)]
pub(crate) fn read_at<T>(base: *const u8, offset: u32) -> Result<T, ReadError> {
    if base.is_null() {
        return Err(ReadError);
    }
    // SAFETY: probe_read_kernel validates the address; `wrapping_add` never dereferences.
    unsafe { bpf_probe_read_kernel(base.wrapping_add(offset as usize).cast::<T>()) }
        .map_err(|_| ReadError)
}

/// The executable of an exec in progress, from its `struct linux_binprm *`.
pub(crate) struct ExecTarget {
    /// Valid bytes written to the name buffer.
    pub(crate) name_len: u32,
    /// Valid bytes written to the path buffer.
    pub(crate) path_len: u32,
    /// `EXEC_*` flags found while reading.
    pub(crate) flags: u32,
    /// The executable's `struct file *`.
    pub(crate) file: *const u8,
}

/// Reads the executable's basename (`bprm->file->f_path.dentry->d_name`) into `name` and the
/// path given to execve (`bprm->filename`) into `path`. Both buffers must be zeroed by the
/// caller so they can serve as NUL-padded map keys.
#[inline(always)]
pub(crate) fn read_exec_target<A: Access>(
    bprm: *const u8,
    name: &mut [u8; NAME_LEN],
    path: &mut [u8; PATH_LEN],
) -> Result<ExecTarget, ReadError> {
    let mut target = read_exec_file::<A>(bprm, name)?;
    read_exec_path::<A>(bprm, path, &mut target)?;
    Ok(target)
}

/// The executable of the exec `bprm` (`bprm->file`) and its basename into `name` (zeroed by
/// the caller); the path is not read (`path_len == 0`: [`read_exec_path`]).
#[inline(always)]
pub(crate) fn read_exec_file<A: Access>(
    bprm: *const u8,
    name: &mut [u8; NAME_LEN],
) -> Result<ExecTarget, ReadError> {
    let file: *const u8 = A::read(bprm, offset(|o| &o.binprm_file))?;
    read_file_target::<A>(file, name)
}

/// Reads the path as given to execve (`bprm->filename`) into `path`, NUL-terminated, and its
/// length and truncation into `target`. The bytes after the NUL are left as they were: zero
/// `path` first when it is a look-up key.
#[inline(always)]
pub(crate) fn read_exec_path<A: Access>(
    bprm: *const u8,
    path: &mut [u8; PATH_LEN],
    target: &mut ExecTarget,
) -> Result<(), ReadError> {
    let filename: *const u8 = A::read(bprm, offset(|o| &o.binprm_filename))?;
    // SAFETY: probe_read_kernel_str validates the source; the destination is our buffer.
    let path_len = unsafe { bpf_probe_read_kernel_str_bytes(filename, path) }
        .map_err(|_| ReadError)?
        .len();
    if path_len >= PATH_LEN - 1 {
        target.flags |= enforcer_common::event::EXEC_PATH_TRUNCATED;
    }
    target.path_len = path_len as u32;
    Ok(())
}

/// Reads the basename of the file behind `struct file *file` (its dentry name) into `name`
/// (zeroed by the caller); the path is not read (`path_len == 0`).
#[inline(always)]
pub(crate) fn read_file_target<A: Access>(
    file: *const u8,
    name: &mut [u8; NAME_LEN],
) -> Result<ExecTarget, ReadError> {
    let (name_len, truncated) = file_basename::<A, NAME_LEN>(file, name)?;
    Ok(ExecTarget {
        name_len,
        path_len: 0,
        flags: if truncated { EXEC_NAME_TRUNCATED } else { 0 },
        file,
    })
}

/// The multigrain-timestamp flag the kernel keeps in the top bit of the change time's
/// nanoseconds (6.13+, `I_CTIME_QUERIED`); never part of the time.
const CTIME_QUERIED: u32 = 1 << 31;

/// Reads the identity of the file behind `struct file *file` (`f_inode`: inode number, change
/// time, `i_sb->s_dev`) into `key`, in place (no struct copies through the stack); returns
/// the `struct inode *`.
#[inline(always)]
pub(crate) fn read_file_identity<A: Access>(
    file: *const u8,
    key: &mut InodeKey,
) -> Result<*const u8, ReadError> {
    let inode: *const u8 = A::read(file, offset(|o| &o.file_inode))?;
    key.ino = A::read(inode, offset(|o| &o.inode_ino))?;
    key.ctime_sec = A::read(inode, offset(|o| &o.inode_ctime_sec))?;
    let nsec: u32 = A::read(inode, offset(|o| &o.inode_ctime_nsec))?;
    key.ctime_nsec = nsec & !CTIME_QUERIED;
    let sb: *const u8 = A::read(inode, offset(|o| &o.inode_sb))?;
    key.dev = A::read(sb, offset(|o| &o.sb_dev))?;
    Ok(inode)
}

/// The size of the file behind `struct file *file` (`f_inode->i_size`).
#[inline(always)]
pub(crate) fn file_size(file: *const u8) -> Result<i64, ReadError> {
    let inode: *const u8 = read_at(file, offset(|o| &o.file_inode))?;
    read_at(inode, offset(|o| &o.inode_size))
}

/// The current task's executable (`current->mm->exe_file`; during an exec, from the point the
/// new program's segments are mapped, the new program's file).
#[inline(always)]
pub(crate) fn current_exe_file() -> Result<*const u8, ReadError> {
    let mm: *const u8 = Typed::read(typed::current_task(), offset(|o| &o.task_mm))?;
    Typed::read(mm, offset(|o| &o.mm_exe_file))
}

/// The inode and device of the current task's executable (`current->mm->exe_file->f_inode`).
#[inline(always)]
pub(crate) fn current_exe_id() -> Result<FileId, ReadError> {
    let file = current_exe_file()?;
    let inode: *const u8 = Typed::read(file, offset(|o| &o.file_inode))?;
    let ino: u64 = Typed::read(inode, offset(|o| &o.inode_ino))?;
    let sb: *const u8 = Typed::read(inode, offset(|o| &o.inode_sb))?;
    let dev: u32 = Typed::read(sb, offset(|o| &o.sb_dev))?;
    Ok(FileId { ino, dev, _pad: 0 })
}

/// Credentials of a task after its exec: real and effective ids, effective and permitted
/// capabilities.
pub(crate) struct Creds {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) euid: u32,
    pub(crate) cap_effective: u64,
    pub(crate) cap_permitted: u64,
}

/// The credentials of `task` (`task->cred`).
#[inline(always)]
pub(crate) fn creds(task: *const u8) -> Result<Creds, ReadError> {
    let cred: *const u8 = Typed::read(task, offset(|o| &o.task_cred))?;
    // uid, gid, suid, sgid, euid: LAYOUT_CRED_IDS (one `kuid_t`/`kgid_t` each).
    let uid: u32 = Typed::read(cred, offset(|o| &o.cred_uid))?;
    let gid: u32 = Typed::read(cred, offset(|o| &o.cred_uid) + 4)?;
    let euid: u32 = Typed::read(cred, offset(|o| &o.cred_euid))?;
    // LAYOUT_CAPS, one helper read: 6.1's `kernel_cap_t` is two `u32`s, not one `u64`.
    let caps: [u64; 2] = read_at(cred, offset(|o| &o.cred_cap_permitted))?;
    Ok(Creds {
        uid,
        gid,
        euid,
        cap_permitted: caps[0],
        cap_effective: caps[1],
    })
}

/// Whether the file of `struct inode *inode` has no directory entry left (`i_nlink` is 0:
/// deleted, or a memfd).
#[inline(always)]
pub(crate) fn inode_unlinked(inode: *const u8) -> Result<bool, ReadError> {
    let nlink: u32 = Typed::read(inode, offset(|o| &o.inode_nlink))?;
    Ok(nlink == 0)
}

/// Reads `bprm->interp` into `buf`; returns the bytes read (without the NUL).
#[inline(always)]
pub(crate) fn read_interp(bprm: *const u8, buf: &mut [u8; PATH_LEN]) -> Result<u32, ReadError> {
    let interp: *const u8 = Typed::read(bprm, offset(|o| &o.binprm_interp))?;
    // SAFETY: probe_read_kernel_str validates the source; the destination is our buffer.
    let len = unsafe { bpf_probe_read_kernel_str_bytes(interp, buf) }
        .map_err(|_| ReadError)?
        .len();
    Ok(len as u32)
}

/// Reads `module->name` into `buf`; returns the bytes read (without the NUL).
#[inline(always)]
pub(crate) fn module_name<const N: usize>(
    module: *const u8,
    buf: &mut [u8; N],
) -> Result<u32, ReadError> {
    let name = module.wrapping_add(offset(|o| &o.module_name) as usize);
    // SAFETY: probe_read_kernel_str validates the source; the destination is our buffer.
    let len = unsafe { bpf_probe_read_kernel_str_bytes(name, buf) }
        .map_err(|_| ReadError)?
        .len();
    Ok(len as u32)
}

/// The parent's process id of `task` (`task->real_parent->tgid`), 0 when unreadable.
#[inline(always)]
pub(crate) fn parent_tgid(task: *const u8) -> u32 {
    let parent: Result<*const u8, _> = Typed::read(task, offset(|o| &o.task_real_parent));
    match parent.and_then(|p| Typed::read::<i32>(p, offset(|o| &o.task_tgid))) {
        Ok(tgid) => tgid as u32,
        Err(ReadError) => 0,
    }
}

/// The user-space argument and environment blocks of a task, `(start, end)` each; `(0, 0)`
/// for a block that could not be read.
pub(crate) struct MmBlocks {
    pub(crate) args: (u64, u64),
    pub(crate) env: (u64, u64),
}

/// The argument and environment blocks of `task` (`mm->arg_start, arg_end, env_start,
/// env_end`, one read: `LAYOUT_MM_BLOCKS`); all `(0, 0)` when unreadable.
#[inline(always)]
pub(crate) fn mm_blocks(task: *const u8) -> MmBlocks {
    let Ok(mm) = Typed::read::<*const u8>(task, offset(|o| &o.task_mm)) else {
        return MmBlocks {
            args: (0, 0),
            env: (0, 0),
        };
    };
    let word = |offset: u32| typed::load::<u64>(mm, offset);
    MmBlocks {
        args: (
            word(offset(|o| &o.mm_arg_start)),
            word(offset(|o| &o.mm_arg_end)),
        ),
        env: (
            word(offset(|o| &o.mm_env_start)),
            word(offset(|o| &o.mm_env_end)),
        ),
    }
}

/// `S_IFMT` and `S_IFSOCK` of `inode.i_mode`.
const S_IFMT: u16 = 0o170000;
const S_IFSOCK: u16 = 0o140000;

/// The `struct file *` behind `fd` in the current task (`current->files->fdt->fd[fd]`,
/// checked against `max_fds`), `None` when unreadable or closed.
#[inline(always)]
pub(crate) fn fd_file(fd: u32) -> Option<*const u8> {
    // Typed down to the table; `fd` is a `struct file **`, which BTF types as a number, so
    // the slot itself is read with the helper (and the file pointer is untyped).
    let files: *const u8 = Typed::read(typed::current_task(), offset(|o| &o.task_files)).ok()?;
    let fdt: *const u8 = Typed::read(files, offset(|o| &o.files_fdt)).ok()?;
    let max_fds: u32 = Typed::read(fdt, offset(|o| &o.fdtable_max_fds)).ok()?;
    if fd >= max_fds {
        return None;
    }
    let fds: *const u8 = Typed::read(fdt, offset(|o| &o.fdtable_fd)).ok()?;
    let file: *const u8 = read_at(fds, fd.checked_mul(8)?).ok()?;
    (!file.is_null()).then_some(file)
}

/// The current task's working directory (`current->fs->pwd`: mount, dentry).
#[inline(always)]
pub(crate) fn current_pwd() -> Result<(*const u8, *const u8), ReadError> {
    let fs: *const u8 = Typed::read(typed::current_task(), offset(|o| &o.task_fs))?;
    path_at::<Typed>(fs, offset(|o| &o.fs_pwd_mnt), offset(|o| &o.fs_pwd_dentry))
}

/// The top of the current task's mount namespace, `current->nsproxy->mnt_ns->root` (a
/// `struct mount *` that is its own parent), and its root dentry (`root->mnt.mnt_root`), in
/// plain loads with no null checks (no branches): zeros once the task has exited its
/// namespaces (a null `nsproxy`, whose loads read 0).
#[inline(always)]
pub(crate) fn current_mount_ns_top() -> (*const u8, u64) {
    let nsproxy: *const u8 = typed::load(typed::current_task(), offset(|o| &o.task_nsproxy));
    let ns: *const u8 = typed::load(nsproxy, offset(|o| &o.nsproxy_mnt_ns));
    let top: *const u8 = typed::load(ns, offset(|o| &o.mnt_ns_root));
    let root_at = offset(|o| &o.mount_mnt) + offset(|o| &o.vfsmount_root);
    (top, typed::load(top, root_at))
}

/// The `struct file *` behind `fd` in the current task when it is a socket, else `None`
/// (`f_inode->i_mode` says `S_IFSOCK`).
#[inline(always)]
pub(crate) fn socket_file(fd: u32) -> Option<*const u8> {
    let file = fd_file(fd)?;
    let inode: *const u8 = read_at(file, offset(|o| &o.file_inode)).ok()?;
    let mode: u16 = read_at(inode, offset(|o| &o.inode_mode)).ok()?;
    (mode & S_IFMT == S_IFSOCK).then_some(file)
}

/// `dentry->d_parent` and `dentry->d_name.name` (one read of `d_parent`, `d_name.hash_len`
/// and `d_name.name`: `LAYOUT_DENTRY`).
#[inline(always)]
pub(crate) fn dentry_parent_name(dentry: *const u8) -> Result<(*const u8, *const u8), ReadError> {
    let w: [u64; 3] = read_at(dentry, offset(|o| &o.dentry_parent))?;
    Ok((w[0] as *const u8, w[2] as *const u8))
}

/// The mount and dentry of the `struct path` whose members are at `base + mnt` and
/// `base + dentry` (probed: one read of both, `LAYOUT_PATH`).
#[inline(always)]
fn path_at<A: Access>(
    base: *const u8,
    mnt: u32,
    dentry: u32,
) -> Result<(*const u8, *const u8), ReadError> {
    if A::TYPED {
        return Ok((A::read(base, mnt)?, A::read(base, dentry)?));
    }
    let p: [u64; 2] = read_at(base, mnt)?;
    Ok((p[0] as *const u8, p[1] as *const u8))
}

/// `file->f_path.mnt` and `file->f_path.dentry`.
#[inline(always)]
pub(crate) fn file_path<A: Access>(file: *const u8) -> Result<(*const u8, *const u8), ReadError> {
    path_at::<A>(file, offset(|o| &o.file_mnt), offset(|o| &o.file_dentry))
}

/// A file's `f_path` (mount, dentry) when a read already got it, else two nulls (not an
/// `Option`: LLVM leaves a `None`'s payload undefined, and the verifier refuses a spill of an
/// unwritten register).
pub(crate) type PathRead = (*const u8, *const u8);

/// No `f_path` read yet.
const PATH_NOT_READ: PathRead = (core::ptr::null(), core::ptr::null());

/// `file->f_inode` and `file->f_flags`, and `file->f_path` when the same read got it: probed
/// reads take the four in one where `LAYOUT_FILE_WINDOW` (6.12 on), the first two in one where
/// `LAYOUT_FILE_INODE_FLAGS`; a typed file's members are plain loads, made when needed
/// ([`file_path`]). A null mount in the third member: `f_path` was not read.
#[inline(always)]
pub(crate) fn file_inode_flags<A: Access>(
    file: *const u8,
) -> Result<(*const u8, u32, PathRead), ReadError> {
    if !A::TYPED {
        let layout = offset(|o| &o.layout);
        let at = offset(|o| &o.file_inode);
        if layout & LAYOUT_FILE_WINDOW != 0 {
            let words: [u64; FILE_WINDOW_WORDS] = read_at(file, at)?;
            let w = FileWindow::pick(&words, at, offset(|o| &o.file_mnt));
            let path = (w.mnt as *const u8, w.dentry as *const u8);
            return Ok((w.inode as *const u8, w.flags, path));
        }
        if layout & LAYOUT_FILE_INODE_FLAGS != 0 {
            let p: [u64; 2] = read_at(file, at)?;
            return Ok((p[0] as *const u8, p[1] as u32, PATH_NOT_READ));
        }
    }
    Ok((
        A::read(file, offset(|o| &o.file_inode))?,
        A::read(file, offset(|o| &o.file_flags))?,
        PATH_NOT_READ,
    ))
}

/// Reads the basename of `file` (its dentry name) into `out`, NUL-terminated; returns the
/// valid bytes and whether the name was longer than `out` holds.
#[inline(always)]
pub(crate) fn file_basename<A: Access, const N: usize>(
    file: *const u8,
    out: &mut [u8; N],
) -> Result<(u32, bool), ReadError> {
    let dentry: *const u8 = A::read(file, offset(|o| &o.file_dentry))?;
    let full_len: u32 = A::read(dentry, offset(|o| &o.dentry_name_len))?;
    let name_ptr: *const u8 = A::read(dentry, offset(|o| &o.dentry_name))?;
    // SAFETY: probe_read_kernel_str validates the source; the destination is `out`.
    let len = unsafe { bpf_probe_read_kernel_str_bytes(name_ptr, out) }
        .map_err(|_| ReadError)?
        .len();
    Ok((len as u32, full_len as usize >= N))
}

/// The credentials of the current task (`current->cred`): the eight ids from `uid` on, and
/// the inheritable, permitted and effective capability masks.
#[inline(always)]
pub(crate) fn current_creds(
    out: &mut enforcer_common::kernel_event::CredIds,
) -> Result<(), ReadError> {
    // SAFETY: the helper takes no arguments and returns the current task pointer.
    let task = unsafe { aya_ebpf::helpers::bpf_get_current_task() } as *const u8;
    let cred: *const u8 = read_at(task, offset(|o| &o.task_cred))?;
    out.ids = read_at(cred, offset(|o| &o.cred_uid))?;
    out.caps[0] = read_at(cred, offset(|o| &o.cred_cap_inheritable))?;
    out.caps[1] = read_at(cred, offset(|o| &o.cred_cap_permitted))?;
    out.caps[2] = read_at(cred, offset(|o| &o.cred_cap_effective))?;
    Ok(())
}
