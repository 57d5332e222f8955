//! LSM `bprm_check_security`: the exec-deny point of the lsm tier.
//!
//! Kernel prototype: `int security_bprm_check(struct linux_binprm *bprm)`; the BPF program sees
//! `ctx.arg(0) = bprm` and `ctx.arg(1)` = the return value of the LSMs that ran before it.
//!
//! | situation | returns | record |
//! |---|---|---|
//! | an earlier LSM refused (`arg(1) != 0`) | that value, unchanged | none |
//! | plan match, rule `deny`, engine and rule enforcing | `-EPERM` (and SIGKILL if the rule also kills) | `deny` |
//! | plan match, rule `kill` only, enforcing | 0, SIGKILL sent (the exec never completes) | `kill` |
//! | plan match, engine or rule in monitor mode | 0 | `would_deny` / `would_kill` |
//! | plan match in the engine's own process | 0 | spared |
//! | no match | 0 | none (the tracepoint reports successful execs) |
//! | a kernel read fails | 0 (fail open), `Counter::ReadError` + 1 | none |

use aya_ebpf::{macros::lsm, programs::LsmContext};
use enforcer_common::{
    config::Tier,
    event::{Counter, Hook},
    plan::EXEC_PATHS,
};

use super::{Verdict, exec_record::emit_exec};
use crate::{
    kernel::{self, ReadError},
    maps::{SCRATCH, config, count, plan_settings},
    mem,
    plan::{Site, act, lookup_exec},
    typed::Typed,
};

/// Entry point; see the module documentation for the verdict table.
#[lsm(hook = "bprm_check_security")]
pub(crate) fn lsm_bprm_check_security(ctx: LsmContext) -> i32 {
    let previous: i32 = ctx.arg(1);
    if previous != 0 {
        return previous;
    }
    match try_bprm_check_security(&ctx) {
        Ok(verdict) => verdict.ret(),
        Err(ReadError) => {
            count(Counter::ReadError);
            Verdict::Allow.ret()
        }
    }
}

fn try_bprm_check_security(ctx: &LsmContext) -> Result<Verdict, ReadError> {
    let cfg = config();
    if cfg.tier != Tier::Lsm as u32 {
        return Ok(Verdict::Allow);
    }
    let bprm: *const u8 = ctx.arg(0);
    let scratch = SCRATCH.get_ptr_mut(0).ok_or(ReadError)?;
    // SAFETY: per-CPU scratch from a successful look-up; BPF programs are not re-entered on
    // the same CPU while this one runs, so the exclusive borrow is sound.
    let scratch = unsafe { &mut *scratch };
    mem::zero(&mut scratch.name);
    let mut target = kernel::read_exec_file::<Typed>(bprm, &mut scratch.name.0)?;
    // The path (a string read and a 256-byte key) only when the path plan has entries; else
    // only for the record of a match, below.
    let paths = plan_settings().exec & EXEC_PATHS != 0;
    if paths {
        mem::zero(&mut scratch.path);
        kernel::read_exec_path::<Typed>(bprm, &mut scratch.path.0, &mut target)?;
    }
    scratch.inode.ino = 0;
    if kernel::read_file_identity::<Typed>(target.file, &mut scratch.inode).is_err() {
        scratch.inode.ino = 0;
        count(Counter::ReadError);
    }

    let name_ok = target.flags & enforcer_common::event::EXEC_NAME_TRUNCATED == 0;
    let path_ok = paths && target.flags & enforcer_common::event::EXEC_PATH_TRUNCATED == 0;
    let Some(plan) = lookup_exec(
        &scratch.name,
        target.name_len,
        name_ok,
        &scratch.path,
        path_ok,
        &scratch.inode,
    ) else {
        return Ok(Verdict::Allow);
    };
    count(Counter::ExecMatched);
    // A path that cannot be read leaves the record's empty; the verdict stands.
    if !paths && kernel::read_exec_path::<Typed>(bprm, &mut scratch.path.0, &mut target).is_err() {
        target.path_len = 0;
        count(Counter::ReadError);
    }

    let (verdict, deny) = act(&plan, &cfg, Site::Lsm);
    emit_exec(
        Hook::LsmBprmCheckSecurity,
        scratch,
        &target,
        0,
        &verdict,
        (0, 0),
        None,
    );
    Ok(Verdict::deny_if(deny))
}
