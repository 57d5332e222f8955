//! Names of the maps and globals the kernel programs define, written once for both sides.
//! What each map holds is documented where it is defined, in `enforcer-ebpf/src/maps.rs`.

/// Ring buffer of event records (every record starts with an [`crate::event::EventHeader`]).
pub const EVENTS: &str = "EVENTS";
/// Ring buffer of fork and exit records (the process cache's feed), written without waking
/// the daemon unless a rule is about them (see [`crate::plan::RECORD_LIFECYCLE_WAKE`]).
pub const LIFECYCLE: &str = "LIFECYCLE";
/// One `u32`: 1 while the daemon reads `EVENTS` on its millisecond poll timer (it is busy), so
/// `EVENTS` records are submitted without a wake-up (see [`crate::plan::EVENTS_WAKE_BYTES`]).
pub const EVENTS_POLLED: &str = "EVENTS_POLLED";
/// Per-CPU counters indexed by [`crate::event::Counter`].
pub const COUNTERS: &str = "COUNTERS";
/// Exec plan: executable basename -> verdict.
pub const EXEC_NAME_PLAN: &str = "EXEC_NAME_PLAN";
/// Exec plan: executable path -> verdict.
pub const EXEC_PATH_PLAN: &str = "EXEC_PATH_PLAN";
/// Exec plan by file identity: `plan::InodeKey` -> verdict, written by the daemon when a file's
/// hash matches a deny or kill rule.
pub const EXEC_INODE_PLAN: &str = "EXEC_INODE_PLAN";
/// Exec plan by content: `plan::HashKey` (SHA-256) -> verdict, from the policy's hash lists
/// (deny/kill rules on `exec.file.hash.sha256`); matched by the lsm tier's sleepable
/// `bprm_creds_from_file` program with `bpf_ima_file_hash`.
pub const EXEC_HASH_PLAN: &str = "EXEC_HASH_PLAN";
/// Exec plan by argument: `plan::SchemeKey` (a URL scheme before `://` in an argument after
/// `argv[0]`) -> verdict, from kill/deny rules on `exec.args contains "scheme://"`.
pub const EXEC_SCHEME_PLAN: &str = "EXEC_SCHEME_PLAN";
/// Exec plan by flag: `plan::FlagKey` (an argument after `argv[0]` that starts with `--`, up
/// to its first `=`) -> verdict, from kill/deny rules on `exec.args startswith "--flag"`.
pub const EXEC_FLAG_PLAN: &str = "EXEC_FLAG_PLAN";
/// Executables whose arguments the argument search (schemes and flags) skips:
/// `plan::NameKey` (basename) -> the policy generation that wrote it (the programs those
/// rules except, e.g. `grep`; the kernel tests presence only).
pub const EXEC_ARGS_SPARED: &str = "EXEC_ARGS_SPARED";
/// Executables the kernel never kills (`enforcer run --never-kill`): `plan::FileId` -> 1.
pub const NEVER_KILL: &str = "NEVER_KILL";

/// Payload plan: JSON-RPC method of a process's socket write -> verdict.
pub const PAYLOAD_METHOD_PLAN: &str = "PAYLOAD_METHOD_PLAN";

/// DNS plan, exact question names: `net::name_hash` of the name -> verdict.
pub const DNS_NAME_PLAN: &str = "DNS_NAME_PLAN";
/// DNS plan, domains and their sub-domains: `net::name_hash` of the domain -> verdict
/// (longest listed suffix wins; `actions == 0` means excluded).
pub const DNS_DOMAIN_PLAN: &str = "DNS_DOMAIN_PLAN";
/// Connect plan, IPv4: LPM trie of 4-byte addresses -> verdict.
pub const CONNECT_V4_PLAN: &str = "CONNECT_V4_PLAN";
/// Connect plan, IPv6: LPM trie of 16-byte addresses -> verdict.
pub const CONNECT_V6_PLAN: &str = "CONNECT_V6_PLAN";
/// Plan-wide settings (`plan::PlanSettings`): which families the kernel may filter.
pub const PLAN_SETTINGS: &str = "PLAN_SETTINGS";

/// File watch plan: `file::FileWatchKey` (path hash, operation, exact or prefix) -> verdict.
pub const FILE_WATCH: &str = "FILE_WATCH";
/// The directories on the way to the watched paths: `file::path_hash` of every leading part
/// of every watched path (`/etc`, `/etc/cron.d`), and of a watched directory followed by `/`
/// (`/etc/cron.d/`: its whole subtree is watched) -> the policy generation that wrote it (see
/// `plan::RECORD_FILE_DIRS`). The daemon's exact record: the kernel reads the bits derived
/// from it, [`FILE_DIR_BITS`].
pub const FILE_WATCH_DIRS: &str = "FILE_WATCH_DIRS";
/// Slot 0: the [`crate::file::DirBits`] of `FILE_WATCH_DIRS`, which the kernel's directory
/// filter reads.
pub const FILE_DIR_BITS: &str = "FILE_DIR_BITS";
/// Kernel-activity syscalls: syscall number -> `kernel_event::KernelSyscall` value.
pub const KERNEL_SYSCALLS: &str = "KERNEL_SYSCALLS";
/// Kernel-activity plan: `kernel_event::KernelOp` -> verdict (`actions == 0`: none).
pub const KERNEL_OP_PLAN: &str = "KERNEL_OP_PLAN";

/// How many entries the plan maps written from a policy hold: their `max_entries` in the
/// kernel object, and what the loader checks a policy's plan against before writing it.
pub mod capacity {
    /// [`super::EXEC_NAME_PLAN`].
    pub const EXEC_NAME_PLAN: u32 = 4096;
    /// [`super::EXEC_PATH_PLAN`].
    pub const EXEC_PATH_PLAN: u32 = 4096;
    /// [`super::EXEC_HASH_PLAN`].
    pub const EXEC_HASH_PLAN: u32 = 16384;
    /// [`super::EXEC_SCHEME_PLAN`].
    pub const EXEC_SCHEME_PLAN: u32 = 256;
    /// [`super::EXEC_FLAG_PLAN`].
    pub const EXEC_FLAG_PLAN: u32 = 256;
    /// [`super::EXEC_ARGS_SPARED`].
    pub const EXEC_ARGS_SPARED: u32 = 1024;
    /// [`super::PAYLOAD_METHOD_PLAN`].
    pub const PAYLOAD_METHOD_PLAN: u32 = 256;
    /// [`super::DNS_NAME_PLAN`].
    pub const DNS_NAME_PLAN: u32 = 65536;
    /// [`super::DNS_DOMAIN_PLAN`].
    pub const DNS_DOMAIN_PLAN: u32 = 65536;
    /// [`super::CONNECT_V4_PLAN`] (the policy's prefixes and the addresses learned from DNS
    /// answers).
    pub const CONNECT_V4_PLAN: u32 = 65536;
    /// [`super::CONNECT_V6_PLAN`] (as [`CONNECT_V4_PLAN`]).
    pub const CONNECT_V6_PLAN: u32 = 16384;
    /// [`super::FILE_WATCH`].
    pub const FILE_WATCH: u32 = 16384;
    /// [`super::FILE_WATCH_DIRS`] (a few per watched path, shared between paths).
    pub const FILE_WATCH_DIRS: u32 = 16384;

    /// The capacity of the plan map named `map` (`None`: not a map written from a policy).
    pub fn of(map: &str) -> Option<u32> {
        Some(match map {
            super::EXEC_NAME_PLAN => EXEC_NAME_PLAN,
            super::EXEC_PATH_PLAN => EXEC_PATH_PLAN,
            super::EXEC_HASH_PLAN => EXEC_HASH_PLAN,
            super::EXEC_SCHEME_PLAN => EXEC_SCHEME_PLAN,
            super::EXEC_FLAG_PLAN => EXEC_FLAG_PLAN,
            super::EXEC_ARGS_SPARED => EXEC_ARGS_SPARED,
            super::PAYLOAD_METHOD_PLAN => PAYLOAD_METHOD_PLAN,
            super::DNS_NAME_PLAN => DNS_NAME_PLAN,
            super::DNS_DOMAIN_PLAN => DNS_DOMAIN_PLAN,
            super::CONNECT_V4_PLAN => CONNECT_V4_PLAN,
            super::CONNECT_V6_PLAN => CONNECT_V6_PLAN,
            super::FILE_WATCH => FILE_WATCH,
            super::FILE_WATCH_DIRS => FILE_WATCH_DIRS,
            _ => return None,
        })
    }
}

/// Self-protection settings: slot 0 holds the [`crate::guard::GuardSettings`].
pub const SELF_GUARD: &str = "SELF_GUARD";
/// Ids of the engine's maps, which only the engine may open for writing under
/// self-protection.
pub const GUARDED_MAPS: &str = "GUARDED_MAPS";
/// Identities of the audit log's files, which only the engine may remove, truncate or open for
/// writing under self-protection.
pub const GUARDED_FILES: &str = "GUARDED_FILES";

/// Read-only global holding the [`crate::config::EngineConfig`].
pub const GLOBAL_CONFIG: &str = "CONFIG";
/// Read-only global holding the [`crate::offsets::KernelOffsets`].
pub const GLOBAL_OFFSETS: &str = "OFFSETS";
/// Read-only global holding the [`crate::file::PathSyscalls`].
pub const GLOBAL_PATH_SYSCALLS: &str = "PATH_SYSCALLS";

/// Program names (the Rust function names in `enforcer-ebpf`).
pub mod programs {
    /// LSM `bprm_check_security`: exec deny (lsm tier).
    pub const LSM_BPRM_CHECK_SECURITY: &str = "lsm_bprm_check_security";
    /// Raw tracepoint `sched_process_exec`: exec records, kill in the signal tier.
    pub const TP_SCHED_PROCESS_EXEC: &str = "tp_sched_process_exec";
    /// Raw tracepoint `sched_process_fork`: new processes (for the process cache).
    pub const TP_SCHED_PROCESS_FORK: &str = "tp_sched_process_fork";
    /// Raw tracepoint `sched_process_exit`: ended processes (for the process cache).
    pub const TP_SCHED_PROCESS_EXIT: &str = "tp_sched_process_exit";
    /// Tracepoints `syscalls/sys_enter_{write,sendto,sendmsg,sendmmsg,writev}` (one program
    /// attached five times): DNS query and first-payload classification.
    pub const TP_SYS_ENTER_SEND: &str = "tp_sys_enter_send";
    /// LSM `socket_sendmsg`: payload and DNS deny (lsm tier).
    pub const LSM_SOCKET_SENDMSG: &str = "lsm_socket_sendmsg";
    /// Tracepoint `syscalls/sys_enter_connect`: connect records, kill in the signal tier.
    pub const TP_SYS_ENTER_CONNECT: &str = "tp_sys_enter_connect";
    /// Tracepoint `syscalls/sys_enter_bind`: bind records (every tier, when a rule asks).
    pub const TP_SYS_ENTER_BIND: &str = "tp_sys_enter_bind";
    /// Tracepoints `syscalls/sys_exit_accept{,4}` (one program attached twice): accepted
    /// connections (every tier, when a rule asks).
    pub const TP_SYS_EXIT_ACCEPT: &str = "tp_sys_exit_accept";
    /// `cgroup_skb/ingress` on the cgroup v2 root: DNS responses (every tier).
    pub const CGROUP_SKB_DNS_RESPONSE: &str = "cgroup_skb_dns_response";
    /// `cgroup/connect4` on the cgroup v2 root: IPv4 connect records and deny (signal and
    /// monitor tiers).
    pub const CGROUP_CONNECT4: &str = "cgroup_connect4";
    /// `cgroup/connect6` on the cgroup v2 root: IPv6 connect records and deny (signal and
    /// monitor tiers).
    pub const CGROUP_CONNECT6: &str = "cgroup_connect6";
    /// `cgroup_skb/egress` on the cgroup v2 root: DNS queries and JSON-RPC payloads leaving a
    /// socket, classified and dropped (signal and monitor tiers; replaces the send
    /// tracepoints).
    pub const CGROUP_SKB_EGRESS: &str = "cgroup_skb_egress";
    /// `cgroup/sendmsg4` on the cgroup v2 root: notes the sender of an unconnected UDP
    /// datagram as its socket's owner (signal and monitor tiers).
    pub const CGROUP_SENDMSG4: &str = "cgroup_sendmsg4";
    /// `cgroup/sendmsg6`: as `cgroup/sendmsg4`, for IPv6.
    pub const CGROUP_SENDMSG6: &str = "cgroup_sendmsg6";
    /// LSM `socket_connect`: connect records and deny (lsm tier).
    pub const LSM_SOCKET_CONNECT: &str = "lsm_socket_connect";
    /// Tracepoints `syscalls/sys_exit_{open,openat,openat2,creat}` (one program): write opens
    /// of watched paths (signal and monitor tiers).
    pub const TP_SYS_EXIT_OPEN: &str = "tp_sys_exit_open";
    /// Tracepoints `syscalls/sys_enter_*` of the path syscalls (one program): path operations
    /// on watched paths (signal and monitor tiers; in the lsm tier only setxattr and utimes,
    /// which no path LSM hook sees).
    pub const TP_SYS_ENTER_PATH: &str = "tp_sys_enter_path";
    /// LSM `file_open`: write opens of watched paths, deny (lsm tier).
    pub const LSM_FILE_OPEN: &str = "lsm_file_open";
    /// LSM `path_unlink` (lsm tier).
    pub const LSM_PATH_UNLINK: &str = "lsm_path_unlink";
    /// LSM `path_rename` (lsm tier).
    pub const LSM_PATH_RENAME: &str = "lsm_path_rename";
    /// LSM `path_chmod` (lsm tier).
    pub const LSM_PATH_CHMOD: &str = "lsm_path_chmod";
    /// LSM `path_chown` (lsm tier).
    pub const LSM_PATH_CHOWN: &str = "lsm_path_chown";
    /// LSM `path_link` (lsm tier).
    pub const LSM_PATH_LINK: &str = "lsm_path_link";
    /// LSM `path_symlink` (lsm tier).
    pub const LSM_PATH_SYMLINK: &str = "lsm_path_symlink";
    /// LSM `path_mkdir` (lsm tier).
    pub const LSM_PATH_MKDIR: &str = "lsm_path_mkdir";
    /// LSM `path_rmdir` (lsm tier).
    pub const LSM_PATH_RMDIR: &str = "lsm_path_rmdir";
    /// LSM `path_truncate` (lsm tier): truncate(2); on 6.1 ftruncate and `O_TRUNC` too.
    pub const LSM_PATH_TRUNCATE: &str = "lsm_path_truncate";
    /// LSM `file_truncate` (lsm tier, kernels 6.2+): ftruncate and `O_TRUNC` opens.
    pub const LSM_FILE_TRUNCATE: &str = "lsm_file_truncate";
    /// LSM `sb_mount` (lsm tier).
    pub const LSM_SB_MOUNT: &str = "lsm_sb_mount";
    /// LSM `move_mount` (lsm tier, kernels 5.2+ with the hook: 6.1 has it).
    pub const LSM_MOVE_MOUNT: &str = "lsm_move_mount";
    /// LSM `sb_umount` (lsm tier).
    pub const LSM_SB_UMOUNT: &str = "lsm_sb_umount";
    /// Sleepable LSM `bprm_creds_from_file`: in-kernel SHA-256 of first-seen executables
    /// (`bpf_ima_file_hash`) against the hash plan (lsm tier, optional).
    pub const LSM_BPRM_CREDS_FROM_FILE: &str = "lsm_bprm_creds_from_file";
    /// LSM `mmap_file`: a file mapped executable checked against the exec plan (lsm tier).
    pub const LSM_MMAP_FILE: &str = "lsm_mmap_file";
    /// Sleepable LSM `mmap_file`: in-kernel SHA-256 of a file mapped executable that no
    /// verdict is cached for, against the hash plan (lsm tier, optional, with the exec hash).
    pub const LSM_MMAP_FILE_HASH: &str = "lsm_mmap_file_hash";
    /// LSM `file_mprotect`: a file mapping made executable, checked likewise (lsm tier).
    pub const LSM_FILE_MPROTECT: &str = "lsm_file_mprotect";
    /// Tracepoints `syscalls/sys_enter_*` of the kernel-activity syscalls (one program):
    /// module, bpf, ptrace, kexec, set*id, capset, unshare, setns, memfd_create records.
    pub const TP_SYS_ENTER_KERNEL: &str = "tp_sys_enter_kernel";
    /// Raw tracepoint `module:module_load`: the name of each module loaded, from the kernel's
    /// `struct module` (where the kernel has modules).
    pub const TP_MODULE_LOAD: &str = "tp_module_load";
    /// LSM `kernel_read_file`: module (finit_module) and kexec_file_load deny (lsm tier).
    pub const LSM_KERNEL_READ_FILE: &str = "lsm_kernel_read_file";
    /// LSM `kernel_load_data`: module (init_module) and kexec_load deny (lsm tier).
    pub const LSM_KERNEL_LOAD_DATA: &str = "lsm_kernel_load_data";
    /// LSM `ptrace_access_check`: ptrace attach deny (lsm tier).
    pub const LSM_PTRACE_ACCESS_CHECK: &str = "lsm_ptrace_access_check";
    /// LSM `ptrace_traceme`: PTRACE_TRACEME deny (lsm tier).
    pub const LSM_PTRACE_TRACEME: &str = "lsm_ptrace_traceme";
    /// LSM `bpf`.
    pub const LSM_BPF: &str = "lsm_bpf";
    /// Self-protection guard at LSM `task_kill` (`--self-protect`, lsm tier).
    pub const LSM_GUARD_TASK_KILL: &str = "lsm_guard_task_kill";
    /// Self-protection guard at LSM `ptrace_access_check`.
    pub const LSM_GUARD_PTRACE: &str = "lsm_guard_ptrace";
    /// Self-protection guard at LSM `path_unlink`.
    pub const LSM_GUARD_PATH_UNLINK: &str = "lsm_guard_path_unlink";
    /// Self-protection guard at LSM `path_rmdir`.
    pub const LSM_GUARD_PATH_RMDIR: &str = "lsm_guard_path_rmdir";
    /// Self-protection guard at LSM `path_rename`.
    pub const LSM_GUARD_PATH_RENAME: &str = "lsm_guard_path_rename";
    /// Self-protection guard at LSM `sb_umount`.
    pub const LSM_GUARD_SB_UMOUNT: &str = "lsm_guard_sb_umount";
    /// Self-protection guard at LSM `bpf_map`.
    pub const LSM_GUARD_BPF_MAP: &str = "lsm_guard_bpf_map";
    /// Self-protection guard at LSM `path_truncate` (the audit log).
    pub const LSM_GUARD_PATH_TRUNCATE: &str = "lsm_guard_path_truncate";
    /// Self-protection guard at LSM `file_truncate` (the audit log; kernels 6.2+).
    pub const LSM_GUARD_FILE_TRUNCATE: &str = "lsm_guard_file_truncate";
    /// Self-protection guard at LSM `file_open` (the audit log opened for writing).
    pub const LSM_GUARD_FILE_OPEN: &str = "lsm_guard_file_open";
    /// fentry on `security_file_open`: the body of `lsm_file_open`, acting by kill (signal tier
    /// on kernels with BPF trampolines, in place of the open and path tracepoints; `trampolines.rs`
    /// in the loader).
    pub const FENTRY_FILE_OPEN: &str = "fentry_file_open";
    /// fentry on `security_path_unlink`: the body of `lsm_path_unlink`, acting by kill.
    pub const FENTRY_PATH_UNLINK: &str = "fentry_path_unlink";
    /// fentry on `security_path_rename`: the body of `lsm_path_rename`, acting by kill.
    pub const FENTRY_PATH_RENAME: &str = "fentry_path_rename";
    /// fentry on `security_path_chmod`: the body of `lsm_path_chmod`, acting by kill.
    pub const FENTRY_PATH_CHMOD: &str = "fentry_path_chmod";
    /// fentry on `security_path_chown`: the body of `lsm_path_chown`, acting by kill.
    pub const FENTRY_PATH_CHOWN: &str = "fentry_path_chown";
    /// fentry on `security_path_link`: the body of `lsm_path_link`, acting by kill.
    pub const FENTRY_PATH_LINK: &str = "fentry_path_link";
    /// fentry on `security_path_symlink`: the body of `lsm_path_symlink`, acting by kill.
    pub const FENTRY_PATH_SYMLINK: &str = "fentry_path_symlink";
    /// fentry on `security_path_mkdir`: the body of `lsm_path_mkdir`, acting by kill.
    pub const FENTRY_PATH_MKDIR: &str = "fentry_path_mkdir";
    /// fentry on `security_path_rmdir`: the body of `lsm_path_rmdir`, acting by kill.
    pub const FENTRY_PATH_RMDIR: &str = "fentry_path_rmdir";
    /// fentry on `security_path_truncate`: the body of `lsm_path_truncate`, acting by kill.
    pub const FENTRY_PATH_TRUNCATE: &str = "fentry_path_truncate";
    /// fentry on `security_file_truncate`: the body of `lsm_file_truncate`, acting by kill.
    pub const FENTRY_FILE_TRUNCATE: &str = "fentry_file_truncate";
    /// fentry on `security_sb_mount`: the body of `lsm_sb_mount`, acting by kill.
    pub const FENTRY_SB_MOUNT: &str = "fentry_sb_mount";
    /// fentry on `security_move_mount`: the body of `lsm_move_mount`, acting by kill.
    pub const FENTRY_MOVE_MOUNT: &str = "fentry_move_mount";
    /// fentry on `security_sb_umount`: the body of `lsm_sb_umount`, acting by kill.
    pub const FENTRY_SB_UMOUNT: &str = "fentry_sb_umount";
    /// fentry on `security_kernel_read_file`: the body of `lsm_kernel_read_file`, acting by kill.
    pub const FENTRY_KERNEL_READ_FILE: &str = "fentry_kernel_read_file";
    /// fentry on `security_kernel_load_data`: the body of `lsm_kernel_load_data`, acting by kill.
    pub const FENTRY_KERNEL_LOAD_DATA: &str = "fentry_kernel_load_data";
    /// fentry on `security_ptrace_access_check`: the body of `lsm_ptrace_access_check`, acting by kill.
    pub const FENTRY_PTRACE_ACCESS_CHECK: &str = "fentry_ptrace_access_check";
    /// fentry on `security_ptrace_traceme`: the body of `lsm_ptrace_traceme`, acting by kill.
    pub const FENTRY_PTRACE_TRACEME: &str = "fentry_ptrace_traceme";
    /// fentry on `security_bpf`: the body of `lsm_bpf`, acting by kill.
    pub const FENTRY_BPF: &str = "fentry_bpf";
    /// fentry on `security_mmap_file`: the body of `lsm_mmap_file`, acting by kill (F12 in the
    /// signal tier: ld.so killed when it maps a listed miner, before any of its code runs).
    pub const FENTRY_MMAP_FILE: &str = "fentry_mmap_file";
    /// fentry on `security_file_mprotect`: the body of `lsm_file_mprotect`, acting by kill.
    pub const FENTRY_FILE_MPROTECT: &str = "fentry_file_mprotect";
    /// LSM `socket_bind`: binds, when a rule is about them (lsm tier, attached on demand).
    pub const LSM_SOCKET_BIND: &str = "lsm_socket_bind";
    /// LSM `sock_graft`: accepted connections, when a rule is about them (lsm tier, attached
    /// on demand).
    pub const LSM_SOCK_GRAFT: &str = "lsm_sock_graft";
    /// fentry on `security_socket_bind` (signal tier with BPF trampolines, on demand).
    pub const FENTRY_SOCKET_BIND: &str = "fentry_socket_bind";
    /// fentry on `security_sock_graft` (signal tier with BPF trampolines, on demand).
    pub const FENTRY_SOCK_GRAFT: &str = "fentry_sock_graft";
}
