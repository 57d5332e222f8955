//! Names of the maps and globals the kernel programs define, written once for both sides.
//! What each map holds is documented where it is defined, in `enforcer-ebpf/src/maps.rs`.

/// Ring buffer of event records (every record starts with an [`crate::event::EventHeader`]).
pub const EVENTS: &str = "EVENTS";
/// Per-CPU counters indexed by [`crate::event::Counter`].
pub const COUNTERS: &str = "COUNTERS";
/// Exec plan: executable basename -> verdict.
pub const EXEC_NAME_PLAN: &str = "EXEC_NAME_PLAN";
/// Exec plan: executable path -> verdict.
pub const EXEC_PATH_PLAN: &str = "EXEC_PATH_PLAN";

/// Read-only global holding the [`crate::config::EngineConfig`].
pub const GLOBAL_CONFIG: &str = "CONFIG";
/// Read-only global holding the [`crate::offsets::KernelOffsets`].
pub const GLOBAL_OFFSETS: &str = "OFFSETS";

/// Program names (the Rust function names in `enforcer-ebpf`).
pub mod programs {
    /// LSM `bprm_check_security`: exec deny (lsm tier).
    pub const LSM_BPRM_CHECK_SECURITY: &str = "lsm_bprm_check_security";
    /// Raw tracepoint `sched_process_exec`: exec records, kill in the signal tier.
    pub const TP_SCHED_PROCESS_EXEC: &str = "tp_sched_process_exec";
}
