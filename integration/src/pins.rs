//! The engine's pins as the host and guest tests see them: the pin root and its run
//! directories (`enforcer run --on-crash keep-enforcing`).

/// Where the engine pins (`enforcer::loader::pins::PIN_ROOT`).
pub const PIN_ROOT: &str = "/sys/fs/bpf/enforcer";

/// The names of the run directories under [`PIN_ROOT`]; none when it is missing.
pub fn run_dirs() -> Vec<String> {
    std::fs::read_dir(PIN_ROOT)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}
