//! The executables spared by default (`enforcer run` adds the ones present on the host to
//! `--never-kill` unless `--no-default-never-kill`): local DNS resolvers and caches. They send
//! the queries of every process on the host, so a pool lookup forwarded by one matches the
//! lookup rules a second time; in the signal tier (no BPF LSM) a deny there is a kill, and
//! killing the resolver takes DNS down for the whole host. Spared, they get a `spared` record
//! and the asking process is still stopped (ARCHITECTURE.md, "Known limits").

use std::path::{Path, PathBuf};

/// Local resolvers at their usual paths (Debian, Ubuntu, RHEL/Fedora, Alpine).
pub(super) const LOCAL_RESOLVERS: [&str; 12] = [
    "/usr/lib/systemd/systemd-resolved",
    "/lib/systemd/systemd-resolved",
    "/usr/sbin/dnsmasq",
    "/usr/sbin/unbound",
    "/usr/sbin/named",
    "/usr/sbin/pdns_recursor",
    "/usr/sbin/kresd",
    "/usr/sbin/nscd",
    "/usr/bin/coredns",
    "/usr/sbin/dnscrypt-proxy",
    "/usr/bin/dnscrypt-proxy",
    "/usr/sbin/stubby",
];

/// `explicit` followed by the [`LOCAL_RESOLVERS`] that exist under `root` (`/` on a host)
/// and are not listed already, each once.
pub(super) fn with_local_resolvers(explicit: Vec<PathBuf>, root: &Path) -> Vec<PathBuf> {
    let mut all = explicit;
    for path in LOCAL_RESOLVERS {
        let path = PathBuf::from(path);
        let on_host = root.join(path.strip_prefix("/").unwrap_or(&path));
        if on_host.is_file() && !all.contains(&path) {
            all.push(path);
        }
    }
    all
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn adds_only_resolvers_present_and_keeps_explicit_entries_first() {
        let root = tempfile::tempdir().unwrap();
        for present in ["usr/sbin/dnsmasq", "usr/lib/systemd/systemd-resolved"] {
            let path = root.path().join(present);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, b"").unwrap();
        }
        let explicit = vec![
            PathBuf::from("/opt/agent/agent"),
            PathBuf::from("/usr/sbin/dnsmasq"),
        ];
        let all = with_local_resolvers(explicit, root.path());
        assert_eq!(
            all,
            [
                PathBuf::from("/opt/agent/agent"),
                PathBuf::from("/usr/sbin/dnsmasq"),
                PathBuf::from("/usr/lib/systemd/systemd-resolved"),
            ]
        );
    }

    #[test]
    fn every_default_is_absolute() {
        assert!(LOCAL_RESOLVERS.iter().all(|p| Path::new(p).is_absolute()));
    }
}
