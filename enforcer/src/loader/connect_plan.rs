//! The connect plan: `CONNECT_V4_PLAN` and `CONNECT_V6_PLAN`, longest-prefix tries of the
//! networks connect rules name ([`write_connect`]), and the host entries of addresses learned
//! from DNS answers ([`write_learned`]), which unite the learned rules with the static ones.

use std::{collections::HashSet, net::IpAddr};

use aya::{
    Ebpf,
    maps::{LpmTrie, lpm_trie::Key},
};
use enforcer_common::{
    maps::{CONNECT_V4_PLAN, CONNECT_V6_PLAN},
    plan::PlanVerdict,
};
use enforcer_policy::{CompiledPolicy, PlanEntry};

use super::plan_sync::{Ctx, Pass, PlanError, plan_map, verdict_or_stop};

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
pub(super) fn write_connect(
    ebpf: &mut Ebpf,
    entries: &[PlanEntry],
    ctx: Ctx<'_>,
) -> Result<usize, PlanError> {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

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
