//! The `SOCK_DESTROY` request as bytes, the kernel's answers, and real aborts of loopback
//! connections (root only; skipped loudly otherwise): in the daemon's network namespace, and
//! in another one, reached through the namespace of the socket's owner.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    io::{Read as _, Write as _},
    net::{TcpListener, TcpStream},
    os::fd::AsRawFd as _,
    sync::mpsc,
    time::Duration,
};

use netlink_packet_core::{NetlinkBuffer, Parseable as _};
use netlink_packet_sock_diag::constants::SOCK_DESTROY;

use super::*;
use crate::actions::test_host::host_or_skip;

fn conn(cookie: u64) -> Connection {
    Connection {
        local: "127.0.0.1:40000".parse().unwrap(),
        peer: "10.1.2.3:3333".parse().unwrap(),
        cookie,
        owner: 0,
    }
}

/// The header and the request of a `SOCK_DESTROY` message.
fn parsed(bytes: &[u8]) -> (NetlinkHeader, InetRequest) {
    let buffer = NetlinkBuffer::new_checked(bytes).unwrap();
    assert_eq!(buffer.length() as usize, bytes.len());
    let header = NetlinkHeader::parse(&buffer).unwrap();
    let request = InetRequest::parse(&bytes[16..]).unwrap();
    (header, request)
}

#[test]
fn the_request_names_the_connection_and_its_cookie() {
    let bytes = request_bytes(&conn(0x1122_3344_5566_7788), 7);
    let (header, request) = parsed(&bytes);
    assert_eq!(header.message_type, SOCK_DESTROY);
    assert_eq!(header.sequence_number, 7);
    assert_eq!(header.flags, NLM_F_REQUEST | NLM_F_ACK);
    assert_eq!(request.family, AF_INET);
    assert_eq!(request.protocol, IPPROTO_TCP);
    let id = request.socket_id;
    assert_eq!(
        (id.source_address, id.source_port),
        (conn(0).local.ip(), 40000)
    );
    assert_eq!(
        (id.destination_address, id.destination_port),
        (conn(0).peer.ip(), 3333)
    );
    let halves = [0x5566_7788u32.to_ne_bytes(), 0x1122_3344u32.to_ne_bytes()].concat();
    assert_eq!(id.cookie.to_vec(), halves);
}

#[test]
fn an_unknown_cookie_matches_any_socket_with_the_ends() {
    assert_eq!(cookie_bytes(0), [0xff; 8]);
}

#[test]
fn ipv6_connections_are_asked_as_ipv6() {
    let v6 = Connection {
        local: "[::1]:40000".parse().unwrap(),
        peer: "[2001:db8::1]:3333".parse().unwrap(),
        ..conn(1)
    };
    let (_, request) = parsed(&request_bytes(&v6, 1));
    assert_eq!(request.family, AF_INET6);
    assert_eq!(request.socket_id.destination_address, v6.peer.ip());
}

/// An answer the kernel could send: an acknowledgment (`errno` 0) or an error for `seq`.
fn answer(seq: u32, errno: i32) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.sequence_number = seq;
    let mut error = netlink_packet_core::ErrorMessage::default();
    error.code = std::num::NonZeroI32::new(-errno);
    let mut message = NetlinkMessage::<SockDiagMessage>::new(header, NetlinkPayload::Error(error));
    message.finalize();
    let mut bytes = vec![0; message.buffer_len()];
    message.serialize(&mut bytes);
    bytes
}

#[test]
fn answers_are_read_as_done_or_the_kernels_errno() {
    assert!(read_answer(&answer(3, 0), 3).is_ok());
    let gone = read_answer(&answer(3, libc::ENOENT), 3).unwrap_err();
    assert!(gone.not_found(), "{gone}");
    let unsupported = read_answer(&answer(3, libc::EOPNOTSUPP), 3).unwrap_err();
    assert!(unsupported.to_string().contains("CONFIG_INET_DIAG_DESTROY"));
    assert!(matches!(
        read_answer(&answer(2, 0), 3),
        Err(AbortError::Answer(_))
    ));
}

#[test]
fn a_malformed_answer_is_an_error_not_a_panic() {
    for bytes in [&[][..], &[1, 2, 3], &[0xff; 16], &answer(3, 0)[..12]] {
        assert!(read_answer(bytes, 3).is_err(), "{bytes:?}");
    }
    // An error code of i32::MIN (found by the fuzz target): no overflow on negation.
    let mut min = answer(3, 1);
    min[16..20].copy_from_slice(&i32::MIN.to_ne_bytes());
    assert!(matches!(
        read_answer(&min, 3),
        Err(AbortError::Kernel(i32::MAX))
    ));
}

/// A loopback connection: the client end, the server end, and the client's cookie.
fn loopback() -> (TcpStream, TcpStream, u64) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    let cookie = cookie_of(&client);
    (client, server, cookie)
}

/// `SO_COOKIE` of `stream` (nix has no wrapper for it).
fn cookie_of(stream: &TcpStream) -> u64 {
    let mut cookie = 0u64;
    let mut len: libc::socklen_t = 8;
    // SAFETY: the kernel writes at most `len` bytes into `cookie`, which holds that many.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_COOKIE,
            (&raw mut cookie).cast(),
            &raw mut len,
        )
    };
    assert_eq!(rc, 0, "SO_COOKIE: {}", std::io::Error::last_os_error());
    cookie
}

fn connection_of(client: &TcpStream, cookie: u64, owner: u32) -> Connection {
    Connection {
        local: client.local_addr().unwrap(),
        peer: client.peer_addr().unwrap(),
        cookie,
        owner,
    }
}

/// Whether the connection of `client` was aborted: its next read fails with `ECONNABORTED`,
/// or sees the end (the reset was read first).
fn was_aborted(client: &mut TcpStream) -> bool {
    client
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut byte = [0u8; 1];
    match client.read(&mut byte) {
        Ok(0) => true,
        Ok(_) => false,
        Err(err) => err.raw_os_error() == Some(libc::ECONNABORTED),
    }
}

#[test]
fn a_connection_is_aborted_by_its_ends_and_cookie_and_no_other() {
    if !host_or_skip(
        "a_connection_is_aborted_by_its_ends_and_cookie_and_no_other",
        "root (SOCK_DESTROY needs CAP_NET_ADMIN)",
    ) {
        return;
    }
    probe().expect("this host's kernel destroys sockets");
    probe().expect("the probe can run again");
    let (mut client, mut server, cookie) = loopback();
    let conn = connection_of(&client, cookie, 0);
    // Another socket's cookie: no such connection, and it stays up.
    let wrong = abort(&Connection {
        cookie: cookie + 1,
        ..conn
    })
    .unwrap_err();
    assert!(wrong.not_found(), "{wrong}");
    client.write_all(b"ping").unwrap();
    let mut got = [0u8; 4];
    server.read_exact(&mut got).unwrap();
    abort(&conn).unwrap();
    assert!(
        was_aborted(&mut client),
        "the client's connection is still up"
    );
    let again = abort(&conn).unwrap_err();
    assert!(again.not_found(), "{again}");
}

#[test]
fn a_connection_in_another_network_namespace_is_aborted_there() {
    if !host_or_skip(
        "a_connection_in_another_network_namespace_is_aborted_there",
        "root (a new network namespace, SOCK_DESTROY)",
    ) {
        return;
    }
    let (tx, rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    // A thread in a network namespace of its own, holding a loopback connection.
    let holder = std::thread::spawn(move || {
        nix::sched::unshare(CloneFlags::CLONE_NEWNET).unwrap();
        let up = std::process::Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status()
            .expect("ip(8) runs");
        assert!(up.success(), "ip link set lo up");
        let (mut client, server, cookie) = loopback();
        let tid = nix::unistd::gettid().as_raw() as u32;
        tx.send(connection_of(&client, cookie, tid)).unwrap();
        done_rx.recv().unwrap();
        let aborted = was_aborted(&mut client);
        drop(server);
        aborted
    });
    let conn = rx.recv().unwrap();
    // From the daemon's namespace alone, the connection cannot be found.
    let here = abort(&Connection { owner: 0, ..conn }).unwrap_err();
    assert!(here.not_found(), "{here}");
    abort(&conn).unwrap();
    done_tx.send(()).unwrap();
    assert!(
        holder.join().unwrap(),
        "the connection in the other namespace is still up"
    );
    // The daemon's thread did not move.
    assert!(foreign_namespace(nix::unistd::gettid().as_raw() as u32).is_none());
}
