//! Guest paths that the host runner (which builds the initramfs) and the guest harness (which
//! runs inside the VM) agree on. Written once here so the two sides cannot drift apart.

/// The guest harness, run by `/init`.
pub const GUEST_HARNESS: &str = "/bin/vm-guest";
/// The engine binary under test; absent when the host had no enforcer build.
pub const ENFORCER: &str = "/bin/enforcer";
/// The test payload that writes a marker file (`write-marker FILE ARGS...`).
pub const WRITE_MARKER: &str = "/bin/write-marker";
/// The policy with the rules `deny-write-marker` (by name) and `deny-marker-copy-by-path`.
pub const DENY_MARKER_POLICY: &str = "/etc/enforcer/deny-marker.yaml";
/// Id of [`DENY_MARKER_POLICY`]'s rule about the payload's basename.
pub const DENY_MARKER_RULE: &str = "deny-write-marker";
/// Id of [`DENY_MARKER_POLICY`]'s rule about the path [`MARKER_COPY`] (a path rule: the
/// kernel's path plan).
pub const DENY_MARKER_PATH_RULE: &str = "deny-marker-copy-by-path";
/// Where a case copies the payload under another name, which only the path rule matches.
pub const MARKER_COPY: &str = "/tmp/marker-copy";
/// The statically linked busybox that provides the shell and the applets.
pub const BUSYBOX: &str = "/bin/busybox";
/// The tmpfs where cases write markers, logs and audit logs.
pub const SCRATCH_DIR: &str = "/tmp";
/// The policy of the stratum cases (`stratum-subscribe-deny`, `stratum-login-kill`).
pub const STRATUM_POLICY: &str = "/etc/enforcer/deny-stratum.yaml";
/// The mock stratum pool (`mock-pool --listen ADDR... --record FILE`).
pub const MOCK_POOL: &str = "/bin/mock-pool";
/// The stratum client (`stratum-client --connect ADDR --dialect D --write-call C`).
pub const STRATUM_CLIENT: &str = "/bin/stratum-client";
/// A connect submitted through io_uring (`io-uring-client --connect ADDR`).
pub const IO_URING_CLIENT: &str = "/bin/io-uring-client";
/// The policy of the network cases (pool look-ups and pool-address connects).
pub const NETWORK_POLICY: &str = "/etc/enforcer/deny-network.yaml";
/// The policy of the bind/accept case (alert-only rules about binds and accepts).
pub const SOCKETS_POLICY: &str = "/etc/enforcer/watch-sockets.yaml";
/// The policy of the DNS response case (a question rule and an answer rule, alert only).
pub const DNS_POLICY: &str = "/etc/enforcer/watch-dns.yaml";
/// The policy of the learned-address case (pool lookups watched, connects to their answers
/// denied).
pub const LEARNED_POLICY: &str = "/etc/enforcer/learned-pool.yaml";
/// The policy of the file cases (protected files, a watched directory, the huge-page rule).
pub const FILES_POLICY: &str = "/etc/enforcer/protect-files.yaml";
/// The policy of the file operation case (link, mkdir, rmdir, truncate, mount, umount, fchmod,
/// fchown, setxattr denied; utimes watched).
pub const FILE_OPS_POLICY: &str = "/etc/enforcer/file-ops.yaml";
/// The stub DNS resolver (`stub-dns --listen ADDR --answer NAME=IP... --record FILE`).
pub const STUB_DNS: &str = "/bin/stub-dns";
/// The DNS client (`dns-client --server ADDR --name NAME --via CALL`).
pub const DNS_CLIENT: &str = "/bin/dns-client";
/// The fake miner fixture (`fake-miner --spin-threads N ... [-- MINER_ARGS]`).
pub const FAKE_MINER: &str = "/bin/fake-miner";
/// The shipped policy directory (`policy/default`, its YAML files and `lists/`).
pub const DEFAULT_POLICY_DIR: &str = "/etc/enforcer/default";
/// The kernel-activity fixture (`kernel-ops OP [ARG]`).
pub const KERNEL_OPS: &str = "/bin/kernel-ops";
/// The policy of the kernel-activity case (module loads and ptrace denied, the rest watched).
pub const KERNEL_POLICY: &str = "/etc/enforcer/vm-kernel.yaml";
/// Where the image carries each cached kernel's msr module: `<dir>/<release>/msr.ko`, so the
/// guest picks its own by `uname -r` (one image serves every kernel).
pub const MODULES_DIR: &str = "/lib/modules";

/// The socket diagnostics modules, in load order (`tcp_diag` needs `inet_diag`): Debian builds
/// them as modules, and a guest has no `modprobe` to load them on demand, so the signal-tier
/// case loads them before the engine aborts a refused connection with `SOCK_DESTROY`.
pub const DIAG_MODULES: [&str; 2] = ["inet_diag", "tcp_diag"];

/// The guest path of the module `name` built for the kernel `release`.
pub fn module(release: &str, name: &str) -> String {
    format!("{MODULES_DIR}/{release}/{name}.ko")
}

/// The guest path of the msr module built for the kernel `release`.
pub fn msr_module(release: &str) -> String {
    module(release, "msr")
}
