//! SHA-256 of an open file, bounded by a size cap. `sha2` picks the SHA-NI instructions at run
//! time where the CPU has them (through `cpufeatures`; no feature flag needed).

use std::{fs::File, io::Read as _};

use sha2::{Digest as _, Sha256};

use super::{error::Unavailable, key::FileKey};

/// A SHA-256 value.
pub type Sha256Value = [u8; 32];

/// Read size.
const CHUNK: usize = 128 * 1024;

/// Lowercase hex of a SHA-256 value (the form policies list).
pub fn hex(value: &Sha256Value) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(64);
    for byte in value {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    out
}

/// What hashing a file gave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hashed {
    /// The digest.
    pub sha256: Sha256Value,
    /// Bytes hashed.
    pub bytes: u64,
}

/// Hashes `file` from its current offset (a fresh fd: the start) to its end. `key` is the
/// file's identity taken before the read; the file is stat'ed again afterwards and a changed
/// identity (written while being read) makes the hash unavailable rather than wrong. More than
/// `cap` bytes: unavailable (too large).
pub fn sha256_file(file: &mut File, key: &FileKey, cap: u64) -> Result<Hashed, Unavailable> {
    if key.size > cap {
        return Err(Unavailable::TooLarge {
            size: key.size,
            cap,
        });
    }
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut bytes = 0u64;
    let mut limited = file.take(cap.saturating_add(1));
    loop {
        let n = limited
            .read(&mut buf)
            .map_err(|e| Unavailable::Read(e.kind()))?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        if bytes > cap {
            return Err(Unavailable::TooLarge { size: bytes, cap });
        }
        hasher.update(&buf[..n]);
    }
    let after = limited
        .into_inner()
        .metadata()
        .map_err(|e| Unavailable::Read(e.kind()))?;
    if FileKey::of(&after) != *key || bytes != key.size {
        return Err(Unavailable::Changed);
    }
    Ok(Hashed {
        sha256: hasher.finalize().into(),
        bytes,
    })
}
