//! The audit log: JSON lines, one record per line.
//!
//! Durability contract:
//! - every record is serialized in full and handed to the kernel with one `write` on an
//!   `O_APPEND` file, so a crash of the engine (even SIGKILL) loses at most the record being
//!   written and never interleaves two records;
//! - records that matter after a power loss (engine lifecycle, actions) are also `fdatasync`ed;
//! - when the file does not end with a newline at open (a torn tail from a crash, or a power
//!   loss), the writer starts with a newline so the next record is whole, and the reader skips
//!   and counts the torn line instead of failing.

pub mod reader;
pub mod record;
pub mod report;
pub mod tail;
pub mod writer;

pub use reader::{AuditReader, ReadSummary};
pub use record::{Action, BreakerSettings, BreakerTrip, EngineGap, PolicyReload, Record};
pub use report::{Outcome, Report};
pub use writer::AuditWriter;
