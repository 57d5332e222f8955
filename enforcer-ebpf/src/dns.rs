//! In-kernel DNS query recognition and plan look-up: is this send a DNS query, what is its
//! question name, and does the plan name it (exactly, or as a sub-domain of a listed domain)?
//! Userspace decodes the whole message with a DNS library for the audit record; the kernel only
//! needs the first question's name, so this parses nothing else.

use core::ffi::c_void;

use aya_ebpf::helpers::generated::bpf_loop;
use enforcer_common::{
    net::{DNS_NAME_LEN, NAME_HASH_SEED, name_hash_step},
    plan::PlanVerdict,
};

use crate::maps::{DNS_DOMAIN_PLAN, DNS_NAME_PLAN, DnsScratch};

/// Size of the DNS message header.
const HEADER_LEN: usize = 12;
/// Smallest query: header, the root name (1 byte), QTYPE and QCLASS.
pub(crate) const MIN_QUERY_LEN: u64 = HEADER_LEN as u64 + 5;

/// Whether `head[at..]` holds the header of a standard query with one question: QR = 0,
/// OPCODE = 0, QDCOUNT = 1, ANCOUNT = NSCOUNT = 0, ARCOUNT <= 2 (EDNS, TSIG), and a first
/// label length byte that is plausible (1..=63, or 0 for the root).
#[inline(always)]
pub(crate) fn looks_like_query(head: &[u8; 16], at: usize) -> bool {
    if at > 3 {
        return false;
    }
    let b = |i: usize| head.get(at + i).copied().unwrap_or(0xff);
    b(2) & 0xf8 == 0
        && b(4) == 0
        && b(5) == 1
        && b(6) == 0
        && b(7) == 0
        && b(8) == 0
        && b(9) == 0
        && b(10) == 0
        && b(11) <= 2
        && b(12) <= 63
}

/// What `bpf_loop` hands to a callback: a stack pointer (the helper requires one) to the
/// scratch, where the loop state lives. The state must be in map memory: kernels before 6.8
/// verify a callback as if it ran once, so a loop state on the stack keeps its initial
/// constants and the verifier wrongly removes the code that reads the outcome (6.1 then never
/// sees a name parse). Map memory is opaque to it.
#[repr(C)]
struct LoopCtx {
    scratch: *mut DnsScratch,
}

/// Parse state in [`DnsScratch::parse`].
#[repr(C)]
pub(crate) struct ParseState {
    /// Valid bytes of the message.
    len: u64,
    /// Position (in the wire name) of the next length byte.
    next_label: u64,
    /// Length of the dotted name once the terminating zero is found.
    name_len: u64,
    /// [`RUNNING`], [`PARSED`] or [`UNPARSEABLE`].
    status: u64,
}

/// Suffix-walk state in [`DnsScratch::walk`].
#[repr(C)]
pub(crate) struct WalkState {
    /// Length of the dotted name.
    len: u64,
    /// Hash of the bytes walked so far (the name read backwards).
    hash: u64,
    /// Hash of the longest listed suffix found.
    best_hash: u64,
    /// Whether `best_hash` holds one.
    best_found: u64,
}

const RUNNING: u64 = 0;
const PARSED: u64 = 1;
const UNPARSEABLE: u64 = 2;

/// One byte of the wire name: byte `i + 1` of the wire name becomes byte `i` of the dotted
/// name, with each length byte in place of a dot (`\x01x\x04pool\x03com\x00` ->
/// `x.pool.com`). Returns 1 to stop the loop.
///
/// # Safety
/// `ctx` is the `LoopCtx` [`parse_name`] passes to `bpf_loop`.
unsafe extern "C" fn parse_step(index: u64, ctx: *mut c_void) -> i64 {
    // SAFETY: bpf_loop passes back the pointer parse_name gave it, to a live LoopCtx whose
    // scratch pointer comes from a successful per-CPU array look-up.
    let scratch = unsafe { &mut *(*ctx.cast::<LoopCtx>()).scratch };
    let st = &mut scratch.parse;
    let i = index as usize;
    let pos = HEADER_LEN + i;
    if i >= DNS_NAME_LEN || pos as u64 >= st.len {
        st.status = UNPARSEABLE;
        return 1;
    }
    let Some(&b) = scratch.record.data.get(pos) else {
        st.status = UNPARSEABLE;
        return 1;
    };
    if index == st.next_label {
        if b == 0 {
            // The root name has no dotted form.
            st.status = if i == 0 { UNPARSEABLE } else { PARSED };
            st.name_len = index.saturating_sub(1);
            return 1;
        }
        if b > 63 {
            st.status = UNPARSEABLE;
            return 1;
        }
        st.next_label = index + 1 + u64::from(b);
        if i > 0
            && let Some(slot) = scratch.name.get_mut(i - 1)
        {
            *slot = b'.';
        }
    } else if i > 0
        && let Some(slot) = scratch.name.get_mut(i - 1)
    {
        *slot = if b.is_ascii_uppercase() { b | 0x20 } else { b };
    }
    0
}

/// Turns the first question name of the record in `scratch` (`len` valid bytes) into its
/// dotted, lowercase form in `scratch.name`, and returns its length; `None` when the name uses
/// compression, has a bad label, runs past `len`, or is longer than [`DNS_NAME_LEN`] - 1.
/// The loop runs in `bpf_loop`, so the verifier checks its body once, not once per byte.
#[inline(always)]
pub(crate) fn parse_name(scratch: &mut DnsScratch, len: usize) -> Option<usize> {
    scratch.parse = ParseState {
        len: len as u64,
        next_label: 0,
        name_len: 0,
        status: RUNNING,
    };
    let mut ctx = LoopCtx { scratch };
    // SAFETY: the callback and its context follow bpf_loop's contract (see parse_step).
    unsafe {
        bpf_loop(
            DNS_NAME_LEN as u32,
            parse_step as *const () as *mut c_void,
            (&mut ctx as *mut LoopCtx).cast(),
            0,
        );
    }
    // SAFETY: the scratch pointer is still valid; volatile reads, as the helper wrote it.
    let (status, name_len) = unsafe {
        (
            core::ptr::read_volatile(&(*ctx.scratch).parse.status),
            core::ptr::read_volatile(&(*ctx.scratch).parse.name_len),
        )
    };
    (status == PARSED && name_len < DNS_NAME_LEN as u64).then_some(name_len as usize)
}

/// One byte of the backward walk; at each label boundary the hash so far is the hash of that
/// suffix and is looked up in the domain plan. Returns 1 to stop the loop.
///
/// # Safety
/// `ctx` is the `LoopCtx` [`lookup`] passes to `bpf_loop`.
unsafe extern "C" fn suffix_step(step: u64, ctx: *mut c_void) -> i64 {
    // SAFETY: as in parse_step.
    let scratch = unsafe { &mut *(*ctx.cast::<LoopCtx>()).scratch };
    let st = &mut scratch.walk;
    if step >= st.len || step >= DNS_NAME_LEN as u64 {
        return 1;
    }
    let i = (st.len - 1 - step) as usize;
    let Some(&b) = scratch.name.get(i) else {
        return 1;
    };
    st.hash = name_hash_step(st.hash, b);
    let boundary = i == 0 || scratch.name.get(i.wrapping_sub(1)).copied() == Some(b'.');
    if boundary && DNS_DOMAIN_PLAN.get_ptr(st.hash).is_some() {
        st.best_hash = st.hash;
        st.best_found = 1;
    }
    0
}

/// The plan entry for the dotted name `scratch.name[..len]`: the exact-name entry when there
/// is one, else the entry of its longest listed suffix in the domain plan. Entries with no
/// action (exclusions) come back as found and the caller treats them as no match. Leaves the
/// name's hash in the record.
///
/// The name is hashed backwards (`enforcer_common::net::name_hash`), so the hash after each
/// label boundary is the hash of that suffix: `com`, `pool.com`, `x.pool.com`.
#[inline(always)]
pub(crate) fn lookup(scratch: &mut DnsScratch, len: usize) -> Option<PlanVerdict> {
    scratch.walk = WalkState {
        len: len as u64,
        hash: NAME_HASH_SEED,
        best_hash: 0,
        best_found: 0,
    };
    let mut ctx = LoopCtx { scratch };
    // SAFETY: the callback and its context follow bpf_loop's contract (see suffix_step).
    unsafe {
        bpf_loop(
            DNS_NAME_LEN as u32,
            suffix_step as *const () as *mut c_void,
            (&mut ctx as *mut LoopCtx).cast(),
            0,
        );
    }
    // SAFETY: as in parse_name.
    let (hash, best_hash, best_found) = unsafe {
        let walk = &(*ctx.scratch).walk;
        (
            core::ptr::read_volatile(&walk.hash),
            core::ptr::read_volatile(&walk.best_hash),
            core::ptr::read_volatile(&walk.best_found),
        )
    };
    // SAFETY: as above.
    unsafe { (*ctx.scratch).record.name_hash = hash };
    if let Some(v) = DNS_NAME_PLAN.get_ptr(hash) {
        // SAFETY: pointer from a successful map look-up; PlanVerdict is Copy.
        return Some(unsafe { *v });
    }
    if best_found == 0 {
        return None;
    }
    let v = DNS_DOMAIN_PLAN.get_ptr(best_hash)?;
    // SAFETY: as above.
    Some(unsafe { *v })
}
