//! Building this crate needs the `bpf-linker` binary, which cargo cannot see as a dependency:
//! rerun when it changes so a new linker relinks the programs.
//!
//! `bpf_target_arch` (the architecture whose kernel runs the programs; `hooks/module_args.rs`
//! reads x86_64 registers under it): aya-build passes it as `--cfg` when the engine's build
//! builds this crate; a direct build (the kernel clippy run) gets the host's, as aya-ebpf's own
//! build script does.

fn main() {
    if let Ok(linker) = which::which("bpf-linker") {
        println!("cargo:rerun-if-changed={}", linker.display());
    }
    println!(
        "cargo::rustc-check-cfg=cfg(bpf_target_arch, values(\"aarch64\", \"arm\", \
         \"loongarch64\", \"mips\", \"mips64\", \"powerpc64\", \"riscv64\", \"s390x\", \"x86_64\"))"
    );
    println!("cargo:rerun-if-env-changed=CARGO_CFG_BPF_TARGET_ARCH");
    println!("cargo:rerun-if-env-changed=HOST");
    if std::env::var_os("CARGO_CFG_BPF_TARGET_ARCH").is_none()
        && let Ok(host) = std::env::var("HOST")
    {
        let arch = host.split_once('-').map_or(host.as_str(), |(arch, _)| arch);
        // As aya-build's `target_arch_fixup`.
        let arch = if arch.starts_with("riscv64") {
            "riscv64"
        } else {
            arch
        };
        println!("cargo:rustc-cfg=bpf_target_arch=\"{arch}\"");
    }
}
