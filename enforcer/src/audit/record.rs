//! The audit records, as written to the log. Every line is an object with `ts` (RFC 3339, UTC,
//! microseconds) and `type`, then the fields of that type.

use serde::Serialize;
use serde_json::Value;

use super::report::Report;

/// What an enforcement record says happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The operation was refused in the kernel.
    Deny,
    /// The process was killed.
    Kill,
    /// A rule in monitor mode (or a monitor-mode engine) would have denied.
    WouldDeny,
    /// A rule in monitor mode (or a monitor-mode engine) would have killed.
    WouldKill,
    /// A kill was attempted and failed.
    KillFailed,
    /// A rule matched a protected process (the engine, the host init), which is never acted on.
    Spared,
    /// A rule whose action is `alert` matched.
    Alert,
    /// The kill breaker disarmed the rule: it killed (or would have killed) too many distinct
    /// binaries or cgroups within the window; it kills nothing more until the engine restarts.
    Disarmed,
}

/// `connection` of a `deny` record whose TCP segment the egress hook dropped (signal tier):
/// the daemon aborted the connection (`SOCK_DESTROY`, so the refused segment, still queued in
/// the socket, is never sent), or why it could not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConnectionAbort {
    /// Whether the connection was aborted.
    pub aborted: bool,
    /// Why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An `events_log_failing` record, in the audit log: the events log (`--events-log`) cannot be
/// written, so its event records are lost until an `events_log_restored` record says it can
/// again. Written once per outage, when it starts, so an outage that never ends is on record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventsLogFailing {
    /// The events log's path.
    pub events_log: String,
    /// When its first write failed.
    pub since: String,
    /// That write's error.
    pub error: String,
}

/// An `events_log_restored` record, in the audit log: the events log can be written again,
/// and what it lost (the `audit_lost` record that starts its own file again says the same).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventsLogRestored {
    /// The events log's path.
    pub events_log: String,
    /// The outage.
    #[serde(flatten)]
    pub lost: AuditLost,
}

/// `kill_breaker` of an `engine_start` record: the limits of rules without an override.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct BreakerSettings {
    /// Most distinct binaries, and most distinct cgroups, a rule may kill within the window.
    pub max_targets: usize,
    /// The window, in seconds.
    pub window_s: u64,
}

/// `breaker` of a `disarmed` record: what tripped the rule's kill breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct BreakerTrip {
    /// Distinct binaries killed (or about to be) within the window.
    pub binaries: usize,
    /// Distinct cgroups killed (or about to be) within the window.
    pub cgroups: usize,
    /// The rule's limit of distinct binaries, and of distinct cgroups.
    pub max_targets: usize,
    /// The window, in seconds.
    pub window_s: u64,
}

/// An `engine_gap` record: a previous run that ended without a clean stop.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct EngineGap {
    /// The previous run's id, when its `engine_start` record or its pins name it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_run_id: Option<String>,
    /// The previous engine's process id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_pid: Option<u32>,
    /// Time of the previous run's `engine_start` record (this audit log).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_start: Option<String>,
    /// Time of the last record in this audit log before this start: the engine was alive then.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_last_record: Option<String>,
    /// When this engine started (its programs were attached).
    pub this_start: String,
    /// `pinned`: the previous run's enforcing programs stayed attached until this engine
    /// replaced them (kernel denies and kills went on; userspace rules, kills widened to a
    /// scope, and records did not); `none`: nothing enforced from `unenforced_from` to
    /// `this_start`.
    pub enforcement: &'static str,
    /// Start of the time without enforcement (`enforcement: none`): the previous run's last
    /// record, the latest time it is known to have run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unenforced_from: Option<String>,
    /// Pinned links of the previous run this engine removed after attaching its own programs.
    pub pins_removed: usize,
    /// The previous run's kernel counters (whole run, read from its pinned `COUNTERS` map):
    /// e.g. `exec_matched` counts the execs it denied or killed, alone or not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pinned_counters: Option<Value>,
    /// How the gap was found: `audit_log` (the log ends with an `engine_start` and no
    /// `engine_stop`) and/or `pins` (a dead run's pins were left).
    pub detected_by: Vec<&'static str>,
}

/// A `policy_reload` record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PolicyReload {
    /// `sighup` or `file_change`.
    pub trigger: &'static str,
    /// `applied` (the new policy is in force), `unchanged` (the files hold the policy in
    /// force), `refused` (invalid, or it needs programs this run did not load: the previous
    /// policy stays in force), `failed` (the kernel plan could not be written: the previous
    /// policy was written back).
    pub outcome: &'static str,
    /// Policy path as given.
    pub policy: String,
    /// The generation in force after this record (the kernel plan's and the records').
    pub policy_generation: u32,
    /// The generation in force before.
    pub previous_generation: u32,
    /// Rules of the policy in force after this record.
    pub rules: usize,
    /// Rule ids the reload added.
    pub added: Vec<String>,
    /// Rule ids the reload removed.
    pub removed: Vec<String>,
    /// Kernel plan entries written for the new generation.
    pub kernel_entries_written: usize,
    /// Kernel plan entries of earlier generations removed after the new ones were in place.
    pub kernel_entries_removed: usize,
    /// The running plan and the new one did not fit in a plan map side by side: the entries
    /// both hold were rewritten in place, the running plan's others removed, then the new
    /// plan written (what both deny was never let through; what only the running policy
    /// denied ended before what only the new one denies began).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub swept_first: bool,
    /// Why it was refused or failed (an invalid policy: `file:line:col: message`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How executed files are hashed under the policy in force (as in `engine_start`).
    pub exec_hash: String,
    /// The `syscalls/` tracepoints attached after the reload (as in `engine_start`).
    pub syscall_tracepoints: Vec<&'static str>,
    /// Programs detached because the policy in force no longer needs them (`program` or
    /// `program:tracepoint`): a rule removed, or what a refused or failed reload attached.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub detached: Vec<String>,
    /// Time from the trigger to the record, in microseconds.
    pub duration_us: u64,
}

/// An `audit_lost` record: the log could not be written for a while (disk full, an I/O
/// error); written first once it can be again, followed by the records held meanwhile.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AuditLost {
    /// When the first write failed.
    pub since: String,
    /// When the log could be written again.
    pub until: String,
    /// The first write error.
    pub error: String,
    /// `event` records not written (events are not held).
    pub events_lost: u64,
    /// Other records (actions, engine records) not written: those beyond what is held.
    pub records_lost: u64,
    /// Other records held in memory meanwhile and written right after this one, with their
    /// own times.
    pub records_held: u64,
}

/// An `audit_reopened` record, the first of a log the engine opened again because its file
/// was deleted or moved away while it ran (by an operator's log rotation, or by someone
/// removing evidence).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AuditReopened {
    /// `deleted or moved` (nothing had the name) or `replaced` (another file had it).
    pub found: &'static str,
    /// When the engine noticed (it looks every second).
    pub noticed: String,
}

/// One audit record.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    /// Written once everything is attached and the plan is in the kernel.
    EngineStart {
        /// `lsm`, `signal` or `monitor`: how the engine acts.
        tier: &'static str,
        /// What the kernel allows (`lsm` or `signal`), whatever the mode.
        kernel_tier: &'static str,
        /// `block` or `monitor`.
        mode: &'static str,
        /// Kernel release (`uname -r`).
        kernel: String,
        /// Generation of the policy in the kernel.
        policy_generation: u32,
        /// Policy path as given.
        policy: String,
        /// Number of rules loaded.
        rules: usize,
        /// Engine version.
        version: &'static str,
        /// Engine process id.
        pid: u32,
        /// Why the kernel tier is what it is (e.g. why BPF LSM is unavailable).
        tier_reason: String,
        /// Executables never killed (`--never-kill`), besides the built-in protected processes.
        never_kill: Vec<String>,
        /// The kill breaker's default limits.
        kill_breaker: BreakerSettings,
        /// Content hashes of executed files: `kernel` (the lsm tier hashes first-seen
        /// executables in `bprm_creds_from_file` and refuses listed ones), `userspace: <why
        /// not in the kernel>` (hashed after the exec), or `off` (no rule can use a hash).
        exec_hash: String,
        /// Kernel-activity syscalls, file syscall tracepoints and optional file LSM hooks this
        /// kernel does not let the engine see (name -> why, e.g. no module syscalls without
        /// `CONFIG_MODULES`, no `sys_enter_fchmodat2` before 6.6, no `lsm/file_truncate`
        /// before 6.2).
        kernel_syscalls_unseen: std::collections::BTreeMap<String, String>,
        /// Where connects are seen and stopped: `lsm/socket_connect` (lsm tier),
        /// `cgroup/connect4,6` (signal tier: refused with EPERM), or
        /// `tp/syscalls/sys_enter_connect (...)` with why the cgroup hooks are not attached.
        connect_hook: String,
        /// Where DNS queries and JSON-RPC payloads are seen and stopped: `lsm/socket_sendmsg`
        /// (lsm tier), `cgroup_skb/egress` (signal tier: dropped), or
        /// `tp/syscalls/sys_enter_{write,sendto,sendmsg,sendmmsg,writev} (...)` with why the
        /// cgroup hooks are not attached.
        send_hook: String,
        /// How the daemon aborts the connection of a TCP segment `cgroup_skb/egress` dropped
        /// (`sock_diag SOCK_DESTROY`), or `unavailable: ...` with why (the segment then stays
        /// queued in its socket and TCP keeps trying it, each try dropped). Absent where
        /// nothing is dropped at egress (lsm tier, the send tracepoints, monitor mode).
        #[serde(skip_serializing_if = "Option::is_none")]
        connection_abort: Option<String>,
        /// Where file operations and the kernel activity the LSM hooks report (module loads,
        /// kexec, ptrace, bpf) are seen and stopped: `lsm` (BPF LSM programs, lsm tier),
        /// `fentry` (fentry programs on the hooks' `security_*` functions, signal tier: a deny
        /// is a kill), or `tracepoints (...)` with why not fentry (signal tier: the syscall
        /// tracepoints, which see the user's path strings).
        security_hooks: String,
        /// The `syscalls/sys_*` tracepoints attached. While any is, every system call of every
        /// task takes the kernel's slower traced path (benches/README, `vm_storm`); the lsm
        /// tier on x86_64 needs none for the default policy.
        syscall_tracepoints: Vec<&'static str>,
        /// This run (`<pid>-<start ticks>-<start, Unix seconds>`), the name of its pin
        /// directory under `/sys/fs/bpf/enforcer/`.
        run_id: String,
        /// `keep-enforcing` (the enforcing programs are pinned and survive a killed engine) or
        /// `stop` (a killed engine's programs detach with it).
        on_crash: &'static str,
        /// `all` (observed activity is written as `event` records) or `none` (`--events
        /// none`: only actions, enforcement and engine records).
        events: &'static str,
        /// Where `event` records are written when not into this log (`--events-log`).
        #[serde(skip_serializing_if = "Option::is_none")]
        events_log: Option<String>,
        /// Links pinned for `keep-enforcing` (0 with `stop`).
        pinned_links: usize,
        /// Whether the self-protection guards are on (`--self-protect`).
        self_protect: bool,
    },
    /// Written after `engine_start` when the previous run did not stop cleanly (its log ends
    /// without `engine_stop`, or its pins were left behind): what ran while no engine did.
    EngineGap(EngineGap),
    /// A policy reload (`SIGHUP`, or the policy files changed): what was tried and what is in
    /// force now.
    PolicyReload(PolicyReload),
    /// The log could not be written for a while; what was lost (see [`AuditLost`]).
    AuditLost(AuditLost),
    /// The log's file was deleted or moved while the engine ran (see [`AuditReopened`]).
    AuditReopened(AuditReopened),
    /// The events log cannot be written (see [`EventsLogFailing`]).
    EventsLogFailing(EventsLogFailing),
    /// The events log can be written again (see [`EventsLogRestored`]).
    EventsLogRestored(EventsLogRestored),
    /// Written every `--stats-interval` while the engine runs (`engine/stats.rs`).
    EngineStats {
        /// Seconds since the previous `engine_stats` (or the start).
        period_s: u64,
        /// Kernel records lost since the previous one (the ring buffer was full).
        records_lost_since_last: u64,
        /// Records the daemon could not decode, so far.
        decode_errors: u64,
        /// The kernel's counters so far (name -> value summed over CPUs), as in `engine_stop`.
        counters: Value,
    },
    /// Written on a clean shutdown.
    EngineStop {
        /// Signal or reason.
        reason: String,
        /// Kernel counters at shutdown (name -> value summed over CPUs).
        counters: Value,
        /// Records the daemon could not decode.
        decode_errors: u64,
        /// Times the daemon went from being woken for each `EVENTS` record to polling the ring
        /// because records came fast (`engine/polling.rs`).
        polling_periods: u64,
    },
    /// A self-protection guard (`--self-protect`) refused an attempt on the engine: a
    /// signal, a ptrace attach, removing its pins, unmounting their bpffs or writing its maps.
    TamperDenied {
        /// The attempt (`kind: tamper`): the process that tried, and `tamper.guard`.
        event: Value,
    },
    /// A decoded kernel event.
    Event {
        /// The event, in the shape `enforcer policy eval` reads.
        event: Value,
    },
    /// A fork or exit event no rule reads, written from its typed form: the same line as an
    /// [`Record::Event`] of it (`enrich/lifecycle_event.rs`).
    #[serde(rename = "event")]
    LifecycleEvent {
        /// The event.
        event: crate::enrich::LifecycleEvent,
    },
    /// An exec event no rule matched, written from its typed form: the same line as an
    /// [`Record::Event`] of it (`pipeline/exec_typed.rs`).
    #[serde(rename = "event")]
    ExecEvent {
        /// The event.
        event: Box<crate::pipeline::exec_typed::ExecEvent>,
    },
    /// An enforcement record (deny, kill, would_deny, would_kill, ...).
    Action {
        /// What happened.
        action: Action,
        /// Rule id.
        rule: String,
        /// Rule severity.
        severity: String,
        /// Where the decision was taken: `kernel` or `userspace`.
        decided_in: &'static str,
        /// Tier the engine runs in.
        tier: &'static str,
        /// Why an action failed or was not taken (e.g. the kill error), when it matters.
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
        /// Timing and outcome of an enforcement action (absent on `alert` records).
        #[serde(skip_serializing_if = "Option::is_none")]
        report: Option<Report>,
        /// What tripped the kill breaker (on `disarmed` records).
        #[serde(skip_serializing_if = "Option::is_none")]
        breaker: Option<BreakerTrip>,
        /// The connection of a refused TCP segment (on `deny` records of the egress hook).
        #[serde(skip_serializing_if = "Option::is_none")]
        connection: Option<ConnectionAbort>,
        /// The event that triggered it.
        event: Value,
    },
}

impl Record {
    /// Whether the record is fsynced (lifecycle and enforcement records are).
    pub fn is_durable(&self) -> bool {
        !self.is_event()
    }

    /// Whether the record is an event record (written only with `--events all`).
    pub fn is_event(&self) -> bool {
        matches!(
            self,
            Record::Event { .. } | Record::LifecycleEvent { .. } | Record::ExecEvent { .. }
        )
    }
}
