//! Tracepoints `syscalls/sys_enter_{write,sendto,sendmsg,sendmmsg,writev}`: the sends of the
//! signal and monitor tiers where `cgroup_skb/egress` (`egress.rs`) cannot be attached (no
//! cgroup v2, a kernel that refuses it); the lsm tier sees sends in LSM `socket_sendmsg`
//! instead. Neither attaches these. One program serves the five; for each syscall it gathers a [`Send`]
//! (`send.rs`) from its syscall's arguments (at `KernelOffsets::tp_syscall_args`, 8 bytes
//! apart) and user structures (`struct user_msghdr`, `struct iovec`, stable UAPI layouts).
//!
//! A tracepoint runs on every `write(2)` of every task, a socket or not: the descriptor is
//! looked up only once the first bytes look like a query or a JSON object.
//! `sendmsg`/`sendmmsg`/`writev`: only the first iovec is inspected (and for `sendmmsg` only
//! the first message), or the second when the first is a 2-byte TCP DNS length prefix. With
//! several iovecs the total length is not summed (a loop over them multiplies the verifier's
//! paths past its budget on 6.1): it is reported as unknown.

use aya_ebpf::{
    helpers::bpf_get_current_pid_tgid, macros::tracepoint, programs::TracePointContext,
};
use enforcer_common::event::{Counter, Hook};

use super::send::{Send, gathered};
use crate::{
    kernel::ReadError,
    maps::{config, count, offset},
    plan::Site,
    syscall_record::{syscall_arg, syscall_nr},
};

/// Arguments every send tracepoint has (`write`, `sendmsg`, `writev`: 3; `sendmmsg` 4,
/// `sendto` 6): the ones `syscall_arg` may load directly.
const SEND_ARGS: usize = 3;

/// `syscalls/sys_enter_{write,sendto,sendmsg,sendmmsg,writev}`: one program attached to the
/// five tracepoints (verified once, not five times), which tells them apart by the record's
/// `__syscall_nr` (not `common_type`: for syscall tracepoints the kernel overwrites the first
/// 8 bytes of the record it hands to BPF with a `pt_regs` pointer). The argument layouts:
/// `write(fd, buf, count)`, `sendto(fd, buff, len, flags, addr, addr_len)`,
/// `sendmsg(fd, msg, flags)`, `sendmmsg(fd, mmsg, vlen, flags)` (the first `struct mmsghdr`
/// starts with its `struct user_msghdr`), `writev(fd, vec, vlen)`.
#[tracepoint(category = "syscalls", name = "sys_enter_write")]
pub(crate) fn tp_sys_enter_send(ctx: TracePointContext) -> u32 {
    // The engine's own writes (its audit log, after every drain) are never inspected: one
    // comparison instead of reading the buffer's first bytes (about 2 us each in an exec
    // storm, measured with `bpf_stats` on the 6.18 host).
    if (bpf_get_current_pid_tgid() >> 32) as u32 == config().engine_tgid {
        return 0;
    }
    let Ok(nr) = syscall_nr(&ctx) else {
        count(Counter::ReadError);
        return 0;
    };
    let id = nr as u32;
    // Gather first, classify once: every call of `classify` is inlined (and verified) anew.
    let send = if id == offset(|o| &o.nr_write) {
        direct_send(&ctx, Hook::TpSysEnterWrite, false)
    } else if id == offset(|o| &o.nr_sendto) {
        direct_send(&ctx, Hook::TpSysEnterSendto, true)
    } else if id == offset(|o| &o.nr_sendmsg) {
        msghdr_send(&ctx, Hook::TpSysEnterSendmsg)
    } else if id == offset(|o| &o.nr_sendmmsg) {
        msghdr_send(&ctx, Hook::TpSysEnterSendmmsg)
    } else if id == offset(|o| &o.nr_writev) {
        writev_send(&ctx)
    } else {
        return 0;
    };
    // A tracepoint cannot refuse: a deny is a kill (decided in `plan::act`).
    if gathered(send, Site::Tracepoint).is_err() {
        count(Counter::ReadError);
    }
    0
}

/// `write` and `sendto`: the buffer is an argument.
#[inline(always)]
fn direct_send(
    ctx: &TracePointContext,
    hook: Hook,
    has_addr: bool,
) -> Result<Option<Send>, ReadError> {
    let len = syscall_arg::<SEND_ARGS>(ctx, 2)?;
    let (addr, addr_len) = if has_addr {
        (
            syscall_arg::<SEND_ARGS>(ctx, 4)?,
            syscall_arg::<SEND_ARGS>(ctx, 5)?,
        )
    } else {
        (0, 0)
    };
    Ok(Some(Send {
        fd: syscall_arg::<SEND_ARGS>(ctx, 0)? as u32,
        hook: hook as u32,
        buf: syscall_arg::<SEND_ARGS>(ctx, 1)?,
        buf_len: len,
        total_len: len,
        total_known: 1,
        addr,
        addr_len,
        split_prefix: 0,
        sock: 0,
        addr_in_kernel: 0,
    }))
}

/// Reads a `T` from user memory.
#[inline(always)]
fn read_user<T: Copy>(addr: u64) -> Result<T, ReadError> {
    // SAFETY: probe_read_user validates the user address.
    unsafe { aya_ebpf::helpers::bpf_probe_read_user(addr as *const T) }.map_err(|_| ReadError)
}

/// `sendmsg` and `sendmmsg`: `struct user_msghdr { msg_name @0, msg_namelen @8, msg_iov @16,
/// msg_iovlen @24, ... }`.
#[inline(always)]
fn msghdr_send(ctx: &TracePointContext, hook: Hook) -> Result<Option<Send>, ReadError> {
    let fd = syscall_arg::<SEND_ARGS>(ctx, 0)? as u32;
    let msg = syscall_arg::<SEND_ARGS>(ctx, 1)?;
    let hdr: [u64; 4] = read_user(msg)?;
    let (name, name_len, iov, iov_len) = (hdr[0], hdr[1] & 0xffff_ffff, hdr[2], hdr[3]);
    iovec_send(fd, hook, iov, iov_len, name, name_len)
}

/// `writev(fd, vec, vlen)`.
#[inline(always)]
fn writev_send(ctx: &TracePointContext) -> Result<Option<Send>, ReadError> {
    let fd = syscall_arg::<SEND_ARGS>(ctx, 0)? as u32;
    let iov = syscall_arg::<SEND_ARGS>(ctx, 1)?;
    let iov_len = syscall_arg::<SEND_ARGS>(ctx, 2)?;
    iovec_send(fd, Hook::TpSysEnterWritev, iov, iov_len, 0, 0)
}

/// A send whose data is an array of `struct iovec { iov_base @0, iov_len @8 }`: the first
/// buffer, or, when the first is exactly 2 bytes and another follows (a TCP DNS length prefix
/// written on its own), the second, with the prefix noted in `split_prefix`.
#[inline(always)]
fn iovec_send(
    fd: u32,
    hook: Hook,
    iov: u64,
    iov_len: u64,
    addr: u64,
    addr_len: u64,
) -> Result<Option<Send>, ReadError> {
    if iov_len == 0 {
        return Ok(None);
    }
    let first: [u64; 2] = read_user(iov)?;
    let mut send = Send {
        fd,
        hook: hook as u32,
        buf: first[0],
        buf_len: first[1],
        total_len: first[1],
        total_known: u64::from(iov_len == 1),
        addr,
        addr_len,
        split_prefix: 0,
        sock: 0,
        addr_in_kernel: 0,
    };
    if first[1] == 2 && iov_len >= 2 {
        let prefix: [u8; 2] = read_user(first[0])?;
        let second: [u64; 2] = read_user(iov + 16)?;
        send.buf = second[0];
        send.buf_len = second[1];
        send.total_len = second[1];
        send.total_known = u64::from(iov_len == 2);
        send.split_prefix = 1 + u64::from(u16::from_be_bytes(prefix));
    }
    Ok(Some(send))
}
