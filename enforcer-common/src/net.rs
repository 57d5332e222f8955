//! Network records and plan keys: DNS queries and connects, shared by the kernel programs and
//! the daemon. The DNS name hash is defined here once so the loader's keys and the kernel's
//! look-ups agree.

use crate::{event::COMM_LEN, event::EventHeader};

/// Bytes of a DNS message a [`DnsRecord`] carries (queries are far shorter; EDNS options fit).
pub const DNS_DATA_LEN: usize = 512;
/// Longest DNS question name the kernel parses, dotted form (RFC 1035: 253 characters).
pub const DNS_NAME_LEN: usize = 256;

/// DNS flag: the message was sent over TCP (a 2-byte length prefix preceded it).
pub const DNS_TCP: u32 = 1;
/// DNS flag: the message was longer than [`DNS_DATA_LEN`]; `data` holds its start.
pub const DNS_TRUNCATED: u32 = 2;
/// DNS flag: the kernel could not parse the question name (compression, a bad label, or a
/// name longer than [`DNS_NAME_LEN`]), so the plan was not consulted. Userspace still decodes
/// and evaluates the message.
pub const DNS_NAME_UNPARSED: u32 = 4;
/// DNS flag: the server address came from the socket (a connected socket), not the syscall.
pub const DNS_SERVER_FROM_SOCKET: u32 = 8;

/// `AF_INET`.
pub const AF_INET: u16 = 2;
/// `AF_INET6`.
pub const AF_INET6: u16 = 10;

/// An IPv4 or IPv6 socket address in a fixed layout (`family == 0`: unknown).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SockAddr {
    /// [`AF_INET`], [`AF_INET6`] or 0.
    pub family: u16,
    /// Port, host byte order.
    pub port: u16,
    /// Explicit padding.
    pub _pad: u32,
    /// The address: 4 bytes for IPv4 (the rest zero), 16 for IPv6, network byte order.
    pub addr: [u8; 16],
}

/// A DNS query a process sent (UDP datagram or TCP message), whether or not a rule matched.
/// Emitted by the send tracepoints, or by LSM `socket_sendmsg` when the lsm tier acts on it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DnsRecord {
    /// Common header, `kind == EventKind::Dns`.
    pub header: EventHeader,
    /// File descriptor the query was sent on.
    pub fd: u32,
    /// Bytes the process asked to send (TCP: without the length prefix).
    pub size: u32,
    /// Valid bytes in `data`.
    pub data_len: u32,
    /// `DNS_*` flags.
    pub flags: u32,
    /// [`name_hash`] of the question name the kernel parsed (0 when unparsed).
    pub name_hash: u64,
    /// Where the query went (from the syscall's address, else the connected socket).
    pub server: SockAddr,
    /// The sender's comm.
    pub comm: [u8; COMM_LEN],
    /// The DNS message, from its header on (TCP: after the length prefix).
    pub data: [u8; DNS_DATA_LEN],
    /// The sending socket, when `cgroup_skb/egress` saw the query (zero from the other hooks).
    pub socket: PacketSocket,
}

/// The socket a packet left from, as `cgroup_skb/egress` saw it: with the packet's peer, what
/// the kernel's socket diagnostics (`SOCK_DESTROY`) need to find its connection, so the daemon
/// can abort a TCP connection whose segment the hook refused. All zero in the records of the
/// syscall and LSM hooks.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PacketSocket {
    /// The socket's cookie (`bpf_get_socket_cookie`, `SO_COOKIE`); 0: unknown.
    pub cookie: u64,
    /// The packet's source: the socket's local address and port.
    pub local: SockAddr,
}

/// Bytes of a DNS response a [`DnsResponseRecord`] carries, at most (a power of two, so the
/// kernel can bound the copy with a mask).
pub const DNS_RESPONSE_DATA_LEN: usize = 1024;

/// A DNS message received from port 53 (UDP datagram, or a TCP segment that starts a
/// message), copied at cgroup ingress before any process reads it. The header's process
/// fields are zero (the packet is handled outside the receiving process's context); its
/// `cgroup_id` is the receiving socket's cgroup. Userspace attributes the response to the
/// query it answers.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DnsResponseRecord {
    /// Common header, `kind == EventKind::DnsResponse`.
    pub header: EventHeader,
    /// `DNS_*` flags ([`DNS_TCP`], [`DNS_TRUNCATED`]).
    pub flags: u32,
    /// Valid bytes in `data`.
    pub data_len: u32,
    /// Bytes of DNS message the packet carried (TCP: without the length prefix).
    pub size: u32,
    /// Explicit padding.
    pub _pad: u32,
    /// The sender (the DNS server).
    pub server: SockAddr,
    /// The receiver (the asking socket's address and port).
    pub client: SockAddr,
    /// The DNS message from its header on.
    pub data: [u8; DNS_RESPONSE_DATA_LEN],
}

/// A socket operation of a process, `header.kind` says which:
/// - `Connect`: emitted by the `sys_enter_connect` tracepoint (signal and monitor tiers) or by
///   LSM `socket_connect` (lsm tier); `addr` is the destination.
/// - `Bind`: emitted by `sys_enter_bind` (every tier); `addr` is the local address asked for.
/// - `Accept`: emitted by `sys_exit_accept{,4}` (every tier) for an accepted connection;
///   `addr` is the peer and `local_port` the port that accepted.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketRecord {
    /// Common header.
    pub header: EventHeader,
    /// File descriptor (0 in the LSM hook, which sees the socket, not the descriptor).
    pub fd: u32,
    /// Socket type (`SOCK_STREAM` 1, `SOCK_DGRAM` 2, ...), 0 when unknown.
    pub sock_type: u32,
    /// Destination (connect), local address (bind) or peer (accept).
    pub addr: SockAddr,
    /// Local port, host byte order (accept; 0 otherwise).
    pub local_port: u16,
    /// Explicit padding.
    pub _pad: [u8; 6],
    /// The caller's comm.
    pub comm: [u8; COMM_LEN],
}

/// FNV-1a 64 offset basis, the start value of [`name_hash`].
pub const NAME_HASH_SEED: u64 = 0xcbf2_9ce4_8422_2325;
const NAME_HASH_PRIME: u64 = 0x0000_0100_0000_01b3;

/// One FNV-1a step.
#[inline(always)]
pub const fn name_hash_step(hash: u64, byte: u8) -> u64 {
    (hash ^ byte as u64).wrapping_mul(NAME_HASH_PRIME)
}

/// Hash of a DNS name (lowercase, dotted, no trailing dot): FNV-1a 64 over its bytes from the
/// LAST to the first. Read backwards, every parent domain is a prefix of the name, so the
/// kernel gets the hash of each suffix (`com`, `pool.com`, `x.pool.com`) in one pass.
pub fn name_hash(name: &[u8]) -> u64 {
    let mut hash = NAME_HASH_SEED;
    let mut i = name.len();
    while i > 0 {
        i -= 1;
        hash = name_hash_step(hash, name[i]);
    }
    hash
}

const _: () = assert!(core::mem::size_of::<SockAddr>() == 24);
const _: () = assert!(core::mem::size_of::<PacketSocket>() == 32);
const _: () =
    assert!(core::mem::size_of::<DnsRecord>() == 64 + 24 + 24 + COMM_LEN + DNS_DATA_LEN + 32);
const _: () =
    assert!(core::mem::size_of::<DnsResponseRecord>() == 64 + 16 + 24 + 24 + DNS_RESPONSE_DATA_LEN);
const _: () = assert!(core::mem::offset_of!(DnsResponseRecord, data) == 128);
const _: () = assert!(core::mem::offset_of!(DnsRecord, server) == 88);
const _: () = assert!(core::mem::offset_of!(DnsRecord, data) == 128);
const _: () = assert!(core::mem::offset_of!(DnsRecord, socket) == 128 + DNS_DATA_LEN);
const _: () = assert!(core::mem::size_of::<SocketRecord>() == 64 + 8 + 24 + 8 + COMM_LEN);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_hashes_are_prefixes_of_the_backward_walk() {
        let name = b"x.pool.example";
        let mut hash = NAME_HASH_SEED;
        let mut seen = [0u64; 3];
        let mut n = 0;
        let mut i = name.len();
        while i > 0 {
            i -= 1;
            hash = name_hash_step(hash, name[i]);
            if i == 0 || name[i - 1] == b'.' {
                seen[n] = hash;
                n += 1;
            }
        }
        assert_eq!(n, 3);
        assert_eq!(seen[0], name_hash(b"example"));
        assert_eq!(seen[1], name_hash(b"pool.example"));
        assert_eq!(seen[2], name_hash(name));
        assert_ne!(name_hash(b"pool.example"), name_hash(b"example.pool"));
    }
}
