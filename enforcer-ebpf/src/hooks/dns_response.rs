//! DNS responses: `cgroup_skb/ingress`, attached to the cgroup v2 root so it sees every
//! packet delivered to a socket on the host (every tier; it never drops one: it returns 1).
//!
//! For an IPv4 or IPv6 packet (IPv6 without extension headers) from a DNS server port (53, and
//! the policy's `network.dns_server_ports`, in `PLAN_SETTINGS`) over UDP,
//! or over TCP when the segment carries data, it copies the DNS message (after the UDP
//! header, or after the TCP header and the 2-byte length prefix) into a
//! `DnsResponseRecord`, at most `DNS_RESPONSE_DATA_LEN` bytes (`DNS_TRUNCATED` beyond).
//! A TCP message that spans segments is copied from its first segment only; continuation
//! segments are copied too and fail to decode in userspace (counted there, never trusted).
//!
//! The packet is handled outside the receiving process's context, so the record's process
//! fields are zero; userspace attributes it to the query it answers (transaction id, name,
//! server). Costs every ingress packet two small loads when it is not DNS.

use aya_ebpf::{
    helpers::generated::{bpf_ktime_get_boot_ns, bpf_skb_cgroup_id, bpf_skb_load_bytes},
    macros::cgroup_skb,
    programs::SkBuffContext,
};
use enforcer_common::{
    event::{Counter, EventHeader, EventKind, Hook},
    net::{
        AF_INET, AF_INET6, DNS_RESPONSE_DATA_LEN, DNS_TCP, DNS_TRUNCATED, DnsResponseRecord,
        SockAddr,
    },
    plan::DNS_PORT_SLOTS,
};

use crate::{
    emit,
    maps::{count, plan_settings},
};

/// `ETH_P_IP`.
const ETH_P_IP: u16 = 0x0800;
/// `ETH_P_IPV6`.
const ETH_P_IPV6: u16 = 0x86dd;
/// `IPPROTO_TCP`.
const IPPROTO_TCP: u8 = 6;
/// `IPPROTO_UDP`.
const IPPROTO_UDP: u8 = 17;
/// Mask that bounds a copy length for the verifier (`DNS_RESPONSE_DATA_LEN` is 2^n).
const COPY_MASK: u32 = DNS_RESPONSE_DATA_LEN as u32 - 1;

/// The addresses and transport of a packet, and where its L4 header starts.
struct Ip {
    server: SockAddr,
    client: SockAddr,
    proto: u8,
    l4: usize,
}

/// Reads the IP header (the skb starts at it in cgroup programs).
#[inline(always)]
fn ip_header(ctx: &SkBuffContext) -> Option<Ip> {
    let mut ip = Ip {
        server: SockAddr::default(),
        client: SockAddr::default(),
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
            ip.server.family = AF_INET;
            ip.client.family = AF_INET;
            ip.server.addr[..4].copy_from_slice(&src);
            ip.client.addr[..4].copy_from_slice(&dst);
            ip.l4 = ihl;
        }
        ETH_P_IPV6 => {
            ip.proto = ctx.load(6).ok()?;
            ip.server.family = AF_INET6;
            ip.client.family = AF_INET6;
            ip.server.addr = ctx.load(8).ok()?;
            ip.client.addr = ctx.load(24).ok()?;
            ip.l4 = 40;
        }
        _ => return None,
    }
    Some(ip)
}

/// Whether `port` is one DNS servers answer from (`PLAN_SETTINGS.dns_ports`; 53 when the
/// settings are not written yet).
#[inline(always)]
fn is_dns_port(port: u16) -> bool {
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

/// Program: see the module documentation.
#[cgroup_skb]
pub(crate) fn cgroup_skb_dns_response(ctx: SkBuffContext) -> i32 {
    let _ = on_packet(&ctx);
    1
}

#[inline(always)]
fn on_packet(ctx: &SkBuffContext) -> Option<()> {
    let mut ip = ip_header(ctx)?;
    if ip.proto != IPPROTO_UDP && ip.proto != IPPROTO_TCP {
        return None;
    }
    let sport = u16::from_be(ctx.load::<u16>(ip.l4).ok()?);
    if !is_dns_port(sport) {
        return None;
    }
    ip.server.port = sport;
    ip.client.port = u16::from_be(ctx.load::<u16>(ip.l4 + 2).ok()?);
    let (start, flags) = if ip.proto == IPPROTO_UDP {
        (ip.l4 + 8, 0)
    } else {
        let data_offset: u8 = ctx.load(ip.l4 + 12).ok()?;
        (ip.l4 + usize::from(data_offset >> 4) * 4 + 2, DNS_TCP)
    };
    let total = ctx.len() as usize;
    // A DNS header is 12 bytes: anything shorter (a bare TCP ACK) is not a message.
    if total < start + 12 {
        return None;
    }
    count(Counter::DnsResponseSeen);
    let size = total - start;
    // In [1, DNS_RESPONSE_DATA_LEN] in a form the verifier can see (size >= 12 here).
    let copy = ((size.min(DNS_RESPONSE_DATA_LEN) as u32 - 1) & COPY_MASK) + 1;
    let mut entry = emit::reserve::<DnsResponseRecord>()?;
    let rec = entry.as_mut_ptr();
    // SAFETY: `rec` points at a reserved, writable DnsResponseRecord-sized slot; the skb
    // helpers take the context's own skb and write at most `copy` (<= the buffer) bytes.
    let loaded = unsafe {
        (*rec).header = EventHeader {
            kind: EventKind::DnsResponse as u32,
            size: size_of::<DnsResponseRecord>() as u32,
            timestamp_ns: bpf_ktime_get_boot_ns(),
            pid: 0,
            tgid: 0,
            ppid: 0,
            uid: 0,
            gid: 0,
            outcome: 0,
            cgroup_id: bpf_skb_cgroup_id(ctx.skb.skb.cast()),
            rule_index: 0,
            generation: 0,
            hook: Hook::CgroupSkbIngress as u32,
            _pad: 0,
        };
        (*rec).flags = flags
            | if size > DNS_RESPONSE_DATA_LEN {
                DNS_TRUNCATED
            } else {
                0
            };
        (*rec).size = size as u32;
        (*rec)._pad = 0;
        (*rec).server = ip.server;
        (*rec).client = ip.client;
        bpf_skb_load_bytes(
            ctx.skb.skb.cast(),
            start as u32,
            (*rec).data.as_mut_ptr().cast(),
            copy,
        ) == 0
    };
    if !loaded {
        entry.discard(0);
        return None;
    }
    // SAFETY: as above.
    unsafe { (*rec).data_len = copy };
    entry.submit(emit::event_flags());
    Some(())
}
