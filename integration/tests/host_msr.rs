//! Catalog F7's file side on the host (signal tier), with the shipped policy
//! (`policy/default`) in block and in monitor mode: a write of `on` to
//! `/sys/module/msr/parameters/allow_writes` and an `O_WRONLY` open of `/dev/cpu/0/msr` each
//! give their alert (`msr-allow-writes-sysfs`, `msr-device-write`) and nothing else acts on
//! the writer, which runs to its end (the rules alert, they do not stop).
//!
//! What this proves, and what it does not: the host kernel (6.18, `CONFIG_X86_MSR` and
//! `CONFIG_MODULES` unset) has no msr module, so neither file exists. The writer therefore
//! runs in a child with a private mount namespace (`unshare(CLONE_NEWNS)`, `/` made rprivate)
//! where a tmpfs covers `/sys/module` and `/dev/cpu/0` (or the deepest of `/dev/cpu`, `/dev`
//! that exists) and holds `msr/parameters/allow_writes` and `msr` as REGULAR files made with
//! `mknod` (not opened, so only the fixture's opens are seen). The signal tier resolves an
//! open from the descriptor (`sys_exit_open*`: file -> dentry chain across mounts), not from
//! the string the process passed, so the engine sees exactly those two paths, as it would the
//! real ones: the test checks the path rules, the write flags and the alert records with
//! stand-in files. The real module, sysfs attribute and device (and the module-load alert
//! `msr-module-load-writes`) are checked in the lsm tier by the VM case `lsm_msr`
//! (`integration/src/bin/vm-guest/cases/msr.rs`) on the Debian 6.1 and 6.12 kernels.
//! Needs root; skips loudly otherwise (fails under ENFORCER_REQUIRE_HOST=1, as in CI).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod host;

use std::{
    ffi::CString,
    path::{Path, PathBuf},
    sync::Mutex,
    time::Duration,
};

use host::{Engine, can_run, cpath};
use serde_json::Value;

/// Engines are started one at a time: each would see the others' events.
static SERIAL: Mutex<()> = Mutex::new(());

const SYSFS_PARAM: &str = "/sys/module/msr/parameters/allow_writes";
const DEVICE: &str = "/dev/cpu/0/msr";
/// Bounds a hang; records usually arrive within milliseconds.
const WAIT: Duration = Duration::from_secs(20);

/// The shipped policy directory.
fn default_policy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policy/default")
}

/// Everything the forked child needs, made before the fork (the child only makes system
/// calls: the test harness is multi-threaded, so it must not allocate).
struct Plan {
    root: CString,
    tmpfs: CString,
    sys_module: CString,
    /// Directories to make under `sys_module` (in order).
    sys_dirs: Vec<CString>,
    param: CString,
    /// Where the device tmpfs goes: the deepest existing of `/dev/cpu/0`, `/dev/cpu`, `/dev`.
    dev_mount: CString,
    /// Directories to make under `dev_mount` (in order).
    dev_dirs: Vec<CString>,
    device: CString,
}

impl Plan {
    fn new() -> Plan {
        let dev_mount = ["/dev/cpu/0", "/dev/cpu", "/dev"]
            .into_iter()
            .find(|d| Path::new(d).is_dir())
            .expect("no /dev");
        let dev_dirs = ["/dev/cpu", "/dev/cpu/0"]
            .into_iter()
            .filter(|d| d.len() > dev_mount.len())
            .map(|d| cpath(Path::new(d)))
            .collect();
        Plan {
            root: cpath(Path::new("/")),
            tmpfs: cpath(Path::new("tmpfs")),
            sys_module: cpath(Path::new("/sys/module")),
            sys_dirs: ["/sys/module/msr", "/sys/module/msr/parameters"]
                .into_iter()
                .map(|d| cpath(Path::new(d)))
                .collect(),
            param: cpath(Path::new(SYSFS_PARAM)),
            dev_mount: cpath(Path::new(dev_mount)),
            dev_dirs,
            device: cpath(Path::new(DEVICE)),
        }
    }

    /// The child's body; returns 0, or the number of the step that failed.
    fn run(&self) -> i32 {
        // SAFETY: system calls on NUL-terminated strings made before the fork; the mounts
        // are in this child's own mount namespace.
        unsafe {
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                return 1;
            }
            let rprivate = libc::MS_REC | libc::MS_PRIVATE;
            let null = std::ptr::null();
            if libc::mount(null, self.root.as_ptr(), null, rprivate, null.cast()) != 0 {
                return 2;
            }
            for (at, dirs, file, step) in [
                (&self.sys_module, &self.sys_dirs, &self.param, 3),
                (&self.dev_mount, &self.dev_dirs, &self.device, 6),
            ] {
                let fs = self.tmpfs.as_ptr();
                if libc::mount(fs, at.as_ptr(), fs, 0, null.cast()) != 0 {
                    return step;
                }
                for dir in dirs {
                    if libc::mkdir(dir.as_ptr(), 0o755) != 0 {
                        return step + 1;
                    }
                }
                if libc::mknod(file.as_ptr(), libc::S_IFREG | 0o600, 0) != 0 {
                    return step + 2;
                }
            }
            // The fixture: `echo on > allow_writes` without O_CREAT/O_TRUNC, as sysfs takes
            // it, then open("/dev/cpu/0/msr", O_WRONLY).
            let fd = libc::open(self.param.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 || libc::write(fd, b"on".as_ptr().cast(), 2) != 2 {
                return 9;
            }
            libc::close(fd);
            let fd = libc::open(self.device.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return 10;
            }
            libc::close(fd);
        }
        0
    }
}

/// Runs the fixture in a forked child; returns its pid once it exited with 0.
fn fixture() -> u32 {
    let plan = Plan::new();
    // SAFETY: the child runs `Plan::run` (system calls only) and `_exit`s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let code = plan.run();
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child; `status` is a valid out pointer.
    let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(waited, pid, "waitpid: {}", std::io::Error::last_os_error());
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "the fixture child failed at step {} (wait status {status:#x}; see Plan::run)",
        libc::WEXITSTATUS(status)
    );
    u32::try_from(pid).unwrap()
}

/// The `alert` of `rule` for `pid`, checked for the path, the hook and `O_WRONLY`.
fn expect_alert(engine: &mut Engine, rule: &str, path: &str, pid: u32) {
    let r = engine.wait_for(WAIT, &format!("alert {rule}"), |r| {
        r["type"] == "action"
            && r["action"] == "alert"
            && r["rule"] == rule
            && r["event"]["process"]["pid"] == pid
    });
    let ev = &r["event"];
    assert_eq!(ev["kind"], "open", "{r:#}");
    assert_eq!(ev["open"]["file"]["path"], path, "{r:#}");
    assert_eq!(ev["hook"], "tp/syscalls/sys_exit_open*", "{r:#}");
    assert_eq!(
        ev["open"]["flags"].as_u64().map(|f| f & 0o3),
        Some(0o1),
        "O_WRONLY: {r:#}"
    );
    assert_ne!(ev["file"]["path_relative"], true, "{r:#}");
}

#[test]
fn msr_file_side_alerts_with_the_default_policy() {
    if !can_run("msr_file_side_alerts_with_the_default_policy") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    assert!(
        !Path::new("/sys/module/msr").exists(),
        "this host has the msr module: the stand-ins would hide it; run the VM case instead"
    );
    for mode in ["block", "monitor"] {
        let dir = tempfile::tempdir().unwrap();
        let mut engine = Engine::start_at(dir.path(), &default_policy(), mode, &[]);
        let pid = fixture();
        // The stand-ins lived in the child's namespace only.
        assert!(!Path::new("/sys/module/msr").exists());
        expect_alert(&mut engine, "msr-allow-writes-sysfs", SYSFS_PARAM, pid);
        expect_alert(&mut engine, "msr-device-write", DEVICE, pid);
        let records = engine.stop();
        let mut acted: Vec<String> = records
            .iter()
            .filter(|r| r["type"] == "action" && r["event"]["process"]["pid"] == pid)
            .map(|r| format!("{} {}", as_str(&r["action"]), as_str(&r["rule"])))
            .collect();
        acted.sort();
        assert_eq!(
            acted,
            ["alert msr-allow-writes-sysfs", "alert msr-device-write"],
            "{mode}: every action on the fixture"
        );
    }
}

fn as_str(v: &Value) -> &str {
    v.as_str().unwrap_or("?")
}
