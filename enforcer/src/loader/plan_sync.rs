//! Writes the policy's kernel plan (`CompiledPolicy::lower`) into the plan maps.
//!
//! Several rules may name the same value; the kernel holds one verdict per value, merged by
//! [`merge`]: enforcing rules win over monitor-mode rules, their actions are united, and the
//! first of them names the entry.
//!
//! Rules the kill breaker disarmed ([`write_with`]) are merged as monitor-mode rules: the
//! kernel records `would_deny`/`would_kill` for them from then on.

use std::{collections::HashSet, net::IpAddr};

use aya::{
    Ebpf,
    maps::{Array, HashMap, LpmTrie, lpm_trie::Key},
};
use enforcer_common::{
    kernel_event::{KERNEL_OP_SLOTS, KernelOp},
    maps::{
        CONNECT_V4_PLAN, CONNECT_V6_PLAN, DNS_DOMAIN_PLAN, DNS_NAME_PLAN, EXEC_ARGS_SPARED,
        EXEC_FLAG_PLAN, EXEC_HASH_PLAN, EXEC_NAME_PLAN, EXEC_PATH_PLAN, EXEC_SCHEME_PLAN,
        KERNEL_OP_PLAN, PAYLOAD_METHOD_PLAN, PLAN_SETTINGS,
    },
    name_filter::NameFilter,
    net::name_hash,
    plan::{
        ACTION_DENY, ACTION_KILL, DNS_PORT_SLOTS, EXEC_ARGS_FLAGS, EXEC_ARGS_SCHEMES,
        EXEC_CHECK_MMAP, EXEC_HASH_IN_KERNEL, EXEC_PATHS, EXEC_RECORD_ENV, FLAG_LEN, FlagKey,
        HashKey, METHOD_LEN, MethodKey, NAME_LEN, NameKey, PATH_LEN, PLAN_FLAG_MONITOR,
        PLAN_FLAG_RECORD, PathKey, PlanSettings, PlanVerdict, RECORD_ACCEPTS, RECORD_BINDS,
        RECORD_CONNECT_MATCHED_ONLY, RECORD_LIFECYCLE_WAKE, SCHEME_LEN, SHA256_LEN, SchemeKey,
        padded,
    },
};
use enforcer_policy::{CompiledPolicy, KernelPlan, Kind, Mode, PlanEntry, RuleInfo};

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
struct Ctx<'a> {
    rules: &'a [RuleInfo],
    generation: u32,
    disarmed: &'a HashSet<u32>,
    pass: Pass,
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
fn verdict_or_stop(ctx: Ctx<'_>, indices: &[u32]) -> PlanVerdict {
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
fn name_filter(plan: &KernelPlan) -> NameFilter {
    NameFilter::of(plan.exec_names.iter().map(|entry| entry.value.as_str()))
}

/// Adds `filter` to `PLAN_SETTINGS.exec_names` (the old names stay let through until the
/// plan's settings are written).
fn widen_name_filter(ebpf: &mut Ebpf, filter: NameFilter) -> Result<(), PlanError> {
    update_settings(ebpf, |settings| {
        settings.exec_names = settings.exec_names.union(filter);
    })
}

/// Writes `PLAN_SETTINGS`: which families the kernel may leave unreported under this plan,
/// and which exec checks run (the hash limits are kept).
fn write_settings(
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

/// Parses `addr/len` (or a bare address) into the address and its prefix length.
pub fn parse_network(value: &str) -> Result<(IpAddr, u32), PlanError> {
    let bad = || PlanError::BadNetwork(value.to_owned());
    let (addr, len) = match value.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (value, None),
    };
    let addr: IpAddr = addr.parse().map_err(|_| bad())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match len {
        Some(l) => l.parse::<u32>().map_err(|_| bad())?,
        None => max,
    };
    if len > max {
        return Err(bad());
    }
    Ok((addr, len))
}

/// Sets (`Some`) or removes (`None`) the connect plan entry of `addr/len`: IPv4 prefixes live
/// in one trie, IPv6 in the other. Returns whether it wrote (see [`Pass::inserted`]).
fn set_connect_key(
    ebpf: &mut Ebpf,
    addr: IpAddr,
    len: u32,
    verdict: Option<PlanVerdict>,
    pass: Pass,
) -> Result<bool, PlanError> {
    fn set<const N: usize>(
        ebpf: &mut Ebpf,
        map: &'static str,
        key: Key<[u8; N]>,
        verdict: Option<PlanVerdict>,
        pass: Pass,
    ) -> Result<bool, PlanError> {
        let mut trie: LpmTrie<_, [u8; N], PlanVerdict> = plan_map(ebpf, map)?;
        let result = match verdict {
            Some(v) => trie.insert(&key, v, pass.flags()),
            None => trie.remove(&key),
        };
        pass.inserted(map, result)
    }
    match addr {
        IpAddr::V4(a) => set(
            ebpf,
            CONNECT_V4_PLAN,
            Key::new(len, a.octets()),
            verdict,
            pass,
        ),
        IpAddr::V6(a) => set(
            ebpf,
            CONNECT_V6_PLAN,
            Key::new(len, a.octets()),
            verdict,
            pass,
        ),
    }
}

/// Writes the connect plan tries.
fn write_connect(ebpf: &mut Ebpf, entries: &[PlanEntry], ctx: Ctx<'_>) -> Result<usize, PlanError> {
    let mut written = 0;
    for entry in entries {
        let (addr, len) = parse_network(&entry.value)?;
        let verdict = Some(verdict_or_stop(ctx, &entry.rules));
        written += usize::from(set_connect_key(ebpf, addr, len, verdict, ctx.pass)?);
    }
    Ok(written)
}

/// Writes the connect plan entry of a learned address (`learned`: the rules on
/// `connect.addr.dns_name` that hold for it now, possibly none). The entry unites them with
/// the rules the static plan gives the address, so a learned /32 never hides a listed prefix;
/// with no learned rule left, the static entry of that exact address is restored, or the key
/// removed.
pub fn write_learned(
    ebpf: &mut Ebpf,
    policy: &CompiledPolicy,
    generation: u32,
    disarmed: &HashSet<u32>,
    ip: IpAddr,
    learned: &[u32],
) -> Result<(), PlanError> {
    let host_len: u32 = if ip.is_ipv4() { 32 } else { 128 };
    let found = policy.plan().connect_lookup(ip);
    // The longest listed prefix holding `ip` is its own key when it is a host entry.
    let exact = found.is_some_and(|e| {
        parse_network(&e.value).is_ok_and(|(addr, len)| addr == ip && len == host_len)
    });
    let mut rules: Vec<u32> = found.map(|e| e.rules.clone()).unwrap_or_default();
    rules.extend_from_slice(learned);
    rules.sort_unstable();
    rules.dedup();
    let ctx = Ctx {
        rules: policy.rules(),
        generation,
        disarmed,
        pass: Pass::All,
    };
    let verdict = (!learned.is_empty() || exact).then(|| verdict_or_stop(ctx, &rules));
    set_connect_key(ebpf, ip, host_len, verdict, Pass::All).map(drop)
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
    fn sha256_values_parse_into_digests() {
        let hex = "00ff10".repeat(10) + "abcd";
        let digest = parse_sha256(&hex).unwrap();
        assert_eq!(&digest[..3], &[0x00, 0xff, 0x10]);
        assert_eq!(&digest[30..], &[0xab, 0xcd]);
        assert!(parse_sha256(&hex[..62]).is_none());
        assert!(parse_sha256(&("g".to_owned() + &hex[1..])).is_none());
        assert!(parse_sha256(&("é".to_owned() + &hex[2..])).is_none());
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

    #[test]
    fn networks_parse_with_and_without_a_prefix() {
        assert!(matches!(
            parse_network("10.0.0.0/8"),
            Ok((IpAddr::V4(_), 8))
        ));
        assert!(matches!(
            parse_network("127.0.0.77"),
            Ok((IpAddr::V4(_), 32))
        ));
        assert!(matches!(
            parse_network("2001:db8::/32"),
            Ok((IpAddr::V6(_), 32))
        ));
        assert!(matches!(parse_network("::1"), Ok((IpAddr::V6(_), 128))));
        assert!(parse_network("10.0.0.0/33").is_err());
        assert!(parse_network("pool.example/8").is_err());
        assert!(parse_network("10.0.0.0/x").is_err());
    }
}
