//! F16 in the lsm tier: an engine started with `--on-crash keep-enforcing` is SIGKILLed; the
//! exec of the denied payload still fails with EPERM (the pinned LSM `bprm_check_security`
//! link and its plan maps outlive the daemon); a restart appending to the same audit log
//! writes `engine_gap` (`enforcement: pinned`, the old run's counters) and removes the old
//! pins; after a clean stop nothing is pinned and the payload runs.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use enforcer_integration::vm::layout;

use super::{
    Ctx,
    exec::{RECORD_TIMEOUT, START_TIMEOUT, STOP_TIMEOUT, dump, expect_clean_exit, require_engine},
};
use crate::{audit, engine::Engine, payload};

const AUDIT: &str = "/tmp/audit-crash.jsonl";
pub(super) use enforcer_integration::pins::PIN_ROOT;
pub(super) const KEEP: [&str; 2] = ["--on-crash", "keep-enforcing"];
/// Pinned links are released by deferred kernel work after their pins go.
const DETACH: Duration = Duration::from_secs(10);

/// Removes every pin when dropped: the VM is this harness's alone, and a failed case must not
/// leave the payload denied for the cases after it.
pub(super) struct Unpin;

impl Drop for Unpin {
    fn drop(&mut self) {
        let Ok(runs) = std::fs::read_dir(PIN_ROOT) else {
            return;
        };
        for run in runs.filter_map(Result::ok) {
            if let Ok(pins) = std::fs::read_dir(run.path()) {
                for pin in pins.filter_map(Result::ok) {
                    let _ = std::fs::remove_file(pin.path());
                }
            }
            let _ = std::fs::remove_dir(run.path());
        }
    }
}

/// See the module documentation.
pub(crate) fn lsm_crash_pinned(ctx: &Ctx) -> Result<(), String> {
    require_engine()?;
    let _unpin = Unpin;
    payload::expect_allowed("/tmp/c1", "before attach")?;
    let mut engine = Engine::start_args(
        layout::DENY_MARKER_POLICY,
        "block",
        Path::new(AUDIT),
        Path::new("/tmp/enforcer-crash-1.log"),
        &KEEP,
    )?;
    let result = pinned_then_killed(ctx, &mut engine);
    if result.is_err() {
        dump(ctx, &engine);
    }
    let (run_id, old_pid) = result?;
    payload::expect_denied("/tmp/c2", "engine SIGKILLed, pins left")?;
    payload::expect_denied("/tmp/c3", "engine SIGKILLed, pins left (again)")?;
    ctx.log("no daemon: exec of write-marker failed with EPERM twice");

    let mut engine = Engine::restart_args(
        layout::DENY_MARKER_POLICY,
        "block",
        Path::new(AUDIT),
        Path::new("/tmp/enforcer-crash-2.log"),
        &KEEP,
    )?;
    let result = restarted(ctx, &mut engine, &run_id, old_pid);
    if result.is_err() {
        dump(ctx, &engine);
    }
    result?;
    let deadline = Instant::now() + DETACH;
    loop {
        match payload::expect_allowed("/tmp/c5", "after a clean stop") {
            Ok(()) => break,
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
    ctx.log("clean stop: no pins left, write-marker ran");
    Ok(())
}

/// Waits for the start, checks the LSM link is pinned, SIGKILLs the engine; returns the run
/// id and pid.
fn pinned_then_killed(ctx: &Ctx, engine: &mut Engine) -> Result<(String, u64), String> {
    let start = engine.wait_started(START_TIMEOUT)?;
    super::exec::expect_field(&start, "tier", "lsm")?;
    super::exec::expect_field(&start, "on_crash", "keep-enforcing")?;
    let run_id = audit::str_field(&start, "run_id")
        .ok_or_else(|| format!("engine_start has no run_id: {start}"))?
        .to_owned();
    let pid = start["pid"].as_u64().unwrap_or(0);
    let lsm_pin = Path::new(PIN_ROOT)
        .join(&run_id)
        .join("link-lsm_bprm_check_security");
    if !lsm_pin.exists() {
        return Err(format!("{} is not pinned: {start}", lsm_pin.display()));
    }
    ctx.log(format!(
        "run {run_id}: {} links pinned",
        start["pinned_links"]
    ));
    payload::expect_denied("/tmp/c0", "engine running")?;
    let status = engine.sigkill()?;
    ctx.log(format!("engine SIGKILLed: {status}"));
    Ok((run_id, pid))
}

fn restarted(ctx: &Ctx, engine: &mut Engine, old_run: &str, old_pid: u64) -> Result<(), String> {
    // The log holds the killed run's `engine_start` too: wait for this run's.
    engine.wait_record(START_TIMEOUT, "engine_start of the restarted engine", |r| {
        audit::is_type(r, "engine_start") && r["pid"] != old_pid
    })?;
    let gap = engine.wait_record(RECORD_TIMEOUT, "engine_gap record", |r| {
        audit::is_type(r, "engine_gap")
    })?;
    ctx.log(format!("gap record: {gap}"));
    let want = |ok: bool, what: &str| {
        if ok {
            Ok(())
        } else {
            Err(format!("engine_gap: {what}: {gap}"))
        }
    };
    want(gap["previous_run_id"] == old_run, "previous_run_id")?;
    want(gap["previous_pid"] == old_pid, "previous_pid")?;
    want(gap["enforcement"] == "pinned", "enforcement")?;
    want(
        gap["detected_by"] == serde_json::json!(["audit_log", "pins"]),
        "detected_by",
    )?;
    want(
        gap["pins_removed"].as_u64().is_some_and(|n| n >= 1),
        "pins_removed",
    )?;
    want(
        gap["pinned_counters"]["exec_matched"]
            .as_u64()
            .is_some_and(|n| n >= 3),
        "pinned_counters.exec_matched counts the denials",
    )?;
    want(gap["previous_start"].is_string(), "previous_start")?;
    let runs = enforcer_integration::pins::run_dirs();
    if runs.iter().any(|r| r == old_run) || runs.len() != 1 {
        return Err(format!("after the restart, pinned runs: {runs:?}"));
    }
    payload::expect_denied("/tmp/c4", "restarted engine")?;
    expect_clean_exit(engine.terminate(STOP_TIMEOUT)?)?;
    let runs = enforcer_integration::pins::run_dirs();
    if !runs.is_empty() {
        return Err(format!("after a clean stop, pinned runs: {runs:?}"));
    }
    Ok(())
}
