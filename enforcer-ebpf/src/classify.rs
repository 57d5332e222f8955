//! In-kernel classification of a socket write's first bytes: is it a JSON-RPC request, and which
//! `"method"` does it name? Bounded loops over a fixed 128-byte buffer; tolerant of leading
//! whitespace, key order and whitespace around the colon, as miners differ in all three.
//! Userspace re-parses the bytes with a real JSON parser for the audit record.
//!
//! The search for `"method"` runs in `bpf_loop` ([`needle_step`]) with its state in the
//! scratch map value: as a nested bounded loop, newer verifiers (6.18) walked it position by
//! position, 490k instructions for the send program (6.1: 55k).

use core::ffi::c_void;

use aya_ebpf::helpers::generated::bpf_loop;
use enforcer_common::{event::PAYLOAD_LEN, plan::METHOD_LEN};

use crate::maps::PayloadScratch;

const NEEDLE: &[u8; 8] = b"\"method\"";

#[inline(always)]
fn byte(data: &[u8; PAYLOAD_LEN], i: usize) -> u8 {
    data.get(i).copied().unwrap_or(0)
}

#[inline(always)]
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Whether `data` starts (after at most 8 whitespace bytes) with `{`: the cheap first test,
/// run on the first 8 bytes of every write.
#[inline(always)]
pub(crate) fn starts_like_json_object(head: &[u8; 8], len: usize) -> bool {
    let mut i = 0;
    while i < 8 && i < len {
        let b = head[i];
        if b == b'{' {
            return true;
        }
        if !is_space(b) {
            return false;
        }
        i += 1;
    }
    false
}

/// Passes `value` through `slot`, a word in a map value, so the verifier forgets its exact
/// value and keeps only the bound checked after it. Without this every position at which a
/// loop exits becomes its own verifier state for the rest of the program, and the product of
/// the loops below exceeds the verifier's one-million-instruction budget.
#[inline(always)]
fn opaque(slot: &mut u64, value: usize, bound: usize) -> Option<usize> {
    // SAFETY: `slot` is a valid, exclusive reference; volatile keeps the store and the load.
    let read = unsafe {
        core::ptr::write_volatile(slot, value as u64);
        core::ptr::read_volatile(slot)
    } as usize;
    (read <= bound).then_some(read)
}

/// Mask of a position in the payload buffer (`PAYLOAD_LEN` is 128).
const POS_MASK: u64 = PAYLOAD_LEN as u64 - 1;
const _: () = assert!(PAYLOAD_LEN.is_power_of_two());

/// What `bpf_loop` hands to [`needle_step`]: a stack pointer to the scratch.
#[repr(C)]
struct LoopCtx {
    scratch: *mut PayloadScratch,
}

/// One position of the `"method"` search: the needle starting at byte `index + 1` (a JSON
/// object starts with `{`). Returns 1 to stop the loop.
///
/// # Safety
/// `ctx` is the `LoopCtx` [`find_needle`] passes to `bpf_loop`.
unsafe extern "C" fn needle_step(index: u64, ctx: *mut c_void) -> i64 {
    // SAFETY: bpf_loop passes back the pointer find_needle gave it, to a live LoopCtx whose
    // scratch pointer comes from a successful per-CPU array look-up.
    let s = unsafe { &mut *(*ctx.cast::<LoopCtx>()).scratch };
    let pos = (core::hint::black_box(index) & POS_MASK) as usize + 1;
    if pos + NEEDLE.len() > PAYLOAD_LEN || pos as u64 + NEEDLE.len() as u64 > s.search_len {
        return 1;
    }
    let data = &s.record.data;
    // Each index masked right before its use: LLVM would otherwise walk a pointer from an
    // index the verifier holds as possibly negative.
    let mut k = 0;
    while k < NEEDLE.len()
        && byte(data, (core::hint::black_box(pos + k)) & POS_MASK as usize) == NEEDLE[k]
    {
        k += 1;
    }
    if k == NEEDLE.len() {
        s.search_at = (pos + NEEDLE.len()) as u64;
        return 1;
    }
    0
}

/// The position right after the first `"method"` in the first `len` bytes of the scratch's
/// payload (0: none).
#[inline(always)]
fn find_needle(scratch: &mut PayloadScratch, len: usize) -> usize {
    scratch.search_len = len as u64;
    scratch.search_at = 0;
    let mut ctx = LoopCtx { scratch };
    // SAFETY: the callback and its context follow bpf_loop's contract (see needle_step).
    unsafe {
        bpf_loop(
            PAYLOAD_LEN as u32,
            needle_step as *const () as *mut c_void,
            (&mut ctx as *mut LoopCtx).cast(),
            0,
        );
    }
    // SAFETY: the scratch pointer is still valid; a volatile read, as the helper wrote it.
    unsafe { core::ptr::read_volatile(&(*ctx.scratch).search_at) as usize }
}

/// Finds `"method"`, optional whitespace, `:`, optional whitespace and a string value in the
/// first `len` bytes of the scratch's payload; copies the value (no escapes, at most
/// `METHOD_LEN - 1` bytes) into the record's `method`, which must be zeroed, and returns its
/// length (0: no method found).
#[inline(always)]
pub(crate) fn find_method(scratch: &mut PayloadScratch, len: usize) -> usize {
    let len = if len > PAYLOAD_LEN { PAYLOAD_LEN } else { len };
    // 1. The needle.
    let after = find_needle(scratch, len);
    if after == 0 {
        return 0;
    }
    let slot = &mut scratch.slot;
    let data = &scratch.record.data;
    let method = &mut scratch.record.method;
    let Some(after) = opaque(slot, after, PAYLOAD_LEN) else {
        return 0;
    };
    // 2. `\s* : \s* "`.
    let mut i = after;
    let mut steps = 0;
    while steps < 4 && is_space(byte(data, i)) {
        i += 1;
        steps += 1;
    }
    if byte(data, i) != b':' {
        return 0;
    }
    i += 1;
    steps = 0;
    while steps < 4 && is_space(byte(data, i)) {
        i += 1;
        steps += 1;
    }
    if byte(data, i) != b'"' {
        return 0;
    }
    let Some(i) = opaque(slot, i + 1, PAYLOAD_LEN) else {
        return 0;
    };
    // 3. The value, up to its closing quote.
    let mut n = 0;
    while n < METHOD_LEN - 1 && i + n < len {
        let b = byte(data, i + n);
        if b == b'"' {
            return opaque(slot, n, METHOD_LEN - 1).unwrap_or(0);
        }
        if b == b'\\' || b == 0 {
            return 0;
        }
        method[n] = b;
        n += 1;
    }
    0
}
