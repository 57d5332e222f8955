//! Kills at each scope on real processes: process groups of `sleep` children, a child cgroup
//! under the cgroup v2 mount (root only; skipped loudly otherwise, or a failure with
//! `ENFORCER_REQUIRE_HOST=1`), and the refusals of the engine's own pid, group and cgroup.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    os::unix::{fs::MetadataExt as _, process::CommandExt as _, process::ExitStatusExt as _},
    path::PathBuf,
    process::{Child, Command},
    time::{Duration, Instant},
};

use enforcer_policy::KillScope;

use super::*;
use crate::actions::{protect::EngineIdentity, test_host::host_or_skip};

fn killer(never_kill: &[PathBuf]) -> Killer {
    let proc = ProcFs::real();
    let engine = EngineIdentity::current(&proc);
    Killer::new(
        proc,
        CgroupFs::discover(),
        Protection::new(engine, never_kill),
    )
}

fn spawn(program: &str, arg: &str, group: Option<i32>) -> Child {
    let mut cmd = Command::new(program);
    cmd.arg(arg);
    if let Some(pgid) = group {
        cmd.process_group(pgid);
    }
    cmd.spawn().unwrap()
}

fn now_target(pid: u32) -> Target {
    std::thread::sleep(Duration::from_millis(20));
    Target {
        pid,
        event_boot_ns: boot_now_ns(),
        cgroup_id: None,
        pgid: None,
    }
}

fn assert_killed(children: &mut [Child]) {
    for child in children {
        assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
    }
}

fn reap(children: &mut [Child]) {
    for child in children {
        let _ = child.kill();
        let _ = child.wait();
    }
}

#[test]
fn process_scope_kills_the_target_only() {
    let mut target = spawn("sleep", "30", None);
    let mut other = spawn("sleep", "30", None);
    let k = killer(&[]);
    let prepared = k
        .prepare(KillScope::Process, now_target(target.id()))
        .unwrap();
    let done = k.execute(prepared).unwrap();
    assert_eq!(done.what, format!("pid {}", target.id()));
    assert_killed(std::slice::from_mut(&mut target));
    assert_eq!(other.try_wait().unwrap(), None);
    reap(std::slice::from_mut(&mut other));
}

#[test]
fn process_group_scope_kills_every_member() {
    let leader = spawn("sleep", "30", Some(0));
    let pgid = i32::try_from(leader.id()).unwrap();
    let mut group = vec![
        leader,
        spawn("sleep", "30", Some(pgid)),
        spawn("sleep", "30", Some(pgid)),
    ];
    let mut outsider = spawn("sleep", "30", Some(0));
    let k = killer(&[]);
    let before = boot_now_ns();
    let prepared = k
        .prepare(KillScope::ProcessGroup, now_target(group[1].id()))
        .unwrap();
    let done = k.execute(prepared).unwrap();
    assert_eq!(done.what, format!("process group {pgid} (3 processes)"));
    assert!(done.acted_boot_ns > before);
    assert_killed(&mut group);
    assert_eq!(outsider.try_wait().unwrap(), None, "another group survives");
    reap(std::slice::from_mut(&mut outsider));
}

#[test]
fn a_group_holding_a_never_kill_executable_is_spared() {
    let leader = spawn("sleep", "30", Some(0));
    let pgid = i32::try_from(leader.id()).unwrap();
    let mut group = vec![leader, spawn("tail", "-f", Some(pgid))];
    std::thread::sleep(Duration::from_millis(50));
    let tail = ProcFs::real().exe(group[1].id()).unwrap();
    let k = killer(std::slice::from_ref(&tail));
    let err = k
        .prepare(KillScope::ProcessGroup, now_target(group[0].id()))
        .unwrap_err();
    assert!(err.is_protected(), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "process group {pgid} holds a protected process: pid {} runs {}, listed with --never-kill",
            group[1].id(),
            tail.display()
        )
    );
    // The protected process itself is spared as a target, whatever the scope.
    let err = k
        .prepare(KillScope::Process, now_target(group[1].id()))
        .unwrap_err();
    assert!(err.is_protected(), "{err}");
    for child in &mut group {
        assert_eq!(child.try_wait().unwrap(), None, "nothing was killed");
    }
    reap(&mut group);
}

#[test]
fn the_engine_pid_group_and_cgroup_are_refused() {
    let k = killer(&[]);
    let me = now_target(std::process::id());
    for scope in [
        KillScope::Process,
        KillScope::ProcessGroup,
        KillScope::Cgroup,
    ] {
        let err = k.prepare(scope, me).unwrap_err();
        assert!(
            matches!(err, KillError::Protected(Protected::Engine(_))),
            "{err}"
        );
    }
    // A child in the engine's own process group and cgroup.
    let mut child = spawn("sleep", "30", None);
    let target = now_target(child.id());
    let err = k.prepare(KillScope::ProcessGroup, target).unwrap_err();
    assert!(
        matches!(err, KillError::Protected(Protected::EngineGroup(_))),
        "{err}"
    );
    if k.cgroups.is_some() {
        let err = k.prepare(KillScope::Cgroup, target).unwrap_err();
        assert!(
            matches!(
                err,
                KillError::Protected(Protected::EngineCgroup { .. } | Protected::RootCgroup)
            ),
            "{err}"
        );
    }
    assert_eq!(child.try_wait().unwrap(), None, "must still run");
    reap(std::slice::from_mut(&mut child));
}

#[test]
fn widening_a_kernel_kill_checks_pid_reuse_and_needs_the_group() {
    let k = killer(&[]);
    let event = boot_now_ns();
    std::thread::sleep(Duration::from_millis(50));
    let mut young = spawn("sleep", "30", Some(0));
    let target = Target {
        pid: young.id(),
        event_boot_ns: event,
        cgroup_id: None,
        pgid: None,
    };
    let err = k
        .prepare_extension(KillScope::ProcessGroup, target)
        .unwrap_err();
    assert!(matches!(err, KillError::Reused { .. }), "{err}");
    assert_eq!(
        young.try_wait().unwrap(),
        None,
        "a reused pid is not touched"
    );
    reap(std::slice::from_mut(&mut young));
    // The kernel-killed process is gone (reaped): its group cannot be found.
    let gone = Target {
        pid: young.id(),
        event_boot_ns: boot_now_ns(),
        cgroup_id: None,
        pgid: None,
    };
    let err = k
        .prepare_extension(KillScope::ProcessGroup, gone)
        .unwrap_err();
    assert!(
        matches!(err, KillError::GroupUnknown(_) | KillError::Reused { .. }),
        "{err}"
    );
    assert!(
        k.prepare_extension(KillScope::Process, gone)
            .unwrap()
            .is_none()
    );
}

#[test]
fn a_reaped_group_leader_is_widened_to_the_group_it_led() {
    let k = killer(&[]);
    let mut leader = spawn("sleep", "30", Some(0));
    let pgid = i32::try_from(leader.id()).unwrap();
    let mut member = spawn("sleep", "30", Some(pgid));
    // The kernel killed the leader and its parent reaped it before the daemon looked.
    let event = now_target(leader.id());
    reap(std::slice::from_mut(&mut leader));
    let prepared = k
        .prepare_extension(KillScope::ProcessGroup, event)
        .unwrap()
        .unwrap();
    let done = k.execute(prepared).unwrap();
    assert_eq!(done.what, format!("process group {pgid} (1 processes)"));
    assert_killed(std::slice::from_mut(&mut member));
}

#[test]
fn a_group_younger_than_the_event_is_not_the_event_s_group() {
    let k = killer(&[]);
    let event = boot_now_ns();
    std::thread::sleep(Duration::from_millis(50));
    let mut leader = spawn("sleep", "30", Some(0));
    let pgid = i32::try_from(leader.id()).unwrap();
    let mut member = spawn("sleep", "30", Some(pgid));
    let gone = leader.id();
    reap(std::slice::from_mut(&mut leader));
    // By the pid it led, or by the event's process group: every member started after the
    // event, so the group is a newer one.
    for pgid in [None, Some(gone)] {
        let target = Target {
            pid: gone,
            event_boot_ns: event,
            cgroup_id: None,
            pgid,
        };
        let err = k
            .prepare_extension(KillScope::ProcessGroup, target)
            .unwrap_err();
        assert!(matches!(err, KillError::GroupUnknown(_)), "{err}");
    }
    assert_eq!(member.try_wait().unwrap(), None, "must still run");
    // The event's process group, when it predates the event, is used.
    let target = Target {
        pid: gone,
        event_boot_ns: boot_now_ns(),
        cgroup_id: None,
        pgid: Some(gone),
    };
    let prepared = k
        .prepare_extension(KillScope::ProcessGroup, target)
        .unwrap()
        .unwrap();
    k.execute(prepared).unwrap();
    assert_killed(std::slice::from_mut(&mut member));
}

/// A child cgroup for a test, removed (after killing what is left in it) on drop.
struct TestCgroup {
    dir: PathBuf,
    path: String,
}

impl TestCgroup {
    fn create(test: &str) -> Option<Self> {
        if !host_or_skip(test, "root and a writable cgroup v2 hierarchy") {
            return None;
        }
        let Some(cg) = CgroupFs::discover() else {
            if std::env::var("ENFORCER_REQUIRE_HOST").as_deref() == Ok("1") {
                panic!("{test}: no cgroup v2 hierarchy mounted");
            }
            eprintln!("SKIPPED {test}: no cgroup v2 hierarchy mounted");
            return None;
        };
        let path = format!("/enforcer-test-{}-{test}", std::process::id());
        let dir = cg.dir(&path).unwrap();
        if let Err(e) = std::fs::create_dir(&dir) {
            if std::env::var("ENFORCER_REQUIRE_HOST").as_deref() == Ok("1") {
                panic!("{test}: cannot create {}: {e}", dir.display());
            }
            eprintln!("SKIPPED {test}: cannot create {}: {e}", dir.display());
            return None;
        }
        Some(Self { dir, path })
    }

    fn add(&self, child: &Child) {
        std::fs::write(self.dir.join("cgroup.procs"), child.id().to_string()).unwrap();
    }

    fn procs(&self) -> String {
        std::fs::read_to_string(self.dir.join("cgroup.procs")).unwrap()
    }

    fn id(&self) -> u64 {
        std::fs::metadata(&self.dir).unwrap().ino()
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = std::fs::write(self.dir.join("cgroup.kill"), "1");
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::fs::remove_dir(&self.dir).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

#[test]
fn cgroup_scope_kills_the_cgroup_and_leaves_it_empty() {
    let Some(cg) = TestCgroup::create("cgroup-scope") else {
        return;
    };
    let mut inside = vec![spawn("sleep", "30", None), spawn("sleep", "30", None)];
    for child in &inside {
        cg.add(child);
    }
    let mut outside = spawn("sleep", "30", None);
    let k = killer(&[]);
    let prepared = k
        .prepare(KillScope::Cgroup, now_target(inside[0].id()))
        .unwrap();
    let done = k.execute(prepared).unwrap();
    assert_eq!(done.what, format!("cgroup {} (2 processes)", cg.path));
    assert_killed(&mut inside);
    assert_eq!(cg.procs(), "", "the cgroup is empty");
    assert_eq!(
        outside.try_wait().unwrap(),
        None,
        "outside the cgroup survives"
    );
    reap(std::slice::from_mut(&mut outside));
}

#[test]
fn a_kernel_kill_is_widened_to_the_event_cgroup_when_the_target_is_gone() {
    let Some(cg) = TestCgroup::create("cgroup-extension") else {
        return;
    };
    let mut inside = vec![spawn("sleep", "30", None), spawn("sleep", "30", None)];
    for child in &inside {
        cg.add(child);
    }
    // The process the kernel killed: reaped, only the event's cgroup id is left.
    let mut killed = spawn("sleep", "30", None);
    let gone = killed.id();
    reap(std::slice::from_mut(&mut killed));
    let k = killer(&[]);
    let target = Target {
        pid: gone,
        event_boot_ns: boot_now_ns(),
        cgroup_id: Some(cg.id()),
        pgid: None,
    };
    let prepared = k
        .prepare_extension(KillScope::Cgroup, target)
        .unwrap()
        .unwrap();
    let done = k.execute(prepared).unwrap();
    assert_eq!(done.what, format!("cgroup {} (2 processes)", cg.path));
    assert_killed(&mut inside);
    assert_eq!(cg.procs(), "");
}

#[test]
fn a_cgroup_that_holds_the_engine_is_refused() {
    let Some(cg) = TestCgroup::create("cgroup-engine") else {
        return;
    };
    let mut inside = spawn("sleep", "30", None);
    cg.add(&inside);
    let proc = ProcFs::real();
    let engine = EngineIdentity {
        cgroup: Some(format!("{}/engine", cg.path)),
        ..EngineIdentity::current(&proc)
    };
    let k = Killer::new(proc, CgroupFs::discover(), Protection::new(engine, &[]));
    let err = k
        .prepare(KillScope::Cgroup, now_target(inside.id()))
        .unwrap_err();
    assert!(
        matches!(err, KillError::Protected(Protected::EngineCgroup { .. })),
        "{err}"
    );
    assert_eq!(inside.try_wait().unwrap(), None, "must still run");
    reap(std::slice::from_mut(&mut inside));
}

/// A forked child of this test binary whose main thread has exited while a second thread
/// sleeps on: its leader is a zombie and `/proc/<pid>/exe` is gone; only `task/<tid>/exe`
/// names it. Dropped before [`ForkedChild::wait`] (a failed assertion), it is killed and
/// reaped, so it cannot hold the test's output pipe open.
struct ForkedChild {
    pid: nix::unistd::Pid,
    reaped: bool,
}

impl ForkedChild {
    fn whose_main_thread_exited() -> Self {
        extern "C" fn park(_: *mut libc::c_void) -> *mut libc::c_void {
            loop {
                // SAFETY: pause has no preconditions.
                unsafe { libc::pause() };
            }
        }
        // SAFETY: the child only calls pthread_create, pause and the exit system call, which
        // take no lock another thread of this (multithreaded) test process could have held at
        // the fork.
        let pid = match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let mut thread: libc::pthread_t = 0;
                // SAFETY: `park` has the signature pthread_create expects and ignores its
                // argument; a null attribute pointer asks for the defaults. The raw exit
                // system call ends this thread alone, without the unwinding of pthread_exit
                // (which aborts in Rust frames).
                unsafe {
                    libc::pthread_create(&mut thread, std::ptr::null(), park, std::ptr::null_mut());
                    libc::syscall(libc::SYS_exit, 0);
                }
                unreachable!("the exit system call returned");
            }
            nix::unistd::ForkResult::Parent { child } => child,
        };
        let child = Self { pid, reaped: false };
        let (proc, id) = (ProcFs::real(), child.id());
        let deadline = Instant::now() + Duration::from_secs(5);
        while proc.exe(id).is_ok() || !proc.stat(id).unwrap().is_zombie() {
            assert!(
                Instant::now() < deadline,
                "pid {id}: the main thread never exited"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        child
    }

    fn id(&self) -> u32 {
        self.pid.as_raw().unsigned_abs()
    }

    fn wait(&mut self) -> nix::sys::wait::WaitStatus {
        let status = nix::sys::wait::waitpid(self.pid, None).unwrap();
        self.reaped = true;
        status
    }
}

impl Drop for ForkedChild {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = nix::sys::signal::kill(self.pid, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(self.pid, None);
        }
    }
}

#[test]
fn a_never_kill_process_whose_main_thread_exited_is_still_spared() {
    let this = std::env::current_exe().unwrap();
    let mut child = ForkedChild::whose_main_thread_exited();
    let pid = child.id();
    assert_eq!(ProcFs::real().running_exe(pid).unwrap(), Some(this.clone()));
    let err = killer(std::slice::from_ref(&this))
        .prepare(KillScope::Process, now_target(pid))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "pid {pid} runs {}, listed with --never-kill",
            this.display()
        )
    );
    // Not listed, it is killed: the signal reaches the thread that runs on.
    let k = killer(&[]);
    let done = k
        .execute(k.prepare(KillScope::Process, now_target(pid)).unwrap())
        .unwrap();
    assert_eq!(done.what, format!("pid {pid}"));
    assert_eq!(
        child.wait(),
        nix::sys::wait::WaitStatus::Signaled(child.pid, nix::sys::signal::Signal::SIGKILL, false)
    );
}
