//! cgroup id -> cgroup path, so that an exec in a cgroup seen before does not read
//! `/proc/<pid>/cgroup` (a locked walk in the kernel, and the largest cost of an exec record in
//! the daemon before this cache). The id is the cgroup v2 id the kernel record carries (a
//! kernfs node id: not reused while the host runs); the path is the one
//! [`super::container::cgroup_path_of`] picks for the first process seen in it. Bounded: when
//! full, the map starts over (a miss costs one `/proc` read).

use std::path::Path;

use foldhash::HashMap;

use super::container::cgroup_path_of;

/// Most cgroups remembered.
pub(crate) const MAX_CGROUPS: usize = 4096;

/// The cache; see the module documentation.
#[derive(Debug, Default)]
pub(crate) struct CgroupPaths {
    paths: HashMap<u64, String>,
    misses: u64,
}

impl CgroupPaths {
    /// The cgroup path of process `pid` in cgroup `cgroup_id`: remembered, else read from
    /// `<procfs_root>/<pid>/cgroup` and remembered when found. Id 0 (unknown) is never cached.
    pub(crate) fn path_of(
        &mut self,
        cgroup_id: u64,
        pid: u32,
        procfs_root: &Path,
    ) -> Option<String> {
        if let Some(path) = self.paths.get(&cgroup_id) {
            return Some(path.clone());
        }
        self.misses += 1;
        let path = cgroup_path_of(pid, procfs_root)?;
        if cgroup_id != 0 {
            if self.paths.len() >= MAX_CGROUPS {
                self.paths.clear();
            }
            self.paths.insert(cgroup_id, path.clone());
        }
        Some(path)
    }

    /// `/proc` reads so far (cache misses).
    #[cfg(test)]
    fn misses(&self) -> u64 {
        self.misses
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn procfs_with(pid: u32, cgroup_line: &str) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join(pid.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cgroup"), cgroup_line).unwrap();
        root
    }

    #[test]
    fn reads_once_per_cgroup_and_never_caches_id_zero() {
        let root = procfs_with(7, "0::/system.slice/a.service\n");
        let mut paths = CgroupPaths::default();
        assert_eq!(
            paths.path_of(42, 7, root.path()).as_deref(),
            Some("/system.slice/a.service")
        );
        std::fs::remove_dir_all(root.path().join("7")).unwrap();
        // Another process of the same cgroup: no read (the file is gone and it still answers).
        assert_eq!(
            paths.path_of(42, 8, root.path()).as_deref(),
            Some("/system.slice/a.service")
        );
        assert_eq!(paths.misses(), 1);
        assert_eq!(paths.path_of(0, 7, root.path()), None);
        assert_eq!(
            paths.path_of(43, 7, root.path()),
            None,
            "unreadable: not cached"
        );
        assert_eq!(paths.misses(), 3);
    }

    #[test]
    fn stays_bounded() {
        let root = procfs_with(7, "0::/x\n");
        let mut paths = CgroupPaths::default();
        for id in 1..=(MAX_CGROUPS as u64 + 10) {
            paths.path_of(id, 7, root.path());
        }
        assert!(paths.paths.len() <= MAX_CGROUPS);
    }
}
