//! The line protocol between the guest harness and the host, written on the serial console:
//!
//! ```text
//! VMTEST <case> PASS
//! VMTEST <case> FAIL <reason>
//! VMTEST <case> SKIP <reason>
//! VMLOG <case> <diagnostic text>       (any number, before the case's result line)
//! VMTEST-DONE <passed> <failed>        (last line of the harness)
//! VMINFO <key> <value>                 (from /init: userspace, kernel, lsm, harness-exit, ...)
//! ```
//!
//! Case names contain no whitespace; reasons and log text are one line. The host finds a tag
//! anywhere in a console line, because kernel messages can share a line with guest output.

/// Result line tag.
pub const RESULT: &str = "VMTEST";
/// Final line tag.
pub const DONE: &str = "VMTEST-DONE";
/// Per-case diagnostic line tag.
pub const LOG: &str = "VMLOG";
/// `/init` information line tag.
pub const INFO: &str = "VMINFO";

/// The outcome of one guest case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The case passed.
    Pass,
    /// The case failed, with the reason.
    Fail(String),
    /// The case could not run here, with the reason.
    Skip(String),
}

impl Verdict {
    /// `PASS`, `FAIL` or `SKIP`.
    pub fn word(&self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail(_) => "FAIL",
            Verdict::Skip(_) => "SKIP",
        }
    }

    /// The reason of a failure or skip.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Verdict::Pass => None,
            Verdict::Fail(reason) | Verdict::Skip(reason) => Some(reason),
        }
    }
}

/// One parsed console line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// `VMTEST <case> PASS|FAIL|SKIP [reason]`.
    Result {
        /// The case.
        case: String,
        /// Its outcome.
        verdict: Verdict,
    },
    /// `VMTEST-DONE <passed> <failed>`.
    Done {
        /// Cases passed, as the guest counted them.
        passed: u32,
        /// Cases failed, as the guest counted them.
        failed: u32,
    },
    /// `VMLOG <case> <text>`.
    Log {
        /// The case.
        case: String,
        /// The text.
        text: String,
    },
    /// `VMINFO <key> <value>`.
    Info {
        /// The key.
        key: String,
        /// The rest of the line.
        value: String,
    },
    /// Anything else (kernel messages, engine output that escaped its log file).
    Other,
}

/// Longest reason or log text kept on one console line, in characters; the rest is cut (a
/// verifier log inside a record would otherwise flood the console).
pub const MAX_TEXT_CHARS: usize = 1500;

/// Makes `text` one line, so it cannot break the protocol, and cuts it to
/// [`MAX_TEXT_CHARS`].
pub fn one_line(text: &str) -> String {
    let flat = text.trim().replace(['\r', '\n'], " | ");
    let total = flat.chars().count();
    if total <= MAX_TEXT_CHARS {
        return flat;
    }
    let kept: String = flat.chars().take(MAX_TEXT_CHARS).collect();
    format!("{kept} ...[{} more chars]", total - MAX_TEXT_CHARS)
}

/// Formats a result line.
pub fn format_result(case: &str, verdict: &Verdict) -> String {
    match verdict.reason() {
        None => format!("{RESULT} {case} {}", verdict.word()),
        Some(reason) => format!("{RESULT} {case} {} {}", verdict.word(), one_line(reason)),
    }
}

/// Formats the final line.
pub fn format_done(passed: u32, failed: u32) -> String {
    format!("{DONE} {passed} {failed}")
}

/// Formats a diagnostic line.
pub fn format_log(case: &str, text: &str) -> String {
    format!("{LOG} {case} {}", one_line(text))
}

/// Parses one console line (a trailing `\r` is ignored).
pub fn parse_line(raw: &str) -> Line {
    let line = raw.trim_end_matches(['\r', '\n']);
    if let Some(rest) = after_tag(line, DONE) {
        let mut nums = rest.split_whitespace().map(str::parse::<u32>);
        if let (Some(Ok(passed)), Some(Ok(failed))) = (nums.next(), nums.next()) {
            return Line::Done { passed, failed };
        }
        return Line::Other;
    }
    if let Some(rest) = after_tag(line, RESULT) {
        let (case, rest) = split_word(rest);
        let (word, reason) = split_word(rest);
        let reason = reason.trim().to_owned();
        let verdict = match word {
            "PASS" => Verdict::Pass,
            "FAIL" => Verdict::Fail(reason),
            "SKIP" => Verdict::Skip(reason),
            _ => return Line::Other,
        };
        if case.is_empty() {
            return Line::Other;
        }
        return Line::Result {
            case: case.to_owned(),
            verdict,
        };
    }
    for (tag, is_log) in [(LOG, true), (INFO, false)] {
        if let Some(rest) = after_tag(line, tag) {
            let (first, text) = split_word(rest);
            if first.is_empty() {
                return Line::Other;
            }
            let (first, text) = (first.to_owned(), text.trim().to_owned());
            return if is_log {
                Line::Log { case: first, text }
            } else {
                Line::Info {
                    key: first,
                    value: text,
                }
            };
        }
    }
    Line::Other
}

/// The text after `tag ` when `tag` starts the line or follows a character that cannot be part
/// of a word (kernel messages or firmware output may come first on the same line).
fn after_tag<'a>(line: &'a str, tag: &str) -> Option<&'a str> {
    let needle = format!("{tag} ");
    let mut from = 0;
    while let Some(pos) = line[from..].find(&needle) {
        let at = from + pos;
        let boundary = line[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '-' || c == '_'));
        if boundary {
            return Some(&line[at + needle.len()..]);
        }
        from = at + needle.len();
    }
    None
}

fn split_word(text: &str) -> (&str, &str) {
    let text = text.trim_start();
    match text.split_once(char::is_whitespace) {
        Some((word, rest)) => (word, rest),
        None => (text, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for verdict in [
            Verdict::Pass,
            Verdict::Fail("exec allowed\nsecond line".into()),
            Verdict::Skip("no bpf".into()),
        ] {
            let line = format_result("lsm_exec_deny", &verdict);
            let expected = match &verdict {
                Verdict::Fail(_) => Verdict::Fail("exec allowed | second line".into()),
                other => other.clone(),
            };
            assert_eq!(
                parse_line(&line),
                Line::Result {
                    case: "lsm_exec_deny".into(),
                    verdict: expected
                }
            );
        }
        assert_eq!(
            parse_line(&format_done(2, 1)),
            Line::Done {
                passed: 2,
                failed: 1
            }
        );
        assert_eq!(
            parse_line(&format_log("c", "engine said\nbye")),
            Line::Log {
                case: "c".into(),
                text: "engine said | bye".into()
            }
        );
    }

    #[test]
    fn long_text_is_cut() {
        let long = "x".repeat(MAX_TEXT_CHARS + 10);
        let line = format_log("c", &long);
        assert!(line.ends_with(" ...[10 more chars]"), "{line}");
        assert!(line.len() < MAX_TEXT_CHARS + 40);
    }

    #[test]
    fn tolerates_kernel_prefix_and_cr() {
        assert_eq!(
            parse_line("[   12.3] random: crng init done VMTEST a PASS\r"),
            Line::Result {
                case: "a".into(),
                verdict: Verdict::Pass
            }
        );
        assert_eq!(
            parse_line("Booting from ROM..VMINFO userspace"),
            Line::Info {
                key: "userspace".into(),
                value: String::new()
            }
        );
        assert_eq!(
            parse_line("VMINFO kernel 6.1.0-47-amd64\r"),
            Line::Info {
                key: "kernel".into(),
                value: "6.1.0-47-amd64".into()
            }
        );
    }

    #[test]
    fn rejects_malformed_lines() {
        for line in [
            "VMTEST",
            "VMTEST a MAYBE",
            "VMTEST-DONE x 1",
            "XVMTEST a PASS",
            "hello",
        ] {
            assert_eq!(parse_line(line), Line::Other, "{line}");
        }
    }
}
