//! Tests that act on the real host (kills, socket aborts) run as root: elsewhere they skip
//! loudly, or fail when `ENFORCER_REQUIRE_HOST=1` says the host must run them.
#![allow(clippy::panic)]

/// Whether the host allows the test (root); prints why not, or panics when the host is
/// required.
pub(crate) fn host_or_skip(test: &str, needs: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var("ENFORCER_REQUIRE_HOST").as_deref() == Ok("1") {
        panic!("{test} needs {needs}; ENFORCER_REQUIRE_HOST=1 forbids skipping");
    }
    eprintln!("SKIPPED {test}: needs {needs}");
    false
}
