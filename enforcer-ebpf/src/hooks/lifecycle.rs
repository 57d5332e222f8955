//! BTF tracepoints `sched_process_fork` and `sched_process_exit`: process lifecycle records for
//! the daemon's process cache, in every tier. No verdicts here.
//!
//! - `trace_sched_process_fork(struct task_struct *parent, struct task_struct *child)`: a
//!   record when the child is a new process (`child->pid == child->tgid`), not a new thread.
//! - `trace_sched_process_exit(struct task_struct *p, ...)`: fires for every exiting thread,
//!   after `do_exit` decremented `p->signal->live`; a record only when that count is 0, i.e.
//!   the last thread of the process is gone.
//!
//! Records go to the `LIFECYCLE` ring buffer, without a wake-up unless a rule is about them
//! (`emit::lifecycle_flags`). A failed kernel read skips the record and bumps
//! `Counter::ReadError`.

use aya_ebpf::{
    helpers::generated::bpf_get_current_comm, macros::btf_tracepoint,
    programs::BtfTracePointContext,
};
use enforcer_common::{
    event::{COMM_LEN, Counter, EventKind, Hook},
    process::{ExitRecord, ForkRecord},
};

use crate::{
    emit,
    kernel::ReadError,
    maps::{count, offset},
    typed::{Access, Typed},
};

/// `sched_process_fork`; see the module documentation.
#[btf_tracepoint(function = "sched_process_fork")]
pub(crate) fn tp_sched_process_fork(ctx: BtfTracePointContext) -> i32 {
    if try_fork(&ctx).is_err() {
        count(Counter::ReadError);
    }
    0
}

/// `sched_process_exit`; see the module documentation.
#[btf_tracepoint(function = "sched_process_exit")]
pub(crate) fn tp_sched_process_exit(ctx: BtfTracePointContext) -> i32 {
    if try_exit(&ctx).is_err() {
        count(Counter::ReadError);
    }
    0
}

fn try_fork(ctx: &BtfTracePointContext) -> Result<(), ReadError> {
    let child: *const u8 = ctx.arg(1);
    let pid: i32 = Typed::read(child, offset(|o| &o.task_pid))?;
    let tgid: i32 = Typed::read(child, offset(|o| &o.task_tgid))?;
    if pid != tgid {
        return Ok(());
    }
    let start: u64 = Typed::read(child, offset(|o| &o.task_start_boottime))?;
    let Some(mut entry) = emit::reserve_lifecycle::<ForkRecord>() else {
        return Ok(());
    };
    let rec = entry.as_mut_ptr();
    // SAFETY: `rec` points at a reserved, writable ForkRecord-sized slot.
    unsafe {
        (*rec).header = emit::header(
            EventKind::Fork,
            size_of::<ForkRecord>(),
            Hook::TpSchedProcessFork,
            0,
            &emit::Verdict::NONE,
        );
        (*rec).child_tgid = tgid as u32;
        (*rec)._pad = 0;
        (*rec).child_start_ns = start;
        // On failure the helper zeroes the buffer itself.
        bpf_get_current_comm((*rec).comm.as_mut_ptr().cast(), COMM_LEN as u32);
    }
    entry.submit(emit::lifecycle_flags());
    Ok(())
}

fn try_exit(ctx: &BtfTracePointContext) -> Result<(), ReadError> {
    let task: *const u8 = ctx.arg(0);
    let signal: *const u8 = Typed::read(task, offset(|o| &o.task_signal))?;
    let live: i32 = Typed::read(signal, offset(|o| &o.signal_live))?;
    if live != 0 {
        return Ok(());
    }
    let exit_code: i32 = Typed::read(task, offset(|o| &o.task_exit_code))?;
    let start: u64 = Typed::read(task, offset(|o| &o.task_start_boottime))?;
    let Some(mut entry) = emit::reserve_lifecycle::<ExitRecord>() else {
        return Ok(());
    };
    let rec = entry.as_mut_ptr();
    // SAFETY: `rec` points at a reserved, writable ExitRecord-sized slot.
    unsafe {
        (*rec).header = emit::header(
            EventKind::Exit,
            size_of::<ExitRecord>(),
            Hook::TpSchedProcessExit,
            0,
            &emit::Verdict::NONE,
        );
        (*rec).exit_code = exit_code as u32;
        (*rec)._pad = 0;
        (*rec).start_ns = start;
        // On failure the helper zeroes the buffer itself.
        bpf_get_current_comm((*rec).comm.as_mut_ptr().cast(), COMM_LEN as u32);
    }
    entry.submit(emit::lifecycle_flags());
    Ok(())
}
