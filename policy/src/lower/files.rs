//! File rules (`open`, `unlink`, `rename`, `chmod`, `chown`, `link`, `mkdir`, `rmdir`,
//! `setxattr`, `utimes`, `truncate`, `mount`, `umount`): the watched paths the kernel filters
//! by, and which deny/kill rules the kernel can enforce itself. Each kind is one kernel
//! operation (`link` two: `link` and `symlink`), watched on the path acted on (a link's new
//! name and its target, a mount's mount point).
//!
//! *Watched paths* (every enabled file rule): the paths a rule can match, read from its
//! positive tests on the kind's path fields (`==`, `in` a string or glob list, `startswith`,
//! `=~` a glob). A glob contributes its literal directory before the first wildcard
//! (`/dev/cpu/*/msr` -> everything under `/dev/cpu`), a `startswith` value its directory
//! (`/etc/cron` -> `/etc`; `/root/.ssh/` -> `/root/.ssh`). A conjunction is watched by any of
//! its parts that restricts the path, a disjunction by the union of its parts. A rule with no
//! such restriction (only `open.file.name`, a regex, a negation) makes the plan unfiltered for
//! file events: the kernel then reports every event of the checked kinds.
//!
//! *Kernel enforcement* (deny/kill rules): the expression must be a disjunction of exact
//! paths (`==`, `in` a string list) and directory prefixes (`startswith` values ending in
//! `/`) on the path field, optionally `&& open.is_write` for opens. Without `open.is_write`
//! an open rule applies to read-only opens too (the kernel then checks reads).

use crate::ir::{Cond, CondNode, Matcher};
use crate::plan::MAX_PATH_LEN;
use crate::schema::{self, Kind};

use super::{Blocker, block};

/// A watched path: exact, or a directory whose whole subtree is watched.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Anchor {
    /// Absolute path without a trailing `/`.
    pub path: String,
    /// The path itself only (`false`: everything below it).
    pub exact: bool,
}

/// What a file rule contributes to the plan.
#[derive(Debug, Clone)]
pub struct FileRule {
    /// Plan operation names the rule is about (`open_write`, `open_read`, `unlink`, ...).
    pub ops: Vec<&'static str>,
    /// Watched paths; `None`: the rule restricts no path the kernel can see.
    pub anchors: Option<Vec<Anchor>>,
    /// Why the kernel cannot enforce the rule itself, `None` when it can.
    pub blocker: Option<Blocker>,
}

/// Whether `kind` is a file kind the kernel reports.
pub fn is_file_kind(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Open
            | Kind::Unlink
            | Kind::Rename
            | Kind::Chmod
            | Kind::Chown
            | Kind::Link
            | Kind::Mkdir
            | Kind::Rmdir
            | Kind::Setxattr
            | Kind::Utimes
            | Kind::Truncate
            | Kind::Mount
            | Kind::Umount
    )
}

/// The path fields of `kind`.
fn path_fields(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Open => &["open.file.path"],
        Kind::Unlink => &["unlink.file.path"],
        Kind::Rename => &["rename.old.path", "rename.new.path"],
        Kind::Chmod => &["chmod.file.path"],
        Kind::Chown => &["chown.file.path"],
        Kind::Link => &["link.file.path", "link.target.path"],
        Kind::Mkdir => &["mkdir.file.path"],
        Kind::Rmdir => &["rmdir.file.path"],
        Kind::Setxattr => &["setxattr.file.path"],
        Kind::Utimes => &["utimes.file.path"],
        Kind::Truncate => &["truncate.file.path"],
        Kind::Mount => &["mount.target"],
        Kind::Umount => &["umount.target"],
        _ => &[],
    }
}

fn is_path_field(kind: Kind, field: schema::FieldId) -> bool {
    path_fields(kind).contains(&schema::def(field).name)
}

/// The anchor of an exact absolute path.
fn exact(path: &str) -> Option<Anchor> {
    let path = path.trim_end_matches('/');
    (path.starts_with('/') && path.len() <= MAX_PATH_LEN).then(|| Anchor {
        path: path.to_owned(),
        exact: true,
    })
}

/// The directory anchor covering every path that starts with `prefix`.
fn prefix(prefix: &str) -> Option<Anchor> {
    if !prefix.starts_with('/') {
        return None;
    }
    let dir = if let Some(stripped) = prefix.strip_suffix('/') {
        stripped
    } else {
        &prefix[..prefix.rfind('/')?]
    };
    // "/" itself watches everything: not a filter.
    (!dir.is_empty() && dir.len() <= MAX_PATH_LEN).then(|| Anchor {
        path: dir.to_owned(),
        exact: false,
    })
}

/// The anchor covering every path glob `pattern` matches.
fn glob(pattern: &str) -> Option<Anchor> {
    match pattern.find(['*', '?', '[', '{', '\\']) {
        None => exact(pattern),
        Some(at) => prefix(&pattern[..at]),
    }
}

fn all(values: impl IntoIterator<Item = Option<Anchor>>) -> Option<Vec<Anchor>> {
    values.into_iter().collect()
}

/// The watched paths of `c` for `kind`; `None` when `c` does not restrict the path.
fn anchors(c: &Cond, kind: Kind) -> Option<Vec<Anchor>> {
    match &c.node {
        CondNode::Const(false) => Some(Vec::new()),
        CondNode::Const(true) | CondNode::Not(_) => None,
        CondNode::Macro(_, inner) => anchors(inner, kind),
        CondNode::And(items) => items.iter().find_map(|i| anchors(i, kind)),
        CondNode::Or(items) => {
            let mut out = Vec::new();
            for i in items {
                out.extend(anchors(i, kind)?);
            }
            Some(out)
        }
        CondNode::Test(t) => {
            if t.negate || !is_path_field(kind, t.field) {
                return None;
            }
            matcher_anchors(&t.matcher)
        }
    }
}

fn matcher_anchors(m: &Matcher) -> Option<Vec<Anchor>> {
    match m {
        Matcher::StrEq(v) => all([exact(v)]),
        Matcher::StrIn(set) => all(set.iter().map(|v| exact(v))),
        Matcher::StartsWith(v) => all([prefix(v)]),
        Matcher::StartsWithAny(_, pats) => all(pats.iter().map(|v| prefix(v))),
        Matcher::Glob(g) => all([glob(g.glob().glob())]),
        Matcher::GlobSet(_, pats) => all(pats.iter().map(|v| glob(v))),
        Matcher::Any(parts) => {
            let mut out = Vec::new();
            for p in parts {
                out.extend(matcher_anchors(p)?);
            }
            Some(out)
        }
        _ => None,
    }
}

/// Whether `c` is a positive `open.is_write` test.
fn is_write_test(c: &Cond) -> bool {
    match &c.node {
        CondNode::Macro(_, inner) => is_write_test(inner),
        CondNode::Test(t) => {
            !t.negate
                && schema::def(t.field).name == "open.is_write"
                && matches!(&*t.matcher, Matcher::Bool(true))
        }
        _ => false,
    }
}

/// The exact kernel match of a path-only disjunction, or why there is none.
fn enforceable(c: &Cond, kind: Kind) -> Result<(), Blocker> {
    match &c.node {
        CondNode::Macro(_, inner) => enforceable(inner, kind),
        CondNode::Or(items) => items.iter().try_for_each(|i| enforceable(i, kind)),
        CondNode::Test(t) if !t.negate && is_path_field(kind, t.field) => {
            let ok = match &*t.matcher {
                Matcher::StrEq(v) => exact(v).is_some_and(|a| a.path == **v),
                Matcher::StrIn(set) => set.iter().all(|v| exact(v).is_some_and(|a| a.path == **v)),
                Matcher::StartsWith(v) => v.ends_with('/') && prefix(v).is_some(),
                Matcher::StartsWithAny(_, pats) => {
                    pats.iter().all(|v| v.ends_with('/') && prefix(v).is_some())
                }
                _ => false,
            };
            if ok {
                Ok(())
            } else {
                Err(block(
                    c.span,
                    "the kernel matches file paths exactly (`==`, `in` a string list of absolute paths) or by directory (`startswith` a value ending in `/`)",
                ))
            }
        }
        _ => Err(block(
            c.span,
            "a file rule the kernel enforces is a disjunction of path tests, optionally `&& open.is_write`",
        )),
    }
}

/// Analyses a file rule of `kind`.
pub fn analyze(c: &Cond, kind: Kind) -> FileRule {
    let anchors = anchors(c, kind);
    // `P && open.is_write` (either order) restricts opens to writes.
    let (path_part, write_only) = match &c.node {
        CondNode::And(items) if kind == Kind::Open && items.len() == 2 => {
            match (is_write_test(&items[0]), is_write_test(&items[1])) {
                (false, true) => (Some(&items[0]), true),
                (true, false) => (Some(&items[1]), true),
                _ => (None, false),
            }
        }
        _ => (Some(c), false),
    };
    let ops: Vec<&'static str> = match kind {
        Kind::Open if write_only => vec!["open_write"],
        // Any other open rule may be about a read-only open: the kernel checks reads too.
        Kind::Open => vec!["open_write", "open_read"],
        Kind::Unlink => vec!["unlink"],
        Kind::Rename => vec!["rename"],
        Kind::Chmod => vec!["chmod"],
        Kind::Chown => vec!["chown"],
        Kind::Link => vec!["link", "symlink"],
        Kind::Mkdir => vec!["mkdir"],
        Kind::Rmdir => vec!["rmdir"],
        Kind::Setxattr => vec!["setxattr"],
        Kind::Utimes => vec!["utimes"],
        Kind::Truncate => vec!["truncate"],
        Kind::Mount => vec!["mount"],
        Kind::Umount => vec!["umount"],
        _ => Vec::new(),
    };
    let blocker = match path_part {
        Some(p) => enforceable(p, kind).err(),
        None => Some(block(
            c.span,
            "a file rule the kernel enforces is a disjunction of path tests, optionally `&& open.is_write`",
        )),
    };
    FileRule {
        ops,
        anchors,
        blocker,
    }
}

/// The watch entries of the enabled file rules: `(rule index, enforced in the kernel, rule)`.
/// Returns the entries (sorted) and whether every rule restricts its paths (the kernel may
/// filter).
pub fn entries(rules: &[(u32, bool, FileRule)]) -> (Vec<crate::plan::FileWatchEntry>, bool) {
    use std::collections::BTreeMap;
    /// (operation, path, exact) -> (kernel-enforced rules, watchers).
    type Entries = BTreeMap<(&'static str, String, bool), (Vec<u32>, Vec<u32>)>;
    let mut map = Entries::new();
    let mut filtered = true;
    for (idx, kernel, rule) in rules {
        let Some(anchors) = &rule.anchors else {
            filtered = false;
            continue;
        };
        for op in &rule.ops {
            for a in anchors {
                let e = map.entry((op, a.path.clone(), a.exact)).or_default();
                let list = if *kernel { &mut e.0 } else { &mut e.1 };
                if list.last() != Some(idx) {
                    list.push(*idx);
                }
            }
        }
    }
    let entries = map
        .into_iter()
        .map(
            |((op, path, exact), (rules, watchers))| crate::plan::FileWatchEntry {
                op: op.to_owned(),
                path,
                exact,
                rules,
                watchers,
            },
        )
        .collect();
    (entries, filtered)
}
