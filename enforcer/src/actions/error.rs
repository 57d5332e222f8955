//! Why a kill was not performed.

use std::{path::PathBuf, time::Duration};

use super::protect::Protected;

/// Why a kill was not performed. [`KillError::Protected`] becomes a `spared` record, every
/// other variant a `kill_failed` record.
#[derive(Debug, thiserror::Error)]
pub enum KillError {
    /// The target (or a process the kill would reach) is protected.
    #[error(transparent)]
    Protected(#[from] Protected),
    /// The process is gone (or the pid was never valid).
    #[error("process {0} is gone")]
    Gone(u32),
    /// The pid now belongs to a process that started after the event.
    #[error("pid {pid} was reused (process started {started:?} after boot, event at {event:?})")]
    Reused {
        /// The pid.
        pid: u32,
        /// Start of the process now holding the pid, since boot.
        started: Duration,
        /// Time of the event, since boot.
        event: Duration,
    },
    /// A system call failed.
    #[error("{call} failed for pid {pid}: {source}")]
    Sys {
        /// The call.
        call: &'static str,
        /// The pid (or process group id for `kill(-pgid)`).
        pid: u32,
        /// The errno.
        source: std::io::Error,
    },
    /// The process group of a process the kernel killed cannot be found any more.
    #[error(
        "cannot find the process group of pid {0}: the process is gone (reaped), it led no group that outlived it, and the event carries no process group"
    )]
    GroupUnknown(u32),
    /// No cgroup v2 hierarchy is mounted.
    #[error(
        "no cgroup v2 hierarchy is mounted (looked at /sys/fs/cgroup and /proc/self/mountinfo)"
    )]
    NoCgroupV2,
    /// `/proc/<pid>/cgroup` has no cgroup v2 line.
    #[error("pid {0} has no cgroup v2 path in /proc/{0}/cgroup")]
    NoCgroupPath(u32),
    /// The event's cgroup id names no cgroup any more.
    #[error("cgroup id {id} is not under {}: the cgroup is gone", root.display())]
    CgroupNotFound {
        /// The cgroup id (inode of its directory).
        id: u64,
        /// The cgroup v2 mount.
        root: PathBuf,
    },
    /// A cgroup path that is not a plain absolute path below the mount.
    #[error("invalid cgroup path {0:?}")]
    BadCgroupPath(String),
    /// The kernel cannot kill a cgroup (`cgroup.kill` arrived in Linux 5.14).
    #[error(
        "{} is missing: this kernel cannot kill a cgroup (cgroup.kill needs Linux 5.14); the kill was not narrowed to the process",
        path.display()
    )]
    CgroupKillUnsupported {
        /// The missing `cgroup.kill` file.
        path: PathBuf,
    },
    /// Reading or writing a cgroup file failed.
    #[error("cannot {what} {}: {source}", path.display())]
    CgroupIo {
        /// `read` or `write`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl KillError {
    /// Whether the kill was refused because of a protected process (a `spared` record).
    pub fn is_protected(&self) -> bool {
        matches!(self, KillError::Protected(_))
    }

    /// The errno the failure stands for, when there is one: the system call's, `ESRCH` when
    /// the process the event saw is gone (or its pid reused), `ENOENT` for a missing cgroup
    /// or `cgroup.kill`.
    pub fn errno(&self) -> Option<i32> {
        match self {
            KillError::Protected(_) | KillError::BadCgroupPath(_) => None,
            KillError::Gone(_) | KillError::Reused { .. } | KillError::GroupUnknown(_) => {
                Some(libc::ESRCH)
            }
            KillError::Sys { source, .. } | KillError::CgroupIo { source, .. } => {
                source.raw_os_error()
            }
            KillError::NoCgroupV2
            | KillError::NoCgroupPath(_)
            | KillError::CgroupNotFound { .. }
            | KillError::CgroupKillUnsupported { .. } => Some(libc::ENOENT),
        }
    }
}
