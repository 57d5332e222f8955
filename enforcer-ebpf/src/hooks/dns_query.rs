//! DNS queries a process sends, called from the send tracepoints (`sys_enter_send.rs`) once the
//! first bytes look like a query header:
//! 1. stop unless the fd is a socket;
//! 2. copy up to 512 bytes of the message (after the TCP length prefix, if any);
//! 3. parse the question name and look it up in `DNS_NAME_PLAN` / `DNS_DOMAIN_PLAN`
//!    (`dns.rs`); a name the kernel cannot parse is recorded and counted, not matched;
//! 4. note the server: the syscall's address, else the connected socket's peer.
//!
//! | tier | plan match (with an action) | action |
//! |---|---|---|
//! | lsm | yes | leave a `PendingDns` for LSM `socket_sendmsg`, which fails the send with EPERM (the resolver call fails) and reports |
//! | signal | deny or kill rule, enforcing | SIGKILL to the sender (a tracepoint cannot deny), record `kill` |
//! | any | rule or engine in monitor mode | record `would_deny` / `would_kill` (lsm: via the LSM hook) |
//! | any | no | record the query (no verdict) |

use aya_ebpf::helpers::generated::bpf_get_current_comm;
use enforcer_common::{
    config::Tier,
    event::{COMM_LEN, Counter, EventKind, Hook},
    net::{
        DNS_DATA_LEN, DNS_NAME_UNPARSED, DNS_SERVER_FROM_SOCKET, DNS_TCP, DNS_TRUNCATED, DnsRecord,
        SockAddr,
    },
};

use super::{payload::read_user, sys_enter_send::Send};
use crate::{
    dns, emit,
    kernel::{self, ReadError},
    maps::{DNS_SCRATCH, PENDING_DNS, config, count},
    net::{self, Space},
    plan::{Site, act},
};

/// Records (and, where the plan says so, stops) a DNS query; see the module documentation.
#[inline(always)]
pub(crate) fn on_query(send: &Send, tcp: bool) -> Result<(), ReadError> {
    let Some(file) = kernel::socket_file(send.fd) else {
        return Ok(());
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
    let rec = &mut scratch.pending.record;
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
    if !net::read_sockaddr(send.addr, send.addr_len, Space::User, &mut rec.server)
        && let Some(sock) = net::socket_of_file(file)
        && net::socket_peer(sock, &mut rec.server)
    {
        rec.flags |= DNS_SERVER_FROM_SOCKET;
    }
    rec.name_hash = 0;

    let plan = match dns::parse_name(scratch, data_len) {
        Some(name_len) => dns::lookup(scratch, name_len),
        None => {
            scratch.pending.record.flags |= DNS_NAME_UNPARSED;
            count(Counter::DnsUnparsed);
            None
        }
    };
    let mut verdict = emit::Verdict::NONE;
    if let Some(plan) = plan
        && plan.actions != 0
    {
        count(Counter::DnsMatched);
        let cfg = config();
        if cfg.tier == Tier::Lsm as u32 {
            let pending = &mut scratch.pending;
            pending.verdict = plan;
            pending.file = file as u64;
            let pid_tgid = aya_ebpf::helpers::bpf_get_current_pid_tgid();
            // By reference, as in payload.rs: a by-value copy would not fit the stack.
            #[allow(clippy::needless_borrows_for_generic_args)]
            let _ = PENDING_DNS.insert(pid_tgid, &*pending, 0);
            return Ok(());
        }
        verdict = act(&plan, &cfg, Site::Tracepoint).0;
    }
    emit_dns(&scratch.pending.record, send.hook(), &verdict);
    Ok(())
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
