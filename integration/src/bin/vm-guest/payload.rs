//! The test payload `write-marker MARKER x`: runs it and checks whether it ran (the marker
//! holds `ran x`) or was denied at exec (EPERM, no marker).

use std::path::Path;
use std::process::{Command, Stdio};

use enforcer_integration::vm::layout;

/// What a successful run writes into the marker.
const MARKER_TEXT: &str = "ran x\n";

/// Runs the payload and expects it to run to completion and write `marker`.
pub(crate) fn expect_allowed(marker: &str, when: &str) -> Result<(), String> {
    let status = Command::new(layout::WRITE_MARKER)
        .arg(marker)
        .arg("x")
        .stdin(Stdio::null())
        .status()
        .map_err(|e| format!("{when}: exec of {} failed: {e}", layout::WRITE_MARKER))?;
    if !status.success() {
        return Err(format!(
            "{when}: {} exited with {status}",
            layout::WRITE_MARKER
        ));
    }
    match std::fs::read_to_string(marker) {
        Ok(text) if text == MARKER_TEXT => Ok(()),
        Ok(text) => Err(format!(
            "{when}: marker {marker} holds {text:?}, want {MARKER_TEXT:?}"
        )),
        Err(e) => Err(format!("{when}: marker {marker} not written: {e}")),
    }
}

/// Runs the payload and expects the exec itself to fail with EPERM and no marker to appear.
pub(crate) fn expect_denied(marker: &str, when: &str) -> Result<(), String> {
    expect_denied_as(layout::WRITE_MARKER, marker, when)
}

/// [`expect_denied`] for a copy of the payload at `program`.
pub(crate) fn expect_denied_as(program: &str, marker: &str, when: &str) -> Result<(), String> {
    let result = Command::new(program)
        .arg(marker)
        .arg("x")
        .stdin(Stdio::null())
        .status();
    match result {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {}
        Err(e) => {
            return Err(format!(
                "{when}: exec failed with {e} (errno {:?}), want EPERM",
                e.raw_os_error()
            ));
        }
        Ok(status) => {
            return Err(format!(
                "{when}: exec of {program} was allowed ({status}), want EPERM"
            ));
        }
    }
    if Path::new(marker).exists() {
        return Err(format!(
            "{when}: marker {marker} exists although exec was denied"
        ));
    }
    Ok(())
}
