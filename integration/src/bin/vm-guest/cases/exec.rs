//! Exec enforcement cases, shaped like aya's LSM integration test: allowed before attach,
//! denied with EPERM while the engine runs in block mode (and audited), allowed again after
//! the engine exits; and in monitor mode, allowed but audited as `would_deny`.

use std::process::ExitStatus;
use std::time::Duration;

use enforcer_integration::vm::layout::{
    DENY_MARKER_PATH_RULE, DENY_MARKER_RULE, MARKER_COPY, WRITE_MARKER,
};
use serde_json::Value;

use super::Ctx;
use crate::audit;
use crate::engine::Engine;
use crate::payload;

/// TCG is slow: loading and attaching the programs can take tens of seconds.
pub(super) const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the ring-buffer reader may take to write an action record.
pub(super) const RECORD_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a SIGTERM'd engine may take to detach and exit.
pub(super) const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Lines printed from the start and the end of the engine's output and audit log when a case
/// fails (the start names what failed; a verifier log can follow for pages).
const DUMP_HEAD: usize = 15;
const DUMP_TAIL: usize = 30;
/// How much of `tier_reason` a failure reason quotes.
const TIER_REASON_CHARS: usize = 300;

/// Block mode: exec allowed -> engine attaches -> exec denied (EPERM, no marker, `deny`
/// record) -> SIGTERM, exit 0 -> exec allowed again.
pub(crate) fn lsm_exec_deny(ctx: &Ctx) -> Result<(), String> {
    require_engine()?;
    payload::expect_allowed("/tmp/m1", "before attach")?;
    ctx.log("before attach: write-marker ran and wrote /tmp/m1");
    let mut engine = Engine::start(
        "block",
        "/tmp/audit.jsonl".as_ref(),
        "/tmp/enforcer-block.log".as_ref(),
    )?;
    let result = deny_while_attached(ctx, &mut engine);
    if result.is_err() {
        dump(ctx, &engine);
    }
    result?;
    payload::expect_allowed("/tmp/m3", "after detach")?;
    ctx.log("after detach: write-marker ran and wrote /tmp/m3");
    Ok(())
}

fn deny_while_attached(ctx: &Ctx, engine: &mut Engine) -> Result<(), String> {
    let start = engine.wait_started(START_TIMEOUT)?;
    ctx.log(format!("engine_start record: {start}"));
    expect_field(&start, "tier", "lsm")?;
    expect_field(&start, "mode", "block")?;
    payload::expect_denied("/tmp/m2", "while attached in block mode")?;
    ctx.log("attached: exec of write-marker failed with EPERM, /tmp/m2 absent");
    let record = engine.wait_record(
        RECORD_TIMEOUT,
        "\"type\":\"action\",\"action\":\"deny\" record for rule deny-write-marker",
        |r| audit::is_action(r, "deny", DENY_MARKER_RULE),
    )?;
    ctx.log(format!("action record: {record}"));
    deny_copy_by_path(ctx, engine)?;
    expect_clean_exit(engine.terminate(STOP_TIMEOUT)?)
}

/// A copy of the payload under another name: only the path rule matches it, so the LSM hook
/// must look the path plan up (the plan has a path entry: `EXEC_PATHS`).
fn deny_copy_by_path(ctx: &Ctx, engine: &mut Engine) -> Result<(), String> {
    std::fs::copy(WRITE_MARKER, MARKER_COPY)
        .map_err(|e| format!("copy {WRITE_MARKER} to {MARKER_COPY}: {e}"))?;
    payload::expect_denied_as(MARKER_COPY, "/tmp/m2-copy", "a copy, denied by its path")?;
    ctx.log("attached: exec of the payload's copy failed with EPERM (path rule)");
    let record = engine.wait_record(
        RECORD_TIMEOUT,
        "\"type\":\"action\",\"action\":\"deny\" record for the path rule",
        |r| audit::is_action(r, "deny", DENY_MARKER_PATH_RULE),
    )?;
    ctx.log(format!("path rule action record: {record}"));
    Ok(())
}

/// Monitor mode: the engine attaches, the exec runs and writes its marker, and the audit log
/// gets a `would_deny` record naming the rule.
pub(crate) fn lsm_exec_monitor(ctx: &Ctx) -> Result<(), String> {
    require_engine()?;
    let mut engine = Engine::start(
        "monitor",
        "/tmp/audit-monitor.jsonl".as_ref(),
        "/tmp/enforcer-monitor.log".as_ref(),
    )?;
    let result = allow_while_monitoring(ctx, &mut engine);
    if result.is_err() {
        dump(ctx, &engine);
    }
    result
}

fn allow_while_monitoring(ctx: &Ctx, engine: &mut Engine) -> Result<(), String> {
    let start = engine.wait_started(START_TIMEOUT)?;
    ctx.log(format!("engine_start record: {start}"));
    expect_field(&start, "mode", "monitor")?;
    // Run from /tmp (its own mount here): the kernel's walk of the working directory crosses
    // into the parent mount.
    let previous = std::env::current_dir().map_err(|e| format!("current directory: {e}"))?;
    std::env::set_current_dir("/tmp").map_err(|e| format!("cd /tmp: {e}"))?;
    let ran = payload::expect_allowed("/tmp/m4", "while attached in monitor mode");
    std::env::set_current_dir(&previous).map_err(|e| format!("cd back: {e}"))?;
    ran?;
    ctx.log("monitor mode: write-marker ran and wrote /tmp/m4");
    let record = engine.wait_record(
        RECORD_TIMEOUT,
        "\"type\":\"action\",\"action\":\"would_deny\" record for rule deny-write-marker",
        |r| audit::is_action(r, "would_deny", DENY_MARKER_RULE),
    )?;
    ctx.log(format!("action record: {record}"));
    // The exec record's working directory is walked in the kernel (6.1's verifier took it
    // only as the exec program's first step).
    let cwd = std::path::Path::new("/tmp")
        .canonicalize()
        .map_err(|e| format!("/tmp: {e}"))?;
    let event = engine.wait_record(
        RECORD_TIMEOUT,
        "the exec event of write-marker from tp_btf/sched_process_exec",
        |r| {
            r["type"] == "event"
                && r["event"]["hook"] == "tp_btf/sched_process_exec"
                && r["event"]["exec"]["file"]["name"] == "write-marker"
        },
    )?;
    if event["event"]["exec"]["cwd"] != cwd.display().to_string().as_str() {
        return Err(format!("exec.cwd is not {}: {event}", cwd.display()));
    }
    ctx.log(format!("exec event with exec.cwd {}", cwd.display()));
    expect_clean_exit(engine.terminate(STOP_TIMEOUT)?)
}

pub(super) fn require_engine() -> Result<(), String> {
    if Engine::present() {
        Ok(())
    } else {
        Err("enforcer binary missing".to_owned())
    }
}

/// Checks a field of the `engine_start` record; a mismatch names the engine's `tier_reason`
/// (why it did not get the tier it wanted), cut short: verifier logs can be long.
pub(super) fn expect_field(record: &Value, key: &str, want: &str) -> Result<(), String> {
    match audit::str_field(record, key) {
        Some(got) if got == want => Ok(()),
        got => {
            let got = got.map_or_else(|| "(missing)".to_owned(), |g| format!("{g:?}"));
            let mut reason = format!("engine_start says {key}={got}, want {want:?}");
            if let Some(why) = audit::str_field(record, "tier_reason") {
                let short: String = why.chars().take(TIER_REASON_CHARS).collect();
                reason.push_str(&format!("; tier_reason: {short}"));
            }
            Err(reason)
        }
    }
}

pub(super) fn expect_clean_exit(status: ExitStatus) -> Result<(), String> {
    if status.code() == Some(0) {
        Ok(())
    } else {
        Err(format!(
            "engine exited with {status} after a stop signal, want exit status 0"
        ))
    }
}

/// Prints the tail of the engine's output and audit log as `VMLOG` lines.
pub(super) fn dump(ctx: &Ctx, engine: &Engine) {
    for (label, path) in [("engine", &engine.output_log), ("audit", &engine.audit_log)] {
        let (total, lines) = audit::excerpt(path, DUMP_HEAD, DUMP_TAIL);
        ctx.log(format!("--- {label} {} ({total} lines)", path.display()));
        for line in lines {
            ctx.log(format!("{label}: {line}"));
        }
    }
}
