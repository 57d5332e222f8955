//! Packets as the cgroup skb programs see them (`hooks/dns_response.rs` at ingress,
//! `hooks/egress.rs` at egress): the skb starts at the IP header. IPv4 (any header length)
//! and IPv6 without extension headers; anything else is not parsed.

use aya_ebpf::programs::SkBuffContext;
use enforcer_common::{
    net::{AF_INET, AF_INET6, SockAddr},
    plan::DNS_PORT_SLOTS,
};

use crate::maps::plan_settings;

/// `ETH_P_IP`.
const ETH_P_IP: u16 = 0x0800;
/// `ETH_P_IPV6`.
const ETH_P_IPV6: u16 = 0x86dd;
/// `IPPROTO_TCP`.
pub(crate) const IPPROTO_TCP: u8 = 6;
/// `IPPROTO_UDP`.
pub(crate) const IPPROTO_UDP: u8 = 17;

/// The addresses (ports still zero) and transport of a packet, and where its L4 header starts.
pub(crate) struct Ip {
    pub(crate) src: SockAddr,
    pub(crate) dst: SockAddr,
    pub(crate) proto: u8,
    pub(crate) l4: usize,
}

/// Reads the IP header; `None` for other protocols, IPv4 headers shorter than 20 bytes and
/// unreadable packets.
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
            let version_ihl: u8 = ctx.load(0).ok()?;
            let ihl = usize::from(version_ihl & 0x0f) * 4;
            if ihl < 20 {
                return None;
            }
            ip.proto = ctx.load(9).ok()?;
            let src: [u8; 4] = ctx.load(12).ok()?;
            let dst: [u8; 4] = ctx.load(16).ok()?;
            ip.src.family = AF_INET;
            ip.dst.family = AF_INET;
            ip.src.addr[..4].copy_from_slice(&src);
            ip.dst.addr[..4].copy_from_slice(&dst);
            ip.l4 = ihl;
        }
        ETH_P_IPV6 => {
            ip.proto = ctx.load(6).ok()?;
            ip.src.family = AF_INET6;
            ip.dst.family = AF_INET6;
            ip.src.addr = ctx.load(8).ok()?;
            ip.dst.addr = ctx.load(24).ok()?;
            ip.l4 = 40;
        }
        _ => return None,
    }
    Some(ip)
}

/// The UDP or TCP ports of a packet `(source, destination)` and where its payload starts;
/// `None` for other transports.
#[inline(always)]
pub(crate) fn transport(ctx: &SkBuffContext, ip: &Ip) -> Option<(u16, u16, usize)> {
    if ip.proto != IPPROTO_UDP && ip.proto != IPPROTO_TCP {
        return None;
    }
    let src = u16::from_be(ctx.load::<u16>(ip.l4).ok()?);
    let dst = u16::from_be(ctx.load::<u16>(ip.l4 + 2).ok()?);
    let payload = if ip.proto == IPPROTO_UDP {
        ip.l4 + 8
    } else {
        let data_offset: u8 = ctx.load(ip.l4 + 12).ok()?;
        ip.l4 + usize::from(data_offset >> 4) * 4
    };
    Some((src, dst, payload))
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
