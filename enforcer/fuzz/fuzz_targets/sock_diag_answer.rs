//! Fuzzes the reader of the kernel's answer to a `SOCK_DESTROY` request (the abort of a refused
//! TCP connection) with arbitrary bytes: any input is an acknowledgment or an error, never a
//! panic.
#![no_main]

use enforcer::actions::abort::read_answer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let seq = data.get(8..12).map_or(0, |b| {
        u32::from_ne_bytes([b[0], b[1], b[2], b[3]])
    });
    let _ = read_answer(data, seq);
    let _ = read_answer(data, seq.wrapping_add(1));
});
