//! What the engine never kills: pid 0 and 1, kernel threads, live processes whose executable
//! cannot be read, the engine itself (its process, its process group, its cgroup and the cgroups above it), the
//! root cgroup, and the executables listed with `enforcer run --never-kill`.

use std::path::{Path, PathBuf};

use super::procfs::ProcFs;

/// Why a target is protected (the detail of a `spared` record).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Protected {
    /// pid 0 (the idle task; `kill(0)` would signal the caller's group).
    #[error("pid 0 is not a process")]
    Pid0,
    /// pid 1.
    #[error("pid 1 (init) is never killed")]
    Init,
    /// The engine's own process.
    #[error("pid {0} is the engine itself")]
    Engine(u32),
    /// A kernel thread.
    #[error("pid {0} is a kernel thread")]
    KernelThread(u32),
    /// A live process (a thread of it is not exiting) whose executable link could not be read
    /// (with the error, so a spared record says why): what it runs is unknown, so it might be
    /// listed with `--never-kill`.
    #[error("pid {0} has no readable executable (/proc/{0}/exe: {1})")]
    NoExe(u32, String),
    /// An executable listed with `--never-kill`.
    #[error("pid {pid} runs {}, listed with --never-kill", path.display())]
    NeverKill {
        /// The process.
        pid: u32,
        /// Its executable.
        path: PathBuf,
    },
    /// The engine's process group.
    #[error("process group {0} is the engine's own")]
    EngineGroup(u32),
    /// Process group 0 or 1.
    #[error("process group {0} is never signalled (0: the kernel's, 1: init's)")]
    SystemGroup(u32),
    /// The root cgroup.
    #[error("the root cgroup is never killed")]
    RootCgroup,
    /// The engine's cgroup or one of its ancestors (`cgroup.kill` kills the descendants).
    #[error("cgroup {target} holds the engine (the engine runs in {engine})")]
    EngineCgroup {
        /// The cgroup that would be killed.
        target: String,
        /// The engine's cgroup.
        engine: String,
    },
    /// A process of the process group or cgroup that would be killed is protected.
    #[error("{scope} holds a protected process: {why}")]
    Member {
        /// `process group N` or `cgroup /path`.
        scope: String,
        /// Why that member is protected.
        why: Box<Protected>,
    },
}

/// The engine's own identity, which no kill may reach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineIdentity {
    /// Process id.
    pub pid: u32,
    /// Process group id.
    pub pgid: u32,
    /// cgroup v2 path (none when it cannot be read).
    pub cgroup: Option<String>,
}

impl EngineIdentity {
    /// The identity of the running process, read from `proc`.
    pub fn current(proc: &ProcFs) -> Self {
        let pid = std::process::id();
        Self {
            pid,
            pgid: nix::unistd::getpgrp().as_raw().unsigned_abs(),
            cgroup: proc.cgroup(pid).ok().flatten(),
        }
    }
}

/// The exclusion list: built-in protected processes plus `--never-kill` executables.
#[derive(Clone, Debug)]
pub struct Protection {
    engine: EngineIdentity,
    /// Each `--never-kill` path as given and, when it resolves, canonical (`/proc/<pid>/exe`
    /// names the resolved file).
    never_kill: Vec<PathBuf>,
}

impl Protection {
    /// Protects `engine` and the executables `never_kill` (absolute paths).
    pub fn new(engine: EngineIdentity, never_kill: &[PathBuf]) -> Self {
        let mut paths = Vec::with_capacity(never_kill.len() * 2);
        for path in never_kill {
            paths.push(path.clone());
            if let Ok(canonical) = std::fs::canonicalize(path)
                && canonical != *path
            {
                paths.push(canonical);
            }
        }
        Self {
            engine,
            never_kill: paths,
        }
    }

    /// The engine this protects.
    pub fn engine(&self) -> &EngineIdentity {
        &self.engine
    }

    fn never_kill(&self, exe: &Path) -> bool {
        self.never_kill.iter().any(|p| p == exe)
    }

    /// Whether process `pid` may be killed. A process that is gone, or dying (every thread
    /// exiting or a zombie), is not protected: nothing can harm it. Another agent, or a second
    /// rule, may have killed it a moment before.
    pub fn process(&self, proc: &ProcFs, pid: u32) -> Result<(), Protected> {
        match pid {
            0 => return Err(Protected::Pid0),
            1 => return Err(Protected::Init),
            _ if pid == self.engine.pid => return Err(Protected::Engine(pid)),
            _ => {}
        }
        let Ok(stat) = proc.stat(pid) else {
            return Ok(());
        };
        if stat.is_kernel_thread() {
            return Err(Protected::KernelThread(pid));
        }
        match proc.running_exe(pid) {
            Ok(Some(exe)) if self.never_kill(&exe) => Err(Protected::NeverKill { pid, path: exe }),
            Ok(_) => Ok(()),
            Err(err) => Err(Protected::NoExe(pid, err.to_string())),
        }
    }

    /// Whether process group `pgid` may be signalled as a whole (its members are checked by
    /// the caller with [`Protection::process`]).
    pub fn group(&self, pgid: u32) -> Result<(), Protected> {
        match pgid {
            0 | 1 => Err(Protected::SystemGroup(pgid)),
            _ if pgid == self.engine.pgid => Err(Protected::EngineGroup(pgid)),
            _ => Ok(()),
        }
    }

    /// Whether the cgroup at `path` (relative to the cgroup v2 mount) may be killed: never
    /// the root, the engine's cgroup, or an ancestor of it.
    pub fn cgroup(&self, path: &str) -> Result<(), Protected> {
        let target = path.trim_end_matches('/');
        if target.is_empty() {
            return Err(Protected::RootCgroup);
        }
        if let Some(engine) = &self.engine.cgroup {
            let below = engine
                .strip_prefix(target)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
            if below {
                return Err(Protected::EngineCgroup {
                    target: path.to_owned(),
                    engine: engine.clone(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::actions::procfs::{PF_EXITING, PF_KTHREAD, fake};

    fn engine() -> EngineIdentity {
        EngineIdentity {
            pid: 500,
            pgid: 490,
            cgroup: Some("/system.slice/enforcer.service".into()),
        }
    }

    #[test]
    fn built_in_protected_processes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fake::process(root, 102, "kworker/0:1", 0, PF_KTHREAD, None, None);
        fake::process(root, 103, "exiting", 103, 0, None, None);
        fake::process(root, 104, "xmrig", 104, 0, Some("/tmp/xmrig"), None);
        let proc = ProcFs::new(root);
        let p = Protection::new(engine(), &[]);
        assert_eq!(p.process(&proc, 0), Err(Protected::Pid0));
        assert_eq!(p.process(&proc, 1), Err(Protected::Init));
        assert_eq!(p.process(&proc, 500), Err(Protected::Engine(500)));
        assert_eq!(p.process(&proc, 102), Err(Protected::KernelThread(102)));
        assert!(
            matches!(p.process(&proc, 103), Err(Protected::NoExe(103, ref e)) if !e.is_empty()),
            "{:?}",
            p.process(&proc, 103)
        );
        assert_eq!(p.process(&proc, 104), Ok(()));
        assert_eq!(p.process(&proc, 999), Ok(()), "gone: not protected");
    }

    /// The flake this fixes: two engines (or two rules) kill one miner; the second finds it in
    /// `do_exit`, without an executable, and used to refuse with a misleading `spared`.
    #[test]
    fn a_dying_process_is_not_protected_but_a_live_thread_still_is() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let agent = "/opt/agent/bin/agent";
        let p = Protection::new(engine(), &[PathBuf::from(agent)]);
        let proc = ProcFs::new(root);
        // In do_exit after exit_mm: PF_EXITING, no executable.
        fake::process(root, 300, "xmrig", 300, PF_EXITING, None, None);
        assert_eq!(p.process(&proc, 300), Ok(()));
        // A zombie.
        fake::process(root, 301, "xmrig", 301, 0, None, None);
        fake::thread(root, 301, 301, 'Z', PF_EXITING, None);
        assert_eq!(p.process(&proc, 301), Ok(()));
        // The main thread has exited (a zombie leader), another runs on: its executable is
        // the process's, so --never-kill still protects it...
        fake::process(root, 302, "agent", 302, 0, None, None);
        fake::thread(root, 302, 302, 'Z', PF_EXITING, None);
        fake::thread(root, 302, 303, 'S', 0, Some(agent));
        assert_eq!(
            p.process(&proc, 302),
            Err(Protected::NeverKill {
                pid: 302,
                path: PathBuf::from(agent)
            })
        );
        // ...and an unlisted one may be killed.
        fake::process(root, 304, "xmrig", 304, 0, None, None);
        fake::thread(root, 304, 304, 'Z', PF_EXITING, None);
        fake::thread(root, 304, 305, 'R', 0, Some("/tmp/xmrig"));
        assert_eq!(p.process(&proc, 304), Ok(()));
        // A live thread without an executable: what runs is unknown, so it is spared.
        fake::process(root, 306, "odd", 306, 0, None, None);
        fake::thread(root, 306, 306, 'Z', PF_EXITING, None);
        fake::thread(root, 306, 307, 'S', 0, None);
        assert!(
            matches!(p.process(&proc, 306), Err(Protected::NoExe(306, ref e)) if e.contains("thread 307")),
            "{:?}",
            p.process(&proc, 306)
        );
    }

    #[test]
    fn a_never_kill_path_is_spared_even_when_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fake::process(
            root,
            200,
            "agent",
            200,
            0,
            Some("/opt/agent/bin/agent"),
            None,
        );
        fake::process(
            root,
            201,
            "agent",
            200,
            0,
            Some("/opt/agent/bin/agent (deleted)"),
            None,
        );
        fake::process(root, 202, "xmrig", 200, 0, Some("/tmp/xmrig"), None);
        let proc = ProcFs::new(root);
        let p = Protection::new(engine(), &[PathBuf::from("/opt/agent/bin/agent")]);
        let spared = p.process(&proc, 200).unwrap_err();
        assert_eq!(
            spared.to_string(),
            "pid 200 runs /opt/agent/bin/agent, listed with --never-kill"
        );
        assert!(matches!(
            p.process(&proc, 201),
            Err(Protected::NeverKill { .. })
        ));
        assert_eq!(p.process(&proc, 202), Ok(()));
    }

    #[test]
    fn a_never_kill_symlink_matches_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real-agent");
        std::fs::write(&real, b"").unwrap();
        let link = dir.path().join("agent");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let proc_dir = dir.path().join("proc");
        let canonical = std::fs::canonicalize(&real).unwrap();
        fake::process(&proc_dir, 300, "agent", 300, 0, canonical.to_str(), None);
        let p = Protection::new(engine(), &[link]);
        assert!(matches!(
            p.process(&ProcFs::new(&proc_dir), 300),
            Err(Protected::NeverKill { .. })
        ));
    }

    #[test]
    fn groups_and_cgroups() {
        let p = Protection::new(engine(), &[]);
        assert_eq!(p.group(0), Err(Protected::SystemGroup(0)));
        assert_eq!(p.group(1), Err(Protected::SystemGroup(1)));
        assert_eq!(p.group(490), Err(Protected::EngineGroup(490)));
        assert_eq!(p.group(491), Ok(()));
        assert_eq!(p.cgroup("/"), Err(Protected::RootCgroup));
        assert!(matches!(
            p.cgroup("/system.slice/enforcer.service"),
            Err(Protected::EngineCgroup { .. })
        ));
        assert!(matches!(
            p.cgroup("/system.slice"),
            Err(Protected::EngineCgroup { .. })
        ));
        assert_eq!(
            p.cgroup("/system.slice/enforcer"),
            Ok(()),
            "a sibling prefix"
        );
        assert_eq!(p.cgroup("/system.slice/miner.service"), Ok(()));
    }
}
