//! Aborts the TCP connection of a segment the signal tier's egress hook refused.
//!
//! `cgroup_skb/egress` can drop a segment but not discard it: TCP keeps it queued and tries it
//! again until the connection times out (about 15 minutes for an open socket, 100 s for an
//! orphan), and were the engine stopped or the rule removed meanwhile, the next try would
//! deliver it. The daemon therefore asks the kernel to destroy the connection, the way
//! `ss -K` does: a `SOCK_DESTROY` request on a `NETLINK_SOCK_DIAG` socket, for the segment's
//! addresses and ports and the socket's cookie (so no other connection can match). The kernel
//! aborts it (`tcp_abort`): the queue is discarded, the peer gets a reset, and the owner's next
//! call on the socket fails with `ECONNABORTED`.
//!
//! A netlink socket answers for the network namespace it was created in. A connection in
//! another namespace (a container's) is destroyed from a short-lived thread that joins the
//! namespace of the socket's owner first (`setns`); the daemon's own threads never move.
//! The kernel needs `CONFIG_INET_DIAG_DESTROY` (Debian, Ubuntu, Fedora and RHEL have it);
//! without it every request fails with `EOPNOTSUPP` and [`probe`] says so at start.

use std::{
    fs::File,
    net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener},
    os::unix::fs::MetadataExt,
    sync::atomic::{AtomicU32, Ordering},
};

use netlink_packet_core::{
    NLM_F_ACK, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_sock_diag::{
    SockDiagDestroy, SockDiagMessage,
    constants::{AF_INET, AF_INET6, IPPROTO_TCP},
    inet::{ExtensionFlags, InetRequest, SocketId, StateFlags},
};
use netlink_sys::{Socket, SocketAddr as NetlinkAddr, protocols::NETLINK_SOCK_DIAG};
use nix::{
    sched::{CloneFlags, setns},
    sys::{
        socket::{setsockopt, sockopt::ReceiveTimeout},
        time::{TimeVal, TimeValLike as _},
    },
};

/// Longest wait for the kernel's answer, in milliseconds.
const ANSWER_TIMEOUT_MS: i64 = 500;
/// Bytes read of the answer: an acknowledgment, or an error echoing the request.
const ANSWER_LEN: usize = 512;

/// A TCP connection to abort.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Connection {
    /// The local end.
    pub local: SocketAddr,
    /// The remote end.
    pub peer: SocketAddr,
    /// The socket's cookie (`SO_COOKIE`); 0 matches any socket with these ends.
    pub cookie: u64,
    /// The process whose network namespace holds the socket; 0: the daemon's own.
    pub owner: u32,
}

/// Why a connection was not aborted.
#[derive(Debug, thiserror::Error)]
pub enum AbortError {
    /// The kernel refused the request (`errno`).
    #[error("{}", kernel_reason(*.0))]
    Kernel(i32),
    /// The netlink exchange failed.
    #[error("socket diagnostics: {0}")]
    Io(#[from] std::io::Error),
    /// The owner's network namespace could not be joined.
    #[error("cannot enter the network namespace of pid {pid}: {source}")]
    Namespace {
        /// The socket's owner.
        pid: u32,
        /// The error.
        source: nix::Error,
    },
    /// The kernel has no socket diagnostics for TCP (the `inet_diag` and `tcp_diag` modules are
    /// not loaded, and could not be).
    #[error(
        "the kernel's socket diagnostics do not reach TCP sockets (the inet_diag and tcp_diag modules are not loaded and could not be)"
    )]
    NoTcpDiagnostics,
    /// The kernel's answer could not be read.
    #[error("socket diagnostics: unexpected answer: {0}")]
    Answer(String),
}

impl AbortError {
    /// Whether the connection no longer exists (closed meanwhile, or never in reach).
    pub fn not_found(&self) -> bool {
        matches!(self, Self::Kernel(libc::ENOENT))
    }
}

fn kernel_reason(errno: i32) -> String {
    match errno {
        libc::ENOENT => "no such connection (it closed, it is in a network namespace the engine \
                         could not reach, or the kernel has no TCP socket diagnostics: see \
                         engine_start's connection_abort)"
            .to_owned(),
        libc::EOPNOTSUPP => "the kernel cannot destroy sockets (built without \
                             CONFIG_INET_DIAG_DESTROY, or without the tcp_diag module)"
            .to_owned(),
        errno => format!(
            "the kernel refused SOCK_DESTROY: {}",
            std::io::Error::from_raw_os_error(errno)
        ),
    }
}

/// Aborts `conn`, in its owner's network namespace.
pub fn abort(conn: &Connection) -> Result<(), AbortError> {
    prepare(*conn).abort()
}

/// A connection to abort, with its owner's network namespace already opened: a kill of the
/// owner before the abort leaves the namespace within reach.
#[derive(Debug)]
pub struct Prepared {
    conn: Connection,
    /// The owner's namespace, when it is not the daemon's.
    namespace: Option<File>,
}

/// Opens the network namespace of `conn`'s owner (when it is not the daemon's).
pub fn prepare(conn: Connection) -> Prepared {
    Prepared {
        conn,
        namespace: foreign_namespace(conn.owner),
    }
}

impl Prepared {
    /// The connection.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Aborts the connection, from its namespace.
    pub fn abort(self) -> Result<(), AbortError> {
        let Some(ns) = self.namespace else {
            return destroy(&self.conn);
        };
        let conn = self.conn;
        std::thread::scope(|scope| {
            let joined = scope.spawn(|| {
                // This thread alone changes namespace, and ends right after.
                setns(&ns, CloneFlags::CLONE_NEWNET).map_err(|source| AbortError::Namespace {
                    pid: conn.owner,
                    source,
                })?;
                destroy(&conn)
            });
            joined
                .join()
                .unwrap_or_else(|_| Err(AbortError::Answer("the request thread panicked".into())))
        })
    }
}

/// Whether the kernel can destroy TCP sockets: a loopback listener of the daemon's own is
/// destroyed (its `accept` then fails with `ECONNABORTED`).
pub fn probe() -> Result<(), AbortError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let local = listener.local_addr()?;
    let conn = Connection {
        local,
        peer: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        cookie: 0,
        owner: 0,
    };
    match destroy(&conn) {
        // The listener is there: "no such socket" means TCP has no diagnostics handler.
        Err(err) if err.not_found() => Err(AbortError::NoTcpDiagnostics),
        done => done,
    }
}

/// The network namespace of `pid` when it differs from the daemon's (`None`: the same, no
/// owner, or the process is gone: the daemon's own namespace is tried).
fn foreign_namespace(pid: u32) -> Option<File> {
    if pid == 0 {
        return None;
    }
    let theirs = File::open(format!("/proc/{pid}/ns/net")).ok()?;
    let ours = std::fs::metadata("/proc/thread-self/ns/net").ok()?;
    let meta = theirs.metadata().ok()?;
    (meta.ino() != ours.ino() || meta.dev() != ours.dev()).then_some(theirs)
}

/// Sends the `SOCK_DESTROY` request for `conn` from the calling thread's namespace.
fn destroy(conn: &Connection) -> Result<(), AbortError> {
    static SEQUENCE: AtomicU32 = AtomicU32::new(1);
    let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let request = request_bytes(conn, seq);
    let socket = Socket::new(NETLINK_SOCK_DIAG)?;
    let timeout = TimeVal::milliseconds(ANSWER_TIMEOUT_MS);
    setsockopt(&socket, ReceiveTimeout, &timeout).map_err(std::io::Error::from)?;
    socket.connect(&NetlinkAddr::new(0, 0))?;
    socket.send(&request, 0)?;
    let mut answer = vec![0u8; ANSWER_LEN];
    let len = socket.recv(&mut &mut answer[..], 0)?;
    read_answer(&answer[..len.min(ANSWER_LEN)], seq)
}

/// The netlink message asking to destroy `conn` (sequence number `seq`).
fn request_bytes(conn: &Connection, seq: u32) -> Vec<u8> {
    let family = if conn.local.is_ipv4() {
        AF_INET
    } else {
        AF_INET6
    };
    let request = InetRequest {
        family,
        protocol: IPPROTO_TCP,
        extensions: ExtensionFlags::empty(),
        states: StateFlags::all(),
        socket_id: SocketId {
            source_port: conn.local.port(),
            destination_port: conn.peer.port(),
            source_address: conn.local.ip(),
            destination_address: conn.peer.ip(),
            interface_id: 0,
            cookie: cookie_bytes(conn.cookie),
        },
    };
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_ACK;
    header.sequence_number = seq;
    let payload = SockDiagDestroy::new(SockDiagMessage::InetRequest(request));
    let mut message = NetlinkMessage::new(header, NetlinkPayload::from(payload));
    message.finalize();
    let mut bytes = vec![0; message.buffer_len()];
    message.serialize(&mut bytes);
    bytes
}

/// `idiag_cookie`: two native-endian 32-bit halves, low first; all ones for "any socket".
fn cookie_bytes(cookie: u64) -> [u8; 8] {
    if cookie == 0 {
        return [0xff; 8];
    }
    let halves = [cookie & 0xffff_ffff, cookie >> 32]
        .map(|half| u32::try_from(half).unwrap_or_default().to_ne_bytes());
    let mut bytes = [0u8; 8];
    bytes[..4].copy_from_slice(&halves[0]);
    bytes[4..].copy_from_slice(&halves[1]);
    bytes
}

/// Reads the kernel's answer to request `seq`: an acknowledgment, or the request's errno; any
/// other bytes are an error (`enforcer/fuzz`: `sock_diag_answer`).
pub fn read_answer(answer: &[u8], seq: u32) -> Result<(), AbortError> {
    let message = NetlinkMessage::<SockDiagMessage>::deserialize(answer)
        .map_err(|err| AbortError::Answer(err.to_string()))?;
    if message.header.sequence_number != seq {
        return Err(AbortError::Answer(format!(
            "answer to request {}, expected {seq}",
            message.header.sequence_number
        )));
    }
    match message.payload {
        NetlinkPayload::Error(err) => match err.code {
            None => Ok(()),
            Some(code) => Err(AbortError::Kernel(code.get().saturating_neg())),
        },
        other => Err(AbortError::Answer(format!("{other:?}"))),
    }
}

#[cfg(test)]
#[path = "abort_tests.rs"]
mod tests;
