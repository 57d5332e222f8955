//! F12 in the lsm tier: a program started through the dynamic loader
//! (`/lib64/ld-linux-x86-64.so.2 /bin/write-marker ...`) is never `execve`d itself; the exec'd
//! file is ld.so. LSM `mmap_file` sees ld.so map the program executable and checks it against
//! the exec plan: the deny-marker policy's name rule refuses the mapping (EPERM), ld.so fails
//! to load the program and no marker is written; an ordinary program run through ld.so works.

use std::process::{Command, Stdio};

use enforcer_integration::vm::layout::{self, DENY_MARKER_RULE};

use super::Ctx;
use super::exec::{
    RECORD_TIMEOUT, START_TIMEOUT, STOP_TIMEOUT, dump, expect_clean_exit, expect_field,
    require_engine,
};
use crate::audit;
use crate::engine::Engine;

/// The dynamic loader the initramfs carries.
const LD_SO: &str = "/lib64/ld-linux-x86-64.so.2";
const MARKER: &str = "/tmp/m-ld-so";

/// Block mode: the payload through ld.so is refused at its executable mapping.
pub(crate) fn lsm_mmap_ld_so(ctx: &Ctx) -> Result<(), String> {
    require_engine()?;
    let mut engine = Engine::start(
        "block",
        "/tmp/audit-mmap.jsonl".as_ref(),
        "/tmp/enforcer-mmap.log".as_ref(),
    )?;
    let result = mapping_denied(ctx, &mut engine);
    if result.is_err() {
        dump(ctx, &engine);
    }
    result
}

fn mapping_denied(ctx: &Ctx, engine: &mut Engine) -> Result<(), String> {
    let start = engine.wait_started(START_TIMEOUT)?;
    expect_field(&start, "tier", "lsm")?;
    let out = Command::new(LD_SO)
        .args([layout::WRITE_MARKER, MARKER, "x"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("exec of {LD_SO}: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() || std::path::Path::new(MARKER).exists() {
        return Err(format!(
            "{LD_SO} {} ran ({}), want the mapping refused; stderr {stderr}",
            layout::WRITE_MARKER,
            out.status
        ));
    }
    ctx.log(format!("through ld.so: {} ({})", out.status, stderr.trim()));
    let deny = engine.wait_record(RECORD_TIMEOUT, "deny at mmap_file", |r| {
        audit::is_action(r, "deny", DENY_MARKER_RULE)
    })?;
    let hook = deny["event"]["hook"].clone();
    if hook != "lsm/mmap_file" || deny["event"]["exec"]["file"]["name"] != "write-marker" {
        return Err(format!("deny record {deny}"));
    }
    ctx.log(format!("deny record from {hook}"));
    // An ordinary program through ld.so runs.
    let status = Command::new(LD_SO)
        .args([layout::GUEST_HARNESS, "--list"])
        .stdout(Stdio::null())
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("{LD_SO} {}: {e}", layout::GUEST_HARNESS))?;
    if !status.success() {
        return Err(format!(
            "{LD_SO} {} --list: {status}",
            layout::GUEST_HARNESS
        ));
    }
    ctx.log("an ordinary program through ld.so ran");
    expect_clean_exit(engine.terminate(STOP_TIMEOUT)?)
}
