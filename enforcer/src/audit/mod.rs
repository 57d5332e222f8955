//! The audit log: JSON lines, one record per line.
//!
//! Durability contract:
//! - every record is serialized in full and handed to the kernel with one `write` on an
//!   `O_APPEND` file, so a crash of the engine (even SIGKILL) loses at most the record being
//!   written and never interleaves two records;
//! - records that matter after a power loss (engine lifecycle, actions) are also `fdatasync`ed;
//! - a write that fails part-way (a full disk) is cut off the file again, so a batch of
//!   records is in the log whole or not at all;
//! - when the file does not end with a newline at open (a torn tail from a crash, or a power
//!   loss, or a failed write that could not be cut off), the writer starts with a newline so
//!   the next record is whole, and the reader skips and counts the torn line instead of
//!   failing;
//! - a log that cannot be written (disk full, I/O error) never stops the engine
//!   ([`guarded::GuardedLog`]): event records are counted as lost, the others held in memory
//!   (bounded), and an `audit_lost` record says what was lost once the log can be written again;
//! - a log file deleted or moved away while the engine runs is noticed within a second and
//!   the path opened again, starting with an `audit_reopened` record;
//! - with a size limit ([`writer::Rotation`]), the log is renamed `PATH.1` (older ones shift up
//!   to `PATH.<keep>`) and a new one started, between whole lines.

pub mod guarded;
pub mod reader;
pub mod record;
pub mod report;
pub mod tail;
#[cfg(test)]
pub(crate) mod test_records;
mod timestamp;
pub mod writer;

pub use reader::{AuditReader, ReadSummary};
pub use record::{
    Action, AuditLost, AuditReopened, BreakerSettings, BreakerTrip, ConnectionAbort, EngineGap,
    EventsLogFailing, EventsLogRestored, PolicyReload, Record,
};
pub use report::{Outcome, Report};
pub use writer::{AuditWriter, Rotation};
