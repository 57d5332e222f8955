//! Kernel-activity syscalls, in every tier: one tracepoint program attached to the
//! `syscalls/sys_enter_*` tracepoint of each of them (those the running kernel has: without
//! `CONFIG_MODULES` or `CONFIG_KEXEC*` the module and kexec ones do not exist, and the loader
//! reports them unseen), and, in the lsm tier, the LSM hooks of `kernel_lsm.rs`, which report
//! module loads, kexec, ptrace and `bpf` through the same [`on_call`] from the caller's
//! registers (the loader then does not attach those tracepoints). Calls are told apart by
//! syscall number through `KERNEL_SYSCALLS`.
//!
//! | step | cost |
//! |---|---|
//! | syscall number -> `KernelSyscall` -> `KernelOp` | one array look-up |
//! | no enabled rule is about the operation (`PLAN_SETTINGS.kernel_ops`) | return, `kernel_filtered` + 1 |
//! | `bpf` by the engine, or a `bpf` command other than map create / prog load / attach / BTF load / link create / raw tracepoint open | return |
//! | `ptrace` request other than `PTRACE_TRACEME` / `ATTACH` / `SEIZE` | return |
//! | tracepoint in the lsm tier (an architecture without `user_regs`), operation an LSM hook refuses (module load, kexec, ptrace) and the plan acts on it | return: `kernel_lsm.rs` reports it, with its verdict |
//! | plan entry with an action | LSM hook: deny (and kill) through `plan::act`; tracepoint: SIGKILL (the syscall itself runs) |
//! | otherwise | `KernelRecord` of the call (from a tracepoint: the attempt, the result is not known at entry) |
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
    typed::Probed,
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

/// Where a kernel-activity call's arguments come from: the tracepoint's record, or the
/// caller's saved registers (`user_regs.rs`, for the LSM hooks). Each source gets its own
/// inlined copy of [`on_call`], verified in its own program.
pub(crate) trait CallArgs {
    /// Argument `i` (a constant at every call site once inlined).
    fn arg(&self, i: usize) -> Result<u64, ReadError>;
}

impl CallArgs for TracePointContext {
    #[inline(always)]
    fn arg(&self, i: usize) -> Result<u64, ReadError> {
        syscall_arg::<KERNEL_ARGS>(self, i)
    }
}

impl CallArgs for [u64; 6] {
    #[inline(always)]
    fn arg(&self, i: usize) -> Result<u64, ReadError> {
        self.get(i).copied().ok_or(ReadError)
    }
}

/// Entry point, attached to every kernel-activity `sys_enter_*` tracepoint.
#[tracepoint(category = "syscalls", name = "sys_enter_setuid")]
pub(crate) fn tp_sys_enter_kernel(ctx: TracePointContext) -> u32 {
    let result = syscall_nr(&ctx).and_then(|nr| match kernel_syscall(nr as u32 as u64) {
        Some(syscall) => on_call(syscall, &ctx, Hook::TpSysEnterKernel, Site::Tracepoint),
        None => Ok(false),
    });
    if result.is_err() {
        count(Counter::ReadError);
    }
    0
}

/// The kernel-activity call with syscall number `nr` (`KERNEL_SYSCALLS`), if it is one.
#[inline(always)]
pub(crate) fn kernel_syscall(nr: u64) -> Option<KernelSyscall> {
    if nr >= u64::from(KERNEL_SYSCALL_NRS) {
        return None;
    }
    let code = KERNEL_SYSCALLS.get(nr as u32)?;
    KernelSyscall::try_from(*code).ok()
}

/// Reports (and, where the plan acts, stops) one call, its arguments from `args`, seen by
/// `hook` at `site`; see the module documentation. `Ok(true)`: refuse it (LSM site only).
#[inline(always)]
pub(crate) fn on_call<A: CallArgs>(
    syscall: KernelSyscall,
    args: &A,
    hook: Hook,
    site: Site,
) -> Result<bool, ReadError> {
    let op = syscall.op();
    if plan_settings().kernel_ops & op.bit() == 0 {
        count(Counter::KernelFiltered);
        return Ok(false);
    }
    let cfg = config();
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    let arg0 = args.arg(0)?;
    match syscall {
        KernelSyscall::Bpf if tgid == cfg.engine_tgid || !BPF_CMDS.contains(&arg0) => {
            return Ok(false);
        }
        KernelSyscall::Ptrace if !PTRACE_REQUESTS.contains(&arg0) => return Ok(false),
        _ => {}
    }
    let plan = op_plan(op);
    if site == Site::Tracepoint
        && cfg.tier == Tier::Lsm as u32
        && op.lsm_enforced()
        && plan.is_some()
    {
        // Where the tracepoint is attached in the lsm tier (no `user_regs` on this
        // architecture), the LSM hook of this operation acts and reports.
        return Ok(false);
    }
    count(Counter::KernelSeen);
    let mut verdict = emit::Verdict::NONE;
    let mut deny = false;
    if let Some(plan) = plan {
        count(Counter::KernelMatched);
        (verdict, deny) = act(&plan, &cfg, site);
    }
    // Slot 0 for the tracepoint, 1 for the hooks (LSM or fentry): a tracepoint may fire
    // inside a hook.
    let slot = if site == Site::Tracepoint { 0 } else { 1 };
    let rec = KERNEL_SCRATCH.get_ptr_mut(slot).ok_or(ReadError)?;
    // SAFETY: per-CPU slot from a successful look-up, used by one kind of program only; BPF
    // programs are not re-entered on the same CPU while it runs.
    let rec = unsafe { &mut *rec };
    reset(rec, syscall);
    gather(args, syscall, arg0, rec)?;
    emit_kernel(rec, hook, &verdict);
    Ok(deny)
}

/// Fills the syscall-specific part of `rec` from the call's arguments.
#[inline(always)]
fn gather<A: CallArgs>(
    args: &A,
    syscall: KernelSyscall,
    arg0: u64,
    rec: &mut KernelRecord,
) -> Result<(), ReadError> {
    use KernelSyscall as S;
    match syscall {
        S::InitModule => {
            rec.args = [arg0, args.arg(1)?, 0];
            rec.flags |= KERNEL_NAME_UNKNOWN;
            user_string_data(args.arg(2)?, rec);
        }
        S::FinitModule => {
            rec.args = [arg0, args.arg(2)?, 0];
            fd_name(arg0, rec);
            user_string_data(args.arg(1)?, rec);
        }
        S::DeleteModule => {
            rec.args = [args.arg(1)?, 0, 0];
            user_string_name(arg0, rec);
        }
        S::Bpf => {
            let size = args.arg(2)?;
            rec.args = [arg0, size, 0];
            let attr = args.arg(1)?;
            user_data(attr, BPF_ATTR_COPY, size, rec);
        }
        S::Ptrace => rec.args = [arg0, args.arg(1)?, 0],
        S::ProcessVmWritev => {
            rec.args = [arg0, args.arg(2)?, args.arg(4)?];
        }
        S::KexecLoad => rec.args = [arg0, args.arg(1)?, args.arg(3)?],
        S::KexecFileLoad => {
            rec.args = [arg0, args.arg(1)?, args.arg(4)?];
            fd_name(arg0, rec);
        }
        S::Setuid | S::Setgid | S::Setfsuid | S::Setfsgid | S::Unshare => {
            rec.args = [arg0, 0, 0];
            creds(syscall, rec);
        }
        S::Setreuid | S::Setregid | S::Setns => {
            rec.args = [arg0, args.arg(1)?, 0];
            creds(syscall, rec);
        }
        S::Setresuid | S::Setresgid => {
            rec.args = [arg0, args.arg(1)?, args.arg(2)?];
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
            user_data(args.arg(1)?, CAP_DATA_LEN, u64::from(CAP_DATA_LEN), rec);
            creds(syscall, rec);
        }
        S::MemfdCreate => {
            rec.args = [args.arg(1)?, 0, 0];
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
        .and_then(|file| kernel::file_basename::<Probed, _>(file, &mut rec.name).ok());
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
