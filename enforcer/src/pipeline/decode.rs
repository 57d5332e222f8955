//! Checked decoding of ring-buffer records: lengths first, `read_unaligned`, kinds through
//! `TryFrom`. A short record or an unknown kind is an error to count, never a panic.

use enforcer_common::{
    event::{EventHeader, EventKind, ExecRecord, PayloadRecord, UnknownKind},
    file::FileRecord,
    guard::TamperRecord,
    kernel_event::{KernelRecord, KernelSyscall},
    net::{DnsRecord, DnsResponseRecord, SocketRecord},
    process::{ExitRecord, ForkRecord},
};

/// Why a record could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer bytes than a header.
    #[error("record of {0} bytes is shorter than a header")]
    ShortHeader(usize),
    /// The header's kind is unknown.
    #[error("unknown record kind {0}")]
    UnknownKind(u32),
    /// The record is shorter than its kind requires, or its size field disagrees.
    #[error("record of kind {kind:?} has {got} bytes, expected {want}")]
    BadSize {
        /// The kind.
        kind: EventKind,
        /// Bytes present.
        got: usize,
        /// Bytes the kind needs.
        want: usize,
    },
    /// A kernel-activity record names an unknown syscall.
    #[error("kernel record with unknown syscall {0}")]
    UnknownSyscall(u32),
}

/// A decoded record. The records are held inline, not boxed: a record is decoded once and
/// handled by reference, and a boxed exec record (1,784 bytes) was a malloc over 1 KiB per
/// exec, which makes glibc consolidate its fast bins every time (7% of the daemon's CPU in the
/// exec storm).
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// An exec.
    Exec(ExecRecord),
    /// A classified socket payload.
    Payload(PayloadRecord),
    /// A DNS query.
    Dns(DnsRecord),
    /// A DNS response, as received.
    DnsResponse(DnsResponseRecord),
    /// A connect, bind or accepted connection (`header.kind` says which).
    Socket(SocketRecord),
    /// A new process.
    Fork(ForkRecord),
    /// A process ended.
    Exit(ExitRecord),
    /// A file event (open, unlink, rename, chmod, chown).
    File(FileRecord),
    /// A kernel-activity event (module, bpf, ptrace, kexec, credentials, namespaces, memfd).
    Kernel(KernelRecord),
    /// An attempt on the engine a self-protection guard refused.
    Tamper(TamperRecord),
}

/// Decodes one ring-buffer record.
pub fn decode(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    let header: EventHeader = read(bytes).ok_or(DecodeError::ShortHeader(bytes.len()))?;
    let kind =
        EventKind::try_from(header.kind).map_err(|UnknownKind(k)| DecodeError::UnknownKind(k))?;
    match kind {
        EventKind::Exec => Ok(Decoded::Exec(sized(kind, &header, bytes)?)),
        EventKind::Payload => Ok(Decoded::Payload(sized(kind, &header, bytes)?)),
        EventKind::Dns => Ok(Decoded::Dns(sized(kind, &header, bytes)?)),
        EventKind::DnsResponse => Ok(Decoded::DnsResponse(sized(kind, &header, bytes)?)),
        EventKind::Connect | EventKind::Bind | EventKind::Accept => {
            Ok(Decoded::Socket(sized(kind, &header, bytes)?))
        }
        EventKind::Fork => Ok(Decoded::Fork(sized(kind, &header, bytes)?)),
        EventKind::Exit => Ok(Decoded::Exit(sized(kind, &header, bytes)?)),
        EventKind::File => Ok(Decoded::File(sized(kind, &header, bytes)?)),
        EventKind::Kernel => {
            let rec: KernelRecord = sized(kind, &header, bytes)?;
            KernelSyscall::try_from(rec.syscall)
                .map_err(|UnknownKind(s)| DecodeError::UnknownSyscall(s))?;
            Ok(Decoded::Kernel(rec))
        }
        EventKind::Tamper => Ok(Decoded::Tamper(sized(kind, &header, bytes)?)),
    }
}

/// Reads the fixed-size record `T` of `kind`, checking the header's size and the bytes present.
fn sized<T: Copy>(kind: EventKind, header: &EventHeader, bytes: &[u8]) -> Result<T, DecodeError> {
    let want = size_of::<T>();
    if header.size as usize != want {
        return Err(DecodeError::BadSize {
            kind,
            got: header.size as usize,
            want,
        });
    }
    read(bytes).ok_or(DecodeError::BadSize {
        kind,
        got: bytes.len(),
        want,
    })
}

/// Reads a `T` from the start of `bytes` when there are enough of them.
fn read<T: Copy>(bytes: &[u8]) -> Option<T> {
    if bytes.len() < size_of::<T>() {
        return None;
    }
    // SAFETY: the length check above guarantees `size_of::<T>()` readable bytes; the read is
    // unaligned-safe, and T is only instantiated with the #[repr(C)] wire structs of
    // enforcer-common, made of integers and byte arrays, for which every bit pattern is valid.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

/// Raw bytes of a wire struct (tests and fuzzing build records with it).
pub fn as_bytes<T: Copy>(value: &T) -> &[u8] {
    // SAFETY: `value` is a valid reference to `size_of::<T>()` initialized bytes; wire structs
    // have explicit padding fields, so no byte is uninitialized.
    unsafe { std::slice::from_raw_parts((value as *const T).cast::<u8>(), size_of::<T>()) }
}

/// A header for tests: process 10 (parent 1, uid/gid 1000, cgroup 7), a record of `T`.
#[cfg(test)]
#[allow(clippy::cast_possible_truncation)]
pub(crate) fn test_header<T>(kind: EventKind, hook: enforcer_common::event::Hook) -> EventHeader {
    EventHeader {
        kind: kind as u32,
        size: size_of::<T>() as u32,
        timestamp_ns: 42,
        pid: 10,
        tgid: 10,
        ppid: 1,
        uid: 1000,
        gid: 1000,
        outcome: 0,
        cgroup_id: 7,
        rule_index: 0,
        generation: 0,
        hook: hook as u32,
        _pad: 0,
    }
}

/// A fork record for tests: process 10 (see [`test_header`]) started `child` at
/// `child_start_ns`.
#[cfg(test)]
pub(crate) fn test_fork_record(
    child: u32,
    child_start_ns: u64,
) -> enforcer_common::process::ForkRecord {
    use enforcer_common::{event::Hook, process::ForkRecord};
    ForkRecord {
        header: test_header::<ForkRecord>(EventKind::Fork, Hook::TpSchedProcessFork),
        child_tgid: child,
        _pad: 0,
        child_start_ns,
        comm: [0; 16],
    }
}

/// An exit record for tests: process 10 (see [`test_header`]), started at `start_ns`, exited
/// with wait status `exit_code`.
#[cfg(test)]
pub(crate) fn test_exit_record(
    exit_code: u32,
    start_ns: u64,
) -> enforcer_common::process::ExitRecord {
    use enforcer_common::{event::Hook, process::ExitRecord};
    ExitRecord {
        header: test_header::<ExitRecord>(EventKind::Exit, Hook::TpSchedProcessExit),
        exit_code,
        _pad: 0,
        start_ns,
        comm: [0; 16],
    }
}

/// A valid exec record for tests: `/usr/bin/true -x yz`.
#[cfg(test)]
#[allow(clippy::cast_possible_truncation)]
pub(crate) fn test_exec_record() -> ExecRecord {
    use enforcer_common::{
        event::{ARGS_LEN, COMM_LEN, Hook},
        plan::{NAME_LEN, PATH_LEN},
    };
    let mut rec = ExecRecord {
        header: test_header::<ExecRecord>(EventKind::Exec, Hook::TpSchedProcessExec),
        flags: 0,
        name_len: 4,
        path_len: 13,
        args_len: 11,
        name: [0; NAME_LEN],
        path: [0; PATH_LEN],
        args: [0; ARGS_LEN],
        comm: [0; COMM_LEN],
        file: enforcer_common::plan::InodeKey::default(),
        sha256: [0; enforcer_common::plan::SHA256_LEN],
        euid: 0,
        interp_len: 0,
        cap_effective: 0,
        cap_permitted: 0,
        env_len: 0,
        cwd_len: 0,
        interp: [0; PATH_LEN],
        env: [0; enforcer_common::event::ENV_LEN],
        cwd: [0; PATH_LEN],
    };
    rec.name[..4].copy_from_slice(b"true");
    rec.path[..13].copy_from_slice(b"/usr/bin/true");
    rec.args[..11].copy_from_slice(b"true\0-x\0yz\0");
    rec.comm[..4].copy_from_slice(b"true");
    rec
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[test]
    fn exec_round_trips() {
        let rec = test_exec_record();
        assert_eq!(decode(as_bytes(&rec)), Ok(Decoded::Exec(rec)));
        let mut with_identity = rec;
        with_identity.file = enforcer_common::plan::InodeKey {
            ino: u64::MAX - 1,
            ctime_sec: -2,
            ctime_nsec: 999_999_999,
            dev: (259 << 20) | 3,
        };
        assert_eq!(
            decode(as_bytes(&with_identity)),
            Ok(Decoded::Exec(with_identity))
        );
    }

    #[test]
    fn short_and_unknown_records_are_errors() {
        let rec = test_exec_record();
        let bytes = as_bytes(&rec);
        assert_eq!(decode(&bytes[..10]), Err(DecodeError::ShortHeader(10)));
        assert!(matches!(
            decode(&bytes[..100]),
            Err(DecodeError::BadSize { got: 100, .. })
        ));
        let mut other = rec;
        other.header.kind = 99;
        assert_eq!(decode(as_bytes(&other)), Err(DecodeError::UnknownKind(99)));
        let mut lying = rec;
        lying.header.size = 12;
        assert!(matches!(
            decode(as_bytes(&lying)),
            Err(DecodeError::BadSize { got: 12, .. })
        ));
    }

    /// A kernel record for tests: `finit_module` of `msr.ko.zst` with `allow_writes=on`.
    pub(crate) fn test_kernel_record() -> KernelRecord {
        use enforcer_common::{event::Hook, kernel_event::*};
        let mut rec = KernelRecord {
            header: test_header::<KernelRecord>(EventKind::Kernel, Hook::TpSysEnterKernel),
            syscall: KernelSyscall::FinitModule as u32,
            flags: 0,
            name_len: 10,
            data_len: 15,
            args: [3, 0, 0],
            old: CredIds::default(),
            name: [0; KERNEL_NAME_LEN],
            data: [0; KERNEL_DATA_LEN],
            comm: [0; enforcer_common::event::COMM_LEN],
        };
        rec.name[..10].copy_from_slice(b"msr.ko.zst");
        rec.data[..15].copy_from_slice(b"allow_writes=on");
        rec.comm[..8].copy_from_slice(b"modprobe");
        rec
    }

    #[test]
    fn kernel_round_trips_and_checks_its_syscall() {
        let rec = test_kernel_record();
        let bytes = as_bytes(&rec);
        assert_eq!(decode(bytes), Ok(Decoded::Kernel(rec)));
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_err());
        }
        let mut unknown = rec;
        unknown.syscall = 999;
        assert_eq!(
            decode(as_bytes(&unknown)),
            Err(DecodeError::UnknownSyscall(999))
        );
        unknown.syscall = 0;
        assert_eq!(
            decode(as_bytes(&unknown)),
            Err(DecodeError::UnknownSyscall(0))
        );
    }

    #[test]
    fn every_prefix_decodes_or_errors_without_panic() {
        let rec = test_exec_record();
        let bytes = as_bytes(&rec);
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_err());
        }
    }
}

#[cfg(test)]
#[path = "fuzz_seeds.rs"]
mod fuzz_seeds;
