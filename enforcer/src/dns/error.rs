//! Why a DNS message was refused.

use std::fmt;

use hickory_proto::serialize::binary::DecodeError;

/// The part of a message a decoding error is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// The 12-byte header.
    Header,
    /// The question section.
    Question,
    /// The answer section.
    Answer,
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Section::Header => "header",
            Section::Question => "question",
            Section::Answer => "answer",
        })
    }
}

/// A DNS message that could not be decoded, one variant per failure class.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// The input is larger than any DNS message (65535 bytes; 65537 for TCP with its prefix).
    #[error("{len} bytes is more than a DNS message can hold")]
    TooLong {
        /// Length of the input.
        len: usize,
    },
    /// The input ends inside the header, a question or an answer record.
    #[error("the DNS message ends inside its {section} section")]
    Truncated {
        /// Where the bytes ran out.
        section: Section,
    },
    /// The header, a question or an answer record does not decode (bad label, bad pointer,
    /// record length that disagrees with its data, a record type that is not allowed there, ...).
    #[error("malformed DNS {section} section: {source}")]
    Malformed {
        /// Where decoding failed.
        section: Section,
        /// hickory-proto's reason.
        #[source]
        source: DecodeError,
    },
    /// A TCP segment shorter than the 2-byte length prefix.
    #[error("{len} bytes cannot hold the 2-byte TCP length prefix")]
    TcpPrefixMissing {
        /// Length of the input.
        len: usize,
    },
    /// The TCP length prefix declares more bytes than follow it: the message was cut short.
    #[error("the TCP length prefix declares {declared} bytes but {available} follow")]
    TcpLengthMismatch {
        /// Length the prefix declares.
        declared: usize,
        /// Bytes after the prefix.
        available: usize,
    },
}

impl DnsError {
    /// Classifies hickory's error for `section`: running out of bytes is [`DnsError::Truncated`],
    /// anything else [`DnsError::Malformed`].
    pub(super) fn decode(section: Section, source: DecodeError) -> Self {
        match source {
            DecodeError::InsufficientBytes => DnsError::Truncated { section },
            source => DnsError::Malformed { section, source },
        }
    }
}
