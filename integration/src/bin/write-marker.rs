//! Test payload: writes its arguments to the marker file named by its first argument.
//! A test that expects this binary to be killed before it runs user code asserts that the
//! marker file does not exist afterwards.

use std::io::Write as _;

fn main() -> std::process::ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(marker) = args.next() else {
        eprintln!("usage: write-marker MARKER_FILE [ARGS...]");
        return std::process::ExitCode::from(2);
    };
    let rest: Vec<String> = args.map(|a| a.to_string_lossy().into_owned()).collect();
    match std::fs::File::create(&marker).and_then(|mut f| writeln!(f, "ran {}", rest.join(" "))) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!(
                "write-marker: {}: {err}",
                std::path::Path::new(&marker).display()
            );
            std::process::ExitCode::from(1)
        }
    }
}
