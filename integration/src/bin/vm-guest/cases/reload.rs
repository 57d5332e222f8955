//! Policy reload in the lsm tier: SIGHUP swaps the kernel plan while a binary both policies
//! deny is run without pause (every exec refused with EPERM, none let through), the new
//! policy's denies are made in the LSM hook at once, and a reload that adds a SHA-256 value
//! loads the kernel hash programs (not needed at start) so a never-run file with that content
//! is refused on its first exec; one that needs an LSM hook the start did not load (mkdir) is
//! refused and the running policy stays. Under `--on-crash keep-enforcing` the hash programs a
//! reload attached are pinned: with the engine SIGKILLed, a never-run copy of a listed file is
//! still refused in the kernel. Reloads detach what the policy in force no longer needs: the
//! kernel hash programs when no hash is listed any more, the bind tracepoint when its rule goes
//! (no syscall tracepoint is left); a later hash list attaches the hash programs again.

use std::{
    path::Path,
    process::{Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use enforcer_integration::vm::layout::WRITE_MARKER;
use serde_json::Value;

use super::{
    Ctx,
    exec::{RECORD_TIMEOUT, START_TIMEOUT, STOP_TIMEOUT, dump, expect_clean_exit, require_engine},
};
use crate::{audit, engine::Engine};

const DIR: &str = "/tmp/reload";
const AUDIT: &str = "/tmp/audit-reload.jsonl";
/// Reloads while the denied binary runs.
const RELOADS: usize = 6;

/// A policy denying the execs of `names` (rule `deny-<name>` each).
fn policy(names: &[&str]) -> String {
    let rules: String = names
        .iter()
        .map(|n| {
            format!(
                "  - id: deny-{n}\n    expression: exec.file.name == \"{n}\"\n    action: deny\n"
            )
        })
        .collect();
    format!("version: 1\nrules:\n{rules}")
}

/// Runs `program MARKER x`: `Ok(true)` when it ran, `Ok(false)` when the exec was refused
/// with EPERM.
fn runs(program: &str, marker: &str) -> Result<bool, String> {
    let _ = std::fs::remove_file(marker);
    match Command::new(program)
        .arg(marker)
        .arg("x")
        .stdin(Stdio::null())
        .status()
    {
        Ok(status) if status.success() && Path::new(marker).exists() => Ok(true),
        Ok(status) => Err(format!("{program}: ran but {status}, marker missing")),
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => Ok(false),
        Err(e) => Err(format!(
            "{program}: exec failed with {e}, want EPERM or a run"
        )),
    }
}

/// The `n`th `policy_reload` record (from 0), waiting for it.
pub(super) fn nth_reload(engine: &Engine, n: usize) -> Result<Value, String> {
    let deadline = Instant::now() + RECORD_TIMEOUT;
    loop {
        let found = audit::records(&engine.audit_log)?
            .into_iter()
            .filter(|r| audit::is_type(r, "policy_reload"))
            .nth(n);
        if let Some(record) = found {
            return Ok(record);
        }
        if Instant::now() > deadline {
            return Err(format!("no policy_reload record #{n}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub(crate) fn lsm_policy_reload(ctx: &Ctx) -> Result<(), String> {
    require_engine()?;
    std::fs::create_dir_all(DIR).map_err(|e| format!("{DIR}: {e}"))?;
    let (app_a, app_b) = (format!("{DIR}/app-a"), format!("{DIR}/app-b"));
    for app in [&app_a, &app_b] {
        std::fs::copy(WRITE_MARKER, app).map_err(|e| format!("copy to {app}: {e}"))?;
    }
    let policy_path = format!("{DIR}/policy.yaml");
    let policy_a = policy(&["write-marker", "app-a"]);
    let policy_b = policy(&["write-marker", "app-b"]);
    std::fs::write(&policy_path, &policy_a).map_err(|e| format!("{policy_path}: {e}"))?;
    let mut engine = Engine::start_args(
        &policy_path,
        "block",
        AUDIT.as_ref(),
        "/tmp/enforcer-reload.log".as_ref(),
        &["--policy-watch", "off", "--events", "none"],
    )?;
    let result = swap(
        ctx,
        &mut engine,
        &policy_path,
        [&policy_a, &policy_b],
        [&app_a, &app_b],
    );
    if result.is_err() {
        dump(ctx, &engine);
    }
    result?;
    expect_clean_exit(engine.terminate(STOP_TIMEOUT)?)
}

fn swap(
    ctx: &Ctx,
    engine: &mut Engine,
    policy_path: &str,
    [policy_a, policy_b]: [&String; 2],
    [app_a, app_b]: [&String; 2],
) -> Result<(), String> {
    let start = engine.wait_started(START_TIMEOUT)?;
    if audit::str_field(&start, "tier") != Some("lsm") {
        return Err(format!("not the lsm tier: {start}"));
    }
    if runs(app_a, "/tmp/reload-a")? || !runs(app_b, "/tmp/reload-b")? {
        return Err("policy A must deny app-a and let app-b run".to_owned());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let looper = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let (mut tries, mut let_run) = (0u32, 0u32);
            while !stop.load(Ordering::Relaxed) {
                tries += 1;
                match runs(WRITE_MARKER, "/tmp/reload-loop") {
                    Ok(false) => {}
                    Ok(true) => let_run += 1,
                    Err(e) => return Err(e),
                }
                std::thread::sleep(Duration::from_micros(500));
            }
            Ok((tries, let_run))
        })
    };
    let mut reloaded = Ok(());
    for i in 0..RELOADS {
        let text = if i % 2 == 0 { policy_b } else { policy_a };
        reloaded = std::fs::write(policy_path, text)
            .map_err(|e| format!("{policy_path}: {e}"))
            .and_then(|()| engine.sighup())
            .and_then(|()| nth_reload(engine, i))
            .and_then(|r| match audit::str_field(&r, "outcome") {
                Some("applied") => Ok(()),
                _ => Err(format!("reload {i} not applied: {r}")),
            });
        if reloaded.is_err() {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let (tries, let_run) = looper
        .join()
        .map_err(|_| "the exec loop panicked".to_owned())??;
    reloaded?;
    ctx.log(format!(
        "write-marker: {tries} execs across {RELOADS} reloads, {let_run} let run"
    ));
    if let_run != 0 {
        return Err(format!(
            "write-marker, denied by both policies, ran {let_run} of {tries} times"
        ));
    }
    // RELOADS is even: policy A is in force; one more makes it B.
    std::fs::write(policy_path, policy_b).map_err(|e| format!("{policy_path}: {e}"))?;
    engine.sighup()?;
    let last = nth_reload(engine, RELOADS)?;
    ctx.log(format!("last reload: {last}"));
    if !runs(app_a, "/tmp/reload-a")? || runs(app_b, "/tmp/reload-b")? {
        return Err("policy B must let app-a run and deny app-b".to_owned());
    }
    let record = engine.wait_record(RECORD_TIMEOUT, "deny record for deny-app-b", |r| {
        audit::is_action(r, "deny", "deny-app-b")
    })?;
    if audit::str_field(&record, "decided_in") != Some("kernel") {
        return Err(format!("deny-app-b not decided in the kernel: {record}"));
    }
    hash_list_added(ctx, engine, policy_path, policy_b)
}

/// A file with content unique to `tag` (a `write-marker` with bytes appended), never run.
fn unique_exe(path: &str, tag: &str) -> Result<Vec<u8>, String> {
    let mut bytes = std::fs::read(WRITE_MARKER).map_err(|e| format!("{WRITE_MARKER}: {e}"))?;
    bytes.extend_from_slice(tag.as_bytes());
    super::hash::write_exe(path, &bytes)?;
    Ok(bytes)
}

/// A policy that denies `write-marker` by name and, by SHA-256, the file at `listed`.
fn hash_policy(listed: &str) -> Result<String, String> {
    let sha = super::hash::sha256_of(listed)?;
    Ok(format!(
        "version: 1\nlists:\n  - name: bad\n    type: hash\n    items: [\"{sha}\"]\nrules:\n  - id: deny-write-marker\n    expression: exec.file.name == \"write-marker\"\n    action: deny\n  - id: deny-hash\n    expression: exec.file.hash.sha256 in bad\n    action: kill\n"
    ))
}

/// See the module documentation: the kernel hash programs a reload attached outlive a
/// SIGKILLed `keep-enforcing` engine.
pub(crate) fn lsm_reload_pinned_hash(ctx: &Ctx) -> Result<(), String> {
    require_engine()?;
    let unpin = super::crash::Unpin;
    std::fs::create_dir_all(DIR).map_err(|e| format!("{DIR}: {e}"))?;
    let policy_path = format!("{DIR}/pinned-policy.yaml");
    std::fs::write(&policy_path, policy(&["write-marker"]))
        .map_err(|e| format!("{policy_path}: {e}"))?;
    let listed = format!("{DIR}/app-listed");
    let content = unique_exe(&listed, "reload-pinned: unique content")?;
    let mut engine = Engine::start_args(
        &policy_path,
        "block",
        "/tmp/audit-reload-pinned.jsonl".as_ref(),
        "/tmp/enforcer-reload-pinned.log".as_ref(),
        &[
            "--policy-watch",
            "off",
            "--events",
            "none",
            super::crash::KEEP[0],
            super::crash::KEEP[1],
        ],
    )?;
    let result = hash_reload_then_killed(ctx, &mut engine, &policy_path, &listed);
    if result.is_err() {
        dump(ctx, &engine);
    }
    result?;
    // No engine now: the pinned programs and maps decide. A fresh copy (a new inode, never
    // hashed) must be hashed by the pinned `bprm_creds_from_file` program and refused.
    let copy = format!("{DIR}/app-copy");
    super::hash::write_exe(&copy, &content)?;
    if runs(&copy, "/tmp/reload-pinned-copy")? {
        return Err("a never-run copy of the listed file ran with the engine killed".to_owned());
    }
    ctx.log("engine SIGKILLed: a never-run copy of the listed file refused with EPERM");
    // The cases after this one start with nothing enforced.
    drop(unpin);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !runs(&copy, "/tmp/reload-pinned-copy")? {
        if Instant::now() > deadline {
            return Err("the copy is still refused 10 s after the pins were removed".to_owned());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// Reloads to a policy listing `listed`'s SHA-256 (the kernel hash programs attach and are
/// pinned), checks it is refused, and SIGKILLs the engine.
fn hash_reload_then_killed(
    ctx: &Ctx,
    engine: &mut Engine,
    policy_path: &str,
    listed: &str,
) -> Result<(), String> {
    let start = engine.wait_started(START_TIMEOUT)?;
    super::exec::expect_field(&start, "on_crash", "keep-enforcing")?;
    if audit::str_field(&start, "exec_hash").is_some_and(|h| h.starts_with("kernel")) {
        return Err(format!("the start needed no kernel hashing: {start}"));
    }
    let run_id = audit::str_field(&start, "run_id")
        .ok_or_else(|| format!("engine_start has no run_id: {start}"))?
        .to_owned();
    std::fs::write(policy_path, hash_policy(listed)?).map_err(|e| format!("{policy_path}: {e}"))?;
    engine.sighup()?;
    let record = nth_reload(engine, 0)?;
    ctx.log(format!("hash reload: {record}"));
    if audit::str_field(&record, "outcome") != Some("applied")
        || !audit::str_field(&record, "exec_hash").is_some_and(|h| h.starts_with("kernel"))
    {
        return Err(format!("want applied with kernel hashing: {record}"));
    }
    let pin = Path::new(super::crash::PIN_ROOT)
        .join(&run_id)
        .join("link-lsm_bprm_creds_from_file");
    if !pin.exists() {
        return Err(format!("{} is not pinned after the reload", pin.display()));
    }
    if runs(listed, "/tmp/reload-pinned-listed")? {
        return Err("the listed file ran with the engine up".to_owned());
    }
    let status = engine.sigkill()?;
    ctx.log(format!("engine SIGKILLed: {status}"));
    Ok(())
}

/// The policy at start lists no SHA-256 value, so the kernel hash programs were not loaded; a
/// reload that lists one loads and attaches them, and a never-run file with that content is
/// refused on its first exec.
fn hash_list_added(
    ctx: &Ctx,
    engine: &mut Engine,
    policy_path: &str,
    policy_b: &str,
) -> Result<(), String> {
    let app_c = format!("{DIR}/app-c");
    unique_exe(&app_c, "reload-case: unique content")?;
    let sha = super::hash::sha256_of(&app_c)?;
    std::fs::write(policy_path, hash_listed(policy_b, &sha))
        .map_err(|e| format!("{policy_path}: {e}"))?;
    engine.sighup()?;
    let record = nth_reload(engine, RELOADS + 1)?;
    ctx.log(format!("hash reload: {record}"));
    if audit::str_field(&record, "outcome") != Some("applied")
        || !audit::str_field(&record, "exec_hash").is_some_and(|h| h.starts_with("kernel"))
    {
        return Err(format!("want applied with kernel hashing: {record}"));
    }
    if runs(&app_c, "/tmp/reload-c")? {
        return Err("app-c, listed by hash, ran on its first exec".to_owned());
    }
    let deny = engine.wait_record(RECORD_TIMEOUT, "deny record for deny-hash", |r| {
        audit::is_action(r, "deny", "deny-hash")
    })?;
    if audit::str_field(&deny, "decided_in") != Some("kernel") {
        return Err(format!("deny-hash not decided in the kernel: {deny}"));
    }
    // The lsm tier loads the mkdir hook only for a policy about mkdir: a restart is needed.
    let mkdir = format!(
        "{policy_b}  - id: mkdirs\n    expression: mkdir.file.path == \"/tmp/x\"\n    action: alert\n"
    );
    std::fs::write(policy_path, mkdir).map_err(|e| format!("{policy_path}: {e}"))?;
    engine.sighup()?;
    let refused = nth_reload(engine, RELOADS + 2)?;
    ctx.log(format!("mkdir reload: {refused}"));
    let reason = audit::str_field(&refused, "reason").unwrap_or_default();
    if audit::str_field(&refused, "outcome") != Some("refused")
        || !reason.contains("file operation Mkdir")
    {
        return Err(format!("want refused for the mkdir hook: {refused}"));
    }
    if runs(&app_c, "/tmp/reload-c")? {
        return Err("the hash policy must stay in force after a refusal".to_owned());
    }
    bind_rule_comes_and_goes(ctx, engine, policy_path, policy_b)
}

/// `policy` with a kill rule on the SHA-256 value `sha`.
pub(super) fn hash_listed(policy: &str, sha: &str) -> String {
    let lists = format!("lists:\n  - name: bad\n    type: hash\n    items: [\"{sha}\"]\nrules:\n");
    format!(
        "{}  - id: deny-hash\n    expression: exec.file.hash.sha256 in bad\n    action: kill\n",
        policy.replacen("rules:\n", &lists, 1)
    )
}

/// What reloads attach, later ones detach once the policy in force no longer needs it: from
/// the hash policy to policy B with a bind rule, the kernel hash programs go and LSM
/// `socket_bind` comes (no syscall tracepoint: the hook sees binds); back to policy B, it goes
/// too. A last reload lists a hash again: the kernel hash programs are attached again and
/// refuse a never-run file with that content.
fn bind_rule_comes_and_goes(
    ctx: &Ctx,
    engine: &mut Engine,
    policy_path: &str,
    policy_b: &str,
) -> Result<(), String> {
    let with_bind = format!(
        "{policy_b}  - id: binds\n    expression: bind.addr.port == 4242\n    action: alert\n"
    );
    let expect = |n: usize, tracepoints: Value, detached: Value| -> Result<(), String> {
        let record = nth_reload(engine, n)?;
        ctx.log(format!("reload {n}: {record}"));
        if audit::str_field(&record, "outcome") != Some("applied")
            || record["syscall_tracepoints"] != tracepoints
            || record["detached"] != detached
        {
            return Err(format!(
                "want applied, syscall_tracepoints {tracepoints}, detached {detached}: {record}"
            ));
        }
        Ok(())
    };
    for (n, text, tracepoints, detached) in [
        (
            RELOADS + 3,
            with_bind.as_str(),
            serde_json::json!([]),
            serde_json::json!(["lsm_bprm_creds_from_file", "lsm_mmap_file_hash"]),
        ),
        (
            RELOADS + 4,
            policy_b,
            serde_json::json!([]),
            serde_json::json!(["lsm_socket_bind"]),
        ),
    ] {
        std::fs::write(policy_path, text).map_err(|e| format!("{policy_path}: {e}"))?;
        engine.sighup()?;
        expect(n, tracepoints, detached)?;
    }
    let app_d = format!("{DIR}/app-d");
    unique_exe(&app_d, "reload-case: hashed after a detach")?;
    let listed = hash_listed(policy_b, &super::hash::sha256_of(&app_d)?);
    std::fs::write(policy_path, listed).map_err(|e| format!("{policy_path}: {e}"))?;
    engine.sighup()?;
    expect(RELOADS + 5, serde_json::json!([]), Value::Null)?;
    let record = nth_reload(engine, RELOADS + 5)?;
    if !audit::str_field(&record, "exec_hash").is_some_and(|h| h.starts_with("kernel")) {
        return Err(format!("want kernel hashing again: {record}"));
    }
    if runs(&app_d, "/tmp/reload-d")? {
        return Err("app-d, listed by hash, ran on its first exec".to_owned());
    }
    ctx.log("kernel hash programs detached, then attached again: app-d refused on its first exec");
    Ok(())
}
