//! Packets as the cgroup skb programs see them (`hooks/dns_response.rs` at ingress,
//! `hooks/egress.rs` at egress): the skb starts at the IP header. IPv4 (any header length)
//! and IPv6 without extension headers; anything else is not parsed.

use aya_ebpf::{
    helpers::generated::{bpf_get_socket_cookie, bpf_skb_load_bytes},
    programs::SkBuffContext,
};
use enforcer_common::{
    net::{AF_INET, AF_INET6, PacketSocket, SockAddr},
    plan::DNS_PORT_SLOTS,
};

use crate::maps::plan_settings;

/// `ETH_P_IP`.
const ETH_P_IP: u16 = 0x0800;
/// `ETH_P_IPV6`.
const ETH_P_IPV6: u16 = 0x86dd;
/// `IPPROTO_TCP`.
const IPPROTO_TCP: u8 = 6;
/// `IPPROTO_UDP`.
const IPPROTO_UDP: u8 = 17;

/// The addresses (ports still zero) and transport of a packet, and where its L4 header starts.
pub(crate) struct Ip {
    pub(crate) src: SockAddr,
    pub(crate) dst: SockAddr,
    pub(crate) proto: u8,
    pub(crate) l4: usize,
}

/// Reads the IP header, with one helper call (the fixed part of an IPv4 header, or the IPv6
/// header); `None` for other protocols, IPv4 headers shorter than 20 bytes and unreadable
/// packets.
#[inline(always)]
pub(crate) fn ip_header(ctx: &SkBuffContext) -> Option<Ip> {
    let mut ip = Ip {
        src: SockAddr::default(),
        dst: SockAddr::default(),
        proto: 0,
        l4: 0,
    };
    match u16::from_be(ctx.skb.protocol() as u16) {
        ETH_P_IP => {
            let header: [u8; 20] = ctx.load(0).ok()?;
            let ihl = usize::from(header[0] & 0x0f) * 4;
            if ihl < 20 {
                return None;
            }
            ip.proto = header[9];
            ip.src.family = AF_INET;
            ip.dst.family = AF_INET;
            ip.src.addr[..4].copy_from_slice(&header[12..16]);
            ip.dst.addr[..4].copy_from_slice(&header[16..20]);
            ip.l4 = ihl;
        }
        ETH_P_IPV6 => {
            let header: [u8; 40] = ctx.load(0).ok()?;
            ip.proto = header[6];
            ip.src.family = AF_INET6;
            ip.dst.family = AF_INET6;
            ip.src.addr.copy_from_slice(&header[8..24]);
            ip.dst.addr.copy_from_slice(&header[24..40]);
            ip.l4 = 40;
        }
        _ => return None,
    }
    Some(ip)
}

/// A packet's UDP or TCP header, as far as the cgroup skb programs need it.
pub(crate) struct Transport {
    pub(crate) src_port: u16,
    pub(crate) dst_port: u16,
    /// Where the payload starts.
    pub(crate) payload: usize,
    /// The TCP sequence number (`None` for UDP).
    pub(crate) seq: Option<u32>,
}

/// Reads the UDP or TCP header with one helper call; `None` for other transports.
#[inline(always)]
pub(crate) fn transport(ctx: &SkBuffContext, ip: &Ip) -> Option<Transport> {
    if ip.proto == IPPROTO_UDP {
        let header: [u8; 8] = ctx.load(ip.l4).ok()?;
        return Some(Transport {
            src_port: u16::from_be_bytes([header[0], header[1]]),
            dst_port: u16::from_be_bytes([header[2], header[3]]),
            payload: ip.l4 + 8,
            seq: None,
        });
    }
    if ip.proto != IPPROTO_TCP {
        return None;
    }
    // Ports, sequence number, acknowledgment number, data offset.
    let header: [u8; 13] = ctx.load(ip.l4).ok()?;
    Some(Transport {
        src_port: u16::from_be_bytes([header[0], header[1]]),
        dst_port: u16::from_be_bytes([header[2], header[3]]),
        payload: ip.l4 + usize::from(header[12] >> 4) * 4,
        seq: Some(u32::from_be_bytes([
            header[4], header[5], header[6], header[7],
        ])),
    })
}

/// The socket a packet left from (egress): its cookie and the packet's source address and
/// port (`ip`, `l4`).
#[inline(always)]
pub(crate) fn sending_socket(ctx: &SkBuffContext, ip: &Ip, l4: &Transport) -> PacketSocket {
    let mut local = ip.src;
    local.port = l4.src_port;
    PacketSocket {
        // SAFETY: the helper reads the context's own skb (its socket's cookie, 0 without one).
        cookie: unsafe { bpf_get_socket_cookie(ctx.skb.skb.cast()) },
        local,
    }
}

/// Whether `port` is one DNS servers listen on (`PLAN_SETTINGS.dns_ports`; 53 when the
/// settings are not written yet).
#[inline(always)]
pub(crate) fn is_dns_port(port: u16) -> bool {
    let ports = plan_settings().dns_ports;
    if ports[0] == 0 {
        return port == 53;
    }
    let mut i = 0;
    while i < DNS_PORT_SLOTS {
        if ports[i] == port {
            return true;
        }
        i += 1;
    }
    false
}

/// Copies `len` bytes of the packet at `offset` into `dst`; false when the packet is shorter.
#[inline(always)]
pub(crate) fn load(ctx: &SkBuffContext, offset: usize, dst: *mut u8, len: u32) -> bool {
    // SAFETY: the helper takes the context's own skb and writes at most `len` bytes, which
    // the callers bound to the size of `dst`.
    unsafe { bpf_skb_load_bytes(ctx.skb.skb.cast(), offset as u32, dst.cast(), len) == 0 }
}

/// How many of a payload's `size` bytes (at least 1) to copy into a buffer of `CAP` bytes
/// (a power of two): `min(size, CAP)`, in [1, CAP] in a form the verifier can see (a mask).
#[inline(always)]
pub(crate) fn copy_len<const CAP: usize>(size: usize) -> u32 {
    const { assert!(CAP.is_power_of_two()) };
    ((size.min(CAP) as u32).wrapping_sub(1) & (CAP as u32 - 1)) + 1
}
