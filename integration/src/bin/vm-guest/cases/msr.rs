//! Catalog F7's file and module side in the lsm tier, with the real msr module and device and
//! the shipped policy (`policy/default`) in block mode: `finit_module` of this kernel's
//! `msr.ko` with `allow_writes=on` (the image carries one module per cached kernel at
//! `/lib/modules/<release>/msr.ko`; the case takes the one `uname -r` names), a write of `on`
//! to `/sys/module/msr/parameters/allow_writes` and an `O_WRONLY` open of `/dev/cpu/0/msr`
//! (the node devtmpfs creates when the module loads). The three rules are alerts: each
//! operation must succeed and give its `alert` record (`msr-module-load-writes`,
//! `msr-allow-writes-sysfs`, `msr-device-write`) naming the module or the path; the only other
//! rule acting is `msr-allow-writes-cmdline` (an alert: the loader's argv says
//! `allow_writes=on`, as modprobe's does), and nothing is denied or killed. The module is
//! unloaded at the end.
//!
//! Two variants: `lsm_msr` with the shipped policy alone (no rule acts on module loads in the
//! kernel: LSM `kernel_read_file` reports the load from the loader's registers, an alert; no
//! `sys_enter_finit_module` tracepoint is attached), and `lsm_msr_hook` with the shipped
//! policy plus `module-load-hook` ([`HOOK_POLICY`]), a `deny` of every module load in
//! `monitor` mode: the plan then acts on module loads, and the same hook reports the load
//! with `would_deny` (the load goes on). Both records must carry the parameters (read from the
//! loader's registers), so `msr-module-load-writes` fires on them and `kernel-module-load-msr`
//! (msr without `allow_writes=on`) does not.

use std::{
    io::Write as _,
    path::Path,
    time::{Duration, Instant},
};

use enforcer_integration::vm::layout;

use super::{
    Ctx,
    exec::{
        RECORD_TIMEOUT, START_TIMEOUT, STOP_TIMEOUT, dump, expect_clean_exit, expect_field,
        require_engine,
    },
    kernel::kernel_ops,
};
use crate::{audit, engine::Engine};

const AUDIT: &str = "/tmp/audit-msr.jsonl";
const SYSFS_PARAM: &str = "/sys/module/msr/parameters/allow_writes";
const DEVICE: &str = "/dev/cpu/0/msr";
/// How long the device node may take to appear after the load (devtmpfs makes it while the
/// module initialises; this only bounds a surprise).
const NODE_TIMEOUT: Duration = Duration::from_secs(5);

/// This kernel's module in the image, or why there is none.
pub(super) fn module_path() -> Result<String, String> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_err(|e| format!("cannot read the kernel release: {e}"))?;
    let release = release.trim();
    let path = layout::msr_module(release);
    if Path::new(&path).is_file() {
        Ok(path)
    } else {
        Err(format!(
            "no {path} in the image: the kernel cache has no msr.ko for release {release} \
             (run scripts/setup: it keeps msr.ko and release next to vmlinuz)"
        ))
    }
}

/// Unloads msr when it is loaded, so the later cases see the kernel as before.
pub(super) fn unload_msr() -> Result<(), String> {
    if !Path::new("/sys/module/msr").exists() {
        return Ok(());
    }
    match kernel_ops(&["delete-module", "msr"]) {
        Ok(r) if r["errno"] == 0 => Ok(()),
        Ok(r) => Err(format!("cannot unload msr: {r}")),
        Err(e) => Err(e),
    }
}

/// Where `lsm_msr_hook` writes its policy: a copy of the shipped one plus [`HOOK_POLICY`].
const HOOK_POLICY_DIR: &str = "/tmp/msr-hook-policy";
/// The test rule `module-load-hook` that `lsm_msr_hook` adds to the shipped policy.
const HOOK_POLICY: &str = "version: 1
rules:
  - id: module-load-hook
    description: >-
      Test rule of the VM case lsm_msr_hook: every module load is refused in the LSM hook, in
      monitor mode, so the hook reports the load and the load goes on. False-positive risk:
      every module load (test only).
    severity: low
    expression: kernel.op == \"module_load\"
    action: deny
    mode: monitor
";

/// What differs between the two variants.
struct Variant {
    /// Guest policy file or directory.
    policy: &'static str,
    /// The program whose record the module load's actions carry.
    load_hook: &'static str,
    /// Actions on the fixture's processes besides the four alerts both variants expect.
    extra_actions: &'static [&'static str],
}

/// The shipped policy alone: the tracepoint reports the module load; see the module
/// documentation.
pub(crate) fn lsm_msr(ctx: &Ctx) -> Result<(), String> {
    run(
        ctx,
        &Variant {
            policy: layout::DEFAULT_POLICY_DIR,
            load_hook: "lsm/kernel_read_file",
            extra_actions: &[],
        },
    )
}

/// The shipped policy plus `module-load-hook`: LSM `kernel_read_file` reports the module load, with
/// its parameters; see the module documentation.
pub(crate) fn lsm_msr_hook(ctx: &Ctx) -> Result<(), String> {
    copy_dir(
        Path::new(layout::DEFAULT_POLICY_DIR),
        Path::new(HOOK_POLICY_DIR),
    )?;
    let file = format!("{HOOK_POLICY_DIR}/90-module-load-hook.yaml");
    std::fs::write(&file, HOOK_POLICY).map_err(|e| format!("write {file}: {e}"))?;
    run(
        ctx,
        &Variant {
            policy: HOOK_POLICY_DIR,
            load_hook: "lsm/kernel_read_file",
            extra_actions: &["would_deny module-load-hook"],
        },
    )
}

/// Copies the files of `from` (and of its subdirectories) to `to`.
fn copy_dir(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| format!("mkdir {}: {e}", to.display()))?;
    let entries =
        std::fs::read_dir(from).map_err(|e| format!("read_dir {}: {e}", from.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("read_dir {}: {e}", from.display()))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        if src.is_dir() {
            copy_dir(&src, &dst)?;
        } else {
            std::fs::copy(&src, &dst)
                .map_err(|e| format!("copy {} to {}: {e}", src.display(), dst.display()))?;
        }
    }
    Ok(())
}

fn run(ctx: &Ctx, variant: &Variant) -> Result<(), String> {
    require_engine()?;
    let module = module_path()?;
    if Path::new("/sys/module/msr").exists() {
        return Err("msr is already loaded (or built in) before the case".to_owned());
    }
    let mut engine = Engine::start_with(
        variant.policy,
        "block",
        Path::new(AUDIT),
        Path::new("/tmp/enforcer-msr.log"),
    )?;
    let result = while_attached(ctx, &mut engine, &module, variant);
    if result.is_err() {
        dump(ctx, &engine);
    }
    // Unload whatever happened, so the later cases see the kernel as before.
    let unload = unload_msr();
    result?;
    unload?;
    ctx.log("msr unloaded");
    Ok(())
}

fn while_attached(
    ctx: &Ctx,
    engine: &mut Engine,
    module: &str,
    variant: &Variant,
) -> Result<(), String> {
    let start = engine.wait_started(START_TIMEOUT)?;
    expect_field(&start, "tier", "lsm")?;

    let load = kernel_ops(&["finit-module", module, "allow_writes=on"])?;
    if load["errno"] != 0 {
        return Err(format!("finit_module of {module} must succeed: {load}"));
    }
    let param = std::fs::read_to_string(SYSFS_PARAM)
        .map_err(|e| format!("msr loaded but {SYSFS_PARAM} unreadable: {e}"))?;
    ctx.log(format!(
        "finit_module {module} allow_writes=on: loaded, {SYSFS_PARAM} says {}",
        param.trim()
    ));

    // O_WRONLY (no O_CREAT, no O_TRUNC: sysfs attributes take neither).
    std::fs::OpenOptions::new()
        .write(true)
        .open(SYSFS_PARAM)
        .and_then(|mut f| f.write_all(b"on"))
        .map_err(|e| format!("write of on to {SYSFS_PARAM} must succeed: {e}"))?;

    let appeared = Instant::now();
    while !Path::new(DEVICE).exists() {
        if appeared.elapsed() > NODE_TIMEOUT {
            return Err(format!("{DEVICE} did not appear after the module load"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let device = std::fs::OpenOptions::new()
        .write(true)
        .open(DEVICE)
        .map_err(|e| format!("O_WRONLY open of {DEVICE} must succeed: {e}"))?;
    drop(device);
    ctx.log(format!(
        "wrote on to {SYSFS_PARAM}, opened {DEVICE} O_WRONLY"
    ));

    let me = std::process::id();
    let a = engine.wait_record(RECORD_TIMEOUT, "alert of msr-module-load-writes", |r| {
        audit::is_action(r, "alert", "msr-module-load-writes")
    })?;
    let k = &a["event"]["kernel"];
    if a["event"]["hook"] != variant.load_hook
        || k["op"] != "module_load"
        || k["syscall"] != "finit_module"
        || k["module"]["name"] != "msr"
        || k["module"]["file"] != "msr.ko"
        || !k["module"]["args"]
            .as_str()
            .is_some_and(|s| s.contains("allow_writes=on"))
        || a["event"]["process"]["pid"] != load["pid"]
    {
        return Err(format!(
            "msr-module-load-writes alert not from {} or without the module, its args or the \
             loader's pid: {a}",
            variant.load_hook
        ));
    }
    ctx.log(format!(
        "msr-module-load-writes from {} with args {}",
        variant.load_hook, k["module"]["args"]
    ));
    for (rule, path) in [
        ("msr-allow-writes-sysfs", SYSFS_PARAM),
        ("msr-device-write", DEVICE),
    ] {
        let a = engine.wait_record(RECORD_TIMEOUT, &format!("alert of {rule}"), |r| {
            audit::is_action(r, "alert", rule)
        })?;
        let ev = &a["event"];
        if ev["hook"] != "lsm/file_open"
            || ev["open"]["file"]["path"] != path
            || ev["process"]["pid"] != me
            || ev["open"]["flags"].as_u64().map(|f| f & 0o3) != Some(0o1)
        {
            return Err(format!(
                "{rule} alert without lsm/file_open, {path}, O_WRONLY or this pid: {a}"
            ));
        }
    }
    ctx.log("alerts: msr-module-load-writes, msr-allow-writes-sysfs, msr-device-write");
    let stopped = engine.terminate(STOP_TIMEOUT)?;

    // Exactly those rules acted on the fixture's processes, and only by alerting.
    let records = audit::records(Path::new(AUDIT))?;
    let mut acted: Vec<String> = records
        .iter()
        .filter(|r| audit::is_type(r, "action"))
        .filter(|r| {
            let pid = &r["event"]["process"]["pid"];
            *pid == me || *pid == load["pid"]
        })
        .map(|r| {
            format!(
                "{} {}",
                audit::str_field(r, "action").unwrap_or("?"),
                audit::str_field(r, "rule").unwrap_or("?")
            )
        })
        .collect();
    acted.sort();
    acted.dedup();
    // The loader's command line carries `allow_writes=on`, as modprobe's would: the exec rule
    // `msr-allow-writes-cmdline` alerts on it too.
    let mut want = vec![
        "alert msr-allow-writes-cmdline",
        "alert msr-allow-writes-sysfs",
        "alert msr-device-write",
        "alert msr-module-load-writes",
    ];
    want.extend_from_slice(variant.extra_actions);
    want.sort_unstable();
    // The load is reported once, by the variant's program.
    let loads: Vec<&str> = records
        .iter()
        .filter(|r| audit::is_type(r, "action"))
        .filter(|r| r["event"]["kernel"]["op"] == "module_load")
        .filter_map(|r| r["event"]["hook"].as_str())
        .collect();
    if loads.iter().any(|hook| *hook != variant.load_hook) {
        return Err(format!(
            "module-load actions from {loads:?}, want only {}",
            variant.load_hook
        ));
    }
    if acted != want {
        return Err(format!("actions on the fixture: {acted:?}, want {want:?}"));
    }
    expect_clean_exit(stopped)
}
