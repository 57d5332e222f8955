//! Engine-wide settings the loader writes into the programs' read-only data before load.

/// Which tier the programs enforce in. The tracepoint kills only in the signal tier; in the lsm
/// tier the LSM hook denies and the tracepoint only reports.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    /// BPF LSM hooks deny in the kernel.
    Lsm = 1,
    /// Tracepoints send SIGKILL before the new image runs user code.
    Signal = 2,
    /// Detection and audit only.
    Monitor = 3,
}

/// The read-only global [`crate::maps::GLOBAL_CONFIG`].
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    /// A [`Tier`] value.
    pub tier: u32,
    /// 1 when the whole engine runs as a dry run (`--mode monitor`): nothing is denied or killed.
    pub dry_run: u32,
    /// The engine's own process id: never killed or denied.
    pub engine_tgid: u32,
    /// Explicit padding.
    pub _pad: u32,
}

impl EngineConfig {
    /// The value programs see before the loader sets one: monitor only, nothing enforced.
    pub const INERT: Self = Self {
        tier: Tier::Monitor as u32,
        dry_run: 1,
        engine_tgid: 0,
        _pad: 0,
    };

    /// Whether programs may deny or kill at all.
    pub const fn enforces(&self) -> bool {
        self.dry_run == 0 && self.tier != Tier::Monitor as u32
    }
}

const _: () = assert!(core::mem::size_of::<EngineConfig>() == 16);
