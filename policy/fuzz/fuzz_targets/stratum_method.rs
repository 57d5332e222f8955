//! Fuzz target: the stratum fingerprint of a first payload (`stratum::method`) on arbitrary
//! bytes. It must never panic, and a method it reports must come from a `"method"` key of the
//! payload's first line (never invented, never from a later line).
#![no_main]

use enforcer_policy::stratum;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let payload = String::from_utf8_lossy(data);
    if let Some(method) = stratum::method(&payload) {
        let first = payload.split('\n').next().unwrap_or("");
        // A JSON escape can spell the key (`"meth\u006fd"`); otherwise it is there verbatim.
        assert!(
            first.contains("\"method\"") || first.contains('\\'),
            "{payload:?} -> {method:?}"
        );
    }
});
