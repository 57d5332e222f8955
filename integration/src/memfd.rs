//! Fileless executables for the F11 fixtures: an anonymous memory file holding a program.

use std::{
    fs::File,
    io::Write as _,
    os::fd::{AsRawFd as _, FromRawFd as _},
};

/// A memfd named `fake-miner` holding `bytes`, inherited by children (no close-on-exec).
/// Executing `/proc/self/fd/N` of it ([`exec_path`]) is what `fexecve` does.
pub fn memfd_with(bytes: &[u8]) -> std::io::Result<File> {
    // SAFETY: memfd_create takes a NUL-terminated name and flags and returns a new fd or -1.
    let fd = unsafe { libc::memfd_create(c"fake-miner".as_ptr(), 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor that nothing else owns.
    let mut file = unsafe { File::from_raw_fd(fd) };
    file.write_all(bytes)?;
    Ok(file)
}

/// The path a child process executes the memfd by.
pub fn exec_path(memfd: &File) -> String {
    format!("/proc/self/fd/{}", memfd.as_raw_fd())
}
