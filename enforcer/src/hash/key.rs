//! The identity of one version of a file: what the hash cache is keyed by and what tells a
//! rewritten, truncated or replaced executable from the one that was hashed.

use std::{
    fs::Metadata,
    os::unix::fs::MetadataExt as _,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// `(st_dev, st_ino, ctime, mtime, size)` of an open file (from `fstat`).
///
/// A write or truncate changes `ctime` (and `size` or `mtime`); a rename over the path or a
/// fresh copy is another inode. So two equal keys name the same content, with one exception:
/// a change within the same timestamp tick as the previous change of the file keeps `ctime`
/// (coarse timestamps). [`FileKey::is_settled`] tells when a key is old enough for that to be
/// impossible; only settled keys are cached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileKey {
    /// `st_dev` (userspace encoding).
    pub dev: u64,
    /// `st_ino`.
    pub ino: u64,
    /// `st_ctime`, seconds.
    pub ctime_sec: i64,
    /// `st_ctime_nsec`.
    pub ctime_nsec: u32,
    /// `st_mtime`, seconds.
    pub mtime_sec: i64,
    /// `st_mtime_nsec`.
    pub mtime_nsec: u32,
    /// `st_size`.
    pub size: u64,
}

impl FileKey {
    /// The key of a file from its metadata (`File::metadata` is an `fstat` of the open file).
    pub fn of(meta: &Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
            ctime_sec: meta.ctime(),
            ctime_nsec: u32::try_from(meta.ctime_nsec()).unwrap_or(0),
            mtime_sec: meta.mtime(),
            mtime_nsec: u32::try_from(meta.mtime_nsec()).unwrap_or(0),
            size: meta.size(),
        }
    }

    /// The change time as a duration since the epoch (`None` before 1970).
    fn ctime(&self) -> Option<Duration> {
        let sec = u64::try_from(self.ctime_sec).ok()?;
        Some(Duration::new(sec, self.ctime_nsec.min(999_999_999)))
    }

    /// Whether the file's last change is at least `margin` before `now`: a later change then
    /// gets a later `ctime` even with coarse timestamps, so the key cannot outlive the content
    /// it was taken with. (The idea of git's "racily clean" index entries.)
    pub fn is_settled(&self, now: SystemTime, margin: Duration) -> bool {
        let Ok(now) = now.duration_since(UNIX_EPOCH) else {
            return false;
        };
        self.ctime()
            .is_some_and(|ctime| ctime.saturating_add(margin) < now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ctime_sec: i64) -> FileKey {
        FileKey {
            dev: 1,
            ino: 2,
            ctime_sec,
            ctime_nsec: 0,
            mtime_sec: 0,
            mtime_nsec: 0,
            size: 3,
        }
    }

    #[test]
    fn only_keys_older_than_the_margin_are_settled() {
        let now = UNIX_EPOCH + Duration::from_secs(1000);
        let margin = Duration::from_secs(1);
        assert!(key(998).is_settled(now, margin));
        assert!(!key(999).is_settled(now, margin));
        assert!(!key(1000).is_settled(now, margin));
        assert!(!key(2000).is_settled(now, margin), "a ctime in the future");
        assert!(!key(-5).is_settled(now, margin));
    }
}
