//! Socket addresses: read from a user or kernel `struct sockaddr`, or from a connected socket's
//! `struct sock_common` (through the loader's BTF offsets), into the fixed `SockAddr` layout;
//! and the connect plan look-up (LPM tries, longest prefix wins).

use aya_ebpf::{
    helpers::{bpf_probe_read_kernel_buf, bpf_probe_read_user_buf},
    maps::lpm_trie::Key,
};
use enforcer_common::{
    net::{AF_INET, AF_INET6, SockAddr},
    plan::PlanVerdict,
};

use crate::{
    kernel::read_at,
    maps::{CONNECT_V4_PLAN, CONNECT_V6_PLAN, offset},
};

/// Where a `struct sockaddr` lives.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Space {
    User,
    Kernel,
}

/// Bytes of a `sockaddr_in6` up to the end of its address (family, port, flowinfo, address).
const SOCKADDR_IN6_PREFIX: usize = 24;

/// Reads an IPv4/IPv6 `struct sockaddr` of `len` bytes at `ptr` into `out`; false (and `out`
/// untouched) for other families, short lengths or unreadable memory. One read: the whole
/// `sockaddr_in6` prefix when `len` allows it, else the 16 bytes of a `sockaddr_in`.
#[inline(always)]
pub(crate) fn read_sockaddr(ptr: u64, len: u64, space: Space, out: &mut SockAddr) -> bool {
    if ptr == 0 || len < 16 {
        return false;
    }
    let mut raw = [0u8; SOCKADDR_IN6_PREFIX];
    let src = ptr as *const u8;
    let long = len >= SOCKADDR_IN6_PREFIX as u64;
    // SAFETY: the probe-read helpers validate the source address and write only into `raw`.
    let ok = unsafe {
        match (space, long) {
            (Space::User, true) => bpf_probe_read_user_buf(src, &mut raw).is_ok(),
            (Space::User, false) => bpf_probe_read_user_buf(src, &mut raw[..16]).is_ok(),
            (Space::Kernel, true) => bpf_probe_read_kernel_buf(src, &mut raw).is_ok(),
            (Space::Kernel, false) => bpf_probe_read_kernel_buf(src, &mut raw[..16]).is_ok(),
        }
    };
    if !ok {
        return false;
    }
    let family = u16::from_ne_bytes([raw[0], raw[1]]);
    let port = u16::from_be_bytes([raw[2], raw[3]]);
    if family == AF_INET {
        out.family = AF_INET;
        out.port = port;
        out.addr = [0; 16];
        out.addr[0] = raw[4];
        out.addr[1] = raw[5];
        out.addr[2] = raw[6];
        out.addr[3] = raw[7];
        return true;
    }
    if family != AF_INET6 || !long {
        return false;
    }
    out.family = AF_INET6;
    out.port = port;
    let mut i = 0;
    while i < 16 {
        out.addr[i] = raw[8 + i];
        i += 1;
    }
    true
}

/// The `struct socket *` of a socket file (`file->private_data`).
#[inline(always)]
pub(crate) fn socket_of_file(file: *const u8) -> Option<*const u8> {
    read_at(file, offset(|o| &o.file_private_data)).ok()
}

/// The socket type (`sock->type`: `SOCK_STREAM`, `SOCK_DGRAM`, ...), 0 when unreadable.
#[inline(always)]
pub(crate) fn socket_type(sock: *const u8) -> u32 {
    read_at::<i16>(sock, offset(|o| &o.socket_type)).map_or(0, |t| t as u32)
}

/// The peer of a connected socket (`sock->sk->__sk_common`), into `out`.
#[inline(always)]
pub(crate) fn socket_peer(sock: *const u8, out: &mut SockAddr) -> bool {
    let Ok(sk) = read_at::<*const u8>(sock, offset(|o| &o.socket_sk)) else {
        return false;
    };
    let Ok(family) = read_at::<u16>(sk, offset(|o| &o.skc_family)) else {
        return false;
    };
    let Ok(port) = read_at::<u16>(sk, offset(|o| &o.skc_dport)) else {
        return false;
    };
    if family == AF_INET {
        let Ok(addr) = read_at::<[u8; 4]>(sk, offset(|o| &o.skc_daddr)) else {
            return false;
        };
        out.addr = [0; 16];
        out.addr[0] = addr[0];
        out.addr[1] = addr[1];
        out.addr[2] = addr[2];
        out.addr[3] = addr[3];
    } else if family == AF_INET6 {
        let Ok(addr) = read_at::<[u8; 16]>(sk, offset(|o| &o.skc_v6_daddr)) else {
            return false;
        };
        out.addr = addr;
    } else {
        return false;
    }
    out.family = family;
    out.port = u16::from_be(port);
    true
}

/// The local port of a socket (`sock->sk->__sk_common.skc_num`, host byte order), 0 when
/// unreadable.
#[inline(always)]
pub(crate) fn socket_local_port(sock: *const u8) -> u16 {
    read_at::<*const u8>(sock, offset(|o| &o.socket_sk))
        .and_then(|sk| read_at::<u16>(sk, offset(|o| &o.skc_num)))
        .unwrap_or(0)
}

/// Whether `addr` (16 bytes) is an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`).
#[inline(always)]
fn is_v4_mapped(addr: &[u8; 16]) -> bool {
    let mut i = 0;
    while i < 10 {
        if addr[i] != 0 {
            return false;
        }
        i += 1;
    }
    addr[10] == 0xff && addr[11] == 0xff
}

/// The connect plan entry for `addr` (longest listed prefix), if any. IPv4-mapped IPv6
/// addresses are looked up as IPv4.
#[inline(always)]
pub(crate) fn lookup_connect(addr: &SockAddr) -> Option<PlanVerdict> {
    let found = if addr.family == AF_INET {
        let a = &addr.addr;
        CONNECT_V4_PLAN.get(Key::new(32, [a[0], a[1], a[2], a[3]]))
    } else if addr.family == AF_INET6 && is_v4_mapped(&addr.addr) {
        let a = &addr.addr;
        CONNECT_V4_PLAN.get(Key::new(32, [a[12], a[13], a[14], a[15]]))
    } else if addr.family == AF_INET6 {
        CONNECT_V6_PLAN.get(Key::new(128, addr.addr))
    } else {
        None
    };
    found.copied()
}
