//! Tracepoints `syscalls/sys_enter_write` and `syscalls/sys_enter_sendto`: first-payload
//! classification of socket writes (stratum logins), in every tier.
//!
//! Both tracepoint records have the fd, buffer and length at the offsets the loader read from
//! their tracefs `format` files (`KernelOffsets::tp_send_*`). For each write:
//! 1. read 8 bytes; stop unless they start (after whitespace) with `{` — the cost of an
//!    ordinary write is this one read;
//! 2. stop unless the fd is a socket;
//! 3. read up to 128 bytes and find a JSON-RPC `"method"` (`classify.rs`); stop if none;
//! 4. look the method up in `PAYLOAD_METHOD_PLAN`.
//!
//! | tier | plan match | action |
//! |---|---|---|
//! | lsm | yes | leave a `PendingSend` for LSM `socket_sendmsg` (which denies and reports) |
//! | signal | deny or kill rule, enforcing | SIGKILL, record `kill` (the write in flight still completes: only the lsm tier stops the bytes) |
//! | signal or monitor | rule or engine in monitor mode | record `would_kill` |
//! | any | no | record the JSON-RPC payload (no verdict) |

use aya_ebpf::{
    helpers::{bpf_probe_read_user_buf, generated::bpf_get_current_comm},
    macros::tracepoint,
    programs::TracePointContext,
};
use enforcer_common::{
    config::Tier,
    event::{COMM_LEN, Counter, EventKind, Hook, PAYLOAD_LEN, PAYLOAD_TRUNCATED, PayloadRecord},
    plan::{METHOD_LEN, MethodKey},
};

use crate::{
    classify::{find_method, starts_like_json_object},
    emit,
    kernel::{self, ReadError},
    maps::{PAYLOAD_METHOD_PLAN, PAYLOAD_SCRATCH, PENDING_SEND, config, count, offsets},
    plan::{Site, act},
};

/// `syscalls/sys_enter_write`.
#[tracepoint(category = "syscalls", name = "sys_enter_write")]
pub(crate) fn tp_sys_enter_write(ctx: TracePointContext) -> u32 {
    on_send(&ctx, Hook::TpSysEnterWrite)
}

/// `syscalls/sys_enter_sendto`.
#[tracepoint(category = "syscalls", name = "sys_enter_sendto")]
pub(crate) fn tp_sys_enter_sendto(ctx: TracePointContext) -> u32 {
    on_send(&ctx, Hook::TpSysEnterSendto)
}

#[inline(always)]
fn on_send(ctx: &TracePointContext, hook: Hook) -> u32 {
    if try_on_send(ctx, hook).is_err() {
        count(Counter::ReadError);
    }
    0
}

#[inline(always)]
fn try_on_send(ctx: &TracePointContext, hook: Hook) -> Result<(), ReadError> {
    let off = offsets();
    // SAFETY: reads of the tracepoint record at offsets from its format file.
    let (fd, buf, len) = unsafe {
        (
            ctx.read_at::<u64>(off.tp_send_fd as usize)
                .map_err(|_| ReadError)?,
            ctx.read_at::<u64>(off.tp_send_buf as usize)
                .map_err(|_| ReadError)?,
            ctx.read_at::<u64>(off.tp_send_len as usize)
                .map_err(|_| ReadError)?,
        )
    };
    if len < 12 {
        return Ok(());
    }
    let mut head = [0u8; 8];
    // SAFETY: probe_read_user validates the user address.
    if unsafe { bpf_probe_read_user_buf(buf as *const u8, &mut head) }.is_err() {
        return Ok(());
    }
    if !starts_like_json_object(&head, 8) {
        return Ok(());
    }
    let fd = fd as u32;
    let Some(file) = kernel::socket_file(fd) else {
        return Ok(());
    };

    let scratch = PAYLOAD_SCRATCH.get_ptr_mut(0).ok_or(ReadError)?;
    // SAFETY: per-CPU scratch from a successful look-up; no re-entry on this CPU.
    let scratch = unsafe { &mut *scratch };
    let pending = &mut scratch.pending;
    let rec = &mut pending.record;
    // Reads of constant sizes only: a length computed from `len` gets spilled by LLVM and
    // 6.1's verifier loses its bound. A 128-byte read can fail where a short buffer ends at an
    // unmapped page, so smaller reads follow; bytes past `len` are never used.
    let data = &mut rec.data;
    let got = if read_user(buf, &mut data[..]) {
        PAYLOAD_LEN
    } else if read_user(buf, &mut data[..64]) {
        64
    } else if read_user(buf, &mut data[..32]) {
        32
    } else if read_user(buf, &mut data[..16]) {
        16
    } else {
        return Err(ReadError);
    };
    let data_len = if len < got as u64 { len as usize } else { got };
    rec.method = [0; METHOD_LEN];
    let method_len = find_method(&rec.data, data_len, &mut rec.method, &mut scratch.slot);
    if method_len == 0 {
        return Ok(());
    }
    count(Counter::PayloadClassified);
    rec.fd = fd;
    rec.size = len.min(u64::from(u32::MAX)) as u32;
    rec.data_len = data_len as u32;
    rec.method_len = method_len as u32;
    rec.flags = if len > PAYLOAD_LEN as u64 {
        PAYLOAD_TRUNCATED
    } else {
        0
    };
    rec._pad = 0;

    let cfg = config();
    let plan = PAYLOAD_METHOD_PLAN.get_ptr(MethodKey(rec.method));
    let mut verdict = emit::Verdict::NONE;
    if let Some(plan) = plan {
        // SAFETY: pointer from a successful map look-up; PlanVerdict is Copy.
        let plan = unsafe { *plan };
        count(Counter::PayloadMatched);
        let pid_tgid = aya_ebpf::helpers::bpf_get_current_pid_tgid();
        if cfg.tier == Tier::Lsm as u32 {
            // The LSM hook of this syscall decides and reports.
            pending.verdict = plan;
            pending.file = file as u64;
            // By reference: a by-value PendingSend would be copied onto the 512-byte stack.
            #[allow(clippy::needless_borrows_for_generic_args)]
            let _ = PENDING_SEND.insert(pid_tgid, &*pending, 0);
            return Ok(());
        }
        verdict = act(&plan, &cfg, Site::Tracepoint).0;
    }
    emit_payload(&pending.record, hook, &verdict);
    Ok(())
}

/// Copies `dst.len()` bytes of user memory at `buf` into `dst`; false when the read faults.
#[inline(always)]
fn read_user(buf: u64, dst: &mut [u8]) -> bool {
    // SAFETY: probe_read_user validates the user address and writes only into `dst`.
    unsafe { bpf_probe_read_user_buf(buf as *const u8, dst) }.is_ok()
}

/// Emits a payload record: `body` with a header for the current task.
#[inline(always)]
pub(crate) fn emit_payload(body: &PayloadRecord, hook: Hook, verdict: &emit::Verdict) {
    let Some(mut entry) = emit::reserve::<PayloadRecord>() else {
        return;
    };
    let rec = entry.as_mut_ptr();
    // SAFETY: `rec` points at a reserved, writable PayloadRecord-sized slot.
    unsafe {
        *rec = *body;
        (*rec).header = emit::header(
            EventKind::Payload,
            size_of::<PayloadRecord>(),
            hook,
            0,
            verdict,
        );
        // On failure the helper zeroes the buffer itself.
        bpf_get_current_comm((*rec).comm.as_mut_ptr().cast(), COMM_LEN as u32);
    }
    entry.submit(0);
}
