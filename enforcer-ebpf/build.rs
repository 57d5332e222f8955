//! Building this crate needs the `bpf-linker` binary, which cargo cannot see as a dependency:
//! rerun when it changes so a new linker relinks the programs.

fn main() {
    if let Ok(linker) = which::which("bpf-linker") {
        println!("cargo:rerun-if-changed={}", linker.display());
    }
}
