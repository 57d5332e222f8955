//! Keys and values of the kernel plan maps: what the policy's `lower()` step becomes once the
//! loader writes it into the kernel.

/// Longest executable basename the kernel matches, including the terminating NUL padding.
/// A longer basename is flagged truncated and never matched in the kernel.
pub const NAME_LEN: usize = 64;
/// Longest executable path the kernel matches (NUL padded). Longer paths are flagged truncated.
pub const PATH_LEN: usize = 256;

/// Longest JSON-RPC method the kernel matches in a first payload (NUL padded key size).
pub const METHOD_LEN: usize = 32;

use crate::name_filter::NameFilter;

/// Key of [`crate::maps::PAYLOAD_METHOD_PLAN`]: a JSON-RPC method name, NUL padded.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MethodKey(pub [u8; METHOD_LEN]);

/// Key of [`crate::maps::EXEC_NAME_PLAN`]: a basename, NUL padded to [`NAME_LEN`] bytes.
/// 8-byte aligned so kernel code zeroes and copies it with word stores, not a memset call.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NameKey(pub [u8; NAME_LEN]);

/// Key of [`crate::maps::EXEC_PATH_PLAN`]: an absolute path, NUL padded to [`PATH_LEN`] bytes.
/// 8-byte aligned, as [`NameKey`].
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PathKey(pub [u8; PATH_LEN]);

/// Longest URL scheme (the bytes before `://`) the kernel finds in exec arguments.
pub const SCHEME_LEN: usize = 16;

/// Key of [`crate::maps::EXEC_SCHEME_PLAN`]: the bytes of a URL scheme before `://`,
/// right-aligned in [`SCHEME_LEN`] bytes with leading NULs (`stratum+tcp` is five NULs, then
/// the eleven bytes). The kernel builds it from the bytes that precede a `://` in an
/// argument, one length after the other, so it finds a scheme that ends right there whatever
/// precedes it (`--url=stratum+tcp://`).
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchemeKey(pub [u8; SCHEME_LEN]);

impl SchemeKey {
    /// The key of `scheme` (without `://`); `None` when it is empty, longer than
    /// [`SCHEME_LEN`] or holds a NUL (the kernel stops at a NUL: such a scheme never matches).
    pub fn new(scheme: &[u8]) -> Option<Self> {
        if scheme.is_empty() || scheme.len() > SCHEME_LEN || scheme.contains(&0) {
            return None;
        }
        let mut key = [0u8; SCHEME_LEN];
        key[SCHEME_LEN - scheme.len()..].copy_from_slice(scheme);
        Some(Self(key))
    }
}

/// Bytes of a [`FlagKey`]: the longest flag the kernel finds is one byte shorter.
pub const FLAG_LEN: usize = 32;

/// Key of [`crate::maps::EXEC_FLAG_PLAN`]: a long command-line flag (`--donate-level`), NUL
/// padded to [`FLAG_LEN`] bytes. The kernel builds it from an argument's bytes up to its
/// first `=` (or its end), so `--donate-level=1` and `--donate-level` give the same key.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlagKey(pub [u8; FLAG_LEN]);

impl FlagKey {
    /// The key of `flag`; `None` unless it is `--` followed by 1 to `FLAG_LEN - 3` bytes, none
    /// of them a NUL or `=` (the kernel's key ends at the first of those).
    pub fn new(flag: &[u8]) -> Option<Self> {
        let ok = flag.len() > 2
            && flag.len() < FLAG_LEN
            && flag.starts_with(b"--")
            && !flag.contains(&0)
            && !flag.contains(&b'=');
        if !ok {
            return None;
        }
        let mut key = [0u8; FLAG_LEN];
        key[..flag.len()].copy_from_slice(flag);
        Some(Self(key))
    }
}

/// Key of [`crate::maps::EXEC_INODE_PLAN`] and the executed file's identity in an
/// [`crate::event::ExecRecord`]: one version of one file as the kernel sees it
/// (`file->f_inode`). A write or truncate changes the change time, a rename over the path or a
/// fresh copy is another inode, so a key never outlives the content it was written for.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct InodeKey {
    /// `inode->i_ino`.
    pub ino: u64,
    /// Change time, seconds (`i_ctime_sec`, or `i_ctime.tv_sec` / `__i_ctime.tv_sec` before 6.11).
    pub ctime_sec: i64,
    /// Change time, nanoseconds (without the multigrain "queried" flag, bit 31).
    pub ctime_nsec: u32,
    /// `inode->i_sb->s_dev`, in the kernel's encoding (major << 20 | minor).
    pub dev: u32,
}

impl InodeKey {
    /// The userspace `st_dev` of [`InodeKey::dev`] (glibc's `makedev` of its major and minor).
    pub fn user_dev(&self) -> u64 {
        let major = u64::from(self.dev >> 20);
        let minor = u64::from(self.dev & 0xf_ffff);
        ((major & 0xffff_f000) << 32)
            | ((major & 0xfff) << 8)
            | ((minor & 0xffff_ff00) << 12)
            | (minor & 0xff)
    }
}

/// Key of [`crate::maps::NEVER_KILL`]: an executable by inode and device (kernel encoding, as
/// in [`InodeKey::dev`]), whatever its change time.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FileId {
    /// `inode->i_ino`.
    pub ino: u64,
    /// `inode->i_sb->s_dev` (major << 20 | minor).
    pub dev: u32,
    /// Explicit padding (zero).
    pub _pad: u32,
}

impl FileId {
    /// The key of a file from its `st_dev` and `st_ino` (`st_dev` in glibc's encoding).
    pub fn from_stat(st_dev: u64, st_ino: u64) -> Self {
        let major = ((st_dev >> 8) & 0xfff) | ((st_dev >> 32) & 0xffff_f000);
        let minor = (st_dev & 0xff) | ((st_dev >> 12) & 0xffff_ff00);
        // The kernel's dev_t holds a 12-bit major and a 20-bit minor.
        let major = u32::try_from(major & 0xfff).unwrap_or(0);
        let minor = u32::try_from(minor & 0xf_ffff).unwrap_or(0);
        Self {
            ino: st_ino,
            dev: (major << 20) | minor,
            _pad: 0,
        }
    }
}

/// Builds a NUL-padded key from `value`; `None` when it does not fit with one NUL to spare or
/// holds a NUL itself (such a value can never equal a kernel string).
pub fn padded<const N: usize>(value: &[u8]) -> Option<[u8; N]> {
    if value.len() >= N || value.contains(&0) {
        return None;
    }
    let mut key = [0u8; N];
    key[..value.len()].copy_from_slice(value);
    Some(key)
}

/// Action bit: deny the operation (LSM tier; the signal tier cannot deny and kills instead).
pub const ACTION_DENY: u32 = 1;
/// Action bit: kill the process with SIGKILL.
pub const ACTION_KILL: u32 = 2;

/// Plan flag: the rule runs in monitor mode (dry run) even when the engine blocks.
pub const PLAN_FLAG_MONITOR: u32 = 1;
/// Plan flag: some rule is about the values this entry stands for (possibly only alerting):
/// report the event even when the kernel filters the family (see [`PlanSettings`]).
pub const PLAN_FLAG_RECORD: u32 = 2;

/// [`PlanSettings::record`] bit: report only the connects whose plan entry has
/// [`PLAN_FLAG_RECORD`] (in-kernel approvers); every other connect stays in the kernel, counted.
pub const RECORD_CONNECT_MATCHED_ONLY: u32 = 1;
/// [`PlanSettings::record`] bit: some enabled rule is about binds; without it the bind
/// tracepoint reports nothing.
pub const RECORD_BINDS: u32 = 2;
/// [`PlanSettings::record`] bit: some enabled rule is about accepted connections.
pub const RECORD_ACCEPTS: u32 = 4;
/// [`PlanSettings::record`] bit: some enabled rule is about file events; without it the file
/// hooks return at once.
pub const RECORD_FILES: u32 = 8;
/// [`PlanSettings::record`] bit: some rule watches read-only opens (`FileOp::OpenRead`
/// entries); without it a read-only open leaves the open hooks at the flags check.
pub const RECORD_FILE_READS: u32 = 16;
/// [`PlanSettings::record`] bit: some file rule cannot be reduced to watched paths, so the
/// kernel reports every file event that passes the cheap checks (no prefix filtering).
pub const RECORD_FILE_ALL: u32 = 32;
/// [`PlanSettings::record`] bit: the watched read paths are all device files under `/dev/`:
/// a read-only open is matched only when it opened a character or block device (one inode
/// read decides for every ordinary file).
pub const RECORD_FILE_READ_DEVICES: u32 = 64;
/// [`PlanSettings::record`] bit: `FILE_WATCH_DIRS` lists every directory on the way to a
/// watched path (no watched path is `/` itself), so the open hooks walk an open's path from
/// its first component down and drop it at the first leading part not listed, or at a file
/// not listed, before building the path string (`file::dirs_verdict`).
pub const RECORD_FILE_DIRS: u32 = 128;

/// [`PlanSettings::record`] bit: some enabled rule is about fork or exit events, so their
/// records (`LIFECYCLE` ring buffer) wake the daemon as soon as it waits, like every record of
/// `EVENTS`. Without it they are submitted with `BPF_RB_NO_WAKEUP`: the daemon reads them
/// with the next `EVENTS` record it is woken for (merged by timestamp, so a process's fork is
/// handled before its exec), on its lifecycle timer, or when [`LIFECYCLE_WAKE_BYTES`] are
/// pending. A wake-up cost the fork and exit programs 6-10 us each on the 6.18 host.
pub const RECORD_LIFECYCLE_WAKE: u32 = 1 << 16;

/// Size of the `EVENTS` ring buffer: about 550 exec records between two drains.
pub const EVENTS_RING_BYTES: u32 = 2 << 20;

/// Pending bytes in `EVENTS` from which a record wakes the daemon (`BPF_RB_FORCE_WAKEUP`)
/// while it polls the ring (`EVENTS_POLLED` is 1); below it, records are submitted with
/// `BPF_RB_NO_WAKEUP` and read on the daemon's next poll, at most a millisecond later. In an
/// exec storm, the adaptive wake-up cost `sched_process_exec` about 16 us per exec on the
/// 6.18 host (21-23 us with it, 5 us without).
pub const EVENTS_WAKE_BYTES: u64 = (EVENTS_RING_BYTES as u64) / 4;

/// Size of the `LIFECYCLE` ring buffer.
pub const LIFECYCLE_RING_BYTES: u32 = 1 << 20;

/// Pending bytes in `LIFECYCLE` from which a fork or exit record wakes the daemon
/// (`BPF_RB_FORCE_WAKEUP`) even without [`RECORD_LIFECYCLE_WAKE`], so a burst of forks
/// with no other record does not fill the ring before the timer drains it.
pub const LIFECYCLE_WAKE_BYTES: u64 = (LIFECYCLE_RING_BYTES as u64) / 4;

/// `bpf_ringbuf_submit` flag: do not wake the consumer (kernel UAPI `BPF_RB_NO_WAKEUP`).
pub const BPF_RB_NO_WAKEUP: u64 = 1;
/// `bpf_ringbuf_submit` flag: wake the consumer (kernel UAPI `BPF_RB_FORCE_WAKEUP`).
pub const BPF_RB_FORCE_WAKEUP: u64 = 2;
/// `bpf_ringbuf_query` flag: bytes not consumed yet (kernel UAPI `BPF_RB_AVAIL_DATA`).
pub const BPF_RB_AVAIL_DATA: u64 = 0;

/// Plan flag of an `EXEC_INODE_PLAN` entry the kernel wrote after hashing the file in the
/// lsm tier (`bpf_ima_file_hash`) and finding no listed SHA-256: the file version is clean
/// for the hash plan of [`PlanSettings::hash_generation`] (`actions == 0`; never a match).
pub const PLAN_FLAG_HASH_CLEAN: u32 = 4;

/// [`PlanSettings::exec`] bit: the hash plan (`EXEC_HASH_PLAN`) has entries: the lsm tier's
/// sleepable `bprm_creds_from_file` program hashes executables it has not judged yet.
pub const EXEC_HASH_IN_KERNEL: u32 = 1;
/// [`PlanSettings::exec`] bit: the exec plan (names, paths, file identities or hashes) has
/// entries: the lsm tier's `mmap_file` / `file_mprotect` programs check files mapped
/// executable (a program started through the dynamic loader, F12).
pub const EXEC_CHECK_MMAP: u32 = 2;
/// [`PlanSettings::exec`] bit: some rule reads `exec.envs`: exec records carry the start of
/// the environment block.
pub const EXEC_RECORD_ENV: u32 = 4;

/// [`PlanSettings::exec`] bit: the argument plan (`EXEC_SCHEME_PLAN`) has entries:
/// `sched_process_exec` searches each exec's arguments after `argv[0]` for `scheme://` (every
/// tier), unless the executable's basename is in `EXEC_ARGS_SPARED`.
pub const EXEC_ARGS_SCHEMES: u32 = 8;

/// [`PlanSettings::exec`] bit: the flag plan (`EXEC_FLAG_PLAN`) has entries: the same search
/// as [`EXEC_ARGS_SCHEMES`] also looks each argument that starts with `--` up, up to its
/// first `=`.
pub const EXEC_ARGS_FLAGS: u32 = 32;

/// [`PlanSettings::exec`] bit: the path plan (`EXEC_PATH_PLAN`) has entries. Without it the
/// exec programs skip that look-up (a hash of a 256-byte key on every exec; the default
/// policy has no path entry).
pub const EXEC_PATHS: u32 = 16;

/// Bytes of a SHA-256 digest.
pub const SHA256_LEN: usize = 32;

/// Key of `EXEC_HASH_PLAN`: a SHA-256 digest (raw bytes). 8-byte aligned so kernel code
/// copies it with word stores, not a `memcpy` call.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HashKey(pub [u8; SHA256_LEN]);

/// Value of the one-entry `PLAN_SETTINGS` array: what the current plan lets the kernel filter.
/// Part of the plan (not of the load-time `EngineConfig`) so a new plan can change it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlanSettings {
    /// `RECORD_*` bits.
    pub record: u32,
    /// One bit per `kernel_event::KernelOp` (`KernelOp::bit`) some enabled rule is about:
    /// the kernel-activity tracepoint reports only those operations.
    pub kernel_ops: u32,
    /// Source ports of DNS responses the kernel copies (53 and the policy's
    /// `network.dns_server_ports`); 0 = unused slot.
    pub dns_ports: [u16; DNS_PORT_SLOTS],
    /// `EXEC_*` bits: which exec checks the lsm tier runs under this plan.
    pub exec: u32,
    /// Generation of the hash plan; clean verdicts ([`PLAN_FLAG_HASH_CLEAN`]) of another
    /// generation are ignored.
    pub hash_generation: u32,
    /// Larger files are not hashed in the kernel (userspace hashes them after the exec).
    pub hash_max_size: u64,
    /// A file whose change time (seconds) is not older than `bpf_ktime_get_tai_ns()` seconds
    /// minus this is hashed on every exec and never cached clean: a rewrite within the same
    /// coarse timestamp tick keeps the change time ("racily clean"). The loader adds the TAI
    /// offset it measured and a margin to the userspace settle time.
    pub hash_fresh_s: u64,
    /// Which names `EXEC_NAME_PLAN` may hold: `mmap_file` reads a mapped file's name and the
    /// exec hooks look a basename up only when it passes (see the type for the update order).
    pub exec_names: NameFilter,
}

impl PlanSettings {
    /// Every family reported, no exec check skipped, every name looked up (zero but for the
    /// name filter, which lets everything through: [`NameFilter::ALL`]).
    pub const REPORT_ALL: Self = Self {
        record: 0,
        kernel_ops: 0,
        dns_ports: [0; DNS_PORT_SLOTS],
        exec: 0,
        hash_generation: 0,
        hash_max_size: 0,
        hash_fresh_s: 0,
        exec_names: NameFilter::ALL,
    };
}

/// Slots of [`PlanSettings::dns_ports`].
pub const DNS_PORT_SLOTS: usize = 8;

const _: () = assert!(core::mem::size_of::<PlanSettings>() == 88);

/// Value of every plan map: which rule the entry comes from and what to do on a match.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanVerdict {
    /// Index of the rule in the loaded policy generation's rule table (userspace names it).
    pub rule_index: u32,
    /// [`ACTION_DENY`] and/or [`ACTION_KILL`].
    pub actions: u32,
    /// [`PLAN_FLAG_MONITOR`], [`PLAN_FLAG_RECORD`].
    pub flags: u32,
    /// Policy generation that wrote this entry.
    pub generation: u32,
}

const _: () = assert!(core::mem::size_of::<NameKey>() == NAME_LEN);
const _: () = assert!(core::mem::size_of::<PathKey>() == PATH_LEN);
const _: () = assert!(core::mem::size_of::<MethodKey>() == METHOD_LEN);
const _: () = assert!(core::mem::size_of::<PlanVerdict>() == 16);
const _: () = assert!(core::mem::size_of::<InodeKey>() == 24);
const _: () = assert!(core::mem::size_of::<FileId>() == 16);
const _: () = assert!(core::mem::size_of::<HashKey>() == SHA256_LEN);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_keys_are_right_aligned_and_bounded() {
        let mut want = [0u8; SCHEME_LEN];
        want[5..].copy_from_slice(b"stratum+tcp");
        assert_eq!(SchemeKey::new(b"stratum+tcp"), Some(SchemeKey(want)));
        assert_eq!(
            SchemeKey::new(&[b'a'; SCHEME_LEN]),
            Some(SchemeKey([b'a'; SCHEME_LEN]))
        );
        assert!(SchemeKey::new(&[b'a'; SCHEME_LEN + 1]).is_none());
        assert!(SchemeKey::new(b"").is_none());
        assert!(SchemeKey::new(b"a\0b").is_none());
    }

    #[test]
    fn flag_keys_hold_long_flags_without_their_value() {
        let mut want = [0u8; FLAG_LEN];
        want[..14].copy_from_slice(b"--donate-level");
        assert_eq!(FlagKey::new(b"--donate-level"), Some(FlagKey(want)));
        let longest = [b'-'; FLAG_LEN - 1];
        assert!(FlagKey::new(&longest).is_some());
        assert!(FlagKey::new(&[b'-'; FLAG_LEN]).is_none());
        for bad in [&b"--"[..], b"-o", b"donate", b"--a=b", b"--a\0b"] {
            assert!(FlagKey::new(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn padded_keys_fit_with_a_nul_to_spare() {
        assert_eq!(padded::<4>(b"abc"), Some(*b"abc\0"));
        assert_eq!(padded::<4>(b"abcd"), None);
        assert_eq!(padded::<4>(b"a\0b"), None);
        assert_eq!(padded::<4>(b""), Some([0; 4]));
    }

    #[test]
    fn kernel_devices_convert_to_st_dev() {
        let key = |major: u32, minor: u32| InodeKey {
            dev: (major << 20) | minor,
            ..InodeKey::default()
        };
        // 8:1 (sda1) and 259:3 (nvme0n1p3), as stat(2) reports them.
        assert_eq!(key(8, 1).user_dev(), 0x801);
        assert_eq!(key(259, 3).user_dev(), 0x10303);
        // A minor above 255 (anonymous devices: tmpfs, overlayfs), e.g. 0:300.
        assert_eq!(key(0, 300).user_dev(), 0x10002c);
        // And back, for the never-kill keys.
        for (major, minor) in [(8, 1), (259, 3), (0, 300), (4095, 0xf_ffff)] {
            let k = key(major, minor);
            assert_eq!(
                FileId::from_stat(k.user_dev(), 7).dev,
                k.dev,
                "{major}:{minor}"
            );
        }
    }
}
