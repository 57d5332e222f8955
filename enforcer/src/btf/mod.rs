//! Minimal reader for the kernel's BPF Type Format (BTF).
//!
//! This module owns turning the running kernel's BTF (normally
//! `/sys/kernel/btf/vmlinux`) into kernel struct member offsets, so that the
//! loader can hand them to the eBPF programs instead of hard-coding them.
//! It parses the header, the type section (every kind up to `ENUM64`) and the
//! string section as documented in the kernel's `Documentation/bpf/btf.rst`,
//! and resolves dotted member paths such as `"f_path.dentry"` inside a named
//! struct. It deliberately does nothing else: no CO-RE relocation, no type
//! printing, no split (module) BTF.
//!
//! All input is treated as untrusted: every read is length-checked and
//! malformed data yields a [`BtfError`], never a panic.
//!
//! ```no_run
//! # use std::path::Path;
//! # fn main() -> Result<(), enforcer::btf::BtfError> {
//! use enforcer::btf::{Btf, VMLINUX_BTF_PATH};
//! let btf = Btf::from_file(Path::new(VMLINUX_BTF_PATH))?;
//! let off = btf.member_offset("file", "f_path.dentry")?;
//! # let _ = off; Ok(()) }
//! ```

mod enums;
mod members;
mod parse;
#[cfg(test)]
mod tests;

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Where the running kernel exposes its own BTF.
pub const VMLINUX_BTF_PATH: &str = "/sys/kernel/btf/vmlinux";

/// [`Btf::from_file`] refuses files larger than this (64 MiB).
pub const MAX_BTF_FILE_SIZE: u64 = 64 * 1024 * 1024;

/// Parsed kernel BTF: types and strings, enough to resolve struct member offsets.
pub struct Btf {
    table: parse::TypeTable,
}

impl fmt::Debug for Btf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Btf")
            .field("types", &self.table.len())
            .finish_non_exhaustive()
    }
}

/// Errors from reading BTF or resolving member offsets.
#[derive(Debug, thiserror::Error)]
pub enum BtfError {
    /// The BTF file could not be opened or read.
    #[error("reading BTF from {path}: {source}")]
    Io {
        /// File that failed.
        path: PathBuf,
        /// Underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The BTF file exceeds [`MAX_BTF_FILE_SIZE`].
    #[error("BTF file {path} is larger than {limit} bytes")]
    TooLarge {
        /// File that was refused.
        path: PathBuf,
        /// The limit that was exceeded, in bytes.
        limit: u64,
    },
    /// The header magic is not `0xeB9F` read little-endian (this also covers
    /// big-endian BTF, whose magic reads as `0x9feb`).
    #[error("bad BTF magic {found:#06x} (expected little-endian 0xeb9f)")]
    BadMagic {
        /// The magic value found.
        found: u16,
    },
    /// The header version is not 1.
    #[error("unsupported BTF version {version} (expected 1)")]
    UnsupportedVersion {
        /// The version found.
        version: u8,
    },
    /// The header is structurally invalid.
    #[error("invalid BTF header: {reason}")]
    BadHeader {
        /// What is wrong.
        reason: &'static str,
    },
    /// The input ends before a structure it declares.
    #[error("BTF data truncated in {what}")]
    Truncated {
        /// Which part was cut short.
        what: &'static str,
    },
    /// A type record has a kind this reader does not know (0 or > 19).
    #[error("BTF type id {id} has unknown kind {kind}")]
    BadKind {
        /// Type id of the record.
        id: u32,
        /// The raw kind value.
        kind: u32,
    },
    /// A name offset points outside the string section.
    #[error("BTF string offset {offset} outside string section of {len} bytes")]
    BadStringOffset {
        /// The offending offset.
        offset: u32,
        /// Length of the string section.
        len: usize,
    },
    /// A type refers to a type id that does not exist.
    #[error("BTF refers to nonexistent type id {id}")]
    BadTypeId {
        /// The missing id.
        id: u32,
    },
    /// A typedef/modifier chain or anonymous-member nesting is too deep (or cyclic).
    #[error("BTF type chain too deep or cyclic at type id {id}")]
    TooDeep {
        /// Type id where the walk gave up.
        id: u32,
    },
    /// The member path is empty or has an empty component (e.g. `"a..b"`).
    #[error("invalid member path {0:?}")]
    InvalidPath(String),
    /// Members the programs read as one group are not side by side in this kernel
    /// (`enforcer_common::offsets::LAYOUT_REQUIRED`).
    #[error(
        "unsupported kernel struct layout (a kernel built with CONFIG_RANDSTRUCT?): these members are not side by side: {0}"
    )]
    LayoutUnsupported(String),
    /// No `enum` with this name exists.
    #[error("enum {0} not found in BTF")]
    EnumNotFound(String),
    /// The enum exists but has no such enumerator.
    #[error("enum {enum_name} has no enumerator {enumerator}")]
    EnumeratorNotFound {
        /// Enum that was searched.
        enum_name: String,
        /// The missing enumerator.
        enumerator: String,
    },
    /// No `struct` with this name exists (FWD declarations do not count).
    #[error("struct {0} not found in BTF")]
    StructNotFound(String),
    /// The struct exists but has no such member.
    #[error("struct {strukt} has no member {member}")]
    MemberNotFound {
        /// Struct that was searched.
        strukt: String,
        /// Member path up to and including the missing component.
        member: String,
    },
    /// A path component descends into something that is not an embedded
    /// struct/union (e.g. a pointer).
    #[error("in struct {strukt}, {path:?} is a {kind}, not an embedded struct/union")]
    NotAStruct {
        /// Struct that was searched.
        strukt: String,
        /// Path of the member that cannot be descended into.
        path: String,
        /// BTF kind of that member's type.
        kind: &'static str,
    },
    /// The member is a bitfield or is not byte aligned.
    #[error(
        "struct {strukt} member {member} is a bitfield (bit offset {bit_offset}, {bit_size} bits)"
    )]
    Bitfield {
        /// Struct that was searched.
        strukt: String,
        /// Member path.
        member: String,
        /// Bit offset from the start of the struct.
        bit_offset: u64,
        /// Bitfield width (0 if only the offset is unaligned).
        bit_size: u32,
    },
    /// The resolved byte offset does not fit in a `u32`.
    #[error("offset of struct {strukt} member {member} overflows u32")]
    OffsetOverflow {
        /// Struct that was searched.
        strukt: String,
        /// Member path.
        member: String,
    },
}

impl Btf {
    /// Reads and parses a whole BTF file, refusing files over [`MAX_BTF_FILE_SIZE`].
    pub fn from_file(path: &Path) -> Result<Btf, BtfError> {
        let io_err = |source| BtfError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io_err)?;
        // sysfs may report an inaccurate size, so bound the read itself too.
        let hint = file.metadata().map(|m| m.len()).unwrap_or(0);
        let hint = usize::try_from(hint.min(MAX_BTF_FILE_SIZE)).unwrap_or(0);
        let mut bytes = Vec::with_capacity(hint);
        file.take(MAX_BTF_FILE_SIZE + 1)
            .read_to_end(&mut bytes)
            .map_err(io_err)?;
        if u64::try_from(bytes.len()).map_or(true, |n| n > MAX_BTF_FILE_SIZE) {
            return Err(BtfError::TooLarge {
                path: path.to_path_buf(),
                limit: MAX_BTF_FILE_SIZE,
            });
        }
        Btf::parse(&bytes)
    }

    /// Parses an in-memory BTF blob (header, type section, string section).
    pub fn parse(bytes: &[u8]) -> Result<Btf, BtfError> {
        Ok(Btf {
            table: parse::TypeTable::parse(bytes)?,
        })
    }

    /// Number of types in the blob, including the implicit `void` (id 0).
    pub fn type_count(&self) -> usize {
        self.table.len()
    }

    /// Byte offset of `member_path` (dot-separated, e.g. `"f_path.dentry"` or
    /// `"d_name.name"`) inside `struct struct_name`.
    ///
    /// Follows embedded struct/union members (not pointers), looks through
    /// anonymous struct/union members transparently, skips
    /// typedef/const/volatile/restrict/type_tag modifiers when descending,
    /// handles the kind_flag bitfield encoding of member offsets, and refuses
    /// bitfield members. When several structs share the name, the first
    /// `STRUCT` (never a `FWD` or `UNION`) that has the member wins.
    pub fn member_offset(&self, struct_name: &str, member_path: &str) -> Result<u32, BtfError> {
        self.table.member_offset(struct_name, member_path)
    }

    /// Value of `enumerator` in `enum enum_name` (the first ENUM or ENUM64 of that name
    /// that has it).
    pub fn enum_value(&self, enum_name: &str, enumerator: &str) -> Result<i64, BtfError> {
        self.table.enum_value(enum_name, enumerator)
    }
}

#[cfg(test)]
mod vmlinux_tests {
    use super::{Btf, BtfError, VMLINUX_BTF_PATH};
    use std::path::Path;

    /// Resolves the offsets the enforcer needs against the running kernel.
    #[test]
    fn running_kernel_vmlinux() -> Result<(), BtfError> {
        let path = Path::new(VMLINUX_BTF_PATH);
        if !path.exists() {
            println!("SKIPPED: no /sys/kernel/btf/vmlinux");
            return Ok(());
        }
        let start = std::time::Instant::now();
        let btf = Btf::from_file(path)?;
        let parsed = start.elapsed();
        let wanted = [
            ("linux_binprm", "file"),
            ("linux_binprm", "filename"),
            ("file", "f_path.dentry"),
            ("file", "f_inode"),
            ("dentry", "d_name.name"),
            ("dentry", "d_name.len"),
            ("dentry", "d_parent"),
            ("task_struct", "real_parent"),
            ("task_struct", "tgid"),
            ("task_struct", "mm"),
            ("mm_struct", "arg_start"),
            ("mm_struct", "arg_end"),
            ("inode", "i_ino"),
        ];
        let mut got = std::collections::HashMap::new();
        for (s, m) in wanted {
            let o = btf.member_offset(s, m)?;
            println!("vmlinux offset {s}.{m} = {o}");
            got.insert(format!("{s}.{m}"), o);
        }
        let total = start.elapsed();
        println!(
            "vmlinux: {} types, parse {parsed:?}, parse + 13 lookups {total:?}",
            btf.type_count()
        );
        let g = |k: &str| got.get(k).copied().unwrap_or(0);
        for k in [
            "linux_binprm.filename",
            "file.f_inode",
            "dentry.d_name.name",
            "dentry.d_parent",
            "task_struct.real_parent",
            "task_struct.tgid",
            "task_struct.mm",
            "mm_struct.arg_start",
            "inode.i_ino",
        ] {
            assert_ne!(g(k), 0, "{k}");
        }
        assert!(g("mm_struct.arg_end") > g("mm_struct.arg_start"));
        assert_eq!(
            g("dentry.d_name.name"),
            g("dentry.d_name.len") + 4,
            "qstr layout"
        );
        assert!(g("task_struct.real_parent") > g("task_struct.tgid"));
        // Real kernel bitfields are refused; pointers are not followed.
        let bf = btf.member_offset("linux_binprm", "secureexec");
        println!("vmlinux linux_binprm.secureexec -> {bf:?}");
        assert!(matches!(bf, Err(BtfError::Bitfield { bit_size: 1, .. })));
        let ptr = btf.member_offset("file", "f_inode.i_ino");
        assert!(matches!(ptr, Err(BtfError::NotAStruct { kind: "PTR", .. })));
        // Each offset must lie inside its struct (size from a second lookup path).
        for (s, m) in wanted {
            let o = g(&format!("{s}.{m}"));
            let size = btf.table.struct_size(s).unwrap_or(0);
            assert!(o < size, "{s}.{m} = {o} not below sizeof = {size}");
        }
        Ok(())
    }
}
