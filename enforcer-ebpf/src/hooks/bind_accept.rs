//! Binds and accepted connections, seen in every tier (detection only: no rule denies them).
//!
//! | hook | tier | reads | record |
//! |---|---|---|---|
//! | LSM `socket_bind(sock, address, addrlen)` / fentry on `security_socket_bind` | lsm / signal with BPF trampolines | the local address asked for (the kernel's copy), the socket type | `Bind` |
//! | LSM `sock_graft(sk, parent)` / fentry on `security_sock_graft` | lsm / signal with BPF trampolines | the accepted connection's socket (`parent->sk` is set before the hook): its peer and local port; io_uring accepts too | `Accept` |
//! | tracepoint `syscalls/sys_enter_bind(fd, umyaddr, addrlen)` | signal without trampolines | the local address asked for (user `sockaddr`), the socket type | `Bind` |
//! | tracepoints `syscalls/sys_exit_accept`, `sys_exit_accept4` (one program) | signal without trampolines | the new descriptor (`ret`): its socket's peer (`sock_common`) and local port | `Accept` |
//!
//! The hooks have the socket, not the descriptor (`fd` is `null` in their records); the
//! kernel also grafts the connections its own servers accept (`kernel_accept`), which are
//! not reported (a kernel thread has no `mm`). All of them are attached only while the plan asks for their records
//! (`PLAN_SETTINGS`: some enabled rule is about binds / accepts: `Loaded::attach_records`), and
//! return at once otherwise. Other families than IPv4/IPv6 (unix sockets, netlink) are
//! ignored. The tracepoints do not see io_uring accepts.

use aya_ebpf::{macros::tracepoint, programs::TracePointContext};
use enforcer_common::{
    event::{Counter, EventKind, Hook, NO_FD},
    net::SockAddr,
    plan::{RECORD_ACCEPTS, RECORD_BINDS},
};

use super::{
    hook_ctx::{HookCtx, hook_programs},
    sockaddr_call,
};
use crate::syscall_record::syscall_ret;
use crate::{
    emit, kernel,
    maps::{count, offset, plan_settings},
    net::{self, Space},
    typed::{self, Access, Typed},
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

/// `socket_bind(struct socket *sock, struct sockaddr *address, int addrlen)`: LSM program
/// `lsm_socket_bind`, fentry program `fentry_socket_bind`.
#[inline(always)]
fn socket_bind<C: HookCtx>(ctx: &C) -> i32 {
    let previous = ctx.previous(3);
    if previous != 0 {
        return previous;
    }
    if !C::in_tier() || plan_settings().record & RECORD_BINDS == 0 {
        return 0;
    }
    let sock: *const u8 = ctx.arg(0);
    let addr: u64 = ctx.arg(1);
    let addr_len: i32 = ctx.arg(2);
    let mut local = SockAddr::default();
    if !net::read_sockaddr(addr, addr_len as u64, Space::Kernel, &mut local) {
        return 0;
    }
    let facts = emit::SocketFacts {
        fd: NO_FD,
        sock_type: net::socket_type(sock),
        addr: &local,
        local_port: local.port,
    };
    emit::socket_record(
        EventKind::Bind,
        C::hook(Hook::LsmSocketBind),
        &facts,
        &emit::Verdict::NONE,
    );
    0
}

hook_programs!(
    socket_bind,
    "socket_bind",
    lsm_socket_bind,
    "security_socket_bind",
    fentry_socket_bind
);

/// `sock_graft(struct sock *sk, struct socket *parent)` (a void hook): LSM program
/// `lsm_sock_graft`, fentry program `fentry_sock_graft`.
#[inline(always)]
fn sock_graft<C: HookCtx>(ctx: &C) -> i32 {
    if !C::in_tier() || plan_settings().record & RECORD_ACCEPTS == 0 {
        return 0;
    }
    // A kernel thread's graft (an in-kernel server's accept): not a process's accept.
    let mm: u64 = Typed::read(typed::current_task(), offset(|o| &o.task_mm)).unwrap_or(0);
    if mm == 0 {
        return 0;
    }
    let parent: *const u8 = ctx.arg(1);
    let mut peer = SockAddr::default();
    if !net::socket_peer(parent, &mut peer) {
        return 0;
    }
    let facts = emit::SocketFacts {
        fd: NO_FD,
        sock_type: net::socket_type(parent),
        addr: &peer,
        local_port: net::socket_local_port(parent),
    };
    emit::socket_record(
        EventKind::Accept,
        C::hook(Hook::LsmSockGraft),
        &facts,
        &emit::Verdict::NONE,
    );
    0
}

hook_programs!(
    sock_graft,
    "sock_graft",
    lsm_sock_graft,
    "security_sock_graft",
    fentry_sock_graft
);
