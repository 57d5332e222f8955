//! First-payload classification of a socket send that starts like a JSON object (stratum
//! logins), called from `send.rs` (LSM `socket_sendmsg` in the lsm tier, the send tracepoints
//! in the signal tier without cgroup v2; `egress.rs`, the signal tier's usual hook, shares
//! [`method_plan`]):
//! 1. stop unless the send is on a socket;
//! 2. read up to 128 bytes and find a JSON-RPC `"method"` (`classify.rs`); stop if none;
//! 3. look the method up in `PAYLOAD_METHOD_PLAN`;
//! 4. note where it goes (the connected socket's peer: `payload.addr`).
//!
//! | seen by | plan match | action |
//! |---|---|---|
//! | LSM `socket_sendmsg` | deny rule, enforcing | refuse the send (`-EPERM`: not a byte leaves; + SIGKILL if the rule kills), record `deny` |
//! | send tracepoint | deny or kill rule, enforcing | SIGKILL, record `kill` (the write in flight still completes) |
//! | `cgroup_skb/egress` | deny or kill rule, enforcing | drop the segment (it never leaves), record `deny`; the daemon kills for a kill rule |
//! | any | rule or engine in monitor mode | record `would_deny` / `would_kill` |
//! | any | no | record the JSON-RPC payload (no verdict) |

use aya_ebpf::helpers::{bpf_probe_read_user_buf, generated::bpf_get_current_comm};
use enforcer_common::{
    event::{
        COMM_LEN, Counter, EventKind, PAYLOAD_LEN, PAYLOAD_SIZE_UNKNOWN, PAYLOAD_TRUNCATED,
        PayloadRecord,
    },
    net::{PacketSocket, SockAddr},
    plan::{METHOD_LEN, MethodKey, PlanVerdict},
};

use super::send::Send;
use crate::{
    classify::find_method,
    emit,
    kernel::ReadError,
    maps::{PAYLOAD_METHOD_PLAN, PAYLOAD_SCRATCH, PayloadScratch, config, count},
    net,
    plan::{Site, act},
};

/// Classifies a JSON-looking send; see the module documentation. `Ok(true)`: refuse it.
#[inline(always)]
pub(crate) fn on_json_send(send: &Send, site: Site) -> Result<bool, ReadError> {
    let Some(sock) = send.socket() else {
        return Ok(false);
    };
    let scratch = PAYLOAD_SCRATCH.get_ptr_mut(0).ok_or(ReadError)?;
    // SAFETY: per-CPU scratch from a successful look-up; no re-entry on this CPU.
    let scratch = unsafe { &mut *scratch };
    let rec = &mut scratch.record;
    let buf = send.buf;
    // Reads of constant sizes only: a length computed from `len` gets spilled by LLVM and
    // 6.1's verifier loses its bound. A 128-byte read can fail where a short buffer ends at an
    // unmapped page, so smaller reads follow; bytes past `len` are never used.
    let data = &mut rec.data;
    let got = if read_user(buf, &mut data[..]) {
        PAYLOAD_LEN
    } else if read_user(buf, &mut data[..64]) {
        64
    } else if read_user(buf, &mut data[..32]) {
        32
    } else if read_user(buf, &mut data[..16]) {
        16
    } else {
        return Err(ReadError);
    };
    let len = send.buf_len;
    let data_len = if len < got as u64 { len as usize } else { got };
    let Some(plan) = method_plan(
        scratch,
        data_len,
        send.fd,
        send.total_len,
        send.total_known != 0,
    ) else {
        return Ok(false);
    };
    // Where the call goes: the connected socket's peer (unknown when unreadable).
    net::socket_peer(sock, &mut scratch.record.peer);
    let mut verdict = emit::Verdict::NONE;
    let mut deny = false;
    if let Some(plan) = plan {
        (verdict, deny) = act(&plan, &config(), site);
    }
    emit_payload(&scratch.record, send.hook(), &verdict);
    Ok(deny)
}

/// Finds the JSON-RPC method in the first `data_len` bytes of the scratch record's data,
/// fills the record's other fields (`fd`, the send's `total` size when `total_known`) and
/// looks the method up: `None` when there is no method (nothing to record), else the plan's
/// entry for it, if any.
#[inline(always)]
pub(crate) fn method_plan(
    scratch: &mut PayloadScratch,
    data_len: usize,
    fd: u32,
    total: u64,
    total_known: bool,
) -> Option<Option<PlanVerdict>> {
    scratch.record.method = [0; METHOD_LEN];
    let method_len = find_method(scratch, data_len);
    let rec = &mut scratch.record;
    if method_len == 0 {
        return None;
    }
    count(Counter::PayloadClassified);
    rec.fd = fd;
    rec.size = total.min(u64::from(u32::MAX)) as u32;
    rec.data_len = data_len as u32;
    rec.method_len = method_len as u32;
    rec.flags = if total > PAYLOAD_LEN as u64 {
        PAYLOAD_TRUNCATED
    } else {
        0
    };
    if !total_known {
        rec.flags |= PAYLOAD_SIZE_UNKNOWN;
    }
    rec._pad = 0;
    // The egress hook fills them in after this.
    rec.peer = SockAddr::default();
    rec.socket = PacketSocket::default();
    let Some(plan) = PAYLOAD_METHOD_PLAN.get_ptr(MethodKey(rec.method)) else {
        return Some(None);
    };
    count(Counter::PayloadMatched);
    // SAFETY: pointer from a successful map look-up; PlanVerdict is Copy.
    Some(Some(unsafe { *plan }))
}

/// Copies `dst.len()` bytes of user memory at `buf` into `dst`; false when the read faults.
#[inline(always)]
pub(crate) fn read_user(buf: u64, dst: &mut [u8]) -> bool {
    // SAFETY: probe_read_user validates the user address and writes only into `dst`.
    unsafe { bpf_probe_read_user_buf(buf as *const u8, dst) }.is_ok()
}

/// Emits a payload record: `body` with a header for the current task.
#[inline(always)]
pub(crate) fn emit_payload(
    body: &PayloadRecord,
    hook: enforcer_common::event::Hook,
    verdict: &emit::Verdict,
) {
    let Some(mut entry) = emit::reserve::<PayloadRecord>() else {
        return;
    };
    let rec = entry.as_mut_ptr();
    // SAFETY: `rec` points at a reserved, writable PayloadRecord-sized slot.
    unsafe {
        *rec = *body;
        (*rec).header = emit::header(
            EventKind::Payload,
            size_of::<PayloadRecord>(),
            hook,
            0,
            verdict,
        );
        // On failure the helper zeroes the buffer itself.
        bpf_get_current_comm((*rec).comm.as_mut_ptr().cast(), COMM_LEN as u32);
    }
    entry.submit(emit::urgent_event_flags());
}
