//! The process record and what an exec tells about a process, with the bounds every stored
//! string obeys.

use std::time::Instant;

use super::ARGV_MAX_BYTES;
use crate::enrich::container::ContainerRef;

/// Where a record's contents came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// An exec record.
    Exec,
    /// A fork record: exe, argv and comm are the parent's until the child execs.
    Fork,
    /// `/proc` (seeding or a load on a miss).
    Proc,
}

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exit {
    /// When userspace learnt of the exit (monotonic clock).
    pub at: Instant,
    /// Exit status.
    pub code: i32,
    /// Terminating signal, 0 if none.
    pub signal: i32,
}

/// One process incarnation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessRecord {
    /// Process id (thread-group id).
    pub tgid: u32,
    /// Parent's tgid at fork/exec time, 0 when unknown.
    pub ppid: u32,
    /// Start time, nanoseconds since boot (see the module documentation on identity).
    pub start_ns: u64,
    /// Path of the executable, empty when unknown (kernel threads, a fork of an unknown parent).
    pub exe: String,
    /// Task command name.
    pub comm: String,
    /// Arguments including argv\[0\], at most [`ARGV_MAX_BYTES`].
    pub argv: Vec<String>,
    /// Arguments were cut to fit [`ARGV_MAX_BYTES`].
    pub argv_truncated: bool,
    /// Real user id, when known.
    pub uid: Option<u32>,
    /// cgroup v2 id, when known (exec records carry it; `/proc` does not).
    pub cgroup_id: Option<u64>,
    /// cgroup path, when known.
    pub cgroup_path: Option<String>,
    /// The container named by `cgroup_path`.
    pub container: Option<ContainerRef>,
    /// Set when the process exited.
    pub exited_at: Option<Exit>,
    /// Where the contents came from.
    pub origin: Origin,
}

/// What an exec record tells about a process.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecInfo {
    /// Process id.
    pub tgid: u32,
    /// Parent's tgid, 0 when unknown.
    pub ppid: u32,
    /// Start time of the process, nanoseconds since boot (an exec keeps it).
    pub start_ns: u64,
    /// Path of the new executable.
    pub exe: String,
    /// Arguments including argv\[0\] (cut to [`ARGV_MAX_BYTES`] when stored).
    pub argv: Vec<String>,
    /// comm after the exec.
    pub comm: String,
    /// Real user id.
    pub uid: u32,
    /// cgroup v2 id, when known.
    pub cgroup_id: Option<u64>,
    /// cgroup path, when known.
    pub cgroup_path: Option<String>,
}

/// Cuts `s` to at most `max` bytes at a character boundary.
pub(crate) fn cut(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

/// Keeps the arguments that fit in [`ARGV_MAX_BYTES`] (each costs its length plus a NUL); the
/// first argument that does not fit is cut to the remaining space. Returns whether anything
/// was cut.
pub fn bound_argv<I: IntoIterator<Item = String>>(args: I) -> (Vec<String>, bool) {
    let mut out = Vec::new();
    let mut left = ARGV_MAX_BYTES;
    for arg in args {
        if arg.len() < left {
            left -= arg.len() + 1;
            out.push(arg);
        } else {
            if left > 1 {
                out.push(cut(arg, left - 1));
            }
            return (out, true);
        }
    }
    (out, false)
}
