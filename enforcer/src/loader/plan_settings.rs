//! `PLAN_SETTINGS`, the plan's one-entry array of switches: which families the kernel may
//! leave unreported (connects no rule is about, binds and accepts, lifecycle wake-ups, file
//! families), which exec checks run (hash, mappings, environment, argument searches, paths),
//! the exec-name filter, the kernel operations rules are about, the DNS server ports, and the
//! in-kernel hash limits. Each writer changes its own fields ([`update_settings`]) and keeps
//! the others.

use aya::{Ebpf, maps::Array};
use enforcer_common::{
    kernel_event::KernelOp,
    maps::PLAN_SETTINGS,
    name_filter::NameFilter,
    plan::{
        DNS_PORT_SLOTS, EXEC_ARGS_FLAGS, EXEC_ARGS_SCHEMES, EXEC_CHECK_MMAP, EXEC_HASH_IN_KERNEL,
        EXEC_PATHS, EXEC_RECORD_ENV, PlanSettings, RECORD_ACCEPTS, RECORD_BINDS,
        RECORD_CONNECT_MATCHED_ONLY, RECORD_LIFECYCLE_WAKE,
    },
};
use enforcer_policy::{CompiledPolicy, KernelPlan, Kind};

use super::plan_sync::{PlanError, plan_map};

// Every port a policy may name has a kernel slot.
const _: () = assert!(enforcer_policy::MAX_DNS_PORTS <= DNS_PORT_SLOTS);

/// The `PLAN_SETTINGS` record bits of `policy`: connects filtered when every connect rule is
/// in the plan; binds and accepts reported only when an enabled rule is about them; fork and
/// exit records wake the daemon only when an enabled rule is about them.
pub fn settings_bits(policy: &CompiledPolicy, plan: &KernelPlan) -> u32 {
    let mut bits = socket_record_bits(policy);
    if plan.connect_filtered {
        bits |= RECORD_CONNECT_MATCHED_ONLY;
    }
    if is_about(policy, Kind::Fork) || is_about(policy, Kind::Exit) {
        bits |= RECORD_LIFECYCLE_WAKE;
    }
    bits | super::file_plan::settings_bits(plan)
}

/// Whether an enabled rule of `policy` is about events of `kind`.
fn is_about(policy: &CompiledPolicy, kind: Kind) -> bool {
    policy
        .rules()
        .iter()
        .any(|r| r.event_kind == kind && !r.disabled)
}

/// `RECORD_BINDS` / `RECORD_ACCEPTS` when an enabled rule of `policy` is about binds /
/// accepts: their programs record nothing otherwise, and the loader does not even attach
/// their tracepoints (`Loaded::records_wanted`).
pub fn socket_record_bits(policy: &CompiledPolicy) -> u32 {
    let mut bits = 0;
    if is_about(policy, Kind::Bind) {
        bits |= RECORD_BINDS;
    }
    if is_about(policy, Kind::Accept) {
        bits |= RECORD_ACCEPTS;
    }
    bits
}

/// The `PLAN_SETTINGS` exec bits of `policy`: hash in the kernel when the hash plan has
/// entries; check executable mappings when the exec plan can match a mapped file (names,
/// hashes, or the identities the daemon writes when a rule reads the hash); carry the
/// environment in exec records when a rule reads `exec.envs`; search exec arguments for
/// schemes and for flags when those plans have entries; look exec paths up when the path plan
/// has entries.
pub fn exec_bits(policy: &CompiledPolicy, plan: &KernelPlan) -> u32 {
    let mut bits = 0;
    if !plan.exec_hashes.is_empty() {
        bits |= EXEC_HASH_IN_KERNEL;
    }
    if !plan.exec_names.is_empty()
        || !plan.exec_hashes.is_empty()
        || policy.hash_needed().contains(&true)
    {
        bits |= EXEC_CHECK_MMAP;
    }
    if policy.rules_reading("exec.envs").contains(&true) {
        bits |= EXEC_RECORD_ENV;
    }
    if !plan.exec_arg_schemes.is_empty() {
        bits |= EXEC_ARGS_SCHEMES;
    }
    if !plan.exec_arg_flags.is_empty() {
        bits |= EXEC_ARGS_FLAGS;
    }
    if !plan.exec_paths.is_empty() {
        bits |= EXEC_PATHS;
    }
    bits
}

/// Limits of the in-kernel hash, written once at start ([`write_hash_limits`]) and kept by
/// every later plan write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashLimits {
    /// Larger files are left to userspace.
    pub max_size: u64,
    /// Files changed within this many seconds (of `CLOCK_TAI`) are not cached clean.
    pub fresh_s: u64,
}

/// Rewrites `PLAN_SETTINGS` with `change` applied to its current value (zero when unreadable):
/// each writer changes its own fields and keeps the others.
fn update_settings(
    ebpf: &mut Ebpf,
    change: impl FnOnce(&mut PlanSettings),
) -> Result<(), PlanError> {
    let mut array: Array<_, PlanSettings> = plan_map(ebpf, PLAN_SETTINGS)?;
    let mut settings = array.get(&0, 0).unwrap_or_default();
    change(&mut settings);
    array.set(0, settings, 0).map_err(|source| PlanError::Map {
        map: PLAN_SETTINGS,
        source,
    })
}

/// Writes the in-kernel hash limits into `PLAN_SETTINGS` (before the plan, so the hash
/// program never runs with a zero size cap under a non-empty hash plan).
pub fn write_hash_limits(ebpf: &mut Ebpf, limits: HashLimits) -> Result<(), PlanError> {
    update_settings(ebpf, |settings| {
        settings.hash_max_size = limits.max_size;
        settings.hash_fresh_s = limits.fresh_s;
    })
}

/// The filter of the plan's exec names (`PlanSettings::exec_names`).
pub(super) fn name_filter(plan: &KernelPlan) -> NameFilter {
    NameFilter::of(plan.exec_names.iter().map(|entry| entry.value.as_str()))
}

/// Adds `filter` to `PLAN_SETTINGS.exec_names` (the old names stay let through until the
/// plan's settings are written).
pub(super) fn widen_name_filter(ebpf: &mut Ebpf, filter: NameFilter) -> Result<(), PlanError> {
    update_settings(ebpf, |settings| {
        settings.exec_names = settings.exec_names.union(filter);
    })
}

/// Writes `PLAN_SETTINGS`: which families the kernel may leave unreported under this plan,
/// and which exec checks run (the hash limits are kept).
pub(super) fn write_settings(
    ebpf: &mut Ebpf,
    policy: &CompiledPolicy,
    plan: &KernelPlan,
    generation: u32,
) -> Result<(), PlanError> {
    let mut dns_ports = [0u16; DNS_PORT_SLOTS];
    for (slot, port) in dns_ports.iter_mut().zip(policy.dns_server_ports()) {
        *slot = *port;
    }
    update_settings(ebpf, |settings| {
        settings.record = settings_bits(policy, plan);
        settings.kernel_ops = kernel_op_bits(policy);
        settings.dns_ports = dns_ports;
        settings.exec = exec_bits(policy, plan);
        settings.hash_generation = generation;
        settings.exec_names = name_filter(plan);
    })
}

/// The `PlanSettings::kernel_ops` bits of `policy`: the operations its enabled `kernel`
/// rules can match (every one when a rule does not pin `kernel.op`).
pub fn kernel_op_bits(policy: &CompiledPolicy) -> u32 {
    match policy.kernel_ops_needed() {
        None => KernelOp::ALL.iter().fold(0, |bits, op| bits | op.bit()),
        Some(names) => names
            .iter()
            .filter_map(|n| KernelOp::from_name(n))
            .fold(0, |bits, op| bits | op.bit()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn lifecycle_records_wake_the_daemon_only_when_a_rule_is_about_them() {
        let quiet = enforcer_policy::load_str(
            "p.yaml",
            "rules:\n  - id: n\n    expression: exec.file.name == \"xmrig\"\n    action: kill\n",
        )
        .unwrap();
        assert_eq!(
            settings_bits(&quiet, &quiet.lower()) & RECORD_LIFECYCLE_WAKE,
            0
        );
        let about_exits = enforcer_policy::load_str(
            "p.yaml",
            "rules:\n  - id: x\n    expression: exit.signal == 9\n    action: alert\n",
        )
        .unwrap();
        assert_ne!(
            settings_bits(&about_exits, &about_exits.lower()) & RECORD_LIFECYCLE_WAKE,
            0
        );
    }

    #[test]
    fn exec_bits_follow_the_plan() {
        let hash = "a".repeat(64);
        let policy = enforcer_policy::load_str(
            "p.yaml",
            &format!("rules:\n  - id: h\n    expression: exec.file.hash.sha256 == \"{hash}\"\n    action: kill\n  - id: e\n    expression: exec.envs startswith \"X=\"\n    action: alert\n"),
        )
        .unwrap();
        let bits = exec_bits(&policy, &policy.lower());
        assert_eq!(
            bits,
            EXEC_HASH_IN_KERNEL | EXEC_CHECK_MMAP | EXEC_RECORD_ENV
        );
        let policy = enforcer_policy::load_str(
            "p.yaml",
            "rules:\n  - id: n\n    expression: exec.file.path == \"/x\"\n    action: deny\n",
        )
        .unwrap();
        assert_eq!(
            exec_bits(&policy, &policy.lower()),
            EXEC_PATHS,
            "paths are looked up at exec, not checked at mmap"
        );
        let policy = enforcer_policy::load_str(
            "p.yaml",
            "rules:\n  - id: u\n    expression: exec.args contains \"stratum+tcp://\" && exec.file.name != \"grep\"\n    action: kill\n",
        )
        .unwrap();
        assert_eq!(exec_bits(&policy, &policy.lower()), EXEC_ARGS_SCHEMES);
        let policy = enforcer_policy::load_str(
            "p.yaml",
            "rules:\n  - id: f\n    expression: exec.args startswith \"--donate-level\"\n    action: kill\n",
        )
        .unwrap();
        assert_eq!(exec_bits(&policy, &policy.lower()), EXEC_ARGS_FLAGS);
    }

    #[test]
    fn kernel_op_bits_follow_the_rules() {
        let load = |rules: &str| enforcer_policy::load_str("p.yaml", rules).unwrap();
        let none =
            load("rules:\n  - id: a\n    expression: exec.file.name == \"x\"\n    action: alert\n");
        assert_eq!(kernel_op_bits(&none), 0);
        let two = load(
            "rules:\n  - id: a\n    expression: kernel.op == \"kexec\"\n    action: alert\n  - id: b\n    expression: kernel.op in (\"ptrace\", \"bpf\") && kernel.target.pid > 1\n    action: alert\n",
        );
        assert_eq!(
            kernel_op_bits(&two),
            KernelOp::Kexec.bit() | KernelOp::Ptrace.bit() | KernelOp::Bpf.bit()
        );
        let any = load(
            "rules:\n  - id: a\n    expression: kernel.syscall == \"setuid\"\n    action: alert\n",
        );
        assert_eq!(
            kernel_op_bits(&any).count_ones(),
            u32::try_from(KernelOp::ALL.len()).unwrap()
        );
    }
}
