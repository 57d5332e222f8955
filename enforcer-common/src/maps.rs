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

/// Payload plan: JSON-RPC method of a process's socket write -> verdict.
pub const PAYLOAD_METHOD_PLAN: &str = "PAYLOAD_METHOD_PLAN";
/// Payload verdicts the tracepoint leaves for the LSM `socket_sendmsg` hook of the same
/// syscall: thread id (pid_tgid) -> `PendingSend`.
pub const PENDING_SEND: &str = "PENDING_SEND";

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
    /// Tracepoint `syscalls/sys_enter_write`: first-payload classification.
    pub const TP_SYS_ENTER_WRITE: &str = "tp_sys_enter_write";
    /// Tracepoint `syscalls/sys_enter_sendto`: first-payload classification.
    pub const TP_SYS_ENTER_SENDTO: &str = "tp_sys_enter_sendto";
    /// LSM `socket_sendmsg`: payload deny (lsm tier).
    pub const LSM_SOCKET_SENDMSG: &str = "lsm_socket_sendmsg";
}
