//! [`NameFilter`]: which basenames `EXEC_NAME_PLAN` may hold, tested without the map. A look-up
//! hashes a 64-byte key, and a mapping's name must first be read (about 0.8 thousand guest
//! instructions for a library in the exec storm); most names fail the filter at its length,
//! and most of the rest at their first eight bytes.

/// Part of `PlanSettings`: the lengths and a 256-bit set of (length, first eight bytes) of the
/// names in `EXEC_NAME_PLAN`. A plan update first widens it to the old and new names
/// ([`NameFilter::union`]), then writes the names, then narrows it to the new ones: no listed
/// name is filtered out in between.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NameFilter {
    /// Bit `n` set: some name is `n` bytes long (names of 64 bytes or more are never listed).
    pub lens: u64,
    /// Bit [`prefix_bit`] set for every name.
    pub prefixes: [u64; 4],
}

/// The first eight bytes of `name` as a little-endian word, zero past the name: what the
/// kernel reads from a name key (zero-padded) or a dentry name (masked to its length).
#[must_use]
pub fn name_prefix(name: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    for (slot, byte) in bytes.iter_mut().zip(name) {
        *slot = *byte;
    }
    u64::from_le_bytes(bytes)
}

/// `raw`, eight bytes read at a name of `len` bytes, with the bytes past the name cleared.
#[inline(always)]
#[must_use]
pub const fn mask_prefix(raw: u64, len: u32) -> u64 {
    if len >= 8 {
        raw
    } else {
        raw & crate::word::first_bytes(len as usize)
    }
}

/// The bit of [`NameFilter::prefixes`] a name of `len` bytes starting with `prefix` sets
/// (0 to 255; a multiplicative hash, the top byte of the product).
#[inline(always)]
#[must_use]
pub const fn prefix_bit(len: u32, prefix: u64) -> u32 {
    ((prefix ^ len as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u32
}

impl NameFilter {
    /// Lets every name through (each one is looked up): the filter is only a shortcut, so this
    /// is the safe value when the plan's real filter cannot be read.
    pub const ALL: Self = Self {
        lens: u64::MAX,
        prefixes: [u64::MAX; 4],
    };

    /// The filter of `names` (names of 64 bytes or more, which no name key holds, are left
    /// out).
    pub fn of<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let mut filter = Self::default();
        for name in names.into_iter() {
            let Some(len) = u32::try_from(name.len()).ok().filter(|len| *len < 64) else {
                continue;
            };
            filter.lens |= 1 << len;
            let bit = prefix_bit(len, name_prefix(name.as_bytes()));
            filter.prefixes[(bit >> 6) as usize] |= 1 << (bit & 63);
        }
        filter
    }

    /// A filter that lets through what either lets through.
    #[must_use]
    pub fn union(self, other: Self) -> Self {
        let mut prefixes = self.prefixes;
        for (mine, theirs) in prefixes.iter_mut().zip(other.prefixes) {
            *mine |= theirs;
        }
        Self {
            lens: self.lens | other.lens,
            prefixes,
        }
    }

    /// Whether some listed name is `len` bytes long (checked before reading the name).
    #[inline(always)]
    #[must_use]
    pub fn length_listed(&self, len: u32) -> bool {
        len < 64 && self.lens & (1 << len) != 0
    }

    /// Whether a name of `len` bytes whose first eight bytes are `prefix` (zero past the name:
    /// [`mask_prefix`]) may be listed. False only when no listed name has this length and
    /// prefix bit.
    #[inline(always)]
    #[must_use]
    pub fn may_hold(&self, len: u32, prefix: u64) -> bool {
        if !self.length_listed(len) {
            return false;
        }
        let bit = prefix_bit(len, prefix);
        self.prefixes[(bit as usize >> 6) & 3] & (1 << (bit & 63)) != 0
    }
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)] // the names here are a few bytes long
mod tests {
    use super::*;

    const MINERS: [&str; 5] = ["xmrig", "minerd", "xmr-stak", "minergate", "nanominer"];

    #[test]
    fn every_listed_name_passes_and_lengths_are_exact() {
        let filter = NameFilter::of(MINERS);
        for name in MINERS {
            let len = name.len() as u32;
            assert!(filter.may_hold(len, name_prefix(name.as_bytes())), "{name}");
        }
        for len in 0..80 {
            assert_eq!(
                filter.length_listed(len),
                matches!(len, 5 | 6 | 8 | 9),
                "{len}"
            );
        }
    }

    #[test]
    fn most_library_names_of_a_listed_length_fail_at_their_prefix() {
        let filter = NameFilter::of(MINERS);
        // Nine bytes, like minergate and nanominer.
        for name in ["libc.so.6", "libm.so.6", "libz.so.1"] {
            let len = name.len() as u32;
            assert!(filter.length_listed(len));
            assert!(
                !filter.may_hold(len, name_prefix(name.as_bytes())),
                "{name}"
            );
        }
    }

    #[test]
    fn a_prefix_read_past_a_short_name_is_masked_to_the_name() {
        let filter = NameFilter::of(["xmrig"]);
        // The five bytes, the NUL, then whatever follows in the kernel's name storage.
        let raw = u64::from_le_bytes(*b"xmrig\0\x7f\x13");
        assert!(!filter.may_hold(5, raw));
        assert!(filter.may_hold(5, mask_prefix(raw, 5)));
        assert_eq!(mask_prefix(raw, 5), name_prefix(b"xmrig"));
        assert_eq!(mask_prefix(raw, 8), raw);
        assert_eq!(mask_prefix(raw, 0), 0);
    }

    #[test]
    fn a_union_passes_both_filters_names_and_long_names_are_left_out() {
        let old = NameFilter::of(["xmrig"]);
        let new = NameFilter::of(["cpuminer-multi"]);
        let both = old.union(new);
        for name in ["xmrig", "cpuminer-multi"] {
            assert!(
                both.may_hold(name.len() as u32, name_prefix(name.as_bytes())),
                "{name}"
            );
        }
        assert_eq!(NameFilter::of([]), NameFilter::default());
        assert_eq!(
            NameFilter::of(["x".repeat(64).as_str()]),
            NameFilter::default()
        );
        let longest = "y".repeat(63);
        assert!(NameFilter::of([longest.as_str()]).may_hold(63, name_prefix(longest.as_bytes())));
    }

    #[test]
    fn the_fallback_filter_lets_every_name_through() {
        for name in ["xmrig", "libc.so.6", "a", "y".repeat(63).as_str()] {
            let len = name.len() as u32;
            assert!(
                NameFilter::ALL.may_hold(len, name_prefix(name.as_bytes())),
                "{name}"
            );
        }
        assert!(
            !NameFilter::ALL.may_hold(64, 0),
            "longer names are never listed"
        );
        assert_eq!(
            crate::plan::PlanSettings::REPORT_ALL.exec_names,
            NameFilter::ALL
        );
    }
}
