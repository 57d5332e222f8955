//! The signal tier's send hooks: `cgroup_skb/egress` (`enforcer-ebpf/src/hooks/egress.rs`)
//! judges the DNS queries and JSON-RPC payloads that leave a socket and drops the refused
//! ones, whatever sent them (`write(2)`, `sendmsg`, io_uring); `cgroup/sendmsg4` and
//! `cgroup/sendmsg6` (`hooks/socket_owner.rs`) note who sends unconnected UDP datagrams, as the
//! connect hooks (`cgroup_connect.rs`) note who connects, so a kill lands on the socket's owner.
//! All are attached to the cgroup v2 root. They replace the five send tracepoints
//! (`sys_enter_{write,sendto,sendmsg,sendmmsg,writev}`), which ran on every `write(2)` of the
//! host and could only kill after the bytes were on their way. They need the connect hooks:
//! without them (no cgroup v2, a kernel that refuses them), or when the kernel refuses these,
//! the tracepoints do their job and the start record says why. The lsm tier has LSM
//! `socket_sendmsg` instead.

use aya::{
    Ebpf,
    programs::{CgroupAttachMode, CgroupSkb, CgroupSkbAttachType},
};
use enforcer_common::maps::programs;

use super::{CgroupRoot, KernelTier, LoadError, cgroup_set, pins::EnforcingLink, program};

/// The owner programs (IPv4, IPv6 unconnected UDP sends).
const OWNER_PROGRAMS: [&str; 2] = [programs::CGROUP_SENDMSG4, programs::CGROUP_SENDMSG6];

/// Loads the programs in the signal tier when the connect hooks are loaded (`connect`);
/// `Ok(Err(why))` when they are not used (another tier, no connect hooks, or the kernel
/// refuses them: then the send tracepoints are).
pub fn load(
    ebpf: &mut Ebpf,
    tier: KernelTier,
    connect: &Result<(), String>,
) -> Result<Result<(), String>, LoadError> {
    if tier == KernelTier::Lsm {
        return Ok(Err("the lsm tier has LSM socket_sendmsg".to_owned()));
    }
    if let Err(why) = connect {
        return Ok(Err(tracepoints_instead(format!(
            "the cgroup connect hooks, which note the sockets' owners, are not used: {why}"
        ))));
    }
    if let Err(why) = cgroup_set::load_sock_addr(ebpf, &OWNER_PROGRAMS)? {
        return Ok(Err(tracepoints_instead(why)));
    }
    let name = programs::CGROUP_SKB_EGRESS;
    if let Err(err) = program::<CgroupSkb>(ebpf, name)?.load() {
        return Ok(Err(tracepoints_instead(format!(
            "the kernel refuses {name}: {err}"
        ))));
    }
    Ok(Ok(()))
}

/// Attaches the loaded programs to the cgroup v2 root, the owner programs first (so a socket's
/// owner is noted before its packets are judged); returns their links (pinned under
/// `--on-crash keep-enforcing`), or why they are not attached (then none is).
pub fn attach(
    ebpf: &mut Ebpf,
    cgroup_root: &CgroupRoot,
) -> Result<Result<Vec<EnforcingLink>, String>, LoadError> {
    let dir = match cgroup_root {
        Ok((_, dir)) => dir,
        Err(why) => return Ok(Err(tracepoints_instead(why.clone()))),
    };
    let mut links = Vec::new();
    if let Err(why) = cgroup_set::attach_sock_addr(ebpf, dir, &OWNER_PROGRAMS, &mut links)? {
        return Ok(Err(tracepoints_instead(why)));
    }
    let name = programs::CGROUP_SKB_EGRESS;
    match program::<CgroupSkb>(ebpf, name)?.attach(
        dir,
        CgroupSkbAttachType::Egress,
        CgroupAttachMode::Single,
    ) {
        Ok(id) => links.push(EnforcingLink::CgroupSkb(name, id)),
        Err(err) => {
            cgroup_set::detach(ebpf, links)?;
            return Ok(Err(tracepoints_instead(format!(
                "cannot attach {name}: {err}"
            ))));
        }
    }
    Ok(Ok(links))
}

/// Says, as a warning, that the send tracepoints watch sends instead of the hooks (`why`);
/// returns `why` for the start record.
pub(super) fn tracepoints_instead(why: String) -> String {
    tracing::warn!(
        "sends are watched at the syscalls/sys_enter_{{write,sendto,sendmsg,sendmmsg,writev}} tracepoints (every write(2) pays for them; a refused query or login is killed, not dropped): {why}"
    );
    why
}
