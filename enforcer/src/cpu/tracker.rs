//! Sustained-usage tracking, without any I/O: fed cumulative CPU-time readings of processes or
//! cgroups once per sampling round, it computes each one's usage since the previous round and
//! how long it has stayed at or above the floor.
//!
//! - **Rate**: the CPU time used between two readings of the same key over the wall-clock time
//!   between them ([`Capacity::percent`]). The first reading of a key only sets its baseline.
//!   A reading lower than the previous one (a counter that went back: a cgroup recreated under
//!   the same id) resets the baseline.
//! - **Sustained window**: consecutive rounds at or above `floor` add their span to the window
//!   and their CPU time to its total; a round below the floor empties it. The reported usage
//!   is the mean over the window, so `cpu.usage.percent >= 90 && cpu.window >= 60s` reads "90%
//!   of the machine on average over at least 60 s, never below the floor in between".
//! - **Identity**: the key carries the identity (pid and start time for a process, so a reused
//!   pid is a new key; the cgroup id for a cgroup). A key not read in a round is gone (the
//!   process exited) and is dropped by [`Tracker::end_round`].
//! - **Bound**: at most `capacity` keys. A new key that finds the table full first evicts a
//!   batch of `max(1, capacity / 64)` keys: those outside a sustained window first, the idlest
//!   first; keys with no rate yet and keys in a window are kept while others remain. When
//!   every key is in a window, the new key is not tracked (counted in [`Tracker::dropped`]).

use std::collections::HashMap;
use std::hash::Hash;

use super::usage::Capacity;

/// One reading: cumulative CPU time and when it was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reading {
    /// CPU time used since the process (cgroup) started, nanoseconds.
    pub cpu_ns: u64,
    /// When it was read, nanoseconds on a monotonic clock (CLOCK_BOOTTIME).
    pub at_ns: u64,
}

/// A key at or above the floor in the last round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sustained {
    /// Mean usage over the window, percent of the capacity.
    pub percent: i64,
    /// Usage over the last round only.
    pub last_percent: i64,
    /// How long the key has stayed at or above the floor, nanoseconds.
    pub window_ns: u64,
}

#[derive(Clone, Copy, Debug)]
struct State {
    last: Reading,
    /// Usage of the last round; `None` until a second reading.
    last_percent: Option<i64>,
    window_ns: u64,
    window_cpu_ns: u64,
    round: u64,
}

/// Per-key usage and sustained windows (see the module documentation).
#[derive(Debug)]
pub struct Tracker<K> {
    states: HashMap<K, State>,
    capacity: usize,
    floor: i64,
    machine: Capacity,
    round: u64,
    dropped: u64,
}

impl<K: Hash + Eq + Clone> Tracker<K> {
    /// A tracker of at most `capacity` keys (at least 1), flagging usage at or above `floor`
    /// percent of `machine`.
    pub fn new(capacity: usize, floor: i64, machine: Capacity) -> Self {
        Self {
            states: HashMap::new(),
            capacity: capacity.max(1),
            floor,
            machine,
            round: 0,
            dropped: 0,
        }
    }

    /// Keys tracked.
    pub fn len(&self) -> usize {
        self.states.len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.states.is_empty()
    }

    /// New keys not tracked because every tracked key was in a sustained window.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The usage of `key` in its last round, once it has one.
    pub fn last_percent(&self, key: &K) -> Option<i64> {
        self.states.get(key).and_then(|s| s.last_percent)
    }

    /// Starts a sampling round: every key read before [`Tracker::end_round`] stays.
    pub fn begin_round(&mut self) {
        self.round += 1;
    }

    /// Drops the keys not read since [`Tracker::begin_round`] (exited processes, removed
    /// cgroups); returns how many.
    pub fn end_round(&mut self) -> usize {
        let before = self.states.len();
        let round = self.round;
        self.states.retain(|_, s| s.round == round);
        before - self.states.len()
    }

    /// Feeds one reading of `key`; returns its window when it is at or above the floor.
    pub fn observe(&mut self, key: &K, reading: Reading) -> Option<Sustained> {
        let round = self.round;
        let Some(state) = self.states.get_mut(key) else {
            self.insert(key.clone(), reading);
            return None;
        };
        state.round = round;
        let prev = state.last;
        state.last = reading;
        if reading.cpu_ns < prev.cpu_ns || reading.at_ns <= prev.at_ns {
            // A counter that went back, or a clock that did not move: a new baseline.
            state.last_percent = None;
            state.window_ns = 0;
            state.window_cpu_ns = 0;
            return None;
        }
        let cpu = reading.cpu_ns - prev.cpu_ns;
        let wall = reading.at_ns - prev.at_ns;
        let percent = self.machine.percent(cpu, wall)?;
        state.last_percent = Some(percent);
        if percent < self.floor {
            state.window_ns = 0;
            state.window_cpu_ns = 0;
            return None;
        }
        state.window_ns = state.window_ns.saturating_add(wall);
        state.window_cpu_ns = state.window_cpu_ns.saturating_add(cpu);
        Some(Sustained {
            percent: self
                .machine
                .percent(state.window_cpu_ns, state.window_ns)
                .unwrap_or(percent),
            last_percent: percent,
            window_ns: state.window_ns,
        })
    }

    fn insert(&mut self, key: K, reading: Reading) {
        if self.states.len() >= self.capacity {
            self.evict();
        }
        if self.states.len() >= self.capacity {
            self.dropped += 1;
            return;
        }
        self.states.insert(
            key,
            State {
                last: reading,
                last_percent: None,
                window_ns: 0,
                window_cpu_ns: 0,
                round: self.round,
            },
        );
    }

    /// Evicts up to a batch of keys outside a window that have a rate, idlest first.
    fn evict(&mut self) {
        let mut idle: Vec<(i64, K)> = self
            .states
            .iter()
            .filter(|(_, s)| s.window_ns == 0)
            .filter_map(|(k, s)| s.last_percent.map(|p| (p, k.clone())))
            .collect();
        let batch = (self.capacity / 64).max(1).min(idle.len());
        if batch == 0 {
            return;
        }
        if batch < idle.len() {
            idle.select_nth_unstable_by_key(batch - 1, |(p, _)| *p);
        }
        for (_, key) in idle.into_iter().take(batch) {
            self.states.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const S: u64 = 1_000_000_000;

    fn r(cpu_s: f64, at_s: u64) -> Reading {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let cpu_ns = (cpu_s * 1e9) as u64;
        Reading {
            cpu_ns,
            at_ns: at_s * S,
        }
    }

    /// A tracker on a 2-core machine (capacity one core) with a floor of 50%.
    fn two_cores() -> Tracker<u32> {
        Tracker::new(16, 50, Capacity::of_machine(2))
    }

    fn round(t: &mut Tracker<u32>, readings: &[(u32, Reading)]) -> Vec<(u32, Sustained)> {
        t.begin_round();
        let out = readings
            .iter()
            .filter_map(|(k, r)| t.observe(k, *r).map(|s| (*k, s)))
            .collect();
        t.end_round();
        out
    }

    #[test]
    fn first_reading_is_a_baseline_then_windows_grow() {
        let mut t = two_cores();
        assert!(round(&mut t, &[(1, r(10.0, 100))]).is_empty());
        let hot = round(&mut t, &[(1, r(11.0, 101))]);
        assert_eq!(
            hot,
            [(
                1,
                Sustained {
                    percent: 100,
                    last_percent: 100,
                    window_ns: S
                }
            )]
        );
        let hot = round(&mut t, &[(1, r(11.6, 102))]);
        assert_eq!(hot[0].1.window_ns, 2 * S);
        assert_eq!(hot[0].1.last_percent, 60);
        assert_eq!(hot[0].1.percent, 80, "mean of 100 and 60");
    }

    #[test]
    fn a_round_below_the_floor_empties_the_window() {
        let mut t = two_cores();
        round(&mut t, &[(1, r(0.0, 0))]);
        round(&mut t, &[(1, r(1.0, 1))]);
        round(&mut t, &[(1, r(2.0, 2))]);
        assert!(
            round(&mut t, &[(1, r(2.4, 3))]).is_empty(),
            "40% is below 50"
        );
        let hot = round(&mut t, &[(1, r(3.4, 4))]);
        assert_eq!(hot[0].1.window_ns, S, "the window starts again");
    }

    #[test]
    fn usage_is_relative_to_n_minus_one_cores() {
        let mut t: Tracker<u32> = Tracker::new(16, 90, Capacity::of_machine(8));
        t.begin_round();
        t.observe(&1, r(0.0, 0));
        t.observe(&2, r(0.0, 0));
        t.begin_round();
        // 7 cores for 10 s: 100%; one core: 14%.
        assert_eq!(t.observe(&1, r(70.0, 10)).unwrap().percent, 100);
        assert_eq!(t.observe(&2, r(10.0, 10)), None);
    }

    #[test]
    fn gone_keys_are_dropped_and_a_new_identity_starts_over() {
        // Keys as (pid, start): pid 7 reused with a later start is another key.
        let mut t: Tracker<(u32, u64)> = Tracker::new(16, 50, Capacity::of_machine(2));
        t.begin_round();
        t.observe(&(7, 1), r(0.0, 0));
        t.end_round();
        t.begin_round();
        assert!(t.observe(&(7, 1), r(1.0, 1)).is_some());
        t.end_round();
        t.begin_round();
        // The old process exited; the new one's 5 s of CPU are not a rate against the old one.
        assert_eq!(t.observe(&(7, 2), r(5.0, 2)), None);
        assert_eq!(t.end_round(), 1, "(7, 1) dropped");
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn a_counter_that_goes_back_resets_the_baseline() {
        let mut t = two_cores();
        round(&mut t, &[(1, r(10.0, 0))]);
        assert!(!round(&mut t, &[(1, r(11.0, 1))]).is_empty());
        assert!(round(&mut t, &[(1, r(0.5, 2))]).is_empty());
        let hot = round(&mut t, &[(1, r(1.5, 3))]);
        assert_eq!(hot[0].1.window_ns, S, "window restarted at the reset");
        assert!(
            round(&mut t, &[(1, r(2.0, 3))]).is_empty(),
            "no time passed"
        );
    }

    #[test]
    fn the_table_is_bounded_and_keeps_hot_and_new_keys() {
        let mut t: Tracker<u32> = Tracker::new(4, 50, Capacity::of_machine(2));
        let keys = [1, 2, 3, 4];
        t.begin_round();
        for k in keys {
            t.observe(&k, r(0.0, 0));
        }
        t.begin_round();
        // 1 is hot, 2..4 idle with rates (2 the idlest).
        t.observe(&1, r(1.0, 1));
        t.observe(&2, r(0.0, 1));
        t.observe(&3, r(0.2, 1));
        t.observe(&4, r(0.1, 1));
        // A new key evicts one idle key (batch 1 for capacity 4): the idlest, 2.
        t.observe(&5, r(0.0, 1));
        assert_eq!(t.len(), 4);
        t.begin_round();
        assert!(t.observe(&1, r(2.0, 2)).is_some(), "the hot key stayed");
        assert!(t.observe(&2, r(0.0, 2)).is_none());
        assert_eq!(
            t.len(),
            4,
            "2 came back as a new key, evicting another idle key"
        );
        assert!(t.len() <= 4);
        assert_eq!(t.dropped(), 0);
    }

    #[test]
    fn a_full_table_of_windows_drops_new_keys() {
        let mut t: Tracker<u32> = Tracker::new(2, 50, Capacity::of_machine(2));
        round(&mut t, &[(1, r(0.0, 0)), (2, r(0.0, 0))]);
        round(&mut t, &[(1, r(1.0, 1)), (2, r(1.0, 1))]);
        t.begin_round();
        t.observe(&1, r(2.0, 2));
        t.observe(&2, r(2.0, 2));
        assert_eq!(t.observe(&3, r(0.0, 2)), None);
        assert_eq!(t.len(), 2);
        assert_eq!(t.dropped(), 1);
    }
}
