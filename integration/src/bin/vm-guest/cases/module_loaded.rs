//! A loaded module named by the kernel, in the lsm tier: `init_module` of this kernel's
//! `msr.ko` image from memory (the case `lsm_msr` loads it from its file) with
//! `allow_writes=on`, under a policy whose only rule, `module-loaded`, alerts on
//! `kernel.op == "module_loaded"`. The syscall's own record cannot name an image in memory;
//! the `module:module_load` tracepoint's must: `kernel.module.name` `msr`, stage `loaded`,
//! hook `raw_tp/module_load`, the loader's pid, and no parameters (the kernel has parsed
//! them in place by then; the syscall's record carries them). Under `--on-crash
//! keep-enforcing` its link is pinned (`link-tp_module_load`). The module is unloaded at the
//! end.

use std::path::Path;

use super::{
    Ctx,
    crash::{KEEP, PIN_ROOT, Unpin},
    exec::{RECORD_TIMEOUT, START_TIMEOUT, STOP_TIMEOUT, dump, expect_field, require_engine},
    kernel::kernel_ops,
    msr::{module_path, unload_msr},
};
use crate::{audit, engine::Engine};

const AUDIT: &str = "/tmp/audit-module-loaded.jsonl";
const POLICY: &str = "/tmp/module-loaded.yaml";
/// The case's policy: one alert on every loaded module.
const POLICY_TEXT: &str = "version: 1
rules:
  - id: module-loaded
    description: >-
      Test rule of the VM case lsm_module_loaded: every module the kernel loads. False-positive
      risk: every module load (test only).
    severity: low
    expression: kernel.op == \"module_loaded\"
    action: alert
";

/// See the module documentation.
pub(crate) fn lsm_module_loaded(ctx: &Ctx) -> Result<(), String> {
    require_engine()?;
    let module = module_path()?;
    if Path::new("/sys/module/msr").exists() {
        return Err("msr is already loaded (or built in) before the case".to_owned());
    }
    std::fs::write(POLICY, POLICY_TEXT).map_err(|e| format!("write {POLICY}: {e}"))?;
    let _unpin = Unpin;
    let mut engine = Engine::start_args(
        POLICY,
        "block",
        Path::new(AUDIT),
        Path::new("/tmp/enforcer-module-loaded.log"),
        &KEEP,
    )?;
    let result = while_attached(ctx, &mut engine, &module);
    if result.is_err() {
        dump(ctx, &engine);
    }
    let unload = unload_msr();
    result?;
    unload
}

fn while_attached(ctx: &Ctx, engine: &mut Engine, module: &str) -> Result<(), String> {
    let start = engine.wait_started(START_TIMEOUT)?;
    expect_field(&start, "tier", "lsm")?;
    if start["kernel_syscalls_unseen"]
        .as_object()
        .is_some_and(|unseen| unseen.contains_key("module:module_load"))
    {
        return Err(format!(
            "the engine reports module:module_load unseen: {start}"
        ));
    }
    // The program can kill the loader (for a rule with an action): its link is pinned.
    let run = audit::str_field(&start, "run_id").ok_or_else(|| format!("no run_id: {start}"))?;
    let pin = Path::new(PIN_ROOT).join(run).join("link-tp_module_load");
    if !pin.exists() {
        return Err(format!("{} is not pinned", pin.display()));
    }
    let load = kernel_ops(&["init-module-file", module, "allow_writes=on"])?;
    if load["errno"] != 0 {
        return Err(format!(
            "init_module of the {module} image must succeed: {load}"
        ));
    }
    ctx.log(format!("init_module of the {module} image: loaded"));
    let a = engine.wait_record(RECORD_TIMEOUT, "alert of module-loaded", |r| {
        audit::is_action(r, "alert", "module-loaded")
    })?;
    let (ev, k) = (&a["event"], &a["event"]["kernel"]);
    if ev["hook"] != "raw_tp/module_load"
        || k["op"] != "module_loaded"
        || k["syscall"] != "module:module_load"
        || k["stage"] != "loaded"
        || k["module"]["name"] != "msr"
        || k["module"].get("args").is_some()
        || ev["process"]["pid"] != load["pid"]
    {
        return Err(format!(
            "module-loaded alert not from raw_tp/module_load, without the name msr or the \
             loader's pid {}, or with parameters: {a}",
            load["pid"]
        ));
    }
    ctx.log(format!(
        "module-loaded: {} from raw_tp/module_load",
        k["module"]["name"]
    ));
    engine.terminate(STOP_TIMEOUT)?;
    Ok(())
}
