//! Process lifecycle records in the lsm tier (the same raw tracepoints as every tier): with the
//! engine attached, a child of the harness appears as a fork with its pid, its exec carries the
//! harness as its parent (process cache), and its exit has the right code or signal.

use std::{path::Path, process::Command};

use enforcer_integration::vm::layout;

use super::{
    Ctx,
    exec::{RECORD_TIMEOUT, START_TIMEOUT, STOP_TIMEOUT, dump, expect_clean_exit, require_engine},
};
use crate::{audit, engine::Engine};

const AUDIT: &str = "/tmp/audit-lifecycle.jsonl";

/// See the module documentation.
pub(crate) fn lsm_lifecycle(ctx: &Ctx) -> Result<(), String> {
    require_engine()?;
    let mut engine = Engine::start(
        "monitor",
        Path::new(AUDIT),
        Path::new("/tmp/enforcer-lifecycle.log"),
    )?;
    let result = lifecycle_while_attached(ctx, &mut engine);
    if result.is_err() {
        dump(ctx, &engine);
    }
    result
}

fn lifecycle_while_attached(ctx: &Ctx, engine: &mut Engine) -> Result<(), String> {
    engine.wait_started(START_TIMEOUT)?;
    let me = std::process::id();
    let run = |script: &str| -> Result<u32, String> {
        let child = Command::new(layout::BUSYBOX)
            .args(["sh", "-c", script])
            .spawn()
            .map_err(|e| format!("spawn busybox sh: {e}"))?;
        let pid = child.id();
        child
            .wait_with_output()
            .map_err(|e| format!("wait for {pid}: {e}"))?;
        Ok(pid)
    };
    let exits_3 = run("exit 3")?;
    let killed = run("kill -9 $$")?;
    let exit_of = |pid: u32| {
        move |r: &serde_json::Value| {
            audit::is_type(r, "event")
                && r["event"]["kind"] == "exit"
                && r["event"]["process"]["pid"] == pid
        }
    };
    let exit = engine.wait_record(RECORD_TIMEOUT, "exit of `exit 3`", exit_of(exits_3))?;
    if exit["event"]["exit"]["code"] != 3 || exit["event"]["exit"]["signal"] != 0 {
        return Err(format!("exit record of `exit 3`: {exit}"));
    }
    let exit = engine.wait_record(RECORD_TIMEOUT, "exit of `kill -9 $$`", exit_of(killed))?;
    if exit["event"]["exit"]["signal"] != 9 {
        return Err(format!("exit record of the killed child: {exit}"));
    }
    engine.wait_record(RECORD_TIMEOUT, "fork of the child", |r| {
        r["event"]["kind"] == "fork"
            && r["event"]["process"]["pid"] == me
            && r["event"]["fork"]["child"]["pid"] == exits_3
    })?;
    let exec = engine.wait_record(RECORD_TIMEOUT, "exec of the child", |r| {
        r["event"]["kind"] == "exec" && r["event"]["process"]["pid"] == exits_3
    })?;
    if exec["event"]["process"]["ancestors"][0]["pid"] != me {
        return Err(format!(
            "the exec does not name the harness as parent: {exec}"
        ));
    }
    ctx.log("fork, exec (with its parent) and exit records with code and signal");
    expect_clean_exit(engine.terminate(STOP_TIMEOUT)?)
}
