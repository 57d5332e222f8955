//! What leaves a socket, in the signal and monitor tiers: `cgroup_skb/egress`, attached to the
//! cgroup v2 root so every IPv4/IPv6 packet a local socket sends passes through it, whatever
//! made it (`write(2)`, `sendmsg`, io_uring, `sendfile`, a retransmission). It replaces the
//! send tracepoints there (`sys_enter_send.rs`, the fallback without cgroup v2), so an
//! ordinary `write(2)` pays nothing, and it can drop what it refuses, so a refused query or
//! login never reaches the network.
//!
//! | packet | classified as | with |
//! |---|---|---|
//! | a UDP datagram whose data starts with a DNS query header (`dns::looks_like_query`), or a TCP segment whose data is a 2-byte length prefix and such a message, to any port | DNS query (`dns_query::matched_plan`) | `DNS_SCRATCH` |
//! | any other TCP segment whose data starts like a JSON object | JSON-RPC payload (`payload::method_plan`): stratum logins | `PAYLOAD_SCRATCH` |
//! | anything else | nothing: a few loads per packet | |
//!
//! | plan match (with an action) | action | record |
//! |---|---|---|
//! | deny or kill rule, enforcing | drop the packet (UDP: the send fails with `EPERM`; TCP: the segment never leaves, and the daemon aborts the connection), and for a kill rule the daemon kills the socket's owner (`OUTCOME_KILL_DEFERRED`) first | `deny` (+ `kill`) |
//! | rule or engine in monitor mode | none | `would_deny` / `would_kill` |
//! | none | none | the query or payload (no verdict) |
//!
//! A packet is handled outside its sender's context (a TCP segment may leave from a timer or
//! a softirq), so the process in the record is the socket's owner (`socket_state.rs`), never
//! the current task. A refused TCP segment stays queued and TCP tries it again: each try is
//! dropped again, judged and recorded once, until the daemon aborts the connection
//! (`SOCK_DESTROY`, found by the record's peer and `PacketSocket`: the socket's cookie and
//! local address). Only a message's first segment is judged: a TCP DNS query or a JSON object
//! split across segments is judged on what its first segment holds.

use aya_ebpf::{macros::cgroup_skb, programs::SkBuffContext};
use enforcer_common::{
    event::{Counter, EventKind, Hook, NO_FD, PAYLOAD_LEN, PayloadRecord},
    net::{DNS_DATA_LEN, DNS_TCP, DNS_TRUNCATED, DnsRecord, SockAddr},
    plan::PlanVerdict,
};

use super::{
    dns_query, payload,
    socket_state::{Owner, SocketState, owner_in, state_of_packet},
};
use crate::{
    classify::starts_like_json_object,
    dns::{self, MIN_QUERY_LEN},
    emit,
    maps::{DNS_SCRATCH, PAYLOAD_SCRATCH, config, count},
    packet::{Ip, Transport, copy_len, ip_header, load, sending_socket, transport},
    plan::act_for_owner,
};

/// Program: see the module documentation. 1 lets the packet go, 0 drops it.
#[cgroup_skb]
pub(crate) fn cgroup_skb_egress(ctx: SkBuffContext) -> i32 {
    // Two constants, so the verifier sees the return value in [0, 1].
    if core::hint::black_box(on_packet(&ctx) == Some(true)) {
        0
    } else {
        1
    }
}

/// `Some(true)`: drop the packet.
#[inline(always)]
fn on_packet(ctx: &SkBuffContext) -> Option<bool> {
    let ip = ip_header(ctx)?;
    let l4 = transport(ctx, &ip)?;
    let payload = l4.payload;
    let total = ctx.len() as usize;
    // A DNS header is 12 bytes, and so is the shortest JSON-RPC call worth a look.
    if total < payload + 12 {
        return None;
    }
    let size = total - payload;
    let mut server = ip.dst;
    server.port = l4.dst_port;
    let ends = Ends {
        peer: server,
        ip: &ip,
        l4: &l4,
    };
    // Classified by content, whatever the port (a resolver on a port of its own is still
    // asked a query); DNS first: a query's random id could start like `{`, never the other
    // way round. A read past a short packet fails: then only the JSON test is tried.
    let mut head = [0u8; 16];
    let long = load(ctx, payload, head.as_mut_ptr(), 16);
    let Some(seq) = l4.seq else {
        if long && size >= MIN_QUERY_LEN as usize && dns::looks_like_query(&head, 0) {
            return on_query(ctx, payload, total, None, &ends);
        }
        return None;
    };
    let seq = Some(seq);
    let prefix = usize::from(u16::from_be_bytes([head[0], head[1]]));
    if long
        && size >= MIN_QUERY_LEN as usize + 2
        && prefix + 2 == size
        && dns::looks_like_query(&head, 2)
    {
        return on_query(ctx, payload + 2, total, seq, &ends);
    }
    let mut short = [0u8; 8];
    if long {
        short.copy_from_slice(&head[..8]);
    } else if !load(ctx, payload, short.as_mut_ptr(), 8) {
        return None;
    }
    if !starts_like_json_object(&short, 8) {
        return None;
    }
    on_json(ctx, payload, total, seq, &ends)
}

/// Where a judged packet came from and went: the record's peer and sending socket.
struct Ends<'a> {
    peer: SockAddr,
    ip: &'a Ip,
    l4: &'a Transport,
}

/// Whether this TCP segment (`seq`; `None` for UDP) is a new try of the one its socket
/// (`state`) last had refused: then it is dropped again, not judged or recorded again.
#[inline(always)]
fn tried_again(state: *const SocketState, seq: Option<u32>) -> bool {
    let Some(seq) = seq else {
        return false;
    };
    // SAFETY: a non-null pointer from the storage helper points at the socket's state.
    !state.is_null() && unsafe { (*state).refused != 0 && (*state).refused_seq == seq }
}

/// The owner of the socket (`state`), and the verdict of `plan` for it; a refused TCP segment
/// (`seq`) is remembered in the socket's state, created if it has none (see [`tried_again`]).
#[inline(always)]
fn judge(
    ctx: &SkBuffContext,
    state: *mut SocketState,
    plan: Option<PlanVerdict>,
    seq: Option<u32>,
) -> (Owner, emit::Verdict, bool) {
    let owner = owner_in(state);
    let Some(plan) = plan else {
        return (owner, emit::Verdict::NONE, false);
    };
    let (verdict, deny) = act_for_owner(&plan, &config(), owner.tgid());
    if deny && let Some(seq) = seq {
        let state = if state.is_null() {
            state_of_packet(ctx, true)
        } else {
            state
        };
        if !state.is_null() {
            // SAFETY: a non-null pointer from the storage helper points at the socket's state.
            unsafe {
                (*state).refused_seq = seq;
                (*state).refused = 1;
            }
        }
    }
    (owner, verdict, deny)
}

/// A DNS message at `start` (after the TCP length prefix of segment `seq`; `None`: UDP):
/// recorded, judged.
#[inline(always)]
fn on_query(
    ctx: &SkBuffContext,
    start: usize,
    total: usize,
    seq: Option<u32>,
    ends: &Ends,
) -> Option<bool> {
    let state = state_of_packet(ctx, false);
    if tried_again(state, seq) {
        return Some(true);
    }
    let tcp = seq.is_some();
    count(Counter::DnsSeen);
    let scratch = DNS_SCRATCH.get_ptr_mut(0)?;
    // SAFETY: per-CPU scratch from a successful look-up; no re-entry on this CPU.
    let scratch = unsafe { &mut *scratch };
    let size = total - start;
    let copy = copy_len::<DNS_DATA_LEN>(size);
    let rec = &mut scratch.record;
    if !load(ctx, start, rec.data.as_mut_ptr(), copy) {
        return None;
    }
    rec.fd = NO_FD;
    rec.size = size as u32;
    rec.data_len = copy;
    rec.flags = if tcp { DNS_TCP } else { 0 };
    if size > DNS_DATA_LEN {
        rec.flags |= DNS_TRUNCATED;
    }
    rec.server = ends.peer;
    rec.name_hash = 0;
    rec.socket = sending_socket(ctx, ends.ip, ends.l4);
    let plan = dns_query::matched_plan(scratch, copy as usize);
    let (owner, verdict, deny) = judge(ctx, state, plan, seq);
    let rec = &mut scratch.record;
    rec.header = emit::packet_header(
        ctx,
        EventKind::Dns,
        size_of::<DnsRecord>(),
        Hook::CgroupSkbEgress,
        &verdict,
        &owner,
    );
    rec.comm = owner.comm;
    emit::urgent_record(rec);
    Some(deny)
}

/// A TCP segment (`seq`) whose data starts like a JSON object: recorded and judged when it is
/// a JSON-RPC call.
#[inline(always)]
fn on_json(
    ctx: &SkBuffContext,
    start: usize,
    total: usize,
    seq: Option<u32>,
    ends: &Ends,
) -> Option<bool> {
    let state = state_of_packet(ctx, false);
    if tried_again(state, seq) {
        return Some(true);
    }
    let scratch = PAYLOAD_SCRATCH.get_ptr_mut(0)?;
    // SAFETY: per-CPU scratch from a successful look-up; no re-entry on this CPU.
    let scratch = unsafe { &mut *scratch };
    let size = total - start;
    let copy = copy_len::<PAYLOAD_LEN>(size);
    if !load(ctx, start, scratch.record.data.as_mut_ptr(), copy) {
        return None;
    }
    let plan = payload::method_plan(scratch, copy as usize, NO_FD, size as u64, true)?;
    let (owner, verdict, deny) = judge(ctx, state, plan, seq);
    let rec = &mut scratch.record;
    rec.peer = ends.peer;
    rec.socket = sending_socket(ctx, ends.ip, ends.l4);
    rec.header = emit::packet_header(
        ctx,
        EventKind::Payload,
        size_of::<PayloadRecord>(),
        Hook::CgroupSkbEgress,
        &verdict,
        &owner,
    );
    rec.comm = owner.comm;
    emit::urgent_record(rec);
    Some(deny)
}
