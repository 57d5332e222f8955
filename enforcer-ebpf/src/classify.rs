//! In-kernel classification of a socket write's first bytes: is it a JSON-RPC request, and which
//! `"method"` does it name? Bounded loops over a fixed 128-byte buffer; tolerant of leading
//! whitespace, key order and whitespace around the colon, as miners differ in all three.
//! Userspace re-parses the bytes with a real JSON parser for the audit record.

use enforcer_common::{event::PAYLOAD_LEN, plan::METHOD_LEN};

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

/// Finds `"method"`, optional whitespace, `:`, optional whitespace and a string value in the
/// first `len` bytes of `data`; copies the value (no escapes, at most `METHOD_LEN - 1` bytes)
/// into `method`, which must be zeroed, and returns its length (0: no method found).
/// `slot` is a scratch word in a map value (see [`opaque`]).
#[inline(always)]
pub(crate) fn find_method(
    data: &[u8; PAYLOAD_LEN],
    len: usize,
    method: &mut [u8; METHOD_LEN],
    slot: &mut u64,
) -> usize {
    let len = if len > PAYLOAD_LEN { PAYLOAD_LEN } else { len };
    // 1. The needle.
    let mut pos = 1;
    let mut after = 0;
    while pos + NEEDLE.len() <= len {
        let mut k = 0;
        while k < NEEDLE.len() && byte(data, pos + k) == NEEDLE[k] {
            k += 1;
        }
        if k == NEEDLE.len() {
            after = pos + NEEDLE.len();
            break;
        }
        pos += 1;
    }
    if after == 0 {
        return 0;
    }
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
