//! F15 in the lsm tier: an exec storm (`busybox true` from two threads) while F1 (`xmrig` with
//! its catalog command line) is started again and again under the shipped policy. Every F1
//! exec must still fail with EPERM, the engine must stop cleanly, and every refusal must have
//! its deny record unless the kernel counted ring-buffer losses (`ringbuf_full`). Under TCG
//! the storm is small (tens of execs a second); the host suite's `host_storm.rs` runs the
//! thousands-a-second version in the signal tier.

use std::{
    path::Path,
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use enforcer_integration::{catalog, vm::layout};

use super::{
    Ctx,
    default_policy::{DIR, Outcome, install, run_marker},
    exec::{RECORD_TIMEOUT, START_TIMEOUT, STOP_TIMEOUT, dump, expect_clean_exit, require_engine},
};
use crate::{audit, engine::Engine};

/// F1 starts during the storm.
const F1_RUNS: usize = 10;

/// Block mode with the default policy; see the module documentation.
pub(crate) fn lsm_exec_storm(ctx: &Ctx) -> Result<(), String> {
    require_engine()?;
    std::fs::create_dir_all(DIR).map_err(|e| format!("mkdir {DIR}: {e}"))?;
    let audit_log = format!("{DIR}/audit-storm.jsonl");
    let mut engine = Engine::start_with(
        layout::DEFAULT_POLICY_DIR,
        "block",
        Path::new(&audit_log),
        Path::new(&format!("{DIR}/enforcer-storm.log")),
    )?;
    let result = f1_during_storm(ctx, &mut engine, &audit_log);
    if result.is_err() {
        dump(ctx, &engine);
    }
    result
}

fn f1_during_storm(ctx: &Ctx, engine: &mut Engine, audit_log: &str) -> Result<(), String> {
    engine.wait_started(START_TIMEOUT)?;
    let f1 = catalog::NAMED_MINERS[0];
    let exe = install(layout::WRITE_MARKER, f1.name)?;
    let stop = Arc::new(AtomicBool::new(false));
    let execs = Arc::new(AtomicU64::new(0));
    let storm: Vec<_> = (0..2)
        .map(|_| {
            let (stop, execs) = (Arc::clone(&stop), Arc::clone(&execs));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let ok = Command::new(layout::BUSYBOX)
                        .arg("true")
                        .stdin(Stdio::null())
                        .status()
                        .is_ok_and(|s| s.success());
                    if ok {
                        execs.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut outcomes = Vec::new();
    for _ in 0..F1_RUNS {
        outcomes.push(run_marker(&exe, f1.name, f1.args));
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    for thread in storm {
        let _ = thread.join();
    }
    let storm_execs = execs.load(Ordering::Relaxed);
    for (run, outcome) in outcomes.into_iter().enumerate() {
        match outcome? {
            Outcome::Refused => {}
            other => {
                return Err(format!(
                    "F1 run {run} during the storm: {other:?}, want EPERM"
                ));
            }
        }
    }
    engine.wait_record(RECORD_TIMEOUT, "a deny record of F1", |r| {
        audit::is_action(r, "deny", f1.rule)
    })?;
    expect_clean_exit(engine.terminate(STOP_TIMEOUT)?)?;
    let records = audit::records(Path::new(audit_log))?;
    let stopped = records
        .iter()
        .find(|r| audit::is_type(r, "engine_stop"))
        .ok_or("no engine_stop record")?;
    let lost = stopped["counters"]["ringbuf_full"].as_u64().unwrap_or(0);
    let denies = records
        .iter()
        .filter(|r| {
            audit::is_action(r, "deny", f1.rule) && r["event"]["exec"]["file"]["name"] == f1.name
        })
        .count();
    ctx.log(format!(
        "F15: {storm_execs} storm execs, F1 refused {F1_RUNS}/{F1_RUNS}, deny records {denies}, ringbuf_full {lost}, decode_errors {}",
        stopped["decode_errors"]
    ));
    if storm_execs == 0 {
        return Err("the storm ran no exec".to_owned());
    }
    if denies != F1_RUNS && lost == 0 {
        return Err(format!(
            "{denies} deny records for {F1_RUNS} refusals and no counted loss"
        ));
    }
    Ok(())
}
