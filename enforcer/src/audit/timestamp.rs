//! The RFC 3339 timestamps of audit records (UTC, microseconds). Every event gets one, three
//! per exec on a busy host, and working out the calendar date and time of day from the epoch
//! was a few percent of the daemon's CPU there; the date and time to the second change once a
//! second, so the last second's text is kept (per thread) and only the microseconds are
//! written anew.

use std::{
    cell::RefCell,
    fmt::Write as _,
    time::{SystemTime, UNIX_EPOCH},
};

/// The last whole second formatted: seconds since the epoch, and its text without the `Z`.
struct LastSecond {
    secs: u64,
    text: String,
}

thread_local! {
    static LAST: RefCell<Option<LastSecond>> = const { RefCell::new(None) };
}

/// RFC 3339 UTC timestamp with microseconds (what `humantime::format_rfc3339_micros` writes;
/// a time before the epoch, which humantime refuses, is written as the epoch).
pub fn timestamp(at: SystemTime) -> String {
    let at = at.max(UNIX_EPOCH);
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    LAST.with_borrow_mut(|last| {
        let second = match last {
            Some(second) if second.secs == secs => second,
            _ => {
                let mut text = humantime::format_rfc3339_seconds(at).to_string();
                text.pop(); // the `Z`
                last.insert(LastSecond { secs, text })
            }
        };
        let mut out = String::with_capacity(second.text.len() + 8);
        out.push_str(&second.text);
        // Writing into a String cannot fail.
        let _ = write!(out, ".{:06}Z", since.subsec_micros());
        out
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_kept_second_writes_what_humantime_writes() {
        let start = UNIX_EPOCH + Duration::from_secs(1_764_700_000);
        // Within a second, across seconds, back in time, and around a new year and a leap day.
        let steps_us: [i64; 8] = [0, 1, 999_999, 1, -2_000_001, 17, 86_400_000_000, 3];
        let mut at = start;
        for step in steps_us {
            at = if step >= 0 {
                at + Duration::from_micros(step.unsigned_abs())
            } else {
                at - Duration::from_micros(step.unsigned_abs())
            };
            assert_eq!(
                timestamp(at),
                humantime::format_rfc3339_micros(at).to_string()
            );
        }
        for secs in [0, 951_782_399, 951_782_400, 1_767_225_599, 1_767_225_600] {
            let at = UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_nanos(123_456_789);
            assert_eq!(
                timestamp(at),
                humantime::format_rfc3339_micros(at).to_string()
            );
        }
        let before_epoch = UNIX_EPOCH - Duration::from_secs(1);
        assert_eq!(timestamp(before_epoch), "1970-01-01T00:00:00.000000Z");
    }
}
