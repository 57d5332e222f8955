//! The enricher over a fake procfs tree (seeding, loading on a miss, PID reuse seen through
//! `/proc`, the JSON the policy evaluator reads) and over this machine's real `/proc`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use enforcer_policy::{Event, Val, schema};
use serde_json::{Value, json};

use super::process_cache::{CacheConfig, ExecInfo, Origin, read_record};
use super::{Chain, Enricher, container::Runtime};

const TICK: u64 = 10_000_000;
const ID: &str = "7951fb549ab99e0722a949b6c121634e1f3a36b5bacbe5392991e3b12251e6b8";

/// A procfs-like directory tree with the files the loader reads.
struct FakeProc {
    dir: tempfile::TempDir,
}

impl FakeProc {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    #[allow(clippy::too_many_arguments)]
    fn add(
        &self,
        pid: u32,
        ppid: u32,
        start_ticks: u64,
        exe: &str,
        argv: &[&str],
        uid: u32,
        cgroup: &str,
    ) {
        let d = self.root().join(pid.to_string());
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir(&d).unwrap();
        let comm = exe.rsplit('/').next().unwrap();
        std::fs::write(
            d.join("stat"),
            format!(
                "{pid} ({comm}) S {ppid} {pid} {pid} 0 -1 4194304 0 0 0 0 0 0 0 0 20 0 1 0 \
                 {start_ticks} 0 0 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 \
                 0 0 0 0 0 0 0 0\n"
            ),
        )
        .unwrap();
        let mut cmdline = argv.join("\0");
        cmdline.push('\0');
        std::fs::write(d.join("cmdline"), cmdline).unwrap();
        std::fs::write(
            d.join("status"),
            format!("Name:\t{comm}\nUid:\t{uid}\t0\t0\t0\nGid:\t0\t0\t0\t0\n"),
        )
        .unwrap();
        std::fs::write(d.join("cgroup"), format!("0::{cgroup}\n")).unwrap();
        std::os::unix::fs::symlink(exe, d.join("exe")).unwrap();
    }

    /// init (1) -> sshd (50) -> bash (77, in a docker container).
    fn tree() -> Self {
        let p = Self::new();
        p.add(1, 0, 0, "/sbin/init", &["/sbin/init"], 0, "/init.scope");
        p.add(
            50,
            1,
            10,
            "/usr/sbin/sshd",
            &["sshd", "-D"],
            0,
            "/system.slice/sshd.service",
        );
        p.add(
            77,
            50,
            20,
            "/usr/bin/bash",
            &["bash", "-c", "echo hi"],
            1000,
            &format!("/system.slice/docker-{ID}.scope"),
        );
        p
    }

    fn enricher(&self, capacity: usize) -> Enricher {
        Enricher::new(CacheConfig {
            capacity,
            exit_grace: Duration::from_secs(3600),
            procfs_root: self.root().to_path_buf(),
            tick_ns: TICK,
        })
    }
}

#[test]
fn seeds_from_a_procfs_tree_skipping_vanished_processes() {
    let p = FakeProc::tree();
    // A process that vanished between the listing and the read, and non-process entries.
    std::fs::create_dir(p.root().join("88")).unwrap();
    std::fs::create_dir(p.root().join("self")).unwrap();
    std::fs::write(p.root().join("uptime"), "1.0 1.0\n").unwrap();
    let mut e = p.enricher(64);
    let report = e.seed_from_proc(p.root()).unwrap();
    assert_eq!(
        (report.loaded, report.skipped, report.truncated),
        (3, 1, false)
    );
    let r = e.cache().peek(77).unwrap();
    assert_eq!((r.ppid, r.start_ns, r.uid), (50, 20 * TICK, Some(1000)));
    assert_eq!((r.exe.as_str(), r.comm.as_str()), ("/usr/bin/bash", "bash"));
    assert_eq!(r.argv, ["bash", "-c", "echo hi"]);
    assert_eq!(r.origin, Origin::Proc);
    let c = r.container.as_ref().unwrap();
    assert_eq!((c.id.as_str(), c.runtime), (ID, Runtime::Docker));
    assert!(e.cache().peek(1).unwrap().container.is_none());
}

#[test]
fn seeding_stops_at_capacity() {
    let p = FakeProc::tree();
    let mut e = p.enricher(2);
    let report = e.seed_from_proc(p.root()).unwrap();
    assert_eq!((report.loaded, report.truncated), (2, true));
    assert_eq!(e.cache().len(), 2);
    assert!(e.seed_from_proc(&p.root().join("missing")).is_err());
}

#[test]
fn process_json_has_the_evaluator_shape() {
    let p = FakeProc::tree();
    let mut e = p.enricher(64);
    e.seed_from_proc(p.root()).unwrap();
    let v = e.process_json_for(77, 20 * TICK + 5);
    let expected = json!({
        "pid": 77, "ppid": 50, "uid": 1000, "comm": "bash", "start_ns": 20 * TICK,
        "file": { "path": "/usr/bin/bash", "name": "bash" },
        "argv": ["bash", "-c", "echo hi"], "argv_truncated": false,
        "cgroup": { "path": format!("/system.slice/docker-{ID}.scope") },
        "container": { "id": ID, "runtime": "docker" },
        "ancestors": [
            { "pid": 50, "ppid": 1, "uid": 0, "comm": "sshd", "start_ns": 10 * TICK,
              "file": { "path": "/usr/sbin/sshd", "name": "sshd" } },
            { "pid": 1, "ppid": 0, "uid": 0, "comm": "init", "start_ns": 0,
              "file": { "path": "/sbin/init", "name": "init" } },
        ],
    });
    assert_eq!(v, expected);

    // The policy evaluator reads every process field from it.
    let ev = Event::from_json(&json!({ "kind": "exec", "process": v })).unwrap();
    let get = |name: &str| ev.get(schema::lookup(name).unwrap()).cloned();
    let s = |x: &str| Val::Str(x.into());
    assert_eq!(get("process.pid"), Some(Val::Int(77)));
    assert_eq!(get("process.file.name"), Some(s("bash")));
    assert_eq!(get("process.parent.file.name"), Some(s("sshd")));
    assert_eq!(get("process.parent.file.path"), Some(s("/usr/sbin/sshd")));
    assert_eq!(
        get("process.ancestors.file.name"),
        Some(Val::List(vec![s("sshd"), s("init")]))
    );
    assert_eq!(
        get("process.ancestors.pid"),
        Some(Val::List(vec![Val::Int(50), Val::Int(1)]))
    );
    assert_eq!(get("process.container.id"), Some(s(ID)));
    assert_eq!(
        get("process.cgroup"),
        Some(s(&format!("/system.slice/docker-{ID}.scope")))
    );
}

#[test]
fn host_processes_have_an_empty_container_id() {
    let p = FakeProc::tree();
    let mut e = p.enricher(64);
    let v = e.process_json_for(50, 10 * TICK);
    assert_eq!(v["container"], json!({ "id": "" }));
    assert_eq!(v["ancestors"][0]["pid"], 1);
    // pid 1 has no ancestors; an unknown process gets only its pid.
    assert_eq!(e.process_json_for(1, 0)["ancestors"], json!([]));
    assert_eq!(e.process_json_for(4242, 0), json!({ "pid": 4242 }));
}

#[test]
fn misses_are_loaded_from_proc_with_their_ancestors() {
    let p = FakeProc::tree();
    let mut e = p.enricher(64);
    assert!(e.cache().is_empty());
    let v = e.process_json_at(77, 1000 * TICK, Chain::With);
    assert_eq!(v["ancestors"].as_array().unwrap().len(), 2);
    assert_eq!(e.cache().stats().proc_loads, 3);
    assert!(e.cache_mut().lookup_or_load(50).is_some());
    assert_eq!(e.cache().stats().proc_loads, 3);
    // An event before the process started is not its event.
    assert_eq!(
        e.process_json_at(77, 19 * TICK, Chain::With),
        json!({ "pid": 77 })
    );
}

#[test]
fn pid_reuse_seen_through_proc_replaces_the_old_record() {
    let p = FakeProc::tree();
    let mut e = p.enricher(64);
    e.cache_mut().on_exec(ExecInfo {
        tgid: 77,
        ppid: 50,
        start_ns: 15 * TICK,
        exe: "/bin/old".into(),
        argv: vec!["old".into()],
        comm: "old".into(),
        uid: 5,
        cgroup_id: Some(9),
        cgroup_path: None,
    });
    // /proc has 77 started at tick 20: a later incarnation.
    let v = e.process_json_for(77, 20 * TICK);
    assert_eq!(v["file"]["path"], "/usr/bin/bash");
    assert_eq!(v.get("cgroup").and_then(|c| c.get("id")), None);
    assert_eq!(e.cache().stats().replaced, 1);
    // Events of the old incarnation no longer resolve, and never to the new one.
    assert_eq!(e.process_json_for(77, 15 * TICK), json!({ "pid": 77 }));
    // Ancestors reject a parent pid reused after the child started.
    p.add(50, 1, 30, "/bin/usurper", &["usurper"], 0, "/");
    let mut fresh = p.enricher(64);
    assert_eq!(
        fresh.process_json_for(77, 20 * TICK)["ancestors"],
        json!([])
    );
}

#[test]
fn enrich_keeps_the_kernel_values() {
    let p = FakeProc::tree();
    let mut e = p.enricher(64);
    let mut process = json!({ "pid": 77, "tid": 78, "uid": 0, "comm": "x", "cgroup": { "id": 7 } });
    e.enrich_process_at(&mut process, 77, 1000 * TICK, Chain::With);
    assert_eq!(process["uid"], 0);
    assert_eq!(process["comm"], "x");
    assert_eq!(process["tid"], 78);
    assert_eq!(process["cgroup"]["id"], 7);
    assert_eq!(
        process["cgroup"]["path"],
        format!("/system.slice/docker-{ID}.scope")
    );
    assert_eq!(process["container"]["id"], ID);
    assert_eq!(process["ancestors"][0]["file"]["name"], "sshd");
}

#[test]
fn finds_this_test_process_in_the_real_proc() {
    let root = Path::new("/proc");
    let mut e = Enricher::default();
    let report = match e.seed_from_proc(root) {
        Ok(r) => r,
        Err(err) => {
            eprintln!("SKIPPED finds_this_test_process_in_the_real_proc: /proc unreadable: {err}");
            return;
        }
    };
    assert!(report.loaded > 0, "{report:?}");
    let pid = std::process::id();
    let tick = e.cache().config().tick_ns;
    let Some(me) = read_record(root, pid, tick) else {
        eprintln!("SKIPPED finds_this_test_process_in_the_real_proc: /proc/{pid}/stat unreadable");
        return;
    };
    let v = e.process_json_for(pid, me.start_ns);
    assert_eq!(v["pid"], pid);
    if let Ok(exe) = std::env::current_exe() {
        assert_eq!(v["file"]["path"], exe.to_string_lossy().as_ref());
    }
    let ancestors = v["ancestors"].as_array().expect("ancestors");
    assert!(!ancestors.is_empty(), "{v}");
    // Each ancestor is the parent of the one before it.
    let mut child: &Value = &v;
    for a in ancestors {
        assert_eq!(child["ppid"], a["pid"], "{v}");
        assert!(a["start_ns"].as_u64() <= child["start_ns"].as_u64(), "{v}");
        child = a;
    }
    let last = ancestors.last().map(|a| a["pid"].clone());
    if ancestors.len() < super::process_cache::DEFAULT_MAX_DEPTH && last != Some(json!(1)) {
        // In a pid namespace whose init's parent is outside, the chain ends at ppid 0.
        assert_eq!(child["ppid"], 0, "{v}");
        eprintln!("NOTE: the ancestor chain ends at {last:?} (a pid namespace without pid 1)");
    } else {
        assert_eq!(last, Some(json!(1)), "{v}");
    }
}

#[test]
fn the_exit_of_a_cached_process_reads_nothing_from_proc() {
    let p = FakeProc::tree();
    let mut e = p.enricher(64);
    e.seed_from_proc(p.root()).unwrap();
    let loads = e.cache().stats();
    // The process is still in /proc (a zombie): the old path read it and kept the cached
    // record (same incarnation); the new one answers from the cache alone, with the same JSON.
    assert!(e.cache_mut().on_exit(77, 3, 0));
    let mut process = json!({ "pid": 77, "comm": "bash" });
    e.enrich_exiting_process_at(&mut process, 77, 1000 * TICK, Chain::With);
    assert_eq!(e.cache().stats(), loads, "no /proc read");
    assert_eq!(process["exit"], json!({ "code": 3, "signal": 0 }));
    assert_eq!(process["ancestors"][0]["file"]["name"], "sshd");
    let mut old = json!({ "pid": 77, "comm": "bash" });
    e.enrich_process_at(&mut old, 77, 1000 * TICK, Chain::With);
    assert_eq!(process, old);
    // An exit before the cached incarnation started is not its exit: /proc decides, as before.
    let mut early = json!({ "pid": 77 });
    e.enrich_exiting_process_at(&mut early, 77, 19 * TICK, Chain::With);
    assert_eq!(early, json!({ "pid": 77 }));
}
