//! Records for the audit module's tests.

use super::Record;

/// An `event` record numbered `n` (`event.n`).
pub(crate) fn event(n: u64) -> Record {
    Record::Event {
        event: serde_json::json!({ "kind": "exec", "n": n }),
    }
}

/// An `engine_stop` record (durable) with `reason`.
pub(crate) fn stop(reason: &str) -> Record {
    Record::EngineStop {
        reason: reason.into(),
        counters: serde_json::json!({}),
        decode_errors: 0,
        polling_periods: 0,
    }
}
