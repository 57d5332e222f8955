//! The tier probe: can this kernel run BPF LSM programs? (`bpf` in the active LSM list, and an
//! LSM program actually loads: some kernels list `bpf` and still refuse, as the build host does.)

use std::{fs, io, path::Path};

/// Where securityfs exposes the active LSM list.
pub const LSM_LIST: &str = "/sys/kernel/security/lsm";
const SECURITYFS: &str = "/sys/kernel/security";

/// The running kernel's release (`uname -r`), empty when it cannot be read.
pub fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// What the kernel lets the engine do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelTier {
    /// BPF LSM hooks load: deny in the kernel.
    Lsm,
    /// Tracepoints and `bpf_send_signal`: kill before the new image runs.
    Signal,
}

impl KernelTier {
    /// Name used in records and output.
    pub fn name(self) -> &'static str {
        match self {
            KernelTier::Lsm => "lsm",
            KernelTier::Signal => "signal",
        }
    }
}

/// Where the engine sees the file and kernel-activity operations the LSM hooks report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecurityHooks {
    /// BPF LSM programs (lsm tier): they can refuse.
    Lsm,
    /// fentry programs on the hooks' `security_*` functions (signal tier on kernels with BPF
    /// trampolines; `trampolines.rs`): they can kill.
    Fentry,
    /// Not at the hooks: syscall tracepoints (signal tier otherwise).
    Tracepoints,
}

impl SecurityHooks {
    /// Whether programs run at the LSM hooks (so the tracepoints they replace stay detached).
    pub fn at_hooks(self) -> bool {
        self != Self::Tracepoints
    }
}

/// Reads the active LSM list, mounting securityfs first when it is not mounted.
pub fn active_lsms() -> io::Result<String> {
    match fs::read_to_string(LSM_LIST) {
        Ok(list) => Ok(list),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            mount_securityfs()?;
            fs::read_to_string(LSM_LIST)
        }
        Err(err) => Err(err),
    }
}

fn mount_securityfs() -> io::Result<()> {
    if !Path::new(SECURITYFS).is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "/sys/kernel/security does not exist",
        ));
    }
    nix::mount::mount(
        Some("securityfs"),
        SECURITYFS,
        Some("securityfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .map_err(io::Error::from)
}

/// Whether `bpf` is in a comma-separated LSM list.
pub fn lists_bpf(list: &str) -> bool {
    list.trim().split(',').any(|lsm| lsm == "bpf")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bpf_must_be_a_whole_entry() {
        assert!(lists_bpf("lockdown,capability,bpf\n"));
        assert!(lists_bpf("bpf"));
        assert!(!lists_bpf("lockdown,capability,landlock"));
        assert!(!lists_bpf("notbpf,bpfx"));
    }
}
