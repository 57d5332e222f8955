//! DNS queries a process sends, called from `send.rs` (LSM `socket_sendmsg` in the lsm tier, the
//! send tracepoints in the signal tier without cgroup v2) once the first bytes look like a query
//! header (`egress.rs`, the signal tier's usual hook, shares [`matched_plan`]):
//! 1. stop unless the send is on a socket;
//! 2. copy up to 512 bytes of the message (after the TCP length prefix, if any);
//! 3. parse the question name and look it up in `DNS_NAME_PLAN` / `DNS_DOMAIN_PLAN`
//!    (`dns.rs`); a name the kernel cannot parse is recorded and counted, not matched;
//! 4. note the server: the syscall's address, else the connected socket's peer.
//!
//! | seen by | plan match (with an action) | action |
//! |---|---|---|
//! | LSM `socket_sendmsg` | deny rule, enforcing | refuse the send with EPERM (the resolver call fails), record `deny` (+ `kill` if the rule kills) |
//! | send tracepoint | deny or kill rule, enforcing | SIGKILL to the sender (a tracepoint cannot deny), record `kill` |
//! | `cgroup_skb/egress` | deny or kill rule, enforcing | drop the query (a UDP send fails with EPERM), record `deny`; the daemon kills for a kill rule |
//! | any | rule or engine in monitor mode | record `would_deny` / `would_kill` |
//! | any | no | record the query (no verdict) |

use aya_ebpf::helpers::generated::bpf_get_current_comm;
use enforcer_common::{
    event::{COMM_LEN, Counter, EventKind, Hook},
    net::{
        DNS_DATA_LEN, DNS_NAME_UNPARSED, DNS_SERVER_FROM_SOCKET, DNS_TCP, DNS_TRUNCATED, DnsRecord,
        PacketSocket, SockAddr,
    },
    plan::PlanVerdict,
};

use super::{payload::read_user, send::Send};
use crate::{
    dns, emit,
    kernel::ReadError,
    maps::{DNS_SCRATCH, DnsScratch, config, count},
    net,
    plan::{Site, act},
};

/// Records (and, where the plan says so, stops) a DNS query; see the module documentation.
/// `Ok(true)`: refuse the send.
#[inline(always)]
pub(crate) fn on_query(send: &Send, tcp: bool, site: Site) -> Result<bool, ReadError> {
    let Some(sock) = send.socket() else {
        return Ok(false);
    };
    count(Counter::DnsSeen);
    let scratch = DNS_SCRATCH.get_ptr_mut(0).ok_or(ReadError)?;
    // SAFETY: per-CPU scratch from a successful look-up; no re-entry on this CPU.
    let scratch = unsafe { &mut *scratch };
    let (start, size) = if tcp && send.split_prefix == 0 {
        (send.buf + 2, send.buf_len - 2)
    } else {
        (send.buf, send.buf_len)
    };
    let rec = &mut scratch.record;
    // Constant read sizes, largest first (see payload.rs for why).
    let data = &mut rec.data;
    let got = if read_user(start, &mut data[..]) {
        DNS_DATA_LEN
    } else if read_user(start, &mut data[..256]) {
        256
    } else if read_user(start, &mut data[..128]) {
        128
    } else if read_user(start, &mut data[..64]) {
        64
    } else {
        return Err(ReadError);
    };
    let data_len = if size < got as u64 {
        size as usize
    } else {
        got
    };
    rec.fd = send.fd;
    rec.size = size.min(u64::from(u32::MAX)) as u32;
    rec.data_len = data_len as u32;
    rec.flags = 0;
    if tcp {
        rec.flags |= DNS_TCP;
    }
    if size > DNS_DATA_LEN as u64 {
        rec.flags |= DNS_TRUNCATED;
    }
    rec.server = SockAddr::default();
    if !net::read_sockaddr(send.addr, send.addr_len, send.addr_space(), &mut rec.server)
        && net::socket_peer(sock, &mut rec.server)
    {
        rec.flags |= DNS_SERVER_FROM_SOCKET;
    }
    rec.name_hash = 0;
    rec.socket = PacketSocket::default();
    let mut verdict = emit::Verdict::NONE;
    let mut deny = false;
    if let Some(plan) = matched_plan(scratch, data_len) {
        (verdict, deny) = act(&plan, &config(), site);
    }
    emit_dns(&scratch.record, send.hook(), &verdict);
    Ok(deny)
}

/// Parses the question name in the first `data_len` bytes of the scratch record's data and
/// looks it up: the plan's entry when it has an action. A name the kernel cannot parse is
/// flagged on the record and counted, never matched.
#[inline(always)]
pub(crate) fn matched_plan(scratch: &mut DnsScratch, data_len: usize) -> Option<PlanVerdict> {
    let plan = match dns::parse_name(scratch, data_len) {
        Some(name_len) => dns::lookup(scratch, name_len),
        None => {
            scratch.record.flags |= DNS_NAME_UNPARSED;
            count(Counter::DnsUnparsed);
            None
        }
    }?;
    if plan.actions == 0 {
        return None;
    }
    count(Counter::DnsMatched);
    Some(plan)
}

/// Emits a DNS record: `body` with a header for the current task.
#[inline(always)]
pub(crate) fn emit_dns(body: &DnsRecord, hook: Hook, verdict: &emit::Verdict) {
    let Some(mut entry) = emit::reserve::<DnsRecord>() else {
        return;
    };
    let rec = entry.as_mut_ptr();
    // SAFETY: `rec` points at a reserved, writable DnsRecord-sized slot.
    unsafe {
        *rec = *body;
        (*rec).header = emit::header(EventKind::Dns, size_of::<DnsRecord>(), hook, 0, verdict);
        // On failure the helper zeroes the buffer itself.
        bpf_get_current_comm((*rec).comm.as_mut_ptr().cast(), COMM_LEN as u32);
    }
    entry.submit(emit::urgent_event_flags());
}
