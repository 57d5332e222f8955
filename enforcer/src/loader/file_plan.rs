//! Writes the policy's watched file paths (`KernelPlan::file_watches`) into `FILE_WATCH`:
//! key = FNV-1a hash of the path, file operation, exact or directory prefix
//! (`enforcer_common::file::FileWatchKey`); value = the merged verdict of the rules the
//! kernel enforces there, with `PLAN_FLAG_RECORD` (report the event) always set.

use std::collections::{BTreeSet, HashSet};

use aya::{
    Ebpf,
    maps::{Array, HashMap},
};
use enforcer_common::{
    file::{DirBits, FileOp, FileWatchKey, path_hash},
    maps::{FILE_DIR_BITS, FILE_WATCH, FILE_WATCH_DIRS},
    plan::{
        PLAN_FLAG_RECORD, PlanVerdict, RECORD_FILE_ALL, RECORD_FILE_DIRS, RECORD_FILE_READ_DEVICES,
        RECORD_FILE_READS, RECORD_FILES,
    },
};
use enforcer_policy::{FileWatchEntry, KernelPlan, RuleInfo};

use super::plan_sync::{Pass, PlanError, merge_with};

/// The kernel operation of a plan entry's `op` name.
pub fn op_of(name: &str) -> Option<FileOp> {
    Some(match name {
        "open_write" => FileOp::OpenWrite,
        "open_read" => FileOp::OpenRead,
        "unlink" => FileOp::Unlink,
        "rename" => FileOp::Rename,
        "chmod" => FileOp::Chmod,
        "chown" => FileOp::Chown,
        "link" => FileOp::Link,
        "symlink" => FileOp::Symlink,
        "mkdir" => FileOp::Mkdir,
        "rmdir" => FileOp::Rmdir,
        "setxattr" => FileOp::Setxattr,
        "utimes" => FileOp::Utimes,
        "truncate" => FileOp::Truncate,
        "mount" => FileOp::Mount,
        "umount" => FileOp::Umount,
        _ => return None,
    })
}

/// The file operations the plan is about, as bits `1 << FileOp` (all when some file rule names
/// no path: the kernel then reports every file event).
pub fn ops_wanted(plan: &KernelPlan) -> u32 {
    if plan.file_rules && !plan.file_filtered {
        return u32::MAX;
    }
    plan.file_watches
        .iter()
        .filter_map(|e| op_of(&e.op))
        .fold(0, |bits, op| bits | 1 << op as u32)
}

/// The directories on the way to a watched path, as `FILE_WATCH_DIRS` lists them: each
/// leading part of `path` before a `/` (where the kernel's match looks directory prefixes
/// up), the path itself, and for a watched subtree (`exact` false) the path followed by `/`.
/// `None` for a path without a first component (`/`, or not absolute).
fn dirs_of(path: &str, exact: bool) -> Option<Vec<String>> {
    let rest = path.strip_prefix('/')?;
    if rest.is_empty() || rest.starts_with('/') {
        return None;
    }
    let mut dirs: Vec<String> = path
        .match_indices('/')
        .filter(|(at, _)| *at > 0)
        .map(|(at, _)| path[..at].to_owned())
        .collect();
    dirs.push(path.to_owned());
    if !exact {
        dirs.push(format!("{path}/"));
    }
    Some(dirs)
}

/// `path_hash` of every entry of `FILE_WATCH_DIRS` ([`dirs_of`] of every watched path);
/// `None` when some watched path has no first component (`/` itself): the kernel cannot then
/// filter by directories.
pub fn dirs(plan: &KernelPlan) -> Option<BTreeSet<u64>> {
    let mut out = BTreeSet::new();
    for entry in &plan.file_watches {
        for dir in dirs_of(&entry.path, entry.exact)? {
            out.insert(path_hash(dir.as_bytes()));
        }
    }
    Some(out)
}

/// The `PLAN_SETTINGS` record bits of the file family.
pub fn settings_bits(plan: &KernelPlan) -> u32 {
    let mut bits = 0;
    if plan.file_rules {
        bits |= RECORD_FILES;
        if !plan.file_filtered {
            bits |= RECORD_FILE_ALL | RECORD_FILE_READS;
        } else if dirs(plan).is_some() {
            bits |= RECORD_FILE_DIRS;
        }
        let mut reads = plan.file_watches.iter().filter(|e| e.is_read()).peekable();
        if reads.peek().is_some() {
            // Device paths only: the kernel checks read-only opens of device files alone.
            if reads.all(|e| e.path.starts_with("/dev/")) {
                bits |= RECORD_FILE_READ_DEVICES;
            } else {
                bits |= RECORD_FILE_READS;
            }
        }
    }
    bits
}

/// The key and verdict of one entry (`None` for an unknown operation).
pub fn entry_kv(
    rules: &[RuleInfo],
    entry: &FileWatchEntry,
    generation: u32,
    disarmed: &HashSet<u32>,
) -> Option<(FileWatchKey, PlanVerdict)> {
    let op = op_of(&entry.op)?;
    let key = FileWatchKey {
        hash: path_hash(entry.path.as_bytes()),
        op: op as u32,
        exact: u32::from(entry.exact),
    };
    let mut verdict =
        merge_with(rules, &entry.rules, generation, disarmed).unwrap_or(PlanVerdict {
            rule_index: entry
                .watchers
                .first()
                .or(entry.rules.first())
                .copied()
                .unwrap_or(0),
            actions: 0,
            flags: 0,
            generation,
        });
    verdict.flags |= PLAN_FLAG_RECORD;
    Some((key, verdict))
}

/// Writes the entries `pass` says (see [`Pass`]); returns how many were written.
pub fn write(
    ebpf: &mut Ebpf,
    rules: &[RuleInfo],
    plan: &KernelPlan,
    generation: u32,
    disarmed: &HashSet<u32>,
    pass: Pass,
) -> Result<usize, PlanError> {
    let map = FILE_WATCH;
    let mut hash: HashMap<_, FileWatchKey, PlanVerdict> = super::plan_sync::plan_map(ebpf, map)?;
    let mut written = 0;
    for entry in &plan.file_watches {
        let Some((key, verdict)) = entry_kv(rules, entry, generation, disarmed) else {
            continue;
        };
        let result = hash.insert(key, verdict, pass.flags());
        written += usize::from(pass.inserted(map, result)?);
    }
    let map = FILE_WATCH_DIRS;
    let mut dir_map: HashMap<_, u64, u32> = super::plan_sync::plan_map(ebpf, map)?;
    for dir in dirs(plan).unwrap_or_default() {
        let result = dir_map.insert(dir, generation, pass.flags());
        pass.inserted(map, result)?;
    }
    write_dir_bits(ebpf)?;
    Ok(written)
}

/// Rewrites `FILE_DIR_BITS`, which the kernel's directory filter reads, from the keys
/// `FILE_WATCH_DIRS` holds now: after a policy's directories are written (until the sweep,
/// the bits of both generations) and after the sweep (the new generation's alone). The slot
/// is copied in place, and a program reading it meanwhile sees each byte old or new: a bit
/// both hold is never seen clear, so what both policies watch is never dropped.
pub fn write_dir_bits(ebpf: &mut Ebpf) -> Result<(), PlanError> {
    let dir_map: HashMap<_, u64, u32> = super::plan_sync::plan_map(ebpf, FILE_WATCH_DIRS)?;
    let mut bits = DirBits::EMPTY;
    for dir in dir_map.keys() {
        let dir = dir.map_err(|source| PlanError::Map {
            map: FILE_WATCH_DIRS,
            source,
        })?;
        bits.insert(dir);
    }
    let map = FILE_DIR_BITS;
    let mut array: Array<_, DirBits> = super::plan_sync::plan_map(ebpf, map)?;
    array
        .set(0, bits, 0)
        .map_err(|source| PlanError::Map { map, source })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use enforcer_common::plan::ACTION_DENY;

    const POLICY: &str = r#"
rules:
  - id: shadow
    expression: open.file.path == "/etc/shadow" && open.is_write
    action: deny
  - id: ssh
    expression: open.file.path startswith "/root/.ssh/"
    action: alert
  - id: msr
    expression: open.file.path =~ ~"/dev/cpu/*/msr" && open.is_write
    action: alert
"#;

    #[test]
    fn watched_paths_become_keys() {
        let policy = enforcer_policy::load_str("p.yaml", POLICY).unwrap();
        let plan = policy.lower();
        assert!(plan.file_rules && plan.file_filtered);
        let keys: Vec<_> = plan
            .file_watches
            .iter()
            .map(|e| (e.op.as_str(), e.path.as_str(), e.exact))
            .collect();
        assert!(
            keys.contains(&("open_write", "/etc/shadow", true)),
            "{keys:?}"
        );
        assert!(
            keys.contains(&("open_read", "/root/.ssh", false)),
            "{keys:?}"
        );
        assert!(
            keys.contains(&("open_write", "/dev/cpu", false)),
            "{keys:?}"
        );
        let shadow = plan
            .file_watches
            .iter()
            .find(|e| e.path == "/etc/shadow")
            .unwrap();
        let (key, verdict) = entry_kv(policy.rules(), shadow, 1, &HashSet::new()).unwrap();
        assert_eq!(key.hash, path_hash(b"/etc/shadow"));
        assert_eq!(key.op, FileOp::OpenWrite as u32);
        assert_eq!(verdict.actions, ACTION_DENY);
        assert_ne!(verdict.flags & PLAN_FLAG_RECORD, 0);
        let bits = settings_bits(&plan);
        assert_eq!(bits & RECORD_FILE_ALL, 0);
        assert_ne!(bits & RECORD_FILE_READS, 0);
        // The directories on the way to /etc/shadow, /root/.ssh/** and /dev/cpu/**: the
        // kernel may drop other opens by them.
        assert_ne!(bits & RECORD_FILE_DIRS, 0);
        let want: BTreeSet<u64> = [
            "/etc",
            "/etc/shadow",
            "/root",
            "/root/.ssh",
            "/root/.ssh/",
            "/dev",
            "/dev/cpu",
            "/dev/cpu/",
        ]
        .iter()
        .map(|t| path_hash(t.as_bytes()))
        .collect();
        assert_eq!(dirs(&plan), Some(want));
        // Device reads only: the kernel checks reads of device files alone.
        let dev = enforcer_policy::load_str(
            "p.yaml",
            "rules:\n  - id: m\n    expression: open.file.path == \"/dev/mem\"\n    action: alert\n",
        )
        .unwrap();
        let bits = settings_bits(&dev.lower());
        assert_eq!(bits & RECORD_FILE_READS, 0);
        assert_ne!(bits & RECORD_FILE_READ_DEVICES, 0);
    }

    #[test]
    fn directories_on_the_way_to_paths() {
        let strs = |v: Option<Vec<String>>| v.map(|d| d.join(" "));
        assert_eq!(
            strs(dirs_of("/etc/cron.d", false)).as_deref(),
            Some("/etc /etc/cron.d /etc/cron.d/")
        );
        assert_eq!(
            strs(dirs_of("/etc/passwd", true)).as_deref(),
            Some("/etc /etc/passwd")
        );
        assert_eq!(strs(dirs_of("/etc", true)).as_deref(), Some("/etc"));
        assert_eq!(
            strs(dirs_of("/sys/module/msr/parameters/allow_writes", true)).as_deref(),
            Some(
                "/sys /sys/module /sys/module/msr /sys/module/msr/parameters \
                 /sys/module/msr/parameters/allow_writes"
            )
        );
        assert_eq!(dirs_of("/", false), None);
        assert_eq!(dirs_of("", true), None);
        assert_eq!(dirs_of("etc/x", true), None);
    }

    /// What the kernel's walk does with `FILE_WATCH_DIRS` (`file::dirs_verdict` in the
    /// kernel object), replayed on `path`: whether it passes the open on to the full match.
    fn kernel_filter_passes(dirs: &BTreeSet<u64>, path: &str) -> bool {
        let names: Vec<&str> = path.split('/').skip(1).collect();
        let mut hash = enforcer_common::file::PATH_HASH_INIT;
        for (level, name) in names.iter().enumerate() {
            hash = enforcer_common::file::path_hash_step(hash, b'/');
            for b in name.bytes() {
                hash = enforcer_common::file::path_hash_step(hash, b);
            }
            if !dirs.contains(&hash) {
                return false;
            }
            let subtree = enforcer_common::file::path_hash_step(hash, b'/');
            if level + 1 < names.len() && dirs.contains(&subtree) {
                return true;
            }
        }
        true
    }

    /// The default policy's watched paths pass every path they can match on to the full
    /// match, and drop the ordinary writes of a host at their first unwatched directory.
    #[test]
    fn the_directory_filter_never_drops_a_watched_path() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policy/default");
        let policy = enforcer_policy::load(&dir).unwrap();
        let plan = policy.lower();
        assert_ne!(settings_bits(&plan) & RECORD_FILE_DIRS, 0);
        let dirs = dirs(&plan).unwrap();
        for entry in &plan.file_watches {
            let path = &entry.path;
            if entry.exact {
                assert!(kernel_filter_passes(&dirs, path), "{path}");
            } else {
                for below in ["x", "x/y", "x/y/z/w"] {
                    let deep = format!("{path}/{below}");
                    assert!(kernel_filter_passes(&dirs, &deep), "{deep}");
                }
            }
        }
        for ordinary in [
            "/tmp/x",
            "/var/log/syslog",
            "/var/lib/docker/overlay2/x/diff/file",
            "/run/user/1000/bus",
            "/dev/null",
            "/etc/hostname",
            "/usr/share/doc/x",
            "/home/u/.bash_history",
        ] {
            assert!(!kernel_filter_passes(&dirs, ordinary), "{ordinary}");
        }
    }

    #[test]
    fn a_watched_root_turns_the_directory_filter_off() {
        // The lowering makes a prefix of "/" no filter at all.
        let policy = enforcer_policy::load_str(
            "p.yaml",
            "rules:\n  - id: all\n    expression: open.file.path startswith \"/\" && open.is_write\n    action: alert\n",
        )
        .unwrap();
        let bits = settings_bits(&policy.lower());
        assert_ne!(bits & RECORD_FILE_ALL, 0);
        assert_eq!(bits & RECORD_FILE_DIRS, 0);
        // A plan entry without a first component (should one ever be written) turns the
        // filter off instead of hiding every path from it.
        let entry = |path: &str| FileWatchEntry {
            op: "open_write".to_owned(),
            path: path.to_owned(),
            exact: false,
            rules: Vec::new(),
            watchers: vec![0],
        };
        let mut plan = KernelPlan {
            file_rules: true,
            file_filtered: true,
            file_watches: vec![entry("/etc")],
            ..KernelPlan::default()
        };
        assert_ne!(settings_bits(&plan) & RECORD_FILE_DIRS, 0);
        plan.file_watches.push(entry("/"));
        assert_eq!(dirs(&plan), None);
        assert_eq!(settings_bits(&plan) & RECORD_FILE_DIRS, 0);
    }

    #[test]
    fn a_rule_without_paths_unfilters_the_family() {
        let policy = enforcer_policy::load_str(
            "p.yaml",
            "rules:\n  - id: any\n    expression: open.file.name == \"x\"\n    action: alert\n",
        )
        .unwrap();
        let plan = policy.lower();
        assert!(plan.file_rules && !plan.file_filtered);
        assert_ne!(settings_bits(&plan) & RECORD_FILE_ALL, 0);
    }

    #[test]
    fn a_glob_deny_is_refused() {
        let err = enforcer_policy::load_str(
            "p.yaml",
            "rules:\n  - id: g\n    expression: open.file.path =~ ~\"/etc/*.conf\"\n    action: deny\n",
        );
        assert!(err.is_err());
    }
}
