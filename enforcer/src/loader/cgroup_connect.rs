//! The signal tier's connect hooks: `cgroup/connect4` and `cgroup/connect6`
//! (`enforcer-ebpf/src/hooks/connect.rs`), attached to the cgroup v2 root, so every socket of
//! the host is under them. They refuse a denied connect with `EPERM` before the SYN, whatever
//! asked for it (`connect(2)`, io_uring's `IORING_OP_CONNECT`, a `sendto` with
//! `MSG_FASTOPEN`), where the `sys_enter_connect` tracepoint could only kill after the SYN of
//! `connect(2)` alone; they also note each socket's owner for the egress hook
//! (`cgroup_egress.rs`). When they cannot be loaded or attached (no cgroup v2 mount, a kernel
//! that refuses them), the tracepoint does their job and the start record says why. The lsm
//! tier has LSM `socket_connect` instead.

use aya::Ebpf;
use enforcer_common::maps::programs;

use super::{CgroupRoot, KernelTier, LoadError, cgroup_set, pins::EnforcingLink};

/// The two programs (IPv4, IPv6).
const PROGRAMS: [&str; 2] = [programs::CGROUP_CONNECT4, programs::CGROUP_CONNECT6];

/// Loads the programs in the signal tier; `Ok(Err(why))` when they are not used (another
/// tier, or the kernel refuses them: then the tracepoint is).
pub fn load(ebpf: &mut Ebpf, tier: KernelTier) -> Result<Result<(), String>, LoadError> {
    if tier == KernelTier::Lsm {
        return Ok(Err("the lsm tier has LSM socket_connect".to_owned()));
    }
    Ok(cgroup_set::load_sock_addr(ebpf, &PROGRAMS)?.map_err(tracepoint_instead))
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
    Ok(
        cgroup_set::attach_sock_addr(ebpf, dir, &PROGRAMS, &mut links)?
            .map(|()| links)
            .map_err(tracepoint_instead),
    )
}

/// Says, as a warning, that the tracepoint watches connects instead of the hooks (`why`);
/// returns `why` for the start record.
fn tracepoint_instead(why: String) -> String {
    tracing::warn!(
        "connects are watched at tracepoint sys_enter_connect (a denied one is killed, not refused): {why}"
    );
    why
}
