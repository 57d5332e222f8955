//! Why a hash is not available. Never a reason to allow: a rule on the hash simply does not
//! match, and name, path and argument rules decide as they would without it.

use std::io::ErrorKind;

/// Why an executable was not hashed (the `exec.file.hash.reason` of the event).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    /// The file is larger than the configured cap.
    #[error("too large: {size} bytes, cap {cap}")]
    TooLarge {
        /// Its size.
        size: u64,
        /// The cap.
        cap: u64,
    },
    /// The process exited before its executable could be opened, and its path could not be
    /// tied to the file the kernel executed.
    #[error("process gone: {0}")]
    Gone(&'static str),
    /// Opening or reading the file failed.
    #[error("read error: {0}")]
    Read(ErrorKind),
    /// The file changed while it was read.
    #[error("the file changed while it was hashed")]
    Changed,
    /// The byte budget is spent (an exec storm of distinct files).
    #[error("hash budget exhausted")]
    Budget,
    /// Too many hashes are queued.
    #[error("hash queue full")]
    QueueFull,
    /// The engine stopped before the hash was done.
    #[error("engine stopping")]
    Stopping,
}
