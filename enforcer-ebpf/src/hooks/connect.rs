//! Connects: tracepoint `syscalls/sys_enter_connect` (signal and monitor tiers) and LSM
//! `socket_connect` (lsm tier). Both read the destination, look it up in the connect plan
//! (`CONNECT_V4_PLAN` / `CONNECT_V6_PLAN`, longest prefix wins) and record IPv4/IPv6 connects
//! (all of them, or only those a rule is about: see the last rows of the table); other
//! families (unix sockets, netlink) are ignored.
//!
//! LSM prototype: `int security_socket_connect(struct socket *sock, struct sockaddr *address,
//! int addrlen)`; the program sees `ctx.arg(0..3)` and `ctx.arg(3)` = the return value of the
//! LSMs before it. The tracepoint reads `(fd, uservaddr, addrlen)` from its record.
//!
//! | tier | plan match (with an action) | action | record |
//! |---|---|---|---|
//! | lsm (LSM hook) | rule `deny`, enforcing | `-EPERM`: no packet leaves (+ SIGKILL if the rule kills) | `deny` |
//! | lsm (LSM hook) | rule `kill` only, enforcing | 0, SIGKILL | `kill` |
//! | signal (tracepoint) | deny or kill rule, enforcing | SIGKILL (the SYN may leave, no data does) | `kill` |
//! | any | rule or engine in monitor mode | none | `would_deny` / `would_kill` |
//! | any | an entry with rules (`PLAN_FLAG_RECORD`), no action | none | the connect |
//! | any | no entry, or an exclusion | none | the connect, unless `PLAN_SETTINGS` says every connect rule is in the plan (then only `connect_seen` counts it) |
//! | lsm | the tracepoint | returns at once: the LSM hook records | — |

use aya_ebpf::{
    macros::{lsm, tracepoint},
    programs::{LsmContext, TracePointContext},
};
use enforcer_common::{
    config::Tier,
    event::{Counter, EventKind, Hook},
    net::SockAddr,
    plan::{PLAN_FLAG_RECORD, RECORD_CONNECT_MATCHED_ONLY},
};

use super::{Verdict, sockaddr_call};
use crate::{
    emit,
    maps::{config, count, plan_settings},
    net::{self, Space},
    plan::{Site, act},
};

/// `syscalls/sys_enter_connect(fd, uservaddr, addrlen)`.
#[tracepoint(category = "syscalls", name = "sys_enter_connect")]
pub(crate) fn tp_sys_enter_connect(ctx: TracePointContext) -> u32 {
    let cfg = config();
    if cfg.tier == Tier::Lsm as u32 {
        return 0;
    }
    let mut dest = SockAddr::default();
    let Some((fd, sock_type)) = sockaddr_call(&ctx, &mut dest) else {
        return 0;
    };
    let _ = on_connect(&dest, fd, sock_type, Site::Tracepoint);
    0
}

/// LSM `socket_connect`; see the module documentation for the verdict table.
#[lsm(hook = "socket_connect")]
pub(crate) fn lsm_socket_connect(ctx: LsmContext) -> i32 {
    let previous: i32 = ctx.arg(3);
    if previous != 0 {
        return previous;
    }
    if config().tier != Tier::Lsm as u32 {
        return 0;
    }
    let sock: *const u8 = ctx.arg(0);
    let addr: u64 = ctx.arg(1);
    let addr_len: i32 = ctx.arg(2);
    let mut dest = SockAddr::default();
    if !net::read_sockaddr(addr, addr_len as u64, Space::Kernel, &mut dest) {
        return 0;
    }
    on_connect(&dest, 0, net::socket_type(sock), Site::Lsm).ret()
}

/// Looks `dest` up, acts, records; returns whether to deny (LSM site only).
#[inline(always)]
fn on_connect(dest: &SockAddr, fd: u32, sock_type: u32, site: Site) -> Verdict {
    count(Counter::ConnectSeen);
    let mut verdict = emit::Verdict::NONE;
    let mut deny = false;
    let plan = net::lookup_connect(dest);
    let about_a_rule = plan.is_some_and(|p| p.flags & PLAN_FLAG_RECORD != 0);
    if let Some(plan) = plan
        && plan.actions != 0
    {
        count(Counter::ConnectMatched);
        (verdict, deny) = act(&plan, &config(), site);
    }
    // In-kernel approver: when every connect rule is in the plan, a connect no entry stands
    // for concerns no rule and is not reported (counted as seen only).
    if !about_a_rule && plan_settings().record & RECORD_CONNECT_MATCHED_ONLY != 0 {
        return Verdict::Allow;
    }
    let hook = match site {
        Site::Lsm => Hook::LsmSocketConnect,
        Site::Tracepoint => Hook::TpSysEnterConnect,
    };
    let facts = emit::SocketFacts {
        fd,
        sock_type,
        addr: dest,
        local_port: 0,
    };
    emit::socket_record(EventKind::Connect, hook, &facts, &verdict);
    Verdict::deny_if(deny)
}
