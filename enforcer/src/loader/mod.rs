//! Loading the kernel programs: tier probe, read-only globals (engine settings, BTF offsets),
//! program load, plan maps, attach. Dropping [`Loaded`] detaches everything.

pub mod counters;
pub mod offsets;
pub mod plan_sync;
pub mod tier;

use aya::{
    Ebpf, EbpfLoader,
    programs::{Lsm, RawTracePoint},
};
use enforcer_common::{
    config::{EngineConfig, Tier},
    maps::{GLOBAL_CONFIG, GLOBAL_OFFSETS, programs},
    offsets::KernelOffsets,
};
pub use tier::KernelTier;

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

fn lsm_program(ebpf: &mut Ebpf) -> Result<&mut Lsm, LoadError> {
    let name = programs::LSM_BPRM_CHECK_SECURITY;
    ebpf.program_mut(name)
        .ok_or(LoadError::MissingProgram(name))?
        .try_into()
        .map_err(program_err("load", name))
}

fn exec_tracepoint(ebpf: &mut Ebpf) -> Result<&mut RawTracePoint, LoadError> {
    let name = programs::TP_SCHED_PROCESS_EXEC;
    ebpf.program_mut(name)
        .ok_or(LoadError::MissingProgram(name))?
        .try_into()
        .map_err(program_err("load", name))
}

/// Probes the tier and loads the programs for it. `dry_run` makes the programs record what
/// they would do instead of doing it.
pub fn load(dry_run: bool, offsets: &KernelOffsets) -> Result<Loaded, LoadError> {
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
            let btf = aya::Btf::from_sys_fs()?;
            match lsm_program(&mut ebpf)?.load("bprm_check_security", &btf) {
                Ok(()) => (
                    ebpf,
                    KernelTier::Lsm,
                    "bpf is an active LSM and LSM programs load".to_owned(),
                ),
                Err(err) => {
                    let reason =
                        format!("bpf is an active LSM but an LSM program does not load: {err}");
                    let reason = reason.trim_end_matches(". Verifier output: ").to_owned();
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
    exec_tracepoint(&mut ebpf)?
        .load()
        .map_err(program_err("load", programs::TP_SCHED_PROCESS_EXEC))?;
    Ok(Loaded {
        ebpf,
        tier,
        tier_reason,
    })
}

impl Loaded {
    /// Attaches the programs. Call after the plan maps are written, so no exec slips through
    /// between attach and plan.
    pub fn attach(&mut self) -> Result<(), LoadError> {
        exec_tracepoint(&mut self.ebpf)?
            .attach("sched_process_exec")
            .map_err(program_err("attach", programs::TP_SCHED_PROCESS_EXEC))?;
        if self.tier == KernelTier::Lsm {
            lsm_program(&mut self.ebpf)?
                .attach()
                .map_err(program_err("attach", programs::LSM_BPRM_CHECK_SECURITY))?;
        }
        Ok(())
    }
}
