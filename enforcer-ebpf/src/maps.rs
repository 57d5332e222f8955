//! Every map and read-only global the kernel programs use. Names come from
//! `enforcer_common::maps`, so the loader and the programs agree.

use aya_ebpf::{
    macros::map,
    maps::{Array, HashMap, LpmTrie, LruHashMap, PerCpuArray, RingBuf},
};
use enforcer_common::{
    config::EngineConfig,
    event::{COUNTER_SLOTS, PayloadRecord},
    kernel_event::{KERNEL_OP_SLOTS, KernelRecord},
    maps::capacity,
    net::{DNS_NAME_LEN, DnsRecord},
    offsets::KernelOffsets,
    plan::{
        EVENTS_RING_BYTES, FileId, FlagKey, HashKey, InodeKey, LIFECYCLE_RING_BYTES, MethodKey,
        NameKey, PathKey, PlanSettings, PlanVerdict, SchemeKey,
    },
};

/// Event records for userspace: every record starts with an `EventHeader`. Best effort: when a
/// record cannot be reserved the verdict still applies and `Counter::RingbufFull` goes up.
/// 2 MiB: about 550 exec records (3.6 KiB each) between two drains. Submitted with
/// `emit::event_flags` (the adaptive wake-up, none while the daemon polls).
#[map(name = "EVENTS")]
pub(crate) static EVENTS: RingBuf = RingBuf::with_byte_size(EVENTS_RING_BYTES, 0);

/// Slot 0: 1 while the daemon polls `EVENTS` on its poll timer (written by the daemon's
/// `engine/polling.rs` when records come faster than it is woken for them), else 0. Read by
/// `emit::event_flags` at every `EVENTS` submit.
#[map(name = "EVENTS_POLLED")]
pub(crate) static EVENTS_POLLED: Array<u32> = Array::with_max_entries(1, 0);

/// Fork and exit records (`ForkRecord`, `ExitRecord`) for the daemon's process cache and the
/// audit log, apart from [`EVENTS`] so that they can be written without a wake-up (see
/// `emit::lifecycle_flags`) without delaying the wake-up of the records that can lead to an
/// action: the ring buffer's adaptive wake-up skips a record whenever older ones are pending,
/// so quiet records in `EVENTS` would silence the loud ones behind them. A full buffer bumps
/// `Counter::RingbufFull`.
#[map(name = "LIFECYCLE")]
pub(crate) static LIFECYCLE: RingBuf = RingBuf::with_byte_size(LIFECYCLE_RING_BYTES, 0);

/// Per-CPU counters, indexed by `enforcer_common::event::Counter`. Userspace sums the CPUs.
#[map(name = "COUNTERS")]
pub(crate) static COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(COUNTER_SLOTS, 0);

/// Exec plan by basename: NUL-padded executable basename (the dentry name, so symlinks are
/// resolved) -> the rule and actions that apply. Written by the loader from the policy.
#[map(name = "EXEC_NAME_PLAN")]
pub(crate) static EXEC_NAME_PLAN: HashMap<NameKey, PlanVerdict> =
    HashMap::with_max_entries(capacity::EXEC_NAME_PLAN, 0);

/// Exec plan by path: NUL-padded path as given to execve -> the rule and actions that apply.
#[map(name = "EXEC_PATH_PLAN")]
pub(crate) static EXEC_PATH_PLAN: HashMap<PathKey, PlanVerdict> =
    HashMap::with_max_entries(capacity::EXEC_PATH_PLAN, 0);

/// Exec plan by file identity: `InodeKey` (inode number, change time, device) of an executable
/// -> the rule and actions that apply. Written by the daemon, not from the policy text: when a
/// file's SHA-256 matches a deny or kill rule, so the next exec of that very content is stopped
/// in the hook with no userspace round trip. A write, truncate or replacement of the file
/// changes its key, so an entry never judges other content. LRU: bounded, oldest out.
/// Also the in-kernel hash's verdict cache (lsm tier): `bprm_creds_from_file` writes a match
/// as its verdict and a clean result as `actions == 0` with `PLAN_FLAG_HASH_CLEAN` (never a
/// match; files changed within `PlanSettings::hash_fresh_s` are not cached clean).
#[map(name = "EXEC_INODE_PLAN")]
pub(crate) static EXEC_INODE_PLAN: LruHashMap<InodeKey, PlanVerdict> =
    LruHashMap::with_max_entries(16384, 0);

/// Exec plan by content: SHA-256 digest -> the rule and actions that apply (action `deny`).
/// Written by the loader from the policy's hash lists (deny/kill rules on
/// `exec.file.hash.sha256`); looked up by the sleepable `bprm_creds_from_file` program after
/// `bpf_ima_file_hash` (lsm tier). Its verdict for a file identity is cached in
/// [`EXEC_INODE_PLAN`]: a match as that verdict, no match as a `PLAN_FLAG_HASH_CLEAN` entry.
#[map(name = "EXEC_HASH_PLAN")]
pub(crate) static EXEC_HASH_PLAN: HashMap<HashKey, PlanVerdict> =
    HashMap::with_max_entries(capacity::EXEC_HASH_PLAN, 0);

/// Exec plan by argument: `SchemeKey` (the bytes of a URL scheme before `://`,
/// right-aligned) -> the rule and actions that apply. Written by the loader from kill rules of
/// the shape `exec.args contains "scheme://" && !exceptions` (`policy` `lower::args`);
/// looked up by `args::search` at each `://` in the arguments after `argv[0]`
/// (`sched_process_exec`, every tier).
#[map(name = "EXEC_SCHEME_PLAN")]
pub(crate) static EXEC_SCHEME_PLAN: HashMap<SchemeKey, PlanVerdict> =
    HashMap::with_max_entries(capacity::EXEC_SCHEME_PLAN, 0);

/// Exec plan by flag: `FlagKey` (an argument after `argv[0]` that starts with `--`, its bytes
/// up to its first `=`, NUL padded) -> the rule and actions that apply. Written by the loader
/// from kill rules of the shape `exec.args startswith "--flag" && !exceptions` (`policy`
/// `lower::args`); looked up by `args::search` at each such argument (`sched_process_exec`,
/// every tier, when `PlanSettings::exec` has `EXEC_ARGS_FLAGS`).
#[map(name = "EXEC_FLAG_PLAN")]
pub(crate) static EXEC_FLAG_PLAN: HashMap<FlagKey, PlanVerdict> =
    HashMap::with_max_entries(capacity::EXEC_FLAG_PLAN, 0);

/// Executables whose arguments the argument search (schemes and flags) skips: NUL-padded
/// basename -> the policy generation that wrote it (presence is what counts). The basenames
/// the argument rules' exceptions may hold for (text tools such as `grep`); userspace
/// evaluates their execs with the full rules.
#[map(name = "EXEC_ARGS_SPARED")]
pub(crate) static EXEC_ARGS_SPARED: HashMap<NameKey, u32> =
    HashMap::with_max_entries(capacity::EXEC_ARGS_SPARED, 0);

/// Per-CPU scratch of the argument search (a copy of the arguments and the loop state).
#[map(name = "ARGS_SCRATCH")]
pub(crate) static ARGS_SCRATCH: PerCpuArray<crate::args::ArgsScratch> =
    PerCpuArray::with_max_entries(1, 0);

/// Executables never killed in the kernel (`enforcer run --never-kill`): `FileId` (inode and
/// device of the file, as `stat` found it at start) -> 1. Consulted by `plan::act`, the one
/// kill site, for the current task's `mm->exe_file`: a listed process is spared.
#[map(name = "NEVER_KILL")]
pub(crate) static NEVER_KILL: HashMap<FileId, u32> = HashMap::with_max_entries(1024, 0);

/// Payload plan: JSON-RPC method found in the first bytes of a socket write -> the rule and
/// actions that apply (stratum logins: `mining.subscribe`, `login`, ...).
#[map(name = "PAYLOAD_METHOD_PLAN")]
pub(crate) static PAYLOAD_METHOD_PLAN: HashMap<MethodKey, PlanVerdict> =
    HashMap::with_max_entries(capacity::PAYLOAD_METHOD_PLAN, 0);

/// Per-CPU scratch for building a payload record (too large for the stack).
#[map(name = "PAYLOAD_SCRATCH")]
pub(crate) static PAYLOAD_SCRATCH: PerCpuArray<PayloadScratch> =
    PerCpuArray::with_max_entries(1, 0);

/// Contents of [`PAYLOAD_SCRATCH`].
#[repr(C)]
pub(crate) struct PayloadScratch {
    /// The record being built.
    pub(crate) record: PayloadRecord,
    /// A word the classifier launders loop positions through (see `classify::opaque`).
    pub(crate) slot: u64,
    /// Valid bytes of the payload for the `"method"` search (`classify::find_method`).
    pub(crate) search_len: u64,
    /// Where that search found the end of `"method"` (0: not found).
    pub(crate) search_at: u64,
}

/// DNS plan, exact names: `enforcer_common::net::name_hash` of a lowercase question name ->
/// the rules that match exactly that name. Consulted first; an entry with `actions == 0`
/// means "no rule matches this name" and ends the look-up.
#[map(name = "DNS_NAME_PLAN")]
pub(crate) static DNS_NAME_PLAN: HashMap<u64, PlanVerdict> =
    HashMap::with_max_entries(capacity::DNS_NAME_PLAN, 0);

/// DNS plan, domains: `name_hash` of a domain -> the rules that match its sub-domains (and the
/// domain itself when it is not in [`DNS_NAME_PLAN`]). The longest listed suffix of the
/// question name wins; `actions == 0` is an exclusion (no rule).
#[map(name = "DNS_DOMAIN_PLAN")]
pub(crate) static DNS_DOMAIN_PLAN: HashMap<u64, PlanVerdict> =
    HashMap::with_max_entries(capacity::DNS_DOMAIN_PLAN, 0);

/// Per-CPU scratch for a DNS query being classified (too large for the stack).
#[map(name = "DNS_SCRATCH")]
pub(crate) static DNS_SCRATCH: PerCpuArray<DnsScratch> = PerCpuArray::with_max_entries(1, 0);

/// Contents of [`DNS_SCRATCH`].
#[repr(C)]
pub(crate) struct DnsScratch {
    /// The record being built.
    pub(crate) record: DnsRecord,
    /// The question name, dotted and lowercase.
    pub(crate) name: [u8; DNS_NAME_LEN],
    /// State of the name-parsing loop (in map memory on purpose: see `dns::LoopCtx`).
    pub(crate) parse: crate::dns::ParseState,
    /// State of the suffix walk.
    pub(crate) walk: crate::dns::WalkState,
}

/// Connect plan, IPv4: destination prefix -> the rules for addresses whose longest listed
/// prefix it is (`actions == 0`: excluded). IPv4-mapped IPv6 destinations are looked up here.
#[map(name = "CONNECT_V4_PLAN")]
pub(crate) static CONNECT_V4_PLAN: LpmTrie<[u8; 4], PlanVerdict> =
    LpmTrie::with_max_entries(capacity::CONNECT_V4_PLAN, 0);

/// Connect plan, IPv6: as [`CONNECT_V4_PLAN`] for 16-byte addresses.
#[map(name = "CONNECT_V6_PLAN")]
pub(crate) static CONNECT_V6_PLAN: LpmTrie<[u8; 16], PlanVerdict> =
    LpmTrie::with_max_entries(capacity::CONNECT_V6_PLAN, 0);

/// Plan-wide settings, one entry written with the plan: which event families the kernel may
/// leave unreported (in-kernel approvers, `RECORD_*` bits). Zero (report everything) until
/// the loader writes it.
#[map(name = "PLAN_SETTINGS")]
pub(crate) static PLAN_SETTINGS: Array<PlanSettings> = Array::with_max_entries(1, 0);

/// Plan settings that report everything, for when `PLAN_SETTINGS` cannot be read.
static NO_PLAN_SETTINGS: PlanSettings = PlanSettings::REPORT_ALL;

/// The plan settings (when unreadable: report everything, skip no check, look every name up).
/// A reference: each use loads the fields it reads (a copy of the 88-byte struct cost eleven loads, eleven stores
/// and, for the default, a `memset` call).
#[inline(always)]
pub(crate) fn plan_settings() -> &'static PlanSettings {
    PLAN_SETTINGS.get(0).unwrap_or(&NO_PLAN_SETTINGS)
}

/// Kernel-activity syscalls: this architecture's syscall number -> `KernelSyscall` value
/// (0: not one). Written by the loader at start; the one `sys_enter_*` kernel-activity
/// program reads `__syscall_nr` and looks it up here.
#[map(name = "KERNEL_SYSCALLS")]
pub(crate) static KERNEL_SYSCALLS: Array<u32> = Array::with_max_entries(KERNEL_SYSCALL_NRS, 0);

/// Syscall numbers [`KERNEL_SYSCALLS`] covers (every architecture's are below 1024).
pub(crate) const KERNEL_SYSCALL_NRS: u32 = 1024;

/// Kernel-activity plan: `KernelOp` value -> the rule that denies or kills it (`actions == 0`:
/// none). Written with the plan from rules that are exactly `kernel.op == "..."`.
#[map(name = "KERNEL_OP_PLAN")]
pub(crate) static KERNEL_OP_PLAN: Array<PlanVerdict> = Array::with_max_entries(KERNEL_OP_SLOTS, 0);

/// Per-CPU scratch a `KernelRecord` is built in (slot 0: the syscall tracepoint and
/// `module:module_load`, which never run at once on a CPU; slot 1: the LSM hooks), then
/// copied to [`EVENTS`].
#[map(name = "KERNEL_SCRATCH")]
pub(crate) static KERNEL_SCRATCH: PerCpuArray<KernelRecord> = PerCpuArray::with_max_entries(2, 0);

/// Per-CPU scratch space for building NUL-padded map keys (too large for the 512-byte stack).
#[map(name = "SCRATCH")]
pub(crate) static SCRATCH: PerCpuArray<Scratch> = PerCpuArray::with_max_entries(1, 0);

/// Contents of [`SCRATCH`].
#[repr(C)]
pub(crate) struct Scratch {
    pub(crate) name: NameKey,
    pub(crate) path: PathKey,
    /// The executed file's identity (`ino == 0`: unread).
    pub(crate) inode: InodeKey,
    /// The exec plan entry found for this exec (`actions == 0`: none), from the name, path or
    /// identity plans or the argument plan; in map memory so that both sources continue in
    /// one verifier state.
    pub(crate) plan: PlanVerdict,
    /// The record's verdict (outcome, rule index, generation), passed through map memory for
    /// the same reason.
    pub(crate) verdict: [u32; 3],
}

/// File watch plan: `FileWatchKey` (FNV-1a hash of a watched path, file operation, exact path
/// or directory prefix) -> the rule and actions that apply (`actions == 0` with
/// `PLAN_FLAG_RECORD`: report only). Written by the loader from the policy's file rules;
/// matched by `file::match_path` at every component boundary of the event's path.
#[map(name = "FILE_WATCH")]
pub(crate) static FILE_WATCH: HashMap<enforcer_common::file::FileWatchKey, PlanVerdict> =
    HashMap::with_max_entries(capacity::FILE_WATCH, 0);

/// The directories on the way to the watched paths: `path_hash` of every leading part of
/// every watched path (the path itself included), and of each watched subtree's directory
/// followed by `/` -> the policy generation that wrote it. The daemon's exact record, swept by
/// generation on a reload; no program reads it: the directory filter reads `FILE_DIR_BITS`,
/// which the daemon derives from it after every write and sweep.
#[map(name = "FILE_WATCH_DIRS")]
pub(crate) static FILE_WATCH_DIRS: HashMap<u64, u32> =
    HashMap::with_max_entries(capacity::FILE_WATCH_DIRS, 0);

/// Slot 0: one bit per entry of `FILE_WATCH_DIRS` (`enforcer_common::file::DirBits`). While
/// `PLAN_SETTINGS` has `RECORD_FILE_DIRS`, an open whose path reaches a part with a clear bit
/// is dropped before its path string is built (`file::dirs_verdict`). An array slot, so a
/// look-up is a few instructions the verifier inlines, where a hash map's costs a hashed
/// bucket search per directory.
#[map(name = "FILE_DIR_BITS")]
pub(crate) static FILE_DIR_BITS: Array<enforcer_common::file::DirBits> =
    Array::with_max_entries(1, 0);

/// Per-CPU scratch for a file event: the record, path building and match state.
#[map(name = "FILE_SCRATCH")]
pub(crate) static FILE_SCRATCH: PerCpuArray<crate::file::FileScratch> =
    PerCpuArray::with_max_entries(1, 0);

/// Self-protection settings (`--self-protect`): slot 0, written by the loader before the
/// guard programs (`hooks/self_guard.rs`) are attached; all zero: nothing is guarded.
#[map(name = "SELF_GUARD")]
pub(crate) static SELF_GUARD: Array<enforcer_common::guard::GuardSettings> =
    Array::with_max_entries(1, 0);

/// Ids of the engine's maps -> 1 (presence is what counts), written with [`SELF_GUARD`]:
/// `lsm_guard_bpf_map` refuses other processes a writable descriptor of them.
#[map(name = "GUARDED_MAPS")]
pub(crate) static GUARDED_MAPS: HashMap<u32, u32> = HashMap::with_max_entries(256, 0);

/// `FileId` (inode number, `s_dev`) of the audit log and its rotated files -> 1, kept current
/// by the daemon (after each rotation or reopening): the guards refuse other processes
/// removing, renaming over, truncating or opening them for writing.
#[map(name = "GUARDED_FILES")]
pub(crate) static GUARDED_FILES: HashMap<FileId, u32> =
    HashMap::with_max_entries(enforcer_common::guard::GUARDED_FILES_CAPACITY, 0);

/// Engine settings, written by the loader before load (`enforcer_common::maps::GLOBAL_CONFIG`).
#[unsafe(no_mangle)]
static CONFIG: EngineConfig = EngineConfig::INERT;

/// Kernel struct offsets from the running kernel's BTF (`enforcer_common::maps::GLOBAL_OFFSETS`).
#[unsafe(no_mangle)]
static OFFSETS: KernelOffsets = KernelOffsets::ZERO;

/// The engine settings. The volatile read keeps the compiler from folding the load-time value.
#[inline(always)]
pub(crate) fn config() -> EngineConfig {
    // SAFETY: CONFIG is a plain static the loader fills before load; reading it is always valid.
    unsafe { core::ptr::read_volatile(&CONFIG) }
}

/// One member of the kernel offsets: `offset(|o| &o.file_inode)`. A volatile load of that
/// member alone: the compiler cannot fold the load-time value, and the verifier reads it as a
/// constant (a load from the frozen `.rodata` map at a constant offset). A volatile read of
/// the whole struct, as [`config`] does with its four fields, cost about ninety loads per
/// use, a few thousand guest instructions per exec; an opaque reference to it instead passed
/// through the stack and led LLVM to a stack read the 6.1 verifier refuses.
#[inline(always)]
pub(crate) fn offset(pick: fn(&KernelOffsets) -> &u32) -> u32 {
    // SAFETY: as for `config`; the reference is to a member of the static.
    unsafe { core::ptr::read_volatile(pick(&OFFSETS)) }
}

/// Numbers of the path syscalls added for issue 4 (`enforcer_common::maps::GLOBAL_PATH_SYSCALLS`).
#[unsafe(no_mangle)]
static PATH_SYSCALLS: enforcer_common::file::PathSyscalls =
    enforcer_common::file::PathSyscalls::ZERO;

/// The number of one path syscall: `pick` names the field; only that field is read (volatile,
/// see [`config`]).
#[inline(always)]
pub(crate) fn path_syscall(pick: fn(&enforcer_common::file::PathSyscalls) -> &u32) -> u32 {
    // SAFETY: as for `config`; the reference is to a field of the static.
    unsafe { core::ptr::read_volatile(pick(&PATH_SYSCALLS)) }
}

/// Adds one to a per-CPU counter.
#[inline(always)]
pub(crate) fn count(counter: enforcer_common::event::Counter) {
    if let Some(slot) = COUNTERS.get_ptr_mut(counter as u32) {
        // SAFETY: the pointer comes from a successful per-CPU array look-up; only this CPU
        // touches its slot and BPF programs are not preempted on the same CPU mid-update.
        unsafe { *slot += 1 };
    }
}
