//! `--self-protect` on a kernel without BPF LSM (the host's signal tier): the engine refuses to
//! start, says why, and leaves nothing behind (no pins, no `engine_start`). A block-mode start
//! with pins is the case that could leave them, so that is the one run. The guards themselves
//! are tested in the VM (`lsm_self_protect`). Needs root; skips loudly otherwise (fails under
//! ENFORCER_REQUIRE_HOST=1), and skips when this host gives the lsm tier.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod host;

use std::{
    collections::BTreeSet,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use enforcer_integration::pins::run_dirs;
use host::{can_run, enforcer_bin};

fn pin_dirs() -> BTreeSet<String> {
    run_dirs().into_iter().collect()
}

#[test]
fn self_protection_without_bpf_lsm_refuses_to_start_and_leaves_no_pins() {
    let test = "self_protection_without_bpf_lsm_refuses_to_start_and_leaves_no_pins";
    if !can_run(test) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let before = pin_dirs();
    let mut child = Command::new(enforcer_bin())
        .args(["run", "--quiet", "--mode", "block", "--self-protect"])
        .args(["--on-crash", "keep-enforcing", "--policy"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../policy/default"))
        .arg("--audit-log")
        .arg(&audit)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        let started = std::fs::read_to_string(&audit)
            .unwrap_or_default()
            .contains("\"type\":\"engine_start\"");
        if started || Instant::now() > deadline {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = child.wait();
            assert!(
                started,
                "{test}: the engine neither started nor exited in 120 s"
            );
            eprintln!("SKIPPED {test}: this host gives the lsm tier (the guards started)");
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "--self-protect needs BPF LSM (the lsm tier); this kernel gives the signal tier"
        ),
        "{stderr}"
    );
    assert_eq!(pin_dirs(), before, "a refused start left pins behind");
    let log = std::fs::read_to_string(&audit).unwrap_or_default();
    assert!(!log.contains("engine_start"), "{log}");
}
