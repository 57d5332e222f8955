//! Bounded reads of `/proc` files and the NUL-separated blocks they hold (`cmdline`,
//! `environ`): shared by the process cache's loader and the exec-block completion.

use std::{io::Read as _, path::Path};

/// Reads at most `max` bytes of a file; `None` when it cannot be opened or read.
pub(crate) fn read_bounded(path: &Path, max: u64) -> Option<Vec<u8>> {
    let file = std::fs::File::open(path).ok()?;
    let mut buf = Vec::new();
    file.take(max).read_to_end(&mut buf).ok()?;
    Some(buf)
}

/// The entries of a NUL-separated block (one trailing NUL ignored; lossy UTF-8): an empty
/// block gives none, a lone NUL one empty entry (an `argv` of `[""]`). The exec record's
/// argument and environment blocks and `/proc`'s `cmdline` and `environ` all split here.
pub(crate) fn nul_entries(bytes: &[u8]) -> Vec<String> {
    nul_entry_bytes(bytes)
        .map(crate::pipeline::exec_event::lossy)
        .collect()
}

/// The entries of a NUL-separated block as bytes, split as [`nul_entries`] splits them.
pub(crate) fn nul_entry_bytes(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let block = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    // An empty block has no entry (`split` would give one empty entry).
    block
        .split(|&b| b == 0)
        .take(if bytes.is_empty() { 0 } else { usize::MAX })
}

#[cfg(test)]
mod tests {
    use super::nul_entries;

    #[test]
    fn blocks_split_at_each_nul_with_one_trailing_nul_ignored() {
        assert!(nul_entries(b"").is_empty());
        assert_eq!(nul_entries(b"\0"), [""]);
        assert_eq!(nul_entries(b"a\0b"), ["a", "b"]);
        assert_eq!(nul_entries(b"a\0b\0"), ["a", "b"]);
        assert_eq!(nul_entries(b"a\0\0"), ["a", ""]);
        assert_eq!(nul_entries(b"\xff\0"), ["\u{fffd}"]);
    }
}
