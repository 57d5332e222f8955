//! Host-tier test of `--never-kill` in the kernel (signal tier): two copies of the test payload
//! share a name a kernel kill rule matches; the one listed with `--never-kill` runs and the
//! kernel writes a `spared` record, the other is killed before it runs user code.
//! Needs root; skips loudly otherwise (fails under ENFORCER_REQUIRE_HOST=1).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod host;

use std::{os::unix::process::ExitStatusExt as _, path::Path, process::Command, time::Duration};

use host::{Engine, actions, can_run, install};

const WRITE_MARKER: &str = env!("CARGO_BIN_EXE_write-marker");
const RULE: &str = "kill-by-name";

#[test]
fn a_never_kill_binary_is_spared_by_the_kernel_and_another_copy_is_killed() {
    if !can_run("a_never_kill_binary_is_spared_by_the_kernel_and_another_copy_is_killed") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for sub in ["protected", "other"] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
    }
    let protected = install(
        Path::new(WRITE_MARKER),
        &dir.path().join("protected"),
        "fake-minerd",
    );
    let other = install(
        Path::new(WRITE_MARKER),
        &dir.path().join("other"),
        "fake-minerd",
    );
    let policy = format!(
        "version: 1\nrules:\n  - id: {RULE}\n    description: test rule, kills by basename in the kernel\n    severity: high\n    expression: exec.file.name == \"fake-minerd\"\n    action: kill\n"
    );
    let never_kill = protected.display().to_string();
    let mut engine = Engine::start_with(
        dir.path(),
        &policy,
        "block",
        &["--never-kill", never_kill.as_str()],
    );

    let marker = dir.path().join("m-protected");
    let status = Command::new(&protected).arg(&marker).status().unwrap();
    assert!(status.success(), "the --never-kill copy must run: {status}");
    assert!(marker.exists());
    let marker = dir.path().join("m-other");
    let status = Command::new(&other).arg(&marker).status().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
    assert!(!marker.exists(), "the other copy ran user code");

    engine.wait_for(Duration::from_secs(20), "the kill of the other copy", |r| {
        r["type"] == "action" && r["action"] == "kill"
    });
    let records = engine.stop();
    let spared = actions(&records, "spared", Some(RULE));
    assert_eq!(spared.len(), 1, "{records:#?}");
    assert_eq!(spared[0]["decided_in"], "kernel");
    assert_eq!(spared[0]["report"]["outcome"], "spared");
    assert_eq!(spared[0]["event"]["exec"]["file"]["path"], never_kill);
    let killed = actions(&records, "kill", Some(RULE));
    assert_eq!(killed.len(), 1, "{records:#?}");
    assert_eq!(
        killed[0]["event"]["exec"]["file"]["path"],
        other.display().to_string()
    );
    assert_eq!(killed[0]["decided_in"], "kernel");
}
