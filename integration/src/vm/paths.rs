//! Where things live on the host: the workspace root, the kernel cache and the runner's own
//! cache directory under the cargo target directory.

use std::{
    path::{Path, PathBuf},
    time::SystemTime,
};

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

/// The newest file cargo built `binary` from (its dep-info, `<binary>.d`) that is newer than
/// `binary`: the binary is then stale, and a test would run code older than the tree (`cargo
/// test -p enforcer-integration` does not rebuild the engine). `None` when the binary is up to
/// date, or it or its dep-info cannot be read.
pub fn newer_dependency(binary: &Path) -> Option<PathBuf> {
    let built = std::fs::metadata(binary).and_then(|m| m.modified()).ok()?;
    let mut dep_info = binary.as_os_str().to_owned();
    dep_info.push(".d");
    let text = std::fs::read_to_string(dep_info).ok()?;
    let (_, deps) = text.lines().next()?.split_once(": ")?;
    let mut newest: Option<(SystemTime, PathBuf)> = None;
    for dep in dep_paths(deps) {
        if let Ok(time) = std::fs::metadata(&dep).and_then(|m| m.modified())
            && time > built
            && newest.as_ref().is_none_or(|(t, _)| time > *t)
        {
            newest = Some((time, dep));
        }
    }
    newest.map(|(_, path)| path)
}

/// The paths of a dep-info line's right-hand side: separated by spaces, a space inside a path
/// escaped as `\ `.
fn dep_paths(deps: &str) -> Vec<PathBuf> {
    let mut paths = Vec::new();
    let mut current = String::new();
    let mut chars = deps.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&' ') => current.push(chars.next().unwrap_or(' ')),
            ' ' => {
                if !current.is_empty() {
                    paths.push(PathBuf::from(std::mem::take(&mut current)));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        paths.push(PathBuf::from(current));
    }
    paths
}

/// Why the engine binary at `binary` must not be used, when it is older than what it was built
/// from (and was not chosen with `$ENFORCER_BIN`).
pub fn stale_engine_reason(binary: &Path) -> Option<String> {
    if super::preflight::env_nonempty(super::preflight::ENFORCER_BIN_ENV).is_some() {
        return None;
    }
    let newer = newer_dependency(binary)?;
    Some(format!(
        "{} is older than {}, which it is built from: rebuild it with `cargo build --release -p \
         enforcer` (or set {} to the binary to test)",
        binary.display(),
        newer.display(),
        super::preflight::ENFORCER_BIN_ENV
    ))
}

/// The engine binary to test ([`enforcer_binary`]), refused when it is not an executable
/// file or is stale ([`stale_engine_reason`]); `Ok(None)` when there is no build at all.
pub fn engine_under_test(root: &Path) -> Result<Option<PathBuf>, String> {
    let Some(path) = enforcer_binary(root) else {
        return Ok(None);
    };
    if !is_executable_file(&path) {
        return Err(format!(
            "{}={} is not an executable file",
            super::preflight::ENFORCER_BIN_ENV,
            path.display()
        ));
    }
    match stale_engine_reason(&path) {
        Some(why) => Err(why),
        None => Ok(Some(path)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::time::Duration;

    use super::*;

    fn touch(path: &Path, at: SystemTime) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"x").unwrap();
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(at)
            .unwrap();
    }

    #[test]
    fn a_dependency_newer_than_the_binary_makes_it_stale() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let now = SystemTime::now();
        let hour = Duration::from_secs(3600);
        let binary = root.join("target/release/enforcer");
        let (old, spaced) = (root.join("src/main.rs"), root.join("src/a b.rs"));
        touch(&binary, now - hour);
        touch(&old, now - 2 * hour);
        touch(&spaced, now - 2 * hour);
        touch(&root.join("src/unlisted.rs"), now);
        let dep_info = format!(
            "{}: {} {}\n",
            binary.display(),
            old.display(),
            spaced.display().to_string().replace(' ', "\\ ")
        );
        std::fs::write(root.join("target/release/enforcer.d"), dep_info).unwrap();
        assert_eq!(
            newer_dependency(&binary),
            None,
            "only what cargo listed counts"
        );
        touch(&spaced, now);
        assert_eq!(newer_dependency(&binary), Some(spaced));
        touch(&binary, now + hour);
        assert_eq!(newer_dependency(&binary), None);
        assert_eq!(newer_dependency(&root.join("no-binary")), None);
    }
}
