//! Content-hash enforcement in the lsm tier (issue 6): a "miner" that is a copy of busybox made
//! unique by appended bytes (its SHA-256 computed in the guest with busybox `sha256sum` and
//! listed in a kill rule).
//! - `lsm_hash_deny`, the userspace fallback (`--no-kernel-hash`, as when the kernel cannot
//!   hash): killed after the fact on its first exec (hashed in userspace); the daemon then
//!   writes the file's identity into the kernel's inode plan, and the second exec fails with
//!   EPERM in `bprm_check_security`, before the new image exists.
//! - `lsm_hash_first_exec`, in-kernel hashing (`bpf_ima_file_hash` in the sleepable
//!   `bprm_creds_from_file`): a never-seen renamed copy fails with EPERM on its FIRST exec; a
//!   copy with one byte changed runs; a file cached clean and then rewritten in place with the
//!   miner is refused (F14); exec latency measured for cached and uncached files.

use std::os::unix::process::ExitStatusExt as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
/// A renamed copy of the miner, never executed before the in-kernel case.
const RENAMED: &str = "/tmp/kworker_upd";
/// The miner with one byte changed: another hash, allowed.
const CHANGED: &str = "/tmp/busybox-changed";
pub(super) const POLICY: &str = "/tmp/hash-policy.yaml";
pub(super) const RULE: &str = "miner-exec-hash";

pub(super) fn sha256_of(path: &str) -> Result<String, String> {
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

/// Writes `bytes` to `path` as an executable.
pub(super) fn write_exe(path: &str, bytes: &[u8]) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, bytes).map_err(|e| format!("write {path}: {e}"))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("chmod {path}: {e}"))
}

/// The miner's bytes: busybox with a marker appended.
fn miner_bytes() -> Result<Vec<u8>, String> {
    let mut bytes =
        std::fs::read(layout::BUSYBOX).map_err(|e| format!("read {}: {e}", layout::BUSYBOX))?;
    bytes.extend_from_slice(b"\nenforcer-vm-test-miner\n");
    Ok(bytes)
}

/// Writes the miner and the policy listing its hash; returns the hash.
fn prepare() -> Result<String, String> {
    write_exe(MINER, &miner_bytes()?)?;
    let sha = sha256_of(MINER)?;
    write_hash_policy(&sha)?;
    Ok(sha)
}

/// Writes [`POLICY`]: rule [`RULE`] kills an exec of content `sha`.
pub(super) fn write_hash_policy(sha: &str) -> Result<(), String> {
    std::fs::write("/tmp/miner_sha256.txt", format!("{sha}\n"))
        .map_err(|e| format!("write hash list: {e}"))?;
    let policy = format!(
        "version: 1\nlists:\n  - name: miner_sha256\n    type: hash\n    file: miner_sha256.txt\nrules:\n  - id: {RULE}\n    expression: exec.file.hash.sha256 in miner_sha256\n    action: kill\n"
    );
    std::fs::write(POLICY, policy).map_err(|e| format!("write {POLICY}: {e}"))
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
    let mut engine = Engine::start_args(
        POLICY,
        "block",
        "/tmp/audit-hash.jsonl".as_ref(),
        "/tmp/enforcer-hash.log".as_ref(),
        &["--no-kernel-hash"],
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
    if !audit::str_field(&start, "exec_hash").is_some_and(|s| s.starts_with("userspace")) {
        return Err(format!("exec_hash {}, want userspace", start["exec_hash"]));
    }
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

/// Runs `path` with busybox applet `args` and returns how long the exec and the run took (or
/// the exec error).
fn timed(path: &str, args: &[&str]) -> std::io::Result<(std::process::ExitStatus, Duration)> {
    let start = Instant::now();
    let status = Command::new(path)
        .args(args)
        .stdin(Stdio::null())
        .status()?;
    Ok((status, start.elapsed()))
}

/// Mean time of `n` runs of `path true`, in microseconds.
fn mean_us(path: &str, n: u32) -> Result<u128, String> {
    let mut total = Duration::ZERO;
    for _ in 0..n {
        let (status, took) = timed(path, &["true"]).map_err(|e| format!("exec {path}: {e}"))?;
        if !status.success() {
            return Err(format!("{path} true: {status}"));
        }
        total += took;
    }
    Ok(total.as_micros() / u128::from(n.max(1)))
}

/// Checks that the engine of `start` (an `engine_start` record) runs in the lsm tier and
/// hashes in the kernel.
pub(super) fn expect_kernel_hash(start: &serde_json::Value) -> Result<(), String> {
    expect_field(start, "tier", "lsm")?;
    let exec_hash = audit::str_field(start, "exec_hash").unwrap_or("");
    if exec_hash.starts_with("kernel") {
        return Ok(());
    }
    // The verifier log can be long: its start and end say why.
    let (head, tail) = (
        exec_hash.get(..600),
        exec_hash.get(exec_hash.len().saturating_sub(3000)..),
    );
    Err(format!("exec_hash {head:?} ... {tail:?}, want kernel"))
}

/// In-kernel hashing: the first exec of a never-seen renamed copy fails with EPERM, decided in
/// `bprm_creds_from_file` with the digest in the record; a changed copy runs.
pub(crate) fn lsm_hash_first_exec(ctx: &Ctx) -> Result<(), String> {
    require_engine()?;
    let sha = prepare()?;
    let bytes = miner_bytes()?;
    write_exe(RENAMED, &bytes)?;
    let mut changed = bytes;
    if let Some(last) = changed.last_mut() {
        *last ^= 0x20;
    }
    write_exe(CHANGED, &changed)?;
    let mut engine = Engine::start_with(
        POLICY,
        "block",
        "/tmp/audit-hash-kernel.jsonl".as_ref(),
        "/tmp/enforcer-hash-kernel.log".as_ref(),
    )?;
    let result = first_exec_denied(ctx, &mut engine, &sha);
    if result.is_err() {
        dump(ctx, &engine);
    }
    result
}

fn first_exec_denied(ctx: &Ctx, engine: &mut Engine, sha: &str) -> Result<(), String> {
    let start = engine.wait_started(START_TIMEOUT * 4)?;
    if let Ok(log) = std::fs::read_to_string("/tmp/enforcer-hash-kernel.log") {
        for line in log.lines().filter(|l| l.contains("loaded in")) {
            ctx.log(line);
        }
    }
    expect_kernel_hash(&start)?;
    match timed(RENAMED, &["true"]) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {}
        Err(e) => {
            return Err(format!(
                "first exec of {RENAMED} failed with {e}, want EPERM"
            ));
        }
        Ok((status, _)) => {
            return Err(format!(
                "first exec of {RENAMED} ran ({status}), want EPERM"
            ));
        }
    }
    let deny = engine.wait_record(RECORD_TIMEOUT, "kernel deny by hash", |r| {
        audit::is_action(r, "deny", RULE)
    })?;
    let event = &deny["event"];
    if event["hook"] != "lsm/bprm_creds_from_file"
        || deny["decided_in"] != "kernel"
        || event["exec"]["file"]["hash"]["sha256"] != sha
        || event["exec"]["file"]["hash"]["source"] != "kernel"
    {
        return Err(format!("deny record {deny}"));
    }
    ctx.log(format!(
        "first exec of a never-seen copy: EPERM in the kernel: {deny}"
    ));
    // The verdict is cached by identity: the second exec is refused in bprm_check_security.
    match timed(RENAMED, &["true"]) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {}
        other => return Err(format!("second exec of {RENAMED}: {other:?}, want EPERM")),
    }
    let (status, _) = timed(CHANGED, &["true"]).map_err(|e| format!("exec {CHANGED}: {e}"))?;
    if !status.success() {
        return Err(format!(
            "{CHANGED} (one byte changed): {status}, want it to run"
        ));
    }
    // Latency (TCG: indicative only). A file changed within the freshness window (a few
    // seconds) is hashed in the kernel on every exec (a miss); once settled, its clean verdict
    // is cached and the hash skipped (a hit). The userspace hasher runs meanwhile (the rule is
    // also a userspace rule), as in production.
    let fresh = "/tmp/busybox-fresh";
    write_exe(
        fresh,
        &std::fs::read(CHANGED).map_err(|e| format!("read {CHANGED}: {e}"))?,
    )?;
    let miss = mean_us(fresh, 3)?;
    std::thread::sleep(Duration::from_millis(4_500));
    mean_us(fresh, 1)?;
    let hit = mean_us(fresh, 5)?;
    // F14 with the kernel's clean cache: the cached file rewritten in place with the miner's
    // bytes has a new change time, so it is hashed again and refused on its next exec.
    write_exe(fresh, &miner_bytes()?)?;
    match timed(fresh, &["true"]) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {}
        other => {
            return Err(format!(
                "{fresh} rewritten with the miner: {other:?}, want EPERM"
            ));
        }
    }
    ctx.log("a cached-clean file rewritten in place with the miner: EPERM on its next exec");
    let exit = engine.terminate(STOP_TIMEOUT)?;
    // The baseline runs the changed copy again (the fresh file now holds the miner).
    let fresh = CHANGED;
    let stop = engine.wait_record(RECORD_TIMEOUT, "engine_stop", |r| {
        audit::is_type(r, "engine_stop")
    })?;
    let counters = &stop["counters"];
    let without = mean_us(fresh, 5)?;
    ctx.log(format!(
        "exec of a {} KB busybox copy (`true` applet), mean: uncached (hashed in the kernel) {miss} us, cached clean {hit} us, engine stopped {without} us",
        std::fs::metadata(fresh).map(|m| m.len() / 1024).unwrap_or(0)
    ));
    ctx.log(format!(
        "counters: ima_hashed {} ima_cache_hit {} ima_matched {} ima_skipped {}",
        counters["ima_hashed"],
        counters["ima_cache_hit"],
        counters["ima_matched"],
        counters["ima_skipped"]
    ));
    if counters["ima_cache_hit"].as_u64().unwrap_or(0) < 5 {
        return Err(format!("want at least 5 cache hits: {counters}"));
    }
    expect_clean_exit(exit)
}
