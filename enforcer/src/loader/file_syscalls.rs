//! The file operations beyond open/unlink/rename/chmod/chown: the path-syscall tracepoints of
//! link, symlink, mkdir, rmdir, setxattr, utimes, truncate, mount, umount and the descriptor
//! forms of chmod/chown (all served by the one `tp_sys_enter_path` program), and the optional
//! file LSM hooks (`file_truncate`, 6.2+; `move_mount`). A tracepoint or hook the running
//! kernel does not have is skipped and reported (`engine_start.kernel_syscalls_unseen`), never
//! a load failure.
//!
//! In the lsm tier the LSM hooks do the tracepoints' job, except for setxattr and utimes (no
//! path LSM hook sees them): their tracepoints stay attached there (a deny is then a kill).
//! There, the LSM programs of these operations and the path program are loaded only for the
//! operations the policy is about (`file_plan::ops_wanted`; all when a file rule names no
//! path): each costs verifier time at every start. The signal tier does the same with the
//! fentry twins of those programs where the kernel has BPF trampolines (`trampolines.rs`);
//! otherwise it attaches every tracepoint (the program returns at once without a file rule).

use std::{fs, path::Path};

use aya::{
    Ebpf,
    programs::{FEntry, Lsm, TracePoint},
};
use enforcer_common::{
    file::{FileOp, PathSyscalls},
    maps::programs,
};

use super::{
    EnforcingLink, LoadError,
    btf_programs::{self, KernelBtf},
    program, program_err, syscall_nr,
    tier::SecurityHooks,
    tracefs::{self, SyscallLayout, TRACEFS},
};

/// `setxattrat` (kernels 6.13+): one number on every architecture (the unified table since
/// 5.1); the libc crate does not name it yet.
const SYS_SETXATTRAT: libc::c_long = 463;

/// A path-syscall tracepoint: name, argument names (as in its format file), and the operation
/// for which it stays attached in the lsm tier (`None`: an LSM hook does its job there).
type PathTracepoint = (&'static str, &'static [&'static str], Option<FileOp>);

const SX: Option<FileOp> = Some(FileOp::Setxattr);
const UT: Option<FileOp> = Some(FileOp::Utimes);

/// Every path-syscall tracepoint of this module.
pub const PATH_TRACEPOINTS: [PathTracepoint; 23] = [
    ("sys_enter_link", &["oldname", "newname"], None),
    (
        "sys_enter_linkat",
        &["olddfd", "oldname", "newdfd", "newname", "flags"],
        None,
    ),
    ("sys_enter_symlink", &["oldname", "newname"], None),
    (
        "sys_enter_symlinkat",
        &["oldname", "newdfd", "newname"],
        None,
    ),
    ("sys_enter_mkdir", &["pathname", "mode"], None),
    ("sys_enter_mkdirat", &["dfd", "pathname", "mode"], None),
    ("sys_enter_rmdir", &["pathname"], None),
    (
        "sys_enter_setxattr",
        &["pathname", "name", "value", "size", "flags"],
        SX,
    ),
    (
        "sys_enter_lsetxattr",
        &["pathname", "name", "value", "size", "flags"],
        SX,
    ),
    (
        "sys_enter_fsetxattr",
        &["fd", "name", "value", "size", "flags"],
        SX,
    ),
    (
        "sys_enter_setxattrat",
        &["dfd", "pathname", "at_flags", "name"],
        SX,
    ),
    (
        "sys_enter_utimensat",
        &["dfd", "filename", "utimes", "flags"],
        UT,
    ),
    ("sys_enter_utimes", &["filename", "utimes"], UT),
    ("sys_enter_utime", &["filename", "times"], UT),
    ("sys_enter_futimesat", &["dfd", "filename", "utimes"], UT),
    ("sys_enter_truncate", &["path", "length"], None),
    ("sys_enter_ftruncate", &["fd", "length"], None),
    (
        "sys_enter_mount",
        &["dev_name", "dir_name", "type", "flags", "data"],
        None,
    ),
    (
        "sys_enter_move_mount",
        &[
            "from_dfd",
            "from_pathname",
            "to_dfd",
            "to_pathname",
            "flags",
        ],
        None,
    ),
    ("sys_enter_umount", &["name", "flags"], None),
    ("sys_enter_fchmod", &["fd", "mode"], None),
    ("sys_enter_fchown", &["fd", "user", "group"], None),
    (
        "sys_enter_fchmodat2",
        &["dfd", "filename", "mode", "flags"],
        None,
    ),
];

/// LSM programs of the operations (lsm tier; loaded with the others, a failure is the lsm
/// tier's failure): program name, hook, the operation that needs it.
pub const FILE_OP_LSM: [(&str, &str, FileOp); 7] = [
    (programs::LSM_PATH_LINK, "path_link", FileOp::Link),
    (programs::LSM_PATH_SYMLINK, "path_symlink", FileOp::Symlink),
    (programs::LSM_PATH_MKDIR, "path_mkdir", FileOp::Mkdir),
    (programs::LSM_PATH_RMDIR, "path_rmdir", FileOp::Rmdir),
    (
        programs::LSM_PATH_TRUNCATE,
        "path_truncate",
        FileOp::Truncate,
    ),
    (programs::LSM_SB_MOUNT, "sb_mount", FileOp::Mount),
    (programs::LSM_SB_UMOUNT, "sb_umount", FileOp::Umount),
];

/// Optional LSM programs (lsm tier; absent hooks are skipped and reported): program name,
/// hook, the operation that needs it.
pub const OPTIONAL_LSM: [(&str, &str, FileOp); 2] = [
    (
        programs::LSM_FILE_TRUNCATE,
        "file_truncate",
        FileOp::Truncate,
    ),
    (programs::LSM_MOVE_MOUNT, "move_mount", FileOp::Mount),
];

/// The file operations (`1 << FileOp` bits) whose programs the lsm tier loads only for a
/// policy that is about them (`load_optional`, and `FILE_OP_LSM` in the loader); the others
/// (open, unlink, rename, chmod, chown) are always loaded, and the signal tier loads all.
pub fn lsm_optional_ops() -> u32 {
    let lsm = FILE_OP_LSM.iter().chain(&OPTIONAL_LSM).map(|(.., op)| *op);
    let tracepoints = PATH_TRACEPOINTS.iter().filter_map(|(.., op)| *op);
    lsm.chain(tracepoints)
        .fold(0, |bits, op| bits | 1 << op as u32)
}

/// Whether `op` is in the `file_ops` bits (bit `1 << op`).
pub fn wants(file_ops: u32, op: FileOp) -> bool {
    file_ops & (1 << op as u32) != 0
}

/// A hook and whether it loaded (or the tracepoint exists), or why not.
pub type HookState = (FileHook, Result<(), String>);

/// One optional file hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileHook {
    /// A `syscalls/` tracepoint of `tp_sys_enter_path`.
    Tracepoint(&'static str),
    /// An LSM program and its hook.
    Lsm(&'static str, &'static str),
    /// An fentry program and its `security_*` function (`trampolines.rs`).
    Fentry(&'static str, &'static str),
}

impl FileHook {
    /// How the record names it (`sys_enter_link`, `lsm/file_truncate`).
    pub fn name(&self) -> String {
        match self {
            Self::Tracepoint(tp) => (*tp).to_owned(),
            Self::Lsm(_, hook) => format!("lsm/{hook}"),
            Self::Fentry(_, function) => format!("fentry/{function}"),
        }
    }
}

/// The numbers of the path syscalls for `GLOBAL_PATH_SYSCALLS` (this build's numbers are the
/// running kernel's: same architecture).
pub fn numbers() -> PathSyscalls {
    PathSyscalls {
        link: syscall_nr(libc::SYS_link),
        linkat: syscall_nr(libc::SYS_linkat),
        symlink: syscall_nr(libc::SYS_symlink),
        symlinkat: syscall_nr(libc::SYS_symlinkat),
        mkdir: syscall_nr(libc::SYS_mkdir),
        mkdirat: syscall_nr(libc::SYS_mkdirat),
        rmdir: syscall_nr(libc::SYS_rmdir),
        setxattr: syscall_nr(libc::SYS_setxattr),
        lsetxattr: syscall_nr(libc::SYS_lsetxattr),
        fsetxattr: syscall_nr(libc::SYS_fsetxattr),
        setxattrat: syscall_nr(SYS_SETXATTRAT),
        utimensat: syscall_nr(libc::SYS_utimensat),
        utimes: syscall_nr(libc::SYS_utimes),
        utime: syscall_nr(libc::SYS_utime),
        futimesat: syscall_nr(libc::SYS_futimesat),
        truncate: syscall_nr(libc::SYS_truncate),
        ftruncate: syscall_nr(libc::SYS_ftruncate),
        mount: syscall_nr(libc::SYS_mount),
        umount2: syscall_nr(libc::SYS_umount2),
        move_mount: syscall_nr(libc::SYS_move_mount),
        fchmod: syscall_nr(libc::SYS_fchmod),
        fchown: syscall_nr(libc::SYS_fchown),
        fchmodat2: syscall_nr(libc::SYS_fchmodat2),
        _pad: 0,
    }
}

/// Whether tracepoint `name` exists and shares `layout`; `Err` says why not.
fn check(name: &str, args: &[&str], layout: SyscallLayout) -> Result<(), String> {
    let path = Path::new(TRACEFS)
        .join("events/syscalls")
        .join(name)
        .join("format");
    let text = fs::read_to_string(&path)
        .map_err(|_| "no such syscall tracepoint on this kernel".to_owned())?;
    let nr = tracefs::check_layout(name, &text, &["__syscall_nr"]).map_err(|e| e.to_string())?;
    let first = tracefs::check_layout(name, &text, args).map_err(|e| e.to_string())?;
    if (SyscallLayout { nr, args: first }) == layout {
        Ok(())
    } else {
        Err(format!(
            "{name} does not share the syscall tracepoint layout"
        ))
    }
}

/// The hooks of this module that have a job where `hooks` says the LSM hooks are watched, for
/// the `file_ops` bits, each checked (tracepoints) or loaded (the path program at the hooks,
/// optional LSM programs): `Err` says why the kernel does not let the engine see it. The LSM
/// programs of `FILE_OP_LSM` were loaded with the others; they are listed for `attach`. At
/// fentry programs the loader adds those `trampolines::load` loaded.
pub(super) fn load_optional(
    ebpf: &mut Ebpf,
    hooks: SecurityHooks,
    layout: SyscallLayout,
    file_ops: u32,
    btf: &KernelBtf,
) -> Result<Vec<HookState>, LoadError> {
    let at_hooks = hooks.at_hooks();
    let mut out = Vec::new();
    for (name, args, hook_op) in PATH_TRACEPOINTS {
        if at_hooks && !hook_op.is_some_and(|op| wants(file_ops, op)) {
            continue;
        }
        out.push((FileHook::Tracepoint(name), check(name, args, layout)));
    }
    if !at_hooks {
        return Ok(out);
    }
    if !out.is_empty() {
        // Not loaded with the signal-tier tracepoints at the hooks: only for these.
        let name = programs::TP_SYS_ENTER_PATH;
        let started = std::time::Instant::now();
        program::<TracePoint>(ebpf, name)?
            .load()
            .map_err(program_err("load", name))?;
        super::log_load(ebpf, name, started);
    }
    if hooks != SecurityHooks::Lsm {
        return Ok(out);
    }
    for (name, hook, op) in FILE_OP_LSM {
        if wants(file_ops, op) {
            out.push((FileHook::Lsm(name, hook), Ok(())));
        }
    }
    for (name, hook, op) in OPTIONAL_LSM {
        if !wants(file_ops, op) {
            continue;
        }
        let state = btf_programs::load::<Lsm>(ebpf, name, hook, btf)?
            .map_err(|why| format!("{why} (the hook is absent before 6.2?)"));
        out.push((FileHook::Lsm(name, hook), state));
    }
    Ok(out)
}

/// What [`attach`] attached.
#[derive(Debug, Default)]
pub struct Attached {
    /// The syscall tracepoints.
    pub tracepoints: Vec<&'static str>,
    /// Every link made: all of these programs deny or kill (for the pins).
    pub links: Vec<EnforcingLink>,
}

/// Attaches every hook of `hooks` that loaded.
pub fn attach(
    ebpf: &mut Ebpf,
    at: SecurityHooks,
    hooks: &[HookState],
) -> Result<Attached, LoadError> {
    let mut attached = Attached::default();
    for (hook, state) in hooks {
        if state.is_err() {
            continue;
        }
        match *hook {
            FileHook::Tracepoint(tp) => {
                let name = programs::TP_SYS_ENTER_PATH;
                let id = program::<TracePoint>(ebpf, name)?
                    .attach("syscalls", tp)
                    .map_err(program_err("attach", name))?;
                attached.tracepoints.push(tp);
                attached.links.push(EnforcingLink::TracePoint(name, tp, id));
            }
            FileHook::Lsm(name, _) if at == SecurityHooks::Lsm => {
                let id = program::<Lsm>(ebpf, name)?
                    .attach()
                    .map_err(program_err("attach", name))?;
                attached.links.push(EnforcingLink::Lsm(name, id));
            }
            FileHook::Fentry(name, _) if at == SecurityHooks::Fentry => {
                let id = program::<FEntry>(ebpf, name)?
                    .attach()
                    .map_err(program_err("attach", name))?;
                attached.links.push(EnforcingLink::FEntry(name, id));
            }
            FileHook::Lsm(..) | FileHook::Fentry(..) => {}
        }
    }
    Ok(attached)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_tracepoint_is_named_once() {
        let mut names: Vec<_> = PATH_TRACEPOINTS.iter().map(|t| t.0).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), PATH_TRACEPOINTS.len());
        for (name, ..) in PATH_TRACEPOINTS {
            assert!(
                !tracefs::SYSCALL_TRACEPOINTS.iter().any(|t| t.0 == name),
                "{name} is in the mandatory list"
            );
        }
    }
}
