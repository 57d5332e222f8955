//! BTF tracepoint `sched_process_exec`: the exec record of every successful exec (all tiers),
//! and the exec kill of the signal tier.
//!
//! Tracepoint prototype: `trace_sched_process_exec(struct task_struct *p, pid_t old_pid,
//! struct linux_binprm *bprm)`; it fires after the new image is loaded and before it returns to
//! user space, so a SIGKILL sent here stops the process before it runs a single instruction of
//! the new program.
//!
//! | tier | plan match | action |
//! |---|---|---|
//! | lsm | name, path, identity: not looked up (the LSM hook decided) | record only |
//! | signal | deny or kill rule, enforcing | SIGKILL, record `kill` |
//! | signal or monitor | rule or engine in monitor mode | record `would_kill` (what this tier would do) |
//! | any, no match above | argument plan (`args`): a listed `scheme://` or `--flag` after `argv[0]`, executable not spared | SIGKILL (`would_kill` in monitor mode) |
//! | any | none | record only |
//!
//! A failed kernel read skips the record (fail open) and bumps `Counter::ReadError`.

use aya_ebpf::{macros::btf_tracepoint, programs::BtfTracePointContext};
use enforcer_common::{
    config::Tier,
    event::{Counter, EXEC_NAME_TRUNCATED, EXEC_PATH_TRUNCATED, Hook},
    plan::{EXEC_ARGS_FLAGS, EXEC_ARGS_SCHEMES, EXEC_PATHS, EXEC_RECORD_ENV},
};

use super::exec_record::{ExecExtra, build_cwd, emit_exec};
use crate::{
    args, emit,
    kernel::{self, ReadError},
    maps::{SCRATCH, config, count, plan_settings},
    mem,
    plan::{Site, act, lookup_exec},
    typed::Typed,
};

/// Entry point; see the module documentation.
#[btf_tracepoint(function = "sched_process_exec")]
pub(crate) fn tp_sched_process_exec(ctx: BtfTracePointContext) -> i32 {
    if try_sched_process_exec(&ctx).is_err() {
        count(Counter::ReadError);
    }
    0
}

fn try_sched_process_exec(ctx: &BtfTracePointContext) -> Result<(), ReadError> {
    count(Counter::ExecSeen);
    // First, while the verifier's state is simple (see `build_cwd`).
    build_cwd();
    let cfg = config();
    let task: *const u8 = ctx.arg(0);
    let bprm: *const u8 = ctx.arg(2);
    let scratch = SCRATCH.get_ptr_mut(0).ok_or(ReadError)?;
    // SAFETY: see the LSM hook: per-CPU scratch, no re-entry on this CPU.
    let scratch = unsafe { &mut *scratch };
    mem::zero(&mut scratch.name);
    // The path is a look-up key (zero-padded) only in the signal and monitor tiers with a
    // path plan; otherwise only its valid bytes are copied into the record.
    if cfg.tier != Tier::Lsm as u32 && plan_settings().exec & EXEC_PATHS != 0 {
        mem::zero(&mut scratch.path);
    }
    let target = kernel::read_exec_target::<Typed>(bprm, &mut scratch.name.0, &mut scratch.path.0)?;
    scratch.inode.ino = 0;
    let inode = match kernel::read_file_identity::<Typed>(target.file, &mut scratch.inode) {
        Ok(inode) => inode,
        Err(ReadError) => {
            scratch.inode.ino = 0;
            count(Counter::ReadError);
            core::ptr::null()
        }
    };

    scratch.plan.actions = 0;
    if cfg.tier != Tier::Lsm as u32 {
        let name_ok = target.flags & EXEC_NAME_TRUNCATED == 0;
        let path_ok = target.flags & EXEC_PATH_TRUNCATED == 0;
        if let Some(plan) = lookup_exec(
            &scratch.name,
            target.name_len,
            name_ok,
            &scratch.path,
            path_ok,
            &scratch.inode,
        ) {
            count(Counter::ExecMatched);
            scratch.plan = plan;
        }
    }
    let settings = plan_settings();
    let blocks = kernel::mm_blocks(task);
    let args = blocks.args;
    // The argument plan, in every tier: no LSM hook sees the new image's arguments. Whether
    // the executable is spared is looked up only on a match (a 64-byte key's hash, for the
    // rare command line with a listed scheme).
    let arg_plans = settings.exec & (EXEC_ARGS_SCHEMES | EXEC_ARGS_FLAGS);
    if volatile(&scratch.plan.actions) == 0 && arg_plans != 0 {
        count(Counter::ExecArgsSearched);
        if let Some(plan) = args::search(args, arg_plans)
            && !args::spared(&scratch.name)
        {
            count(Counter::ExecArgsMatched);
            scratch.plan = plan;
        }
    }
    // SAFETY: a field of the scratch slot; volatile: written on several paths above.
    let plan = unsafe { core::ptr::read_volatile(&scratch.plan) };
    let verdict = if plan.actions != 0 {
        act(&plan, &cfg, Site::Tracepoint).0
    } else {
        emit::Verdict::NONE
    };
    let verdict = through_map(&mut scratch.verdict, verdict);
    let ppid = kernel::parent_tgid(task);
    let env = if settings.exec & EXEC_RECORD_ENV != 0 {
        blocks.env
    } else {
        (0, 0)
    };
    let extra = ExecExtra {
        task,
        bprm,
        inode,
        env,
    };
    emit_exec(
        Hook::TpSchedProcessExec,
        scratch,
        &target,
        ppid,
        &verdict,
        args,
        Some(&extra),
    );
    Ok(())
}

/// `field` read from map memory (volatile: the compiler keeps the load).
#[inline(always)]
fn volatile(field: &u32) -> u32 {
    // SAFETY: a valid reference to a field of a map value.
    unsafe { core::ptr::read_volatile(field) }
}

/// `verdict` stored into `slot` and read back: unknown values to the verifier, so every path
/// of `act` continues into the record in one state.
#[inline(always)]
fn through_map(slot: &mut [u32; 3], verdict: emit::Verdict) -> emit::Verdict {
    let values = [verdict.outcome, verdict.rule_index, verdict.generation];
    // SAFETY: a field of the scratch slot; volatile keeps the store and the loads.
    unsafe {
        core::ptr::write_volatile(slot, values);
        let read = core::ptr::read_volatile(slot);
        emit::Verdict {
            outcome: read[0],
            rule_index: read[1],
            generation: read[2],
        }
    }
}
