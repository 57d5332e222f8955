//! The signal tier's fentry programs (`loader::trampolines`) on Debian's kernels, booted
//! without BPF LSM as Debian is by default: they have BPF trampolines, so the engine watches
//! the file family at the LSM hooks' `security_*` functions instead of syscall tracepoints.
//! With the policy of `fixtures/protect-files.yaml` in block mode:
//!
//! - `engine_start` says `security_hooks: fentry` and attaches no syscall tracepoint;
//! - a shell's write open of the protected file is killed (`fentry/security_file_open`);
//! - a `chmod` through a symbolic link to the kept file is killed, its record naming the
//!   file the link resolves to (a syscall tracepoint sees only the link's path, which no rule
//!   names);
//! - a write under the watched directory is reported by the fentry program;
//! - a reload adds a rule about mkdir, which the start's policy was not about: it is applied
//!   (every file operation's fentry program is attached), and a denied mkdir is killed;
//! - the engine SIGKILLed (`--on-crash keep-enforcing`), the pinned fentry links still kill
//!   the write open with no daemon.
//!
//! Then `--no-fentry` starts the engine on the syscall tracepoints: `engine_start` says so, and
//! the open tracepoint kills the shell's write open of the protected file (its `struct file`
//! members read in one window on 6.12, `LAYOUT_FILE_WINDOW`, and in two reads on 6.1).

use std::{os::unix::process::ExitStatusExt as _, path::Path, process::Command};

use enforcer_integration::vm::layout;
use serde_json::Value;

use super::{
    Ctx,
    crash::{KEEP as KEEP_ENFORCING, PIN_ROOT, Unpin},
    exec::{RECORD_TIMEOUT, START_TIMEOUT, STOP_TIMEOUT, dump, expect_clean_exit, require_engine},
    files::{KEEP, PROTECTED, WATCHED, setup},
};
use crate::{audit, engine::Engine};

/// A symbolic link to [`KEEP`].
const LINK: &str = "/tmp/fim/link-to-keep";
/// The engine's policy: a copy of the files policy that the reload extends.
const POLICY: &str = "/tmp/fentry-files.yaml";
/// The directory the reloaded policy's rule forbids creating.
const NEW_DIR: &str = "/tmp/fim/no-such-dir";
/// The rule the reload adds.
const MKDIR_RULE: &str = "\n  - id: fentry-deny-mkdir\n    description: test rule, added by a reload\n    severity: high\n    expression: mkdir.file.path == \"/tmp/fim/no-such-dir\"\n    action: deny\n";

pub(crate) fn signal_fentry_files(ctx: &Ctx) -> Result<(), String> {
    require_engine()?;
    let unpin = Unpin;
    setup()?;
    let _ = std::fs::remove_file(LINK);
    let _ = std::fs::remove_dir(NEW_DIR);
    std::os::unix::fs::symlink(KEEP, LINK).map_err(|e| format!("symlink {LINK}: {e}"))?;
    std::fs::copy(layout::FILES_POLICY, POLICY).map_err(|e| format!("copy the policy: {e}"))?;
    let mut engine = Engine::start_args(
        POLICY,
        "block",
        Path::new("/tmp/audit-signal-fentry.jsonl"),
        Path::new("/tmp/enforcer-signal-fentry.log"),
        &KEEP_ENFORCING,
    )?;
    let result = kills_while_attached(ctx, &mut engine);
    if result.is_err() {
        dump(ctx, &engine);
    }
    result?;
    let status = engine.sigkill()?;
    ctx.log(format!("engine SIGKILLed: {status}"));
    expect_killed(
        "write open with the engine SIGKILLed",
        &format!("echo changed > {PROTECTED}; echo survived"),
    )?;
    ctx.log("no daemon: the pinned fentry link still kills the write open");
    drop(unpin);
    let mut engine = Engine::start_args(
        layout::FILES_POLICY,
        "block",
        Path::new("/tmp/audit-signal-no-fentry.jsonl"),
        Path::new("/tmp/enforcer-signal-no-fentry.log"),
        &["--no-fentry"],
    )?;
    let result = (|| {
        let start = engine.wait_started(START_TIMEOUT)?;
        let hooks = audit::str_field(&start, "security_hooks").unwrap_or_default();
        let tracepoints = syscall_tracepoints(&start);
        if !hooks.starts_with("tracepoints (turned off")
            || !tracepoints.iter().any(|t| t == "sys_exit_openat")
        {
            return Err(format!("--no-fentry start record: {start}"));
        }
        ctx.log(format!(
            "--no-fentry: {} syscall tracepoints attached",
            tracepoints.len()
        ));
        expect_killed(
            "write open of the protected file (--no-fentry)",
            &format!("echo changed > {PROTECTED}; echo survived"),
        )?;
        let record = expect_kill(
            &mut engine,
            "protect-file-write",
            "tp/syscalls/sys_exit_open*",
            "open",
            PROTECTED,
        )?;
        ctx.log(format!("--no-fentry: write open killed: {record}"));
        expect_clean_exit(engine.terminate(STOP_TIMEOUT)?)
    })();
    if result.is_err() {
        dump(ctx, &engine);
    }
    result
}

/// The names in `engine_start`'s `syscall_tracepoints`.
fn syscall_tracepoints(start: &Value) -> Vec<String> {
    start["syscall_tracepoints"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Runs `script` in a busybox shell; `Err` unless SIGKILL ended it.
fn expect_killed(what: &str, script: &str) -> Result<(), String> {
    let mut shell = Command::new(layout::BUSYBOX);
    shell.args(["sh", "-c", script]);
    killed(what, &mut shell)
}

/// Runs `command` and expects it to die of SIGKILL (`what` names it in the error).
fn killed(what: &str, command: &mut Command) -> Result<(), String> {
    let status = command
        .status()
        .map_err(|e| format!("{what}: cannot run it: {e}"))?;
    if status.signal() == Some(libc::SIGKILL) {
        Ok(())
    } else {
        Err(format!("{what}: want SIGKILL, it ended with {status}"))
    }
}

/// The kill record of `rule`, checked to come from fentry program `hook` about `path` (at
/// `field` of the event).
fn expect_kill(
    engine: &mut Engine,
    rule: &str,
    hook: &str,
    field: &str,
    path: &str,
) -> Result<Value, String> {
    let record = engine.wait_record(RECORD_TIMEOUT, &format!("kill of {rule}"), |r| {
        audit::is_action(r, "kill", rule)
    })?;
    let event = &record["event"];
    if event["hook"] != hook || event[field]["file"]["path"] != path {
        return Err(format!(
            "kill of {rule}: want {hook} on {path}, got {record}"
        ));
    }
    // An open's record carries the inode's mode, read once the path is known to be watched.
    if field == "open" && event["open"]["mode"].as_u64().map(|m| m & 0o170000) != Some(0o100000) {
        return Err(format!(
            "kill of {rule}: want a regular file's mode, got {record}"
        ));
    }
    Ok(record)
}

fn kills_while_attached(ctx: &Ctx, engine: &mut Engine) -> Result<(), String> {
    let start = engine.wait_started(START_TIMEOUT)?;
    let hooks = audit::str_field(&start, "security_hooks");
    let tracepoints = syscall_tracepoints(&start);
    if start["tier"] != "signal" || hooks != Some("fentry") || !tracepoints.is_empty() {
        return Err(format!(
            "want the signal tier at fentry programs with no syscall tracepoint: {start}"
        ));
    }
    ctx.log("signal tier, security_hooks fentry, no syscall tracepoint");
    let run_id = audit::str_field(&start, "run_id").unwrap_or_default();
    let pin = Path::new(PIN_ROOT)
        .join(run_id)
        .join("link-fentry_file_open");
    if !pin.exists() {
        return Err(format!("{} is not pinned: {start}", pin.display()));
    }

    expect_killed(
        "write open of the protected file",
        &format!("echo changed > {PROTECTED}; echo survived"),
    )?;
    let record = expect_kill(
        engine,
        "protect-file-write",
        "fentry/security_file_open",
        "open",
        PROTECTED,
    )?;
    ctx.log(format!("write open killed: {record}"));

    expect_killed(
        "chmod through a symbolic link",
        &format!("{} chmod 600 {LINK}", layout::BUSYBOX),
    )?;
    expect_kill(
        engine,
        "protect-file-chmod",
        "fentry/security_path_chmod",
        "chmod",
        KEEP,
    )?;
    ctx.log("chmod through a symbolic link killed, the record names the file it resolves to");

    std::fs::write(WATCHED, b"w").map_err(|e| format!("write {WATCHED}: {e}"))?;
    let watched = engine.wait_record(RECORD_TIMEOUT, "alert of watch-fim-dir", |r| {
        audit::is_action(r, "alert", "watch-fim-dir")
    })?;
    if watched["event"]["hook"] != "fentry/security_file_open" {
        return Err(format!("watched write record: {watched}"));
    }
    ctx.log("watched write reported by fentry/security_file_open");

    let mut policy = std::fs::read_to_string(POLICY).map_err(|e| format!("read {POLICY}: {e}"))?;
    policy.push_str(MKDIR_RULE);
    std::fs::write(POLICY, policy).map_err(|e| format!("write {POLICY}: {e}"))?;
    engine.sighup()?;
    let reload = super::reload::nth_reload(engine, 0)?;
    if reload["outcome"] != "applied" {
        return Err(format!("a reload adding a mkdir rule: {reload}"));
    }
    expect_killed(
        "mkdir denied by the reloaded policy",
        &format!("{} mkdir {NEW_DIR}", layout::BUSYBOX),
    )?;
    expect_kill(
        engine,
        "fentry-deny-mkdir",
        "fentry/security_path_mkdir",
        "mkdir",
        NEW_DIR,
    )?;
    ctx.log("a reload added a mkdir rule: applied, the mkdir killed by fentry/security_path_mkdir");
    Ok(())
}

/// Runs `kernel-ops ARGS`; `Err` unless SIGKILL ended it (the calling process: the caller of
/// `finit_module`, the tracer of a ptrace attach).
fn kernel_ops_killed(args: &[&str]) -> Result<(), String> {
    let mut kernel_ops = Command::new(layout::KERNEL_OPS);
    kernel_ops.args(args);
    killed(&format!("kernel-ops {args:?}"), &mut kernel_ops)
}

/// The kernel-activity family at fentry programs, with the policy of
/// `fixtures/vm-kernel.yaml` in block mode: the module load and the ptrace attach its deny
/// rules are about are killed by the fentry programs on `security_kernel_read_file` and
/// `security_ptrace_access_check` (records built from the caller's registers, as in the lsm
/// tier), a bpf map creation is reported by `fentry/security_bpf`, credential changes and
/// unshare (which no LSM hook reports) by the fentry programs on their syscalls' entry
/// functions, and no syscall tracepoint is attached at all.
pub(crate) fn signal_fentry_kernel(ctx: &Ctx) -> Result<(), String> {
    require_engine()?;
    let mut engine = Engine::start_with(
        layout::KERNEL_POLICY,
        "block",
        Path::new("/tmp/audit-signal-kernel.jsonl"),
        Path::new("/tmp/enforcer-signal-kernel.log"),
    )?;
    let result = kernel_kills_while_attached(ctx, &mut engine);
    if result.is_err() {
        dump(ctx, &engine);
    }
    result
}

fn kernel_kills_while_attached(ctx: &Ctx, engine: &mut Engine) -> Result<(), String> {
    let start = engine.wait_started(START_TIMEOUT)?;
    let tracepoints = syscall_tracepoints(&start);
    if audit::str_field(&start, "security_hooks") != Some("fentry") || !tracepoints.is_empty() {
        return Err(format!(
            "want fentry programs in place of every kernel-activity tracepoint: {start}"
        ));
    }
    ctx.log("no syscall tracepoint attached");

    kernel_ops_killed(&["finit-module", layout::BUSYBOX])?;
    let kill = engine.wait_record(RECORD_TIMEOUT, "finit_module kill", |r| {
        audit::is_action(r, "kill", "deny-module-load")
    })?;
    let event = &kill["event"];
    if event["hook"] != "fentry/security_kernel_read_file"
        || event["kernel"]["syscall"] != "finit_module"
        || event["kernel"]["module"]["args"] != "allow_writes=on"
    {
        return Err(format!("finit_module kill: {kill}"));
    }
    kernel_ops_killed(&["ptrace-attach"])?;
    let kill = engine.wait_record(RECORD_TIMEOUT, "ptrace kill", |r| {
        audit::is_action(r, "kill", "deny-ptrace")
    })?;
    if kill["event"]["hook"] != "fentry/security_ptrace_access_check"
        || kill["event"]["kernel"]["ptrace"]["request"] != "attach"
    {
        return Err(format!("ptrace kill: {kill}"));
    }
    ctx.log("module load and ptrace attach killed by the fentry programs");
    let map = super::kernel::kernel_ops(&["bpf-map", "vm_map_fentry"])?;
    let alert = engine.wait_record(RECORD_TIMEOUT, "bpf alert", |r| {
        audit::is_action(r, "alert", "watch-kernel")
            && r["event"]["kernel"]["syscall"] == "bpf"
            && r["event"]["process"]["pid"] == map["pid"]
    })?;
    if alert["event"]["hook"] != "fentry/security_bpf"
        || alert["event"]["kernel"]["bpf"]["map"]["name"] != "vm_map_fentry"
    {
        return Err(format!("bpf alert: {alert}"));
    }
    ctx.log("bpf map creation reported by fentry/security_bpf");
    for (op, syscall) in [("creds", "setresuid"), ("unshare-uts", "unshare")] {
        let report = super::kernel::kernel_ops(&[op])?;
        let alert = engine.wait_record(RECORD_TIMEOUT, &format!("{syscall} alert"), |r| {
            audit::is_action(r, "alert", "watch-kernel")
                && r["event"]["kernel"]["syscall"] == syscall
                && r["event"]["process"]["pid"] == report["pid"]
        })?;
        if alert["event"]["hook"] != format!("fentry/__x64_sys_{syscall}").as_str() {
            return Err(format!("{syscall} alert: {alert}"));
        }
    }
    ctx.log("setresuid and unshare reported by the fentry programs on their entry functions");
    expect_clean_exit(engine.terminate(STOP_TIMEOUT)?)
}
