//! Builds the kernel programs (`enforcer-ebpf`) for bpfel-unknown-none with the nightly toolchain
//! and bpf-linker; the object lands in OUT_DIR and is embedded by `include_bytes_aligned!`.
//! `AYA_BUILD_SKIP=1` skips it (for tools that only need the userspace crate to type-check).

fn main() -> anyhow::Result<()> {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../enforcer-ebpf");
    aya_build::build_ebpf(
        [aya_build::Package {
            name: "enforcer-ebpf",
            root_dir: root,
            ..Default::default()
        }],
        aya_build::Toolchain::default(),
    )
}
