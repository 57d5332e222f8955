//! Addresses learned from DNS answers: the rules on `connect.addr.dns_name`
//! (`KernelPlan::learned_rules`) are evaluated against every A/AAAA answer (question name,
//! address); an address some of them match is written into the connect plan for the answer's
//! TTL, so the kernel stops a connect to it like one to a listed address
//! (`PlanControl::learned`). Connect events also get `connect.addr.dns_name` from here.
//!
//! Bounded: at most [`MAX_LEARNED`] addresses (the one expiring soonest makes room); a TTL is
//! held between [`MIN_TTL_NS`] (a miner keeps using an address longer than a 0-second TTL
//! says) and [`MAX_TTL_NS`]. Expiry is checked at every record the daemon handles.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    net::IpAddr,
};

use enforcer_policy::{CompiledPolicy, Event};
use serde_json::{Value, json};

/// Addresses held at most.
pub(crate) const MAX_LEARNED: usize = 16_384;
/// Shortest time an address is held (ns).
pub(crate) const MIN_TTL_NS: u64 = 60_000_000_000;
/// Longest time an address is held (ns).
pub(crate) const MAX_TTL_NS: u64 = 86_400_000_000_000;

/// The rules on `connect.addr.dns_name` of `policy` that a connect to `ip`, learned from an
/// answer for `name`, matches.
fn matching_rules(policy: &CompiledPolicy, ip: IpAddr, name: &str) -> Vec<u32> {
    let learned_rules = &policy.plan().learned_rules;
    let probe = json!({"kind": "connect",
                       "connect": {"addr": {"ip": ip.to_string(), "dns_name": name}}});
    let Ok(probe) = Event::from_json(&probe) else {
        return Vec::new();
    };
    policy
        .eval(&probe)
        .iter()
        .map(|m| m.rule_index)
        .filter(|i| learned_rules.contains(i))
        .collect()
}

#[derive(Debug)]
struct Entry {
    /// Rule index -> when it stops applying (boot-clock ns).
    rules: BTreeMap<u32, u64>,
    /// The question name of the latest answer that gave the address.
    name: String,
}

/// The learned addresses; see the module documentation.
#[derive(Debug, Default)]
pub(crate) struct Learned {
    by_ip: HashMap<IpAddr, Entry>,
    /// (expiry, address, rule) of every learned rule, soonest first: expiry looks at the
    /// front only, so it costs nothing per record while nothing is due.
    expiry: BTreeSet<(u64, IpAddr, u32)>,
}

impl Learned {
    /// Learns the answers of a DNS response `event` seen at `now_ns`; returns the addresses
    /// whose rule set changed (to write into the plan).
    pub(crate) fn learn(
        &mut self,
        policy: &CompiledPolicy,
        event: &Value,
        now_ns: u64,
    ) -> Vec<IpAddr> {
        if policy.plan().learned_rules.is_empty() {
            return Vec::new();
        }
        let Some(name) = event.pointer("/dns/question/name").and_then(Value::as_str) else {
            return Vec::new();
        };
        let answers = event
            .pointer("/dns/answers")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        let mut changed = Vec::new();
        for answer in answers {
            let Some(ip) = answer["ip"].as_str().and_then(|s| s.parse::<IpAddr>().ok()) else {
                continue;
            };
            let ttl_ns = answer["ttl"]
                .as_u64()
                .unwrap_or(0)
                .saturating_mul(1_000_000_000);
            let until = now_ns.saturating_add(ttl_ns.clamp(MIN_TTL_NS, MAX_TTL_NS));
            let matched = matching_rules(policy, ip, name);
            if !matched.is_empty() && self.insert(ip, name, &matched, until) {
                changed.push(ip);
            }
        }
        changed
    }

    /// Adds `rules` for `ip` until `until`; whether the address's rule set changed.
    fn insert(&mut self, ip: IpAddr, name: &str, rules: &[u32], until: u64) -> bool {
        if !self.by_ip.contains_key(&ip)
            && self.by_ip.len() >= MAX_LEARNED
            && let Some(&(_, old, _)) = self.expiry.first()
        {
            self.forget(old);
        }
        let entry = self.by_ip.entry(ip).or_insert_with(|| Entry {
            rules: BTreeMap::new(),
            name: String::new(),
        });
        name.clone_into(&mut entry.name);
        let mut changed = false;
        for &rule in rules {
            match entry.rules.get(&rule).copied() {
                Some(old) if old >= until => continue,
                Some(old) => {
                    self.expiry.remove(&(old, ip, rule));
                }
                None => changed = true,
            }
            entry.rules.insert(rule, until);
            self.expiry.insert((until, ip, rule));
        }
        changed
    }

    /// Drops `ip` with all its rules.
    fn forget(&mut self, ip: IpAddr) {
        if let Some(entry) = self.by_ip.remove(&ip) {
            for (rule, until) in entry.rules {
                self.expiry.remove(&(until, ip, rule));
            }
        }
    }

    /// Drops what expired by `now_ns`; returns the addresses whose rule set changed.
    pub(crate) fn expire(&mut self, now_ns: u64) -> Vec<IpAddr> {
        let mut changed = Vec::new();
        while let Some(&(at, ip, rule)) = self.expiry.first() {
            if at > now_ns {
                break;
            }
            self.expiry.pop_first();
            if let Some(entry) = self.by_ip.get_mut(&ip) {
                entry.rules.remove(&rule);
                if entry.rules.is_empty() {
                    self.by_ip.remove(&ip);
                }
            }
            if !changed.contains(&ip) {
                changed.push(ip);
            }
        }
        changed
    }

    /// The addresses learned so far, judged again under a reloaded `policy`: each address
    /// keeps its question name and its latest expiry, and gets the new policy's rules on
    /// `connect.addr.dns_name` that match that name. Addresses no new rule matches are dropped.
    pub(crate) fn under(&self, policy: &CompiledPolicy) -> Learned {
        let mut learned = Learned::default();
        for (ip, entry) in &self.by_ip {
            let Some(until) = entry.rules.values().max().copied() else {
                continue;
            };
            let matched = matching_rules(policy, *ip, &entry.name);
            if !matched.is_empty() {
                learned.insert(*ip, &entry.name, &matched, until);
            }
        }
        learned
    }

    /// Every learned address with its rules (ascending).
    pub(crate) fn all(&self) -> Vec<(IpAddr, Vec<u32>)> {
        self.by_ip
            .iter()
            .map(|(ip, e)| (*ip, e.rules.keys().copied().collect()))
            .collect()
    }

    /// The rules that apply to `ip` now (ascending).
    pub(crate) fn rules(&self, ip: &IpAddr) -> Vec<u32> {
        self.by_ip
            .get(ip)
            .map(|e| e.rules.keys().copied().collect())
            .unwrap_or_default()
    }

    /// The question name that gave `ip`, if it is learned.
    pub(crate) fn name(&self, ip: &IpAddr) -> Option<&str> {
        self.by_ip.get(ip).map(|e| e.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const POLICY: &str = r#"lists:
  - name: pools
    type: domain
    items: [example-miner.test]
rules:
  - id: learned-pool
    expression: connect.addr.dns_name in pools
    action: deny
  - id: other
    expression: connect.addr.ip == 192.0.2.1
    action: alert
"#;

    fn response(name: &str, answers: &[(&str, u64)]) -> Value {
        let answers: Vec<Value> = answers
            .iter()
            .map(|(ip, ttl)| json!({"ip": ip, "ttl": ttl, "type": "A"}))
            .collect();
        json!({"kind": "dns", "dns": {"is_response": true, "question": {"name": name},
                                      "answers": answers}})
    }

    #[test]
    fn answers_for_listed_names_are_learned_until_their_ttl() {
        let policy = enforcer_policy::load_str("p.yaml", POLICY).unwrap();
        assert_eq!(policy.plan().learned_rules, vec![0]);
        let mut learned = Learned::default();
        let ip: IpAddr = "127.0.0.78".parse().unwrap();
        let changed = learned.learn(
            &policy,
            &response("pool.example-miner.test", &[("127.0.0.78", 120)]),
            0,
        );
        assert_eq!(changed, vec![ip]);
        assert_eq!(learned.rules(&ip), vec![0]);
        assert_eq!(learned.name(&ip), Some("pool.example-miner.test"));
        // An ordinary name teaches nothing.
        let other = learned.learn(&policy, &response("pool.ntp.org", &[("127.0.0.2", 120)]), 0);
        assert!(other.is_empty());
        // The same answer again changes no rule set.
        assert!(
            learned
                .learn(
                    &policy,
                    &response("pool.example-miner.test", &[("127.0.0.78", 120)]),
                    1
                )
                .is_empty()
        );
        assert!(learned.expire(119_000_000_000).is_empty());
        assert_eq!(learned.expire(121_000_000_000), vec![ip]);
        assert!(learned.rules(&ip).is_empty());
        assert!(learned.by_ip.is_empty());
    }

    #[test]
    fn each_rule_of_an_address_expires_on_its_own() {
        let two = format!(
            "{POLICY}  - id: other-name\n    expression: connect.addr.dns_name == \"other.test\"\n    action: deny\n"
        );
        let policy = enforcer_policy::load_str("p.yaml", &two).unwrap();
        assert_eq!(policy.plan().learned_rules, vec![0, 2]);
        let mut learned = Learned::default();
        let ip: IpAddr = "127.0.0.78".parse().unwrap();
        learned.learn(
            &policy,
            &response("pool.example-miner.test", &[("127.0.0.78", 120)]),
            0,
        );
        learned.learn(&policy, &response("other.test", &[("127.0.0.78", 300)]), 0);
        assert_eq!(learned.rules(&ip), vec![0, 2]);
        assert_eq!(learned.expire(121_000_000_000), vec![ip]);
        assert_eq!(learned.rules(&ip), vec![2]);
        assert_eq!(learned.expire(301_000_000_000), vec![ip]);
        assert!(learned.by_ip.is_empty() && learned.expiry.is_empty());
    }

    #[test]
    fn a_reloaded_policy_judges_the_learned_names_again() {
        let policy = enforcer_policy::load_str("p.yaml", POLICY).unwrap();
        let mut learned = Learned::default();
        let (pool, other): (IpAddr, IpAddr) =
            ("127.0.0.78".parse().unwrap(), "127.0.0.79".parse().unwrap());
        learned.learn(
            &policy,
            &response("pool.example-miner.test", &[("127.0.0.78", 120)]),
            0,
        );
        // The new policy lists other.test (first rule) and no longer the miner's domain.
        let reloaded = enforcer_policy::load_str(
            "p.yaml",
            &POLICY.replace("example-miner.test", "other.test").replace(
                "rules:\n",
                "rules:\n  - id: first\n    expression: exec.file.name == \"x\"\n    action: kill\n",
            ),
        )
        .unwrap();
        assert!(
            learned.under(&reloaded).all().is_empty(),
            "no longer listed"
        );
        learned.learn(
            &policy,
            &response("x.example-miner.test", &[("127.0.0.79", 300)]),
            0,
        );
        let both = enforcer_policy::load_str(
            "p.yaml",
            &POLICY.replace(
                "rules:\n",
                "rules:\n  - id: first\n    expression: exec.file.name == \"x\"\n    action: kill\n",
            ),
        )
        .unwrap();
        let mut under = learned.under(&both);
        let mut all = under.all();
        all.sort();
        assert_eq!(
            all,
            vec![(pool, vec![1]), (other, vec![1])],
            "rule 0 is now 1"
        );
        assert_eq!(under.name(&other), Some("x.example-miner.test"));
        assert!(under.expire(119_000_000_000).is_empty());
        assert_eq!(
            under.expire(121_000_000_000),
            vec![pool],
            "expiries are kept"
        );
    }

    #[test]
    fn short_ttls_are_held_for_the_minimum_and_the_table_is_bounded() {
        let policy = enforcer_policy::load_str("p.yaml", POLICY).unwrap();
        let mut learned = Learned::default();
        let ip: IpAddr = "127.0.0.78".parse().unwrap();
        learned.learn(
            &policy,
            &response("x.example-miner.test", &[("127.0.0.78", 0)]),
            0,
        );
        assert!(learned.expire(MIN_TTL_NS - 1).is_empty());
        assert_eq!(learned.expire(MIN_TTL_NS), vec![ip]);
        for i in 0..(u32::try_from(MAX_LEARNED).unwrap() + 10) {
            let addr = std::net::Ipv4Addr::from(0x0a00_0000 + i).to_string();
            learned.learn(
                &policy,
                &response("y.example-miner.test", &[(&addr, 300)]),
                u64::from(i),
            );
        }
        assert_eq!(learned.by_ip.len(), MAX_LEARNED);
        // The soonest to expire (the first learned) made room.
        assert!(learned.rules(&"10.0.0.0".parse().unwrap()).is_empty());
        assert_eq!(learned.rules(&"10.0.40.9".parse().unwrap()), vec![0]);
    }
}
