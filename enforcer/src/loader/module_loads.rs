//! The `module:module_load` raw tracepoint (`tp_module_load`): loaded where the running kernel
//! has it (a kernel without `CONFIG_MODULES`, like the 6.18 host, has none: the engine runs
//! without it and says so), attached only when a rule is about `kernel.op == "module_loaded"`.

use std::path::Path;

use aya::{
    Ebpf,
    programs::{RawTracePoint, links::FdLink},
};
use enforcer_common::{kernel_event::KernelOp, maps::programs::TP_MODULE_LOAD};

use super::{LoadError, log_load, on_demand, program, program_err, tracefs::TRACEFS};

/// The tracepoint, as `enforcer status` and the `engine_start` record name it.
pub const TRACEPOINT: &str = "module:module_load";

/// Whether the running kernel has the tracepoint; `Err` says why not.
pub fn present() -> Result<(), String> {
    if Path::new(TRACEFS)
        .join("events/module/module_load")
        .exists()
    {
        Ok(())
    } else {
        Err("no module:module_load tracepoint on this kernel (built without modules)".to_owned())
    }
}

/// Loads the program where the tracepoint exists: `Ok` when loaded, else why not.
pub fn load(ebpf: &mut Ebpf) -> Result<Result<(), String>, LoadError> {
    if let Err(why) = present() {
        return Ok(Err(why));
    }
    let started = std::time::Instant::now();
    program::<RawTracePoint>(ebpf, TP_MODULE_LOAD)?
        .load()
        .map_err(program_err("load", TP_MODULE_LOAD))?;
    log_load(ebpf, TP_MODULE_LOAD, started);
    Ok(Ok(()))
}

/// Attaches the loaded program when `wanted` (the `KernelOp` bits the policy's rules are
/// about) has `module_loaded`; the link, when made (see [`super::on_demand`]).
pub fn attach(
    ebpf: &mut Ebpf,
    loaded: &Result<(), String>,
    wanted: u32,
) -> Result<Option<FdLink>, LoadError> {
    if loaded.is_err() || wanted & KernelOp::ModuleLoaded.bit() == 0 {
        return Ok(None);
    }
    on_demand::attach_raw(ebpf, TP_MODULE_LOAD, "module_load").map(Some)
}
