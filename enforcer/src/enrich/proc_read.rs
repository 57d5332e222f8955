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

/// The entries of a NUL-separated block (one trailing NUL ignored; lossy UTF-8); a block that
/// is empty or only a NUL gives none.
pub(crate) fn nul_entries(bytes: &[u8]) -> Vec<String> {
    let block = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    if block.is_empty() {
        return Vec::new();
    }
    block
        .split(|&b| b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}
