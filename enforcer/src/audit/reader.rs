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
    pub fn read(mut input: impl BufRead) -> std::io::Result<(Vec<Value>, ReadSummary)> {
        let mut records = Vec::new();
        let mut summary = ReadSummary::default();
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = input.read_until(b'\n', &mut line)?;
            if n == 0 {
                break;
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
                    records.push(value);
                    summary.records += 1;
                }
                None if !complete => summary.torn_tail += 1,
                None => summary.corrupt += 1,
            }
        }
        Ok((records, summary))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

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
