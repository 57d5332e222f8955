//! Public rule metadata: severity, actions, mode, enforcement, and [`RuleInfo`], the per-rule
//! record the daemon reads (its index is the `rule_index` used in the kernel plan).

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::schema::Kind;

/// How serious a rule's match is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Informational.
    Info,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

impl Severity {
    /// Parses a severity name.
    pub fn from_name(s: &str) -> Option<Severity> {
        Some(match s {
            "info" => Severity::Info,
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            _ => return None,
        })
    }

    /// The name.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The set of actions of a rule (`alert`, `deny`, `kill`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct Actions {
    /// Report the match.
    pub alert: bool,
    /// Deny the operation (in the kernel).
    pub deny: bool,
    /// Kill the process.
    pub kill: bool,
}

impl Actions {
    /// Alert only.
    pub const ALERT: Actions = Actions {
        alert: true,
        deny: false,
        kill: false,
    };

    /// Adds the action named `s`; `false` if unknown.
    pub fn add(&mut self, s: &str) -> bool {
        match s {
            "alert" => self.alert = true,
            "deny" => self.deny = true,
            "kill" => self.kill = true,
            _ => return false,
        }
        true
    }

    /// Whether the rule blocks (deny or kill).
    pub fn blocks(self) -> bool {
        self.deny || self.kill
    }

    /// Action bits as in `enforcer_common::plan` (deny = 1, kill = 2).
    pub fn kernel_bits(self) -> u32 {
        u32::from(self.deny) | (u32::from(self.kill) << 1)
    }
}

impl fmt::Display for Actions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = [
            (self.alert, "alert"),
            (self.deny, "deny"),
            (self.kill, "kill"),
        ]
        .into_iter()
        .filter_map(|(on, n)| on.then_some(n))
        .collect();
        f.write_str(&names.join("+"))
    }
}

/// A rule's mode; `None` in [`RuleInfo::mode`] inherits the engine-wide mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Act (deny, kill).
    Enforce,
    /// Dry run: record "would deny" / "would kill" only.
    Monitor,
}

impl Mode {
    /// The name.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Monitor => "monitor",
        }
    }
}

/// Where a rule's blocking actions happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Enforcement {
    /// The kernel plan matches it: denied / killed in the hook.
    Kernel,
    /// Evaluated in userspace on decoded events (alerts, and kills after the fact).
    Userspace,
}

/// How far a rule's kill reaches (`kill_scope:`); applied by the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KillScope {
    /// The matching process only (the default; what the kernel does).
    #[default]
    Process,
    /// Every process of the matching process's process group (`kill(-pgid, SIGKILL)`).
    ProcessGroup,
    /// Every process of the matching process's cgroup v2 and its descendants
    /// (`cgroup.kill`, Linux 5.14 or later).
    Cgroup,
}

impl KillScope {
    /// Parses a scope name (`process`, `process_group`, `cgroup`).
    pub fn from_name(s: &str) -> Option<KillScope> {
        Some(match s {
            "process" => KillScope::Process,
            "process_group" => KillScope::ProcessGroup,
            "cgroup" => KillScope::Cgroup,
            _ => return None,
        })
    }

    /// The name used in policies.
    pub fn name(self) -> &'static str {
        match self {
            KillScope::Process => "process",
            KillScope::ProcessGroup => "process_group",
            KillScope::Cgroup => "cgroup",
        }
    }
}

impl fmt::Display for KillScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A rule's override of the daemon's kill breaker (`breaker: {max_targets: N, window: 1m}`);
/// an absent value keeps the engine's setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct BreakerOverride {
    /// Most distinct binaries (or cgroups) the rule may kill within the window.
    pub max_targets: Option<u32>,
    /// The window, serialized in milliseconds (`window_ms`).
    #[serde(rename = "window_ms", serialize_with = "ser_millis")]
    pub window: Option<Duration>,
}

fn ser_millis<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_some(&d.as_millis()),
        None => s.serialize_none(),
    }
}

/// What the daemon needs to know about one rule.
#[derive(Debug, Clone, Serialize)]
pub struct RuleInfo {
    /// Unique id.
    pub id: String,
    /// Human description (including its false-positive risk).
    pub description: String,
    /// Severity.
    pub severity: Severity,
    /// Tags, e.g. MITRE ATT&CK ids.
    pub tags: Vec<String>,
    /// Actions on match.
    pub actions: Actions,
    /// Mode override.
    pub mode: Option<Mode>,
    /// Kernel or userspace.
    pub kernel: Enforcement,
    /// The event kind the rule applies to.
    pub event_kind: Kind,
    /// A disabled rule is checked but never matches and is not lowered.
    pub disabled: bool,
    /// Optional rate limit: report at most one match per this period (applied by the daemon,
    /// see [`crate::ratelimit::RateLimiter`]).
    #[serde(skip)]
    pub every: Option<Duration>,
    /// The policy file that defines the rule.
    pub file: String,
    /// Line of the rule's `id` in that file.
    pub line: usize,
    /// When a blocking rule runs in userspace, why the kernel cannot match it.
    pub userspace_reason: Option<String>,
    /// How far the rule's kill reaches (only `kill` rules set it; default `process`).
    pub kill_scope: KillScope,
    /// The rule's kill-breaker override, if any (only `kill` rules set it).
    pub breaker: Option<BreakerOverride>,
    /// Whether the rule applies to DNS responses as well as queries: a `dns` rule does when it
    /// reads a response field (`dns.is_response`, `dns.rcode`, `dns.answers.*`); otherwise it
    /// is about what a process asks, and a response to that question does not match it again.
    pub dns_responses: bool,
}
