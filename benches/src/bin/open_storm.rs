//! Whole-system benchmark of the file hooks: open + close of a file outside every watched
//! path, with and without the engine, alternating rounds, reporting the ratio and the
//! per-open latency delta (goal: at most +0.15 us per non-watched open).
//!
//! `--access read` (default, the common open): the open hook leaves at the flags check (no
//! path is built). `--access write` (`O_WRONLY`): the dentry chain is walked and the path
//! judged by its directories (`FILE_DIR_BITS`), or built and matched against `FILE_WATCH`
//! when it lies on the way to a watched path, then dropped in the kernel (`file_filtered`).
//! `--access create-unlink`: the file is created, closed and unlinked, so the unlink hook
//! runs too. `--access rename` renames the file beside itself and back, `--access link`
//! hard-links it beside itself and unlinks the link: the two-path hooks (`path_rename`,
//! `path_link`), which drop an operation whose paths all lie outside the watched directories
//! before either string is built. `--file` puts the file elsewhere (`/var/log/...`: under a
//! directory the default policy watches something in).
//!
//! `cargo run --release -p enforcer-benches --bin open_storm -- --access read`. Needs root.

use std::{
    ffi::{CStr, CString},
    os::unix::ffi::OsStrExt as _,
    path::{Path, PathBuf},
};

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
    /// Rename the file to `<file stem>.renamed` and back: two renames per operation.
    Rename,
    /// Hard-link the file as `<file stem>.link` and unlink the link: a link and an unlink per
    /// operation.
    Link,
}

/// The system calls of one operation of `access` on `file` (`path`: the same as a C string,
/// for the open; `other`: the second path of a rename or link; `flags`: the open's).
fn operation(
    access: Access,
    file: &Path,
    path: &CStr,
    other: &Path,
    flags: i32,
) -> anyhow::Result<()> {
    match access {
        Access::Read | Access::Write | Access::CreateUnlink => {
            // SAFETY: a valid NUL-terminated path; the descriptor is closed at once.
            let fd = unsafe { libc::open(path.as_ptr(), flags, 0o644) };
            anyhow::ensure!(fd >= 0, "open: {}", std::io::Error::last_os_error());
            // SAFETY: our own descriptor.
            unsafe { libc::close(fd) };
            if matches!(access, Access::CreateUnlink) {
                std::fs::remove_file(file).context("unlink")?;
            }
        }
        Access::Rename => {
            std::fs::rename(file, other).context("rename")?;
            std::fs::rename(other, file).context("rename back")?;
        }
        Access::Link => {
            std::fs::hard_link(file, other).context("link")?;
            std::fs::remove_file(other).context("unlink the link")?;
        }
    }
    Ok(())
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
    let suffix = match args.access {
        Access::Link => "link",
        _ => "renamed",
    };
    let other = args.file.with_extension(suffix);
    let flags = match args.access {
        Access::Read => libc::O_RDONLY,
        Access::CreateUnlink => libc::O_WRONLY | libc::O_CREAT,
        _ => libc::O_WRONLY,
    };
    let spec = args.engine.clone();
    let (without, with) = alternate(&spec, args.rounds, || {
        Round::measure(args.iterations, || {
            operation(args.access, &args.file, &path, &other, flags)
        })
    })?;
    report(
        &format!(
            "open storm, {:?} ({} operations per round, {})",
            args.access,
            args.iterations,
            args.file.display()
        ),
        &without,
        &with,
    );
    // The mean cost per operation from the median throughputs (the latency percentiles include
    // the clock reads around each call).
    let median = |rounds: &[Round]| {
        let mut v: Vec<f64> = rounds.iter().map(|r| r.per_sec).collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    let (b, w) = (median(&without), median(&with));
    if b > 0.0 && w > 0.0 {
        println!(
            "mean per operation: without {:.3} us, with {:.3} us, delta {:+.3} us",
            1e6 / b,
            1e6 / w,
            1e6 / w - 1e6 / b
        );
    }
    Ok(())
}
