//! Effective rule sets of the DNS and connect families. The kernel takes the *first* entry
//! its lookup finds (exact name, then the longest listed domain suffix; the longest listed
//! prefix), so each entry must hold exactly the rules the evaluator matches for the names or
//! addresses whose lookup ends there.
//!
//! DNS. Keys: every exact name of a lowered rule (`dns_names`) and every domain
//! (`dns_domains`). The entry of exact name `k` holds the rules that hold for `k`. The entry of
//! domain `d` holds the rules that hold for a sub-domain `x.d` that no list holds (exact terms
//! false, domain terms decided by `d` and its parents); a name that ends its lookup at `d` is
//! `d` itself (not an exact key) or a sub-domain of `d` with no longer listed suffix, and every
//! term has the same value for it. A name with no hit has every term false, for which the
//! shape check ([`super::formula`]) requires the rule to be false.
//!
//! Connect. Keys: every listed network. The range of prefix `P` is `P` minus the longer listed
//! prefixes inside it (listed networks nest or are disjoint). Address terms are constant over
//! it; `is_public` may not be. The range is cut into blocks along every network that matters
//! (longer listed prefixes, [`net::NON_PUBLIC`], the extra public ranges, [`net::MAPPED`]), on
//! each block every test is constant, and each rule is evaluated once per block: the same
//! value on every block gives the entry, different values block the rule (its result depends on
//! `is_public` inside one prefix). A blocked rule leaves the entries but its prefixes stay
//! keys: the other rules were checked against the ranges those prefixes cut.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;

use super::formula::{DnsRule, NetRule, UNLISTED, dns_holds, net_holds};
use super::{Blocker, block};
use crate::net;
use crate::plan::PlanEntry;

/// `dns_names` and `dns_domains` of the lowered DNS rules, sorted by value.
pub(super) fn dns_entries(rules: &[(u32, &DnsRule)]) -> (Vec<PlanEntry>, Vec<PlanEntry>) {
    let names: BTreeSet<&str> = rules
        .iter()
        .flat_map(|(_, r)| r.names.iter().map(String::as_str))
        .collect();
    let domains: BTreeSet<&str> = rules
        .iter()
        .flat_map(|(_, r)| r.domains.iter().map(String::as_str))
        .collect();
    let holding = |probe: &str| -> Vec<u32> {
        let mut out: Vec<u32> = rules
            .iter()
            .filter(|(_, r)| dns_holds(r, probe))
            .map(|(i, _)| *i)
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    };
    let dns_names = names
        .iter()
        .map(|k| PlanEntry {
            value: (*k).to_string(),
            rules: holding(k),
        })
        .collect();
    let dns_domains = domains
        .iter()
        .map(|d| PlanEntry {
            value: (*d).to_string(),
            // A label no list holds in front of the domain.
            rules: holding(&format!("{UNLISTED}.{d}")),
        })
        .collect();
    (dns_names, dns_domains)
}

/// `connect_nets` of the lowered connect rules, sorted by value, and the rules blocked because
/// their result is not constant over the range of a prefix. A blocked rule is in no entry;
/// its prefixes stay keys (the other rules were checked against the ranges they cut).
pub(super) fn connect_entries(
    rules: &[(u32, &NetRule)],
    extra_public: &[IpNet],
) -> (Vec<PlanEntry>, Vec<(u32, Blocker)>) {
    let listed: BTreeSet<IpNet> = rules
        .iter()
        .flat_map(|(_, r)| r.nets.iter().copied())
        .collect();
    // Networks along which `is_public` changes, and the range no canonical address is in.
    let mut boundaries: Vec<Cut> = net::NON_PUBLIC
        .iter()
        .chain(extra_public)
        .map(|n| Cut {
            net: *n,
            hole: false,
        })
        .collect();
    boundaries.push(Cut {
        net: net::MAPPED,
        hole: true,
    });
    let mut entries = Vec::with_capacity(listed.len());
    let mut blocked: BTreeMap<u32, Blocker> = BTreeMap::new();
    for p in &listed {
        let inside = |n: &IpNet| n != p && p.contains(n);
        // Truncated networks sort by (family, network, length): the networks inside `p` are
        // among the ones from `p` up to its last address.
        let last = IpNet::new(p.broadcast(), p.max_prefix_len()).unwrap_or(*p);
        let cuts: Vec<Cut> = listed
            .range(*p..=last)
            .filter(|n| inside(n))
            .map(|n| Cut {
                net: *n,
                hole: true,
            })
            .chain(boundaries.iter().filter(|c| inside(&c.net)).copied())
            .collect();
        let mut blocks = Vec::new();
        split(*p, &cuts, &mut blocks);
        let probes: Vec<(IpAddr, bool)> = blocks
            .iter()
            .map(|b| {
                let ip = b.network();
                (ip, net::is_public_with(ip, extra_public))
            })
            .collect();
        let mut hit = Vec::new();
        for (idx, r) in rules {
            let holds = probes
                .iter()
                .filter(|(ip, public)| net_holds(r, *ip, *public))
                .count();
            if holds == probes.len() && holds > 0 {
                hit.push(*idx);
            } else if holds > 0 {
                blocked.entry(*idx).or_insert_with(|| mixes(r, p));
            }
        }
        entries.push(PlanEntry {
            value: p.to_string(),
            rules: hit,
        });
    }
    for e in &mut entries {
        e.rules.retain(|i| !blocked.contains_key(i));
        e.rules.sort_unstable();
        e.rules.dedup();
    }
    entries.sort_by(|a, b| a.value.cmp(&b.value));
    (entries, blocked.into_iter().collect())
}

/// A network the range of a prefix is cut along; a hole is left out of the range (a longer
/// listed prefix, or the IPv4-mapped IPv6 addresses).
#[derive(Debug, Clone, Copy)]
struct Cut {
    net: IpNet,
    hole: bool,
}

/// Splits `q` into blocks no cut divides, leaving the holes out. `cuts` are the cuts that
/// overlap `q` without containing it (networks nest or are disjoint, so they are inside `q`).
fn split(q: IpNet, cuts: &[Cut], out: &mut Vec<IpNet>) {
    if cuts.is_empty() {
        out.push(q);
        return;
    }
    let Ok(halves) = q.subnets(q.prefix_len().saturating_add(1)) else {
        // A single address: no cut is strictly inside it.
        out.push(q);
        return;
    };
    for half in halves {
        if cuts.iter().any(|c| c.hole && c.net.contains(&half)) {
            continue;
        }
        let inner: Vec<Cut> = cuts
            .iter()
            .filter(|c| c.net != half && half.contains(&c.net))
            .copied()
            .collect();
        split(half, &inner, out);
    }
}

fn mixes(r: &NetRule, p: &IpNet) -> Blocker {
    let reason = format!(
        "prefix `{p}` mixes public and non-public addresses (outside its longer listed prefixes), and the kernel does not classify addresses; list the public and non-public parts as separate prefixes"
    );
    match &r.public_test {
        Some((span, via)) => {
            let mut b = block(*span, reason);
            b.via = via.clone();
            b
        }
        None => block(r.cond.span, reason),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn n(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn split_leaves_holes_out_and_cuts_along_boundaries() {
        let mut out = Vec::new();
        let cuts = [
            Cut {
                net: n("10.1.0.0/16"),
                hole: true,
            },
            Cut {
                net: n("10.2.0.0/16"),
                hole: false,
            },
        ];
        split(n("10.0.0.0/8"), &cuts, &mut out);
        assert!(out.contains(&n("10.2.0.0/16")));
        assert!(!out.iter().any(|b| b.contains(&n("10.1.2.3/32"))));
        // The blocks and the hole tile the prefix.
        let size = |b: &IpNet| 1u64 << (32 - b.prefix_len());
        assert_eq!(
            out.iter().map(size).sum::<u64>() + size(&n("10.1.0.0/16")),
            size(&n("10.0.0.0/8"))
        );
        // The range of a prefix made only of holes is empty.
        out.clear();
        let halves = [
            Cut {
                net: n("10.0.0.0/9"),
                hole: true,
            },
            Cut {
                net: n("10.128.0.0/9"),
                hole: true,
            },
        ];
        split(n("10.0.0.0/8"), &halves, &mut out);
        assert!(out.is_empty());
    }
}
