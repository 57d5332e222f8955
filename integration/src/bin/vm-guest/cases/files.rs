//! File integrity cases in the lsm tier, with the policy of `fixtures/protect-files.yaml`.
//! Block mode: a write open of the protected file fails with EPERM and the file keeps its
//! content; unlink, rename and chmod of the kept file fail with EPERM and it stays; a write
//! under the watched directory succeeds and is reported by LSM `file_open`; a write to the
//! huge-page sysctl (F8, the current value written back) is the tagged alert. Monitor mode: the
//! protected write succeeds and the audit log says `would_deny`.

use std::{io::Write as _, os::unix::fs::PermissionsExt as _, path::Path};

use enforcer_integration::vm::layout;

use super::{
    Ctx,
    exec::{
        RECORD_TIMEOUT, START_TIMEOUT, STOP_TIMEOUT, dump, expect_clean_exit, expect_field,
        require_engine,
    },
};
use crate::{audit, engine::Engine};

pub(super) const PROTECTED: &str = "/tmp/fim/protected";
pub(super) const KEEP: &str = "/tmp/fim/keep";
pub(super) const WATCHED: &str = "/tmp/fim/w/new";
const NR_HUGEPAGES: &str = "/proc/sys/vm/nr_hugepages";
const ORIGINAL: &[u8] = b"original\n";

pub(super) fn setup() -> Result<(), String> {
    std::fs::create_dir_all("/tmp/fim/w").map_err(|e| format!("mkdir /tmp/fim/w: {e}"))?;
    std::fs::write(PROTECTED, ORIGINAL).map_err(|e| format!("write {PROTECTED}: {e}"))?;
    std::fs::write(KEEP, b"k").map_err(|e| format!("write {KEEP}: {e}"))?;
    std::fs::set_permissions(KEEP, std::fs::Permissions::from_mode(0o644))
        .map_err(|e| format!("chmod {KEEP}: {e}"))
}

/// `Err` unless `result` failed with EPERM.
fn expect_eperm<T>(what: &str, result: std::io::Result<T>) -> Result<(), String> {
    match result {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => Ok(()),
        Err(e) => Err(format!("{what}: want EPERM, got {e}")),
        Ok(_) => Err(format!("{what}: want EPERM, it succeeded")),
    }
}

fn write_protected() -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(PROTECTED)?;
    f.write_all(b"changed\n")
}

/// Block mode; see the module documentation.
pub(crate) fn lsm_file_deny(ctx: &Ctx) -> Result<(), String> {
    require_engine()?;
    setup()?;
    let mut engine = Engine::start_with(
        layout::FILES_POLICY,
        "block",
        Path::new("/tmp/audit-files.jsonl"),
        Path::new("/tmp/enforcer-files.log"),
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

    expect_eperm("write open of the protected file", write_protected())?;
    let content = std::fs::read(PROTECTED).map_err(|e| format!("read {PROTECTED}: {e}"))?;
    if content != ORIGINAL {
        return Err(format!("{PROTECTED} changed: {content:?}"));
    }
    ctx.log("protected write: EPERM, content unchanged");
    expect_eperm("unlink of the kept file", std::fs::remove_file(KEEP))?;
    expect_eperm(
        "rename of the kept file",
        std::fs::rename(KEEP, "/tmp/fim/moved"),
    )?;
    expect_eperm(
        "chmod of the kept file",
        std::fs::set_permissions(KEEP, std::fs::Permissions::from_mode(0o600)),
    )?;
    let mode = std::fs::metadata(KEEP)
        .map_err(|e| format!("{KEEP} is gone: {e}"))?
        .permissions()
        .mode();
    if mode & 0o777 != 0o644 {
        return Err(format!("{KEEP} mode changed to {mode:o}"));
    }
    ctx.log("unlink, rename, chmod of the kept file: EPERM, file unchanged");

    std::fs::write(WATCHED, b"w").map_err(|e| format!("write {WATCHED}: {e}"))?;
    let current =
        std::fs::read_to_string(NR_HUGEPAGES).map_err(|e| format!("read {NR_HUGEPAGES}: {e}"))?;
    std::fs::write(NR_HUGEPAGES, current.trim())
        .map_err(|e| format!("write {NR_HUGEPAGES}: {e}"))?;

    for rule in [
        "protect-file-write",
        "protect-file-unlink",
        "protect-file-rename",
        "protect-file-chmod",
    ] {
        let record = engine.wait_record(RECORD_TIMEOUT, &format!("deny of {rule}"), |r| {
            audit::is_action(r, "deny", rule)
        })?;
        if rule == "protect-file-write" {
            ctx.log(format!("deny record: {record}"));
        }
    }
    let watched = engine.wait_record(RECORD_TIMEOUT, "alert of watch-fim-dir", |r| {
        audit::is_action(r, "alert", "watch-fim-dir")
    })?;
    let hook = watched["event"]["hook"].as_str().unwrap_or_default();
    if hook != "lsm/file_open" || watched["event"]["open"]["file"]["path"] != WATCHED {
        return Err(format!("watched write record: {watched}"));
    }
    engine.wait_record(RECORD_TIMEOUT, "alert of hugepages-write", |r| {
        audit::is_action(r, "alert", "hugepages-write")
    })?;
    ctx.log("watched write and huge-page sysctl write reported by lsm/file_open");
    expect_clean_exit(engine.terminate(STOP_TIMEOUT)?)
}

/// Monitor mode: the protected write goes through and is recorded as `would_deny`.
pub(crate) fn lsm_file_monitor(ctx: &Ctx) -> Result<(), String> {
    require_engine()?;
    setup()?;
    let mut engine = Engine::start_with(
        layout::FILES_POLICY,
        "monitor",
        Path::new("/tmp/audit-files-monitor.jsonl"),
        Path::new("/tmp/enforcer-files-monitor.log"),
    )?;
    let result = (|| {
        engine.wait_started(START_TIMEOUT)?;
        write_protected().map_err(|e| format!("monitor mode write: {e}"))?;
        let content = std::fs::read(PROTECTED).map_err(|e| format!("read {PROTECTED}: {e}"))?;
        if content != b"changed\n" {
            return Err(format!("monitor mode: {PROTECTED} holds {content:?}"));
        }
        let record =
            engine.wait_record(RECORD_TIMEOUT, "would_deny of protect-file-write", |r| {
                audit::is_action(r, "would_deny", "protect-file-write")
            })?;
        ctx.log(format!("monitor: write succeeded, record {record}"));
        expect_clean_exit(engine.terminate(STOP_TIMEOUT)?)
    })();
    if result.is_err() {
        dump(ctx, &engine);
    }
    result
}
