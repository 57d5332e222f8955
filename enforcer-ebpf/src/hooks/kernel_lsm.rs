//! LSM hooks of the kernel-activity family (lsm tier only): the operations a rule can refuse.
//! Each returns at once unless `KERNEL_OP_PLAN` has a rule acting (deny, kill) on its
//! operation; then it acts through `plan::act` and reports the event (the tracepoint leaves
//! such events to it, so each is reported once).
//!
//! | hook (args) | operation | record (`KernelSyscall`) |
//! |---|---|---|
//! | `kernel_read_file(file, id, contents)`, id `READING_MODULE` (2) / `READING_MODULE_COMPRESSED` (7) | module load (`finit_module`) | `FinitModule`, name = file basename, args `[fd, flags]` and data = parameters from the caller's registers |
//! | same, id `READING_KEXEC_IMAGE` (3) | kexec (`kexec_file_load`) | `KexecFileLoad`, name = file basename |
//! | `kernel_load_data(id, contents)`, id `LOADING_MODULE` (2) | module load (`init_module`) | `InitModule`, name unknown, args `[umod, len]` and data = parameters from the caller's registers |
//! | same, id `LOADING_KEXEC_IMAGE` (3) | kexec (`kexec_load`) | `KexecLoad` |
//! | `ptrace_access_check(child, mode)` with `PTRACE_MODE_ATTACH` | ptrace (attach, seize, `process_vm_*`, `/proc/PID/mem`) | `PtraceAccess`, args `[mode, target tgid]` |
//! | `ptrace_traceme(parent)` | ptrace (`PTRACE_TRACEME`) | `PtraceTraceme`, args `[0, parent tgid]` |
//!
//! Module parameters are not arguments of these hooks: `module_args.rs` reads them (and the
//! syscall's other arguments) from the caller's saved user registers, after checking the saved
//! syscall number is `finit_module` / `init_module`, so the record carries them as the
//! tracepoint's does; when that check fails (or off x86_64) the record has
//! `KERNEL_DATA_UNREAD` and the event `kernel.module.args_unknown` instead of args.
//!
//! An earlier LSM's refusal is returned unchanged. A call refused before the LSM (no
//! `CAP_SYS_MODULE`, a same-thread-group ptrace) is not reported.

use aya_ebpf::{macros::lsm, programs::LsmContext};
use enforcer_common::{
    config::Tier,
    event::{Counter, Hook},
    kernel_event::{KERNEL_NAME_UNKNOWN, KernelOp, KernelSyscall},
};

use super::{
    Verdict,
    kernel_activity::{emit_kernel, op_plan, reset},
    module_args::module_args,
};
use crate::{
    kernel,
    maps::{KERNEL_SCRATCH, config, count, offsets},
    plan::{Site, act},
};

/// `enum kernel_read_file_id` / `kernel_load_data_id` values (the order is fixed by the
/// kernel's `__kernel_read_file_id` list; `MODULE_COMPRESSED` was appended in 6.6).
const READING_MODULE: u32 = 2;
const READING_KEXEC_IMAGE: u32 = 3;
const READING_MODULE_COMPRESSED: u32 = 7;
/// `PTRACE_MODE_ATTACH`.
const PTRACE_MODE_ATTACH: u32 = 2;

/// Acts on `syscall` when the plan says so; `file` (may be null) names it, `target` is the
/// other task (ptrace) or null.
#[inline(always)]
fn on_op(syscall: KernelSyscall, hook: Hook, file: *const u8, args: [u64; 3]) -> i32 {
    if config().tier != Tier::Lsm as u32 {
        return 0;
    }
    let op = syscall.op();
    let Some(plan) = op_plan(op) else {
        return 0;
    };
    count(Counter::KernelSeen);
    count(Counter::KernelMatched);
    let (verdict, deny) = act(&plan, &config(), Site::Lsm);
    if let Some(rec) = KERNEL_SCRATCH.get_ptr_mut(1) {
        // SAFETY: per-CPU slot 1, used by the LSM hooks only; no re-entry on this CPU.
        let rec = unsafe { &mut *rec };
        reset(rec, syscall);
        rec.args = args;
        if matches!(op, KernelOp::ModuleLoad | KernelOp::Kexec) {
            if file.is_null() {
                rec.flags |= KERNEL_NAME_UNKNOWN;
            } else {
                match kernel::file_basename(file, &mut rec.name) {
                    Ok((len, truncated)) => {
                        rec.name_len = len;
                        if truncated {
                            rec.flags |= enforcer_common::kernel_event::KERNEL_NAME_TRUNCATED;
                        }
                    }
                    Err(_) => rec.flags |= KERNEL_NAME_UNKNOWN,
                }
            }
        }
        if op == KernelOp::ModuleLoad {
            module_args(syscall, rec);
        }
        emit_kernel(rec, hook, &verdict);
    }
    if deny { Verdict::Deny } else { Verdict::Allow }.ret()
}

/// LSM `kernel_read_file(struct file *file, enum kernel_read_file_id id, bool contents)`.
#[lsm(hook = "kernel_read_file")]
pub(crate) fn lsm_kernel_read_file(ctx: LsmContext) -> i32 {
    let previous: i32 = ctx.arg(3);
    if previous != 0 {
        return previous;
    }
    let file: *const u8 = ctx.arg(0);
    let id: u32 = ctx.arg(1);
    match id {
        READING_MODULE | READING_MODULE_COMPRESSED => on_op(
            KernelSyscall::FinitModule,
            Hook::LsmKernelReadFile,
            file,
            [0; 3],
        ),
        READING_KEXEC_IMAGE => on_op(
            KernelSyscall::KexecFileLoad,
            Hook::LsmKernelReadFile,
            file,
            [0; 3],
        ),
        _ => 0,
    }
}

/// LSM `kernel_load_data(enum kernel_load_data_id id, bool contents)`.
#[lsm(hook = "kernel_load_data")]
pub(crate) fn lsm_kernel_load_data(ctx: LsmContext) -> i32 {
    let previous: i32 = ctx.arg(2);
    if previous != 0 {
        return previous;
    }
    let id: u32 = ctx.arg(0);
    match id {
        READING_MODULE => on_op(
            KernelSyscall::InitModule,
            Hook::LsmKernelLoadData,
            core::ptr::null(),
            [0; 3],
        ),
        READING_KEXEC_IMAGE => on_op(
            KernelSyscall::KexecLoad,
            Hook::LsmKernelLoadData,
            core::ptr::null(),
            [0; 3],
        ),
        _ => 0,
    }
}

/// The process id of `task` (`task->tgid`), 0 when unreadable.
#[inline(always)]
fn tgid_of(task: *const u8) -> u64 {
    kernel::read_at::<i32>(task, offsets().task_tgid).map_or(0, |t| t as u32 as u64)
}

/// LSM `ptrace_access_check(struct task_struct *child, unsigned int mode)`.
#[lsm(hook = "ptrace_access_check")]
pub(crate) fn lsm_ptrace_access_check(ctx: LsmContext) -> i32 {
    let previous: i32 = ctx.arg(2);
    if previous != 0 {
        return previous;
    }
    let mode: u32 = ctx.arg(1);
    if mode & PTRACE_MODE_ATTACH == 0 {
        return 0;
    }
    let child: *const u8 = ctx.arg(0);
    on_op(
        KernelSyscall::PtraceAccess,
        Hook::LsmPtraceAccessCheck,
        core::ptr::null(),
        [u64::from(mode), tgid_of(child), 0],
    )
}

/// LSM `ptrace_traceme(struct task_struct *parent)`.
#[lsm(hook = "ptrace_traceme")]
pub(crate) fn lsm_ptrace_traceme(ctx: LsmContext) -> i32 {
    let previous: i32 = ctx.arg(1);
    if previous != 0 {
        return previous;
    }
    let parent: *const u8 = ctx.arg(0);
    on_op(
        KernelSyscall::PtraceTraceme,
        Hook::LsmPtraceTraceme,
        core::ptr::null(),
        [0, tgid_of(parent), 0],
    )
}
