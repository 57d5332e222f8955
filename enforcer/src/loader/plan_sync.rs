//! Writes the policy's kernel plan (`CompiledPolicy::lower`) into the plan maps.
//!
//! Several rules may name the same value; the kernel holds one verdict per value, merged by
//! [`merge`]: enforcing rules win over monitor-mode rules, their actions are united, and the
//! first of them names the entry.
//!
//! Rules the kill breaker disarmed ([`write_with`]) are merged as monitor-mode rules: the
//! kernel records `would_deny`/`would_kill` for them from then on.
//!
//! The settings array is `plan_settings.rs`'s, the connect tries `connect_plan.rs`'s.

use std::collections::HashSet;

use aya::{
    Ebpf,
    maps::{Array, HashMap},
};
use enforcer_common::{
    kernel_event::{KERNEL_OP_SLOTS, KernelOp},
    maps::{
        DNS_DOMAIN_PLAN, DNS_NAME_PLAN, EXEC_ARGS_SPARED, EXEC_FLAG_PLAN, EXEC_HASH_PLAN,
        EXEC_NAME_PLAN, EXEC_PATH_PLAN, EXEC_SCHEME_PLAN, KERNEL_OP_PLAN, PAYLOAD_METHOD_PLAN,
    },
    net::name_hash,
    plan::{
        ACTION_DENY, ACTION_KILL, FLAG_LEN, FlagKey, HashKey, METHOD_LEN, MethodKey, NAME_LEN,
        NameKey, PATH_LEN, PLAN_FLAG_MONITOR, PLAN_FLAG_RECORD, PathKey, PlanVerdict, SCHEME_LEN,
        SHA256_LEN, SchemeKey, padded,
    },
};
use enforcer_policy::{CompiledPolicy, KernelPlan, Mode, PlanEntry, RuleInfo};

use super::{
    connect_plan::write_connect,
    plan_settings::{name_filter, widen_name_filter, write_settings},
};

/// Errors of writing the plan.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A plan map is missing from the kernel object.
    #[error("plan map {0} is missing from the kernel object")]
    MissingMap(&'static str),
    /// The policy's plan takes more entries than a plan map holds (`plan_capacity`): nothing
    /// was written.
    #[error("{0}")]
    TooLarge(String),
    /// A plan map had no room for an entry (`E2BIG`), although the plan was checked to fit
    /// alone: during a reload the maps hold the running policy's entries and the new ones
    /// until the old are swept; at run time, the addresses learned from DNS answers.
    #[error("plan map {map} is full ({capacity} entries)")]
    Full {
        /// Map name.
        map: &'static str,
        /// Entries it holds.
        capacity: u32,
    },
    /// A map operation failed.
    #[error("cannot write plan map {map}: {source}")]
    Map {
        /// Map name.
        map: &'static str,
        /// The cause.
        source: aya::maps::MapError,
    },
    /// A connect plan value is not a network (the policy checker should have refused it).
    #[error("connect plan value {0:?} is not an address/prefix")]
    BadNetwork(String),
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

impl PlanError {
    /// The error of a failed write to the plan map `map`: [`PlanError::Full`] when the map
    /// had no room (`E2BIG`), else [`PlanError::Map`].
    pub(super) fn write(map: &'static str, source: aya::maps::MapError) -> Self {
        let no_room = matches!(
            &source,
            aya::maps::MapError::SyscallError(err) if err.io_error.raw_os_error() == Some(nix::libc::E2BIG)
        );
        match enforcer_common::maps::capacity::of(map) {
            Some(capacity) if no_room => Self::Full { map, capacity },
            _ => Self::Map { map, source },
        }
    }
}

/// The plan map `map` of `ebpf` as the aya map type `M` (hash map, array or LPM trie).
pub(super) fn plan_map<'e, M>(ebpf: &'e mut Ebpf, map: &'static str) -> Result<M, PlanError>
where
    M: TryFrom<&'e mut aya::maps::Map, Error = aya::maps::MapError>,
{
    ebpf.map_mut(map)
        .ok_or(PlanError::MissingMap(map))?
        .try_into()
        .map_err(|source| PlanError::write(map, source))
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

/// `BPF_EXIST`: a map update that only replaces a key already there (else `ENOENT`).
const BPF_EXIST: u64 = 2;

/// Which entries a write puts into the hash maps and tries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    /// Every entry, inserted or overwritten in place.
    All,
    /// Only the keys a map already holds are overwritten (`BPF_EXIST`); the others are left
    /// out, and so is `PLAN_SETTINGS`: the first pass of a reload whose plan and the running
    /// one do not fit in a map side by side ([`rewrite_existing`]).
    Existing,
}

impl Pass {
    pub(super) fn flags(self) -> u64 {
        match self {
            Self::All => 0,
            Self::Existing => BPF_EXIST,
        }
    }

    /// The outcome of one insert into `map` under this pass: whether it wrote (a key not in
    /// the map under [`Pass::Existing`] is no error).
    pub(super) fn inserted(
        self,
        map: &'static str,
        result: Result<(), aya::maps::MapError>,
    ) -> Result<bool, PlanError> {
        match result {
            Ok(()) => Ok(true),
            Err(aya::maps::MapError::SyscallError(err))
                if self == Self::Existing
                    && err.io_error.raw_os_error() == Some(nix::libc::ENOENT) =>
            {
                Ok(false)
            }
            Err(source) => Err(PlanError::write(map, source)),
        }
    }
}

/// What every plan entry is built from: the rule table, the generation, the rules the kill
/// breaker disarmed, and the pass.
#[derive(Clone, Copy, Debug)]
pub(super) struct Ctx<'a> {
    pub(super) rules: &'a [RuleInfo],
    pub(super) generation: u32,
    pub(super) disarmed: &'a HashSet<u32>,
    pub(super) pass: Pass,
}

/// Merges the rules behind one plan value into the verdict the kernel applies; `None` when
/// none of them denies or kills (alert-only rules are evaluated in userspace).
pub fn merge(rules: &[RuleInfo], indices: &[u32], generation: u32) -> Option<PlanVerdict> {
    merge_with(rules, indices, generation, &HashSet::new())
}

/// [`merge`], with the rules in `disarmed` treated as monitor-mode rules.
pub fn merge_with(
    rules: &[RuleInfo],
    indices: &[u32],
    generation: u32,
    disarmed: &HashSet<u32>,
) -> Option<PlanVerdict> {
    let acting = indices
        .iter()
        .filter_map(|&i| rules.get(i as usize).map(|r| (i, r, action_bits(r))))
        .filter(|(_, _, bits)| *bits != 0);
    let (enforcing, monitoring): (Vec<_>, Vec<_>) =
        acting.partition(|(i, r, _)| r.mode != Some(Mode::Monitor) && !disarmed.contains(i));
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

/// Writes the plan map `map` of NUL-padded keys (`N` bytes, wrapped by `key`): each entry's
/// merged verdict; returns the entries written.
fn write_map<const N: usize, K: aya::Pod>(
    ebpf: &mut Ebpf,
    map: &'static str,
    entries: &[PlanEntry],
    ctx: Ctx<'_>,
    key: fn([u8; N]) -> K,
) -> Result<usize, PlanError> {
    write_keyed(ebpf, map, entries, ctx, |value| {
        padded::<N>(value).map(key).ok_or(N - 1)
    })
}

/// Writes the plan map `map`: each entry's merged verdict under `key` of its value (`Err`:
/// the longest value the key holds); returns the entries written.
fn write_keyed<K: aya::Pod>(
    ebpf: &mut Ebpf,
    map: &'static str,
    entries: &[PlanEntry],
    ctx: Ctx<'_>,
    key: impl Fn(&[u8]) -> Result<K, usize>,
) -> Result<usize, PlanError> {
    let mut hash: HashMap<_, K, PlanVerdict> = plan_map(ebpf, map)?;
    let mut written = 0;
    for entry in entries {
        let Some(verdict) = merge_with(ctx.rules, &entry.rules, ctx.generation, ctx.disarmed)
        else {
            continue;
        };
        let key = key(entry.value.as_bytes()).map_err(|max| PlanError::KeyTooLong {
            map,
            value: entry.value.clone(),
            max,
        })?;
        let result = hash.insert(key, verdict, ctx.pass.flags());
        written += usize::from(ctx.pass.inserted(map, result)?);
    }
    Ok(written)
}

/// The verdict of an entry of a longest-match family (DNS names and domains, connect
/// prefixes): the merged verdict, or an entry with no action, which stops the kernel's search
/// (an exclusion, or only alerting rules) so that a shorter listed suffix or prefix cannot
/// answer for it.
///
/// An entry with rules (possibly only alerting ones) carries [`PLAN_FLAG_RECORD`]: the kernel
/// reports its events even where it filters the family; an exclusion (no rules) does not.
pub(super) fn verdict_or_stop(ctx: Ctx<'_>, indices: &[u32]) -> PlanVerdict {
    let mut verdict =
        merge_with(ctx.rules, indices, ctx.generation, ctx.disarmed).unwrap_or(PlanVerdict {
            rule_index: indices.first().copied().unwrap_or(0),
            actions: 0,
            flags: 0,
            generation: ctx.generation,
        });
    if !indices.is_empty() {
        verdict.flags |= PLAN_FLAG_RECORD;
    }
    verdict
}

/// Parses 64 hex digits into a digest.
pub fn parse_sha256(hex: &str) -> Option<[u8; SHA256_LEN]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 2 * SHA256_LEN {
        return None;
    }
    let mut out = [0u8; SHA256_LEN];
    for (byte, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let text = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

/// Writes the hash plan: SHA-256 -> the merged verdict with action `deny` (the exec is refused
/// before the new image exists; the caller of execve is not killed, as for inode verdicts).
fn write_hashes(ebpf: &mut Ebpf, entries: &[PlanEntry], ctx: Ctx<'_>) -> Result<usize, PlanError> {
    let map = EXEC_HASH_PLAN;
    let mut hash: HashMap<_, HashKey, PlanVerdict> = plan_map(ebpf, map)?;
    let mut written = 0;
    for entry in entries {
        let Some(verdict) = merge_with(ctx.rules, &entry.rules, ctx.generation, ctx.disarmed)
        else {
            continue;
        };
        let digest = parse_sha256(&entry.value).ok_or_else(|| PlanError::KeyTooLong {
            map,
            value: entry.value.clone(),
            max: 2 * SHA256_LEN,
        })?;
        let verdict = PlanVerdict {
            actions: ACTION_DENY,
            ..verdict
        };
        let result = hash.insert(HashKey(digest), verdict, ctx.pass.flags());
        written += usize::from(ctx.pass.inserted(map, result)?);
    }
    Ok(written)
}

/// Writes the argument plan: `EXEC_ARGS_SPARED` first (so no spared executable is ever
/// searched under the new schemes or flags; the value is the generation, for the sweep), then `EXEC_SCHEME_PLAN` and `EXEC_FLAG_PLAN`;
/// returns the scheme and flag entries.
fn write_args(ebpf: &mut Ebpf, plan: &KernelPlan, ctx: Ctx<'_>) -> Result<usize, PlanError> {
    let map = EXEC_ARGS_SPARED;
    let mut spared: HashMap<_, NameKey, u32> = plan_map(ebpf, map)?;
    for name in &plan.exec_args_spared {
        let key = padded::<NAME_LEN>(name.as_bytes()).ok_or_else(|| PlanError::KeyTooLong {
            map,
            value: name.clone(),
            max: NAME_LEN - 1,
        })?;
        let result = spared.insert(NameKey(key), ctx.generation, ctx.pass.flags());
        ctx.pass.inserted(map, result)?;
    }
    let schemes = write_keyed(ebpf, EXEC_SCHEME_PLAN, &plan.exec_arg_schemes, ctx, |v| {
        SchemeKey::new(v).ok_or(SCHEME_LEN)
    })?;
    let flags = write_keyed(ebpf, EXEC_FLAG_PLAN, &plan.exec_arg_flags, ctx, |v| {
        FlagKey::new(v).ok_or(FLAG_LEN - 1)
    })?;
    Ok(schemes + flags)
}

/// Writes a DNS plan map: `name_hash(value)` -> verdict.
fn write_dns(
    ebpf: &mut Ebpf,
    map: &'static str,
    entries: &[PlanEntry],
    ctx: Ctx<'_>,
) -> Result<usize, PlanError> {
    let mut hash: HashMap<_, u64, PlanVerdict> = plan_map(ebpf, map)?;
    let mut written = 0;
    for entry in entries {
        let verdict = verdict_or_stop(ctx, &entry.rules);
        let result = hash.insert(name_hash(entry.value.as_bytes()), verdict, ctx.pass.flags());
        written += usize::from(ctx.pass.inserted(map, result)?);
    }
    Ok(written)
}

/// Writes the kernel plan of `policy` into the plan maps; returns the number of entries.
pub fn write(
    ebpf: &mut Ebpf,
    policy: &CompiledPolicy,
    generation: u32,
) -> Result<usize, PlanError> {
    write_with(ebpf, policy, generation, &HashSet::new())
}

/// Writes (or rewrites: every entry is overwritten in place) the kernel plan of `policy`, the
/// rules in `disarmed` (rule indices the kill breaker disarmed) downgraded to monitor mode;
/// returns the number of entries.
pub fn write_with(
    ebpf: &mut Ebpf,
    policy: &CompiledPolicy,
    generation: u32,
    disarmed: &HashSet<u32>,
) -> Result<usize, PlanError> {
    write_pass(ebpf, policy, generation, disarmed, Pass::All)
}

/// [`write_with`] for the entries whose keys the maps already hold ([`Pass::Existing`]),
/// settings left as they are: with the running policy's entries of generations before
/// `generation` swept next, and the whole plan written after, a reload whose two plans do not
/// fit side by side still never lets through what both deny. Returns the entries rewritten.
pub fn rewrite_existing(
    ebpf: &mut Ebpf,
    policy: &CompiledPolicy,
    generation: u32,
    disarmed: &HashSet<u32>,
) -> Result<usize, PlanError> {
    write_pass(ebpf, policy, generation, disarmed, Pass::Existing)
}

fn write_pass(
    ebpf: &mut Ebpf,
    policy: &CompiledPolicy,
    generation: u32,
    disarmed: &HashSet<u32>,
    pass: Pass,
) -> Result<usize, PlanError> {
    let plan = policy.plan();
    super::plan_capacity::check(policy.rules(), plan).map_err(PlanError::TooLarge)?;
    let ctx = Ctx {
        rules: policy.rules(),
        generation,
        disarmed,
        pass,
    };
    // Widened before the names are written, narrowed after (write_settings).
    widen_name_filter(ebpf, name_filter(plan))?;
    let names = write_map::<NAME_LEN, _>(ebpf, EXEC_NAME_PLAN, &plan.exec_names, ctx, NameKey)?;
    let paths = write_map::<PATH_LEN, _>(ebpf, EXEC_PATH_PLAN, &plan.exec_paths, ctx, PathKey)?;
    let methods = write_map::<METHOD_LEN, _>(
        ebpf,
        PAYLOAD_METHOD_PLAN,
        &plan.payload_methods,
        ctx,
        MethodKey,
    )?;
    let dns_names = write_dns(ebpf, DNS_NAME_PLAN, &plan.dns_names, ctx)?;
    let dns_domains = write_dns(ebpf, DNS_DOMAIN_PLAN, &plan.dns_domains, ctx)?;
    let nets = write_connect(ebpf, &plan.connect_nets, ctx)?;
    let files = super::file_plan::write(ebpf, ctx.rules, plan, generation, disarmed, pass)?;
    let hashes = write_hashes(ebpf, &plan.exec_hashes, ctx)?;
    let ops = write_kernel_ops(ebpf, &plan.kernel_ops, ctx)?;
    let args = write_args(ebpf, plan, ctx)?;
    // After the entries, so a newly filtered family never misses an entry's events.
    if pass == Pass::All {
        write_settings(ebpf, policy, plan, generation)?;
    }
    Ok(names + paths + methods + dns_names + dns_domains + nets + files + hashes + ops + args)
}

/// Writes `KERNEL_OP_PLAN`: every slot, the merged verdict of the rules naming its operation
/// or an empty verdict (`actions == 0`), so a rewritten plan leaves no stale entry.
fn write_kernel_ops(
    ebpf: &mut Ebpf,
    entries: &[PlanEntry],
    ctx: Ctx<'_>,
) -> Result<usize, PlanError> {
    let map = KERNEL_OP_PLAN;
    let mut array: Array<_, PlanVerdict> = plan_map(ebpf, map)?;
    let mut slots = [None; KERNEL_OP_SLOTS as usize];
    for entry in entries {
        let Some(op) = KernelOp::from_name(&entry.value) else {
            continue;
        };
        slots[op as usize] = merge_with(ctx.rules, &entry.rules, ctx.generation, ctx.disarmed);
    }
    let mut written = 0;
    for (index, verdict) in (0u32..).zip(slots) {
        written += usize::from(verdict.is_some());
        let verdict = verdict.unwrap_or(PlanVerdict {
            rule_index: 0,
            actions: 0,
            flags: 0,
            generation: ctx.generation,
        });
        array
            .set(index, verdict, 0)
            .map_err(|source| PlanError::write(map, source))?;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn syscall_error(errno: i32) -> aya::maps::MapError {
        aya::maps::MapError::SyscallError(aya::sys::SyscallError {
            call: "bpf_map_update_elem",
            io_error: std::io::Error::from_raw_os_error(errno),
        })
    }

    #[test]
    fn only_the_existing_pass_skips_a_missing_key() {
        let map = EXEC_NAME_PLAN;
        assert!(Pass::All.inserted(map, Ok(())).unwrap());
        assert!(
            !Pass::Existing
                .inserted(map, Err(syscall_error(nix::libc::ENOENT)))
                .unwrap()
        );
        assert!(
            Pass::All
                .inserted(map, Err(syscall_error(nix::libc::ENOENT)))
                .is_err()
        );
        // A full map is an error in either pass (an update in place never fills one).
        assert!(matches!(
            Pass::Existing.inserted(map, Err(syscall_error(nix::libc::E2BIG))),
            Err(PlanError::Full { .. })
        ));
        assert_eq!(Pass::All.flags(), 0);
        assert_eq!(Pass::Existing.flags(), BPF_EXIST);
    }

    #[test]
    fn disarmed_rules_merge_as_monitor_rules() {
        let policy = enforcer_policy::load_str(
            "p.yaml",
            "rules:\n  - id: a\n    expression: exec.file.name == \"xmrig\"\n    action: [deny, kill]\n  - id: b\n    expression: exec.file.name == \"xmrig\"\n    action: deny\n",
        )
        .unwrap();
        let rules = policy.rules();
        let armed = merge(rules, &[0, 1], 3).unwrap();
        assert_eq!(
            (armed.rule_index, armed.actions, armed.flags),
            (0, ACTION_DENY | ACTION_KILL, 0)
        );
        // Rule a disarmed: b (enforcing) wins the entry, a's kill is gone from the kernel.
        let one = merge_with(rules, &[0, 1], 3, &HashSet::from([0])).unwrap();
        assert_eq!(
            (one.rule_index, one.actions, one.flags),
            (1, ACTION_DENY, 0)
        );
        // Only a, disarmed: the kernel records would_deny/would_kill.
        let alone = merge_with(rules, &[0], 3, &HashSet::from([0])).unwrap();
        assert_eq!(
            (alone.rule_index, alone.actions, alone.flags),
            (0, ACTION_DENY | ACTION_KILL, PLAN_FLAG_MONITOR)
        );
        assert_eq!(
            merge_with(rules, &[0], 3, &HashSet::new()).unwrap().flags,
            0
        );
    }

    #[test]
    fn sha256_values_parse_into_digests() {
        let hex = "00ff10".repeat(10) + "abcd";
        let digest = parse_sha256(&hex).unwrap();
        assert_eq!(&digest[..3], &[0x00, 0xff, 0x10]);
        assert_eq!(&digest[30..], &[0xab, 0xcd]);
        assert!(parse_sha256(&hex[..62]).is_none());
        assert!(parse_sha256(&("g".to_owned() + &hex[1..])).is_none());
        assert!(parse_sha256(&("é".to_owned() + &hex[2..])).is_none());
    }
}
