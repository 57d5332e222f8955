//! The signal tier's connect hooks: `cgroup/connect4` and `cgroup/connect6`
//! (`enforcer-ebpf/src/hooks/connect.rs`), attached to the cgroup v2 root, so every socket of
//! the host is under them. They refuse a denied connect with `EPERM` before the SYN, whatever
//! asked for it (`connect(2)`, io_uring's `IORING_OP_CONNECT`, a `sendto` with
//! `MSG_FASTOPEN`), where the `sys_enter_connect` tracepoint could only kill after the SYN of
//! `connect(2)` alone. When they cannot be loaded or attached (no cgroup v2 mount, a kernel
//! that refuses them), the tracepoint does their job and the start record says why. The lsm
//! tier has LSM `socket_connect` instead.

use aya::{
    Ebpf,
    programs::{CgroupAttachMode, CgroupSkb, CgroupSockAddr},
};
use enforcer_common::maps::programs;

use super::{CgroupRoot, KernelTier, LoadError, pins::EnforcingLink, program};

/// The two programs (IPv4, IPv6).
const PROGRAMS: [&str; 2] = [programs::CGROUP_CONNECT4, programs::CGROUP_CONNECT6];

/// Loads the programs in the signal tier; `Ok(Err(why))` when they are not used (another
/// tier, or the kernel refuses them: then the tracepoint is).
pub fn load(ebpf: &mut Ebpf, tier: KernelTier) -> Result<Result<(), String>, LoadError> {
    if tier == KernelTier::Lsm {
        return Ok(Err("the lsm tier has LSM socket_connect".to_owned()));
    }
    for name in PROGRAMS {
        if let Err(err) = program::<CgroupSockAddr>(ebpf, name)?.load() {
            return Ok(Err(tracepoint_instead(format!(
                "the kernel refuses {name}: {err}"
            ))));
        }
    }
    Ok(Ok(()))
}

/// Attaches the loaded programs to the cgroup v2 root; returns their links (they enforce, so
/// `--on-crash keep-enforcing` pins them), or why they are not attached (then nothing is).
pub fn attach(
    ebpf: &mut Ebpf,
    cgroup_root: &CgroupRoot,
) -> Result<Result<Vec<EnforcingLink>, String>, LoadError> {
    let dir = match cgroup_root {
        Ok((_, dir)) => dir,
        Err(why) => return Ok(Err(tracepoint_instead(why.clone()))),
    };
    let mut links = Vec::new();
    for name in PROGRAMS {
        // A bpf_link: it coexists with other programs on the root cgroup.
        match program::<CgroupSockAddr>(ebpf, name)?.attach(dir, CgroupAttachMode::Single) {
            Ok(id) => links.push(EnforcingLink::CgroupSockAddr(name, id)),
            Err(err) => {
                detach(ebpf, links)?;
                return Ok(Err(tracepoint_instead(format!(
                    "cannot attach {name}: {err}"
                ))));
            }
        }
    }
    Ok(Ok(links))
}

/// Says, as a warning, that the tracepoint watches connects instead of the hooks (`why`);
/// returns `why` for the start record.
fn tracepoint_instead(why: String) -> String {
    tracing::warn!(
        "connects are watched at tracepoint sys_enter_connect (a denied one is killed, not refused): {why}"
    );
    why
}

/// Detaches cgroup hooks attached before one of their set failed (here, and in
/// `cgroup_egress.rs`).
pub(super) fn detach(ebpf: &mut Ebpf, links: Vec<EnforcingLink>) -> Result<(), LoadError> {
    for link in links {
        // Dropping a taken link detaches it.
        match link {
            EnforcingLink::CgroupSockAddr(name, id) => {
                drop(program::<CgroupSockAddr>(ebpf, name)?.take_link(id));
            }
            EnforcingLink::CgroupSkb(name, id) => {
                drop(program::<CgroupSkb>(ebpf, name)?.take_link(id));
            }
            _ => {}
        }
    }
    Ok(())
}
