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
//! this CPU meanwhile, so no per-CPU scratch is used: the identity and the digest are on the
//! stack, and the record is filled in the ring buffer directly.

use aya_ebpf::{
    helpers::generated::{bpf_get_current_comm, bpf_ima_file_hash, bpf_ktime_get_tai_ns},
    macros::lsm,
    programs::LsmContext,
};
use enforcer_common::{
    config::Tier,
    event::{
        COMM_LEN, Counter, EXEC_ARGS_MISSING, EXEC_ENV_MISSING, EXEC_SHA256_KERNEL, EventKind,
        ExecRecord, Hook,
    },
    plan::{
        EXEC_HASH_IN_KERNEL, HashKey, InodeKey, PLAN_FLAG_HASH_CLEAN, PlanSettings, PlanVerdict,
        SHA256_LEN,
    },
};

use super::{Verdict, fail_open};
use crate::{
    emit,
    kernel::{self, ReadError},
    maps::{EXEC_HASH_PLAN, EXEC_INODE_PLAN, config, count, plan_settings},
    plan::{Site, act},
    typed::Probed,
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
    fail_open(try_bprm_creds_from_file(&ctx))
}

/// The plan settings when the kernel hashes: the lsm tier with a non-empty hash plan
/// (`EXEC_HASH_IN_KERNEL`); `None` otherwise.
#[inline(always)]
pub(super) fn hash_settings() -> Option<&'static PlanSettings> {
    if config().tier != Tier::Lsm as u32 {
        return None;
    }
    let settings = plan_settings();
    (settings.exec & EXEC_HASH_IN_KERNEL != 0).then_some(settings)
}

fn try_bprm_creds_from_file(ctx: &LsmContext) -> Result<Verdict, ReadError> {
    let Some(settings) = hash_settings() else {
        return Ok(Verdict::Allow);
    };
    let bprm: *const u8 = ctx.arg(0);
    let file: *const u8 = ctx.arg(1);
    let mut key = InodeKey::default();
    kernel::read_file_identity::<Probed>(file, &mut key)?;
    let mut digest = HashKey([0; SHA256_LEN]);
    // One site acts and emits (each inlined call site is verified again: 6.1 is slow on them).
    let key_ref = &key;
    let (plan, hashed) = match EXEC_INODE_PLAN.get_ptr(key_ref) {
        // SAFETY: the pointer comes from a successful map look-up and PlanVerdict is Copy.
        Some(cached) if unsafe { (*cached).actions } != 0 => {
            // Normally refused in bprm_check_security already; reached when a name or path
            // entry in monitor mode answered there first.
            // SAFETY: as above.
            (unsafe { *cached }, false)
        }
        // SAFETY: as above.
        Some(cached) if unsafe { is_clean(&*cached, settings.hash_generation) } => {
            count(Counter::ImaCacheHit);
            return Ok(Verdict::Allow);
        }
        _ => {
            let Some(plan) = hash_and_look_up(file, &key, settings, &mut digest)? else {
                return Ok(Verdict::Allow);
            };
            (plan, true)
        }
    };
    let cfg = config();
    let (verdict, deny) = act(&plan, &cfg, Site::Lsm);
    let source = HashedFile::Exec(bprm);
    emit_record(source, &key, &verdict, &digest, hashed);
    Ok(Verdict::deny_if(deny))
}

/// The file a hash record is about, and where its name comes from.
#[derive(Clone, Copy)]
pub(super) enum HashedFile {
    /// The file of an exec (`struct linux_binprm *`): basename and the path given to execve.
    Exec(*const u8),
    /// A file mapped executable (`struct file *`): basename only.
    Mapped(*const u8),
}

/// Whether `cached` is a clean verdict of hash generation `generation`.
#[inline(always)]
pub(super) fn is_clean(cached: &PlanVerdict, generation: u32) -> bool {
    cached.flags & PLAN_FLAG_HASH_CLEAN != 0 && cached.generation == generation
}

/// Hashes `file` (identity `key`) into `digest` and looks it up in the hash plan; caches the
/// result by identity. `None`: not hashed (too large, helper failure) or not listed.
#[inline(always)]
pub(super) fn hash_and_look_up(
    file: *const u8,
    key: &InodeKey,
    settings: &PlanSettings,
    digest: &mut HashKey,
) -> Result<Option<PlanVerdict>, ReadError> {
    let size = kernel::file_size(file)?;
    if size < 0 || size as u64 > settings.hash_max_size {
        count(Counter::ImaSkipped);
        return Ok(None);
    }
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
        return Ok(None);
    }
    count(Counter::ImaHashed);
    if let Some(plan) = EXEC_HASH_PLAN.get_ptr(digest) {
        // SAFETY: the pointer comes from a successful map look-up and PlanVerdict is Copy.
        let plan = unsafe { *plan };
        count(Counter::ImaMatched);
        // The verdict of this version of the file, for its next exec (also for a file changed
        // a moment ago: a rewrite within the same timestamp tick is then refused too, the
        // fail-closed direction).
        let _ = EXEC_INODE_PLAN.insert(key, plan, 0);
        return Ok(Some(plan));
    }
    // SAFETY: helper without arguments.
    let now_s = (unsafe { bpf_ktime_get_tai_ns() } / NS_PER_S) as i64;
    if key.ctime_sec < now_s.saturating_sub(settings.hash_fresh_s as i64) {
        let clean = PlanVerdict {
            rule_index: 0,
            actions: 0,
            flags: PLAN_FLAG_HASH_CLEAN,
            generation: settings.hash_generation,
        };
        let _ = EXEC_INODE_PLAN.insert(key, clean, 0);
    }
    Ok(None)
}

/// The exec record of a match, written straight into the ring buffer (no copy from per-CPU
/// scratch: the byte-wise copies that costs made the 6.1 verifier give up on this program).
/// `digest` is the file's SHA-256 when `hashed`.
#[inline(always)]
pub(super) fn emit_record(
    source: HashedFile,
    key: &InodeKey,
    verdict: &emit::Verdict,
    digest: &HashKey,
    hashed: bool,
) {
    let Some(mut entry) = emit::reserve::<ExecRecord>() else {
        return;
    };
    let rec = entry.as_mut_ptr();
    // SAFETY: `rec` points at a reserved, writable ExecRecord-sized slot; every write stays
    // inside it. The argument block is not written: `args_len` is 0 and flagged missing.
    unsafe {
        let (target, hook) = match source {
            HashedFile::Exec(bprm) => (
                kernel::read_exec_target::<Probed>(bprm, &mut (*rec).name, &mut (*rec).path),
                Hook::LsmBprmCredsFromFile,
            ),
            HashedFile::Mapped(file) => (
                kernel::read_file_target::<Probed>(file, &mut (*rec).name),
                Hook::LsmMmapFileHash,
            ),
        };
        let Ok(target) = target else {
            entry.discard(0);
            count(Counter::ReadError);
            return;
        };
        (*rec).header = emit::header(EventKind::Exec, size_of::<ExecRecord>(), hook, 0, verdict);
        let mut flags = target.flags | EXEC_ARGS_MISSING | EXEC_ENV_MISSING;
        if hashed {
            flags |= EXEC_SHA256_KERNEL;
        }
        (*rec).flags = flags;
        (*rec).name_len = target.name_len;
        (*rec).path_len = target.path_len;
        (*rec).args_len = 0;
        (*rec).euid = 0;
        (*rec).interp_len = 0;
        (*rec).cap_effective = 0;
        (*rec).cap_permitted = 0;
        (*rec).env_len = 0;
        (*rec).cwd_len = 0;
        (*rec).file = *key;
        (*rec).sha256 = digest.0;
        // On failure the helper zeroes the buffer itself.
        bpf_get_current_comm((*rec).comm.as_mut_ptr().cast(), COMM_LEN as u32);
    }
    entry.submit(emit::event_flags());
}
