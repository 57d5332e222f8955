//! Typed value sets: list items (inline or from list files) validated against their list type,
//! and the [`ValueSet`] that lists, value-list macros and inline `( ... )` lists all become.

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

use crate::diag::{Code, Diagnostic};
use crate::doc::ListType;
use crate::source::Span;

/// Most items in one list.
pub const MAX_LIST_ITEMS: usize = 200_000;
/// Longest list item, in bytes.
pub const MAX_ITEM_LEN: usize = 1024;

/// A set of typed values, in definition order (duplicates kept; sets dedupe when compiled).
#[derive(Debug, Clone, Default)]
pub struct ValueSet {
    /// Exact strings (and lowercase hashes).
    pub strs: Vec<String>,
    /// Integers.
    pub ints: Vec<i64>,
    /// Networks (single addresses as /32 or /128).
    pub nets: Vec<IpNet>,
    /// Globs.
    pub globs: Vec<String>,
    /// Regular expressions.
    pub regexes: Vec<String>,
    /// Domain names (match the name and its sub-domains).
    pub domains: Vec<String>,
    /// Long option names, abbreviations spelled out (`long_option` lists; an argument
    /// matches by its bytes up to its first `=`).
    pub options: Vec<String>,
}

impl ValueSet {
    /// Adds everything of `other`.
    pub fn extend(&mut self, other: &ValueSet) {
        self.strs.extend(other.strs.iter().cloned());
        self.ints.extend(other.ints.iter().copied());
        self.nets.extend(other.nets.iter().copied());
        self.globs.extend(other.globs.iter().cloned());
        self.regexes.extend(other.regexes.iter().cloned());
        self.domains.extend(other.domains.iter().cloned());
        self.options.extend(other.options.iter().cloned());
    }

    /// Total number of values.
    pub fn len(&self) -> usize {
        self.strs.len()
            + self.ints.len()
            + self.nets.len()
            + self.globs.len()
            + self.regexes.len()
            + self.domains.len()
            + self.options.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Which kinds of values it holds, for messages.
    pub fn describe(&self) -> String {
        let parts: Vec<&str> = [
            (!self.strs.is_empty(), "strings"),
            (!self.ints.is_empty(), "integers"),
            (!self.nets.is_empty(), "addresses/CIDRs"),
            (!self.globs.is_empty(), "globs"),
            (!self.regexes.is_empty(), "regexes"),
            (!self.domains.is_empty(), "domains"),
            (!self.options.is_empty(), "long options"),
        ]
        .into_iter()
        .filter_map(|(on, n)| on.then_some(n))
        .collect();
        if parts.is_empty() {
            "nothing".into()
        } else {
            parts.join(" and ")
        }
    }
}

/// A named list after typing.
#[derive(Debug, Clone)]
pub struct ListDef {
    /// Name.
    pub name: String,
    /// Where the name is defined.
    pub span: Span,
    /// Element type.
    pub ty: ListType,
    /// Values.
    pub values: ValueSet,
}

/// Parses a network: CIDR or single address, truncated to its prefix and canonical
/// ([`crate::net::canonical_net`]: `::ffff:10.0.0.0/104` is `10.0.0.0/8`).
pub fn parse_net(s: &str) -> Option<IpNet> {
    if let Ok(n) = IpNet::from_str(s) {
        return Some(crate::net::canonical_net(n));
    }
    IpAddr::from_str(s)
        .ok()
        .map(|a| IpNet::from(crate::net::canonical(a)))
}

fn valid_domain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Longest long option name (`--` included).
pub const MAX_OPTION_LEN: usize = 128;

/// The names a `long_option` item stands for: `--name` itself, or for `--abbr[eviated]` every
/// abbreviation from `--abbr` to `--abbreviated`; `Err` says what is wrong.
pub fn option_names(item: &str) -> Result<Vec<String>, &'static str> {
    let (head, tail) = match item.split_once('[') {
        Some((head, rest)) => match rest.strip_suffix(']') {
            Some(tail) if !tail.is_empty() => (head, tail),
            _ => return Err("`[` must close with `]` at the end, around at least one character"),
        },
        None => (item, ""),
    };
    let name_byte = |b: u8| b.is_ascii_graphic() && !matches!(b, b'=' | b'[' | b']');
    if !head.starts_with("--") || head.len() < 3 {
        return Err("expected `--` and a name, e.g. `--donate-l[evel]`");
    }
    if !head.bytes().chain(tail.bytes()).all(name_byte) {
        return Err("a name holds printable ASCII, no `=`, one `[...]` at the end");
    }
    if head.len() + tail.len() > MAX_OPTION_LEN {
        return Err("option name too long");
    }
    // ASCII only (checked above): every length is a boundary.
    Ok((0..=tail.len())
        .map(|n| format!("{head}{}", &tail[..n]))
        .collect())
}

/// Types `items` as `ty`, reporting each bad item at its span.
pub fn type_items(ty: ListType, items: &[(String, Span)], diags: &mut Vec<Diagnostic>) -> ValueSet {
    let mut out = ValueSet::default();
    for (raw, span) in items {
        let s = raw.trim();
        let bad = |what: &str| {
            Diagnostic::error(
                Code::BadValue,
                Some(*span),
                format!("invalid {} list item `{s}`", ty.name()),
            )
            .label(what)
        };
        if s.len() > MAX_ITEM_LEN {
            diags.push(bad("item too long"));
            continue;
        }
        match ty {
            ListType::String => out.strs.push(s.to_string()),
            ListType::Int => match s.parse::<i64>() {
                Ok(v) => out.ints.push(v),
                Err(_) => diags.push(bad("expected an integer")),
            },
            ListType::Cidr => match parse_net(s) {
                Some(n) => out.nets.push(n),
                None => diags.push(bad("expected an address or CIDR")),
            },
            ListType::Glob => match globset::Glob::new(s) {
                Ok(_) => out.globs.push(s.to_string()),
                Err(e) => diags.push(
                    Diagnostic::error(Code::BadPattern, Some(*span), format!("invalid glob `{s}`"))
                        .label(e.kind().to_string()),
                ),
            },
            ListType::Regex => match regex::Regex::new(s) {
                Ok(_) => out.regexes.push(s.to_string()),
                Err(e) => diags.push(
                    Diagnostic::error(
                        Code::BadPattern,
                        Some(*span),
                        format!("invalid regex `{s}`"),
                    )
                    .label(crate::check::regex_error_line(&e)),
                ),
            },
            ListType::Hash => {
                if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
                    out.strs.push(s.to_ascii_lowercase());
                } else {
                    diags.push(bad("expected a SHA-256 value: 64 hex digits"));
                }
            }
            ListType::LongOption => match option_names(s) {
                Ok(names) => out.options.extend(names),
                Err(what) => diags.push(bad(what)),
            },
            ListType::Domain => {
                let d = s.trim_end_matches('.').to_ascii_lowercase();
                if valid_domain(&d) {
                    out.domains.push(d);
                } else {
                    diags.push(bad("expected a domain name"));
                }
            }
        }
    }
    out
}

/// Splits a list file into items: one per line, `#` starts a comment, blank lines skipped.
/// Returns (item, byte offset of the item in the text).
pub fn file_items(text: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let content = line.split('#').next().unwrap_or("");
        let trimmed = content.trim();
        if !trimmed.is_empty() {
            let lead = content.len() - content.trim_start().len();
            out.push((trimmed.to_string(), offset + lead));
        }
        offset += line.len();
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn long_options_spell_out_their_abbreviations() {
        assert_eq!(option_names("--nicehash").unwrap(), ["--nicehash"]);
        assert_eq!(
            option_names("--donate-l[evel]").unwrap(),
            [
                "--donate-l",
                "--donate-le",
                "--donate-lev",
                "--donate-leve",
                "--donate-level"
            ]
        );
        for bad in [
            "donate",
            "--",
            "--a=b",
            "--a[b",
            "--a[]",
            "--a[b]c",
            "--a[b[c]]",
            "--a b",
        ] {
            assert!(option_names(bad).is_err(), "{bad}");
        }
        assert!(option_names(&format!("--{}", "x".repeat(MAX_OPTION_LEN))).is_err());
    }

    #[test]
    fn list_files_skip_comments() {
        let items = file_items("# head\nxmrig\n  minerd # old\n\n");
        assert_eq!(
            items,
            vec![("xmrig".to_string(), 7), ("minerd".to_string(), 15)]
        );
    }
}
