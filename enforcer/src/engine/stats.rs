//! The run's `engine_stats` records (`--stats-interval`): the kernel's counters so far, and
//! how many records the kernel could not hand over since the last one (`ringbuf_full`: a full
//! ring buffer). Such records are lost to userspace: the kernel's verdicts still applied, but
//! rules evaluated in userspace never saw them, so a rise is also logged as a warning. An
//! attacker who floods the host with events to hide one is seen here.

use serde_json::Value;

use crate::audit::Record;

/// What the last `engine_stats` record said.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    /// `ringbuf_full` at the last record.
    lost_before: u64,
}

impl Stats {
    /// The record for counters `counters` (the kernel's, so far), the daemon's `decode_errors`
    /// so far, over `period_s` seconds since the last one; warns when records were lost since.
    pub(crate) fn record(&mut self, counters: Value, decode_errors: u64, period_s: u64) -> Record {
        let lost = counters["ringbuf_full"].as_u64().unwrap_or(0);
        let lost_since = lost.saturating_sub(self.lost_before);
        self.lost_before = lost;
        if lost_since > 0 {
            tracing::warn!(
                "{lost_since} kernel records were lost in the last {period_s} s (the ring buffer was full): the kernel's verdicts applied, but rules evaluated in userspace did not see those events"
            );
        }
        Record::EngineStats {
            period_s,
            records_lost_since_last: lost_since,
            decode_errors,
            counters,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lost_since(record: &Record) -> u64 {
        match record {
            Record::EngineStats {
                records_lost_since_last,
                ..
            } => *records_lost_since_last,
            _ => u64::MAX,
        }
    }

    #[test]
    fn records_lost_are_counted_since_the_last_record() {
        let mut stats = Stats::default();
        let at = |n: u64| serde_json::json!({ "ringbuf_full": n, "exec_seen": 10 });
        assert_eq!(lost_since(&stats.record(at(0), 0, 60)), 0);
        assert_eq!(lost_since(&stats.record(at(7), 0, 60)), 7);
        assert_eq!(lost_since(&stats.record(at(7), 0, 60)), 0);
        assert_eq!(lost_since(&stats.record(at(9), 0, 60)), 2);
        // An unreadable counter reads as none lost, never as a huge number.
        assert_eq!(lost_since(&stats.record(serde_json::json!({}), 0, 60)), 0);
    }
}
