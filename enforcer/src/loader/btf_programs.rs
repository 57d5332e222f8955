//! The programs loaded against the kernel's BTF for one kernel function: LSM programs (on a
//! hook) and fentry programs (on a `security_*` or `__x64_sys_*` function). aya gives the two
//! program types no common trait; [`BtfProgram`] is that trait, so loading with the kernel's
//! refusal explained, and attaching with the link taken out of aya, are written once.
//!
//! [`KernelBtf`] parses `/sys/kernel/btf/vmlinux` at most once per batch of loads: a parse
//! takes about 20 ms on the build host (more under the VM tests' emulator), and a start or a
//! reload loads up to 30 such programs. It is not kept between batches: the parsed BTF is
//! megabytes.

use std::cell::OnceCell;

use aya::{
    Btf, Ebpf,
    programs::{FEntry, Lsm, Program, ProgramError, links::FdLink},
};

use super::{LoadError, log_load, program, program_err};

/// The kernel's BTF, parsed on first use.
#[derive(Debug, Default)]
pub(super) struct KernelBtf(OnceCell<Btf>);

impl KernelBtf {
    /// Nothing parsed yet.
    pub(super) fn new() -> Self {
        Self::default()
    }

    /// The kernel's BTF, parsed now if this is the first use.
    pub(super) fn get(&self) -> Result<&Btf, LoadError> {
        if let Some(btf) = self.0.get() {
            return Ok(btf);
        }
        let btf = Btf::from_sys_fs()?;
        Ok(self.0.get_or_init(|| btf))
    }
}

/// A program type loaded for one kernel function ([`Lsm`], [`FEntry`]).
pub(super) trait BtfProgram {
    /// How messages name a program of this type.
    const KIND: &'static str;

    /// Whether the program is loaded.
    fn is_loaded(&self) -> bool;

    /// Loads the program for `target` (an LSM hook, a kernel function).
    fn load_for(&mut self, target: &str, btf: &Btf) -> Result<(), ProgramError>;

    /// Attaches the loaded program and takes the link out of aya (dropping it detaches).
    fn attach_taking_link(&mut self) -> Result<FdLink, ProgramError>;
}

/// Implements [`BtfProgram`] for aya program type `$ty`: the same four calls on both types,
/// which share no trait in aya.
macro_rules! btf_program {
    ($ty:ty, $kind:literal) => {
        impl BtfProgram for $ty {
            const KIND: &'static str = $kind;

            fn is_loaded(&self) -> bool {
                self.fd().is_ok()
            }

            fn load_for(&mut self, target: &str, btf: &Btf) -> Result<(), ProgramError> {
                self.load(target, btf)
            }

            fn attach_taking_link(&mut self) -> Result<FdLink, ProgramError> {
                let id = self.attach()?;
                Ok(FdLink::from(self.take_link(id)?))
            }
        }
    };
}

btf_program!(Lsm, "LSM program");
btf_program!(FEntry, "fentry program");

/// Loads program `name` for `target` (timed: `log_load`); `Ok(Err(why))` when the kernel
/// refuses it, `why` naming the program, its target and the kernel's answer.
pub(super) fn load<P: BtfProgram>(
    ebpf: &mut Ebpf,
    name: &'static str,
    target: &str,
    btf: &KernelBtf,
) -> Result<Result<(), String>, LoadError>
where
    for<'e> &'e mut P: TryFrom<&'e mut Program, Error = ProgramError>,
{
    let btf = btf.get()?;
    let started = std::time::Instant::now();
    let result = program::<P>(ebpf, name)?.load_for(target, btf);
    log_load(ebpf, name, started);
    Ok(result.map_err(|err| {
        format!(
            "{} {name} on {target} does not load: {}",
            P::KIND,
            err.to_string().trim_end_matches(". Verifier output: ")
        )
    }))
}

/// Attaches loaded program `name` and takes the link out of aya.
pub(super) fn attach<P: BtfProgram>(
    ebpf: &mut Ebpf,
    name: &'static str,
) -> Result<FdLink, LoadError>
where
    for<'e> &'e mut P: TryFrom<&'e mut Program, Error = ProgramError>,
{
    program::<P>(ebpf, name)?
        .attach_taking_link()
        .map_err(program_err("attach", name))
}

/// Loads program `name` for `target` unless it is loaded, attaches it and takes the link out
/// of aya; `Ok(Err(why))` when the kernel refuses to load it (see [`load`]).
pub(super) fn attach_loading<P: BtfProgram>(
    ebpf: &mut Ebpf,
    name: &'static str,
    target: &str,
    btf: &KernelBtf,
) -> Result<Result<FdLink, String>, LoadError>
where
    for<'e> &'e mut P: TryFrom<&'e mut Program, Error = ProgramError>,
{
    if !program::<P>(ebpf, name)?.is_loaded()
        && let Err(why) = load::<P>(ebpf, name, target, btf)?
    {
        return Ok(Err(why));
    }
    attach::<P>(ebpf, name).map(Ok)
}
