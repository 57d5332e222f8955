//! Sleepable LSM `mmap_file`: the in-kernel content hash of a file mapped executable (issue 6,
//! F12 with a renamed, never-seen miner: `ld.so ./kworker_upd` maps the miner without an exec,
//! so neither the exec hooks nor the basename check of `lsm_mmap_file` can know it). lsm tier
//! only, loaded and attached together with `lsm_bprm_creds_from_file` (same helper, same hash
//! plan, same identity cache).
//!
//! Kernel prototype: `mmap_file(struct file *file, unsigned long reqprot, unsigned long prot,
//! unsigned long flags)`, verdict so far in `ctx.arg(4)`; `file` is null for anonymous memory.
//! `security_mmap_file` runs before the mapping exists and before `mmap_lock` is taken, so
//! the hook may sleep while the helper reads the file, and `-EPERM` makes the mmap fail
//! (ld.so then gives up on the program).
//!
//! Cost: only `PROT_EXEC` mappings of files with no cached verdict for their identity are
//! hashed, and only while the hash plan has entries (`EXEC_HASH_IN_KERNEL`). A library is
//! hashed once per version (its clean verdict is cached in `EXEC_INODE_PLAN` like an
//! executable's); a program's own file, mapped by the kernel during its exec, was judged by
//! `bprm_creds_from_file` and is skipped.
//!
//! | situation | returns | record |
//! |---|---|---|
//! | an earlier LSM program refused | that value | none |
//! | no `PROT_EXEC`, no file, not the lsm tier, empty hash plan | 0 | none |
//! | identity cached (clean this generation, or with a verdict `lsm_mmap_file` acts on) | 0 | none |
//! | the task's own executable | 0 | none |
//! | larger than `hash_max_size`, helper error | 0, `ima_skipped` + 1 | none |
//! | digest in `EXEC_HASH_PLAN` | `-EPERM` (enforcing), verdict cached by identity | exec record from `lsm/mmap_file` with the digest |
//! | digest not listed | 0; cached clean unless changed within `hash_fresh_s` | none |
//!
//! Sleepable: no per-CPU scratch (see `bprm_creds_from_file`).

use aya_ebpf::{macros::lsm, programs::LsmContext};
use enforcer_common::plan::{HashKey, InodeKey, SHA256_LEN};

use super::{
    Verdict,
    bprm_creds_from_file::{HashedFile, emit_record, hash_and_look_up, hash_settings, is_clean},
    fail_open,
    mmap_exec::exec_mapping,
};
use crate::{
    kernel::{self, ReadError},
    maps::{EXEC_INODE_PLAN, config},
    plan::{Site, act},
    typed::Probed,
};

/// Entry point; see the module documentation for the verdict table.
#[lsm(hook = "mmap_file", sleepable)]
pub(crate) fn lsm_mmap_file_hash(ctx: LsmContext) -> i32 {
    match exec_mapping(&ctx) {
        Ok(file) => fail_open(try_mmap_file_hash(file)),
        Err(ret) => ret,
    }
}

fn try_mmap_file_hash(file: *const u8) -> Result<Verdict, ReadError> {
    if file.is_null() {
        return Ok(Verdict::Allow);
    }
    let Some(settings) = hash_settings() else {
        return Ok(Verdict::Allow);
    };
    let mut key = InodeKey::default();
    kernel::read_file_identity::<Probed>(file, &mut key)?;
    if let Some(cached) = EXEC_INODE_PLAN.get_ptr(key) {
        // SAFETY: the pointer comes from a successful map look-up; PlanVerdict is Copy.
        let cached = unsafe { *cached };
        if cached.actions != 0 || is_clean(&cached, settings.hash_generation) {
            return Ok(Verdict::Allow);
        }
    }
    if let Ok(exe) = kernel::current_exe_id()
        && exe.ino == key.ino
        && exe.dev == key.dev
    {
        return Ok(Verdict::Allow);
    }
    let mut digest = HashKey([0; SHA256_LEN]);
    let Some(plan) = hash_and_look_up(file, &key, settings, &mut digest)? else {
        return Ok(Verdict::Allow);
    };
    let (verdict, deny) = act(&plan, &config(), Site::Lsm);
    emit_record(HashedFile::Mapped(file), &key, &verdict, &digest, true);
    Ok(Verdict::deny_if(deny))
}
