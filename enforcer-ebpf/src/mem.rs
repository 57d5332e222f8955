//! Zeroing without `memset`. LLVM's BPF backend lowers every array or struct zeroing it sees
//! (a `[0; N]` assignment, or adjacent ones it merges) to a call of compiler-builtins'
//! `memset`, a BPF subprogram that stores one byte per turn of a loop: five instructions a
//! byte, 1,600 for an exec's name and path. These helpers store 8-byte words instead, as
//! volatile stores so LLVM cannot merge them back into a `memset` call.

use core::mem::{align_of, size_of};

/// Zeroes `value` (8-byte aligned, a multiple of 8 bytes long: checked when compiled) with
/// 8-byte stores.
#[inline(always)]
pub(crate) fn zero<T>(value: &mut T) {
    const { assert!(size_of::<T>().is_multiple_of(8) && align_of::<T>() >= 8) };
    // SAFETY: `value` is a valid, exclusive, 8-byte aligned `T` of a whole number of words.
    unsafe { zero_words((value as *mut T).cast::<u64>(), size_of::<T>() / 8) };
}

/// Zeroes the byte array at `buf`, a multiple of 8 bytes long (checked when compiled), with
/// 8-byte stores.
///
/// # Safety
/// `buf` must be valid for writes and 8-byte aligned (the wire structs' offset assertions
/// next to each caller say so).
#[inline(always)]
pub(crate) unsafe fn zero_bytes<const N: usize>(buf: *mut [u8; N]) {
    const { assert!(N.is_multiple_of(8)) };
    // SAFETY: the caller's contract: `N / 8` aligned words, valid for writes.
    unsafe { zero_words(buf.cast::<u64>(), N / 8) };
}

/// Stores 0 in `words` consecutive 8-byte words from `at`.
///
/// # Safety
/// `at .. at + words` must be valid, aligned `u64` slots.
#[inline(always)]
unsafe fn zero_words(at: *mut u64, words: usize) {
    let mut i = 0;
    while i < words {
        // SAFETY: `i < words`, inside the caller's range.
        unsafe { core::ptr::write_volatile(at.add(i), 0) };
        i += 1;
    }
}
