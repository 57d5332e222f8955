//! LSM `socket_sendmsg`: the send-deny point of the lsm tier, for stratum payloads and DNS
//! pool look-ups.
//!
//! Kernel prototype: `int security_socket_sendmsg(struct socket *sock, struct msghdr *msg,
//! int size)`; the BPF program sees `ctx.arg(0) = sock`, `ctx.arg(2) = size` and `ctx.arg(3)`
//! = the return value of the LSMs before it. It runs inside the same write/send* syscall as the
//! send tracepoints, which left a `PendingSend` (payload) or `PendingDns` (query) for this
//! thread when the plan names what is being sent. The hook acts only if that entry names this
//! socket's file (and, for payloads, this size when the tracepoint knew it); `sendmmsg` reaches it once per message and the
//! first message consumes the entry.
//!
//! | situation | returns | record |
//! |---|---|---|
//! | an earlier LSM refused | that value, unchanged | none |
//! | pending entry, rule `deny`, enforcing | `-EPERM`: not a byte leaves (+ SIGKILL if the rule kills) | `deny` (+ `kill`) |
//! | pending entry, rule `kill` only, enforcing | 0, SIGKILL sent before the send proceeds | `kill` |
//! | pending entry, rule or engine in monitor mode | 0 | `would_deny` / `would_kill` |
//! | no (matching) entry | 0 | none |

use aya_ebpf::{macros::lsm, programs::LsmContext};
use enforcer_common::{
    config::Tier,
    event::{Counter, Hook, PAYLOAD_SIZE_UNKNOWN},
};

use super::{Verdict, dns_query::emit_dns, payload::emit_payload};
use crate::{
    kernel,
    maps::{PENDING_DNS, PENDING_SEND, config, count},
    plan::{Site, act},
};

/// Entry point; see the module documentation for the verdict table.
#[lsm(hook = "socket_sendmsg")]
pub(crate) fn lsm_socket_sendmsg(ctx: LsmContext) -> i32 {
    let previous: i32 = ctx.arg(3);
    if previous != 0 {
        return previous;
    }
    try_socket_sendmsg(&ctx).ret()
}

#[inline(always)]
fn try_socket_sendmsg(ctx: &LsmContext) -> Verdict {
    let cfg = config();
    if cfg.tier != Tier::Lsm as u32 {
        return Verdict::Allow;
    }
    let pid_tgid = aya_ebpf::helpers::bpf_get_current_pid_tgid();
    let sock: *const u8 = ctx.arg(0);
    if let Some(pending) = PENDING_SEND.get_ptr(pid_tgid) {
        // SAFETY: pointer from a successful map look-up; the copy is taken before the removal.
        let pending = unsafe { *pending };
        let _ = PENDING_SEND.remove(pid_tgid);
        let size: i32 = ctx.arg(2);
        let same_size =
            pending.record.flags & PAYLOAD_SIZE_UNKNOWN != 0 || size as u32 == pending.record.size;
        let same_send =
            kernel::file_of_socket(sock).is_some_and(|f| f as u64 == pending.file) && same_size;
        if !same_send {
            count(Counter::PendingStale);
            return Verdict::Allow;
        }
        let (verdict, deny) = act(&pending.verdict, &cfg, Site::Lsm);
        emit_payload(&pending.record, Hook::LsmSocketSendmsg, &verdict);
        return if deny { Verdict::Deny } else { Verdict::Allow };
    }
    let Some(pending) = PENDING_DNS.get_ptr(pid_tgid) else {
        return Verdict::Allow;
    };
    // SAFETY: pointer from a successful map look-up; the entry stays valid until the removal
    // below, which happens after the last use (the record is copied into the ring buffer).
    let pending = unsafe { &*pending };
    let same_socket = kernel::file_of_socket(sock).is_some_and(|f| f as u64 == pending.file);
    if !same_socket {
        let _ = PENDING_DNS.remove(pid_tgid);
        count(Counter::PendingStale);
        return Verdict::Allow;
    }
    let (verdict, deny) = act(&pending.verdict, &cfg, Site::Lsm);
    emit_dns(&pending.record, Hook::LsmSocketSendmsg, &verdict);
    let _ = PENDING_DNS.remove(pid_tgid);
    if deny { Verdict::Deny } else { Verdict::Allow }
}
