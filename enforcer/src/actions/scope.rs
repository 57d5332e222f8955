//! Kills at a rule's `kill_scope`, in two steps so the caller can decide in between (the kill
//! breaker): [`Killer::prepare`] applies the rails (exclusions, PID reuse through a pidfd) and
//! resolves what the scope reaches, [`Killer::execute`] signals it.
//!
//! - `process`: the target, through its pidfd.
//! - `process_group`: the target's process group (`kill(-pgid, SIGKILL)`), read from the
//!   pinned target; never group 0/1 or the engine's group.
//! - `cgroup`: the target's cgroup v2 and its descendants (`1` into `cgroup.kill`); never the
//!   root cgroup, the engine's cgroup or one above it. A kernel without `cgroup.kill` is a
//!   failure, never a silent narrowing to the process.
//!
//! A process group or cgroup that holds a protected process (pid 1, a kernel thread, the
//! engine, a `--never-kill` executable) is not killed at all: one signal reaches every member
//! and none can be left out. Known race: a protected process that joins the group or cgroup
//! between the check and the signal is signalled too.
//!
//! [`Killer::prepare_extension`] serves kills the kernel already performed (process scope):
//! the target may be gone. Its group is read from it while it can still be pinned (a zombie
//! can be); once it is reaped, the event's `process.pgid` or the group the target led (the
//! kernel does not reuse a pid while a group of that id exists) is used, provided a member
//! started no later than the event. The cgroup comes from the event's cgroup id.

use std::time::Duration;

use enforcer_policy::KillScope;

use super::{
    cgroupfs::CgroupFs,
    error::KillError,
    kill::{Pinned, START_SLACK, boot_now_ns, start_time},
    procfs::ProcFs,
    protect::{Protected, Protection},
};

/// The process an event names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Target {
    /// Process id (thread group id).
    pub pid: u32,
    /// When the event happened (CLOCK_BOOTTIME ns): the process must be no younger.
    pub event_boot_ns: u64,
    /// The event's cgroup v2 id, when it carries one.
    pub cgroup_id: Option<u64>,
    /// The event's process group id, when it carries one (`process.pgid`).
    pub pgid: Option<u32>,
}

/// A kill whose rails passed, ready to be performed.
#[derive(Debug)]
pub enum Prepared {
    /// One process.
    Process(Pinned),
    /// A process group.
    Group {
        /// The target, when it could be pinned (also signalled, through its pidfd).
        pinned: Option<Pinned>,
        /// The process group id.
        pgid: u32,
        /// Processes in the group when it was checked.
        members: usize,
    },
    /// A cgroup and its descendants.
    Cgroup {
        /// The target, when it could be pinned (also signalled, through its pidfd).
        pinned: Option<Pinned>,
        /// The cgroup path below the mount.
        path: String,
        /// Processes in the cgroup (and below) when it was checked.
        members: usize,
    },
}

/// A performed kill.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Done {
    /// When the last signal (or the `cgroup.kill` write) returned (CLOCK_BOOTTIME ns).
    pub acted_boot_ns: u64,
    /// What was killed, e.g. `process group 4242 (3 processes)`.
    pub what: String,
}

/// The kill path: rails, scope resolution and the signals.
#[derive(Debug)]
pub struct Killer {
    proc: ProcFs,
    cgroups: Option<CgroupFs>,
    protection: Protection,
}

impl Killer {
    /// A killer reading processes from `proc` and cgroups from `cgroups` (none: no cgroup v2
    /// hierarchy, `cgroup` scope fails).
    pub fn new(proc: ProcFs, cgroups: Option<CgroupFs>, protection: Protection) -> Self {
        Self {
            proc,
            cgroups,
            protection,
        }
    }

    /// The exclusions it applies.
    pub fn protection(&self) -> &Protection {
        &self.protection
    }

    /// The proc filesystem it reads.
    pub fn proc(&self) -> &ProcFs {
        &self.proc
    }

    /// Rails and scope resolution of a kill of `target` at `scope`.
    pub fn prepare(&self, scope: KillScope, target: Target) -> Result<Prepared, KillError> {
        self.protection.process(&self.proc, target.pid)?;
        let pinned = Pinned::open(target.pid, target.event_boot_ns)?;
        match scope {
            KillScope::Process => Ok(Prepared::Process(pinned)),
            KillScope::ProcessGroup => {
                let pgid = self.pgid_of(&pinned)?;
                self.group(Some(pinned), pgid)
            }
            KillScope::Cgroup => {
                let path = self.cgroup_of(&pinned)?;
                self.cgroup(Some(pinned), path)
            }
        }
    }

    /// Rails and scope resolution of widening a kill the kernel performed on `target` to
    /// `scope`; `None` for `process` scope (nothing to add).
    pub fn prepare_extension(
        &self,
        scope: KillScope,
        target: Target,
    ) -> Result<Option<Prepared>, KillError> {
        let pin = || match Pinned::open(target.pid, target.event_boot_ns) {
            Err(KillError::Gone(_)) => Ok(None),
            other => other.map(Some),
        };
        match scope {
            KillScope::Process => Ok(None),
            KillScope::ProcessGroup => {
                if let Some(pinned) = pin()? {
                    let pgid = self
                        .pgid_of(&pinned)
                        .map_err(|_| KillError::GroupUnknown(target.pid))?;
                    return self.group(Some(pinned), pgid).map(Some);
                }
                // Gone: the event's process group, else the group the process led (a pid is
                // not reused while a group of that id exists), if it existed at the event.
                let pgid = target
                    .pgid
                    .into_iter()
                    .chain([target.pid])
                    .find(|&pgid| self.group_predates(pgid, target.event_boot_ns))
                    .ok_or(KillError::GroupUnknown(target.pid))?;
                self.group(None, pgid).map(Some)
            }
            KillScope::Cgroup => {
                let cgroups = self.cgroups.as_ref().ok_or(KillError::NoCgroupV2)?;
                let path = match target.cgroup_id.map(|id| cgroups.find_by_id(id)) {
                    Some(Ok(path)) => path,
                    found => match pin()? {
                        Some(pinned) => self.cgroup_of(&pinned)?,
                        None => {
                            return Err(found
                                .and_then(Result::err)
                                .unwrap_or(KillError::NoCgroupPath(target.pid)));
                        }
                    },
                };
                self.cgroup(None, path).map(Some)
            }
        }
    }

    /// Performs a prepared kill.
    pub fn execute(&self, prepared: Prepared) -> Result<Done, KillError> {
        match prepared {
            Prepared::Process(pinned) => {
                pinned.signal()?;
                Ok(Done {
                    acted_boot_ns: boot_now_ns(),
                    what: format!("pid {}", pinned.pid()),
                })
            }
            Prepared::Group {
                pinned,
                pgid,
                members,
            } => {
                signal_if_alive(pinned.as_ref())?;
                let group = nix::unistd::Pid::from_raw(
                    -i32::try_from(pgid).map_err(|_| KillError::Gone(pgid))?,
                );
                nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL).map_err(
                    |errno| KillError::Sys {
                        call: "kill(-pgid)",
                        pid: pgid,
                        source: std::io::Error::from(errno),
                    },
                )?;
                Ok(Done {
                    acted_boot_ns: boot_now_ns(),
                    what: format!("process group {pgid} ({members} processes)"),
                })
            }
            Prepared::Cgroup {
                pinned,
                path,
                members,
            } => {
                signal_if_alive(pinned.as_ref())?;
                self.cgroups
                    .as_ref()
                    .ok_or(KillError::NoCgroupV2)?
                    .kill(&path)?;
                Ok(Done {
                    acted_boot_ns: boot_now_ns(),
                    what: format!("cgroup {path} ({members} processes)"),
                })
            }
        }
    }

    fn pgid_of(&self, pinned: &Pinned) -> Result<u32, KillError> {
        let stat = self
            .proc
            .stat(pinned.pid())
            .map_err(|_| KillError::Gone(pinned.pid()))?;
        Ok(stat.pgrp)
    }

    /// Whether process group `pgid` has a member that started no later than the event (so it
    /// is the group the event saw, not a newer one with a reused id).
    fn group_predates(&self, pgid: u32, event_boot_ns: u64) -> bool {
        self.proc.group_members(pgid).is_ok_and(|pids| {
            pids.iter().any(|&pid| {
                start_time(&self.proc, pid).is_ok_and(|started| {
                    started <= Duration::from_nanos(event_boot_ns) + START_SLACK
                })
            })
        })
    }

    fn cgroup_of(&self, pinned: &Pinned) -> Result<String, KillError> {
        let pid = pinned.pid();
        self.proc
            .cgroup(pid)
            .map_err(|_| KillError::Gone(pid))?
            .ok_or(KillError::NoCgroupPath(pid))
    }

    /// Checks every process the scope reaches.
    fn members(&self, scope: String, pids: &[u32]) -> Result<(), KillError> {
        for &pid in pids {
            if let Err(why) = self.protection.process(&self.proc, pid) {
                return Err(Protected::Member {
                    scope,
                    why: Box::new(why),
                }
                .into());
            }
        }
        Ok(())
    }

    fn group(&self, pinned: Option<Pinned>, pgid: u32) -> Result<Prepared, KillError> {
        self.protection.group(pgid)?;
        let pids = self
            .proc
            .group_members(pgid)
            .map_err(|source| KillError::Sys {
                call: "list /proc",
                pid: pgid,
                source,
            })?;
        self.members(format!("process group {pgid}"), &pids)?;
        Ok(Prepared::Group {
            pinned,
            pgid,
            members: pids.len(),
        })
    }

    fn cgroup(&self, pinned: Option<Pinned>, path: String) -> Result<Prepared, KillError> {
        let cgroups = self.cgroups.as_ref().ok_or(KillError::NoCgroupV2)?;
        self.protection.cgroup(&path)?;
        cgroups.kill_file(&path)?;
        let pids = cgroups.procs(&path)?;
        self.members(format!("cgroup {path}"), &pids)?;
        Ok(Prepared::Cgroup {
            pinned,
            path,
            members: pids.len(),
        })
    }
}

/// Signals the pinned target too (it may have left the group or cgroup in the meantime); a
/// target that is already gone is not an error, the group or cgroup is still killed.
fn signal_if_alive(pinned: Option<&Pinned>) -> Result<(), KillError> {
    match pinned.map(Pinned::signal) {
        None | Some(Ok(())) | Some(Err(KillError::Gone(_))) => Ok(()),
        Some(Err(e)) => Err(e),
    }
}

#[cfg(test)]
#[path = "scope_tests.rs"]
mod tests;
