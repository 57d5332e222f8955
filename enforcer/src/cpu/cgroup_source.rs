//! Reading per-cgroup CPU time from the cgroup v2 hierarchy: `usage_usec` of each leaf cgroup's
//! `cpu.stat` (a leaf holds the processes: a container, a service, a session scope; inner
//! cgroups only add up their children, and the root is the whole machine). Bounded: at most
//! `max` directories are visited per round, `cpu.stat` and `cgroup.procs` reads are capped.
//! Everything read is external data: unparsable files are skipped.

use std::io::Read as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use crate::actions::cgroupfs::subdirs;

/// Bytes of `cpu.stat` read at most.
const MAX_CPU_STAT: u64 = 4096;
/// Bytes of `cgroup.procs` read at most.
const MAX_PROCS: u64 = 64 * 1024;

/// One cgroup's cumulative CPU time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CgroupSample {
    /// The cgroup id (its directory's inode number, as the kernel reports `cgroup_id`).
    pub id: u64,
    /// Its path in the hierarchy (`/system.slice/x.service`).
    pub path: String,
    /// CPU time used by its processes, nanoseconds.
    pub cpu_ns: u64,
}

/// `usage_usec` of a `cpu.stat` text, in nanoseconds.
pub fn usage_ns(cpu_stat: &str) -> Option<u64> {
    cpu_stat.lines().find_map(|line| {
        let value = line.strip_prefix("usage_usec ")?;
        value
            .trim()
            .parse::<u64>()
            .ok()
            .map(|us| us.saturating_mul(1000))
    })
}

fn read_bounded(path: &Path, max: u64) -> Option<String> {
    let file = std::fs::File::open(path).ok()?;
    let mut text = String::new();
    file.take(max).read_to_string(&mut text).ok()?;
    Some(text)
}

/// The leaf cgroups under `root` (not `root` itself) with their CPU time, visiting at most
/// `max` directories.
pub fn read_leaves(root: &Path, max: usize) -> Vec<CgroupSample> {
    let mut out = Vec::new();
    let mut stack = subdirs(root);
    let mut visited = 0;
    while let Some(dir) = stack.pop() {
        visited += 1;
        if visited > max {
            break;
        }
        let children = subdirs(&dir);
        if !children.is_empty() {
            stack.extend(children);
            continue;
        }
        let (Ok(meta), Ok(rel)) = (std::fs::metadata(&dir), dir.strip_prefix(root)) else {
            continue;
        };
        if let Some(cpu_ns) = read_bounded(&dir.join("cpu.stat"), MAX_CPU_STAT)
            .as_deref()
            .and_then(usage_ns)
        {
            out.push(CgroupSample {
                id: meta.ino(),
                path: format!("/{}", rel.display()),
                cpu_ns,
            });
        }
    }
    out
}

/// The pids listed in `cgroup.procs` of the cgroup directory `dir` (at most 64 KiB read).
pub fn procs(dir: &Path) -> Vec<u32> {
    read_bounded(&dir.join("cgroup.procs"), MAX_PROCS)
        .map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn usage_usec_is_parsed_defensively() {
        let text = "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n";
        assert_eq!(usage_ns(text), Some(1_500_000));
        assert_eq!(usage_ns("user_usec 5\n"), None);
        assert_eq!(usage_ns("usage_usec lots\n"), None);
        assert_eq!(usage_ns(""), None);
        assert_eq!(
            usage_ns(&format!("usage_usec {}\n", u64::MAX)),
            Some(u64::MAX)
        );
    }

    #[test]
    fn leaves_are_read_with_their_ids_and_the_walk_is_bounded() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::write(r.join("cpu.stat"), "usage_usec 999999\n").unwrap();
        for (dir, stat) in [
            ("system.slice", Some("usage_usec 30\n")),
            ("system.slice/a.service", Some("usage_usec 10\n")),
            ("system.slice/b.service", Some("usage_usec 20\n")),
            ("user.slice", Some("usage_usec 7\n")),
            ("broken", Some("nonsense")),
            ("nostat", None),
        ] {
            std::fs::create_dir_all(r.join(dir)).unwrap();
            if let Some(stat) = stat {
                std::fs::write(r.join(dir).join("cpu.stat"), stat).unwrap();
            }
        }
        std::fs::write(r.join("user.slice/cgroup.procs"), "12\n34\nbad\n").unwrap();
        let mut got = read_leaves(r, 100);
        got.sort_by(|a, b| a.path.cmp(&b.path));
        let paths: Vec<(&str, u64)> = got.iter().map(|s| (s.path.as_str(), s.cpu_ns)).collect();
        assert_eq!(
            paths,
            [
                ("/system.slice/a.service", 10_000),
                ("/system.slice/b.service", 20_000),
                ("/user.slice", 7_000)
            ]
        );
        let ino = std::fs::metadata(r.join("user.slice")).unwrap().ino();
        assert_eq!(got[2].id, ino);
        assert_eq!(procs(&r.join("user.slice")), [12, 34]);
        assert!(procs(&r.join("nostat")).is_empty());
        assert!(read_leaves(r, 2).len() <= 2);
    }
}
