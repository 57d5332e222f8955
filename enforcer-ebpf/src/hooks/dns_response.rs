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
//! server). Costs every ingress packet two header reads (IP, then UDP/TCP) when it is not DNS.

use aya_ebpf::{macros::cgroup_skb, programs::SkBuffContext};
use enforcer_common::{
    event::{Counter, EventKind, Hook},
    net::{DNS_RESPONSE_DATA_LEN, DNS_TCP, DNS_TRUNCATED, DnsResponseRecord},
};

use super::Owner;
use crate::{
    emit,
    maps::count,
    packet::{copy_len, ip_header, is_dns_port, load, transport},
};

/// Program: see the module documentation.
#[cgroup_skb]
pub(crate) fn cgroup_skb_dns_response(ctx: SkBuffContext) -> i32 {
    let _ = on_packet(&ctx);
    1
}

#[inline(always)]
fn on_packet(ctx: &SkBuffContext) -> Option<()> {
    let ip = ip_header(ctx)?;
    let l4 = transport(ctx, &ip)?;
    if !is_dns_port(l4.src_port) {
        return None;
    }
    let mut server = ip.src;
    server.port = l4.src_port;
    let mut client = ip.dst;
    client.port = l4.dst_port;
    let (start, flags) = if l4.seq.is_none() {
        (l4.payload, 0)
    } else {
        (l4.payload + 2, DNS_TCP)
    };
    let total = ctx.len() as usize;
    // A DNS header is 12 bytes: anything shorter (a bare TCP ACK) is not a message.
    if total < start + 12 {
        return None;
    }
    count(Counter::DnsResponseSeen);
    let size = total - start;
    let copy = copy_len::<DNS_RESPONSE_DATA_LEN>(size);
    let mut entry = emit::reserve::<DnsResponseRecord>()?;
    let rec = entry.as_mut_ptr();
    // SAFETY: `rec` points at a reserved, writable DnsResponseRecord-sized slot; `load`
    // writes at most `copy` (<= the buffer) bytes.
    let loaded = unsafe {
        // A received packet: no process (userspace attributes it to its query).
        (*rec).header = emit::packet_header(
            ctx,
            EventKind::DnsResponse,
            size_of::<DnsResponseRecord>(),
            Hook::CgroupSkbIngress,
            &emit::Verdict::NONE,
            &Owner::NONE,
        );
        (*rec).flags = flags
            | if size > DNS_RESPONSE_DATA_LEN {
                DNS_TRUNCATED
            } else {
                0
            };
        (*rec).size = size as u32;
        (*rec)._pad = 0;
        (*rec).server = server;
        (*rec).client = client;
        load(ctx, start, (*rec).data.as_mut_ptr(), copy)
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
