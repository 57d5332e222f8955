//! Guest harness: runs INSIDE the throw-away VM (started by `/init`), runs the named test cases
//! and prints one `VMTEST <case> PASS|FAIL|SKIP [reason]` line per case, then
//! `VMTEST-DONE <passed> <failed>` (the protocol is in `enforcer_integration::vm::protocol`).
//!
//! Usage: `vm-guest [CASE...]` runs the given cases (all when none); `vm-guest --list` prints
//! the case names, one a line (the host runner uses it to know which cases to expect).

mod audit;
mod cases;
mod diag;
mod engine;
mod payload;

use std::process::ExitCode;

use enforcer_integration::vm::protocol::{self, Verdict};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        for case in cases::ALL {
            println!("{}", case.name);
        }
        return ExitCode::SUCCESS;
    }
    let (mut passed, mut failed) = (0u32, 0u32);
    let mut report = |name: &str, verdict: &Verdict| {
        match verdict {
            Verdict::Pass => passed += 1,
            Verdict::Fail(_) => failed += 1,
            Verdict::Skip(_) => {}
        }
        println!("{}", protocol::format_result(name, verdict));
    };
    for name in args
        .iter()
        .filter(|a| !cases::ALL.iter().any(|c| &c.name == a))
    {
        report(name, &Verdict::Fail("unknown case".to_owned()));
    }
    // A boot runs the cases of its tier: `signal_*` ones without BPF LSM, the others with it.
    let bpf_lsm = cases::bpf_lsm_active();
    for case in cases::ALL.iter().filter(|c| {
        (args.is_empty() || args.iter().any(|a| a == c.name))
            && c.name.starts_with("signal_") != bpf_lsm
    }) {
        let verdict = cases::run(case);
        report(case.name, &verdict);
    }
    println!("{}", protocol::format_done(passed, failed));
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
