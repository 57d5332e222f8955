//! Ring-buffer records. Every record starts with an [`EventHeader`]; `kind` says which record
//! follows and `size` how many bytes the whole record has. Userspace decodes them with length
//! checks (`enforcer/src/pipeline/decode.rs`).

use crate::plan::{NAME_LEN, PATH_LEN};

/// Kinds of records in the ring buffer.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// An [`ExecRecord`].
    Exec = 1,
    /// A [`PayloadRecord`].
    Payload = 2,
    /// A [`crate::net::DnsRecord`].
    Dns = 3,
    /// A [`crate::net::SocketRecord`] of a connect.
    Connect = 4,
    /// A [`crate::process::ForkRecord`].
    Fork = 5,
    /// A [`crate::process::ExitRecord`].
    Exit = 6,
    /// A [`crate::net::SocketRecord`] of a bind.
    Bind = 7,
    /// A [`crate::net::SocketRecord`] of an accepted connection.
    Accept = 8,
    /// A [`crate::net::DnsResponseRecord`].
    DnsResponse = 9,
    /// A [`crate::file::FileRecord`] (file-events block: 10..=19).
    File = 10,
    /// A [`crate::kernel_event::KernelRecord`] (module, bpf, ptrace, kexec, credentials,
    /// namespaces, memfd).
    Kernel = 20,
    /// A [`crate::guard::TamperRecord`]: a self-protection guard refused an attempt on the
    /// engine.
    Tamper = 30,
}

/// The value was not a known [`EventKind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownKind(pub u32);

impl TryFrom<u32> for EventKind {
    type Error = UnknownKind;

    fn try_from(value: u32) -> Result<Self, Self::Error> {
        match value {
            1 => Ok(Self::Exec),
            2 => Ok(Self::Payload),
            3 => Ok(Self::Dns),
            4 => Ok(Self::Connect),
            5 => Ok(Self::Fork),
            6 => Ok(Self::Exit),
            7 => Ok(Self::Bind),
            8 => Ok(Self::Accept),
            9 => Ok(Self::DnsResponse),
            10 => Ok(Self::File),
            20 => Ok(Self::Kernel),
            30 => Ok(Self::Tamper),
            other => Err(UnknownKind(other)),
        }
    }
}

/// Which program produced a record.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    /// LSM `bprm_check_security`.
    LsmBprmCheckSecurity = 1,
    /// Raw tracepoint `sched_process_exec`.
    TpSchedProcessExec = 2,
    /// Tracepoint `syscalls/sys_enter_write`.
    TpSysEnterWrite = 3,
    /// Tracepoint `syscalls/sys_enter_sendto`.
    TpSysEnterSendto = 4,
    /// LSM `socket_sendmsg`.
    LsmSocketSendmsg = 5,
    /// Tracepoint `syscalls/sys_enter_sendmsg`.
    TpSysEnterSendmsg = 6,
    /// Tracepoint `syscalls/sys_enter_sendmmsg`.
    TpSysEnterSendmmsg = 7,
    /// Tracepoint `syscalls/sys_enter_connect`.
    TpSysEnterConnect = 8,
    /// LSM `socket_connect`.
    LsmSocketConnect = 9,
    /// Raw tracepoint `sched_process_fork`.
    TpSchedProcessFork = 10,
    /// Raw tracepoint `sched_process_exit`.
    TpSchedProcessExit = 11,
    /// Tracepoint `syscalls/sys_enter_bind`.
    TpSysEnterBind = 12,
    /// Tracepoints `syscalls/sys_exit_accept` and `syscalls/sys_exit_accept4`.
    TpSysExitAccept = 13,
    /// `cgroup_skb/ingress` on the cgroup v2 root.
    CgroupSkbIngress = 14,
    /// Tracepoint `syscalls/sys_enter_writev`.
    TpSysEnterWritev = 15,
    /// LSM `file_open` (file-events block: 16..=29).
    LsmFileOpen = 16,
    /// LSM `path_unlink`.
    LsmPathUnlink = 17,
    /// LSM `path_rename`.
    LsmPathRename = 18,
    /// LSM `path_chmod`.
    LsmPathChmod = 19,
    /// LSM `path_chown`.
    LsmPathChown = 20,
    /// Tracepoints `syscalls/sys_exit_{open,openat,openat2,creat}` (one program).
    TpSysExitOpen = 21,
    /// Tracepoints `syscalls/sys_enter_*` of the path syscalls (unlink, rename, chmod, chown,
    /// link, symlink, mkdir, rmdir, setxattr, utimes, truncate, mount, umount families; one
    /// program).
    TpSysEnterPath = 22,
    /// LSM `path_link`.
    LsmPathLink = 23,
    /// LSM `path_symlink`.
    LsmPathSymlink = 24,
    /// LSM `path_mkdir`.
    LsmPathMkdir = 25,
    /// LSM `path_rmdir`.
    LsmPathRmdir = 26,
    /// LSM `path_truncate` (and `file_truncate`, kernels 6.2+).
    LsmPathTruncate = 27,
    /// LSM `sb_mount` (and `move_mount`).
    LsmSbMount = 28,
    /// LSM `sb_umount`.
    LsmSbUmount = 29,
    /// Sleepable LSM `bprm_creds_from_file` (in-kernel content hash).
    LsmBprmCredsFromFile = 50,
    /// LSM `mmap_file` (a file mapped executable).
    LsmMmapFile = 51,
    /// LSM `file_mprotect` (a file mapping made executable).
    LsmFileMprotect = 52,
    /// Sleepable LSM `mmap_file` (in-kernel content hash of a file mapped executable).
    LsmMmapFileHash = 53,
    /// Tracepoints `syscalls/sys_enter_*` of the kernel-activity syscalls (one program).
    TpSysEnterKernel = 30,
    /// LSM `kernel_read_file` (finit_module, kexec_file_load).
    LsmKernelReadFile = 31,
    /// LSM `kernel_load_data` (init_module, kexec_load).
    LsmKernelLoadData = 32,
    /// LSM `ptrace_access_check`.
    LsmPtraceAccessCheck = 33,
    /// LSM `ptrace_traceme`.
    LsmPtraceTraceme = 34,
    /// Raw tracepoint `module:module_load` (a module is loaded, whatever the syscall).
    TpModuleLoad = 35,
    /// LSM `bpf` (a `bpf(2)` call).
    LsmBpf = 36,
    /// `cgroup/connect4` or `cgroup/connect6` on the cgroup v2 root (signal and monitor tiers).
    CgroupConnect = 37,
    /// `cgroup_skb/egress` on the cgroup v2 root: DNS queries and first payloads leaving a
    /// socket (signal and monitor tiers).
    CgroupSkbEgress = 38,
    /// LSM `socket_bind` (a bind, lsm tier).
    LsmSocketBind = 39,
    /// LSM `sock_graft` (an accepted connection, lsm tier).
    LsmSockGraft = 40,
    /// Self-protection guard at LSM `task_kill` (self-protection block: 60..=69).
    LsmGuardTaskKill = 60,
    /// Self-protection guard at LSM `ptrace_access_check`.
    LsmGuardPtrace = 61,
    /// Self-protection guard at LSM `path_unlink`.
    LsmGuardPathUnlink = 62,
    /// Self-protection guard at LSM `path_rmdir`.
    LsmGuardPathRmdir = 63,
    /// Self-protection guard at LSM `path_rename`.
    LsmGuardPathRename = 64,
    /// Self-protection guard at LSM `sb_umount`.
    LsmGuardSbUmount = 65,
    /// Self-protection guard at LSM `bpf_map`.
    LsmGuardBpfMap = 66,
    /// Self-protection guard at LSM `path_truncate` (the audit log).
    LsmGuardPathTruncate = 67,
    /// Self-protection guard at LSM `file_truncate` (the audit log; kernels 6.2+).
    LsmGuardFileTruncate = 68,
    /// Self-protection guard at LSM `file_open` (the audit log opened for writing).
    LsmGuardFileOpen = 69,
    /// fentry on `security_file_open` (signal tier on kernels with BPF trampolines; fentry block: 70..=99).
    FentryFileOpen = 70,
    /// fentry on `security_path_unlink`.
    FentryPathUnlink = 71,
    /// fentry on `security_path_rename`.
    FentryPathRename = 72,
    /// fentry on `security_path_chmod`.
    FentryPathChmod = 73,
    /// fentry on `security_path_chown`.
    FentryPathChown = 74,
    /// fentry on `security_path_link`.
    FentryPathLink = 75,
    /// fentry on `security_path_symlink`.
    FentryPathSymlink = 76,
    /// fentry on `security_path_mkdir`.
    FentryPathMkdir = 77,
    /// fentry on `security_path_rmdir`.
    FentryPathRmdir = 78,
    /// fentry on `security_path_truncate` (and `security_file_truncate`, kernels 6.2+).
    FentryPathTruncate = 79,
    /// fentry on `security_sb_mount` (and `security_move_mount`).
    FentrySbMount = 80,
    /// fentry on `security_sb_umount`.
    FentrySbUmount = 81,
    /// fentry on `security_kernel_read_file`.
    FentryKernelReadFile = 82,
    /// fentry on `security_kernel_load_data`.
    FentryKernelLoadData = 83,
    /// fentry on `security_ptrace_access_check`.
    FentryPtraceAccessCheck = 84,
    /// fentry on `security_ptrace_traceme`.
    FentryPtraceTraceme = 85,
    /// fentry on `security_bpf`.
    FentryBpf = 86,
    /// fentry on `security_mmap_file` (a file mapped executable).
    FentryMmapFile = 87,
    /// fentry on `security_file_mprotect` (a file mapping made executable).
    FentryFileMprotect = 88,
    /// fentry on the entry function (`__x64_sys_<name>`) of a kernel-activity syscall no LSM
    /// hook reports (one program per syscall, one body).
    FentrySysEnterKernel = 89,
    /// fentry on `security_socket_bind`.
    FentrySocketBind = 90,
    /// fentry on `security_sock_graft`.
    FentrySockGraft = 91,
}

impl Hook {
    /// The hook an fentry program on this LSM hook's `security_*` function reports as (the
    /// same program body, attached the other way); any other hook is returned unchanged.
    pub const fn at_trampoline(self) -> Self {
        match self {
            Self::LsmFileOpen => Self::FentryFileOpen,
            Self::LsmPathUnlink => Self::FentryPathUnlink,
            Self::LsmPathRename => Self::FentryPathRename,
            Self::LsmPathChmod => Self::FentryPathChmod,
            Self::LsmPathChown => Self::FentryPathChown,
            Self::LsmPathLink => Self::FentryPathLink,
            Self::LsmPathSymlink => Self::FentryPathSymlink,
            Self::LsmPathMkdir => Self::FentryPathMkdir,
            Self::LsmPathRmdir => Self::FentryPathRmdir,
            Self::LsmPathTruncate => Self::FentryPathTruncate,
            Self::LsmSbMount => Self::FentrySbMount,
            Self::LsmSbUmount => Self::FentrySbUmount,
            Self::LsmKernelReadFile => Self::FentryKernelReadFile,
            Self::LsmKernelLoadData => Self::FentryKernelLoadData,
            Self::LsmPtraceAccessCheck => Self::FentryPtraceAccessCheck,
            Self::LsmPtraceTraceme => Self::FentryPtraceTraceme,
            Self::LsmBpf => Self::FentryBpf,
            Self::LsmMmapFile => Self::FentryMmapFile,
            Self::LsmFileMprotect => Self::FentryFileMprotect,
            Self::LsmSocketBind => Self::FentrySocketBind,
            Self::LsmSockGraft => Self::FentrySockGraft,
            other => other,
        }
    }
}

impl TryFrom<u32> for Hook {
    type Error = UnknownKind;

    fn try_from(value: u32) -> Result<Self, Self::Error> {
        match value {
            1 => Ok(Self::LsmBprmCheckSecurity),
            2 => Ok(Self::TpSchedProcessExec),
            3 => Ok(Self::TpSysEnterWrite),
            4 => Ok(Self::TpSysEnterSendto),
            5 => Ok(Self::LsmSocketSendmsg),
            6 => Ok(Self::TpSysEnterSendmsg),
            7 => Ok(Self::TpSysEnterSendmmsg),
            8 => Ok(Self::TpSysEnterConnect),
            9 => Ok(Self::LsmSocketConnect),
            10 => Ok(Self::TpSchedProcessFork),
            11 => Ok(Self::TpSchedProcessExit),
            12 => Ok(Self::TpSysEnterBind),
            13 => Ok(Self::TpSysExitAccept),
            14 => Ok(Self::CgroupSkbIngress),
            15 => Ok(Self::TpSysEnterWritev),
            16 => Ok(Self::LsmFileOpen),
            17 => Ok(Self::LsmPathUnlink),
            18 => Ok(Self::LsmPathRename),
            19 => Ok(Self::LsmPathChmod),
            20 => Ok(Self::LsmPathChown),
            21 => Ok(Self::TpSysExitOpen),
            22 => Ok(Self::TpSysEnterPath),
            23 => Ok(Self::LsmPathLink),
            24 => Ok(Self::LsmPathSymlink),
            25 => Ok(Self::LsmPathMkdir),
            26 => Ok(Self::LsmPathRmdir),
            27 => Ok(Self::LsmPathTruncate),
            28 => Ok(Self::LsmSbMount),
            29 => Ok(Self::LsmSbUmount),
            50 => Ok(Self::LsmBprmCredsFromFile),
            51 => Ok(Self::LsmMmapFile),
            52 => Ok(Self::LsmFileMprotect),
            53 => Ok(Self::LsmMmapFileHash),
            30 => Ok(Self::TpSysEnterKernel),
            31 => Ok(Self::LsmKernelReadFile),
            32 => Ok(Self::LsmKernelLoadData),
            33 => Ok(Self::LsmPtraceAccessCheck),
            34 => Ok(Self::LsmPtraceTraceme),
            35 => Ok(Self::TpModuleLoad),
            36 => Ok(Self::LsmBpf),
            37 => Ok(Self::CgroupConnect),
            38 => Ok(Self::CgroupSkbEgress),
            39 => Ok(Self::LsmSocketBind),
            40 => Ok(Self::LsmSockGraft),
            60 => Ok(Self::LsmGuardTaskKill),
            61 => Ok(Self::LsmGuardPtrace),
            62 => Ok(Self::LsmGuardPathUnlink),
            63 => Ok(Self::LsmGuardPathRmdir),
            64 => Ok(Self::LsmGuardPathRename),
            65 => Ok(Self::LsmGuardSbUmount),
            66 => Ok(Self::LsmGuardBpfMap),
            67 => Ok(Self::LsmGuardPathTruncate),
            68 => Ok(Self::LsmGuardFileTruncate),
            69 => Ok(Self::LsmGuardFileOpen),
            70 => Ok(Self::FentryFileOpen),
            71 => Ok(Self::FentryPathUnlink),
            72 => Ok(Self::FentryPathRename),
            73 => Ok(Self::FentryPathChmod),
            74 => Ok(Self::FentryPathChown),
            75 => Ok(Self::FentryPathLink),
            76 => Ok(Self::FentryPathSymlink),
            77 => Ok(Self::FentryPathMkdir),
            78 => Ok(Self::FentryPathRmdir),
            79 => Ok(Self::FentryPathTruncate),
            80 => Ok(Self::FentrySbMount),
            81 => Ok(Self::FentrySbUmount),
            82 => Ok(Self::FentryKernelReadFile),
            83 => Ok(Self::FentryKernelLoadData),
            84 => Ok(Self::FentryPtraceAccessCheck),
            85 => Ok(Self::FentryPtraceTraceme),
            86 => Ok(Self::FentryBpf),
            87 => Ok(Self::FentryMmapFile),
            88 => Ok(Self::FentryFileMprotect),
            89 => Ok(Self::FentrySysEnterKernel),
            90 => Ok(Self::FentrySocketBind),
            91 => Ok(Self::FentrySockGraft),
            other => Err(UnknownKind(other)),
        }
    }
}

/// Outcome bit: the operation was denied (the hook returned -EPERM).
pub const OUTCOME_DENIED: u32 = 1;
/// Outcome bit: SIGKILL was sent to the process.
pub const OUTCOME_KILLED: u32 = 2;
/// Outcome bit: a matching rule asked to deny, but the rule or the engine is in monitor mode.
pub const OUTCOME_WOULD_DENY: u32 = 4;
/// Outcome bit: a matching rule asked to kill, but the rule or the engine is in monitor mode.
pub const OUTCOME_WOULD_KILL: u32 = 8;
/// Outcome bit: a kill was attempted and `bpf_send_signal` failed.
pub const OUTCOME_KILL_FAILED: u32 = 16;
/// Outcome bit: a rule matched, but the process is protected (the engine itself, the host's
/// init, pid 1, or an executable listed with `--never-kill`) and nothing was done to it.
pub const OUTCOME_SPARED: u32 = 32;
/// Outcome bit: a matching rule asked to kill where the hook cannot send a signal (a cgroup
/// hook, which refused the operation instead): the daemon kills, through its kill path.
pub const OUTCOME_KILL_DEFERRED: u32 = 64;

/// First bytes of every ring-buffer record.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventHeader {
    /// An [`EventKind`] value.
    pub kind: u32,
    /// Size in bytes of the whole record, header included.
    pub size: u32,
    /// `bpf_ktime_get_boot_ns()` when the record was made.
    pub timestamp_ns: u64,
    /// Thread id.
    pub pid: u32,
    /// Process id (thread group id).
    pub tgid: u32,
    /// Parent's process id, 0 when unknown.
    pub ppid: u32,
    /// Real user id.
    pub uid: u32,
    /// Real group id.
    pub gid: u32,
    /// Outcome bits (`OUTCOME_*`), 0 when no rule matched.
    pub outcome: u32,
    /// cgroup v2 id of the process.
    pub cgroup_id: u64,
    /// Rule index of the matching plan entry (valid when `outcome != 0`).
    pub rule_index: u32,
    /// Policy generation of the matching plan entry.
    pub generation: u32,
    /// A [`Hook`] value.
    pub hook: u32,
    /// Explicit padding.
    pub _pad: u32,
}

/// Exec flag: the basename was longer than [`NAME_LEN`] - 1 and is cut.
pub const EXEC_NAME_TRUNCATED: u32 = 1;
/// Exec flag: the path was longer than [`PATH_LEN`] - 1 and is cut.
pub const EXEC_PATH_TRUNCATED: u32 = 2;
/// Exec flag: the arguments were longer than [`ARGS_LEN`] and are cut.
pub const EXEC_ARGS_TRUNCATED: u32 = 4;
/// Exec flag: the arguments could not be read (e.g. the LSM hook runs before the new stack is
/// the current one).
pub const EXEC_ARGS_MISSING: u32 = 8;
/// Exec flag: `sha256` holds the file's SHA-256, computed in the kernel (`bpf_ima_file_hash`).
pub const EXEC_SHA256_KERNEL: u32 = 16;
/// Exec flag: the executed file has no name left in any directory (`i_nlink == 0`): a deleted
/// file or a memfd.
pub const EXEC_DELETED: u32 = 32;
/// Exec flag: the environment block was longer than [`ENV_LEN`] and is cut.
pub const EXEC_ENV_TRUNCATED: u32 = 64;
/// Exec flag: the environment was not read (no rule reads it, or it could not be read).
pub const EXEC_ENV_MISSING: u32 = 128;
/// Exec flag: the credentials and interpreter (`euid`, `cap_*`, `interp`) were read.
pub const EXEC_CREDS: u32 = 256;
/// Exec flag: `cwd` holds the working directory of the process after its exec, built in the
/// kernel from `current->fs->pwd` (only the successful exec's record has one).
pub const EXEC_CWD: u32 = 512;
/// Exec flag: the working directory was deeper or longer than `cwd` holds and is cut.
pub const EXEC_CWD_TRUNCATED: u32 = 1024;

/// Bytes of NUL-separated environment entries an exec record carries (read only when a rule
/// reads `exec.envs`). Larger environments are completed from `/proc/<pid>/environ` by the
/// daemon, which costs a read on the exec path: 2 KiB holds an interactive shell's (~1.3 KiB)
/// and most services' environments.
pub const ENV_LEN: usize = 2048;

/// Bytes of NUL-separated arguments an exec record carries.
pub const ARGS_LEN: usize = 512;
/// Bytes of the task's comm.
pub const COMM_LEN: usize = 16;

/// An exec: emitted by the LSM hook when it acts (deny or would-deny) and by the
/// `sched_process_exec` tracepoint for every exec that succeeded.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecRecord {
    /// Common header, `kind == EventKind::Exec`.
    pub header: EventHeader,
    /// `EXEC_*` flags.
    pub flags: u32,
    /// Valid bytes in `name` (without NUL).
    pub name_len: u32,
    /// Valid bytes in `path` (without NUL).
    pub path_len: u32,
    /// Valid bytes in `args` (NUL-separated, the last one NUL-terminated).
    pub args_len: u32,
    /// Basename of the executable file (its dentry name: symlinks resolved).
    pub name: [u8; NAME_LEN],
    /// Path as given to execve.
    pub path: [u8; PATH_LEN],
    /// Arguments, NUL-separated.
    pub args: [u8; ARGS_LEN],
    /// The task's comm after the exec.
    pub comm: [u8; COMM_LEN],
    /// The executed file's identity (`ino == 0`: it could not be read).
    pub file: crate::plan::InodeKey,
    /// The file's SHA-256 when [`EXEC_SHA256_KERNEL`] is set, else zero.
    pub sha256: [u8; crate::plan::SHA256_LEN],
    /// Effective user id after the exec (valid with [`EXEC_CREDS`]).
    pub euid: u32,
    /// Valid bytes in `interp` (without NUL).
    pub interp_len: u32,
    /// Effective capabilities after the exec (bit n = capability n; with [`EXEC_CREDS`]).
    pub cap_effective: u64,
    /// Permitted capabilities after the exec.
    pub cap_permitted: u64,
    /// Valid bytes in `env` (NUL-separated, the last one NUL-terminated).
    pub env_len: u32,
    /// Valid bytes in `cwd` (without NUL; valid with [`EXEC_CWD`]).
    pub cwd_len: u32,
    /// `bprm->interp`: the file the kernel finally ran (for a script, its interpreter; the
    /// same as the path otherwise).
    pub interp: [u8; PATH_LEN],
    /// Environment entries, NUL-separated (see [`EXEC_ENV_MISSING`]).
    pub env: [u8; ENV_LEN],
    /// The working directory (see [`EXEC_CWD`]).
    pub cwd: [u8; PATH_LEN],
}

/// Indices of the per-CPU [`crate::maps::COUNTERS`] array.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// A record could not be reserved in the ring buffer (the verdict still applied).
    RingbufFull = 0,
    /// A kernel read failed inside a hook; the hook followed the fail-open mode.
    ReadError = 1,
    /// `bpf_send_signal` failed.
    KillFailed = 2,
    /// Execs seen by the tracepoint.
    ExecSeen = 3,
    /// Exec plan matches.
    ExecMatched = 4,
    /// Socket writes that carried a JSON-RPC `"method"` (classified in the kernel).
    PayloadClassified = 5,
    /// Payload plan matches.
    PayloadMatched = 6,
    // 7 was `PendingStale` (send verdicts handed from a tracepoint to the LSM hook, which
    // now classifies sends itself); not reused, so old and new counters never mix.
    /// DNS queries seen in socket sends.
    DnsSeen = 8,
    /// DNS plan matches.
    DnsMatched = 9,
    /// DNS queries whose question name the kernel could not parse (not matched in the kernel;
    /// userspace still evaluates them).
    DnsUnparsed = 10,
    /// Connects seen (IPv4 and IPv6).
    ConnectSeen = 11,
    /// Connect plan matches.
    ConnectMatched = 12,
    /// DNS responses seen at cgroup ingress (UDP or TCP from port 53).
    DnsResponseSeen = 13,
    /// File events that passed the cheap checks (a write open, an unlink, ...) and had their
    /// path built and matched against the watch plan.
    FileSeen = 14,
    /// File events that matched no watched prefix and stayed in the kernel.
    FileFiltered = 15,
    /// File events that matched a watched prefix (reported).
    FileMatched = 16,
    /// File events the plan could not filter (truncated paths, or a plan that asks for every
    /// file event), reported unfiltered.
    FileUnfiltered = 17,
    /// Executables hashed in the kernel (`bpf_ima_file_hash`, lsm tier).
    ImaHashed = 18,
    /// Executables whose kernel hash was skipped: a clean verdict cached for their identity.
    ImaCacheHit = 19,
    /// Kernel hash matches in the hash plan.
    ImaMatched = 20,
    /// Executables not hashed in the kernel: over the size cap, or the helper failed or
    /// gave another algorithm than SHA-256 (userspace hashes them after the exec).
    ImaSkipped = 21,
    /// Executable file mappings (`mmap_file`, `file_mprotect`) checked against the exec plan.
    MmapChecked = 22,
    /// Executable file mappings that matched the exec plan.
    MmapMatched = 23,
    /// Kernel-activity syscalls seen by the tracepoint for an operation some rule is about.
    KernelSeen = 24,
    /// Kernel-activity operations a plan entry acted on (deny, kill or would-*).
    KernelMatched = 25,
    /// Kernel-activity syscalls of operations no rule is about (left in the kernel).
    KernelFiltered = 26,
    /// Exec arguments searched for a listed `scheme://` (the argument plan has entries).
    ExecArgsSearched = 27,
    /// Exec argument searches that found a listed scheme in the arguments of an executable
    /// that is not spared (acted on: kill or would-kill).
    ExecArgsMatched = 28,
    /// Attempts on the engine a self-protection guard refused (`--self-protect`).
    TamperDenied = 29,
}

/// Number of [`Counter`] slots.
pub const COUNTER_SLOTS: u32 = 30;

/// Bytes of a socket write's first payload a [`PayloadRecord`] carries (and the kernel scans
/// for a JSON-RPC `"method"`).
pub const PAYLOAD_LEN: usize = 128;

/// Payload flag: the write was longer than [`PAYLOAD_LEN`]; `data` holds its start.
pub const PAYLOAD_TRUNCATED: u32 = 1;
/// Payload flag: the send had several iovecs (`sendmsg`), so `size` is the first one's length
/// and the LSM hook matches the send by its socket alone.
pub const PAYLOAD_SIZE_UNKNOWN: u32 = 2;

/// `fd` of a payload or DNS record seen by LSM `socket_sendmsg`, which gets the socket, not
/// the descriptor: no descriptor (the audit record says `null`).
pub const NO_FD: u32 = u32::MAX;

/// A socket write whose first bytes are a JSON-RPC request (a JSON object with a `"method"`
/// string): emitted by the payload tracepoints (signal and monitor tiers) or by the LSM
/// `socket_sendmsg` hook (lsm tier), whether or not the method is in the plan.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PayloadRecord {
    /// Common header, `kind == EventKind::Payload`.
    pub header: EventHeader,
    /// File descriptor written to.
    pub fd: u32,
    /// Bytes the process asked to write.
    pub size: u32,
    /// Valid bytes in `data`.
    pub data_len: u32,
    /// Valid bytes in `method`.
    pub method_len: u32,
    /// `PAYLOAD_*` flags.
    pub flags: u32,
    /// Explicit padding.
    pub _pad: u32,
    /// The JSON-RPC method the kernel found, NUL padded.
    pub method: [u8; crate::plan::METHOD_LEN],
    /// The first bytes of the write.
    pub data: [u8; PAYLOAD_LEN],
    /// The writer's comm.
    pub comm: [u8; COMM_LEN],
    /// Where the call went (`payload.addr`): the segment's destination at `cgroup_skb/egress`,
    /// the connected socket's peer at the other hooks (`family == 0`: unknown).
    pub peer: crate::net::SockAddr,
    /// The sending socket, when `cgroup_skb/egress` saw the segment (zero from the other
    /// hooks).
    pub socket: crate::net::PacketSocket,
}

const _: () = assert!(core::mem::size_of::<EventHeader>() == 64);
const _: () = assert!(
    core::mem::size_of::<PayloadRecord>()
        == 64 + 24 + crate::plan::METHOD_LEN + PAYLOAD_LEN + COMM_LEN + 24 + 32
);
const _: () = assert!(core::mem::offset_of!(PayloadRecord, method) == 88);
const _: () = assert!(
    core::mem::offset_of!(PayloadRecord, peer)
        == 88 + crate::plan::METHOD_LEN + PAYLOAD_LEN + COMM_LEN
);
const _: () = assert!(
    core::mem::size_of::<ExecRecord>()
        == 64
            + 16
            + NAME_LEN
            + PATH_LEN
            + ARGS_LEN
            + COMM_LEN
            + 24
            + crate::plan::SHA256_LEN
            + 32
            + PATH_LEN
            + ENV_LEN
            + PATH_LEN
);
const _: () = assert!(core::mem::offset_of!(ExecRecord, euid) == 984);
const _: () = assert!(core::mem::offset_of!(ExecRecord, interp) == 1016);
const _: () = assert!(
    core::mem::offset_of!(ExecRecord, file) == 64 + 16 + NAME_LEN + PATH_LEN + ARGS_LEN + COMM_LEN
);
const _: () = assert!(core::mem::offset_of!(EventHeader, cgroup_id) == 40);
const _: () = assert!(core::mem::offset_of!(ExecRecord, name) == 80);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip() {
        assert_eq!(
            EventKind::try_from(EventKind::Exec as u32),
            Ok(EventKind::Exec)
        );
        assert_eq!(EventKind::try_from(0), Err(UnknownKind(0)));
        assert_eq!(
            Hook::try_from(Hook::TpSchedProcessExec as u32),
            Ok(Hook::TpSchedProcessExec)
        );
        assert_eq!(Hook::try_from(99), Err(UnknownKind(99)));
    }

    #[test]
    fn every_hook_value_round_trips() {
        let mut known = 0;
        for value in 0..256 {
            if let Ok(hook) = Hook::try_from(value) {
                assert_eq!(hook as u32, value);
                known += 1;
            }
        }
        // 1..=40, 50..=53, 60..=69, 70..=91.
        assert_eq!(known, 40 + 4 + 10 + 22);
        assert_eq!(Hook::try_from(38), Ok(Hook::CgroupSkbEgress));
    }

    #[test]
    fn each_lsm_hook_with_an_fentry_twin_maps_to_it_and_back_to_nothing_else() {
        let mut twins = 0;
        for value in 0..256 {
            let Ok(hook) = Hook::try_from(value) else {
                continue;
            };
            let twin = hook.at_trampoline();
            if twin != hook {
                twins += 1;
                assert!((70..=91).contains(&(twin as u32)), "{hook:?} -> {twin:?}");
                assert_eq!(twin.at_trampoline(), twin);
            }
        }
        assert_eq!(twins, 21);
        assert_eq!(Hook::LsmFileOpen.at_trampoline(), Hook::FentryFileOpen);
        assert_eq!(Hook::TpSysExitOpen.at_trampoline(), Hook::TpSysExitOpen);
    }
}
