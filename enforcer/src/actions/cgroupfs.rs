//! The cgroup v2 hierarchy as the kill path uses it: where it is mounted (`/sys/fs/cgroup`, or
//! `/sys/fs/cgroup/unified` on a hybrid host), a cgroup's directory from its path or its id
//! (the inode number the kernel reports as `cgroup_id`), the processes of a cgroup and its
//! descendants, and `cgroup.kill`.

use std::{
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
};

use super::error::KillError;

/// Most directories [`CgroupFs::find_by_id`] and [`CgroupFs::procs`] visit.
const MAX_WALK: usize = 100_000;

/// The mount point of the first `cgroup2` file system in `/proc/self/mountinfo` text,
/// preferring `/sys/fs/cgroup` itself.
pub fn cgroup2_mount(mountinfo: &str) -> Option<PathBuf> {
    let mounts: Vec<PathBuf> = mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            (right.split_ascii_whitespace().next()? == "cgroup2")
                .then(|| left.split_ascii_whitespace().nth(4).map(unescape))
                .flatten()
        })
        .collect();
    let preferred = Path::new("/sys/fs/cgroup");
    mounts
        .iter()
        .find(|m| *m == preferred)
        .or(mounts.first())
        .cloned()
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> PathBuf {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = bytes.get(i + 1..i + 4).and_then(|d| {
            let s = std::str::from_utf8(d).ok()?;
            u8::from_str_radix(s, 8).ok()
        });
        match (bytes[i], escaped) {
            (b'\\', Some(b)) => {
                out.push(b);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    PathBuf::from(String::from_utf8_lossy(&out).into_owned())
}

/// A cgroup v2 hierarchy.
#[derive(Clone, Debug)]
pub struct CgroupFs {
    root: PathBuf,
}

impl CgroupFs {
    /// The hierarchy mounted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The system's cgroup v2 hierarchy, if one is mounted.
    pub fn discover() -> Option<Self> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        cgroup2_mount(&mountinfo).map(Self::new)
    }

    /// Where it is mounted.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of the cgroup at `path` (`/a/b`, as in `/proc/<pid>/cgroup`); refuses
    /// relative paths and `.`/`..` components.
    pub fn dir(&self, path: &str) -> Result<PathBuf, KillError> {
        let rel = path
            .strip_prefix('/')
            .ok_or_else(|| KillError::BadCgroupPath(path.to_owned()))?;
        let mut dir = self.root.clone();
        for part in rel.split('/').filter(|p| !p.is_empty()) {
            if part == "." || part == ".." {
                return Err(KillError::BadCgroupPath(path.to_owned()));
            }
            dir.push(part);
        }
        Ok(dir)
    }

    /// The path of the cgroup whose id (directory inode) is `id`, found by a bounded walk.
    pub fn find_by_id(&self, id: u64) -> Result<String, KillError> {
        let not_found = || KillError::CgroupNotFound {
            id,
            root: self.root.clone(),
        };
        let mut stack = vec![self.root.clone()];
        let mut visited = 0;
        while let Some(dir) = stack.pop() {
            visited += 1;
            if visited > MAX_WALK {
                break;
            }
            let Ok(meta) = std::fs::metadata(&dir) else {
                continue;
            };
            if meta.ino() == id {
                let rel = dir.strip_prefix(&self.root).map_err(|_| not_found())?;
                return Ok(format!("/{}", rel.display()));
            }
            stack.extend(subdirs(&dir));
        }
        Err(not_found())
    }

    /// The processes of the cgroup at `path` and of every cgroup below it (what
    /// `cgroup.kill` reaches), ascending.
    pub fn procs(&self, path: &str) -> Result<Vec<u32>, KillError> {
        let mut stack = vec![self.dir(path)?];
        let mut pids = Vec::new();
        let mut visited = 0;
        while let Some(dir) = stack.pop() {
            visited += 1;
            if visited > MAX_WALK {
                break;
            }
            let file = dir.join("cgroup.procs");
            let text = std::fs::read_to_string(&file).map_err(|source| KillError::CgroupIo {
                what: "read",
                path: file,
                source,
            })?;
            pids.extend(text.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
            stack.extend(subdirs(&dir));
        }
        pids.sort_unstable();
        pids.dedup();
        Ok(pids)
    }

    /// The `cgroup.kill` file of the cgroup at `path`; [`KillError::CgroupKillUnsupported`]
    /// when the kernel has none (before Linux 5.14).
    pub fn kill_file(&self, path: &str) -> Result<PathBuf, KillError> {
        let file = self.dir(path)?.join("cgroup.kill");
        match std::fs::symlink_metadata(&file) {
            Ok(_) => Ok(file),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(KillError::CgroupKillUnsupported { path: file })
            }
            Err(source) => Err(KillError::CgroupIo {
                what: "read",
                path: file,
                source,
            }),
        }
    }

    /// Kills every process of the cgroup at `path` and of its descendants (`1` into
    /// `cgroup.kill`).
    pub fn kill(&self, path: &str) -> Result<(), KillError> {
        let file = self.kill_file(path)?;
        std::fs::write(&file, b"1").map_err(|source| KillError::CgroupIo {
            what: "write",
            path: file,
            source,
        })
    }
}

/// The sub-directories of `dir` (child cgroups); unreadable entries are skipped.
pub(crate) fn subdirs(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_cgroup2_mount_is_found_on_unified_and_hybrid_hosts() {
        let unified = "30 1 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(
            cgroup2_mount(unified),
            Some(PathBuf::from("/sys/fs/cgroup"))
        );
        let hybrid = "36 31 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                      41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        assert_eq!(
            cgroup2_mount(hybrid),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        let spaced = "41 31 0:38 / /mnt/cg\\0402 rw - cgroup2 none rw\n";
        assert_eq!(cgroup2_mount(spaced), Some(PathBuf::from("/mnt/cg 2")));
        assert_eq!(
            cgroup2_mount("36 31 0:31 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw\n"),
            None
        );
    }

    #[test]
    fn paths_ids_and_members_of_a_fake_tree() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("pods/miner/sub")).unwrap();
        std::fs::write(root.join("cgroup.procs"), "1\n").unwrap();
        std::fs::write(root.join("pods/cgroup.procs"), "").unwrap();
        std::fs::write(root.join("pods/miner/cgroup.procs"), "40\n41\n").unwrap();
        std::fs::write(root.join("pods/miner/sub/cgroup.procs"), "42\n").unwrap();
        std::fs::write(root.join("pods/miner/cgroup.kill"), "").unwrap();
        let cg = CgroupFs::new(root);
        assert_eq!(cg.dir("/pods/miner").unwrap(), root.join("pods/miner"));
        assert_eq!(cg.dir("/").unwrap(), root);
        assert!(matches!(
            cg.dir("/pods/../.."),
            Err(KillError::BadCgroupPath(_))
        ));
        assert!(matches!(cg.dir("pods"), Err(KillError::BadCgroupPath(_))));
        let id = std::fs::metadata(root.join("pods/miner/sub"))
            .unwrap()
            .ino();
        assert_eq!(cg.find_by_id(id).unwrap(), "/pods/miner/sub");
        let root_id = std::fs::metadata(root).unwrap().ino();
        assert_eq!(cg.find_by_id(root_id).unwrap(), "/");
        assert!(matches!(
            cg.find_by_id(u64::MAX),
            Err(KillError::CgroupNotFound { .. })
        ));
        assert_eq!(cg.procs("/pods/miner").unwrap(), [40, 41, 42]);
        assert_eq!(cg.procs("/pods/miner/sub").unwrap(), [42]);
        assert!(cg.kill_file("/pods/miner").is_ok());
        let missing = cg.kill_file("/pods").unwrap_err();
        assert!(matches!(missing, KillError::CgroupKillUnsupported { .. }));
        assert!(
            missing.to_string().contains("cgroup.kill needs Linux 5.14"),
            "{missing}"
        );
        assert_eq!(missing.errno(), Some(libc::ENOENT));
    }
}
