//! Infrastructure case: the VM booted with BPF LSM active, so the other cases test the engine
//! and not the runner.

use super::Ctx;

const LSM_LIST: &str = "/sys/kernel/security/lsm";

/// PASS when `bpf` is in the active LSM list (`lsm=` on the kernel command line, securityfs
/// mounted by `/init`).
pub(crate) fn lsm_bpf_active(ctx: &Ctx) -> Result<(), String> {
    let list = std::fs::read_to_string(LSM_LIST)
        .map_err(|e| format!("cannot read {LSM_LIST} (is securityfs mounted?): {e}"))?;
    let list = list.trim();
    ctx.log(format!("active LSMs: {list}"));
    if list.split(',').any(|lsm| lsm == "bpf") {
        Ok(())
    } else {
        Err(format!(
            "bpf is not an active LSM: {LSM_LIST} says {list:?}"
        ))
    }
}
