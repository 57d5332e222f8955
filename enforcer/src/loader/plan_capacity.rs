//! Whether a policy's kernel plan fits the plan maps: the entries each map takes under a plan
//! (counted as [`super::plan_sync`] writes them), against the map's capacity
//! (`enforcer_common::maps::capacity`, the kernel object's `max_entries`).
//!
//! Checked before anything is written (`plan_sync::write_with`), by a policy reload before it
//! attaches or writes anything, and by `enforcer policy check`, so a policy too large for the
//! kernel is refused with the map, the count and the rules behind it instead of failing part
//! way through the write.

use std::collections::{BTreeMap, HashSet};

use enforcer_common::maps::{
    CONNECT_V4_PLAN, CONNECT_V6_PLAN, DNS_DOMAIN_PLAN, DNS_NAME_PLAN, EXEC_ARGS_SPARED,
    EXEC_FLAG_PLAN, EXEC_HASH_PLAN, EXEC_NAME_PLAN, EXEC_PATH_PLAN, EXEC_SCHEME_PLAN, FILE_WATCH,
    FILE_WATCH_DIRS, PAYLOAD_METHOD_PLAN, capacity,
};
use enforcer_policy::{KernelPlan, PlanEntry, RuleInfo};

use super::{connect_plan, file_plan, plan_sync};

/// Rules named in a refusal, the ones with the most entries first.
const RULES_NAMED: usize = 3;

/// The entries one plan map takes under a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapLoad {
    /// The map (`enforcer_common::maps`).
    pub map: &'static str,
    /// Entries the plan writes into it.
    pub needed: usize,
    /// Entries it holds.
    pub capacity: u32,
    /// Entries per rule index (an entry several rules share counts for each of them).
    pub by_rule: BTreeMap<u32, usize>,
}

impl MapLoad {
    fn new(map: &'static str) -> Self {
        Self {
            map,
            needed: 0,
            // Every map counted here is a plan map with a capacity.
            capacity: capacity::of(map).unwrap_or(0),
            by_rule: BTreeMap::new(),
        }
    }

    /// Counts one entry written for `rules`.
    fn add(&mut self, rules: &[u32]) {
        self.needed += 1;
        for rule in rules {
            *self.by_rule.entry(*rule).or_default() += 1;
        }
    }

    /// Whether the plan takes more entries than the map holds.
    pub fn overflows(&self) -> bool {
        self.needed > self.capacity as usize
    }
}

/// The load of every plan map written from `plan` (whose rule table is `rules`).
pub fn loads(rules: &[RuleInfo], plan: &KernelPlan) -> Vec<MapLoad> {
    // Entries without an acting rule are not written to these maps (alert-only rules are
    // evaluated in userspace); DNS, connect and file entries are written in any case.
    let acting = |map, entries: &[PlanEntry]| {
        let mut load = MapLoad::new(map);
        for entry in entries {
            if plan_sync::merge(rules, &entry.rules, 0).is_some() {
                load.add(&entry.rules);
            }
        }
        load
    };
    let every = |map, entries: &mut dyn Iterator<Item = &PlanEntry>| {
        let mut load = MapLoad::new(map);
        for entry in entries {
            load.add(&entry.rules);
        }
        load
    };
    let is_v4 = |entry: &&PlanEntry| {
        connect_plan::parse_network(&entry.value).is_ok_and(|(addr, _)| addr.is_ipv4())
    };
    let mut watches = MapLoad::new(FILE_WATCH);
    for entry in &plan.file_watches {
        if file_plan::op_of(&entry.op).is_some() {
            let mut rules = entry.rules.clone();
            rules.extend(&entry.watchers);
            watches.add(&rules);
        }
    }
    let mut dirs = MapLoad::new(FILE_WATCH_DIRS);
    dirs.needed = file_plan::dirs(plan).map_or(0, |dirs| dirs.len());
    let mut spared = MapLoad::new(EXEC_ARGS_SPARED);
    spared.needed = plan.exec_args_spared.iter().collect::<HashSet<_>>().len();
    vec![
        acting(EXEC_NAME_PLAN, &plan.exec_names),
        acting(EXEC_PATH_PLAN, &plan.exec_paths),
        acting(PAYLOAD_METHOD_PLAN, &plan.payload_methods),
        acting(EXEC_HASH_PLAN, &plan.exec_hashes),
        acting(EXEC_SCHEME_PLAN, &plan.exec_arg_schemes),
        acting(EXEC_FLAG_PLAN, &plan.exec_arg_flags),
        spared,
        every(DNS_NAME_PLAN, &mut plan.dns_names.iter()),
        every(DNS_DOMAIN_PLAN, &mut plan.dns_domains.iter()),
        every(CONNECT_V4_PLAN, &mut plan.connect_nets.iter().filter(is_v4)),
        every(
            CONNECT_V6_PLAN,
            &mut plan.connect_nets.iter().filter(|e| !is_v4(e)),
        ),
        watches,
        dirs,
    ]
}

/// What the entries of the plan map `map` are, for people.
fn what(map: &str) -> &'static str {
    match map {
        EXEC_NAME_PLAN => "executable names",
        EXEC_PATH_PLAN => "executable paths",
        PAYLOAD_METHOD_PLAN => "payload methods",
        EXEC_HASH_PLAN => "SHA-256 values",
        EXEC_SCHEME_PLAN => "argument URL schemes",
        EXEC_FLAG_PLAN => "argument flags",
        EXEC_ARGS_SPARED => "executables the argument rules spare",
        DNS_NAME_PLAN => "DNS names",
        DNS_DOMAIN_PLAN => "DNS domains",
        CONNECT_V4_PLAN => "IPv4 prefixes",
        CONNECT_V6_PLAN => "IPv6 prefixes",
        FILE_WATCH => "watched file paths",
        FILE_WATCH_DIRS => "directories on the way to watched paths",
        _ => "entries",
    }
}

/// `Err` with [`describe`] of the maps `plan` does not fit.
pub fn check(rules: &[RuleInfo], plan: &KernelPlan) -> Result<(), String> {
    let over: Vec<MapLoad> = loads(rules, plan)
        .into_iter()
        .filter(MapLoad::overflows)
        .collect();
    if over.is_empty() {
        Ok(())
    } else {
        Err(describe(rules, &over))
    }
}

/// One line naming each overflowing map, its count and capacity, and the rules with the most
/// entries in it (id, file and line).
pub fn describe(rules: &[RuleInfo], over: &[MapLoad]) -> String {
    let parts: Vec<String> = over
        .iter()
        .map(|load| {
            let mut heaviest: Vec<(u32, usize)> =
                load.by_rule.iter().map(|(r, n)| (*r, *n)).collect();
            heaviest.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
            let named: Vec<String> = heaviest
                .iter()
                .take(RULES_NAMED)
                .filter_map(|(index, count)| {
                    let rule = rules.get(*index as usize)?;
                    Some(format!(
                        "{} at {}:{} ({count})",
                        rule.id, rule.file, rule.line
                    ))
                })
                .collect();
            let from = match named.len() {
                0 => String::new(),
                1 => format!(", from rule {}", named.join(", ")),
                _ => format!(", most from rules {}", named.join(", ")),
            };
            format!(
                "{} {} (map {} holds {}){from}",
                load.needed,
                what(load.map),
                load.map,
                load.capacity
            )
        })
        .collect();
    format!(
        "the policy's kernel plan does not fit: {}",
        parts.join("; ")
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn policy_with_names(count: usize, action: &str) -> enforcer_policy::CompiledPolicy {
        let names: Vec<String> = (0..count).map(|i| format!("m{i:05}")).collect();
        let text = format!(
            "lists:\n  - name: many\n    type: string\n    items: [{}]\nrules:\n  - id: many-names\n    expression: exec.file.name in many\n    action: {action}\n  - id: one-name\n    expression: exec.file.name == \"xmrig\"\n    action: kill\n",
            names.join(", ")
        );
        enforcer_policy::load_str("big.yaml", &text).unwrap()
    }

    #[test]
    fn a_plan_within_every_capacity_passes() {
        let policy = policy_with_names(capacity::EXEC_NAME_PLAN as usize - 1, "deny");
        let plan = policy.lower();
        let names = loads(policy.rules(), &plan)
            .into_iter()
            .find(|l| l.map == EXEC_NAME_PLAN)
            .unwrap();
        assert_eq!(names.needed, capacity::EXEC_NAME_PLAN as usize);
        assert!(check(policy.rules(), &plan).is_ok());
    }

    #[test]
    fn one_entry_too_many_is_refused_with_the_map_and_the_rule() {
        let policy = policy_with_names(capacity::EXEC_NAME_PLAN as usize, "deny");
        let err = check(policy.rules(), &policy.lower()).unwrap_err();
        assert!(
            err.contains("4097 executable names (map EXEC_NAME_PLAN holds 4096), most from rules many-names at big.yaml:6 (4096)"),
            "{err}"
        );
        assert!(err.contains("one-name at big.yaml:9 (1)"), "{err}");
    }

    #[test]
    fn alert_only_entries_take_no_exec_name_entry() {
        let policy = policy_with_names(5000, "alert");
        let plan = policy.lower();
        assert!(check(policy.rules(), &plan).is_ok());
        let names = loads(policy.rules(), &plan)
            .into_iter()
            .find(|l| l.map == EXEC_NAME_PLAN)
            .unwrap();
        assert_eq!(names.needed, 1, "only the kill rule's name");
    }

    #[test]
    fn the_default_policy_fits_and_its_counts_match_the_plan() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../policy/default");
        let policy = enforcer_policy::load(std::path::Path::new(root)).unwrap();
        let plan = policy.lower();
        assert!(check(policy.rules(), &plan).is_ok());
        let loads = loads(policy.rules(), &plan);
        let of = |map| loads.iter().find(|l| l.map == map).unwrap().needed;
        assert_eq!(of(DNS_DOMAIN_PLAN), plan.dns_domains.len());
        assert_eq!(
            of(CONNECT_V4_PLAN) + of(CONNECT_V6_PLAN),
            plan.connect_nets.len()
        );
        assert!(of(EXEC_NAME_PLAN) > 0 && of(FILE_WATCH) > 0);
    }
}
