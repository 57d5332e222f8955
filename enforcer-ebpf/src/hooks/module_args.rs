//! The parameters of a module load seen by an LSM hook (`kernel_read_file`, `kernel_load_data`),
//! which does not get them as arguments: they are read from the caller's user registers, saved
//! by the syscall entry (`bpf_task_pt_regs(bpf_get_current_task_btf())`, 5.15+), and copied
//! into the record exactly as the `sys_enter_{init,finit}_module` tracepoint copies them (`args`,
//! `data`, `data_len`, `KERNEL_DATA_TRUNCATED`; `KERNEL_DATA_UNREAD` when unreadable).
//!
//! | call | syscall number | parameter string | `args` |
//! |---|---|---|---|
//! | `finit_module(fd, uargs, flags)` | `orig_ax` | `si` | `[di, dx]` (fd, flags) |
//! | `init_module(umod, len, uargs)` | `orig_ax` | `dx` | `[di, si]` (umod, len) |
//!
//! The registers are read only when the saved syscall number is the one `KERNEL_SYSCALLS`
//! gives for that call (the loader writes this architecture's numbers: 313 and 175 on
//! x86_64). Anything else (a 32-bit or x32 caller, whose numbers and registers differ, a
//! kernel thread, a read not made by the syscall) leaves the record with
//! `KERNEL_DATA_UNREAD`: the event then says `kernel.module.args_unknown`, no args.
//!
//! Architecture: the register layout is x86_64's (`struct pt_regs` of the x86_64 ABI, from
//! aya's bindings). On any other `bpf_target_arch` the parameters are always unknown
//! (`KERNEL_DATA_UNREAD`); aarch64 (`regs[0..2]`, `syscallno`) is not written.

use enforcer_common::kernel_event::{KERNEL_DATA_UNREAD, KernelRecord, KernelSyscall};

/// Fills a module load's `args` and parameter string from the caller's saved registers;
/// `syscall` is `InitModule` or `FinitModule` (any other value leaves the params unknown).
#[inline(always)]
pub(crate) fn module_args(syscall: KernelSyscall, rec: &mut KernelRecord) {
    #[cfg(bpf_target_arch = "x86_64")]
    if x86_64::read(syscall, rec).is_ok() {
        return;
    }
    #[cfg(not(bpf_target_arch = "x86_64"))]
    let _ = syscall;
    rec.flags |= KERNEL_DATA_UNREAD;
}

#[cfg(bpf_target_arch = "x86_64")]
mod x86_64 {
    use core::mem::offset_of;

    use aya_ebpf::{
        bindings::pt_regs,
        helpers::generated::{bpf_get_current_task_btf, bpf_task_pt_regs},
    };
    use enforcer_common::kernel_event::{KernelRecord, KernelSyscall};

    use crate::{
        hooks::kernel_activity::user_string_data,
        kernel::{ReadError, read_at},
        maps::{KERNEL_SYSCALL_NRS, KERNEL_SYSCALLS},
    };

    /// Offsets in the x86_64 `struct pt_regs` (ABI: the order of the saved registers is fixed).
    const ORIG_AX: u32 = offset_of!(pt_regs, orig_rax) as u32;
    const DI: u32 = offset_of!(pt_regs, rdi) as u32;
    const SI: u32 = offset_of!(pt_regs, rsi) as u32;
    const DX: u32 = offset_of!(pt_regs, rdx) as u32;

    /// See [`super::module_args`]; `Err` when the registers are not this call's (the caller
    /// marks the params unknown). A failed string read is marked by `user_string_data`.
    #[inline(always)]
    pub(super) fn read(syscall: KernelSyscall, rec: &mut KernelRecord) -> Result<(), ReadError> {
        // SAFETY: no arguments; returns the current task as a trusted BTF pointer.
        let task = unsafe { bpf_get_current_task_btf() };
        // SAFETY: `task` is the current task from the helper above; the result is its saved
        // user registers (only ever read through `read_at`, which validates the address).
        let regs = unsafe { bpf_task_pt_regs(task) } as usize as *const u8;
        let nr = read_at::<u64>(regs, ORIG_AX)?;
        if nr >= u64::from(KERNEL_SYSCALL_NRS) {
            return Err(ReadError);
        }
        let called = KERNEL_SYSCALLS.get(nr as u32).copied().unwrap_or(0);
        if called != syscall as u32 {
            return Err(ReadError);
        }
        let di = read_at::<u64>(regs, DI)?;
        let si = read_at::<u64>(regs, SI)?;
        let dx = read_at::<u64>(regs, DX)?;
        let uargs = match syscall {
            KernelSyscall::FinitModule => {
                rec.args = [di, dx, 0];
                si
            }
            KernelSyscall::InitModule => {
                rec.args = [di, si, 0];
                dx
            }
            _ => return Err(ReadError),
        };
        user_string_data(uargs, rec);
        Ok(())
    }
}
