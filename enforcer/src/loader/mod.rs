//! Loading the kernel programs: tier probe, read-only globals (engine settings, BTF offsets),
//! program load, plan maps, attach. Dropping [`Loaded`] detaches everything.

mod btf_programs;
pub mod cgroup_connect;
pub mod cgroup_egress;
mod cgroup_set;
pub mod connect_plan;
pub mod counters;
pub mod file_plan;
pub mod file_syscalls;
pub mod inode_plan;
pub mod kernel_syscalls;
pub mod module_loads;
pub mod never_kill;
pub mod offsets;
pub mod on_demand;
pub mod pins;
pub mod plan_capacity;
pub mod plan_settings;
pub mod plan_sweep;
pub mod plan_sync;
pub mod self_guard;
pub mod tier;
pub mod tracefs;
pub mod trampolines;

use aya::{
    Ebpf, EbpfLoader,
    programs::{
        BtfTracePoint, CgroupAttachMode, CgroupSkb, CgroupSkbAttachType, FEntry, Lsm, TracePoint,
    },
};
use btf_programs::KernelBtf;
use enforcer_common::{
    config::{EngineConfig, Tier},
    kernel_event::{KernelOp, KernelSyscall},
    maps::{GLOBAL_CONFIG, GLOBAL_OFFSETS, GLOBAL_PATH_SYSCALLS, programs},
    offsets::KernelOffsets,
    plan::{RECORD_ACCEPTS, RECORD_BINDS},
};
pub use pins::EnforcingLink;
pub use tier::{KernelTier, SecurityHooks};

/// The kernel programs, built by `build.rs` for bpfel-unknown-none.
static PROGRAMS: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/enforcer"));

/// Errors of loading and attaching.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The object could not be loaded (maps created, relocations applied).
    #[error("cannot load the kernel programs: {0}")]
    Object(#[from] aya::EbpfError),
    /// A program is missing from the object (a build problem).
    #[error("program {0} is missing from the kernel object")]
    MissingProgram(&'static str),
    /// A program failed to load or attach.
    #[error("cannot {what} program {program}: {source}")]
    Program {
        /// `load` or `attach`.
        what: &'static str,
        /// Program name.
        program: &'static str,
        /// The cause (with the verifier log when there is one).
        source: aya::programs::ProgramError,
    },
    /// The kernel's BTF could not be read (needed for LSM attach).
    #[error("cannot read the kernel's BTF (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF): {0}")]
    Btf(#[from] aya::BtfError),
    /// tracefs is needed for the syscall tracepoints.
    #[error(transparent)]
    Tracefs(#[from] tracefs::TracefsError),
    /// The kernel-activity syscall table could not be written.
    #[error("cannot write the kernel-activity syscall table: {0}")]
    SyscallTable(#[from] aya::maps::MapError),
    /// A link could not be turned into a file-descriptor link (to be held or pinned).
    #[error("cannot hold the link of program {program}: {why}")]
    Link {
        /// Program name.
        program: &'static str,
        /// The cause.
        why: String,
    },
    /// A map the daemon reads or writes has an unexpected type.
    #[error("cannot open map {map}: {source}")]
    Map {
        /// Map name.
        map: &'static str,
        /// The cause.
        source: aya::maps::MapError,
    },
}

/// LSM programs (lsm tier only): program name and hook.
const LSM_PROGRAMS: [(&str, &str); 15] = [
    (programs::LSM_BPRM_CHECK_SECURITY, "bprm_check_security"),
    (programs::LSM_SOCKET_SENDMSG, "socket_sendmsg"),
    (programs::LSM_SOCKET_CONNECT, "socket_connect"),
    (programs::LSM_FILE_OPEN, "file_open"),
    (programs::LSM_PATH_UNLINK, "path_unlink"),
    (programs::LSM_PATH_RENAME, "path_rename"),
    (programs::LSM_PATH_CHMOD, "path_chmod"),
    (programs::LSM_PATH_CHOWN, "path_chown"),
    (programs::LSM_MMAP_FILE, "mmap_file"),
    (programs::LSM_FILE_MPROTECT, "file_mprotect"),
    (programs::LSM_KERNEL_READ_FILE, "kernel_read_file"),
    (programs::LSM_KERNEL_LOAD_DATA, "kernel_load_data"),
    (programs::LSM_PTRACE_ACCESS_CHECK, "ptrace_access_check"),
    (programs::LSM_PTRACE_TRACEME, "ptrace_traceme"),
    (programs::LSM_BPF, "bpf"),
];
/// The sleepable in-kernel hash programs (lsm tier, optional: they need `bpf_ima_file_hash`),
/// loaded and attached as one unit: executables (`bprm_creds_from_file`) and files mapped
/// executable (`mmap_file`, a program run through ld.so).
const LSM_KERNEL_HASH: [(&str, &str); 2] = [
    (programs::LSM_BPRM_CREDS_FROM_FILE, "bprm_creds_from_file"),
    (programs::LSM_MMAP_FILE_HASH, "mmap_file"),
];
/// BTF tracepoint programs (every tier): program name and tracepoint. BTF-typed arguments:
/// the programs read kernel structs with plain loads (enforcer-ebpf's `typed.rs`).
const BTF_TRACEPOINTS: [(&str, &str); 3] = [
    (programs::TP_SCHED_PROCESS_EXEC, "sched_process_exec"),
    (programs::TP_SCHED_PROCESS_FORK, "sched_process_fork"),
    (programs::TP_SCHED_PROCESS_EXIT, "sched_process_exit"),
];
/// Tracepoint programs (every tier): program name, category and tracepoint.
/// A program may appear several times (attached to each of its tracepoints; loaded once).
const TRACEPOINTS: [(&str, &str, &str); 23] = [
    (programs::TP_SYS_ENTER_SEND, "syscalls", "sys_enter_write"),
    (programs::TP_SYS_ENTER_SEND, "syscalls", "sys_enter_sendto"),
    (programs::TP_SYS_ENTER_SEND, "syscalls", "sys_enter_sendmsg"),
    (
        programs::TP_SYS_ENTER_SEND,
        "syscalls",
        "sys_enter_sendmmsg",
    ),
    (programs::TP_SYS_ENTER_SEND, "syscalls", "sys_enter_writev"),
    (
        programs::TP_SYS_ENTER_CONNECT,
        "syscalls",
        "sys_enter_connect",
    ),
    (programs::TP_SYS_ENTER_BIND, "syscalls", "sys_enter_bind"),
    (programs::TP_SYS_EXIT_ACCEPT, "syscalls", "sys_exit_accept"),
    (programs::TP_SYS_EXIT_ACCEPT, "syscalls", "sys_exit_accept4"),
    (programs::TP_SYS_EXIT_OPEN, "syscalls", "sys_exit_open"),
    (programs::TP_SYS_EXIT_OPEN, "syscalls", "sys_exit_openat"),
    (programs::TP_SYS_EXIT_OPEN, "syscalls", "sys_exit_openat2"),
    (programs::TP_SYS_EXIT_OPEN, "syscalls", "sys_exit_creat"),
    (programs::TP_SYS_ENTER_PATH, "syscalls", "sys_enter_unlink"),
    (
        programs::TP_SYS_ENTER_PATH,
        "syscalls",
        "sys_enter_unlinkat",
    ),
    (programs::TP_SYS_ENTER_PATH, "syscalls", "sys_enter_rename"),
    (
        programs::TP_SYS_ENTER_PATH,
        "syscalls",
        "sys_enter_renameat",
    ),
    (
        programs::TP_SYS_ENTER_PATH,
        "syscalls",
        "sys_enter_renameat2",
    ),
    (programs::TP_SYS_ENTER_PATH, "syscalls", "sys_enter_chmod"),
    (
        programs::TP_SYS_ENTER_PATH,
        "syscalls",
        "sys_enter_fchmodat",
    ),
    (programs::TP_SYS_ENTER_PATH, "syscalls", "sys_enter_chown"),
    (programs::TP_SYS_ENTER_PATH, "syscalls", "sys_enter_lchown"),
    (
        programs::TP_SYS_ENTER_PATH,
        "syscalls",
        "sys_enter_fchownat",
    ),
];

/// Tracepoint programs whose whole job an LSM program does in the lsm tier: not attached
/// there, so the syscall they watch pays for no call (the send family: LSM `socket_sendmsg`
/// reads the kernel's copy of the message, and sees only socket sends).
const REPLACED_BY_LSM: [&str; 4] = [
    programs::TP_SYS_ENTER_SEND,
    programs::TP_SYS_ENTER_CONNECT,
    programs::TP_SYS_EXIT_OPEN,
    programs::TP_SYS_ENTER_PATH,
];

/// Tracepoint programs whose job the signal tier's fentry programs do (`trampolines.rs`): not
/// loaded nor attached where those load.
const REPLACED_BY_FENTRY: [&str; 2] = [programs::TP_SYS_EXIT_OPEN, programs::TP_SYS_ENTER_PATH];

/// Whether tracepoint program `name` has nothing to do where `hooks` watch the LSM hooks.
fn replaced(hooks: SecurityHooks, name: &str) -> bool {
    match hooks {
        SecurityHooks::Lsm => REPLACED_BY_LSM.contains(&name),
        SecurityHooks::Fentry => REPLACED_BY_FENTRY.contains(&name),
        SecurityHooks::Tracepoints => false,
    }
}

/// Loaded (not yet attached) programs and the tier they enforce in.
#[derive(Debug)]
pub struct Loaded {
    /// The loaded object: maps and programs.
    pub ebpf: Ebpf,
    /// What the kernel allows.
    pub tier: KernelTier,
    /// Why the tier is what it is, for the start record.
    pub tier_reason: String,
    /// Where the file and kernel-activity operations the LSM hooks report are watched.
    pub security_hooks: SecurityHooks,
    /// Signal tier: whether the fentry programs watch them (`trampolines.rs`), or why not
    /// (then the syscall tracepoints do). `None` in the lsm tier.
    pub trampolines: Option<Result<(), String>>,
    /// Whether the kernel-activity syscalls no LSM hook reports are watched by fentry programs
    /// on their entry functions (`kernel_syscalls::FENTRY_SYSCALLS`; a kernel with BPF
    /// trampolines, in either tier) rather than their tracepoints.
    syscall_fentry: bool,
    /// Whether connects are seen at the cgroup hooks (signal tier: refused with `EPERM`), or
    /// why not (then at the `sys_enter_connect` tracepoint, or in the lsm tier at LSM
    /// `socket_connect`); see [`cgroup_connect`].
    pub cgroup_connect: Result<(), String>,
    /// Whether sends are seen at `cgroup_skb/egress` (signal tier: refused queries and logins
    /// dropped), or why not (then at the send tracepoints, or in the lsm tier at LSM
    /// `socket_sendmsg`); see [`cgroup_egress`].
    pub cgroup_egress: Result<(), String>,
    /// Where DNS responses are watched (the cgroup v2 root the ingress program is attached
    /// to), or why they are not; set by [`Loaded::attach`].
    pub dns_responses: Result<std::path::PathBuf, String>,
    /// Whether executables and files mapped executable are hashed in the kernel (the
    /// sleepable `bprm_creds_from_file` and `mmap_file` programs are loaded), or why not (not the lsm tier, the kernel refused it, or turned
    /// off); userspace hashing after the exec is the fallback.
    pub kernel_hash: Result<(), String>,
    /// Whether the kernel hash programs are loaded (attached or not: a reload that drops the
    /// policy's SHA-256 values detaches them, a later one attaches them again).
    kernel_hash_loaded: bool,
    /// The kernel-activity syscall tracepoints: attached, or why not (absent on this kernel).
    pub kernel_tracepoints: Vec<(kernel_syscalls::KernelTracepoint, Result<(), String>)>,
    /// The `module:module_load` program: loaded, or why not (see [`module_loads`]).
    pub module_loads: Result<(), String>,
    /// The path-syscall tracepoints and optional file LSM hooks beyond the base set: attached
    /// (or loaded), or why not (absent on this kernel, or no job in this tier).
    pub file_hooks: Vec<file_syscalls::HookState>,
    /// `KernelOp` bits whose tracepoints [`Loaded::attach`] attaches (the engine sets the
    /// policy's `plan_settings::kernel_op_bits`): a syscall no rule is about then pays nothing at
    /// all. All bits until set.
    pub kernel_ops_wanted: u32,
    /// `RECORD_BINDS` / `RECORD_ACCEPTS`: whether [`Loaded::attach`] attaches the bind and
    /// accept tracepoints (the engine sets the policy's `plan_settings::socket_record_bits`; their
    /// programs record nothing without a rule, and any syscall tracepoint puts every syscall
    /// of every task on the kernel's slower traced path). All bits until set.
    pub records_wanted: u32,
    /// Whether the self-protection guards are attached (`self_guard::enable`): programs a
    /// reload loads get their maps guarded too.
    pub self_protected: bool,
    /// The `syscalls/` tracepoints [`Loaded::attach`] attached for good (the tier's own: send,
    /// connect, open, path syscalls); the policy's are in `on_demand`. See
    /// [`Loaded::syscall_tracepoints`].
    fixed_tracepoints: Vec<&'static str>,
    /// What the policy asked for and a reload may detach (see [`on_demand`]).
    on_demand: on_demand::OnDemandLinks,
    /// The links of the programs that deny or kill (see [`pins`]), as [`Loaded::attach`] made
    /// them: what `--on-crash keep-enforcing` pins.
    pub enforcing_links: Vec<EnforcingLink>,
}

/// The hook programs of the bind and accept records: the record bit, the LSM program and its
/// hook (lsm tier), the fentry program and its function (signal tier with BPF trampolines).
/// Where they attach, the `sys_enter_bind` and `sys_exit_accept{,4}` tracepoints are not.
const RECORD_HOOKS: [(u32, &str, &str, &str, &str); 2] = [
    (
        RECORD_BINDS,
        programs::LSM_SOCKET_BIND,
        "socket_bind",
        programs::FENTRY_SOCKET_BIND,
        "security_socket_bind",
    ),
    (
        RECORD_ACCEPTS,
        programs::LSM_SOCK_GRAFT,
        "sock_graft",
        programs::FENTRY_SOCK_GRAFT,
        "security_sock_graft",
    ),
];

/// What tracepoint program `name` is attached for: the bind and accept programs only record
/// for a rule (`RECORD_BINDS`, `RECORD_ACCEPTS`), so they are attached on demand; `None`: the
/// others are always attached.
fn record_need(name: &str) -> Option<on_demand::Need> {
    match name {
        programs::TP_SYS_ENTER_BIND => Some(on_demand::Need::Records(RECORD_BINDS)),
        programs::TP_SYS_EXIT_ACCEPT => Some(on_demand::Need::Records(RECORD_ACCEPTS)),
        _ => None,
    }
}

fn load_object(tier: Tier, dry_run: bool, offsets: &KernelOffsets) -> Result<Ebpf, LoadError> {
    let config = EngineConfig {
        tier: tier as u32,
        dry_run: u32::from(dry_run),
        engine_tgid: std::process::id(),
        _pad: 0,
    };
    Ok(EbpfLoader::new()
        .override_global(GLOBAL_CONFIG, &config, true)
        .override_global(GLOBAL_OFFSETS, offsets, true)
        .override_global(GLOBAL_PATH_SYSCALLS, &file_syscalls::numbers(), true)
        .load(PROGRAMS)?)
}

fn program_err(
    what: &'static str,
    program: &'static str,
) -> impl FnOnce(aya::programs::ProgramError) -> LoadError {
    move |source| LoadError::Program {
        what,
        program,
        source,
    }
}

/// The program `name` of the object, as a `T`.
fn program<'e, T>(ebpf: &'e mut Ebpf, name: &'static str) -> Result<&'e mut T, LoadError>
where
    &'e mut T: TryFrom<&'e mut aya::programs::Program, Error = aya::programs::ProgramError>,
{
    ebpf.program_mut(name)
        .ok_or(LoadError::MissingProgram(name))?
        .try_into()
        .map_err(program_err("load", name))
}

/// Loads every LSM program (of the file operations beyond the original five, those of the
/// `FileOp` bits in `file_ops`); the first error says why the lsm tier is unavailable.
fn load_lsm_programs(
    ebpf: &mut Ebpf,
    file_ops: u32,
    btf: &KernelBtf,
) -> Result<Result<(), String>, LoadError> {
    let wanted = file_syscalls::FILE_OP_LSM
        .iter()
        .filter(|(.., op)| file_syscalls::wants(file_ops, *op))
        .map(|(name, hook, _)| (*name, *hook));
    for (name, hook) in LSM_PROGRAMS.into_iter().chain(wanted) {
        if let Err(why) = btf_programs::load::<Lsm>(ebpf, name, hook, btf)? {
            return Ok(Err(format!("bpf is an active LSM but {why}")));
        }
    }
    Ok(Ok(()))
}

/// Logs how long loading program `name` took (verifier time) and how many instructions the
/// verifier processed: a warning over a second (on a slow machine, such as the VM tests under
/// TCG, that is where the engine's start time goes), info over 100 ms, debug otherwise. The
/// count is asked of the kernel only when the message is logged.
fn log_load(ebpf: &Ebpf, name: &str, started: std::time::Instant) {
    let took = started.elapsed();
    let ms = took.as_millis();
    let verified = || {
        ebpf.program(name)
            .and_then(|p| p.info().ok())
            .and_then(|info| info.verified_instruction_count())
            .map_or_else(|| "unknown".to_owned(), |n| n.to_string())
    };
    if took > std::time::Duration::from_secs(1) {
        tracing::warn!(
            "loading {name} took {ms} ms ({} instructions verified)",
            verified()
        );
    } else if took > std::time::Duration::from_millis(100) {
        tracing::info!(
            "loading {name} took {ms} ms ({} instructions verified)",
            verified()
        );
    } else {
        tracing::debug!(
            "loading {name} took {ms} ms ({} instructions verified)",
            verified()
        );
    }
}

/// A syscall number as the tracepoint records carry it (`__syscall_nr`, small and positive;
/// an impossible value, `u32::MAX`, if it ever did not fit).
fn syscall_nr(nr: libc::c_long) -> u32 {
    u32::try_from(nr).unwrap_or(u32::MAX)
}

/// Loads the optional in-kernel hash programs (lsm tier); `Err` says why they are not
/// available.
fn load_kernel_hash(ebpf: &mut Ebpf, btf: &KernelBtf) -> Result<Result<(), String>, LoadError> {
    for (name, hook) in LSM_KERNEL_HASH {
        if let Err(why) = btf_programs::load::<Lsm>(ebpf, name, hook, btf)? {
            return Ok(Err(format!("sleepable {why} (bpf_ima_file_hash)")));
        }
    }
    Ok(Ok(()))
}

/// Probes the tier and loads the programs for it. `dry_run` makes the programs record what
/// they would do instead of doing it. `offsets` gets the tracepoint argument offsets.
pub fn load(dry_run: bool, offsets: &mut KernelOffsets) -> Result<Loaded, LoadError> {
    let options = LoadOptions {
        dry_run,
        kernel_hash: true,
        file_ops: u32::MAX,
        trampolines: true,
    };
    load_with(options, offsets)
}

/// What [`load_with`] loads.
#[derive(Clone, Copy, Debug)]
pub struct LoadOptions {
    /// The programs record what they would do instead of doing it.
    pub dry_run: bool,
    /// false leaves the in-kernel hash program out (userspace hashes).
    pub kernel_hash: bool,
    /// Which file operations the policy is about (bit `1 << FileOp`): at the LSM hooks (LSM
    /// or fentry programs) the programs and the setxattr/utimes tracepoints of the operations
    /// beyond open, unlink, rename, chmod and chown are loaded only for those (`u32::MAX`:
    /// all).
    pub file_ops: u32,
    /// Try fentry programs before syscall tracepoints: in the signal tier those of the LSM
    /// hooks (`trampolines.rs`), in either tier those of the kernel-activity syscalls no LSM
    /// hook reports (`kernel_syscalls::FENTRY_SYSCALLS`). false: `--no-fentry`.
    pub trampolines: bool,
}

/// [`load`] with `options`.
pub fn load_with(options: LoadOptions, offsets: &mut KernelOffsets) -> Result<Loaded, LoadError> {
    let LoadOptions {
        dry_run,
        kernel_hash,
        file_ops,
        trampolines,
    } = options;
    tracefs::ensure_mounted()?;
    let layout = tracefs::syscall_layout()?;
    offsets.tp_syscall_args = layout.args;
    offsets.tp_syscall_nr = layout.nr;
    // This build's syscall numbers are the running kernel's: same architecture.
    offsets.nr_write = syscall_nr(libc::SYS_write);
    offsets.nr_sendto = syscall_nr(libc::SYS_sendto);
    offsets.nr_sendmsg = syscall_nr(libc::SYS_sendmsg);
    offsets.nr_sendmmsg = syscall_nr(libc::SYS_sendmmsg);
    offsets.nr_writev = syscall_nr(libc::SYS_writev);
    offsets.nr_open = syscall_nr(libc::SYS_open);
    offsets.nr_creat = syscall_nr(libc::SYS_creat);
    offsets.nr_unlink = syscall_nr(libc::SYS_unlink);
    offsets.nr_unlinkat = syscall_nr(libc::SYS_unlinkat);
    offsets.nr_rename = syscall_nr(libc::SYS_rename);
    offsets.nr_renameat = syscall_nr(libc::SYS_renameat);
    offsets.nr_renameat2 = syscall_nr(libc::SYS_renameat2);
    offsets.nr_chmod = syscall_nr(libc::SYS_chmod);
    offsets.nr_fchmodat = syscall_nr(libc::SYS_fchmodat);
    offsets.nr_chown = syscall_nr(libc::SYS_chown);
    offsets.nr_lchown = syscall_nr(libc::SYS_lchown);
    offsets.nr_fchownat = syscall_nr(libc::SYS_fchownat);
    let btf = KernelBtf::new();
    let lsm_state = match tier::active_lsms() {
        Ok(list) if tier::lists_bpf(&list) => Ok(()),
        Ok(list) => Err(format!(
            "bpf is not an active LSM ({}: {})",
            tier::LSM_LIST,
            list.trim()
        )),
        Err(err) => Err(format!("cannot read {}: {err}", tier::LSM_LIST)),
    };
    let (mut ebpf, tier, tier_reason) = match lsm_state {
        Ok(()) => {
            let mut ebpf = load_object(Tier::Lsm, dry_run, offsets)?;
            match load_lsm_programs(&mut ebpf, file_ops, &btf)? {
                Ok(()) => (
                    ebpf,
                    KernelTier::Lsm,
                    "bpf is an active LSM and LSM programs load".to_owned(),
                ),
                Err(reason) => {
                    drop(ebpf);
                    (
                        load_object(Tier::Signal, dry_run, offsets)?,
                        KernelTier::Signal,
                        reason,
                    )
                }
            }
        }
        Err(reason) => (
            load_object(Tier::Signal, dry_run, offsets)?,
            KernelTier::Signal,
            reason,
        ),
    };
    let (security_hooks, trampolines, mut trampoline_hooks) = match (tier, trampolines) {
        (KernelTier::Lsm, _) => (SecurityHooks::Lsm, None, Vec::new()),
        (KernelTier::Signal, false) => (
            SecurityHooks::Tracepoints,
            Some(Err("turned off (--no-fentry)".to_owned())),
            Vec::new(),
        ),
        (KernelTier::Signal, true) => match trampolines::load(&mut ebpf, &btf)? {
            Ok(hooks) => (SecurityHooks::Fentry, Some(Ok(())), hooks),
            Err(why) => (SecurityHooks::Tracepoints, Some(Err(why)), Vec::new()),
        },
    };
    // The lsm tier's programs run on trampolines too.
    let syscall_fentry = trampolines.as_ref().is_none_or(Result::is_ok) && options.trampolines;
    for (name, tracepoint) in BTF_TRACEPOINTS {
        let started = std::time::Instant::now();
        program::<BtfTracePoint>(&mut ebpf, name)?
            .load(tracepoint, btf.get()?)
            .map_err(program_err("load", name))?;
        log_load(&ebpf, name, started);
    }
    let mut loaded_names: Vec<&str> = Vec::new();
    for (name, _, _) in TRACEPOINTS {
        // Not loaded where an LSM program does their job: no verifier time spent on them
        // (the file path programs are the largest of the object).
        if loaded_names.contains(&name) || replaced(security_hooks, name) {
            continue;
        }
        let started = std::time::Instant::now();
        program::<TracePoint>(&mut ebpf, name)?
            .load()
            .map_err(program_err("load", name))?;
        log_load(&ebpf, name, started);
        loaded_names.push(name);
    }
    program::<TracePoint>(&mut ebpf, programs::TP_SYS_ENTER_KERNEL)?
        .load()
        .map_err(program_err("load", programs::TP_SYS_ENTER_KERNEL))?;
    kernel_syscalls::write_table(&mut ebpf)?;
    let module_loads = module_loads::load(&mut ebpf)?;
    program::<CgroupSkb>(&mut ebpf, programs::CGROUP_SKB_DNS_RESPONSE)?
        .load()
        .map_err(program_err("load", programs::CGROUP_SKB_DNS_RESPONSE))?;
    let cgroup_connect = cgroup_connect::load(&mut ebpf, tier)?;
    let cgroup_egress = cgroup_egress::load(&mut ebpf, tier, &cgroup_connect)?;
    let mut file_hooks =
        file_syscalls::load_optional(&mut ebpf, security_hooks, layout, file_ops, &btf)?;
    file_hooks.append(&mut trampoline_hooks);
    let kernel_hash = match (tier, kernel_hash) {
        (KernelTier::Lsm, true) => load_kernel_hash(&mut ebpf, &btf)?,
        (KernelTier::Lsm, false) => {
            Err("not loaded (turned off, or no hash list to match)".to_owned())
        }
        _ => Err("needs the lsm tier".to_owned()),
    };
    Ok(Loaded {
        ebpf,
        tier,
        tier_reason,
        security_hooks,
        trampolines,
        syscall_fentry,
        cgroup_connect,
        cgroup_egress,
        dns_responses: Err("not attached yet".to_owned()),
        kernel_hash_loaded: kernel_hash.is_ok(),
        kernel_hash,
        kernel_tracepoints: kernel_syscalls::available(layout),
        module_loads,
        file_hooks,
        kernel_ops_wanted: u32::MAX,
        records_wanted: u32::MAX,
        self_protected: false,
        fixed_tracepoints: Vec::new(),
        on_demand: on_demand::OnDemandLinks::default(),
        enforcing_links: Vec::new(),
    })
}

/// The cgroup v2 root, its path and an open descriptor (what cgroup programs attach to), or
/// why there is none.
type CgroupRoot = Result<(std::path::PathBuf, std::fs::File), String>;

/// Opens the cgroup v2 root ([`CgroupRoot`]).
fn open_cgroup_root() -> CgroupRoot {
    let cgroups = crate::actions::cgroupfs::CgroupFs::discover()
        .ok_or("no cgroup v2 file system is mounted")?;
    let root = cgroups.root().to_path_buf();
    let dir = std::fs::File::open(&root)
        .map_err(|err| format!("cannot open {}: {err}", root.display()))?;
    Ok((root, dir))
}

impl Loaded {
    /// Attaches the programs. Call after the plan maps are written, so nothing slips through
    /// between attach and plan.
    pub fn attach(&mut self) -> Result<(), LoadError> {
        for (name, _) in BTF_TRACEPOINTS {
            let id = program::<BtfTracePoint>(&mut self.ebpf, name)?
                .attach()
                .map_err(program_err("attach", name))?;
            if pins::enforces(name) {
                self.enforcing_links
                    .push(EnforcingLink::BtfTracePoint(name, id));
            }
        }
        // Opened once for the programs attached to it (connects, DNS responses).
        let cgroup_root = open_cgroup_root();
        if self.cgroup_connect.is_ok() {
            match cgroup_connect::attach(&mut self.ebpf, &cgroup_root)? {
                Ok(links) => self.enforcing_links.extend(links),
                Err(why) => self.cgroup_connect = Err(why),
            }
        }
        if let Err(why) = &self.cgroup_connect
            && self.cgroup_egress.is_ok()
        {
            self.cgroup_egress = Err(cgroup_egress::tracepoints_instead(format!(
                "the cgroup connect hooks, which note the sockets' owners, are not attached: {why}"
            )));
        }
        if self.cgroup_egress.is_ok() {
            match cgroup_egress::attach(&mut self.ebpf, &cgroup_root)? {
                Ok(links) => self.enforcing_links.extend(links),
                Err(why) => self.cgroup_egress = Err(why),
            }
        }
        for (name, category, tracepoint) in TRACEPOINTS {
            if replaced(self.security_hooks, name) {
                continue;
            }
            // The cgroup hooks see every connect the tracepoint would, and more.
            if name == programs::TP_SYS_ENTER_CONNECT && self.cgroup_connect.is_ok() {
                continue;
            }
            // The egress program sees every socket send the tracepoints would, and more.
            if name == programs::TP_SYS_ENTER_SEND && self.cgroup_egress.is_ok() {
                continue;
            }
            // The bind and accept programs: by `attach_records`.
            if record_need(name).is_some() {
                continue;
            }
            let link = self.attach_tracepoint(name, category, tracepoint)?;
            self.enforcing_links.extend(link);
        }
        // Parsed at most once for the on-demand programs this start loads.
        let btf = KernelBtf::new();
        self.attach_records(self.records_wanted, &btf)?;
        let file_hooks =
            file_syscalls::attach(&mut self.ebpf, self.security_hooks, &self.file_hooks)?;
        self.fixed_tracepoints.extend(file_hooks.tracepoints);
        self.enforcing_links.extend(file_hooks.links);
        self.attach_kernel_ops(self.kernel_ops_wanted, &btf)?;
        self.dns_responses = self.attach_dns_responses(cgroup_root)?;
        if self.tier == KernelTier::Lsm {
            for (name, _) in LSM_PROGRAMS {
                let id = program::<Lsm>(&mut self.ebpf, name)?
                    .attach()
                    .map_err(program_err("attach", name))?;
                self.enforcing_links.push(EnforcingLink::Lsm(name, id));
            }
            self.attach_kernel_hash()?;
        }
        if self.security_hooks == SecurityHooks::Fentry {
            for (name, _) in trampolines::BASE {
                let id = program::<FEntry>(&mut self.ebpf, name)?
                    .attach()
                    .map_err(program_err("attach", name))?;
                self.enforcing_links.push(EnforcingLink::FEntry(name, id));
            }
        }
        Ok(())
    }

    /// Attaches tracepoint program `name` to `category:tracepoint`; returns its link when the
    /// program enforces (for the pins).
    fn attach_tracepoint(
        &mut self,
        name: &'static str,
        category: &str,
        tracepoint: &'static str,
    ) -> Result<Option<EnforcingLink>, LoadError> {
        let id = program::<TracePoint>(&mut self.ebpf, name)?
            .attach(category, tracepoint)
            .map_err(program_err("attach", name))?;
        if category == "syscalls" {
            self.fixed_tracepoints.push(tracepoint);
        }
        Ok(pins::enforces(name).then_some(EnforcingLink::TracePoint(name, tracepoint, id)))
    }

    /// Attaches the on-demand programs of the `records` bits (bind, accept) that are not
    /// attached yet (`records_wanted` says which are): at the LSM hooks where the engine
    /// watches them ([`RECORD_HOOKS`]: LSM or fentry programs), else, or when the kernel
    /// refuses those, the syscall tracepoints.
    fn attach_records(&mut self, records: u32, btf: &KernelBtf) -> Result<(), LoadError> {
        let mut at_tracepoints = 0;
        for (bit, lsm, hook, fentry, function) in RECORD_HOOKS {
            if records & bit == 0 {
                continue;
            }
            let ebpf = &mut self.ebpf;
            let attached = match self.security_hooks {
                SecurityHooks::Lsm => Some((
                    lsm,
                    btf_programs::attach_loading::<Lsm>(ebpf, lsm, hook, btf)?,
                )),
                SecurityHooks::Fentry => Some((
                    fentry,
                    btf_programs::attach_loading::<FEntry>(ebpf, fentry, function, btf)?,
                )),
                SecurityHooks::Tracepoints => None,
            };
            match attached {
                Some((name, Ok(link))) => {
                    self.on_demand
                        .push(on_demand::Need::Records(bit), name, None, link);
                }
                Some((_, Err(why))) => {
                    tracing::warn!("{why}: the syscall tracepoints instead");
                    at_tracepoints |= bit;
                }
                None => at_tracepoints |= bit,
            }
        }
        for (name, _, tracepoint) in TRACEPOINTS {
            let Some(need @ on_demand::Need::Records(bit)) = record_need(name) else {
                continue;
            };
            if at_tracepoints & bit == 0 {
                continue;
            }
            let link = on_demand::attach_syscall(&mut self.ebpf, name, tracepoint)?;
            self.on_demand.push(need, name, Some(tracepoint), link);
        }
        Ok(())
    }

    /// Attaches what reports the kernel operations `ops` (`KernelOp::bit`): for each syscall
    /// present on this kernel and not reported by an LSM hook, its fentry program where the
    /// kernel has BPF trampolines, else its tracepoint; and the `module:module_load`
    /// program, on demand (all enforce).
    fn attach_kernel_ops(&mut self, ops: u32, btf: &KernelBtf) -> Result<(), LoadError> {
        let wanted: Vec<(u32, KernelSyscall, &'static str)> = self
            .kernel_tracepoints
            .iter()
            .filter(|(entry, state)| {
                let op = entry.syscall.op();
                // The LSM hooks (LSM or fentry programs) report these from the caller's
                // registers (`user_regs.rs`).
                let lsm_reports = self.security_hooks.at_hooks()
                    && kernel_syscalls::LSM_READS_SYSCALL_REGISTERS
                    && op.reported_by_lsm();
                state.is_ok() && ops & op.bit() != 0 && !lsm_reports
            })
            .map(|(entry, _)| (entry.syscall.op().bit(), entry.syscall, entry.tracepoint))
            .collect();
        for (bit, syscall, tracepoint) in wanted {
            let need = on_demand::Need::KernelOp(bit);
            if self.syscall_fentry
                && let Some((name, function)) = kernel_syscalls::fentry_of(syscall)
            {
                match btf_programs::attach_loading::<FEntry>(&mut self.ebpf, name, function, btf)? {
                    Ok(link) => {
                        self.on_demand.push(need, name, None, link);
                        continue;
                    }
                    Err(why) => tracing::warn!("{why}: the syscall tracepoint instead"),
                }
            }
            let name = programs::TP_SYS_ENTER_KERNEL;
            let link = on_demand::attach_syscall(&mut self.ebpf, name, tracepoint)?;
            self.on_demand.push(need, name, Some(tracepoint), link);
        }
        if let Some(link) = module_loads::attach(&mut self.ebpf, &self.module_loads, ops)? {
            let need = on_demand::Need::KernelOp(KernelOp::ModuleLoaded.bit());
            self.on_demand
                .push(need, programs::TP_MODULE_LOAD, None, link);
        }
        Ok(())
    }

    /// Attaches what a reloaded policy needs beyond what is attached: the programs of the
    /// kernel operations in `kernel_ops` and of the records in `records` (`RECORD_BINDS`,
    /// `RECORD_ACCEPTS`) not wanted so far. The enforcing ones are pinned by
    /// [`Loaded::pin_on_demand`]; [`Loaded::narrow`] detaches what a policy no longer needs.
    pub fn widen(&mut self, kernel_ops: u32, records: u32) -> Result<(), LoadError> {
        let btf = KernelBtf::new();
        let new_records = records & !self.records_wanted;
        self.attach_records(new_records, &btf)?;
        self.records_wanted |= new_records;
        let new_ops = kernel_ops & !self.kernel_ops_wanted;
        self.attach_kernel_ops(new_ops, &btf)?;
        self.kernel_ops_wanted |= new_ops;
        Ok(())
    }

    /// Detaches the on-demand programs a policy with `needs` does not need (call once that
    /// policy's plan is in force: their settings bits are then clear, so they were quiet
    /// already); returns their names. Unpins them from `pins` first.
    pub fn narrow(
        &mut self,
        needs: on_demand::Needs,
        pins: Option<&mut pins::Pins>,
    ) -> Vec<String> {
        self.kernel_ops_wanted &= needs.kernel_ops;
        self.records_wanted &= needs.records;
        let detached = self.on_demand.detach_unneeded(needs, pins);
        if !needs.kernel_hash && self.kernel_hash.is_ok() && self.kernel_hash_loaded {
            self.kernel_hash =
                Err("not attached: the policy in force lists no SHA-256 value".to_owned());
        }
        detached
    }

    /// Pins the enforcing on-demand links not pinned yet (see [`on_demand`]).
    pub fn pin_on_demand(&mut self, pins: &mut pins::Pins) -> Result<(), pins::PinFailure> {
        self.on_demand.pin(pins)
    }

    /// The `syscalls/` tracepoints attached. While any is, every system call of every task
    /// takes the kernel's slower traced path; in the lsm tier on x86_64 the default policy
    /// needs none.
    pub fn syscall_tracepoints(&self) -> Vec<&'static str> {
        let mut all = self.fixed_tracepoints.clone();
        all.extend(self.on_demand.syscall_tracepoints());
        all
    }

    /// Attaches the loaded kernel hash programs (while [`Loaded::kernel_hash`] is `Ok`), on
    /// demand (see [`on_demand`]); a refusal of the kernel turns it into the reason.
    fn attach_kernel_hash(&mut self) -> Result<(), LoadError> {
        for (name, _) in LSM_KERNEL_HASH {
            if self.kernel_hash.is_err() {
                break;
            }
            match btf_programs::attach::<Lsm>(&mut self.ebpf, name) {
                Ok(link) => self
                    .on_demand
                    .push(on_demand::Need::KernelHash, name, None, link),
                Err(err) => self.kernel_hash = Err(format!("cannot attach {name}: {err}")),
            }
        }
        Ok(())
    }

    /// Attaches the kernel hash programs of the lsm tier when they are not (a reloaded policy
    /// lists SHA-256 values where the one in force listed none), loading them first if no
    /// policy of this run needed them yet. Outside the lsm tier, or when the kernel refuses
    /// them, [`Loaded::kernel_hash`] says why and nothing is attached.
    pub fn enable_kernel_hash(&mut self) -> Result<(), LoadError> {
        if self.tier != KernelTier::Lsm || self.kernel_hash.is_ok() {
            return Ok(());
        }
        self.kernel_hash = if self.kernel_hash_loaded {
            Ok(())
        } else {
            load_kernel_hash(&mut self.ebpf, &KernelBtf::new())?
        };
        self.kernel_hash_loaded = self.kernel_hash.is_ok();
        self.attach_kernel_hash()
    }

    /// Attaches the DNS response program at ingress of the cgroup v2 root (every socket of
    /// the host is in it or below it). No cgroup v2 mount is not an error: the engine runs
    /// without DNS responses and says so.
    fn attach_dns_responses(
        &mut self,
        cgroup_root: CgroupRoot,
    ) -> Result<Result<std::path::PathBuf, String>, LoadError> {
        let (root, dir) = match cgroup_root {
            Ok(opened) => opened,
            Err(why) => return Ok(Err(why)),
        };
        let name = programs::CGROUP_SKB_DNS_RESPONSE;
        program::<CgroupSkb>(&mut self.ebpf, name)?
            // A bpf_link (kernels 5.7+, so every supported one): links always coexist with
            // other programs on the cgroup, and the kernel refuses attach flags on them.
            .attach(&dir, CgroupSkbAttachType::Ingress, CgroupAttachMode::Single)
            .map_err(program_err("attach", name))?;
        Ok(Ok(root))
    }
}
