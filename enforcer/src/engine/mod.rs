//! `enforcer run`: load the policy, probe the tier, load and attach the programs with the plan
//! in their maps, write `engine_start`, then drain the ring buffer until SIGINT/SIGTERM and write
//! `engine_stop`.

mod handler;
mod sink;

use std::path::PathBuf;

use aya::maps::RingBuf;
use enforcer_common::maps::EVENTS;
use enforcer_policy::CompiledPolicy;
use tokio::{
    io::{Interest, unix::AsyncFd},
    signal::unix::{SignalKind, signal},
};

use crate::{
    audit::{Record, writer::WriteError},
    btf::BtfError,
    clock::BootClock,
    loader::{self, KernelTier, LoadError, counters, plan_sync},
};
pub use sink::Sink;

/// Engine-wide mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Deny and kill as the rules say.
    Block,
    /// Dry run: record what would be denied or killed, do nothing.
    Monitor,
}

impl Mode {
    /// Name used in records.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Block => "block",
            Mode::Monitor => "monitor",
        }
    }
}

/// Options of `enforcer run`.
#[derive(Debug)]
pub struct Options {
    /// Policy file or directory, as given.
    pub policy_path: PathBuf,
    /// Engine-wide mode.
    pub mode: Mode,
    /// Audit log path (JSON lines); none means stdout only.
    pub audit_log: Option<PathBuf>,
    /// Print events and actions on stdout.
    pub print: bool,
}

/// Why the engine could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Not running as root.
    #[error(
        "enforcer run needs root (CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN to load BPF programs and read kernel BTF); effective uid is {0}"
    )]
    NotRoot(u32),
    /// The kernel BTF is missing or unreadable.
    #[error(
        "kernel BTF is needed to find struct offsets (CONFIG_DEBUG_INFO_BTF=y, /sys/kernel/btf/vmlinux): {0}"
    )]
    Btf(#[from] BtfError),
    /// Loading or attaching failed.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// Writing the plan into the kernel maps failed.
    #[error(transparent)]
    Plan(#[from] plan_sync::PlanError),
    /// The audit log failed.
    #[error(transparent)]
    Audit(#[from] WriteError),
    /// An I/O error of the event loop (ring buffer, signals, clock).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The cause.
        source: std::io::Error,
    },
}

fn io_err(what: &'static str) -> impl FnOnce(std::io::Error) -> EngineError {
    move |source| EngineError::Io { what, source }
}

/// Runs the engine until SIGINT or SIGTERM.
pub async fn run(options: Options, policy: CompiledPolicy) -> Result<(), EngineError> {
    let euid = nix::unistd::geteuid();
    if !euid.is_root() {
        return Err(EngineError::NotRoot(euid.as_raw()));
    }
    let mut sink = Sink::open(options.audit_log.as_deref(), options.print)?;
    let mut offsets =
        loader::offsets::from_btf_file(std::path::Path::new(crate::btf::VMLINUX_BTF_PATH))?;
    let dry_run = options.mode == Mode::Monitor;
    let mut loaded = loader::load(dry_run, &mut offsets)?;
    let generation = 1;
    plan_sync::write(&mut loaded.ebpf, &policy, generation)?;
    loaded.attach()?;

    let tier = if dry_run {
        "monitor"
    } else {
        loaded.tier.name()
    };
    sink.write(&Record::EngineStart {
        tier,
        kernel_tier: loaded.tier.name(),
        mode: options.mode.name(),
        kernel: nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default(),
        policy_generation: generation,
        policy: options.policy_path.display().to_string(),
        rules: policy.rules().len(),
        version: env!("CARGO_PKG_VERSION"),
        pid: std::process::id(),
        tier_reason: loaded.tier_reason.clone(),
    })?;
    if loaded.tier == KernelTier::Signal && !dry_run {
        tracing::warn!(
            "BPF LSM unavailable ({}): signal tier, exec deny rules stop the process with SIGKILL before it runs",
            loaded.tier_reason
        );
    }

    let map = loaded
        .ebpf
        .take_map(EVENTS)
        .ok_or(LoadError::MissingProgram("EVENTS map"))?;
    let ring =
        RingBuf::try_from(map).map_err(|e| io_err("ring buffer")(std::io::Error::other(e)))?;
    // SAFETY: the AsyncFd takes ownership of the RingBuf, which owns the map fd, so the fd
    // stays open for as long as it is registered and is deregistered before it closes.
    let mut ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
        .map_err(|e| io_err("ring buffer fd")(e.into()))?;
    let clock = BootClock::new().map_err(|e| io_err("boot clock")(e.into()))?;
    let mut handler = handler::Handler::new(&policy, tier, dry_run, clock);
    let mut sigterm = signal(SignalKind::terminate()).map_err(io_err("SIGTERM handler"))?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(io_err("SIGINT handler"))?;

    let reason = loop {
        tokio::select! {
            guard = ring.readable_mut() => {
                let mut guard = guard.map_err(io_err("ring buffer poll"))?;
                let ring = guard.get_inner_mut();
                while let Some(item) = ring.next() {
                    handler.handle(&item, &mut sink)?;
                }
                guard.clear_ready();
            }
            _ = sigterm.recv() => break "SIGTERM",
            _ = sigint.recv() => break "SIGINT",
        }
    };
    // Drain what is left before detaching.
    {
        let ring = ring.get_mut();
        while let Some(item) = ring.next() {
            handler.handle(&item, &mut sink)?;
        }
    }
    sink.write(&Record::EngineStop {
        reason: reason.to_owned(),
        counters: counters::read(&loaded.ebpf),
        decode_errors: handler.decode_errors(),
    })?;
    drop(loaded);
    Ok(())
}
