//! `--self-protect` in the lsm tier: an engine in block mode with pins and the guards is
//! attacked by a root child process of this harness (not the engine's parent): SIGTERM,
//! SIGKILL, ptrace attach, unlink/rename/rmdir of its pins, umount of bpffs, a writable
//! descriptor of its pinned counters map, unlink, rename, truncate and writing opens of its
//! audit log, and a truncate and an unlink of its events log (`--events-log`) each fail with
//! EPERM and leave a `tamper_denied` record; a signal 0, a read-only
//! descriptor and reading the log pass; the engine still denies the payload.
//! The harness, its parent, may still reload it (SIGHUP): reloads that list a hash and then
//! none pin and unpin the kernel hash programs (the engine's own pins, which the guards refuse
//! only to others). It stops it (SIGTERM), which removes the pins. A second guarded engine, on a pseudo-terminal, refuses a root child's SIGINT and
//! stops cleanly on Ctrl-C (the kernel's tty layer sends that one).

use std::{
    ffi::CString,
    os::fd::OwnedFd,
    path::{Path, PathBuf},
    time::Duration,
};

use enforcer_integration::vm::layout;
use nix::{
    sys::wait::{WaitStatus, waitpid},
    unistd::{ForkResult, fork},
};

use super::{
    Ctx,
    crash::{KEEP, PIN_ROOT, Unpin},
    exec::{RECORD_TIMEOUT, START_TIMEOUT, STOP_TIMEOUT, dump, expect_clean_exit, require_engine},
};
use crate::{audit, engine::Engine, payload};

const AUDIT: &str = "/tmp/audit-self-protect.jsonl";
/// The guarded engine's events log (`--events-log`): guarded as its audit log is.
const EVENTS: &str = "/tmp/events-self-protect.jsonl";
/// The guarded engine's policy (a copy of the deny-marker policy).
const POLICY: &str = "/tmp/self-protect-policy.yaml";
/// Audit log of the engine stopped with Ctrl-C.
const AUDIT_TERMINAL: &str = "/tmp/audit-self-protect-terminal.jsonl";
/// `BPF_OBJ_GET` and its `file_flags` for a read-only descriptor (`BPF_F_RDONLY`).
const BPF_OBJ_GET: libc::c_long = 7;
const BPF_F_RDONLY: u32 = 1 << 3;
/// `BPF_LINK_DETACH`.
const BPF_LINK_DETACH: libc::c_long = 34;

/// See the module documentation.
pub(crate) fn lsm_self_protect(ctx: &Ctx) -> Result<(), String> {
    require_engine()?;
    let _unpin = Unpin;
    let mut args = vec![
        "--self-protect",
        "--policy-watch",
        "off",
        "--events-log",
        EVENTS,
    ];
    args.extend(KEEP);
    // A copy: the hash reloads below change it.
    std::fs::copy(layout::DENY_MARKER_POLICY, POLICY).map_err(|e| format!("{POLICY}: {e}"))?;
    let mut engine = Engine::start_args(
        POLICY,
        "block",
        Path::new(AUDIT),
        Path::new("/tmp/enforcer-self-protect.log"),
        &args,
    )?;
    let result = attacked(ctx, &mut engine);
    if result.is_err() {
        dump(ctx, &engine);
    }
    result?;
    let status = engine.terminate(STOP_TIMEOUT)?;
    expect_clean_exit(status)?;
    let left: Vec<_> = std::fs::read_dir(PIN_ROOT)
        .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    if !left.is_empty() {
        return Err(format!("pins left after the clean stop: {left:?}"));
    }
    ctx.log("the engine's parent stopped it with SIGTERM; no pins left");
    ctrl_c_stops_it(ctx)
}

/// A guarded engine on a terminal stops on Ctrl-C: the tty layer sends that SIGINT from the
/// kernel, without `kill(2)`'s permission check, so the `task_kill` guard never sees it. The
/// same signal from another root process is refused. The harness (the engine's parent, which
/// the guard lets signal it) sends nothing.
fn ctrl_c_stops_it(ctx: &Ctx) -> Result<(), String> {
    let (mut engine, terminal) = Engine::start_on_terminal(
        layout::DENY_MARKER_POLICY,
        "block",
        Path::new(AUDIT_TERMINAL),
        Path::new("/tmp/enforcer-self-protect-terminal.log"),
        &["--self-protect", "--policy-watch", "off"],
    )?;
    let result = interrupted(ctx, &mut engine, &terminal);
    if result.is_err() {
        dump(ctx, &engine);
    }
    result
}

/// SIGINT from a root child (refused), then Ctrl-C on `terminal`: a clean stop.
fn interrupted(ctx: &Ctx, engine: &mut Engine, terminal: &OwnedFd) -> Result<(), String> {
    let start = engine.wait_started(START_TIMEOUT)?;
    let pid = i32::try_from(start["pid"].as_u64().unwrap_or(0)).map_err(|e| e.to_string())?;
    let errno = in_child(Box::new(move || errno_of(send_signal(pid, libc::SIGINT))))?;
    if errno != libc::EPERM {
        return Err(format!(
            "kill -INT from a root child: errno {errno}, want EPERM"
        ));
    }
    wait_tamper_records(engine, Path::new(AUDIT_TERMINAL), 1)?;
    engine.check_running()?;
    ctx.log("kill -INT from a root child: EPERM, one tamper_denied record");
    nix::unistd::write(terminal, b"\x03").map_err(|e| format!("Ctrl-C on the terminal: {e}"))?;
    let status = engine.wait_exit(STOP_TIMEOUT, "Ctrl-C on its terminal")?;
    expect_clean_exit(status)?;
    let stop = audit::records(Path::new(AUDIT_TERMINAL))?
        .into_iter()
        .find(|r| audit::is_type(r, "engine_stop"))
        .ok_or("no engine_stop record after Ctrl-C")?;
    if stop["reason"] != "SIGINT" {
        return Err(format!("engine_stop after Ctrl-C: {stop}"));
    }
    ctx.log(format!(
        "Ctrl-C on the engine's terminal stopped it: {stop}"
    ));
    Ok(())
}

/// Every attempt, in a child process; then the records, the payload and a reload.
fn attacked(ctx: &Ctx, engine: &mut Engine) -> Result<(), String> {
    let start = engine.wait_started(START_TIMEOUT)?;
    super::exec::expect_field(&start, "tier", "lsm")?;
    if start["self_protect"] != true {
        return Err(format!("engine_start does not say self_protect: {start}"));
    }
    let pid = i32::try_from(start["pid"].as_u64().unwrap_or(0)).map_err(|e| e.to_string())?;
    let run = Path::new(PIN_ROOT)
        .join(audit::str_field(&start, "run_id").ok_or_else(|| format!("no run_id: {start}"))?);
    let pin = run.join("link-lsm_bprm_check_security");
    let counters = run.join("map-COUNTERS");
    let attempts = attempts(pid, &run, &pin, &counters)?;
    let mut refused = 0;
    for (what, expect, op) in attempts {
        let errno = in_child(op)?;
        ctx.log(format!("{what}: errno {errno}"));
        match (expect, errno) {
            (Expect::Refused, libc::EPERM) => refused += 1,
            (Expect::Passes, 0) => {}
            (Expect::Unsupported, e) if e != 0 && e != libc::EPERM => {}
            _ => return Err(format!("{what}: errno {errno}, want {expect:?}")),
        }
    }
    engine.check_running()?;
    for path in [&pin, &counters] {
        if !path.exists() {
            return Err(format!("{} is gone", path.display()));
        }
    }
    payload::expect_denied("/tmp/sp1", "after the attempts")?;
    let records = wait_tamper_records(engine, Path::new(AUDIT), refused)?;
    for guard in [
        "signal",
        "ptrace",
        "unpin",
        "umount",
        "map_write",
        "audit_log",
    ] {
        let Some(r) = records
            .iter()
            .find(|r| r["event"]["tamper"]["guard"] == guard)
        else {
            return Err(format!("no tamper_denied record for {guard}: {records:?}"));
        };
        if r["event"]["process"]["uid"] != 0 || r["event"]["process"]["pid"] == pid {
            return Err(format!(
                "{guard}: the record does not name the root child: {r}"
            ));
        }
    }
    ctx.log(format!(
        "{} attempts refused, {} tamper_denied records",
        refused,
        records.len()
    ));
    // Another process may still read the pinned counters (a read-only descriptor).
    let counted = pinned_tamper_counter()?;
    if counted < refused as u64 {
        return Err(format!(
            "enforcer status counts {counted} refusals, want {refused}"
        ));
    }
    ctx.log(format!(
        "enforcer status reads the pinned counters: tamper_denied {counted}"
    ));
    // The parent may reload it.
    engine.sighup()?;
    let reload = engine.wait_record(RECORD_TIMEOUT, "policy_reload record", |r| {
        audit::is_type(r, "policy_reload")
    })?;
    ctx.log(format!("SIGHUP from the parent: {reload}"));
    hash_programs_come_and_go(ctx, engine, &run)
}

/// Under the guards, which refuse anyone else the pins, the engine still pins and unpins its
/// own: a reload listing a hash attaches and pins the kernel hash programs, the next one
/// (no hash) unpins and detaches them.
fn hash_programs_come_and_go(ctx: &Ctx, engine: &mut Engine, run: &Path) -> Result<(), String> {
    let pin = run.join("link-lsm_bprm_creds_from_file");
    let original = std::fs::read_to_string(POLICY).map_err(|e| format!("{POLICY}: {e}"))?;
    let listed = super::reload::hash_listed(&original, &"ab".repeat(32));
    // Reloads #1 and #2 after the one above (#0).
    for (n, text, pinned) in [(1, &listed, true), (2, &original, false)] {
        std::fs::write(POLICY, text).map_err(|e| format!("{POLICY}: {e}"))?;
        engine.sighup()?;
        let record = super::reload::nth_reload(engine, n)?;
        ctx.log(format!("reload {n}: {record}"));
        if audit::str_field(&record, "outcome") != Some("applied") || pin.exists() != pinned {
            return Err(format!(
                "reload {n}: want applied and {} pinned {pinned}: {record}",
                pin.display()
            ));
        }
    }
    Ok(())
}

/// `tamper_denied` of the running engine's pinned counters, as `enforcer status --json` (a
/// process other than the engine) reads them.
fn pinned_tamper_counter() -> Result<u64, String> {
    let out = std::process::Command::new(layout::ENFORCER)
        .args(["status", "--json"])
        .output()
        .map_err(|e| format!("enforcer status: {e}"))?;
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        format!(
            "enforcer status --json: {e}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    status["pinned"]
        .as_array()
        .and_then(|runs| runs.iter().find(|r| r["engine_running"] == true))
        .and_then(|run| run["counters"]["tamper_denied"].as_u64())
        .ok_or_else(|| format!("no counters of the running engine in enforcer status: {status}"))
}

/// What an attempt must meet.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// A guard refuses it: EPERM and a `tamper_denied` record.
    Refused,
    /// It succeeds.
    Passes,
    /// The kernel itself refuses it, whatever the guards (another errno than EPERM).
    Unsupported,
}

/// An attempt: what it is, what it must meet, and the call (returns errno).
type Attempt = (&'static str, Expect, Box<dyn FnOnce() -> i32>);

/// The attempts on engine `pid` and its pins (`run`, a link `pin`, the `counters` map).
fn attempts(pid: i32, run: &Path, pin: &Path, counters: &Path) -> Result<Vec<Attempt>, String> {
    let c = |p: &Path| CString::new(p.as_os_str().as_encoded_bytes()).map_err(|e| e.to_string());
    let (pin_c, pin_c2, pin_c3, run_c) = (c(pin)?, c(pin)?, c(pin)?, c(run)?);
    let (counters_c, counters_c2) = (c(counters)?, c(counters)?);
    let moved = c(&PathBuf::from(PIN_ROOT).join("moved"))?;
    let log = || c(Path::new(AUDIT));
    let (log_1, log_2, log_3, log_4, log_5, log_6) =
        (log()?, log()?, log()?, log()?, log()?, log()?);
    let log_moved = c(Path::new("/tmp/audit-moved.jsonl"))?;
    let (events_1, events_2) = (c(Path::new(EVENTS))?, c(Path::new(EVENTS))?);
    let map_fd = c(&engine_map_fd(pid)?)?;
    let bpffs = c(Path::new("/sys/fs/bpf"))?;
    Ok(vec![
        (
            "kill -0",
            Expect::Passes,
            Box::new(move || errno_of(send_signal(pid, 0))),
        ),
        (
            "kill -TERM",
            Expect::Refused,
            Box::new(move || errno_of(send_signal(pid, libc::SIGTERM))),
        ),
        (
            "kill -KILL",
            Expect::Refused,
            Box::new(move || errno_of(send_signal(pid, libc::SIGKILL))),
        ),
        (
            "kill -STOP",
            Expect::Refused,
            Box::new(move || errno_of(send_signal(pid, libc::SIGSTOP))),
        ),
        (
            "ptrace attach",
            Expect::Refused,
            Box::new(move || {
                // SAFETY: PTRACE_ATTACH takes a pid and null address and data.
                let ret = unsafe { libc::ptrace(libc::PTRACE_ATTACH, pid, 0, 0) };
                errno_of(if ret < 0 { -1 } else { 0 })
            }),
        ),
        (
            "unlink a pin",
            Expect::Refused,
            Box::new(move || unlink_errno(&pin_c)),
        ),
        (
            "rename a pin out",
            Expect::Refused,
            Box::new(move || rename_errno(&pin_c2, &moved)),
        ),
        (
            "rmdir the run directory",
            Expect::Refused,
            Box::new(move || {
                // SAFETY: a valid NUL-terminated path.
                errno_of(unsafe { libc::rmdir(run_c.as_ptr()) })
            }),
        ),
        (
            "umount bpffs",
            Expect::Refused,
            Box::new(move || {
                // SAFETY: a valid NUL-terminated path.
                errno_of(unsafe { libc::umount2(bpffs.as_ptr(), libc::MNT_DETACH) })
            }),
        ),
        (
            "open the counters map read-write",
            Expect::Refused,
            Box::new(move || obj_get(&counters_c, 0)),
        ),
        (
            "open the counters map read-only",
            Expect::Passes,
            Box::new(move || obj_get(&counters_c2, BPF_F_RDONLY)),
        ),
        (
            "unlink the audit log",
            Expect::Refused,
            Box::new(move || unlink_errno(&log_1)),
        ),
        (
            "rename the audit log",
            Expect::Refused,
            Box::new(move || rename_errno(&log_2, &log_moved)),
        ),
        (
            "truncate the audit log",
            Expect::Refused,
            Box::new(move || {
                // SAFETY: a valid NUL-terminated path.
                errno_of(unsafe { libc::truncate(log_3.as_ptr(), 0) })
            }),
        ),
        (
            "open the audit log for appending",
            Expect::Refused,
            Box::new(move || open_errno(&log_4, libc::O_WRONLY | libc::O_APPEND)),
        ),
        (
            "open the audit log with O_TRUNC",
            Expect::Refused,
            Box::new(move || open_errno(&log_5, libc::O_RDONLY | libc::O_TRUNC)),
        ),
        (
            "open the audit log for reading",
            Expect::Passes,
            Box::new(move || open_errno(&log_6, libc::O_RDONLY)),
        ),
        (
            "truncate the events log",
            Expect::Refused,
            Box::new(move || {
                // SAFETY: a valid NUL-terminated path.
                errno_of(unsafe { libc::truncate(events_1.as_ptr(), 0) })
            }),
        ),
        (
            "unlink the events log",
            Expect::Refused,
            Box::new(move || unlink_errno(&events_2)),
        ),
        (
            "reopen an engine map through /proc/PID/fd",
            Expect::Unsupported,
            Box::new(move || open_errno(&map_fd, libc::O_RDWR)),
        ),
        (
            "detach a pinned LSM link (BPF_LINK_DETACH)",
            Expect::Unsupported,
            Box::new(move || link_detach(&pin_c3)),
        ),
    ])
}

/// `/proc/<pid>/fd/<n>` of one of the engine's BPF map descriptors.
fn engine_map_fd(pid: i32) -> Result<PathBuf, String> {
    let dir = PathBuf::from(format!("/proc/{pid}/fd"));
    std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| std::fs::read_link(p).is_ok_and(|t| t.as_os_str() == "anon_inode:bpf-map"))
        .ok_or_else(|| format!("no anon_inode:bpf-map in {}", dir.display()))
}

/// `unlink(path)`: 0 or errno.
fn unlink_errno(path: &CString) -> i32 {
    // SAFETY: a valid NUL-terminated path.
    errno_of(unsafe { libc::unlink(path.as_ptr()) })
}

/// `rename(from, to)`: 0 or errno.
fn rename_errno(from: &CString, to: &CString) -> i32 {
    // SAFETY: valid NUL-terminated paths.
    errno_of(unsafe { libc::rename(from.as_ptr(), to.as_ptr()) })
}

/// `open(path, flags)`: 0 or errno (the descriptor is left to the child's exit).
fn open_errno(path: &CString, flags: i32) -> i32 {
    // SAFETY: a valid NUL-terminated path; no mode is needed without O_CREAT.
    errno_of(unsafe { libc::open(path.as_ptr(), flags) })
}

/// `kill(pid, sig)`.
fn send_signal(pid: i32, sig: i32) -> i32 {
    // SAFETY: kill takes plain integers.
    unsafe { libc::kill(pid, sig) }
}

/// `BPF_LINK_DETACH` of the link pinned at `path` (its descriptor from `BPF_OBJ_GET`, which
/// no hook guards for links): 0 or errno.
fn link_detach(path: &CString) -> i32 {
    let fd = match obj_get_fd(path, 0) {
        Ok(fd) => fd,
        Err(errno) => return errno,
    };
    let mut attr = [0u8; 8];
    attr[..4].copy_from_slice(&fd.to_ne_bytes());
    // SAFETY: attr is a valid buffer of the size given (`link_detach.link_fd`).
    let ret = unsafe { libc::syscall(libc::SYS_bpf, BPF_LINK_DETACH, attr.as_ptr(), attr.len()) };
    errno_of(if ret < 0 { -1 } else { 0 })
}

/// `bpf(BPF_OBJ_GET)` of `path` with `flags`: 0 or errno.
fn obj_get(path: &CString, flags: u32) -> i32 {
    match obj_get_fd(path, flags) {
        Ok(_) => 0,
        Err(errno) => errno,
    }
}

/// `bpf(BPF_OBJ_GET)` of `path` with `flags`: the descriptor (left open: the child exits) or
/// errno.
fn obj_get_fd(path: &CString, flags: u32) -> Result<u32, i32> {
    // `union bpf_attr` for BPF_OBJ_GET: pathname (u64), bpf_fd (u32), file_flags (u32).
    let mut attr = [0u8; 16];
    attr[..8].copy_from_slice(&(path.as_ptr() as u64).to_ne_bytes());
    attr[12..16].copy_from_slice(&flags.to_ne_bytes());
    // SAFETY: attr is a valid buffer of the size given; the path outlives the call.
    let fd = unsafe { libc::syscall(libc::SYS_bpf, BPF_OBJ_GET, attr.as_ptr(), attr.len()) };
    if fd < 0 {
        return Err(errno_of(-1));
    }
    u32::try_from(fd).map_err(|_| libc::EBADF)
}

/// 0 for a call that returned 0 or more, else this thread's errno.
fn errno_of(ret: i32) -> i32 {
    if ret >= 0 {
        0
    } else {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(-1)
    }
}

/// Runs `op` in a forked child (a process other than the engine's parent) and returns its
/// result, passed back as the exit code.
fn in_child(op: Box<dyn FnOnce() -> i32>) -> Result<i32, String> {
    // SAFETY: the child only makes system calls and exits; it takes no lock the parent's
    // other threads could hold.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            let code = op();
            // SAFETY: _exit ends the child without running the parent's destructors.
            unsafe { libc::_exit(code) }
        }
        Ok(ForkResult::Parent { child }) => match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, code)) => Ok(code),
            other => Err(format!("attempt child: {other:?}")),
        },
        Err(e) => Err(format!("fork: {e}")),
    }
}

/// Waits until `log` holds `count` `tamper_denied` records; returns them.
fn wait_tamper_records(
    engine: &mut Engine,
    log: &Path,
    count: usize,
) -> Result<Vec<serde_json::Value>, String> {
    let deadline = std::time::Instant::now() + RECORD_TIMEOUT;
    loop {
        let records: Vec<_> = audit::records(log)?
            .into_iter()
            .filter(|r| audit::is_type(r, "tamper_denied"))
            .collect();
        if records.len() >= count {
            return Ok(records);
        }
        engine.check_running()?;
        if std::time::Instant::now() > deadline {
            return Err(format!(
                "{} tamper_denied records, want {count}: {records:?}",
                records.len()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
