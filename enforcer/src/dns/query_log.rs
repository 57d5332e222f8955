//! Attribution of DNS responses: the kernel copies a response at cgroup ingress, outside the
//! receiving process's context, so the daemon pairs it with the query it answers. Each query
//! event is remembered by (transaction id, question name, server address) with the enriched
//! `process` object it had; a response with the same three is given that `process`.
//!
//! Bounded: at most [`MAX_PENDING`] queries are remembered, each for at most [`MAX_AGE_NS`];
//! the oldest go first. A response is attributed once (its query is forgotten then), so a
//! duplicate answer is reported without a process rather than twice with one.

use std::collections::{HashMap, VecDeque};

use serde_json::Value;

/// Queries remembered at most.
pub(super) const MAX_PENDING: usize = 4096;
/// How long a query waits for its response (kernel boot-clock nanoseconds).
pub(super) const MAX_AGE_NS: u64 = 30_000_000_000;

/// What pairs a response with its query.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct QueryKey {
    id: u64,
    name: String,
    server: String,
}

impl QueryKey {
    /// The key of a DNS event (`/dns/id`, `/dns/question/name`, `/dns/server/ip`), if it has all
    /// three.
    fn of(event: &Value) -> Option<Self> {
        Some(Self {
            id: event.pointer("/dns/id")?.as_u64()?,
            name: event.pointer("/dns/question/name")?.as_str()?.to_owned(),
            server: event.pointer("/dns/server/ip")?.as_str()?.to_owned(),
        })
    }
}

/// Recent queries, by [`QueryKey`].
#[derive(Debug, Default)]
pub struct QueryLog {
    pending: HashMap<QueryKey, (u64, Value)>,
    /// Insertion order, for expiry (entries already answered are skipped).
    order: VecDeque<(u64, QueryKey)>,
}

impl QueryLog {
    /// Remembers a query event (its `process` object) seen at `now_ns`.
    pub fn remember(&mut self, event: &Value, now_ns: u64) {
        self.expire(now_ns);
        let (Some(key), Some(process)) = (QueryKey::of(event), event.get("process")) else {
            return;
        };
        while self.pending.len() >= MAX_PENDING {
            let Some((at, old)) = self.order.pop_front() else {
                break;
            };
            if self.pending.get(&old).is_some_and(|(t, _)| *t == at) {
                self.pending.remove(&old);
            }
        }
        self.order.push_back((now_ns, key.clone()));
        self.pending.insert(key, (now_ns, process.clone()));
    }

    /// Gives a response event the `process` of the query it answers, when one is remembered;
    /// returns whether it did. `/dns/query_age_us` says how long the answer took.
    pub fn attribute(&mut self, event: &mut Value, now_ns: u64) -> bool {
        self.expire(now_ns);
        let Some(key) = QueryKey::of(event) else {
            return false;
        };
        let Some((asked_ns, process)) = self.pending.remove(&key) else {
            return false;
        };
        let Value::Object(map) = event else {
            return false;
        };
        map.insert("process".into(), process);
        if let Some(Value::Object(dns)) = map.get_mut("dns") {
            dns.insert(
                "query_age_us".into(),
                Value::from(now_ns.saturating_sub(asked_ns) / 1000),
            );
        }
        true
    }

    /// Queries remembered now.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether none is remembered.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    fn expire(&mut self, now_ns: u64) {
        while let Some((at, _)) = self.order.front() {
            if now_ns.saturating_sub(*at) <= MAX_AGE_NS && self.order.len() <= 2 * MAX_PENDING {
                break;
            }
            if let Some((at, key)) = self.order.pop_front()
                && self.pending.get(&key).is_some_and(|(t, _)| *t == at)
            {
                self.pending.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn query(id: u64, name: &str, pid: u64) -> Value {
        json!({"kind": "dns", "process": {"pid": pid},
               "dns": {"id": id, "question": {"name": name}, "server": {"ip": "127.0.0.1"}}})
    }

    fn response(id: u64, name: &str) -> Value {
        json!({"kind": "dns",
               "dns": {"id": id, "is_response": true, "question": {"name": name},
                       "server": {"ip": "127.0.0.1"}}})
    }

    #[test]
    fn a_response_gets_the_process_of_its_query_once() {
        let mut log = QueryLog::default();
        log.remember(&query(7, "pool.test", 42), 1_000);
        let mut other = response(8, "pool.test");
        assert!(!log.attribute(&mut other, 2_000), "another id");
        let mut r = response(7, "pool.test");
        assert!(log.attribute(&mut r, 501_000));
        assert_eq!(r["process"]["pid"], 42);
        assert_eq!(r["dns"]["query_age_us"], 500);
        let mut again = response(7, "pool.test");
        assert!(!log.attribute(&mut again, 502_000), "attributed once");
        assert!(again.get("process").is_none());
    }

    #[test]
    fn old_queries_expire_and_the_log_stays_bounded() {
        let mut log = QueryLog::default();
        log.remember(&query(1, "a.test", 1), 0);
        let mut late = response(1, "a.test");
        assert!(!log.attribute(&mut late, MAX_AGE_NS + 1));
        for i in 0..(MAX_PENDING as u64 + 100) {
            log.remember(&query(i, "b.test", i), MAX_AGE_NS + 2);
        }
        assert_eq!(log.len(), MAX_PENDING);
        let mut newest = response(MAX_PENDING as u64 + 99, "b.test");
        assert!(log.attribute(&mut newest, MAX_AGE_NS + 3));
        let mut evicted = response(0, "b.test");
        assert!(!log.attribute(&mut evicted, MAX_AGE_NS + 3));
    }

    #[test]
    fn events_without_the_key_are_ignored() {
        let mut log = QueryLog::default();
        log.remember(&json!({"kind": "dns", "process": {"pid": 1}}), 0);
        assert!(log.is_empty());
        let mut r = json!({"kind": "dns", "dns": {"decode_error": "short"}});
        assert!(!log.attribute(&mut r, 0));
    }
}
