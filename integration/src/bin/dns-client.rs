//! DNS client fixture: sends one query (two for `sendmmsg`) with a chosen system call and prints
//! the outcome as one JSON line, so tests can check that the engine sees, denies or kills exactly
//! that send.
//!
//! ```text
//! dns-client --server IP:PORT --name NAME [--type A|AAAA]
//!            [--via sendto|send|sendmsg|sendmmsg|write|tcp|tcp-writev] [--linger-ms MS]
//! ```
//!
//! - `--server IP:PORT`: an address literal (no host names, so no lookup of its own).
//! - `--name NAME`: the name queried, sent as given (case kept); `--type`: `A` (default) or
//!   `AAAA`, any case. Each query has RD set and a fresh id.
//! - `--via` (default `sendto`), every UDP socket is made with `socket(2)` and never `bind(2)`:
//!   - `sendto`: `sendto(2)` with the server address on an unconnected socket;
//!   - `send`: `connect(2)` the UDP socket, then `send(2)` (glibc issues the `sendto` system
//!     call with no address);
//!   - `write`: `connect(2)`, then `write(2)`;
//!   - `sendmsg`: `sendmsg(2)` with the server address in `msg_name`, unconnected;
//!   - `sendmmsg`: like glibc's resolver, `connect(2)` then one `sendmmsg(2)` carrying two
//!     queries: `--type` first, then the other of A/AAAA. If the kernel takes only the first, the
//!     second is sent by another `sendmmsg(2)`, whose error (if any) is the one reported;
//!   - `tcp`: `connect(2)` a TCP socket, then ONE `write(2)` of the 2-byte length prefix and the
//!     message together (the engine sees the prefix and the message in the same buffer); the
//!     reply is read as a length-prefixed message;
//!   - `tcp-writev`: like glibc's resolver over TCP, ONE `writev(2)` with the 2-byte prefix and
//!     the message as two iovecs (any rest a short write leaves goes out with `write(2)`).
//!
//! Output, one line on stdout, flushed before exit:
//! - `{"ok":true,"via":V,"id":ID,"rcode":R,"answers":["1.2.3.4",...],"replies":N}`: `ID` the
//!   (first) query's id (the second of `sendmmsg` has ID+1), `rcode` of the reply to the first
//!   query, `answers` the A/AAAA addresses of every reply in order, `replies` how many replies
//!   came (1, or 2 for `sendmmsg`). Exit 0.
//! - `{"ok":false,"via":V,"id":ID,"stage":S,"errno":E,"error":TEXT}` with `S` one of `socket`,
//!   `connect`, `send` and `E` the errno of that failing system call (1 = EPERM when the
//!   engine refuses the send). Exit 3.
//! - `{"ok":false,"via":V,"id":ID,"stage":"recv","errno":E,"error":TEXT}`: no answer; `E` is 110
//!   (ETIMEDOUT) when nothing answered within 3 s, or the errno of a failed receive (e.g. 111
//!   ECONNREFUSED on a connected UDP socket). Exit 4.
//! - `--linger-ms MS`: after a failure is printed, the client sleeps MS before exiting, so a
//!   kill that follows a refused send (the engine's daemon kills after the kernel refused) finds
//!   it alive.
//! - Usage errors (clap, or a name that is not a DNS name): exit 2, message on stderr.
//!
//! Bounded: the TCP connect waits at most 2 s and the answer at most 3 s after the send; a reply
//! is at most 65535 bytes. Datagrams from another address, with another id or that do not decode
//! as a response are skipped.

use std::{
    io::{Read as _, Write as _},
    net::{IpAddr, SocketAddr, TcpStream, UdpSocket},
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd, RawFd},
    process::ExitCode,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use enforcer_integration::{
    sockaddr::SockAddr,
    stratum::{WriteCall, send_all},
    syscall::progress,
};
use hickory_proto::{
    op::{Message, MessageType, OpCode, Query},
    rr::{Name, RData, RecordType},
};
use serde_json::{Value, json};

/// Longest wait for the answer, counted from the send.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(3);
/// Longest wait for the TCP handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Via {
    /// `sendto(2)` with the address, unconnected.
    Sendto,
    /// `connect(2)` then `send(2)`.
    Send,
    /// `sendmsg(2)` with the address in `msg_name`, unconnected.
    Sendmsg,
    /// `connect(2)` then one `sendmmsg(2)` with two queries.
    Sendmmsg,
    /// `connect(2)` then `write(2)`.
    Write,
    /// TCP, prefix and message in one `write(2)`.
    Tcp,
    /// TCP, prefix and message as two iovecs of one `writev(2)`.
    TcpWritev,
}

impl Via {
    fn name(self) -> &'static str {
        match self {
            Via::Sendto => "sendto",
            Via::Send => "send",
            Via::Sendmsg => "sendmsg",
            Via::Sendmmsg => "sendmmsg",
            Via::Write => "write",
            Via::Tcp => "tcp",
            Via::TcpWritev => "tcp-writev",
        }
    }
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum QType {
    #[value(name = "A")]
    A,
    #[value(name = "AAAA")]
    Aaaa,
}

impl QType {
    fn record_type(self) -> RecordType {
        match self {
            QType::A => RecordType::A,
            QType::Aaaa => RecordType::AAAA,
        }
    }

    fn other(self) -> QType {
        match self {
            QType::A => QType::Aaaa,
            QType::Aaaa => QType::A,
        }
    }
}

/// Sends one DNS query with a chosen system call and prints the outcome as JSON; usage errors
/// exit with status 2.
#[derive(Debug, clap::Parser)]
struct Args {
    /// DNS server, an IP:PORT literal.
    #[arg(long)]
    server: SocketAddr,
    /// Name to query.
    #[arg(long)]
    name: String,
    /// Query type.
    #[arg(long = "type", value_enum, ignore_case = true, default_value = "A")]
    qtype: QType,
    /// The system call that sends the query.
    #[arg(long, value_enum, default_value = "sendto")]
    via: Via,
    /// After a failure, stay alive this long before exiting (so a kill that follows a refused
    /// send can land); at most 10,000.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    linger_ms: u64,
}

/// Where a failure happened.
#[derive(Clone, Copy, Debug)]
enum Stage {
    Socket,
    Connect,
    Send,
    Recv,
}

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Stage::Socket => "socket",
            Stage::Connect => "connect",
            Stage::Send => "send",
            Stage::Recv => "recv",
        }
    }
}

/// A failed step: the stage and the error of its system call.
#[derive(Debug)]
struct Failure {
    stage: Stage,
    err: std::io::Error,
}

impl Failure {
    fn at(stage: Stage) -> impl FnOnce(std::io::Error) -> Failure {
        move |err| Failure { stage, err }
    }

    fn timeout() -> Failure {
        Failure {
            stage: Stage::Recv,
            err: std::io::Error::from_raw_os_error(libc::ETIMEDOUT),
        }
    }
}

/// The replies collected: (rcode, addresses) per reply, in query order.
type Replies = Vec<(u16, Vec<IpAddr>)>;

/// Runs a system call that returns -1 with errno on failure, retrying on EINTR.
fn retry(mut call: impl FnMut() -> isize) -> std::io::Result<usize> {
    loop {
        let n = call();
        if n >= 0 {
            return Ok(usize::try_from(n).unwrap_or(0));
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// A datagram send must take the whole message.
fn whole(sent: usize, len: usize) -> std::io::Result<()> {
    if sent == len {
        Ok(())
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::WriteZero,
            format!("sent {sent} of {len} bytes"),
        ))
    }
}

/// A fresh UDP socket of the server's family, neither bound nor connected.
fn udp_socket(server: SocketAddr) -> Result<UdpSocket, Failure> {
    let af = if server.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: socket(2) takes no pointers; the result is checked before use.
    let fd = unsafe { libc::socket(af, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(Failure::at(Stage::Socket)(std::io::Error::last_os_error()));
    }
    // SAFETY: `fd` is a socket just created above and owned by nothing else.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    Ok(UdpSocket::from(owned))
}

fn connect(fd: RawFd, server: &SockAddr) -> Result<(), Failure> {
    retry(|| {
        // SAFETY: `fd` is an open socket; `server` points to a live sockaddr of `server.len()`.
        let rc = unsafe { libc::connect(fd, server.as_ptr(), server.len()) };
        isize::try_from(rc).unwrap_or(-1)
    })
    .map(|_| ())
    .map_err(Failure::at(Stage::Connect))
}

/// Sends one datagram with `sendto(2)`, `send(2)`, `write(2)` or `sendmsg(2)`.
fn send_one(fd: RawFd, via: Via, msg: &[u8], server: &SockAddr) -> std::io::Result<()> {
    let ptr = msg.as_ptr().cast::<libc::c_void>();
    let len = msg.len();
    let sent = match via {
        Via::Sendto => retry(|| {
            // SAFETY: `fd` is an open socket, `ptr`/`len` a live byte slice, `server` a live
            // sockaddr of `server.len()` bytes.
            unsafe { libc::sendto(fd, ptr, len, 0, server.as_ptr(), server.len()) }
        })?,
        // SAFETY: `fd` is an open, connected socket; `ptr`/`len` a live byte slice.
        Via::Send => retry(|| unsafe { libc::send(fd, ptr, len, 0) })?,
        // SAFETY: as above; write(2) reads at most `len` bytes from `ptr`.
        Via::Write => retry(|| unsafe { libc::write(fd, ptr, len) })?,
        Via::Sendmsg => {
            let mut iov = libc::iovec {
                iov_base: ptr.cast_mut(),
                iov_len: len,
            };
            // SAFETY: msghdr is plain data for which all-zero is a valid value (no name, no
            // buffers, no control data); the fields used are set below.
            let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
            hdr.msg_name = server.as_ptr().cast_mut().cast();
            hdr.msg_namelen = server.len();
            hdr.msg_iov = &raw mut iov;
            hdr.msg_iovlen = 1;
            // SAFETY: `hdr` points to the live `server` address and one iovec over the live
            // message; sendmsg(2) only reads them (the buffer is not written through).
            retry(|| unsafe { libc::sendmsg(fd, &raw const hdr, 0) })?
        }
        Via::Sendmmsg | Via::Tcp | Via::TcpWritev => {
            return Err(std::io::Error::other("not a single-datagram mode"));
        }
    };
    whole(sent, len)
}

/// Sends all `msgs` on the connected socket with `sendmmsg(2)`, one call for as many as the
/// kernel takes, another for the rest.
fn send_mmsg(fd: RawFd, msgs: &[Vec<u8>]) -> std::io::Result<()> {
    let mut iovs: Vec<libc::iovec> = msgs
        .iter()
        .map(|m| libc::iovec {
            iov_base: m.as_ptr().cast_mut().cast(),
            iov_len: m.len(),
        })
        .collect();
    let mut hdrs: Vec<libc::mmsghdr> = iovs
        .iter_mut()
        .map(|iov| {
            // SAFETY: mmsghdr is plain data for which all-zero is valid (no name: the socket
            // is connected); the iovec fields are set below.
            let mut hdr: libc::mmsghdr = unsafe { std::mem::zeroed() };
            hdr.msg_hdr.msg_iov = iov;
            hdr.msg_hdr.msg_iovlen = 1;
            hdr
        })
        .collect();
    let mut done = 0;
    while let Some(rest) = hdrs.get_mut(done..).filter(|r| !r.is_empty()) {
        let count = libc::c_uint::try_from(rest.len()).unwrap_or(1);
        // SAFETY: `rest` is `count` live mmsghdr, each pointing to one live iovec over a live
        // message; the kernel reads them and writes only `msg_len` of each.
        let n = unsafe { libc::sendmmsg(fd, rest.as_mut_ptr(), count, 0) };
        let Some(n) = progress(n as isize, "sendmmsg sent no message")? else {
            continue;
        };
        for (hdr, msg) in rest
            .iter()
            .zip(msgs.get(done..).unwrap_or_default())
            .take(n)
        {
            whole(usize::try_from(hdr.msg_len).unwrap_or(0), msg.len())?;
        }
        done += n;
    }
    Ok(())
}

/// The reply with `id`, if `bytes` decode as one: (rcode, A/AAAA addresses).
fn reply(bytes: &[u8], id: u16) -> Option<(u16, Vec<IpAddr>)> {
    let msg = Message::from_vec(bytes).ok()?;
    if msg.metadata.message_type != MessageType::Response || msg.metadata.id != id {
        return None;
    }
    let ips = msg
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
            _ => None,
        })
        .collect();
    Some((u16::from(msg.metadata.response_code), ips))
}

/// Waits for a reply to each of `ids` on a UDP socket until `deadline`; `from` filters the
/// source of an unconnected socket.
fn recv_udp(
    socket: &UdpSocket,
    ids: &[u16],
    from: Option<SocketAddr>,
    deadline: Instant,
) -> Result<Replies, Failure> {
    let mut got: Vec<Option<(u16, Vec<IpAddr>)>> = vec![None; ids.len()];
    let mut buf = vec![0u8; 65_535];
    while got.iter().any(Option::is_none) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Failure::timeout());
        }
        socket
            .set_read_timeout(Some(left))
            .map_err(Failure::at(Stage::Recv))?;
        let (len, peer) = match socket.recv_from(&mut buf) {
            Ok(got) => got,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(Failure::timeout());
            }
            Err(err) => return Err(Failure::at(Stage::Recv)(err)),
        };
        if from.is_some_and(|server| server != peer) {
            continue;
        }
        let bytes = buf.get(..len).unwrap_or_default();
        for (slot, id) in got.iter_mut().zip(ids) {
            if slot.is_none()
                && let Some(found) = reply(bytes, *id)
            {
                *slot = Some(found);
            }
        }
    }
    Ok(got.into_iter().flatten().collect())
}

/// Queries over UDP with the chosen call.
fn udp(args: &Args, queries: &[(u16, Vec<u8>)]) -> Result<Replies, Failure> {
    let server = SockAddr::new(args.server);
    let socket = udp_socket(args.server)?;
    let fd = socket.as_raw_fd();
    let connected = matches!(args.via, Via::Send | Via::Write | Via::Sendmmsg);
    if connected {
        connect(fd, &server)?;
    }
    let sent: &[(u16, Vec<u8>)] = if args.via == Via::Sendmmsg {
        let msgs: Vec<Vec<u8>> = queries.iter().map(|(_, m)| m.clone()).collect();
        send_mmsg(fd, &msgs).map_err(Failure::at(Stage::Send))?;
        queries
    } else {
        let first = queries.get(..1).unwrap_or_default();
        for (_, msg) in first {
            send_one(fd, args.via, msg, &server).map_err(Failure::at(Stage::Send))?;
        }
        first
    };
    let ids: Vec<u16> = sent.iter().map(|(id, _)| *id).collect();
    let from = (!connected).then_some(args.server);
    recv_udp(&socket, &ids, from, Instant::now() + ANSWER_TIMEOUT)
}

/// Reads exactly `buf.len()` bytes before `deadline`.
fn read_until(stream: &mut TcpStream, buf: &mut [u8], deadline: Instant) -> Result<(), Failure> {
    let mut filled = 0;
    while filled < buf.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Failure::timeout());
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(Failure::at(Stage::Recv))?;
        match stream.read(buf.get_mut(filled..).unwrap_or_default()) {
            Ok(0) => {
                return Err(Failure::at(Stage::Recv)(std::io::Error::from_raw_os_error(
                    libc::ECONNRESET,
                )));
            }
            Ok(n) => filled += n,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err(Failure::timeout());
            }
            Err(err) => return Err(Failure::at(Stage::Recv)(err)),
        }
    }
    Ok(())
}

/// Queries over TCP: prefix and message in one `write(2)` (or, `split`, as the two iovecs of
/// one `writev(2)`), then length-prefixed replies.
fn tcp(args: &Args, id: u16, msg: &[u8], split: bool) -> Result<Replies, Failure> {
    let mut stream = TcpStream::connect_timeout(&args.server, CONNECT_TIMEOUT)
        .map_err(Failure::at(Stage::Connect))?;
    let len = u16::try_from(msg.len())
        .map_err(|_| Failure::at(Stage::Send)(std::io::Error::from_raw_os_error(libc::EMSGSIZE)))?;
    let prefix = len.to_be_bytes();
    let mut framed = prefix.to_vec();
    framed.extend_from_slice(msg);
    let fd = stream.as_raw_fd();
    let mut rest = framed.as_slice();
    if split {
        let iov = [
            libc::iovec {
                iov_base: prefix.as_ptr().cast_mut().cast(),
                iov_len: prefix.len(),
            },
            libc::iovec {
                iov_base: msg.as_ptr().cast_mut().cast(),
                iov_len: msg.len(),
            },
        ];
        // SAFETY: `fd` is the open socket of `stream`; both iovecs describe live byte slices
        // that writev(2) only reads.
        let n = retry(|| unsafe { libc::writev(fd, iov.as_ptr(), 2) })
            .map_err(Failure::at(Stage::Send))?;
        rest = rest.get(n..).unwrap_or_default();
    }
    if !rest.is_empty() {
        send_all(fd, rest, WriteCall::Write).map_err(Failure::at(Stage::Send))?;
    }
    let deadline = Instant::now() + ANSWER_TIMEOUT;
    loop {
        let mut prefix = [0u8; 2];
        read_until(&mut stream, &mut prefix, deadline)?;
        let mut bytes = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
        read_until(&mut stream, &mut bytes, deadline)?;
        if let Some(found) = reply(&bytes, id) {
            return Ok(vec![found]);
        }
    }
}

/// A query for `name`/`rtype` with RD set.
fn query(id: u16, name: &Name, rtype: RecordType) -> Result<Vec<u8>, String> {
    let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(name.clone(), rtype));
    msg.to_vec()
        .map_err(|err| format!("cannot encode the query: {err}"))
}

/// A query id that differs between runs (no randomness needed: only the stub sees it).
fn fresh_id() -> u16 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mixed = (nanos ^ std::process::id().rotate_left(16)) & 0xffff;
    u16::try_from(mixed).unwrap_or(1)
}

/// Prints one line on stdout and flushes it; a closed stdout is ignored (the exit status still
/// tells the outcome).
fn say(value: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

fn main() -> ExitCode {
    let args = <Args as clap::Parser>::parse();
    let via = args.via.name();
    let name = match Name::from_ascii(&args.name) {
        Ok(name) => name,
        Err(err) => {
            eprintln!("dns-client: --name {:?}: {err}", args.name);
            return ExitCode::from(2);
        }
    };
    let id = fresh_id();
    let mut queries = Vec::new();
    let mut types = vec![args.qtype];
    if args.via == Via::Sendmmsg {
        types.push(args.qtype.other());
    }
    for (n, qtype) in (0u16..).zip(types) {
        match query(id.wrapping_add(n), &name, qtype.record_type()) {
            Ok(bytes) => queries.push((id.wrapping_add(n), bytes)),
            Err(err) => {
                eprintln!("dns-client: {err}");
                return ExitCode::from(2);
            }
        }
    }

    let outcome = match (args.via, queries.first()) {
        (Via::Tcp, Some((id, msg))) => tcp(&args, *id, msg, false),
        (Via::TcpWritev, Some((id, msg))) => tcp(&args, *id, msg, true),
        _ => udp(&args, &queries),
    };
    match outcome {
        Ok(replies) => {
            let rcode = replies.first().map_or(0, |(rcode, _)| *rcode);
            let answers: Vec<String> = replies
                .iter()
                .flat_map(|(_, ips)| ips.iter().map(IpAddr::to_string))
                .collect();
            say(&json!({
                "ok": true, "via": via, "id": id, "rcode": rcode, "answers": answers,
                "replies": replies.len(),
            }));
            ExitCode::SUCCESS
        }
        Err(Failure { stage, err }) => {
            let errno = err.raw_os_error();
            let text = errno.map_or_else(
                || err.to_string(),
                |e| nix::errno::Errno::from_raw(e).desc().to_owned(),
            );
            say(&json!({
                "ok": false, "via": via, "id": id, "stage": stage.name(), "errno": errno,
                "error": text,
            }));
            std::thread::sleep(Duration::from_millis(args.linger_ms));
            match stage {
                Stage::Recv => ExitCode::from(4),
                Stage::Socket | Stage::Connect | Stage::Send => ExitCode::from(3),
            }
        }
    }
}
