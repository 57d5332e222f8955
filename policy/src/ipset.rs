//! A set of networks with a look-up cost that does not grow with the list: one hash set per
//! prefix length present (address lists are mostly /32s and a few /24s), so `contains` is a
//! handful of hash probes instead of a scan of every entry.

use std::{collections::HashSet, net::IpAddr};

use ipnet::IpNet;

/// Networks, in definition order, with an index for membership tests.
#[derive(Debug, Clone)]
pub struct IpSet {
    nets: Vec<IpNet>,
    /// (IPv4?, prefix length, truncated networks of that family and length).
    by_len: Vec<(bool, u8, HashSet<IpNet>)>,
}

impl IpSet {
    /// Indexes `nets` (networks are truncated to their prefix, as `IpNet::contains` treats them).
    pub fn new(nets: Vec<IpNet>) -> IpSet {
        let mut by_len: Vec<(bool, u8, HashSet<IpNet>)> = Vec::new();
        for net in &nets {
            let key = (net.addr().is_ipv4(), net.prefix_len());
            let slot = match by_len.iter_mut().position(|(v4, l, _)| (*v4, *l) == key) {
                Some(i) => &mut by_len[i].2,
                None => {
                    by_len.push((key.0, key.1, HashSet::new()));
                    let last = by_len.len() - 1;
                    &mut by_len[last].2
                }
            };
            slot.insert(net.trunc());
        }
        IpSet { nets, by_len }
    }

    /// The networks as given.
    pub fn nets(&self) -> &[IpNet] {
        &self.nets
    }

    /// Whether `ip` is inside any of the networks.
    pub fn contains(&self, ip: &IpAddr) -> bool {
        self.by_len.iter().any(|(v4, len, set)| {
            *v4 == ip.is_ipv4() && IpNet::new(*ip, *len).is_ok_and(|n| set.contains(&n.trunc()))
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::panic)]
    use proptest::prelude::*;

    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn mixed_lengths_and_families() {
        let set = IpSet::new(vec![
            net("10.1.2.3/32"),
            net("192.168.0.0/16"),
            net("2001:db8::/32"),
            net("198.51.100.7/24"),
        ]);
        for (ip, want) in [
            ("10.1.2.3", true),
            ("10.1.2.4", false),
            ("192.168.77.1", true),
            ("2001:db8::1", true),
            ("2001:db9::1", false),
            ("198.51.100.200", true),
            ("::ffff:10.1.2.3", false),
        ] {
            let ip: IpAddr = ip.parse().unwrap_or_else(|e| panic!("{ip}: {e}"));
            assert_eq!(set.contains(&ip), want, "{ip}");
        }
    }

    proptest! {
        #[test]
        fn same_answer_as_a_scan(
            nets in prop::collection::vec((any::<u32>(), 0u8..=32), 0..20),
            probes in prop::collection::vec(any::<u32>(), 1..40),
        ) {
            let nets: Vec<IpNet> = nets
                .into_iter()
                .filter_map(|(a, l)| IpNet::new(IpAddr::from(a.to_be_bytes()), l).ok())
                .collect();
            let set = IpSet::new(nets.clone());
            for p in &probes {
                let ip = IpAddr::from(p.to_be_bytes());
                prop_assert_eq!(set.contains(&ip), nets.iter().any(|n| n.contains(&ip)));
            }
            for n in &nets {
                let ip = n.addr();
                prop_assert_eq!(set.contains(&ip), true);
            }
        }
    }
}
