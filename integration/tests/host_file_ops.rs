//! Host-tier tests of the file operations beyond open/unlink/rename/chmod/chown (signal tier:
//! no BPF LSM on the host): link, symlink, mkdir, rmdir, setxattr, utimes, truncate, mount,
//! umount, and fchmod/fchown/ftruncate/futimens on a descriptor. Each is triggered by its real
//! system call on a watched path and the decoded record's fields are checked; a denied mkdir
//! kills the caller, also when its path is written with `..`, `.` or `//` to dodge the kernel's
//! prefix match (reported by the kernel, matched and killed in userspace on the cleaned path);
//! 2,000 mkdir/rmdir pairs outside every watched path produce no record and are counted as
//! filtered in the kernel.
//! Needs root; skips loudly otherwise (fails under ENFORCER_REQUIRE_HOST=1, as in CI).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod host;

use std::{
    ffi::CString,
    os::{fd::AsRawFd as _, unix::process::ExitStatusExt as _},
    path::Path,
    process::Command,
    sync::Mutex,
    time::Duration,
};

use host::{Engine, actions, can_run, canonical_workdir, cpath, stop_counter};
use serde_json::Value;

static SERIAL: Mutex<()> = Mutex::new(());

/// A policy watching `dir/w/` for every new file kind, and denying directories made under
/// `dir/deny/`.
fn policy(dir: &Path) -> String {
    let d = dir.display();
    format!(
        r#"version: 1
rules:
  - id: watch-link
    expression: link.file.path startswith "{d}/w/"
    action: alert
  - id: watch-mkdir
    expression: mkdir.file.path startswith "{d}/w/"
    action: alert
  - id: watch-rmdir
    expression: rmdir.file.path startswith "{d}/w/"
    action: alert
  - id: watch-setxattr
    expression: setxattr.file.path startswith "{d}/w/"
    action: alert
  - id: watch-utimes
    expression: utimes.file.path startswith "{d}/w/"
    action: alert
  - id: watch-truncate
    expression: truncate.file.path startswith "{d}/w/"
    action: alert
  - id: watch-mount
    expression: mount.target startswith "{d}/w/"
    action: alert
  - id: watch-umount
    expression: umount.target startswith "{d}/w/"
    action: alert
  - id: watch-chmod
    expression: chmod.file.path startswith "{d}/w/"
    action: alert
  - id: watch-chown
    expression: chown.file.path startswith "{d}/w/"
    action: alert
  - id: deny-mkdir
    expression: mkdir.file.path startswith "{d}/deny/"
    action: deny
"#
    )
}

/// Waits for the event with `file.operation` `op` on `path` and returns it.
fn wait_op(engine: &mut Engine, op: &str, path: &Path) -> Value {
    let path = path.to_str().unwrap().to_owned();
    let r = engine.wait_for(Duration::from_secs(10), &format!("{op} {path}"), |r| {
        r["type"] == "event"
            && r["event"]["file"]["operation"] == op
            && r["event"]["file"]["path"] == path.as_str()
    });
    let ev = r["event"].clone();
    assert_eq!(ev["hook"], "tp/syscalls/sys_enter_<path syscall>", "{ev:#}");
    ev
}

/// Asserts the event came from this process.
fn ours(ev: &Value) {
    assert_eq!(ev["process"]["pid"], std::process::id(), "{ev:#}");
    assert!(
        !ev["process"]["comm"].as_str().unwrap_or("").is_empty(),
        "{ev:#}"
    );
}

#[test]
fn signal_tier_reports_each_new_file_operation() {
    if !can_run("signal_tier_reports_each_new_file_operation") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (_tmp, dir) = canonical_workdir(&["w", "deny"]);
    let w = dir.join("w");
    let a = w.join("a");
    std::fs::write(&a, b"0123456789").unwrap();
    let mut engine = Engine::start(&dir, &policy(&dir), "block");

    // mkdir (mkdirat(AT_FDCWD, ...)), then rmdir.
    let d = w.join("d");
    // SAFETY: valid NUL-terminated paths; plain syscalls on our own temporary files.
    assert_eq!(unsafe { libc::mkdir(cpath(&d).as_ptr(), 0o750) }, 0);
    let ev = wait_op(&mut engine, "mkdir", &d);
    assert_eq!(ev["kind"], "mkdir");
    assert_eq!(ev["mkdir"]["file"]["path"], d.to_str().unwrap());
    assert_eq!(ev["mkdir"]["mode"], 0o750, "{ev:#}");
    ours(&ev);
    // SAFETY: as above.
    assert_eq!(unsafe { libc::rmdir(cpath(&d).as_ptr()) }, 0);
    let ev = wait_op(&mut engine, "rmdir", &d);
    assert_eq!(ev["rmdir"]["file"]["name"], "d", "{ev:#}");
    ours(&ev);

    // Hard link: the new name is the path, the existing file the target.
    let h = w.join("h");
    // SAFETY: as above.
    let r = unsafe { libc::link(cpath(&a).as_ptr(), cpath(&h).as_ptr()) };
    assert_eq!(r, 0);
    let ev = wait_op(&mut engine, "link", &h);
    assert_eq!(ev["kind"], "link");
    assert_eq!(ev["link"]["target"]["path"], a.to_str().unwrap(), "{ev:#}");
    assert_eq!(ev["link"]["is_symlink"], false);
    assert_eq!(ev["file"]["new_path"], a.to_str().unwrap());
    ours(&ev);

    // Symlink by a child, relative to its working directory: the text as written.
    let s = w.join("s");
    let status = Command::new("ln")
        .args(["-s", "/etc/hostname", "s"])
        .current_dir(&w)
        .status()
        .unwrap();
    assert!(status.success());
    let ev = wait_op(&mut engine, "symlink", &s);
    assert_eq!(ev["kind"], "link");
    assert_eq!(ev["link"]["is_symlink"], true);
    assert_eq!(ev["link"]["target"]["path"], "/etc/hostname", "{ev:#}");
    assert_eq!(ev["file"]["path_relative"], true, "{ev:#}");
    assert_eq!(ev["process"]["comm"], "ln");

    // setxattr (recorded at the call: the file system may refuse user attributes).
    let name = CString::new("user.enforcer").unwrap();
    // SAFETY: valid path, name and a 1-byte value.
    unsafe {
        libc::setxattr(
            cpath(&a).as_ptr(),
            name.as_ptr(),
            b"v".as_ptr().cast(),
            1,
            0,
        )
    };
    let ev = wait_op(&mut engine, "setxattr", &a);
    assert_eq!(ev["setxattr"]["name"], "user.enforcer", "{ev:#}");
    assert_eq!(ev["setxattr"]["file"]["path"], a.to_str().unwrap());
    ours(&ev);

    // utimes by path (utimensat), truncate by path.
    // SAFETY: valid path; NULL times means now.
    let r = unsafe { libc::utimensat(libc::AT_FDCWD, cpath(&a).as_ptr(), std::ptr::null(), 0) };
    assert_eq!(r, 0);
    let ev = wait_op(&mut engine, "utimes", &a);
    assert_eq!(ev["kind"], "utimes");
    ours(&ev);
    // SAFETY: valid path.
    assert_eq!(unsafe { libc::truncate(cpath(&a).as_ptr(), 4) }, 0);
    let ev = wait_op(&mut engine, "truncate", &a);
    assert_eq!(ev["truncate"]["file"]["path"], a.to_str().unwrap());
    ours(&ev);

    // The descriptor forms: the path comes from the descriptor.
    let b = w.join("b");
    let file = std::fs::File::create(&b).unwrap();
    let fd = file.as_raw_fd();
    let drain = |engine: &mut Engine, op: &str| {
        let ev = wait_op(engine, op, &b);
        assert_eq!(ev["file"]["path_relative"], false, "{ev:#}");
        ours(&ev);
        ev
    };
    // SAFETY: our own open descriptor.
    assert_eq!(unsafe { libc::fchmod(fd, 0o640) }, 0);
    let ev = drain(&mut engine, "chmod");
    assert_eq!(ev["chmod"]["mode"], 0o640, "{ev:#}");
    // SAFETY: as above.
    assert_eq!(unsafe { libc::fchown(fd, 0, 0) }, 0);
    let ev = drain(&mut engine, "chown");
    assert_eq!(ev["chown"]["uid"], 0, "{ev:#}");
    // SAFETY: as above.
    assert_eq!(unsafe { libc::ftruncate(fd, 0) }, 0);
    drain(&mut engine, "truncate");
    // SAFETY: as above (futimens is utimensat(fd, NULL, ...)).
    assert_eq!(unsafe { libc::futimens(fd, std::ptr::null()) }, 0);
    drain(&mut engine, "utimes");
    // SAFETY: as above.
    unsafe { libc::fsetxattr(fd, name.as_ptr(), b"v".as_ptr().cast(), 1, 0) };
    drain(&mut engine, "setxattr");
    drop(file);

    // mount and umount of a tmpfs on a watched directory (recorded at the call).
    let m = w.join("m");
    std::fs::create_dir(&m).unwrap();
    let (src, fstype) = (CString::new("enforcer-test").unwrap(), c"tmpfs");
    // SAFETY: valid strings; a fresh tmpfs on our own directory, unmounted below.
    let mounted = unsafe {
        libc::mount(
            src.as_ptr(),
            cpath(&m).as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    let ev = wait_op(&mut engine, "mount", &m);
    assert_eq!(ev["kind"], "mount");
    assert_eq!(ev["mount"]["target"], m.to_str().unwrap(), "{ev:#}");
    assert_eq!(ev["mount"]["source"], "enforcer-test", "{ev:#}");
    assert_eq!(ev["mount"]["fstype"], "tmpfs", "{ev:#}");
    ours(&ev);
    // SAFETY: valid path.
    let unmounted = unsafe { libc::umount2(cpath(&m).as_ptr(), 0) };
    let ev = wait_op(&mut engine, "umount", &m);
    assert_eq!(ev["umount"]["target"], m.to_str().unwrap(), "{ev:#}");
    ours(&ev);
    eprintln!("mount returned {mounted}, umount2 {unmounted}");

    let records = engine.stop();
    for rule in [
        "watch-link",
        "watch-mkdir",
        "watch-rmdir",
        "watch-setxattr",
        "watch-utimes",
        "watch-truncate",
        "watch-mount",
        "watch-umount",
        "watch-chmod",
        "watch-chown",
    ] {
        assert!(
            !actions(&records, "alert", Some(rule)).is_empty(),
            "no alert of {rule}"
        );
    }
}

#[test]
fn signal_tier_kills_a_denied_mkdir() {
    if !can_run("signal_tier_kills_a_denied_mkdir") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (_tmp, dir) = canonical_workdir(&["w", "deny"]);
    let target = dir.join("deny/x");
    let mut engine = Engine::start(&dir, &policy(&dir), "block");
    let status = Command::new("mkdir").arg(&target).status().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "mkdir: {status}");
    engine.wait_for(Duration::from_secs(10), "kill record", |r| {
        r["type"] == "action" && r["rule"] == "deny-mkdir"
    });
    let records = engine.stop();
    let kills = actions(&records, "kill", Some("deny-mkdir"));
    assert_eq!(kills.len(), 1, "{records:#?}");
    assert_eq!(kills[0]["tier"], "signal");
    assert_eq!(kills[0]["decided_in"], "kernel");
    assert_eq!(
        kills[0]["event"]["mkdir"]["file"]["path"],
        target.to_str().unwrap()
    );
    assert_eq!(kills[0]["event"]["process"]["comm"], "mkdir");
    // The signal tier kills when the syscall returns: the directory was made.
    assert!(target.is_dir());
}

/// Forks a child that makes the directory `path` as written and then sleeps for 10 s; returns
/// the signal that ended it (`None`: it exited).
fn mkdir_then_sleep(path: &str) -> Option<i32> {
    let c = CString::new(path).unwrap();
    // SAFETY: the child calls only async-signal-safe functions (mkdir, sleep, _exit) on memory
    // prepared before the fork.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: as above.
        unsafe {
            libc::mkdir(c.as_ptr(), 0o700);
            libc::sleep(10);
            libc::_exit(0);
        }
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status))
}

#[test]
fn signal_tier_kills_a_denied_mkdir_written_with_dots() {
    if !can_run("signal_tier_kills_a_denied_mkdir_written_with_dots") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (_tmp, dir) = canonical_workdir(&["w", "deny", "other"]);
    let mut engine = Engine::start(&dir, &policy(&dir), "block");
    let d = dir.display();
    for (written, cleaned) in [
        (
            format!("{d}/other/../deny/dotdot"),
            format!("{d}/deny/dotdot"),
        ),
        (format!("{d}/./deny/dot"), format!("{d}/deny/dot")),
        (format!("{d}//deny/slashes"), format!("{d}/deny/slashes")),
    ] {
        // Killed in userspace after the fact: the caller must outlive its mkdir.
        assert_eq!(mkdir_then_sleep(&written), Some(libc::SIGKILL), "{written}");
        let kill = engine.wait_for(Duration::from_secs(10), &written, |r| {
            r["type"] == "action"
                && r["rule"] == "deny-mkdir"
                && r["event"]["mkdir"]["file"]["path"] == cleaned.as_str()
        });
        assert_eq!(kill["action"], "kill", "{kill:#}");
        assert_eq!(kill["decided_in"], "userspace", "{kill:#}");
        assert_eq!(kill["event"]["file"]["path_as_written"], written.as_str());
        assert_eq!(kill["event"]["file"]["path_dots"], true);
    }
    // Dots on the way to an unwatched directory: reported (the kernel cannot tell), no action.
    let other = format!("{d}/deny/../other/fine");
    let status = Command::new("mkdir").arg(&other).status().unwrap();
    assert!(status.success(), "{other}: {status}");
    let fine = format!("{d}/other/fine");
    engine.wait_for(Duration::from_secs(10), &other, |r| {
        r["type"] == "event" && r["event"]["mkdir"]["file"]["path"] == fine.as_str()
    });
    let records = engine.stop();
    assert!(
        !records
            .iter()
            .any(|r| r["type"] == "action" && r["event"]["mkdir"]["file"]["path"] == fine.as_str()),
        "{records:#?}"
    );
}

#[test]
fn unwatched_directory_operations_stay_in_the_kernel() {
    if !can_run("unwatched_directory_operations_stay_in_the_kernel") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (_tmp, dir) = canonical_workdir(&["w", "deny"]);
    let noise = dir.join("noise");
    let engine = Engine::start(&dir, &policy(&dir), "block");
    const N: usize = 2_000;
    let c = cpath(&noise);
    for _ in 0..N {
        // SAFETY: a valid NUL-terminated path in our temporary directory.
        assert_eq!(unsafe { libc::mkdir(c.as_ptr(), 0o700) }, 0);
        // SAFETY: as above.
        assert_eq!(unsafe { libc::rmdir(c.as_ptr()) }, 0);
    }
    let records = engine.stop();
    let noise_s = noise.to_str().unwrap();
    assert!(
        !records
            .iter()
            .any(|r| r["type"] == "event" && r["event"]["file"]["path"] == noise_s),
        "an unwatched path was reported"
    );
    let filtered = stop_counter(&records, "file_filtered");
    assert!(
        filtered >= 2 * N as u64,
        "file_filtered {filtered} < {}",
        2 * N
    );
    eprintln!(
        "noise: file_seen {}, file_filtered {filtered}, file_matched {}",
        stop_counter(&records, "file_seen"),
        stop_counter(&records, "file_matched")
    );
}
