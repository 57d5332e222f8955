//! Byte tests on a 64-bit word (SWAR: SIMD within a register), for the kernel's argument
//! search, which walks a command line eight bytes a step. Plain integer arithmetic, so the
//! same code runs in the BPF programs and in these unit tests.

/// `0x0101..01` times `byte`: a word of eight copies.
#[must_use]
pub const fn splat(byte: u8) -> u64 {
    0x0101_0101_0101_0101 * byte as u64
}

/// The classic zero-byte test's flags: bit 7 of every byte that may be zero. The lowest flag
/// is exact (a false one needs a borrow from a zero byte below it), so `flags != 0` says
/// whether `word` has a zero byte and its lowest flag where the first one is.
#[inline(always)]
const fn zero_flags(word: u64) -> u64 {
    word.wrapping_sub(splat(1)) & !word & splat(0x80)
}

/// Whether some byte of `word` is zero.
#[inline(always)]
#[must_use]
pub const fn has_zero_byte(word: u64) -> bool {
    zero_flags(word) != 0
}

/// Whether some byte of `word` is `byte`.
#[inline(always)]
#[must_use]
pub const fn has_byte(word: u64, byte: u8) -> bool {
    has_zero_byte(word ^ splat(byte))
}

/// The index (in memory order, little-endian) of the first zero byte of `word`; 0 when it has
/// none (check [`has_zero_byte`] first).
#[inline(always)]
#[must_use]
pub const fn first_zero_byte(word: u64) -> usize {
    lowest_flag_byte(zero_flags(word))
}

/// The byte index (in memory order) of the lowest flag of `flags` (the flags of
/// [`zero_flags`], or several such words or-ed together: each one's lowest flag is exact, so
/// the lowest of all is). No count-trailing-zeros instruction in BPF: the multiplication
/// moves the index of the lowest flag into the top byte.
#[inline(always)]
const fn lowest_flag_byte(flags: u64) -> usize {
    let lowest = flags & flags.wrapping_neg();
    ((lowest >> 7).wrapping_mul(0x0001_0203_0405_0607) >> 56) as usize
}

/// The index (in memory order) of the first byte of `word` that is zero or `byte`; 8 when it
/// has none.
#[inline(always)]
#[must_use]
pub const fn first_zero_or(word: u64, byte: u8) -> usize {
    let flags = zero_flags(word) | zero_flags(word ^ splat(byte));
    if flags == 0 {
        return 8;
    }
    lowest_flag_byte(flags)
}

/// A word whose first `count` bytes (in memory order; `count` < 8) are 0xff and the others 0.
#[inline(always)]
#[must_use]
pub const fn first_bytes(count: usize) -> u64 {
    (1u64 << (8 * (count & 7))) - 1
}

/// `word` with its first `count` bytes (in memory order; `count` < 8) replaced by 0x01, a byte
/// that is neither NUL nor any character a search looks for.
#[inline(always)]
#[must_use]
pub const fn mask_first_bytes(word: u64, count: usize) -> u64 {
    let below = first_bytes(count);
    (word & !below) | (splat(1) & below)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(bytes: [u8; 8]) -> u64 {
        u64::from_le_bytes(bytes)
    }

    #[test]
    fn the_first_zero_byte_is_found_at_every_index_whatever_follows_it() {
        for index in 0..8 {
            // 0x01 after the zero is the case where the test's borrow flags a false byte.
            for after in [0x00, 0x01, 0x80, 0xff, b':'] {
                let mut bytes = [b'a'; 8];
                bytes[index] = 0;
                for b in bytes.iter_mut().skip(index + 1) {
                    *b = after;
                }
                let w = word(bytes);
                assert!(has_zero_byte(w), "{bytes:?}");
                assert_eq!(first_zero_byte(w), index, "{bytes:?}");
            }
        }
    }

    #[test]
    fn a_word_without_zero_bytes_has_none() {
        for bytes in [[b'a'; 8], [0x01; 8], [0x80; 8], [0xff; 8], *b"/opt/ben"] {
            assert!(!has_zero_byte(word(bytes)), "{bytes:?}");
        }
    }

    #[test]
    fn a_byte_is_found_only_where_it_is() {
        assert!(has_byte(word(*b"tcp://x\0"), b':'));
        assert!(!has_byte(word(*b"/usr/bin"), b':'));
        assert!(has_byte(word(*b"abcdefg:"), b':'));
    }

    #[test]
    fn masked_bytes_are_neither_nul_nor_searched_for() {
        let w = word(*b"a\0:b\0c:d");
        assert_eq!(first_bytes(0), 0);
        assert_eq!(first_bytes(3), 0x00ff_ffff);
        assert_eq!(mask_first_bytes(w, 0), w);
        assert_eq!(first_zero_byte(mask_first_bytes(w, 2)), 4);
        assert!(has_byte(mask_first_bytes(w, 3), b':'));
        assert!(has_byte(mask_first_bytes(w, 6), b':'));
        assert!(!has_byte(mask_first_bytes(w, 7), b':'));
        let tail = mask_first_bytes(word(*b"ab:\0\0\0\0x"), 7);
        assert!(!has_zero_byte(tail) && !has_byte(tail, b':'));
    }

    #[test]
    fn the_first_zero_or_given_byte_is_found_wherever_it_is() {
        assert_eq!(first_zero_or(word(*b"abcdefgh"), b'='), 8);
        for index in 0..8 {
            for (stop, after) in [(0u8, b'='), (b'=', 0), (b'=', b'='), (0, 0x01)] {
                let mut bytes = *b"--abcdef";
                bytes[index] = stop;
                for b in bytes.iter_mut().skip(index + 1) {
                    *b = after;
                }
                assert_eq!(first_zero_or(word(bytes), b'='), index, "{bytes:?}");
            }
        }
    }
}
