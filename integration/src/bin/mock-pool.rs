//! Mock stratum mining pool for the network fixtures (catalog F10, F13, N5). Tests talk to this
//! server on loopback instead of a real pool.
//!
//! ```text
//! mock-pool --listen ADDR [--listen ADDR ...] --record FILE
//! ```
//!
//! - `--listen ADDR`: an `IP:PORT` literal (no host names, so no DNS lookup), repeatable. Port 0
//!   binds an ephemeral port. Ports below 1024 (F10 uses 443) need root or
//!   `CAP_NET_BIND_SERVICE`.
//! - `--record FILE`: created if missing and appended to; one JSON object per line, written with
//!   a single `write(2)` each (the file is unbuffered, so every line is on disk when written):
//!   - `{"listen":L,"peer":P,"connection":"opened"}` on accept;
//!   - `{"listen":L,"peer":P,"bytes":N,"line":"..."}` per message received, where `line` is the
//!     text without its `\n` (and without a `\r` before it; bytes that are not UTF-8 are replaced
//!     by U+FFFD) and `N` the bytes received for it, newline included. A last line cut off by
//!     the end of the connection is recorded too, with `"partial":true`;
//!   - `{"listen":L,"peer":P,"error":"line too long","bytes":N}` when 64 KiB arrive without a
//!     newline (the connection is then closed);
//!   - `{"listen":L,"peer":P,"connection":"closed","bytes_total":N,"reason":R}` when a
//!     connection ends, `R` one of `eof`, `idle timeout`, `line too long`, `read error: ...`,
//!     `write error: ...`;
//!   - `{"listen":L,"peer":P,"connection":"refused","reason":"too many connections"}`.
//!
//!   `L` is the bound address (the real port when `--listen` gave port 0), `P` the client's.
//!
//! Once every listener is bound it prints one line on stdout, `READY ADDR [ADDR ...]`, the bound
//! addresses in the order of the `--listen` options. Errors go to stderr; a listener that cannot
//! be bound exits with status 1, bad usage with status 2.
//!
//! Shutdown: SIGTERM (or SIGINT) makes it exit with status 0 without cutting a record line in
//! half. Stdin is not read.
//!
//! Replies, chosen per message by its `"method"` (the connection remembers the dialect its
//! `mining.subscribe` announced):
//! - stratum v1: `mining.subscribe` -> `[[["mining.set_difficulty",ID],["mining.notify",ID]],
//!   EXTRANONCE1,4]`; `mining.authorize` -> `true`, then a `mining.set_difficulty` and a
//!   `mining.notify` notification; `mining.submit`, `mining.extranonce.subscribe` -> `true`;
//! - EthereumStratum/1.0.0 (`mining.subscribe` whose second parameter is
//!   `EthereumStratum/1.0.0`): `[["mining.notify",ID,"EthereumStratum/1.0.0"],EXTRANONCE]` with a
//!   2-byte hex extranonce; `mining.authorize` -> `true`, then `mining.set_difficulty` and an
//!   ethereum-style `mining.notify` (`[job, seedhash, headerhash, true]`);
//! - Monero/CryptoNote: `login` -> `{"id":SESSION,"job":{...},"extensions":["keepalive"],
//!   "status":"OK"}`; `submit` -> `{"status":"OK"}`; `keepalived` -> `{"status":"KEEPALIVED"}`;
//! - any other method, or none: error `{"code":-32601,"message":"Method not found"}`;
//! - a line that is not JSON: error `-32700 Parse error` with id `null`; an empty line: nothing.
//!
//! Replies repeat the request's `id` and, when the request had one, its `"jsonrpc"` member.
//!
//! Bounds: 64 KiB per line (newline included), 64 connections at a time over all listeners
//! (more are closed at once and recorded as refused), a connection idle for 60 s is closed, a reply that cannot be
//! written within 5 s ends the connection.

use std::{
    fs::File,
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::{SocketAddr, TcpListener, TcpStream},
    path::PathBuf,
    process::ExitCode,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use enforcer_integration::connection_limit::{ConnectionLimit, Slot};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
use serde_json::{Value, json};

/// Longest line accepted, terminating newline included.
const MAX_LINE: usize = 64 * 1024;
/// Most connections served at the same time.
const MAX_CONNECTIONS: usize = 64;
/// A connection that sends nothing for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on writing one reply.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// A mock stratum pool on loopback addresses; usage errors exit with status 2.
#[derive(Debug, clap::Parser)]
struct Args {
    /// Address to listen on, an IP:PORT literal (port 0: any free port); repeatable.
    #[arg(long, required = true)]
    listen: Vec<SocketAddr>,
    /// File receiving one JSON line per received message and connection event.
    #[arg(long)]
    record: PathBuf,
}

/// The record file, shared by all connections; one whole line per write.
struct Recorder {
    file: Mutex<File>,
}

impl Recorder {
    fn record(&self, value: &Value) {
        let mut line = value.to_string();
        line.push('\n');
        let mut file = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(err) = file.write_all(line.as_bytes()).and_then(|()| file.flush()) {
            eprintln!("mock-pool: cannot write the record file: {err}");
        }
    }
}

/// Per-connection state: the dialect announced by `mining.subscribe` and the ids handed out.
struct Session {
    conn_id: u64,
    ethereum: bool,
    jobs: u64,
}

fn unix_time() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A deterministic hex string of `len` characters, different per `seed`.
fn fake_hex(seed: u64, len: usize) -> String {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = String::with_capacity(len + 16);
    while out.len() < len {
        // xorshift64
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.push_str(&format!("{state:016x}"));
    }
    out.truncate(len);
    out
}

impl Session {
    fn new(conn_id: u64) -> Self {
        Session {
            conn_id,
            ethereum: false,
            jobs: 0,
        }
    }

    fn next_job(&mut self) -> String {
        self.jobs += 1;
        format!("{:x}{:04x}", self.conn_id, self.jobs)
    }

    /// The lines to send back for one received line (without its newline).
    fn answer(&mut self, line: &str) -> Vec<Value> {
        if line.trim().is_empty() {
            return Vec::new();
        }
        let request: Value = match serde_json::from_str(line) {
            Ok(value) => value,
            Err(_) => {
                return vec![json!({
                    "id": null,
                    "jsonrpc": "2.0",
                    "error": {"code": -32700, "message": "Parse error"},
                })];
            }
        };
        let id = request.get("id").cloned().unwrap_or(Value::Null);
        let jsonrpc = request.get("jsonrpc").cloned();
        let method = request.get("method").and_then(Value::as_str).unwrap_or("");
        let params = request.get("params").cloned().unwrap_or(Value::Null);
        let reply = |body: (&str, Value)| {
            let mut reply = serde_json::Map::new();
            reply.insert("id".into(), id.clone());
            if let Some(v) = &jsonrpc {
                reply.insert("jsonrpc".into(), v.clone());
            }
            let (key, value) = body;
            if key == "result" {
                reply.insert("result".into(), value);
                reply.insert("error".into(), Value::Null);
            } else {
                reply.insert("error".into(), value);
            }
            Value::Object(reply)
        };
        let ok = |value: Value| reply(("result", value));
        match method {
            "mining.subscribe" => {
                let second = params.get(1).and_then(Value::as_str);
                self.ethereum = second.is_some_and(|p| p.starts_with("EthereumStratum/"));
                let sub = fake_hex(self.conn_id, 32);
                if self.ethereum {
                    let extranonce = format!("{:04x}", self.conn_id & 0xffff);
                    vec![ok(json!([
                        ["mining.notify", sub, "EthereumStratum/1.0.0"],
                        extranonce
                    ]))]
                } else {
                    let extranonce1 = format!("{:08x}", self.conn_id & 0xffff_ffff);
                    vec![ok(json!([
                        [["mining.set_difficulty", sub], ["mining.notify", sub]],
                        extranonce1,
                        4
                    ]))]
                }
            }
            "mining.authorize" => {
                let job = self.next_job();
                let seed = self.conn_id.wrapping_add(self.jobs);
                let (difficulty, notify) = if self.ethereum {
                    (
                        json!(0.5),
                        json!([job, fake_hex(seed, 64), fake_hex(seed ^ 0xff, 64), true]),
                    )
                } else {
                    (
                        json!(1),
                        json!([
                            job,
                            fake_hex(seed, 64),
                            format!("01000000010000000000000000000000{}", fake_hex(seed, 32)),
                            "ffffffff01000000000000000000000000",
                            [],
                            "20000000",
                            "1d00ffff",
                            format!("{:08x}", unix_time() & 0xffff_ffff),
                            true
                        ]),
                    )
                };
                vec![
                    ok(json!(true)),
                    json!({"id": null, "method": "mining.set_difficulty", "params": [difficulty]}),
                    json!({"id": null, "method": "mining.notify", "params": notify}),
                ]
            }
            "mining.submit" | "mining.extranonce.subscribe" => vec![ok(json!(true))],
            "login" => {
                let job_id = self.next_job();
                let seed = self.conn_id.wrapping_add(self.jobs);
                vec![ok(json!({
                    "id": fake_hex(seed ^ 0x5555, 32),
                    "job": {
                        "blob": fake_hex(seed, 152),
                        "job_id": job_id,
                        "target": "b88d0600",
                        "algo": "rx/0",
                        "height": 3_000_000,
                        "seed_hash": fake_hex(seed ^ 0xaaaa, 64),
                    },
                    "extensions": ["keepalive"],
                    "status": "OK",
                }))]
            }
            "submit" => vec![ok(json!({"status": "OK"}))],
            "keepalived" => vec![ok(json!({"status": "KEEPALIVED"}))],
            _ => vec![reply((
                "error",
                json!({"code": -32601, "message": "Method not found"}),
            ))],
        }
    }
}

/// Connections being served, over all listeners.
static CONNECTIONS: ConnectionLimit = ConnectionLimit::new(MAX_CONNECTIONS);

/// What [`serve`] reports to the recorder.
enum Event<'a> {
    /// A message: the bytes received for it (newline included), its text without the line end,
    /// and whether it ended with a newline (only the last one of a connection may not).
    Line {
        bytes: usize,
        text: &'a [u8],
        complete: bool,
    },
    /// [`MAX_LINE`] bytes without a newline.
    TooLong { bytes: usize },
}

/// Serves one connection until it ends; returns the bytes received and why it ended.
fn serve(stream: TcpStream, conn_id: u64, on_event: &dyn Fn(Event<'_>)) -> (u64, String) {
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let mut writer = match stream.try_clone() {
        Ok(writer) => writer,
        Err(err) => return (0, format!("read error: cannot clone the socket: {err}")),
    };
    let mut reader = BufReader::with_capacity(8192, stream);
    let mut session = Session::new(conn_id);
    let mut total: u64 = 0;
    let limit = u64::try_from(MAX_LINE).unwrap_or(u64::MAX);
    loop {
        let mut buf = Vec::new();
        let read = (&mut reader).take(limit).read_until(b'\n', &mut buf);
        total += u64::try_from(buf.len()).unwrap_or(u64::MAX);
        match read {
            Ok(0) => return (total, "eof".to_owned()),
            Ok(bytes) => {
                let complete = buf.last() == Some(&b'\n');
                if !complete && bytes >= MAX_LINE {
                    on_event(Event::TooLong { bytes });
                    return (total, "line too long".to_owned());
                }
                let mut text = buf.as_slice();
                if let Some(rest) = text.strip_suffix(b"\n") {
                    text = rest.strip_suffix(b"\r").unwrap_or(rest);
                }
                on_event(Event::Line {
                    bytes,
                    text,
                    complete,
                });
                if !complete {
                    // read_until stopped short of the limit without a newline: end of stream.
                    return (total, "eof".to_owned());
                }
                let line = String::from_utf8_lossy(text);
                for reply in session.answer(&line) {
                    let mut out = reply.to_string();
                    out.push('\n');
                    if let Err(err) = writer.write_all(out.as_bytes()) {
                        return (total, format!("write error: {err}"));
                    }
                }
            }
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return (total, "idle timeout".to_owned());
            }
            Err(err) => return (total, format!("read error: {err}")),
        }
    }
}

/// Serves one accepted connection and records it; `slot` is given back before the `closed`
/// record, so a client that sees that record can count on a free slot.
fn handle(
    stream: TcpStream,
    listen: SocketAddr,
    peer: SocketAddr,
    conn_id: u64,
    slot: Slot,
    rec: &Recorder,
) {
    let listen = listen.to_string();
    let peer = peer.to_string();
    rec.record(&json!({"listen": listen, "peer": peer, "connection": "opened"}));
    let on_event = |event: Event<'_>| match event {
        Event::Line {
            bytes,
            text,
            complete,
        } => {
            let line = String::from_utf8_lossy(text);
            let mut record = json!({"listen": listen, "peer": peer, "bytes": bytes, "line": line});
            if !complete {
                record["partial"] = json!(true);
            }
            rec.record(&record);
        }
        Event::TooLong { bytes } => rec.record(&json!({
            "listen": listen, "peer": peer, "error": "line too long", "bytes": bytes,
        })),
    };
    let (total, reason) = serve(stream, conn_id, &on_event);
    drop(slot);
    rec.record(&json!({
        "listen": listen, "peer": peer, "connection": "closed",
        "bytes_total": total, "reason": reason,
    }));
}

fn accept_loop(listener: TcpListener, listen: SocketAddr, rec: Arc<Recorder>) {
    static NEXT_CONN: AtomicU64 = AtomicU64::new(1);
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(conn) => conn,
            Err(err) => {
                // EMFILE and friends: back off instead of spinning.
                eprintln!("mock-pool: accept on {listen}: {err}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let Some(slot) = CONNECTIONS.take() else {
            rec.record(&json!({
                "listen": listen.to_string(), "peer": peer.to_string(),
                "connection": "refused", "reason": "too many connections",
            }));
            drop(stream);
            continue;
        };
        let conn_id = NEXT_CONN.fetch_add(1, Ordering::SeqCst);
        let rec = Arc::clone(&rec);
        let spawned = std::thread::Builder::new()
            .name(format!("conn-{conn_id}"))
            .spawn(move || handle(stream, listen, peer, conn_id, slot, &rec));
        if let Err(err) = spawned {
            // The closure (with its slot and stream) was dropped: the count is already back.
            eprintln!("mock-pool: cannot start a connection thread: {err}");
        }
    }
}

fn main() -> ExitCode {
    let args = <Args as clap::Parser>::parse();

    // Block the shutdown signals in every thread (threads inherit the mask) so that only the
    // main thread's sigwait receives them.
    let mut shutdown = SigSet::empty();
    shutdown.add(Signal::SIGTERM);
    shutdown.add(Signal::SIGINT);
    if let Err(err) = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&shutdown), None) {
        eprintln!("mock-pool: cannot block SIGTERM: {err}");
        return ExitCode::from(1);
    }

    let file = match File::options().create(true).append(true).open(&args.record) {
        Ok(file) => file,
        Err(err) => {
            eprintln!("mock-pool: {}: {err}", args.record.display());
            return ExitCode::from(1);
        }
    };
    let rec = Arc::new(Recorder {
        file: Mutex::new(file),
    });

    let mut listeners = Vec::new();
    for addr in &args.listen {
        match TcpListener::bind(addr).and_then(|l| Ok((l.local_addr()?, l))) {
            Ok((bound, listener)) => listeners.push((bound, listener)),
            Err(err) => {
                eprintln!("mock-pool: cannot listen on {addr}: {err}");
                return ExitCode::from(1);
            }
        }
    }
    let ready: Vec<String> = listeners.iter().map(|(a, _)| a.to_string()).collect();
    for (bound, listener) in listeners {
        let rec = Arc::clone(&rec);
        let spawned = std::thread::Builder::new()
            .name(format!("listen-{bound}"))
            .spawn(move || accept_loop(listener, bound, rec));
        if let Err(err) = spawned {
            eprintln!("mock-pool: cannot start the listener thread for {bound}: {err}");
            return ExitCode::from(1);
        }
    }
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "READY {}", ready.join(" "));
        let _ = out.flush();
    }

    match shutdown.wait() {
        Ok(signal) => eprintln!("mock-pool: {signal}, exiting"),
        Err(err) => eprintln!("mock-pool: sigwait: {err}, exiting"),
    }
    // Hold the record lock so no line is cut in half, then leave without unwinding the threads.
    let _file = rec
        .file
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    std::process::exit(0)
}
