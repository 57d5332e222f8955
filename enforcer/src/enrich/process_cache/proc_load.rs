//! Reading processes from `/proc` into records: seeding the cache at start and loading one
//! process on a miss. A process that vanishes while it is read is skipped, never an error.
//! Every read is bounded: `cmdline` to [`ARGV_MAX_BYTES`] (+1 to notice a cut), `status` to
//! 16 KiB, `cgroup` to 64 KiB.

use std::path::Path;

use procfs::process::Process;

use super::{
    ARGV_MAX_BYTES, COMM_MAX_BYTES, Origin, PATH_MAX_BYTES, ProcessCache, ProcessRecord,
    bound_argv, cut,
};
use crate::enrich::container::{cgroup_path_of, container_id};
use crate::enrich::proc_read::{nul_entries, read_bounded};

/// Bytes of `/proc/<pid>/status` read at most.
const MAX_STATUS: u64 = 16 * 1024;

/// What [`ProcessCache::seed_from_proc`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeedReport {
    /// Records stored.
    pub loaded: usize,
    /// Entries skipped: the process vanished or its `stat` could not be read.
    pub skipped: usize,
    /// The scan stopped because the cache's capacity was reached.
    pub truncated: bool,
}

/// The real uid in the text of `/proc/<pid>/status`: the first number of the `Uid:` line.
fn real_uid(status: &[u8]) -> Option<u32> {
    String::from_utf8_lossy(status)
        .lines()
        .find_map(|l| l.strip_prefix("Uid:").map(str::to_owned))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The arguments in `/proc/<pid>/cmdline` (NUL separated, lossy UTF-8), bounded; empty for a
/// kernel thread or a zombie.
fn cmdline(dir: &Path) -> (Vec<String>, bool) {
    let Some(bytes) = read_bounded(&dir.join("cmdline"), ARGV_MAX_BYTES as u64 + 1) else {
        return (Vec::new(), false);
    };
    let cut_short = bytes.len() > ARGV_MAX_BYTES;
    let (argv, truncated) = bound_argv(nul_entries(&bytes));
    (argv, truncated || cut_short)
}

/// Reads an opened process into a record; `None` when its `stat` cannot be read.
fn read_process(process: &Process, root: &Path, pid: u32, tick_ns: u64) -> Option<ProcessRecord> {
    let stat = process.stat().ok()?;
    let dir = root.join(pid.to_string());
    let exe = process
        .exe()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (argv, argv_truncated) = cmdline(&dir);
    let cgroup_path = cgroup_path_of(pid, root).map(|p| cut(p, PATH_MAX_BYTES));
    Some(ProcessRecord {
        tgid: pid,
        ppid: u32::try_from(stat.ppid).unwrap_or(0),
        start_ns: stat.starttime.saturating_mul(tick_ns),
        exe: cut(exe, PATH_MAX_BYTES),
        comm: cut(stat.comm, COMM_MAX_BYTES),
        argv,
        argv_truncated,
        uid: read_bounded(&dir.join("status"), MAX_STATUS).and_then(|s| real_uid(&s)),
        cgroup_id: None,
        container: cgroup_path.as_deref().and_then(container_id),
        cgroup_path,
        exited_at: None,
        origin: Origin::Proc,
    })
}

/// Reads process `pid` under the procfs root `root` into a record; `None` when it does not
/// exist (any more) or its `stat` cannot be read.
pub fn read_record(root: &Path, pid: u32, tick_ns: u64) -> Option<ProcessRecord> {
    let process = Process::new_with_root(root.join(pid.to_string())).ok()?;
    read_process(&process, root, pid, tick_ns)
}

impl ProcessCache {
    /// Reads `tgid` from the configured procfs root (counted in the stats).
    pub(super) fn load(&mut self, tgid: u32) -> Option<ProcessRecord> {
        let rec = read_record(&self.config.procfs_root, tgid, self.config.tick_ns);
        match rec {
            Some(_) => self.stats.proc_loads += 1,
            None => self.stats.proc_misses += 1,
        }
        rec
    }

    /// Stores a record for every process under `procfs_root` (normally `/proc`), at most the
    /// cache's capacity; processes that vanish while being read are skipped. Meant for the
    /// start of the engine, before events arrive. Fails only when the root cannot be listed.
    pub fn seed_from_proc(&mut self, procfs_root: &Path) -> procfs::ProcResult<SeedReport> {
        let mut report = SeedReport::default();
        for entry in procfs::process::all_processes_with_root(procfs_root)? {
            if report.loaded >= self.config.capacity {
                report.truncated = true;
                break;
            }
            let Ok(process) = entry else {
                report.skipped += 1;
                continue;
            };
            let rec = u32::try_from(process.pid())
                .ok()
                .and_then(|pid| read_process(&process, procfs_root, pid, self.config.tick_ns));
            if rec.is_some_and(|rec| self.insert(rec)) {
                report.loaded += 1;
                self.stats.proc_loads += 1;
            } else {
                report.skipped += 1;
            }
        }
        Ok(report)
    }
}
