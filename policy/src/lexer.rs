//! The expression lexer: turns an expression's text into tokens with file spans (through a
//! [`ScalarMap`], so positions are in the YAML file, not in the scalar).

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

use crate::ast::Lit;
use crate::diag::{Code, Diagnostic};
use crate::source::Span;
use crate::yaml::ScalarMap;

/// A token.
#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// Field, macro or list name, or a keyword (`in`, `not`, `contains`, `true`, ...).
    Ident(String),
    /// A literal.
    Lit(Lit),
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `,`
    Comma,
    /// `==`
    EqEq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `=~`
    Match,
    /// `!~`
    NotMatch,
    /// `&&`
    AndAnd,
    /// `||`
    OrOr,
    /// `!`
    Bang,
    /// End of input.
    Eof,
}

/// A token with its span.
#[derive(Debug, Clone)]
pub struct Token {
    /// The token.
    pub tok: Tok,
    /// Where it is.
    pub span: Span,
}

/// Splits `text` into tokens; `map` gives file spans.
pub fn lex(text: &str, map: &ScalarMap) -> Result<Vec<Token>, Diagnostic> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let two = bytes.get(i + 1).copied();
        let tok = match (c, two) {
            (b' ' | b'\t' | b'\n' | b'\r', _) => {
                i += 1;
                continue;
            }
            (b'(', _) => Some((Tok::LParen, 1)),
            (b')', _) => Some((Tok::RParen, 1)),
            (b',', _) => Some((Tok::Comma, 1)),
            (b'=', Some(b'=')) => Some((Tok::EqEq, 2)),
            (b'=', Some(b'~')) => Some((Tok::Match, 2)),
            (b'!', Some(b'=')) => Some((Tok::Ne, 2)),
            (b'!', Some(b'~')) => Some((Tok::NotMatch, 2)),
            (b'!', _) => Some((Tok::Bang, 1)),
            (b'<', Some(b'=')) => Some((Tok::Le, 2)),
            (b'<', _) => Some((Tok::Lt, 1)),
            (b'>', Some(b'=')) => Some((Tok::Ge, 2)),
            (b'>', _) => Some((Tok::Gt, 1)),
            (b'&', Some(b'&')) => Some((Tok::AndAnd, 2)),
            (b'|', Some(b'|')) => Some((Tok::OrOr, 2)),
            _ => None,
        };
        if let Some((tok, len)) = tok {
            i += len;
            out.push(Token {
                tok,
                span: map.span(start, i),
            });
            continue;
        }
        let (tok, end) = match (c, two) {
            (b'"' | b'\'', _) => {
                let (s, end) = string(text, i, c, true, map)?;
                (Tok::Lit(Lit::Str(s)), end)
            }
            (b'~', Some(q @ (b'"' | b'\''))) => {
                let (s, end) = string(text, i + 1, q, true, map)?;
                (Tok::Lit(Lit::Glob(s)), end)
            }
            (b'r', Some(q @ (b'"' | b'\''))) => {
                let (s, end) = string(text, i + 1, q, false, map)?;
                (Tok::Lit(Lit::Regex(s)), end)
            }
            (b'0'..=b'9', _) | (b'-', Some(b'0'..=b'9')) => {
                let mut end = i + 1;
                while end < bytes.len()
                    && (bytes[end].is_ascii_alphanumeric()
                        || matches!(bytes[end], b'.' | b':' | b'/' | b'_'))
                {
                    end += 1;
                }
                let lit = number(&text[i..end]).ok_or_else(|| {
                    Diagnostic::error(
                        Code::Syntax,
                        Some(map.span(i, end)),
                        format!("invalid literal `{}`", &text[i..end]),
                    )
                    .label("not an integer, duration, IP address or CIDR")
                })?;
                (Tok::Lit(lit), end)
            }
            (b'a'..=b'z' | b'A'..=b'Z' | b'_', _) => {
                let mut end = i + 1;
                while end < bytes.len()
                    && (bytes[end].is_ascii_alphanumeric() || matches!(bytes[end], b'_' | b'.'))
                {
                    end += 1;
                }
                (Tok::Ident(text[i..end].to_string()), end)
            }
            _ => {
                let ch = text[i..].chars().next().unwrap_or('?');
                let end = i + ch.len_utf8();
                return Err(Diagnostic::error(
                    Code::Syntax,
                    Some(map.span(i, end)),
                    format!("unexpected character `{ch}` in expression"),
                )
                .label("not part of the expression language"));
            }
        };
        out.push(Token {
            tok,
            span: map.span(start, end),
        });
        i = end;
    }
    out.push(Token {
        tok: Tok::Eof,
        span: map.span(text.len(), text.len()),
    });
    Ok(out)
}

/// Reads a quoted string starting at the quote at `at`; returns the value and the end offset.
fn string(
    text: &str,
    at: usize,
    quote: u8,
    escapes: bool,
    map: &ScalarMap,
) -> Result<(String, usize), Diagnostic> {
    let mut out = String::new();
    let mut chars = text[at + 1..].char_indices();
    while let Some((off, ch)) = chars.next() {
        let pos = at + 1 + off;
        if ch as u32 == u32::from(quote) {
            return Ok((out, pos + 1));
        }
        if ch == '\\' {
            let Some((_, next)) = chars.next() else { break };
            if !escapes {
                if next as u32 != u32::from(quote) {
                    out.push('\\');
                }
                out.push(next);
                continue;
            }
            match next {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                '0' => out.push('\0'),
                '\\' | '"' | '\'' => out.push(next),
                other => {
                    return Err(Diagnostic::error(
                        Code::Syntax,
                        Some(map.span(pos, pos + 1 + other.len_utf8())),
                        format!("unknown escape `\\{other}`"),
                    )
                    .label("valid escapes: \\n \\t \\r \\0 \\\\ \\\" \\'"));
                }
            }
            continue;
        }
        out.push(ch);
    }
    Err(Diagnostic::error(
        Code::Syntax,
        Some(map.span(at, at + 1)),
        "unterminated string literal",
    )
    .label("this quote is never closed"))
}

/// Classifies a number-like word: integer, duration, CIDR or IP address.
fn number(word: &str) -> Option<Lit> {
    let clean: String = word.chars().filter(|c| *c != '_').collect();
    if let Ok(v) = clean.parse::<i64>() {
        return Some(Lit::Int(v));
    }
    if let Some(ns) = parse_duration(&clean) {
        return Some(Lit::Duration(ns));
    }
    // Addresses and networks are canonical: `::ffff:a.b.c.d` is IPv4 (see `crate::net`).
    if word.contains('/') {
        return IpNet::from_str(word)
            .ok()
            .map(|n| Lit::Cidr(crate::net::canonical_net(n)));
    }
    IpAddr::from_str(word)
        .ok()
        .map(|a| Lit::Ip(crate::net::canonical(a)))
}

/// Parses `90s`, `5m`, `1h30m`, `250ms` into nanoseconds.
pub fn parse_duration(s: &str) -> Option<u64> {
    let mut total: u64 = 0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let scale: u64 = match &rest[..unit_len] {
            "ns" => 1,
            "us" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "d" => 86_400_000_000_000,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total = total.checked_add(n.checked_mul(scale)?)?;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Some(90_000_000_000));
        assert_eq!(parse_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(number("10.0.0.0/8").map(|l| l.type_name()), Some("cidr"));
        assert_eq!(number("10.0.0.1").map(|l| l.type_name()), Some("ip"));
        assert_eq!(number("-3"), Some(Lit::Int(-3)));
        assert_eq!(number("1.2"), None);
    }
}
