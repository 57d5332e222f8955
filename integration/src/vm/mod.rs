//! The VM runner for LSM-tier tests.
//!
//! The host kernel refuses BPF LSM programs, so these tests boot a throw-away QEMU (TCG) VM per
//! kernel. The pieces, one job each:
//!
//! - [`paths`]: where the workspace, the kernel cache and the runner's cache directory are;
//! - [`kernels`]: finds the cached Debian kernels (`.cache/kernels/<name>/vmlinuz`);
//! - [`preflight`]: checks the host can run a VM at all (root, QEMU, busybox, cpio, gzip);
//! - [`ldd`]: lists the shared libraries a host binary needs;
//! - [`init_script`]: renders the guest's `/init`;
//! - [`initramfs`]: stages binaries, libraries, busybox and files, packs them with cpio + gzip;
//! - [`qemu`]: boots one kernel with a hard timeout and captures the serial console;
//! - [`protocol`]: the `VMTEST` line format shared by the guest harness and the host;
//! - [`console`]: turns a captured console into per-case results;
//! - [`layout`]: the guest paths that the runner and the guest harness agree on;
//! - [`run`]: boots one kernel and parses its console in one call.

pub mod console;
pub mod init_script;
pub mod initramfs;
pub mod kernels;
pub mod layout;
pub mod ldd;
pub mod paths;
pub mod preflight;
pub mod protocol;
pub mod qemu;
pub mod run;
