//! Converts kernel timestamps (`bpf_ktime_get_boot_ns`, CLOCK_BOOTTIME) to wall-clock time.

use std::time::{Duration, SystemTime};

use nix::time::{ClockId, clock_gettime};

/// Wall-clock time of boot-clock zero, measured once at start.
#[derive(Clone, Copy, Debug)]
pub struct BootClock {
    boot_epoch: SystemTime,
}

impl BootClock {
    /// Measures the offset between CLOCK_BOOTTIME and the wall clock now.
    pub fn new() -> nix::Result<Self> {
        let boot = clock_gettime(ClockId::CLOCK_BOOTTIME)?;
        let now = SystemTime::now();
        let since_boot = Duration::from(boot);
        Ok(Self {
            boot_epoch: now
                .checked_sub(since_boot)
                .unwrap_or(SystemTime::UNIX_EPOCH),
        })
    }

    /// The wall-clock time of a kernel boot-clock timestamp.
    pub fn wall(&self, boot_ns: u64) -> SystemTime {
        self.boot_epoch + Duration::from_nanos(boot_ns)
    }
}
