//! Container identity from a cgroup path. Owns the knowledge of the cgroup layouts container
//! runtimes create ([`container_id`]) and reading a process's cgroup path from
//! `/proc/<pid>/cgroup` ([`cgroup_path_of`]).
//!
//! Recognised layouts (`<id>` is exactly 64 lowercase hex digits; anything else is not an id):
//!
//! | cgroup path component | runtime |
//! |---|---|
//! | `docker-<id>.scope` (systemd driver, also under `kubepods.slice`) | Docker |
//! | `<id>` whose parent is `docker` (cgroupfs driver: `/docker/<id>`) | Docker |
//! | `cri-containerd-<id>.scope`, `containerd-<id>.scope`, `nerdctl-<id>.scope` | containerd |
//! | `<id>` whose parent is `k8s.io` or `default` (containerd namespaces, cgroupfs driver) | containerd |
//! | `crio-<id>.scope`, `crio-<id>` | CRI-O |
//! | `libpod-<id>.scope`, `libpod-<id>` (cgroupfs: `/libpod_parent/libpod-<id>`) | Podman |
//! | `<slice>:cri-containerd:<id>`, `<slice>:crio:<id>`, `<slice>:docker:<id>` (a systemd cgroups-path string used verbatim by a cgroupfs driver) | by prefix |
//! | `<id>` whose parent is a pod directory (`pod<uid>`, `kubepods-…-pod<uid>.slice`) below a `kubepods*` component | unknown (docker or containerd with the cgroupfs driver) |
//! | `<id>` whose grandparent is `ecs` (`/ecs/<task>/<id>`) | unknown |
//!
//! The deepest matching component wins, so a nested container (KinD in podman, docker in
//! docker) resolves to the innermost one, and sub-cgroups a container creates below its own
//! (`.../libpod-<id>.scope/container`, `.../docker-<id>.scope/init.scope`) resolve to it.
//! `crio-conmon-<id>` and `libpod-conmon-<id>` hold the runtime's monitor process, which runs
//! outside the container: they are skipped (a host conmon has no container; a conmon inside an
//! outer container belongs to that one). `podman-<pid>.scope` (the podman CLI or its pause
//! process in a user session) is not a container either.

use std::io::Read as _;
use std::path::Path;

/// Longest cgroup path [`container_id`] looks at (longer input is rejected, not cut).
pub const MAX_CGROUP_PATH: usize = 4096;
/// Bytes of `/proc/<pid>/cgroup` read at most.
const MAX_CGROUP_FILE: u64 = 64 * 1024;
/// Length of a full container id.
const ID_LEN: usize = 64;

/// The container runtime a cgroup layout belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Runtime {
    /// Docker (moby).
    Docker,
    /// containerd (CRI plugin or nerdctl).
    Containerd,
    /// CRI-O.
    CriO,
    /// Podman (libpod).
    Podman,
    /// A container id in a layout several runtimes share (kubepods cgroupfs, ECS).
    Unknown,
}

impl Runtime {
    /// The name used in event JSON (`process.container.runtime`).
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Docker => "docker",
            Runtime::Containerd => "containerd",
            Runtime::CriO => "cri-o",
            Runtime::Podman => "podman",
            Runtime::Unknown => "unknown",
        }
    }
}

/// A container a process runs in, as named by its cgroup path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ContainerRef {
    /// Full container id: 64 lowercase hex digits.
    pub id: String,
    /// The runtime whose layout matched.
    pub runtime: Runtime,
}

/// What one path component says.
enum Component {
    /// A container's own cgroup.
    Container(ContainerRef),
    /// Anything else (including a runtime monitor's cgroup).
    Other,
}

/// Whether `s` is a full container id: 64 lowercase hex digits.
fn is_id(s: &str) -> bool {
    s.len() == ID_LEN && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A pod directory of the kubelet: `pod<uid>` (cgroupfs) or `kubepods-<qos>-pod<uid>.slice`.
fn is_pod_dir(name: &str) -> bool {
    name.starts_with("pod")
        || (name.starts_with("kubepods") && name.contains("-pod") && name.ends_with(".slice"))
}

/// Prefixed component layouts: prefix, whether `.scope` is required, runtime (`None`: a
/// runtime monitor, not a container). Monitors come before the prefixes they extend.
const PREFIXED: &[(&str, bool, Option<Runtime>)] = &[
    ("crio-conmon-", false, None),
    ("libpod-conmon-", false, None),
    ("docker-", true, Some(Runtime::Docker)),
    ("cri-containerd-", true, Some(Runtime::Containerd)),
    ("containerd-", true, Some(Runtime::Containerd)),
    ("nerdctl-", true, Some(Runtime::Containerd)),
    ("crio-", false, Some(Runtime::CriO)),
    ("libpod-", false, Some(Runtime::Podman)),
];

/// `<slice>:<prefix>:<id>` strings (systemd cgroups-path syntax) and their runtimes.
const COLON_FORMS: &[(&str, Runtime)] = &[
    (":cri-containerd:", Runtime::Containerd),
    (":crio:", Runtime::CriO),
    (":docker:", Runtime::Docker),
];

fn found(id: &str, runtime: Runtime) -> Component {
    Component::Container(ContainerRef {
        id: id.to_owned(),
        runtime,
    })
}

/// Classifies component `name` whose ancestors (root first) are `above`.
fn classify(above: &[&str], name: &str) -> Component {
    let (core, scoped) = match name.strip_suffix(".scope") {
        Some(core) => (core, true),
        None => (name, false),
    };
    for &(prefix, needs_scope, runtime) in PREFIXED {
        if let Some(rest) = core.strip_prefix(prefix) {
            // A longer prefix that matched first decides: `libpod-conmon-<id>` is never
            // re-read as `libpod-` + `conmon-<id>`.
            return match runtime {
                Some(rt) if is_id(rest) && (scoped || !needs_scope) => found(rest, rt),
                _ => Component::Other,
            };
        }
    }
    if !scoped {
        for &(marker, runtime) in COLON_FORMS {
            if let Some(at) = name.find(marker) {
                let rest = &name[at + marker.len()..];
                if at > 0 && is_id(rest) {
                    return found(rest, runtime);
                }
            }
        }
    }
    if scoped || !is_id(name) {
        return Component::Other;
    }
    let parent = above.last().copied().unwrap_or("");
    let grandparent = above.len().checked_sub(2).map_or("", |i| above[i]);
    let in_kubepods = || {
        above[..above.len().saturating_sub(1)]
            .iter()
            .any(|c| c.starts_with("kubepods"))
    };
    if parent == "docker" {
        found(name, Runtime::Docker)
    } else if parent == "k8s.io" || parent == "default" {
        found(name, Runtime::Containerd)
    } else if (is_pod_dir(parent) && in_kubepods()) || grandparent == "ecs" {
        // Layouts several runtimes share.
        found(name, Runtime::Unknown)
    } else {
        Component::Other
    }
}

/// The container a cgroup path (as in `/proc/<pid>/cgroup`, relative to the hierarchy root)
/// names, `None` on the host, for a runtime monitor outside any container, for an
/// unrecognised layout and for input longer than [`MAX_CGROUP_PATH`]. See the module
/// documentation for the layouts.
pub fn container_id(cgroup_path: &str) -> Option<ContainerRef> {
    if cgroup_path.len() > MAX_CGROUP_PATH {
        return None;
    }
    let parts: Vec<&str> = cgroup_path.split('/').filter(|s| !s.is_empty()).collect();
    (0..parts.len())
        .rev()
        .find_map(|i| match classify(&parts[..i], parts[i]) {
            Component::Container(c) => Some(c),
            Component::Other => None,
        })
}

/// Chooses the cgroup path of a process from the text of its `/proc/<pid>/cgroup`.
///
/// cgroup v2 (`0::<path>`) is preferred: it is the hierarchy the kernel's cgroup id refers to.
/// On a hybrid or v1 host a container may only be visible in the v1 hierarchies (a cgroupfs
/// driver there leaves the unified path at the parent's), so the first path that names a
/// container wins, v2 first, then `name=systemd`, then the other v1 lines in file order;
/// failing that the v2 path, then `name=systemd`'s, then the first line's.
pub fn pick_cgroup_path(content: &str) -> Option<String> {
    let mut unified = None;
    let mut v1: Vec<(&str, &str)> = Vec::new();
    for line in content.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(hierarchy), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if path.len() > MAX_CGROUP_PATH || !path.starts_with('/') {
            continue;
        }
        if hierarchy == "0" && controllers.is_empty() {
            unified.get_or_insert(path);
        } else {
            v1.push((controllers, path));
        }
    }
    // name=systemd first, the rest in file order (a stable sort keeps it).
    v1.sort_by_key(|(controllers, _)| *controllers != "name=systemd");
    let candidates = unified.iter().copied().chain(v1.iter().map(|(_, p)| *p));
    let mut fallback = None;
    for path in candidates {
        if container_id(path).is_some() {
            return Some(path.to_owned());
        }
        fallback.get_or_insert(path);
    }
    fallback.map(str::to_owned)
}

/// The cgroup path of process `pid` read from `<procfs_root>/<pid>/cgroup` (see
/// [`pick_cgroup_path`]); `None` when the file cannot be read (the process is gone, or
/// permission) or holds no usable line. At most 64 KiB are read.
pub fn cgroup_path_of(pid: u32, procfs_root: &Path) -> Option<String> {
    let file = std::fs::File::open(procfs_root.join(pid.to_string()).join("cgroup")).ok()?;
    let mut text = String::new();
    file.take(MAX_CGROUP_FILE).read_to_string(&mut text).ok()?;
    pick_cgroup_path(&text)
}

#[cfg(test)]
#[path = "container_tests.rs"]
mod tests;
