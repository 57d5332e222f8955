//! The process kill: `pidfd_open` + `pidfd_send_signal(SIGKILL)`, with the rails every kill
//! needs: never pid 1 or 0, never the engine itself, and never a process that is not the one
//! the event saw (PID reuse: the process found under the pid must have started no later than
//! the event; the pidfd pins it between the check and the signal).

use std::{
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
    time::Duration,
};

pub use super::error::KillError;
use super::{procfs::ProcFs, protect::Protected};

/// Start times in /proc have clock-tick resolution: one tick (10 ms at 100 Hz) of rounding is
/// allowed between a process's start and the event.
pub const START_SLACK: Duration = Duration::from_millis(10);

/// Start time of `pid` since boot, from `<proc>/<pid>/stat`.
pub fn start_time(proc: &ProcFs, pid: u32) -> Result<Duration, KillError> {
    let stat = proc.stat(pid).map_err(|_| KillError::Gone(pid))?;
    let ticks = procfs::ticks_per_second().max(1);
    Ok(Duration::from_nanos(
        stat.start_ticks.saturating_mul(1_000_000_000) / ticks,
    ))
}

fn sys_err(call: &'static str, pid: u32) -> KillError {
    let source = std::io::Error::last_os_error();
    match source.raw_os_error() {
        Some(libc::ESRCH) => KillError::Gone(pid),
        _ => KillError::Sys { call, pid, source },
    }
}

/// A process pinned by a pidfd after the PID-reuse rail passed: signals reach that process or
/// fail with [`KillError::Gone`], never a newer process that got its pid.
#[derive(Debug)]
pub struct Pinned {
    pid: u32,
    fd: OwnedFd,
}

impl Pinned {
    /// Pins `pid` and checks it is the process an event saw at `event_boot_ns`
    /// (CLOCK_BOOTTIME): it must have started no later than the event. A zombie can be pinned
    /// (its process group and cgroup can still be read).
    pub fn open(pid: u32, event_boot_ns: u64) -> Result<Self, KillError> {
        if pid == 0 {
            return Err(Protected::Pid0.into());
        }
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; no memory is
        // passed.
        let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
        if raw < 0 {
            return Err(sys_err("pidfd_open", pid));
        }
        let fd = i32::try_from(raw).map_err(|_| KillError::Gone(pid))?;
        // SAFETY: `fd` is a new file descriptor returned by pidfd_open that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // The pidfd now pins the process: check it is the one the event saw.
        let started = start_time(&ProcFs::real(), pid)?;
        let event = Duration::from_nanos(event_boot_ns);
        if started > event + START_SLACK {
            return Err(KillError::Reused {
                pid,
                started,
                event,
            });
        }
        Ok(Self { pid, fd })
    }

    /// The pinned pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends SIGKILL to the pinned process.
    pub fn signal(&self) -> Result<(), KillError> {
        // SAFETY: pidfd_send_signal takes the pidfd, a signal number, a null siginfo and
        // flags.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.fd.as_raw_fd(),
                libc::SIGKILL,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if rc < 0 {
            return Err(sys_err("pidfd_send_signal", self.pid));
        }
        Ok(())
    }
}

/// Kills `pid` with SIGKILL if it is still the process an event saw at `event_boot_ns`
/// (CLOCK_BOOTTIME). Refuses pid 0, 1 and the engine whatever the caller checked.
pub fn kill_process(pid: u32, event_boot_ns: u64) -> Result<(), KillError> {
    match pid {
        0 => return Err(Protected::Pid0.into()),
        1 => return Err(Protected::Init.into()),
        _ if pid == std::process::id() => return Err(Protected::Engine(pid).into()),
        _ => {}
    }
    Pinned::open(pid, event_boot_ns)?.signal()
}

/// Now on CLOCK_BOOTTIME (the clock of kernel event timestamps), in nanoseconds; 0 if the
/// clock cannot be read.
pub fn boot_now_ns() -> u64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
        .ok()
        .and_then(|ts| u64::try_from(Duration::from(ts).as_nanos()).ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::os::unix::process::ExitStatusExt as _;

    use super::*;

    fn sleeper() -> std::process::Child {
        std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap()
    }

    #[test]
    fn protected_pids_are_refused() {
        assert!(matches!(
            kill_process(1, u64::MAX),
            Err(KillError::Protected(Protected::Init))
        ));
        assert!(matches!(
            kill_process(0, u64::MAX),
            Err(KillError::Protected(Protected::Pid0))
        ));
        let me = std::process::id();
        assert!(matches!(
            kill_process(me, u64::MAX),
            Err(KillError::Protected(Protected::Engine(p))) if p == me
        ));
    }

    #[test]
    fn kills_a_child_seen_after_it_started() {
        let mut child = sleeper();
        std::thread::sleep(Duration::from_millis(50));
        kill_process(child.id(), boot_now_ns()).unwrap();
        assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
    }

    #[test]
    fn a_process_younger_than_the_event_is_a_reused_pid() {
        let event = boot_now_ns();
        std::thread::sleep(Duration::from_millis(100));
        let mut child = sleeper();
        let result = kill_process(child.id(), event);
        assert!(
            matches!(result, Err(KillError::Reused { .. })),
            "{result:?}"
        );
        assert_eq!(result.unwrap_err().errno(), Some(libc::ESRCH));
        assert_eq!(child.try_wait().unwrap(), None, "must still run");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn a_pinned_process_that_was_reaped_is_gone_not_its_successor() {
        let mut child = sleeper();
        std::thread::sleep(Duration::from_millis(20));
        let pinned = Pinned::open(child.id(), boot_now_ns()).unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        // The pid may be handed to a new process now; the pidfd still names the dead one.
        let result = pinned.signal();
        assert!(matches!(result, Err(KillError::Gone(_))), "{result:?}");
    }

    #[test]
    fn a_zombie_can_be_pinned_and_a_gone_pid_cannot() {
        let mut child = sleeper();
        let pid = child.id();
        std::thread::sleep(Duration::from_millis(20));
        // SIGKILL without reaping: the child stays a zombie.
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap()),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        while !ProcFs::real().stat(pid).unwrap().is_zombie() {
            std::thread::sleep(Duration::from_millis(2));
        }
        let pinned = Pinned::open(pid, boot_now_ns()).unwrap();
        assert_eq!(pinned.pid(), pid);
        pinned.signal().unwrap();
        child.wait().unwrap();
        assert!(matches!(
            Pinned::open(pid, boot_now_ns()),
            Err(KillError::Gone(_) | KillError::Reused { .. })
        ));
    }
}
