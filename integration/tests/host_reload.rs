//! Policy reloads on the host (signal tier): SIGHUP swaps the kernel plan with no gap (a
//! binary both policies deny is never let run while reloads come and go), the new rules act in
//! the kernel at once, an invalid policy is refused with the old one left in force, a rule
//! about binds gets the bind tracepoint the start did not attach, a policy the plan maps cannot
//! hold is refused (alone) or undone (together with the running one), a change of the policy
//! file is picked up by the watch, and the kernel's file directory filter follows the watched
//! paths across a reload. Needs root; skips loudly otherwise (fails under
//! ENFORCER_REQUIRE_HOST=1, as in CI).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod host;

use std::{
    os::unix::process::ExitStatusExt as _,
    path::{Path, PathBuf},
    process::Command,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use host::{Engine, actions, can_run, install};
use serde_json::Value;

/// Engines are started one at a time: each would see the others' payloads.
static SERIAL: Mutex<()> = Mutex::new(());

const WRITE_MARKER: &str = env!("CARGO_BIN_EXE_write-marker");

/// A policy that kills the execs of `names` (rule `deny-<name>` each).
fn policy(names: &[&str]) -> String {
    let rules: String = names
        .iter()
        .map(|n| {
            format!("  - id: deny-{n}\n    severity: high\n    expression: exec.file.name == \"{n}\"\n    action: deny\n")
        })
        .collect();
    format!("version: 1\nrules:\n{rules}")
}

/// `app-a`, `app-b` and `app-both` (`write-marker` copies) in `dir`.
fn apps(dir: &Path) -> [PathBuf; 3] {
    ["app-a", "app-b", "app-both"].map(|name| install(Path::new(WRITE_MARKER), dir, name))
}

/// Replaces the policy file the way editors and config managers do (a new inode).
fn replace(path: &Path, text: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Runs `payload` (a `write-marker` copy) with a fresh marker; true when it was let run.
fn ran(payload: &Path, dir: &Path) -> bool {
    let marker = dir.join(format!(
        "marker-{}",
        payload.file_name().unwrap().to_string_lossy()
    ));
    let _ = std::fs::remove_file(&marker);
    let status = Command::new(payload)
        .arg(&marker)
        .arg("x")
        .status()
        .unwrap();
    let wrote = marker.exists();
    assert_eq!(
        wrote,
        status.signal() != Some(libc::SIGKILL),
        "{}: {status}, marker {wrote}",
        payload.display()
    );
    wrote
}

/// Runs a payload without pause in a thread, counting the runs and the ones let run.
struct Looper {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<(u32, u32)>,
}

impl Looper {
    /// Starts running `payload` (markers in `dir`/loop).
    fn start(payload: &Path, dir: &Path) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, payload, dir) = (Arc::clone(&stop), payload.to_path_buf(), dir.join("loop"));
        std::fs::create_dir(&dir).unwrap();
        let thread = std::thread::spawn(move || {
            let (mut runs, mut escaped) = (0u32, 0u32);
            while !flag.load(Ordering::Relaxed) {
                runs += 1;
                escaped += u32::from(ran(&payload, &dir));
                // Paced, so that the engine is not buried in records (a gap of a millisecond
                // still meets several runs over the reloads).
                std::thread::sleep(Duration::from_micros(500));
            }
            (runs, escaped)
        });
        Self { stop, thread }
    }

    /// Stops it: the runs and the ones let run.
    fn stop(self) -> (u32, u32) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

#[test]
fn sighup_swaps_the_plan_without_a_gap_and_refuses_what_it_cannot_apply() {
    if !can_run("sighup_swaps_the_plan_without_a_gap_and_refuses_what_it_cannot_apply") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let [app_a, app_b, app_both] = apps(dir.path());
    let policy_a = policy(&["app-a", "app-both"]);
    let policy_b = policy(&["app-both", "app-b"]);
    let mut engine = Engine::start_with(
        dir.path(),
        &policy_a,
        "block",
        &["--policy-watch", "off", "--events", "none"],
    );
    let policy_path = dir.path().join("policy.yaml");
    assert!(!ran(&app_a, dir.path()), "policy A denies app-a");
    assert!(ran(&app_b, dir.path()), "policy A lets app-b run");

    // While the policy swaps back and forth, app-both (denied by both) is run without pause.
    let looper = Looper::start(&app_both, dir.path());
    let reloads = 12;
    for i in 0..reloads {
        replace(&policy_path, if i % 2 == 0 { &policy_b } else { &policy_a });
        engine.sighup();
        let record = nth_reload(&mut engine, i);
        assert_eq!(record["outcome"], "applied", "{record}");
        assert_eq!(record["trigger"], "sighup");
        assert_eq!(record["policy_generation"], i + 2, "{record}");
        assert_eq!(record["previous_generation"], i + 1, "{record}");
        if i == 0 {
            assert_eq!(record["added"], serde_json::json!(["deny-app-b"]));
            assert_eq!(record["removed"], serde_json::json!(["deny-app-a"]));
        }
    }
    let (runs, escaped) = looper.stop();
    eprintln!("app-both: {runs} runs across {reloads} reloads, {escaped} let run");
    assert!(runs >= u32::try_from(reloads).unwrap(), "{runs} runs");
    assert_eq!(
        escaped, 0,
        "app-both ran {escaped} of {runs} times across {reloads} reloads"
    );
    for record in engine
        .records()
        .iter()
        .filter(|r| r["type"] == "policy_reload")
    {
        assert_eq!(
            record["kernel_entries_removed"], 1,
            "the other app's entry, after the new one was in: {record}"
        );
    }

    // Policy B is in force (12 reloads: B, A, ..., A; one more makes it B).
    replace(&policy_path, &policy_b);
    engine.sighup();
    assert_eq!(nth_reload(&mut engine, reloads)["outcome"], "applied");
    let kills_of_b = actions(&engine.records(), "kill", Some("deny-app-b")).len();
    assert!(!ran(&app_b, dir.path()), "policy B denies app-b");
    assert!(ran(&app_a, dir.path()), "policy B lets app-a run");
    let last_b = nth_record(&mut engine, kills_of_b, "deny-app-b kill", |r| {
        r["type"] == "action" && r["action"] == "kill" && r["rule"] == "deny-app-b"
    });
    assert_eq!(last_b["decided_in"], "kernel", "{last_b:#}");

    // The same files again: nothing to do.
    engine.sighup();
    let same = nth_reload(&mut engine, reloads + 1);
    assert_eq!(same["outcome"], "unchanged", "{same}");
    assert_eq!(same["policy_generation"], reloads + 2);

    // An invalid policy is refused with its place; B stays in force.
    replace(
        &policy_path,
        &format!("{policy_b}  - id: broken\n    expression: exec.file.name ==\n    action: deny\n"),
    );
    engine.sighup();
    let refused = nth_reload(&mut engine, reloads + 2);
    assert_eq!(refused["outcome"], "refused", "{refused}");
    let reason = refused["reason"].as_str().unwrap();
    assert!(reason.contains("policy.yaml:"), "{reason}");
    assert!(!ran(&app_b, dir.path()), "B is still in force");

    // A rule about binds needs the bind tracepoint, which the start did not attach: the
    // reload attaches it.
    let port = 47_333;
    replace(
        &policy_path,
        &format!(
            "{policy_b}  - id: binds\n    expression: bind.addr.port == {port}\n    action: alert\n"
        ),
    );
    engine.sighup();
    let widened = nth_reload(&mut engine, reloads + 3);
    assert_eq!(widened["outcome"], "applied", "{widened}");
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let alert = engine.wait_for(Duration::from_secs(10), "the bind alert", |r| {
        r["type"] == "action" && r["rule"] == "binds"
    });
    assert_eq!(alert["event"]["bind"]["addr"]["port"], port, "{alert}");
    drop(listener);
    assert!(!ran(&app_b, dir.path()), "B is still in force");
    assert!(ran(&app_a, dir.path()));
    let records = engine.stop();
    assert!(records.iter().any(|r| r["type"] == "engine_stop"));
}

#[test]
fn a_changed_policy_file_is_reloaded_by_the_watch() {
    if !can_run("a_changed_policy_file_is_reloaded_by_the_watch") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let app_a = install(Path::new(WRITE_MARKER), dir.path(), "app-a");
    let app_b = install(Path::new(WRITE_MARKER), dir.path(), "app-b");
    let mut engine = Engine::start_with(
        dir.path(),
        &policy(&["app-a"]),
        "block",
        &["--policy-watch", "200ms"],
    );
    assert!(!ran(&app_a, dir.path()));
    let policy_path: PathBuf = dir.path().join("policy.yaml");
    replace(&policy_path, &policy(&["app-b"]));
    let record = nth_reload(&mut engine, 0);
    assert_eq!(record["trigger"], "file_change", "{record}");
    assert_eq!(record["outcome"], "applied", "{record}");
    assert!(!ran(&app_b, dir.path()), "the new policy is in force");
    assert!(ran(&app_a, dir.path()));
    // A broken edit is refused once, not at every poll.
    replace(&policy_path, "rules: [\n");
    let refused = nth_reload(&mut engine, 1);
    assert_eq!(refused["outcome"], "refused", "{refused}");
    std::thread::sleep(Duration::from_secs(1));
    let reloads = engine
        .records()
        .iter()
        .filter(|r| r["type"] == "policy_reload")
        .count();
    assert_eq!(reloads, 2, "no retry of an unchanged broken file");
    assert!(!ran(&app_b, dir.path()), "the last good policy stays");
}

/// A policy whose one rule denies the execs of `listed` and of `count` made-up names starting
/// with `prefix` (a list as large as real hash and name lists get).
fn list_policy(prefix: &str, count: usize, listed: &[&str]) -> String {
    let mut items: Vec<String> = (0..count).map(|i| format!("{prefix}{i:05}")).collect();
    items.extend(listed.iter().map(|n| (*n).to_owned()));
    format!(
        "version: 1\nlists:\n  - name: names\n    type: string\n    items: [{}]\nrules:\n  - id: deny-listed\n    expression: exec.file.name in names\n    action: deny\n",
        items.join(", ")
    )
}

#[test]
fn a_reload_whose_plans_do_not_fit_side_by_side_sweeps_first_and_never_lets_through_what_both_deny()
{
    if !can_run(
        "a_reload_whose_plans_do_not_fit_side_by_side_sweeps_first_and_never_lets_through_what_both_deny",
    ) {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let [app_a, app_b, app_both] = apps(dir.path());
    // 3,002 executable names each: either fits EXEC_NAME_PLAN (4,096) alone, not both at once.
    let policy_a = list_policy("a", 3000, &["app-a", "app-both"]);
    let policy_b = list_policy("b", 3000, &["app-b", "app-both"]);
    let mut engine = Engine::start_with(
        dir.path(),
        &policy_a,
        "block",
        &["--policy-watch", "off", "--events", "none"],
    );
    let policy_path = dir.path().join("policy.yaml");
    assert!(!ran(&app_a, dir.path()), "policy A denies app-a");

    // B fits alone, so the check lets it through; the map fills part-way through the write.
    // The entries both hold are rewritten, A's others swept, then B written, while app-both
    // (denied by both) runs without pause.
    let looper = Looper::start(&app_both, dir.path());
    replace(&policy_path, &policy_b);
    engine.sighup();
    let applied = nth_reload(&mut engine, 0);
    let (runs, escaped) = looper.stop();
    eprintln!("app-both: {runs} runs across the reload, {escaped} let run; {applied}");
    assert_eq!(applied["outcome"], "applied", "{applied}");
    assert_eq!(applied["swept_first"], true, "{applied}");
    assert_eq!(applied["policy_generation"], 2, "{applied}");
    assert_eq!(
        applied["kernel_entries_removed"], 3001,
        "A's own entries: {applied}"
    );
    assert_eq!(escaped, 0, "app-both ran {escaped} of {runs} times");
    assert!(ran(&app_a, dir.path()), "B is in force");
    assert!(!ran(&app_b, dir.path()), "B is in force");
    assert!(!ran(&app_both, dir.path()), "B is in force");

    // A policy too large on its own is refused before anything is written.
    replace(&policy_path, &list_policy("c", 5000, &["app-b"]));
    engine.sighup();
    let refused = nth_reload(&mut engine, 1);
    assert_eq!(refused["outcome"], "refused", "{refused}");
    let reason = refused["reason"].as_str().unwrap();
    assert!(
        reason.contains("5001 executable names (map EXEC_NAME_PLAN holds 4096)")
            && reason.contains("deny-listed at"),
        "{reason}"
    );
    assert_eq!(refused["policy_generation"], 2, "{refused}");
    assert!(ran(&app_a, dir.path()));
    assert!(!ran(&app_b, dir.path()), "B is still in force");

    // A small policy then applies side by side, and B's entries are swept: the maps are clean.
    replace(&policy_path, &policy(&["app-a"]));
    engine.sighup();
    let applied = nth_reload(&mut engine, 2);
    assert_eq!(applied["outcome"], "applied", "{applied}");
    assert!(applied.get("swept_first").is_none(), "{applied}");
    assert_eq!(applied["kernel_entries_removed"], 3002, "{applied}");
    assert!(!ran(&app_a, dir.path()), "the small policy denies app-a");
    assert!(ran(&app_b, dir.path()));
    assert!(ran(&app_both, dir.path()));
    engine.stop();
}

/// The `n`th `policy_reload` record (from 0), waiting for it.
fn nth_reload(engine: &mut Engine, n: usize) -> Value {
    nth_record(engine, n, "policy_reload", |r| r["type"] == "policy_reload")
}

/// The `n`th record (from 0) that `pred` accepts, waiting for it: a kill the kernel made is
/// recorded when the daemon next reads the ring, up to a poll interval later while it polls.
fn nth_record(engine: &mut Engine, n: usize, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(r) = engine.records().into_iter().filter(|r| pred(r)).nth(n) {
            return r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {what} record #{n}: {:#?}",
            engine.records()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A policy alerting on writes below `dir/<sub>/` for each of `subs`.
fn write_watch_policy(dir: &Path, subs: &[&str]) -> String {
    let rules: String = subs
        .iter()
        .map(|sub| {
            format!(
                "  - id: write-{sub}\n    expression: open.file.path startswith \"{}/{sub}/\" && open.is_write\n    action: alert\n",
                dir.display()
            )
        })
        .collect();
    format!("version: 1\nrules:\n{rules}")
}

/// Whether a write-open event of `path` is in `records`.
fn has_write_event(records: &[Value], path: &Path) -> bool {
    records.iter().any(|r| {
        r["type"] == "event"
            && r["event"]["kind"] == "open"
            && r["event"]["file"]["path"] == path.to_str().unwrap()
    })
}

#[test]
fn a_reload_moves_the_kernels_directory_filter_with_the_watched_paths() {
    if !can_run("a_reload_moves_the_kernels_directory_filter_with_the_watched_paths") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (_tmp, dir) = host::canonical_workdir(&["a", "b", "both"]);
    let mut engine = Engine::start(&dir, &write_watch_policy(&dir, &["a", "both"]), "monitor");
    let wait_write = |engine: &mut Engine, path: &Path| {
        std::fs::write(path, b"x").unwrap();
        engine.wait_for(Duration::from_secs(10), &path.display().to_string(), |r| {
            has_write_event(std::slice::from_ref(r), path)
        });
    };
    wait_write(&mut engine, &dir.join("a/1"));
    let b_before = dir.join("b/1");
    std::fs::write(&b_before, b"x").unwrap();

    // Policy B watches b/ in place of a/: the kernel's directory bits must now pass b/ on
    // (written before the settings) and keep both/ (set in both generations' bits).
    replace(
        &dir.join("policy.yaml"),
        &write_watch_policy(&dir, &["b", "both"]),
    );
    engine.sighup();
    assert_eq!(nth_reload(&mut engine, 0)["outcome"], "applied");
    wait_write(&mut engine, &dir.join("b/2"));
    wait_write(&mut engine, &dir.join("both/2"));
    let a_after = dir.join("a/2");
    std::fs::write(&a_after, b"x").unwrap();
    // Written after a/2: once its event is in, a/2 would have been too.
    wait_write(&mut engine, &dir.join("b/3"));
    let records = engine.stop();
    assert!(
        !has_write_event(&records, &b_before),
        "b/ was not watched before the reload"
    );
    assert!(
        !has_write_event(&records, &a_after),
        "a/ is no longer watched after the reload"
    );
}
