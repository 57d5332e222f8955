//! Self-protection (`enforcer run --self-protect`, lsm tier only): loads and attaches the guard
//! programs (`enforcer-ebpf` `hooks/self_guard.rs`) and writes what they protect: this
//! process, the parent allowed to stop it, the pin directories, the engine's maps and the
//! audit log's files.
//!
//! The guards are never pinned: they end with the engine's process, so a later engine can
//! take over the pins a crashed one left. They are attached last, once the pins exist.

use std::{os::unix::fs::MetadataExt, path::Path};

use aya::{
    Ebpf,
    maps::{Array, HashMap, MapError},
    programs::Lsm,
};
use enforcer_common::{
    guard::{GUARDED_FILES_CAPACITY, GuardSettings},
    maps::{GUARDED_FILES, GUARDED_MAPS, SELF_GUARD, programs},
    plan::FileId,
};

use super::{KernelTier, LoadError, Loaded, program, program_err};

/// The guard programs and their LSM hooks.
pub const GUARD_PROGRAMS: [(&str, &str); 9] = [
    (programs::LSM_GUARD_TASK_KILL, "task_kill"),
    (programs::LSM_GUARD_PTRACE, "ptrace_access_check"),
    (programs::LSM_GUARD_PATH_UNLINK, "path_unlink"),
    (programs::LSM_GUARD_PATH_RMDIR, "path_rmdir"),
    (programs::LSM_GUARD_PATH_RENAME, "path_rename"),
    (programs::LSM_GUARD_SB_UMOUNT, "sb_umount"),
    (programs::LSM_GUARD_BPF_MAP, "bpf_map"),
    (programs::LSM_GUARD_FILE_OPEN, "file_open"),
    (programs::LSM_GUARD_PATH_TRUNCATE, "path_truncate"),
];

/// The guard of `file_truncate`, a hook kernels before 6.2 lack (there `path_truncate` sees
/// `ftruncate` and `O_TRUNC` opens too).
const FILE_TRUNCATE_GUARD: (&str, &str) = (programs::LSM_GUARD_FILE_TRUNCATE, "file_truncate");

/// The first kernel with the `file_truncate` hook.
const FILE_TRUNCATE_SINCE: (u32, u32) = (6, 2);

/// Why self-protection could not be turned on (the engine does not start without it).
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// The kernel has no BPF LSM: nothing can refuse a signal or an unlink.
    #[error(
        "--self-protect needs BPF LSM (the lsm tier); this kernel gives the {tier} tier: {reason}"
    )]
    NotLsm {
        /// The tier the kernel gives.
        tier: &'static str,
        /// Why BPF LSM is unavailable.
        reason: String,
    },
    /// The engine's parent could not be read from /proc.
    #[error("--self-protect: cannot read the engine's parent from /proc: {0}")]
    Parent(String),
    /// A pin directory could not be examined.
    #[error("--self-protect: cannot stat the pin directory {path}: {source}")]
    PinDir {
        /// The directory.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A guard map could not be written.
    #[error("--self-protect: cannot write map {map}: {source}")]
    Map {
        /// Map name.
        map: &'static str,
        /// The cause.
        source: MapError,
    },
    /// A guard program could not be loaded or attached.
    #[error("--self-protect: {0}")]
    Load(#[from] LoadError),
}

/// The pin directories the guards keep: the pin root and this run's directory.
#[derive(Debug, Clone, Copy)]
pub struct PinDirs<'a> {
    /// `/sys/fs/bpf/enforcer`.
    pub root: &'a Path,
    /// `/sys/fs/bpf/enforcer/<run id>`.
    pub run: &'a Path,
}

/// What the guards protect, for the start record and the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guarded {
    /// The process allowed to stop the engine besides pid 1.
    pub parent_pid: u32,
    /// Whether pins are guarded (only with `--on-crash keep-enforcing`).
    pub pins: bool,
    /// Engine maps only the engine may write.
    pub maps: usize,
}

/// Whether kernel release `release` (`uname -r`, e.g. `6.1.0-47-amd64`) is at least
/// `(major, minor)`; `false` when it does not parse.
fn release_at_least(release: &str, (major, minor): (u32, u32)) -> bool {
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(str::parse::<u32>);
    match (parts.next(), parts.next()) {
        (Some(Ok(a)), Some(Ok(b))) => (a, b) >= (major, minor),
        _ => false,
    }
}

/// `Err` unless the kernel gives the lsm tier: checked right after the load, before anything
/// is attached or pinned, and again by [`enable`].
pub fn require_lsm(loaded: &Loaded) -> Result<(), GuardError> {
    if loaded.tier == KernelTier::Lsm {
        return Ok(());
    }
    Err(GuardError::NotLsm {
        tier: loaded.tier.name(),
        reason: loaded.tier_reason.clone(),
    })
}

/// Turns self-protection on: writes the settings, attaches the guards, lists the maps.
pub fn enable(loaded: &mut Loaded, pins: Option<PinDirs<'_>>) -> Result<Guarded, GuardError> {
    require_lsm(loaded)?;
    let settings = settings(pins)?;
    let mut slot: Array<_, GuardSettings> = map_mut(&mut loaded.ebpf, SELF_GUARD)?;
    slot.set(0, settings, 0).map_err(|source| GuardError::Map {
        map: SELF_GUARD,
        source,
    })?;
    attach(&mut loaded.ebpf)?;
    loaded.self_protected = true;
    let maps = protect_maps(&mut loaded.ebpf)?;
    Ok(Guarded {
        parent_pid: settings.parent_tgid,
        pins: settings.pin_dev != 0,
        maps,
    })
}

/// The settings for this process, its parent and `pins`.
fn settings(pins: Option<PinDirs<'_>>) -> Result<GuardSettings, GuardError> {
    let parent = |e: procfs::ProcError| GuardError::Parent(e.to_string());
    let me = procfs::process::Process::myself().and_then(|p| p.stat());
    let parent_tgid = me.map_err(parent)?.ppid;
    let parent_start = procfs::process::Process::new(parent_tgid)
        .and_then(|p| p.stat())
        .map_err(parent)?
        .starttime;
    let mut settings = GuardSettings {
        engine_tgid: std::process::id(),
        parent_tgid: u32::try_from(parent_tgid).unwrap_or(0),
        parent_start_ticks: parent_start,
        tick_ns: 1_000_000_000 / procfs::ticks_per_second().max(1),
        ..GuardSettings::default()
    };
    if let Some(pins) = pins {
        let root = dir_id(pins.root)?;
        let run = dir_id(pins.run)?;
        settings.pin_dev = run.dev;
        settings.pin_root_ino = if root.dev == run.dev { root.ino } else { 0 };
        settings.run_dir_ino = run.ino;
    }
    Ok(settings)
}

/// The kernel identity (super block `dev_t`, inode number) of directory `path`.
fn dir_id(path: &Path) -> Result<FileId, GuardError> {
    let meta = std::fs::metadata(path).map_err(|source| GuardError::PinDir {
        path: path.display().to_string(),
        source,
    })?;
    Ok(FileId::from_stat(meta.dev(), meta.ino()))
}

/// Loads and attaches the guard programs (the `file_truncate` one where the kernel has the
/// hook: a failure there is an error from 6.2 on, where only it sees `ftruncate`).
fn attach(ebpf: &mut Ebpf) -> Result<(), LoadError> {
    let btf = aya::Btf::from_sys_fs()?;
    for (name, hook) in GUARD_PROGRAMS {
        let prog: &mut Lsm = program(ebpf, name)?;
        prog.load(hook, &btf).map_err(program_err("load", name))?;
        prog.attach().map_err(program_err("attach", name))?;
    }
    let (name, hook) = FILE_TRUNCATE_GUARD;
    let release = super::tier::kernel_release();
    let prog: &mut Lsm = program(ebpf, name)?;
    match prog.load(hook, &btf) {
        Ok(()) => {
            prog.attach().map_err(program_err("attach", name))?;
        }
        Err(_) if !release_at_least(&release, FILE_TRUNCATE_SINCE) => {
            tracing::info!(
                "kernel {release} has no file_truncate hook: path_truncate guards O_TRUNC opens and ftruncate"
            );
        }
        Err(err) => return Err(program_err("load", name)(err)),
    }
    Ok(())
}

/// Makes `files` (`st_dev`, `st_ino` of the logs' open files first, then their rotated files)
/// the guarded ones: entries of files no longer among them are removed first (an inode number
/// is reused once its file is gone), then the new ones written. Beyond the map's capacity the
/// last (oldest rotated) files are left unguarded, with a warning. Returns how many are
/// guarded.
pub fn guard_files(ebpf: &mut Ebpf, files: &[(u64, u64)]) -> Result<usize, GuardError> {
    let wanted = files_to_guard(files);
    if wanted.len() < files.len() {
        tracing::warn!(
            "{} of the logs' {} files are guarded (the guard map holds {GUARDED_FILES_CAPACITY}): the oldest rotated ones are not",
            wanted.len(),
            files.len()
        );
    }
    let mut guarded: HashMap<_, FileId, u32> = map_mut(ebpf, GUARDED_FILES)?;
    let stale: Vec<FileId> = guarded
        .keys()
        .filter_map(Result::ok)
        .filter(|id| !wanted.contains(id))
        .collect();
    let failed = |source| GuardError::Map {
        map: GUARDED_FILES,
        source,
    };
    for id in &stale {
        guarded.remove(id).map_err(failed)?;
    }
    for id in &wanted {
        guarded.insert(id, 1, 0).map_err(failed)?;
    }
    Ok(wanted.len())
}

/// `files` as guard keys, in their order, each once, at most [`GUARDED_FILES_CAPACITY`].
fn files_to_guard(files: &[(u64, u64)]) -> Vec<FileId> {
    let mut wanted: Vec<FileId> = Vec::new();
    for &(dev, ino) in files {
        let id = FileId::from_stat(dev, ino);
        if !wanted.contains(&id) && wanted.len() < GUARDED_FILES_CAPACITY as usize {
            wanted.push(id);
        }
    }
    wanted
}

/// Writes the ids of every map a loaded program of the engine uses into `GUARDED_MAPS`;
/// returns how many there are. Called again after a reload loads more programs.
pub fn protect_maps(ebpf: &mut Ebpf) -> Result<usize, GuardError> {
    let mut ids: Vec<u32> = ebpf
        .programs()
        .filter_map(|(_, prog)| prog.info().ok())
        .filter_map(|info| info.map_ids().ok().flatten())
        .flatten()
        .collect();
    ids.sort_unstable();
    ids.dedup();
    let mut guarded: HashMap<_, u32, u32> = map_mut(ebpf, GUARDED_MAPS)?;
    for id in &ids {
        guarded.insert(id, 1, 0).map_err(|source| GuardError::Map {
            map: GUARDED_MAPS,
            source,
        })?;
    }
    Ok(ids.len())
}

/// Map `name` of the object as a `T`.
fn map_mut<'e, T>(ebpf: &'e mut Ebpf, name: &'static str) -> Result<T, GuardError>
where
    T: TryFrom<&'e mut aya::maps::Map, Error = MapError>,
{
    let map = ebpf.map_mut(name).ok_or(GuardError::Map {
        map: name,
        source: MapError::InvalidName {
            name: name.to_owned(),
        },
    })?;
    T::try_from(map).map_err(|source| GuardError::Map { map: name, source })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn the_settings_name_this_process_and_its_parent() {
        let settings = settings(None).expect("settings from /proc");
        assert_eq!(settings.engine_tgid, std::process::id());
        let ppid = std::os::unix::process::parent_id();
        assert_eq!(settings.parent_tgid, ppid);
        let start = procfs::process::Process::new(i32::try_from(ppid).unwrap())
            .and_then(|p| p.stat())
            .unwrap()
            .starttime;
        assert_eq!(settings.parent_start_ticks, start);
        assert!(settings.tick_ns > 0);
        assert_eq!(settings.pin_dev, 0, "no pins, nothing on bpffs guarded");
    }

    /// The open files come first and stay guarded however many rotated files there are.
    #[test]
    fn files_to_guard_keeps_the_first_files_once_each_up_to_the_capacity() {
        let capacity = GUARDED_FILES_CAPACITY as usize;
        let open = [(8, 10), (8, 11)];
        let rotated = (100..100 + 2 * GUARDED_FILES_CAPACITY).map(|ino| (8, u64::from(ino)));
        let files: Vec<(u64, u64)> = open.into_iter().chain([(8, 10)]).chain(rotated).collect();
        let wanted = files_to_guard(&files);
        assert_eq!(wanted.len(), capacity);
        assert_eq!(wanted[0], FileId::from_stat(8, 10));
        assert_eq!(wanted[1], FileId::from_stat(8, 11));
        assert_eq!(
            wanted[2],
            FileId::from_stat(8, 100),
            "the duplicate is skipped"
        );
        let last = u64::from(100 + GUARDED_FILES_CAPACITY - 3);
        assert_eq!(wanted[capacity - 1], FileId::from_stat(8, last));
    }

    #[test]
    fn kernel_releases_compare_by_major_and_minor() {
        assert!(!release_at_least("6.1.0-47-amd64", (6, 2)));
        assert!(release_at_least("6.12.117+deb13-cloud-amd64", (6, 2)));
        assert!(release_at_least("6.2", (6, 2)));
        assert!(release_at_least("7.0.1", (6, 2)));
        assert!(!release_at_least("5.19.0", (6, 2)));
        assert!(!release_at_least("garbage", (6, 2)));
    }

    #[test]
    fn pin_directories_are_named_by_device_and_inode() {
        let dir = std::env::temp_dir().join(format!("guard-pins-{}", std::process::id()));
        let run = dir.join("run");
        std::fs::create_dir_all(&run).unwrap();
        let settings = settings(Some(PinDirs {
            root: &dir,
            run: &run,
        }))
        .unwrap();
        let meta = std::fs::metadata(&run).unwrap();
        assert_eq!(settings.run_dir_ino, meta.ino());
        assert_eq!(
            settings.pin_root_ino,
            std::fs::metadata(&dir).unwrap().ino()
        );
        assert_ne!(settings.pin_dev, 0);
        let missing = settings_missing(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            missing.contains("cannot stat the pin directory"),
            "{missing}"
        );
    }

    fn settings_missing(dir: &Path) -> String {
        let gone = dir.join("gone");
        settings(Some(PinDirs {
            root: dir,
            run: &gone,
        }))
        .unwrap_err()
        .to_string()
    }
}
