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
    /// Two tracepoints that must share a layout do not.
    #[error(
        "tracepoints sys_enter_write and sys_enter_sendto place their arguments differently: {0:?} vs {1:?}"
    )]
    Layout([u32; 3], [u32; 3]),
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

fn offsets_of(root: &Path, tracepoint: &str, fields: [&str; 3]) -> Result<[u32; 3], TracefsError> {
    let path = root.join("events/syscalls").join(tracepoint).join("format");
    let text = fs::read_to_string(&path).map_err(|source| TracefsError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let mut out = [0u32; 3];
    for (slot, field) in out.iter_mut().zip(fields) {
        *slot = field_offset(&text, field).ok_or_else(|| TracefsError::MissingField {
            tracepoint: tracepoint.to_owned(),
            field: field.to_owned(),
        })?;
    }
    Ok(out)
}

/// Offsets of (fd, buffer, length) in the `sys_enter_write` and `sys_enter_sendto` records,
/// which the payload program reads with one layout.
pub fn send_arg_offsets() -> Result<[u32; 3], TracefsError> {
    let root = Path::new(TRACEFS);
    let write = offsets_of(root, "sys_enter_write", ["fd", "buf", "count"])?;
    let sendto = offsets_of(root, "sys_enter_sendto", ["fd", "buff", "len"])?;
    if write != sendto {
        return Err(TracefsError::Layout(write, sendto));
    }
    Ok(write)
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
}
