//! Compiles literals and value sets into [`Matcher`]s: hash sets for exact values and domains,
//! Aho-Corasick for several substrings/prefixes, `RegexSet` and `GlobSet` for patterns. Regexes
//! come from the `regex` crate (linear time) with a compiled-size cap.

use foldhash::HashSet;

use aho_corasick::{AhoCorasick, StartKind};
use globset::{GlobBuilder, GlobMatcher, GlobSetBuilder};
use ipnet::IpNet;
use memchr::memmem;
use regex::{Regex, RegexBuilder, RegexSetBuilder};

use crate::ast::{CmpOp, Lit};
use crate::check::regex_error_line;
use crate::diag::{Code, Diagnostic};
use crate::ir::Matcher;
use crate::lists::ValueSet;
use crate::schema::{FieldDef, Type};
use crate::source::Span;

/// Compiled-size cap of one regex (or regex set), bytes.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// A string compared with `dns.question.name` by `==`, `!=`, `in` or `not in`: lowercased
/// (ASCII) without one trailing dot, as the field is decoded lowercase without it.
pub fn fold_dns_name(s: &str) -> String {
    s.strip_suffix('.').unwrap_or(s).to_ascii_lowercase()
}

/// A one-value set from a literal.
pub fn from_lit(l: &Lit, span: Span, diags: &mut Vec<Diagnostic>) -> Option<ValueSet> {
    let mut s = ValueSet::default();
    match l {
        Lit::Str(v) => s.strs.push(v.clone()),
        Lit::Int(v) => s.ints.push(*v),
        Lit::Ip(a) => s.nets.push(IpNet::from(*a)),
        Lit::Cidr(n) => s.nets.push(*n),
        Lit::Glob(g) => {
            glob(g, span, diags)?;
            s.globs.push(g.clone());
        }
        Lit::Regex(r) => {
            regex(r, span, diags)?;
            s.regexes.push(r.clone());
        }
        Lit::Bool(_) | Lit::Duration(_) => {
            diags.push(
                Diagnostic::error(
                    Code::TypeMismatch,
                    Some(span),
                    format!("a {} cannot be a list item", l.type_name()),
                )
                .label("lists hold strings, integers, addresses, globs, regexes or domains"),
            );
            return None;
        }
    }
    Some(s)
}

/// Compiles a regex, reporting a bad one at `span`.
pub fn regex(p: &str, span: Span, diags: &mut Vec<Diagnostic>) -> Option<Regex> {
    match RegexBuilder::new(p).size_limit(REGEX_SIZE_LIMIT).build() {
        Ok(r) => Some(r),
        Err(e) => {
            diags.push(
                Diagnostic::error(
                    Code::BadPattern,
                    Some(span),
                    format!("invalid regex r\"{p}\""),
                )
                .label(regex_error_line(&e)),
            );
            None
        }
    }
}

fn glob_builder(p: &str) -> GlobBuilder<'_> {
    let mut b = GlobBuilder::new(p);
    b.literal_separator(true).backslash_escape(true);
    b
}

/// Compiles a glob (`*` and `?` do not cross `/`; `**` does), reporting a bad one at `span`.
pub fn glob(p: &str, span: Span, diags: &mut Vec<Diagnostic>) -> Option<GlobMatcher> {
    match glob_builder(p).build() {
        Ok(g) => Some(g.compile_matcher()),
        Err(e) => {
            diags.push(
                Diagnostic::error(
                    Code::BadPattern,
                    Some(span),
                    format!("invalid glob ~\"{p}\""),
                )
                .label(e.kind().to_string()),
            );
            None
        }
    }
}

fn mismatch(def: &FieldDef, set: &ValueSet, span: Span) -> Diagnostic {
    Diagnostic::error(
        Code::TypeMismatch,
        Some(span),
        format!(
            "type mismatch: `{}` is of type {}, the list holds {}",
            def.name,
            def.ty,
            set.describe()
        ),
    )
    .label(format!("expected {} values", def.ty))
}

/// The matcher for `field in set`.
pub fn set_matcher(
    def: &FieldDef,
    set: &ValueSet,
    span: Span,
    diags: &mut Vec<Diagnostic>,
) -> Option<Matcher> {
    match def.ty {
        Type::Str => {
            if !set.ints.is_empty() || !set.nets.is_empty() {
                diags.push(mismatch(def, set, span));
                return None;
            }
            let mut parts = Vec::new();
            if !set.strs.is_empty() || set.is_empty() {
                parts.push(Matcher::StrIn(
                    set.strs.iter().map(|s| s.as_str().into()).collect(),
                ));
            }
            if !set.domains.is_empty() {
                parts.push(Matcher::Domain(
                    set.domains.iter().map(|s| s.as_str().into()).collect(),
                ));
            }
            if !set.options.is_empty() {
                parts.push(Matcher::OptionIn(
                    set.options.iter().map(|s| s.as_str().into()).collect(),
                ));
            }
            if !set.globs.is_empty() {
                let mut b = GlobSetBuilder::new();
                for g in &set.globs {
                    match glob_builder(g).build() {
                        Ok(g) => {
                            b.add(g);
                        }
                        Err(_) => return glob(g, span, diags).map(Matcher::Glob),
                    }
                }
                match b.build() {
                    Ok(gs) => parts.push(Matcher::GlobSet(
                        gs,
                        set.globs.iter().map(|g| g.as_str().into()).collect(),
                    )),
                    Err(e) => {
                        diags.push(Diagnostic::error(
                            Code::BadPattern,
                            Some(span),
                            format!("glob set does not compile: {e}"),
                        ));
                        return None;
                    }
                }
            }
            if !set.regexes.is_empty() {
                match RegexSetBuilder::new(&set.regexes)
                    .size_limit(REGEX_SIZE_LIMIT * 8)
                    .build()
                {
                    Ok(rs) => parts.push(Matcher::RegexSet(rs)),
                    Err(e) => {
                        diags.push(
                            Diagnostic::error(
                                Code::BadPattern,
                                Some(span),
                                "regex list does not compile",
                            )
                            .label(regex_error_line(&e)),
                        );
                        return None;
                    }
                }
            }
            Some(if parts.len() == 1 {
                parts.remove(0)
            } else {
                Matcher::Any(parts)
            })
        }
        Type::Int if set.len() == set.ints.len() => Some(Matcher::IntIn(
            set.ints.iter().copied().collect::<HashSet<_>>(),
        )),
        Type::Ip if set.len() == set.nets.len() => {
            Some(Matcher::IpIn(crate::ipset::IpSet::new(set.nets.clone())))
        }
        Type::Int | Type::Ip => {
            diags.push(mismatch(def, set, span));
            None
        }
        Type::Bool | Type::Duration => {
            diags.push(
                Diagnostic::error(
                    Code::TypeMismatch,
                    Some(span),
                    format!("`in` does not apply to `{}` (type {})", def.name, def.ty),
                )
                .label("compare with `==` or `<`, `>`"),
            );
            None
        }
    }
}

fn boxed(pats: &[String]) -> Vec<Box<str>> {
    pats.iter().map(|s| s.as_str().into()).collect()
}

/// The matcher for `contains` / `startswith` / `endswith` with one or more strings.
pub fn substring_matcher(
    op: CmpOp,
    set: &ValueSet,
    span: Span,
    diags: &mut Vec<Diagnostic>,
) -> Option<Matcher> {
    if set.len() != set.strs.len() {
        diags.push(
            Diagnostic::error(
                Code::TypeMismatch,
                Some(span),
                format!("`{op}` needs strings, found {}", set.describe()),
            )
            .label("expected a string or a list of strings"),
        );
        return None;
    }
    let pats = &set.strs;
    if let [one] = pats.as_slice() {
        return Some(match op {
            CmpOp::Contains => Matcher::Contains(memmem::Finder::new(one.as_bytes()).into_owned()),
            CmpOp::StartsWith => Matcher::StartsWith(one.as_str().into()),
            _ => Matcher::EndsWith(one.as_str().into()),
        });
    }
    let build = |anchored: bool| {
        let mut b = AhoCorasick::builder();
        if anchored {
            b.start_kind(StartKind::Anchored);
        }
        b.build(pats)
    };
    let m = match op {
        CmpOp::Contains => build(false).map(|ac| Matcher::ContainsAny(ac, boxed(pats))),
        CmpOp::StartsWith => build(true).map(|ac| Matcher::StartsWithAny(ac, boxed(pats))),
        _ => {
            return Some(Matcher::EndsWithAny(
                pats.iter().map(|s| s.as_str().into()).collect(),
            ));
        }
    };
    match m {
        Ok(m) => Some(m),
        Err(e) => {
            diags.push(Diagnostic::error(
                Code::Limit,
                Some(span),
                format!("pattern set too large: {e}"),
            ));
            None
        }
    }
}
