//! Reading the engine's JSON-lines audit log while the engine is still writing it: only
//! complete (newline-terminated) lines count; a complete line that is not JSON is an error.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Every complete record in `path` (none when the file does not exist yet).
pub(crate) fn records(path: &Path) -> Result<Vec<Value>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot read audit log {}: {e}", path.display())),
    };
    let complete = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    complete
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|e| {
                format!(
                    "audit log {} line {} is not JSON ({e}): {line}",
                    path.display(),
                    i + 1
                )
            })
        })
        .collect()
}

/// The string field `key` of `record`.
pub(crate) fn str_field<'a>(record: &'a Value, key: &str) -> Option<&'a str> {
    record.get(key).and_then(Value::as_str)
}

/// True when `record` has `"type": kind`.
pub(crate) fn is_type(record: &Value, kind: &str) -> bool {
    str_field(record, "type") == Some(kind)
}

/// True for an enforcement record `{"type":"action","action":action,"rule":rule}`.
pub(crate) fn is_action(record: &Value, action: &str, rule: &str) -> bool {
    is_type(record, "action")
        && str_field(record, "action") == Some(action)
        && str_field(record, "rule") == Some(rule)
}

/// Polls `path` until a record satisfies `matches`, or `timeout` passes (`Err` then says what
/// was awaited and how many records were seen). `alive` is checked between polls; its `Err`
/// ends the wait early (the engine died).
pub(crate) fn wait_for(
    path: &Path,
    timeout: Duration,
    what: &str,
    matches: impl Fn(&Value) -> bool,
    mut alive: impl FnMut() -> Result<(), String>,
) -> Result<Value, String> {
    let start = Instant::now();
    loop {
        let all = records(path)?;
        if let Some(found) = all.iter().find(|r| matches(r)) {
            return Ok(found.clone());
        }
        if start.elapsed() >= timeout {
            return Err(format!(
                "no {what} in {} after {} s ({} records there)",
                path.display(),
                timeout.as_secs(),
                all.len()
            ));
        }
        alive().map_err(|e| format!("while waiting for {what}: {e}"))?;
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The first `head` and last `tail` lines of a text file, with a marker line between them when
/// lines were left out, and the file's line count (0 and nothing if unreadable).
pub(crate) fn excerpt(path: &Path, head: usize, tail: usize) -> (usize, Vec<String>) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let total = lines.len();
    if total <= head + tail {
        return (total, lines.iter().map(|l| (*l).to_owned()).collect());
    }
    let mut out: Vec<String> = lines[..head].iter().map(|l| (*l).to_owned()).collect();
    out.push(format!("... {} lines left out ...", total - head - tail));
    out.extend(lines[total - tail..].iter().map(|l| (*l).to_owned()));
    (total, out)
}
