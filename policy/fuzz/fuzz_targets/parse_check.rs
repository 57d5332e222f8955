//! Fuzz target: arbitrary text as a policy file through YAML parsing, checking and lowering.
//! Must never panic; diagnostics must render.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match enforcer_policy::load_str("fuzz.yaml", text) {
        Ok(policy) => {
            let _ = policy.lower();
            let _ = enforcer_policy::report::check_report(&policy);
        }
        Err(diagnostics) => {
            let _ = diagnostics.to_string();
            let _ = diagnostics.first_line();
        }
    }
});
