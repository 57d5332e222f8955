//! Kernel-activity case (lsm tier), with the policy of `fixtures/vm-kernel.yaml`: a module
//! load (`finit_module` of a file that is not a module, `init_module` of a bogus image) and a
//! ptrace attach are refused with EPERM by LSM `kernel_read_file` / `kernel_load_data` /
//! `ptrace_access_check` (a `deny` record from the hook, once, built from the caller's
//! registers: the syscall, the parameters kernel-ops passed, the ptrace target); an open of
//! a child's `/proc/PID/mem` for writing, whose registers name `openat`, is refused (EACCES,
//! the kernel's answer to a refused access check) by the hook's fallback
//! (`ptrace_access_check` as the syscall, the target from the hook); a bpf map
//! creation and kexec are reported by LSM `bpf` / `kernel_load_data` (alerts, no tracepoint
//! attached for them), a module unload, credential changes and unshare (no LSM hook) by the
//! fentry programs on their syscalls' entry functions: no syscall tracepoint is attached.
//! Before the engine starts and after it stops, the same module load fails with another error
//! (the kernel's own, not EPERM), so the EPERM is the rule's.

use std::{path::Path, process::Command};

use enforcer_integration::vm::layout;
use serde_json::Value;

use super::{
    Ctx,
    exec::{
        RECORD_TIMEOUT, START_TIMEOUT, STOP_TIMEOUT, dump, expect_clean_exit, expect_field,
        require_engine,
    },
};
use crate::{audit, engine::Engine};

const AUDIT: &str = "/tmp/audit-kernel.jsonl";

/// Runs `kernel-ops ARGS` and returns its report line.
pub(super) fn kernel_ops(args: &[&str]) -> Result<Value, String> {
    let out = Command::new(layout::KERNEL_OPS)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run kernel-ops {args:?}: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or("");
    serde_json::from_str(line).map_err(|e| format!("kernel-ops {args:?}: {e}: {out:?}"))
}

fn errno(report: &Value) -> i64 {
    report["errno"].as_i64().unwrap_or(i64::MIN)
}

/// The module load the case refuses: `finit_module` of busybox (not a module).
fn finit() -> Result<Value, String> {
    kernel_ops(&["finit-module", layout::BUSYBOX])
}

/// See the module documentation.
pub(crate) fn lsm_kernel_events(ctx: &Ctx) -> Result<(), String> {
    require_engine()?;
    let before = finit()?;
    if errno(&before) == i64::from(libc::EPERM) || errno(&before) == 0 {
        return Err(format!(
            "without the engine the bogus module load must fail with the kernel's own error: {before}"
        ));
    }
    ctx.log(format!(
        "without the engine: finit_module errno {}",
        errno(&before)
    ));
    let mem_before = kernel_ops(&["proc-mem"])?;
    if errno(&mem_before) != 0 {
        return Err(format!(
            "without the engine a parent opens its child's /proc/PID/mem: {mem_before}"
        ));
    }
    let mut engine = Engine::start_with(
        layout::KERNEL_POLICY,
        "block",
        Path::new(AUDIT),
        Path::new("/tmp/enforcer-kernel.log"),
    )?;
    let result = (|| {
        let start = engine.wait_started(START_TIMEOUT)?;
        expect_field(&start, "tier", "lsm")?;
        if start["syscall_tracepoints"] != serde_json::json!([]) {
            return Err(format!("want no syscall tracepoint: {start}"));
        }
        let eperm = i64::from(libc::EPERM);

        let finit = finit()?;
        let init = kernel_ops(&["init-module"])?;
        let attach = kernel_ops(&["ptrace-attach"])?;
        for (what, report) in [
            ("finit_module", &finit),
            ("init_module", &init),
            ("ptrace attach", &attach),
        ] {
            if errno(report) != eperm {
                return Err(format!("{what} must be refused with EPERM: {report}"));
            }
        }
        let deny = |rule: &'static str, syscall: &'static str| {
            move |r: &Value| {
                audit::is_action(r, "deny", rule) && r["event"]["kernel"]["syscall"] == syscall
            }
        };
        let d = engine.wait_record(
            RECORD_TIMEOUT,
            "finit_module deny",
            deny("deny-module-load", "finit_module"),
        )?;
        // The parameters come from the caller's registers (`user_regs.rs`): kernel-ops
        // passes `allow_writes=on` to finit_module and `kernel_ops=1` to init_module.
        if d["event"]["hook"] != "lsm/kernel_read_file"
            || d["event"]["kernel"]["module"]["file"] != "busybox"
            || d["event"]["kernel"]["module"]["args"] != "allow_writes=on"
            || d["event"]["process"]["pid"] != finit["pid"]
        {
            return Err(format!(
                "finit_module deny without its hook, file, args or pid: {d}"
            ));
        }
        let d = engine.wait_record(
            RECORD_TIMEOUT,
            "init_module deny",
            deny("deny-module-load", "init_module"),
        )?;
        if d["event"]["hook"] != "lsm/kernel_load_data"
            || d["event"]["kernel"]["module"]["args"] != "kernel_ops=1"
            || d["event"]["process"]["pid"] != init["pid"]
        {
            return Err(format!(
                "init_module deny not from kernel_load_data, or without its args or pid: {d}"
            ));
        }
        let d = engine.wait_record(RECORD_TIMEOUT, "ptrace deny", deny("deny-ptrace", "ptrace"))?;
        if d["event"]["hook"] != "lsm/ptrace_access_check"
            || d["event"]["kernel"]["target"]["pid"] != attach["target"]
            || d["event"]["process"]["pid"] != attach["pid"]
            || d["event"]["kernel"]["ptrace"]["request"] != "attach"
        {
            return Err(format!(
                "ptrace deny not from ptrace_access_check, or without the request, tracer and \
                 target pids: {d}"
            ));
        }
        ctx.log("module loads and the ptrace attach refused with EPERM by the LSM hooks");

        // The fallback: the registers name `openat`, not a call the hook stands for. The open
        // fails with EACCES: `ptrace_may_access` answers yes or no, and `mm_access` turns a
        // no into EACCES whatever the hook returned.
        let mem = kernel_ops(&["proc-mem"])?;
        if errno(&mem) != i64::from(libc::EACCES) {
            return Err(format!(
                "the open of /proc/PID/mem must be refused (EACCES): {mem}"
            ));
        }
        let d = engine.wait_record(
            RECORD_TIMEOUT,
            "/proc/PID/mem deny",
            deny("deny-ptrace", "ptrace_access_check"),
        )?;
        if d["event"]["hook"] != "lsm/ptrace_access_check"
            || d["event"]["kernel"]["target"]["pid"] != mem["target"]
            || d["event"]["process"]["pid"] != mem["pid"]
        {
            return Err(format!(
                "/proc/PID/mem deny not from the hook's fallback, or without tracer and \
                 target pids: {d}"
            ));
        }
        ctx.log("an open of /proc/PID/mem refused by the ptrace hook's fallback");

        let delete = kernel_ops(&["delete-module", "no_such_module_xyz"])?;
        let map = kernel_ops(&["bpf-map", "vm_map"])?;
        let creds = kernel_ops(&["creds"])?;
        let unshare = kernel_ops(&["unshare-uts"])?;
        let kexec = kernel_ops(&["kexec-load"])?;
        let alert = |syscall: &'static str, pid: Value| {
            move |r: &Value| {
                audit::is_action(r, "alert", "watch-kernel")
                    && r["event"]["kernel"]["syscall"] == syscall
                    && r["event"]["process"]["pid"] == pid
            }
        };
        let a = engine.wait_record(
            RECORD_TIMEOUT,
            "delete_module alert",
            alert("delete_module", delete["pid"].clone()),
        )?;
        if a["event"]["kernel"]["module"]["name"] != "no_such_module_xyz" {
            return Err(format!("delete_module without the name: {a}"));
        }
        let a = engine.wait_record(
            RECORD_TIMEOUT,
            "bpf alert",
            alert("bpf", map["pid"].clone()),
        )?;
        if a["event"]["kernel"]["bpf"]["map"]["name"] != "vm_map" || a["event"]["hook"] != "lsm/bpf"
        {
            return Err(format!(
                "bpf map_create without the map name, or not from lsm/bpf: {a}"
            ));
        }
        let a = engine.wait_record(
            RECORD_TIMEOUT,
            "setresuid alert",
            alert("setresuid", creds["pid"].clone()),
        )?;
        if a["event"]["kernel"]["creds"]["new"]["euid"] != 65534 {
            return Err(format!("setresuid without the new euid: {a}"));
        }
        let a = engine.wait_record(
            RECORD_TIMEOUT,
            "unshare alert",
            alert("unshare", unshare["pid"].clone()),
        )?;
        if a["event"]["hook"] != "fentry/__x64_sys_unshare" {
            return Err(format!("unshare not from its fentry program: {a}"));
        }
        if start["kernel_syscalls_unseen"].get("kexec_load").is_none() {
            let a = engine.wait_record(
                RECORD_TIMEOUT,
                "kexec_load alert",
                alert("kexec_load", kexec["pid"].clone()),
            )?;
            if a["event"]["hook"] != "lsm/kernel_load_data" {
                return Err(format!("kexec_load not from lsm/kernel_load_data: {a}"));
            }
        } else {
            ctx.log(format!(
                "this kernel has no kexec_load: {}",
                start["kernel_syscalls_unseen"]
            ));
        }
        // Each refused operation is reported once (by its LSM hook, not also the tracepoint).
        let records = audit::records(Path::new(AUDIT))?;
        let reports = records
            .iter()
            .filter(|r| audit::is_type(r, "event") && r["event"]["process"]["pid"] == finit["pid"])
            .filter(|r| r["event"]["kind"] == "kernel")
            .count();
        if reports != 1 {
            return Err(format!(
                "the refused finit_module is reported {reports} times"
            ));
        }
        ctx.log("bpf and kexec reported by their LSM hooks; unload, credentials, unshare by fentry programs");
        expect_clean_exit(engine.terminate(STOP_TIMEOUT)?)
    })();
    if result.is_err() {
        dump(ctx, &engine);
        return result;
    }
    let after = finit()?;
    if errno(&after) != errno(&before) {
        return Err(format!(
            "after the engine stopped the load fails as before: {after} vs {before}"
        ));
    }
    Ok(())
}
