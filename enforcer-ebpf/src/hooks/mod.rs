//! One file per hook. Each public program wraps a `try_*` function that returns a `Result`, so
//! the error path (fail open, counted) is written once per hook.

mod bind_accept;
mod bprm_check_security;
mod bprm_creds_from_file;
mod connect;
mod dns_query;
mod dns_response;
mod egress;
mod exec_record;
mod file_open;
mod file_ops;
mod file_path;
mod hook_ctx;
mod kernel_activity;
mod kernel_lsm;
mod lifecycle;
mod mmap_exec;
mod mmap_hash;
mod module_loaded;
mod payload;
mod sched_process_exec;
mod self_guard;
mod send;
mod socket_sendmsg;
mod socket_state;
mod sys_enter_send;
mod syscall_fentry;

pub(crate) use file_path::PathCall;
pub(crate) use socket_state::Owner;

/// Arguments of `connect` and `bind` (3): all loaded directly by `syscall_arg`.
const SOCKADDR_ARGS: usize = 3;

/// The `(fd, struct sockaddr *, addrlen)` arguments of `connect`/`bind` tracepoints: reads the
/// user address into `out` (IPv4/IPv6 only) and returns the fd and its socket type (0 when
/// the fd is not a readable socket). A record that cannot be read is counted.
#[inline(always)]
fn sockaddr_call(
    ctx: &aya_ebpf::programs::TracePointContext,
    out: &mut enforcer_common::net::SockAddr,
) -> Option<(u32, u32)> {
    use crate::{kernel, net};
    let (Ok(fd), Ok(addr), Ok(addr_len)) = (
        crate::syscall_record::syscall_arg::<SOCKADDR_ARGS>(ctx, 0),
        crate::syscall_record::syscall_arg::<SOCKADDR_ARGS>(ctx, 1),
        crate::syscall_record::syscall_arg::<SOCKADDR_ARGS>(ctx, 2),
    ) else {
        crate::maps::count(enforcer_common::event::Counter::ReadError);
        return None;
    };
    if !net::read_sockaddr(addr, addr_len, net::Space::User, out) {
        return None;
    }
    let fd = fd as u32;
    let sock_type = kernel::socket_file(fd)
        .and_then(net::socket_of_file)
        .map_or(0, net::socket_type);
    Some((fd, sock_type))
}

/// The return value of an LSM hook whose work ended in `result`: a failed kernel read fails
/// open (allow), counted in `Counter::ReadError`.
#[inline(always)]
fn fail_open(result: Result<Verdict, crate::kernel::ReadError>) -> i32 {
    match result {
        Ok(verdict) => verdict.ret(),
        Err(crate::kernel::ReadError) => {
            crate::maps::count(enforcer_common::event::Counter::ReadError);
            Verdict::Allow.ret()
        }
    }
}

/// What an LSM hook returns to the kernel.
#[repr(i32)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Let the operation proceed.
    Allow = 0,
    /// Refuse it with `-EPERM`.
    Deny = -1,
}

impl Verdict {
    /// `Deny` when `deny` (what `plan::act` decided), else `Allow`.
    #[inline(always)]
    pub(crate) fn deny_if(deny: bool) -> Self {
        if deny { Self::Deny } else { Self::Allow }
    }

    /// The hook's return value, in a form the verifier can bound to the LSM range [-4095, 0].
    /// LLVM would otherwise turn the two-valued verdict into arithmetic (`-(x)` of a 0/1 value)
    /// that the verifier cannot range-check. The value goes through `black_box` as a 64-bit
    /// stack slot (which the verifier tracks exactly) and is checked against each bound on its
    /// own, so the checks stay on the returned register and are not merged into one unsigned
    /// comparison on a copy.
    #[inline(always)]
    pub(crate) fn ret(self) -> i32 {
        let value: i64 = core::hint::black_box(self as i64);
        if value > 0 {
            return 0;
        }
        let value = core::hint::black_box(value);
        if value < -4095 {
            return 0;
        }
        value as i32
    }
}
