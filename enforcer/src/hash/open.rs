//! Opening the file a process executed, for hashing: `/proc/<pid>/exe` (the file the kernel
//! actually mapped, immune to a swap of the path after the exec), or, when the process is
//! already gone, the exec path, but only when it is provably the same file the kernel executed.

use std::{fs::File, io::ErrorKind, path::Path};

use super::{error::Unavailable, key::FileKey};

/// Where the hashed bytes came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// `/proc/<pid>/exe` of the process.
    ProcExe,
    /// The exec path, checked against the kernel's identity of the executed file.
    Path,
}

impl Source {
    /// Name used in events.
    pub fn name(self) -> &'static str {
        match self {
            Source::ProcExe => "proc_exe",
            Source::Path => "path",
        }
    }
}

/// The identity of the executed file as the kernel reported it in the exec record
/// (`dev` already in the userspace encoding of `st_dev`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelIdentity {
    /// Device (`st_dev` encoding).
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Change time, seconds.
    pub ctime_sec: i64,
    /// Change time, nanoseconds.
    pub ctime_nsec: u32,
}

impl KernelIdentity {
    /// Whether `key` (an `fstat`) is this very version of the file.
    pub fn matches(&self, key: &FileKey) -> bool {
        self.dev == key.dev
            && self.ino == key.ino
            && self.ctime_sec == key.ctime_sec
            && self.ctime_nsec == key.ctime_nsec
    }
}

/// An open executable and its identity at open time.
#[derive(Debug)]
pub struct Opened {
    /// The file, read from offset 0.
    pub file: File,
    /// Its identity (fstat).
    pub key: FileKey,
    /// How it was found.
    pub source: Source,
}

fn open_with_key(path: &Path) -> std::io::Result<(File, FileKey)> {
    let file = File::open(path)?;
    let key = FileKey::of(&file.metadata()?);
    Ok((file, key))
}

/// Opens the executable of process `pid` under the procfs at `proc_root`; when the process is
/// gone, opens `exec_path` if it is absolute and the kernel's identity `kernel` matches it.
pub fn open_exe(
    proc_root: &Path,
    pid: u32,
    exec_path: &str,
    kernel: Option<&KernelIdentity>,
) -> Result<Opened, Unavailable> {
    match open_with_key(&proc_root.join(pid.to_string()).join("exe")) {
        Ok((file, key)) => {
            return Ok(Opened {
                file,
                key,
                source: Source::ProcExe,
            });
        }
        // ENOENT: the process (or its mm) is gone. Anything else is a real error.
        Err(e) if e.kind() != ErrorKind::NotFound => return Err(Unavailable::Read(e.kind())),
        Err(_) => {}
    }
    let Some(kernel) = kernel else {
        return Err(Unavailable::Gone("exited before its executable was opened"));
    };
    if !exec_path.starts_with('/') {
        return Err(Unavailable::Gone(
            "exited, and a relative exec path cannot be checked",
        ));
    }
    let (file, key) = open_with_key(Path::new(exec_path))
        .map_err(|_| Unavailable::Gone("exited, and its exec path no longer opens"))?;
    if !kernel.matches(&key) {
        return Err(Unavailable::Gone(
            "exited, and its exec path now names another file",
        ));
    }
    Ok(Opened {
        file,
        key,
        source: Source::Path,
    })
}
