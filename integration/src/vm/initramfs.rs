//! The initramfs builder: stages busybox (with its applet symlinks), host binaries with every
//! shared library `ldd` lists (and the dynamic loader) at their host paths, extra files and
//! `/init` in a directory, then packs it with `cpio -o -H newc` piped into `gzip -1`.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};

use super::ldd::{self, LddError};

/// Errors while staging or packing the initramfs.
#[derive(Debug, thiserror::Error)]
pub enum InitramfsError {
    /// A file system operation on the host failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done (`copy`, `write`, ...).
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A guest path is not absolute or climbs with `..`.
    #[error("guest path {0} must be absolute and must not contain '..'")]
    GuestPath(PathBuf),
    /// A host tool (busybox, cpio, gzip) could not be started or failed.
    #[error("{tool} failed: {detail}")]
    Tool {
        /// The tool.
        tool: &'static str,
        /// Exit status or spawn error, and stderr.
        detail: String,
    },
    /// Shared-library discovery failed.
    #[error(transparent)]
    Ldd(#[from] LddError),
}

#[derive(Debug, Clone)]
enum Source {
    Host(PathBuf),
    Bytes(Vec<u8>),
}

#[derive(Debug, Clone)]
struct Entry {
    guest: PathBuf,
    source: Source,
    mode: u32,
    /// Executables get their shared libraries and are stripped of debug info when asked.
    executable: bool,
}

/// What goes into the image. Build it with the methods, then call [`InitramfsBuilder::build`].
#[derive(Debug, Clone)]
pub struct InitramfsBuilder {
    busybox: PathBuf,
    init: String,
    entries: Vec<Entry>,
    strip_debug: bool,
}

/// A packed image.
#[derive(Debug, Clone)]
pub struct Initramfs {
    /// The gzip-compressed newc cpio archive.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// The staging directory it was packed from (kept for inspection).
    pub staging: PathBuf,
}

impl InitramfsBuilder {
    /// Starts an image with the static `busybox` at `/bin/busybox` and `init` as `/init`.
    pub fn new(busybox: impl Into<PathBuf>, init: impl Into<String>) -> Self {
        Self {
            busybox: busybox.into(),
            init: init.into(),
            entries: Vec::new(),
            strip_debug: false,
        }
    }

    /// Adds the host executable `host` at `guest`, with the shared libraries it needs.
    pub fn binary(mut self, host: impl Into<PathBuf>, guest: impl Into<PathBuf>) -> Self {
        self.entries.push(Entry {
            guest: guest.into(),
            source: Source::Host(host.into()),
            mode: 0o755,
            executable: true,
        });
        self
    }

    /// Adds a copy of the host file `host` (not an executable: no libraries, never stripped)
    /// with `mode` at `guest`.
    pub fn host_file(
        mut self,
        host: impl Into<PathBuf>,
        guest: impl Into<PathBuf>,
        mode: u32,
    ) -> Self {
        self.entries.push(Entry {
            guest: guest.into(),
            source: Source::Host(host.into()),
            mode,
            executable: false,
        });
        self
    }

    /// Adds a file with the given contents and mode at `guest`.
    pub fn file(
        mut self,
        guest: impl Into<PathBuf>,
        contents: impl Into<Vec<u8>>,
        mode: u32,
    ) -> Self {
        self.entries.push(Entry {
            guest: guest.into(),
            source: Source::Bytes(contents.into()),
            mode,
            executable: false,
        });
        self
    }

    /// Adds the files of the host policy directory `host` (its top-level files and those of
    /// its `lists/`, the layout of `policy/default`) under `guest`.
    pub fn policy_dir(mut self, host: &Path, guest: &Path) -> Result<Self, InitramfsError> {
        for sub in ["", "lists"] {
            let dir = host.join(sub);
            for entry in fs::read_dir(&dir).map_err(io("read", &dir))? {
                let path = entry.map_err(io("read", &dir))?.path();
                if let (true, Some(name)) = (path.is_file(), path.file_name()) {
                    let contents = fs::read(&path).map_err(io("read", &path))?;
                    self = self.file(guest.join(sub).join(name), contents, 0o644);
                }
            }
        }
        Ok(self)
    }

    /// Strips debug sections from executables (`strip --strip-debug`) to keep the image small;
    /// symbols stay, so backtraces still name functions. Copies unchanged if `strip` fails.
    pub fn strip_debug(mut self, strip: bool) -> Self {
        self.strip_debug = strip;
        self
    }

    /// Stages everything in `<out>.d/` and packs it to `out`.
    pub fn build(&self, out: &Path) -> Result<Initramfs, InitramfsError> {
        let staging = out.with_extension("d");
        if staging.exists() {
            fs::remove_dir_all(&staging).map_err(io("remove", &staging))?;
        }
        for dir in [
            "bin", "dev", "etc", "proc", "sys", "tmp", "root", "run", "var/log", "usr/lib",
        ] {
            let path = staging.join(dir);
            fs::create_dir_all(&path).map_err(io("create", &path))?;
        }
        for (link, target) in [
            ("sbin", "bin"),
            ("usr/bin", "../bin"),
            ("usr/sbin", "../bin"),
        ] {
            symlink(target, &staging.join(link))?;
        }
        self.stage_busybox(&staging)?;
        let mut libraries: Vec<PathBuf> = Vec::new();
        for entry in &self.entries {
            let dest = guest_dest(&staging, &entry.guest)?;
            match &entry.source {
                Source::Host(host) => {
                    if entry.executable && self.strip_debug {
                        strip_or_copy(host, &dest)?;
                    } else {
                        copy(host, &dest)?;
                    }
                    if entry.executable {
                        for lib in ldd::shared_libraries(host)? {
                            if !libraries.contains(&lib) {
                                libraries.push(lib);
                            }
                        }
                    }
                }
                Source::Bytes(bytes) => write(&dest, bytes)?,
            }
            set_mode(&dest, entry.mode)?;
        }
        for lib in &libraries {
            let dest = guest_dest(&staging, lib)?;
            copy(lib, &dest)?;
            set_mode(&dest, 0o755)?;
        }
        let init = staging.join("init");
        write(&init, self.init.as_bytes())?;
        set_mode(&init, 0o755)?;
        pack(&staging, out)?;
        let size = fs::metadata(out).map_err(io("stat", out))?.len();
        Ok(Initramfs {
            path: out.to_path_buf(),
            size,
            staging,
        })
    }

    /// Copies busybox to /bin/busybox and links every applet it lists to it.
    fn stage_busybox(&self, staging: &Path) -> Result<(), InitramfsError> {
        let dest = staging.join("bin/busybox");
        copy(&self.busybox, &dest)?;
        set_mode(&dest, 0o755)?;
        let output = Command::new(&self.busybox)
            .arg("--list")
            .output()
            .map_err(|e| tool_error("busybox --list", e.to_string()))?;
        if !output.status.success() {
            return Err(tool_error(
                "busybox --list",
                format!(
                    "{}: {}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr)
                ),
            ));
        }
        for applet in String::from_utf8_lossy(&output.stdout).lines() {
            let applet = applet.trim();
            if applet.is_empty() || applet == "busybox" || applet.contains('/') {
                continue;
            }
            symlink("busybox", &staging.join("bin").join(applet))?;
        }
        Ok(())
    }
}

/// The staging path for an absolute guest path; its parent directories are created.
fn guest_dest(staging: &Path, guest: &Path) -> Result<PathBuf, InitramfsError> {
    let mut rel = PathBuf::new();
    let mut components = guest.components();
    if components.next() != Some(Component::RootDir) {
        return Err(InitramfsError::GuestPath(guest.to_path_buf()));
    }
    for component in components {
        match component {
            Component::Normal(part) => rel.push(part),
            Component::CurDir => {}
            _ => return Err(InitramfsError::GuestPath(guest.to_path_buf())),
        }
    }
    if rel.as_os_str().is_empty() {
        return Err(InitramfsError::GuestPath(guest.to_path_buf()));
    }
    let dest = staging.join(rel);
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).map_err(io("create", parent))?;
    }
    // A guest file replaces a busybox applet link of the same name.
    if dest.symlink_metadata().is_ok() {
        fs::remove_file(&dest).map_err(io("replace", &dest))?;
    }
    Ok(dest)
}

/// Runs `cpio -o -H newc` over the staging tree (sorted, owner root) into `gzip -1 > out`.
fn pack(staging: &Path, out: &Path) -> Result<(), InitramfsError> {
    let mut names = Vec::new();
    list_tree(staging, Path::new(""), &mut names)?;
    names.sort();
    let tmp = out.with_extension("tmp");
    let out_file = fs::File::create(&tmp).map_err(io("create", &tmp))?;
    let mut cpio = Command::new("cpio")
        .args(["-o", "-H", "newc", "-R", "0:0", "--quiet"])
        .current_dir(staging)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| tool_error("cpio", e.to_string()))?;
    let cpio_out = cpio
        .stdout
        .take()
        .ok_or_else(|| tool_error("cpio", "no stdout pipe".into()))?;
    let gzip = Command::new("gzip")
        .arg("-1")
        .stdin(Stdio::from(cpio_out))
        .stdout(Stdio::from(out_file))
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| tool_error("gzip", e.to_string()))?;
    if let Some(mut stdin) = cpio.stdin.take() {
        let mut list = String::new();
        for name in &names {
            list.push_str(&name.to_string_lossy());
            list.push('\n');
        }
        stdin
            .write_all(list.as_bytes())
            .map_err(|e| tool_error("cpio", format!("writing the file list: {e}")))?;
    }
    let cpio_result = cpio.wait_with_output();
    let gzip_result = gzip.wait_with_output();
    for (tool, result) in [("cpio", cpio_result), ("gzip", gzip_result)] {
        let output = result.map_err(|e| tool_error(tool, e.to_string()))?;
        if !output.status.success() {
            return Err(tool_error(
                tool,
                format!(
                    "{}: {}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
            ));
        }
    }
    fs::rename(&tmp, out).map_err(io("rename", &tmp))
}

/// Collects every path under `root/rel` (directories first), relative to `root`.
fn list_tree(root: &Path, rel: &Path, names: &mut Vec<PathBuf>) -> Result<(), InitramfsError> {
    let dir = root.join(rel);
    for entry in fs::read_dir(&dir).map_err(io("list", &dir))? {
        let entry = entry.map_err(io("list", &dir))?;
        let rel_path = rel.join(entry.file_name());
        names.push(rel_path.clone());
        let kind = entry.file_type().map_err(io("stat", &entry.path()))?;
        if kind.is_dir() {
            list_tree(root, &rel_path, names)?;
        }
    }
    Ok(())
}

fn strip_or_copy(host: &Path, dest: &Path) -> Result<(), InitramfsError> {
    let stripped = Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(dest)
        .arg(host)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if stripped { Ok(()) } else { copy(host, dest) }
}

fn copy(from: &Path, to: &Path) -> Result<(), InitramfsError> {
    fs::copy(from, to).map(|_| ()).map_err(io("copy", from))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), InitramfsError> {
    fs::write(path, bytes).map_err(io("write", path))
}

fn set_mode(path: &Path, mode: u32) -> Result<(), InitramfsError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io("chmod", path))
}

fn symlink(target: &str, link: &Path) -> Result<(), InitramfsError> {
    std::os::unix::fs::symlink(target, link).map_err(io("symlink", link))
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> InitramfsError {
    let path = path.to_path_buf();
    move |source| InitramfsError::Io {
        action,
        path,
        source,
    }
}

fn tool_error(tool: &'static str, detail: String) -> InitramfsError {
    InitramfsError::Tool { tool, detail }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_paths_must_be_absolute_and_plain() {
        let staging = std::env::temp_dir().join(format!("vm-guest-dest-{}", std::process::id()));
        assert!(guest_dest(&staging, Path::new("bin/x")).is_err());
        assert!(guest_dest(&staging, Path::new("/bin/../../x")).is_err());
        assert!(guest_dest(&staging, Path::new("/")).is_err());
        let ok = guest_dest(&staging, Path::new("/etc/enforcer/p.yaml"));
        assert!(ok.is_ok_and(|p| p == staging.join("etc/enforcer/p.yaml")));
        let _ = fs::remove_dir_all(&staging);
    }

    /// Packs a real image and lists it back with `cpio -t`.
    #[test]
    fn packs_binaries_libraries_busybox_and_init() -> Result<(), Box<dyn std::error::Error>> {
        let busybox = Path::new("/bin/busybox");
        if !busybox.is_file() || super::super::paths::find_in_path("cpio").is_none() {
            eprintln!("busybox-static or cpio missing; not packing");
            return Ok(());
        }
        let dir = std::env::temp_dir().join(format!("vm-initramfs-{}", std::process::id()));
        fs::create_dir_all(&dir)?;
        let out = dir.join("initrd.gz");
        let image = InitramfsBuilder::new(busybox, "#!/bin/busybox sh\necho hi\n")
            .binary("/bin/ls", "/bin/host-ls")
            .file("/etc/enforcer/policy.yaml", "version: 1\n", 0o644)
            .host_file("/bin/ls", "/lib/modules/6.1.0-x/msr.ko", 0o644)
            .strip_debug(true)
            .build(&out)?;
        assert!(image.size > 0);
        let listing = Command::new("sh")
            .arg("-c")
            .arg(format!("gzip -dc '{}' | cpio -t --quiet", out.display()))
            .output()?;
        let listing = String::from_utf8_lossy(&listing.stdout);
        for expected in [
            "init",
            "bin/busybox",
            "bin/sh",
            "bin/mount",
            "bin/poweroff",
            "bin/host-ls",
            "etc/enforcer/policy.yaml",
            "lib/modules/6.1.0-x/msr.ko",
            "lib64/ld-linux-x86-64.so.2",
        ] {
            assert!(
                listing.lines().any(|l| l == expected),
                "{expected} missing from the image"
            );
        }
        assert!(listing.lines().any(|l| l.ends_with("/libc.so.6")));
        fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
