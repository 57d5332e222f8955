//! The system call the current task is in, read from its user registers as the syscall entry
//! saved them (`bpf_task_pt_regs(bpf_get_current_task_btf())`, 5.15+): how an LSM hook, which
//! gets the kernel's view of an operation, learns which call asked for it and with what
//! arguments, so it can report the call exactly as a `sys_enter_*` tracepoint would.
//!
//! Architecture: the register layout is x86_64's (`struct pt_regs` of the x86_64 ABI, from
//! aya's bindings: number in `orig_ax`, arguments in `di, si, dx, r10, r8, r9`). On any other
//! `bpf_target_arch` [`current`] always fails, and the callers fall back to what the hook
//! itself knows (the loader, `LSM_READS_SYSCALL_REGISTERS`, then keeps the tracepoints). The caller must check the number is the call it expects: a 32-bit or x32
//! caller has other numbers and registers, and a kernel thread has no user registers.

use crate::kernel::ReadError;

/// The call and its six arguments.
pub(crate) struct SyscallRegs {
    /// The syscall number (`orig_ax`).
    pub(crate) nr: u64,
    /// Its arguments, in order.
    pub(crate) args: [u64; 6],
}

/// The current task's syscall and arguments.
#[inline(always)]
pub(crate) fn current() -> Result<SyscallRegs, ReadError> {
    #[cfg(bpf_target_arch = "x86_64")]
    return x86_64::current();
    #[cfg(not(bpf_target_arch = "x86_64"))]
    Err(ReadError)
}

#[cfg(bpf_target_arch = "x86_64")]
mod x86_64 {
    use core::mem::offset_of;

    use aya_ebpf::{
        bindings::pt_regs,
        helpers::generated::{bpf_get_current_task_btf, bpf_task_pt_regs},
    };

    use super::SyscallRegs;
    use crate::kernel::{ReadError, read_at};

    /// The saved registers from `r10` to `orig_ax` (`r10 r9 r8 ax cx dx si di orig_ax`, the
    /// ABI's fixed order), read in one helper call.
    const FIRST: usize = offset_of!(pt_regs, r10);
    const WORDS: usize = 9;
    const _: () = assert!(offset_of!(pt_regs, orig_rax) == FIRST + 8 * (WORDS - 1));
    const _: () = assert!(offset_of!(pt_regs, r9) == FIRST + 8);
    const _: () = assert!(offset_of!(pt_regs, r8) == FIRST + 16);
    const _: () = assert!(offset_of!(pt_regs, rdx) == FIRST + 40);
    const _: () = assert!(offset_of!(pt_regs, rsi) == FIRST + 48);
    const _: () = assert!(offset_of!(pt_regs, rdi) == FIRST + 56);

    #[inline(always)]
    pub(super) fn current() -> Result<SyscallRegs, ReadError> {
        // SAFETY: no arguments; returns the current task as a trusted BTF pointer.
        let task = unsafe { bpf_get_current_task_btf() };
        // SAFETY: `task` is the current task from the helper above; the result is its saved
        // user registers (only ever read through `read_at`, which validates the address).
        let regs = unsafe { bpf_task_pt_regs(task) } as usize as *const u8;
        let w: [u64; WORDS] = read_at(regs, FIRST as u32)?;
        // r10 r9 r8 ax cx dx si di orig_ax
        Ok(SyscallRegs {
            nr: w[8],
            args: [w[7], w[6], w[5], w[0], w[2], w[1]],
        })
    }
}
