//! The attachments a policy asks for, which a reload can take back: the syscall tracepoints of
//! the kernel operations and the `module:module_load` program (attached for the `KernelOp` bits
//! of `plan_sync::kernel_op_bits`), and the bind and accept tracepoints (`RECORD_BINDS`,
//! `RECORD_ACCEPTS` of `plan_sync::socket_record_bits`).
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
    pins::{PinFailure, Pins, enforces, link_file},
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

/// What a policy must ask for to keep an on-demand attachment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// A `KernelOp` bit.
    KernelOp(u32),
    /// A `RECORD_BINDS` or `RECORD_ACCEPTS` bit.
    Records(u32),
}

impl Need {
    /// Whether a policy with these `kernel_ops` and `records` bits needs it.
    fn met_by(self, kernel_ops: u32, records: u32) -> bool {
        match self {
            Self::KernelOp(bit) => kernel_ops & bit != 0,
            Self::Records(bit) => records & bit != 0,
        }
    }
}

/// One on-demand attachment.
#[derive(Debug)]
struct OnDemand {
    need: Need,
    program: &'static str,
    /// The `syscalls/` tracepoint; `None` for a raw tracepoint (`module_load`).
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
    /// Holds `link`, made for `need`: `program` attached to `tracepoint` (`None`: a raw
    /// tracepoint).
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
            if !enforces(a.program) {
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

    /// Detaches every attachment a policy with `kernel_ops` and `records` bits does not need
    /// (unpinning it first when the pins hold it); returns their names (`program` or
    /// `program:tracepoint`). A pin that cannot be removed is logged: that link stays attached
    /// until `enforcer unpin` or the next run removes the run's pins.
    pub fn detach_unneeded(
        &mut self,
        kernel_ops: u32,
        records: u32,
        mut pins: Option<&mut Pins>,
    ) -> Vec<String> {
        let mut detached = Vec::new();
        self.0.retain_mut(|a| {
            if a.need.met_by(kernel_ops, records) {
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

    #[test]
    fn needs_follow_the_policy_bits() {
        assert!(Need::KernelOp(4).met_by(4 | 1, 0));
        assert!(!Need::KernelOp(4).met_by(1, 4));
        assert!(Need::Records(2).met_by(0, 2));
        assert!(!Need::Records(2).met_by(2, 1));
    }
}
