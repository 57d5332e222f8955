//! The per-rule kill breaker: a rule that would kill more than `max_targets` distinct binaries
//! (by executable path), or more than `max_targets` distinct cgroups (containers), within
//! `window` is disarmed: it kills nothing more until the engine restarts (its matches are still
//! recorded). A rule that keeps killing one miner binary in one container never trips it.
//!
//! Pure logic: time comes from a [`Clock`] the caller injects, so tests move time by hand.
//! Kills the kernel performed are counted too ([`Breaker::admit`] after the fact); the caller
//! then downgrades a tripped rule in the kernel plan.

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

/// A source of monotonic time (since an arbitrary origin).
pub trait Clock: std::fmt::Debug {
    /// Now.
    fn now(&self) -> Duration;
}

/// The process's monotonic clock.
#[derive(Clone, Copy, Debug)]
pub struct MonotonicClock {
    origin: Instant,
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self {
            origin: Instant::now(),
        }
    }
}

impl Clock for MonotonicClock {
    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

/// How widely a rule may kill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most distinct binaries, and most distinct cgroups, killed within the window.
    pub max_targets: usize,
    /// The sliding window.
    pub window: Duration,
}

impl Limits {
    /// The engine's defaults: 5 targets in 60 s.
    pub const DEFAULT: Limits = Limits {
        max_targets: 5,
        window: Duration::from_secs(60),
    };

    /// These limits with a rule's override applied.
    pub fn with_override(self, rule: Option<enforcer_policy::BreakerOverride>) -> Limits {
        let Some(rule) = rule else {
            return self;
        };
        Limits {
            max_targets: rule.max_targets.map_or(self.max_targets, |n| n as usize),
            window: rule.window.unwrap_or(self.window),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Why a rule was disarmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trip {
    /// Distinct binaries in the window, the new one included.
    pub binaries: usize,
    /// Distinct cgroups in the window, the new one included.
    pub cgroups: usize,
    /// The rule's limits.
    pub limits: Limits,
}

/// The breaker's answer to one kill.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Within the limits: kill.
    Allowed,
    /// This kill would exceed the limits: the rule is disarmed from now on (this kill is not
    /// performed when it is still to come).
    Tripped(Trip),
    /// The rule was disarmed earlier.
    Disarmed,
}

/// What a rule killed recently: the last time each binary and each cgroup was killed.
#[derive(Debug, Default)]
struct Recent {
    binaries: HashMap<String, Duration>,
    cgroups: HashMap<u64, Duration>,
}

/// The breakers of every rule.
#[derive(Debug)]
pub struct Breaker<C: Clock = MonotonicClock> {
    defaults: Limits,
    overrides: HashMap<u32, Limits>,
    recent: HashMap<u32, Recent>,
    disarmed: HashSet<u32>,
    clock: C,
}

impl<C: Clock> Breaker<C> {
    /// Breakers with `defaults` for every rule, timed by `clock`.
    pub fn new(defaults: Limits, clock: C) -> Self {
        Self {
            defaults,
            overrides: HashMap::new(),
            recent: HashMap::new(),
            disarmed: HashSet::new(),
            clock,
        }
    }

    /// Rule `rule` uses `limits` instead of the defaults.
    pub fn set_limits(&mut self, rule: u32, limits: Limits) {
        self.overrides.insert(rule, limits);
    }

    /// The limits of `rule`.
    pub fn limits(&self, rule: u32) -> Limits {
        self.overrides.get(&rule).copied().unwrap_or(self.defaults)
    }

    /// Whether `rule` is disarmed.
    pub fn is_disarmed(&self, rule: u32) -> bool {
        self.disarmed.contains(&rule)
    }

    /// Every disarmed rule.
    pub fn disarmed(&self) -> &HashSet<u32> {
        &self.disarmed
    }

    /// Moves every rule's state to its index under a reloaded policy (`to`: the new index of
    /// an old one, `None` for a rule the reload removed, whose state goes) and replaces the
    /// limit overrides with `overrides`. A disarmed rule stays disarmed, and the kills counted
    /// toward its limit still count, as long as its id is in the policy.
    pub fn rekey(&mut self, to: impl Fn(u32) -> Option<u32>, overrides: HashMap<u32, Limits>) {
        self.overrides = overrides;
        self.recent = std::mem::take(&mut self.recent)
            .into_iter()
            .filter_map(|(rule, recent)| Some((to(rule)?, recent)))
            .collect();
        self.disarmed = self.disarmed.iter().filter_map(|&rule| to(rule)).collect();
    }

    /// Counts a kill by `rule` of `binary` in cgroup `cgroup` (to come, or already performed
    /// by the kernel) and says whether the rule may (still) kill.
    pub fn admit(&mut self, rule: u32, binary: &str, cgroup: u64) -> Admission {
        if self.is_disarmed(rule) {
            return Admission::Disarmed;
        }
        let limits = self.limits(rule);
        let now = self.clock.now();
        let recent = self.recent.entry(rule).or_default();
        let fresh = |at: &mut Duration| now.saturating_sub(*at) < limits.window;
        recent.binaries.retain(|_, at| fresh(at));
        recent.cgroups.retain(|_, at| fresh(at));
        recent.binaries.insert(binary.to_owned(), now);
        recent.cgroups.insert(cgroup, now);
        let (binaries, cgroups) = (recent.binaries.len(), recent.cgroups.len());
        if binaries <= limits.max_targets && cgroups <= limits.max_targets {
            return Admission::Allowed;
        }
        self.recent.remove(&rule);
        self.disarmed.insert(rule);
        Admission::Tripped(Trip {
            binaries,
            cgroups,
            limits,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::{cell::Cell, rc::Rc};

    use super::*;

    /// Time moved by the test.
    #[derive(Clone, Debug, Default)]
    struct ManualClock(Rc<Cell<Duration>>);

    impl ManualClock {
        fn advance(&self, by: Duration) {
            self.0.set(self.0.get() + by);
        }
    }

    impl Clock for ManualClock {
        fn now(&self) -> Duration {
            self.0.get()
        }
    }

    fn breaker(max: usize, window_s: u64) -> (Breaker<ManualClock>, ManualClock) {
        let clock = ManualClock::default();
        let limits = Limits {
            max_targets: max,
            window: Duration::from_secs(window_s),
        };
        (Breaker::new(limits, clock.clone()), clock)
    }

    #[test]
    fn repeats_of_one_binary_never_trip() {
        let (mut b, clock) = breaker(2, 60);
        for _ in 0..1000 {
            assert_eq!(b.admit(0, "/tmp/xmrig", 7), Admission::Allowed);
            clock.advance(Duration::from_millis(10));
        }
        assert!(!b.is_disarmed(0));
    }

    #[test]
    fn distinct_binaries_beyond_the_limit_trip() {
        let (mut b, _) = breaker(5, 60);
        for i in 0..5 {
            assert_eq!(b.admit(3, &format!("/bin/b{i}"), 7), Admission::Allowed);
        }
        assert_eq!(b.admit(3, "/bin/b0", 7), Admission::Allowed, "a repeat");
        let tripped = b.admit(3, "/bin/b5", 7);
        assert_eq!(
            tripped,
            Admission::Tripped(Trip {
                binaries: 6,
                cgroups: 1,
                limits: Limits::DEFAULT
            })
        );
        assert!(b.is_disarmed(3));
        assert_eq!(b.disarmed(), &HashSet::from([3]));
        assert_eq!(b.admit(4, "/bin/b5", 7), Admission::Allowed, "other rules");
    }

    #[test]
    fn a_reload_moves_state_by_rule_and_drops_removed_rules() {
        let (mut b, _) = breaker(2, 60);
        for i in 0..3 {
            b.admit(3, &format!("/bin/b{i}"), 7);
        }
        assert!(b.is_disarmed(3));
        b.admit(5, "/bin/one", 7);
        b.admit(5, "/bin/two", 7);
        b.admit(6, "/bin/x", 7);
        // Rule 3 is now 0, rule 5 is now 1 with its own limits, rule 6 is gone.
        let one = Limits {
            max_targets: 1,
            window: Duration::from_secs(60),
        };
        b.rekey(
            |old| match old {
                3 => Some(0),
                5 => Some(1),
                _ => None,
            },
            HashMap::from([(1, one)]),
        );
        assert_eq!(b.disarmed(), &HashSet::from([0]));
        assert_eq!(b.limits(1), one);
        assert!(
            matches!(b.admit(1, "/bin/three", 7), Admission::Tripped(_)),
            "the two kills before the reload still count"
        );
        assert_eq!(b.admit(2, "/bin/x", 7), Admission::Allowed);
        assert_eq!(b.limits(0).max_targets, 2, "defaults again");
    }

    #[test]
    fn distinct_cgroups_beyond_the_limit_trip() {
        let (mut b, _) = breaker(2, 60);
        assert_eq!(b.admit(0, "/tmp/xmrig", 100), Admission::Allowed);
        assert_eq!(b.admit(0, "/tmp/xmrig", 101), Admission::Allowed);
        assert!(matches!(
            b.admit(0, "/tmp/xmrig", 102),
            Admission::Tripped(Trip {
                binaries: 1,
                cgroups: 3,
                ..
            })
        ));
    }

    #[test]
    fn kills_older_than_the_window_do_not_count() {
        let (mut b, clock) = breaker(2, 60);
        assert_eq!(b.admit(0, "/a", 1), Admission::Allowed);
        clock.advance(Duration::from_secs(30));
        assert_eq!(b.admit(0, "/b", 2), Admission::Allowed);
        clock.advance(Duration::from_secs(30));
        // `/a` (60 s old) left the window: two distinct binaries, not three.
        assert_eq!(b.admit(0, "/c", 3), Admission::Allowed);
        clock.advance(Duration::from_secs(29));
        assert!(matches!(b.admit(0, "/d", 4), Admission::Tripped(_)));
    }

    #[test]
    fn a_repeat_refreshes_its_binary_in_the_window() {
        let (mut b, clock) = breaker(1, 10);
        assert_eq!(b.admit(0, "/a", 1), Admission::Allowed);
        clock.advance(Duration::from_secs(9));
        assert_eq!(b.admit(0, "/a", 1), Admission::Allowed);
        clock.advance(Duration::from_secs(9));
        assert!(matches!(b.admit(0, "/b", 1), Admission::Tripped(_)));
    }

    #[test]
    fn per_rule_overrides() {
        let (mut b, clock) = breaker(5, 60);
        let strict = Limits::DEFAULT.with_override(Some(enforcer_policy::BreakerOverride {
            max_targets: Some(1),
            window: None,
        }));
        assert_eq!(strict.window, Duration::from_secs(60));
        b.set_limits(1, strict);
        let short = Limits::DEFAULT.with_override(Some(enforcer_policy::BreakerOverride {
            max_targets: None,
            window: Some(Duration::from_secs(1)),
        }));
        b.set_limits(2, short);
        assert_eq!(b.limits(2).max_targets, 5);
        assert_eq!(b.admit(1, "/a", 1), Admission::Allowed);
        assert!(matches!(b.admit(1, "/b", 1), Admission::Tripped(_)));
        for i in 0..20 {
            assert_eq!(b.admit(2, &format!("/b{i}"), 1), Admission::Allowed);
            clock.advance(Duration::from_millis(1_000));
        }
        assert_eq!(b.admit(0, "/a", 1), Admission::Allowed, "defaults");
    }

    #[test]
    fn disarmed_stays_disarmed() {
        let (mut b, clock) = breaker(1, 1);
        assert_eq!(b.admit(0, "/a", 1), Admission::Allowed);
        assert!(matches!(b.admit(0, "/b", 1), Admission::Tripped(_)));
        clock.advance(Duration::from_secs(3600));
        assert_eq!(b.admit(0, "/a", 1), Admission::Disarmed);
        assert_eq!(b.admit(0, "/a", 1), Admission::Disarmed);
        assert!(b.is_disarmed(0));
    }
}
