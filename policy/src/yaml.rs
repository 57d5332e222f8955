//! The YAML layer: turns a policy file's text into a small tree of [`Node`]s that keep their
//! byte spans, using `saphyr-parser`'s marked events (no hand-written YAML parser). Aliases are
//! refused (no expansion bombs), nesting depth is capped, and [`ScalarMap`] maps an offset
//! inside a scalar's *value* back to the file, so expression errors point into the YAML file.

use saphyr_parser::{Event, Parser, ScalarStyle, Span as YSpan};

use crate::diag::{Code, Diagnostic};
use crate::source::{FileId, SourceFile, Span};

/// Deepest YAML nesting accepted.
pub const MAX_YAML_DEPTH: usize = 32;

/// One YAML node with its span in the file.
#[derive(Debug, Clone)]
pub struct Node {
    /// What the node holds.
    pub kind: NodeKind,
    /// Where it is.
    pub span: Span,
}

/// The node's content.
#[derive(Debug, Clone)]
pub enum NodeKind {
    /// A scalar, with its YAML style (plain, quoted, block).
    Scalar(String, ScalarStyle),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, keys in file order.
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The scalar text, if this is a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar(s, _) => Some(s),
            _ => None,
        }
    }

    /// Whether this is the plain scalar `null`, `~` or empty.
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar(s, ScalarStyle::Plain) if s.is_empty() || s == "~" || s == "null")
    }

    /// A short name of the node's type for messages.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            NodeKind::Scalar(..) => "a scalar",
            NodeKind::Seq(_) => "a sequence",
            NodeKind::Map(_) => "a mapping",
        }
    }
}

/// Parses one YAML document. An empty file gives `None`.
pub fn parse(file: FileId, src: &SourceFile) -> Result<Option<Node>, Diagnostic> {
    let mut builder = Builder {
        file,
        src,
        parser: Parser::new_from_str(&src.text),
    };
    builder.document()
}

struct Builder<'a> {
    file: FileId,
    src: &'a SourceFile,
    parser: Parser<'a, saphyr_parser::StrInput<'a>>,
}

impl<'a> Builder<'a> {
    fn span(&self, s: &YSpan) -> Span {
        let start = self.src.char_to_byte(s.start.index());
        let end = self.src.char_to_byte(s.end.index());
        Span::new(self.file, start, end)
    }

    fn next(&mut self) -> Result<(Event<'a>, Span), Diagnostic> {
        match self.parser.next_event() {
            Some(Ok((ev, sp))) => {
                let span = self.span(&sp);
                Ok((ev, span))
            }
            Some(Err(e)) => {
                let at = self.src.char_to_byte(e.marker().index());
                let span = Span::new(self.file, at, at);
                Err(Diagnostic::error(
                    Code::Yaml,
                    Some(span),
                    format!("invalid YAML: {}", e.info()),
                )
                .label("here"))
            }
            None => {
                let end = self.src.text.len();
                Err(Diagnostic::error(
                    Code::Yaml,
                    Some(Span::new(self.file, end, end)),
                    "invalid YAML: unexpected end of input",
                ))
            }
        }
    }

    fn document(&mut self) -> Result<Option<Node>, Diagnostic> {
        let mut root = None;
        loop {
            let (ev, span) = self.next()?;
            match ev {
                Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
                Event::DocumentStart(_) => {
                    if root.is_some() {
                        return Err(Diagnostic::error(
                            Code::Yaml,
                            Some(span),
                            "a policy file holds one YAML document, found a second one",
                        ));
                    }
                    let (ev, span) = self.next()?;
                    root = Some(self.node(ev, span, 0)?);
                }
                Event::StreamEnd => return Ok(root),
                _ => {
                    return Err(Diagnostic::error(
                        Code::Yaml,
                        Some(span),
                        "unexpected YAML event",
                    ));
                }
            }
        }
    }

    fn node(&mut self, ev: Event<'a>, span: Span, depth: usize) -> Result<Node, Diagnostic> {
        if depth > MAX_YAML_DEPTH {
            return Err(Diagnostic::error(
                Code::Limit,
                Some(span),
                format!("YAML nested deeper than {MAX_YAML_DEPTH} levels"),
            ));
        }
        match ev {
            Event::Scalar(value, style, _, _) => Ok(Node {
                kind: NodeKind::Scalar(value.into_owned(), style),
                span,
            }),
            Event::Alias(_) => Err(Diagnostic::error(
                Code::Yaml,
                Some(span),
                "YAML aliases are not supported in policies",
            )),
            Event::SequenceStart(..) => {
                let mut items = Vec::new();
                let mut end = span;
                loop {
                    let (ev, sp) = self.next()?;
                    if matches!(ev, Event::SequenceEnd) {
                        end = end.to(sp);
                        break;
                    }
                    let item = self.node(ev, sp, depth + 1)?;
                    end = end.to(item.span);
                    items.push(item);
                }
                Ok(Node {
                    kind: NodeKind::Seq(items),
                    span: span.to(end),
                })
            }
            Event::MappingStart(..) => {
                let mut pairs = Vec::new();
                let mut end = span;
                loop {
                    let (ev, sp) = self.next()?;
                    if matches!(ev, Event::MappingEnd) {
                        break;
                    }
                    let key = self.node(ev, sp, depth + 1)?;
                    let (ev, sp) = self.next()?;
                    let value = self.node(ev, sp, depth + 1)?;
                    end = end.to(value.span);
                    pairs.push((key, value));
                }
                Ok(Node {
                    kind: NodeKind::Map(pairs),
                    span: span.to(end),
                })
            }
            _ => Err(Diagnostic::error(
                Code::Yaml,
                Some(span),
                "unexpected YAML event",
            )),
        }
    }
}

/// Maps byte offsets inside a scalar's value to byte offsets in the file. Built by aligning
/// the value with the scalar's source text (quotes, indentation, folded line breaks and escape
/// characters are skipped), which is exact for plain, quoted and block scalars without escapes
/// and close otherwise.
#[derive(Debug, Clone)]
pub struct ScalarMap {
    file: FileId,
    /// `offsets[i]` = file offset of value byte `i`; one extra entry for the end.
    offsets: Vec<u32>,
}

impl ScalarMap {
    /// Builds the map of `node` (a scalar) in `src`.
    pub fn new(node: &Node, src: &SourceFile) -> ScalarMap {
        let value = node.as_str().unwrap_or("");
        let text = src.text.as_bytes();
        let start = node.span.start as usize;
        let limit = (node.span.end as usize).max(start).min(text.len());
        let mut offsets = Vec::with_capacity(value.len() + 1);
        let mut pos = start;
        for &b in value.as_bytes() {
            let mut found = None;
            let mut p = pos;
            while p < limit {
                let s = text[p];
                if s == b || (b == b' ' && s == b'\n') {
                    found = Some(p);
                    break;
                }
                p += 1;
            }
            match found {
                Some(p) => {
                    offsets.push(u32::try_from(p).unwrap_or(u32::MAX));
                    pos = p + 1;
                }
                None => offsets.push(u32::try_from(pos.min(limit)).unwrap_or(u32::MAX)),
            }
        }
        offsets.push(u32::try_from(pos.min(limit.max(start))).unwrap_or(u32::MAX));
        ScalarMap {
            file: node.span.file,
            offsets,
        }
    }

    /// The file span of value bytes `start..end`.
    pub fn span(&self, start: usize, end: usize) -> Span {
        let last = self.offsets.len().saturating_sub(1);
        let s = self.offsets.get(start.min(last)).copied().unwrap_or(0);
        let e = if end > start {
            // End just after the last byte of the range.
            self.offsets.get((end - 1).min(last)).map_or(s, |e| e + 1)
        } else {
            s
        };
        Span {
            file: self.file,
            start: s,
            end: e.max(s),
        }
    }
}
