//! The argument plan: does an exec's command line, after `argv[0]`, carry a listed URL scheme
//! followed by `://` (`stratum+tcp://`, `--url=stratum+ssl://`)? Run by `sched_process_exec`
//! in every tier, before the new program's first instruction (no LSM hook sees the new
//! arguments: they are in the new image's memory only once the exec is past the point of no
//! return).
//!
//! The arguments are copied into [`ArgsScratch::buf`] after [`SCHEME_LEN`] zero bytes, and a
//! `bpf_loop` ([`step`]) walks them with a cursor in the scratch (map memory, see
//! ARCHITECTURE.md's verifier lessons), a word at a time: `argv[0]` (which `exec.args` does
//! not hold) is skipped up to its NUL, found inside its word; after it a word with no `:` is
//! skipped in one step, and a step on a word with one goes to its first `:`. (One step per
//! byte cost 6-7 us for a 330-byte command line on the 2-vCPU host.) At each `://` the bytes
//! before it are looked up in `EXEC_SCHEME_PLAN` one length after the other (1 to
//! [`SCHEME_LEN`] bytes, right-aligned keys), stopping at a NUL (the start of the argument):
//! at most [`SCHEME_LEN`] look-ups per `://`, none for a command line without one.

use core::ffi::c_void;

use aya_ebpf::helpers::{bpf_probe_read_user_buf, generated::bpf_loop};
use enforcer_common::{
    event::ARGS_LEN,
    plan::{NameKey, PlanVerdict, SCHEME_LEN, SchemeKey},
    word::{first_zero_byte, has_byte, has_zero_byte, mask_first_bytes, splat},
};

use crate::{
    maps::{ARGS_SCRATCH, EXEC_ARGS_SPARED, EXEC_SCHEME_PLAN},
    mem,
};

/// Size of [`ArgsScratch::buf`]: a power of two that holds the zero prefix and the copy.
const BUF_LEN: usize = 1024;
const _: () = assert!(BUF_LEN.is_power_of_two() && SCHEME_LEN + ARGS_LEN <= BUF_LEN);
/// Mask of a position in the buffer.
const POS_MASK: usize = BUF_LEN - 1;

/// Contents of [`ARGS_SCRATCH`].
#[repr(C)]
pub(crate) struct ArgsScratch {
    /// [`SCHEME_LEN`] zero bytes, then the copied arguments (8-byte aligned: the struct's
    /// first field, and the struct holds `u64`s).
    buf: [u8; BUF_LEN],
    /// End of the copied arguments in `buf`.
    end: u64,
    /// Position of the NUL that ends `argv[0]` (0: not found yet; it is never at 0, the
    /// zero prefix comes first).
    argv0_end: u64,
    /// Next position the walk examines.
    cursor: u64,
    /// The look-up key being built.
    key: SchemeKey,
    /// The verdict found (`actions == 0`: none yet).
    found: PlanVerdict,
}

/// What `bpf_loop` hands to [`step`]: a stack pointer to the scratch.
#[repr(C)]
struct LoopCtx {
    scratch: *mut ArgsScratch,
}

/// The byte at `pos` (masked into the buffer).
#[inline(always)]
fn at(buf: &[u8; BUF_LEN], pos: usize) -> u8 {
    buf[core::hint::black_box(pos) & POS_MASK]
}

/// Looks up the 1 to [`SCHEME_LEN`] bytes before `pos` (a `:` followed by `//`), shortest
/// first, stopping at a NUL (the argument's start); stores a hit in `s.found`.
#[inline(always)]
fn lookup_before(s: &mut ArgsScratch, pos: usize) -> bool {
    mem::zero(&mut s.key);
    let mut len = 1;
    while len <= SCHEME_LEN {
        // `pos >= SCHEME_LEN`, and the bytes before the copy are zero: the walk stops there.
        let c = at(&s.buf, pos.wrapping_sub(len));
        if c == 0 {
            return false;
        }
        if let Some(slot) = s.key.0.get_mut(SCHEME_LEN - len) {
            *slot = c;
        }
        if let Some(v) = EXEC_SCHEME_PLAN.get_ptr(s.key) {
            // SAFETY: the pointer comes from a successful map look-up; PlanVerdict is Copy.
            s.found = unsafe { *v };
            return true;
        }
        len += 1;
    }
    false
}

/// One step of the walk at `ArgsScratch::cursor`, on the aligned word that holds it (its bytes
/// before the cursor masked off): until `argv[0]`'s NUL is found, the word is skipped, or the
/// cursor jumps past that NUL; after it, a word with no `:` is skipped, and in a word with one
/// the first `:` is checked for a `//` after it and a listed scheme before it, and the cursor
/// moves past it. The callback stays small (6.1 verifies it once per state the
/// program reaches `bpf_loop` in: a byte loop inside it took 537k instructions). Returns 1 to
/// stop.
///
/// # Safety
/// `ctx` is the `LoopCtx` [`find_scheme`] passes to `bpf_loop`.
unsafe extern "C" fn step(_index: u64, ctx: *mut c_void) -> i64 {
    // SAFETY: bpf_loop passes back the pointer find_scheme gave it, to a live LoopCtx whose
    // scratch pointer comes from a successful per-CPU array look-up.
    let s = unsafe { &mut *(*ctx.cast::<LoopCtx>()).scratch };
    let pos = (core::hint::black_box(s.cursor) as usize) & POS_MASK;
    if pos as u64 + 2 >= s.end {
        return 1;
    }
    let start = pos & POS_MASK & !7;
    // SAFETY: `start` is a multiple of 8 below BUF_LEN - 7 and `buf` is 8-byte aligned, so the
    // word is inside the buffer and aligned.
    let word = unsafe { core::ptr::read(s.buf.as_ptr().add(start).cast::<u64>()) };
    // The bytes before the cursor, already examined, masked off.
    let word = mask_first_bytes(word, pos & 7);
    if s.argv0_end == 0 {
        if has_zero_byte(word) {
            let end = start + first_zero_byte(word);
            s.argv0_end = end as u64;
            s.cursor = (end + 1) as u64;
        } else {
            s.cursor = (start + 8) as u64;
        }
        return 0;
    }
    if !has_byte(word, b':') {
        s.cursor = (start + 8) as u64;
        return 0;
    }
    // The word's first `:` from the cursor on; the next step starts after it.
    let colon = start + first_zero_byte(word ^ splat(b':'));
    if colon as u64 + 2 >= s.end {
        return 1;
    }
    s.cursor = (colon + 1) as u64;
    if at(&s.buf, colon + 1) == b'/' && at(&s.buf, colon + 2) == b'/' && lookup_before(s, colon) {
        return 1;
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
    const { assert!(core::mem::offset_of!(ArgsScratch, buf) == 0 && BUF_LEN > SCHEME_LEN) };
    // SAFETY: `buf` starts the (8-byte aligned) map value and holds more than SCHEME_LEN bytes.
    unsafe { mem::zero_bytes(s.buf.as_mut_ptr().cast::<[u8; SCHEME_LEN]>()) };
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
    s.argv0_end = 0;
    s.cursor = SCHEME_LEN as u64;
    s.found.actions = 0;
    let mut ctx = LoopCtx { scratch: s };
    // SAFETY: the callback and its context follow bpf_loop's contract (see step).
    unsafe {
        bpf_loop(
            len as u32,
            step as *const () as *mut c_void,
            (&mut ctx as *mut LoopCtx).cast(),
            0,
        );
    }
    // SAFETY: the scratch pointer is still valid; volatile, as the callback wrote it.
    let found = unsafe { core::ptr::read_volatile(&(*ctx.scratch).found) };
    (found.actions != 0).then_some(found)
}
