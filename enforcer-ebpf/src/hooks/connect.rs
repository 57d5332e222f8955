//! Connects: `cgroup/connect4` and `cgroup/connect6` on the cgroup v2 root (signal and monitor
//! tiers), LSM `socket_connect` (lsm tier), and tracepoint `syscalls/sys_enter_connect` (the
//! signal and monitor tiers' fallback when the cgroup hooks cannot be attached: no cgroup v2,
//! or a kernel that refuses them). Each reads the destination, looks it up in the connect plan
//! (`CONNECT_V4_PLAN` / `CONNECT_V6_PLAN`, longest prefix wins) and records IPv4/IPv6 connects
//! (all of them, or only those a rule is about: see the last rows of the table); other
//! families (unix sockets, netlink) are ignored.
//!
//! The cgroup hooks run in `inet_stream_connect`/`udp` connect's `pre_connect`, whatever asked
//! for the connect: `connect(2)`, io_uring's `IORING_OP_CONNECT`, or a `sendto` with
//! `MSG_FASTOPEN`; the tracepoint sees only `connect(2)`. They see the address the caller gave
//! (`bpf_sock_addr.user_ip4`/`user_ip6`, `user_port`, network byte order) and return 1 to let
//! the connect go on, 0 to refuse it (`-EPERM`). They cannot send a signal: for a kill rule they
//! refuse the connect and the daemon kills (`OUTCOME_KILL_DEFERRED`).
//!
//! LSM prototype: `int security_socket_connect(struct socket *sock, struct sockaddr *address,
//! int addrlen)`; the program sees `ctx.arg(0..3)` and `ctx.arg(3)` = the return value of the
//! LSMs before it. The tracepoint reads `(fd, uservaddr, addrlen)` from its record.
//!
//! | tier | plan match (with an action) | action | record |
//! |---|---|---|---|
//! | lsm (LSM hook) | rule `deny`, enforcing | `-EPERM`: no packet leaves (+ SIGKILL if the rule kills) | `deny` |
//! | lsm (LSM hook) | rule `kill` only, enforcing | 0, SIGKILL | `kill` |
//! | signal (cgroup hooks) | rule `deny`, enforcing | `-EPERM`: no packet leaves | `deny` |
//! | signal (cgroup hooks) | rule `kill`, enforcing | `-EPERM`, and the daemon kills (pidfd) | `deny`, `kill` |
//! | signal (tracepoint fallback) | deny or kill rule, enforcing | SIGKILL (the SYN may leave, no data does) | `kill` |
//! | any | rule or engine in monitor mode | none | `would_deny` / `would_kill` |
//! | any | an entry with rules (`PLAN_FLAG_RECORD`), no action | none | the connect |
//! | any | no entry, or an exclusion | none | the connect, unless `PLAN_SETTINGS` says every connect rule is in the plan (then only `connect_seen` counts it) |
//! | lsm | the tracepoint | returns at once: the LSM hook records | — |

use aya_ebpf::{
    macros::{cgroup_sock_addr, lsm, tracepoint},
    programs::{LsmContext, SockAddrContext, TracePointContext},
};
use enforcer_common::{
    config::{EngineConfig, Tier},
    event::{Counter, EventKind, Hook, NO_FD},
    net::{AF_INET, AF_INET6, SockAddr},
    plan::{PLAN_FLAG_RECORD, PlanVerdict, RECORD_CONNECT_MATCHED_ONLY},
};

use super::{Verdict, sockaddr_call, socket_state::note_owner};
use crate::{
    emit,
    maps::{config, count, plan_settings},
    net::{self, Space},
    plan::{Site, act, act_in_cgroup},
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
    let _ = on_connect(
        &dest,
        fd,
        sock_type,
        Hook::TpSysEnterConnect,
        |plan, cfg| act(plan, cfg, Site::Tracepoint),
    );
    0
}

/// `cgroup/connect4`: an IPv4 connect (a `connect(2)`, an io_uring connect, ...).
#[cgroup_sock_addr(connect4)]
pub(crate) fn cgroup_connect4(ctx: SockAddrContext) -> i32 {
    cgroup_connect(&ctx, AF_INET)
}

/// `cgroup/connect6`: an IPv6 connect (IPv4-mapped addresses included, as the caller wrote
/// them).
#[cgroup_sock_addr(connect6)]
pub(crate) fn cgroup_connect6(ctx: SockAddrContext) -> i32 {
    cgroup_connect(&ctx, AF_INET6)
}

/// The cgroup hooks' shared body: 1 lets the connect go on, 0 refuses it.
#[inline(always)]
fn cgroup_connect(ctx: &SockAddrContext, family: u16) -> i32 {
    // The packets of the socket are judged outside this process's context (`egress.rs`).
    note_owner(ctx);
    // SAFETY: the kernel hands every cgroup/connect program a valid `bpf_sock_addr`.
    let sa = unsafe { &*ctx.sock_addr };
    let mut dest = SockAddr {
        family,
        // `user_port` holds the port in network byte order in its low 16 bits.
        port: u16::from_be(sa.user_port as u16),
        ..SockAddr::default()
    };
    if family == AF_INET {
        dest.addr[..4].copy_from_slice(&sa.user_ip4.to_ne_bytes());
    } else {
        for (i, word) in sa.user_ip6.iter().enumerate() {
            dest.addr[i * 4..i * 4 + 4].copy_from_slice(&word.to_ne_bytes());
        }
    }
    let verdict = on_connect(&dest, NO_FD, sa.type_, Hook::CgroupConnect, act_in_cgroup);
    // Two constants, so the verifier sees the return value in [0, 1].
    if core::hint::black_box(verdict as i32) == Verdict::Deny as i32 {
        0
    } else {
        1
    }
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
    on_connect(
        &dest,
        NO_FD,
        net::socket_type(sock),
        Hook::LsmSocketConnect,
        |plan, cfg| act(plan, cfg, Site::Lsm),
    )
    .ret()
}

/// Looks `dest` up, acts (`decide`: the site's way, `plan::act` or `plan::act_in_cgroup`),
/// records as `hook`; returns whether to deny (LSM and cgroup hooks only).
#[inline(always)]
fn on_connect(
    dest: &SockAddr,
    fd: u32,
    sock_type: u32,
    hook: Hook,
    decide: impl Fn(&PlanVerdict, &EngineConfig) -> (emit::Verdict, bool),
) -> Verdict {
    count(Counter::ConnectSeen);
    let mut verdict = emit::Verdict::NONE;
    let mut deny = false;
    let plan = net::lookup_connect(dest);
    let about_a_rule = plan.is_some_and(|p| p.flags & PLAN_FLAG_RECORD != 0);
    if let Some(plan) = plan
        && plan.actions != 0
    {
        count(Counter::ConnectMatched);
        (verdict, deny) = decide(&plan, &config());
    }
    // In-kernel approver: when every connect rule is in the plan, a connect no entry stands
    // for concerns no rule and is not reported (counted as seen only).
    if !about_a_rule && plan_settings().record & RECORD_CONNECT_MATCHED_ONLY != 0 {
        return Verdict::deny_if(deny);
    }
    let facts = emit::SocketFacts {
        fd,
        sock_type,
        addr: dest,
        local_port: 0,
    };
    emit::socket_record(EventKind::Connect, hook, &facts, &verdict);
    Verdict::deny_if(deny)
}
