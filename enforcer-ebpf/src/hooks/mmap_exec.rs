//! LSM `mmap_file` and `file_mprotect`: a file mapped executable is checked against the exec
//! plan (issue 6, fixture F12: a miner started through the dynamic loader, `ld.so ./xmrig`,
//! is never `execve`d itself; ld.so maps it). LSM programs in the lsm tier (refuse), their
//! fentry twins on `security_mmap_file` and `security_file_mprotect` in the signal tier where
//! the kernel has BPF trampolines (kill: ld.so dies before any code of the mapped file runs;
//! `hook_ctx.rs`).
//!
//! Kernel prototypes: `mmap_file(struct file *file, unsigned long reqprot, unsigned long prot,
//! unsigned long flags)` (the BPF program sees the verdict so far as `ctx.arg(4)`; `file` is
//! null for anonymous memory) and `file_mprotect(struct vm_area_struct *vma, unsigned long
//! reqprot, unsigned long prot)` (verdict `ctx.arg(3)`). The function `security_mmap_file(file,
//! prot, flags)` takes the protection asked for (the hook's `prot` adds `PROT_EXEC` for a
//! `READ_IMPLIES_EXEC` personality, which the fentry program therefore does not see);
//! `security_file_mprotect` takes the hook's arguments.
//!
//! Cost: every mapping of every library passes here. Without `PROT_EXEC` the program returns
//! at once; with it, and only when `PLAN_SETTINGS` says the exec plan has entries
//! (`EXEC_CHECK_MMAP`), it reads the file's identity and the length of its basename, reads
//! the basename and looks it up in `EXEC_NAME_PLAN` only when the plan's name filter lets its
//! length and first eight bytes through (`PlanSettings::exec_names`), and otherwise or without
//! a match looks the identity up
//! in `EXEC_INODE_PLAN` (known-bad content: the daemon's hash verdicts and the in-kernel
//! hash's cache). The path plan is not consulted (the
//! hook has no path string), and a never-seen file is not hashed here (the hook is not
//! sleepable).
//!
//! | situation | returns | record |
//! |---|---|---|
//! | no `PROT_EXEC`, no file, empty exec plan, an earlier LSM refused | unchanged | none |
//! | the file is the task's own executable (`mm->exe_file`: the kernel mapping the program during its exec, already judged by the exec hooks) | 0 | none, no look-up |
//! | no plan match | 0 | none (`mmap_checked` + 1) |
//! | match, but the file is the task's own executable by identity (another open of it) | 0 | none |
//! | match, rule `deny`, enforcing | `-EPERM` (+ SIGKILL if the rule kills) | exec record from `lsm/mmap_file` or `lsm/file_mprotect` |
//! | match, fentry twin (signal tier), enforcing | ignored by the kernel: SIGKILL for a deny or kill rule | exec record from `fentry/security_mmap_file` or `fentry/security_file_mprotect` |
//! | match, monitor | 0 | `would_deny` / `would_kill` |

use enforcer_common::{
    event::{Counter, EXEC_NAME_TRUNCATED, Hook},
    name_filter::{NameFilter, mask_prefix},
    plan::EXEC_CHECK_MMAP,
};

use super::{
    Verdict,
    exec_record::emit_exec,
    fail_open,
    hook_ctx::{HookCtx, hook_programs},
};
use crate::{
    kernel::{self, ReadError, read_at},
    maps::{EXEC_NAME_PLAN, SCRATCH, config, count, offset, plan_settings},
    mem,
    plan::{Site, act, lookup_inode},
    typed::{Access, Typed},
};

/// `PROT_EXEC`.
const PROT_EXEC: u64 = 4;

/// `mmap_file`: LSM program `lsm_mmap_file`, fentry program `fentry_mmap_file`.
#[inline(always)]
fn mmap_file<C: HookCtx>(ctx: &C) -> i32 {
    match exec_mapping(ctx) {
        Ok(file) => fail_open(check_mapping::<C>(file, Hook::LsmMmapFile)),
        Err(ret) => ret,
    }
}

hook_programs!(
    mmap_file,
    "mmap_file",
    lsm_mmap_file,
    "security_mmap_file",
    fentry_mmap_file
);

/// The `mmap_file` arguments the exec checks start from: `Ok(file)` (null for anonymous
/// memory) for a `PROT_EXEC` mapping no earlier LSM refused, else `Err` with the value to
/// return at once.
#[inline(always)]
pub(super) fn exec_mapping<C: HookCtx>(ctx: &C) -> Result<*const u8, i32> {
    let previous = ctx.previous(4);
    if previous != 0 {
        return Err(previous);
    }
    // The hook's `prot`, or the function's (see the module documentation).
    let prot: u64 = if C::SITE == Site::Lsm {
        ctx.arg(2)
    } else {
        ctx.arg(1)
    };
    if prot & PROT_EXEC == 0 {
        return Err(0);
    }
    Ok(ctx.arg(0))
}

/// `file_mprotect`: LSM program `lsm_file_mprotect`, fentry program `fentry_file_mprotect`.
#[inline(always)]
fn file_mprotect<C: HookCtx>(ctx: &C) -> i32 {
    let previous = ctx.previous(3);
    if previous != 0 {
        return previous;
    }
    let prot: u64 = ctx.arg(2);
    if prot & PROT_EXEC == 0 {
        return 0;
    }
    let vma: *const u8 = ctx.arg(0);
    fail_open(
        Typed::read(vma, offset(|o| &o.vma_vm_file))
            .and_then(|file| check_mapping::<C>(file, Hook::LsmFileMprotect)),
    )
}

hook_programs!(
    file_mprotect,
    "file_mprotect",
    lsm_file_mprotect,
    "security_file_mprotect",
    fentry_file_mprotect
);

/// Checks the file `file` (null: anonymous memory) being mapped executable.
#[inline(always)]
fn check_mapping<C: HookCtx>(file: *const u8, hook: Hook) -> Result<Verdict, ReadError> {
    if file.is_null() {
        return Ok(Verdict::Allow);
    }
    let cfg = config();
    let settings = plan_settings();
    if !C::in_tier() || settings.exec & EXEC_CHECK_MMAP == 0 {
        return Ok(Verdict::Allow);
    }
    // The kernel maps a program's own file during its exec (`load_elf_binary`, after
    // `mm->exe_file` is set): the exec hooks judged that file, so no look-up. Three reads
    // instead of a name, an identity and two hash look-ups, for one of the three executable
    // mappings of a dynamically linked program's exec.
    if kernel::current_exe_file().is_ok_and(|exe| exe == file) {
        return Ok(Verdict::Allow);
    }
    count(Counter::MmapChecked);
    let scratch = SCRATCH.get_ptr_mut(0).ok_or(ReadError)?;
    // SAFETY: per-CPU scratch from a successful look-up (see the exec hooks).
    let scratch = unsafe { &mut *scratch };
    scratch.inode.ino = 0;
    kernel::read_file_identity::<Typed>(file, &mut scratch.inode)?;
    // The name is read and looked up only when the plan's name filter lets its length and its
    // first eight bytes through (a string read, a 64-byte key and its hash: about 0.8
    // thousand guest instructions for a library whose name length is listed).
    let dentry: *const u8 = Typed::read(file, offset(|o| &o.file_dentry))?;
    let name_len: u32 = Typed::read(dentry, offset(|o| &o.dentry_name_len))?;
    let filter = &settings.exec_names;
    let by_name = if filter.length_listed(name_len) && name_may_be_listed(filter, dentry, name_len)?
    {
        mem::zero(&mut scratch.name);
        let target = kernel::read_file_target::<Typed>(file, &mut scratch.name.0)?;
        if target.flags & EXEC_NAME_TRUNCATED == 0 {
            // By reference: the key stays in map memory (no 64-byte copy to the stack).
            let name = &scratch.name;
            EXEC_NAME_PLAN.get_ptr(name)
        } else {
            None
        }
    } else {
        None
    };
    let plan = match by_name {
        // SAFETY: the pointer comes from a successful map look-up and PlanVerdict is Copy.
        Some(v) => unsafe { *v },
        None => match lookup_inode(&scratch.inode) {
            Some(v) => v,
            None => return Ok(Verdict::Allow),
        },
    };
    // Another `struct file` of the task's own executable (the same inode): judged at exec too.
    if let Ok(exe) = kernel::current_exe_id()
        && exe.ino == scratch.inode.ino
        && exe.dev == scratch.inode.dev
    {
        return Ok(Verdict::Allow);
    }
    count(Counter::MmapMatched);
    // The record's name (read again: the look-up above may have skipped it). The hook has no
    // path string: the record's is empty.
    mem::zero(&mut scratch.name);
    let target = kernel::read_file_target::<Typed>(file, &mut scratch.name.0)?;
    mem::zero(&mut scratch.path);
    let (verdict, deny) = act(&plan, &cfg, C::SITE);
    emit_exec(C::hook(hook), scratch, &target, 0, &verdict, (0, 0), None);
    Ok(Verdict::deny_if(deny))
}

/// Whether the name of `dentry` (`len` bytes, a length the filter lists) may be in
/// `EXEC_NAME_PLAN`, by its first eight bytes (one 8-byte read; the bytes past a shorter name
/// are masked off). The read stays inside the name's storage: a name shorter than eight bytes
/// is stored inline (`d_iname`, 32 bytes or more), and an external name is longer than that.
#[inline(always)]
fn name_may_be_listed(filter: &NameFilter, dentry: *const u8, len: u32) -> Result<bool, ReadError> {
    let name: u64 = Typed::read(dentry, offset(|o| &o.dentry_name))?;
    let raw: u64 = read_at(name as *const u8, 0)?;
    Ok(filter.may_hold(len, mask_prefix(raw, len)))
}
