//! The shipped policy (`policy/default`, packed at `layout::DEFAULT_POLICY_DIR`) against the
//! catalog fixtures of `enforcer_integration::catalog` in the lsm tier, in block mode and in
//! monitor mode (the catalog's DRY run). Block mode: F1, F5, F6 fail at exec with EPERM; F9's
//! pool lookups fail to send with EPERM; F2 and F11 (miner arguments), F4 (a pool URL in the
//! environment) and F10's CryptoNote login are killed in userspace; F3's stratum v1 write and F10's EthereumStratum subscribe are
//! refused and their senders killed in the kernel; F13 (a shell script piping a subscribe into
//! `nc`) is stopped; F7's command lines and F8's huge-page sysctl write raise alerts. Monitor
//! mode: all of them run and the audit log names the same rules with `would_deny` /
//! `would_kill`. Both: N1 (`grep` through a
//! busybox link, as on Alpine), N4 and N5 raise nothing (N2 needs a compiler: host suite only).
//! `signal_default_policy` runs block mode in the signal tier (BPF LSM off, Debian's default
//! boot): the same fixtures, the named miners killed at exec.

use std::{
    os::unix::process::ExitStatusExt as _,
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use enforcer_integration::{
    catalog::{self, Expected},
    dns_fixture::{StubDns, dns_query},
    memfd::{self, memfd_with},
    vm::layout,
};

use super::{
    Ctx,
    exec::{RECORD_TIMEOUT, START_TIMEOUT, STOP_TIMEOUT, dump, expect_clean_exit, require_engine},
    stratum::{bring_up_loopback, client, client_with, start_pool},
};
use crate::{audit, engine::Engine};

/// Scratch directory of the fixtures' copies and markers.
pub(super) const DIR: &str = "/tmp/default-policy";
/// The mock pool's ports (the rules do not look at ports).
const POOL: [&str; 3] = ["127.0.0.1:3333", "127.0.0.1:14444", "127.0.0.1:443"];
/// How long the fake miner may spin before the case stops it.
const MINER_SECS: &str = "60";

/// What a fixture saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Its exec or its send failed with EPERM.
    Refused,
    /// SIGKILL ended it.
    Killed,
    /// It ran (to its end, or until the case stopped it).
    Ran,
}

/// Block mode; see the module documentation.
pub(crate) fn lsm_default_policy(ctx: &Ctx) -> Result<(), String> {
    run_suite(ctx, "block", "lsm")
}

/// Monitor mode; see the module documentation.
pub(crate) fn lsm_default_policy_monitor(ctx: &Ctx) -> Result<(), String> {
    run_suite(ctx, "monitor", "lsm")
}

/// Block mode with BPF LSM off (the signal tier, as on a Debian host booted with its default
/// LSM list): the named miners F1, F5, F6 are killed at exec instead of refused; the rest is
/// stopped as in the lsm tier, F3 and F10 by the egress hook and the daemon's kill.
pub(crate) fn signal_default_policy(ctx: &Ctx) -> Result<(), String> {
    super::signal::load_diag_modules(ctx)?;
    run_suite(ctx, "block", "signal")
}

fn run_suite(ctx: &Ctx, mode: &str, tier: &str) -> Result<(), String> {
    require_engine()?;
    bring_up_loopback()?;
    std::fs::create_dir_all(DIR).map_err(|e| format!("mkdir {DIR}: {e}"))?;
    let stub = StubDns::start(
        Path::new(layout::STUB_DNS),
        "127.0.0.1:53",
        &catalog::STUB_ANSWERS,
        Path::new(&format!("{DIR}/stub-{mode}.jsonl")),
    )?;
    let mut pool = start_pool(&POOL, &format!("{DIR}/pool-{mode}.jsonl"))?;
    let audit_log = format!("{DIR}/audit-{mode}.jsonl");
    let mut engine = Engine::start_with(
        layout::DEFAULT_POLICY_DIR,
        mode,
        Path::new(&audit_log),
        Path::new(&format!("{DIR}/enforcer-{mode}.log")),
    )?;
    let result = fixtures(ctx, &stub, &mut engine, mode, tier);
    if result.is_err() {
        dump(ctx, &engine);
    }
    let _ = pool.kill();
    let _ = pool.wait();
    result
}

fn fixtures(
    ctx: &Ctx,
    stub: &StubDns,
    engine: &mut Engine,
    mode: &str,
    tier: &str,
) -> Result<(), String> {
    let block = mode == "block";
    let start = engine.wait_started(START_TIMEOUT)?;
    if start["kernel_tier"] != tier && start["tier"] != tier {
        return Err(format!("not the {tier} tier: {start}"));
    }
    // The shipped policy needs no syscall tracepoint in the lsm tier (x86_64), nor in the
    // signal tier at fentry programs (Debian's kernels have BPF trampolines): every system
    // call of every task would otherwise take the kernel's traced path.
    let hooks = if tier == "lsm" { "lsm" } else { "fentry" };
    if start["security_hooks"] != hooks {
        return Err(format!("want security_hooks {hooks}: {start}"));
    }
    if start["syscall_tracepoints"] != serde_json::json!([]) {
        return Err(format!(
            "the default policy attached syscall tracepoints in the {tier} tier: {}",
            start["syscall_tracepoints"]
        ));
    }
    ctx.log(format!(
        "security_hooks {hooks}, no syscall tracepoint attached"
    ));
    negatives(stub)?;
    ctx.log("N1 (busybox grep), N4 and N5 ran untouched");
    // The signal tier cannot refuse an exec: a deny is a SIGKILL before the first instruction.
    let named_miners = if tier == "lsm" {
        Outcome::Refused
    } else {
        Outcome::Killed
    };
    let expected = positives(ctx, stub, engine, block, named_miners)?;
    let last = expected.last().map(|e| e.rule).unwrap_or_default();
    engine.wait_record(RECORD_TIMEOUT, "the last fixture's record", |r| {
        audit::is_type(r, "action") && r["rule"] == last
    })?;
    expect_clean_exit(engine.terminate(STOP_TIMEOUT)?)?;
    let records = audit::records(Path::new(&format!("{DIR}/audit-{mode}.jsonl")))?;
    let tier = if block { tier } else { "monitor" };
    for line in catalog::check_actions(&records, &expected, block, tier, std::process::id())? {
        ctx.log(format!("{mode}: {line}"));
    }
    catalog::decided_in_kernel(&records, &catalog::RENAMED_MINER)?;
    catalog::decided_in_kernel(&records, &catalog::FLAGGED_MINER)?;
    catalog::decided_in_kernel(&records, &catalog::ABBREVIATED_FLAG_MINER)
}

/// Asserts `got` is what block mode (`stopped`) or monitor mode ([`Outcome::Ran`]) expects.
fn expect_outcome(got: Outcome, stopped: Outcome, block: bool, what: &str) -> Result<(), String> {
    let want = if block { stopped } else { Outcome::Ran };
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, want {want:?}"))
    }
}

fn positives(
    ctx: &Ctx,
    stub: &StubDns,
    engine: &mut Engine,
    block: bool,
    named_miners: Outcome,
) -> Result<Vec<Expected>, String> {
    let mut expected = Vec::new();
    let mut expect = |fixture, comm: Option<&str>, rule, alert| {
        expected.push(Expected {
            fixture,
            comm: comm.map(str::to_owned),
            rule,
            alert,
        });
    };
    for f in catalog::NAMED_MINERS {
        let got = marker_exec(f.name, f.args)?;
        expect_outcome(got, named_miners, block, f.fixture)?;
        expect(f.fixture, Some(f.name), f.rule, false);
    }
    ctx.log("F1, F5, F6 (miner names)");
    // Killed at sched_process_exec by its arguments, before its first instruction (no LSM
    // hook sees the new image's arguments): `marker_exec` says `Killed` only without a marker.
    let f2 = catalog::RENAMED_MINER;
    let got = marker_exec(f2.name, f2.args)?;
    expect_outcome(got, Outcome::Killed, block, f2.fixture)?;
    expect(f2.fixture, Some(f2.name), f2.rule, false);
    expect(f2.fixture, Some(f2.name), catalog::MASQUERADE_RULE, true);
    ctx.log("F2 (renamed miner, miner arguments)");
    for flagged in [catalog::FLAGGED_MINER, catalog::ABBREVIATED_FLAG_MINER] {
        let got = marker_exec(flagged.name, flagged.args)?;
        expect_outcome(got, Outcome::Killed, block, flagged.fixture)?;
        expect(flagged.fixture, Some(flagged.name), flagged.rule, false);
    }
    ctx.log("F2 flag (renamed, a miner flag only, in full and abbreviated)");
    let f4 = catalog::ENV_MINER;
    let mut command = miner_command(&install(layout::FAKE_MINER, f4.name)?);
    command.env_clear().envs(f4.envs.iter().copied());
    let got = until_acted(engine, command, f4.rule)?;
    expect_outcome(got, Outcome::Killed, block, f4.fixture)?;
    expect(f4.fixture, Some(f4.name), f4.rule, false);
    expect(f4.fixture, Some(f4.name), f4.alert_rule, true);
    ctx.log("F4 (miner configured by its environment)");
    for (f, addr) in catalog::STRATUM_MINERS.iter().zip(POOL) {
        let exe = install(layout::FAKE_MINER, f.name)?;
        let args = ["--stratum", addr, "--dialect", f.dialect];
        let got = miner(engine, &exe, &args, f.rule)?;
        expect_outcome(got, Outcome::Killed, block, f.fixture)?;
        expect(f.fixture, Some(f.name), f.rule, false);
    }
    // Waits for the pool's reply: in the signal tier the write itself succeeds (the segment is
    // dropped on its way out) and the kill is the daemon's, a moment later.
    let run = client_with(POOL[2], "ethereum", "write", &["--expect-reply"])?;
    expect_outcome(
        exit_outcome(run.status),
        Outcome::Killed,
        block,
        "F10 ethereum",
    )?;
    expect(
        "F10",
        Some("stratum-client"),
        catalog::ETHEREUM_STRATUM_RULE,
        false,
    );
    ctx.log("F3, F10 (stratum v1, CryptoNote, EthereumStratum)");
    for (name, rule) in catalog::POOL_LOOKUPS {
        let run = dns_query(Path::new(layout::DNS_CLIENT), stub.addr, name, "sendto")?;
        let got = if run.send_refused() {
            Outcome::Refused
        } else if run.answers().is_some() {
            Outcome::Ran
        } else {
            return Err(format!("F9 {name}: {run:?}"));
        };
        expect_outcome(got, Outcome::Refused, block, "F9")?;
        expect("F9", Some("dns-client"), rule, false);
    }
    ctx.log("F9 (pool lookups)");
    let f11 = catalog::MEMFD_MINER;
    let bytes = std::fs::read(layout::FAKE_MINER).map_err(|e| format!("read fake-miner: {e}"))?;
    let memfd = memfd_with(&bytes).map_err(|e| format!("memfd: {e}"))?;
    let exe = memfd::exec_path(&memfd);
    let got = miner(engine, &exe, f11.args, f11.rule)?;
    drop(memfd);
    expect_outcome(got, Outcome::Killed, block, f11.fixture)?;
    expect(f11.fixture, None, f11.rule, false);
    expect(f11.fixture, None, catalog::MEMFD_EXEC_RULE, true);
    ctx.log("F11 (memfd exec)");
    for f in catalog::MSR_COMMANDS {
        let got = marker_exec(f.name, f.args)?;
        expect_outcome(got, Outcome::Ran, true, f.fixture)?;
        expect(f.fixture, Some(f.name), f.rule, true);
    }
    ctx.log("F7 (MSR command lines)");
    let f8 = catalog::HUGEPAGE_MINER;
    let exe = install(layout::FAKE_MINER, f8.name)?;
    let got = miner(engine, &exe, f8.args, f8.rule)?;
    expect_outcome(got, Outcome::Ran, true, f8.fixture)?;
    expect(f8.fixture, Some(f8.name), f8.rule, true);
    ctx.log("F8 (huge-page sysctl write)");
    // Refused or killed: the shell sees nc's end through busybox `timeout`.
    let got = script_client()?;
    if (got == Outcome::Ran) == block {
        return Err(format!(
            "F13: got {got:?} in {} mode",
            if block { "block" } else { "monitor" }
        ));
    }
    expect(
        "F13",
        Some("busybox"),
        catalog::ETHEREUM_STRATUM_RULE,
        false,
    );
    ctx.log("F13 (sh + nc)");
    Ok(expected)
}

fn negatives(stub: &StubDns) -> Result<(), String> {
    // N1: grep through a busybox link (argv0 `.../grep`, file name `busybox`).
    let notes = format!("{DIR}/notes.txt");
    std::fs::write(&notes, catalog::NOTE_WITH_POOL_URL).map_err(|e| format!("N1 notes: {e}"))?;
    let grep = format!("{DIR}/grep");
    let _ = std::fs::remove_file(&grep);
    std::os::unix::fs::symlink(layout::BUSYBOX, &grep).map_err(|e| format!("N1 link: {e}"))?;
    let status = Command::new(&grep)
        .args(["-F", catalog::N1_PATTERN, &notes])
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("N1 grep: {e}"))?;
    if !status.success() {
        return Err(format!("N1 grep: {status}"));
    }
    let run = dns_query(
        Path::new(layout::DNS_CLIENT),
        stub.addr,
        catalog::ORDINARY_POOL_NAME,
        "sendto",
    )?;
    if run.answers().is_none() {
        return Err(format!("N4 must be answered: {run:?}"));
    }
    let run = client(POOL[0], "jsonrpc", "write")?;
    if !run.status.success() {
        return Err(format!("N5: {} {:?}", run.status, run.stderr));
    }
    Ok(())
}

/// Copies `src` to the scratch directory as `name`, mode 0755.
pub(super) fn install(src: &str, name: &str) -> Result<String, String> {
    use std::os::unix::fs::PermissionsExt as _;
    let dst = format!("{DIR}/{name}");
    std::fs::copy(src, &dst).map_err(|e| format!("copy {src} to {dst}: {e}"))?;
    std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("chmod {dst}: {e}"))?;
    Ok(dst)
}

/// Runs `write-marker` installed as `name`: refused at exec, killed, or ran (marker written).
pub(super) fn marker_exec(name: &str, args: &[&str]) -> Result<Outcome, String> {
    let exe = install(layout::WRITE_MARKER, name)?;
    run_marker(&exe, name, args)
}

/// Runs the `write-marker` copy `exe` installed as `name` (see [`marker_exec`]). Copying the
/// file while other threads fork would make its exec fail with `ETXTBSY` (a child holding the
/// copy's write descriptor), so a storm installs first and runs this.
pub(super) fn run_marker(exe: &str, name: &str, args: &[&str]) -> Result<Outcome, String> {
    let marker = format!("{DIR}/{name}.ran");
    let _ = std::fs::remove_file(&marker);
    let result = Command::new(exe)
        .arg(&marker)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let ran = Path::new(&marker).exists();
    match result {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) && !ran => Ok(Outcome::Refused),
        Err(e) => Err(format!("{name}: exec failed: {e}")),
        Ok(status) if status.signal() == Some(libc::SIGKILL) && !ran => Ok(Outcome::Killed),
        Ok(status) if status.success() && ran => Ok(Outcome::Ran),
        Ok(status) => Err(format!("{name}: {status}, marker written: {ran}")),
    }
}

/// Starts the fake miner at `exe` (one spinner) with `args`, waits for `rule` to act on it,
/// then reaps it: killed by the engine (waited for when the record says `kill`), or stopped
/// here and reported as [`Outcome::Ran`].
fn miner(engine: &mut Engine, exe: &str, args: &[&str], rule: &str) -> Result<Outcome, String> {
    let mut command = miner_command(exe);
    command.args(args);
    until_acted(engine, command, rule)
}

/// The fake miner at `exe` with one spinner for [`MINER_SECS`].
fn miner_command(exe: &str) -> Command {
    let mut command = Command::new(exe);
    command.args(["--spin-threads", "1", "--spin-secs", MINER_SECS]);
    command
}

/// Spawns `command`, waits for `rule` to act on it (any record but `deny`: every rule here kills,
/// alerts, or is in monitor mode), then reaps it as [`miner`] does.
fn until_acted(engine: &mut Engine, mut command: Command, rule: &str) -> Result<Outcome, String> {
    let exe = format!("{:?}", command.get_program());
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {exe}: {e}"))?;
    let pid = child.id();
    // A deny and kill rule's `kill` record, not its `deny` (which comes first, and in the signal
    // tier the daemon's kill may still be on its way when it is read).
    let record = engine.wait_record(RECORD_TIMEOUT, &format!("{rule} on {exe}"), |r| {
        audit::is_type(r, "action")
            && r["action"] != "deny"
            && r["rule"] == rule
            && r["event"]["process"]["pid"] == pid
    });
    let killed = matches!(&record, Ok(r) if r["action"] == "kill");
    let outcome = reap(&mut child, killed);
    record?;
    Ok(outcome)
}

fn reap(child: &mut Child, killed: bool) -> Outcome {
    let deadline = Instant::now()
        + if killed {
            RECORD_TIMEOUT
        } else {
            Duration::ZERO
        };
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return exit_outcome(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Outcome::Ran;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn exit_outcome(status: ExitStatus) -> Outcome {
    match (status.signal(), status.code()) {
        (Some(libc::SIGKILL), _) => Outcome::Killed,
        // stratum-client: WRITE_FAILED (the send was refused).
        (_, Some(3)) => Outcome::Refused,
        _ => Outcome::Ran,
    }
}

/// F13 without Python: a shell script pipes a stratum subscribe into busybox `nc`.
fn script_client() -> Result<Outcome, String> {
    let script = format!(
        "printf '%s\\n' '{{\"id\": 7, \"method\": \"mining.subscribe\", \"params\": [\"sh/1.0\"]}}' \
         | {bb} timeout 5 {bb} nc {addr}; exit $?",
        bb = layout::BUSYBOX,
        addr = POOL[1].replace(':', " "),
    );
    let status = Command::new(layout::BUSYBOX)
        .args(["sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run the script client: {e}"))?;
    // The shell reports a child killed by SIGKILL as exit status 128 + 9.
    Ok(match status.code() {
        Some(0) => Outcome::Ran,
        Some(137) => Outcome::Killed,
        _ => Outcome::Refused,
    })
}
