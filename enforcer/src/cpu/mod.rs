//! CPU patterns (issue 6): sustained CPU use of processes and cgroups, sampled from procfs and
//! the cgroup v2 hierarchy at an interval, and correlated with the miner indicators of the same
//! process tree. The engine turns each hot sample into a `cpu` event that the policy evaluates
//! like any other event (`cpu.usage.percent`, `cpu.window`, `cpu.scope`, `cpu.cgroup`,
//! `cpu.indicators`, `cpu.correlated`).
//!
//! | module | owns |
//! |---|---|
//! | [`usage`] | the unit of `cpu.usage.percent`: percent of N-1 cores |
//! | [`tracker`] | per-key rates and sustained windows, bounded, without I/O |
//! | [`proc_source`] | reading `utime + stime` and start times from `/proc/<pid>/stat` |
//! | [`cgroup_source`] | reading `usage_usec` of leaf cgroups' `cpu.stat` |
//! | [`sampler`] | the round: sources into trackers, the hot list, a hot cgroup's busiest process |
//! | [`indicators`] | miner indicators remembered per process tree and cgroup, with expiry |
//! | [`event`] | the JSON of a `cpu` event, the process tree of an event |
//!
//! No sampling happens when the policy has no enabled `cpu` rule.

pub mod cgroup_source;
pub mod event;
pub mod indicators;
pub mod proc_source;
pub mod sampler;
pub mod tracker;
pub mod usage;

use std::time::Duration;

use enforcer_policy::{CompiledPolicy, Kind};

pub use sampler::{CpuSettings, Hot, Sampler, Scope};

/// How long a miner indicator stays correlated with later CPU samples.
pub const INDICATOR_TTL: Duration = Duration::from_secs(15 * 60);
/// Most processes (and as many cgroups) whose indicators are remembered.
pub const INDICATOR_CAPACITY: usize = 16_384;

/// Whether `policy` has an enabled rule on `cpu` events (otherwise nothing is sampled).
pub fn policy_needs_cpu(policy: &CompiledPolicy) -> bool {
    policy
        .rules_of_kind(Kind::Cpu)
        .iter()
        .filter_map(|&i| policy.rules().get(i as usize))
        .any(|r| !r.disabled)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sampling_only_with_an_enabled_cpu_rule() {
        let load = |text: &str| enforcer_policy::load_str("p.yaml", text).unwrap();
        let exec =
            "rules:\n  - id: a\n    expression: exec.file.name == \"x\"\n    action: alert\n";
        assert!(!policy_needs_cpu(&load(exec)));
        let cpu = "rules:\n  - id: c\n    expression: cpu.usage.percent >= 90\n    action: alert\n";
        assert!(policy_needs_cpu(&load(cpu)));
        let off = format!("{cpu}    disabled: true\n");
        assert!(!policy_needs_cpu(&load(&off)));
    }
}
