//! The daemon-written part of the exec plan: `EXEC_INODE_PLAN`, verdicts by file identity.
//!
//! The policy text cannot name inodes; the daemon learns them. When the SHA-256 of an executed
//! file matches a deny or kill rule, the file's identity as the kernel reported it (inode,
//! change time, device) gets that rule's verdict, so the next exec of the same content is
//! stopped in the exec hook with no userspace round trip. The key includes the change time, so
//! a written, truncated or replaced file never matches an old entry.

use std::collections::HashSet;

use aya::{
    Ebpf,
    maps::{HashMap, MapData},
};
use enforcer_common::{
    maps::EXEC_INODE_PLAN,
    plan::{ACTION_DENY, InodeKey, PLAN_FLAG_MONITOR, PlanVerdict},
};
use enforcer_policy::RuleInfo;

use super::plan_sync::{PlanError, merge_with};

/// Where inode verdicts are stored: the kernel map, or a fake in tests.
pub trait InodeMap: std::fmt::Debug {
    /// Writes (or overwrites) the verdict of `key`.
    fn put(&mut self, key: InodeKey, verdict: PlanVerdict) -> Result<(), PlanError>;
    /// Every entry.
    fn entries(&self) -> Vec<(InodeKey, PlanVerdict)>;
    /// Removes the entry of `key`.
    fn remove(&mut self, key: &InodeKey) -> Result<(), PlanError>;
}

impl InodeMap for HashMap<MapData, InodeKey, PlanVerdict> {
    fn put(&mut self, key: InodeKey, verdict: PlanVerdict) -> Result<(), PlanError> {
        self.insert(key, verdict, 0)
            .map_err(|source| PlanError::Map {
                map: EXEC_INODE_PLAN,
                source,
            })
    }

    fn entries(&self) -> Vec<(InodeKey, PlanVerdict)> {
        self.iter().filter_map(Result::ok).collect()
    }

    fn remove(&mut self, key: &InodeKey) -> Result<(), PlanError> {
        HashMap::remove(self, key).map_err(|source| PlanError::Map {
            map: EXEC_INODE_PLAN,
            source,
        })
    }
}

/// The inode verdicts of one policy generation.
#[derive(Debug)]
pub struct InodePlan {
    map: Box<dyn InodeMap>,
    generation: u32,
}

impl InodePlan {
    /// Takes `EXEC_INODE_PLAN` out of the loaded object.
    pub fn take(ebpf: &mut Ebpf, generation: u32) -> Result<Self, PlanError> {
        let map = ebpf
            .take_map(EXEC_INODE_PLAN)
            .ok_or(PlanError::MissingMap(EXEC_INODE_PLAN))?;
        let map: HashMap<MapData, InodeKey, PlanVerdict> =
            HashMap::try_from(map).map_err(|source| PlanError::Map {
                map: EXEC_INODE_PLAN,
                source,
            })?;
        Ok(Self::with_map(Box::new(map), generation))
    }

    /// An inode plan stored in `map`.
    pub fn with_map(map: Box<dyn InodeMap>, generation: u32) -> Self {
        Self { map, generation }
    }

    /// Gives `key` the merged verdict of the rules `indices` (those that kill; the `disarmed`
    /// ones as monitor rules). Returns the verdict written, `None` when no rule kills.
    ///
    /// The entry's action is always `deny`: the content is known, so its next exec is refused
    /// before the new image exists (`-EPERM` in the lsm tier; the signal tier turns a deny into
    /// SIGKILL at `sched_process_exec`, before the program runs). Killing the caller of execve
    /// instead would hide that refusal and hit the parent process that tried it.
    pub fn judge(
        &mut self,
        key: InodeKey,
        rules: &[RuleInfo],
        indices: &[u32],
        disarmed: &HashSet<u32>,
    ) -> Result<Option<PlanVerdict>, PlanError> {
        let Some(merged) = merge_with(rules, indices, self.generation, disarmed) else {
            return Ok(None);
        };
        let verdict = PlanVerdict {
            actions: ACTION_DENY,
            ..merged
        };
        self.map.put(key, verdict)?;
        Ok(Some(verdict))
    }

    /// Starts policy generation `generation` (a reload): every verdict of an earlier one goes,
    /// since the rules and lists behind it may have changed; returns how many. The daemon's
    /// hash cache still knows those files, so the next exec of one is judged at once under the
    /// new rules (and its identity written again when they deny it).
    pub fn renew(&mut self, generation: u32) -> Result<usize, PlanError> {
        self.generation = generation;
        let mut removed = 0;
        for (key, verdict) in self.map.entries() {
            if verdict.generation != generation {
                self.map.remove(&key)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Rewrites the entries named by a rule in `disarmed` in monitor mode (the kill breaker
    /// disarmed it); returns how many.
    pub fn disarm(&mut self, disarmed: &HashSet<u32>) -> Result<usize, PlanError> {
        let mut n = 0;
        for (key, verdict) in self.map.entries() {
            if disarmed.contains(&verdict.rule_index) && verdict.flags & PLAN_FLAG_MONITOR == 0 {
                let verdict = PlanVerdict {
                    flags: verdict.flags | PLAN_FLAG_MONITOR,
                    ..verdict
                };
                self.map.put(key, verdict)?;
                n += 1;
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! An in-memory inode map.
    use std::{cell::RefCell, rc::Rc};

    use super::*;

    /// Entries shared with the test that made the map.
    #[derive(Clone, Debug, Default)]
    pub(crate) struct FakeInodeMap(pub(crate) Rc<RefCell<Vec<(InodeKey, PlanVerdict)>>>);

    impl InodeMap for FakeInodeMap {
        fn put(&mut self, key: InodeKey, verdict: PlanVerdict) -> Result<(), PlanError> {
            let mut entries = self.0.borrow_mut();
            entries.retain(|(k, _)| *k != key);
            entries.push((key, verdict));
            Ok(())
        }

        fn entries(&self) -> Vec<(InodeKey, PlanVerdict)> {
            self.0.borrow().clone()
        }

        fn remove(&mut self, key: &InodeKey) -> Result<(), PlanError> {
            self.0.borrow_mut().retain(|(k, _)| k != key);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::{testing::FakeInodeMap, *};

    #[test]
    fn matches_are_written_and_disarmed_rules_downgraded() {
        let policy = enforcer_policy::load_str(
            "p.yaml",
            "rules:\n  - id: alert\n    expression: exec.file.hash.sha256 == \"00\"\n    action: alert\n  - id: kill\n    expression: exec.file.hash.sha256 == \"00\"\n    action: kill\n",
        )
        .unwrap();
        let fake = FakeInodeMap::default();
        let mut plan = InodePlan::with_map(Box::new(fake.clone()), 4);
        let key = InodeKey {
            ino: 12,
            ctime_sec: 1,
            ctime_nsec: 2,
            dev: 3,
        };
        let none = HashSet::new();
        assert_eq!(plan.judge(key, policy.rules(), &[0], &none).unwrap(), None);
        assert!(fake.0.borrow().is_empty(), "alerts stay in userspace");
        let v = plan
            .judge(key, policy.rules(), &[0, 1], &none)
            .unwrap()
            .unwrap();
        assert_eq!(
            (v.rule_index, v.actions, v.flags, v.generation),
            (1, ACTION_DENY, 0, 4)
        );
        assert_eq!(plan.disarm(&HashSet::from([0])).unwrap(), 0);
        assert_eq!(plan.disarm(&HashSet::from([1])).unwrap(), 1);
        assert_eq!(fake.0.borrow()[0].1.flags, PLAN_FLAG_MONITOR);
    }

    #[test]
    fn a_new_generation_drops_the_verdicts_of_earlier_ones() {
        let policy = enforcer_policy::load_str(
            "p.yaml",
            "rules:\n  - id: kill\n    expression: exec.file.hash.sha256 == \"00\"\n    action: kill\n",
        )
        .unwrap();
        let fake = FakeInodeMap::default();
        let mut plan = InodePlan::with_map(Box::new(fake.clone()), 1);
        let key = |ino| InodeKey {
            ino,
            ctime_sec: 1,
            ctime_nsec: 2,
            dev: 3,
        };
        let none = HashSet::new();
        plan.judge(key(1), policy.rules(), &[0], &none).unwrap();
        plan.judge(key(2), policy.rules(), &[0], &none).unwrap();
        assert_eq!(plan.renew(2).unwrap(), 2);
        assert!(fake.0.borrow().is_empty());
        let v = plan.judge(key(3), policy.rules(), &[0], &none).unwrap();
        assert_eq!(
            v.map(|v| v.generation),
            Some(2),
            "written under the new one"
        );
        assert_eq!(plan.renew(2).unwrap(), 0, "its own entries stay");
        assert_eq!(fake.0.borrow().len(), 1);
    }
}
