//! Text forms of decoded names, types and record data (hickory's presentation forms, normalised
//! and bounded).

use std::{fmt::Write as _, net::IpAddr};

use hickory_proto::{
    op::Query,
    rr::{Name, RData, Record, RecordType},
};

use super::{DnsAnswer, DnsQuestion, MAX_DATA_CHARS};

pub(super) fn question(query: &Query) -> DnsQuestion {
    DnsQuestion {
        name: name(&query.name),
        qtype: record_type(query.query_type),
    }
}

pub(super) fn answer(record: &Record) -> DnsAnswer {
    let ip = match &record.data {
        RData::A(a) => Some(IpAddr::V4(a.0)),
        RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
        _ => None,
    };
    DnsAnswer {
        name: name(&record.name),
        rtype: record_type(record.record_type()),
        ttl: record.ttl,
        ip,
        data: data(&record.data),
    }
}

/// Lowercase (ASCII), no trailing dot, escaped presentation form; IDNA stays punycode (hickory's
/// ASCII form, not its UTF-8 one). The root name is `.`.
pub(super) fn name(name: &Name) -> String {
    let mut text = name.to_lowercase().to_ascii();
    // Names read from the wire are fully qualified, so hickory ends them with the root's dot
    // (after an escaped `\.` when the last label ends with a dot, which then stays).
    if name.is_fqdn() && text.len() > 1 {
        text.pop();
    }
    if text.is_empty() {
        text.push('.');
    }
    text
}

/// The type's mnemonic, or `TYPE<n>` (RFC 3597) for one hickory does not know.
pub(super) fn record_type(rtype: RecordType) -> String {
    match rtype {
        RecordType::Unknown(code) => format!("TYPE{code}"),
        known => <&'static str>::from(known).to_owned(),
    }
}

/// Record data as text, at most [`MAX_DATA_CHARS`] characters.
fn data(rdata: &RData) -> String {
    let text = match rdata {
        RData::A(a) => a.0.to_string(),
        RData::AAAA(aaaa) => aaaa.0.to_string(),
        RData::CNAME(target) => name(&target.0),
        RData::NS(target) => name(&target.0),
        RData::PTR(target) => name(&target.0),
        RData::ANAME(target) => name(&target.0),
        other => {
            // Some types have no text form and return fmt::Error (OPT): keep what was written.
            let mut out = Bounded(String::new());
            let _ = write!(out, "{other}");
            out.0
        }
    };
    match text.char_indices().nth(MAX_DATA_CHARS) {
        Some((cut, _)) => text.get(..cut).unwrap_or_default().to_owned(),
        None => text,
    }
}

/// A `fmt::Write` that stops the formatter once [`MAX_DATA_CHARS`] characters are in, so a
/// 64 KiB TXT record is not rendered whole to be cut afterwards.
struct Bounded(String);

impl std::fmt::Write for Bounded {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.push_str(s);
        // A char is at most 4 bytes: this many bytes hold at least MAX_DATA_CHARS characters.
        if self.0.len() >= 4 * MAX_DATA_CHARS {
            Err(std::fmt::Error)
        } else {
            Ok(())
        }
    }
}
