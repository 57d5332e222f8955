//! `enforcer report`.

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    process::ExitCode,
};

use enforcer::{
    audit::{AuditReader, writer::rotated_path},
    report::Aggregator,
};

/// Arguments of `enforcer report`.
#[derive(Debug, clap::Args)]
pub(crate) struct ReportArgs {
    /// The audit log (JSON lines) of `enforcer run --audit-log`; read once, in bounded memory,
    /// after its rotated files (FILE.N .. FILE.1, oldest first) when there are some.
    #[arg(long, value_name = "FILE")]
    audit_log: PathBuf,
    /// Read FILE alone, not its rotated files.
    #[arg(long)]
    no_rotated: bool,
    /// `md` (Markdown, default), `json` (the report's data) or `html` (one self-contained page).
    #[arg(long, value_enum, default_value_t = Format::Md)]
    format: Format,
    /// Only records at or after this time (RFC 3339, UTC, e.g. `2026-11-30T00:00:00Z`).
    #[arg(long, value_name = "TIME", value_parser = rfc3339)]
    since: Option<String>,
    /// Only records at or before this time (RFC 3339, UTC).
    #[arg(long, value_name = "TIME", value_parser = rfc3339)]
    until: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Md,
    Json,
    Html,
}

/// A time as the audit log writes it, normalized to its format (UTC, microseconds) so that the
/// records compare with it as text.
fn rfc3339(value: &str) -> Result<String, String> {
    let time = humantime::parse_rfc3339_weak(value).map_err(|e| format!("{value:?}: {e}"))?;
    Ok(enforcer::audit::writer::timestamp(time))
}

/// Most rotated files read (`enforcer run --audit-keep` allows as many).
const MAX_ROTATED: u32 = 1000;

/// The files of the log at `path`, oldest first: its rotated files `PATH.N` .. `PATH.1`
/// (numbered without a hole from 1) unless `alone`, then `PATH`.
fn log_files(path: &Path, alone: bool) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = if alone {
        Vec::new()
    } else {
        (1..=MAX_ROTATED)
            .map(|n| rotated_path(path, n))
            .take_while(|p| p.exists())
            .collect()
    };
    files.reverse();
    files.push(path.to_path_buf());
    files
}

/// Reads the log and prints the report on stdout.
pub(crate) fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let path = args.audit_log.display().to_string();
    let mut aggregator = Aggregator::new(&path, args.since, args.until);
    for file_path in log_files(&args.audit_log, args.no_rotated) {
        let name = file_path.display().to_string();
        let read = std::fs::File::open(&file_path).and_then(|file| {
            AuditReader::for_each(std::io::BufReader::new(file), |record| {
                aggregator.add(&record);
            })
        });
        match read {
            Ok(summary) => aggregator.read_summary(&name, summary),
            Err(err) => {
                eprintln!("enforcer: error: cannot read the audit log {name}: {err}");
                return Ok(ExitCode::from(2));
            }
        }
    }
    let report = aggregator.finish();
    let text = match args.format {
        Format::Md => enforcer::report::markdown::render(&report),
        Format::Html => enforcer::report::html::render(&report),
        Format::Json => serde_json::to_string_pretty(&report)? + "\n",
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
