//! Loaded modules: raw tracepoint `module:module_load` (every tier, where the kernel has
//! modules; the loader attaches it only when a rule is about `module_loaded`).
//!
//! The kernel fires it once a module is laid out and about to run its init function, in the
//! context of the task that loads it, for `init_module`, `finit_module` and the kernel's own
//! `request_module` alike. The record names the module from `struct module` itself, so an
//! `init_module` image, whose syscall record cannot name it, is named here.
//!
//! | step | cost |
//! |---|---|
//! | no enabled rule is about `module_loaded` (`PLAN_SETTINGS.kernel_ops`) | return, `kernel_filtered` + 1 |
//! | plan entry with an action | SIGKILL to the loading task through `plan::act` (the module's init still runs: a tracepoint cannot refuse) |
//! | otherwise | `KernelRecord`: `name` = `module->name` (no parameters: the kernel has parsed `module->args` in place by then, turning `=` and spaces into NULs; the syscall's record has them) |

use aya_ebpf::{macros::raw_tracepoint, programs::RawTracePointContext};
use enforcer_common::{
    event::{Counter, Hook},
    kernel_event::{
        KERNEL_NAME_LEN, KERNEL_NAME_TRUNCATED, KERNEL_NAME_UNKNOWN, KernelOp, KernelSyscall,
    },
};

use super::kernel_activity::{emit_kernel, op_plan, reset};
use crate::{
    emit,
    kernel::{self, ReadError},
    maps::{KERNEL_SCRATCH, config, count, plan_settings},
    plan::{Site, act},
};

/// Entry point: `trace_module_load(struct module *mod)`.
#[raw_tracepoint(tracepoint = "module_load")]
pub(crate) fn tp_module_load(ctx: RawTracePointContext) -> i32 {
    if try_module_load(&ctx).is_err() {
        count(Counter::ReadError);
    }
    0
}

#[inline(always)]
fn try_module_load(ctx: &RawTracePointContext) -> Result<(), ReadError> {
    let op = KernelOp::ModuleLoaded;
    if plan_settings().kernel_ops & op.bit() == 0 {
        count(Counter::KernelFiltered);
        return Ok(());
    }
    count(Counter::KernelSeen);
    let module: *const u8 = ctx.arg(0);
    let mut verdict = emit::Verdict::NONE;
    if let Some(plan) = op_plan(op) {
        count(Counter::KernelMatched);
        (verdict, _) = act(&plan, &config(), Site::Tracepoint);
    }
    let rec = KERNEL_SCRATCH.get_ptr_mut(0).ok_or(ReadError)?;
    // SAFETY: per-CPU slot 0 from a successful look-up; the syscall tracepoint program that
    // shares it ran to its end earlier in this syscall, and BPF programs are not re-entered
    // on the same CPU while one runs.
    let rec = unsafe { &mut *rec };
    reset(rec, KernelSyscall::ModuleLoaded);
    match kernel::module_name(module, &mut rec.name) {
        Ok(len) => {
            rec.name_len = len;
            if len == KERNEL_NAME_LEN as u32 - 1 {
                rec.flags |= KERNEL_NAME_TRUNCATED;
            }
        }
        Err(ReadError) => rec.flags |= KERNEL_NAME_UNKNOWN,
    }
    emit_kernel(rec, Hook::TpModuleLoad, &verdict);
    Ok(())
}
