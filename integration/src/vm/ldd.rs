//! Shared-library discovery: asks `ldd` which libraries (and which dynamic loader) a host binary
//! needs, so the initramfs can carry them at the same paths.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Errors from running or reading `ldd`.
#[derive(Debug, thiserror::Error)]
pub enum LddError {
    /// `ldd` could not be started.
    #[error("cannot run ldd on {binary}: {source}")]
    Spawn {
        /// The binary inspected.
        binary: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// `ldd` failed for a reason other than "not a dynamic executable".
    #[error("ldd {binary} failed: {stderr}")]
    Failed {
        /// The binary inspected.
        binary: PathBuf,
        /// What ldd printed on stderr.
        stderr: String,
    },
    /// A library could not be found on the host.
    #[error("{binary} needs {library}, which ldd cannot find")]
    NotFound {
        /// The binary inspected.
        binary: PathBuf,
        /// The library's soname.
        library: String,
    },
}

/// The absolute paths of the shared libraries and the dynamic loader `binary` needs; empty for
/// a static binary.
pub fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>, LddError> {
    let output = Command::new("ldd")
        .arg(binary)
        .output()
        .map_err(|source| LddError::Spawn {
            binary: binary.to_path_buf(),
            source,
        })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if is_static(&stdout) || is_static(&stderr) {
        return Ok(Vec::new());
    }
    if !output.status.success() {
        return Err(LddError::Failed {
            binary: binary.to_path_buf(),
            stderr: stderr.trim().to_owned(),
        });
    }
    parse(&stdout).map_err(|library| LddError::NotFound {
        binary: binary.to_path_buf(),
        library,
    })
}

fn is_static(text: &str) -> bool {
    text.contains("not a dynamic executable") || text.contains("statically linked")
}

/// Parses `ldd` output. Lines look like `libc.so.6 => /lib/.../libc.so.6 (0x...)`,
/// `/lib64/ld-linux-x86-64.so.2 (0x...)` or `linux-vdso.so.1 (0x...)` (virtual, skipped).
/// `Err` carries the soname of a library ldd reports as `not found`.
pub fn parse(output: &str) -> Result<Vec<PathBuf>, String> {
    let mut libs = Vec::new();
    for line in output.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let target = match line.split_once("=>") {
            Some((name, target)) => {
                let target = target.trim();
                if target.starts_with("not found") {
                    return Err(name.trim().to_owned());
                }
                target
            }
            None => line,
        };
        let path = target.split_whitespace().next().unwrap_or("");
        if path.starts_with('/') {
            let path = PathBuf::from(path);
            if !libs.contains(&path) {
                libs.push(path);
            }
        }
    }
    Ok(libs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_glibc_binary() {
        let out = "\tlinux-vdso.so.1 (0x00007ffd)\n\
                   \tlibgcc_s.so.1 => /lib/x86_64-linux-gnu/libgcc_s.so.1 (0x00007f1)\n\
                   \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f2)\n\
                   \t/lib64/ld-linux-x86-64.so.2 (0x00007f3)\n";
        assert_eq!(
            parse(out),
            Ok(vec![
                PathBuf::from("/lib/x86_64-linux-gnu/libgcc_s.so.1"),
                PathBuf::from("/lib/x86_64-linux-gnu/libc.so.6"),
                PathBuf::from("/lib64/ld-linux-x86-64.so.2"),
            ])
        );
    }

    #[test]
    fn missing_library_is_an_error() {
        let out = "\tlibfoo.so.1 => not found\n\tlibc.so.6 => /lib/libc.so.6 (0x1)\n";
        assert_eq!(parse(out), Err("libfoo.so.1".to_owned()));
    }

    #[test]
    fn host_binary_needs_its_loader() -> Result<(), LddError> {
        let libs = shared_libraries(Path::new("/bin/ls"))?;
        assert!(
            libs.iter()
                .any(|p| p.to_string_lossy().contains("ld-linux"))
        );
        assert!(libs.iter().all(|p| p.is_file()));
        Ok(())
    }

    #[test]
    fn static_busybox_needs_nothing() -> Result<(), LddError> {
        if !Path::new("/bin/busybox").is_file() {
            eprintln!("busybox-static not installed; nothing to check");
            return Ok(());
        }
        assert!(shared_libraries(Path::new("/bin/busybox"))?.is_empty());
        Ok(())
    }
}
