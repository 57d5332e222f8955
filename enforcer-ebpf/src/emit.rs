//! Record emission into the `EVENTS` ring buffer. Emission is best effort: a full ring buffer
//! bumps `Counter::RingbufFull` and never changes a verdict.

use aya_ebpf::helpers::generated::{bpf_get_current_comm, bpf_skb_cgroup_id};
use aya_ebpf::{
    helpers::{
        bpf_get_current_cgroup_id, bpf_get_current_pid_tgid, bpf_get_current_uid_gid,
        bpf_ktime_get_boot_ns,
    },
    maps::ring_buf::RingBufEntry,
    programs::SkBuffContext,
};
use enforcer_common::{
    event::{COMM_LEN, Counter, EventHeader, EventKind, Hook},
    net::{SockAddr, SocketRecord},
};

use enforcer_common::plan::{
    BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP, EVENTS_WAKE_BYTES,
    LIFECYCLE_WAKE_BYTES, RECORD_LIFECYCLE_WAKE,
};

use crate::maps::{EVENTS, EVENTS_POLLED, LIFECYCLE, count, plan_settings};

/// Reserves a ring-buffer slot for a `T`, counting the loss when the buffer is full.
#[inline(always)]
pub(crate) fn reserve<T: 'static>() -> Option<RingBufEntry<T>> {
    let entry = EVENTS.reserve::<T>(0);
    if entry.is_none() {
        count(Counter::RingbufFull);
    }
    entry
}

/// Reserves a `LIFECYCLE` slot for a fork or exit record, counting the loss when full.
#[inline(always)]
pub(crate) fn reserve_lifecycle<T: 'static>() -> Option<RingBufEntry<T>> {
    let entry = LIFECYCLE.reserve::<T>(0);
    if entry.is_none() {
        count(Counter::RingbufFull);
    }
    entry
}

/// Submit flags of a fork or exit record: the ring buffer's adaptive wake-up when a rule is
/// about them (`RECORD_LIFECYCLE_WAKE`); else no wake-up, unless a quarter of the ring is
/// pending (the daemon then drains it before it fills).
#[inline(always)]
pub(crate) fn lifecycle_flags() -> u64 {
    if plan_settings().record & RECORD_LIFECYCLE_WAKE != 0 {
        return 0;
    }
    quiet_flags(LIFECYCLE.query(BPF_RB_AVAIL_DATA), LIFECYCLE_WAKE_BYTES)
}

/// Submit flags of a record the daemon reads without being woken: none, unless `pending`
/// bytes of its ring have reached `wake_at` (the daemon must drain before the ring fills).
#[inline(always)]
fn quiet_flags(pending: u64, wake_at: u64) -> u64 {
    if pending >= wake_at {
        BPF_RB_FORCE_WAKEUP
    } else {
        BPF_RB_NO_WAKEUP
    }
}

/// Submit flags of an `EVENTS` record: the ring buffer's adaptive wake-up, unless the daemon
/// polls the ring (`EVENTS_POLLED`: it is busy and reads on a timer); then no wake-up,
/// unless a quarter of the ring is pending.
#[inline(always)]
pub(crate) fn event_flags() -> u64 {
    if !polled() {
        return 0;
    }
    quiet_flags(EVENTS.query(BPF_RB_AVAIL_DATA), EVENTS_WAKE_BYTES)
}

/// Submit flags of an `EVENTS` record that can start a userspace kill and is rare next to
/// execs (a payload whose method the plan lists, a DNS query): the adaptive wake-up, or a
/// forced one while the daemon polls, so that the kill does not wait for the next poll.
#[inline(always)]
pub(crate) fn urgent_event_flags() -> u64 {
    if polled() { BPF_RB_FORCE_WAKEUP } else { 0 }
}

/// Whether the daemon polls `EVENTS` (`EVENTS_POLLED`).
#[inline(always)]
fn polled() -> bool {
    EVENTS_POLLED.get(0).is_some_and(|polled| *polled != 0)
}

/// Rule reference and outcome carried by a header.
pub(crate) struct Verdict {
    pub(crate) outcome: u32,
    pub(crate) rule_index: u32,
    pub(crate) generation: u32,
}

impl Verdict {
    pub(crate) const NONE: Self = Self {
        outcome: 0,
        rule_index: 0,
        generation: 0,
    };
}

/// A header for the current task.
#[inline(always)]
pub(crate) fn header(
    kind: EventKind,
    size: usize,
    hook: Hook,
    ppid: u32,
    verdict: &Verdict,
) -> EventHeader {
    header_with_ids(kind, size, hook, ppid, verdict, bpf_get_current_uid_gid())
}

/// [`header`] with the current task's uid (low half) and gid (high half) given: a program
/// that has read its credentials already spares the helper call.
#[inline(always)]
pub(crate) fn header_with_ids(
    kind: EventKind,
    size: usize,
    hook: Hook,
    ppid: u32,
    verdict: &Verdict,
    uid_gid: u64,
) -> EventHeader {
    header_of(
        kind,
        size,
        hook,
        ppid,
        verdict,
        [
            bpf_get_current_pid_tgid(),
            uid_gid,
            // SAFETY: a helper without arguments and without preconditions.
            unsafe { bpf_get_current_cgroup_id() },
        ],
    )
}

/// A header for the process `ids`: `[pid_tgid, uid_gid, cgroup_id]` as the helpers give them
/// (thread id and uid in the low halves).
#[inline(always)]
fn header_of(
    kind: EventKind,
    size: usize,
    hook: Hook,
    ppid: u32,
    verdict: &Verdict,
    ids: [u64; 3],
) -> EventHeader {
    let [pid_tgid, uid_gid, cgroup_id] = ids;
    EventHeader {
        kind: kind as u32,
        size: size as u32,
        // SAFETY: a helper without arguments and without preconditions.
        timestamp_ns: unsafe { bpf_ktime_get_boot_ns() },
        pid: pid_tgid as u32,
        tgid: (pid_tgid >> 32) as u32,
        ppid,
        uid: uid_gid as u32,
        gid: (uid_gid >> 32) as u32,
        outcome: verdict.outcome,
        cgroup_id,
        rule_index: verdict.rule_index,
        generation: verdict.generation,
        hook: hook as u32,
        _pad: 0,
    }
}

/// A header for a record about the packet `ctx`, made outside the process it is about (a
/// `cgroup_skb` program): the socket owner's ids (`hooks/socket_state.rs`; `Owner::NONE`
/// when the socket has none, or for a packet received); the cgroup is the owner's, else the
/// packet's socket's (`skb_cgroup_id`).
#[inline(always)]
pub(crate) fn packet_header(
    ctx: &SkBuffContext,
    kind: EventKind,
    size: usize,
    hook: Hook,
    verdict: &Verdict,
    owner: &crate::hooks::Owner,
) -> EventHeader {
    let cgroup_id = if owner.cgroup_id != 0 {
        owner.cgroup_id
    } else {
        // SAFETY: the helper takes the context's own skb.
        unsafe { bpf_skb_cgroup_id(ctx.skb.skb.cast()) }
    };
    header_of(
        kind,
        size,
        hook,
        0,
        verdict,
        [owner.pid_tgid, owner.uid_gid, cgroup_id],
    )
}

/// Emits `body`, a whole record built in scratch memory (header included), with
/// [`urgent_event_flags`]: such records can start a userspace kill.
#[inline(always)]
pub(crate) fn urgent_record<T: Copy + 'static>(body: &T) {
    let Some(mut entry) = reserve::<T>() else {
        return;
    };
    // SAFETY: `as_mut_ptr` points at a reserved, writable `T`-sized slot.
    unsafe { *entry.as_mut_ptr() = *body };
    entry.submit(urgent_event_flags());
}

/// What a [`SocketRecord`] says besides its header.
pub(crate) struct SocketFacts<'a> {
    pub(crate) fd: u32,
    pub(crate) sock_type: u32,
    pub(crate) addr: &'a SockAddr,
    pub(crate) local_port: u16,
}

/// Emits a [`SocketRecord`] (connect, bind or accept) for the current task.
#[inline(always)]
pub(crate) fn socket_record(
    kind: EventKind,
    hook: Hook,
    facts: &SocketFacts<'_>,
    verdict: &Verdict,
) {
    let Some(mut entry) = reserve::<SocketRecord>() else {
        return;
    };
    let rec = entry.as_mut_ptr();
    // SAFETY: `rec` points at a reserved, writable SocketRecord-sized slot.
    unsafe {
        (*rec).header = header(kind, size_of::<SocketRecord>(), hook, 0, verdict);
        (*rec).fd = facts.fd;
        (*rec).sock_type = facts.sock_type;
        (*rec).addr = *facts.addr;
        (*rec).local_port = facts.local_port;
        (*rec)._pad = [0; 6];
        // On failure the helper zeroes the buffer itself.
        bpf_get_current_comm((*rec).comm.as_mut_ptr().cast(), COMM_LEN as u32);
    }
    entry.submit(event_flags());
}
