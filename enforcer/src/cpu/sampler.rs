//! The sampling round: reads every process's and every leaf cgroup's CPU time, feeds the
//! trackers, and returns what has stayed at or above the floor, hottest first and at most
//! `max_events` of them. A hot cgroup is reported with its busiest process of the round (the
//! one a kill would target; `kill_scope: cgroup` widens it to the cgroup). The round itself
//! ([`Sampler::round_with`]) is pure: the readings are passed in, so tests need no `/proc`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{
    cgroup_source::{self, CgroupSample},
    proc_source::{self, ProcSample},
    tracker::{Reading, Sustained, Tracker},
    usage::Capacity,
};

/// Settings of the CPU sampler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuSettings {
    /// Time between two rounds.
    pub interval: Duration,
    /// Usage (percent of the capacity, see [`super::usage`]) at or above which a process or
    /// cgroup is in a sustained window and reported.
    pub floor: i64,
    /// Most processes tracked (and read per round).
    pub max_processes: usize,
    /// Most cgroups tracked (and directories visited per round).
    pub max_cgroups: usize,
    /// Most cpu events per round.
    pub max_events: usize,
}

impl Default for CpuSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(5),
            floor: 50,
            max_processes: 16_384,
            max_cgroups: 4096,
            max_events: 64,
        }
    }
}

/// What a hot sample is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// One process (all its threads).
    Process,
    /// A leaf cgroup (all its processes): its id and path.
    Cgroup {
        /// The cgroup id.
        id: u64,
        /// The cgroup path.
        path: String,
    },
}

/// A process or cgroup at or above the floor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hot {
    /// Process or cgroup.
    pub scope: Scope,
    /// The process (for a cgroup, its busiest process of the round).
    pub pid: u32,
    /// Its start time, nanoseconds since boot.
    pub start_ns: u64,
    /// Usage and window.
    pub usage: Sustained,
}

/// Trackers for processes and cgroups, and where to read them.
#[derive(Debug)]
pub struct Sampler {
    settings: CpuSettings,
    procfs_root: PathBuf,
    cgroup_root: Option<PathBuf>,
    tick_ns: u64,
    procs: Tracker<(u32, u64)>,
    cgroups: Tracker<u64>,
}

impl Sampler {
    /// A sampler reading `procfs_root` and the cgroup v2 hierarchy at `cgroup_root` (none: no
    /// cgroup samples), relative to `machine`.
    pub fn new(
        settings: CpuSettings,
        procfs_root: &Path,
        cgroup_root: Option<&Path>,
        machine: Capacity,
        tick_ns: u64,
    ) -> Self {
        Self {
            procs: Tracker::new(settings.max_processes, settings.floor, machine),
            cgroups: Tracker::new(settings.max_cgroups, settings.floor, machine),
            settings,
            procfs_root: procfs_root.to_owned(),
            cgroup_root: cgroup_root.map(Path::to_owned),
            tick_ns: tick_ns.max(1),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &CpuSettings {
        &self.settings
    }

    /// Reads `/proc` and the cgroup hierarchy at `now_ns` (CLOCK_BOOTTIME) and runs a round.
    pub fn round(&mut self, now_ns: u64) -> Vec<Hot> {
        let procs =
            proc_source::read_all(&self.procfs_root, self.tick_ns, self.settings.max_processes);
        let cgroups = match &self.cgroup_root {
            Some(root) => cgroup_source::read_leaves(root, self.settings.max_cgroups),
            None => Vec::new(),
        };
        let root = self.cgroup_root.clone();
        self.round_with(now_ns, &procs, &cgroups, |path| match &root {
            Some(root) => cgroup_source::procs(&root.join(path.trim_start_matches('/'))),
            None => Vec::new(),
        })
    }

    /// One round over the given readings; `procs_of(path)` lists a hot cgroup's pids.
    pub fn round_with(
        &mut self,
        now_ns: u64,
        procs: &[ProcSample],
        cgroups: &[CgroupSample],
        procs_of: impl Fn(&str) -> Vec<u32>,
    ) -> Vec<Hot> {
        let mut hot = Vec::new();
        // The usage of each process this round, to pick a hot cgroup's busiest process.
        let mut rates: HashMap<u32, (u64, i64)> = HashMap::new();
        self.procs.begin_round();
        for s in procs {
            let reading = Reading {
                cpu_ns: s.cpu_ns,
                at_ns: now_ns,
            };
            if let Some(usage) = self.procs.observe(&(s.pid, s.start_ns), reading) {
                rates.insert(s.pid, (s.start_ns, usage.last_percent));
                hot.push(Hot {
                    scope: Scope::Process,
                    pid: s.pid,
                    start_ns: s.start_ns,
                    usage,
                });
            } else if let Some(p) = self.procs.last_percent(&(s.pid, s.start_ns)) {
                rates.insert(s.pid, (s.start_ns, p));
            }
        }
        self.procs.end_round();
        self.cgroups.begin_round();
        for c in cgroups {
            let reading = Reading {
                cpu_ns: c.cpu_ns,
                at_ns: now_ns,
            };
            let Some(usage) = self.cgroups.observe(&c.id, reading) else {
                continue;
            };
            let busiest = procs_of(&c.path)
                .into_iter()
                .filter_map(|pid| rates.get(&pid).map(|(start, p)| (*p, pid, *start)))
                .max();
            if let Some((_, pid, start_ns)) = busiest {
                hot.push(Hot {
                    scope: Scope::Cgroup {
                        id: c.id,
                        path: c.path.clone(),
                    },
                    pid,
                    start_ns,
                    usage,
                });
            }
        }
        self.cgroups.end_round();
        hot.sort_by_key(|h| std::cmp::Reverse(h.usage.percent));
        hot.truncate(self.settings.max_events);
        hot
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const S: u64 = 1_000_000_000;

    fn sampler(max_events: usize) -> Sampler {
        let settings = CpuSettings {
            max_events,
            ..CpuSettings::default()
        };
        Sampler::new(
            settings,
            Path::new("/nonexistent"),
            None,
            Capacity::of_machine(2),
            10_000_000,
        )
    }

    fn p(pid: u32, cpu_s: u64) -> ProcSample {
        ProcSample {
            pid,
            start_ns: u64::from(pid) * 1000,
            cpu_ns: cpu_s * S,
        }
    }

    fn cg(id: u64, cpu_s: u64) -> CgroupSample {
        CgroupSample {
            id,
            path: format!("/c{id}"),
            cpu_ns: cpu_s * S,
        }
    }

    #[test]
    fn hot_processes_and_cgroups_hottest_first() {
        let mut s = sampler(10);
        let members = |path: &str| match path {
            "/c1" => vec![10, 11],
            _ => vec![99],
        };
        assert!(
            s.round_with(0, &[p(10, 0), p(11, 0)], &[cg(1, 0), cg(2, 0)], members)
                .is_empty()
        );
        // 10: 60%, 11: 30% (below the floor); cgroup 1: 90%; cgroup 2: 80% but its only
        // process is not known, so nothing to report or kill for it.
        let hot = s.round_with(
            10 * S,
            &[p(10, 6), p(11, 3)],
            &[cg(1, 9), cg(2, 8)],
            members,
        );
        assert_eq!(hot.len(), 2, "{hot:#?}");
        assert_eq!(
            hot[0].scope,
            Scope::Cgroup {
                id: 1,
                path: "/c1".into()
            }
        );
        assert_eq!((hot[0].pid, hot[0].usage.percent), (10, 90));
        assert_eq!((hot[1].scope.clone(), hot[1].pid), (Scope::Process, 10));
        assert_eq!(hot[1].usage.window_ns, 10 * S);
    }

    #[test]
    fn a_cgroup_names_its_busiest_process_even_below_the_floor() {
        let mut s = sampler(10);
        let members = |_: &str| vec![10, 11, 12];
        s.round_with(0, &[p(10, 0), p(11, 0), p(12, 0)], &[cg(1, 0)], members);
        // Three processes at 30%, 40%, 20%: none hot alone, the cgroup is.
        let hot = s.round_with(
            10 * S,
            &[p(10, 3), p(11, 4), p(12, 2)],
            &[cg(1, 9)],
            members,
        );
        assert_eq!(hot.len(), 1);
        assert_eq!((hot[0].pid, hot[0].start_ns), (11, 11_000));
    }

    #[test]
    fn at_most_max_events_and_exited_processes_are_forgotten() {
        let mut s = sampler(2);
        let none = |_: &str| Vec::new();
        let all: Vec<ProcSample> = (1..=5).map(|pid| p(pid, 0)).collect();
        s.round_with(0, &all, &[], none);
        let busy: Vec<ProcSample> = (1..=5).map(|pid| p(pid, 6 + u64::from(pid))).collect();
        let hot = s.round_with(10 * S, &busy, &[], none);
        assert_eq!(
            hot.iter().map(|h| h.pid).collect::<Vec<_>>(),
            [5, 4],
            "hottest first, two at most"
        );
        // Only pid 5 is still there; pid 4 comes back with a new start: a new baseline.
        let again = [
            p(5, 30),
            ProcSample {
                start_ns: 1,
                ..p(4, 100)
            },
        ];
        let hot = s.round_with(20 * S, &again, &[], none);
        assert_eq!(hot.iter().map(|h| h.pid).collect::<Vec<_>>(), [5]);
        assert_eq!(hot[0].usage.window_ns, 20 * S);
    }
}
