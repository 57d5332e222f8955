//! Keys and values of the kernel plan maps: what the policy's `lower()` step becomes once the
//! loader writes it into the kernel.

/// Longest executable basename the kernel matches, including the terminating NUL padding.
/// A longer basename is flagged truncated and never matched in the kernel.
pub const NAME_LEN: usize = 64;
/// Longest executable path the kernel matches (NUL padded). Longer paths are flagged truncated.
pub const PATH_LEN: usize = 256;

/// Longest JSON-RPC method the kernel matches in a first payload (NUL padded key size).
pub const METHOD_LEN: usize = 32;

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

/// Value of the one-entry `PLAN_SETTINGS` array: what the current plan lets the kernel filter.
/// Part of the plan (not of the load-time `EngineConfig`) so a new plan can change it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlanSettings {
    /// `RECORD_*` bits.
    pub record: u32,
    /// Explicit padding.
    pub _pad: u32,
    /// Source ports of DNS responses the kernel copies (53 and the policy's
    /// `network.dns_server_ports`); 0 = unused slot.
    pub dns_ports: [u16; DNS_PORT_SLOTS],
}

/// Slots of [`PlanSettings::dns_ports`].
pub const DNS_PORT_SLOTS: usize = 8;

const _: () = assert!(core::mem::size_of::<PlanSettings>() == 24);

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_keys_fit_with_a_nul_to_spare() {
        assert_eq!(padded::<4>(b"abc"), Some(*b"abc\0"));
        assert_eq!(padded::<4>(b"abcd"), None);
        assert_eq!(padded::<4>(b"a\0b"), None);
        assert_eq!(padded::<4>(b""), Some([0; 4]));
    }
}
