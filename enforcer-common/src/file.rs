//! File events (issue 4, FILE family) and the file watch plan: the [`FileRecord`] wire struct,
//! the operations, the path flags, and the prefix hash the kernel and the loader both compute.
//!
//! Watched paths are matched in the kernel by hashing the absolute path: at every `/` after
//! the first byte the hash of the bytes before it is looked up as a *directory prefix*
//! ([`FileWatchKey::exact`] 0), and at the end the hash of the whole path as an *exact* path
//! (`exact` 1). One hash step per byte and one map look-up per path component, no strings in
//! map keys.

/// Bytes of a path a [`FileRecord`] carries (and the kernel matches), NUL padded.
pub const FILE_PATH_LEN: usize = 256;
/// Path components the kernel walks up from a dentry; a deeper path is flagged truncated.
pub const FILE_DEPTH: usize = 24;

/// File operations ([`FileRecord::op`], [`FileWatchKey::op`]).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileOp {
    /// An open for writing (`O_WRONLY`/`O_RDWR`; with `O_CREAT`/`O_TRUNC` in the LSM tier).
    OpenWrite = 1,
    /// Any open, reads included (only when a rule watches reads of a path).
    OpenRead = 2,
    /// unlink / unlinkat.
    Unlink = 3,
    /// rename / renameat / renameat2 (both paths are matched).
    Rename = 4,
    /// chmod / fchmodat / fchmodat2 / fchmod (on a descriptor).
    Chmod = 5,
    /// chown / lchown / fchownat / fchown (on a descriptor).
    Chown = 6,
    /// A hard link: `path` is the new name, `new_path` the existing file.
    Link = 7,
    /// A symbolic link: `path` is the new name, `new_path` the link's text (as given).
    Symlink = 8,
    /// mkdir / mkdirat (`mode`: the mode asked for).
    Mkdir = 9,
    /// rmdir.
    Rmdir = 10,
    /// setxattr / lsetxattr / fsetxattr / setxattrat: `new_path` holds the attribute name.
    Setxattr = 11,
    /// utimensat / utimes / utime / futimesat (futimens on a descriptor too).
    Utimes = 12,
    /// truncate / ftruncate (lsm tier: an `O_TRUNC` open too).
    Truncate = 13,
    /// mount / move_mount: `path` is the mount point, `new_path` the source, `fstype` the type.
    Mount = 14,
    /// umount2: `path` is the mount point.
    Umount = 15,
}

impl FileOp {
    /// The operation of a raw value.
    pub const fn from_u32(value: u32) -> Option<Self> {
        match value {
            1 => Some(Self::OpenWrite),
            2 => Some(Self::OpenRead),
            3 => Some(Self::Unlink),
            4 => Some(Self::Rename),
            5 => Some(Self::Chmod),
            6 => Some(Self::Chown),
            7 => Some(Self::Link),
            8 => Some(Self::Symlink),
            9 => Some(Self::Mkdir),
            10 => Some(Self::Rmdir),
            11 => Some(Self::Setxattr),
            12 => Some(Self::Utimes),
            13 => Some(Self::Truncate),
            14 => Some(Self::Mount),
            15 => Some(Self::Umount),
            _ => None,
        }
    }
}

/// Path flag: the path is longer than [`FILE_PATH_LEN`] - 1 bytes or deeper than
/// [`FILE_DEPTH`] components; the record holds its start (never matched in the kernel).
pub const FILE_PATH_TRUNCATED: u32 = 1;
/// Bytes of the file system type a mount record carries ([`FileRecord::fstype`]), NUL padded.
pub const FILE_FSTYPE_LEN: usize = 16;

/// Path flag: the second path (`new_path`) is truncated.
pub const FILE_NEW_PATH_TRUNCATED: u32 = 2;
/// Path flag: the user gave a relative path; the kernel joined it to the working directory
/// or the directory descriptor (signal tier).
pub const FILE_PATH_RELATIVE: u32 = 4;
/// Path flag: the path holds a `.`, `..` or empty (`//`) component the kernel did not resolve
/// (signal tier: the path as written). The kernel reports such an event whether or not the
/// path as written is watched; userspace matches the rules on the cleaned path.
pub const FILE_PATH_DOTS: u32 = 8;
/// Path flag: the base directory of a relative path could not be read; the path is the
/// relative one as given.
pub const FILE_PATH_UNRESOLVED: u32 = 16;
/// Path flag: the kernel reported the event because its plan could not filter it (the event
/// matched no watched prefix, or its path could not be matched).
pub const FILE_UNFILTERED: u32 = 32;

/// A file event: emitted when the path is under a watched prefix (or the plan asks for every
/// file event), by the LSM file hooks (lsm tier) or the syscall tracepoints (signal, monitor).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileRecord {
    /// Common header; `kind == EventKind::File`.
    pub header: crate::event::EventHeader,
    /// A [`FileOp`] value.
    pub op: u32,
    /// `FILE_*` flags.
    pub flags: u32,
    /// `open(2)` flags (opens; in the signal tier the open file's `f_flags`, which no longer
    /// hold `O_CREAT`/`O_TRUNC`).
    pub open_flags: u32,
    /// New mode bits (chmod), or the file mode (opens), else 0.
    pub mode: u32,
    /// New owner (chown; `u32::MAX` = unchanged).
    pub uid: u32,
    /// New group (chown; `u32::MAX` = unchanged).
    pub gid: u32,
    /// Valid bytes in `path`.
    pub path_len: u32,
    /// Valid bytes in `new_path`.
    pub new_path_len: u32,
    /// The path acted on (absolute unless `FILE_PATH_UNRESOLVED`): the new name of a link,
    /// the mount point of a mount.
    pub path: [u8; FILE_PATH_LEN],
    /// The second path or string: the new path of a rename, the existing file of a hard link,
    /// the text of a symlink, the attribute name of a setxattr, the source of a mount.
    pub new_path: [u8; FILE_PATH_LEN],
    /// The task's comm.
    pub comm: [u8; crate::event::COMM_LEN],
    /// The file system type of a mount (NUL padded, possibly cut), else zeros.
    pub fstype: [u8; FILE_FSTYPE_LEN],
}

/// The read-only global [`crate::maps::GLOBAL_PATH_SYSCALLS`]: this architecture's numbers of
/// the path syscalls added for issue 4 (the first ones are in `KernelOffsets`). A global of its
/// own, read field by field, so the programs that never look at it (every one but the path
/// tracepoint) do not copy it with each `offsets()` read.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PathSyscalls {
    /// Number of `link`.
    pub link: u32,
    /// Number of `linkat`.
    pub linkat: u32,
    /// Number of `symlink`.
    pub symlink: u32,
    /// Number of `symlinkat`.
    pub symlinkat: u32,
    /// Number of `mkdir`.
    pub mkdir: u32,
    /// Number of `mkdirat`.
    pub mkdirat: u32,
    /// Number of `rmdir`.
    pub rmdir: u32,
    /// Number of `setxattr`.
    pub setxattr: u32,
    /// Number of `lsetxattr`.
    pub lsetxattr: u32,
    /// Number of `fsetxattr`.
    pub fsetxattr: u32,
    /// Number of `setxattrat`.
    pub setxattrat: u32,
    /// Number of `utimensat`.
    pub utimensat: u32,
    /// Number of `utimes`.
    pub utimes: u32,
    /// Number of `utime`.
    pub utime: u32,
    /// Number of `futimesat`.
    pub futimesat: u32,
    /// Number of `truncate`.
    pub truncate: u32,
    /// Number of `ftruncate`.
    pub ftruncate: u32,
    /// Number of `mount`.
    pub mount: u32,
    /// Number of `umount2`.
    pub umount2: u32,
    /// Number of `move_mount`.
    pub move_mount: u32,
    /// Number of `fchmod`.
    pub fchmod: u32,
    /// Number of `fchown`.
    pub fchown: u32,
    /// Number of `fchmodat2`.
    pub fchmodat2: u32,
    /// Padding to a multiple of 8 bytes.
    pub _pad: u32,
}

impl PathSyscalls {
    /// Every number 0: the kernel object's initial value, replaced by the loader before load.
    pub const ZERO: Self = Self {
        link: 0,
        linkat: 0,
        symlink: 0,
        symlinkat: 0,
        mkdir: 0,
        mkdirat: 0,
        rmdir: 0,
        setxattr: 0,
        lsetxattr: 0,
        fsetxattr: 0,
        setxattrat: 0,
        utimensat: 0,
        utimes: 0,
        utime: 0,
        futimesat: 0,
        truncate: 0,
        ftruncate: 0,
        mount: 0,
        umount2: 0,
        move_mount: 0,
        fchmod: 0,
        fchown: 0,
        fchmodat2: 0,
        _pad: 0,
    };
}

const _: () = assert!(core::mem::size_of::<PathSyscalls>() == 4 * 24);

/// Key of `FILE_WATCH`: a watched path by the hash of its bytes ([`path_hash`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FileWatchKey {
    /// [`path_hash`] of the watched path, without a trailing `/`.
    pub hash: u64,
    /// A [`FileOp`] value.
    pub op: u32,
    /// 1: the path itself only; 0: everything below it (a directory prefix).
    pub exact: u32,
}

/// FNV-1a offset basis.
pub const PATH_HASH_INIT: u64 = 0xcbf2_9ce4_8422_2325;
/// FNV-1a prime.
const PATH_HASH_PRIME: u64 = 0x0000_0100_0000_01b3;

/// One FNV-1a step.
#[inline(always)]
pub const fn path_hash_step(hash: u64, byte: u8) -> u64 {
    (hash ^ byte as u64).wrapping_mul(PATH_HASH_PRIME)
}

/// FNV-1a hash of `bytes` (what the kernel computes byte by byte).
pub const fn path_hash(bytes: &[u8]) -> u64 {
    let mut h = PATH_HASH_INIT;
    let mut i = 0;
    while i < bytes.len() {
        h = path_hash_step(h, bytes[i]);
        i += 1;
    }
    h
}

/// 64-bit words of [`DirBits`]: 65,536 bits.
pub const DIR_BITS_WORDS: usize = 1024;

/// The value of `FILE_DIR_BITS` (slot 0): one bit per [`path_hash`] of a directory
/// `FILE_WATCH_DIRS` lists, at [`DirBits::position`]. The kernel's directory filter reads it in
/// place of the hash map: a clear bit means "not listed" (drop the open), a set bit means
/// "listed, or another part sharing the bit" (walk on). A shared bit only costs the walk; it
/// never drops a watched path. An unlisted part shares a bit with odds of (entries listed) in
/// 65,536: `policy/default`'s 35 watched paths list 79 entries (counted 2026-12-02), about
/// one part in 830.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirBits {
    /// Bit `position(hash)` of word `position(hash).0`.
    pub words: [u64; DIR_BITS_WORDS],
}

impl DirBits {
    /// No directory listed.
    pub const EMPTY: Self = Self {
        words: [0; DIR_BITS_WORDS],
    };

    /// The word index (below [`DIR_BITS_WORDS`]) and bit mask of `hash`: its two halves
    /// folded, so the bit depends on every byte hashed (FNV-1a's low bits depend only on
    /// the low bits of each step).
    #[inline(always)]
    #[allow(clippy::cast_possible_truncation)] // masked below DIR_BITS_WORDS * 64
    pub const fn position(hash: u64) -> (usize, u64) {
        let bit = (hash ^ (hash >> 32)) & (DIR_BITS_WORDS as u64 * 64 - 1);
        ((bit >> 6) as usize, 1 << (bit & 63))
    }

    /// Sets the bit of `hash`.
    pub fn insert(&mut self, hash: u64) {
        let (word, mask) = Self::position(hash);
        self.words[word] |= mask;
    }

    /// Whether the bit of `hash` is set.
    #[inline(always)]
    pub fn contains(&self, hash: u64) -> bool {
        let (word, mask) = Self::position(hash);
        // `position` already masks `word` below DIR_BITS_WORDS; the comparison is kept for
        // the BPF verifier, which must see the index bounded where the kernel program loads
        // the word (and so the compiler has no out-of-bounds panic path to emit).
        word < DIR_BITS_WORDS && self.words[word] & mask != 0
    }
}

const _: () = assert!(
    core::mem::size_of::<FileRecord>() == 64 + 32 + 2 * FILE_PATH_LEN + 16 + FILE_FSTYPE_LEN
);
const _: () = assert!(core::mem::offset_of!(FileRecord, path) == 96);
const _: () = assert!(core::mem::offset_of!(FileRecord, new_path) == 96 + FILE_PATH_LEN);
const _: () = assert!(core::mem::size_of::<FileWatchKey>() == 16);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_round_trip() {
        for op in 1..=15 {
            assert_eq!(FileOp::from_u32(op).map(|o| o as u32), Some(op));
        }
        assert_eq!(FileOp::from_u32(0), None);
        assert_eq!(FileOp::from_u32(16), None);
    }

    #[test]
    fn hash_is_fnv1a() {
        assert_eq!(path_hash(b""), PATH_HASH_INIT);
        // FNV-1a 64 of "a".
        assert_eq!(path_hash(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_ne!(path_hash(b"/etc"), path_hash(b"/etc/"));
    }

    #[test]
    fn dir_bits_hold_what_was_inserted() {
        let mut bits = DirBits::EMPTY;
        let listed: [&[u8]; 3] = [b"/etc", b"/etc/cron.d", b"/etc/cron.d/"];
        for dir in listed {
            bits.insert(path_hash(dir));
        }
        for dir in listed {
            assert!(bits.contains(path_hash(dir)));
        }
        assert!(!bits.contains(path_hash(b"/tmp")));
        assert_eq!(
            bits.words.iter().map(|w| w.count_ones()).sum::<u32>(),
            3,
            "three distinct bits"
        );
    }

    #[test]
    fn dir_bit_positions_use_the_high_half_too() {
        // Hashes differing only above bit 31 land on different bits.
        assert_ne!(DirBits::position(1), DirBits::position(1 | 1 << 40));
        let (word, _) = DirBits::position(u64::MAX);
        assert!(word < DIR_BITS_WORDS);
    }
}
