//! The abstract kernel plan: per hook family, the map entries the loader writes and the rules
//! behind each entry. No aya types here; `enforcer` turns it into map updates
//! (`enforcer_common::plan` keys). Families: executable basenames and paths (exec hook), and
//! JSON-RPC methods of a connection's first write (payload hook: the kernel finds a `"method"`
//! key in the first [`PAYLOAD_SCAN_LEN`] bytes and looks its raw string value up). New
//! families (DNS names, ports, CIDRs, SHA-256 values) are added as new vectors plus a
//! [`crate::schema::KernelFamily`] variant.

use serde::Serialize;

/// Longest basename the kernel matches (bytes, without the NUL).
pub const MAX_NAME_LEN: usize = 63;
/// Longest path the kernel matches (bytes, without the NUL).
pub const MAX_PATH_LEN: usize = 255;
/// Longest payload method the kernel matches (bytes, without the NUL).
pub const MAX_METHOD_LEN: usize = 31;
/// How many leading bytes of a first write the kernel searches for the `"method"` key.
pub const PAYLOAD_SCAN_LEN: usize = 128;

/// One map entry: a value and every rule (index into `CompiledPolicy::rules`) that contributes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanEntry {
    /// The key value (basename, path, method, ...).
    pub value: String,
    /// Rule indices, ascending.
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
}

impl KernelPlan {
    /// Total number of entries.
    pub fn len(&self) -> usize {
        self.exec_names.len() + self.exec_paths.len() + self.payload_methods.len()
    }

    /// Whether the plan is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
