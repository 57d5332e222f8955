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
//!
//! With the flag plan on (`EXEC_ARGS_FLAGS`), a step also stops at each NUL (the start of the
//! next argument): an argument that starts with `--` is looked up in `EXEC_FLAG_PLAN` by its
//! bytes up to its first `=` or its end, at most [`FLAG_LEN`] - 1 of them ([`lookup_flag`]:
//! four words, no loop). The copy is followed by [`FLAG_LEN`] zero bytes, so an argument cut
//! by the copy's end ends there; it is still a prefix of the real argument, which therefore
//! starts with any flag its key names.

use core::ffi::c_void;

use aya_ebpf::helpers::{bpf_probe_read_user_buf, generated::bpf_loop};
use enforcer_common::{
    event::ARGS_LEN,
    plan::{EXEC_ARGS_FLAGS, FLAG_LEN, FlagKey, NameKey, PlanVerdict, SCHEME_LEN, SchemeKey},
    word::{
        first_bytes, first_zero_byte, first_zero_or, has_byte, has_zero_byte, mask_first_bytes,
        splat,
    },
};

use crate::{
    maps::{ARGS_SCRATCH, EXEC_ARGS_SPARED, EXEC_FLAG_PLAN, EXEC_SCHEME_PLAN},
    mem,
};

/// Size of [`ArgsScratch::buf`]: a power of two that holds the zero prefix, the copy and the
/// zero bytes after it.
const BUF_LEN: usize = 1024;
const _: () = assert!(BUF_LEN.is_power_of_two() && SCHEME_LEN + ARGS_LEN + FLAG_LEN <= BUF_LEN);
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
    /// The flag look-up key being built.
    flag: FlagKey,
    /// Whether arguments starting with `--` are looked up (`EXEC_ARGS_FLAGS`), 0 or 1.
    flags_on: u64,
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

/// Looks up the argument that starts at `pos` (with `--`) by its bytes up to its first `=` or
/// NUL, when there are fewer than [`FLAG_LEN`] of them; stores a hit in `s.found`. Four
/// words read and masked, no loop (the callback must stay small).
#[inline(always)]
fn lookup_flag(s: &mut ArgsScratch, pos: usize) -> bool {
    let pos = core::hint::black_box(pos) & POS_MASK;
    if pos >= BUF_LEN - FLAG_LEN {
        return false;
    }
    let mut ended = false;
    let mut i = 0;
    while i < FLAG_LEN / 8 {
        let word = if ended {
            0
        } else {
            // SAFETY: pos + 8 * i + 8 <= pos + FLAG_LEN < BUF_LEN: inside the buffer.
            let word =
                unsafe { core::ptr::read_unaligned(s.buf.as_ptr().add(pos + 8 * i).cast::<u64>()) };
            let stop = first_zero_or(word, b'=');
            if stop < 8 {
                ended = true;
                word & first_bytes(stop)
            } else {
                word
            }
        };
        // SAFETY: i < FLAG_LEN / 8: an aligned word of the (8-byte aligned) key.
        unsafe { core::ptr::write_volatile(s.flag.0.as_mut_ptr().add(8 * i).cast::<u64>(), word) };
        i += 1;
    }
    // No `=` or NUL in FLAG_LEN bytes: longer than any key.
    if !ended {
        return false;
    }
    if let Some(v) = EXEC_FLAG_PLAN.get_ptr(s.flag) {
        // SAFETY: the pointer comes from a successful map look-up; PlanVerdict is Copy.
        s.found = unsafe { *v };
        return true;
    }
    false
}

/// After the NUL at `nul` (an argument's end; the cursor is past it): with the flag plan on,
/// the next argument is looked up when it starts with `--`. Returns 1 on a hit (the walk
/// stops), else 0.
#[inline(always)]
fn after_nul(s: &mut ArgsScratch, nul: usize) -> i64 {
    if s.flags_on == 0 || nul as u64 + 2 >= s.end {
        return 0;
    }
    let flag = at(&s.buf, nul + 1) == b'-' && at(&s.buf, nul + 2) == b'-';
    i64::from(flag && lookup_flag(s, nul + 1))
}

/// One step of the walk at `ArgsScratch::cursor`, on the aligned word that holds it (its bytes
/// before the cursor masked off): until `argv[0]`'s NUL is found, the word is skipped, or the
/// cursor jumps past that NUL; after it, a word with no `:` (nor, with the flag plan, NUL) is
/// skipped, and in a word with one the first is examined and the cursor moves past it: a `:`
/// is checked for a `//` after it and a listed scheme before it, a NUL for a listed flag
/// after it ([`after_nul`]). The callback stays small (6.1 verifies it once per state the
/// program reaches `bpf_loop` in: a byte loop inside it took 537k instructions). Returns 1 to
/// stop.
///
/// # Safety
/// `ctx` is the `LoopCtx` [`search`] passes to `bpf_loop`.
unsafe extern "C" fn step(_index: u64, ctx: *mut c_void) -> i64 {
    // SAFETY: bpf_loop passes back the pointer search gave it, to a live LoopCtx whose
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
            return after_nul(s, end);
        } else {
            s.cursor = (start + 8) as u64;
        }
        return 0;
    }
    // The word's first `:` from the cursor on (and, for the flag plan, its first NUL: an
    // argument's end); the next step starts after it.
    let index = if s.flags_on != 0 {
        first_zero_or(word, b':')
    } else if has_byte(word, b':') {
        first_zero_byte(word ^ splat(b':'))
    } else {
        8
    };
    if index >= 8 {
        s.cursor = (start + 8) as u64;
        return 0;
    }
    let stop = start + index;
    if stop as u64 + 2 >= s.end {
        return 1;
    }
    s.cursor = (stop + 1) as u64;
    if at(&s.buf, stop) != b':' {
        return after_nul(s, stop);
    }
    if at(&s.buf, stop + 1) == b'/' && at(&s.buf, stop + 2) == b'/' && lookup_before(s, stop) {
        return 1;
    }
    0
}

/// Whether the executable `name` (its basename key) is spared the search.
#[inline(always)]
pub(crate) fn spared(name: &NameKey) -> bool {
    EXEC_ARGS_SPARED.get_ptr(name).is_some()
}

/// The verdict of the first listed `scheme://` (or, with `EXEC_ARGS_FLAGS` in `exec_bits`,
/// listed flag) in the user-space argument block `(start, end)` of the current task (its
/// first [`ARGS_LEN`] bytes), if any.
#[inline(always)]
pub(crate) fn search(args: (u64, u64), exec_bits: u32) -> Option<PlanVerdict> {
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
    // The zero bytes after the copy (see the module documentation).
    let tail = (SCHEME_LEN + len) & POS_MASK;
    if tail + FLAG_LEN <= BUF_LEN {
        let mut i = 0;
        while i < FLAG_LEN {
            // SAFETY: tail + i < tail + FLAG_LEN <= BUF_LEN: inside the buffer.
            unsafe { core::ptr::write_volatile(s.buf.as_mut_ptr().add(tail + i), 0) };
            i += 1;
        }
    }
    s.flags_on = u64::from(exec_bits & EXEC_ARGS_FLAGS != 0);
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
