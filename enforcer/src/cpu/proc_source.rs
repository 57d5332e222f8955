//! Reading per-process CPU time from procfs: `utime + stime` and the start time of every
//! process in `/proc/<pid>/stat` (the `procfs` crate parses it; whatever it cannot parse is
//! skipped). Kernel threads are left out (they cannot be killed and are not miners). Bounded:
//! at most `max` processes are read per round.

use std::path::Path;

use procfs::process::Process;

/// `PF_KTHREAD` in the `flags` of `/proc/<pid>/stat`.
const PF_KTHREAD: u32 = 0x0020_0000;

/// One process's cumulative CPU time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcSample {
    /// Process id (thread group id).
    pub pid: u32,
    /// Start time, nanoseconds since boot (clock ticks times `tick_ns`).
    pub start_ns: u64,
    /// User plus system CPU time of all its threads, nanoseconds.
    pub cpu_ns: u64,
}

/// Reads one opened process; `None` when its `stat` is unreadable or it is a kernel thread.
fn sample(process: &Process, tick_ns: u64) -> Option<ProcSample> {
    let stat = process.stat().ok()?;
    if stat.flags & PF_KTHREAD != 0 {
        return None;
    }
    Some(ProcSample {
        pid: u32::try_from(stat.pid).ok().filter(|p| *p != 0)?,
        start_ns: stat.starttime.saturating_mul(tick_ns),
        cpu_ns: stat
            .utime
            .saturating_add(stat.stime)
            .saturating_mul(tick_ns),
    })
}

/// The CPU time of at most `max` processes under the procfs root `root` (normally `/proc`);
/// processes that vanish or do not parse are skipped. Empty when `root` cannot be listed.
pub fn read_all(root: &Path, tick_ns: u64, max: usize) -> Vec<ProcSample> {
    let Ok(all) = procfs::process::all_processes_with_root(root) else {
        return Vec::new();
    };
    all.filter_map(Result::ok)
        .filter_map(|p| sample(&p, tick_ns))
        .take(max)
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const TICK: u64 = 10_000_000;

    fn stat(dir: &Path, pid: u32, flags: u32, utime: u64, stime: u64, start: u64) {
        let d = dir.join(pid.to_string());
        std::fs::create_dir(&d).unwrap();
        std::fs::write(
            d.join("stat"),
            format!(
                "{pid} (a (b) c) R 1 {pid} {pid} 0 -1 {flags} 0 0 0 0 {utime} {stime} 0 0 20 0 \
                 1 0 {start} 0 0 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 \
                 0 0 0 0 0 0 0 0\n"
            ),
        )
        .unwrap();
    }

    #[test]
    fn reads_cpu_time_skips_kernel_threads_and_garbage() {
        let root = tempfile::tempdir().unwrap();
        stat(root.path(), 10, 0x0040_0100, 150, 50, 1234);
        stat(root.path(), 2, 0x0020_8040, 99, 99, 5);
        let bad = root.path().join("11");
        std::fs::create_dir(&bad).unwrap();
        std::fs::write(bad.join("stat"), "11 (x) R garbage").unwrap();
        std::fs::create_dir(root.path().join("self-not-a-pid")).unwrap();
        let got = read_all(root.path(), TICK, 100);
        assert_eq!(
            got,
            [ProcSample {
                pid: 10,
                start_ns: 1234 * TICK,
                cpu_ns: 200 * TICK,
            }]
        );
    }

    #[test]
    fn at_most_max_processes_and_a_missing_root_is_empty() {
        let root = tempfile::tempdir().unwrap();
        for pid in 100..110 {
            stat(root.path(), pid, 0, 1, 1, 1);
        }
        assert_eq!(read_all(root.path(), TICK, 3).len(), 3);
        assert!(read_all(&root.path().join("nope"), TICK, 3).is_empty());
    }

    #[test]
    fn this_process_is_read_from_the_real_proc() {
        let me = std::process::id();
        let all = read_all(Path::new("/proc"), TICK, usize::MAX);
        assert!(all.iter().any(|s| s.pid == me), "pid {me} not found");
    }
}
