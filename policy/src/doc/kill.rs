//! The kill options of a rule: `kill_scope:` (how far a kill reaches) and `breaker:` (the
//! rule's override of the daemon's kill breaker), read and validated with their positions.
//!
//! ```yaml
//! kill_scope: process_group   # process | process_group | cgroup (default process)
//! breaker:                    # both keys optional; absent: the engine's setting
//!   max_targets: 3            # 1..=10000 distinct binaries or cgroups
//!   window: 5m                # 1s..=24h
//! ```

use std::time::Duration;

use crate::diag::{Code, Diagnostic};
use crate::lexer::parse_duration;
use crate::model::{Actions, BreakerOverride, KillScope};
use crate::source::Span;
use crate::yaml::{Node, NodeKind};

/// Largest `breaker.max_targets`.
pub(crate) const MAX_TARGETS_LIMIT: u32 = 10_000;
/// Shortest `breaker.window`.
pub(crate) const MIN_WINDOW: Duration = Duration::from_secs(1);
/// Longest `breaker.window`.
pub(crate) const MAX_WINDOW: Duration = Duration::from_secs(24 * 3600);

fn bad(span: Span, msg: impl Into<String>, label: &str) -> Diagnostic {
    Diagnostic::error(Code::BadValue, Some(span), msg).label(label)
}

/// Reads a `kill_scope:` value.
pub(super) fn read_scope(v: &Node, diags: &mut Vec<Diagnostic>) -> Option<KillScope> {
    let scope = v.as_str().and_then(KillScope::from_name);
    if scope.is_none() {
        diags.push(bad(
            v.span,
            "unknown kill scope",
            "expected process, process_group or cgroup",
        ));
    }
    scope
}

/// Reads a `breaker:` mapping.
pub(super) fn read_breaker(v: &Node, diags: &mut Vec<Diagnostic>) -> Option<BreakerOverride> {
    let NodeKind::Map(pairs) = &v.kind else {
        diags.push(
            Diagnostic::error(
                Code::Structure,
                Some(v.span),
                format!("`breaker` must be a mapping, found {}", v.type_name()),
            )
            .label("for example `breaker: {max_targets: 3, window: 5m}`"),
        );
        return None;
    };
    let mut out = BreakerOverride::default();
    let mut ok = true;
    for (k, val) in pairs {
        match k.as_str() {
            Some("max_targets") => {
                let n = val
                    .as_str()
                    .and_then(|s| s.parse::<u32>().ok())
                    .filter(|n| (1..=MAX_TARGETS_LIMIT).contains(n));
                match n {
                    Some(n) => out.max_targets = Some(n),
                    None => {
                        ok = false;
                        diags.push(bad(
                            val.span,
                            "invalid `breaker.max_targets`",
                            "expected an integer from 1 to 10000",
                        ));
                    }
                }
            }
            Some("window") => {
                let d = val
                    .as_str()
                    .and_then(parse_duration)
                    .map(Duration::from_nanos)
                    .filter(|d| (MIN_WINDOW..=MAX_WINDOW).contains(d));
                match d {
                    Some(d) => out.window = Some(d),
                    None => {
                        ok = false;
                        diags.push(bad(
                            val.span,
                            "invalid `breaker.window`",
                            "expected a duration from 1s to 24h, such as 30s, 5m or 1h",
                        ));
                    }
                }
            }
            _ => {
                ok = false;
                diags.push(
                    Diagnostic::error(Code::Structure, Some(k.span), "unknown breaker key")
                        .label("expected `max_targets` or `window`"),
                );
            }
        }
    }
    if pairs.is_empty() {
        diags.push(bad(
            v.span,
            "empty `breaker`",
            "set `max_targets`, `window` or both",
        ));
        return None;
    }
    ok.then_some(out)
}

/// A kill option (`what`, set at `key`) is only meaningful on a rule that kills: reports it
/// on any other rule and drops it.
pub(super) fn only_on_kill<T>(
    option: Option<(T, Span)>,
    what: &str,
    actions: &Actions,
    diags: &mut Vec<Diagnostic>,
) -> Option<T> {
    let (value, key) = option?;
    if actions.kill {
        return Some(value);
    }
    diags.push(bad(
        key,
        format!("`{what}` applies only to rules whose action includes `kill`"),
        "add `kill` to `action`, or remove this key",
    ));
    None
}
