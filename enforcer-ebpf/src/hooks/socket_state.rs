//! What the kernel programs keep per socket, in [`SOCKET_STATE`] (socket-local storage,
//! `BPF_MAP_TYPE_SK_STORAGE`: freed with the socket, no capacity to outgrow), for the program
//! that sees a socket's packets outside any process (`egress.rs`: a TCP segment can leave from
//! a timer or a softirq, on behalf of whichever task the CPU happened to run):
//!
//! - **the owner**, the process that last named a destination for the socket, noted in its own
//!   context by `cgroup/connect4`, `cgroup/connect6` (`connect.rs`: a TCP connect, a connected
//!   UDP socket) and `cgroup/sendmsg4`, `cgroup/sendmsg6` (here: an unconnected UDP datagram,
//!   a `sendto` with an address; they never refuse one). A socket with no owner (connected
//!   before the engine started, or accepted) has its packets judged all the same, and a kill
//!   its rule asks for cannot be made (`OUTCOME_KILL_FAILED`): the packet is still dropped.
//! - **the TCP segment last refused**: a dropped segment stays in the socket's queue and TCP
//!   sends it again (a probe, a retransmission) until the connection times out; each new try
//!   is dropped without being judged or recorded again.

use aya_ebpf::{
    bindings::BPF_SK_STORAGE_GET_F_CREATE,
    btf_maps::SkStorage,
    helpers::{
        bpf_get_current_cgroup_id, bpf_get_current_pid_tgid, bpf_get_current_uid_gid,
        generated::{bpf_get_current_comm, bpf_sk_fullsock, bpf_sk_storage_get},
    },
    macros::{btf_map, cgroup_sock_addr},
    programs::{SkBuffContext, SockAddrContext},
};
use enforcer_common::event::COMM_LEN;

/// The owner of a socket, as the record header wants it (all zero: none noted).
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct Owner {
    /// `bpf_get_current_pid_tgid` (thread id low, process id high).
    pub(crate) pid_tgid: u64,
    /// `bpf_get_current_uid_gid` (uid low, gid high).
    pub(crate) uid_gid: u64,
    /// The owner's cgroup v2 id.
    pub(crate) cgroup_id: u64,
    /// The owner's comm.
    pub(crate) comm: [u8; COMM_LEN],
}

impl Owner {
    /// No owner.
    pub(crate) const NONE: Self = Self {
        pid_tgid: 0,
        uid_gid: 0,
        cgroup_id: 0,
        comm: [0; COMM_LEN],
    };

    /// The owner's process id (0: none).
    #[inline(always)]
    pub(crate) fn tgid(&self) -> u32 {
        (self.pid_tgid >> 32) as u32
    }
}

/// One socket's entry in [`SOCKET_STATE`].
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct SocketState {
    /// The owner (all zero until one is noted).
    pub(crate) owner: Owner,
    /// Sequence number of the TCP segment last refused (valid when `refused != 0`).
    pub(crate) refused_seq: u32,
    /// 1 once a TCP segment of the socket was refused.
    pub(crate) refused: u32,
}

/// Socket -> [`SocketState`]; see the module documentation.
#[btf_map]
static SOCKET_STATE: SkStorage<SocketState> = SkStorage::new();

/// Notes the current task as the owner of the socket a `cgroup/connect*` or `cgroup/sendmsg*`
/// program runs for. Best effort: a socket whose storage cannot be allocated has no owner.
#[inline(always)]
pub(crate) fn note_owner(ctx: &SockAddrContext) {
    // SAFETY: the kernel hands the program a valid `bpf_sock_addr`, whose `sk` the helper
    // takes; `F_CREATE` with no initial value allocates zeroed storage.
    let slot = unsafe { SOCKET_STATE.get_or_insert_ptr_mut(ctx, None) };
    if slot.is_null() {
        return;
    }
    let pid_tgid = bpf_get_current_pid_tgid();
    // SAFETY: a non-null pointer from the storage helper points at this socket's state.
    unsafe {
        let owner = &mut (*slot).owner;
        if owner.pid_tgid == pid_tgid {
            return;
        }
        owner.pid_tgid = pid_tgid;
        owner.uid_gid = bpf_get_current_uid_gid();
        owner.cgroup_id = bpf_get_current_cgroup_id();
        // On failure the helper zeroes the buffer itself.
        bpf_get_current_comm(owner.comm.as_mut_ptr().cast(), COMM_LEN as u32);
    }
}

/// The state of the socket a packet leaves from: null when it has none (and `create` is
/// false, or the storage cannot be allocated) or is not a full socket.
#[inline(always)]
pub(crate) fn state_of_packet(ctx: &SkBuffContext, create: bool) -> *mut SocketState {
    // SAFETY: `ctx.skb.skb` is the program's `__sk_buff`; `sk` is a field the verifier lets a
    // cgroup skb program read (a possibly-null socket pointer).
    let sk = unsafe { (*ctx.skb.skb).__bindgen_anon_2.sk };
    if sk.is_null() {
        return core::ptr::null_mut();
    }
    // SAFETY: `sk` is the context's socket pointer, checked non-null, which the helper takes.
    let full = unsafe { bpf_sk_fullsock(sk) };
    if full.is_null() {
        return core::ptr::null_mut();
    }
    let flags = if create {
        u64::from(BPF_SK_STORAGE_GET_F_CREATE)
    } else {
        0
    };
    // SAFETY: the map's address is the storage map's definition (what `SkStorage` passes the
    // helper too); `full` is a full socket; `F_CREATE` with no initial value zeroes the entry.
    unsafe {
        bpf_sk_storage_get(
            core::ptr::from_ref(&SOCKET_STATE).cast_mut().cast(),
            full.cast(),
            core::ptr::null_mut(),
            flags,
        )
    }
    .cast::<SocketState>()
}

/// The owner in `state`; all zero when `state` is null or has none (a zero `Owner` rather
/// than an `Option`: LLVM computes a field of a `None` from whatever its stack slot held, and
/// the verifier refuses that when the slot held a pointer).
#[inline(always)]
pub(crate) fn owner_in(state: *const SocketState) -> Owner {
    if state.is_null() {
        return Owner::NONE;
    }
    // SAFETY: a non-null pointer from the storage helper points at the socket's state.
    unsafe { (*state).owner }
}

/// `cgroup/sendmsg4`: an unconnected IPv4 UDP datagram; notes its sender (1: never refused).
#[cgroup_sock_addr(sendmsg4)]
pub(crate) fn cgroup_sendmsg4(ctx: SockAddrContext) -> i32 {
    note_owner(&ctx);
    1
}

/// `cgroup/sendmsg6`: as [`cgroup_sendmsg4`], for IPv6.
#[cgroup_sock_addr(sendmsg6)]
pub(crate) fn cgroup_sendmsg6(ctx: SockAddrContext) -> i32 {
    note_owner(&ctx);
    1
}
