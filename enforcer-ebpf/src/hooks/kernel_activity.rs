//! Kernel-activity syscalls, seen in every tier by one tracepoint program attached to the
//! `syscalls/sys_enter_*` tracepoint of each of them (those the running kernel has: without
//! `CONFIG_MODULES` or `CONFIG_KEXEC*` the module and kexec ones do not exist, and the loader
//! reports them unseen). The program tells them apart by `__syscall_nr` through
//! `KERNEL_SYSCALLS`.
//!
//! | step | cost |
//! |---|---|
//! | syscall number -> `KernelSyscall` -> `KernelOp` | one array look-up |
//! | no enabled rule is about the operation (`PLAN_SETTINGS.kernel_ops`) | return, `kernel_filtered` + 1 |
//! | `bpf` by the engine, or a `bpf` command other than map create / prog load / attach / BTF load / link create / raw tracepoint open | return |
//! | `ptrace` request other than `PTRACE_TRACEME` / `ATTACH` / `SEIZE` | return |
//! | lsm tier, operation an LSM hook refuses (module load, kexec, ptrace) and the plan acts on it | return: `kernel_lsm.rs` reports it, with its verdict |
//! | plan entry with an action (signal tier) | SIGKILL through `plan::act` (the syscall itself runs: a tracepoint cannot refuse it) |
//! | otherwise | `KernelRecord` of the attempt (the result is not known at entry) |
//!
//! What each syscall's record carries is documented on `enforcer_common::kernel_event::KernelSyscall`.

use aya_ebpf::{
    helpers::{
        bpf_get_current_pid_tgid,
        generated::{bpf_get_current_comm, bpf_probe_read_user, bpf_probe_read_user_str},
    },
    macros::tracepoint,
    programs::TracePointContext,
};
use enforcer_common::{
    config::Tier,
    event::{COMM_LEN, Counter, EventKind, Hook},
    kernel_event::{
        KERNEL_CREDS_UNKNOWN, KERNEL_DATA_LEN, KERNEL_DATA_TRUNCATED, KERNEL_DATA_UNREAD,
        KERNEL_NAME_LEN, KERNEL_NAME_TRUNCATED, KERNEL_NAME_UNKNOWN, KernelOp, KernelRecord,
        KernelSyscall,
    },
    plan::PlanVerdict,
};

use crate::syscall_record::{syscall_arg, syscall_nr};
use crate::{
    emit, kernel,
    kernel::ReadError,
    maps::{
        EVENTS, KERNEL_OP_PLAN, KERNEL_SCRATCH, KERNEL_SYSCALL_NRS, KERNEL_SYSCALLS, config, count,
        plan_settings,
    },
    plan::{Site, act},
};

/// `bpf(2)` commands reported: `BPF_MAP_CREATE`, `BPF_PROG_LOAD`, `BPF_PROG_ATTACH`,
/// `BPF_RAW_TRACEPOINT_OPEN`, `BPF_BTF_LOAD`, `BPF_LINK_CREATE` (look-ups and iteration,
/// the frequent ones, are not).
const BPF_CMDS: [u64; 6] = [0, 5, 8, 17, 18, 28];
/// `ptrace(2)` requests reported: `PTRACE_TRACEME`, `PTRACE_ATTACH`, `PTRACE_SEIZE`.
const PTRACE_REQUESTS: [u64; 3] = [0, 16, 0x4206];
/// Bytes of `union bpf_attr` copied (up to and including `prog_name` / `map_name`).
const BPF_ATTR_COPY: u32 = 80;
/// Bytes of the two `__user_cap_data_struct` of `capset`.
const CAP_DATA_LEN: u32 = 24;

/// The `KernelOp` plan entry that acts (deny or kill), if any.
#[inline(always)]
pub(crate) fn op_plan(op: KernelOp) -> Option<PlanVerdict> {
    let plan = KERNEL_OP_PLAN.get(op as u32).copied()?;
    (plan.actions != 0).then_some(plan)
}

/// Copies `rec` (built in `KERNEL_SCRATCH`) to the ring buffer with its header filled in.
#[inline(always)]
pub(crate) fn emit_kernel(rec: &mut KernelRecord, hook: Hook, verdict: &emit::Verdict) {
    rec.header = emit::header(
        EventKind::Kernel,
        size_of::<KernelRecord>(),
        hook,
        0,
        verdict,
    );
    // SAFETY: writes at most COMM_LEN bytes into the record's comm array (zeroed on failure).
    unsafe { bpf_get_current_comm(rec.comm.as_mut_ptr().cast(), COMM_LEN as u32) };
    if EVENTS
        .output::<KernelRecord>(&*rec, emit::event_flags())
        .is_err()
    {
        count(Counter::RingbufFull);
    }
}

/// Clears the variable parts of a scratch record.
#[inline(always)]
pub(crate) fn reset(rec: &mut KernelRecord, syscall: KernelSyscall) {
    rec.syscall = syscall as u32;
    rec.flags = 0;
    rec.name_len = 0;
    rec.data_len = 0;
    rec.args = [0; 3];
    rec.old = Default::default();
    rec.name = [0; KERNEL_NAME_LEN];
    rec.data = [0; KERNEL_DATA_LEN];
}

/// Arguments every kernel-activity tracepoint has (`setuid`, `unshare`, ...: 1): the ones
/// `syscall_arg` may load directly.
const KERNEL_ARGS: usize = 1;

/// Entry point, attached to every kernel-activity `sys_enter_*` tracepoint.
#[tracepoint(category = "syscalls", name = "sys_enter_setuid")]
pub(crate) fn tp_sys_enter_kernel(ctx: TracePointContext) -> u32 {
    if try_kernel(&ctx).is_err() {
        count(Counter::ReadError);
    }
    0
}

#[inline(always)]
fn try_kernel(ctx: &TracePointContext) -> Result<(), ReadError> {
    let nr = syscall_nr(ctx)?;
    let nr = nr as u32;
    if nr >= KERNEL_SYSCALL_NRS {
        return Ok(());
    }
    let Some(code) = KERNEL_SYSCALLS.get(nr) else {
        return Ok(());
    };
    let Ok(syscall) = KernelSyscall::try_from(*code) else {
        return Ok(());
    };
    let op = syscall.op();
    if plan_settings().kernel_ops & op.bit() == 0 {
        count(Counter::KernelFiltered);
        return Ok(());
    }
    let cfg = config();
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    let arg0 = syscall_arg::<KERNEL_ARGS>(ctx, 0)?;
    match syscall {
        KernelSyscall::Bpf if tgid == cfg.engine_tgid || !BPF_CMDS.contains(&arg0) => {
            return Ok(());
        }
        KernelSyscall::Ptrace if !PTRACE_REQUESTS.contains(&arg0) => return Ok(()),
        _ => {}
    }
    count(Counter::KernelSeen);
    let plan = op_plan(op);
    if cfg.tier == Tier::Lsm as u32 && op.lsm_enforced() && plan.is_some() {
        // The LSM hook of this operation acts and reports (one record per event).
        return Ok(());
    }
    let mut verdict = emit::Verdict::NONE;
    if let Some(plan) = plan {
        count(Counter::KernelMatched);
        (verdict, _) = act(&plan, &cfg, Site::Tracepoint);
    }
    let rec = KERNEL_SCRATCH.get_ptr_mut(0).ok_or(ReadError)?;
    // SAFETY: per-CPU slot 0 from a successful look-up, used by this program only; BPF
    // programs are not re-entered on the same CPU while it runs.
    let rec = unsafe { &mut *rec };
    reset(rec, syscall);
    gather(ctx, syscall, arg0, rec)?;
    emit_kernel(rec, Hook::TpSysEnterKernel, &verdict);
    Ok(())
}

/// Fills the syscall-specific part of `rec` from the tracepoint's arguments.
#[inline(always)]
fn gather(
    ctx: &TracePointContext,
    syscall: KernelSyscall,
    arg0: u64,
    rec: &mut KernelRecord,
) -> Result<(), ReadError> {
    use KernelSyscall as S;
    match syscall {
        S::InitModule => {
            rec.args = [arg0, syscall_arg::<KERNEL_ARGS>(ctx, 1)?, 0];
            rec.flags |= KERNEL_NAME_UNKNOWN;
            user_string_data(syscall_arg::<KERNEL_ARGS>(ctx, 2)?, rec);
        }
        S::FinitModule => {
            rec.args = [arg0, syscall_arg::<KERNEL_ARGS>(ctx, 2)?, 0];
            fd_name(arg0, rec);
            user_string_data(syscall_arg::<KERNEL_ARGS>(ctx, 1)?, rec);
        }
        S::DeleteModule => {
            rec.args = [syscall_arg::<KERNEL_ARGS>(ctx, 1)?, 0, 0];
            user_string_name(arg0, rec);
        }
        S::Bpf => {
            let size = syscall_arg::<KERNEL_ARGS>(ctx, 2)?;
            rec.args = [arg0, size, 0];
            let attr = syscall_arg::<KERNEL_ARGS>(ctx, 1)?;
            user_data(attr, BPF_ATTR_COPY, size, rec);
        }
        S::Ptrace => rec.args = [arg0, syscall_arg::<KERNEL_ARGS>(ctx, 1)?, 0],
        S::ProcessVmWritev => {
            rec.args = [
                arg0,
                syscall_arg::<KERNEL_ARGS>(ctx, 2)?,
                syscall_arg::<KERNEL_ARGS>(ctx, 4)?,
            ];
        }
        S::KexecLoad => {
            rec.args = [
                arg0,
                syscall_arg::<KERNEL_ARGS>(ctx, 1)?,
                syscall_arg::<KERNEL_ARGS>(ctx, 3)?,
            ]
        }
        S::KexecFileLoad => {
            rec.args = [
                arg0,
                syscall_arg::<KERNEL_ARGS>(ctx, 1)?,
                syscall_arg::<KERNEL_ARGS>(ctx, 4)?,
            ];
            fd_name(arg0, rec);
        }
        S::Setuid | S::Setgid | S::Setfsuid | S::Setfsgid | S::Unshare => {
            rec.args = [arg0, 0, 0];
            creds(syscall, rec);
        }
        S::Setreuid | S::Setregid | S::Setns => {
            rec.args = [arg0, syscall_arg::<KERNEL_ARGS>(ctx, 1)?, 0];
            creds(syscall, rec);
        }
        S::Setresuid | S::Setresgid => {
            rec.args = [
                arg0,
                syscall_arg::<KERNEL_ARGS>(ctx, 1)?,
                syscall_arg::<KERNEL_ARGS>(ctx, 2)?,
            ];
            creds(syscall, rec);
        }
        S::Capset => {
            let mut header = [0u32; 2];
            // SAFETY: reads 8 bytes of user memory into a local array; failure leaves zeros.
            let ok =
                unsafe { bpf_probe_read_user(header.as_mut_ptr().cast(), 8, arg0 as *const _) }
                    == 0;
            if ok {
                rec.args = [u64::from(header[0]), u64::from(header[1]), 0];
            }
            user_data(
                syscall_arg::<KERNEL_ARGS>(ctx, 1)?,
                CAP_DATA_LEN,
                u64::from(CAP_DATA_LEN),
                rec,
            );
            creds(syscall, rec);
        }
        S::MemfdCreate => {
            rec.args = [syscall_arg::<KERNEL_ARGS>(ctx, 1)?, 0, 0];
            user_string_name(arg0, rec);
        }
        // Not syscalls: reported by their own programs (`kernel_lsm.rs`, `module_loaded.rs`).
        S::PtraceAccess | S::PtraceTraceme | S::ModuleLoaded => {}
    }
    Ok(())
}

/// The caller's credentials before a set*id / capset / namespace call (unshare and setns
/// record them too: the user namespace they may enter changes what they mean).
#[inline(always)]
fn creds(_syscall: KernelSyscall, rec: &mut KernelRecord) {
    if kernel::current_creds(&mut rec.old).is_err() {
        rec.flags |= KERNEL_CREDS_UNKNOWN;
    }
}

/// The basename of the file behind descriptor `fd` into `rec.name`.
#[inline(always)]
pub(crate) fn fd_name(fd: u64, rec: &mut KernelRecord) {
    let read = u32::try_from(fd)
        .ok()
        .and_then(kernel::fd_file)
        .and_then(|file| kernel::file_basename(file, &mut rec.name).ok());
    match read {
        Some((len, truncated)) => {
            rec.name_len = len;
            if truncated {
                rec.flags |= KERNEL_NAME_TRUNCATED;
            }
        }
        None => rec.flags |= KERNEL_NAME_UNKNOWN,
    }
}

/// A user string (module name, memfd name) into `rec.name`.
#[inline(always)]
fn user_string_name(ptr: u64, rec: &mut KernelRecord) {
    // SAFETY: the helper writes at most KERNEL_NAME_LEN bytes into `rec.name` and validates
    // the user address itself.
    let len = unsafe {
        bpf_probe_read_user_str(
            rec.name.as_mut_ptr().cast(),
            KERNEL_NAME_LEN as u32,
            ptr as *const _,
        )
    };
    if len <= 0 {
        rec.flags |= KERNEL_NAME_UNKNOWN;
        return;
    }
    let len = (len as u32 - 1).min(KERNEL_NAME_LEN as u32 - 1);
    rec.name_len = len;
    if len == KERNEL_NAME_LEN as u32 - 1 {
        rec.flags |= KERNEL_NAME_TRUNCATED;
    }
}

/// A user string (module parameters) into `rec.data` (also used by the LSM hooks' module
/// loads, `module_args.rs`, so both records carry the parameters alike).
#[inline(always)]
pub(crate) fn user_string_data(ptr: u64, rec: &mut KernelRecord) {
    if ptr == 0 {
        return;
    }
    // SAFETY: as in `user_string_name`, into `rec.data`.
    let len = unsafe {
        bpf_probe_read_user_str(
            rec.data.as_mut_ptr().cast(),
            KERNEL_DATA_LEN as u32,
            ptr as *const _,
        )
    };
    if len <= 0 {
        rec.flags |= KERNEL_DATA_UNREAD;
        return;
    }
    let len = (len as u32 - 1).min(KERNEL_DATA_LEN as u32 - 1);
    rec.data_len = len;
    if len == KERNEL_DATA_LEN as u32 - 1 {
        rec.flags |= KERNEL_DATA_TRUNCATED;
    }
}

/// `COPY` bytes of a user structure into `rec.data` (a constant size for the verifier);
/// `data_len` says how many of them the caller's structure has (`size`, at most `COPY`).
#[inline(always)]
fn user_data(ptr: u64, copy: u32, size: u64, rec: &mut KernelRecord) {
    if ptr == 0 || copy as usize > KERNEL_DATA_LEN {
        rec.flags |= KERNEL_DATA_UNREAD;
        return;
    }
    // SAFETY: writes `copy` <= KERNEL_DATA_LEN bytes into `rec.data`; the helper validates the
    // user address and zeroes the destination on failure.
    let ret = unsafe { bpf_probe_read_user(rec.data.as_mut_ptr().cast(), copy, ptr as *const _) };
    if ret != 0 {
        rec.flags |= KERNEL_DATA_UNREAD;
        return;
    }
    rec.data_len = size.min(u64::from(copy)) as u32;
}
