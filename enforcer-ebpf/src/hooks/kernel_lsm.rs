//! LSM hooks of the kernel-activity family: module loads, kexec, ptrace and `bpf(2)`,
//! reported and, where a rule acts, refused (LSM programs, lsm tier) or killed (their fentry
//! twins on the `security_*` functions, signal tier with BPF trampolines; `hook_ctx.rs`).
//!
//! Each hook first asks the caller's saved registers (`user_regs.rs`) which call it is in. When
//! they name the call the hook stands for, it reports it through `kernel_activity::on_call`
//! with those arguments: the same record the `sys_enter_*` tracepoint builds (parameters,
//! file name, `bpf_attr`, ...), the hook's name, and an LSM verdict. The loader then does not
//! attach these operations' tracepoints, so no syscall tracepoint is needed for them.
//!
//! | hook (args) | the call it stands for | otherwise (fallback) |
//! |---|---|---|
//! | `kernel_read_file(file, id, contents)`, id `READING_MODULE` (2) / `READING_MODULE_COMPRESSED` (7) | `finit_module` | `FinitModule`, name = file basename, parameters unread |
//! | same, id `READING_KEXEC_IMAGE` (3) | `kexec_file_load` | `KexecFileLoad`, name = file basename |
//! | `kernel_load_data(id, contents)`, id `LOADING_MODULE` (2) | `init_module` | `InitModule`, name unknown, parameters unread |
//! | same, id `LOADING_KEXEC_IMAGE` (3) | `kexec_load` | `KexecLoad` |
//! | `ptrace_access_check(child, mode)` with `PTRACE_MODE_ATTACH` | `ptrace` (attach, seize), `process_vm_writev` | `PtraceAccess`, args `[mode, target tgid]` (`process_vm_readv`, `/proc/PID/mem`, ...) |
//! | `ptrace_traceme(parent)` | `ptrace(PTRACE_TRACEME)` | `PtraceTraceme`, args `[0, parent tgid]` |
//! | `bpf(cmd, attr, size[, kernel])` | `bpf` | nothing (a call from the kernel, not a process) |
//!
//! The fallback (registers of another call, a kernel thread, or an architecture other than
//! x86_64 where the tracepoints stay attached) only acts and reports when the plan acts on
//! the operation, as the tracepoint reports the rest.
//!
//! An earlier LSM's refusal is returned unchanged (the `bpf` hook reads no previous value:
//! its arity changed in 6.9, and a BPF LSM program runs only while every earlier one returned
//! 0, so it would always be 0). A call refused before the LSM (no `CAP_SYS_MODULE`, a
//! same-thread-group ptrace) is not reported.

use aya_ebpf::helpers::bpf_get_current_pid_tgid;
use enforcer_common::{
    event::{Counter, Hook},
    kernel_event::{KERNEL_DATA_UNREAD, KERNEL_NAME_UNKNOWN, KernelOp, KernelSyscall},
};

use super::{
    Verdict, fail_open,
    hook_ctx::{HookCtx, hook_programs},
    kernel_activity::{emit_kernel, kernel_syscall, on_call, op_plan, reset},
};
use crate::{
    kernel,
    maps::{KERNEL_SCRATCH, config, count, offset},
    plan::act,
    typed::Probed,
    user_regs,
};

/// `enum kernel_read_file_id` / `kernel_load_data_id` values (the order is fixed by the
/// kernel's `__kernel_read_file_id` list; `MODULE_COMPRESSED` was appended in 6.6).
const READING_MODULE: u32 = 2;
const READING_KEXEC_IMAGE: u32 = 3;
const READING_MODULE_COMPRESSED: u32 = 7;
/// `PTRACE_MODE_ATTACH`.
const PTRACE_MODE_ATTACH: u32 = 2;

/// Reports the call the caller's registers name when it is one of `calls` (see the module
/// documentation); `None` when they name another (or cannot be read): the caller falls back.
#[inline(always)]
fn from_registers<C: HookCtx>(calls: &[KernelSyscall], hook: Hook) -> Option<i32> {
    let regs = user_regs::current().ok()?;
    let syscall = kernel_syscall(regs.nr)?;
    if !calls.contains(&syscall) {
        return None;
    }
    Some(fail_open(
        on_call(syscall, &regs.args, C::hook(hook), C::SITE).map(Verdict::deny_if),
    ))
}

/// Reports `calls` from the registers, else falls back to [`on_op`] with `fallback`.
#[inline(always)]
fn report<C: HookCtx>(
    calls: &[KernelSyscall],
    fallback: KernelSyscall,
    hook: Hook,
    file: *const u8,
    args: [u64; 3],
) -> i32 {
    if !C::in_tier() {
        return 0;
    }
    match from_registers::<C>(calls, hook) {
        Some(ret) => ret,
        None => on_op::<C>(fallback, hook, file, args),
    }
}

/// The fallback: acts on `syscall` when the plan says so; `file` (may be null) names it.
#[inline(always)]
fn on_op<C: HookCtx>(syscall: KernelSyscall, hook: Hook, file: *const u8, args: [u64; 3]) -> i32 {
    let op = syscall.op();
    let Some(plan) = op_plan(op) else {
        return 0;
    };
    count(Counter::KernelSeen);
    count(Counter::KernelMatched);
    let (verdict, deny) = act(&plan, &config(), C::SITE);
    if let Some(rec) = KERNEL_SCRATCH.get_ptr_mut(1) {
        // SAFETY: per-CPU slot 1, used by the LSM hooks only; no re-entry on this CPU.
        let rec = unsafe { &mut *rec };
        reset(rec, syscall);
        rec.args = args;
        if matches!(op, KernelOp::ModuleLoad | KernelOp::Kexec) {
            if file.is_null() {
                rec.flags |= KERNEL_NAME_UNKNOWN;
            } else {
                match kernel::file_basename::<Probed, _>(file, &mut rec.name) {
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
            rec.flags |= KERNEL_DATA_UNREAD;
        }
        emit_kernel(rec, C::hook(hook), &verdict);
    }
    Verdict::deny_if(deny).ret()
}

/// `kernel_read_file(struct file *file, enum kernel_read_file_id id, bool contents)`.
#[inline(always)]
fn kernel_read_file<C: HookCtx>(ctx: &C) -> i32 {
    let previous = ctx.previous(3);
    if previous != 0 {
        return previous;
    }
    let file: *const u8 = ctx.arg(0);
    let id: u32 = ctx.arg(1);
    match id {
        READING_MODULE | READING_MODULE_COMPRESSED => report::<C>(
            &[KernelSyscall::FinitModule],
            KernelSyscall::FinitModule,
            Hook::LsmKernelReadFile,
            file,
            [0; 3],
        ),
        READING_KEXEC_IMAGE => report::<C>(
            &[KernelSyscall::KexecFileLoad],
            KernelSyscall::KexecFileLoad,
            Hook::LsmKernelReadFile,
            file,
            [0; 3],
        ),
        _ => 0,
    }
}

hook_programs!(
    kernel_read_file,
    "kernel_read_file",
    lsm_kernel_read_file,
    "security_kernel_read_file",
    fentry_kernel_read_file
);

/// `kernel_load_data(enum kernel_load_data_id id, bool contents)`.
#[inline(always)]
fn kernel_load_data<C: HookCtx>(ctx: &C) -> i32 {
    let previous = ctx.previous(2);
    if previous != 0 {
        return previous;
    }
    let id: u32 = ctx.arg(0);
    match id {
        READING_MODULE => report::<C>(
            &[KernelSyscall::InitModule],
            KernelSyscall::InitModule,
            Hook::LsmKernelLoadData,
            core::ptr::null(),
            [0; 3],
        ),
        READING_KEXEC_IMAGE => report::<C>(
            &[KernelSyscall::KexecLoad],
            KernelSyscall::KexecLoad,
            Hook::LsmKernelLoadData,
            core::ptr::null(),
            [0; 3],
        ),
        _ => 0,
    }
}

hook_programs!(
    kernel_load_data,
    "kernel_load_data",
    lsm_kernel_load_data,
    "security_kernel_load_data",
    fentry_kernel_load_data
);

/// The process id of `task` (`task->tgid`), 0 when unreadable.
#[inline(always)]
fn tgid_of(task: *const u8) -> u64 {
    kernel::read_at::<i32>(task, offset(|o| &o.task_tgid)).map_or(0, |t| t as u32 as u64)
}

/// `ptrace_access_check(struct task_struct *child, unsigned int mode)`.
#[inline(always)]
fn ptrace_access_check<C: HookCtx>(ctx: &C) -> i32 {
    let previous = ctx.previous(2);
    if previous != 0 {
        return previous;
    }
    let mode: u32 = ctx.arg(1);
    if mode & PTRACE_MODE_ATTACH == 0 {
        return 0;
    }
    let child: *const u8 = ctx.arg(0);
    report::<C>(
        &[KernelSyscall::Ptrace, KernelSyscall::ProcessVmWritev],
        KernelSyscall::PtraceAccess,
        Hook::LsmPtraceAccessCheck,
        core::ptr::null(),
        [u64::from(mode), tgid_of(child), 0],
    )
}

hook_programs!(
    ptrace_access_check,
    "ptrace_access_check",
    lsm_ptrace_access_check,
    "security_ptrace_access_check",
    fentry_ptrace_access_check
);

/// `ptrace_traceme(struct task_struct *parent)`.
#[inline(always)]
fn ptrace_traceme<C: HookCtx>(ctx: &C) -> i32 {
    let previous = ctx.previous(1);
    if previous != 0 {
        return previous;
    }
    let parent: *const u8 = ctx.arg(0);
    report::<C>(
        &[KernelSyscall::Ptrace],
        KernelSyscall::PtraceTraceme,
        Hook::LsmPtraceTraceme,
        core::ptr::null(),
        [0, tgid_of(parent), 0],
    )
}

hook_programs!(
    ptrace_traceme,
    "ptrace_traceme",
    lsm_ptrace_traceme,
    "security_ptrace_traceme",
    fentry_ptrace_traceme
);

/// `bpf(int cmd, union bpf_attr *attr, unsigned int size[, bool kernel])`: reports the
/// `bpf(2)` calls of processes other than the engine (refused when a `kernel.op == "bpf"`
/// rule denies); a call made from the kernel (no matching registers) is not reported.
#[inline(always)]
fn bpf<C: HookCtx>(_ctx: &C) -> i32 {
    if !C::in_tier() || (bpf_get_current_pid_tgid() >> 32) as u32 == config().engine_tgid {
        return 0;
    }
    from_registers::<C>(&[KernelSyscall::Bpf], Hook::LsmBpf).unwrap_or(0)
}

hook_programs!(bpf, "bpf", lsm_bpf, "security_bpf", fentry_bpf);
