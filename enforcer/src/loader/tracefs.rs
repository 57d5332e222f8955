//! tracefs: mounted when it is not (aya attaches tracepoints through it, and the syscall
//! tracepoints' record layouts are read from their `format` files rather than assumed).

use std::{fs, io, path::Path};

/// Where the engine expects tracefs.
pub const TRACEFS: &str = "/sys/kernel/tracing";

/// Errors reading tracepoint formats.
#[derive(Debug, thiserror::Error)]
pub enum TracefsError {
    /// tracefs is not mounted and could not be mounted.
    #[error("tracefs is not available at {TRACEFS} and mounting it failed: {0}")]
    Mount(io::Error),
    /// A format file could not be read.
    #[error("cannot read tracepoint format {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: io::Error,
    },
    /// A field is missing from a format file.
    #[error("tracepoint {tracepoint} has no field {field} in its format")]
    MissingField {
        /// The tracepoint.
        tracepoint: String,
        /// The field.
        field: String,
    },
    /// A tracepoint places a syscall argument where the shared layout does not expect it.
    #[error(
        "tracepoint {tracepoint} has {field} at offset {found}, expected {expected} (syscall arguments 8 bytes apart)"
    )]
    Layout {
        /// The tracepoint.
        tracepoint: String,
        /// The field.
        field: String,
        /// Its offset in the format file.
        found: u32,
        /// The offset the shared layout gives it.
        expected: u32,
    },
}

/// Mounts tracefs at [`TRACEFS`] unless it is already there (a non-empty directory).
pub fn ensure_mounted() -> Result<(), TracefsError> {
    let populated = fs::read_dir(TRACEFS).is_ok_and(|mut d| d.next().is_some());
    if populated {
        return Ok(());
    }
    nix::mount::mount(
        Some("tracefs"),
        TRACEFS,
        Some("tracefs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .map_err(|e| TracefsError::Mount(e.into()))
}

/// The byte offset of `field` in a tracepoint `format` file's text.
pub fn field_offset(format: &str, field: &str) -> Option<u32> {
    format.lines().find_map(|line| {
        let line = line.trim();
        let decl = line.strip_prefix("field:")?.split(';').next()?;
        let name = decl.rsplit([' ', '*']).next()?;
        if name != field {
            return None;
        }
        let offset = line
            .split(';')
            .find_map(|part| part.trim().strip_prefix("offset:"))?;
        offset.trim().parse().ok()
    })
}

/// The syscall tracepoints the programs read, with their argument names in order.
pub const SYSCALL_TRACEPOINTS: &[(&str, &[&str])] = &[
    ("sys_enter_write", &["fd", "buf", "count"]),
    (
        "sys_enter_sendto",
        &["fd", "buff", "len", "flags", "addr", "addr_len"],
    ),
    ("sys_enter_sendmsg", &["fd", "msg", "flags"]),
    ("sys_enter_sendmmsg", &["fd", "mmsg", "vlen", "flags"]),
    ("sys_enter_writev", &["fd", "vec", "vlen"]),
    ("sys_enter_connect", &["fd", "uservaddr", "addrlen"]),
    ("sys_enter_bind", &["fd", "umyaddr", "addrlen"]),
    // Exit records: the return value sits where the first argument of an enter record does.
    ("sys_exit_accept", &["ret"]),
    ("sys_exit_accept4", &["ret"]),
    ("sys_exit_open", &["ret"]),
    ("sys_exit_openat", &["ret"]),
    ("sys_exit_openat2", &["ret"]),
    ("sys_exit_creat", &["ret"]),
    ("sys_enter_unlink", &["pathname"]),
    ("sys_enter_unlinkat", &["dfd", "pathname", "flag"]),
    ("sys_enter_rename", &["oldname", "newname"]),
    (
        "sys_enter_renameat",
        &["olddfd", "oldname", "newdfd", "newname"],
    ),
    (
        "sys_enter_renameat2",
        &["olddfd", "oldname", "newdfd", "newname", "flags"],
    ),
    ("sys_enter_chmod", &["filename", "mode"]),
    ("sys_enter_fchmodat", &["dfd", "filename", "mode"]),
    ("sys_enter_chown", &["filename", "user", "group"]),
    ("sys_enter_lchown", &["filename", "user", "group"]),
    (
        "sys_enter_fchownat",
        &["dfd", "filename", "user", "group", "flag"],
    ),
];

/// Checks that the arguments of `format` (tracepoint `name`) are 8 bytes apart from the
/// first one and returns the first one's offset.
pub fn check_layout(name: &str, format: &str, args: &[&str]) -> Result<u32, TracefsError> {
    let mut base = None;
    for (field, delta) in args.iter().zip((0u32..).step_by(8)) {
        let found = field_offset(format, field).ok_or_else(|| TracefsError::MissingField {
            tracepoint: name.to_owned(),
            field: (*field).to_owned(),
        })?;
        let base = *base.get_or_insert(found);
        let expected = base + delta;
        if found != expected {
            return Err(TracefsError::Layout {
                tracepoint: name.to_owned(),
                field: (*field).to_owned(),
                found,
                expected,
            });
        }
    }
    Ok(base.unwrap_or(0))
}

/// The shared layout of the syscall tracepoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyscallLayout {
    /// Offset of `__syscall_nr` in every record.
    pub nr: u32,
    /// Offset of the first syscall argument in every record.
    pub args: u32,
}

/// Reads every tracepoint of [`SYSCALL_TRACEPOINTS`] and checks that they share one layout
/// (`__syscall_nr` and the arguments at the same offsets).
pub fn syscall_layout() -> Result<SyscallLayout, TracefsError> {
    let root = Path::new(TRACEFS).join("events/syscalls");
    let mut shared: Option<SyscallLayout> = None;
    for (name, args) in SYSCALL_TRACEPOINTS {
        let path = root.join(name).join("format");
        let text = fs::read_to_string(&path).map_err(|source| TracefsError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let layout = SyscallLayout {
            nr: check_layout(name, &text, &["__syscall_nr"])?,
            args: check_layout(name, &text, args)?,
        };
        if let Some(expected) = shared
            && expected != layout
        {
            let (field, found, expected) = if expected.nr == layout.nr {
                (args[0], layout.args, expected.args)
            } else {
                ("__syscall_nr", layout.nr, expected.nr)
            };
            return Err(TracefsError::Layout {
                tracepoint: (*name).to_owned(),
                field: field.to_owned(),
                found,
                expected,
            });
        }
        shared = Some(layout);
    }
    shared.ok_or_else(|| TracefsError::MissingField {
        tracepoint: "syscalls".to_owned(),
        field: "sys_enter_*".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const WRITE_FORMAT: &str = "name: sys_enter_write\nID: 840\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;\n\tfield:unsigned int fd;\toffset:16;\tsize:8;\tsigned:0;\n\tfield:const char * buf;\toffset:24;\tsize:8;\tsigned:0;\n\tfield:size_t count;\toffset:32;\tsize:8;\tsigned:0;\n";

    #[test]
    fn fields_are_found_by_exact_name() {
        assert_eq!(field_offset(WRITE_FORMAT, "fd"), Some(16));
        assert_eq!(field_offset(WRITE_FORMAT, "buf"), Some(24));
        assert_eq!(field_offset(WRITE_FORMAT, "count"), Some(32));
        assert_eq!(field_offset(WRITE_FORMAT, "__syscall_nr"), Some(8));
        assert_eq!(field_offset(WRITE_FORMAT, "bu"), None);
        assert_eq!(field_offset(WRITE_FORMAT, "len"), None);
    }

    #[test]
    fn layouts_are_checked_argument_by_argument() {
        assert!(matches!(
            check_layout("w", WRITE_FORMAT, &["fd", "buf", "count"]),
            Ok(16)
        ));
        assert!(matches!(
            check_layout("w", WRITE_FORMAT, &["fd", "count"]),
            Err(TracefsError::Layout {
                found: 32,
                expected: 24,
                ..
            })
        ));
        assert!(matches!(
            check_layout("w", WRITE_FORMAT, &["fd", "nope"]),
            Err(TracefsError::MissingField { .. })
        ));
    }

    #[test]
    fn running_kernel_formats_share_the_layout() {
        if !Path::new(TRACEFS).join("events/syscalls").exists() {
            eprintln!("SKIPPED: tracefs not mounted at {TRACEFS} (needs root to mount)");
            return;
        }
        let layout = syscall_layout();
        assert!(
            matches!(layout, Ok(SyscallLayout { nr: 8, args: 16 })),
            "{layout:?}"
        );
    }
}
