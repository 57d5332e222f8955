//! Where things live on the host: the workspace root, the kernel cache and the runner's own
//! cache directory under the cargo target directory.

use std::path::{Path, PathBuf};

/// The workspace root: the parent of this crate's manifest directory.
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .map_or_else(|| manifest.to_path_buf(), Path::to_path_buf)
}

/// The directory holding one sub-directory per cached kernel (`<name>/vmlinuz`).
pub fn kernel_cache_dir(root: &Path) -> PathBuf {
    root.join(".cache").join("kernels")
}

/// The cargo target directory: `$CARGO_TARGET_DIR` when set, else `<workspace>/target`.
pub fn target_dir(root: &Path) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                root.join(dir)
            }
        }
        _ => root.join("target"),
    }
}

/// The runner's cache directory (initramfs images, console logs): `<target>/vm-cache`.
pub fn vm_cache_dir(root: &Path) -> PathBuf {
    target_dir(root).join("vm-cache")
}

/// The engine binary under test: `$ENFORCER_BIN` when set (returned as given, for the caller
/// to check), else the first executable `<target>/release/enforcer`, `<target>/debug/enforcer`.
/// Used by the host tests and the VM runner alike.
pub fn enforcer_binary(root: &Path) -> Option<PathBuf> {
    if let Some(path) = super::preflight::env_nonempty(super::preflight::ENFORCER_BIN_ENV) {
        return Some(PathBuf::from(path));
    }
    let target = target_dir(root);
    ["release", "debug"]
        .iter()
        .map(|profile| target.join(profile).join("enforcer"))
        .find(|path| is_executable_file(path))
}

/// Finds `program` in the directories of `$PATH`, like `command -v`.
pub fn find_in_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable_file(candidate))
}

/// True when `path` is a regular file with an execute bit.
pub fn is_executable_file(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
