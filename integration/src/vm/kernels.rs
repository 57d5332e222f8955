//! Kernel discovery: every `<workspace>/.cache/kernels/<name>/vmlinuz` (downloaded by
//! `scripts/setup`), with the Debian package named in `<name>/package`, the package's msr and
//! socket diagnostics modules (`<name>/msr.ko`, `inet_diag.ko`, `tcp_diag.ko`, decompressed)
//! and its module release (`<name>/release`, what `uname -r` says in the guest), sorted by
//! version.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

/// Errors while listing the kernel cache.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// The cache directory exists but cannot be listed.
    #[error("cannot list kernel cache {path}: {source}")]
    ListCache {
        /// The directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// One bootable kernel image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kernel {
    /// The cache directory's name, e.g. `6.1`.
    pub name: String,
    /// The kernel image.
    pub vmlinuz: PathBuf,
    /// The Debian package it came from, when the cache recorded it.
    pub package: Option<String>,
    /// The kernel's release (`uname -r`, the name of its module directory), when cached.
    pub release: Option<String>,
    /// The package's msr module (uncompressed), when cached (catalog F7, case `lsm_msr`).
    pub msr_module: Option<PathBuf>,
    /// The package's socket diagnostics modules (`layout::DIAG_MODULES`, in load order), when
    /// all are cached (the signal-tier case); empty otherwise.
    pub diag_modules: Vec<PathBuf>,
}

impl Kernel {
    /// The package name, or `unknown package`.
    pub fn package_label(&self) -> &str {
        self.package.as_deref().unwrap_or("unknown package")
    }
}

/// Lists the kernels under `cache_dir`, sorted by version (`6.1` < `6.12` < `7.2`).
///
/// A missing cache directory gives an empty list; sub-directories without a `vmlinuz` are
/// ignored.
pub fn discover(cache_dir: &Path) -> Result<Vec<Kernel>, KernelError> {
    let entries = match std::fs::read_dir(cache_dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(KernelError::ListCache {
                path: cache_dir.to_path_buf(),
                source,
            });
        }
    };
    let mut kernels = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| KernelError::ListCache {
            path: cache_dir.to_path_buf(),
            source,
        })?;
        let dir = entry.path();
        let vmlinuz = dir.join("vmlinuz");
        if !vmlinuz.is_file() {
            continue;
        }
        let msr_module = Some(dir.join("msr.ko")).filter(|path| path.is_file());
        let diag_modules: Vec<PathBuf> = crate::vm::layout::DIAG_MODULES
            .iter()
            .map(|name| dir.join(format!("{name}.ko")))
            .collect();
        let diag_modules = if diag_modules.iter().all(|path| path.is_file()) {
            diag_modules
        } else {
            Vec::new()
        };
        kernels.push(Kernel {
            name: entry.file_name().to_string_lossy().into_owned(),
            vmlinuz,
            package: first_line(&dir.join("package")),
            release: first_line(&dir.join("release")).filter(|r| is_release_name(r)),
            msr_module,
            diag_modules,
        });
    }
    kernels.sort_by(|a, b| compare_versions(&a.name, &b.name));
    Ok(kernels)
}

/// The first line of the text file at `path`, trimmed; `None` when absent or blank.
fn first_line(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| text.lines().next().map(|line| line.trim().to_owned()))
        .filter(|text| !text.is_empty())
}

/// A release usable as one guest path component (`6.12.117+deb13-cloud-amd64`): no `/`, not
/// `.` or `..`, printable ASCII.
fn is_release_name(release: &str) -> bool {
    !matches!(release, "." | "..")
        && release
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+-~".contains(c))
}

/// Keeps the kernels named in `filter` (comma-separated, e.g. `6.1,6.12`; `None` or blank keeps
/// all). Returns the kept kernels and the requested names that are not cached.
pub fn select(kernels: Vec<Kernel>, filter: Option<&str>) -> (Vec<Kernel>, Vec<String>) {
    let wanted: Vec<String> = filter
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect();
    if wanted.is_empty() {
        return (kernels, Vec::new());
    }
    let missing = wanted
        .iter()
        .filter(|name| !kernels.iter().any(|k| &k.name == *name))
        .cloned()
        .collect();
    let kept = kernels
        .into_iter()
        .filter(|k| wanted.contains(&k.name))
        .collect();
    (kept, missing)
}

/// Orders names like version numbers: runs of digits compare numerically, the rest as text.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let (ka, kb) = (version_key(a), version_key(b));
    ka.cmp(&kb).then_with(|| a.cmp(b))
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Part {
    Num(u64),
    Text(String),
}

fn version_key(name: &str) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut chars = name.chars().peekable();
    while let Some(&c) = chars.peek() {
        let digit = c.is_ascii_digit();
        let mut run = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_ascii_digit() != digit {
                break;
            }
            run.push(c);
            chars.next();
        }
        parts.push(if digit {
            Part::Num(run.parse().unwrap_or(u64::MAX))
        } else {
            Part::Text(run)
        });
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_numerically() {
        let mut names = vec!["7.2", "6.12", "6.1", "6.9"];
        names.sort_by(|a, b| compare_versions(a, b));
        assert_eq!(names, ["6.1", "6.9", "6.12", "7.2"]);
    }

    #[test]
    fn discover_lists_only_dirs_with_vmlinuz() -> Result<(), Box<dyn std::error::Error>> {
        let dir = std::env::temp_dir().join(format!("vm-kernels-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (name, image, package, release) in [
            (
                "6.12",
                true,
                Some("pkg-612\n"),
                Some("6.12.117+deb13-cloud-amd64\n"),
            ),
            ("6.1", true, None, Some("../etc\n")),
            ("empty", false, None, None),
        ] {
            std::fs::create_dir_all(dir.join(name))?;
            if image {
                std::fs::write(dir.join(name).join("vmlinuz"), b"image")?;
            }
            if let Some(p) = package {
                std::fs::write(dir.join(name).join("package"), p)?;
            }
            if let Some(r) = release {
                std::fs::write(dir.join(name).join("release"), r)?;
                std::fs::write(dir.join(name).join("msr.ko"), b"module")?;
                std::fs::write(dir.join(name).join("inet_diag.ko"), b"module")?;
                if name == "6.12" {
                    std::fs::write(dir.join(name).join("tcp_diag.ko"), b"module")?;
                }
            }
        }
        let kernels = discover(&dir)?;
        std::fs::remove_dir_all(&dir)?;
        let names: Vec<&str> = kernels.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(names, ["6.1", "6.12"]);
        assert_eq!(kernels[0].package, None);
        assert_eq!(kernels[1].package.as_deref(), Some("pkg-612"));
        assert_eq!(
            kernels[1].release.as_deref(),
            Some("6.12.117+deb13-cloud-amd64")
        );
        assert_eq!(kernels[1].msr_module, Some(dir.join("6.12/msr.ko")));
        assert_eq!(
            kernels[1].diag_modules,
            [dir.join("6.12/inet_diag.ko"), dir.join("6.12/tcp_diag.ko")]
        );
        // One of the two is not a usable set.
        assert!(kernels[0].diag_modules.is_empty());
        // A release that is not one plain path component is not trusted.
        assert_eq!(kernels[0].release, None);
        Ok(())
    }

    #[test]
    fn missing_cache_is_empty() -> Result<(), KernelError> {
        assert!(discover(Path::new("/nonexistent/vm-kernel-cache"))?.is_empty());
        Ok(())
    }

    #[test]
    fn select_filters_and_reports_missing() {
        let k = |name: &str| Kernel {
            name: name.to_owned(),
            vmlinuz: PathBuf::from(format!("/k/{name}/vmlinuz")),
            package: None,
            release: None,
            msr_module: None,
            diag_modules: Vec::new(),
        };
        let all = vec![k("6.1"), k("6.12")];
        let (kept, missing) = select(all.clone(), Some("6.12, 7.2"));
        assert_eq!(kept, vec![k("6.12")]);
        assert_eq!(missing, vec!["7.2".to_owned()]);
        let (kept, missing) = select(all.clone(), None);
        assert_eq!(kept, all);
        assert!(missing.is_empty());
    }
}
