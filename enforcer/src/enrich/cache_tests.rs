//! Process cache behaviour without `/proc` (the procfs root does not exist): identity under
//! PID reuse, fork inheritance, exits and eviction, the ancestor walk, bounds.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use super::process_cache::*;

const TICK: u64 = 10_000_000;

fn config(capacity: usize, exit_grace: Duration) -> CacheConfig {
    CacheConfig {
        capacity,
        exit_grace,
        procfs_root: "/nonexistent-procfs-root".into(),
        tick_ns: TICK,
    }
}

fn cache(capacity: usize) -> ProcessCache {
    ProcessCache::new(config(capacity, Duration::from_secs(3600)))
}

fn info(tgid: u32, ppid: u32, start_ticks: u64, exe: &str) -> ExecInfo {
    let name = exe.rsplit('/').next().unwrap_or(exe).to_owned();
    ExecInfo {
        tgid,
        ppid,
        start_ns: start_ticks * TICK,
        exe: exe.to_owned(),
        argv: vec![name.clone(), "-x".to_owned()],
        comm: name,
        uid: 1000,
        cgroup_id: Some(7),
        cgroup_path: None,
    }
}

fn exec(c: &mut ProcessCache, tgid: u32, ppid: u32, start_ticks: u64, exe: &str) {
    c.on_exec(info(tgid, ppid, start_ticks, exe));
}

fn exe_of(c: &ProcessCache, tgid: u32) -> Option<String> {
    c.peek(tgid).map(|r| r.exe.clone())
}

#[test]
fn lookup_needs_the_same_start_tick() {
    let mut c = cache(16);
    exec(&mut c, 10, 1, 5, "/bin/a");
    let r = c.lookup(10, 5 * TICK + 3).unwrap();
    assert_eq!(
        (r.exe.as_str(), r.uid, r.origin),
        ("/bin/a", Some(1000), Origin::Exec)
    );
    assert!(c.lookup(10, 6 * TICK).is_none());
    assert!(c.lookup(11, 5 * TICK).is_none());
    assert_eq!(c.peek(10).unwrap().start_ns, 5 * TICK);
    assert!(c.same_start(5 * TICK, 5 * TICK + TICK - 1));
    assert!(!c.same_start(5 * TICK, 6 * TICK));
}

#[test]
fn pid_reuse_replaces_and_never_merges() {
    let mut c = cache(16);
    let mut old = info(10, 1, 5, "/bin/old");
    old.cgroup_path = Some(format!("/docker/{}", "a".repeat(64)));
    c.on_exec(old);
    assert!(c.peek(10).unwrap().container.is_some());
    exec(&mut c, 10, 2, 9, "/bin/new");
    let r = c.peek(10).unwrap();
    assert_eq!(r.exe, "/bin/new");
    assert_eq!(r.ppid, 2);
    assert_eq!(r.argv, ["new", "-x"]);
    // Nothing of the old incarnation survives.
    assert_eq!(
        (r.cgroup_path.as_deref(), r.container.as_ref()),
        (None, None)
    );
    assert_eq!(c.stats().replaced, 1);
    // An event of the old incarnation is not attributed to the new one.
    assert!(c.lookup(10, 5 * TICK).is_none());
    assert!(c.lookup_at(10, 6 * TICK).is_none());
}

#[test]
fn late_events_of_an_older_incarnation_are_ignored() {
    let mut c = cache(16);
    exec(&mut c, 10, 1, 9, "/bin/new");
    exec(&mut c, 10, 1, 5, "/bin/old");
    c.on_fork(1, 10, 5 * TICK);
    assert_eq!(exe_of(&c, 10).unwrap(), "/bin/new");
    assert_eq!(c.peek(10).unwrap().start_ns, 9 * TICK);
    assert_eq!(c.stats().stale_ignored, 2);
}

#[test]
fn exec_updates_its_incarnation_in_place() {
    let mut c = cache(16);
    c.on_fork(1, 10, 5 * TICK);
    let mut first = info(10, 0, 5, "/bin/a");
    first.cgroup_path = Some("/system.slice/x.service".into());
    first.start_ns += 7;
    c.on_exec(first);
    let r = c.peek(10).unwrap();
    // ppid 0 (unknown) keeps the known parent.
    assert_eq!(
        (r.ppid, r.exe.as_str(), r.origin),
        (1, "/bin/a", Origin::Exec)
    );
    exec(&mut c, 10, 1, 5, "/bin/b");
    let r = c.peek(10).unwrap();
    assert_eq!(r.exe, "/bin/b");
    // The cgroup of the same incarnation is kept when the exec does not tell it.
    assert_eq!(r.cgroup_path.as_deref(), Some("/system.slice/x.service"));
    assert_eq!(c.stats().replaced, 0);
}

#[test]
fn fork_inherits_the_parent_until_exec() {
    let mut c = cache(16);
    exec(&mut c, 100, 1, 2, "/usr/bin/bash");
    c.on_fork(100, 101, 3 * TICK);
    let r = c.peek(101).unwrap();
    assert_eq!((r.exe.as_str(), r.comm.as_str()), ("/usr/bin/bash", "bash"));
    assert_eq!(
        (r.ppid, r.start_ns, r.origin),
        (100, 3 * TICK, Origin::Fork)
    );
    assert_eq!(r.argv, ["bash", "-x"]);
    exec(&mut c, 101, 100, 3, "/usr/bin/ls");
    assert_eq!(exe_of(&c, 101).unwrap(), "/usr/bin/ls");
    assert_eq!(exe_of(&c, 100).unwrap(), "/usr/bin/bash");
}

#[test]
fn fork_does_not_inherit_from_a_reused_parent_pid() {
    let mut c = cache(16);
    exec(&mut c, 100, 1, 9, "/bin/newer");
    c.on_fork(100, 101, 5 * TICK);
    let r = c.peek(101).unwrap();
    assert_eq!((r.exe.as_str(), r.ppid, r.uid), ("", 100, None));
    // A thread is not a process.
    c.on_fork(100, 100, 10 * TICK);
    assert_eq!(c.peek(100).unwrap().start_ns, 9 * TICK);
}

#[test]
fn exits_are_recorded_once() {
    let mut c = cache(16);
    exec(&mut c, 10, 1, 5, "/bin/a");
    assert!(c.on_exit(10, 0, 9));
    assert!(!c.on_exit(10, 1, 0));
    assert!(!c.on_exit(11, 0, 0));
    let exit = c.peek(10).unwrap().exited_at.unwrap();
    assert_eq!((exit.code, exit.signal), (0, 9));
    // Late events of the exited process still resolve.
    assert!(c.lookup(10, 5 * TICK).is_some());
    assert!(c.lookup_at(10, 50 * TICK).is_some());
    assert!(c.lookup_or_load(10).is_some());
}

#[test]
fn exited_processes_past_grace_go_first() {
    let mut c = ProcessCache::new(config(3, Duration::ZERO));
    for pid in 1..=3 {
        exec(&mut c, pid, 0, 1, "/bin/x");
    }
    c.on_exit(2, 0, 0);
    exec(&mut c, 4, 0, 1, "/bin/x");
    let mut held: Vec<u32> = c.records().map(|r| r.tgid).collect();
    held.sort_unstable();
    assert_eq!(held, [1, 3, 4]);
    assert_eq!(c.stats().evicted, 1);
}

#[test]
fn exited_processes_in_grace_outlive_live_ones() {
    let mut c = cache(3);
    for pid in 1..=3 {
        exec(&mut c, pid, 0, 1, "/bin/x");
    }
    // 1 is the least recently used, but it exited and cannot be read back from /proc.
    c.on_exit(1, 0, 0);
    exec(&mut c, 4, 0, 1, "/bin/x");
    let mut held: Vec<u32> = c.records().map(|r| r.tgid).collect();
    held.sort_unstable();
    assert_eq!(held, [1, 3, 4]);
    // Use refreshes: 3 is now the most recent, so 4 goes next.
    assert!(c.lookup(3, TICK).is_some());
    exec(&mut c, 5, 0, 1, "/bin/x");
    let mut held: Vec<u32> = c.records().map(|r| r.tgid).collect();
    held.sort_unstable();
    assert_eq!(held, [1, 3, 5]);
}

#[test]
fn expired_exits_can_be_pruned() {
    let mut c = ProcessCache::new(config(8, Duration::ZERO));
    exec(&mut c, 1, 0, 1, "/bin/x");
    exec(&mut c, 2, 0, 1, "/bin/x");
    c.on_exit(1, 0, 0);
    assert_eq!(c.evict_expired(), 1);
    assert_eq!(c.len(), 1);
}

#[test]
fn capacity_is_never_exceeded() {
    for capacity in [1, 2, 63, 64, 65, 200] {
        let mut c = cache(capacity);
        for pid in 0..1000 {
            exec(&mut c, pid, 0, 1, "/bin/x");
            assert!(c.len() <= capacity);
        }
        assert!(c.stats().evicted >= 1000 - capacity as u64);
    }
    // Capacity 0 is treated as 1.
    let mut c = cache(0);
    exec(&mut c, 1, 0, 1, "/bin/x");
    assert_eq!(c.len(), 1);
}

fn tree() -> ProcessCache {
    let mut c = cache(64);
    exec(&mut c, 1, 0, 0, "/sbin/init");
    exec(&mut c, 50, 1, 10, "/usr/sbin/sshd");
    exec(&mut c, 77, 50, 20, "/usr/bin/bash");
    exec(&mut c, 99, 77, 30, "/usr/bin/python3");
    c
}

#[test]
fn ancestors_walk_to_pid_1() {
    let mut c = tree();
    assert_eq!(c.ancestor_pids(99, 16), [77, 50, 1]);
    assert_eq!(c.ancestor_pids(99, 2), [77, 50]);
    assert_eq!(c.ancestor_pids(99, 0), Vec::<u32>::new());
    assert_eq!(c.ancestor_pids(1, 16), Vec::<u32>::new());
    assert_eq!(c.ancestor_pids(12345, 16), Vec::<u32>::new());
    let names: Vec<_> = c.ancestors(99, 16).iter().map(|r| r.comm.clone()).collect();
    assert_eq!(names, ["bash", "sshd", "init"]);
    // pid 1 ends the chain even if its record names a parent.
    exec(&mut c, 1, 7, 0, "/sbin/init");
    exec(&mut c, 7, 0, 0, "/bin/host");
    assert_eq!(c.ancestor_pids(99, 16), [77, 50, 1]);
    // The hard limit applies whatever the caller asks.
    assert!(c.ancestor_pids(99, usize::MAX).len() <= MAX_DEPTH_LIMIT);
}

#[test]
fn ancestors_stop_at_loops() {
    let mut c = cache(64);
    exec(&mut c, 5, 6, 1, "/bin/a");
    exec(&mut c, 6, 5, 1, "/bin/b");
    assert_eq!(c.ancestor_pids(5, 16), [6]);
    for (pid, ppid) in [(7, 8), (8, 9), (9, 7)] {
        exec(&mut c, pid, ppid, 1, "/bin/c");
    }
    assert_eq!(c.ancestor_pids(7, 16), [8, 9]);
    // A loop above the start: 10 -> 11 -> 13 -> 11.
    for (pid, ppid) in [(10, 11), (11, 13), (13, 11)] {
        exec(&mut c, pid, ppid, 1, "/bin/d");
    }
    assert_eq!(c.ancestor_pids(10, 16), [11, 13]);
    exec(&mut c, 12, 12, 1, "/bin/self");
    assert_eq!(c.ancestor_pids(12, 16), Vec::<u32>::new());
}

#[test]
fn ancestors_stop_at_missing_and_reused_parents() {
    let mut c = cache(64);
    exec(&mut c, 20, 21, 5, "/bin/orphan");
    assert_eq!(c.ancestor_pids(20, 16), Vec::<u32>::new());
    exec(&mut c, 30, 31, 5, "/bin/child");
    // 31 now belongs to a process that started after its "child": not the parent.
    exec(&mut c, 31, 1, 9, "/bin/usurper");
    assert_eq!(c.ancestor_pids(30, 16), Vec::<u32>::new());
}

#[test]
fn lookup_at_respects_the_event_time() {
    let mut c = cache(16);
    exec(&mut c, 10, 1, 5, "/bin/a");
    assert!(c.lookup_at(10, 4 * TICK).is_none());
    assert!(c.lookup_at(10, 5 * TICK + 1).is_some());
    assert!(c.lookup_at(10, 100 * TICK).is_some());
    assert!(c.lookup_at(11, 100 * TICK).is_none());
    assert_eq!(c.lookup_or_load(10).unwrap().exe, "/bin/a");
    assert!(c.lookup_or_load(11).is_none());
}

#[test]
fn argv_is_bounded_at_4_kib() {
    let (argv, cut) = bound_argv((0..50).map(|_| "a".repeat(100)));
    assert!(cut);
    assert_eq!(argv.len(), 41);
    assert_eq!(argv[40].len(), ARGV_MAX_BYTES - 40 * 101 - 1);
    let total: usize = argv.iter().map(|a| a.len() + 1).sum();
    assert_eq!(total, ARGV_MAX_BYTES);
    // Multi-byte text is cut at a character boundary.
    let (argv, cut) = bound_argv(["é".repeat(3000)]);
    assert!(cut);
    assert_eq!(argv[0].len(), 4094);
    // Exactly full is not a cut; one more (even empty) argument is.
    assert_eq!(
        bound_argv(["b".repeat(ARGV_MAX_BYTES - 1)]),
        (vec!["b".repeat(ARGV_MAX_BYTES - 1)], false)
    );
    let (argv, cut) = bound_argv(["b".repeat(ARGV_MAX_BYTES - 1), String::new()]);
    assert_eq!((argv.len(), cut), (1, true));
    assert_eq!(bound_argv(Vec::<String>::new()), (vec![], false));
}

#[test]
fn stored_strings_are_bounded() {
    let mut c = cache(4);
    let mut i = info(10, 1, 5, "/bin/a");
    i.exe = format!("/{}", "d".repeat(10_000));
    i.comm = "c".repeat(100);
    i.cgroup_path = Some(format!("/{}", "g".repeat(10_000)));
    c.on_exec(i);
    let r = c.peek(10).unwrap();
    assert_eq!(r.exe.len(), PATH_MAX_BYTES);
    assert_eq!(r.comm.len(), COMM_MAX_BYTES);
    assert_eq!(r.cgroup_path.as_ref().unwrap().len(), PATH_MAX_BYTES);
}
