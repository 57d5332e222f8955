//! The abstract kernel plan: per hook family, the map entries the loader writes and the rules
//! behind each entry. No aya types here; `enforcer` turns it into map updates
//! (`enforcer_common::plan` keys). Families: executable basenames and paths (exec hook),
//! JSON-RPC methods of a connection's first write (payload hook: the kernel finds a `"method"`
//! key in the first [`PAYLOAD_SCAN_LEN`] bytes and looks its raw string value up), DNS question
//! names (exact names first, then domain suffixes, longest first) and connection destination
//! prefixes (longest prefix wins). New families (ports, SHA-256 values) are added as new
//! vectors plus a [`crate::schema::KernelFamily`] variant.
//!
//! The DNS and connect vectors hold *effective* rule sets: the lowering computes, per key,
//! exactly the rules the evaluator would match for the names or addresses whose lookup ends at
//! that key, so "first hit wins" in the kernel gives the evaluator's answer
//! ([`KernelPlan::dns_lookup`] and [`KernelPlan::connect_lookup`] simulate the kernel).

use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

use crate::net;

/// Longest basename the kernel matches (bytes, without the NUL).
pub const MAX_NAME_LEN: usize = 63;
/// Longest path the kernel matches (bytes, without the NUL).
pub const MAX_PATH_LEN: usize = 255;
/// Longest URL scheme (bytes before `://`) the kernel finds in exec arguments.
pub const MAX_SCHEME_LEN: usize = 16;
/// Longest long flag (`--` included, bytes) the kernel finds in exec arguments.
pub const MAX_FLAG_LEN: usize = 31;
/// Longest payload method the kernel matches (bytes, without the NUL).
pub const MAX_METHOD_LEN: usize = 31;
/// How many leading bytes of a first write the kernel searches for the `"method"` key.
pub const PAYLOAD_SCAN_LEN: usize = 128;
/// Longest DNS name the kernel matches (bytes, dotted form without the trailing dot).
pub const MAX_DNS_NAME_LEN: usize = 253;
/// Longest label of a DNS name (bytes).
pub const MAX_DNS_LABEL_LEN: usize = 63;

/// The kernel-activity operations the plan can name (`kernel.op` values), in the kernel's
/// `KernelOp` order (`enforcer_common::kernel_event`).
pub const KERNEL_OPS: [&str; 12] = [
    "module_load",
    "module_unload",
    "bpf",
    "ptrace",
    "kexec",
    "setuid",
    "setgid",
    "capset",
    "unshare",
    "setns",
    "memfd_create",
    "module_loaded",
];

/// One map entry: a value and every rule (index into `CompiledPolicy::rules`) that contributes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanEntry {
    /// The key value (basename, path, method, DNS name or domain, canonical CIDR).
    pub value: String,
    /// Rule indices, ascending. Empty in `dns_names`, `dns_domains` and `connect_nets` when
    /// the key stops the lookup without a match (an exclusion).
    pub rules: Vec<u32>,
}

/// What the kernel must match, per hook family. Entries are sorted by value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KernelPlan {
    /// Exec (bprm check / sched_process_exec) by executable basename.
    pub exec_names: Vec<PlanEntry>,
    /// Exec by absolute executable path.
    pub exec_paths: Vec<PlanEntry>,
    /// First write on a socket by the JSON-RPC `method` string it carries (stratum login /
    /// subscribe); the value is the raw method as it appears between the quotes.
    pub payload_methods: Vec<PlanEntry>,
    /// DNS question names matched exactly (lowercase, no trailing dot). The kernel looks the full
    /// question name up here first; when found, these rules are the answer (an empty `rules` means
    /// "no rule matches this name", and the domain map is not consulted).
    ///
    /// The kernel must lowercase the question name (ASCII) and drop the root label before the
    /// lookup, as the evaluator does. Keys are at most [`MAX_DNS_NAME_LEN`] bytes, labels 1 to
    /// [`MAX_DNS_LABEL_LEN`] bytes, without NUL or whitespace.
    pub dns_names: Vec<PlanEntry>,
    /// DNS domain suffixes (lowercase, no trailing dot). When the full name is not in `dns_names`,
    /// the kernel looks up the full name, then each parent domain, longest first, and uses the
    /// FIRST entry it finds ("longest suffix wins"). An entry with empty `rules` stops the search
    /// with no match (an exclusion).
    pub dns_domains: Vec<PlanEntry>,
    /// Destination prefixes of outgoing connections, as canonical CIDR strings (the truncated
    /// network in `ipnet` notation: `203.0.113.0/24`, `2001:db8::/32`; single addresses are
    /// `/32` or `/128`). The kernel looks the destination up in an LPM trie (longest prefix
    /// wins) and uses that entry's rules; an entry with empty `rules` stops the search with no
    /// match. IPv4 destinations are looked up among the IPv4 prefixes and IPv6 among the IPv6
    /// ones; an IPv4-mapped IPv6 destination (`::ffff:a.b.c.d`) is looked up in its IPv4 form
    /// (the evaluator reads such addresses as IPv4 too). `connect.addr.is_public` is already
    /// folded into the rule sets (with `network.extra_public_ranges`): the kernel does not
    /// classify addresses.
    pub connect_nets: Vec<PlanEntry>,
    /// Every enabled connect rule is in `connect_nets` (alert-only rules as record-only
    /// entries), so the kernel reports only connects whose lookup ends at an entry with rules
    /// (in-kernel approvers); when false, some connect rule needs every connect in userspace,
    /// or the policy asks for every connect (`network.record_all_connects`).
    pub connect_filtered: bool,
    /// Connect rules on `connect.addr.dns_name` (indices, ascending): the daemon evaluates
    /// them against each DNS answer and writes the addresses they match into the connect plan
    /// for the answer's TTL (see [`learned_rule`](crate::lower::learned_rule)).
    pub learned_rules: Vec<u32>,
    /// Kernel-activity operations (`kernel.op` values of [`KERNEL_OPS`]) a deny or kill rule
    /// names. The lsm tier refuses module loads, kexec and ptrace attaches in LSM hooks; the
    /// other operations (and every one in the signal tier) are killed from the syscall's
    /// tracepoint, after the call.
    pub kernel_ops: Vec<PlanEntry>,
    /// Exec by content: SHA-256 values (64 lowercase hex digits) of the blocking (deny/kill)
    /// rules that are a disjunction of `exec.file.hash.sha256` tests. The lsm tier hashes
    /// executables in the kernel (`bpf_ima_file_hash`) and refuses a listed one; the rules
    /// stay userspace rules too (the signal tier, files the kernel does not hash).
    pub exec_hashes: Vec<PlanEntry>,
    /// Exec by argument: URL schemes (the bytes before `://`, sorted) of the blocking rules of
    /// the shape `exec.args contains "scheme://"` (`crate::lower::args`). `sched_process_exec`
    /// finds a `scheme://` in an argument after `argv[0]` and kills before the program runs
    /// (every tier: no LSM hook sees the new arguments). The rules stay userspace rules too
    /// (arguments past the kernel's copy, executables in [`KernelPlan::exec_args_spared`]).
    pub exec_arg_schemes: Vec<PlanEntry>,
    /// Exec by argument: long flags (`--donate-level`, sorted) of the blocking rules of the
    /// shape `exec.args startswith "--flag"` (`crate::lower::args`). `sched_process_exec`
    /// looks up each argument after `argv[0]` that starts with `--`, by its bytes up to its
    /// first `=`, and kills before the program runs (every tier). The rules stay userspace
    /// rules too (an argument longer than the flag, arguments past the kernel's copy,
    /// executables in [`KernelPlan::exec_args_spared`]).
    pub exec_arg_flags: Vec<PlanEntry>,
    /// Executable basenames (sorted) whose arguments the kernel does not search: every
    /// basename an exception of an argument rule (`&& !exception`) may hold for, e.g. the text
    /// tools of `!text_tool_exec`. Userspace evaluates those execs with the full rule.
    pub exec_args_spared: Vec<String>,
    /// Watched file paths (`crate::lower::files`), sorted by operation, path, exactness.
    pub file_watches: Vec<FileWatchEntry>,
    /// Some enabled rule is about a file event kind (`open`, `unlink`, `rename`, `chmod`,
    /// `chown`, `link`, `mkdir`, `rmdir`, `setxattr`, `utimes`, `truncate`, `mount`,
    /// `umount`): the kernel's file hooks run.
    pub file_rules: bool,
    /// Every enabled file rule restricts its paths to `file_watches`: the kernel reports only
    /// the file events under a watched path.
    pub file_filtered: bool,
}

/// One watched path of one file operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileWatchEntry {
    /// `open_write`, `open_read`, `unlink`, `rename`, `chmod`, `chown`, `link`, `symlink`,
    /// `mkdir`, `rmdir`, `setxattr`, `utimes`, `truncate`, `mount` or `umount`.
    pub op: String,
    /// Absolute path without a trailing `/`.
    pub path: String,
    /// The path itself only; `false`: everything below it.
    pub exact: bool,
    /// Deny/kill rules the kernel enforces on this path (indices, ascending).
    pub rules: Vec<u32>,
    /// Other rules about this path: the kernel reports the event, userspace evaluates them.
    pub watchers: Vec<u32>,
}

impl FileWatchEntry {
    /// Whether the kernel checks read-only opens for this entry.
    pub fn is_read(&self) -> bool {
        self.op == "open_read"
    }
}

impl KernelPlan {
    /// Total number of entries.
    pub fn len(&self) -> usize {
        self.exec_names.len()
            + self.exec_paths.len()
            + self.payload_methods.len()
            + self.dns_names.len()
            + self.dns_domains.len()
            + self.connect_nets.len()
            + self.file_watches.len()
            + self.exec_hashes.len()
            + self.exec_arg_schemes.len()
            + self.exec_arg_flags.len()
            + self.kernel_ops.len()
    }

    /// Whether the plan is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entry the kernel's DNS lookup ends at for question name `name`, if any: the exact
    /// entry in `dns_names`, else the longest suffix of the name (the name itself, then its
    /// parents) in `dns_domains`. The name is first lowercased and stripped of trailing dots,
    /// as the evaluator decodes it. Its `rules` are the rules the kernel applies (possibly
    /// none).
    pub fn dns_lookup(&self, name: &str) -> Option<&PlanEntry> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if let Some(e) = find(&self.dns_names, &name) {
            return Some(e);
        }
        let mut rest = name.as_str();
        loop {
            if let Some(e) = find(&self.dns_domains, rest) {
                return Some(e);
            }
            rest = &rest[rest.find('.')? + 1..];
        }
    }

    /// The entry the kernel's longest-prefix lookup of destination `ip` ends at, if any (an
    /// IPv4-mapped IPv6 address is looked up as IPv4).
    pub fn connect_lookup(&self, ip: IpAddr) -> Option<&PlanEntry> {
        let ip = net::canonical(ip);
        let max: u8 = if ip.is_ipv4() { 32 } else { 128 };
        (0..=max).rev().find_map(|len| {
            let key = IpNet::new(ip, len).ok()?.trunc().to_string();
            find(&self.connect_nets, &key)
        })
    }
}

/// The entry with `value` in a vector sorted by value.
fn find<'a>(entries: &'a [PlanEntry], value: &str) -> Option<&'a PlanEntry> {
    entries
        .binary_search_by(|e| e.value.as_str().cmp(value))
        .ok()
        .and_then(|i| entries.get(i))
}
