//! The result of a system call that moves data (`write`, `send`, `sendmmsg`, ...), read the way
//! every fixture loop needs it: retry on EINTR, fail on an error or on no progress at all.

/// What a data-moving call returned: `Ok(Some(n))` for progress, `Ok(None)` when it was
/// interrupted (call again), `Err` for an error or for 0 (`nothing` says what did not move).
pub fn progress(ret: isize, nothing: &str) -> std::io::Result<Option<usize>> {
    if ret < 0 {
        let err = std::io::Error::last_os_error();
        if err.kind() == std::io::ErrorKind::Interrupted {
            return Ok(None);
        }
        return Err(err);
    }
    match usize::try_from(ret) {
        Ok(0) | Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::WriteZero,
            nothing.to_owned(),
        )),
        Ok(n) => Ok(Some(n)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn progress_zero_and_errors() {
        assert_eq!(progress(5, "x").unwrap(), Some(5));
        assert_eq!(progress(0, "no bytes").unwrap_err().to_string(), "no bytes");
        // SAFETY: setting errno of this thread is always allowed.
        unsafe { *libc::__errno_location() = libc::EINTR };
        assert_eq!(progress(-1, "x").unwrap(), None);
        // SAFETY: as above.
        unsafe { *libc::__errno_location() = libc::EBADF };
        assert_eq!(
            progress(-1, "x").unwrap_err().raw_os_error(),
            Some(libc::EBADF)
        );
    }
}
