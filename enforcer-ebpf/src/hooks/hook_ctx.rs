//! One LSM hook, two ways to attach to it. A hook's body is written once, generic over
//! [`HookCtx`], and compiled into two programs:
//!
//! | program | attached | tier | can |
//! |---|---|---|---|
//! | `lsm_<hook>` (`LsmContext`) | BPF LSM hook `<hook>` | lsm | refuse (`-EPERM`), kill |
//! | `fentry_<hook>` (`FEntryContext`) | fentry on the kernel function `security_<hook>` | signal, on kernels with BPF trampolines | kill |
//!
//! Both see the same BTF-typed arguments (the hook's, in the same order), so the body reads
//! the kernel's own objects in either: a resolved path (symbolic links followed where the
//! syscall follows them), the open file, the traced task. An fentry program runs before the
//! function and its return value is ignored: it cannot refuse, so a deny match there is a
//! kill ([`Site::Trampoline`]), as at a tracepoint. Unlike a syscall tracepoint it costs
//! nothing to the system calls that never reach the hook (a syscall tracepoint puts every
//! system call of every task on the kernel's traced path).

use aya_ebpf::{
    Argument,
    programs::{FEntryContext, LsmContext},
};
use enforcer_common::{config::Tier, event::Hook};

use crate::{maps::config, plan::Site};

/// The context of a program attached to an LSM hook (see the module documentation).
pub(crate) trait HookCtx {
    /// Where the program decides: [`Site::Lsm`] or [`Site::Trampoline`].
    const SITE: Site;
    /// The only tier the program runs in (the other loads it, if at all, but never attaches).
    const TIER: Tier;

    /// Argument `n` of the hook.
    fn arg<T: Argument>(&self, n: usize) -> T;

    /// The verdict of the LSMs that ran before, argument `n` of an LSM program (the hook's
    /// arity); 0 for an fentry program, which runs before the function.
    fn previous(&self, n: usize) -> i32;

    /// The hook a record names: `lsm` itself, or its fentry twin ([`Hook::at_trampoline`]).
    #[inline(always)]
    fn hook(lsm: Hook) -> Hook {
        if Self::SITE == Site::Lsm {
            lsm
        } else {
            lsm.at_trampoline()
        }
    }

    /// Whether the engine runs in this program's tier: the lsm-tier object also carries the
    /// fentry programs and the other way round; only the loader decides which are attached,
    /// and this keeps a program quiet in the wrong tier whatever happens.
    #[inline(always)]
    fn in_tier() -> bool {
        config().tier == Self::TIER as u32
    }
}

impl HookCtx for LsmContext {
    const SITE: Site = Site::Lsm;
    const TIER: Tier = Tier::Lsm;

    #[inline(always)]
    fn arg<T: Argument>(&self, n: usize) -> T {
        LsmContext::arg(self, n)
    }

    #[inline(always)]
    fn previous(&self, n: usize) -> i32 {
        LsmContext::arg(self, n)
    }
}

impl HookCtx for FEntryContext {
    const SITE: Site = Site::Trampoline;
    const TIER: Tier = Tier::Signal;

    #[inline(always)]
    fn arg<T: Argument>(&self, n: usize) -> T {
        FEntryContext::arg(self, n)
    }

    #[inline(always)]
    fn previous(&self, _n: usize) -> i32 {
        0
    }
}

/// Defines the two programs of one hook body (see the module documentation): `$lsm`, a BPF
/// LSM program on `$hook` returning the body's verdict, and `$fentry`, an fentry program on
/// `$function` whose result the kernel ignores.
macro_rules! hook_programs {
    ($body:ident, $hook:literal, $lsm:ident, $function:literal, $fentry:ident) => {
        #[aya_ebpf::macros::lsm(hook = $hook)]
        pub(crate) fn $lsm(ctx: aya_ebpf::programs::LsmContext) -> i32 {
            $body(&ctx)
        }

        #[aya_ebpf::macros::fentry(function = $function)]
        pub(crate) fn $fentry(ctx: aya_ebpf::programs::FEntryContext) -> i32 {
            let _ = $body(&ctx);
            0
        }
    };
}
pub(crate) use hook_programs;
