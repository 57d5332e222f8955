//! Reads what the kill path needs from a proc filesystem mounted anywhere (the real `/proc`,
//! or a fake tree in tests): a process's stat fields (state, process group, flags, start
//! time), its executable (or, when its main thread has exited, a live thread's), its cgroup v2
//! path, and the processes of a process group.

use std::{
    io,
    path::{Path, PathBuf},
};

/// `task_struct.flags` bit of a kernel thread (`PF_KTHREAD`, include/linux/sched.h).
pub const PF_KTHREAD: u32 = 0x0020_0000;

/// `task_struct.flags` bit of a task in `do_exit` (`PF_EXITING`, include/linux/sched.h). It is
/// set before the task drops its memory map: a user task without an executable has it (or is
/// already a zombie).
pub const PF_EXITING: u32 = 0x0000_0004;

/// Longest file read from proc (stat and cgroup files are far shorter).
const MAX_READ: usize = 64 * 1024;

/// The fields of `/proc/<pid>/stat` the kill path uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    /// Process state (`R`, `S`, `Z`, ...).
    pub state: char,
    /// Parent process id.
    pub ppid: u32,
    /// Process group id.
    pub pgrp: u32,
    /// `task_struct.flags` (see [`PF_KTHREAD`]).
    pub flags: u32,
    /// Start time after boot, in clock ticks.
    pub start_ticks: u64,
}

impl Stat {
    /// Whether the task is a kernel thread.
    pub fn is_kernel_thread(&self) -> bool {
        self.flags & PF_KTHREAD != 0
    }

    /// Whether the process has exited and waits to be reaped (a zombie).
    pub fn is_zombie(&self) -> bool {
        matches!(self.state, 'Z' | 'X')
    }

    /// Whether the task is dying: in `do_exit` ([`PF_EXITING`]) or a zombie.
    pub fn is_exiting(&self) -> bool {
        self.flags & PF_EXITING != 0 || self.is_zombie()
    }
}

/// Parses the text of `/proc/<pid>/stat`. The command name is in parentheses and may hold
/// spaces and parentheses itself, so the fields are counted after the last `)`.
pub fn parse_stat(text: &str) -> Option<Stat> {
    let (_, rest) = text.rsplit_once(')')?;
    // Fields 3.. of proc_pid_stat(5): state ppid pgrp session tty_nr tpgid flags ...
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).copied();
    Some(Stat {
        state: field(3)?.chars().next()?,
        ppid: field(4)?.parse().ok()?,
        pgrp: field(5)?.parse().ok()?,
        flags: field(9)?.parse().ok()?,
        start_ticks: field(22)?.parse().ok()?,
    })
}

/// The cgroup v2 path (`0::<path>` line) of `/proc/<pid>/cgroup`.
pub fn parse_cgroup_v2(text: &str) -> Option<String> {
    text.lines()
        .find_map(|line| line.strip_prefix("0::"))
        .map(str::to_owned)
        .filter(|p| p.starts_with('/'))
}

/// A proc filesystem.
#[derive(Clone, Debug)]
pub struct ProcFs {
    root: PathBuf,
}

impl ProcFs {
    /// The proc filesystem at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The system's `/proc`.
    pub fn real() -> Self {
        Self::new("/proc")
    }

    /// Where it is mounted.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn read(&self, pid: u32, file: &str) -> io::Result<String> {
        self.read_path(&self.root.join(pid.to_string()).join(file))
    }

    fn read_path(&self, path: &Path) -> io::Result<String> {
        let bytes = std::fs::read(path)?;
        if bytes.len() > MAX_READ {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is larger than {MAX_READ} bytes", path.display()),
            ));
        }
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// The stat fields of `pid`.
    pub fn stat(&self, pid: u32) -> io::Result<Stat> {
        self.stat_at(&self.root.join(pid.to_string()))
    }

    /// The stat fields of the task whose proc directory is `dir`.
    fn stat_at(&self, dir: &Path) -> io::Result<Stat> {
        let path = dir.join("stat");
        let text = self.read_path(&path)?;
        parse_stat(&text).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("malformed {}", path.display()),
            )
        })
    }

    /// The executable of `pid` (`/proc/<pid>/exe`), without the ` (deleted)` the kernel adds
    /// when the file was removed or replaced after the exec.
    pub fn exe(&self, pid: u32) -> io::Result<PathBuf> {
        exe_at(&self.root.join(pid.to_string()))
    }

    /// The executable a live thread of process `pid` runs. `/proc/<pid>/exe` is the main
    /// thread's, which has none once that thread has exited, even while other threads run on:
    /// then the first readable `/proc/<pid>/task/<tid>/exe` answers.
    ///
    /// `Ok(None)` when no thread is left alive (each is exiting, a zombie or gone): the
    /// process is dying. An error when a thread that is not exiting has no executable, or
    /// the threads cannot be listed.
    pub fn running_exe(&self, pid: u32) -> io::Result<Option<PathBuf>> {
        if let Ok(exe) = self.exe(pid) {
            return Ok(Some(exe));
        }
        let tasks = self.root.join(pid.to_string()).join("task");
        let threads = match std::fs::read_dir(&tasks) {
            Ok(threads) => threads,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err),
        };
        for thread in threads.filter_map(Result::ok) {
            let dir = thread.path();
            let exe = match exe_at(&dir) {
                Ok(exe) => return Ok(Some(exe)),
                Err(err) => err,
            };
            // Read after the executable: a thread that lost it in do_exit shows PF_EXITING.
            match self.stat_at(&dir) {
                Ok(stat) if !stat.is_exiting() => {
                    let tid = thread.file_name();
                    let tid = tid.to_string_lossy();
                    return Err(io::Error::new(exe.kind(), format!("thread {tid}: {exe}")));
                }
                _ => {}
            }
        }
        Ok(None)
    }

    /// The cgroup v2 path of `pid`, relative to the cgroup v2 mount (`/` is the root).
    pub fn cgroup(&self, pid: u32) -> io::Result<Option<String>> {
        Ok(parse_cgroup_v2(&self.read(pid, "cgroup")?))
    }

    /// Every process id listed (ascending).
    pub fn pids(&self) -> io::Result<Vec<u32>> {
        let mut pids: Vec<u32> = std::fs::read_dir(&self.root)?
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect();
        pids.sort_unstable();
        Ok(pids)
    }

    /// The processes of process group `pgid` (ascending; processes that vanish while they are
    /// read are left out).
    pub fn group_members(&self, pgid: u32) -> io::Result<Vec<u32>> {
        Ok(self
            .pids()?
            .into_iter()
            .filter(|&pid| self.stat(pid).is_ok_and(|s| s.pgrp == pgid))
            .collect())
    }
}

/// The executable of the task whose proc directory is `dir`, without ` (deleted)`.
fn exe_at(dir: &Path) -> io::Result<PathBuf> {
    let link = std::fs::read_link(dir.join("exe"))?;
    let text = link.to_string_lossy();
    Ok(match text.strip_suffix(" (deleted)") {
        Some(path) => PathBuf::from(path),
        None => link,
    })
}

#[cfg(test)]
pub(crate) mod fake {
    //! A fake proc tree for tests.
    #![allow(clippy::unwrap_used)]

    use std::path::Path;

    /// Writes process `pid` under `root`: stat (with `comm`, `pgrp`, `flags`), an `exe` link
    /// (when given) and a cgroup file (when given); its main thread's `task/<pid>` holds the
    /// same stat and link.
    pub(crate) fn process(
        root: &Path,
        pid: u32,
        comm: &str,
        pgrp: u32,
        flags: u32,
        exe: Option<&str>,
        cgroup: Option<&str>,
    ) {
        let dir = root.join(pid.to_string());
        task(&dir, pid, comm, 'S', pgrp, flags, exe);
        task(
            &dir.join("task").join(pid.to_string()),
            pid,
            comm,
            'S',
            pgrp,
            flags,
            exe,
        );
        if let Some(cgroup) = cgroup {
            std::fs::write(
                dir.join("cgroup"),
                format!("12:memory:/legacy\n0::{cgroup}\n"),
            )
            .unwrap();
        }
    }

    /// Writes thread `tid` of process `pid` (`task/<tid>`) with its `state`, `flags` and
    /// `exe` link (when given); `tid == pid` rewrites the main thread, and the process files
    /// with it (they show the main thread).
    pub(crate) fn thread(
        root: &Path,
        pid: u32,
        tid: u32,
        state: char,
        flags: u32,
        exe: Option<&str>,
    ) {
        let process = root.join(pid.to_string());
        let mut dirs = vec![process.join("task").join(tid.to_string())];
        if tid == pid {
            dirs.push(process);
        }
        for dir in dirs {
            let _ = std::fs::remove_file(dir.join("exe"));
            task(&dir, tid, "thread", state, pid, flags, exe);
        }
    }

    fn task(
        dir: &Path,
        id: u32,
        comm: &str,
        state: char,
        pgrp: u32,
        flags: u32,
        exe: Option<&str>,
    ) {
        std::fs::create_dir_all(dir).unwrap();
        let stat = format!(
            "{id} ({comm}) {state} 1 {pgrp} {pgrp} 0 -1 {flags} 10 0 0 0 0 0 0 0 20 0 1 0 4242 1000 100 \
             18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n"
        );
        std::fs::write(dir.join("stat"), stat).unwrap();
        if let Some(exe) = exe {
            std::os::unix::fs::symlink(exe, dir.join("exe")).unwrap();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn stat_fields_follow_the_last_parenthesis() {
        let stat =
            parse_stat("77 (a) b (c)) Z 5 70 70 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 123456 0 0")
                .unwrap();
        assert_eq!(
            stat,
            Stat {
                state: 'Z',
                ppid: 5,
                pgrp: 70,
                flags: 4_194_560,
                start_ticks: 123_456
            }
        );
        assert!(stat.is_zombie());
        assert!(!stat.is_kernel_thread());
        assert_eq!(parse_stat("77 (a) S 5"), None);
        assert_eq!(parse_stat("no parenthesis"), None);
    }

    #[test]
    fn the_real_stat_of_this_process_parses() {
        let me = std::process::id();
        let stat = ProcFs::real().stat(me).unwrap();
        assert_eq!(stat.pgrp, nix::unistd::getpgrp().as_raw().unsigned_abs());
        assert!(!stat.is_kernel_thread());
        assert_eq!(
            ProcFs::real().exe(me).unwrap(),
            std::env::current_exe().unwrap()
        );
    }

    #[test]
    fn cgroup_v2_line() {
        assert_eq!(
            parse_cgroup_v2("4:memory:/x\n0::/system.slice/miner.service\n").as_deref(),
            Some("/system.slice/miner.service")
        );
        assert_eq!(parse_cgroup_v2("0::/\n").as_deref(), Some("/"));
        assert_eq!(parse_cgroup_v2("4:memory:/x\n"), None);
        // A process in a cgroup outside its namespace's root is shown with `..`: not absolute
        // below the mount, so not a path the engine can use as is (cgroupfs rejects it).
        assert_eq!(parse_cgroup_v2("0::../../x\n"), None);
    }

    #[test]
    fn a_fake_tree_gives_groups_cgroups_and_executables() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fake::process(root, 100, "sh", 100, 0, Some("/bin/sh"), Some("/a"));
        fake::process(
            root,
            101,
            "xmrig",
            100,
            0,
            Some("/tmp/xmrig (deleted)"),
            Some("/a/b"),
        );
        fake::process(root, 102, "kworker/0:1", 0, PF_KTHREAD, None, None);
        fake::process(root, 205, "other", 205, 0, Some("/bin/true"), Some("/"));
        std::fs::create_dir(root.join("self")).unwrap();
        let proc = ProcFs::new(root);
        assert_eq!(proc.pids().unwrap(), [100, 101, 102, 205]);
        assert_eq!(proc.group_members(100).unwrap(), [100, 101]);
        assert_eq!(proc.group_members(7).unwrap(), Vec::<u32>::new());
        assert_eq!(proc.stat(101).unwrap().pgrp, 100);
        assert!(proc.stat(102).unwrap().is_kernel_thread());
        assert_eq!(proc.exe(101).unwrap(), Path::new("/tmp/xmrig"));
        assert!(proc.exe(102).is_err());
        assert_eq!(proc.cgroup(101).unwrap().as_deref(), Some("/a/b"));
        assert_eq!(proc.cgroup(205).unwrap().as_deref(), Some("/"));
        assert_eq!(proc.stat(999).unwrap_err().kind(), io::ErrorKind::NotFound);
    }
}
