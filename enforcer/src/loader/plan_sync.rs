//! Writes the policy's kernel plan (`CompiledPolicy::lower`) into the plan maps.
//!
//! Several rules may name the same value; the kernel holds one verdict per value, merged by
//! [`merge`]: enforcing rules win over monitor-mode rules, their actions are united, and the
//! first of them names the entry.

use aya::{Ebpf, maps::HashMap};
use enforcer_common::{
    maps::{EXEC_NAME_PLAN, EXEC_PATH_PLAN, PAYLOAD_METHOD_PLAN},
    plan::{
        ACTION_DENY, ACTION_KILL, METHOD_LEN, MethodKey, NAME_LEN, NameKey, PATH_LEN,
        PLAN_FLAG_MONITOR, PathKey, PlanVerdict, padded,
    },
};
use enforcer_policy::{CompiledPolicy, Mode, PlanEntry, RuleInfo};

/// Errors of writing the plan.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A plan map is missing from the kernel object.
    #[error("plan map {0} is missing from the kernel object")]
    MissingMap(&'static str),
    /// A map operation failed.
    #[error("cannot write plan map {map}: {source}")]
    Map {
        /// Map name.
        map: &'static str,
        /// The cause.
        source: aya::maps::MapError,
    },
    /// A value does not fit the kernel's key (the policy checker should have refused it).
    #[error("plan value {value:?} for {map} is longer than {max} bytes or contains NUL")]
    KeyTooLong {
        /// Map name.
        map: &'static str,
        /// The value.
        value: String,
        /// Longest accepted value.
        max: usize,
    },
}

/// The kernel action bits of a rule, 0 when it only alerts.
fn action_bits(rule: &RuleInfo) -> u32 {
    let mut bits = 0;
    if rule.actions.deny {
        bits |= ACTION_DENY;
    }
    if rule.actions.kill {
        bits |= ACTION_KILL;
    }
    bits
}

/// Merges the rules behind one plan value into the verdict the kernel applies; `None` when
/// none of them denies or kills (alert-only rules are evaluated in userspace).
pub fn merge(rules: &[RuleInfo], indices: &[u32], generation: u32) -> Option<PlanVerdict> {
    let acting = indices
        .iter()
        .filter_map(|&i| rules.get(i as usize).map(|r| (i, r, action_bits(r))))
        .filter(|(_, _, bits)| *bits != 0);
    let (enforcing, monitoring): (Vec<_>, Vec<_>) =
        acting.partition(|(_, r, _)| r.mode != Some(Mode::Monitor));
    let (chosen, flags) = if enforcing.is_empty() {
        (monitoring, PLAN_FLAG_MONITOR)
    } else {
        (enforcing, 0)
    };
    let (first, _, _) = chosen.first()?;
    Some(PlanVerdict {
        rule_index: *first,
        actions: chosen.iter().fold(0, |acc, (_, _, bits)| acc | bits),
        flags,
        generation,
    })
}

fn write_map<const N: usize, K: aya::Pod>(
    ebpf: &mut Ebpf,
    map: &'static str,
    entries: &[PlanEntry],
    rules: &[RuleInfo],
    generation: u32,
    key: fn([u8; N]) -> K,
) -> Result<usize, PlanError> {
    let mut hash: HashMap<_, K, PlanVerdict> = ebpf
        .map_mut(map)
        .ok_or(PlanError::MissingMap(map))?
        .try_into()
        .map_err(|source| PlanError::Map { map, source })?;
    let mut written = 0;
    for entry in entries {
        let Some(verdict) = merge(rules, &entry.rules, generation) else {
            continue;
        };
        let bytes = padded::<N>(entry.value.as_bytes()).ok_or_else(|| PlanError::KeyTooLong {
            map,
            value: entry.value.clone(),
            max: N - 1,
        })?;
        hash.insert(key(bytes), verdict, 0)
            .map_err(|source| PlanError::Map { map, source })?;
        written += 1;
    }
    Ok(written)
}

/// Writes the exec plan of `policy` into the kernel maps; returns the number of entries.
pub fn write(
    ebpf: &mut Ebpf,
    policy: &CompiledPolicy,
    generation: u32,
) -> Result<usize, PlanError> {
    let plan = policy.lower();
    let rules = policy.rules();
    let names = write_map::<NAME_LEN, _>(
        ebpf,
        EXEC_NAME_PLAN,
        &plan.exec_names,
        rules,
        generation,
        NameKey,
    )?;
    let paths = write_map::<PATH_LEN, _>(
        ebpf,
        EXEC_PATH_PLAN,
        &plan.exec_paths,
        rules,
        generation,
        PathKey,
    )?;
    let methods = write_map::<METHOD_LEN, _>(
        ebpf,
        PAYLOAD_METHOD_PLAN,
        &plan.payload_methods,
        rules,
        generation,
        MethodKey,
    )?;
    Ok(names + paths + methods)
}
