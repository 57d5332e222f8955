//! When the daemon reads `EVENTS`: woken by the ring buffer for each record while the host is
//! quiet, on a timer (`enforcer run --poll-interval`, 8 ms by default) while records come
//! fast (the way NAPI switches a network card from interrupts to polling).
//!
//! A ring-buffer wake-up is paid inside the submitting program: in an exec storm on the 6.18
//! host it was about 16 us of `sched_process_exec`'s 21-23 us per exec (irq_work, the
//! self-IPI and the daemon's wake-up), plus a daemon wake-up per exec. While the daemon polls,
//! it writes 1 into `EVENTS_POLLED` and the kernel submits `EVENTS` records without a
//! wake-up (`emit::event_flags`; it still forces one when a quarter of the ring is pending,
//! and for the rare records that start userspace kills: payloads and DNS queries,
//! `emit::urgent_event_flags`). Each poll is itself a wake-up whose cost (the context switch,
//! and caches the storm has emptied) the records it finds share: at 1 ms an exec storm of
//! 1,300 execs a second gave a poll about one exec, and the daemon spent about a third more
//! CPU per exec than at 8 ms (benches/README.md).
//!
//! - **Start**: two `EVENTS` wake-ups less than [`START_GAP`] apart (more than 500 records a
//!   second).
//! - **Poll**: every poll interval; a record waits at most that long (plus the drain), which
//!   bounds the extra latency of a userspace kill while polling. The kernel's own verdicts do
//!   not wait for the daemon at all.
//! - **Stop**: after [`IDLE_POLLS`] polls in a row found no record, `EVENTS_POLLED` goes back
//!   to 0, and one more poll follows, for a record submitted by a program that read the flag
//!   just before it changed. (Should one still slip by, it is read at the next record's
//!   wake-up or by the 20 ms lifecycle tick, which drains both rings.)

use std::time::{Duration, Instant};

use aya::{
    Ebpf,
    maps::{Array, MapData},
};
use enforcer_common::maps::EVENTS_POLLED;

use crate::loader::LoadError;

/// Two wake-ups closer than this start polling.
pub(crate) const START_GAP: Duration = Duration::from_millis(2);
/// Empty polls in a row that stop polling.
pub(crate) const IDLE_POLLS: u32 = 8;

/// What the run loop must do after telling the poller what happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Switch {
    /// Nothing changes.
    Keep,
    /// Write 1 into `EVENTS_POLLED` and start the poll timer.
    StartPolling,
    /// Write 0 into `EVENTS_POLLED` (the timer runs once more).
    StopPolling,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Woken by the ring buffer.
    Woken,
    /// Polling; `idle` polls in a row found nothing.
    Polling { idle: u32 },
    /// `EVENTS_POLLED` is 0 again; one last poll is due.
    LastPoll,
}

/// The poller's state machine (pure: the run loop owns the map and the timer).
#[derive(Debug)]
pub(crate) struct Poller {
    state: State,
    last_wake: Option<Instant>,
    periods: u64,
}

impl Default for Poller {
    fn default() -> Self {
        Self {
            state: State::Woken,
            last_wake: None,
            periods: 0,
        }
    }
}

impl Poller {
    /// How many times polling started.
    pub(crate) fn periods(&self) -> u64 {
        self.periods
    }

    /// Whether the poll timer must run.
    pub(crate) fn polling(&self) -> bool {
        self.state != State::Woken
    }

    /// The ring buffer woke the daemon at `now`.
    pub(crate) fn woken(&mut self, now: Instant) -> Switch {
        let close = self
            .last_wake
            .is_some_and(|last| now.saturating_duration_since(last) < START_GAP);
        self.last_wake = Some(now);
        match self.state {
            State::Woken if close => {
                self.state = State::Polling { idle: 0 };
                self.periods += 1;
                Switch::StartPolling
            }
            // A record that came while the flag was changing, or a forced wake-up of a filling
            // ring: records are coming, so polling goes on (or starts again).
            State::LastPoll => {
                self.state = State::Polling { idle: 0 };
                Switch::StartPolling
            }
            State::Polling { .. } => {
                self.state = State::Polling { idle: 0 };
                Switch::Keep
            }
            State::Woken => Switch::Keep,
        }
    }

    /// A poll handled `records` `EVENTS` records.
    pub(crate) fn polled(&mut self, records: usize) -> Switch {
        match self.state {
            State::Polling { idle } => {
                let idle = if records == 0 { idle + 1 } else { 0 };
                if idle >= IDLE_POLLS {
                    self.state = State::LastPoll;
                    Switch::StopPolling
                } else {
                    self.state = State::Polling { idle };
                    Switch::Keep
                }
            }
            State::LastPoll => {
                self.state = State::Woken;
                // The wake-ups that come next are measured afresh.
                self.last_wake = None;
                Switch::Keep
            }
            State::Woken => Switch::Keep,
        }
    }
}

/// The kernel's `EVENTS_POLLED` flag.
pub(crate) struct PollFlag(Array<MapData, u32>);

impl std::fmt::Debug for PollFlag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PollFlag")
    }
}

impl PollFlag {
    /// Takes the flag's map out of `ebpf`.
    pub(crate) fn take(ebpf: &mut Ebpf) -> Result<Self, LoadError> {
        let map = ebpf
            .take_map(EVENTS_POLLED)
            .ok_or(LoadError::MissingProgram(EVENTS_POLLED))?;
        Array::try_from(map)
            .map(Self)
            .map_err(|source| LoadError::Map {
                map: EVENTS_POLLED,
                source,
            })
    }

    /// Writes the flag for `switch`. A failed write is logged: at worst a record then waits
    /// for the 20 ms lifecycle tick, which drains both rings.
    pub(crate) fn apply(&mut self, switch: Switch) {
        let value = match switch {
            Switch::Keep => return,
            Switch::StartPolling => 1,
            Switch::StopPolling => 0,
        };
        if let Err(e) = self.0.set(0, value, 0) {
            tracing::warn!("cannot write {EVENTS_POLLED}: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_wake_ups_never_start_polling() {
        let mut p = Poller::default();
        let t0 = Instant::now();
        for i in 0..10 {
            assert_eq!(p.woken(t0 + START_GAP * 2 * i), Switch::Keep);
            assert!(!p.polling());
        }
    }

    #[test]
    fn close_wake_ups_poll_until_the_ring_is_quiet_then_one_last_poll() {
        let mut p = Poller::default();
        let t0 = Instant::now();
        assert_eq!(p.woken(t0), Switch::Keep);
        assert_eq!(
            p.woken(t0 + Duration::from_micros(700)),
            Switch::StartPolling
        );
        assert!(p.polling());
        assert_eq!(p.periods(), 1);
        // Busy polls keep it going; an empty run shorter than IDLE_POLLS does not stop it.
        for _ in 0..100 {
            assert_eq!(p.polled(3), Switch::Keep);
        }
        for _ in 0..IDLE_POLLS - 1 {
            assert_eq!(p.polled(0), Switch::Keep);
        }
        assert_eq!(p.polled(2), Switch::Keep, "a record resets the idle run");
        for _ in 0..IDLE_POLLS - 1 {
            assert_eq!(p.polled(0), Switch::Keep);
        }
        assert_eq!(p.polled(0), Switch::StopPolling);
        assert!(p.polling(), "one more poll after the flag went back to 0");
        assert_eq!(p.polled(1), Switch::Keep);
        assert!(!p.polling());
        // The next single wake-up does not restart polling by itself.
        assert_eq!(p.woken(t0 + Duration::from_secs(1)), Switch::Keep);
        assert!(!p.polling());
    }

    #[test]
    fn a_wake_up_during_the_last_poll_starts_polling_again() {
        let mut p = Poller::default();
        let t0 = Instant::now();
        p.woken(t0);
        assert_eq!(p.woken(t0), Switch::StartPolling);
        for _ in 0..IDLE_POLLS {
            p.polled(0);
        }
        assert!(p.polling());
        assert_eq!(p.woken(t0 + Duration::from_millis(9)), Switch::StartPolling);
        assert_eq!(p.polled(0), Switch::Keep);
        assert!(p.polling());
    }

    #[test]
    fn wake_ups_while_polling_keep_it_going() {
        let mut p = Poller::default();
        let t0 = Instant::now();
        p.woken(t0);
        p.woken(t0);
        for _ in 0..IDLE_POLLS - 1 {
            p.polled(0);
        }
        // A forced wake-up (a quarter of the ring pending) counts as activity.
        assert_eq!(p.woken(t0 + Duration::from_secs(5)), Switch::Keep);
        assert_eq!(p.polled(0), Switch::Keep);
        assert!(p.polling());
    }
}
