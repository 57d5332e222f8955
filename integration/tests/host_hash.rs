//! Host-tier content-hash tests (issue 6): a "miner" that is a copy of `sleep` made unique by
//! appended bytes, its SHA-256 computed here and listed in the test policy's hash list, is
//! killed by rule `miner-exec-hash` whatever its name or path; F14: a binary rewritten in place
//! with the miner's content, a symlink swapped to the miner, and a fresh copy are judged by
//! their new content (no stale verdict); an allowed binary keeps running; monitor mode only
//! records `would_kill`; F11: the miner executed from a memfd is killed by hash too.
//! Needs root; skips loudly otherwise (fails under ENFORCER_REQUIRE_HOST=1).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod host;

use std::{
    os::unix::process::ExitStatusExt as _,
    path::{Path, PathBuf},
    process::{Child, Command},
    sync::Mutex,
    time::Duration,
};

use enforcer_integration::memfd::{self, memfd_with};
use host::{Engine, actions, can_run};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// Engines are started one at a time: each would see the others' execs.
static SERIAL: Mutex<()> = Mutex::new(());

/// Records (and the process) may take a while on a loaded machine; this only bounds a hang.
const WAIT: Duration = Duration::from_secs(20);
/// Longer than the engine's hash-cache settle time (`hash::Config::settle`, one second).
const SETTLE: Duration = Duration::from_millis(1500);

const RULE: &str = "miner-exec-hash";

/// A copy of `sleep` with `tag` appended (an ELF file runs with trailing bytes), mode 0755.
fn sleeper_bytes(tag: &str) -> Vec<u8> {
    let sleep = ["/usr/bin/sleep", "/bin/sleep"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("sleep binary");
    let mut bytes = std::fs::read(sleep).unwrap();
    bytes.extend_from_slice(format!("\nenforcer-test-{tag}\n").as_bytes());
    bytes
}

fn install_bytes(path: &Path, bytes: &[u8]) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The test policy: one kill rule on a hash list file holding `miner`'s SHA-256.
fn policy(dir: &Path, miner_sha256: &str) -> String {
    std::fs::write(
        dir.join("miner_sha256.txt"),
        format!("# test miner\n{miner_sha256}\n"),
    )
    .unwrap();
    format!(
        r#"version: 1
lists:
  - name: miner_sha256
    type: hash
    file: miner_sha256.txt
rules:
  - id: {RULE}
    description: test rule, kills a known miner build by content
    severity: critical
    expression: exec.file.hash.sha256 in miner_sha256
    action: kill
"#
    )
}

/// Runs `path 30` and waits for it: the engine must kill it long before it ends.
fn run_expect_killed(path: &Path) {
    let status = Command::new(path).arg("30").status().unwrap();
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "{} must be killed: {status}",
        path.display()
    );
}

/// Starts `path 30`.
fn spawn(path: &Path) -> Child {
    Command::new(path).arg("30").spawn().unwrap()
}

/// Waits for the exec event of `path` with a hash (a waiting event is written once hashed).
fn hashed_event(engine: &mut Engine, path: &Path, sha256: &str) -> Value {
    let path = path.display().to_string();
    let sha256 = sha256.to_owned();
    engine.wait_for(WAIT, &format!("hashed exec event of {path}"), move |r| {
        r["type"] == "event"
            && r["event"]["exec"]["file"]["path"] == path.as_str()
            && r["event"]["exec"]["file"]["hash"]["sha256"] == sha256.as_str()
    })
}

fn kills_of(records: &[Value], path: &Path) -> Vec<Value> {
    actions(records, "kill", Some(RULE))
        .into_iter()
        .filter(|r| r["event"]["exec"]["file"]["path"] == path.display().to_string().as_str())
        .cloned()
        .collect()
}

#[test]
fn block_mode_kills_a_miner_by_hash_and_judges_replaced_files_by_their_new_content() {
    if !can_run("block_mode_kills_a_miner_by_hash_and_judges_replaced_files_by_their_new_content") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let miner_bytes = sleeper_bytes("miner");
    let allowed_bytes = sleeper_bytes("allowed");
    let miner_sha = sha256_hex(&miner_bytes);
    let allowed_sha = sha256_hex(&allowed_bytes);
    let miner = dir.path().join("kworker_upd");
    install_bytes(&miner, &miner_bytes);
    let allowed = dir.path().join("allowed-tool");
    install_bytes(&allowed, &allowed_bytes);
    let mut engine = Engine::start(dir.path(), &policy(dir.path(), &miner_sha), "block");

    // F2/F3: a renamed miner with no tell-tale arguments, stopped by its content alone: the
    // first exec is hashed in userspace and killed after the fact...
    run_expect_killed(&miner);
    // ...and once its event is written, the daemon has given the file's identity the rule's
    // verdict in the kernel: the next exec is killed in the hook, before it runs.
    hashed_event(&mut engine, &miner, &miner_sha);
    run_expect_killed(&miner);

    // An allowed binary is hashed and keeps running.
    let mut child = spawn(&allowed);
    let ev = hashed_event(&mut engine, &allowed, &allowed_sha);
    assert!(
        matches!(
            ev["event"]["exec"]["file"]["hash"]["status"].as_str(),
            Some("hashed" | "cached")
        ),
        "{ev}"
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "the allowed binary must keep running"
    );
    child.kill().unwrap();
    child.wait().unwrap();

    // F14 (a): a binary hashed as allowed, then rewritten in place with the miner's content.
    let replaced = dir.path().join("replaced-in-place");
    install_bytes(&replaced, &allowed_bytes);
    let mut child = spawn(&replaced);
    hashed_event(&mut engine, &replaced, &allowed_sha);
    child.kill().unwrap();
    child.wait().unwrap();
    let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&replaced).unwrap());
    std::fs::write(&replaced, &miner_bytes).unwrap();
    assert_eq!(
        std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&replaced).unwrap()),
        ino,
        "rewritten in place (same inode)"
    );
    run_expect_killed(&replaced);

    // F14 (b): a symlink to an allowed binary, swapped to the miner.
    let link = dir.path().join("tool-link");
    std::os::unix::fs::symlink(&allowed, &link).unwrap();
    let mut child = spawn(&link);
    hashed_event(&mut engine, &link, &allowed_sha);
    child.kill().unwrap();
    child.wait().unwrap();
    let tmp_link = dir.path().join("tool-link.new");
    std::os::unix::fs::symlink(&miner, &tmp_link).unwrap();
    std::fs::rename(&tmp_link, &link).unwrap();
    run_expect_killed(&link);

    // F14 (c): a fresh copy of the miner under another name.
    let fresh: PathBuf = dir.path().join("fresh-copy");
    install_bytes(&fresh, &miner_bytes);
    run_expect_killed(&fresh);

    engine.wait_for(WAIT, "kill of the fresh copy", |r| {
        r["type"] == "action"
            && r["action"] == "kill"
            && r["event"]["exec"]["file"]["path"] == fresh.display().to_string().as_str()
    });
    let records = engine.stop();
    let miner_kills = kills_of(&records, &miner);
    let decided: Vec<_> = miner_kills
        .iter()
        .map(|k| k["decided_in"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(decided, ["userspace", "kernel"], "{records:#?}");
    let in_kernel = &miner_kills[1];
    assert_eq!(in_kernel["tier"], "signal");
    assert_eq!(in_kernel["event"]["hook"], "tp_btf/sched_process_exec");
    assert!(
        in_kernel["event"]["exec"]["file"]["inode"]
            .as_u64()
            .unwrap_or(0)
            > 0
    );
    println!(
        "second exec of the miner: killed in the kernel ({}), window {} us",
        in_kernel["event"]["hook"], in_kernel["report"]["response_us"]
    );
    for path in [&miner, &replaced, &link, &fresh] {
        let kills = kills_of(&records, path);
        assert!(!kills.is_empty(), "{}: {records:#?}", path.display());
        if path != &miner {
            assert_eq!(kills.len(), 1, "{}: {records:#?}", path.display());
        }
        let kill = &kills[0];
        assert_eq!(kill["report"]["outcome"], "performed");
        if kill["decided_in"] == "userspace" {
            assert_eq!(kill["event"]["exec"]["file"]["hash"]["sha256"], miner_sha);
        }
        println!(
            "hash kill of {}: decided in {}, hook {}, hash {} ({} us queued, {} us hashing), exec-to-kill window {} us",
            path.display(),
            kill["decided_in"],
            kill["event"]["hook"],
            kill["event"]["exec"]["file"]["hash"]["status"],
            kill["event"]["exec"]["file"]["hash"]["queued_us"],
            kill["event"]["exec"]["file"]["hash"]["took_us"],
            kill["report"]["response_us"],
        );
    }
    assert!(
        actions(&records, "kill", Some(RULE))
            .iter()
            .all(|r| r["event"]["exec"]["file"]["hash"]["sha256"] != allowed_sha.as_str()),
        "an allowed binary was killed: {records:#?}"
    );
}

#[test]
fn monitor_mode_records_would_kill_for_a_miner_by_hash_and_lets_it_run() {
    if !can_run("monitor_mode_records_would_kill_for_a_miner_by_hash_and_lets_it_run") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let miner_bytes = sleeper_bytes("miner-monitor");
    let miner_sha = sha256_hex(&miner_bytes);
    let miner = dir.path().join("renamed-miner");
    install_bytes(&miner, &miner_bytes);
    // Only a file whose last change is over a second old goes into the hash cache (a change
    // in the same timestamp tick would keep its key): let it settle, or the second exec is
    // hashed again instead of found in the cache (the engine now starts in well under a
    // second).
    std::thread::sleep(SETTLE);
    let mut engine = Engine::start(dir.path(), &policy(dir.path(), &miner_sha), "monitor");
    let mut child = spawn(&miner);
    let record = engine.wait_for(WAIT, "would_kill", |r| {
        r["type"] == "action" && r["action"] == "would_kill" && r["rule"] == RULE
    });
    assert!(
        child.try_wait().unwrap().is_none(),
        "monitor mode must not kill"
    );
    assert_eq!(record["event"]["exec"]["file"]["hash"]["sha256"], miner_sha);
    assert_eq!(record["decided_in"], "userspace");
    child.kill().unwrap();
    child.wait().unwrap();
    // The second exec is recorded by the kernel from the inode plan (a monitor verdict), and
    // not a second time by userspace.
    hashed_event(&mut engine, &miner, &miner_sha);
    let mut child = spawn(&miner);
    engine.wait_for(WAIT, "would_kill decided in the kernel", |r| {
        r["type"] == "action" && r["action"] == "would_kill" && r["decided_in"] == "kernel"
    });
    assert!(
        child.try_wait().unwrap().is_none(),
        "monitor mode must not kill"
    );
    let path = miner.display().to_string();
    engine.wait_for(WAIT, "second hashed event", move |r| {
        r["type"] == "event"
            && r["event"]["exec"]["file"]["path"] == path.as_str()
            && r["event"]["exec"]["file"]["hash"]["status"] == "cached"
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let records = engine.stop();
    assert!(
        actions(&records, "kill", Some(RULE)).is_empty(),
        "{records:#?}"
    );
    assert_eq!(
        actions(&records, "would_kill", Some(RULE)).len(),
        2,
        "one per exec: {records:#?}"
    );
}

#[test]
fn a_miner_executed_from_a_memfd_is_killed_by_hash() {
    if !can_run("a_miner_executed_from_a_memfd_is_killed_by_hash") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let miner_bytes = sleeper_bytes("miner-memfd");
    let miner_sha = sha256_hex(&miner_bytes);
    let mut engine = Engine::start(dir.path(), &policy(dir.path(), &miner_sha), "block");
    // F11: fileless exec. The child inherits the memfd and executes it through
    // /proc/self/fd/N (what fexecve does); /proc/<pid>/exe then names the memfd.
    let memfd = memfd_with(&miner_bytes).unwrap();
    let exe = memfd::exec_path(&memfd);
    run_expect_killed(Path::new(&exe));
    let kill = engine.wait_for(WAIT, "kill of the memfd miner", |r| {
        r["type"] == "action" && r["action"] == "kill" && r["rule"] == RULE
    });
    assert_eq!(kill["event"]["exec"]["file"]["hash"]["sha256"], miner_sha);
    assert_eq!(kill["event"]["exec"]["file"]["hash"]["source"], "proc_exe");
    println!(
        "memfd miner {:?} killed, window {} us",
        kill["event"]["exec"]["file"]["name"], kill["report"]["response_us"]
    );
    drop(memfd);
    engine.stop();
}
