//! Diagnostics: what went wrong, where, rendered rustc style with the offending source line and
//! a caret. A load collects every diagnostic of the run into one [`Diagnostics`] value.

use std::fmt;
use std::sync::Arc;

use crate::source::{SourceMap, Span};

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// The policy is rejected.
    Error,
    /// The policy loads; something deserves attention.
    Warning,
}

/// The kind of a diagnostic, stable for tests and tooling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Code {
    /// The file could not be read, or is too big.
    Io,
    /// The YAML is malformed.
    Yaml,
    /// The YAML is well formed but does not have the policy's shape.
    Structure,
    /// The expression does not parse.
    Syntax,
    /// A field name that is not in the schema.
    UnknownField,
    /// A name that is neither a macro nor a list.
    UnknownName,
    /// An operator or value of the wrong type.
    TypeMismatch,
    /// Two rules with one id, or two macros/lists with one name.
    Duplicate,
    /// A regular expression (or glob) that does not compile.
    BadPattern,
    /// Macros that refer to each other in a cycle.
    Cycle,
    /// An expression that uses fields of two event kinds.
    MixedKinds,
    /// A deny rule that the kernel cannot evaluate.
    NotLowerable,
    /// A value that is out of range or malformed (list items, sizes, durations).
    BadValue,
    /// A limit (size, depth, count) was exceeded.
    Limit,
}

impl Code {
    /// Short stable name, e.g. `unknown-field`.
    pub fn name(self) -> &'static str {
        match self {
            Code::Io => "io",
            Code::Yaml => "yaml",
            Code::Structure => "structure",
            Code::Syntax => "syntax",
            Code::UnknownField => "unknown-field",
            Code::UnknownName => "unknown-name",
            Code::TypeMismatch => "type-mismatch",
            Code::Duplicate => "duplicate",
            Code::BadPattern => "bad-pattern",
            Code::Cycle => "cycle",
            Code::MixedKinds => "mixed-kinds",
            Code::NotLowerable => "not-lowerable",
            Code::BadValue => "bad-value",
            Code::Limit => "limit",
        }
    }
}

/// A secondary note, optionally pointing at a place.
#[derive(Debug, Clone)]
pub struct Note {
    /// Where the note points, if anywhere.
    pub span: Option<Span>,
    /// The text.
    pub message: String,
}

/// One problem found in a policy.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    /// Error or warning.
    pub level: Level,
    /// Its kind.
    pub code: Code,
    /// The headline.
    pub message: String,
    /// Where it is (`None` when no file is involved, e.g. a missing directory).
    pub span: Option<Span>,
    /// Text shown under the caret.
    pub label: String,
    /// Further notes.
    pub notes: Vec<Note>,
}

impl Diagnostic {
    /// A new error at `span`.
    pub fn error(code: Code, span: Option<Span>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            level: Level::Error,
            code,
            message: message.into(),
            span,
            label: String::new(),
            notes: Vec::new(),
        }
    }

    /// Sets the text under the caret.
    pub fn label(mut self, label: impl Into<String>) -> Diagnostic {
        self.label = label.into();
        self
    }

    /// Adds a note.
    pub fn note(mut self, span: Option<Span>, message: impl Into<String>) -> Diagnostic {
        self.notes.push(Note {
            span,
            message: message.into(),
        });
        self
    }
}

/// Every diagnostic of one load, with the sources needed to render them.
#[derive(Debug, Clone)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
    sources: Arc<SourceMap>,
}

impl Diagnostics {
    /// Diagnostics sorted by place: those without a file first, then by file (load order)
    /// and offset; the sort is stable, so diagnostics at one place keep their order.
    pub(crate) fn new(mut items: Vec<Diagnostic>, sources: Arc<SourceMap>) -> Diagnostics {
        items.sort_by_key(|d| d.span.map(|s| (s.file, s.start)));
        Diagnostics { items, sources }
    }

    /// Number of diagnostics.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The diagnostics, in the order they were found (files in load order).
    pub fn items(&self) -> &[Diagnostic] {
        &self.items
    }

    /// `file:line:col` of a diagnostic (or `<policy>` when it has no span).
    pub fn location(&self, d: &Diagnostic) -> String {
        d.span
            .map_or_else(|| "<policy>".to_string(), |s| self.sources.locate(s))
    }

    /// A one-line reason naming `file:line:col` of the first diagnostic, and how many more.
    pub fn first_line(&self) -> String {
        let Some(first) = self.items.first() else {
            return "policy rejected".to_string();
        };
        let more = match self.items.len() {
            1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        };
        format!("{}: {}{}", self.location(first), first.message, more)
    }

    fn render_one(&self, f: &mut fmt::Formatter<'_>, d: &Diagnostic) -> fmt::Result {
        let level = match d.level {
            Level::Error => "error",
            Level::Warning => "warning",
        };
        writeln!(f, "{level}[{}]: {}", d.code.name(), d.message)?;
        if let Some(span) = d.span {
            self.render_snippet(f, span, &d.label)?;
        }
        for note in &d.notes {
            match note.span {
                Some(span) => {
                    writeln!(f, "  = note: {}", note.message)?;
                    self.render_snippet(f, span, "")?;
                }
                None => writeln!(f, "  = note: {}", note.message)?,
            }
        }
        Ok(())
    }

    fn render_snippet(&self, f: &mut fmt::Formatter<'_>, span: Span, label: &str) -> fmt::Result {
        let Some(file) = self.sources.file(span.file) else {
            return Ok(());
        };
        let start = file.position(span.start as usize);
        let end = file.position(span.end as usize);
        let text = file.line_text(start.line);
        let gutter = start.line.to_string().len();
        let pad = " ".repeat(gutter);
        writeln!(
            f,
            "{pad}--> {}:{}:{}",
            file.path.display(),
            start.line,
            start.col
        )?;
        writeln!(f, "{pad} |")?;
        writeln!(f, "{} | {}", start.line, text)?;
        let width = if end.line == start.line {
            end.col.saturating_sub(start.col).max(1)
        } else {
            text.chars().count().saturating_sub(start.col - 1).max(1)
        };
        let lead: String = text
            .chars()
            .take(start.col - 1)
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        let sep = if label.is_empty() { "" } else { " " };
        writeln!(f, "{pad} | {lead}{}{sep}{label}", "^".repeat(width))
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.items.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            self.render_one(f, d)?;
        }
        let errors = self
            .items
            .iter()
            .filter(|d| d.level == Level::Error)
            .count();
        if errors > 0 {
            writeln!(f)?;
            let s = if errors == 1 { "" } else { "s" };
            write!(f, "policy rejected: {errors} error{s}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}
