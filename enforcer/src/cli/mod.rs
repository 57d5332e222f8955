//! The command line: argument parsing and dispatch. One file per subcommand.

mod default_never_kill;
mod error_line;
mod policy_cmd;
mod report;
mod run;
mod status;
mod unpin;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Active-protection enforcement engine: BPF LSM and tracepoint programs that stop
/// crypto-mining in the kernel, driven by a policy of rules.
#[derive(Debug, Parser)]
#[command(name = "enforcer", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Load the policy, attach the kernel programs and enforce until SIGINT/SIGTERM.
    ///
    /// The engine probes the kernel and picks a tier: `lsm` (BPF LSM: denied operations fail
    /// with EPERM), `signal` (no BPF LSM: the process is killed with SIGKILL before the denied
    /// program runs) or, with `--mode monitor`, records what it would do and acts on nothing.
    /// An `engine_start` record is written once everything is attached. Needs root.
    Run(run::RunArgs),
    /// Check, evaluate and document policies.
    #[command(subcommand)]
    Policy(policy_cmd::PolicyCommand),
    /// Show the tier this kernel allows and which event families each tier sees and stops.
    ///
    /// Probing loads the kernel programs without attaching them, so it needs root; without
    /// root the tier is reported as unknown.
    Status(status::StatusArgs),
    /// Remove the enforcement a killed engine left pinned (`enforcer run --on-crash
    /// keep-enforcing`).
    ///
    /// A run's pins live in /sys/fs/bpf/enforcer/<run id>/; removing them detaches its
    /// programs. Pins of a running engine are kept (stop it instead). `enforcer status` lists
    /// them. The next `enforcer run` also replaces them, with no moment unenforced.
    Unpin(unpin::UnpinArgs),
    /// Write a policy audit report of an audit log: rule by rule, what was denied and killed,
    /// or in a dry run (`--mode monitor`) what would have been, on which executables and
    /// containers, with response times; the engine runs, restart gaps and policy reloads.
    ///
    /// Read `enforcer run --mode monitor` logs with it before switching a host to block mode.
    /// Needs no root.
    Report(report::ReportArgs),
}

/// Parses the command line, runs the subcommand and maps errors to an exit status with a
/// one-line reason on stderr.
pub(crate) fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ENFORCER_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match cli.command {
        Command::Run(args) => run::run(args),
        Command::Policy(cmd) => policy_cmd::run(cmd),
        Command::Status(args) => status::run(args),
        Command::Unpin(args) => unpin::run(args),
        Command::Report(args) => report::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("enforcer: error: {}", error_line::error_line(&err));
            ExitCode::FAILURE
        }
    }
}
