//! Sleepable LSM `bprm_creds_from_file`: the in-kernel content hash of the lsm tier (issue 6,
//! "first-seen binaries"). Loaded only in the lsm tier, and only when the kernel accepts the
//! program (it needs `bpf_ima_file_hash`, 5.18+); otherwise userspace hashes after the exec.
//!
//! Kernel prototype: `int security_bprm_creds_from_file(struct linux_binprm *bprm, struct file
//! *file)`, called from `begin_new_exec` before the point of no return, so `-EPERM` makes
//! execve fail and the new image never runs. The BPF program sees `ctx.arg(0) = bprm`,
//! `ctx.arg(1) = file` (a trusted pointer the helper accepts) and `ctx.arg(2)` = the verdict of
//! the LSMs that ran before it. The file cannot change under the hash: the exec holds it
//! write-denied (`ETXTBSY` for writers) from `open_exec` on.
//!
//! | situation | returns | record |
//! |---|---|---|
//! | an earlier LSM refused | that value | none |
//! | not the lsm tier, or the hash plan is empty (`EXEC_HASH_IN_KERNEL` unset) | 0 | none |
//! | identity cached clean (this hash generation) | 0, `ima_cache_hit` + 1 | none |
//! | identity cached with a verdict (a match, kernel- or daemon-written) | as the verdict | `deny` / `would_deny` |
//! | larger than `hash_max_size`, helper error, not SHA-256 | 0, `ima_skipped` + 1 (userspace hashes after the exec) | none |
//! | digest in `EXEC_HASH_PLAN` | `-EPERM` (enforcing), verdict cached by identity | `deny` with the digest |
//! | digest not listed | 0; cached clean unless changed within `hash_fresh_s` | none |
//!
//! Sleepable: the helper reads the whole file (it may sleep), and another program may run on
//! this CPU meanwhile, so nothing lives in per-CPU scratch across the call: the identity and
//! the digest are on the stack, and the scratch keys for the record are filled afterwards.

use aya_ebpf::{
    helpers::generated::{bpf_ima_file_hash, bpf_ktime_get_tai_ns},
    macros::lsm,
    programs::LsmContext,
};
use enforcer_common::{
    config::Tier,
    event::{Counter, Hook},
    plan::{
        EXEC_HASH_IN_KERNEL, HashKey, InodeKey, NAME_LEN, PATH_LEN, PLAN_FLAG_HASH_CLEAN,
        PlanVerdict, SHA256_LEN,
    },
};

use super::{Verdict, exec_record::emit_exec};
use crate::{
    emit,
    kernel::{self, ReadError},
    maps::{EXEC_HASH_PLAN, EXEC_INODE_PLAN, SCRATCH, config, count, plan_settings},
    plan::{Site, act},
};

/// `HASH_ALGO_SHA256` of the kernel's `enum hash_algo`: what the helper returns when the digest
/// it wrote is a SHA-256.
const HASH_ALGO_SHA256: i64 = 4;

/// Nanoseconds per second.
const NS_PER_S: u64 = 1_000_000_000;

/// Entry point; see the module documentation for the verdict table.
#[lsm(hook = "bprm_creds_from_file", sleepable)]
pub(crate) fn lsm_bprm_creds_from_file(ctx: LsmContext) -> i32 {
    let previous: i32 = ctx.arg(2);
    if previous != 0 {
        return previous;
    }
    match try_bprm_creds_from_file(&ctx) {
        Ok(verdict) => verdict.ret(),
        Err(ReadError) => {
            count(Counter::ReadError);
            Verdict::Allow.ret()
        }
    }
}

fn try_bprm_creds_from_file(ctx: &LsmContext) -> Result<Verdict, ReadError> {
    let cfg = config();
    if cfg.tier != Tier::Lsm as u32 {
        return Ok(Verdict::Allow);
    }
    let settings = plan_settings();
    if settings.exec & EXEC_HASH_IN_KERNEL == 0 {
        return Ok(Verdict::Allow);
    }
    let bprm: *const u8 = ctx.arg(0);
    let file: *const u8 = ctx.arg(1);
    let mut key = InodeKey::default();
    kernel::read_file_identity(file, &mut key)?;
    if let Some(cached) = EXEC_INODE_PLAN.get_ptr(&key) {
        // SAFETY: the pointer comes from a successful map look-up and PlanVerdict is Copy.
        let cached = unsafe { *cached };
        if cached.actions != 0 {
            // Normally refused in bprm_check_security already; reached when a name or path
            // entry in monitor mode answered there first.
            return Ok(judge(bprm, &key, &cached, None));
        }
        if cached.flags & PLAN_FLAG_HASH_CLEAN != 0
            && cached.generation == settings.hash_generation
        {
            count(Counter::ImaCacheHit);
            return Ok(Verdict::Allow);
        }
    }
    let size = kernel::file_size(file)?;
    if size < 0 || size as u64 > settings.hash_max_size {
        count(Counter::ImaSkipped);
        return Ok(Verdict::Allow);
    }
    let mut digest = HashKey([0; SHA256_LEN]);
    // SAFETY: `file` is the hook's trusted `struct file *` argument (the verifier checks the
    // type); the destination is a 32-byte stack buffer and the size says 32.
    let algo = unsafe {
        bpf_ima_file_hash(
            file as *mut _,
            digest.0.as_mut_ptr().cast(),
            SHA256_LEN as u32,
        )
    };
    if algo != HASH_ALGO_SHA256 {
        count(Counter::ImaSkipped);
        return Ok(Verdict::Allow);
    }
    count(Counter::ImaHashed);
    if let Some(plan) = EXEC_HASH_PLAN.get_ptr(&digest) {
        // SAFETY: as above.
        let plan = unsafe { *plan };
        count(Counter::ImaMatched);
        // The verdict of this version of the file, for its next exec (also for a file changed
        // a moment ago: a rewrite within the same timestamp tick is then refused too, the
        // fail-closed direction).
        let _ = EXEC_INODE_PLAN.insert(&key, &plan, 0);
        return Ok(judge(bprm, &key, &plan, Some(&digest.0)));
    }
    // SAFETY: helper without arguments.
    let now_s = (unsafe { bpf_ktime_get_tai_ns() } / NS_PER_S) as i64;
    let settled = key.ctime_sec < now_s.saturating_sub(settings.hash_fresh_s as i64);
    if settled {
        let clean = PlanVerdict {
            rule_index: 0,
            actions: 0,
            flags: PLAN_FLAG_HASH_CLEAN,
            generation: settings.hash_generation,
        };
        let _ = EXEC_INODE_PLAN.insert(&key, &clean, 0);
    }
    Ok(Verdict::Allow)
}

/// Acts on a match for the file `key` of `bprm` and emits its record (with the digest when the
/// kernel just computed it). No sleeping call from here on: the per-CPU scratch is safe.
#[inline(always)]
fn judge(
    bprm: *const u8,
    key: &InodeKey,
    plan: &PlanVerdict,
    digest: Option<&[u8; SHA256_LEN]>,
) -> Verdict {
    let cfg = config();
    let (verdict, deny) = act(plan, &cfg, Site::Lsm);
    emit_record(bprm, key, &verdict, digest);
    if deny { Verdict::Deny } else { Verdict::Allow }
}

/// The exec record of a match (best effort: an unreadable name or path skips it, counted).
#[inline(always)]
fn emit_record(
    bprm: *const u8,
    key: &InodeKey,
    verdict: &emit::Verdict,
    digest: Option<&[u8; SHA256_LEN]>,
) {
    let Some(scratch) = SCRATCH.get_ptr_mut(0) else {
        return;
    };
    // SAFETY: per-CPU scratch from a successful look-up, used without sleeping in between.
    let scratch = unsafe { &mut *scratch };
    scratch.name.0 = [0; NAME_LEN];
    scratch.path.0 = [0; PATH_LEN];
    let Ok(target) = kernel::read_exec_target(bprm, &mut scratch.name.0, &mut scratch.path.0)
    else {
        count(Counter::ReadError);
        return;
    };
    scratch.inode = *key;
    emit_exec(
        Hook::LsmBprmCredsFromFile,
        scratch,
        &target,
        0,
        verdict,
        (0, 0),
        digest,
    );
}
