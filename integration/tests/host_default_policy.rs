//! The shipped policy (`policy/default`) against the catalog fixtures on the host (signal tier:
//! no BPF LSM here), in block mode and again in monitor mode (the catalog's DRY run).
//!
//! Block mode: F1, F5, F6 (miner names, killed in the kernel before user code), F2 and F11
//! (renamed or fileless miner with miner arguments, killed in userspace), F3 and F10 (a
//! renamed miner speaking stratum v1, EthereumStratum or CryptoNote to the mock pool), F9
//! (pool host and pool domain lookups), F13 (a Python stratum client), F7's command lines
//! (alerts) are each stopped or reported by the rule the policy documents for them. Monitor
//! mode: every one of them runs to its end and the audit log names the same rule with
//! `would_kill`. Both modes: N1 (grep of a stratum URL), N2 (a compiler run), N4 (ordinary
//! names containing "pool") and N5 (ordinary JSON-RPC on a pool port) raise nothing.
//! F4 (miner configured by environment) waits for exec environment capture (issue 4); F8 and
//! the file side of F7 wait for file events (issue 4); F12 is an lsm-tier case; F17 is in
//! `host_cpu.rs`. Loopback only: a stub resolver and a mock pool, never a real one.
//! Needs root; skips loudly otherwise (fails under ENFORCER_REQUIRE_HOST=1, as in CI).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod host;

use std::{
    io::{BufRead as _, BufReader},
    os::unix::process::ExitStatusExt as _,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};

use enforcer_integration::dns_fixture::{StubDns, dns_query};
use host::{Engine, can_run, install};
use serde_json::Value;

/// Engines are started one at a time: each would see the others' events.
static SERIAL: Mutex<()> = Mutex::new(());

const STUB_DNS: &str = env!("CARGO_BIN_EXE_stub-dns");
const DNS_CLIENT: &str = env!("CARGO_BIN_EXE_dns-client");
const MOCK_POOL: &str = env!("CARGO_BIN_EXE_mock-pool");
const STRATUM_CLIENT: &str = env!("CARGO_BIN_EXE_stratum-client");
const FAKE_MINER: &str = env!("CARGO_BIN_EXE_fake-miner");
const WRITE_MARKER: &str = env!("CARGO_BIN_EXE_write-marker");

/// Bounds a hang; records usually arrive within milliseconds.
const WAIT: Duration = Duration::from_secs(20);
/// How long a long-running fixture (the fake miner) may run before the test stops it.
const MINER_SECS: &str = "30";

/// Pool names the stub resolver answers, with loopback addresses nothing listens on.
const ANSWERS: [&str; 3] = [
    "eth-eu1.nanopool.org=127.0.0.78",
    "rx.supportxmr.com=127.0.0.78",
    "pool.ntp.org=127.0.0.2",
];

/// What a fixture did.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// SIGKILL ended it.
    Killed,
    /// It ran (to its end, or until the test stopped it).
    Ran,
}

/// The shipped policy directory.
fn default_policy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policy/default")
}

/// The mock pool, listening on three loopback ports (the catalog's 3333, 14444 and 443 stand
/// for "any port": the rules do not look at the port).
struct Pool {
    child: Child,
    addrs: Vec<String>,
}

impl Pool {
    fn start(dir: &Path) -> Pool {
        let mut child = Command::new(MOCK_POOL)
            .args([["--listen", "127.0.0.1:0"]; 3].concat())
            .arg("--record")
            .arg(dir.join("pool.jsonl"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addrs: Vec<String> = line
            .strip_prefix("READY ")
            .unwrap_or_else(|| panic!("mock-pool said {line:?}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        assert_eq!(addrs.len(), 3, "{line:?}");
        Pool { child, addrs }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Everything the fixtures use: a scratch directory, the stub resolver, the mock pool.
struct Bench {
    dir: tempfile::TempDir,
    stub: StubDns,
    pool: Pool,
}

impl Bench {
    fn new() -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let stub = StubDns::start(
            Path::new(STUB_DNS),
            "127.0.0.1:0",
            &ANSWERS,
            &dir.path().join("stub.jsonl"),
        )
        .unwrap();
        let pool = Pool::start(dir.path());
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
        let mut child = Command::new(exe)
            .args(["--spin-threads", "1", "--spin-secs", MINER_SECS])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        let record = engine.wait_for(WAIT, &format!("{rule} on {}", exe.display()), |r| {
            r["type"] == "action" && r["rule"] == rule && r["event"]["process"]["pid"] == pid
        });
        reap(&mut child, record["action"] == "kill")
    }

    fn lookup(&self, name: &str) -> Outcome {
        let run = dns_query(Path::new(DNS_CLIENT), self.stub.addr, name, "sendto").unwrap();
        if run.killed() {
            Outcome::Killed
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

/// The expected result of one fixture: the rule that must act and what the fixture sees in
/// block mode (monitor mode: it always runs, and the record says `would_*`).
struct Expect {
    fixture: &'static str,
    rule: &'static str,
    /// `kill` (block: SIGKILL) or `alert` (both modes: it runs, an alert record).
    action: &'static str,
    /// The acting process's comm, where the fixture has a fixed one.
    comm: Option<&'static str>,
}

/// Runs every positive fixture in `engine`, asserting each outcome for `mode`; returns what
/// must be in the audit log.
fn positives(bench: &Bench, engine: &mut Engine, mode: &str) -> Vec<(Expect, Outcome)> {
    let block = mode == "block";
    let kill = |outcome: Outcome, fixture: &str| {
        let want = if block { Outcome::Killed } else { Outcome::Ran };
        assert_eq!(outcome, want, "{fixture} in {mode} mode");
        outcome
    };
    let mut seen = Vec::new();
    let mut expect = |fixture, comm, rule, action, outcome| {
        seen.push((
            Expect {
                fixture,
                rule,
                action,
                comm,
            },
            outcome,
        ))
    };

    // F1, F5, F6: miner names, denied in the kernel (a kill at exec in the signal tier).
    let f1 = bench.marker_exec(
        "xmrig",
        &[
            "-o",
            "stratum+tcp://pool.supportxmr.com:3333",
            "-u",
            "4FAKE",
            "-p",
            "x",
            "--donate-level=1",
        ],
    );
    expect(
        "F1",
        Some("xmrig"),
        "miner-exec-name",
        "kill",
        kill(f1, "F1"),
    );
    let f5 = bench.marker_exec(
        "ethminer",
        &["-P", "stratum1+tcp://0xFAKE.rig@eth-eu1.nanopool.org:9999"],
    );
    expect(
        "F5",
        Some("ethminer"),
        "miner-exec-name",
        "kill",
        kill(f5, "F5"),
    );
    let f6 = bench.marker_exec(
        "minerd",
        &[
            "-a",
            "scrypt",
            "-o",
            "stratum+tcps://pool.test:3333",
            "-u",
            "u",
        ],
    );
    expect(
        "F6",
        Some("minerd"),
        "miner-exec-name",
        "kill",
        kill(f6, "F6"),
    );

    // F2: renamed, with a pool URL and miner flags: killed in userspace by its arguments.
    let f2 = bench.miner(
        engine,
        "kworker_upd",
        &[
            "--",
            "--url=stratum+ssl://gulf.moneroocean.stream:10128",
            "--cpu-priority=0",
        ],
        "miner-args-stratum-url",
    );
    expect(
        "F2",
        Some("kworker_upd"),
        "miner-args-stratum-url",
        "kill",
        kill(f2, "F2"),
    );
    expect(
        "F2",
        Some("kworker_upd"),
        "kernel-thread-name-exec",
        "alert",
        Outcome::Ran,
    );

    // F3 / F10: a renamed miner with no tell-tale arguments speaking stratum v1 (kernel kill
    // on the first write), and CryptoNote (userspace kill: the kernel sees only `login`).
    let stratum_v1 = ["--stratum", &bench.pool.addrs[0], "--dialect", "v1"];
    let f3 = bench.miner(engine, "app-worker", &stratum_v1, "stratum-v1-payload");
    expect(
        "F3",
        Some("app-worker"),
        "stratum-v1-payload",
        "kill",
        kill(f3, "F3"),
    );
    let cryptonote = ["--stratum", &bench.pool.addrs[2], "--dialect", "monero"];
    let f10 = bench.miner(
        engine,
        "app-worker-2",
        &cryptonote,
        "stratum-cryptonote-payload",
    );
    expect(
        "F10",
        Some("app-worker-2"),
        "stratum-cryptonote-payload",
        "kill",
        kill(f10, "F10"),
    );
    let f10 = bench.stratum("ethereum", 1);
    expect(
        "F10",
        Some("stratum-client"),
        "stratum-v1-payload",
        "kill",
        kill(f10, "F10"),
    );

    // F9: pool lookups, an exact pool host and a pool domain's sub-domain.
    let f9 = bench.lookup("eth-eu1.nanopool.org");
    expect(
        "F9",
        Some("dns-client"),
        "pool-host-lookup",
        "kill",
        kill(f9, "F9"),
    );
    let f9 = bench.lookup("rx.supportxmr.com");
    expect(
        "F9",
        Some("dns-client"),
        "pool-domain-lookup",
        "kill",
        kill(f9, "F9"),
    );

    // F11: the fake miner executed from a memfd, with miner flags.
    let memfd = memfd_copy(Path::new(FAKE_MINER));
    let exe = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&memfd));
    let f11 = Bench::miner_at(
        engine,
        Path::new(&exe),
        &["--", "--donate-level=1"],
        "miner-args-flags",
    );
    drop(memfd);
    expect("F11", None, "miner-args-flags", "kill", kill(f11, "F11"));

    // F7, command-line side: `modprobe msr allow_writes=on` and an exec of `wrmsr` (alerts;
    // stand-ins that only write their marker, so nothing touches the host's MSRs).
    let f7 = bench.marker_exec("modprobe", &["msr", "allow_writes=on"]);
    assert_eq!(f7, Outcome::Ran, "F7 modprobe is an alert");
    expect(
        "F7",
        Some("modprobe"),
        "msr-allow-writes-cmdline",
        "alert",
        f7,
    );
    let f7 = bench.marker_exec("wrmsr", &["0x1a4", "0xf"]);
    assert_eq!(f7, Outcome::Ran, "F7 wrmsr is an alert");
    expect("F7", Some("wrmsr"), "msr-wrmsr-exec", "alert", f7);

    // F13: a Python script logging in with CryptoNote stratum; the kill comes from userspace,
    // after the fact, so the script may have finished first (its record says so).
    if let Some(python) = python3() {
        let status = Command::new(python)
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/fixtures/stratum_client.py"
            ))
            .args(
                bench.pool.addrs[0]
                    .rsplit_once(':')
                    .map(|(h, p)| [h, p])
                    .unwrap(),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        let outcome = if status.signal() == Some(libc::SIGKILL) {
            Outcome::Killed
        } else {
            Outcome::Ran
        };
        println!("F13 python client in {mode} mode: {status}");
        expect(
            "F13",
            Some("python3"),
            "stratum-cryptonote-payload",
            "kill",
            outcome,
        );
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
    std::fs::write(&notes, "pool: stratum+tcp://pool.supportxmr.com:3333\n").unwrap();
    let status = Command::new("grep")
        .args(["stratum+tcp", notes.to_str().unwrap()])
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
    assert_eq!(bench.lookup("pool.ntp.org"), Outcome::Ran, "N4");
    // N5: ordinary JSON-RPC on a pool's port.
    assert_eq!(bench.stratum("jsonrpc", 0), Outcome::Ran, "N5");
}

fn python3() -> Option<&'static str> {
    ["/usr/bin/python3", "/usr/local/bin/python3"]
        .into_iter()
        .find(|p| Path::new(p).exists())
}

/// A memfd holding a copy of `src`, inherited by children (no close-on-exec).
fn memfd_copy(src: &Path) -> std::fs::File {
    use std::{io::Write as _, os::fd::FromRawFd as _};
    // SAFETY: memfd_create takes a NUL-terminated name and flags and returns a new fd or -1.
    let fd = unsafe { libc::memfd_create(c"fake-miner".as_ptr(), 0) };
    assert!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
    // SAFETY: `fd` is a new descriptor that nothing else owns.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    file.write_all(&std::fs::read(src).unwrap()).unwrap();
    file
}

/// Asserts the audit log of a run: each expected rule acted, in the mode's words, and nothing
/// acted on the negative fixtures or on rules no fixture triggers.
fn check_log(records: &[Value], seen: &[(Expect, Outcome)], mode: &str) {
    let actions: Vec<&Value> = records.iter().filter(|r| r["type"] == "action").collect();
    for (expect, outcome) in seen {
        let want = match (expect.action, mode) {
            ("alert", _) => "alert",
            (_, "block") => "kill",
            _ => "would_kill",
        };
        let hit = actions.iter().find(|r| {
            r["rule"] == expect.rule
                && r["action"] == want
                && expect
                    .comm
                    .is_none_or(|comm| r["event"]["process"]["comm"] == comm)
        });
        let hit = hit.unwrap_or_else(|| {
            panic!(
                "{} in {mode} mode: no `{want}` record of {}; actions: {actions:#?}",
                expect.fixture, expect.rule
            )
        });
        let tier = if mode == "block" { "signal" } else { "monitor" };
        assert_eq!(hit["tier"], tier, "{hit:#}");
        println!(
            "{} {mode}: {} {want} ({:?}, decided in {}, response {} us)",
            expect.fixture, expect.rule, outcome, hit["decided_in"], hit["report"]["response_us"]
        );
    }
    for r in &actions {
        let comm = r["event"]["process"]["comm"].as_str().unwrap_or_default();
        assert!(
            !["grep", "cc", "cc1", "as", "gcc"].contains(&comm),
            "N1/N2 must not fire: {r:#}"
        );
        assert_ne!(
            r["event"]["dns"]["question"]["name"], "pool.ntp.org",
            "N4 must not fire: {r:#}"
        );
        assert_ne!(
            r["event"]["payload"]["stratum"]["method"], "eth_blockNumber",
            "N5 must not fire: {r:#}"
        );
        assert!(
            seen.iter().any(|(e, _)| r["rule"] == e.rule)
                || r["rule"] == "cpu-sustained-high"
                || r["rule"] == "miner-args-flags"
                || r["rule"] == "miner-args-stratum-url",
            "an action no fixture explains: {r:#}"
        );
    }
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
    negatives(&bench);
    let seen = positives(&bench, &mut engine, mode);
    let last = seen.last().map(|(e, _)| e.rule).unwrap();
    engine.wait_for(WAIT, "the last fixture's record", |r| {
        r["type"] == "action" && r["rule"] == last
    });
    let records = engine.stop();
    check_log(&records, &seen, mode);
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
