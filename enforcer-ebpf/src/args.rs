//! The argument plan: does an exec's command line, after `argv[0]`, carry a listed URL scheme
//! followed by `://` (`stratum+tcp://`, `--url=stratum+ssl://`)? Run by `sched_process_exec`
//! in every tier, before the new program's first instruction (no LSM hook sees the new
//! arguments: they are in the new image's memory only once the exec is past the point of no
//! return).
//!
//! The arguments are copied into [`ArgsScratch::buf`] after [`SCHEME_LEN`] zero bytes, and a
//! `bpf_loop` ([`scheme_step`]) walks them byte by byte with its state in the scratch (map
//! memory, see ARCHITECTURE.md's verifier lessons). Bytes up to the first NUL (`argv[0]`) are
//! skipped: `exec.args` does not hold it. At each `://` the bytes before it are looked up in
//! `EXEC_SCHEME_PLAN` one length after the other (1 to [`SCHEME_LEN`] bytes, right-aligned
//! keys), stopping at a NUL (the start of the argument): at most [`SCHEME_LEN`] look-ups per
//! `://`, none for a command line without one.

use core::ffi::c_void;

use aya_ebpf::helpers::{bpf_probe_read_user_buf, generated::bpf_loop};
use enforcer_common::{
    event::ARGS_LEN,
    plan::{NameKey, PlanVerdict, SCHEME_LEN, SchemeKey},
};

use crate::maps::{ARGS_SCRATCH, EXEC_ARGS_SPARED, EXEC_SCHEME_PLAN};

/// Size of [`ArgsScratch::buf`]: a power of two that holds the zero prefix and the copy.
const BUF_LEN: usize = 1024;
const _: () = assert!(BUF_LEN.is_power_of_two() && SCHEME_LEN + ARGS_LEN <= BUF_LEN);
/// Mask of a position in the buffer.
const POS_MASK: usize = BUF_LEN - 1;

/// Contents of [`ARGS_SCRATCH`].
#[repr(C)]
pub(crate) struct ArgsScratch {
    /// [`SCHEME_LEN`] zero bytes, then the copied arguments.
    buf: [u8; BUF_LEN],
    /// End of the copied arguments in `buf`.
    end: u64,
    /// Whether the walk is past `argv[0]`'s NUL.
    past_argv0: u64,
    /// The look-up key being built.
    key: SchemeKey,
    /// The verdict found (`actions == 0`: none yet).
    found: PlanVerdict,
}

/// What `bpf_loop` hands to [`scheme_step`]: a stack pointer to the scratch.
#[repr(C)]
struct LoopCtx {
    scratch: *mut ArgsScratch,
}

/// The byte at `pos` (masked into the buffer).
#[inline(always)]
fn at(buf: &[u8; BUF_LEN], pos: usize) -> u8 {
    buf[core::hint::black_box(pos) & POS_MASK]
}

/// One byte of the walk: position `index` of the copied arguments. Returns 1 to stop.
///
/// # Safety
/// `ctx` is the `LoopCtx` [`find_scheme`] passes to `bpf_loop`.
unsafe extern "C" fn scheme_step(index: u64, ctx: *mut c_void) -> i64 {
    // SAFETY: bpf_loop passes back the pointer find_scheme gave it, to a live LoopCtx whose
    // scratch pointer comes from a successful per-CPU array look-up.
    let s = unsafe { &mut *(*ctx.cast::<LoopCtx>()).scratch };
    let pos = (core::hint::black_box(index) as usize + SCHEME_LEN) & POS_MASK;
    if pos as u64 + 2 >= s.end {
        return 1;
    }
    let b = at(&s.buf, pos);
    if s.past_argv0 == 0 {
        if b == 0 {
            s.past_argv0 = 1;
        }
        return 0;
    }
    if b != b':' || at(&s.buf, pos + 1) != b'/' || at(&s.buf, pos + 2) != b'/' {
        return 0;
    }
    s.key = SchemeKey([0; SCHEME_LEN]);
    let mut len = 1;
    while len <= SCHEME_LEN {
        // `pos >= SCHEME_LEN`, and the bytes before the copy are zero: the walk stops there.
        let c = at(&s.buf, pos.wrapping_sub(len));
        if c == 0 {
            break;
        }
        if let Some(slot) = s.key.0.get_mut(SCHEME_LEN - len) {
            *slot = c;
        }
        if let Some(v) = EXEC_SCHEME_PLAN.get_ptr(s.key) {
            // SAFETY: the pointer comes from a successful map look-up; PlanVerdict is Copy.
            s.found = unsafe { *v };
            return 1;
        }
        len += 1;
    }
    0
}

/// Whether the executable `name` (its basename key) is spared the search.
#[inline(always)]
pub(crate) fn spared(name: &NameKey) -> bool {
    EXEC_ARGS_SPARED.get_ptr(name).is_some()
}

/// The verdict of the first listed `scheme://` in the user-space argument block
/// `(start, end)` of the current task (its first [`ARGS_LEN`] bytes), if any.
#[inline(always)]
pub(crate) fn find_scheme(args: (u64, u64)) -> Option<PlanVerdict> {
    let (start, end) = args;
    let span = end.checked_sub(start)? as usize;
    let len = if span > ARGS_LEN { ARGS_LEN } else { span };
    let scratch = ARGS_SCRATCH.get_ptr_mut(0)?;
    // SAFETY: per-CPU scratch; sched_process_exec does not re-enter on this CPU.
    let s = unsafe { &mut *scratch };
    s.buf[..SCHEME_LEN].copy_from_slice(&[0; SCHEME_LEN]);
    // Checked again after a trip through the stack (see exec_record's argv copy).
    let len = core::hint::black_box(len);
    if len == 0 || len > ARGS_LEN {
        return None;
    }
    // SAFETY: the helper checks the user address; the destination is inside the buffer.
    let copied = unsafe {
        bpf_probe_read_user_buf(start as *const u8, &mut s.buf[SCHEME_LEN..SCHEME_LEN + len])
    };
    if copied.is_err() {
        return None;
    }
    s.end = (SCHEME_LEN + len) as u64;
    s.past_argv0 = 0;
    s.found.actions = 0;
    let mut ctx = LoopCtx { scratch: s };
    // SAFETY: the callback and its context follow bpf_loop's contract (see scheme_step).
    unsafe {
        bpf_loop(
            len as u32,
            scheme_step as *const () as *mut c_void,
            (&mut ctx as *mut LoopCtx).cast(),
            0,
        );
    }
    // SAFETY: the scratch pointer is still valid; volatile, as the callback wrote it.
    let found = unsafe { core::ptr::read_volatile(&(*ctx.scratch).found) };
    (found.actions != 0).then_some(found)
}
