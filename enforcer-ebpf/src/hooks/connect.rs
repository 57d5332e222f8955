//! Connects: tracepoint `syscalls/sys_enter_connect` (signal and monitor tiers) and LSM
//! `socket_connect` (lsm tier). Both read the destination, look it up in the connect plan
//! (`CONNECT_V4_PLAN` / `CONNECT_V6_PLAN`, longest prefix wins) and record every IPv4/IPv6
//! connect; other families (unix sockets, netlink) are ignored.
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
//! | any | no | none | the connect |
//! | lsm | the tracepoint | returns at once: the LSM hook records | — |

use aya_ebpf::{
    helpers::generated::bpf_get_current_comm,
    macros::{lsm, tracepoint},
    programs::{LsmContext, TracePointContext},
};
use enforcer_common::{
    config::Tier,
    event::{COMM_LEN, Counter, EventKind, Hook},
    net::{ConnectRecord, SockAddr},
};

use super::{Verdict, sys_enter_send::syscall_arg};
use crate::{
    emit, kernel,
    maps::{config, count},
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
    let (Ok(fd), Ok(addr), Ok(addr_len)) = (
        syscall_arg(&ctx, 0),
        syscall_arg(&ctx, 1),
        syscall_arg(&ctx, 2),
    ) else {
        count(Counter::ReadError);
        return 0;
    };
    let mut dest = SockAddr::default();
    if !net::read_sockaddr(addr, addr_len, Space::User, &mut dest) {
        return 0;
    }
    let sock_type = kernel::socket_file(fd as u32)
        .and_then(net::socket_of_file)
        .map_or(0, net::socket_type);
    let _ = on_connect(&dest, fd as u32, sock_type, Site::Tracepoint);
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
    if let Some(plan) = net::lookup_connect(dest)
        && plan.actions != 0
    {
        count(Counter::ConnectMatched);
        (verdict, deny) = act(&plan, &config(), site);
    }
    let hook = match site {
        Site::Lsm => Hook::LsmSocketConnect,
        Site::Tracepoint => Hook::TpSysEnterConnect,
    };
    if let Some(mut entry) = emit::reserve::<ConnectRecord>() {
        let rec = entry.as_mut_ptr();
        // SAFETY: `rec` points at a reserved, writable ConnectRecord-sized slot.
        unsafe {
            (*rec).header = emit::header(
                EventKind::Connect,
                size_of::<ConnectRecord>(),
                hook,
                0,
                &verdict,
            );
            (*rec).fd = fd;
            (*rec).sock_type = sock_type;
            (*rec).addr = *dest;
            // On failure the helper zeroes the buffer itself.
            bpf_get_current_comm((*rec).comm.as_mut_ptr().cast(), COMM_LEN as u32);
        }
        entry.submit(0);
    }
    if deny { Verdict::Deny } else { Verdict::Allow }
}
