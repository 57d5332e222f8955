//! Self-test of the DNS fixtures without the engine: `stub-dns` on ephemeral loopback ports and
//! `dns-client` with every `--via` mode. Checks the answers, NXDOMAIN for unlisted names, the
//! record file (one line per query, with its transport), the exit codes and the errno of a
//! failing call. No root, loopback only, every wait bounded.
//!
//! `cargo test -p enforcer-integration --test dns_fixtures_selftest`. Without an IPv6 loopback
//! the IPv6 case prints `SKIPPED: no ::1` and passes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod selftest;

use std::{
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::{SocketAddr, TcpListener, TcpStream, UdpSocket},
    path::PathBuf,
    process::{Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use hickory_proto::{
    op::{Message, MessageType, OpCode, Query},
    rr::{Name, RecordType},
};
use selftest::{Server, run_bounded};
use serde_json::Value;

const STUB_DNS: &str = env!("CARGO_BIN_EXE_stub-dns");
const DNS_CLIENT: &str = env!("CARGO_BIN_EXE_dns-client");

/// The name the stub answers, as the engine tests use it.
const POOL: &str = "pool.example-miner.test";
/// Every `--via` mode and the transport the stub sees it on.
const VIAS: [(&str, &str); 7] = [
    ("sendto", "udp"),
    ("send", "udp"),
    ("sendmsg", "udp"),
    ("sendmmsg", "udp"),
    ("write", "udp"),
    ("tcp", "tcp"),
    ("tcp-writev", "tcp"),
];

/// A running `stub-dns`, stopped with SIGKILL on drop.
struct Stub {
    server: Server,
    /// (udp, tcp) per `--listen`.
    addrs: Vec<(SocketAddr, SocketAddr)>,
    record: PathBuf,
    _dir: tempfile::TempDir,
}

impl Stub {
    /// Starts the stub on `listen` with `--answer` for each of `answers`, waits for its READY
    /// lines (10 s at most).
    fn start(listen: &[&str], answers: &[&str]) -> Stub {
        let dir = tempfile::tempdir().unwrap();
        let record = dir.path().join("queries.jsonl");
        let mut cmd = Command::new(STUB_DNS);
        for addr in listen {
            cmd.args(["--listen", addr]);
        }
        for answer in answers {
            cmd.args(["--answer", answer]);
        }
        let mut child = cmd
            .arg("--record")
            .arg(&record)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start stub-dns");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let wanted = listen.len();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            for _ in 0..wanted {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let _ = tx.send(line);
            }
        });
        let mut stub = Stub {
            server: Server::new(child, "stub-dns"),
            addrs: Vec::new(),
            record,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        for _ in 0..wanted {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .expect("stub-dns printed its READY lines within 10 s");
            let words: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(words.len(), 3, "{line:?}");
            assert_eq!(words[0], "READY", "{line:?}");
            let udp: SocketAddr = words[1].parse().unwrap();
            let tcp: SocketAddr = words[2].parse().unwrap();
            assert!(udp.ip().is_loopback() && udp.port() != 0, "{line:?}");
            assert_eq!(udp, tcp, "same port for UDP and TCP: {line:?}");
            stub.addrs.push((udp, tcp));
        }
        stub
    }

    fn udp(&self) -> SocketAddr {
        self.addrs[0].0
    }

    /// Every record so far.
    fn records(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad record {l:?}: {e}")))
            .collect()
    }

    /// The record of the query with `id` (written before the reply, so present once the
    /// client has its answer).
    fn record_of(&self, id: &Value) -> Value {
        let recs = self.records();
        let mut found = recs.iter().filter(|r| &r["id"] == id);
        let rec = found
            .next()
            .unwrap_or_else(|| panic!("no record for id {id}: {recs:?}"))
            .clone();
        assert!(found.next().is_none(), "one record for id {id}: {recs:?}");
        rec
    }
}

/// What `dns-client` printed and its exit status.
#[derive(Debug)]
struct ClientRun {
    code: Option<i32>,
    out: Value,
    stderr: String,
}

fn dns_client(server: SocketAddr, name: &str, via: &str, extra: &[&str]) -> ClientRun {
    let mut cmd = Command::new(DNS_CLIENT);
    cmd.arg("--server")
        .arg(server.to_string())
        .args(["--name", name, "--via", via])
        .args(extra);
    let out = run_bounded(cmd);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one JSON line from {via}: {out:?}");
    let run = ClientRun {
        code: out.status.code(),
        out: serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("{stdout:?}: {e}")),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    // Every outcome is on stdout; stderr is for usage errors only.
    assert!(run.stderr.is_empty(), "{run:?}");
    run
}

fn answers(run: &ClientRun) -> Vec<&str> {
    run.out["answers"]
        .as_array()
        .unwrap_or_else(|| panic!("no answers: {run:?}"))
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect()
}

#[test]
fn every_via_gets_the_answer_and_is_recorded_with_its_transport() {
    let stub = Stub::start(
        &["127.0.0.1:0"],
        &[&format!("{POOL}=127.0.0.77"), &format!("{POOL}=fd00::77")],
    );
    for (via, transport) in VIAS {
        // Mixed case and a trailing dot: the stub compares names without either.
        let run = dns_client(stub.udp(), "Pool.Example-Miner.TEST.", via, &[]);
        assert_eq!(run.code, Some(0), "{via}: {run:?}");
        assert_eq!(run.out["ok"], true, "{via}: {run:?}");
        assert_eq!(run.out["via"], via, "{run:?}");
        assert_eq!(run.out["rcode"], 0, "{via}: {run:?}");
        let id = run.out["id"].as_u64().unwrap();
        let rec = stub.record_of(&run.out["id"]);
        assert_eq!(rec["transport"], transport, "{via}: {rec}");
        assert_eq!(rec["name"], POOL, "{via}: {rec}");
        assert_eq!(rec["type"], "A", "{via}: {rec}");
        assert_eq!(rec["rcode"], 0, "{via}: {rec}");
        if via == "sendmmsg" {
            // A and AAAA in one call, as glibc does: two replies.
            assert_eq!(answers(&run), ["127.0.0.77", "fd00::77"], "{run:?}");
            assert_eq!(run.out["replies"], 2, "{run:?}");
            let second = stub.record_of(&Value::from(id + 1));
            assert_eq!(
                (&second["transport"], &second["type"]),
                (&"udp".into(), &"AAAA".into())
            );
            assert_eq!(second["peer"], rec["peer"], "same socket: {second} {rec}");
        } else {
            assert_eq!(answers(&run), ["127.0.0.77"], "{via}: {run:?}");
            assert_eq!(run.out["replies"], 1, "{run:?}");
        }
        eprintln!("{via}: {}", run.out);
    }
    // One record per query: 6 runs, sendmmsg sent two.
    assert_eq!(stub.records().len(), VIAS.len() + 1, "{:?}", stub.records());
}

#[test]
fn an_unlisted_name_gets_nxdomain_with_every_via() {
    let stub = Stub::start(&["127.0.0.1:0"], &[&format!("{POOL}=127.0.0.77")]);
    for (via, transport) in VIAS {
        let run = dns_client(stub.udp(), "other.example-miner.test", via, &[]);
        assert_eq!(run.code, Some(0), "{via}: {run:?}");
        assert_eq!(run.out["ok"], true, "{via}: {run:?}");
        assert_eq!(run.out["rcode"], 3, "{via}: {run:?}");
        assert!(answers(&run).is_empty(), "{via}: {run:?}");
        let rec = stub.record_of(&run.out["id"]);
        assert_eq!(rec["transport"], transport, "{via}: {rec}");
        assert_eq!(rec["name"], "other.example-miner.test", "{rec}");
        assert_eq!(rec["rcode"], 3, "{rec}");
    }
}

#[test]
fn aaaa_queries_and_a_name_without_that_type() {
    let stub = Stub::start(
        &["127.0.0.1:0"],
        &[
            &format!("{POOL}=127.0.0.77"),
            "v6only.test=fd00::1",
            "V6ONLY.test.=fd00::2",
        ],
    );
    let run = dns_client(stub.udp(), "v6only.test", "sendto", &["--type", "AAAA"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(answers(&run), ["fd00::1", "fd00::2"], "{run:?}");
    assert_eq!(stub.record_of(&run.out["id"])["type"], "AAAA");
    // Listed, but no address of the asked type: an empty NOERROR answer.
    let run = dns_client(stub.udp(), POOL, "sendmsg", &["--type", "aaaa"]);
    assert_eq!(
        (run.code, &run.out["rcode"]),
        (Some(0), &0.into()),
        "{run:?}"
    );
    assert!(answers(&run).is_empty(), "{run:?}");
    // sendmmsg with --type AAAA sends AAAA first, then A.
    let run = dns_client(stub.udp(), POOL, "sendmmsg", &["--type", "AAAA"]);
    assert_eq!(answers(&run), ["127.0.0.77"], "{run:?}");
    assert_eq!(stub.record_of(&run.out["id"])["type"], "AAAA");
}

#[test]
fn an_ipv6_loopback_listener() {
    if UdpSocket::bind("[::1]:0").is_err() {
        eprintln!("SKIPPED: no ::1 (an_ipv6_loopback_listener)");
        return;
    }
    let stub = Stub::start(
        &["127.0.0.1:0", "[::1]:0"],
        &[&format!("{POOL}=127.0.0.77")],
    );
    let (udp6, tcp6) = stub.addrs[1];
    assert!(udp6.is_ipv6() && tcp6.is_ipv6());
    for via in ["sendto", "write", "tcp"] {
        let run = dns_client(udp6, POOL, via, &[]);
        assert_eq!(answers(&run), ["127.0.0.77"], "{via}: {run:?}");
        let rec = stub.record_of(&run.out["id"]);
        assert!(rec["peer"].as_str().unwrap().starts_with("[::1]:"), "{rec}");
    }
}

/// The errno `sendto(2)` gives for `addr` in this process, if it fails.
fn sendto_errno(addr: SocketAddr) -> Option<i32> {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.send_to(b"\0", addr).err()?.raw_os_error()
}

#[test]
fn a_failing_send_or_connect_is_reported_with_its_errno() {
    // The loopback broadcast address without SO_BROADCAST: the kernel refuses the send
    // (sendto/sendmsg) or the connect (the connected modes) before any packet leaves.
    let broadcast: SocketAddr = "127.255.255.255:53".parse().unwrap();
    let Some(errno) = sendto_errno(broadcast) else {
        eprintln!("SKIPPED: sendto {broadcast} does not fail here");
        return;
    };
    for (via, stage) in [
        ("sendto", "send"),
        ("sendmsg", "send"),
        ("send", "connect"),
        ("write", "connect"),
        ("sendmmsg", "connect"),
    ] {
        let run = dns_client(broadcast, POOL, via, &[]);
        assert_eq!(run.code, Some(3), "{via}: {run:?}");
        assert_eq!(run.out["ok"], false, "{via}: {run:?}");
        assert_eq!(run.out["stage"], stage, "{via}: {run:?}");
        assert_eq!(run.out["errno"], errno, "{via}: {run:?}");
    }
    // TCP to a port nothing listens on: connect fails with ECONNREFUSED.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let run = dns_client(closed, POOL, "tcp", &[]);
    assert_eq!(run.code, Some(3), "{run:?}");
    assert_eq!(
        (&run.out["stage"], &run.out["errno"]),
        (&"connect".into(), &libc::ECONNREFUSED.into()),
        "{run:?}"
    );
}

#[test]
fn no_answer_exits_4_within_its_deadline() {
    // A UDP socket that receives and never answers.
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let start = Instant::now();
    let run = dns_client(silent.local_addr().unwrap(), POOL, "sendto", &[]);
    let took = start.elapsed();
    assert_eq!(run.code, Some(4), "{run:?}");
    assert_eq!(run.out["stage"], "recv", "{run:?}");
    assert_eq!(run.out["errno"], libc::ETIMEDOUT, "{run:?}");
    assert!(took >= Duration::from_millis(2900), "took {took:?}");
    assert!(took < Duration::from_secs(6), "took {took:?}");
    silent
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let mut buf = [0u8; 512];
    let (len, _) = silent.recv_from(&mut buf).unwrap();
    let query = Message::from_vec(&buf[..len]).unwrap();
    assert_eq!(query.queries[0].name.to_ascii(), format!("{POOL}."));

    // A connected UDP socket to a closed port learns ECONNREFUSED when it receives.
    let closed = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let run = dns_client(closed, POOL, "send", &[]);
    assert_eq!(run.code, Some(4), "{run:?}");
    assert_eq!(run.out["stage"], "recv", "{run:?}");
    assert_eq!(run.out["errno"], libc::ECONNREFUSED, "{run:?}");
}

fn framed_query(id: u16, name: &str) -> Vec<u8> {
    let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
    msg.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    let bytes = msg.to_vec().unwrap();
    let mut framed = u16::try_from(bytes.len()).unwrap().to_be_bytes().to_vec();
    framed.extend_from_slice(&bytes);
    framed
}

#[test]
fn tcp_serves_pipelined_queries_on_one_connection() {
    let stub = Stub::start(&["127.0.0.1:0"], &[&format!("{POOL}=127.0.0.77")]);
    let mut stream = TcpStream::connect(stub.addrs[0].1).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut both = framed_query(101, POOL);
    both.extend_from_slice(&framed_query(102, "nothing.test"));
    stream.write_all(&both).unwrap();
    for (id, rcode, count) in [(101, 0, 1), (102, 3, 0)] {
        let mut prefix = [0u8; 2];
        stream.read_exact(&mut prefix).unwrap();
        let mut reply = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
        stream.read_exact(&mut reply).unwrap();
        let reply = Message::from_vec(&reply).unwrap();
        assert_eq!(reply.metadata.id, id);
        assert_eq!(u16::from(reply.metadata.response_code), rcode);
        assert_eq!(reply.answers.len(), count);
    }
    let transports: Vec<Value> = stub
        .records()
        .iter()
        .map(|r| r["transport"].clone())
        .collect();
    assert_eq!(transports, ["tcp", "tcp"]);
}

#[test]
fn stub_exits_0_on_sigterm_and_refuses_bad_usage() {
    let mut stub = Stub::start(&["127.0.0.1:0", "127.0.0.1:0"], &[]);
    assert_ne!(stub.addrs[0], stub.addrs[1]);
    assert_eq!(stub.server.stop(), Some(0));
    for args in [
        &["--answer", "x=1.2.3.4"][..],
        &["--listen", "192.0.2.1:53"],
        &["--listen", "127.0.0.1:0", "--answer", "x"],
        &["--listen", "127.0.0.1:0", "--answer", "x=not-an-ip"],
        &["--listen", "127.0.0.1:0", "--ttl", "-1"],
    ] {
        let out = run_bounded({
            let mut cmd = Command::new(STUB_DNS);
            cmd.args(args);
            cmd
        });
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
    }
    // A UDP port already taken: 1.
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let out = run_bounded({
        let mut cmd = Command::new(STUB_DNS);
        cmd.arg("--listen")
            .arg(taken.local_addr().unwrap().to_string());
        cmd
    });
    assert_eq!(out.status.code(), Some(1), "{out:?}");

    for args in [
        &["--server", "127.0.0.1:53", "--name", POOL, "--type", "MX"][..],
        &[
            "--server",
            "127.0.0.1:53",
            "--name",
            POOL,
            "--via",
            "carrier-pigeon",
        ],
        &["--server", "localhost:53", "--name", POOL],
        &["--server", "127.0.0.1:53", "--name", "a..b"],
    ] {
        let out = run_bounded({
            let mut cmd = Command::new(DNS_CLIENT);
            cmd.args(args);
            cmd
        });
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
    }
}
