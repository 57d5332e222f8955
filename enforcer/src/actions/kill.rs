//! The userspace kill path: `pidfd_open` + `pidfd_send_signal(SIGKILL)`, with the safety rails
//! every kill needs: never pid 1 or 0, never the engine itself, and never a process that is not
//! the one the event saw (PID reuse: the process found under the pid must have started no later
//! than the event; the pidfd pins it between the check and the signal).

use std::{
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
    time::Duration,
};

/// Why a kill was not performed.
#[derive(Debug, thiserror::Error)]
pub enum KillError {
    /// The target is protected (pid 0/1 or the engine).
    #[error("refused to kill protected pid {0}")]
    Protected(u32),
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
        /// The pid.
        pid: u32,
        /// The errno.
        source: std::io::Error,
    },
}

/// Start time of `pid` since boot, from /proc/<pid>/stat.
fn start_time(pid: u32) -> Result<Duration, KillError> {
    let process = procfs::process::Process::new(pid as i32).map_err(|_| KillError::Gone(pid))?;
    let stat = process.stat().map_err(|_| KillError::Gone(pid))?;
    let ticks = procfs::ticks_per_second().max(1);
    Ok(Duration::from_nanos(
        stat.starttime.saturating_mul(1_000_000_000) / ticks,
    ))
}

/// Kills `pid` with SIGKILL if it is still the process an event saw at `event_boot_ns`
/// (CLOCK_BOOTTIME).
pub fn kill_process(pid: u32, event_boot_ns: u64) -> Result<(), KillError> {
    if pid <= 1 || pid == std::process::id() {
        return Err(KillError::Protected(pid));
    }
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; no memory is passed.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if raw < 0 {
        let source = std::io::Error::last_os_error();
        return Err(match source.raw_os_error() {
            Some(libc::ESRCH) => KillError::Gone(pid),
            _ => KillError::Sys {
                call: "pidfd_open",
                pid,
                source,
            },
        });
    }
    let fd = i32::try_from(raw).map_err(|_| KillError::Gone(pid))?;
    // SAFETY: `fd` is a new file descriptor returned by pidfd_open that nothing else owns.
    let pidfd = unsafe { OwnedFd::from_raw_fd(fd) };
    // The pidfd now pins the process: check it is the one the event saw.
    let started = start_time(pid)?;
    let event = Duration::from_nanos(event_boot_ns);
    // /proc start times have clock-tick resolution: allow one tick of rounding.
    if started > event + Duration::from_millis(10) {
        return Err(KillError::Reused {
            pid,
            started,
            event,
        });
    }
    // SAFETY: pidfd_send_signal takes the pidfd, a signal number, a null siginfo and flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if rc < 0 {
        let source = std::io::Error::last_os_error();
        return Err(match source.raw_os_error() {
            Some(libc::ESRCH) => KillError::Gone(pid),
            _ => KillError::Sys {
                call: "pidfd_send_signal",
                pid,
                source,
            },
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::os::unix::process::ExitStatusExt as _;

    use super::*;

    fn boot_ns() -> u64 {
        let ts = nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME).unwrap();
        u64::try_from(Duration::from(ts).as_nanos()).unwrap()
    }

    #[test]
    fn protected_pids_are_refused() {
        assert!(matches!(
            kill_process(1, u64::MAX),
            Err(KillError::Protected(1))
        ));
        assert!(matches!(
            kill_process(0, u64::MAX),
            Err(KillError::Protected(0))
        ));
        let me = std::process::id();
        assert!(matches!(kill_process(me, u64::MAX), Err(KillError::Protected(p)) if p == me));
    }

    #[test]
    fn kills_a_child_seen_after_it_started() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(50));
        kill_process(child.id(), boot_ns()).unwrap();
        assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
    }

    #[test]
    fn a_process_younger_than_the_event_is_a_reused_pid() {
        let event = boot_ns();
        std::thread::sleep(Duration::from_millis(100));
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let result = kill_process(child.id(), event);
        assert!(
            matches!(result, Err(KillError::Reused { .. })),
            "{result:?}"
        );
        assert_eq!(child.try_wait().unwrap(), None, "must still run");
        child.kill().unwrap();
        child.wait().unwrap();
    }
}
