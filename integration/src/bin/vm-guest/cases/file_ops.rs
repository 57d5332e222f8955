//! The file operations beyond open/unlink/rename/chmod/chown in the lsm tier, with the policy
//! of `fixtures/file-ops.yaml` in block mode: a hard link, a symlink and a directory made
//! under the denied directory, rmdir of the kept directory, truncate and ftruncate of the kept
//! file, fchmod and fchown of its descriptor, a tmpfs mounted on the denied mount point and
//! the umount of the kept mount all fail with EPERM and leave the file system unchanged, each
//! with its deny record from its LSM hook; setxattr of the kept file (no path LSM hook) kills
//! the caller from the tracepoint; a utimes of the kept file is reported. The engine runs with
//! `--on-crash keep-enforcing`: once it is SIGKILLed, the pinned `path_mkdir` program still
//! refuses a mkdir under the denied directory.

use std::{
    ffi::CString,
    os::{fd::AsRawFd as _, unix::fs::MetadataExt as _},
    path::Path,
};

use enforcer_integration::vm::layout;

use super::{
    Ctx,
    crash::{KEEP as KEEP_ENFORCING, PIN_ROOT, Unpin},
    exec::{RECORD_TIMEOUT, START_TIMEOUT, dump, expect_field, require_engine},
};
use crate::{audit, engine::Engine};

const KEEP: &str = "/tmp/fops/keep";
const DIR: &str = "/tmp/fops/dir";
const DENY: &str = "/tmp/fops/deny";
const MNT: &str = "/tmp/fops/mnt";
const MOUNTED: &str = "/tmp/fops/mounted";
/// Watched as a link's target only (rule `deny-link-target`).
const LINKED: &str = "/tmp/fops/linked";
const CONTENT: &[u8] = b"keep me\n";

fn c(path: &str) -> CString {
    CString::new(path).unwrap_or_default()
}

/// Whether `path` is a mount point (in `/proc/self/mountinfo`).
fn is_mount_point(path: &str) -> Result<bool, String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("read mountinfo: {e}"))?;
    Ok(info.lines().any(|l| l.split(' ').nth(4) == Some(path)))
}

/// Mounts a tmpfs on `target`; returns the errno on failure.
fn mount_tmpfs(target: &str) -> Result<(), i32> {
    let (src, fstype, dir) = (c("fops"), c("tmpfs"), c(target));
    // SAFETY: valid NUL-terminated strings; no data argument.
    let r = unsafe {
        libc::mount(
            src.as_ptr(),
            dir.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
    }
}

fn setup() -> Result<(), String> {
    if is_mount_point(MOUNTED)? {
        // SAFETY: a valid path; left over from an earlier run of the case.
        unsafe { libc::umount2(c(MOUNTED).as_ptr(), libc::MNT_DETACH) };
    }
    let _ = std::fs::remove_dir_all("/tmp/fops");
    for dir in [DIR, DENY, MNT, MOUNTED] {
        std::fs::create_dir_all(dir).map_err(|e| format!("mkdir {dir}: {e}"))?;
    }
    std::fs::write(KEEP, CONTENT).map_err(|e| format!("write {KEEP}: {e}"))?;
    std::fs::write(LINKED, CONTENT).map_err(|e| format!("write {LINKED}: {e}"))?;
    mount_tmpfs(MOUNTED).map_err(|e| format!("mount tmpfs on {MOUNTED}: errno {e}"))
}

/// `Err` unless the libc call result `r` is -1 with EPERM.
fn expect_eperm(what: &str, r: libc::c_int) -> Result<(), String> {
    let err = std::io::Error::last_os_error();
    match r {
        -1 if err.raw_os_error() == Some(libc::EPERM) => Ok(()),
        -1 => Err(format!("{what}: want EPERM, got {err}")),
        _ => Err(format!("{what}: want EPERM, it succeeded ({r})")),
    }
}

/// Block mode; see the module documentation.
pub(crate) fn lsm_file_ops(ctx: &Ctx) -> Result<(), String> {
    require_engine()?;
    setup()?;
    let _unpin = Unpin;
    let mut engine = Engine::start_args(
        layout::FILE_OPS_POLICY,
        "block",
        Path::new("/tmp/audit-file-ops.jsonl"),
        Path::new("/tmp/enforcer-file-ops.log"),
        &KEEP_ENFORCING,
    )?;
    let result = deny_while_attached(ctx, &mut engine);
    if result.is_err() {
        dump(ctx, &engine);
    }
    result
}

fn deny_while_attached(ctx: &Ctx, engine: &mut Engine) -> Result<(), String> {
    let start = engine.wait_started(START_TIMEOUT)?;
    expect_field(&start, "tier", "lsm")?;
    ctx.log(format!(
        "unseen on this kernel: {}",
        start["kernel_syscalls_unseen"]
    ));

    let (hard, soft, sub) = (
        format!("{DENY}/hard"),
        format!("{DENY}/soft"),
        format!("{DENY}/sub"),
    );
    // SAFETY: valid NUL-terminated paths; plain syscalls on the case's files.
    unsafe {
        expect_eperm("link", libc::link(c(KEEP).as_ptr(), c(&hard).as_ptr()))?;
        expect_eperm(
            "symlink",
            libc::symlink(c(KEEP).as_ptr(), c(&soft).as_ptr()),
        )?;
        expect_eperm("mkdir", libc::mkdir(c(&sub).as_ptr(), 0o755))?;
        expect_eperm("rmdir", libc::rmdir(c(DIR).as_ptr()))?;
        expect_eperm("truncate", libc::truncate(c(KEEP).as_ptr(), 0))?;
    }
    for made in [&hard, &soft, &sub] {
        if Path::new(made).symlink_metadata().is_ok() {
            return Err(format!("{made} exists after the denied call"));
        }
    }
    if !Path::new(DIR).is_dir() {
        return Err(format!("{DIR} is gone"));
    }
    ctx.log("link, symlink, mkdir, rmdir, truncate: EPERM, nothing changed");

    // The descriptor forms: opened read-only (a write open is not what is tested here).
    let file = std::fs::File::open(KEEP).map_err(|e| format!("open {KEEP}: {e}"))?;
    let fd = file.as_raw_fd();
    let before = file.metadata().map_err(|e| format!("stat {KEEP}: {e}"))?;
    // SAFETY: our own open descriptor.
    unsafe {
        expect_eperm("fchmod", libc::fchmod(fd, 0o600))?;
        expect_eperm("fchown", libc::fchown(fd, 1, 1))?;
    }
    drop(file);
    let rw = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(KEEP)
        .map_err(|e| format!("open {KEEP} rw: {e}"))?;
    // SAFETY: our own open descriptor.
    expect_eperm("ftruncate", unsafe { libc::ftruncate(rw.as_raw_fd(), 1) })?;
    drop(rw);
    let after = std::fs::metadata(KEEP).map_err(|e| format!("stat {KEEP}: {e}"))?;
    if (after.mode(), after.uid(), after.len()) != (before.mode(), before.uid(), before.len())
        || std::fs::read(KEEP).ok().as_deref() != Some(CONTENT)
    {
        return Err(format!("{KEEP} changed: {after:?}"));
    }
    ctx.log("fchmod, fchown, ftruncate: EPERM, file unchanged");

    match mount_tmpfs(MNT) {
        Err(libc::EPERM) => {}
        Err(e) => return Err(format!("mount on {MNT}: want EPERM, got errno {e}")),
        Ok(()) => return Err(format!("mount on {MNT} succeeded")),
    }
    if is_mount_point(MNT)? {
        return Err(format!("{MNT} is mounted"));
    }
    // SAFETY: a valid path.
    expect_eperm("umount", unsafe { libc::umount2(c(MOUNTED).as_ptr(), 0) })?;
    if !is_mount_point(MOUNTED)? {
        return Err(format!("{MOUNTED} was unmounted"));
    }
    ctx.log("mount, umount: EPERM, mount table unchanged");

    // utimes: watched, allowed.
    // SAFETY: a valid path; NULL times means now.
    let r = unsafe { libc::utimensat(libc::AT_FDCWD, c(KEEP).as_ptr(), std::ptr::null(), 0) };
    if r != 0 {
        return Err(format!("utimensat: {}", std::io::Error::last_os_error()));
    }

    // setxattr: the tracepoint kills the caller (a forked child that only makes the call).
    let name = c("user.fops");
    let keep = c(KEEP);
    // SAFETY: the child makes two syscalls and exits; no allocation after the fork.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: valid strings and a 1-byte value; _exit never returns.
        unsafe {
            libc::setxattr(keep.as_ptr(), name.as_ptr(), b"v".as_ptr().cast(), 1, 0);
            libc::_exit(0);
        }
    }
    if pid < 0 {
        return Err("fork failed".to_owned());
    }
    let mut status = 0;
    // SAFETY: our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    if !libc::WIFSIGNALED(status) || libc::WTERMSIG(status) != libc::SIGKILL {
        return Err(format!("setxattr caller not killed: status {status:#x}"));
    }
    ctx.log("setxattr: caller killed by the tracepoint");

    for (rule, action, hook) in [
        ("deny-link", "deny", "lsm/path_link"),
        ("deny-link", "deny", "lsm/path_symlink"),
        ("deny-mkdir", "deny", "lsm/path_mkdir"),
        ("deny-rmdir", "deny", "lsm/path_rmdir"),
        ("deny-truncate", "deny", "lsm/{path,file}_truncate"),
        ("deny-chmod", "deny", "lsm/path_chmod"),
        ("deny-chown", "deny", "lsm/path_chown"),
        ("deny-mount", "deny", "lsm/{sb_mount,move_mount}"),
        ("deny-umount", "deny", "lsm/sb_umount"),
        (
            "deny-setxattr",
            "kill",
            "tp/syscalls/sys_enter_<path syscall>",
        ),
        (
            "watch-utimes",
            "alert",
            "tp/syscalls/sys_enter_<path syscall>",
        ),
    ] {
        let record = engine.wait_record(RECORD_TIMEOUT, &format!("{action} of {rule}"), |r| {
            audit::is_action(r, action, rule) && r["event"]["hook"] == hook
        })?;
        if rule == "deny-mount" || rule == "deny-link" {
            ctx.log(format!("{rule} record: {}", record["event"]));
        }
    }
    ctx.log("every operation recorded by its hook");
    unwatched_operations_stay_in_the_kernel(ctx, engine)?;
    // The programs whose load (verifier time) took over a second: where the start time goes.
    let log = std::fs::read_to_string("/tmp/enforcer-file-ops.log").unwrap_or_default();
    for line in log.lines().filter(|l| l.contains(" took ")) {
        ctx.log(format!("engine: {line}"));
    }
    killed_engine_still_denies(ctx, engine, &start, &sub)
}

/// Beside the watched paths (in the same directory, under no watched path), a mkdir, chmod,
/// chown, rename, link, unlink and rmdir succeed and leave no record (the hooks' directory
/// filter drops them before their paths are built; the full match would drop them too,
/// later). A denied mkdir made after them, whose record is awaited, shows that the records of
/// everything before it were written. A rename from there into the denied directory (only its
/// new path is watched) is still refused, and so is a hard link made there to a file whose
/// link target is watched (the new name's directory is dropped; the target, in another
/// directory, still has its walk).
fn unwatched_operations_stay_in_the_kernel(ctx: &Ctx, engine: &mut Engine) -> Result<(), String> {
    const FREE: &str = "/tmp/fops/free";
    let file = format!("{FREE}/file");
    let moved = format!("{FREE}/moved");
    let into = format!("{DENY}/moved");
    let barrier = format!("{DENY}/barrier");
    let alias = format!("{FREE}/alias");
    let ok = |what: &str, r: libc::c_int| {
        if r == 0 {
            Ok(())
        } else {
            Err(format!("{what}: {}", std::io::Error::last_os_error()))
        }
    };
    // SAFETY: valid NUL-terminated paths; plain syscalls on the case's own files.
    unsafe {
        ok("mkdir free", libc::mkdir(c(FREE).as_ptr(), 0o755))?;
        std::fs::write(&file, b"x").map_err(|e| format!("write {file}: {e}"))?;
        ok("chmod free", libc::chmod(c(&file).as_ptr(), 0o600))?;
        ok("chown free", libc::chown(c(&file).as_ptr(), 0, 0))?;
        ok(
            "rename free",
            libc::rename(c(&file).as_ptr(), c(&moved).as_ptr()),
        )?;
        ok(
            "link free",
            libc::link(c(&moved).as_ptr(), c(&file).as_ptr()),
        )?;
        ok("unlink free", libc::unlink(c(&moved).as_ptr()))?;
        expect_eperm(
            "rename into the denied directory",
            libc::rename(c(&file).as_ptr(), c(&into).as_ptr()),
        )?;
        expect_eperm(
            "link to the watched target",
            libc::link(c(LINKED).as_ptr(), c(&alias).as_ptr()),
        )?;
        ok("unlink free", libc::unlink(c(&file).as_ptr()))?;
        ok("rmdir free", libc::rmdir(c(FREE).as_ptr()))?;
        expect_eperm("mkdir barrier", libc::mkdir(c(&barrier).as_ptr(), 0o755))?;
    }
    engine.wait_record(RECORD_TIMEOUT, "deny of the barrier mkdir", |r| {
        audit::is_action(r, "deny", "deny-mkdir") && r["event"]["file"]["path"] == barrier
    })?;
    engine.wait_record(RECORD_TIMEOUT, "deny of the rename into deny/", |r| {
        audit::is_action(r, "deny", "deny-rename-into")
            && r["event"]["hook"] == "lsm/path_rename"
            && r["event"]["rename"]["new"]["path"] == into
    })?;
    engine.wait_record(
        RECORD_TIMEOUT,
        "deny of the link to the watched target",
        |r| {
            audit::is_action(r, "deny", "deny-link-target")
                && r["event"]["hook"] == "lsm/path_link"
                && r["event"]["file"]["path"] == alias
                && r["event"]["link"]["target"]["path"] == LINKED
        },
    )?;
    let records = audit::records(&engine.audit_log)?;
    // The refused rename into deny/ is reported under its old path, which is in FREE, and the
    // refused link under its new name there.
    if let Some(r) = records.iter().find(|r| {
        r["event"]["rename"]["new"]["path"] != into.as_str()
            && r["event"]["link"]["target"]["path"] != LINKED
            && r["event"]["file"]["path"]
                .as_str()
                .is_some_and(|p| p.starts_with(FREE))
    }) {
        return Err(format!("an unwatched operation was reported: {r}"));
    }
    if Path::new(&into).exists() {
        return Err(format!("{into} exists after the denied rename"));
    }
    if Path::new(&alias).exists() {
        return Err(format!("{alias} exists after the denied link"));
    }
    ctx.log("mkdir, chmod, chown, rename, link, unlink, rmdir beside the watched paths: no record; a rename into deny/ and a link there to a watched target refused");
    Ok(())
}

/// The optional file hooks are pinned with the others: with the engine SIGKILLed, a mkdir
/// under the denied directory still fails with EPERM.
fn killed_engine_still_denies(
    ctx: &Ctx,
    engine: &mut Engine,
    start: &serde_json::Value,
    sub: &str,
) -> Result<(), String> {
    let run = audit::str_field(start, "run_id").ok_or_else(|| format!("no run_id: {start}"))?;
    let pin = Path::new(PIN_ROOT).join(run).join("link-lsm_path_mkdir");
    if !pin.exists() {
        return Err(format!("{} is not pinned", pin.display()));
    }
    engine.sigkill()?;
    // SAFETY: a valid NUL-terminated path.
    expect_eperm("mkdir with the engine killed", unsafe {
        libc::mkdir(c(sub).as_ptr(), 0o755)
    })?;
    if Path::new(sub).exists() {
        return Err(format!("{sub} exists after the denied mkdir"));
    }
    ctx.log("engine SIGKILLed: the pinned path_mkdir program still denies");
    Ok(())
}
