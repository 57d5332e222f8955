//! F12 in the lsm tier: a program started through the dynamic loader
//! (`/lib64/ld-linux-x86-64.so.2 /bin/write-marker ...`) is never `execve`d itself; the exec'd
//! file is ld.so. LSM `mmap_file` sees ld.so map the program executable and checks it against
//! the exec plan: the deny-marker policy's name rule refuses the mapping (EPERM), ld.so fails
//! to load the program and no marker is written; an ordinary program run through ld.so works.
//! `lsm_mmap_hash`: the same with a renamed, never-executed copy whose SHA-256 only a hash
//! rule lists: the sleepable `mmap_file` program hashes it in the kernel and refuses the
//! mapping.
//! `signal_mmap_ld_so`: the first case in the signal tier (BPF LSM off), where the fentry
//! program on `security_mmap_file` sees the same mapping and kills ld.so before any code of
//! the program runs (the deny rule is a kill there): SIGKILL, no marker.

use std::{
    os::unix::process::ExitStatusExt as _,
    process::{Command, Stdio},
};

use enforcer_integration::vm::layout::{self, DENY_MARKER_RULE};

use super::Ctx;
use super::exec::{
    RECORD_TIMEOUT, START_TIMEOUT, STOP_TIMEOUT, dump, expect_clean_exit, expect_field,
    require_engine,
};
use super::hash::{POLICY, RULE, expect_kernel_hash, sha256_of, write_exe, write_hash_policy};
use crate::audit;
use crate::engine::Engine;

/// The dynamic loader the initramfs carries.
const LD_SO: &str = "/lib64/ld-linux-x86-64.so.2";
const MARKER: &str = "/tmp/m-ld-so";

/// Block mode: the payload through ld.so is refused at its executable mapping.
pub(crate) fn lsm_mmap_ld_so(ctx: &Ctx) -> Result<(), String> {
    mapping_stopped_in(ctx, Tier::Lsm)
}

/// Block mode in the signal tier: ld.so is killed at the payload's executable mapping.
pub(crate) fn signal_mmap_ld_so(ctx: &Ctx) -> Result<(), String> {
    mapping_stopped_in(ctx, Tier::Signal)
}

/// The tier a case expects, and what it does to the mapping.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tier {
    /// LSM `mmap_file` refuses it (EPERM: ld.so fails to load the program).
    Lsm,
    /// fentry on `security_mmap_file` kills ld.so.
    Signal,
}

fn mapping_stopped_in(ctx: &Ctx, tier: Tier) -> Result<(), String> {
    require_engine()?;
    let _ = std::fs::remove_file(MARKER);
    let mut engine = Engine::start(
        "block",
        "/tmp/audit-mmap.jsonl".as_ref(),
        "/tmp/enforcer-mmap.log".as_ref(),
    )?;
    let result = mapping_stopped(ctx, &mut engine, tier);
    if result.is_err() {
        dump(ctx, &engine);
    }
    result
}

fn mapping_stopped(ctx: &Ctx, engine: &mut Engine, tier: Tier) -> Result<(), String> {
    let start = engine.wait_started(START_TIMEOUT)?;
    let (tier_name, action, hook) = match tier {
        Tier::Lsm => ("lsm", "deny", "lsm/mmap_file"),
        Tier::Signal => ("signal", "kill", "fentry/security_mmap_file"),
    };
    expect_field(&start, "tier", tier_name)?;
    let out = Command::new(LD_SO)
        .args([layout::WRITE_MARKER, MARKER, "x"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("exec of {LD_SO}: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let killed = out.status.signal() == Some(libc::SIGKILL);
    if out.status.success()
        || std::path::Path::new(MARKER).exists()
        || killed != (tier == Tier::Signal)
    {
        return Err(format!(
            "{LD_SO} {} ran or ended the wrong way ({}), want the mapping {}; stderr {stderr}",
            layout::WRITE_MARKER,
            out.status,
            if tier == Tier::Lsm {
                "refused"
            } else {
                "killed"
            },
        ));
    }
    ctx.log(format!("through ld.so: {} ({})", out.status, stderr.trim()));
    let record = engine.wait_record(RECORD_TIMEOUT, "action at mmap_file", |r| {
        audit::is_action(r, action, DENY_MARKER_RULE)
    })?;
    if record["event"]["hook"] != hook || record["event"]["exec"]["file"]["name"] != "write-marker"
    {
        return Err(format!("{action} record {record}"));
    }
    ctx.log(format!("{action} record from {hook}"));
    // An ordinary program through ld.so runs.
    let status = Command::new(LD_SO)
        .args([layout::GUEST_HARNESS, "--list"])
        .stdout(Stdio::null())
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("{LD_SO} {}: {e}", layout::GUEST_HARNESS))?;
    if !status.success() {
        return Err(format!(
            "{LD_SO} {} --list: {status}",
            layout::GUEST_HARNESS
        ));
    }
    ctx.log("an ordinary program through ld.so ran");
    expect_clean_exit(engine.terminate(STOP_TIMEOUT)?)
}

/// A renamed copy of `write-marker` made unique by appended bytes: a dynamically linked
/// "miner" never executed, whose SHA-256 only the hash rule knows.
const MAPPED_MINER: &str = "/tmp/svc-helper";
const MAPPED_MARKER: &str = "/tmp/m-mapped";
const ORIGINAL_MARKER: &str = "/tmp/m-mapped-original";

/// Block mode, in-kernel hashing: the renamed copy through ld.so is refused at its executable
/// mapping by its content; the original program through ld.so runs.
pub(crate) fn lsm_mmap_hash(ctx: &Ctx) -> Result<(), String> {
    require_engine()?;
    let mut bytes = std::fs::read(layout::WRITE_MARKER)
        .map_err(|e| format!("read {}: {e}", layout::WRITE_MARKER))?;
    bytes.extend_from_slice(b"\nenforcer-vm-mapped-miner\n");
    write_exe(MAPPED_MINER, &bytes)?;
    let sha = sha256_of(MAPPED_MINER)?;
    write_hash_policy(&sha)?;
    let mut engine = Engine::start_with(
        POLICY,
        "block",
        "/tmp/audit-mmap-hash.jsonl".as_ref(),
        "/tmp/enforcer-mmap-hash.log".as_ref(),
    )?;
    let result = mapping_hashed_and_denied(ctx, &mut engine, &sha);
    if result.is_err() {
        dump(ctx, &engine);
    }
    result
}

fn mapping_hashed_and_denied(ctx: &Ctx, engine: &mut Engine, sha: &str) -> Result<(), String> {
    expect_kernel_hash(&engine.wait_started(START_TIMEOUT * 4)?)?;
    let out = Command::new(LD_SO)
        .args([MAPPED_MINER, MAPPED_MARKER, "x"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("exec of {LD_SO}: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() || std::path::Path::new(MAPPED_MARKER).exists() {
        return Err(format!(
            "{LD_SO} {MAPPED_MINER} ran ({}), want the mapping refused; stderr {stderr}",
            out.status
        ));
    }
    ctx.log(format!(
        "renamed copy through ld.so: {} ({})",
        out.status,
        stderr.trim()
    ));
    let deny = engine.wait_record(RECORD_TIMEOUT, "deny by hash at mmap_file", |r| {
        audit::is_action(r, "deny", RULE)
    })?;
    let event = &deny["event"];
    if event["hook"] != "lsm/mmap_file"
        || deny["decided_in"] != "kernel"
        || event["exec"]["file"]["name"] != "svc-helper"
        || event["exec"]["file"]["hash"]["sha256"] != sha
        || event["exec"]["file"]["hash"]["source"] != "kernel"
    {
        return Err(format!("deny record {deny}"));
    }
    ctx.log(format!("deny record: {deny}"));
    // The original program (another digest) through ld.so runs and writes its marker.
    let status = Command::new(LD_SO)
        .args([layout::WRITE_MARKER, ORIGINAL_MARKER, "x"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("{LD_SO} {}: {e}", layout::WRITE_MARKER))?;
    if !status.success() || !std::path::Path::new(ORIGINAL_MARKER).exists() {
        return Err(format!("{LD_SO} {}: {status}", layout::WRITE_MARKER));
    }
    ctx.log("the original program through ld.so ran");
    expect_clean_exit(engine.terminate(STOP_TIMEOUT)?)
}
