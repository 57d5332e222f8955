//! Loads a policy and prints the check report (development helper):
//! `cargo run -p enforcer-policy --example check -- policy/default`.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: check PATH");
        return ExitCode::from(2);
    };
    match enforcer_policy::load(std::path::Path::new(&path)) {
        Ok(p) => {
            print!("{}", enforcer_policy::report::check_report(&p));
            ExitCode::SUCCESS
        }
        Err(d) => {
            eprintln!("{d}");
            ExitCode::FAILURE
        }
    }
}
