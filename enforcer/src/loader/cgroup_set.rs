//! The signal tier's cgroup programs on the cgroup v2 root, loaded and attached as sets
//! (`cgroup_connect.rs`: the connect hooks; `cgroup_egress.rs`: the send hooks): a set is used
//! whole or not at all, so a program that fails takes the ones attached before it down too.

use aya::{
    Ebpf,
    programs::{CgroupAttachMode, CgroupSkb, CgroupSockAddr},
};

use super::{LoadError, pins::EnforcingLink, program};

/// Loads the `cgroup/connect*`, `cgroup/sendmsg*` programs `names`; `Ok(Err(why))` names the
/// first the kernel refuses.
pub(super) fn load_sock_addr(
    ebpf: &mut Ebpf,
    names: &[&'static str],
) -> Result<Result<(), String>, LoadError> {
    for &name in names {
        if let Err(err) = program::<CgroupSockAddr>(ebpf, name)?.load() {
            return Ok(Err(format!("the kernel refuses {name}: {err}")));
        }
    }
    Ok(Ok(()))
}

/// Attaches the loaded programs `names` to the cgroup directory `dir`, adding their links to
/// `links`; `Ok(Err(why))` names the first that fails, after every link of `links` is
/// detached.
pub(super) fn attach_sock_addr(
    ebpf: &mut Ebpf,
    dir: &std::fs::File,
    names: &[&'static str],
    links: &mut Vec<EnforcingLink>,
) -> Result<Result<(), String>, LoadError> {
    for &name in names {
        // bpf_links: they coexist with other programs on the root cgroup.
        match program::<CgroupSockAddr>(ebpf, name)?.attach(dir, CgroupAttachMode::Single) {
            Ok(id) => links.push(EnforcingLink::CgroupSockAddr(name, id)),
            Err(err) => {
                detach(ebpf, std::mem::take(links))?;
                return Ok(Err(format!("cannot attach {name}: {err}")));
            }
        }
    }
    Ok(Ok(()))
}

/// Detaches the cgroup program links `links` (dropping a taken link detaches it).
pub(super) fn detach(ebpf: &mut Ebpf, links: Vec<EnforcingLink>) -> Result<(), LoadError> {
    for link in links {
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
