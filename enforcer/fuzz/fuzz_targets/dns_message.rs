//! Fuzzes the DNS message decoder with arbitrary bytes, both as a UDP payload and as a TCP
//! segment with its length prefix: any input must decode or be refused with an error, and every
//! decoded message must turn into event JSON, without a panic.
#![no_main]

use enforcer::dns::{parse, parse_tcp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for decoded in [parse(data), parse_tcp(data)] {
        if let Ok(msg) = decoded {
            assert!(msg.questions.len() <= enforcer::dns::MAX_QUESTIONS);
            assert!(msg.answers.len() <= enforcer::dns::MAX_ANSWERS);
            assert!(
                msg.answers
                    .iter()
                    .all(|a| a.data.chars().count() <= enforcer::dns::MAX_DATA_CHARS)
            );
            let _ = msg.to_json().to_string();
        }
    }
});
