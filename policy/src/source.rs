//! Source files and spans: every loaded policy or list file is kept in a [`SourceMap`] so that
//! any byte range ([`Span`]) can be turned back into `file:line:col` and the text of its line.

use std::path::{Path, PathBuf};

/// Identifies one file inside a [`SourceMap`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub u32);

/// A byte range inside one source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Span {
    /// The file the range is in.
    pub file: FileId,
    /// First byte (inclusive).
    pub start: u32,
    /// Last byte (exclusive); `start == end` for a point.
    pub end: u32,
}

impl Span {
    /// A span covering `start..end` of `file`.
    pub fn new(file: FileId, start: usize, end: usize) -> Span {
        Span {
            file,
            start: clamp_u32(start),
            end: clamp_u32(end.max(start)),
        }
    }

    /// The smallest span covering both (both must be in the same file, else `self`).
    pub fn to(self, other: Span) -> Span {
        if self.file != other.file {
            return self;
        }
        Span {
            file: self.file,
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }
}

fn clamp_u32(v: usize) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// A resolved position: 1-based line and column (column counted in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
}

/// One loaded file.
#[derive(Debug)]
pub struct SourceFile {
    /// The path as given (or derived from the directory walk).
    pub path: PathBuf,
    /// The whole text.
    pub text: String,
    /// Byte offset of the start of every line.
    line_starts: Vec<usize>,
    /// Byte offset of every character, only for non-ASCII text (the YAML parser counts chars).
    char_starts: Option<Vec<usize>>,
}

impl SourceFile {
    fn new(path: PathBuf, text: String) -> SourceFile {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        let char_starts = (!text.is_ascii()).then(|| text.char_indices().map(|(b, _)| b).collect());
        SourceFile {
            path,
            text,
            line_starts,
            char_starts,
        }
    }

    /// Line and column of byte offset `offset` (clamped to the text).
    pub fn position(&self, offset: usize) -> Position {
        let offset = offset.min(self.text.len());
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let start = self.line_starts.get(line).copied().unwrap_or(0);
        let col = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count())
            + 1;
        Position {
            line: line + 1,
            col,
        }
    }

    /// The text of 1-based line `line`, without its newline.
    pub fn line_text(&self, line: usize) -> &str {
        let Some(&start) = self.line_starts.get(line.saturating_sub(1)) else {
            return "";
        };
        let end = self
            .line_starts
            .get(line)
            .map_or(self.text.len(), |e| e.saturating_sub(1));
        self.text
            .get(start..end.max(start))
            .unwrap_or("")
            .trim_end_matches('\r')
    }

    /// Byte offset of the `index`-th character (as counted by the YAML parser).
    pub fn char_to_byte(&self, index: usize) -> usize {
        match &self.char_starts {
            None => index.min(self.text.len()),
            Some(starts) => starts.get(index).copied().unwrap_or(self.text.len()),
        }
    }
}

/// Every file read while loading one policy.
#[derive(Debug, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    /// Adds a file and returns its id.
    pub fn add(&mut self, path: &Path, text: String) -> FileId {
        let id = FileId(u32::try_from(self.files.len()).unwrap_or(u32::MAX));
        self.files.push(SourceFile::new(path.to_path_buf(), text));
        id
    }

    /// Every file, in the order read.
    pub fn files(&self) -> impl Iterator<Item = &SourceFile> {
        self.files.iter()
    }

    /// The file behind `id`.
    pub fn file(&self, id: FileId) -> Option<&SourceFile> {
        self.files.get(id.0 as usize)
    }

    /// `path:line:col` of the start of `span`.
    pub fn locate(&self, span: Span) -> String {
        match self.file(span.file) {
            Some(f) => {
                let p = f.position(span.start as usize);
                format!("{}:{}:{}", f.path.display(), p.line, p.col)
            }
            None => "<unknown>".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn positions_are_one_based() {
        let mut map = SourceMap::default();
        let id = map.add(Path::new("a.yaml"), "ab\ncdé\nf".to_string());
        let f = map.file(id).unwrap();
        assert_eq!(f.position(0), Position { line: 1, col: 1 });
        assert_eq!(f.position(4), Position { line: 2, col: 2 });
        assert_eq!(f.position(8), Position { line: 3, col: 1 });
        assert_eq!(f.line_text(2), "cdé");
        assert_eq!(f.char_to_byte(6), 7);
        assert_eq!(f.char_to_byte(7), 8);
        assert_eq!(map.locate(Span::new(id, 3, 4)), "a.yaml:2:1");
    }
}
