//! Address classification shared by event decoding, evaluation and lowering.
//!
//! - An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) *is* its IPv4 address: [`canonical`] is
//!   applied to every address of an event, of a literal and of a list (and [`canonical_net`]
//!   to networks), as the kernel looks such an address up in its IPv4 form.
//! - "Public" is one table of non-public networks ([`NON_PUBLIC`]) plus the extra public
//!   ranges a policy declares (`network.extra_public_ranges`, see [`is_public_with`]). The
//!   kernel-plan lowering splits the address space along the same table, so the plan and the
//!   evaluator agree by construction.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// The IPv4-mapped IPv6 addresses, `::ffff:0:0/96`. After [`canonical`] no address is in it.
pub const MAPPED: IpNet = IpNet::V6(Ipv6Net::new_assert(
    Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0),
    96,
));

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8) -> IpNet {
    IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), len))
}

const fn v6(first: u16, second: u16, last: u16, len: u8) -> IpNet {
    IpNet::V6(Ipv6Net::new_assert(
        Ipv6Addr::new(first, second, 0, 0, 0, 0, 0, last),
        len,
    ))
}

/// Networks that are not public: loopback, RFC 1918 private, link-local, unspecified,
/// multicast, broadcast, documentation (TEST-NET-1/2/3, `2001:db8::/32`), CGNAT
/// (`100.64.0.0/10`) and unique-local (`fc00::/7`). Every other address is public.
pub const NON_PUBLIC: [IpNet; 18] = [
    v4(0, 0, 0, 0, 32),
    v4(10, 0, 0, 0, 8),
    v4(100, 64, 0, 0, 10),
    v4(127, 0, 0, 0, 8),
    v4(169, 254, 0, 0, 16),
    v4(172, 16, 0, 0, 12),
    v4(192, 0, 2, 0, 24),
    v4(192, 168, 0, 0, 16),
    v4(198, 51, 100, 0, 24),
    v4(203, 0, 113, 0, 24),
    v4(224, 0, 0, 0, 4),
    v4(255, 255, 255, 255, 32),
    v6(0, 0, 0, 128),
    v6(0, 0, 1, 128),
    v6(0xfc00, 0, 0, 7),
    v6(0xfe80, 0, 0, 10),
    v6(0xff00, 0, 0, 8),
    v6(0x2001, 0x0db8, 0, 32),
];

/// The address itself, or the IPv4 address an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`)
/// carries.
pub fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// The network truncated to its prefix, as an IPv4 network when it lies inside
/// `::ffff:0:0/96` (`::ffff:10.0.0.0/104` is `10.0.0.0/8`, `::ffff:0:0/96` is `0.0.0.0/0`).
/// A wider IPv6 network that contains the mapped range stays IPv6 and, as no canonical address
/// is mapped, matches no IPv4 address.
pub fn canonical_net(net: IpNet) -> IpNet {
    let net = net.trunc();
    if let IpNet::V6(n) = net
        && n.prefix_len() >= 96
        && let Some(a) = n.network().to_ipv4_mapped()
        && let Ok(v4) = Ipv4Net::new(a, n.prefix_len() - 96)
    {
        return IpNet::V4(v4.trunc());
    }
    net
}

/// Whether an address is public: not in [`NON_PUBLIC`] (after [`canonical`]).
pub fn is_public(ip: IpAddr) -> bool {
    let ip = canonical(ip);
    !NON_PUBLIC.iter().any(|n| n.contains(&ip))
}

/// Whether an address is public for a policy: [`is_public`], or inside one of `extra` (the
/// policy's `network.extra_public_ranges`, canonical networks).
pub fn is_public_with(ip: IpAddr, extra: &[IpNet]) -> bool {
    let ip = canonical(ip);
    is_public(ip) || extra.iter().any(|n| n.contains(&ip))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    /// The definition before the table: the standard library's predicates.
    fn reference(ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => {
                let o = a.octets();
                !(a.is_loopback()
                    || a.is_private()
                    || a.is_link_local()
                    || a.is_unspecified()
                    || a.is_multicast()
                    || a.is_broadcast()
                    || a.is_documentation()
                    || (o[0] == 100 && (o[1] & 0xc0) == 64))
            }
            IpAddr::V6(a) => {
                if let Some(v4) = a.to_ipv4_mapped() {
                    return reference(IpAddr::V4(v4));
                }
                let s = a.segments();
                !(a.is_loopback()
                    || a.is_unspecified()
                    || a.is_multicast()
                    || (s[0] & 0xfe00) == 0xfc00
                    || (s[0] & 0xffc0) == 0xfe80
                    || s[0] == 0x2001 && s[1] == 0x0db8)
            }
        }
    }

    /// Addresses at and around every edge of the table.
    fn edges() -> Vec<IpAddr> {
        let mut out = Vec::new();
        for n in NON_PUBLIC {
            match n {
                IpNet::V4(n) => {
                    let lo = u32::from(n.network());
                    let hi = u32::from(n.broadcast());
                    for x in [lo.wrapping_sub(1), lo, hi, hi.wrapping_add(1)] {
                        out.push(IpAddr::V4(Ipv4Addr::from(x)));
                        out.push(IpAddr::V6(Ipv4Addr::from(x).to_ipv6_mapped()));
                    }
                }
                IpNet::V6(n) => {
                    let lo = u128::from(n.network());
                    let hi = u128::from(n.broadcast());
                    for x in [lo.wrapping_sub(1), lo, hi, hi.wrapping_add(1)] {
                        out.push(IpAddr::V6(Ipv6Addr::from(x)));
                    }
                }
            }
        }
        out
    }

    #[test]
    fn table_equals_the_std_predicates_at_every_edge() {
        for ip in edges() {
            assert_eq!(is_public(ip), reference(ip), "{ip}");
        }
    }

    proptest! {
        #[test]
        fn table_equals_the_std_predicates(v4 in any::<u32>(), v6 in any::<u128>(), near in 0usize..NON_PUBLIC.len(), off in any::<u32>()) {
            for ip in [IpAddr::V4(Ipv4Addr::from(v4)), IpAddr::V6(Ipv6Addr::from(v6)),
                       IpAddr::V6(Ipv4Addr::from(v4).to_ipv6_mapped())] {
                prop_assert_eq!(is_public(ip), reference(ip), "{}", ip);
            }
            // An address inside (or just past) a table entry.
            let ip = match NON_PUBLIC[near] {
                IpNet::V4(n) => IpAddr::V4(Ipv4Addr::from(u32::from(n.network()).wrapping_add(off % 0x0100_0100))),
                IpNet::V6(n) => IpAddr::V6(Ipv6Addr::from(u128::from(n.network()).wrapping_add(u128::from(off)))),
            };
            prop_assert_eq!(is_public(ip), reference(ip), "{}", ip);
        }
    }

    #[test]
    fn mapped_addresses_and_networks_are_ipv4() {
        let ip: IpAddr = "::ffff:127.0.0.77".parse().unwrap();
        assert_eq!(canonical(ip), "127.0.0.77".parse::<IpAddr>().unwrap());
        let n = |s: &str| s.parse::<IpNet>().unwrap();
        assert_eq!(canonical_net(n("::ffff:10.1.2.3/104")), n("10.0.0.0/8"));
        assert_eq!(canonical_net(n("::ffff:0:0/96")), n("0.0.0.0/0"));
        assert_eq!(canonical_net(n("::ffff:1.2.3.4/128")), n("1.2.3.4/32"));
        assert_eq!(canonical_net(n("::/0")), n("::/0"));
        assert_eq!(canonical_net(n("2001:db8::1/32")), n("2001:db8::/32"));
        let extra = [n("127.0.0.77/32")];
        assert!(!is_public(ip));
        assert!(is_public_with(ip, &extra));
        assert!(!is_public_with("127.0.0.78".parse().unwrap(), &extra));
    }
}
