//! Types shared by the kernel programs (`enforcer-ebpf`) and the userspace daemon (`enforcer`).
//!
//! Everything here is `#[repr(C)]` with explicit padding and a compile-time size assertion, so
//! the two sides agree on the wire and map layouts byte for byte. Map names are written once, in
//! [`maps`]. Nothing here allocates; the crate is `no_std`.
#![no_std]

pub mod config;
pub mod event;
pub mod file;
pub mod guard;
pub mod kernel_event;
pub mod maps;
pub mod name_filter;
pub mod net;
pub mod offsets;
pub mod plan;
pub mod process;
pub mod word;

/// Implements `aya::Pod` for map keys and values on the userspace side.
#[cfg(feature = "user")]
mod pod {
    use crate::{config::EngineConfig, offsets::KernelOffsets, plan};

    macro_rules! pod {
        ($($t:ty),* $(,)?) => {$(
            // SAFETY: the type is #[repr(C)], has no padding that is not an explicit field, and
            // every bit pattern is a valid value (only integers and byte arrays).
            unsafe impl aya::Pod for $t {}
        )*};
    }
    pod!(
        plan::NameKey,
        plan::PathKey,
        plan::MethodKey,
        plan::PlanVerdict,
        plan::PlanSettings,
        plan::InodeKey,
        plan::FileId,
        crate::file::FileWatchKey,
        crate::file::DirBits,
        plan::HashKey,
        plan::SchemeKey,
        plan::FlagKey,
        KernelOffsets,
        crate::file::PathSyscalls,
        EngineConfig,
        crate::guard::GuardSettings
    );
}
