//! Content-hash enforcement in the lsm tier (issue 6): a "miner" that is a copy of busybox made
//! unique by appended bytes (its SHA-256 computed in the guest with busybox `sha256sum` and
//! listed in a kill rule) is killed after the fact on its first exec (hashed in userspace);
//! the daemon then writes the file's identity into the kernel's inode plan, and the second
//! exec fails with EPERM in `bprm_check_security`, before the new image exists.

use std::os::unix::process::ExitStatusExt as _;
use std::process::{Command, Stdio};

use enforcer_integration::vm::layout;

use super::Ctx;
use super::exec::{
    RECORD_TIMEOUT, START_TIMEOUT, STOP_TIMEOUT, dump, expect_clean_exit, expect_field,
    require_engine,
};
use crate::audit;
use crate::engine::Engine;

/// The miner: busybox runs the applet named by its first argument when its own name starts
/// with `busybox`.
const MINER: &str = "/tmp/busybox-miner";
const POLICY: &str = "/tmp/hash-policy.yaml";
const RULE: &str = "miner-exec-hash";

fn sha256_of(path: &str) -> Result<String, String> {
    let out = Command::new(layout::BUSYBOX)
        .args(["sha256sum", path])
        .output()
        .map_err(|e| format!("busybox sha256sum: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    match text.split_whitespace().next() {
        Some(hex) if hex.len() == 64 => Ok(hex.to_owned()),
        _ => Err(format!("busybox sha256sum printed {text:?}")),
    }
}

/// Writes the miner and the policy listing its hash; returns the hash.
fn prepare() -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt as _;
    let mut bytes =
        std::fs::read(layout::BUSYBOX).map_err(|e| format!("read {}: {e}", layout::BUSYBOX))?;
    bytes.extend_from_slice(b"\nenforcer-vm-test-miner\n");
    std::fs::write(MINER, &bytes).map_err(|e| format!("write {MINER}: {e}"))?;
    std::fs::set_permissions(MINER, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("chmod {MINER}: {e}"))?;
    let sha = sha256_of(MINER)?;
    std::fs::write("/tmp/miner_sha256.txt", format!("{sha}\n"))
        .map_err(|e| format!("write hash list: {e}"))?;
    let policy = format!(
        "version: 1\nlists:\n  - name: miner_sha256\n    type: hash\n    file: miner_sha256.txt\nrules:\n  - id: {RULE}\n    expression: exec.file.hash.sha256 in miner_sha256\n    action: kill\n"
    );
    std::fs::write(POLICY, policy).map_err(|e| format!("write {POLICY}: {e}"))?;
    Ok(sha)
}

fn run_miner() -> std::io::Result<std::process::ExitStatus> {
    Command::new(MINER)
        .args(["sleep", "30"])
        .stdin(Stdio::null())
        .status()
}

/// Block mode: first exec killed after the fact, second exec refused with EPERM in the hook.
pub(crate) fn lsm_hash_deny(ctx: &Ctx) -> Result<(), String> {
    require_engine()?;
    let sha = prepare()?;
    ctx.log(format!("miner {MINER} sha256 {sha}"));
    let mut engine = Engine::start_with(
        POLICY,
        "block",
        "/tmp/audit-hash.jsonl".as_ref(),
        "/tmp/enforcer-hash.log".as_ref(),
    )?;
    let result = first_killed_then_denied(ctx, &mut engine, &sha);
    if result.is_err() {
        dump(ctx, &engine);
    }
    result
}

fn first_killed_then_denied(ctx: &Ctx, engine: &mut Engine, sha: &str) -> Result<(), String> {
    let start = engine.wait_started(START_TIMEOUT)?;
    expect_field(&start, "tier", "lsm")?;
    let status = run_miner().map_err(|e| format!("first exec of {MINER} failed: {e}"))?;
    if status.signal() != Some(libc::SIGKILL) {
        return Err(format!("first exec: {status}, want killed by SIGKILL"));
    }
    let kill = engine.wait_record(RECORD_TIMEOUT, "userspace kill by hash", |r| {
        audit::is_action(r, "kill", RULE) && audit::str_field(r, "decided_in") == Some("userspace")
    })?;
    ctx.log(format!(
        "first exec killed after the fact, window {} us",
        kill["report"]["response_us"]
    ));
    // The event is written once hashed, after the inode verdict is in the kernel.
    engine.wait_record(RECORD_TIMEOUT, "hashed exec event of the miner", |r| {
        audit::is_type(r, "event")
            && r["event"]["exec"]["file"]["path"] == MINER
            && r["event"]["exec"]["file"]["hash"]["sha256"] == sha
    })?;
    match run_miner() {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {}
        Err(e) => return Err(format!("second exec failed with {e}, want EPERM")),
        Ok(status) => return Err(format!("second exec ran ({status}), want EPERM")),
    }
    let deny = engine.wait_record(RECORD_TIMEOUT, "kernel deny by inode plan", |r| {
        audit::is_action(r, "deny", RULE)
    })?;
    let hook = deny["event"]["hook"].clone();
    if hook != "lsm/bprm_check_security" || deny["decided_in"] != "kernel" {
        return Err(format!("deny record from {hook} / {}", deny["decided_in"]));
    }
    ctx.log(format!("second exec: EPERM in {hook}: {deny}"));
    expect_clean_exit(engine.terminate(STOP_TIMEOUT)?)
}
