//! The attachments a policy asks for, which a reload can take back: the syscall tracepoints of
//! the kernel operations (or, on kernels with BPF trampolines, the fentry programs on the
//! syscalls' entry functions that replace those no LSM hook reports) and the
//! `module:module_load` program (attached for the `KernelOp` bits
//! of `plan_settings::kernel_op_bits`), the bind and accept tracepoints (`RECORD_BINDS`,
//! `RECORD_ACCEPTS` of `plan_settings::socket_record_bits`), and in the lsm tier the kernel hash
//! programs (a policy that lists SHA-256 values).
//!
//! Their links are taken out of aya's programs as soon as they are made and held here, or, once
//! pinned (`--on-crash keep-enforcing`), by the run's [`Pins`] under [`link_file`]'s name. A
//! reload whose policy in force no longer needs one detaches it ([`OnDemandLinks::detach_unneeded`]):
//! a quiet program costs little, but while any `syscalls/` tracepoint has a program the kernel
//! sends every system call of every task through its traced path, so a rule removed must not
//! leave that cost behind until the next restart.

use aya::{
    Ebpf,
    programs::{RawTracePoint, TracePoint, links::FdLink},
};

use super::{
    LoadError,
    pins::{PinFailure, Pins, link_file},
    program, program_err,
};

/// Attaches tracepoint program `name` to `syscalls/<tracepoint>` and takes the link out of
/// aya (dropping it detaches).
pub fn attach_syscall(
    ebpf: &mut Ebpf,
    name: &'static str,
    tracepoint: &'static str,
) -> Result<FdLink, LoadError> {
    let prog = program::<TracePoint>(ebpf, name)?;
    let id = prog
        .attach("syscalls", tracepoint)
        .map_err(program_err("attach", name))?;
    let link = prog
        .take_link(id)
        .map_err(program_err("take the link of", name))?;
    // A perf-event link is a bpf_link on every supported kernel (5.15+).
    FdLink::try_from(link).map_err(|e| LoadError::Link {
        program: name,
        why: e.to_string(),
    })
}

/// Attaches raw tracepoint program `name` to `tracepoint` and takes the link out of aya.
pub fn attach_raw(
    ebpf: &mut Ebpf,
    name: &'static str,
    tracepoint: &'static str,
) -> Result<FdLink, LoadError> {
    let prog = program::<RawTracePoint>(ebpf, name)?;
    let id = prog
        .attach(tracepoint)
        .map_err(program_err("attach", name))?;
    let link = prog
        .take_link(id)
        .map_err(program_err("take the link of", name))?;
    Ok(FdLink::from(link))
}

/// What a policy asks the kernel to watch beyond the tier's fixed programs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// `KernelOp` bits (`plan_settings::kernel_op_bits`).
    pub kernel_ops: u32,
    /// `RECORD_BINDS` / `RECORD_ACCEPTS` bits (`plan_settings::socket_record_bits`).
    pub records: u32,
    /// Whether executables are hashed in the kernel (the policy lists SHA-256 values, and
    /// `--no-kernel-hash` is not given).
    pub kernel_hash: bool,
}

/// What a policy must ask for to keep an on-demand attachment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// A `KernelOp` bit.
    KernelOp(u32),
    /// A `RECORD_BINDS` or `RECORD_ACCEPTS` bit.
    Records(u32),
    /// The kernel hash programs (sleepable LSM `bprm_creds_from_file`, `mmap_file`).
    KernelHash,
}

impl Need {
    /// Whether a policy with `needs` needs it.
    fn met_by(self, needs: Needs) -> bool {
        match self {
            Self::KernelOp(bit) => needs.kernel_ops & bit != 0,
            Self::Records(bit) => needs.records & bit != 0,
            Self::KernelHash => needs.kernel_hash,
        }
    }

    /// Whether its programs can deny or kill, so `--on-crash keep-enforcing` pins them: those
    /// of the kernel operations and the kernel hash can, the bind and accept programs only
    /// record.
    fn enforces(self) -> bool {
        !matches!(self, Self::Records(_))
    }
}

/// One on-demand attachment.
#[derive(Debug)]
struct OnDemand {
    need: Need,
    program: &'static str,
    /// The `syscalls/` tracepoint; `None` for a raw tracepoint (`module_load`), an LSM or an
    /// fentry program.
    tracepoint: Option<&'static str>,
    /// The link; `None` once the run's pins hold it.
    link: Option<FdLink>,
}

impl OnDemand {
    /// Its pin's file name in the run directory.
    fn file(&self) -> String {
        link_file(self.program, self.tracepoint)
    }
}

/// The on-demand attachments of this engine run.
#[derive(Debug, Default)]
pub struct OnDemandLinks(Vec<OnDemand>);

impl OnDemandLinks {
    /// Holds `link`, made for `need`: `program` attached to `tracepoint` (`None`: not a
    /// `syscalls/` tracepoint).
    pub fn push(
        &mut self,
        need: Need,
        program: &'static str,
        tracepoint: Option<&'static str>,
        link: FdLink,
    ) {
        self.0.push(OnDemand {
            need,
            program,
            tracepoint,
            link: Some(link),
        });
    }

    /// The `syscalls/` tracepoints attached.
    pub fn syscall_tracepoints(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.iter().filter_map(|a| a.tracepoint)
    }

    /// Pins the links of enforcing programs not pinned yet into `pins`. A link whose pin fails
    /// is gone (aya's `FdLink::pin` consumes it on failure too, which detaches it): its entry
    /// is dropped, so the next reload that needs it attaches it again, and the error returned.
    pub fn pin(&mut self, pins: &mut Pins) -> Result<(), PinFailure> {
        let mut first_err = None;
        self.0.retain_mut(|a| {
            if !a.need.enforces() {
                return true;
            }
            let Some(link) = a.link.take() else {
                return true;
            };
            match pins.adopt(a.file(), link) {
                Ok(()) => true,
                Err(err) => {
                    first_err.get_or_insert(err);
                    false
                }
            }
        });
        first_err.map_or(Ok(()), Err)
    }

    /// Detaches every attachment a policy with `needs` does not need
    /// (unpinning it first when the pins hold it); returns their names (`program` or
    /// `program:tracepoint`). A pin that cannot be removed is logged: that link stays attached
    /// until `enforcer unpin` or the next run removes the run's pins.
    pub fn detach_unneeded(&mut self, needs: Needs, mut pins: Option<&mut Pins>) -> Vec<String> {
        let mut detached = Vec::new();
        self.0.retain_mut(|a| {
            if a.need.met_by(needs) {
                return true;
            }
            // A held link detaches when dropped; a pinned one once unpinned and dropped.
            if a.link.take().is_none()
                && let Some(pins) = pins.as_deref_mut()
                && let Err(err) = pins.release(&a.file())
            {
                tracing::warn!("cannot unpin {}: {err}", a.file());
            }
            detached.push(match a.tracepoint {
                Some(tp) => format!("{}:{tp}", a.program),
                None => a.program.to_owned(),
            });
            false
        });
        detached
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needs(kernel_ops: u32, records: u32, kernel_hash: bool) -> Needs {
        Needs {
            kernel_ops,
            records,
            kernel_hash,
        }
    }

    #[test]
    fn needs_follow_the_policy() {
        assert!(Need::KernelOp(4).met_by(needs(4 | 1, 0, false)));
        assert!(!Need::KernelOp(4).met_by(needs(1, 4, true)));
        assert!(Need::Records(2).met_by(needs(0, 2, false)));
        assert!(!Need::Records(2).met_by(needs(2, 1, true)));
        assert!(Need::KernelHash.met_by(needs(0, 0, true)));
        assert!(!Need::KernelHash.met_by(needs(u32::MAX, u32::MAX, false)));
    }

    #[test]
    fn the_kernel_hash_and_kernel_op_programs_are_pinned_and_bind_is_not() {
        assert!(Need::KernelHash.enforces());
        assert!(Need::KernelOp(1).enforces());
        assert!(!Need::Records(1).enforces());
    }
}
