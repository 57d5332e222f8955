//! The end of an audit log, read backwards at engine start: the time of the last whole record
//! and the last lifecycle record (`engine_start` or `engine_stop`). A log whose last lifecycle
//! record is an `engine_start` belongs to an engine that did not stop cleanly. Torn and corrupt
//! lines are skipped, as the reader does; at most [`MAX_SCAN`] bytes are read.

use std::{
    fs::File,
    io::{self, Read as _, Seek as _, SeekFrom},
    path::Path,
};

use serde_json::Value;

/// Bytes read per step, from the end.
const CHUNK: u64 = 1 << 20;
/// Most bytes read looking for a lifecycle record.
pub const MAX_SCAN: u64 = 256 << 20;
/// Longest line considered (longer ones are corrupt, as in the reader).
const MAX_LINE: usize = 1 << 20;

/// What the end of a log says.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Tail {
    /// `ts` of the last whole record.
    pub last_ts: Option<String>,
    /// The last `engine_start` or `engine_stop` record.
    pub lifecycle: Option<Value>,
}

impl Tail {
    /// The last lifecycle record when it is an `engine_start` (no clean stop followed).
    pub fn unclean_start(&self) -> Option<&Value> {
        self.lifecycle
            .as_ref()
            .filter(|r| r["type"] == "engine_start")
    }
}

/// Reads the end of the log at `path`; `None` when there is no log.
pub fn read(path: &Path) -> io::Result<Option<Tail>> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    let mut tail = Tail::default();
    let mut pos = len;
    // The start of a line whose beginning lies in the next chunk back.
    let mut carry: Vec<u8> = Vec::new();
    let mut carry_too_long = false;
    while pos > 0 && len - pos < MAX_SCAN {
        let n = CHUNK.min(pos);
        pos -= n;
        file.seek(SeekFrom::Start(pos))?;
        let mut buf = vec![0u8; usize::try_from(n).unwrap_or(0)];
        file.read_exact(&mut buf)?;
        buf.extend_from_slice(&carry);
        let mut lines: Vec<&[u8]> = buf.split(|&b| b == b'\n').collect();
        // The first piece may continue in the previous chunk (unless this is the file start).
        let head = if pos > 0 { lines.remove(0) } else { &[][..] };
        let last = lines.len();
        for (i, line) in lines.into_iter().enumerate().rev() {
            if carry_too_long && i + 1 == last {
                carry_too_long = false;
                continue;
            }
            if let Some(done) = consider(line, &mut tail) {
                return Ok(Some(done));
            }
        }
        if head.len() > MAX_LINE {
            carry.clear();
            carry_too_long = true;
        } else {
            carry = head.to_vec();
        }
    }
    Ok(Some(tail))
}

/// [`read`] of a log holding `text` (tests).
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) fn read_from_str(text: &str) -> Tail {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    std::fs::write(&path, text).unwrap();
    read(&path).unwrap().unwrap_or_default()
}

/// Takes what `line` says; returns the tail when it is the lifecycle record (search done).
fn consider(line: &[u8], tail: &mut Tail) -> Option<Tail> {
    if line.len() > MAX_LINE || line.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    // Only a top-level `type` has unescaped quotes around it; strings inside records escape
    // theirs. The cheap test keeps event lines from being parsed once `last_ts` is known.
    let lifecycle = contains(line, b"\"type\":\"engine_st");
    if tail.last_ts.is_some() && !lifecycle {
        return None;
    }
    let value: Value = serde_json::from_slice(line).ok().filter(Value::is_object)?;
    if tail.last_ts.is_none() {
        tail.last_ts = value["ts"].as_str().map(str::to_owned);
    }
    if matches!(value["type"].as_str(), Some("engine_start" | "engine_stop")) {
        tail.lifecycle = Some(value);
        return Some(tail.clone());
    }
    None
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn tail_of(text: &[u8]) -> Tail {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        std::fs::write(&path, text).unwrap();
        read(&path).unwrap().unwrap()
    }

    #[test]
    fn a_start_without_a_stop_is_unclean_and_a_torn_tail_is_skipped() {
        let log = b"{\"ts\":\"t1\",\"type\":\"engine_start\",\"pid\":7}\n{\"ts\":\"t2\",\"type\":\"event\",\"event\":{\"s\":\"\\\"type\\\":\\\"engine_stop\\\"\"}}\n{\"ts\":\"t3\",\"ty";
        let tail = tail_of(log);
        assert_eq!(tail.last_ts.as_deref(), Some("t2"));
        assert_eq!(tail.unclean_start().unwrap()["pid"], 7);
    }

    #[test]
    fn a_stop_is_clean_and_no_log_is_none() {
        let log = b"{\"ts\":\"t1\",\"type\":\"engine_start\"}\n{\"ts\":\"t2\",\"type\":\"engine_stop\"}\n";
        let tail = tail_of(log);
        assert!(tail.unclean_start().is_none());
        assert_eq!(tail.lifecycle.unwrap()["ts"], "t2");
        assert!(
            read(Path::new("/nonexistent/audit.jsonl"))
                .unwrap()
                .is_none()
        );
        assert_eq!(tail_of(b""), Tail::default());
    }

    #[test]
    fn lines_across_chunks_are_whole() {
        let mut log = b"{\"ts\":\"t0\",\"type\":\"engine_start\",\"pid\":1}\n".to_vec();
        let filler = format!(
            "{{\"ts\":\"tx\",\"type\":\"event\",\"event\":\"{}\"}}\n",
            "x".repeat(1000)
        );
        while (log.len() as u64) < 3 * CHUNK + 17 {
            log.extend_from_slice(filler.as_bytes());
        }
        let tail = tail_of(&log);
        assert_eq!(tail.last_ts.as_deref(), Some("tx"));
        assert_eq!(tail.unclean_start().unwrap()["pid"], 1);
    }
}
