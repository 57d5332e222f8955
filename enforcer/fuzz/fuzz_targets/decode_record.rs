//! Fuzzes the ring-buffer decoder and the event builders with arbitrary bytes: any input must
//! decode or be refused with an error, and every decoded record must turn into event JSON,
//! without a panic.
#![no_main]

use enforcer::pipeline::{
    decode::{Decoded, decode},
    exec_event::exec_event,
    payload_event::payload_event,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match decode(data) {
        Ok(Decoded::Exec(rec)) => {
            let _ = exec_event(&rec, "t");
        }
        Ok(Decoded::Payload(rec)) => {
            let _ = payload_event(&rec, "t");
        }
        Err(_) => {}
    }
});
