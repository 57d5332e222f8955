//! The policy document shape: reads a YAML [`Node`] tree into raw lists, macros and rules (still
//! untyped text with spans), reporting every structural problem with its position.
//!
//! ```yaml
//! version: 1
//! lists:
//!   - name: miner_binaries
//!     type: string            # string | int | cidr | glob | regex | hash | domain
//!     items: [xmrig, minerd]  # or: file: lists/miners.txt (relative to this file)
//! macros:
//!   - name: is_shell
//!     expression: exec.file.name in ("sh", "bash", "dash")
//! rules:
//!   - id: miner-exec-name
//!     description: ...
//!     severity: critical
//!     tags: [T1496]
//!     expression: exec.file.name in miner_binaries
//!     action: [deny, kill]     # alert | deny | kill, or a list
//!     mode: enforce            # enforce | monitor; absent: the engine's mode
//!     disabled: false
//!     every: 1m                # optional rate limit
//!     kill_scope: process      # process | process_group | cgroup (kill rules; default process)
//!     breaker:                 # optional, kill rules: override the daemon's kill breaker
//!       max_targets: 5         # distinct binaries or cgroups killed within the window
//!       window: 1m
//! network:                     # optional
//!   # Treated as public by `connect.addr.is_public` / `payload.addr.is_public` (evaluation
//!   # and kernel lowering); addresses or CIDRs; the union over all files.
//!   extra_public_ranges: [127.0.0.77/32, 198.18.0.0/15]
//!   # Ports DNS servers answer from besides 53 (responses from them are decoded); the
//!   # union over all files, at most 7.
//!   dns_server_ports: [5353]
//!   # Report every connect to the audit log, not only those a rule is about (costs the daemon
//!   # a record per connect); true in any file wins.
//!   record_all_connects: false
//! ```

mod kill;

use std::time::Duration;

use saphyr_parser::ScalarStyle;

use crate::diag::{Code, Diagnostic};
use crate::lexer::parse_duration;
use crate::model::{Actions, BreakerOverride, KillScope, Mode, Severity};
use crate::source::{SourceFile, Span};
use crate::yaml::{Node, NodeKind, ScalarMap};

/// The element type of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListType {
    /// Exact strings.
    String,
    /// Integers.
    Int,
    /// CIDRs or single addresses.
    Cidr,
    /// Glob patterns (`*`, `?`, `[...]`, `{a,b}`), matched against the whole value.
    Glob,
    /// Regular expressions (`regex` crate syntax, unanchored search).
    Regex,
    /// SHA-256 values, 64 hex digits (compared lowercase).
    Hash,
    /// Domain names: a name matches an entry when it equals it or is a sub-domain of it.
    Domain,
    /// Long command-line options as `getopt_long` reads them: `--name`, or `--abbr[eviated]`
    /// for every abbreviation from `--abbr` to `--abbreviated` (getopt accepts any unambiguous
    /// prefix). An argument matches when it starts with `--` and its bytes up to its first
    /// `=` are one of them.
    LongOption,
}

impl ListType {
    fn from_name(s: &str) -> Option<ListType> {
        Some(match s {
            "string" => ListType::String,
            "int" => ListType::Int,
            "cidr" => ListType::Cidr,
            "glob" => ListType::Glob,
            "regex" => ListType::Regex,
            "hash" => ListType::Hash,
            "domain" => ListType::Domain,
            "long_option" => ListType::LongOption,
            _ => return None,
        })
    }

    /// The name used in policies.
    pub fn name(self) -> &'static str {
        match self {
            ListType::String => "string",
            ListType::Int => "int",
            ListType::Cidr => "cidr",
            ListType::Glob => "glob",
            ListType::Regex => "regex",
            ListType::Hash => "hash",
            ListType::Domain => "domain",
            ListType::LongOption => "long_option",
        }
    }
}

/// Where a list's items come from.
#[derive(Debug, Clone)]
pub enum ListSource {
    /// Inline items with their spans.
    Items(Vec<(String, Span)>),
    /// A file, relative to the policy file; the span is the `file:` value.
    File(String, Span),
}

/// A list as written.
#[derive(Debug, Clone)]
pub struct RawList {
    /// Name.
    pub name: String,
    /// Span of the name.
    pub name_span: Span,
    /// Element type.
    pub ty: ListType,
    /// Items or file.
    pub source: ListSource,
}

/// An expression's text with its position map.
#[derive(Debug, Clone)]
pub struct ExprText {
    /// The expression.
    pub text: String,
    /// Maps offsets in `text` to the file.
    pub map: ScalarMap,
    /// Span of the whole scalar.
    pub span: Span,
}

/// A macro as written.
#[derive(Debug, Clone)]
pub struct RawMacro {
    /// Name.
    pub name: String,
    /// Span of the name.
    pub name_span: Span,
    /// Body.
    pub expr: ExprText,
}

/// A rule as written.
#[derive(Debug, Clone)]
pub struct RawRule {
    /// Id.
    pub id: String,
    /// Span of the id.
    pub id_span: Span,
    /// Description.
    pub description: String,
    /// Severity (default medium).
    pub severity: Severity,
    /// Tags.
    pub tags: Vec<String>,
    /// Expression.
    pub expr: ExprText,
    /// Actions (default alert) and their span.
    pub actions: Actions,
    /// Span of the `action` value (or of the id when absent).
    pub action_span: Span,
    /// Mode override.
    pub mode: Option<Mode>,
    /// Disabled.
    pub disabled: bool,
    /// Rate limit period.
    pub every: Option<Duration>,
    /// How far a kill reaches (`kill_scope:`, default `process`).
    pub kill_scope: KillScope,
    /// The rule's kill-breaker override (`breaker:`).
    pub breaker: Option<BreakerOverride>,
}

/// Everything one file defines.
#[derive(Debug, Default)]
pub struct RawFile {
    /// Lists.
    pub lists: Vec<RawList>,
    /// Macros.
    pub macros: Vec<RawMacro>,
    /// Rules.
    pub rules: Vec<RawRule>,
    /// `network.extra_public_ranges` items as written, with their spans (validated by the
    /// loader).
    pub extra_public_ranges: Vec<(String, Span)>,
    /// `network.dns_server_ports` items as written, with their spans (validated by the loader).
    pub dns_server_ports: Vec<(String, Span)>,
    /// `network.record_all_connects`.
    pub record_all_connects: bool,
}

fn err(span: Span, msg: impl Into<String>) -> Diagnostic {
    Diagnostic::error(Code::Structure, Some(span), msg)
}

fn entries<'n>(
    node: &'n Node,
    what: &str,
    diags: &mut Vec<Diagnostic>,
) -> Option<&'n [(Node, Node)]> {
    match &node.kind {
        NodeKind::Map(pairs) => Some(pairs),
        _ => {
            diags.push(err(
                node.span,
                format!("{what} must be a mapping, found {}", node.type_name()),
            ));
            None
        }
    }
}

fn scalar<'n>(node: &'n Node, what: &str, diags: &mut Vec<Diagnostic>) -> Option<&'n str> {
    let s = node.as_str();
    if s.is_none() {
        diags.push(err(
            node.span,
            format!("`{what}` must be a scalar, found {}", node.type_name()),
        ));
    }
    s
}

fn seq<'n>(node: &'n Node, what: &str, diags: &mut Vec<Diagnostic>) -> Option<&'n [Node]> {
    match &node.kind {
        NodeKind::Seq(items) => Some(items),
        _ if node.is_null() => Some(&[]),
        _ => {
            diags.push(err(
                node.span,
                format!("`{what}` must be a sequence, found {}", node.type_name()),
            ));
            None
        }
    }
}

fn boolean(node: &Node, what: &str, diags: &mut Vec<Diagnostic>) -> Option<bool> {
    match node.as_str() {
        Some("true") => Some(true),
        Some("false") => Some(false),
        _ => {
            diags.push(err(
                node.span,
                format!("`{what}` must be `true` or `false`"),
            ));
            None
        }
    }
}

/// Reads one file's root node.
pub fn read(root: &Node, src: &SourceFile, diags: &mut Vec<Diagnostic>) -> RawFile {
    let mut out = RawFile::default();
    let Some(pairs) = entries(root, "a policy file", diags) else {
        return out;
    };
    for (k, v) in pairs {
        match k.as_str() {
            Some("version") => {
                if v.as_str() != Some("1") {
                    diags.push(
                        Diagnostic::error(
                            Code::BadValue,
                            Some(v.span),
                            "unsupported policy version",
                        )
                        .label("this engine reads `version: 1`"),
                    );
                }
            }
            Some("lists") => {
                for item in seq(v, "lists", diags).unwrap_or(&[]) {
                    if let Some(l) = read_list(item, diags) {
                        out.lists.push(l);
                    }
                }
            }
            Some("macros") => {
                for item in seq(v, "macros", diags).unwrap_or(&[]) {
                    if let Some(m) = read_macro(item, src, diags) {
                        out.macros.push(m);
                    }
                }
            }
            Some("rules") => {
                for item in seq(v, "rules", diags).unwrap_or(&[]) {
                    if let Some(r) = read_rule(item, src, diags) {
                        out.rules.push(r);
                    }
                }
            }
            Some("network") => read_network(v, &mut out, diags),
            _ => diags.push(
                err(k.span, "unknown top-level key")
                    .label("expected `version`, `lists`, `macros`, `rules` or `network`"),
            ),
        }
    }
    out
}

fn read_network(node: &Node, out: &mut RawFile, diags: &mut Vec<Diagnostic>) {
    if node.is_null() {
        return;
    }
    let Some(pairs) = entries(node, "`network`", diags) else {
        return;
    };
    for (k, v) in pairs {
        match k.as_str() {
            Some("extra_public_ranges") => {
                for it in seq(v, "extra_public_ranges", diags).unwrap_or(&[]) {
                    if let Some(s) = scalar(it, "extra public range", diags) {
                        out.extra_public_ranges.push((s.to_string(), it.span));
                    }
                }
            }
            Some("dns_server_ports") => {
                for it in seq(v, "dns_server_ports", diags).unwrap_or(&[]) {
                    if let Some(s) = scalar(it, "DNS server port", diags) {
                        out.dns_server_ports.push((s.to_string(), it.span));
                    }
                }
            }
            Some("record_all_connects") => {
                out.record_all_connects = boolean(v, "record_all_connects", diags).unwrap_or(false);
            }
            _ => diags.push(err(k.span, "unknown network key").label(
                "expected `extra_public_ranges`, `dns_server_ports` or `record_all_connects`",
            )),
        }
    }
}

fn name_of(v: &Node, what: &str, diags: &mut Vec<Diagnostic>) -> Option<String> {
    let s = scalar(v, what, diags)?;
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && s.as_bytes().first().is_some_and(u8::is_ascii_alphabetic);
    if !ok {
        diags.push(
            Diagnostic::error(
                Code::BadValue,
                Some(v.span),
                format!("invalid {what} `{s}`"),
            )
            .label("use letters, digits, `_`, `-` or `.`, starting with a letter (at most 128)"),
        );
        return None;
    }
    Some(s.to_string())
}

fn read_list(node: &Node, diags: &mut Vec<Diagnostic>) -> Option<RawList> {
    let pairs = entries(node, "a list", diags)?;
    let (mut name, mut ty, mut source) = (None, ListType::String, None);
    for (k, v) in pairs {
        match k.as_str() {
            Some("name") => name = name_of(v, "list name", diags).map(|n| (n, v.span)),
            Some("type") => match scalar(v, "type", diags).and_then(ListType::from_name) {
                Some(t) => ty = t,
                None => diags.push(
                    Diagnostic::error(Code::BadValue, Some(v.span), "unknown list type")
                        .label("expected string, int, cidr, glob, regex, hash or domain"),
                ),
            },
            Some("items") => {
                let items = seq(v, "items", diags).unwrap_or(&[]);
                let mut vals = Vec::with_capacity(items.len());
                for it in items {
                    if let Some(s) = scalar(it, "list item", diags) {
                        vals.push((s.to_string(), it.span));
                    }
                }
                source = Some(ListSource::Items(vals));
            }
            Some("file") => {
                if let Some(s) = scalar(v, "file", diags) {
                    source = Some(ListSource::File(s.to_string(), v.span));
                }
            }
            _ => diags.push(
                err(k.span, "unknown list key").label("expected `name`, `type`, `items` or `file`"),
            ),
        }
    }
    let Some((name, name_span)) = name else {
        diags.push(err(node.span, "list without a `name`"));
        return None;
    };
    let source = source.unwrap_or(ListSource::Items(Vec::new()));
    Some(RawList {
        name,
        name_span,
        ty,
        source,
    })
}

fn expr_text(v: &Node, src: &SourceFile, diags: &mut Vec<Diagnostic>) -> Option<ExprText> {
    let text = scalar(v, "expression", diags)?;
    Some(ExprText {
        text: text.to_string(),
        map: ScalarMap::new(v, src),
        span: v.span,
    })
}

fn read_macro(node: &Node, src: &SourceFile, diags: &mut Vec<Diagnostic>) -> Option<RawMacro> {
    let pairs = entries(node, "a macro", diags)?;
    let (mut name, mut expr) = (None, None);
    for (k, v) in pairs {
        match k.as_str() {
            Some("name") => name = name_of(v, "macro name", diags).map(|n| (n, v.span)),
            Some("expression") => expr = expr_text(v, src, diags),
            Some("description") => {}
            _ => diags.push(
                err(k.span, "unknown macro key")
                    .label("expected `name`, `expression` or `description`"),
            ),
        }
    }
    let Some((name, name_span)) = name else {
        diags.push(err(node.span, "macro without a `name`"));
        return None;
    };
    let Some(expr) = expr else {
        diags.push(err(
            name_span,
            format!("macro `{name}` has no `expression`"),
        ));
        return None;
    };
    Some(RawMacro {
        name,
        name_span,
        expr,
    })
}

fn read_rule(node: &Node, src: &SourceFile, diags: &mut Vec<Diagnostic>) -> Option<RawRule> {
    let pairs = entries(node, "a rule", diags)?;
    let mut id = None;
    let mut description = String::new();
    let mut severity = Severity::Medium;
    let mut tags = Vec::new();
    let mut expr = None;
    let mut actions = None;
    let mut mode = None;
    let mut disabled = false;
    let mut every = None;
    let mut kill_scope = None;
    let mut breaker = None;
    for (k, v) in pairs {
        match k.as_str() {
            Some("id") => id = name_of(v, "rule id", diags).map(|n| (n, v.span)),
            Some("description") => description = scalar(v, "description", diags).unwrap_or("").trim().to_string(),
            Some("severity") => match scalar(v, "severity", diags).and_then(Severity::from_name) {
                Some(s) => severity = s,
                None => diags.push(
                    Diagnostic::error(Code::BadValue, Some(v.span), "unknown severity")
                        .label("expected info, low, medium, high or critical"),
                ),
            },
            Some("tags") => {
                for t in seq(v, "tags", diags).unwrap_or(&[]) {
                    if let Some(s) = scalar(t, "tag", diags) {
                        tags.push(s.to_string());
                    }
                }
            }
            Some("expression") => expr = expr_text(v, src, diags),
            Some("action") | Some("actions") => actions = read_actions(v, diags).map(|a| (a, v.span)),
            Some("mode") => match scalar(v, "mode", diags) {
                Some("enforce") => mode = Some(Mode::Enforce),
                Some("monitor") => mode = Some(Mode::Monitor),
                Some(_) => diags.push(
                    Diagnostic::error(Code::BadValue, Some(v.span), "unknown mode").label("expected enforce or monitor"),
                ),
                None => {}
            },
            Some("disabled") => disabled = boolean(v, "disabled", diags).unwrap_or(false),
            Some("every") => {
                let d = scalar(v, "every", diags).and_then(parse_duration).filter(|d| *d > 0);
                match d {
                    Some(ns) => every = Some(Duration::from_nanos(ns)),
                    None => diags.push(
                        Diagnostic::error(Code::BadValue, Some(v.span), "invalid `every` period")
                            .label("expected a duration such as 30s, 5m or 1h"),
                    ),
                }
            }
            Some("kill_scope") => kill_scope = kill::read_scope(v, diags).map(|s| (s, k.span)),
            Some("breaker") => breaker = kill::read_breaker(v, diags).map(|b| (b, k.span)),
            _ => diags.push(err(k.span, "unknown rule key").label(
                "expected id, description, severity, tags, expression, action, mode, disabled, every, kill_scope or breaker",
            )),
        }
    }
    let Some((id, id_span)) = id else {
        diags.push(err(node.span, "rule without an `id`"));
        return None;
    };
    let Some(expr) = expr else {
        diags.push(err(id_span, format!("rule `{id}` has no `expression`")));
        return None;
    };
    let (actions, action_span) = actions.unwrap_or((Actions::ALERT, id_span));
    let kill_scope = kill::only_on_kill(kill_scope, "kill_scope", &actions, diags);
    let breaker = kill::only_on_kill(breaker, "breaker", &actions, diags);
    Some(RawRule {
        id,
        id_span,
        description,
        severity,
        tags,
        expr,
        actions,
        action_span,
        mode,
        disabled,
        every,
        kill_scope: kill_scope.unwrap_or_default(),
        breaker,
    })
}

fn read_actions(v: &Node, diags: &mut Vec<Diagnostic>) -> Option<Actions> {
    let mut a = Actions::default();
    let one = |n: &Node, a: &mut Actions, diags: &mut Vec<Diagnostic>| {
        let ok = match &n.kind {
            NodeKind::Scalar(
                s,
                ScalarStyle::Plain | ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted,
            ) => a.add(s),
            _ => false,
        };
        if !ok {
            diags.push(
                Diagnostic::error(Code::BadValue, Some(n.span), "unknown action")
                    .label("expected alert, deny or kill"),
            );
        }
        ok
    };
    let ok = match &v.kind {
        NodeKind::Seq(items) if !items.is_empty() => {
            // Check every item (no short-circuit) so each bad one is reported.
            let results: Vec<bool> = items.iter().map(|n| one(n, &mut a, diags)).collect();
            results.into_iter().all(|ok| ok)
        }
        _ => one(v, &mut a, diags),
    };
    ok.then_some(a)
}
