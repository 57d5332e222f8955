//! LSM `socket_sendmsg`: the lsm tier's view of every socket send (`write`, `send*`, `writev`,
//! io_uring sends), and its deny point for stratum payloads and DNS pool look-ups.
//!
//! Kernel prototype: `int security_socket_sendmsg(struct socket *sock, struct msghdr *msg,
//! int size)`; the BPF program sees `ctx.arg(0) = sock`, `ctx.arg(1) = msg`, and `ctx.arg(3)`
//! = the return value of the LSMs before it. The send is read from the kernel's own copy of it
//! (offsets and `enum iter_type` values from BTF: `KernelOffsets::msghdr_*`, `iter_*`):
//!
//! | `msg->msg_iter` | first buffer | total |
//! |---|---|---|
//! | `ITER_UBUF` (`write`, `send`, and 6.4+ single-buffer calls) | `ubuf + iov_offset` | `count` |
//! | `ITER_IOVEC` (`sendmsg`, `writev`, ...) | the kernel's copy of `iov[0]` (or `iov[1]` after a 2-byte TCP DNS length prefix) | `count` |
//! | any other (kernel buffers) | not inspected | |
//!
//! The destination is `msg->msg_name` (the kernel's copy of the caller's address), else the
//! connected peer. `sendmmsg` reaches the hook once per message, so every message is judged.
//! Records carry no descriptor (`fd` is `NO_FD`): the hook has the socket, not the fd.
//! Then `send.rs` classifies it like the tracepoints do:
//!
//! | situation | returns | record |
//! |---|---|---|
//! | an earlier LSM refused | that value, unchanged | none |
//! | plan match, rule `deny`, enforcing | `-EPERM`: not a byte leaves (+ SIGKILL if the rule kills) | `deny` (+ `kill`) |
//! | plan match, rule `kill` only, enforcing | 0, SIGKILL sent before the send proceeds | `kill` |
//! | plan match, rule or engine in monitor mode | 0 | `would_deny` / `would_kill` |
//! | a query or JSON-RPC payload, no match | 0 | the query / payload |
//! | anything else, or the engine's own send | 0 | none |

use aya_ebpf::{
    helpers::{bpf_get_current_pid_tgid, bpf_probe_read_kernel},
    macros::lsm,
    programs::LsmContext,
};
use enforcer_common::{
    config::Tier,
    event::{Hook, NO_FD},
};

use super::{
    Verdict, fail_open,
    payload::read_user,
    send::{Send, gathered},
};
use crate::{
    kernel::{ReadError, read_at},
    maps::{config, offset},
    plan::Site,
};

/// Entry point; see the module documentation for the verdict table.
#[lsm(hook = "socket_sendmsg")]
pub(crate) fn lsm_socket_sendmsg(ctx: LsmContext) -> i32 {
    let previous: i32 = ctx.arg(3);
    if previous != 0 {
        return previous;
    }
    let cfg = config();
    if cfg.tier != Tier::Lsm as u32 || (bpf_get_current_pid_tgid() >> 32) as u32 == cfg.engine_tgid
    {
        return 0;
    }
    let sock: *const u8 = ctx.arg(0);
    let msg: *const u8 = ctx.arg(1);
    fail_open(gathered(msghdr_send(sock, msg), Site::Lsm).map(Verdict::deny_if))
}

/// Reads a `struct iovec { iov_base @0, iov_len @8 }` of the kernel's copy of the array.
#[inline(always)]
fn kernel_iovec(at: u64) -> Result<[u64; 2], ReadError> {
    // SAFETY: probe_read_kernel validates the address.
    unsafe { bpf_probe_read_kernel(at as *const [u64; 2]) }.map_err(|_| ReadError)
}

/// The [`Send`] of `sock` and `msg`; `Ok(None)` for kernel buffers (nothing a process wrote).
#[inline(always)]
fn msghdr_send(sock: *const u8, msg: *const u8) -> Result<Option<Send>, ReadError> {
    let iter = msg.wrapping_add(offset(|o| &o.msghdr_iter) as usize);
    let kind: u8 = read_at(iter, offset(|o| &o.iter_type))?;
    let kind = u32::from(kind);
    let base: u64 = read_at(iter, offset(|o| &o.iter_ubuf))?;
    let skip: u64 = read_at(iter, offset(|o| &o.iter_iov_offset))?;
    let count: u64 = read_at(iter, offset(|o| &o.iter_count))?;
    let (buf, len, split_prefix) = if kind == offset(|o| &o.iter_type_ubuf) {
        (base.wrapping_add(skip), count, 0)
    } else if kind == offset(|o| &o.iter_type_iovec) {
        let segs: u64 = read_at(iter, offset(|o| &o.iter_nr_segs))?;
        if segs == 0 {
            return Ok(None);
        }
        let first = kernel_iovec(base)?;
        let len = first[1].saturating_sub(skip);
        let buf = first[0].wrapping_add(skip);
        if len == 2 && segs >= 2 {
            // glibc's resolver writes a TCP query's length prefix and the query as two
            // iovecs: judge the query, knowing the prefix.
            let mut prefix = [0u8; 2];
            if !read_user(buf, &mut prefix) {
                return Err(ReadError);
            }
            let second = kernel_iovec(base.wrapping_add(16))?;
            (
                second[0],
                second[1],
                1 + u64::from(u16::from_be_bytes(prefix)),
            )
        } else {
            (buf, len, 0)
        }
    } else {
        return Ok(None);
    };
    let addr: u64 = read_at(msg, offset(|o| &o.msghdr_name))?;
    let addr_len: i32 = read_at(msg, offset(|o| &o.msghdr_namelen))?;
    Ok(Some(Send {
        fd: NO_FD,
        hook: Hook::LsmSocketSendmsg as u32,
        buf,
        buf_len: len.min(count),
        total_len: count,
        total_known: 1,
        addr,
        addr_len: u64::try_from(addr_len).unwrap_or(0),
        split_prefix,
        sock: sock as u64,
        addr_in_kernel: 1,
    }))
}
