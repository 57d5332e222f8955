//! The signal tier's fentry programs: on a kernel with BPF trampolines but without BPF LSM
//! (Debian's, Ubuntu's and RHEL's defaults list no `bpf` in `lsm=`), the file and
//! kernel-activity families are watched at the LSM hooks anyway, by fentry programs on the
//! hooks' `security_*` functions that run the LSM programs' own bodies (enforcer-ebpf's
//! `hook_ctx.rs`). They replace the open and path-syscall tracepoints and the kernel-activity
//! tracepoints the LSM hooks report, so:
//!
//! - the system calls no rule is about pay nothing (while any `syscalls/` tracepoint has a
//!   program, every system call of every task takes the kernel's traced path);
//! - paths are the kernel's: symbolic links are followed where the syscall follows them, `..`
//!   and bind mounts resolved (a tracepoint sees the user's string);
//! - a deny match is still a kill (an fentry program cannot change the function's result).
//!
//! All of them are loaded and attached whatever the policy (the lsm tier loads the programs of
//! link, symlink, mkdir, rmdir, truncate, mount and umount only for a policy about them): a
//! reload may then add a rule about any of those operations, as it may at the tracepoints, and
//! an operation no rule is about costs its calls (mkdir, mount and the like are rare) a path
//! walk and a look-up that finds nothing, while the policy has any file rule. The first program that
//! does not load makes the whole set unavailable (the tracepoints then do the job, and
//! `engine_start` says why), except an [`OPTIONAL`] one, whose function a kernel may not have:
//! it is reported as unseen, like its LSM program in the lsm tier. setxattr and utimes have no
//! path hook: their tracepoints are attached for a policy about them only, as in the lsm tier
//! (`file_syscalls::load_optional`), and a reload that needs them is refused
//! (`engine::reload::uncovered`).

use aya::{Ebpf, programs::FEntry};
use enforcer_common::{file::FileOp, maps::programs};

use super::{
    LoadError,
    btf_programs::{self, KernelBtf},
    file_syscalls::{FileHook, HookState},
};

/// An fentry program and the kernel function it is attached to.
pub type Trampoline = (&'static str, &'static str);

/// Always loaded (the open, unlink, rename, chmod and chown of files, files mapped executable,
/// and the kernel-activity hooks).
pub const BASE: [Trampoline; 12] = [
    (programs::FENTRY_FILE_OPEN, "security_file_open"),
    (programs::FENTRY_PATH_UNLINK, "security_path_unlink"),
    (programs::FENTRY_PATH_RENAME, "security_path_rename"),
    (programs::FENTRY_PATH_CHMOD, "security_path_chmod"),
    (programs::FENTRY_PATH_CHOWN, "security_path_chown"),
    (
        programs::FENTRY_KERNEL_READ_FILE,
        "security_kernel_read_file",
    ),
    (
        programs::FENTRY_KERNEL_LOAD_DATA,
        "security_kernel_load_data",
    ),
    (
        programs::FENTRY_PTRACE_ACCESS_CHECK,
        "security_ptrace_access_check",
    ),
    (programs::FENTRY_PTRACE_TRACEME, "security_ptrace_traceme"),
    (programs::FENTRY_BPF, "security_bpf"),
    (programs::FENTRY_MMAP_FILE, "security_mmap_file"),
    (programs::FENTRY_FILE_MPROTECT, "security_file_mprotect"),
];

/// The twins of `file_syscalls::FILE_OP_LSM` (which the lsm tier loads for a policy about
/// their operation).
pub const FILE_OPS: [(&str, &str, FileOp); 7] = [
    (
        programs::FENTRY_PATH_LINK,
        "security_path_link",
        FileOp::Link,
    ),
    (
        programs::FENTRY_PATH_SYMLINK,
        "security_path_symlink",
        FileOp::Symlink,
    ),
    (
        programs::FENTRY_PATH_MKDIR,
        "security_path_mkdir",
        FileOp::Mkdir,
    ),
    (
        programs::FENTRY_PATH_RMDIR,
        "security_path_rmdir",
        FileOp::Rmdir,
    ),
    (
        programs::FENTRY_PATH_TRUNCATE,
        "security_path_truncate",
        FileOp::Truncate,
    ),
    (
        programs::FENTRY_SB_MOUNT,
        "security_sb_mount",
        FileOp::Mount,
    ),
    (
        programs::FENTRY_SB_UMOUNT,
        "security_sb_umount",
        FileOp::Umount,
    ),
];

/// A kernel may not have the function (the twins of `file_syscalls::OPTIONAL_LSM`).
pub const OPTIONAL: [(&str, &str, FileOp); 2] = [
    (
        programs::FENTRY_FILE_TRUNCATE,
        "security_file_truncate",
        FileOp::Truncate,
    ),
    (
        programs::FENTRY_MOVE_MOUNT,
        "security_move_mount",
        FileOp::Mount,
    ),
];

/// The fentry programs loaded: the file operations' ones with their state, for
/// `file_syscalls::attach` (the [`BASE`] ones are attached by the loader).
pub type Loaded = Vec<HookState>;

/// Loads every program; `Ok(Err(why))` when one of [`BASE`] or [`FILE_OPS`] does not load
/// (this kernel has no BPF trampolines, or lacks a function).
pub(super) fn load(ebpf: &mut Ebpf, btf: &KernelBtf) -> Result<Result<Loaded, String>, LoadError> {
    for (name, function) in BASE {
        if let Err(why) = btf_programs::load::<FEntry>(ebpf, name, function, btf)? {
            return Ok(Err(why));
        }
    }
    let mut out = Vec::new();
    for (name, function, _) in FILE_OPS {
        if let Err(why) = btf_programs::load::<FEntry>(ebpf, name, function, btf)? {
            return Ok(Err(why));
        }
        out.push((FileHook::Fentry(name, function), Ok(())));
    }
    for (name, function, _) in OPTIONAL {
        let state = btf_programs::load::<FEntry>(ebpf, name, function, btf)?;
        out.push((FileHook::Fentry(name, function), state));
    }
    Ok(Ok(out))
}

/// The file operations (`1 << FileOp` bits) whose fentry programs [`load`] loads whatever the
/// policy: what a reload may add at fentry programs beyond the operations the start needed.
pub fn file_ops() -> u32 {
    FILE_OPS
        .iter()
        .chain(&OPTIONAL)
        .fold(0, |bits, (.., op)| bits | 1 << *op as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loader::file_syscalls::{FILE_OP_LSM, OPTIONAL_LSM};

    /// Each LSM program of a file operation has its fentry twin, loaded for the same operation
    /// on the hook's `security_*` function.
    #[test]
    fn every_file_operation_hook_has_its_twin() {
        let twins = |lsm: &[(&str, &str, FileOp)], fentry: &[(&str, &str, FileOp)]| {
            assert_eq!(lsm.len(), fentry.len());
            for ((lsm_name, hook, op), (name, function, twin_op)) in lsm.iter().zip(fentry) {
                assert_eq!(*function, format!("security_{hook}"));
                assert_eq!(op, twin_op);
                assert_eq!(lsm_name.strip_prefix("lsm_"), name.strip_prefix("fentry_"));
            }
        };
        twins(&FILE_OP_LSM, &FILE_OPS);
        twins(&OPTIONAL_LSM, &OPTIONAL);
        assert_ne!(file_ops() & (1 << FileOp::Mkdir as u32), 0);
        assert_eq!(
            file_ops() & (1 << FileOp::Setxattr as u32),
            0,
            "no path hook"
        );
        for (name, function) in BASE {
            assert_eq!(
                name.strip_prefix("fentry_"),
                function.strip_prefix("security_")
            );
        }
    }
}
