//! Can this host run the VM tests at all? Checks for root, QEMU, static busybox, cpio, gzip
//! and ldd, and reads the environment switches that decide between skipping and failing.

use std::path::PathBuf;

use super::layout;
use super::paths::{find_in_path, is_executable_file};

/// `ENFORCER_REQUIRE_VM=1` turns every reason to skip into a test failure (CI sets it).
pub const REQUIRE_VM_ENV: &str = "ENFORCER_REQUIRE_VM";
/// `ENFORCER_VM_KERNELS=6.1,6.12` restricts the kernels booted.
pub const KERNELS_ENV: &str = "ENFORCER_VM_KERNELS";
/// `ENFORCER_VM_CASES=a,b` restricts the guest cases run.
pub const CASES_ENV: &str = "ENFORCER_VM_CASES";
/// `ENFORCER_VM_TIMEOUT_SECS=N` overrides the per-boot timeout.
pub const TIMEOUT_ENV: &str = "ENFORCER_VM_TIMEOUT_SECS";
/// `ENFORCER_VM_ECHO=1` copies the guest console to stderr while it runs.
pub const ECHO_ENV: &str = "ENFORCER_VM_ECHO";
/// `ENFORCER_BIN=PATH` names the engine binary to put into the guest.
pub const ENFORCER_BIN_ENV: &str = "ENFORCER_BIN";

/// The QEMU system emulator the runner starts.
pub const QEMU: &str = "qemu-system-x86_64";

/// Host tools the runner found.
#[derive(Debug, Clone)]
pub struct HostTools {
    /// `qemu-system-x86_64`.
    pub qemu: PathBuf,
    /// Static busybox (from `busybox-static`), copied into the guest.
    pub busybox: PathBuf,
}

/// Checks everything the runner needs; `Err` lists every missing piece, one per entry.
pub fn check_host() -> Result<HostTools, Vec<String>> {
    let mut problems = Vec::new();
    if !nix::unistd::geteuid().is_root() {
        problems.push("not running as root".to_owned());
    }
    let qemu = find_in_path(QEMU);
    if qemu.is_none() {
        problems.push(format!(
            "{QEMU} not found on PATH (apt-get install qemu-system-x86)"
        ));
    }
    let busybox = PathBuf::from(layout::BUSYBOX);
    if !is_executable_file(&busybox) {
        problems.push(format!(
            "{} missing (apt-get install busybox-static)",
            busybox.display()
        ));
    }
    for tool in ["cpio", "gzip", "ldd"] {
        if find_in_path(tool).is_none() {
            problems.push(format!("{tool} not found on PATH"));
        }
    }
    match (qemu, problems.is_empty()) {
        (Some(qemu), true) => Ok(HostTools { qemu, busybox }),
        _ => Err(problems),
    }
}

/// True when `ENFORCER_REQUIRE_VM=1`: the caller must fail instead of skipping.
pub fn vm_required() -> bool {
    std::env::var(REQUIRE_VM_ENV).is_ok_and(|v| v.trim() == "1")
}

/// A non-empty environment variable, trimmed.
pub fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}
