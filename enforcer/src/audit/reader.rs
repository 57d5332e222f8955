//! Reads an audit log back, tolerating a torn last line (crash mid-write) and counting lines
//! that are not JSON objects instead of failing.

use std::{
    io::{BufRead, BufReader},
    path::Path,
};

use serde_json::Value;

/// What a read found besides the records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadSummary {
    /// Records parsed.
    pub records: usize,
    /// A last line without a newline that is not valid JSON (a torn tail), 0 or 1.
    pub torn_tail: usize,
    /// Other lines that are not JSON objects (e.g. a torn record closed by a restart).
    pub corrupt: usize,
}

/// Reads audit logs.
#[derive(Debug)]
pub struct AuditReader;

/// Longest line accepted; longer lines are counted corrupt.
const MAX_LINE: usize = 1 << 20;

impl AuditReader {
    /// Reads every record of the log at `path`.
    pub fn read_path(path: &Path) -> std::io::Result<(Vec<Value>, ReadSummary)> {
        let file = std::fs::File::open(path)?;
        Self::read(BufReader::new(file))
    }

    /// Reads every record from `input`.
    pub fn read(input: impl BufRead) -> std::io::Result<(Vec<Value>, ReadSummary)> {
        let mut records = Vec::new();
        let summary = Self::for_each(input, |record| records.push(record))?;
        Ok((records, summary))
    }

    /// Hands every record of `input` to `each`, one at a time (a log of any size is read in
    /// constant memory, besides one line of at most [`MAX_LINE`] bytes kept).
    pub fn for_each(
        mut input: impl BufRead,
        mut each: impl FnMut(Value),
    ) -> std::io::Result<ReadSummary> {
        let mut summary = ReadSummary::default();
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = std::io::Read::take(input.by_ref(), MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut line)?;
            if n == 0 {
                break;
            }
            if line.len() > MAX_LINE && line.last() != Some(&b'\n') {
                // Longer than any record: the rest of it is skipped, unread.
                skip_line(&mut input)?;
                summary.corrupt += 1;
                continue;
            }
            let complete = line.last() == Some(&b'\n');
            let body = line.strip_suffix(b"\n").unwrap_or(&line);
            if body.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let parsed = (body.len() <= MAX_LINE)
                .then(|| serde_json::from_slice::<Value>(body).ok())
                .flatten()
                .filter(Value::is_object);
            match parsed {
                Some(value) => {
                    each(value);
                    summary.records += 1;
                }
                None if !complete => summary.torn_tail += 1,
                None => summary.corrupt += 1,
            }
        }
        Ok(summary)
    }
}

/// Consumes `input` up to and including the next newline (or to its end).
fn skip_line(input: &mut impl BufRead) -> std::io::Result<()> {
    loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        match buf.iter().position(|&b| b == b'\n') {
            Some(i) => {
                input.consume(i + 1);
                return Ok(());
            }
            None => {
                let n = buf.len();
                input.consume(n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_overlong_line_is_skipped_without_being_kept() {
        let long = format!("{{\"x\":\"{}\"}}\n", "a".repeat(MAX_LINE + 10));
        let input = format!("{{\"a\":1}}\n{long}{{\"b\":2}}\n");
        let mut seen = Vec::new();
        let summary = AuditReader::for_each(input.as_bytes(), |r| seen.push(r)).unwrap();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert_eq!(seen[1]["b"], 2);
        assert_eq!(summary.corrupt, 1);
    }

    #[test]
    fn non_objects_and_blank_lines() {
        let input = b"{\"a\":1}\n\n[1,2]\nnot json\n{\"b\":2}\n{\"c\":";
        let (records, summary) = AuditReader::read(&input[..]).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(
            summary,
            ReadSummary {
                records: 2,
                torn_tail: 1,
                corrupt: 2
            }
        );
    }
}
