//! Tracepoints `syscalls/sys_enter_{write,sendto,sendmsg,sendmmsg,writev}`: classification of
//! what a process sends on a socket, in every tier. One program serves the five; for each
//! syscall it
//! gathers the same [`Send`] (fd,
//! first buffer, total length, destination address if the call names one) from its syscall's
//! arguments (at `KernelOffsets::tp_syscall_args`, 8 bytes apart) and user structures (`struct
//! user_msghdr`, `struct iovec`, stable UAPI layouts), reads the first 16 bytes, and hands the
//! send to one of:
//! - `dns_query.rs` when the bytes are the header of a DNS query (UDP, or TCP with its 2-byte
//!   length prefix): pool look-ups;
//! - `payload.rs` when they start like a JSON object: stratum logins.
//!
//! Anything else (the cost of an ordinary write) ends after that one 16-byte read.
//! `sendmsg`/`sendmmsg`/`writev`: only the first iovec is inspected (and for `sendmmsg` only
//! the first message), or the second when the first is a 2-byte TCP DNS length prefix. With several iovecs the total length is not summed (a loop over them multiplies
//! the verifier's paths past its budget on 6.1): it is reported as unknown.

use core::{ffi::c_void, mem::MaybeUninit};

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_probe_read_user_buf, generated},
    macros::{map, tracepoint},
    maps::PerCpuArray,
    programs::TracePointContext,
};
use enforcer_common::event::{Counter, Hook};

use super::{dns_query, payload};
use crate::{
    classify::starts_like_json_object,
    dns::{self, MIN_QUERY_LEN},
    kernel::ReadError,
    maps::{config, count, offsets},
    syscall_record::{syscall_arg, syscall_nr},
};

/// One send, whatever the syscall. Built in [`SEND_SCRATCH`] and read back with a volatile
/// copy before classification, so the verifier sees one state for the four syscalls instead
/// of four (each with its own constants), which 6.1's verifier cannot afford.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct Send {
    /// The file descriptor.
    pub(crate) fd: u32,
    /// The program (a `Hook` value).
    pub(crate) hook: u32,
    /// User address of the (first) buffer.
    pub(crate) buf: u64,
    /// Bytes in that buffer.
    pub(crate) buf_len: u64,
    /// Bytes the whole send carries (when `total_known`).
    pub(crate) total_len: u64,
    /// 0 when a `sendmsg` has several iovecs and `total_len` is the first one's length.
    pub(crate) total_known: u64,
    /// User address of the destination `struct sockaddr`, 0 when the call names none.
    pub(crate) addr: u64,
    /// Its length.
    pub(crate) addr_len: u64,
    /// 0, or 1 + the value of a 2-byte TCP DNS length prefix that came as its own iovec
    /// just before `buf` (glibc's resolver writes the prefix and the query as two iovecs).
    pub(crate) split_prefix: u64,
}

impl Send {
    /// The program that saw the send.
    #[inline(always)]
    pub(crate) fn hook(&self) -> Hook {
        Hook::try_from(self.hook).unwrap_or(Hook::TpSysEnterWrite)
    }
}

/// Arguments every send tracepoint has (`write`, `sendmsg`, `writev`: 3; `sendmmsg` 4,
/// `sendto` 6): the ones `syscall_arg` may load directly.
const SEND_ARGS: usize = 3;

/// Per-CPU slot a [`Send`] is built in (see its documentation).
#[map(name = "SEND_SCRATCH")]
static SEND_SCRATCH: PerCpuArray<Send> = PerCpuArray::with_max_entries(1, 0);

/// `syscalls/sys_enter_{write,sendto,sendmsg,sendmmsg}`: one program attached to the four
/// tracepoints (verified once, not four times), which tells them apart by the record's
/// `__syscall_nr` (not `common_type`: for syscall tracepoints the kernel overwrites the first
/// 8 bytes of the record it hands to BPF with a `pt_regs` pointer). The argument layouts:
/// `write(fd, buf, count)`, `sendto(fd, buff, len, flags, addr, addr_len)`,
/// `sendmsg(fd, msg, flags)`, `sendmmsg(fd, mmsg, vlen, flags)` (the first `struct mmsghdr`
/// starts with its `struct user_msghdr`).
#[tracepoint(category = "syscalls", name = "sys_enter_write")]
pub(crate) fn tp_sys_enter_send(ctx: TracePointContext) -> u32 {
    // The engine's own writes (its audit log, after every drain) are never inspected: one
    // comparison instead of reading the buffer's first bytes (about 2 us each in an exec
    // storm, measured with `bpf_stats` on the 6.18 host).
    if (bpf_get_current_pid_tgid() >> 32) as u32 == config().engine_tgid {
        return 0;
    }
    let off = offsets();
    let Ok(nr) = syscall_nr(&ctx) else {
        count(Counter::ReadError);
        return 0;
    };
    let id = nr as u32;
    let Some(slot) = SEND_SCRATCH.get_ptr_mut(0) else {
        return 0;
    };
    // SAFETY: per-CPU slot from a successful look-up; no re-entry on this CPU.
    let slot = unsafe { &mut *slot };
    // Gather first, classify once: every call of `classify` is inlined (and verified) anew.
    let gathered = if id == off.nr_write {
        direct_send(&ctx, Hook::TpSysEnterWrite, false)
    } else if id == off.nr_sendto {
        direct_send(&ctx, Hook::TpSysEnterSendto, true)
    } else if id == off.nr_sendmsg {
        msghdr_send(&ctx, Hook::TpSysEnterSendmsg)
    } else if id == off.nr_sendmmsg {
        msghdr_send(&ctx, Hook::TpSysEnterSendmmsg)
    } else if id == off.nr_writev {
        writev_send(&ctx)
    } else {
        return 0;
    };
    let result = gathered.and_then(|send| {
        let Some(send) = send else {
            return Ok(());
        };
        *slot = send;
        // SAFETY: `slot` is valid; the volatile read makes the fields opaque map data.
        let send = unsafe { core::ptr::read_volatile(slot) };
        classify(&send)
    });
    finish(result)
}

#[inline(always)]
fn finish(result: Result<(), ReadError>) -> u32 {
    if result.is_err() {
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

/// What the first bytes of a send look like.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// A DNS query (`tcp`: after a 2-byte length prefix).
    DnsQuery { tcp: bool },
    /// A JSON object.
    Json,
    /// Anything else.
    Other,
}

/// Reads the first 16 bytes and classifies them.
#[inline(always)]
fn shape(send: &Send) -> Shape {
    // Not zeroed first: a `[0u8; 16]` is a `memset` call (a byte loop, see mem.rs) on every
    // send, and the helper writes all 16 bytes anyway (zeros when the read fails).
    let mut head = MaybeUninit::<[u8; 16]>::uninit();
    // SAFETY: probe_read_user validates the user address and writes 16 bytes at `head`.
    let read = unsafe {
        generated::bpf_probe_read_user(head.as_mut_ptr().cast(), 16, send.buf as *const c_void)
    };
    // SAFETY: the helper initialized all 16 bytes, with the data or with zeros.
    let head = unsafe { head.assume_init_ref() };
    // A short buffer near an unmapped page fails the read and only the 8-byte JSON test
    // below is tried (a query is longer).
    if read != 0 {
        let mut short = [0u8; 8];
        // SAFETY: as above.
        let ok = unsafe { bpf_probe_read_user_buf(send.buf as *const u8, &mut short) }.is_ok();
        return if ok && starts_like_json_object(&short, 8) {
            Shape::Json
        } else {
            Shape::Other
        };
    }
    // DNS first: a query's random id could start like `{`, never the other way round (JSON
    // text has no zero bytes where the header has them).
    if send.split_prefix != 0 {
        if send.split_prefix - 1 == send.buf_len
            && send.buf_len >= MIN_QUERY_LEN
            && dns::looks_like_query(head, 0)
        {
            return Shape::DnsQuery { tcp: true };
        }
    } else if send.buf_len >= MIN_QUERY_LEN && dns::looks_like_query(head, 0) {
        return Shape::DnsQuery { tcp: false };
    }
    let prefix = u64::from(u16::from_be_bytes([head[0], head[1]]));
    if send.buf_len >= MIN_QUERY_LEN + 2
        && prefix + 2 == send.buf_len
        && dns::looks_like_query(head, 2)
    {
        return Shape::DnsQuery { tcp: true };
    }
    let mut short = [0u8; 8];
    short.copy_from_slice(&head[..8]);
    if starts_like_json_object(&short, 8) {
        Shape::Json
    } else {
        Shape::Other
    }
}

/// Dispatches a send by its [`shape`]; each path is reached from one call site only, so it is
/// inlined (and verified) once per program.
#[inline(always)]
fn classify(send: &Send) -> Result<(), ReadError> {
    if send.buf_len < 12 {
        return Ok(());
    }
    match shape(send) {
        Shape::DnsQuery { tcp } => dns_query::on_query(send, tcp),
        Shape::Json => payload::on_json_send(send),
        Shape::Other => Ok(()),
    }
}
