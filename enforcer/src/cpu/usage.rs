//! CPU usage arithmetic: turning CPU time used over a wall-clock span into `cpu.usage.percent`.
//!
//! The unit is a percent of the machine's *capacity*, where the capacity is N-1 cores on a
//! machine with N online CPUs (one core when N is 1): 100 means N-1 cores busy for the whole
//! span. A process that keeps every core busy reads N/(N-1) x 100 (200 on a 2-core machine,
//! 133 on 4 cores); the value is not clamped. The reason for N-1: a miner usually leaves one
//! core to the host, and "at least 90% of N-1 cores" is the threshold the detection asks for.

/// The machine capacity the percentages are relative to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capacity {
    cores: u64,
}

impl Capacity {
    /// The capacity of a machine with `online_cpus` CPUs: `max(online_cpus - 1, 1)` cores.
    pub fn of_machine(online_cpus: usize) -> Self {
        let n = u64::try_from(online_cpus).unwrap_or(u64::MAX);
        Self {
            cores: n.saturating_sub(1).max(1),
        }
    }

    /// The capacity of this machine (`std::thread::available_parallelism`, 1 when unknown).
    pub fn this_machine() -> Self {
        Self::of_machine(std::thread::available_parallelism().map_or(1, usize::from))
    }

    /// Cores that make 100%.
    pub fn cores(self) -> u64 {
        self.cores
    }

    /// `cpu_ns` of CPU time used over `wall_ns` of wall-clock time, as a percent of the
    /// capacity, rounded down; `None` when `wall_ns` is zero.
    pub fn percent(self, cpu_ns: u64, wall_ns: u64) -> Option<i64> {
        if wall_ns == 0 {
            return None;
        }
        let num = u128::from(cpu_ns) * 100;
        let den = u128::from(wall_ns) * u128::from(self.cores);
        Some(i64::try_from(num / den).unwrap_or(i64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn capacity_is_n_minus_one_cores_at_least_one() {
        assert_eq!(Capacity::of_machine(0).cores(), 1);
        assert_eq!(Capacity::of_machine(1).cores(), 1);
        assert_eq!(Capacity::of_machine(2).cores(), 1);
        assert_eq!(Capacity::of_machine(8).cores(), 7);
    }

    #[test]
    fn percent_of_capacity() {
        let eight = Capacity::of_machine(8);
        // 7 cores busy for 10 s: the whole capacity.
        assert_eq!(eight.percent(70 * S, 10 * S), Some(100));
        // every core: 8/7.
        assert_eq!(eight.percent(80 * S, 10 * S), Some(114));
        // one core: 1/7, rounded down.
        assert_eq!(eight.percent(10 * S, 10 * S), Some(14));
        let two = Capacity::of_machine(2);
        assert_eq!(two.percent(S / 2, S), Some(50));
        assert_eq!(two.percent(2 * S, S), Some(200));
        assert_eq!(two.percent(S, 0), None);
        assert_eq!(two.percent(u64::MAX, 1), Some(i64::MAX));
    }
}
