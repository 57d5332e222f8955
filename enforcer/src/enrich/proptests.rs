//! Property tests of the process cache invariants over random exec/fork/exit/look-up
//! sequences on a few pids (so PID reuse, stale events and parent loops are frequent):
//! the capacity is never exceeded, the ancestor walk terminates within its bound without
//! repeating a pid, and a record never mixes two incarnations.

#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use proptest::prelude::*;

use super::process_cache::{CacheConfig, ExecInfo, MAX_DEPTH_LIMIT, ProcessCache};

const TICK: u64 = 10_000_000;

#[derive(Clone, Debug)]
enum Op {
    Exec {
        tgid: u32,
        ppid: u32,
        start: u64,
        n: u8,
    },
    Fork {
        parent: u32,
        child: u32,
        start: u64,
    },
    Exit {
        tgid: u32,
    },
    Lookup {
        tgid: u32,
        start: u64,
    },
    LookupAt {
        tgid: u32,
        at: u64,
    },
    Ancestors {
        tgid: u32,
        depth: usize,
    },
}

/// Start times: a few ticks, anywhere inside the tick.
fn start() -> impl Strategy<Value = u64> {
    (0u64..6, 0u64..TICK).prop_map(|(t, j)| t * TICK + j)
}

fn op() -> impl Strategy<Value = Op> {
    let pid = 0u32..10;
    prop_oneof![
        (pid.clone(), pid.clone(), start(), any::<u8>()).prop_map(|(tgid, ppid, start, n)| {
            Op::Exec {
                tgid,
                ppid,
                start,
                n,
            }
        }),
        (pid.clone(), pid.clone(), start()).prop_map(|(parent, child, start)| Op::Fork {
            parent,
            child,
            start
        }),
        pid.clone().prop_map(|tgid| Op::Exit { tgid }),
        (pid.clone(), start()).prop_map(|(tgid, start)| Op::Lookup { tgid, start }),
        (pid.clone(), start()).prop_map(|(tgid, at)| Op::LookupAt { tgid, at }),
        (pid, 0usize..100).prop_map(|(tgid, depth)| Op::Ancestors { tgid, depth }),
    ]
}

/// What a record of incarnation (tgid, tick) may hold as its exe: what an exec of that
/// incarnation set, what a fork of it inherited, or nothing.
type Allowed = HashMap<(u32, u64), HashSet<String>>;

fn apply(c: &mut ProcessCache, allowed: &mut Allowed, op: &Op) -> Result<(), TestCaseError> {
    let tick_of = |ns: u64| ns / TICK;
    match *op {
        Op::Exec {
            tgid,
            ppid,
            start,
            n,
        } => {
            let exe = format!("/bin/{tgid}-{}-{n}", tick_of(start));
            allowed
                .entry((tgid, tick_of(start)))
                .or_default()
                .insert(exe.clone());
            let before = c.peek(tgid).map(|r| tick_of(r.start_ns));
            c.on_exec(ExecInfo {
                tgid,
                ppid,
                start_ns: start,
                argv: vec![exe.clone(), n.to_string()],
                exe,
                comm: format!("c{n}"),
                uid: u32::from(n),
                cgroup_id: None,
                cgroup_path: None,
            });
            // A late event of an older incarnation leaves the newer record alone.
            if let Some(b) = before
                && tick_of(start) < b
            {
                prop_assert_eq!(c.peek(tgid).map(|r| tick_of(r.start_ns)), Some(b));
            }
        }
        Op::Fork {
            parent,
            child,
            start,
        } => {
            if let Some(p) = c.peek(parent) {
                let inherited = p.exe.clone();
                allowed
                    .entry((child, tick_of(start)))
                    .or_default()
                    .insert(inherited);
            }
            c.on_fork(parent, child, start);
        }
        Op::Exit { tgid } => {
            c.on_exit(tgid, 0, 0);
        }
        Op::Lookup { tgid, start } => {
            if let Some(r) = c.lookup(tgid, start) {
                prop_assert_eq!(r.tgid, tgid);
                prop_assert_eq!(tick_of(r.start_ns), tick_of(start));
            }
        }
        Op::LookupAt { tgid, at } => {
            if let Some(r) = c.lookup_at(tgid, at) {
                prop_assert_eq!(r.tgid, tgid);
                prop_assert!(tick_of(r.start_ns) <= tick_of(at));
            }
        }
        Op::Ancestors { tgid, depth } => {
            let child_start = c.peek(tgid).map(|r| r.start_ns);
            let chain = c.ancestor_pids(tgid, depth);
            prop_assert!(chain.len() <= depth.min(MAX_DEPTH_LIMIT));
            let unique: HashSet<_> = chain.iter().collect();
            prop_assert_eq!(unique.len(), chain.len());
            prop_assert!(!chain.contains(&tgid));
            prop_assert!(!chain.contains(&0));
            if let Some(one) = chain.iter().position(|&p| p == 1) {
                prop_assert_eq!(one, chain.len() - 1);
            }
            // Every ancestor started no later than its child.
            let mut prev = child_start.map(tick_of);
            for pid in &chain {
                let s = tick_of(c.peek(*pid).unwrap().start_ns);
                if let Some(p) = prev {
                    prop_assert!(s <= p);
                }
                prev = Some(s);
            }
        }
    }
    Ok(())
}

fn check_records(
    c: &ProcessCache,
    capacity: usize,
    allowed: &Allowed,
) -> Result<(), TestCaseError> {
    prop_assert!(c.len() <= capacity.max(1));
    for r in c.records() {
        // Never merged: exe and argv come from one exec or fork of this very incarnation.
        if !r.exe.is_empty() {
            let ok = allowed
                .get(&(r.tgid, r.start_ns / TICK))
                .is_some_and(|s| s.contains(&r.exe));
            prop_assert!(ok, "record {:?} holds another incarnation's exe", r);
            prop_assert_eq!(r.argv.first(), Some(&r.exe));
        } else {
            prop_assert!(r.argv.is_empty());
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn cache_invariants_hold(
        capacity in 0usize..12,
        expire_at_once in any::<bool>(),
        ops in proptest::collection::vec(op(), 0..80),
    ) {
        let mut c = ProcessCache::new(CacheConfig {
            capacity,
            exit_grace: if expire_at_once { Duration::ZERO } else { Duration::from_secs(3600) },
            procfs_root: "/nonexistent-procfs-root".into(),
            tick_ns: TICK,
        });
        let mut allowed = Allowed::new();
        for op in &ops {
            apply(&mut c, &mut allowed, op)?;
            check_records(&c, capacity, &allowed)?;
        }
    }
}
