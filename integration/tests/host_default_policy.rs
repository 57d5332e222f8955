//! The shipped policy (`policy/default`) against the catalog fixtures on the host (signal tier:
//! no BPF LSM here), in block mode and again in monitor mode (the catalog's DRY run).
//!
//! Block mode: F1, F5, F6 (miner names, killed in the kernel before user code), F2, its flag
//! alone, and F11 (renamed or fileless miner with miner arguments, killed in the kernel at
//! exec by its pool URL or its flag; F2 padded past the kernel's copy in userspace), F3 and F10 (a
//! renamed miner speaking stratum v1, EthereumStratum or CryptoNote to the mock pool), F9
//! (pool host and pool domain lookups), F4 (a miner configured only by its environment), F12
//! (a miner started by the dynamic loader), F13 (a Python stratum client), F7's command lines
//! (alerts) and F8 (a huge-page sysctl write, alert) are each stopped or reported by the rule
//! the policy documents for them. Monitor mode: every one of them runs to its end and the
//! audit log names the same rule with `would_kill`. Both modes: N1 (grep of a stratum URL), N2
//! (a compiler run), N4 (ordinary names containing "pool") and N5 (ordinary JSON-RPC on a pool
//! port) raise nothing. The file side of F7 (`/sys/module/msr/parameters/allow_writes`,
//! `/dev/cpu/N/msr`) is in `host_msr.rs` (stand-in files: the host has no msr module) and the
//! VM case `lsm_msr` (the real module); F17 is in `host_cpu.rs`, F15 in `host_storm.rs`.
//! Loopback only: a stub resolver and a mock pool, never a real one. Needs root; skips loudly
//! otherwise (fails under ENFORCER_REQUIRE_HOST=1, as in CI).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod host;

use std::{
    os::unix::process::ExitStatusExt as _,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};

use enforcer_integration::{
    catalog::{self, Expected},
    dns_fixture::{StubDns, dns_query},
    memfd::{self, memfd_with},
};
use host::{Engine, MockPool, can_run, install};

/// Engines are started one at a time: each would see the others' events.
static SERIAL: Mutex<()> = Mutex::new(());

const STUB_DNS: &str = env!("CARGO_BIN_EXE_stub-dns");
const DNS_CLIENT: &str = env!("CARGO_BIN_EXE_dns-client");
const STRATUM_CLIENT: &str = env!("CARGO_BIN_EXE_stratum-client");
const FAKE_MINER: &str = env!("CARGO_BIN_EXE_fake-miner");
const WRITE_MARKER: &str = env!("CARGO_BIN_EXE_write-marker");

/// Bounds a hang; records usually arrive within milliseconds.
const WAIT: Duration = Duration::from_secs(20);
/// How long a long-running fixture (the fake miner) may run before the test stops it.
const MINER_SECS: &str = "30";

/// What a fixture did.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// SIGKILL ended it.
    Killed,
    /// It ran (to its end, or until the test stopped it).
    Ran,
    /// Its send was refused with EPERM (a pool lookup dropped at egress).
    Refused,
}

/// The shipped policy directory.
fn default_policy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policy/default")
}

/// Everything the fixtures use: a scratch directory, the stub resolver, the mock pool.
struct Bench {
    dir: tempfile::TempDir,
    stub: StubDns,
    /// The mock pool on three loopback ports (the catalog's 3333, 14444 and 443 stand for
    /// "any port": the rules do not look at the port).
    pool: MockPool,
}

impl Bench {
    fn new() -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let stub = StubDns::start(
            Path::new(STUB_DNS),
            "127.0.0.1:0",
            &catalog::STUB_ANSWERS,
            &dir.path().join("stub.jsonl"),
        )
        .unwrap();
        let pool = MockPool::start(&["127.0.0.1:0"; 3], &dir.path().join("pool.jsonl"));
        Bench { dir, stub, pool }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `write-marker` installed as `name` with `args`; it ran when its marker exists.
    fn marker_exec(&self, name: &str, args: &[&str]) -> Outcome {
        let exe = install(Path::new(WRITE_MARKER), self.dir.path(), name);
        let marker = self.path(&format!("{name}.ran"));
        let status = Command::new(&exe)
            .arg(&marker)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        let ran = marker.exists();
        match status.signal() {
            Some(libc::SIGKILL) => {
                assert!(!ran, "{name} was killed after its user code ran");
                Outcome::Killed
            }
            _ => {
                assert!(ran && status.success(), "{name}: {status}");
                Outcome::Ran
            }
        }
    }

    /// Starts the fake miner installed as `name` (one spinner) with `args`, waits until the
    /// engine has acted on it (`rule` in `engine`'s log), then reaps it: killed, or still
    /// running (the test then stops it).
    fn miner(&self, engine: &mut Engine, name: &str, args: &[&str], rule: &str) -> Outcome {
        let exe = install(Path::new(FAKE_MINER), self.dir.path(), name);
        Self::miner_at(engine, &exe, args, rule)
    }

    /// [`Bench::miner`] for the executable at `exe`.
    fn miner_at(engine: &mut Engine, exe: &Path, args: &[&str], rule: &str) -> Outcome {
        let mut command = Command::new(exe);
        command.args(spin_args()).args(args);
        Self::until_acted(engine, command, rule)
    }

    /// F4: the fake miner installed as `name`, given only `f.envs` as its environment, after
    /// `pad` bytes of padding in a variable that sorts first (past the kernel's copy of the
    /// environment, `ENV_LEN` bytes, when `pad` is large: userspace then reads the rest from
    /// `/proc`).
    fn env_miner(
        &self,
        engine: &mut Engine,
        f: &catalog::EnvMiner,
        name: &str,
        pad: usize,
    ) -> Outcome {
        let exe = install(Path::new(FAKE_MINER), self.dir.path(), name);
        let mut command = Command::new(exe);
        command
            .args(spin_args())
            .env_clear()
            .envs(f.envs.iter().copied());
        if pad > 0 {
            command.env("AAA_PADDING", "x".repeat(pad));
        }
        Self::until_acted(engine, command, f.rule)
    }

    /// F12: the fake miner installed as `f.name`, started by the dynamic loader.
    fn loader_miner(&self, engine: &mut Engine, f: &catalog::MinerExec) -> Outcome {
        let exe = install(Path::new(FAKE_MINER), self.dir.path(), f.name);
        let mut command = Command::new(catalog::DYNAMIC_LOADER.0);
        command.arg(exe).args(spin_args()).args(f.args);
        Self::until_acted(engine, command, f.rule)
    }

    /// Spawns `command`, waits until the engine has acted on it (`rule` in `engine`'s log),
    /// then reaps it: killed, or still running (the test then stops it).
    fn until_acted(engine: &mut Engine, mut command: Command, rule: &str) -> Outcome {
        let what = format!("{rule} on {:?}", command.get_program());
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        // A `deny` may come first (a payload dropped at egress); the kill, if any, follows.
        let record = engine.wait_for(WAIT, &what, |r| {
            r["type"] == "action"
                && r["rule"] == rule
                && r["event"]["process"]["pid"] == pid
                && !matches!(r["action"].as_str(), Some("deny" | "would_deny"))
        });
        reap(&mut child, record["action"] == "kill")
    }

    fn lookup(&self, name: &str) -> Outcome {
        let run = dns_query(Path::new(DNS_CLIENT), self.stub.addr, name, "sendto").unwrap();
        if run.killed() {
            Outcome::Killed
        } else if run.send_refused() {
            Outcome::Refused
        } else {
            assert!(run.answers().is_some(), "{name}: {run:?}");
            Outcome::Ran
        }
    }

    /// `stratum-client` sends `dialect`'s first message to the pool's `port`th address.
    fn stratum(&self, dialect: &str, port: usize) -> Outcome {
        let status = Command::new(STRATUM_CLIENT)
            .args(["--connect", &self.pool.addrs[port], "--dialect", dialect])
            .args(["--write-call", "write", "--expect-reply"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        exit_outcome(status, dialect)
    }
}

/// The fake miner's own arguments for a fixture: one spinner for [`MINER_SECS`].
fn spin_args() -> [&'static str; 4] {
    ["--spin-threads", "1", "--spin-secs", MINER_SECS]
}

fn exit_outcome(status: ExitStatus, what: &str) -> Outcome {
    match status.signal() {
        Some(libc::SIGKILL) => Outcome::Killed,
        _ => {
            assert!(status.success(), "{what}: {status}");
            Outcome::Ran
        }
    }
}

/// When the engine `killed` it, waits up to [`WAIT`] for the child to end; a child still
/// running then (or at once, when the engine did not kill) is stopped here and reported as
/// [`Outcome::Ran`].
fn reap(child: &mut Child, killed: bool) -> Outcome {
    let deadline = Instant::now() + if killed { WAIT } else { Duration::ZERO };
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return exit_outcome(status, "fake-miner");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    Outcome::Ran
}

/// Runs every positive fixture in `engine`, asserting each outcome for `mode`; returns what
/// must be in the audit log.
fn positives(bench: &Bench, engine: &mut Engine, mode: &str) -> Vec<Expected> {
    let block = mode == "block";
    let kill = |outcome: Outcome, fixture: &str| {
        let want = if block { Outcome::Killed } else { Outcome::Ran };
        assert_eq!(outcome, want, "{fixture} in {mode} mode");
    };
    let mut seen = Vec::new();
    let mut expect = |fixture, comm: Option<&str>, rule, alert| {
        seen.push(Expected {
            fixture,
            comm: comm.map(str::to_owned),
            rule,
            alert,
        });
    };

    // F1, F5, F6: miner names, denied in the kernel (a kill at exec in the signal tier).
    for f in catalog::NAMED_MINERS {
        kill(bench.marker_exec(f.name, f.args), f.fixture);
        expect(f.fixture, Some(f.name), f.rule, false);
    }
    // F2: renamed, with a pool URL and miner flags: killed in the kernel by its arguments
    // before its first instruction (`marker_exec` fails if the marker was written).
    let f2 = catalog::RENAMED_MINER;
    kill(bench.marker_exec(f2.name, f2.args), f2.fixture);
    expect(f2.fixture, Some(f2.name), f2.rule, false);
    expect(f2.fixture, Some(f2.name), catalog::MASQUERADE_RULE, true);
    // F2's flag alone, in full and abbreviated: killed in the kernel by the flag plan, before
    // its first instruction.
    for flagged in [catalog::FLAGGED_MINER, catalog::ABBREVIATED_FLAG_MINER] {
        kill(
            bench.marker_exec(flagged.name, flagged.args),
            flagged.fixture,
        );
        expect(flagged.fixture, Some(flagged.name), flagged.rule, false);
    }
    // F2 evading the kernel's copy of the command line (`ARGS_LEN`, 512 bytes) with a padding
    // argument first: the kernel's argument plan cannot see the URL; userspace completes the
    // arguments from /proc and kills after the fact.
    let padded_url = "svc-padded-url";
    let pad = "x".repeat(600);
    let args = ["--", pad.as_str(), f2.args[1]];
    kill(bench.miner(engine, padded_url, &args, f2.rule), "F2 padded");
    expect(f2.fixture, Some(padded_url), f2.rule, false);
    // F4: a renamed miner configured only by its environment: killed in userspace.
    let f4 = catalog::ENV_MINER;
    kill(bench.env_miner(engine, &f4, f4.name, 0), f4.fixture);
    expect(f4.fixture, Some(f4.name), f4.rule, false);
    expect(f4.fixture, Some(f4.name), f4.alert_rule, true);
    // F4 evading the kernel's copy of the environment with padding first.
    let padded = "app-svc-padded";
    // Twice the kernel's copy (`ENV_LEN`, 2 KiB).
    let pad = 4096;
    kill(bench.env_miner(engine, &f4, padded, pad), "F4 padded");
    expect(f4.fixture, Some(padded), f4.rule, false);
    // F12: the miner started by the dynamic loader: killed in userspace by the loader's
    // argument (the lsm tier also refuses the mapping, see the VM's lsm_mmap_ld_so).
    let f12 = catalog::LOADER_MINER;
    kill(bench.loader_miner(engine, &f12), f12.fixture);
    expect(
        f12.fixture,
        Some(catalog::DYNAMIC_LOADER.1),
        f12.rule,
        false,
    );
    // F3 / F10: a renamed miner with no tell-tale arguments speaking stratum.
    for (f, addr) in catalog::STRATUM_MINERS.iter().zip(&bench.pool.addrs) {
        let args = ["--stratum", addr, "--dialect", f.dialect];
        kill(bench.miner(engine, f.name, &args, f.rule), f.fixture);
        expect(f.fixture, Some(f.name), f.rule, false);
    }
    kill(bench.stratum("ethereum", 2), "F10");
    expect(
        "F10",
        Some("stratum-client"),
        catalog::ETHEREUM_STRATUM_RULE,
        false,
    );
    // F9: pool lookups, dropped on their way out (the send fails with EPERM).
    for (name, rule) in catalog::POOL_LOOKUPS {
        let want = if block {
            Outcome::Refused
        } else {
            Outcome::Ran
        };
        assert_eq!(bench.lookup(name), want, "F9 in {mode} mode");
        expect("F9", Some("dns-client"), rule, false);
    }
    // F11: the fake miner executed from a memfd.
    let f11 = catalog::MEMFD_MINER;
    let memfd = memfd_with(&std::fs::read(FAKE_MINER).unwrap()).unwrap();
    let exe = memfd::exec_path(&memfd);
    kill(
        Bench::miner_at(engine, Path::new(&exe), f11.args, f11.rule),
        f11.fixture,
    );
    drop(memfd);
    expect(f11.fixture, None, f11.rule, false);
    expect(f11.fixture, None, catalog::MEMFD_EXEC_RULE, true);
    // F7, command-line side: alerts, the stand-ins run.
    for f in catalog::MSR_COMMANDS {
        assert_eq!(bench.marker_exec(f.name, f.args), Outcome::Ran, "{f:?}");
        expect(f.fixture, Some(f.name), f.rule, true);
    }
    // F8: the huge-page sysctl written (its own value back): an alert, the miner runs on.
    let f8 = catalog::HUGEPAGE_MINER;
    assert_eq!(
        bench.miner(engine, f8.name, f8.args, f8.rule),
        Outcome::Ran,
        "F8"
    );
    expect(f8.fixture, Some(f8.name), f8.rule, true);
    // F13: a Python script logging in with CryptoNote stratum; the kill comes from userspace,
    // after the fact, so the script may have finished first (the record is asserted).
    if let Some(python) = python3() {
        let (host_part, port) = bench.pool.addrs[0].rsplit_once(':').unwrap();
        let status = Command::new(python)
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/fixtures/stratum_client.py"
            ))
            .args([host_part, port])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        println!("F13 python client in {mode} mode: {status}");
        expect("F13", Some("python3"), "stratum-cryptonote-payload", false);
    } else {
        assert!(!host::required(), "python3 is needed for fixture F13");
        eprintln!("SKIPPED F13: no python3");
    }
    seen
}

/// Runs the negative fixtures; each must run to a successful end.
fn negatives(bench: &Bench) {
    // N1: text tools reading a pool URL.
    let notes = bench.path("notes.txt");
    std::fs::write(&notes, catalog::NOTE_WITH_POOL_URL).unwrap();
    let status = Command::new("grep")
        .args(["-F", catalog::N1_PATTERN, notes.to_str().unwrap()])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "N1 grep: {status}");
    // N2: a compiler run on a file named like a pool.
    if let Some(cc) = ["/usr/bin/cc", "/usr/bin/gcc"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    {
        let src = bench.path("pool.c");
        std::fs::write(&src, "int pool(void) { return 3333; }\n").unwrap();
        let status = Command::new(cc)
            .arg("-c")
            .arg(&src)
            .arg("-o")
            .arg(bench.path("pool.o"))
            .status()
            .unwrap();
        assert!(status.success(), "N2 cc: {status}");
    } else {
        assert!(!host::required(), "a C compiler is needed for fixture N2");
        eprintln!("SKIPPED N2: no cc");
    }
    // N4: ordinary names containing "pool".
    assert_eq!(
        bench.lookup(catalog::ORDINARY_POOL_NAME),
        Outcome::Ran,
        "N4"
    );
    // N5: ordinary JSON-RPC on a pool's port.
    assert_eq!(bench.stratum("jsonrpc", 0), Outcome::Ran, "N5");
}

fn python3() -> Option<&'static str> {
    ["/usr/bin/python3", "/usr/local/bin/python3"]
        .into_iter()
        .find(|p| Path::new(p).exists())
}

fn run_suite(mode: &str) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let bench = Bench::new();
    let mut engine = Engine::start_at(bench.dir.path(), &default_policy(), mode, &[]);
    let start = engine
        .records()
        .into_iter()
        .find(|r| r["type"] == "engine_start")
        .unwrap();
    assert_eq!(
        start["kernel_tier"].as_str().or(start["tier"].as_str()),
        Some("signal")
    );
    // The signal tier watches opens with syscall tracepoints, sends and connects at the cgroup
    // hooks (so no send tracepoint); binds and accepts only for a rule, and the shipped policy
    // has none.
    assert_eq!(start["send_hook"], "cgroup_skb/egress", "{start:#}");
    assert_eq!(start["connect_hook"], "cgroup/connect4,6", "{start:#}");
    // No BPF trampolines on this host (PLATFORM.md): the fentry programs are refused and the
    // start record says so (the VM suite's signal boot runs them).
    let hooks = start["security_hooks"].as_str().unwrap_or_default();
    assert!(
        hooks.starts_with("tracepoints (fentry program fentry_file_open"),
        "{start:#}"
    );
    let attached: Vec<&str> = start["syscall_tracepoints"]
        .as_array()
        .map(|a| a.iter().filter_map(|t| t.as_str()).collect())
        .unwrap_or_default();
    assert!(attached.contains(&"sys_exit_openat"), "{attached:?}");
    for unwanted in [
        "sys_enter_write",
        "sys_enter_sendto",
        "sys_enter_connect",
        "sys_enter_bind",
        "sys_exit_accept",
        "sys_exit_accept4",
    ] {
        assert!(!attached.contains(&unwanted), "{unwanted} in {attached:?}");
    }
    negatives(&bench);
    let seen = positives(&bench, &mut engine, mode);
    let last = seen.last().map(|e| e.rule).unwrap();
    engine.wait_for(WAIT, "the last fixture's record", |r| {
        r["type"] == "action" && r["rule"] == last
    });
    let records = engine.stop();
    let tier = if mode == "block" { "signal" } else { "monitor" };
    match catalog::check_actions(&records, &seen, mode == "block", tier, std::process::id()) {
        Ok(lines) => lines.iter().for_each(|line| println!("{mode}: {line}")),
        Err(err) => panic!("{err}; audit log: {records:#?}"),
    }
    for f in [
        &catalog::RENAMED_MINER,
        &catalog::FLAGGED_MINER,
        &catalog::ABBREVIATED_FLAG_MINER,
    ] {
        if let Err(err) = catalog::decided_in_kernel(&records, f) {
            panic!("{err}");
        }
    }
    report_names_every_fixture(&engine_audit(&bench, mode), mode, &seen);
}

/// The audit log `Engine::start_at` gave the engine.
fn engine_audit(bench: &Bench, mode: &str) -> PathBuf {
    bench.dir.path().join(format!("audit-{mode}.jsonl"))
}

/// `enforcer report` of the run's audit log lists every fixture's rule as stopping something
/// (or, in a dry run, as what block mode would have stopped), or as alerting for alert rules.
fn report_names_every_fixture(audit: &Path, mode: &str, seen: &[Expected]) {
    let out = Command::new(host::enforcer_bin())
        .args(["report", "--format", "json", "--audit-log"])
        .arg(audit)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["runs"][0]["mode"], mode, "{report:#}");
    assert_eq!(report["runs"][0]["stop_reason"], "SIGTERM");
    let acted = |rule: &str, alert: bool| {
        let actions = report["rules"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["rule"] == rule)
            .map(|r| r["actions"].clone())
            .unwrap_or_default();
        let names: &[&str] = match (alert, mode) {
            (true, _) => &["alert"],
            (false, "block") => &["deny", "kill"],
            (false, _) => &["would_deny", "would_kill"],
        };
        names
            .iter()
            .filter_map(|a| actions[*a].as_u64())
            .sum::<u64>()
    };
    for expected in seen {
        assert!(
            acted(expected.rule, expected.alert) > 0,
            "{mode}: rule {} not in the report as {}: {report:#}",
            expected.rule,
            if expected.alert { "alerting" } else { "acting" }
        );
    }
    let md = Command::new(host::enforcer_bin())
        .args(["report", "--audit-log"])
        .arg(audit)
        .output()
        .unwrap();
    let md = String::from_utf8_lossy(&md.stdout);
    assert_eq!(
        md.contains("would have acted"),
        mode == "monitor",
        "the dry run's summary: {md}"
    );
    println!(
        "{mode}: enforcer report lists the {} fixtures' rules",
        seen.len()
    );
}

#[test]
fn default_policy_stops_the_catalog_fixtures_in_block_mode() {
    if !can_run("default_policy_stops_the_catalog_fixtures_in_block_mode") {
        return;
    }
    run_suite("block");
}

#[test]
fn default_policy_dry_run_lets_every_fixture_run_and_names_the_rule() {
    if !can_run("default_policy_dry_run_lets_every_fixture_run_and_names_the_rule") {
        return;
    }
    run_suite("monitor");
}
