//! Per-rule rate limiting for rules with `every:`: at most one reported match per rule and
//! key (for example the process's executable) per period. State lives with the caller (the
//! daemon), so `CompiledPolicy::eval` stays pure.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::model::RuleInfo;

/// Most keys remembered per limiter; the oldest half is dropped beyond it.
pub const MAX_KEYS: usize = 65_536;

/// Remembers when each (rule, key) last reported.
#[derive(Debug, Default)]
pub struct RateLimiter {
    last: HashMap<(u32, String), Instant>,
}

impl RateLimiter {
    /// Whether a match of rule `index` for `key` at `now` should be reported.
    pub fn allow(&mut self, rules: &[RuleInfo], index: u32, key: &str, now: Instant) -> bool {
        let Some(every) = rules.get(index as usize).and_then(|r| r.every) else {
            return true;
        };
        let k = (index, key.to_string());
        if let Some(prev) = self.last.get(&k)
            && now.saturating_duration_since(*prev) < every
        {
            return false;
        }
        if self.last.len() >= MAX_KEYS {
            let horizon = now.checked_sub(Duration::from_secs(3600)).unwrap_or(now);
            self.last.retain(|_, t| *t > horizon);
            if self.last.len() >= MAX_KEYS {
                self.last.clear();
            }
        }
        self.last.insert(k, now);
        true
    }
}
