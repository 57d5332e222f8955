//! Policy reloads while the engine runs: on `SIGHUP`, or when the policy files change.
//!
//! A reload loads and checks the files again. It is refused, and the running policy stays in
//! force, when the new policy is invalid (the reason names file, line and column) or needs a
//! program this run did not load ([`uncovered`]); programs that were loaded but not attached
//! are attached first (the caller's `prepare`). Otherwise the handler applies it
//! as the next generation: the kernel plan is rewritten without a gap (`loader::plan_sweep`),
//! and the userspace state follows the rules by id. Every attempt writes one `policy_reload`
//! record.
//!
//! The files are watched by polling their metadata ([`PolicyWatch`]) rather than with inotify:
//! polling sees changes made through any mount (a bind mount, a Kubernetes ConfigMap's
//! symlink swap, NFS), and a few `stat` calls per interval cost nothing.

use std::{
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
    rc::Rc,
};

use enforcer_common::file::FileOp;
use enforcer_policy::CompiledPolicy;

use super::handler::Handler;
use crate::{
    audit::PolicyReload,
    loader::{self, SecurityHooks, plan_capacity, plan_sync::PlanError},
};

/// Most files the watch follows (a policy holds at most `MAX_FILES` policy files, plus
/// their list files).
const MAX_WATCHED: usize = 4096;

/// What asked for a reload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Trigger {
    /// `SIGHUP`.
    Signal,
    /// The policy files changed.
    FileChange,
}

impl Trigger {
    /// Name used in records.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Trigger::Signal => "sighup",
            Trigger::FileChange => "file_change",
        }
    }
}

/// One file's identity and version: size, modification time, inode, device (`None`: gone).
type Stamp = Option<(u64, i64, i64, u64, u64)>;

fn stamp(path: &Path) -> Stamp {
    // Follows symlinks: a swapped link target is a change.
    let m = std::fs::metadata(path).ok()?;
    Some((m.len(), m.mtime(), m.mtime_nsec(), m.ino(), m.dev()))
}

/// Watches the policy path (the directory itself, for added and removed files) and every file
/// the loaded policy read (policy files and list files).
#[derive(Debug)]
pub(crate) struct PolicyWatch {
    paths: Vec<PathBuf>,
    /// The stamps of the last load attempt.
    loaded: Vec<Stamp>,
    /// The stamps of the previous poll, when they differed from `loaded`.
    pending: Option<Vec<Stamp>>,
}

impl PolicyWatch {
    /// A watch of `path` and the files `policy` (loaded from it) read.
    pub(crate) fn new(path: &Path, policy: &CompiledPolicy) -> Self {
        let mut watch = Self {
            paths: Vec::new(),
            loaded: Vec::new(),
            pending: None,
        };
        watch.loaded_from(path, Some(policy));
        watch
    }

    /// Records a load attempt of `path`: the files of `policy` (when it loaded) are followed
    /// from now on, and the current stamps are those of that attempt (a policy that failed to
    /// load is not tried again until the files change again).
    pub(crate) fn loaded_from(&mut self, path: &Path, policy: Option<&CompiledPolicy>) {
        if let Some(policy) = policy {
            let mut paths = vec![path.to_path_buf()];
            paths.extend(
                policy
                    .sources()
                    .files()
                    .map(|f| f.path.clone())
                    .take(MAX_WATCHED),
            );
            paths.dedup();
            self.paths = paths;
        }
        self.loaded = self.stamps();
        self.pending = None;
    }

    /// The watched files (and the policy directory) that someone other than root can write:
    /// whoever can write them decides what the engine enforces at the next reload.
    pub(crate) fn writable_by_others(&self) -> Vec<PathBuf> {
        self.paths
            .iter()
            .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.uid() != 0 || m.mode() & 0o022 != 0))
            .cloned()
            .collect()
    }

    fn stamps(&self) -> Vec<Stamp> {
        self.paths.iter().map(|p| stamp(p)).collect()
    }

    /// Polls the files: true when they differ from the last load attempt and have not changed
    /// since the previous poll (an editor or a copy still writing is waited for).
    pub(crate) fn changed(&mut self) -> bool {
        let now = self.stamps();
        if now == self.loaded {
            self.pending = None;
            return false;
        }
        let settled = self.pending.as_ref() == Some(&now);
        self.pending = Some(now);
        settled
    }
}

/// What the programs of this run were loaded for: a reloaded policy that needs more is
/// refused ([`uncovered`]). Tracepoints the start left unattached (kernel operations, binds,
/// accepts) and the kernel hash programs are attached on demand instead
/// (`Loaded::widen`, `Loaded::enable_kernel_hash`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Coverage {
    /// Where the LSM hooks' operations are watched (LSM or fentry programs, or tracepoints).
    pub(crate) hooks: SecurityHooks,
    /// File operations whose programs were loaded (`1 << FileOp`).
    pub(crate) file_ops: u32,
}

/// What `policy` needs that the loaded programs cannot give (empty: it can be applied): the
/// programs at the LSM hooks (LSM or fentry) of the file operations loaded only for a policy
/// about them (`file_syscalls::lsm_optional_ops`).
pub(crate) fn uncovered(coverage: &Coverage, policy: &CompiledPolicy) -> Vec<String> {
    if !coverage.hooks.at_hooks() {
        return Vec::new();
    }
    let file_ops = loader::file_plan::ops_wanted(policy.plan())
        & !coverage.file_ops
        & loader::file_syscalls::lsm_optional_ops();
    (0..32)
        .filter(|b| file_ops & (1 << b) != 0)
        .map(|bit| match FileOp::from_u32(bit) {
            Some(op) => format!("file operation {op:?}"),
            None => format!("file operation #{bit}"),
        })
        .collect()
}

/// The reason of a refusal for the `missing` programs.
pub(crate) fn uncovered_reason(missing: &[String]) -> String {
    format!(
        "the new policy needs programs this run did not load ({}); restart the engine to apply it",
        missing.join(", ")
    )
}

/// Whether two policies were loaded from the same texts (same files, same contents).
pub(crate) fn same_sources(a: &CompiledPolicy, b: &CompiledPolicy) -> bool {
    a.sources()
        .files()
        .map(|f| (&f.path, &f.text))
        .eq(b.sources().files().map(|f| (&f.path, &f.text)))
}

/// The rule ids of `new` not in `old` (added) and of `old` not in `new` (removed).
pub(crate) fn rule_changes(
    old: &CompiledPolicy,
    new: &CompiledPolicy,
) -> (Vec<String>, Vec<String>) {
    let ids = |p: &CompiledPolicy| {
        p.rules()
            .iter()
            .map(|r| r.id.clone())
            .collect::<std::collections::BTreeSet<_>>()
    };
    let (old, new) = (ids(old), ids(new));
    (
        new.difference(&old).cloned().collect(),
        old.difference(&new).cloned().collect(),
    )
}

/// Reloads the policy of a running engine; see the module documentation.
#[derive(Debug)]
pub(crate) struct Reloader {
    path: PathBuf,
    watch: PolicyWatch,
    coverage: Coverage,
}

impl Reloader {
    /// A reloader of the policy at `path`, `policy` in force under programs that cover
    /// `coverage`.
    pub(crate) fn new(path: &Path, policy: &CompiledPolicy, coverage: Coverage) -> Self {
        Self {
            path: path.to_path_buf(),
            watch: PolicyWatch::new(path, policy),
            coverage,
        }
    }

    /// Warns about the policy files someone other than root can write (at start, and after a
    /// reload that may have added files).
    pub(crate) fn warn_writable(&self) {
        let writable = self.watch.writable_by_others();
        if !writable.is_empty() {
            let list: Vec<String> = writable.iter().map(|p| p.display().to_string()).collect();
            tracing::warn!(
                "policy files writable by a user other than root (they decide what is enforced at the next reload): {}",
                list.join(", ")
            );
        }
    }

    /// Whether the policy files changed and have settled (a reload is due).
    pub(crate) fn files_changed(&mut self) -> bool {
        self.watch.changed()
    }

    /// Loads the policy again and applies it through `handler`; returns the record to write.
    /// `prepare` runs just before a policy is applied: it attaches programs the policy needs
    /// that the start did not (its error refuses the reload); `exec_hash` says how files are
    /// hashed under a policy (for the record).
    pub(crate) fn reload(
        &mut self,
        trigger: Trigger,
        handler: &mut Handler<'_>,
        prepare: impl FnOnce(&CompiledPolicy) -> Result<(), String>,
        exec_hash: impl Fn(&CompiledPolicy) -> String,
    ) -> PolicyReload {
        let started = std::time::Instant::now();
        let current = Rc::clone(handler.policy());
        let previous_generation = handler.generation();
        let mut record = PolicyReload {
            trigger: trigger.name(),
            policy: self.path.display().to_string(),
            policy_generation: previous_generation,
            previous_generation,
            rules: current.rules().len(),
            ..PolicyReload::default()
        };
        let loaded = enforcer_policy::load(&self.path);
        self.watch.loaded_from(&self.path, loaded.as_ref().ok());
        match loaded {
            Err(diagnostics) => {
                tracing::error!("policy reload refused, the running policy stays:\n{diagnostics}");
                record.outcome = "refused";
                record.reason = Some(diagnostics.first_line());
            }
            Ok(new) if same_sources(&new, &current) => record.outcome = "unchanged",
            Ok(new) => {
                let missing = uncovered(&self.coverage, &new);
                let prepared = if !missing.is_empty() {
                    Err(uncovered_reason(&missing))
                } else if let Err(too_large) = plan_capacity::check(new.rules(), new.plan()) {
                    Err(too_large)
                } else {
                    prepare(&new)
                };
                match prepared {
                    Ok(()) => self.apply(Rc::new(new), handler, &mut record),
                    Err(reason) => {
                        record.outcome = "refused";
                        record.reason = Some(reason);
                    }
                }
            }
        }
        if record.outcome == "applied" {
            self.warn_writable();
        }
        record.rules = handler.policy().rules().len();
        record.exec_hash = exec_hash(handler.policy());
        record.duration_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        match record.outcome {
            "applied" | "unchanged" => tracing::info!(
                "policy reload ({}): {}, generation {}",
                record.trigger,
                record.outcome,
                record.policy_generation
            ),
            _ => tracing::error!(
                "policy reload ({}) {}: {}",
                record.trigger,
                record.outcome,
                record.reason.as_deref().unwrap_or("")
            ),
        }
        record
    }

    /// Applies `new` as the next generation; on a failed kernel write, writes the current
    /// policy back as the one after.
    fn apply(
        &mut self,
        new: Rc<CompiledPolicy>,
        handler: &mut Handler<'_>,
        record: &mut PolicyReload,
    ) {
        let (added, removed) = rule_changes(handler.policy(), &new);
        // The handler's generation is the last one used: a failed reload moves it past the
        // attempted one too (`Handler::restore`).
        let generation = handler.generation() + 1;
        match handler.reload(Rc::clone(&new), generation) {
            Ok(done) => {
                record.outcome = "applied";
                record.policy_generation = generation;
                record.added = added;
                record.removed = removed;
                record.kernel_entries_written = done.written;
                record.kernel_entries_removed = done.swept;
                record.swept_first = done.swept_first;
            }
            Err(err) => {
                let err = match err {
                    PlanError::Full { .. } => format!(
                        "{err}: the running policy's entries and the new ones do not fit together until the old ones are swept (a restart applies the new policy)"
                    ),
                    other => other.to_string(),
                };
                let restored = generation + 1;
                record.outcome = "failed";
                record.policy_generation = restored;
                record.reason = Some(match handler.restore(new, generation, restored) {
                    Ok(done) => {
                        record.kernel_entries_written = done.written;
                        record.kernel_entries_removed = done.swept;
                        format!("{err}; the previous policy was written back")
                    }
                    Err(again) => {
                        format!("{err}; writing the previous policy back failed too: {again}")
                    }
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn write(path: &Path, text: &str) {
        // A new inode each time, as editors and `kubectl` do.
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }

    const ONE: &str =
        "rules:\n  - id: a\n    expression: exec.file.name == \"a\"\n    action: kill\n";

    #[test]
    fn a_change_is_reported_once_it_has_settled() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.yaml");
        write(&file, ONE);
        let policy = enforcer_policy::load(dir.path()).unwrap();
        let mut watch = PolicyWatch::new(dir.path(), &policy);
        assert!(watch.paths.contains(&file), "{:?}", watch.paths);
        assert!(!watch.changed());
        write(&file, &ONE.replace("\"a\"", "\"b\""));
        assert!(!watch.changed(), "first seen: wait one more poll");
        assert!(watch.changed(), "unchanged since: reload");
        watch.loaded_from(dir.path(), None);
        assert!(!watch.changed(), "a failed load is not retried");
        // A new file in the directory changes the directory.
        write(&dir.path().join("q.yaml"), "rules: []\n");
        assert!(!watch.changed());
        assert!(watch.changed());
    }

    #[test]
    fn coverage_refuses_lsm_file_operations_whose_programs_were_not_loaded() {
        let policy = enforcer_policy::load_str(
            "p.yaml",
            "rules:\n  - id: x\n    expression: setxattr.file.path == \"/etc/passwd\"\n    action: alert\n  - id: o\n    expression: open.file.path == \"/etc/shadow\" && open.is_write\n    action: deny\n  - id: b\n    expression: bind.addr.port == 3333\n    action: alert\n",
        )
        .unwrap();
        let none = Coverage {
            hooks: SecurityHooks::Lsm,
            file_ops: 0,
        };
        let missing = uncovered(&none, &policy);
        assert_eq!(
            missing,
            ["file operation Setxattr"],
            "opens are always loaded; binds attach on demand"
        );
        assert!(uncovered_reason(&missing).contains("restart the engine"));
        let all = Coverage {
            file_ops: u32::MAX,
            ..none
        };
        assert!(uncovered(&all, &policy).is_empty());
        let fentry = Coverage {
            hooks: SecurityHooks::Fentry,
            ..none
        };
        assert_eq!(
            uncovered(&fentry, &policy),
            missing,
            "the same at fentry programs"
        );
        let signal = Coverage {
            hooks: SecurityHooks::Tracepoints,
            ..none
        };
        assert!(uncovered(&signal, &policy).is_empty(), "all loaded there");
    }

    #[test]
    fn files_others_can_write_are_named() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.yaml");
        write(&file, ONE);
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let policy = enforcer_policy::load(dir.path()).unwrap();
        let watch = PolicyWatch::new(dir.path(), &policy);
        let root = nix::unistd::geteuid().is_root();
        assert_eq!(
            watch.writable_by_others().is_empty(),
            root,
            "owned by the test's user"
        );
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(watch.writable_by_others().contains(&file));
    }

    #[test]
    fn rule_changes_and_same_sources() {
        let a = enforcer_policy::load_str("p.yaml", ONE).unwrap();
        let b = enforcer_policy::load_str("p.yaml", &ONE.replace("id: a", "id: b")).unwrap();
        assert_eq!(
            rule_changes(&a, &b),
            (vec!["b".to_owned()], vec!["a".to_owned()])
        );
        assert!(same_sources(
            &a,
            &enforcer_policy::load_str("p.yaml", ONE).unwrap()
        ));
        assert!(!same_sources(&a, &b));
    }
}
