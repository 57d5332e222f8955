//! A cap on the connections a fixture server serves at once (`mock-pool`, `stub-dns`): a slot
//! is taken per accepted connection and given back when it is dropped.

use std::sync::atomic::{AtomicUsize, Ordering};

/// At most `max` slots taken at a time.
#[derive(Debug)]
pub struct ConnectionLimit {
    active: AtomicUsize,
    max: usize,
}

/// One taken slot; given back on drop.
#[derive(Debug)]
pub struct Slot(&'static ConnectionLimit);

impl ConnectionLimit {
    /// A limit of `max` connections.
    pub const fn new(max: usize) -> ConnectionLimit {
        ConnectionLimit {
            active: AtomicUsize::new(0),
            max,
        }
    }

    /// A slot, or `None` when `max` are taken.
    pub fn take(&'static self) -> Option<Slot> {
        if self.active.fetch_add(1, Ordering::SeqCst) >= self.max {
            self.active.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Slot(self))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_capped_and_given_back() {
        static LIMIT: ConnectionLimit = ConnectionLimit::new(2);
        let a = LIMIT.take();
        let b = LIMIT.take();
        assert!(a.is_some() && b.is_some());
        assert!(LIMIT.take().is_none());
        drop(a);
        assert!(LIMIT.take().is_some(), "a dropped slot is given back");
    }
}
