//! `enforcer run`.

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context as _;
use enforcer::engine::{self, Mode, Options};

/// Arguments of `enforcer run`.
#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    /// Policy file or directory of policy files (YAML). `policy/default` is the shipped set.
    #[arg(long, value_name = "PATH")]
    policy: PathBuf,
    /// `block`: deny and kill as the rules say. `monitor`: a dry run, nothing is denied or
    /// killed and every would-be action is recorded.
    #[arg(long, value_enum, default_value_t = ModeArg::Block)]
    mode: ModeArg,
    /// Append audit records (JSON lines) to FILE; created with mode 0600.
    #[arg(long, value_name = "FILE")]
    audit_log: Option<PathBuf>,
    /// Do not print events and actions on stdout.
    #[arg(long)]
    quiet: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum ModeArg {
    Block,
    Monitor,
}

/// Loads the policy, then runs the engine on a tokio runtime.
pub(crate) fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let policy = match enforcer_policy::load(&args.policy) {
        Ok(policy) => policy,
        Err(diagnostics) => {
            eprintln!("{diagnostics}");
            eprintln!(
                "enforcer: error: invalid policy {}: {}",
                args.policy.display(),
                diagnostics.first_line()
            );
            return Ok(ExitCode::from(2));
        }
    };
    let options = Options {
        policy_path: args.policy,
        mode: match args.mode {
            ModeArg::Block => Mode::Block,
            ModeArg::Monitor => Mode::Monitor,
        },
        audit_log: args.audit_log,
        print: !args.quiet,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(engine::run(options, policy))?;
    Ok(ExitCode::SUCCESS)
}
