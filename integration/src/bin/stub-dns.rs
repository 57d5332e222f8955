//! Stub DNS resolver for the DNS fixtures: answers `A`/`AAAA` queries for a fixed table of names
//! on loopback addresses, over UDP and TCP, so tests never touch a real resolver.
//!
//! ```text
//! stub-dns --listen ADDR [--listen ADDR ...] [--answer NAME=IP ...] [--ttl SECS] [--record FILE]
//! ```
//!
//! - `--listen ADDR`: a loopback `IP:PORT` literal, repeatable. Each binds a UDP socket and a TCP
//!   listener on the same address and port; port 0 picks a free port that is free for both (up
//!   to 32 tries). A non-loopback address is a usage error.
//! - `--answer NAME=IP`: repeatable. An IPv4 address answers `A` queries for NAME, an IPv6 one
//!   `AAAA` queries; a name may be given several addresses. Names are compared without case and
//!   without a trailing dot.
//! - `--ttl SECS`: TTL of every answer, default 60.
//! - `--record FILE`: created if missing and appended to, one JSON object per query received,
//!   written with a single `write(2)`:
//!   `{"transport":"udp"|"tcp","peer":P,"id":N,"name":NAME,"type":T,"rcode":R}` where NAME is
//!   the first question's name (lowercase, no trailing dot), T its type (`A`, `AAAA`, ...,
//!   `TYPE<n>`) and R the rcode answered. A message that is not a query with a question is
//!   recorded as `{"transport":..,"peer":P,"error":REASON}`.
//!
//! Answers: a listed name gets its addresses of the queried type (none for another type: an
//! empty NOERROR answer); an unlisted name gets NXDOMAIN; a query that does not decode gets
//! FORMERR (when it has an id), an opcode other than QUERY gets NOTIMP; a response is not
//! answered. The question is echoed, RD copied, RA and AA set. Only the first question is
//! answered. Replies are not truncated for UDP, so keep the answers few.
//!
//! Once everything is bound it prints, for each `--listen` in order, one line
//! `READY <udp addr> <tcp addr>` on stdout (the bound addresses, the same port for both).
//! Errors go to stderr; an address that cannot be bound exits with status 1, bad usage with 2.
//! SIGTERM (or SIGINT) makes it exit with status 0 without cutting a record line in half. Stdin
//! is not read.
//!
//! Bounds: a UDP datagram is read into a 64 KiB buffer; a TCP message is at most 65535 bytes
//! (its length prefix); 16 TCP connections at a time (more are closed at once), each closed
//! after 5 s without a query; a reply that cannot be written within 5 s ends the connection.

use std::{
    collections::HashMap,
    fs::File,
    io::{Read as _, Write as _},
    net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket},
    path::PathBuf,
    process::ExitCode,
    sync::{Arc, Mutex},
    time::Duration,
};

use enforcer_integration::connection_limit::ConnectionLimit;
use hickory_proto::{
    op::{Message, MessageType, OpCode, ResponseCode},
    rr::{
        Name, RData, Record, RecordType,
        rdata::{A, AAAA},
    },
};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
use serde_json::{Value, json};

/// TCP connections served at the same time.
const MAX_CONNECTIONS: usize = 16;
/// A TCP connection without a query for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on writing one TCP reply.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Tries to find a port free for both UDP and TCP when `--listen` asks for port 0.
const PORT_TRIES: usize = 32;

/// A stub DNS resolver on loopback addresses; usage errors exit with status 2.
#[derive(Debug, clap::Parser)]
struct Args {
    /// Loopback IP:PORT to serve UDP and TCP on (port 0: any free port); repeatable.
    #[arg(long, required = true)]
    listen: Vec<SocketAddr>,
    /// NAME=IP: answer A (IPv4) or AAAA (IPv6) queries for NAME with IP; repeatable.
    #[arg(long = "answer", value_parser = parse_answer)]
    answers: Vec<(String, IpAddr)>,
    /// TTL of the answers, in seconds.
    #[arg(long, default_value_t = 60)]
    ttl: u32,
    /// File receiving one JSON line per query.
    #[arg(long)]
    record: Option<PathBuf>,
}

/// `NAME=IP` of `--answer`.
fn parse_answer(arg: &str) -> Result<(String, IpAddr), String> {
    let (name, ip) = arg
        .split_once('=')
        .ok_or_else(|| format!("{arg:?} is not NAME=IP"))?;
    let ip: IpAddr = ip
        .parse()
        .map_err(|err| format!("{ip:?} is not an IP address: {err}"))?;
    let name = normalize(name);
    if name.is_empty() {
        return Err(format!("{arg:?} has an empty name"));
    }
    Ok((name, ip))
}

/// Lowercase, without the trailing dot.
fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// A decoded name in the form of `--answer` names (escaped presentation form, IDNA as sent).
fn name_text(name: &Name) -> String {
    let text = name.to_lowercase().to_ascii();
    text.strip_suffix('.').unwrap_or(&text).to_owned()
}

fn type_text(rtype: RecordType) -> String {
    match rtype {
        RecordType::Unknown(code) => format!("TYPE{code}"),
        known => known.to_string(),
    }
}

/// The record file (optional), one whole line per write.
struct Recorder {
    file: Option<Mutex<File>>,
}

impl Recorder {
    fn record(&self, value: &Value) {
        let Some(file) = &self.file else { return };
        let mut line = value.to_string();
        line.push('\n');
        let mut file = file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(err) = file.write_all(line.as_bytes()).and_then(|()| file.flush()) {
            eprintln!("stub-dns: cannot write the record file: {err}");
        }
    }
}

/// Names and their addresses, and the TTL to answer with.
struct Zone {
    names: HashMap<String, Vec<IpAddr>>,
    ttl: u32,
}

impl Zone {
    /// The reply to one received message (`None`: send nothing) and its record line.
    fn answer(
        &self,
        request: &[u8],
        transport: &str,
        peer: SocketAddr,
    ) -> (Option<Vec<u8>>, Value) {
        let peer = peer.to_string();
        let refuse = |reason: String, reply: Option<Message>| {
            let bytes = reply.and_then(|msg| msg.to_vec().ok());
            (
                bytes,
                json!({"transport": transport, "peer": peer, "error": reason}),
            )
        };
        let id = match request {
            [hi, lo, ..] => Some(u16::from_be_bytes([*hi, *lo])),
            _ => None,
        };
        let query = match Message::from_vec(request) {
            Ok(query) => query,
            Err(err) => {
                let reply =
                    id.map(|id| Message::error_msg(id, OpCode::Query, ResponseCode::FormErr));
                return refuse(format!("undecodable: {err}"), reply);
            }
        };
        let meta = &query.metadata;
        if meta.message_type != MessageType::Query {
            return refuse("not a query".to_owned(), None);
        }
        if meta.op_code != OpCode::Query {
            let reply = Message::error_msg(meta.id, meta.op_code, ResponseCode::NotImp);
            return refuse(format!("opcode {}", u8::from(meta.op_code)), Some(reply));
        }
        let Some(question) = query.queries.first() else {
            let reply = Message::error_msg(meta.id, meta.op_code, ResponseCode::FormErr);
            return refuse("no question".to_owned(), Some(reply));
        };

        let mut reply = Message::response(meta.id, OpCode::Query);
        reply.metadata.recursion_desired = meta.recursion_desired;
        reply.metadata.recursion_available = true;
        reply.metadata.authoritative = true;
        reply.add_query(question.clone());
        let name = name_text(&question.name);
        match self.names.get(&name) {
            None => reply.metadata.response_code = ResponseCode::NXDomain,
            Some(ips) => {
                for ip in ips {
                    let data = match (ip, question.query_type) {
                        (IpAddr::V4(v4), RecordType::A) => RData::A(A(*v4)),
                        (IpAddr::V6(v6), RecordType::AAAA) => RData::AAAA(AAAA(*v6)),
                        _ => continue,
                    };
                    reply.add_answer(Record::from_rdata(question.name.clone(), self.ttl, data));
                }
            }
        }
        let record = json!({
            "transport": transport,
            "peer": peer,
            "id": meta.id,
            "name": name,
            "type": type_text(question.query_type),
            "rcode": u16::from(reply.metadata.response_code),
        });
        match reply.to_vec() {
            Ok(bytes) => (Some(bytes), record),
            Err(err) => refuse(format!("cannot encode the reply: {err}"), None),
        }
    }
}

fn serve_udp(socket: UdpSocket, zone: &Zone, rec: &Recorder) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let (len, peer) = match socket.recv_from(&mut buf) {
            Ok(got) => got,
            Err(err) => {
                eprintln!("stub-dns: udp recv: {err}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let (reply, record) = zone.answer(buf.get(..len).unwrap_or_default(), "udp", peer);
        rec.record(&record);
        if let Some(reply) = reply
            && let Err(err) = socket.send_to(&reply, peer)
        {
            eprintln!("stub-dns: udp reply to {peer}: {err}");
        }
    }
}

/// Connections being served over all TCP listeners.
static CONNECTIONS: ConnectionLimit = ConnectionLimit::new(MAX_CONNECTIONS);

/// Serves length-prefixed queries on one connection until EOF, an error or the idle timeout.
fn serve_tcp_connection(mut stream: TcpStream, peer: SocketAddr, zone: &Zone, rec: &Recorder) {
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    loop {
        let mut prefix = [0u8; 2];
        if stream.read_exact(&mut prefix).is_err() {
            return;
        }
        // At most 65535 bytes: the prefix is a u16.
        let mut request = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
        if let Err(err) = stream.read_exact(&mut request) {
            rec.record(&json!({
                "transport": "tcp", "peer": peer.to_string(),
                "error": format!("message cut short: {err}"),
            }));
            return;
        }
        let (reply, record) = zone.answer(&request, "tcp", peer);
        rec.record(&record);
        let Some(reply) = reply else { continue };
        let Ok(len) = u16::try_from(reply.len()) else {
            eprintln!("stub-dns: reply of {} bytes too long for TCP", reply.len());
            return;
        };
        let mut framed = len.to_be_bytes().to_vec();
        framed.extend_from_slice(&reply);
        if let Err(err) = stream.write_all(&framed) {
            eprintln!("stub-dns: tcp reply to {peer}: {err}");
            return;
        }
    }
}

fn serve_tcp(listener: TcpListener, zone: &Arc<Zone>, rec: &Arc<Recorder>) {
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(conn) => conn,
            Err(err) => {
                eprintln!("stub-dns: tcp accept: {err}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let Some(slot) = CONNECTIONS.take() else {
            eprintln!("stub-dns: too many connections, closing {peer}");
            continue;
        };
        let zone = Arc::clone(zone);
        let rec = Arc::clone(rec);
        let spawned = std::thread::Builder::new()
            .name(format!("tcp-{peer}"))
            .spawn(move || {
                serve_tcp_connection(stream, peer, &zone, &rec);
                drop(slot);
            });
        if let Err(err) = spawned {
            eprintln!("stub-dns: cannot start a connection thread: {err}");
        }
    }
}

/// Binds UDP and TCP on `addr`, on the same port; port 0 tries ports until both are free.
fn bind_pair(addr: SocketAddr) -> std::io::Result<(UdpSocket, TcpListener)> {
    let tries = if addr.port() == 0 { PORT_TRIES } else { 1 };
    let mut last = None;
    for _ in 0..tries {
        let udp = UdpSocket::bind(addr)?;
        let bound = udp.local_addr()?;
        match TcpListener::bind(bound) {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(err) => last = Some(err),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no port free for both UDP and TCP")))
}

fn main() -> ExitCode {
    let args = <Args as clap::Parser>::parse();
    if let Some(addr) = args.listen.iter().find(|a| !a.ip().is_loopback()) {
        eprintln!("stub-dns: --listen {addr}: only loopback addresses are served");
        return ExitCode::from(2);
    }

    // Block the shutdown signals in every thread (threads inherit the mask) so that only the
    // main thread's sigwait receives them.
    let mut shutdown = SigSet::empty();
    shutdown.add(Signal::SIGTERM);
    shutdown.add(Signal::SIGINT);
    if let Err(err) = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&shutdown), None) {
        eprintln!("stub-dns: cannot block SIGTERM: {err}");
        return ExitCode::from(1);
    }

    let file = match &args.record {
        None => None,
        Some(path) => match File::options().create(true).append(true).open(path) {
            Ok(file) => Some(Mutex::new(file)),
            Err(err) => {
                eprintln!("stub-dns: {}: {err}", path.display());
                return ExitCode::from(1);
            }
        },
    };
    let rec = Arc::new(Recorder { file });
    let mut names: HashMap<String, Vec<IpAddr>> = HashMap::new();
    for (name, ip) in args.answers {
        names.entry(name).or_default().push(ip);
    }
    let zone = Arc::new(Zone {
        names,
        ttl: args.ttl,
    });

    let mut bound = Vec::new();
    for addr in &args.listen {
        match bind_pair(*addr) {
            Ok(pair) => bound.push(pair),
            Err(err) => {
                eprintln!("stub-dns: cannot serve UDP and TCP on {addr}: {err}");
                return ExitCode::from(1);
            }
        }
    }
    let mut ready = Vec::new();
    for (udp, tcp) in bound {
        let (Ok(udp_addr), Ok(tcp_addr)) = (udp.local_addr(), tcp.local_addr()) else {
            eprintln!("stub-dns: cannot read a bound address");
            return ExitCode::from(1);
        };
        ready.push(format!("READY {udp_addr} {tcp_addr}"));
        let (zone_u, rec_u) = (Arc::clone(&zone), Arc::clone(&rec));
        let (zone_t, rec_t) = (Arc::clone(&zone), Arc::clone(&rec));
        let spawned = std::thread::Builder::new()
            .name(format!("udp-{udp_addr}"))
            .spawn(move || serve_udp(udp, &zone_u, &rec_u))
            .and_then(|_| {
                std::thread::Builder::new()
                    .name(format!("tcp-{tcp_addr}"))
                    .spawn(move || serve_tcp(tcp, &zone_t, &rec_t))
            });
        if let Err(err) = spawned {
            eprintln!("stub-dns: cannot start the threads for {udp_addr}: {err}");
            return ExitCode::from(1);
        }
    }
    {
        let mut out = std::io::stdout().lock();
        for line in &ready {
            let _ = writeln!(out, "{line}");
        }
        let _ = out.flush();
    }

    match shutdown.wait() {
        Ok(signal) => eprintln!("stub-dns: {signal}, exiting"),
        Err(err) => eprintln!("stub-dns: sigwait: {err}, exiting"),
    }
    // Hold the record lock so no line is cut in half, then leave without unwinding the threads.
    let _file = rec
        .file
        .as_ref()
        .map(|f| f.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    std::process::exit(0)
}
