//! Process lifecycle records: a new process (fork) and the end of one (exit), which keep the
//! daemon's process cache right (`enforcer/src/enrich/`). Threads are left out: a fork record
//! is made only when the child is a new thread group, an exit record only when the last thread
//! of a group exits.

use crate::event::{COMM_LEN, EventHeader};

/// A new process. The header is the parent's (the task that forked).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ForkRecord {
    /// Common header, `kind == EventKind::Fork`.
    pub header: EventHeader,
    /// The child's process id.
    pub child_tgid: u32,
    /// Explicit padding.
    pub _pad: u32,
    /// The child's start time (`task->start_boottime`, ns since boot): with the pid, the
    /// identity of the process (a reused pid has a later start).
    pub child_start_ns: u64,
    /// The parent's comm (the child's is the same until it execs).
    pub comm: [u8; COMM_LEN],
}

/// The last thread of a process exited. The header is the exiting task's.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExitRecord {
    /// Common header, `kind == EventKind::Exit`.
    pub header: EventHeader,
    /// `task->exit_code`: the wait status (`code << 8`, or the terminating signal number in the
    /// low 7 bits, 0x80 set when it dumped core).
    pub exit_code: u32,
    /// Explicit padding.
    pub _pad: u32,
    /// The process's start time (`task->start_boottime`, ns since boot).
    pub start_ns: u64,
    /// The comm at exit.
    pub comm: [u8; COMM_LEN],
}

const _: () = assert!(core::mem::size_of::<ForkRecord>() == 64 + 16 + COMM_LEN);
const _: () = assert!(core::mem::size_of::<ExitRecord>() == 64 + 16 + COMM_LEN);
