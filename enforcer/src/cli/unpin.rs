//! `enforcer unpin`: removes the pins a dead engine left under `/sys/fs/bpf/enforcer/`
//! (`--on-crash keep-enforcing`), which ends the enforcement its programs kept up. Pins of a
//! running engine are left alone (stop that engine instead).

use std::{path::Path, process::ExitCode};

use clap::Args;
use enforcer::loader::pins::{self, PIN_ROOT, PinnedRun};

/// Arguments of `enforcer unpin`.
#[derive(Debug, Args)]
pub(crate) struct UnpinArgs {
    /// Only list what would be removed.
    #[arg(long)]
    dry_run: bool,
}

/// One line about a pinned run.
pub(crate) fn describe(run: &PinnedRun) -> String {
    let who = run.run.map_or_else(
        || "unknown run".to_owned(),
        |r| {
            let started = crate::cli::unpin::unix_time(r.started_unix);
            format!("run {r} (pid {}, started {started})", r.pid)
        },
    );
    let state = if run.alive {
        "engine running"
    } else {
        "ENGINE GONE, still enforcing"
    };
    format!(
        "{} {who}: {} pinned link(s), {state}",
        run.dir.display(),
        run.links.len()
    )
}

/// `secs` since the epoch, RFC 3339.
pub(crate) fn unix_time(secs: u64) -> String {
    enforcer::audit::writer::timestamp(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

/// Runs `enforcer unpin`.
pub(crate) fn run(args: UnpinArgs) -> anyhow::Result<ExitCode> {
    let runs = pins::runs(Path::new(PIN_ROOT))
        .map_err(|e| anyhow::anyhow!("cannot list {PIN_ROOT}: {e}"))?;
    let mut failed = false;
    let mut removed = 0;
    for run in &runs {
        if run.alive {
            println!("kept    {} (stop that engine to end it)", describe(run));
            continue;
        }
        if args.dry_run {
            println!("would remove {}", describe(run));
            continue;
        }
        match run.remove() {
            Ok(n) => {
                removed += 1;
                println!("removed {} ({n} link(s) detached)", describe(run));
            }
            Err(e) => {
                failed = true;
                eprintln!("enforcer: error: cannot remove {}: {e}", run.dir.display());
            }
        }
    }
    if runs.is_empty() {
        println!("no pinned enforcement in {PIN_ROOT}");
    } else if !args.dry_run {
        println!("{removed} run(s) unpinned");
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
