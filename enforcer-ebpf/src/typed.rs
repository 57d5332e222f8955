//! Plain loads through BTF-typed kernel pointers: the arguments of LSM hooks and BTF
//! tracepoints, the task `bpf_get_current_task_btf` returns, and every pointer loaded through
//! those. The verifier knows their types from the kernel's BTF and turns each load into a
//! fault-safe one (`BPF_PROBE_MEM`: a faulting load reads 0), so a field costs one
//! instruction instead of a `bpf_probe_read_kernel` call (about a hundred instructions with
//! the helper's checks). The offsets come from `OFFSETS` in `.rodata`, which the loader sets
//! and freezes before the programs load: the verifier reads them as constants and checks
//! each load against the kernel's struct layout (a load must hit a member: a pointer member
//! with its exact offset and size).
//!
//! Only for such pointers: a pointer from a classic tracepoint's record or from a helper
//! without BTF is a number to the verifier, which refuses a load through it. Those go
//! through `kernel::read_at`. Code shared by both kinds of callers is generic over
//! [`Access`]: the caller says which kind of pointer it holds.

use crate::kernel::{ReadError, read_at};

/// How a reader reaches kernel memory: [`Probed`] (any pointer) or [`Typed`] (BTF-typed
/// pointers only).
pub(crate) trait Access {
    /// Whether this is [`Typed`]: members the kernel lays out side by side are then loaded
    /// one by one; [`Probed`] reads them in one helper call (`KernelOffsets::layout`).
    const TYPED: bool;

    /// The `T` (one member: 1, 2, 4 or 8 bytes) at `base + offset`; `Err` for a null
    /// `base` or a failed read.
    fn read<T: Copy>(base: *const u8, offset: u32) -> Result<T, ReadError>;
}

/// Reads through `bpf_probe_read_kernel` (`kernel::read_at`).
pub(crate) struct Probed;

impl Access for Probed {
    const TYPED: bool = false;

    #[inline(always)]
    fn read<T: Copy>(base: *const u8, offset: u32) -> Result<T, ReadError> {
        read_at(base, offset)
    }
}

/// Plain loads ([`load`]); a faulting load reads 0.
pub(crate) struct Typed;

impl Access for Typed {
    const TYPED: bool = true;

    #[inline(always)]
    fn read<T: Copy>(base: *const u8, offset: u32) -> Result<T, ReadError> {
        if base.is_null() {
            return Err(ReadError);
        }
        Ok(load(base, offset))
    }
}

/// The `T` at `base + offset` (`base` a BTF-typed kernel pointer; see the module). `T` is one
/// member: 1, 2, 4 or 8 bytes.
#[inline(always)]
pub(crate) fn load<T: Copy>(base: *const u8, offset: u32) -> T {
    // SAFETY: the verifier turns the load into a fault-safe one for a BTF-typed `base` (it
    // refuses the program otherwise); the address is never dereferenced by Rust code.
    unsafe { core::ptr::read_volatile(base.wrapping_add(offset as usize).cast::<T>()) }
}

/// The current task, BTF-typed (`bpf_get_current_task_btf`, Linux 5.11).
#[inline(always)]
pub(crate) fn current_task() -> *const u8 {
    // SAFETY: the helper takes no arguments and returns the current task.
    unsafe { aya_ebpf::helpers::generated::bpf_get_current_task_btf() as *const u8 }
}
