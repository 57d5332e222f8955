//! `enforcer`: the command line. Each subcommand lives in its own file under `cli/`.

mod cli;

/// The daemon handles every kernel record with many small, short-lived allocations (the event's
/// JSON tree, its enrichment, the audit line); glibc's malloc spent about a quarter of the
/// daemon's CPU on them in the exec storm (benches/README.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
