//! The field registry: every field an expression may use, with its type, event kind, JSON
//! location in a decoded event, documentation, and whether the kernel plan can match it.
//!
//! Event JSON shape: an object with `"kind"` naming the event kind (see [`Kind`]); field `a.b.c`
//! lives at JSON pointer `/a/b/c` unless its entry says otherwise (for example `process.cgroup`
//! is `/process/cgroup/path`). `process.*` fields are common to every kind. List fields
//! (`exec.args`, `process.ancestors.file.name`, ...) hold several values; an operator applies
//! to each and holds when any value satisfies it.

use std::collections::HashMap;
use std::fmt;
use std::sync::LazyLock;

/// Event kinds; the `"kind"` member of an event's JSON uses [`Kind::name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A program was executed (after `execve` resolved the file).
    Exec,
    /// A process forked.
    Fork,
    /// A process exited.
    Exit,
    /// A file was opened for writing or created (ordinary reads never leave the kernel).
    Open,
    /// A file was unlinked.
    Unlink,
    /// A file was renamed.
    Rename,
    /// A file's mode changed.
    Chmod,
    /// A file's owner changed.
    Chown,
    /// A hard or symbolic link was created.
    Link,
    /// A directory was created.
    Mkdir,
    /// A directory was removed.
    Rmdir,
    /// An extended attribute was set.
    Setxattr,
    /// A file's times were changed.
    Utimes,
    /// A file was truncated (truncate, ftruncate; in the lsm tier an `O_TRUNC` open too).
    Truncate,
    /// A file system was mounted.
    Mount,
    /// A file system was unmounted.
    Umount,
    /// A DNS query or response.
    Dns,
    /// An outgoing connection.
    Connect,
    /// A socket was bound.
    Bind,
    /// An incoming connection was accepted.
    Accept,
    /// The first payload bytes written on a connection.
    Payload,
    /// A kernel-level event: module load/unload, bpf(), ptrace, kexec, MSR or /dev/mem access,
    /// setuid/setgid/capset, unshare/setns, huge-page sysctl writes (see `kernel.op`).
    Kernel,
    /// A periodic CPU usage sample of a process.
    Cpu,
}

impl Kind {
    /// Every kind, in evaluation-bucket order.
    pub const ALL: [Kind; 23] = [
        Kind::Exec,
        Kind::Fork,
        Kind::Exit,
        Kind::Open,
        Kind::Unlink,
        Kind::Rename,
        Kind::Chmod,
        Kind::Chown,
        Kind::Link,
        Kind::Mkdir,
        Kind::Rmdir,
        Kind::Setxattr,
        Kind::Utimes,
        Kind::Truncate,
        Kind::Mount,
        Kind::Umount,
        Kind::Dns,
        Kind::Connect,
        Kind::Bind,
        Kind::Accept,
        Kind::Payload,
        Kind::Kernel,
        Kind::Cpu,
    ];

    /// The name used in JSON and as the first segment of field names.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Exec => "exec",
            Kind::Fork => "fork",
            Kind::Exit => "exit",
            Kind::Open => "open",
            Kind::Unlink => "unlink",
            Kind::Rename => "rename",
            Kind::Chmod => "chmod",
            Kind::Chown => "chown",
            Kind::Link => "link",
            Kind::Mkdir => "mkdir",
            Kind::Rmdir => "rmdir",
            Kind::Setxattr => "setxattr",
            Kind::Utimes => "utimes",
            Kind::Truncate => "truncate",
            Kind::Mount => "mount",
            Kind::Umount => "umount",
            Kind::Dns => "dns",
            Kind::Connect => "connect",
            Kind::Bind => "bind",
            Kind::Accept => "accept",
            Kind::Payload => "payload",
            Kind::Kernel => "kernel",
            Kind::Cpu => "cpu",
        }
    }

    /// The kind named `name`.
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Position in [`Kind::ALL`].
    pub fn index(self) -> usize {
        Kind::ALL.iter().position(|k| *k == self).unwrap_or(0)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The type of a field's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Type {
    /// UTF-8 text (paths, names, hashes as lowercase hex).
    Str,
    /// A signed 64-bit integer.
    Int,
    /// `true` / `false`.
    Bool,
    /// A duration; JSON holds nanoseconds or a string such as `"90s"`.
    Duration,
    /// An IPv4 or IPv6 address.
    Ip,
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Type::Str => "string",
            Type::Int => "integer",
            Type::Bool => "bool",
            Type::Duration => "duration",
            Type::Ip => "ip",
        })
    }
}

/// Which kernel plan map can hold values of a field (see [`crate::plan::KernelPlan`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KernelFamily {
    /// Executable basename (`exec_names`), at most [`crate::plan::MAX_NAME_LEN`] bytes.
    ExecName,
    /// Absolute executable path (`exec_paths`), at most [`crate::plan::MAX_PATH_LEN`] bytes.
    ExecPath,
    /// JSON-RPC method of a connection's first write (`payload_methods`), 1 to
    /// [`crate::plan::MAX_METHOD_LEN`] bytes, without NUL, `"`, `\` or control characters.
    PayloadMethod,
    /// DNS question name (`dns_names` for exact values, `dns_domains` for domain-list
    /// values): lowercase, without the trailing dot, at most [`crate::plan::MAX_DNS_NAME_LEN`]
    /// bytes, labels of 1 to [`crate::plan::MAX_DNS_LABEL_LEN`] bytes.
    DnsName,
    /// Destination address of a connection (`connect_nets`, longest prefix wins).
    ConnectAddr,
    /// Whether the destination address is public: no map of its own, it qualifies
    /// `connect_nets` rules and is evaluated per prefix by the lowering (with the policy's
    /// `network.extra_public_ranges`).
    ConnectPublic,
    /// Kernel-activity operation (`kernel_ops`): one of the names of
    /// [`crate::plan::KERNEL_OPS`]; the kernel indexes its plan array by it.
    KernelOp,
}

/// How a field is found in an event's JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locator {
    /// A JSON pointer; a JSON array there makes a list.
    Ptr(&'static str),
    /// Every element of the array at the first pointer, then the second pointer inside it.
    Each(&'static str, &'static str),
}

/// A value computed from other members when the event does not carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Derive {
    /// Basename of the string at this pointer.
    Basename(&'static str),
    /// The JSON-RPC `method` of the payload at this pointer (stratum fingerprint).
    StratumMethod(&'static str),
    /// Whether the open flags at this pointer write (`O_WRONLY`, `O_RDWR`, `O_CREAT`, `O_TRUNC`).
    OpenWrites(&'static str),
    /// Whether the address at this pointer is public (not loopback, private, link-local, ...,
    /// see [`crate::net::is_public`]), or inside the evaluating policy's
    /// `network.extra_public_ranges`.
    IsPublic(&'static str),
}

/// One field of the schema.
#[derive(Debug, Clone, Copy)]
pub struct FieldDef {
    /// Dotted name, e.g. `exec.file.name`.
    pub name: &'static str,
    /// Type of each value.
    pub ty: Type,
    /// Whether the field holds several values (any value may satisfy an operator).
    pub list: bool,
    /// The event kind, `None` for `process.*` fields common to every kind.
    pub kind: Option<Kind>,
    /// The kernel plan family that can match this field, if any.
    pub kernel: Option<KernelFamily>,
    /// Where the value is in the event JSON.
    pub locator: Locator,
    /// Computed when absent.
    pub derive: Option<Derive>,
    /// One-line documentation.
    pub doc: &'static str,
}

/// Index of a field in [`FIELDS`].
pub type FieldId = u16;

/// The DNS question name field: decoded lowercase without trailing dots, and the string values
/// it is compared with by `==`, `!=`, `in`, `not in` are lowercased without one trailing dot
/// when checked (DNS names are case-insensitive).
pub const DNS_NAME_FIELD: &str = "dns.question.name";

mod fields;

/// Every field. Order is stable: it defines [`FieldId`]s and the `policy fields` listing.
pub static FIELDS: &[FieldDef] = fields::FIELDS;

static BY_NAME: LazyLock<HashMap<&'static str, FieldId>> = LazyLock::new(|| {
    FIELDS
        .iter()
        .enumerate()
        .filter_map(|(i, d)| FieldId::try_from(i).ok().map(|id| (d.name, id)))
        .collect()
});

/// Looks a field up by name.
pub fn lookup(name: &str) -> Option<FieldId> {
    BY_NAME.get(name).copied()
}

/// The definition of field `id`.
pub fn def(id: FieldId) -> &'static FieldDef {
    // FieldIds only come from `lookup`, so the index is in range; fall back to the first entry.
    FIELDS.get(usize::from(id)).unwrap_or(&FIELDS[0])
}

/// The field names closest to `name` (for "did you mean" hints).
pub fn suggest(name: &str) -> Option<&'static str> {
    FIELDS
        .iter()
        .map(|d| (edit_distance(name, d.name), d.name))
        .filter(|(d, _)| *d <= 3)
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_prefixed_by_their_kind() {
        let mut seen = std::collections::HashSet::new();
        for d in FIELDS {
            assert!(seen.insert(d.name), "duplicate {}", d.name);
            let first = d.name.split('.').next().unwrap_or("");
            match d.kind {
                None => assert_eq!(first, "process"),
                Some(k) => assert_eq!(first, k.name()),
            }
        }
    }

    #[test]
    fn required_fields_exist() {
        for name in [
            "exec.file.path",
            "exec.file.name",
            "exec.file.hash.sha256",
            "exec.args",
            "exec.argv0",
            "exec.envs",
            "exec.interpreter",
            "exec.is_memfd",
            "process.uid",
            "process.comm",
            "process.ancestors.file.name",
            "process.container.id",
            "process.cgroup",
            "open.file.path",
            "open.flags",
            "dns.question.name",
            "dns.question.type",
            "connect.addr.ip",
            "connect.addr.port",
            "connect.addr.is_public",
            "payload.stratum.method",
            "kernel.module.name",
            "cpu.usage.percent",
            "cpu.window",
            "cpu.scope",
            "cpu.cgroup",
            "cpu.indicators",
            "cpu.correlated",
        ] {
            assert!(lookup(name).is_some(), "{name}");
        }
        assert_eq!(suggest("exec.file.nme"), Some("exec.file.name"));
    }
}
