//! Self-test of the network fixtures (catalog F10, F13, N5) without the engine: `mock-pool`
//! on ephemeral loopback ports, `stratum-client` in every dialect with both write calls,
//! `fixtures/stratum_client.py`, and `fake-miner` (F17: its lookup and stratum steps). Checks that the pool records exactly the bytes each client sent
//! and answers in the client's dialect. No root, loopback only, every wait bounded.
//!
//! `cargo test -p enforcer-integration --test fixtures_selftest`. Without `python3` the Python
//! case prints `SKIPPED: no python3` and passes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod selftest;

use std::{
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::{SocketAddr, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use selftest::{Server, run_bounded};
use serde_json::Value;

const MOCK_POOL: &str = env!("CARGO_BIN_EXE_mock-pool");
const STRATUM_CLIENT: &str = env!("CARGO_BIN_EXE_stratum-client");
const FAKE_MINER: &str = env!("CARGO_BIN_EXE_fake-miner");
const STUB_DNS: &str = env!("CARGO_BIN_EXE_stub-dns");
const DNS_CLIENT: &str = env!("CARGO_BIN_EXE_dns-client");
const PY_CLIENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/stratum_client.py");

/// The exact first lines each dialect must send (an independent copy of the client's table).
const V1: &str =
    "{\"id\": 1, \"method\": \"mining.subscribe\", \"params\": [\"cpuminer/2.5.1\"]}\n";
const ETHEREUM: &str = "{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[\"ethminer/0.19.0\",\"EthereumStratum/1.0.0\"]}\n";
const MONERO: &str = "{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"login\",\"params\":{\"login\":\"4FAKEWALLETxxxxxxxxxxxxxxxx\",\"pass\":\"x\",\"agent\":\"XMRig/6.21.0 (Linux x86_64) libuv/1.44.2 gcc/12.2.0\",\"algo\":[\"rx/0\",\"cn/r\"]}}\n";
const JSONRPC: &str =
    "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"eth_blockNumber\",\"params\":[]}\n";

/// A running `mock-pool`, stopped with SIGTERM on drop.
struct Pool {
    server: Server,
    addrs: Vec<SocketAddr>,
    record: PathBuf,
    _dir: tempfile::TempDir,
}

impl Pool {
    /// Starts the pool with `listeners` ephemeral loopback listeners and waits for `READY`.
    fn start(listeners: usize) -> Pool {
        let dir = tempfile::tempdir().unwrap();
        let record = dir.path().join("record.jsonl");
        let mut cmd = Command::new(MOCK_POOL);
        for _ in 0..listeners {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        let mut child = cmd
            .arg("--record")
            .arg(&record)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start mock-pool");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let mut pool = Pool {
            server: Server::new(child, "mock-pool"),
            addrs: Vec::new(),
            record,
            _dir: dir,
        };
        let line = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("mock-pool printed no READY line within 10 s");
        let mut words = line.split_whitespace();
        assert_eq!(words.next(), Some("READY"), "mock-pool said {line:?}");
        pool.addrs = words.map(|w| w.parse().unwrap()).collect();
        assert_eq!(pool.addrs.len(), listeners, "READY line {line:?}");
        for addr in &pool.addrs {
            assert!(addr.ip().is_loopback() && addr.port() != 0, "{line:?}");
        }
        pool
    }

    /// Every record so far.
    fn records(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad record {l:?}: {e}")))
            .collect()
    }

    /// The records of one client connection, once its `closed` record is there (5 s at most).
    fn connection(&self, peer: &str) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let recs: Vec<Value> = self
                .records()
                .into_iter()
                .filter(|r| r["peer"] == peer)
                .collect();
            if recs.iter().any(|r| r["connection"] == "closed") {
                return recs;
            }
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "no closed record for {peer} within 5 s: {recs:?}\nall: {:?}",
                self.records()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// What a client printed.
#[derive(Debug)]
struct ClientRun {
    code: Option<i32>,
    /// The client's local address, from `CONNECTED <local> <peer>`.
    local: Option<String>,
    sent: Option<usize>,
    reply: Option<Value>,
    stdout: String,
    stderr: String,
}

fn parse_client(out: &Output) -> ClientRun {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let mut run = ClientRun {
        code: out.status.code(),
        local: None,
        sent: None,
        reply: None,
        stdout: stdout.clone(),
        stderr,
    };
    for line in stdout.lines() {
        if let Some(rest) = line.strip_prefix("CONNECTED ") {
            run.local = rest.split_whitespace().next().map(str::to_owned);
        } else if let Some(rest) = line.strip_prefix("SENT ") {
            run.sent = Some(rest.trim().parse().unwrap());
        } else if let Some(rest) = line.strip_prefix("REPLY ") {
            run.reply =
                Some(serde_json::from_str(rest).unwrap_or_else(|e| panic!("reply {rest:?}: {e}")));
        }
    }
    run
}

fn stratum_client(addr: SocketAddr, dialect: &str, call: &str, extra: &[&str]) -> ClientRun {
    let mut cmd = Command::new(STRATUM_CLIENT);
    cmd.arg("--connect")
        .arg(addr.to_string())
        .args(["--dialect", dialect, "--write-call", call])
        .args(extra);
    parse_client(&run_bounded(cmd))
}

/// Asserts the client succeeded and the pool recorded exactly `sent` on `listen` for it, and
/// returns the reply.
fn assert_delivered(pool: &Pool, listen: SocketAddr, run: &ClientRun, sent: &str) -> Value {
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.sent, Some(sent.len()), "{run:?}");
    let order: Vec<&str> = run
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(order, ["CONNECTED", "SENT", "REPLY"], "{run:?}");
    let peer = run.local.as_deref().expect("CONNECTED line");
    let recs = pool.connection(peer);
    let listen = listen.to_string();
    assert!(
        recs.iter().all(|r| r["listen"] == listen.as_str()),
        "{recs:?}"
    );
    let messages: Vec<&Value> = recs.iter().filter(|r| r.get("line").is_some()).collect();
    assert_eq!(messages.len(), 1, "exactly one message: {recs:?}");
    assert_eq!(messages[0]["line"], sent.trim_end_matches('\n'), "{recs:?}");
    assert_eq!(messages[0]["bytes"], sent.len(), "{recs:?}");
    assert!(messages[0].get("partial").is_none(), "{recs:?}");
    assert_eq!(recs[0]["connection"], "opened", "{recs:?}");
    let closed = recs.last().unwrap();
    assert_eq!(closed["connection"], "closed", "{recs:?}");
    assert_eq!(closed["bytes_total"], sent.len(), "{recs:?}");
    run.reply
        .clone()
        .unwrap_or_else(|| panic!("no REPLY: {run:?}"))
}

fn assert_v1_subscribed(reply: &Value) {
    assert_eq!(reply["id"], 1, "{reply}");
    assert!(reply["error"].is_null(), "{reply}");
    let result = reply["result"].as_array().expect("v1 result is an array");
    assert_eq!(result.len(), 3, "{reply}");
    let subs = result[0].as_array().unwrap();
    assert!(subs.iter().any(|s| s[0] == "mining.notify"), "{reply}");
    assert!(result[1].is_string(), "extranonce1: {reply}");
    assert_eq!(result[2], 4, "extranonce2 size: {reply}");
}

fn assert_ethereum_subscribed(reply: &Value) {
    assert_eq!(reply["id"], 1, "{reply}");
    assert!(reply["error"].is_null(), "{reply}");
    assert_eq!(reply["result"][0][0], "mining.notify", "{reply}");
    assert_eq!(reply["result"][0][2], "EthereumStratum/1.0.0", "{reply}");
    let extranonce = reply["result"][1].as_str().expect("extranonce");
    assert!(
        !extranonce.is_empty() && extranonce.bytes().all(|b| b.is_ascii_hexdigit()),
        "{reply}"
    );
}

fn assert_monero_logged_in(reply: &Value) {
    assert_eq!(reply["id"], 1, "{reply}");
    assert_eq!(reply["jsonrpc"], "2.0", "{reply}");
    assert!(reply["error"].is_null(), "{reply}");
    let result = &reply["result"];
    assert!(result["id"].is_string(), "{reply}");
    assert_eq!(result["status"], "OK", "{reply}");
    for key in ["blob", "job_id", "target", "seed_hash"] {
        assert!(result["job"][key].is_string(), "job.{key}: {reply}");
    }
}

#[test]
fn every_stratum_dialect_with_write_and_send_is_recorded_and_answered() {
    let pool = Pool::start(2);
    type ReplyCheck = fn(&Value);
    let cases: [(&str, &str, ReplyCheck); 3] = [
        ("v1", V1, assert_v1_subscribed),
        ("ethereum", ETHEREUM, assert_ethereum_subscribed),
        ("monero", MONERO, assert_monero_logged_in),
    ];
    for (dialect, sent, check) in cases {
        // One listener per write call, so both listeners are exercised.
        for (listen, call) in [(pool.addrs[0], "write"), (pool.addrs[1], "send")] {
            let run = stratum_client(listen, dialect, call, &["--expect-reply"]);
            let reply = assert_delivered(&pool, listen, &run, sent);
            check(&reply);
            eprintln!("{dialect} via {call}: recorded and answered");
        }
    }
}

#[test]
fn plain_json_rpc_gets_method_not_found() {
    let pool = Pool::start(1);
    for call in ["write", "send"] {
        let run = stratum_client(pool.addrs[0], "jsonrpc", call, &["--expect-reply"]);
        let reply = assert_delivered(&pool, pool.addrs[0], &run, JSONRPC);
        assert_eq!(reply["id"], 7, "{reply}");
        assert_eq!(reply["jsonrpc"], "2.0", "{reply}");
        assert_eq!(reply["error"]["code"], -32601, "{reply}");
        assert!(reply.get("result").is_none(), "{reply}");
    }
}

#[test]
fn python_client_logs_in() {
    let probe = Command::new("python3")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!("SKIPPED: no python3 (python_client_logs_in, fixture F13)");
        return;
    }
    let pool = Pool::start(1);
    let mut cmd = Command::new("python3");
    cmd.arg(PY_CLIENT)
        .arg(pool.addrs[0].ip().to_string())
        .arg(pool.addrs[0].port().to_string());
    let run = parse_client(&run_bounded(cmd));
    let reply = assert_delivered(&pool, pool.addrs[0], &run, MONERO);
    assert_monero_logged_in(&reply);
}

#[test]
fn python_client_reports_a_refused_connection() {
    if !Command::new("python3")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        eprintln!("SKIPPED: no python3 (python_client_reports_a_refused_connection)");
        return;
    }
    let port = closed_port();
    let mut cmd = Command::new("python3");
    cmd.args([PY_CLIENT, "127.0.0.1", &port.port().to_string()]);
    let run = parse_client(&run_bounded(cmd));
    assert_eq!(run.code, Some(4), "{run:?}");
    assert!(run.stderr.contains("CONNECT_FAILED"), "{run:?}");
}

/// One session per dialect beyond the first line: what a miner does next.
#[test]
fn pool_follows_each_dialect_through_a_session() {
    let pool = Pool::start(1);
    let session = |lines: &[&str], replies: usize| -> Vec<Value> {
        let mut stream = TcpStream::connect(pool.addrs[0]).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        for line in lines {
            stream.write_all(line.as_bytes()).unwrap();
        }
        let mut reader = BufReader::new(stream);
        (0..replies)
            .map(|_| {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
            })
            .collect()
    };

    // Stratum v1: subscribe, authorize -> true + set_difficulty + notify, submit -> true.
    let r = session(
        &[
            V1,
            "{\"id\": 2, \"method\": \"mining.authorize\", \"params\": [\"user.rig\", \"x\"]}\n",
            "{\"id\": 4, \"method\": \"mining.submit\", \"params\": [\"user.rig\", \"1\", \"00000000\", \"5f5e1000\", \"00000000\"]}\n",
        ],
        5,
    );
    assert_v1_subscribed(&r[0]);
    assert_eq!(
        (r[1]["id"].clone(), r[1]["result"].clone()),
        (2.into(), true.into())
    );
    assert_eq!(r[2]["method"], "mining.set_difficulty", "{r:?}");
    assert_eq!(r[3]["method"], "mining.notify", "{r:?}");
    assert_eq!(
        r[3]["params"].as_array().unwrap().len(),
        9,
        "v1 notify: {r:?}"
    );
    assert_eq!(
        (r[4]["id"].clone(), r[4]["result"].clone()),
        (4.into(), true.into())
    );

    // EthereumStratum/1.0.0: the notify after authorize has the ethereum shape.
    let r = session(
        &[
            ETHEREUM,
            "{\"id\":2,\"method\":\"mining.authorize\",\"params\":[\"0xFAKE.rig\",\"x\"]}\n",
        ],
        4,
    );
    assert_ethereum_subscribed(&r[0]);
    assert_eq!(r[1]["result"], true, "{r:?}");
    assert_eq!(r[2]["method"], "mining.set_difficulty", "{r:?}");
    assert_eq!(r[3]["method"], "mining.notify", "{r:?}");
    assert_eq!(
        r[3]["params"].as_array().unwrap().len(),
        4,
        "ethereum notify: {r:?}"
    );

    // Monero: login, submit, keepalived.
    let r = session(
        &[
            MONERO,
            "{\"id\":2,\"jsonrpc\":\"2.0\",\"method\":\"submit\",\"params\":{\"id\":\"s\",\"job_id\":\"1\",\"nonce\":\"00000000\",\"result\":\"00\"}}\n",
            "{\"id\":3,\"jsonrpc\":\"2.0\",\"method\":\"keepalived\",\"params\":{\"id\":\"s\"}}\n",
        ],
        3,
    );
    assert_monero_logged_in(&r[0]);
    assert_eq!(r[1]["result"]["status"], "OK", "{r:?}");
    assert_eq!(r[1]["id"], 2, "{r:?}");
    assert_eq!(r[2]["result"]["status"], "KEEPALIVED", "{r:?}");

    // Not JSON; no method; an unknown method.
    let r = session(
        &[
            "hello pool\n",
            "{\"id\":9}\n",
            "{\"id\":\"x\",\"method\":\"mining.bogus\"}\n",
        ],
        3,
    );
    assert_eq!(r[0]["error"]["code"], -32700, "{r:?}");
    assert!(r[0]["id"].is_null(), "{r:?}");
    assert_eq!(
        (r[1]["id"].clone(), r[1]["error"]["code"].clone()),
        (9.into(), (-32601).into())
    );
    assert_eq!(r[2]["id"], "x", "{r:?}");
    assert_eq!(r[2]["error"]["code"], -32601, "{r:?}");
}

#[test]
fn a_line_over_64_kib_ends_the_connection() {
    let pool = Pool::start(1);
    let mut stream = TcpStream::connect(pool.addrs[0]).unwrap();
    let peer = stream.local_addr().unwrap().to_string();
    stream
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    // The pool may reset the connection while we are still writing: that is the point.
    let _ = stream.write_all(&vec![b'a'; 70 * 1024]);
    let mut buf = [0u8; 64];
    // EOF or a reset; a timeout would mean the pool kept reading.
    match stream.read(&mut buf) {
        Ok(n) => assert_eq!(n, 0, "no reply to an over-long line"),
        Err(err) => assert!(
            !matches!(
                err.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "pool did not close the connection: {err}"
        ),
    }
    let recs = pool.connection(&peer);
    assert!(
        recs.iter()
            .any(|r| r["error"] == "line too long" && r["bytes"] == 64 * 1024),
        "{recs:?}"
    );
    let closed = recs.last().unwrap();
    assert_eq!(closed["reason"], "line too long", "{recs:?}");
}

#[test]
fn a_partial_last_line_is_recorded() {
    let pool = Pool::start(1);
    let mut stream = TcpStream::connect(pool.addrs[0]).unwrap();
    let peer = stream.local_addr().unwrap().to_string();
    stream.write_all(b"{\"id\":1,\"method\":\"lo").unwrap();
    drop(stream);
    let recs = pool.connection(&peer);
    let msg = recs.iter().find(|r| r.get("line").is_some()).unwrap();
    assert_eq!(msg["line"], "{\"id\":1,\"method\":\"lo", "{recs:?}");
    assert_eq!(msg["partial"], true, "{recs:?}");
    assert_eq!(recs.last().unwrap()["bytes_total"], 20, "{recs:?}");
}

/// A port nothing listens on (bound, then released).
fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

#[test]
fn client_exit_codes_for_connect_and_write_failures() {
    // Connection refused: 4.
    let run = stratum_client(closed_port(), "v1", "write", &[]);
    assert_eq!(run.code, Some(4), "{run:?}");
    assert!(run.stderr.starts_with("CONNECT_FAILED "), "{run:?}");
    assert!(run.stderr.contains("errno=111"), "{run:?}");

    // A peer that resets the connection before the first write: 3, with the errno.
    for call in ["write", "send"] {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            // Let the client's connect finish first: a reset during the handshake is a
            // connection failure (exit 4), not a write failure.
            std::thread::sleep(Duration::from_millis(200));
            reset(&stream);
        });
        let run = stratum_client(addr, "monero", call, &["--write-delay-ms", "800"]);
        server.join().unwrap();
        assert_eq!(run.code, Some(3), "{call}: {run:?}");
        let errno: i32 = run
            .stderr
            .strip_prefix("WRITE_FAILED errno=")
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{call}: {run:?}"));
        assert!(
            [libc::ECONNRESET, libc::EPIPE].contains(&errno),
            "{call}: {run:?}"
        );
        assert!(run.sent.is_none(), "{run:?}");
    }

    // Usage errors: 2.
    let run = parse_client(&run_bounded({
        let mut cmd = Command::new(STRATUM_CLIENT);
        cmd.args(["--connect", "127.0.0.1:1", "--dialect", "bogus"]);
        cmd
    }));
    assert_eq!(run.code, Some(2), "{run:?}");
}

/// Closes `stream` with an RST (SO_LINGER 0).
fn reset(stream: &TcpStream) {
    use std::os::fd::AsRawFd as _;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket fd and a pointer to a live `linger` of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&raw const linger).cast(),
            libc::socklen_t::try_from(std::mem::size_of::<libc::linger>()).unwrap(),
        )
    };
    assert_eq!(rc, 0, "SO_LINGER");
}

#[test]
fn client_without_a_reply_exits_5_within_its_deadline() {
    // A server that accepts and reads but never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(8)))
            .unwrap();
        let mut sink = Vec::new();
        let _ = stream.read_to_end(&mut sink);
        sink
    });
    let start = Instant::now();
    let run = stratum_client(addr, "v1", "write", &["--expect-reply"]);
    let took = start.elapsed();
    assert_eq!(run.code, Some(5), "{run:?}");
    assert!(run.stderr.starts_with("NO_REPLY"), "{run:?}");
    assert!(took < Duration::from_millis(6500), "took {took:?}");
    assert_eq!(server.join().unwrap(), V1.as_bytes());
}

#[test]
fn pool_exits_0_on_sigterm_and_refuses_bad_usage() {
    let mut pool = Pool::start(3);
    assert_eq!(pool.server.stop(), Some(0));
    for args in [
        &["--record", "/dev/null"][..],
        &["--listen", "localhost:1", "--record", "x"],
    ] {
        let out = run_bounded({
            let mut cmd = Command::new(MOCK_POOL);
            cmd.args(args);
            cmd
        });
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
    }
    // A port already taken: 1.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = run_bounded({
        let mut cmd = Command::new(MOCK_POOL);
        cmd.arg("--listen")
            .arg(taken.local_addr().unwrap().to_string())
            .arg("--record")
            .arg(dir.path().join("r.jsonl"));
        cmd
    });
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(Path::new(PY_CLIENT).exists());
}

#[test]
fn pool_serves_at_most_64_connections_at_a_time() {
    // The limit is over all listeners: 32 on each, then one more on either is refused.
    let pool = Pool::start(2);
    let held: Vec<TcpStream> = (0..64)
        .map(|i| TcpStream::connect(pool.addrs[i % 2]).unwrap())
        .collect();
    let start = Instant::now();
    while pool
        .records()
        .iter()
        .filter(|r| r["connection"] == "opened")
        .count()
        < 64
    {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "64 opened records"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut extra = TcpStream::connect(pool.addrs[0]).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let peer = extra.local_addr().unwrap().to_string();
    let mut buf = [0u8; 8];
    match extra.read(&mut buf) {
        Ok(n) => assert_eq!(n, 0),
        Err(err) => assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}"),
    }
    let refused = pool
        .records()
        .into_iter()
        .find(|r| r["peer"] == peer.as_str())
        .unwrap();
    assert_eq!(refused["connection"], "refused", "{refused}");

    // A slot frees up when a connection ends.
    drop(held);
    let start = Instant::now();
    while pool
        .records()
        .iter()
        .filter(|r| r["connection"] == "closed")
        .count()
        < 64
    {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "64 closed records"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let run = stratum_client(pool.addrs[0], "v1", "send", &["--expect-reply"]);
    assert_delivered(&pool, pool.addrs[0], &run, V1);
}

#[test]
fn fake_miner_spins_resolves_and_speaks_stratum_on_loopback_only() {
    let pool = Pool::start(1);
    let dir = tempfile::tempdir().unwrap();
    let stub_record = dir.path().join("stub.jsonl");
    let stub = enforcer_integration::dns_fixture::StubDns::start(
        Path::new(STUB_DNS),
        "127.0.0.1:0",
        &["pool.fake.test=127.0.0.77"],
        &stub_record,
    )
    .unwrap();
    let mut cmd = Command::new(FAKE_MINER);
    cmd.args(["--spin-threads", "2", "--spin-secs", "1", "--resolve"])
        .arg("pool.fake.test")
        .arg("--dns")
        .arg(stub.addr.to_string())
        .arg("--dns-client")
        .arg(DNS_CLIENT)
        .arg("--stratum")
        .arg(pool.addrs[0].to_string())
        .args(["--dialect", "monero"]);
    let out = run_bounded(cmd);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.first(), Some(&"SPINNING 2 1"), "{stdout}");
    let resolved: Value = serde_json::from_str(
        lines
            .iter()
            .find_map(|l| l.strip_prefix("RESOLVED "))
            .unwrap_or_else(|| panic!("no RESOLVED line: {stdout}")),
    )
    .unwrap();
    assert_eq!(resolved["answers"], serde_json::json!(["127.0.0.77"]));
    let sent = format!("STRATUM_SENT {}", MONERO.len());
    assert!(lines.contains(&sent.as_str()), "{stdout}");
    assert_eq!(lines.last(), Some(&"DONE"), "{stdout}");
    assert!(
        pool.records()
            .iter()
            .any(|r| r["line"].as_str() == MONERO.strip_suffix('\n')),
        "{:?}",
        pool.records()
    );
    let queries = enforcer_integration::dns_fixture::StubDns::queries(&stub_record);
    assert_eq!(queries.len(), 1, "{queries:?}");
    assert_eq!(queries[0]["name"], "pool.fake.test");

    for bad in [
        &["--stratum", "192.0.2.1:3333"][..],
        &["--resolve", "x.test", "--dns", "8.8.8.8:53"],
        &["--resolve", "x.test"],
        &["--spin-threads", "0"],
    ] {
        let mut cmd = Command::new(FAKE_MINER);
        cmd.args(["--spin-secs", "1"]).args(bad);
        let out = run_bounded(cmd);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{bad:?} must not start: {out:?}");
    }
}
