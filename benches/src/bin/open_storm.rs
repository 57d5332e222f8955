//! Whole-system benchmark of the file hooks: open + close of a file outside every watched
//! path, with and without the engine, alternating rounds, reporting the ratio and the
//! per-open latency delta (goal: at most +0.15 us per non-watched open).
//!
//! `--access read` (default, the common open): the open hook leaves at the flags check (no
//! path is built). `--access write` (`O_WRONLY`): the dentry chain is walked and the path
//! judged by its directories (`FILE_WATCH_DIRS`), or built and matched against `FILE_WATCH`
//! when it lies on the way to a watched path, then dropped in the kernel (`file_filtered`).
//! `--access create-unlink`: the file is created, closed and unlinked, so the unlink hook
//! runs too. `--file` puts the file elsewhere (`/var/log/...`: under a directory the default
//! policy watches something in).
//!
//! `cargo run --release -p enforcer-benches --bin open_storm -- --access read`. Needs root.

use std::{ffi::CString, os::unix::ffi::OsStrExt as _, path::PathBuf};

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use enforcer_benches::{EngineSpec, Round, alternate, report};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Access {
    Read,
    Write,
    /// Create (`O_WRONLY | O_CREAT`), close and unlink the file: the write open's hook and the
    /// unlink's (`path_unlink`) per operation.
    CreateUnlink,
}

/// Open storm with and without the engine.
#[derive(Debug, Parser)]
struct Args {
    /// The engine and its policy.
    #[command(flatten)]
    engine: EngineSpec,
    /// How the file is opened.
    #[arg(long, value_enum, default_value_t = Access::Read)]
    access: Access,
    /// The file opened (created when absent; must not be under a watched path).
    #[arg(long, default_value = "/tmp/enforcer-open-storm/file.txt")]
    file: PathBuf,
    /// Opens per round.
    #[arg(long, default_value_t = 200_000)]
    iterations: usize,
    /// Rounds per side (with/without), alternating.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(dir) = args.file.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("mkdir {}", dir.display()))?;
    }
    std::fs::write(&args.file, b"x").with_context(|| format!("create {}", args.file.display()))?;
    let path = CString::new(args.file.as_os_str().as_bytes()).context("path with NUL")?;
    let flags = match args.access {
        Access::Read => libc::O_RDONLY,
        Access::Write => libc::O_WRONLY,
        Access::CreateUnlink => libc::O_WRONLY | libc::O_CREAT,
    };
    let unlink = matches!(args.access, Access::CreateUnlink);
    let spec = args.engine.clone();
    let (without, with) = alternate(&spec, args.rounds, || {
        Round::measure(args.iterations, || {
            // SAFETY: a valid NUL-terminated path; the descriptor is closed at once.
            let fd = unsafe { libc::open(path.as_ptr(), flags, 0o644) };
            anyhow::ensure!(fd >= 0, "open: {}", std::io::Error::last_os_error());
            // SAFETY: our own descriptor.
            unsafe { libc::close(fd) };
            // SAFETY: as above; the file this loop made.
            if unlink && unsafe { libc::unlink(path.as_ptr()) } != 0 {
                anyhow::bail!("unlink: {}", std::io::Error::last_os_error());
            }
            Ok(())
        })
    })?;
    report(
        &format!(
            "open storm, {:?} ({} opens per round, {})",
            args.access,
            args.iterations,
            args.file.display()
        ),
        &without,
        &with,
    );
    // The mean cost per open from the median throughputs (the latency percentiles include
    // the clock reads around each call).
    let median = |rounds: &[Round]| {
        let mut v: Vec<f64> = rounds.iter().map(|r| r.per_sec).collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    let (b, w) = (median(&without), median(&with));
    if b > 0.0 && w > 0.0 {
        println!(
            "mean per open: without {:.3} us, with {:.3} us, delta {:+.3} us",
            1e6 / b,
            1e6 / w,
            1e6 / w - 1e6 / b
        );
    }
    Ok(())
}
