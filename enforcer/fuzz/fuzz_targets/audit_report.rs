//! Fuzzes `enforcer report` with arbitrary bytes as an audit log: the reader takes any input,
//! the aggregator any record, and every format renders, without a panic (a log can be damaged,
//! or written by someone else).
#![no_main]

use enforcer::{audit::AuditReader, report::Aggregator};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut aggregator = Aggregator::new("fuzz.jsonl", None, None);
    let Ok(summary) = AuditReader::for_each(data, |record| aggregator.add(&record)) else {
        return;
    };
    aggregator.read_summary("fuzz.jsonl", summary);
    let report = aggregator.finish();
    let _ = enforcer::report::markdown::render(&report);
    let _ = enforcer::report::html::render(&report);
    let _ = serde_json::to_string(&report);
});
