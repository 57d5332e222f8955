//! DNS messages the kernel copied from a process's sockets (a query it sent or a response it
//! received), decoded with `hickory-proto` into the few fields the policy reads.
//!
//! - [`parse`] takes a UDP payload (one whole message); [`parse_tcp`] a TCP segment that starts
//!   with the 2-byte length prefix of RFC 1035 §4.2.2.
//! - Bounded: an input over 65535 bytes (65537 for TCP, prefix included) is refused before any
//!   decoding; at most [`MAX_QUESTIONS`] questions and [`MAX_ANSWERS`] answers are kept (the
//!   rest are decoded, dropped and flagged in [`DnsMessage::truncated_sections`]); an answer's
//!   `data` is at most [`MAX_DATA_CHARS`] characters. No input panics (`fuzz/fuzz_targets/
//!   dns_message.rs`).
//! - Strict where the policy looks: the header, every question and every answer record must
//!   decode, or the message is refused with a [`DnsError`]. Lenient after that: an authority or
//!   additional section that does not decode (a capture cut short, or garbage a resolver appended
//!   that the client's stub resolver ignores anyway) only sets `truncated_sections`, so such a
//!   response cannot hide its answers. Bytes after the last section are ignored.
//! - Names are lowercased (ASCII only), without the trailing dot (the root is `.`), in
//!   presentation form: IDNA labels stay as punycode (`xn--...`), bytes outside letters, digits,
//!   `-` and `_` are escaped (`\.` for a dot inside a label, `\ooo` octal for non-ASCII), so two
//!   names that differ on the wire never render the same. A name renders to at most about
//!   1 KiB (255 wire bytes, each escaped to at most 4 characters).

mod decode;
mod error;
mod json;
mod query_log;
mod render;
#[cfg(test)]
mod tests;

use std::net::IpAddr;

pub use error::{DnsError, Section};
pub use query_log::QueryLog;

/// Questions kept per message; more are decoded, dropped and counted as truncated.
pub const MAX_QUESTIONS: usize = 4;
/// Answers kept per message; more are decoded, dropped and counted as truncated.
pub const MAX_ANSWERS: usize = 32;
/// Longest accepted message (the UDP payload, or a TCP message without its prefix).
pub const MAX_MESSAGE: usize = 65_535;
/// Longest [`DnsAnswer::data`], in characters.
pub const MAX_DATA_CHARS: usize = 255;

/// One entry of the question section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsQuestion {
    /// The queried name: lowercase, no trailing dot, IDNA left as-is (see the module docs).
    pub name: String,
    /// The query type's mnemonic (`A`, `AAAA`, `TXT`, ...), or `TYPE<n>` for one without.
    pub qtype: String,
}

/// One record of the answer section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsAnswer {
    /// The owner name, rendered like [`DnsQuestion::name`].
    pub name: String,
    /// The record type's mnemonic, or `TYPE<n>`.
    pub rtype: String,
    /// Time to live in seconds, as sent.
    pub ttl: u32,
    /// The address of an `A` or `AAAA` record.
    pub ip: Option<IpAddr>,
    /// The record data in presentation form: the address for `A`/`AAAA`, the target name for
    /// `CNAME`/`NS`/`PTR`/`ANAME` (rendered like a question name), hickory's text form for the
    /// rest; cut at [`MAX_DATA_CHARS`] characters. Empty when the data has no text form.
    pub data: String,
}

/// A decoded DNS message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsMessage {
    /// Transaction id.
    pub id: u16,
    /// QR bit: a response (true) or a query (false).
    pub is_response: bool,
    /// OPCODE (0 query, 4 notify, 5 update, ...).
    pub opcode: u8,
    /// RCODE, extended with the EDNS high bits when an OPT record carries them (3 NXDOMAIN).
    pub rcode: u16,
    /// The first [`MAX_QUESTIONS`] questions.
    pub questions: Vec<DnsQuestion>,
    /// The first [`MAX_ANSWERS`] answer records.
    pub answers: Vec<DnsAnswer>,
    /// Questions or answers were dropped over the limits, or the authority or additional
    /// section did not decode.
    pub truncated_sections: bool,
}

impl DnsMessage {
    /// The object that goes under the event's `"dns"` key:
    /// `{"id", "is_response", "opcode", "rcode", "question": {"name", "type"}` (the first
    /// question; absent when there is none) `, "questions": [{"name", "type"}], "answers":
    /// [{"name", "type", "ttl", "ip"` (only for `A`/`AAAA`) `, "data"}], "truncated_sections"}`.
    pub fn to_json(&self) -> serde_json::Value {
        json::message(self)
    }
}

/// Decodes one DNS message from a UDP payload.
///
/// # Errors
/// [`DnsError::TooLong`] over [`MAX_MESSAGE`] bytes; [`DnsError::Truncated`] when the header, a
/// question or an answer runs past the end of `bytes`; [`DnsError::Malformed`] when one of them
/// does not decode.
pub fn parse(bytes: &[u8]) -> Result<DnsMessage, DnsError> {
    if bytes.len() > MAX_MESSAGE {
        return Err(DnsError::TooLong { len: bytes.len() });
    }
    decode::message(bytes)
}

/// Decodes the first DNS message of a TCP stream segment: a 2-byte big-endian length, then the
/// message.
///
/// The prefix must agree with `bytes`: when it declares more bytes than follow it, the message
/// was cut short (a capture bounded below the message size, or a message sent in several
/// writes) and [`DnsError::TcpLengthMismatch`] is returned without decoding; a caller that wants
/// a best-effort look can [`parse`] `bytes[2..]` itself. When more bytes follow than declared,
/// the message is the declared prefix and the rest (the next pipelined message) is ignored.
/// So a write of the 2-byte prefix alone, which some clients send before the message, is a
/// [`DnsError::TcpLengthMismatch`].
///
/// # Errors
/// [`DnsError::TooLong`] over 65537 bytes; [`DnsError::TcpPrefixMissing`] under 2 bytes;
/// [`DnsError::TcpLengthMismatch`] as above; then those of [`parse`].
pub fn parse_tcp(bytes: &[u8]) -> Result<DnsMessage, DnsError> {
    if bytes.len() > MAX_MESSAGE + 2 {
        return Err(DnsError::TooLong { len: bytes.len() });
    }
    let (prefix, rest) = match bytes {
        [hi, lo, rest @ ..] => (u16::from_be_bytes([*hi, *lo]), rest),
        _ => return Err(DnsError::TcpPrefixMissing { len: bytes.len() }),
    };
    let declared = usize::from(prefix);
    let message = rest.get(..declared).ok_or(DnsError::TcpLengthMismatch {
        declared,
        available: rest.len(),
    })?;
    decode::message(message)
}
