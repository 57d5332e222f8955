//! Handling one ring-buffer record: decode, build the event, turn the kernel's verdict into
//! enforcement records, evaluate the userspace rules, and write it all to the sink.
//! Successful execs are handled in typed form in [`exec`]; exec events whose file hash is
//! computed after the fact are finished in [`hashing`].

mod exec;
mod hashing;
mod refused;
mod reload;

use std::rc::Rc;

use enforcer_common::event::{EventHeader, Hook, OUTCOME_KILL_DEFERRED, OUTCOME_KILLED};
use enforcer_policy::selection::EntrySelector;
use enforcer_policy::{CompiledPolicy, Enforcement, Kind, Mode, RuleInfo, ratelimit::RateLimiter};
use serde_json::Value;

use super::{
    enforce::{Act, Enforcer},
    generations::Generations,
    learned::Learned,
    sink::Sink,
};
use crate::{
    actions::abort::Prepared,
    audit::{Action, Record, writer::WriteError, writer::timestamp},
    clock::BootClock,
    cpu::indicators::Indicators,
    dns::QueryLog,
    enrich::{Enricher, LifecycleChains},
    pipeline::{
        decode::{self, Decoded},
        event_json::event_json,
        outcome,
    },
};

#[path = "handler_cpu.rs"]
mod cpu;

/// Turns records into audit records.
#[derive(Debug)]
pub(crate) struct Handler<'p> {
    /// The current policy generation (its policy is the one the handler applies) and a few
    /// earlier ones, for kernel records written before a reload (`generations.rs`).
    generations: Generations,
    tier: &'static str,
    dry_run: bool,
    clock: BootClock,
    decode_errors: u64,
    /// `every:` of alert-only reports; kills are never rate limited.
    limiter: RateLimiter,
    /// Process cache: parent chains and containers for every event.
    enricher: Enricher,
    /// Recent DNS queries, to attribute each response to the process that asked.
    queries: QueryLog,
    /// Addresses learned from DNS answers for the rules on `connect.addr.dns_name`.
    learned: Learned,
    /// The kill path, the kill breaker and the kernel plan.
    enforcer: Enforcer<'p>,
    /// Miner indicators per process tree and cgroup, for `cpu` events (`handler_cpu.rs`).
    indicators: Indicators,
    /// Content hashes of executed files, when the policy reads them.
    hashing: Option<hashing::Hashing>,
    /// The environment entries the rules test: the only ones written (`env_evidence.rs`).
    env_selector: EntrySelector,
}

/// Which lifecycle events get the ancestor chain under `policy`: those a rule is about.
fn lifecycle_chains(policy: &CompiledPolicy) -> LifecycleChains {
    let has_rules = |kind| !policy.rules_of_kind(kind).is_empty();
    LifecycleChains {
        fork: has_rules(Kind::Fork),
        exit: has_rules(Kind::Exit),
    }
}

/// A process cache seeded from `/proc`, so processes started before the engine resolve. Fork
/// and exit events get the ancestor chain only when a rule of their kind may read it.
fn seeded_enricher(policy: &CompiledPolicy) -> Enricher {
    let mut enricher = Enricher::default().with_lifecycle_chains(lifecycle_chains(policy));
    match enricher.seed_from_proc(std::path::Path::new("/proc")) {
        Ok(report) => tracing::info!("process cache seeded with {} processes", report.loaded),
        Err(err) => tracing::warn!("process cache not seeded from /proc: {err}"),
    }
    enricher
}

/// Gives a DNS response's header the identity of the process its query came from (from the
/// attributed `process` object), so rules and actions see that process.
fn attribute_header(header: &mut EventHeader, event: &Value) {
    let id = |key: &str| {
        event["process"][key]
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(0)
    };
    header.tgid = id("pid");
    header.pid = id("tid");
    header.ppid = id("ppid");
    header.uid = id("uid");
    header.gid = id("gid");
    header.cgroup_id = event["process"]["cgroup"]["id"].as_u64().unwrap_or(0);
}

/// Whether the kernel matched its plan on a path as the user wrote it, with `.`, `..` or
/// empty components (signal tier, `file.path_dots`): the rules matched here on the cleaned
/// path are then acted on in userspace, even the kernel plan's.
fn matched_as_written(event: &Value) -> bool {
    event.pointer("/file/path_dots") == Some(&Value::Bool(true))
}

/// Takes `process.ancestors` out of a fork or exit event record: the process's chain is in
/// the records of its exec and of what it did, and the audit log's fork and exit records have
/// one shape whether or not a rule of their kind made the enricher build it. Action records
/// keep it as evidence.
fn without_lifecycle_chain(event: &mut Value) {
    let lifecycle = matches!(
        event
            .get("kind")
            .and_then(Value::as_str)
            .and_then(Kind::from_name),
        Some(Kind::Fork | Kind::Exit)
    );
    if lifecycle && let Some(Value::Object(process)) = event.get_mut("process") {
        process.remove("ancestors");
    }
}

/// Which matching rules [`Handler::userspace_rules`] acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Select {
    /// Every rule.
    All,
    /// Rules that do not read the file hash (it is still being computed).
    WithoutHash,
    /// Only rules that read the file hash (it has just been computed).
    OnlyHash,
}

/// Whether the kernel plan carries the rule (its deny/kill outcome arrives with the record, so
/// userspace must not act on it again).
fn reported_by_kernel(rule: &RuleInfo) -> bool {
    rule.kernel == Enforcement::Kernel && (rule.actions.deny || rule.actions.kill)
}

impl<'p> Handler<'p> {
    /// A handler for generation `generation` of `policy`, in `tier`, acting through
    /// `enforcer`.
    pub(crate) fn new(
        policy: Rc<CompiledPolicy>,
        generation: u32,
        tier: &'static str,
        dry_run: bool,
        clock: BootClock,
        enforcer: Enforcer<'p>,
    ) -> Self {
        Self {
            enricher: seeded_enricher(&policy),
            env_selector: policy.entry_selector("exec.envs"),
            generations: Generations::new(generation, policy),
            tier,
            dry_run,
            clock,
            decode_errors: 0,
            limiter: RateLimiter::default(),
            queries: QueryLog::default(),
            learned: Learned::default(),
            enforcer,
            indicators: cpu::new_indicators(),
            hashing: None,
        }
    }

    /// The current policy.
    pub(crate) fn policy(&self) -> &Rc<CompiledPolicy> {
        self.generations.current()
    }

    /// The current policy generation (after a failed reload, the generation the previous
    /// policy was written back as).
    pub(crate) fn generation(&self) -> u32 {
        self.generations.generation()
    }

    /// Records that could not be decoded so far.
    pub(crate) fn decode_errors(&self) -> u64 {
        self.decode_errors
    }

    /// Handles one ring-buffer record.
    pub(crate) fn handle(&mut self, bytes: &[u8], sink: &mut Sink) -> Result<(), WriteError> {
        self.handle_knowing(bytes, sink, false)
    }

    /// Handles one ring-buffer record; `exited` says the record's process is known to have
    /// exited since (its exit record is waiting): an exec record then reads nothing from
    /// `/proc/<pid>` (`cwd`, a truncated command line or environment), which would give nothing
    /// or, were the pid reused, another process's values.
    pub(crate) fn handle_knowing(
        &mut self,
        bytes: &[u8],
        sink: &mut Sink,
        exited: bool,
    ) -> Result<(), WriteError> {
        match decode::decode(bytes) {
            Ok(mut record) => {
                self.generations.translate(record.header_mut());
                let mut header = *record.header();
                if self.lifecycle_unread(&record) {
                    // No rule reads it: the cache takes it, and the audit log gets its event
                    // without a JSON tree being built (`enrich/lifecycle_event.rs`).
                    let event = if sink.records_events() {
                        self.enricher.lifecycle_event(&record, self.ts(&header))
                    } else {
                        self.enricher.observe_lifecycle(&record);
                        None
                    };
                    self.expire_learned(header.timestamp_ns);
                    return match event {
                        Some(event) => sink.write(&Record::LifecycleEvent { event }),
                        None => Ok(()),
                    };
                }
                if let Decoded::Exec(exec) = &record
                    && header.hook == Hook::TpSchedProcessExec as u32
                {
                    return self.handle_exec(exec, exited, sink);
                }
                if let Decoded::Tamper(_) = &record {
                    return self.handle_tamper(&record, &header, sink);
                }
                let mut event = event_json(&record, &self.ts(&header));
                self.enricher.observe(&record, &mut event);
                self.expire_learned(header.timestamp_ns);
                match &record {
                    Decoded::Dns(_) => self.queries.remember(&event, header.timestamp_ns),
                    Decoded::DnsResponse(_) => {
                        if self.queries.attribute(&mut event, header.timestamp_ns) {
                            attribute_header(&mut header, &event);
                        }
                        self.learn_addresses(&event, header.timestamp_ns);
                    }
                    Decoded::Socket(_) => self.name_learned_address(&mut event),
                    Decoded::Kernel(_) => crate::pipeline::kernel_event::enrich_target(&mut event),
                    _ => {}
                }
                // The LSM exec hook reports only execs it acted on; the exec itself is reported
                // by the tracepoint when it succeeds (`handle_exec`), and only that record is
                // evaluated.
                let observed = !matches!(record, Decoded::Exec(_));
                let refused = refused::refused(&record, &header);
                self.report_acted(&header, event, observed, refused, sink)
            }
            Err(err) => {
                self.decode_errors += 1;
                tracing::warn!("dropped a kernel record: {err}");
                Ok(())
            }
        }
    }

    /// A self-protection refusal: a `tamper_denied` record (durable, written whatever
    /// `--events` says) and a warning. No rule evaluates it: the guard has acted already.
    fn handle_tamper(
        &mut self,
        record: &Decoded,
        header: &EventHeader,
        sink: &mut Sink,
    ) -> Result<(), WriteError> {
        let mut event = event_json(record, &self.ts(header));
        self.enricher.observe(record, &mut event);
        tracing::warn!(
            "self-protection refused {} by pid {} ({})",
            event["tamper"]["guard"].as_str().unwrap_or("unknown"),
            header.tgid,
            event["process"]["comm"].as_str().unwrap_or("")
        );
        sink.write(&Record::TamperDenied { event })
    }

    /// Whether `record` is a fork or exit that no rule can match and that carries no kernel
    /// verdict (most of a busy host's records): only the process cache and the audit log's
    /// `event` record take it, and no JSON tree is built for it.
    fn lifecycle_unread(&self, record: &Decoded) -> bool {
        let kind = match record {
            Decoded::Fork(_) => Kind::Fork,
            Decoded::Exit(_) => Kind::Exit,
            _ => return false,
        };
        record.header().outcome == 0 && self.policy().rules_of_kind(kind).is_empty()
    }

    /// Writes the addresses a DNS response teaches into the connect plan.
    fn learn_addresses(&mut self, event: &Value, now_ns: u64) {
        for ip in self
            .learned
            .learn(self.generations.current(), event, now_ns)
        {
            let rules = self.learned.rules(&ip);
            self.enforcer.learned(ip, &rules);
        }
    }

    /// Takes expired learned addresses (or rules) out of the connect plan.
    fn expire_learned(&mut self, now_ns: u64) {
        for ip in self.learned.expire(now_ns) {
            let rules = self.learned.rules(&ip);
            self.enforcer.learned(ip, &rules);
        }
    }

    /// Adds `connect.addr.dns_name` to a connect event whose address was learned.
    fn name_learned_address(&self, event: &mut Value) {
        let Some(ip) = event
            .pointer("/connect/addr/ip")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
        else {
            return;
        };
        if let (Some(name), Some(Value::Object(addr))) =
            (self.learned.name(&ip), event.pointer_mut("/connect/addr"))
        {
            addr.insert("dns_name".into(), Value::from(name));
        }
    }

    /// The id and severity of the rule `header`'s kernel verdict names (in the generation
    /// that wrote it).
    fn rule_id(&self, header: &EventHeader) -> (String, String) {
        match self.generations.rule_of(header) {
            Some(rule) => (rule.id.clone(), rule.severity.to_string()),
            None => (format!("#{}", header.rule_index), "unknown".to_owned()),
        }
    }

    /// `event` as the audit log gets it, once every rule has seen it whole: the environment
    /// entries no rule tests are left out.
    fn recorded(&self, mut event: Value) -> Value {
        crate::pipeline::env_evidence::keep_selected_envs(&mut event, &self.env_selector);
        event
    }

    fn ts(&self, header: &EventHeader) -> String {
        timestamp(self.clock.wall(header.timestamp_ns))
    }

    /// Writes the enforcement records of the kernel's verdict, then (for an `observed` event,
    /// one that happened) the userspace rules' actions and the event itself.
    fn report(
        &mut self,
        header: &EventHeader,
        event: Value,
        observed: bool,
        sink: &mut Sink,
    ) -> Result<(), WriteError> {
        self.report_acted(header, event, observed, None, sink)
    }

    /// [`Self::report`], for a record whose connection the kernel refused a segment of
    /// (`refused`: aborted after the kernel's actions, reported on the `deny` record).
    fn report_acted(
        &mut self,
        header: &EventHeader,
        event: Value,
        observed: bool,
        refused: Option<Prepared>,
        sink: &mut Sink,
    ) -> Result<(), WriteError> {
        self.kernel_records(header, &event, refused, sink)?;
        if !observed {
            return Ok(());
        }
        self.userspace_rules(header, &event, Select::All, sink)?;
        if !sink.records_events() {
            return Ok(());
        }
        let mut event = self.recorded(event);
        without_lifecycle_chain(&mut event);
        sink.write(&Record::Event { event })
    }

    /// The kernel's enforcement records of `header` (whose event did not need to wait); the
    /// connection of a `refused` segment is aborted once its owner is killed (if a rule says
    /// so), and its `deny` record says how that went.
    fn kernel_records(
        &mut self,
        header: &EventHeader,
        event: &Value,
        refused: Option<Prepared>,
        sink: &mut Sink,
    ) -> Result<(), WriteError> {
        let (rule, severity) = self.rule_id(header);
        // A rule a reload removed is named, but has no breaker or scope any more.
        let current = self.generations.is_current(header);
        let policy = Rc::clone(self.policy());
        let info = policy
            .rules()
            .get(header.rule_index as usize)
            .filter(|_| current)
            .map(|r| (header.rule_index, r));
        let mut acts: Vec<Act> = outcome::actions(header.outcome)
            .flat_map(|action| self.enforcer.kernel(action, info, header, event))
            .collect();
        // A kill the hook could not send (a cgroup hook refused the operation instead): the
        // daemon's kill path, rails included. A rule a reload removed is not acted on.
        if header.outcome & OUTCOME_KILL_DEFERRED != 0 {
            match info {
                Some((index, r)) => {
                    acts.push(self.enforcer.userspace_kill(index, r, header, event))
                }
                None => tracing::warn!(
                    "pid {}: not killed for rule {rule}: a policy reload removed it",
                    header.tgid
                ),
            }
        }
        if let Some(refused) = refused
            && let Some(deny) = acts.iter_mut().find(|act| act.action == Action::Deny)
        {
            deny.connection = Some(refused::abort(refused));
        }
        for act in acts {
            let event = self.recorded(event.clone());
            sink.write(&act.into_record(&rule, &severity, self.tier, event))?;
        }
        Ok(())
    }

    /// Evaluates the rules the kernel does not enforce: alerts are recorded, kills are
    /// performed through the safety-railed kill path (or recorded as `would_kill`).
    fn userspace_rules(
        &mut self,
        header: &EventHeader,
        event: &Value,
        select: Select,
        sink: &mut Sink,
    ) -> Result<(), WriteError> {
        let response = event.pointer("/dns/is_response") == Some(&Value::Bool(true));
        // A response no query could be matched to has no process to hold to account.
        if response && header.tgid == 0 {
            return Ok(());
        }
        // No rule of this kind: nothing can match, skip building the evaluator's view (most
        // fork and exit records of a busy host end here).
        let kind = event
            .get("kind")
            .and_then(Value::as_str)
            .and_then(Kind::from_name);
        if kind.is_some_and(|k| self.policy().rules_of_kind(k).is_empty()) {
            return Ok(());
        }
        let policy = Rc::clone(self.policy());
        let Ok(ev) = policy.decode_event(event) else {
            return Ok(());
        };
        for m in policy.eval(&ev) {
            let Some(rule) = policy.rules().get(m.rule_index as usize) else {
                continue;
            };
            if response && !rule.dns_responses {
                continue;
            }
            if !self.selected(select, m.rule_index) {
                continue;
            }
            self.note_indicator(rule, header, event);
            // The kernel's record already acted for this rule on this event (a kernel plan
            // rule, or a verdict the daemon wrote into the kernel for this file).
            let acted_in_kernel = header.outcome != 0
                && header.rule_index == m.rule_index
                && self.generations.is_current(header)
                && (rule.actions.deny || rule.actions.kill);
            // A kernel plan rule the kernel could not match (a path as written with dots) is
            // acted on here; its deny becomes what deny is in the signal tier, a SIGKILL (after
            // the fact), never an alert.
            let evaded_kernel = reported_by_kernel(rule) && matched_as_written(event);
            if (reported_by_kernel(rule) && !evaded_kernel) || acted_in_kernel {
                continue;
            }
            let mut performed = Vec::new();
            if rule.actions.kill || (rule.actions.deny && evaded_kernel) {
                if self.dry_run || rule.mode == Some(Mode::Monitor) {
                    performed.push(self.enforcer.would_kill(header));
                } else if header.outcome & OUTCOME_KILLED != 0 {
                    // The kernel already killed this process for this very event.
                    let (by, _) = self.rule_id(header);
                    performed.push(Act::alert(Some(format!(
                        "already killed in the kernel by rule {by}"
                    ))));
                } else {
                    performed.push(
                        self.enforcer
                            .userspace_kill(m.rule_index, rule, header, event),
                    );
                }
            }
            // A rule's `every:` limits how often one executable's alerts are reported; an
            // enforcement record is always written.
            if rule.actions.alert || performed.is_empty() {
                let key = event["exec"]["file"]["path"]
                    .as_str()
                    .or(event["process"]["comm"].as_str())
                    .unwrap_or("");
                let now = std::time::Instant::now();
                if !performed.is_empty()
                    || self.limiter.allow(policy.rules(), m.rule_index, key, now)
                {
                    performed.push(Act::alert(None));
                }
            }
            let severity = rule.severity.to_string();
            for act in performed {
                let event = self.recorded(event.clone());
                sink.write(&act.into_record(&rule.id, &severity, self.tier, event))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::{
        audit::AuditReader,
        engine::enforce::testing,
        pipeline::decode::{as_bytes, test_exec_record},
    };

    const POLICY: &str = r#"version: 1
rules:
  - id: true-ran
    description: alert on /usr/bin/true, at most once an hour per executable
    severity: low
    expression: exec.file.name == "true"
    action: alert
    every: 1h
  - id: kill-true
    description: kill after the fact (userspace), never rate limited
    severity: high
    expression: exec.argv0 == "true" && exec.args contains "-x"
    action: kill
    mode: monitor
"#;

    #[test]
    fn alerts_follow_every_and_enforcement_is_never_limited() {
        let policy = std::rc::Rc::new(enforcer_policy::load_str("p.yaml", POLICY).unwrap());
        let dir = tempfile::tempdir().unwrap();
        let (mut handler, mut sink, log) = testing::handler(&policy, dir.path());
        let rec = test_exec_record();
        for _ in 0..3 {
            handler.handle(as_bytes(&rec), &mut sink).unwrap();
        }
        handler.handle(&[1, 2, 3], &mut sink).unwrap();
        sink.flush().unwrap();
        let (records, _) = AuditReader::read_path(&log).unwrap();
        let count = |kind: &str, action: &str| {
            records
                .iter()
                .filter(|r| r["type"] == kind && (action.is_empty() || r["action"] == action))
                .count()
        };
        assert_eq!(count("event", ""), 3);
        assert_eq!(count("action", "alert"), 1, "{records:#?}");
        assert_eq!(count("action", "would_kill"), 3, "{records:#?}");
        assert_eq!(handler.decode_errors(), 1);
    }

    /// The audit records of a fork, an exec and an exit of this test process under `policy`.
    fn lifecycle_records(policy: &str) -> Vec<Value> {
        use crate::pipeline::decode::{test_exit_record, test_fork_record};
        let policy = std::rc::Rc::new(enforcer_policy::load_str("p.yaml", policy).unwrap());
        let dir = tempfile::tempdir().unwrap();
        let (mut handler, mut sink, log) = testing::handler(&policy, dir.path());
        // This process: seeded from /proc with its parents (the test runner, cargo, ...).
        let me = std::process::id();
        let mut fork = test_fork_record(4_000_000, 30);
        fork.header.tgid = me;
        let parent = std::os::unix::process::parent_id();
        fork.header.ppid = parent;
        let mut exec = test_exec_record();
        (exec.header.tgid, exec.header.pid, exec.header.ppid) = (me, me, parent);
        let mut exit = test_exit_record(0, 0);
        (exit.header.tgid, exit.header.ppid) = (me, parent);
        for (i, bytes) in [as_bytes(&fork), as_bytes(&exec), as_bytes(&exit)]
            .into_iter()
            .enumerate()
        {
            let mut copy = bytes.to_vec();
            // Timestamps in order, late enough for this process's start time.
            let at = std::mem::offset_of!(EventHeader, timestamp_ns);
            copy[at..at + 8].copy_from_slice(&(u64::MAX / 2 + i as u64).to_ne_bytes());
            handler.handle(&copy, &mut sink).unwrap();
        }
        sink.flush().unwrap();
        AuditReader::read_path(&log).unwrap().0
    }

    fn chain_of<'r>(records: &'r [Value], kind: &str, record_type: &str) -> &'r Value {
        let r = records
            .iter()
            .find(|r| r["type"] == record_type && r["event"]["kind"] == kind)
            .unwrap_or_else(|| panic!("no {record_type} {kind} record: {records:#?}"));
        &r["event"]["process"]["ancestors"]
    }

    #[test]
    fn an_exec_of_a_process_known_to_be_gone_reads_nothing_from_proc() {
        let policy = std::rc::Rc::new(enforcer_policy::load_str("p.yaml", POLICY).unwrap());
        let dir = tempfile::tempdir().unwrap();
        let (mut handler, mut sink, log) = testing::handler(&policy, dir.path());
        // This process, which is alive: its /proc/<pid>/cwd can be read.
        let mut exec = test_exec_record();
        exec.header.tgid = std::process::id();
        handler.handle(as_bytes(&exec), &mut sink).unwrap();
        handler
            .handle_knowing(as_bytes(&exec), &mut sink, true)
            .unwrap();
        sink.flush().unwrap();
        let (records, _) = AuditReader::read_path(&log).unwrap();
        let cwds: Vec<_> = records
            .iter()
            .filter(|r| r["type"] == "event")
            .map(|r| r["event"]["exec"]["cwd"].clone())
            .collect();
        let here = std::env::current_dir().unwrap();
        assert_eq!(cwds, [Value::from(here.to_str().unwrap()), Value::Null]);
    }

    #[test]
    fn fork_and_exit_records_are_written_without_the_ancestor_chain() {
        let records = lifecycle_records(POLICY);
        let exec_chain = chain_of(&records, "exec", "event");
        assert!(
            exec_chain.as_array().is_some_and(|a| !a.is_empty()),
            "{records:#?}"
        );
        assert!(
            chain_of(&records, "fork", "event").is_null(),
            "{records:#?}"
        );
        assert!(
            chain_of(&records, "exit", "event").is_null(),
            "{records:#?}"
        );
        // The process is still named.
        let fork = records
            .iter()
            .find(|r| r["event"]["kind"] == "fork")
            .unwrap();
        assert_eq!(fork["event"]["process"]["pid"], std::process::id());
    }

    #[test]
    fn an_exit_rule_reads_the_ancestor_chain_and_its_action_record_keeps_it() {
        let me = std::process::id();
        let parent = std::os::unix::process::parent_id();
        let policy = format!(
            "rules:\n  - id: exit-under-parent\n    expression: exit.code == 0 && \
             process.ancestors.pid == {parent}\n    action: alert\n"
        );
        let records = lifecycle_records(&policy);
        let alert = chain_of(&records, "exit", "action");
        assert_eq!(alert[0]["pid"], parent, "{records:#?}");
        assert!(
            chain_of(&records, "exit", "event").is_null(),
            "{records:#?}"
        );
        assert!(
            records
                .iter()
                .any(|r| r["rule"] == "exit-under-parent" && r["event"]["process"]["pid"] == me)
        );
    }

    #[test]
    fn a_process_the_kernel_killed_is_not_killed_again() {
        let policy = std::rc::Rc::new(
            enforcer_policy::load_str("p.yaml", POLICY.replace("    mode: monitor\n", "").as_str())
                .unwrap(),
        );
        let dir = tempfile::tempdir().unwrap();
        let (mut handler, mut sink, log) = testing::handler(&policy, dir.path());
        let mut rec = test_exec_record();
        rec.header.outcome = OUTCOME_KILLED;
        rec.header.rule_index = 0;
        // pid 10 of the test record is not ours: a kill attempt would fail or hit a stranger.
        handler.handle(as_bytes(&rec), &mut sink).unwrap();
        let (records, _) = AuditReader::read_path(&log).unwrap();
        let userspace: Vec<_> = records
            .iter()
            .filter(|r| r["decided_in"] == "userspace")
            .collect();
        assert_eq!(userspace.len(), 2, "{records:#?}");
        assert!(
            userspace.iter().all(|r| r["action"] == "alert"),
            "{records:#?}"
        );
        assert!(
            userspace
                .iter()
                .any(|r| r["detail"] == "already killed in the kernel by rule true-ran")
        );
        assert!(
            records
                .iter()
                .any(|r| r["action"] == "kill" && r["decided_in"] == "kernel")
        );
    }
}
