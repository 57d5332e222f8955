//! The exec plan look-up and the verdict logic shared by the LSM hook and the tracepoint:
//! which rule applies, and whether to deny, kill, or only record what would have happened.

use enforcer_common::{
    config::EngineConfig,
    event::{
        OUTCOME_DENIED, OUTCOME_KILL_DEFERRED, OUTCOME_KILLED, OUTCOME_SPARED, OUTCOME_WOULD_DENY,
        OUTCOME_WOULD_KILL,
    },
    plan::{
        ACTION_DENY, ACTION_KILL, EXEC_PATHS, InodeKey, NameKey, PLAN_FLAG_MONITOR, PathKey,
        PlanVerdict,
    },
};

use aya_ebpf::helpers::{bpf_get_current_pid_tgid, generated::bpf_send_signal};
use enforcer_common::event::{Counter, OUTCOME_KILL_FAILED};

use crate::{
    emit, kernel,
    maps::{EXEC_INODE_PLAN, EXEC_NAME_PLAN, EXEC_PATH_PLAN, NEVER_KILL, count, plan_settings},
};

/// `SIGKILL`.
const SIGKILL: u32 = 9;

/// Looks the exec up by basename first (`name_len` bytes; when the plan's name filter lets it
/// through), then by path (when the path plan has entries, `EXEC_PATHS`), then by file
/// identity (a verdict the daemon wrote for this file's content). Truncated values and unread
/// identities never match.
#[inline(always)]
pub(crate) fn lookup_exec(
    name: &NameKey,
    name_len: u32,
    name_ok: bool,
    path: &PathKey,
    path_ok: bool,
    inode: &InodeKey,
) -> Option<PlanVerdict> {
    let settings = plan_settings();
    if name_ok
        && settings
            .exec_names
            .may_hold(name_len, name_key_prefix(name))
        && let Some(v) = EXEC_NAME_PLAN.get_ptr(name)
    {
        // SAFETY: the pointer comes from a successful map look-up and PlanVerdict is Copy.
        return Some(unsafe { *v });
    }
    if path_ok
        && settings.exec & EXEC_PATHS != 0
        && let Some(v) = EXEC_PATH_PLAN.get_ptr(path)
    {
        // SAFETY: as above.
        return Some(unsafe { *v });
    }
    if inode.ino != 0 {
        return lookup_inode(inode);
    }
    None
}

/// The first eight bytes of a name key (zero past the name: keys are zeroed before the read).
#[inline(always)]
fn name_key_prefix(name: &NameKey) -> u64 {
    // SAFETY: a `NameKey` is 8-byte aligned and holds 64 bytes.
    unsafe { core::ptr::read(name.0.as_ptr().cast::<u64>()) }
}

/// The verdict `EXEC_INODE_PLAN` holds for a file identity; a clean entry of the kernel's hash
/// cache (`actions == 0`) is no match.
#[inline(always)]
pub(crate) fn lookup_inode(inode: &InodeKey) -> Option<PlanVerdict> {
    let v = EXEC_INODE_PLAN.get_ptr(inode)?;
    // SAFETY: the pointer comes from a successful map look-up and PlanVerdict is Copy.
    let v = unsafe { *v };
    (v.actions != 0).then_some(v)
}

/// What a hook does about a plan match.
pub(crate) struct Decision {
    /// `OUTCOME_*` bits for the record.
    pub(crate) outcome: u32,
    /// Return -EPERM from the LSM hook.
    pub(crate) deny: bool,
    /// Send SIGKILL to the current process.
    pub(crate) kill: bool,
}

/// Where the decision is taken: an LSM hook can deny; a tracepoint or a trampoline can only
/// kill, so a deny there becomes a kill (the strongest stop the signal tier has; never a
/// silent downgrade).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Site {
    /// A BPF LSM program (lsm tier).
    Lsm,
    /// A tracepoint (syscall or scheduler).
    Tracepoint,
    /// An fentry program on an LSM hook's `security_*` function (signal tier on kernels with
    /// BPF trampolines): it sees what the LSM program sees, but runs before the function and
    /// cannot change its result.
    Trampoline,
}

impl Site {
    /// Whether this site can refuse the operation (else a deny is a kill).
    #[inline(always)]
    pub(crate) fn can_deny(self) -> bool {
        self == Site::Lsm
    }
}

/// Decides what to do for `verdict` in process `tgid`.
#[inline(always)]
pub(crate) fn decide(
    verdict: &PlanVerdict,
    config: &EngineConfig,
    site: Site,
    tgid: u32,
) -> Decision {
    let wants_deny = verdict.actions & ACTION_DENY != 0;
    let wants_kill = verdict.actions & ACTION_KILL != 0;
    let dry = !config.enforces() || verdict.flags & PLAN_FLAG_MONITOR != 0;
    let mut d = Decision {
        outcome: 0,
        deny: false,
        kill: false,
    };
    // Never act on the engine or on the host's init (ids here are in the initial pid
    // namespace, so a container's pid 1 is not spared by this).
    if tgid == config.engine_tgid || tgid == 1 {
        d.outcome = OUTCOME_SPARED;
        return d;
    }
    let (deny, kill) = if site.can_deny() {
        (wants_deny, wants_kill)
    } else {
        (false, wants_deny || wants_kill)
    };
    // In a dry run the record says what this tier would have done.
    let (deny_bit, kill_bit) = if dry {
        (OUTCOME_WOULD_DENY, OUTCOME_WOULD_KILL)
    } else {
        d.deny = deny;
        d.kill = kill;
        (OUTCOME_DENIED, OUTCOME_KILLED)
    };
    if deny {
        d.outcome |= deny_bit;
    }
    if kill {
        d.outcome |= kill_bit;
    }
    d
}

/// Whether the current task runs an executable listed in [`NEVER_KILL`]. An unreadable
/// executable (a kernel thread has no mm) is not listed.
#[inline(always)]
fn never_kill_current() -> bool {
    match kernel::current_exe_id() {
        Ok(id) => NEVER_KILL.get_ptr(id).is_some(),
        Err(_) => false,
    }
}

/// Decides what to do about `plan` for the current process and carries it out: the one place a
/// kernel program sends SIGKILL. Returns the record's verdict and whether to deny. A process
/// running a `--never-kill` executable is spared the kill (a deny still applies).
#[inline(always)]
pub(crate) fn act(plan: &PlanVerdict, config: &EngineConfig, site: Site) -> (emit::Verdict, bool) {
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    let mut decision = decide(plan, config, site, tgid);
    if decision.outcome & (OUTCOME_KILLED | OUTCOME_WOULD_KILL) != 0 && never_kill_current() {
        decision.kill = false;
        decision.outcome =
            (decision.outcome & !(OUTCOME_KILLED | OUTCOME_WOULD_KILL)) | OUTCOME_SPARED;
    }
    let mut verdict = emit::Verdict {
        outcome: decision.outcome,
        rule_index: plan.rule_index,
        generation: plan.generation,
    };
    // SAFETY: bpf_send_signal only signals the current task.
    if decision.kill && unsafe { bpf_send_signal(SIGKILL) } < 0 {
        verdict.outcome |= OUTCOME_KILL_FAILED;
        count(Counter::KillFailed);
    }
    (verdict, decision.deny)
}

/// [`act`] for a cgroup hook (`cgroup/connect4`), which can refuse but not send a signal: a
/// deny or a kill rule refuses the operation, and the kill is left to the daemon's kill path
/// (`OUTCOME_KILL_DEFERRED`; in a dry run `would_deny` and `would_kill`). A process running a
/// `--never-kill` executable is spared the kill, not the refusal.
///
/// A function of its own rather than a third [`Site`]: with a third variant LLVM compiled
/// `tp_sys_enter_kernel` (which passes its site at run time) into code the verifier refused
/// (`R4 !read_ok`), so the programs that were already there keep the two-valued `Site`.
#[inline(always)]
pub(crate) fn act_in_cgroup(plan: &PlanVerdict, config: &EngineConfig) -> (emit::Verdict, bool) {
    let tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
    let decision = decide(plan, config, Site::Lsm, tgid);
    let mut outcome = cgroup_outcome(decision.outcome);
    let kills = OUTCOME_KILL_DEFERRED | OUTCOME_WOULD_KILL;
    if outcome & kills != 0 && never_kill_current() {
        outcome = (outcome & !kills) | OUTCOME_SPARED;
    }
    (verdict_of(plan, outcome), decision.deny || decision.kill)
}

/// [`act_in_cgroup`] for a packet (`cgroup_skb/egress`), which runs outside its sender's
/// context: the process is the socket's owner `tgid` (0: none noted). A kill is the daemon's
/// (`OUTCOME_KILL_DEFERRED`, whose kill path checks `--never-kill` itself); with no owner it
/// cannot be made (`OUTCOME_KILL_FAILED`), and the packet is dropped all the same.
#[inline(always)]
pub(crate) fn act_for_owner(
    plan: &PlanVerdict,
    config: &EngineConfig,
    tgid: u32,
) -> (emit::Verdict, bool) {
    let decision = decide(plan, config, Site::Lsm, tgid);
    let mut outcome = cgroup_outcome(decision.outcome);
    if tgid == 0 && outcome & OUTCOME_KILL_DEFERRED != 0 {
        outcome = (outcome & !OUTCOME_KILL_DEFERRED) | OUTCOME_KILL_FAILED;
        count(Counter::KillFailed);
    }
    (verdict_of(plan, outcome), decision.deny || decision.kill)
}

/// The record's verdict: `outcome` for `plan`'s rule.
#[inline(always)]
fn verdict_of(plan: &PlanVerdict, outcome: u32) -> emit::Verdict {
    emit::Verdict {
        outcome,
        rule_index: plan.rule_index,
        generation: plan.generation,
    }
}

/// The outcome bits of a hook that refuses but cannot signal: a kill becomes a refusal and a
/// kill the daemon makes; a dry-run kill also says the refusal it would make.
#[inline(always)]
fn cgroup_outcome(mut outcome: u32) -> u32 {
    if outcome & OUTCOME_KILLED != 0 {
        outcome = (outcome & !OUTCOME_KILLED) | OUTCOME_KILL_DEFERRED | OUTCOME_DENIED;
    }
    if outcome & OUTCOME_WOULD_KILL != 0 {
        outcome |= OUTCOME_WOULD_DENY;
    }
    outcome
}
