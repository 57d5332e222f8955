//! The fields of a `syscalls/sys_{enter,exit}_*` tracepoint record (`__syscall_nr`, then the
//! arguments, or `ret`, 8 bytes apart), at the offsets the loader read from tracefs
//! (`KernelOffsets::tp_syscall_nr`, `tp_syscall_args`).
//!
//! At the standard layout (every kernel the engine knows: `__syscall_nr` at 8, arguments from
//! 16) a field is one load from the context; the verifier allows context loads only at
//! constant offsets, hence the comparison with the standard layout first. Any other layout
//! is read with `bpf_probe_read_kernel`, a helper call (40-90 ns on the 2-vCPU host, paid on
//! every watched syscall of every task).

use aya_ebpf::{EbpfContext, programs::TracePointContext};

use crate::{kernel::ReadError, maps::offset};

/// Offset of `__syscall_nr` in the standard layout.
const STANDARD_NR: u32 = 8;
/// Offset of the first argument (or `ret`) in the standard layout.
const STANDARD_ARGS: u32 = 16;

/// `__syscall_nr` of the record.
#[inline(always)]
pub(crate) fn syscall_nr(ctx: &TracePointContext) -> Result<i32, ReadError> {
    let at = offset(|o| &o.tp_syscall_nr);
    if at == STANDARD_NR {
        // SAFETY: the record holds `__syscall_nr`, an aligned i32, at this constant offset
        // (the loader checked the format files); the verifier bounds context loads itself.
        return Ok(unsafe { load::<i32>(ctx, STANDARD_NR as usize) });
    }
    // SAFETY: a read of the record at the offset its format file gives.
    unsafe { ctx.read_at::<i32>(at as usize) }.map_err(|_| ReadError)
}

/// Argument `i` of a `sys_enter_*` record, or `ret` (`i == 0`) of a `sys_exit_*` record, for
/// a program whose every tracepoint has at least `ARGS` arguments (`i` must be a constant at
/// every call site, as it is once inlined). Only those are loaded directly: the kernel
/// refuses to attach a program whose context loads reach past a tracepoint's record
/// (`EACCES`), so a program attached to `write` (3 arguments) and `sendto` (6) reads
/// `sendto`'s fifth argument with a helper call.
#[inline(always)]
pub(crate) fn syscall_arg<const ARGS: usize>(
    ctx: &TracePointContext,
    i: usize,
) -> Result<u64, ReadError> {
    let base = offset(|o| &o.tp_syscall_args);
    if i < ARGS && base == STANDARD_ARGS {
        // SAFETY: as in `syscall_nr`: an aligned u64 of every record the program sees, at a
        // constant offset.
        return Ok(unsafe { load::<u64>(ctx, STANDARD_ARGS as usize + 8 * i) });
    }
    // SAFETY: a read of the record at the offset its format file gives.
    unsafe { ctx.read_at::<u64>(base as usize + 8 * i) }.map_err(|_| ReadError)
}

/// `ret` of a `sys_exit_*` record (the new descriptor, or a negative errno): in the place of
/// the first argument, which every record has.
#[inline(always)]
pub(crate) fn syscall_ret(ctx: &TracePointContext) -> Result<u64, ReadError> {
    syscall_arg::<1>(ctx, 0)
}

/// A load of a `T` at byte `at` of the tracepoint record.
///
/// # Safety
/// `at` must be a constant offset of an aligned `T` inside the record.
#[inline(always)]
unsafe fn load<T: Copy>(ctx: &TracePointContext, at: usize) -> T {
    // SAFETY: the caller guarantees the offset; the context pointer is the record.
    unsafe { core::ptr::read(ctx.as_ptr().cast::<u8>().add(at).cast::<T>()) }
}
