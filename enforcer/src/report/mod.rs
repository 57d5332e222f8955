//! Policy audit reports (`enforcer report`): what an audit log says the engine did, or in a dry
//! run would have done, rule by rule, and what ran it.
//!
//! The log is read once, record by record ([`Aggregator::add`]), in bounded memory: per rule at
//! most [`MAX_TARGETS`] distinct executables and containers are told apart (the rest are
//! counted together) and at most [`MAX_SAMPLES`] response times are kept; at most
//! [`MAX_RULES`] rules are told apart. [`AuditReport`] is the result, rendered as JSON
//! (`serde`), Markdown ([`markdown`]) or HTML ([`html`]).

pub mod html;
pub mod markdown;

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::Value;

use crate::audit::ReadSummary;

/// Distinct executables (and containers) told apart per rule.
pub const MAX_TARGETS: usize = 1000;
/// Response times kept per rule and decision place (the first ones).
pub const MAX_SAMPLES: usize = 10_000;
/// Rules told apart; the actions of any further rule are counted under [`OTHER_RULES`].
pub const MAX_RULES: usize = 10_000;
/// The name under which the rules beyond [`MAX_RULES`] are counted.
pub const OTHER_RULES: &str = "(other rules)";
/// The name under which targets beyond [`MAX_TARGETS`] are counted.
pub const OTHER_TARGETS: &str = "(others)";
/// Targets listed per rule in the report.
pub const TOP_TARGETS: usize = 10;

/// The actions that stop something (done, or in a dry run or monitor-mode rule, would be).
const ENFORCING: [&str; 4] = ["deny", "kill", "would_deny", "would_kill"];

/// A policy audit report.
#[derive(Debug, Default, Serialize)]
pub struct AuditReport {
    /// Where the records came from and what could not be read.
    pub source: Source,
    /// The engine runs found (`engine_start` to `engine_stop`), in log order.
    pub runs: Vec<Run>,
    /// Every rule that matched, enforcing ones first (by severity, then matches).
    pub rules: Vec<RuleSummary>,
    /// `event` records by kind (empty for a log written with `--events none`).
    pub events: BTreeMap<String, u64>,
    /// Totals of the rules' actions (`kill`, `would_kill`, ...).
    pub actions: BTreeMap<String, u64>,
    /// Attempts on the engine its self-protection refused (`tamper_denied` records).
    pub tamper: Tamper,
}

/// The `tamper_denied` records: attempts to stop the engine or take its enforcement away that
/// the self-protection guards (`--self-protect`) refused.
#[derive(Debug, Default, Serialize)]
pub struct Tamper {
    /// Refusals by guard (`signal`, `ptrace`, `unpin`, `umount`, `map_write`).
    pub by_guard: BTreeMap<String, u64>,
    /// The last attempt's process.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last: Option<Sample>,
}

impl Tamper {
    /// The note on refused attempts, when there were some.
    pub fn note(&self) -> Option<String> {
        let total: u64 = self.by_guard.values().sum();
        let last = self.last.as_ref()?;
        let guards: Vec<String> = self
            .by_guard
            .iter()
            .map(|(guard, n)| format!("{guard} {n}"))
            .collect();
        Some(format!(
            "Self-protection refused {total} attempt(s) to stop the engine or take its enforcement away ({}); the last by {} (pid {}) at {}.",
            guards.join(", "),
            last.executable,
            last.pid,
            last.at
        ))
    }
}

/// The log the report was made from.
#[derive(Debug, Default, Serialize)]
pub struct Source {
    /// Path as given.
    pub path: String,
    /// The files read, oldest first: the rotated logs (`PATH.N` .. `PATH.1`), then `PATH`.
    pub files: Vec<String>,
    /// Records read (before the time window).
    pub records: usize,
    /// Records inside the time window.
    pub in_window: usize,
    /// Torn last lines (at most one per file).
    pub torn_tail: usize,
    /// Lines that are not records.
    pub corrupt: usize,
    /// Times the engine could not write the log (`audit_lost` records in the window).
    pub outages: u64,
    /// `event` records those outages lost.
    pub events_lost: u64,
    /// Other records (actions, engine records) those outages lost.
    pub records_lost: u64,
    /// Times the log file was deleted or moved away under the engine (`audit_reopened`).
    pub reopened: u64,
    /// Times the events log (`--events-log`) could not be written (`events_log_failing`).
    pub events_log_outages: u64,
    /// `event` records the events log lost, in the outages that ended (`events_log_restored`).
    pub events_log_events_lost: u64,
    /// Events log outages that had not ended when this log ends (no `events_log_restored`).
    pub events_log_unended: u64,
    /// `--since`, as given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// `--until`, as given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
    /// Time of the first record in the window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first: Option<String>,
    /// Time of the last record in the window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last: Option<String>,
}

impl Source {
    /// The note on lines that could not be read, when some could not.
    pub fn unreadable(&self) -> Option<String> {
        let lines = self.torn_tail + self.corrupt;
        (lines > 0).then(|| {
            format!(
                "{lines} line(s) could not be read ({} torn at the end, {} corrupt).",
                self.torn_tail, self.corrupt
            )
        })
    }

    /// The note on records the engine could not write, when it could not.
    pub fn lost(&self) -> Option<String> {
        (self.outages > 0).then(|| {
            format!(
                "The engine could not write the audit log {} time(s) (disk full or I/O errors): {} event record(s) and {} other record(s) were lost; the counts above miss them.",
                self.outages, self.events_lost, self.records_lost
            )
        })
    }

    /// The note on a log file deleted or moved away under the engine, when it was.
    pub fn reopened_note(&self) -> Option<String> {
        (self.reopened > 0).then(|| {
            format!(
                "The log file was deleted or moved away {} time(s) while the engine ran: the records before each are missing here.",
                self.reopened
            )
        })
    }

    /// The note on an events log the engine could not write, when it could not.
    pub fn events_log_note(&self) -> Option<String> {
        (self.events_log_outages > 0).then(|| {
            let unended = if self.events_log_unended > 0 {
                format!(
                    ", and {} outage(s) had not ended when this log ends",
                    self.events_log_unended
                )
            } else {
                String::new()
            };
            format!(
                "The engine could not write its events log {} time(s): {} event record(s) were lost{unended}; the activity counts miss them.",
                self.events_log_outages, self.events_log_events_lost
            )
        })
    }

    /// The files read, when the log was rotated (empty otherwise).
    pub fn rotated_note(&self) -> Option<String> {
        (self.files.len() > 1)
            .then(|| format!("Files read, oldest first: {}.", self.files.join(", ")))
    }
}

impl AuditReport {
    /// The warnings about what the report cannot count: unreadable lines, records the engine
    /// could not write or the kernel could not hand over, a log file deleted under the engine.
    pub fn warnings(&self) -> Vec<String> {
        [
            self.source.unreadable(),
            self.source.lost(),
            self.source.reopened_note(),
            self.source.events_log_note(),
            self.kernel_lost_note(),
            self.not_aborted_note(),
            self.tamper.note(),
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// The note on refused TCP segments whose connection could not be aborted, when some
    /// could not.
    pub fn not_aborted_note(&self) -> Option<String> {
        let rules: Vec<String> = self
            .rules
            .iter()
            .filter(|r| r.connections_not_aborted > 0)
            .map(|r| format!("{} ({})", r.rule, r.connections_not_aborted))
            .collect();
        (!rules.is_empty()).then(|| {
            format!(
                "Refused TCP segments whose connection the engine could not abort, by rule: {}. Each stayed queued in its socket, every retry dropped while the engine ran; see the rule's last detail.",
                rules.join(", ")
            )
        })
    }

    /// The note on kernel records the runs lost, when they lost some.
    pub fn kernel_lost_note(&self) -> Option<String> {
        let lost: u64 = self.runs.iter().map(|r| r.kernel_records_lost).sum();
        (lost > 0).then(|| {
            format!(
                "The kernel could not hand {lost} record(s) to the engine (its ring buffer was full): their kernel verdicts applied, but they are not in this log and rules evaluated in userspace did not see them."
            )
        })
    }
}

/// Whether a count is zero (not serialized then).
fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The start of a run whose `engine_start` record is not among the records read (rotated
/// away, or before `--since`).
pub const START_UNSEEN: &str = "(before the records read)";

/// What introduces the rules that would have acted in block mode.
pub const WOULD_ACT: &str = "In block mode these rules would have acted (dry run or \
    monitor-mode rules); review their executables before switching:";

/// One engine run.
#[derive(Debug, Default, Serialize)]
pub struct Run {
    /// `engine_start` time.
    pub started: String,
    /// `engine_stop` time; none when the run had not stopped (still running, or killed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// Why it stopped (`SIGTERM`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
    /// `block` or `monitor`.
    pub mode: String,
    /// `lsm`, `signal` or `monitor`.
    pub tier: String,
    /// Where file operations and kernel activity were watched (`engine_start.security_hooks`:
    /// `lsm`, `fentry`, `tracepoints (<why not fentry>)`); empty for an engine that did not
    /// say.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub security_hooks: String,
    /// Kernel release.
    pub kernel: String,
    /// Policy path.
    pub policy: String,
    /// Rules at start.
    pub rules: u64,
    /// Engine version.
    pub version: String,
    /// Unclean stops of earlier runs this run found (`engine_gap` records), with the time
    /// nothing enforced (`unenforced_from`), when known.
    pub gaps: Vec<Gap>,
    /// Policy reloads (`policy_reload` records).
    pub reloads: Vec<Reload>,
    /// Kernel records the run lost (a full ring buffer: `ringbuf_full` in its last
    /// `engine_stats` or `engine_stop` counters).
    pub kernel_records_lost: u64,
}

impl Run {
    /// The tier, with where file operations were watched when the engine said (`signal,
    /// fentry`; `signal, tracepoints` without the reason, which the JSON report keeps).
    pub fn tier_and_hooks(&self) -> String {
        match self.security_hooks.split_whitespace().next() {
            Some(hooks) if hooks != self.tier => format!("{}, {hooks}", self.tier),
            _ => self.tier.clone(),
        }
    }
}

/// An `engine_gap` record, shortly.
#[derive(Debug, Default, Serialize)]
pub struct Gap {
    /// `pinned` (the kernel kept enforcing) or `none`.
    pub enforcement: String,
    /// Start of the time nothing enforced (`enforcement: none`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unenforced_from: Option<String>,
    /// When this run took over.
    pub until: String,
}

/// A `policy_reload` record, shortly.
#[derive(Debug, Default, Serialize)]
pub struct Reload {
    /// Record time.
    pub at: String,
    /// `sighup` or `file_change`.
    pub trigger: String,
    /// `applied`, `unchanged`, `refused` or `failed`.
    pub outcome: String,
    /// Generation in force after it.
    pub generation: u64,
    /// Rule ids added.
    pub added: Vec<String>,
    /// Rule ids removed.
    pub removed: Vec<String>,
    /// Why it was refused or failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What one rule did.
#[derive(Debug, Default, Serialize)]
pub struct RuleSummary {
    /// Rule id.
    pub rule: String,
    /// Severity, as the records give it.
    pub severity: String,
    /// Records by action (`kill`, `would_kill`, `alert`, `spared`, ...).
    pub actions: BTreeMap<String, u64>,
    /// Enforcement records by where they were decided (`kernel`, `userspace`).
    pub decided_in: BTreeMap<String, u64>,
    /// Distinct executables (beyond [`MAX_TARGETS`], counted as one more).
    pub executables: usize,
    /// The executables with most records, most first (at most [`TOP_TARGETS`]).
    pub top_executables: Vec<Target>,
    /// Distinct containers (`host` for processes in none, the cgroup path when no container
    /// id is known).
    pub containers: usize,
    /// The containers with most records, most first (at most [`TOP_TARGETS`]).
    pub top_containers: Vec<Target>,
    /// First record time.
    pub first_seen: String,
    /// Last record time.
    pub last_seen: String,
    /// Response times of what was performed (`report.response_us`), by decision place.
    pub response_us: BTreeMap<String, Percentiles>,
    /// The latest detail of a `kill_failed`, `spared` or `disarmed` record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_detail: Option<String>,
    /// Denies of a TCP segment dropped at egress (signal tier) whose connection the daemon
    /// could not abort (`connection.aborted: false`): the segment stayed queued in its socket.
    #[serde(skip_serializing_if = "is_zero")]
    pub connections_not_aborted: u64,
    /// The first record's process, as evidence to review (a dry run's false positive shows
    /// here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample: Option<Sample>,
}

/// Longest command line kept in a [`Sample`] (characters).
pub const SAMPLE_CMDLINE: usize = 200;

/// The process of a rule's first record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Sample {
    /// Record time.
    pub at: String,
    /// Process id.
    pub pid: u64,
    /// The executable (as in the targets).
    pub executable: String,
    /// Its command line (`argv0` and arguments of an exec, else the process's `argv`), cut to
    /// [`SAMPLE_CMDLINE`] characters.
    pub cmdline: String,
    /// The parent's executable, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

impl Sample {
    fn of(at: &str, event: &Value) -> Sample {
        let words = |v: &Value| -> Vec<String> {
            v.as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut argv = words(&event["process"]["argv"]);
        if let Some(argv0) = text(event, "/exec/argv0") {
            argv = std::iter::once(argv0.to_owned())
                .chain(words(&event["exec"]["args"]))
                .collect();
        }
        Sample {
            at: at.to_owned(),
            pid: event["process"]["pid"].as_u64().unwrap_or(0),
            executable: executable(event),
            cmdline: argv.join(" ").chars().take(SAMPLE_CMDLINE).collect(),
            parent: text(event, "/process/ancestors/0/file/path").map(str::to_owned),
        }
    }
}

impl RuleSummary {
    /// Records that stop something (done or would be).
    pub fn enforcing(&self) -> u64 {
        ENFORCING.iter().filter_map(|a| self.actions.get(*a)).sum()
    }

    /// All records of the rule.
    pub fn total(&self) -> u64 {
        self.actions.values().sum()
    }
}

/// A target and its record count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    /// Executable path (or `comm:<name>`), or container.
    pub name: String,
    /// Records.
    pub count: u64,
}

/// Percentiles of a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Percentiles {
    /// Values in the sample.
    pub n: usize,
    /// Median.
    pub p50: u64,
    /// 99th percentile (nearest rank).
    pub p99: u64,
    /// Largest.
    pub max: u64,
}

impl Percentiles {
    /// The percentiles of `values` (sorted in place); none when empty.
    pub fn of(values: &mut [u64]) -> Option<Self> {
        values.sort_unstable();
        let n = values.len();
        let rank = |p: usize| values[(n * p).div_ceil(100).clamp(1, n) - 1];
        (n > 0).then(|| Percentiles {
            n,
            p50: rank(50),
            p99: rank(99),
            max: values[n - 1],
        })
    }
}

/// Counts by name, at most [`MAX_TARGETS`] names (the rest under [`OTHER_TARGETS`]).
#[derive(Debug, Default)]
struct Counts(HashMap<String, u64>);

impl Counts {
    fn add(&mut self, name: &str) {
        let key = if self.0.len() < MAX_TARGETS || self.0.contains_key(name) {
            name
        } else {
            OTHER_TARGETS
        };
        *self.0.entry(key.to_owned()).or_default() += 1;
    }

    fn top(&self) -> Vec<Target> {
        let mut all: Vec<Target> = self
            .0
            .iter()
            .map(|(name, &count)| Target {
                name: name.clone(),
                count,
            })
            .collect();
        all.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
        all.truncate(TOP_TARGETS);
        all
    }
}

#[derive(Debug, Default)]
struct RuleState {
    summary: RuleSummary,
    executables: Counts,
    containers: Counts,
    response: BTreeMap<String, Vec<u64>>,
}

/// Folds audit records into an [`AuditReport`].
#[derive(Debug, Default)]
pub struct Aggregator {
    report: AuditReport,
    rules: HashMap<String, RuleState>,
}

/// The string at `pointer` of `record`.
fn text<'a>(record: &'a Value, pointer: &str) -> Option<&'a str> {
    record.pointer(pointer).and_then(Value::as_str)
}

fn owned(record: &Value, pointer: &str) -> String {
    text(record, pointer).unwrap_or_default().to_owned()
}

/// The executable an action's event names: the exec'd file, else the process's file, else
/// its `comm`.
fn executable(event: &Value) -> String {
    let path = text(event, "/exec/file/path")
        .or_else(|| text(event, "/process/file/path"))
        .filter(|p| !p.is_empty());
    match path {
        Some(path) => path.to_owned(),
        None => format!("comm:{}", text(event, "/process/comm").unwrap_or("?")),
    }
}

/// The container an action's event names: its id, `host` when the cgroup names none, else the
/// cgroup path (or `unknown`).
fn container(event: &Value) -> String {
    match text(event, "/process/container/id") {
        Some("") => "host".to_owned(),
        Some(id) => id.chars().take(12).collect(),
        None => text(event, "/process/cgroup/path")
            .unwrap_or("unknown")
            .to_owned(),
    }
}

impl Aggregator {
    /// A report of the log at `path` (named in the report), keeping the records whose time is
    /// within `since..=until` (RFC 3339, compared as the log writes them: UTC).
    pub fn new(path: &str, since: Option<String>, until: Option<String>) -> Self {
        let mut aggregator = Self::default();
        aggregator.report.source.path = path.to_owned();
        aggregator.report.source.since = since;
        aggregator.report.source.until = until;
        aggregator
    }

    fn in_window(&self, ts: &str) -> bool {
        let source = &self.report.source;
        source.since.as_deref().is_none_or(|s| ts >= s)
            && source.until.as_deref().is_none_or(|u| ts <= u)
    }

    /// Takes one record.
    pub fn add(&mut self, record: &Value) {
        self.report.source.records += 1;
        let ts = text(record, "/ts").unwrap_or_default();
        if !self.in_window(ts) {
            return;
        }
        let source = &mut self.report.source;
        source.in_window += 1;
        if source.first.is_none() {
            source.first = Some(ts.to_owned());
        }
        source.last = Some(ts.to_owned());
        match text(record, "/type").unwrap_or_default() {
            "engine_start" => self.report.runs.push(Run {
                started: ts.to_owned(),
                mode: owned(record, "/mode"),
                tier: owned(record, "/tier"),
                security_hooks: owned(record, "/security_hooks"),
                kernel: owned(record, "/kernel"),
                policy: owned(record, "/policy"),
                rules: record["rules"].as_u64().unwrap_or(0),
                version: owned(record, "/version"),
                ..Run::default()
            }),
            "engine_stop" => {
                let run = self.current_run();
                run.stopped = Some(ts.to_owned());
                run.stop_reason = text(record, "/reason").map(str::to_owned);
                self.kernel_lost(record);
            }
            "engine_stats" => self.kernel_lost(record),
            "engine_gap" => {
                if let Some(run) = self.report.runs.last_mut() {
                    run.gaps.push(Gap {
                        enforcement: owned(record, "/enforcement"),
                        unenforced_from: text(record, "/unenforced_from").map(str::to_owned),
                        until: owned(record, "/this_start"),
                    });
                }
            }
            "policy_reload" => {
                let ids = |key: &str| {
                    record[key]
                        .as_array()
                        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned))
                        .into_iter()
                        .flatten()
                        .collect()
                };
                self.current_run().reloads.push(Reload {
                    at: ts.to_owned(),
                    trigger: owned(record, "/trigger"),
                    outcome: owned(record, "/outcome"),
                    generation: record["policy_generation"].as_u64().unwrap_or(0),
                    added: ids("added"),
                    removed: ids("removed"),
                    reason: text(record, "/reason").map(str::to_owned),
                });
            }
            "audit_lost" => {
                let source = &mut self.report.source;
                source.outages += 1;
                source.events_lost += record["events_lost"].as_u64().unwrap_or(0);
                source.records_lost += record["records_lost"].as_u64().unwrap_or(0);
            }
            "audit_reopened" => self.report.source.reopened += 1,
            "events_log_failing" => {
                let source = &mut self.report.source;
                source.events_log_outages += 1;
                source.events_log_unended += 1;
            }
            "events_log_restored" => {
                let source = &mut self.report.source;
                source.events_log_events_lost += record["events_lost"].as_u64().unwrap_or(0);
                source.events_log_unended = source.events_log_unended.saturating_sub(1);
            }
            "tamper_denied" => {
                let guard = text(record, "/event/tamper/guard").unwrap_or("?");
                let tamper = &mut self.report.tamper;
                if tamper.by_guard.len() < MAX_RULES || tamper.by_guard.contains_key(guard) {
                    *tamper.by_guard.entry(guard.to_owned()).or_default() += 1;
                }
                tamper.last = Some(Sample::of(ts, &record["event"]));
            }
            "event" => {
                let kind = text(record, "/event/kind").unwrap_or("?");
                *self.report.events.entry(kind.to_owned()).or_default() += 1;
            }
            "action" => self.action(record, ts),
            _ => {}
        }
    }

    /// Takes the `ringbuf_full` counter of an `engine_stats` or `engine_stop` record (the
    /// run's total so far).
    fn kernel_lost(&mut self, record: &Value) {
        if let Some(lost) = record
            .pointer("/counters/ringbuf_full")
            .and_then(Value::as_u64)
        {
            let run = self.current_run();
            run.kernel_records_lost = run.kernel_records_lost.max(lost);
        }
    }

    /// The run the records being read belong to: the last one started, or, for records before
    /// any `engine_start` (rotated away, or before `--since`), a run whose start is
    /// [`START_UNSEEN`].
    fn current_run(&mut self) -> &mut Run {
        if self.report.runs.is_empty() {
            self.report.runs.push(Run {
                started: START_UNSEEN.to_owned(),
                ..Run::default()
            });
        }
        let last = self.report.runs.len() - 1;
        &mut self.report.runs[last]
    }

    fn action(&mut self, record: &Value, ts: &str) {
        let action = text(record, "/action").unwrap_or("?");
        *self.report.actions.entry(action.to_owned()).or_default() += 1;
        let mut rule = text(record, "/rule").unwrap_or("?");
        if !self.rules.contains_key(rule) && self.rules.len() >= MAX_RULES {
            rule = OTHER_RULES;
        }
        let state = self.rules.entry(rule.to_owned()).or_default();
        let summary = &mut state.summary;
        if summary.rule.is_empty() {
            summary.rule = rule.to_owned();
            summary.severity = owned(record, "/severity");
            summary.first_seen = ts.to_owned();
            summary.sample = Some(Sample::of(ts, &record["event"]));
        }
        summary.last_seen = ts.to_owned();
        *summary.actions.entry(action.to_owned()).or_default() += 1;
        if ENFORCING.contains(&action) {
            let place = text(record, "/decided_in").unwrap_or("?");
            *summary.decided_in.entry(place.to_owned()).or_default() += 1;
            if matches!(action, "deny" | "kill")
                && let Some(us) = record
                    .pointer("/report/response_us")
                    .and_then(Value::as_u64)
            {
                let sample = state.response.entry(place.to_owned()).or_default();
                if sample.len() < MAX_SAMPLES {
                    sample.push(us);
                }
            }
        }
        if matches!(action, "kill_failed" | "spared" | "disarmed")
            && let Some(detail) = text(record, "/detail")
        {
            summary.last_detail = Some(detail.to_owned());
        }
        if action == "deny" && record.pointer("/connection/aborted") == Some(&Value::Bool(false)) {
            summary.connections_not_aborted += 1;
            if let Some(error) = text(record, "/connection/error") {
                summary.last_detail = Some(format!("connection not aborted: {error}"));
            }
        }
        let event = &record["event"];
        state.executables.add(&executable(event));
        state.containers.add(&container(event));
    }

    /// Takes what the reader found in the file `file` besides the records (call once per file
    /// read, in the order read).
    pub fn read_summary(&mut self, file: &str, summary: ReadSummary) {
        let source = &mut self.report.source;
        source.files.push(file.to_owned());
        source.torn_tail += summary.torn_tail;
        source.corrupt += summary.corrupt;
    }

    /// The report.
    pub fn finish(mut self) -> AuditReport {
        let mut rules: Vec<RuleSummary> = self
            .rules
            .into_values()
            .map(|mut state| {
                let summary = &mut state.summary;
                summary.executables = state.executables.0.len();
                summary.top_executables = state.executables.top();
                summary.containers = state.containers.0.len();
                summary.top_containers = state.containers.top();
                summary.response_us = state
                    .response
                    .iter_mut()
                    .filter_map(|(place, v)| Some((place.clone(), Percentiles::of(v)?)))
                    .collect();
                state.summary
            })
            .collect();
        rules.sort_by(|a, b| {
            (b.enforcing() > 0)
                .cmp(&(a.enforcing() > 0))
                .then_with(|| severity_rank(&b.severity).cmp(&severity_rank(&a.severity)))
                .then_with(|| b.total().cmp(&a.total()))
                .then_with(|| a.rule.cmp(&b.rule))
        });
        self.report.rules = rules;
        self.report
    }
}

/// Orders severities, most severe highest.
fn severity_rank(severity: &str) -> u8 {
    match severity {
        "critical" => 4,
        "high" => 3,
        "medium" => 2,
        "low" => 1,
        _ => 0,
    }
}

impl AuditReport {
    /// Whether some run of the report was a dry run (monitor mode).
    pub fn dry_run(&self) -> bool {
        self.runs.iter().any(|r| r.mode == "monitor")
    }

    /// The rules that would have denied or killed (dry runs, monitor-mode rules): what block
    /// mode would change.
    pub fn would_act(&self) -> impl Iterator<Item = &RuleSummary> {
        self.rules.iter().filter(|r| {
            r.actions.get("would_deny").copied().unwrap_or(0)
                + r.actions.get("would_kill").copied().unwrap_or(0)
                > 0
        })
    }
}

#[cfg(test)]
mod tests;
