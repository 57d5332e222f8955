//! `enforcer policy check | eval | fields`: thin wrappers over `enforcer_policy` (loading,
//! diagnostics and the reports live in that crate, see `enforcer_policy::report`).

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use enforcer::loader::plan_capacity;

/// Longest event input read from a file or stdin.
const MAX_EVENT_BYTES: u64 = enforcer_policy::report::MAX_EVENT_INPUT as u64;

/// Policy tools.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum PolicyCommand {
    /// Check a policy file or directory: every error with file:line:col, then the rules per
    /// event kind, which run in the kernel and which in userspace, and the kernel plan.
    Check {
        /// Policy file or directory (`*.yaml`, merged in file-name order).
        path: PathBuf,
    },
    /// Evaluate one JSON event (bare, or an audit record `{"type":"event","event":{...}}`).
    Eval {
        /// Policy file or directory.
        path: PathBuf,
        /// Event file; `-` reads stdin.
        #[arg(long, default_value = "-")]
        event: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List every field of the expression language: name, type, event kind, kernel-matchable, doc.
    Fields {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a policy subcommand. Exit status 1 when the policy is invalid (diagnostics on stderr).
pub(crate) fn run(cmd: PolicyCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PolicyCommand::Check { path } => match enforcer_policy::load(&path) {
            Ok(policy) => {
                print!("{}", enforcer_policy::report::check_report(&policy));
                let plan = policy.plan();
                print!("{}", capacity_report(policy.rules(), plan));
                match plan_capacity::check(policy.rules(), plan) {
                    Ok(()) => Ok(ExitCode::SUCCESS),
                    Err(too_large) => {
                        eprintln!("error: {too_large}");
                        Ok(ExitCode::FAILURE)
                    }
                }
            }
            Err(diagnostics) => {
                eprintln!("{diagnostics}");
                Ok(ExitCode::FAILURE)
            }
        },
        PolicyCommand::Eval { path, event, json } => {
            let policy = match enforcer_policy::load(&path) {
                Ok(p) => p,
                Err(diagnostics) => {
                    eprintln!("{diagnostics}");
                    return Ok(ExitCode::FAILURE);
                }
            };
            let text = read_event(&event)?;
            let ev = enforcer_policy::report::parse_event(&text)
                .with_context(|| format!("event {event}"))?;
            let matches = policy.eval(&ev);
            if json {
                println!(
                    "{}",
                    enforcer_policy::report::eval_json(&policy, &ev, &matches)
                );
            } else {
                print!(
                    "{}",
                    enforcer_policy::report::eval_report(&policy, &ev, &matches)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Fields { json } => {
            if json {
                println!("{}", enforcer_policy::report::fields_json());
            } else {
                print!("{}", enforcer_policy::report::fields_report());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The kernel maps the plan uses, with how full it makes them.
fn capacity_report(
    rules: &[enforcer_policy::RuleInfo],
    plan: &enforcer_policy::KernelPlan,
) -> String {
    let mut out = String::from("kernel maps (entries / capacity):\n");
    for load in plan_capacity::loads(rules, plan) {
        if load.needed > 0 {
            let mark = if load.overflows() { "  TOO MANY" } else { "" };
            out.push_str(&format!(
                "  {:<22} {:>6} / {}{mark}\n",
                load.map, load.needed, load.capacity
            ));
        }
    }
    out
}

fn read_event(source: &str) -> anyhow::Result<String> {
    let mut text = String::new();
    if source == "-" {
        std::io::stdin()
            .take(MAX_EVENT_BYTES + 1)
            .read_to_string(&mut text)
            .context("reading the event from stdin")?;
    } else {
        std::fs::File::open(source)
            .with_context(|| format!("opening {source}"))?
            .take(MAX_EVENT_BYTES + 1)
            .read_to_string(&mut text)
            .with_context(|| format!("reading {source}"))?;
    }
    Ok(text)
}
