//! One file per hook. Each public program wraps a `try_*` function that returns a `Result`, so
//! the error path (fail open, counted) is written once per hook.

mod bprm_check_security;
mod exec_record;
mod sched_process_exec;

/// What an LSM hook returns to the kernel.
#[repr(i32)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Let the operation proceed.
    Allow = 0,
    /// Refuse it with `-EPERM`.
    Deny = -1,
}

/// `SIGKILL`.
pub(crate) const SIGKILL: u32 = 9;
