//! Binds and accepted connections, seen in every tier (detection only: no rule denies them).
//!
//! | hook | reads | record |
//! |---|---|---|
//! | tracepoint `syscalls/sys_enter_bind(fd, umyaddr, addrlen)` | the local address asked for (user `sockaddr`), the socket type | `Bind` |
//! | tracepoints `syscalls/sys_exit_accept`, `sys_exit_accept4` (one program) | the new descriptor (`ret`): its socket's peer (`sock_common`) and local port | `Accept` |
//!
//! Both return at once unless the plan asks for their records (`PLAN_SETTINGS`: some enabled
//! rule is about binds / accepts), so a busy server pays one array look-up per call. Other
//! families than IPv4/IPv6 (unix sockets, netlink) are ignored. io_uring accepts are not seen.

use aya_ebpf::{macros::tracepoint, programs::TracePointContext};
use enforcer_common::{
    event::{Counter, EventKind, Hook},
    net::SockAddr,
    plan::{RECORD_ACCEPTS, RECORD_BINDS},
};

use super::sockaddr_call;
use crate::syscall_record::syscall_ret;
use crate::{
    emit, kernel,
    maps::{count, plan_settings},
    net,
};

/// `syscalls/sys_enter_bind(fd, umyaddr, addrlen)`.
#[tracepoint(category = "syscalls", name = "sys_enter_bind")]
pub(crate) fn tp_sys_enter_bind(ctx: TracePointContext) -> u32 {
    if plan_settings().record & RECORD_BINDS == 0 {
        return 0;
    }
    let mut local = SockAddr::default();
    let Some((fd, sock_type)) = sockaddr_call(&ctx, &mut local) else {
        return 0;
    };
    let facts = emit::SocketFacts {
        fd,
        sock_type,
        addr: &local,
        local_port: local.port,
    };
    emit::socket_record(
        EventKind::Bind,
        Hook::TpSysEnterBind,
        &facts,
        &emit::Verdict::NONE,
    );
    0
}

/// `syscalls/sys_exit_accept(ret)` and `syscalls/sys_exit_accept4(ret)`: `ret` is the new
/// descriptor, or a negative errno (nothing accepted).
#[tracepoint(category = "syscalls", name = "sys_exit_accept")]
pub(crate) fn tp_sys_exit_accept(ctx: TracePointContext) -> u32 {
    if plan_settings().record & RECORD_ACCEPTS == 0 {
        return 0;
    }
    let Ok(ret) = syscall_ret(&ctx) else {
        count(Counter::ReadError);
        return 0;
    };
    let fd = ret as i64;
    if !(0..=i64::from(i32::MAX)).contains(&fd) {
        return 0;
    }
    let fd = fd as u32;
    let Some(sock) = kernel::socket_file(fd).and_then(net::socket_of_file) else {
        return 0;
    };
    let mut peer = SockAddr::default();
    if !net::socket_peer(sock, &mut peer) {
        return 0;
    }
    let facts = emit::SocketFacts {
        fd,
        sock_type: net::socket_type(sock),
        addr: &peer,
        local_port: net::socket_local_port(sock),
    };
    emit::socket_record(
        EventKind::Accept,
        Hook::TpSysExitAccept,
        &facts,
        &emit::Verdict::NONE,
    );
    0
}
