//! The action report an enforcement record carries: when the event was detected, when the
//! action completed, the outcome, and the response time between the two.

use serde::Serialize;

use super::writer::timestamp;
use crate::clock::BootClock;

/// What became of an enforcement action.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Done (denied or killed).
    Performed,
    /// Not done because the rule or the engine is in monitor mode.
    WouldPerform,
    /// Not done because the kill breaker disarmed the rule (or: the record disarms it).
    Disarmed,
    /// Not done because the target is protected.
    Spared,
    /// Attempted and failed.
    Failed,
}

/// `report` of an `action` record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Wall-clock time of the kernel event (RFC 3339, microseconds).
    pub detected_at: String,
    /// Wall-clock time the action completed: the event time for actions the kernel took
    /// synchronously; after the signal (or `cgroup.kill` write) returned for userspace kills;
    /// when the decision was taken for actions not performed.
    pub acted_at: String,
    /// The outcome.
    pub outcome: Outcome,
    /// `acted_at - detected_at`, in microseconds (both on the boot clock; 0 if negative).
    pub response_us: u64,
    /// The errno of a failure, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errno: Option<i32>,
}

impl Report {
    /// A report for an event at `detected_boot_ns` acted on at `acted_boot_ns` (both
    /// CLOCK_BOOTTIME), converted to wall-clock time with `clock`.
    pub fn new(
        clock: &BootClock,
        detected_boot_ns: u64,
        acted_boot_ns: u64,
        outcome: Outcome,
        errno: Option<i32>,
    ) -> Self {
        Self {
            detected_at: timestamp(clock.wall(detected_boot_ns)),
            acted_at: timestamp(clock.wall(acted_boot_ns)),
            outcome,
            response_us: acted_boot_ns.saturating_sub(detected_boot_ns) / 1_000,
            errno,
        }
    }

    /// A report of an action the kernel took synchronously at `boot_ns`.
    pub fn kernel(clock: &BootClock, boot_ns: u64, outcome: Outcome) -> Self {
        Self::new(clock, boot_ns, boot_ns, outcome, None)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn timing_fields() {
        let clock = BootClock::new().unwrap();
        let r = Report::new(
            &clock,
            5_000_000_000,
            5_000_250_999,
            Outcome::Performed,
            None,
        );
        assert_eq!(r.response_us, 250);
        let detected = humantime::parse_rfc3339(&r.detected_at).unwrap();
        let acted = humantime::parse_rfc3339(&r.acted_at).unwrap();
        // Both times are cut to microseconds: the difference is 250 or 251 µs.
        let elapsed = acted.duration_since(detected).unwrap().as_micros();
        assert!((250..=251).contains(&elapsed), "{elapsed}");
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["outcome"], "performed");
        assert_eq!(json["response_us"], 250);
        assert!(json.get("errno").is_none());
        let k = Report::kernel(&clock, 7, Outcome::WouldPerform);
        assert_eq!((k.response_us, k.detected_at == k.acted_at), (0, true));
        assert_eq!(
            serde_json::to_value(&k).unwrap()["outcome"],
            "would_perform"
        );
        let failed = Report::new(&clock, 9, 3, Outcome::Failed, Some(libc::ESRCH));
        assert_eq!(failed.response_us, 0, "never negative");
        assert_eq!(serde_json::to_value(&failed).unwrap()["errno"], libc::ESRCH);
    }
}
