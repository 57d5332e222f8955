//! What a process sends on a socket, classified by its first bytes, whichever program saw the
//! send: the `sys_enter_{write,sendto,sendmsg,sendmmsg,writev}` tracepoints (signal and monitor
//! tiers, `sys_enter_send.rs`) or LSM `socket_sendmsg` (lsm tier, `socket_sendmsg.rs`). Each
//! gathers the same [`Send`] (first buffer, total length, destination address if the call
//! names one, the socket when it already has it), and [`classify`] hands it to one of:
//! - `dns_query.rs` when the bytes are the header of a DNS query (UDP, or TCP with its 2-byte
//!   length prefix): pool look-ups;
//! - `payload.rs` when they start like a JSON object: stratum logins.
//!
//! Anything else (the cost of an ordinary send) ends after one 16-byte read.

use core::{ffi::c_void, mem::MaybeUninit};

use aya_ebpf::{
    helpers::{bpf_probe_read_user_buf, generated},
    macros::map,
    maps::PerCpuArray,
};
use enforcer_common::event::Hook;

use super::{dns_query, payload};
use crate::{
    classify::starts_like_json_object,
    dns::{self, MIN_QUERY_LEN},
    kernel::{self, ReadError},
    net::{self, Space},
    plan::Site,
};

/// One send, whatever the program. Built in [`SEND_SCRATCH`] and read back with a volatile
/// copy before classification (see [`gathered`]), so the verifier sees one state for the
/// tracepoint's five syscalls instead of five (each with its own constants), which 6.1's
/// verifier cannot afford.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct Send {
    /// The file descriptor (`NO_FD` when the program has the socket instead).
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
    /// Address of the destination `struct sockaddr` (user memory, or kernel memory when
    /// `addr_in_kernel`), 0 when the call names none.
    pub(crate) addr: u64,
    /// Its length.
    pub(crate) addr_len: u64,
    /// 0, or 1 + the value of a 2-byte TCP DNS length prefix that came as its own iovec
    /// just before `buf` (glibc's resolver writes the prefix and the query as two iovecs).
    pub(crate) split_prefix: u64,
    /// Kernel address of the `struct socket`, 0 when it is to be found from `fd`.
    pub(crate) sock: u64,
    /// 1 when `addr` is the kernel's copy of the address (`msghdr.msg_name`).
    pub(crate) addr_in_kernel: u64,
}

impl Send {
    /// The program that saw the send.
    #[inline(always)]
    pub(crate) fn hook(&self) -> Hook {
        Hook::try_from(self.hook).unwrap_or(Hook::TpSysEnterWrite)
    }

    /// The `struct socket` sent on: the one the program had, else the one behind `fd`;
    /// `None` when the descriptor is not a socket.
    #[inline(always)]
    pub(crate) fn socket(&self) -> Option<*const u8> {
        if self.sock != 0 {
            return Some(self.sock as *const u8);
        }
        kernel::socket_file(self.fd).and_then(net::socket_of_file)
    }

    /// Where `addr` lives.
    #[inline(always)]
    pub(crate) fn addr_space(&self) -> Space {
        if self.addr_in_kernel != 0 {
            Space::Kernel
        } else {
            Space::User
        }
    }
}

/// Per-CPU slot a [`Send`] is built in (see its documentation).
#[map(name = "SEND_SCRATCH")]
static SEND_SCRATCH: PerCpuArray<Send> = PerCpuArray::with_max_entries(1, 0);

/// Classifies a gathered send at `site` (see [`classify`]): `Ok(true)` when the send is to be
/// refused (only ever at [`Site::Lsm`]). `Ok(None)` (nothing to inspect) is `Ok(false)`.
#[inline(always)]
pub(crate) fn gathered(
    send: Result<Option<Send>, ReadError>,
    site: Site,
) -> Result<bool, ReadError> {
    let Some(send) = send? else {
        return Ok(false);
    };
    let slot = SEND_SCRATCH.get_ptr_mut(0).ok_or(ReadError)?;
    // SAFETY: per-CPU slot from a successful look-up; no re-entry on this CPU. The volatile
    // read makes the fields opaque map data.
    let send = unsafe {
        *slot = send;
        core::ptr::read_volatile(slot)
    };
    classify(&send, site)
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
/// inlined (and verified) once per program. `Ok(true)`: refuse the send.
#[inline(always)]
fn classify(send: &Send, site: Site) -> Result<bool, ReadError> {
    if send.buf_len < 12 {
        return Ok(false);
    }
    match shape(send) {
        Shape::DnsQuery { tcp } => dns_query::on_query(send, tcp, site),
        Shape::Json => payload::on_json_send(send, site),
        Shape::Other => Ok(false),
    }
}
