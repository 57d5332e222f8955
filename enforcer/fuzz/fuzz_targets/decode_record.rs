//! Fuzzes the ring-buffer decoder and the event builders with arbitrary bytes: any input must
//! decode or be refused with an error, and every decoded record must turn into event JSON,
//! without a panic.
#![no_main]

use enforcer::pipeline::{decode::decode, event_json::event_json};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = decode(data) {
        let _ = event_json(&record, "t");
    }
});
