//! `NEVER_KILL`: the `--never-kill` executables, by inode and device, so the kernel's one kill
//! site (`plan::act`) spares a process running one of them, as the daemon's kill path does.
//!
//! Each path is `stat`ed once at start (symlinks followed). A file replaced later (a package
//! upgrade writes a new inode) is no longer spared by the kernel until the engine restarts; the
//! daemon's own kills still match it by path. On filesystems whose `st_dev` is not the
//! superblock's device (btrfs subvolumes) the kernel cannot match the entry.

use std::{os::unix::fs::MetadataExt as _, path::PathBuf};

use aya::{Ebpf, maps::HashMap};
use enforcer_common::{maps::NEVER_KILL, plan::FileId};

use super::plan_sync::PlanError;

/// Writes the identity of every `paths` entry that exists into `NEVER_KILL`; returns the paths
/// that could not be read, with the reason (the engine warns about them).
pub fn write(ebpf: &mut Ebpf, paths: &[PathBuf]) -> Result<Vec<(PathBuf, String)>, PlanError> {
    let mut map: HashMap<_, FileId, u32> = super::plan_sync::plan_map(ebpf, NEVER_KILL)?;
    let mut missing = Vec::new();
    for path in paths {
        match std::fs::metadata(path) {
            Ok(meta) => map
                .insert(FileId::from_stat(meta.dev(), meta.ino()), 1, 0)
                .map_err(|source| PlanError::Map {
                    map: NEVER_KILL,
                    source,
                })?,
            Err(err) => missing.push((path.clone(), err.to_string())),
        }
    }
    Ok(missing)
}
