//! Removes the plan entries an earlier policy generation wrote and the current one did not
//! rewrite: the last step of a policy reload.
//!
//! A reload never empties a map. It writes every entry of the new generation first
//! (`plan_sync::write_with`; a value both generations hold is overwritten in place, one atomic
//! map update), then the settings, then sweeps here. Until the sweep, the kernel sees the union
//! of the two plans, so nothing both generations deny is ever allowed in between; what only the
//! old one denied is allowed once it is swept.
//!
//! Every plan entry says which generation wrote it: `PlanVerdict::generation` for verdict maps,
//! and the `u32` value itself for the presence maps (`EXEC_ARGS_SPARED`, `FILE_WATCH_DIRS`).
//! `FILE_DIR_BITS` is derived from `FILE_WATCH_DIRS` and rewritten after its sweep.
//! `KERNEL_OP_PLAN` is an array rewritten whole by every write and has nothing to sweep;
//! `EXEC_INODE_PLAN` belongs to the daemon's `InodePlan`, which sweeps its own entries.

use aya::{
    Ebpf,
    maps::{HashMap, LpmTrie, lpm_trie::Key},
};
use enforcer_common::{
    file::FileWatchKey,
    maps::{
        CONNECT_V4_PLAN, CONNECT_V6_PLAN, DNS_DOMAIN_PLAN, DNS_NAME_PLAN, EXEC_ARGS_SPARED,
        EXEC_FLAG_PLAN, EXEC_HASH_PLAN, EXEC_NAME_PLAN, EXEC_PATH_PLAN, EXEC_SCHEME_PLAN,
        FILE_WATCH, FILE_WATCH_DIRS, PAYLOAD_METHOD_PLAN,
    },
    plan::{FlagKey, HashKey, MethodKey, NameKey, PathKey, PlanVerdict, SchemeKey},
};

use super::plan_sync::{PlanError, plan_map};

/// The entries of map `map` whose value `stale` says an older generation wrote them.
fn sweep_hash<K: aya::Pod, V: aya::Pod>(
    ebpf: &mut Ebpf,
    map: &'static str,
    stale: impl Fn(&V) -> bool,
) -> Result<usize, PlanError> {
    let mut hash: HashMap<_, K, V> = plan_map(ebpf, map)?;
    // Keys first, removals after: removing while iterating can skip entries.
    let keys: Vec<K> = hash
        .iter()
        .filter_map(Result::ok)
        .filter(|(_, value)| stale(value))
        .map(|(key, _)| key)
        .collect();
    for key in &keys {
        hash.remove(key)
            .map_err(|source| PlanError::Map { map, source })?;
    }
    Ok(keys.len())
}

/// [`sweep_hash`] for an LPM trie of `N`-byte addresses.
fn sweep_trie<const N: usize>(
    ebpf: &mut Ebpf,
    map: &'static str,
    generation: u32,
) -> Result<usize, PlanError> {
    let mut trie: LpmTrie<_, [u8; N], PlanVerdict> = plan_map(ebpf, map)?;
    let keys: Vec<Key<[u8; N]>> = trie
        .iter()
        .filter_map(Result::ok)
        .filter(|(_, verdict)| verdict.generation != generation)
        .map(|(key, _)| key)
        .collect();
    for key in &keys {
        trie.remove(key)
            .map_err(|source| PlanError::Map { map, source })?;
    }
    Ok(keys.len())
}

/// Removes every plan entry not written by `generation`; returns how many were removed.
pub fn sweep(ebpf: &mut Ebpf, generation: u32) -> Result<usize, PlanError> {
    let old = |verdict: &PlanVerdict| verdict.generation != generation;
    let old_mark = |mark: &u32| *mark != generation;
    let dirs = sweep_hash::<u64, _>(ebpf, FILE_WATCH_DIRS, old_mark)?;
    super::file_plan::write_dir_bits(ebpf)?;
    Ok(dirs
        + sweep_hash::<NameKey, _>(ebpf, EXEC_NAME_PLAN, old)?
        + sweep_hash::<PathKey, _>(ebpf, EXEC_PATH_PLAN, old)?
        + sweep_hash::<HashKey, _>(ebpf, EXEC_HASH_PLAN, old)?
        + sweep_hash::<SchemeKey, _>(ebpf, EXEC_SCHEME_PLAN, old)?
        + sweep_hash::<FlagKey, _>(ebpf, EXEC_FLAG_PLAN, old)?
        + sweep_hash::<NameKey, _>(ebpf, EXEC_ARGS_SPARED, old_mark)?
        + sweep_hash::<MethodKey, _>(ebpf, PAYLOAD_METHOD_PLAN, old)?
        + sweep_hash::<u64, _>(ebpf, DNS_NAME_PLAN, old)?
        + sweep_hash::<u64, _>(ebpf, DNS_DOMAIN_PLAN, old)?
        + sweep_hash::<FileWatchKey, _>(ebpf, FILE_WATCH, old)?
        + sweep_trie::<4>(ebpf, CONNECT_V4_PLAN, generation)?
        + sweep_trie::<16>(ebpf, CONNECT_V6_PLAN, generation)?)
}
