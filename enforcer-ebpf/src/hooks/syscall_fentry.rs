//! fentry programs on the entry functions (`__x64_sys_<name>`) of the kernel-activity
//! syscalls that no LSM hook reports: `delete_module`, the set*id family, `capset`,
//! `unshare`, `setns`, `memfd_create`. On kernels with BPF trampolines they replace those
//! syscalls' `sys_enter_*` tracepoints, in either tier (any syscall tracepoint puts every
//! system call of every task on the kernel's traced path; an fentry program costs only the
//! call it is attached to).
//!
//! One body for all: the call and its arguments come from the caller's saved registers
//! (`user_regs.rs`, as the LSM hooks of the family read them), then `kernel_activity::on_call`
//! builds the same record the tracepoint does, with hook `FentrySysEnterKernel`. A deny rule
//! is a kill, sent at the call's entry, as at the tracepoint (`Site::Trampoline`). An fentry
//! program is bound to one function when loaded, hence one program per syscall; the loader
//! loads and attaches each only for a policy about its operation (`loader/kernel_syscalls.rs`,
//! `FENTRY_SYSCALLS`). x86_64 only (the function names and the register layout).

use enforcer_common::event::{Counter, Hook};

use super::kernel_activity::{kernel_syscall, on_call};
use crate::{maps::count, plan::Site, user_regs};

/// The body of every program here.
#[inline(always)]
fn syscall_entry() {
    let result = user_regs::current().and_then(|regs| match kernel_syscall(regs.nr) {
        Some(syscall) => on_call(
            syscall,
            &regs.args,
            Hook::FentrySysEnterKernel,
            Site::Trampoline,
        ),
        None => Ok(false),
    });
    if result.is_err() {
        count(Counter::ReadError);
    }
}

/// One fentry program per `name => function`, each running [`syscall_entry`].
macro_rules! syscall_programs {
    ($($name:ident => $function:literal),* $(,)?) => {
        $(
            #[aya_ebpf::macros::fentry(function = $function)]
            pub(crate) fn $name(_ctx: aya_ebpf::programs::FEntryContext) -> i32 {
                syscall_entry();
                0
            }
        )*
    };
}

syscall_programs! {
    fentry_sys_delete_module => "__x64_sys_delete_module",
    fentry_sys_setuid => "__x64_sys_setuid",
    fentry_sys_setgid => "__x64_sys_setgid",
    fentry_sys_setreuid => "__x64_sys_setreuid",
    fentry_sys_setregid => "__x64_sys_setregid",
    fentry_sys_setresuid => "__x64_sys_setresuid",
    fentry_sys_setresgid => "__x64_sys_setresgid",
    fentry_sys_setfsuid => "__x64_sys_setfsuid",
    fentry_sys_setfsgid => "__x64_sys_setfsgid",
    fentry_sys_capset => "__x64_sys_capset",
    fentry_sys_unshare => "__x64_sys_unshare",
    fentry_sys_setns => "__x64_sys_setns",
    fentry_sys_memfd_create => "__x64_sys_memfd_create",
}
