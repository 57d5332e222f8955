//! Container-id recognition on real-world cgroup paths, and `/proc/<pid>/cgroup` parsing.

#![allow(clippy::unwrap_used)]

use super::*;

const ID: &str = "7951fb549ab99e0722a949b6c121634e1f3a36b5bacbe5392991e3b12251e6b8";
const ID2: &str = "605439acbd4fb18c145069289094b17f17e0cfa938f78012d4960bc797305f22";

fn rt(path: &str) -> Option<(String, Runtime)> {
    container_id(path).map(|c| (c.id, c.runtime))
}

fn is(path: &str, id: &str, runtime: Runtime) {
    assert_eq!(rt(path), Some((id.to_owned(), runtime)), "{path}");
}

fn none(path: &str) {
    assert_eq!(rt(path), None, "{path}");
}

#[test]
fn docker_layouts() {
    is(&format!("/docker/{ID}"), ID, Runtime::Docker);
    is(
        &format!("/system.slice/docker-{ID}.scope"),
        ID,
        Runtime::Docker,
    );
    is(
        &format!("/docker.slice/docker-{ID}.scope"),
        ID,
        Runtime::Docker,
    );
    // systemd inside the container: its own sub-cgroups resolve to the container.
    is(
        &format!("/system.slice/docker-{ID}.scope/init.scope"),
        ID,
        Runtime::Docker,
    );
    // Rootless docker.
    is(
        &format!("/user.slice/user-1000.slice/user@1000.service/docker.service/docker/{ID}"),
        ID,
        Runtime::Docker,
    );
    // Kubernetes with dockershim and the systemd driver.
    is(
        &format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podce705797_e47e_11e9_bd71_42010a000002.slice/docker-{ID}.scope"
        ),
        ID,
        Runtime::Docker,
    );
}

#[test]
fn kubernetes_layouts() {
    is(
        &format!("/kubepods/besteffort/podac04f3f2-1f2c-11e9-b015-1ebee232acfa/{ID2}"),
        ID2,
        Runtime::Unknown,
    );
    is(
        &format!("/kubepods/pod74c13223-5a00-11e9-b385-42010a80018d/{ID2}"),
        ID2,
        Runtime::Unknown,
    );
    is(
        &format!(
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod63b3ebfc_2890_11e9_8154_16bf8ef8d9dc.slice/cri-containerd-{ID}.scope"
        ),
        ID,
        Runtime::Containerd,
    );
    is(
        &format!(
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod63b3ebfc_2890_11e9_8154_16bf8ef8d9dc.slice/crio-{ID}.scope"
        ),
        ID,
        Runtime::CriO,
    );
    is(
        &format!("/kubepods/besteffort/pod63b3ebfc-2890-11e9-8154-16bf8ef8d9dc/crio-{ID}"),
        ID,
        Runtime::CriO,
    );
    // A systemd cgroups-path string used verbatim.
    is(
        &format!(
            "/kubepods-burstable-podbd12dd3393227d950605a2444b13c27a.slice:cri-containerd:{ID}"
        ),
        ID,
        Runtime::Containerd,
    );
    // Guaranteed-QoS pods sit directly under kubepods.slice.
    is(
        &format!(
            "/kubepods.slice/kubepods-pod0f7a9c39_0c4e_4c55_9d6b_4bd6e3c5b2aa.slice/cri-containerd-{ID}.scope"
        ),
        ID,
        Runtime::Containerd,
    );
}

#[test]
fn containerd_and_podman_layouts() {
    is(&format!("/k8s.io/{ID}"), ID, Runtime::Containerd);
    is(&format!("/default/{ID}"), ID, Runtime::Containerd);
    is(
        &format!("/system.slice/nerdctl-{ID}.scope"),
        ID,
        Runtime::Containerd,
    );
    is(
        &format!("/machine.slice/libpod-{ID}.scope"),
        ID,
        Runtime::Podman,
    );
    is(
        &format!("/machine.slice/libpod-{ID}.scope/container"),
        ID,
        Runtime::Podman,
    );
    is(&format!("/libpod_parent/libpod-{ID}"), ID, Runtime::Podman);
    is(
        &format!(
            "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope/container"
        ),
        ID,
        Runtime::Podman,
    );
    is(
        &format!("/ecs/0f1e2d3c4b5a69788796a5b4c3d2e1f0/{ID}"),
        ID,
        Runtime::Unknown,
    );
}

#[test]
fn nested_containers_resolve_to_the_innermost() {
    // KinD on podman: a CRI container inside a podman container.
    is(
        &format!(
            "/machine.slice/libpod-{ID}.scope/container/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod6eab3b7b_f0a6_4bb8_bff2_d5bc9017c04b.slice/cri-containerd-{ID2}.scope"
        ),
        ID2,
        Runtime::Containerd,
    );
    // Docker in docker.
    is(&format!("/docker/{ID}/docker/{ID2}"), ID2, Runtime::Docker);
}

#[test]
fn monitors_are_not_containers() {
    none(&format!("/machine.slice/libpod-conmon-{ID}.scope"));
    none(&format!("/libpod_parent/libpod-conmon-{ID}"));
    none(&format!(
        "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod63b3ebfc_2890_11e9_8154_16bf8ef8d9dc.slice/crio-conmon-{ID}.scope"
    ));
    // A conmon inside an outer container belongs to that container.
    is(
        &format!("/docker/{ID}/system.slice/crio-conmon-{ID2}.scope"),
        ID,
        Runtime::Docker,
    );
    // The podman CLI / pause process in a user session.
    none("/user.slice/user-1000.slice/user@1000.service/user.slice/podman-12345.scope");
    none("/user.slice/user-1000.slice/user@1000.service/user.slice/podman-pause-1a2b3c4d.scope");
}

#[test]
fn host_paths_are_not_containers() {
    for path in [
        "/",
        "",
        "/init.scope",
        "/system.slice/sshd.service",
        "/system.slice/docker.service",
        "/system.slice/containerd.service",
        "/user.slice/user-1000.slice/session-3.scope",
        "/kubepods.slice/kubepods-besteffort.slice",
        "/kubepods/besteffort/podac04f3f2-1f2c-11e9-b015-1ebee232acfa",
        "/process_api/8eb67c88d43aae6a496aa1f5d3849731",
        "/machine.slice/machine-qemu\\x2d1\\x2dvm.scope",
    ] {
        none(path);
    }
}

#[test]
fn malformed_ids_are_rejected() {
    let short = &ID[..63];
    let long = format!("{ID}a");
    let upper = ID.to_ascii_uppercase();
    let not_hex = format!("{}g", &ID[..63]);
    for bad in [short, long.as_str(), upper.as_str(), not_hex.as_str()] {
        none(&format!("/docker/{bad}"));
        none(&format!("/system.slice/docker-{bad}.scope"));
        none(&format!("/machine.slice/libpod-{bad}.scope"));
        none(&format!("/k8s.io/{bad}"));
    }
}

#[test]
fn ids_in_the_wrong_place_are_rejected() {
    // A bare id needs a runtime parent.
    none(&format!("/system.slice/{ID}"));
    none(&format!("/{ID}"));
    none(&format!("/{ID}/docker"));
    none(&format!("/kubepods/besteffort/{ID}"));
    // A pod directory outside kubepods is no pod.
    none(&format!("/user.slice/pod1234/{ID}"));
    // The systemd forms need `.scope` where the runtime always adds it.
    none(&format!("/system.slice/docker-{ID}"));
    none(&format!("/system.slice/docker-{ID}.service"));
    none(&format!("/system.slice/cri-containerd-{ID}"));
    none(&format!("/system.slice/docker-{ID}.scope.d"));
    // Text around the id.
    none(&format!("/system.slice/foo-docker-{ID}.scope"));
    none(&format!("/docker/x{ID}"));
    none(&format!("/docker/{ID}.scope"));
    // The ecs layout needs the task directory.
    none(&format!("/ecs/{ID}"));
}

#[test]
fn oversized_input_is_rejected() {
    let padding = "a/".repeat(MAX_CGROUP_PATH / 2);
    let path = format!("/{padding}docker/{ID}");
    assert!(path.len() > MAX_CGROUP_PATH);
    none(&path);
    // Just within the bound is still parsed.
    let pad = "b".repeat(MAX_CGROUP_PATH - ID.len() - "/docker//".len());
    let path = format!("/{pad}/docker/{ID}");
    assert_eq!(path.len(), MAX_CGROUP_PATH);
    is(&path, ID, Runtime::Docker);
}

#[test]
fn runtime_names() {
    let names: Vec<_> = [
        Runtime::Docker,
        Runtime::Containerd,
        Runtime::CriO,
        Runtime::Podman,
        Runtime::Unknown,
    ]
    .iter()
    .map(|r| r.name())
    .collect();
    assert_eq!(
        names,
        ["docker", "containerd", "cri-o", "podman", "unknown"]
    );
}

#[test]
fn cgroup_file_v2() {
    let text = format!("0::/system.slice/docker-{ID}.scope\n");
    assert_eq!(
        pick_cgroup_path(&text).as_deref(),
        Some(format!("/system.slice/docker-{ID}.scope").as_str())
    );
    assert_eq!(pick_cgroup_path("0::/\n").as_deref(), Some("/"));
    assert_eq!(pick_cgroup_path("").as_deref(), None);
    assert_eq!(pick_cgroup_path("garbage\n0:x\n").as_deref(), None);
}

#[test]
fn cgroup_file_hybrid_prefers_the_hierarchy_naming_a_container() {
    // Docker with the cgroupfs driver on a hybrid host: the unified path stays at the parent's.
    let text = format!(
        "12:memory:/docker/{ID}\n1:name=systemd:/docker/{ID}\n0::/system.slice/containerd.service\n"
    );
    assert_eq!(pick_cgroup_path(&text), Some(format!("/docker/{ID}")));
    // No container anywhere: the unified path.
    let text = "9:name=systemd:/\n4:memory:/process_api/8eb67c88d43aae6a496aa1f5d3849731\n0::/\n";
    assert_eq!(pick_cgroup_path(text).as_deref(), Some("/"));
    // v1 only: name=systemd first.
    let text = "4:memory:/a\n1:name=systemd:/user.slice/session-1.scope\n";
    assert_eq!(
        pick_cgroup_path(text).as_deref(),
        Some("/user.slice/session-1.scope")
    );
    // A path with colons is kept whole.
    let text = format!("0::/kubepods-burstable-podbd12.slice:cri-containerd:{ID}\n");
    assert_eq!(
        pick_cgroup_path(&text),
        Some(format!(
            "/kubepods-burstable-podbd12.slice:cri-containerd:{ID}"
        ))
    );
}

#[test]
fn cgroup_path_of_reads_a_procfs_tree() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("42")).unwrap();
    std::fs::write(
        root.path().join("42/cgroup"),
        format!("0::/machine.slice/libpod-{ID}.scope/container\n"),
    )
    .unwrap();
    let path = cgroup_path_of(42, root.path()).unwrap();
    assert_eq!(container_id(&path).unwrap().runtime, Runtime::Podman);
    assert_eq!(cgroup_path_of(43, root.path()), None);
}

#[test]
fn cgroup_path_of_this_process() {
    match cgroup_path_of(std::process::id(), Path::new("/proc")) {
        Some(path) => assert!(path.starts_with('/'), "{path}"),
        None => eprintln!("SKIPPED: /proc/self/cgroup is not readable here"),
    }
}
