//! Enforcement decisions around the kill path: turns kernel outcomes and userspace kill
//! decisions into enforcement records with their action reports, applying the kill breaker,
//! the exclusions and each rule's `kill_scope`.
//!
//! - A kill the kernel performed counts toward the rule's breaker; when the rule's scope is
//!   wider than the process, the kill is widened to its process group or cgroup here.
//! - A userspace kill is prepared (exclusions, PID-reuse rail, scope resolution), then counted
//!   by the breaker, then performed.
//! - A rule whose breaker trips gets one `disarmed` record; the kernel plan is rewritten with
//!   the rule in monitor mode ([`PlanControl`]), so the kernel records `would_kill` for it.

use std::{
    collections::{HashMap, HashSet},
    net::IpAddr,
    rc::Rc,
};

use enforcer_common::event::EventHeader;
use enforcer_policy::{CompiledPolicy, Enforcement, KillScope, Mode, RuleInfo};
use serde_json::Value;

use crate::{
    actions::{
        breaker::{Admission, Breaker, Limits, MonotonicClock, Trip},
        error::KillError,
        kill::boot_now_ns,
        scope::{Killer, Target},
    },
    audit::{Action, BreakerTrip, ConnectionAbort, Outcome, Record, Report},
    clock::BootClock,
    loader::plan_sync::PlanError,
};

/// Downgrades disarmed rules in the kernel plan.
pub(crate) trait PlanControl: std::fmt::Debug {
    /// Rewrites the kernel plan with the rules in `disarmed` in monitor mode; returns the
    /// number of entries written.
    fn disarm(&mut self, disarmed: &HashSet<u32>) -> Result<usize, PlanError>;

    /// Writes the connect plan entry of an address learned from DNS answers, with the learned
    /// rules that hold for it now (none: the entry goes back to what the static plan says).
    fn learned(&mut self, ip: IpAddr, rules: &[u32]) -> Result<(), PlanError>;

    /// Makes `policy` the plan as generation `generation` (a reload, or the restore of the
    /// previous policy after a failed one): writes its entries with the rules in `disarmed` in
    /// monitor mode and the `learned` addresses with their rules, then removes every entry of
    /// an earlier generation (`loader::plan_sweep`).
    fn reload(
        &mut self,
        policy: Rc<CompiledPolicy>,
        generation: u32,
        disarmed: &HashSet<u32>,
        learned: &[(IpAddr, Vec<u32>)],
    ) -> Result<PlanReload, PlanError>;
}

/// What a reload did to the kernel plan.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PlanReload {
    /// Entries written (the new generation's).
    pub(crate) written: usize,
    /// Entries of earlier generations removed.
    pub(crate) swept: usize,
    /// The two plans did not fit in a map side by side: the entries both hold were rewritten
    /// in place, the rest of the running plan swept, and only then the new plan written.
    pub(crate) swept_first: bool,
}

/// One enforcement (or alert) record to write for a rule.
#[derive(Debug)]
pub(crate) struct Act {
    /// What happened.
    pub(crate) action: Action,
    /// Why, when it matters.
    pub(crate) detail: Option<String>,
    /// Timing and outcome (enforcement records).
    pub(crate) report: Option<Report>,
    /// What tripped the breaker (`disarmed` records).
    pub(crate) breaker: Option<BreakerTrip>,
    /// The aborted connection of a refused TCP segment (`deny` records of the egress hook).
    pub(crate) connection: Option<ConnectionAbort>,
    /// `kernel` or `userspace`.
    pub(crate) decided_in: &'static str,
}

impl Act {
    /// An alert record.
    pub(crate) fn alert(detail: Option<String>) -> Self {
        Self {
            action: Action::Alert,
            detail,
            report: None,
            breaker: None,
            connection: None,
            decided_in: "userspace",
        }
    }

    /// The audit record of this act for `rule` on `event`.
    pub(crate) fn into_record(
        self,
        rule: &str,
        severity: &str,
        tier: &'static str,
        event: Value,
    ) -> Record {
        Record::Action {
            action: self.action,
            rule: rule.to_owned(),
            severity: severity.to_owned(),
            decided_in: self.decided_in,
            tier,
            detail: self.detail,
            report: self.report,
            breaker: self.breaker,
            connection: self.connection,
            event,
        }
    }
}

/// The breaker limits of the rules of `policy` with a `breaker:` override, by index.
fn overrides(policy: &CompiledPolicy, limits: Limits) -> HashMap<u32, Limits> {
    (0u32..)
        .zip(policy.rules())
        .filter(|(_, rule)| rule.breaker.is_some())
        .map(|(i, rule)| (i, limits.with_override(rule.breaker)))
        .collect()
}

/// The enforcement side of the handler: the kill path, the breaker, and the kernel plan.
#[derive(Debug)]
pub(crate) struct Enforcer<'p> {
    killer: Killer,
    /// The breaker's limits for rules without a `breaker:` override.
    limits: Limits,
    breaker: Breaker<MonotonicClock>,
    plan: Box<dyn PlanControl + 'p>,
    clock: BootClock,
    dry_run: bool,
}

impl<'p> Enforcer<'p> {
    /// An enforcer for `policy` (whose rules' `breaker:` overrides apply to `limits`).
    pub(crate) fn new(
        policy: &CompiledPolicy,
        killer: Killer,
        limits: Limits,
        plan: Box<dyn PlanControl + 'p>,
        clock: BootClock,
        dry_run: bool,
    ) -> Self {
        let mut breaker = Breaker::new(limits, MonotonicClock::default());
        for (i, limits) in overrides(policy, limits) {
            breaker.set_limits(i, limits);
        }
        Self {
            killer,
            limits,
            breaker,
            plan,
            clock,
            dry_run,
        }
    }

    /// The rules the kill breaker disarmed.
    pub(crate) fn disarmed(&self) -> &HashSet<u32> {
        self.breaker.disarmed()
    }

    /// Moves the kernel plan from `old` to generation `generation` of `new` with the
    /// `learned` addresses (already judged under `new`), then the breaker: a disarmed rule
    /// stays disarmed under the same id. Nothing changes here when the plan write fails.
    pub(crate) fn reload(
        &mut self,
        old: &CompiledPolicy,
        new: &Rc<CompiledPolicy>,
        generation: u32,
        learned: &[(IpAddr, Vec<u32>)],
    ) -> Result<PlanReload, PlanError> {
        let to = |index: u32| {
            let rule = old.rules().get(index as usize)?;
            super::generations::index_of(new, &rule.id)
        };
        let disarmed: HashSet<u32> = self
            .breaker
            .disarmed()
            .iter()
            .filter_map(|&i| to(i))
            .collect();
        let done = self
            .plan
            .reload(Rc::clone(new), generation, &disarmed, learned)?;
        self.breaker.rekey(to, overrides(new, self.limits));
        Ok(done)
    }

    /// Writes `policy` (the current one, whose indices the breaker uses) back as generation
    /// `generation` after a reload whose plan write failed.
    pub(crate) fn restore(
        &mut self,
        policy: &Rc<CompiledPolicy>,
        generation: u32,
        learned: &[(IpAddr, Vec<u32>)],
    ) -> Result<PlanReload, PlanError> {
        let disarmed = self.breaker.disarmed().clone();
        self.plan
            .reload(Rc::clone(policy), generation, &disarmed, learned)
    }

    fn act(&self, action: Action, detail: Option<String>, report: Report, by: &'static str) -> Act {
        Act {
            action,
            detail,
            report: Some(report),
            breaker: None,
            connection: None,
            decided_in: by,
        }
    }

    /// A report for `header`'s event acted on now.
    fn now(&self, header: &EventHeader, outcome: Outcome, errno: Option<i32>) -> Report {
        Report::new(
            &self.clock,
            header.timestamp_ns,
            boot_now_ns(),
            outcome,
            errno,
        )
    }

    /// The records of the kernel outcome `action`, taken by the plan entry of `rule`.
    pub(crate) fn kernel(
        &mut self,
        action: Action,
        rule: Option<(u32, &RuleInfo)>,
        header: &EventHeader,
        event: &Value,
    ) -> Vec<Act> {
        let at = header.timestamp_ns;
        let outcome = match action {
            Action::Deny | Action::Kill => Outcome::Performed,
            Action::KillFailed => Outcome::Failed,
            Action::Spared => Outcome::Spared,
            Action::WouldDeny | Action::WouldKill => match rule {
                Some((i, r)) if self.disarmed_not_monitor(i, r) => Outcome::Disarmed,
                _ => Outcome::WouldPerform,
            },
            // Not kernel outcomes (`outcome::actions` never yields them).
            Action::Alert | Action::Disarmed => Outcome::WouldPerform,
        };
        let detail = (outcome == Outcome::Disarmed)
            .then(|| "the rule is disarmed by the kill breaker".to_owned());
        let report = Report::kernel(&self.clock, at, outcome);
        let mut acts = vec![self.act(action, detail, report, "kernel")];
        if let (Action::Kill, Some((i, r))) = (action, rule) {
            acts.extend(self.after_kernel_kill(i, r, header, event));
        }
        acts
    }

    fn disarmed_not_monitor(&self, index: u32, rule: &RuleInfo) -> bool {
        self.breaker.is_disarmed(index) && !self.dry_run && rule.mode != Some(Mode::Monitor)
    }

    /// Counts a kernel kill toward the rule's breaker and widens it to the rule's scope.
    fn after_kernel_kill(
        &mut self,
        index: u32,
        rule: &RuleInfo,
        header: &EventHeader,
        event: &Value,
    ) -> Vec<Act> {
        let key = self.binary_key(header.tgid, event, false);
        let scope = rule.kill_scope;
        match self.breaker.admit(index, &key, header.cgroup_id) {
            Admission::Tripped(trip) => vec![self.disarm(rule, trip, header)],
            Admission::Disarmed if scope != KillScope::Process => {
                let detail = format!(
                    "kill_scope {scope} not applied: the rule is disarmed by the kill breaker"
                );
                let report = self.now(header, Outcome::Disarmed, None);
                vec![self.act(Action::WouldKill, Some(detail), report, "userspace")]
            }
            Admission::Disarmed => Vec::new(),
            Admission::Allowed => {
                let target = target(header, event);
                let widened = self
                    .killer
                    .prepare_extension(scope, target)
                    .and_then(|p| p.map(|p| self.killer.execute(p)).transpose());
                match widened {
                    Ok(None) => Vec::new(),
                    Ok(Some(done)) => {
                        let detail = format!(
                            "kill_scope {scope}: widened the kernel kill to {}",
                            done.what
                        );
                        let report = Report::new(
                            &self.clock,
                            header.timestamp_ns,
                            done.acted_boot_ns,
                            Outcome::Performed,
                            None,
                        );
                        vec![self.act(Action::Kill, Some(detail), report, "userspace")]
                    }
                    Err(err) => vec![self.failure(
                        header,
                        &format!("kill_scope {scope}: the kernel kill was not widened"),
                        &err,
                    )],
                }
            }
        }
    }

    /// The record of a userspace rule in monitor mode (or a dry run) that would kill.
    pub(crate) fn would_kill(&self, header: &EventHeader) -> Act {
        let report = self.now(header, Outcome::WouldPerform, None);
        self.act(Action::WouldKill, None, report, "userspace")
    }

    /// Kills `header`'s process (at the rule's scope) for userspace rule `rule`, unless the
    /// Writes the plan entry of an address learned from DNS answers (see
    /// [`PlanControl::learned`]); a failure is logged, the static plan still applies.
    pub(crate) fn learned(&mut self, ip: IpAddr, rules: &[u32]) {
        if let Err(err) = self.plan.learned(ip, rules) {
            tracing::warn!("cannot write the learned address {ip} into the connect plan: {err}");
        }
    }

    /// target is protected or the rule's breaker is (or now gets) disarmed.
    pub(crate) fn userspace_kill(
        &mut self,
        index: u32,
        rule: &RuleInfo,
        header: &EventHeader,
        event: &Value,
    ) -> Act {
        if self.breaker.is_disarmed(index) {
            let report = self.now(header, Outcome::Disarmed, None);
            let detail = "not killed: the rule is disarmed by the kill breaker".to_owned();
            return self.act(Action::WouldKill, Some(detail), report, "userspace");
        }
        let scope = rule.kill_scope;
        let prepared = match self.killer.prepare(scope, target(header, event)) {
            Ok(prepared) => prepared,
            Err(err) => return self.failure(header, "", &err),
        };
        let key = self.binary_key(header.tgid, event, true);
        match self.breaker.admit(index, &key, header.cgroup_id) {
            Admission::Allowed => {}
            Admission::Tripped(trip) => return self.disarm(rule, trip, header),
            Admission::Disarmed => {
                let report = self.now(header, Outcome::Disarmed, None);
                return self.act(Action::WouldKill, None, report, "userspace");
            }
        }
        match self.killer.execute(prepared) {
            Ok(done) => {
                let detail = (scope != KillScope::Process)
                    .then(|| format!("kill_scope {scope}: killed {}", done.what));
                let report = Report::new(
                    &self.clock,
                    header.timestamp_ns,
                    done.acted_boot_ns,
                    Outcome::Performed,
                    None,
                );
                self.act(Action::Kill, detail, report, "userspace")
            }
            Err(err) => self.failure(header, "", &err),
        }
    }

    /// A `spared` (protected target) or `kill_failed` record for `err`.
    fn failure(&self, header: &EventHeader, context: &str, err: &KillError) -> Act {
        let detail = if context.is_empty() {
            err.to_string()
        } else {
            format!("{context}: {err}")
        };
        if err.is_protected() {
            let report = self.now(header, Outcome::Spared, None);
            return self.act(Action::Spared, Some(detail), report, "userspace");
        }
        let report = self.now(header, Outcome::Failed, err.errno());
        self.act(Action::KillFailed, Some(detail), report, "userspace")
    }

    /// The `disarmed` record of a rule whose breaker just tripped; its kernel plan entries
    /// are rewritten in monitor mode first.
    fn disarm(&mut self, rule: &RuleInfo, trip: Trip, header: &EventHeader) -> Act {
        let window = humantime::format_duration(trip.limits.window);
        let mut detail = format!(
            "rule {} disarmed by the kill breaker: {} distinct binaries and {} distinct cgroups within {window} (limit {}); it kills nothing more until the engine restarts",
            rule.id, trip.binaries, trip.cgroups, trip.limits.max_targets
        );
        tracing::warn!("{detail}");
        if rule.kernel == Enforcement::Kernel && !rule.disabled {
            match self.plan.disarm(self.breaker.disarmed()) {
                Ok(n) => detail.push_str(&format!(
                    "; kernel plan rewritten ({n} entries), the kernel records would_kill for it"
                )),
                Err(err) => {
                    tracing::error!(
                        "cannot downgrade rule {} in the kernel plan: {err}",
                        rule.id
                    );
                    detail.push_str(&format!(
                        "; rewriting the kernel plan failed, the kernel may still kill for it: {err}"
                    ));
                }
            }
        }
        let report = self.now(header, Outcome::Disarmed, None);
        let mut act = self.act(Action::Disarmed, Some(detail), report, "userspace");
        act.breaker = Some(BreakerTrip {
            binaries: trip.binaries,
            cgroups: trip.cgroups,
            max_targets: trip.limits.max_targets,
            window_s: trip.limits.window.as_secs(),
        });
        act
    }

    /// What the breaker counts as the binary of `pid`: for a `live` (pinned) process its
    /// running executable (canonical), else the event's exec path (a process the kernel killed
    /// may be gone and its pid reused), else the command name.
    fn binary_key(&self, pid: u32, event: &Value, live: bool) -> String {
        if live && let Ok(exe) = self.killer.proc().exe(pid) {
            return exe.display().to_string();
        }
        match event["exec"]["file"]["path"].as_str() {
            Some(path) if !path.is_empty() => path.to_owned(),
            _ => format!("comm:{}", event["process"]["comm"].as_str().unwrap_or("?")),
        }
    }
}

/// The kill target an event names (`process.pgid` when the event carries one).
fn target(header: &EventHeader, event: &Value) -> Target {
    Target {
        pid: header.tgid,
        event_boot_ns: header.timestamp_ns,
        cgroup_id: (header.cgroup_id != 0).then_some(header.cgroup_id),
        pgid: event["process"]["pgid"]
            .as_u64()
            .and_then(|p| u32::try_from(p).ok()),
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! An enforcer and a handler for tests, with a kernel plan that records the downgrades.
    #![allow(clippy::expect_used)]
    use std::{cell::RefCell, path::PathBuf};

    use super::*;
    use crate::actions::{
        cgroupfs::CgroupFs,
        procfs::ProcFs,
        protect::{EngineIdentity, Protection},
    };

    /// One `reload` call: the generation, the disarmed rules and the learned addresses.
    pub(crate) type FakeReload = (u32, HashSet<u32>, Vec<(IpAddr, Vec<u32>)>);

    /// Records every `disarm` call (`.0`) and every `reload` call (`.1`); a reload fails
    /// while `.2` is set.
    #[derive(Clone, Debug, Default)]
    pub(crate) struct FakePlan(
        pub(crate) Rc<RefCell<Vec<HashSet<u32>>>>,
        pub(crate) Rc<RefCell<Vec<FakeReload>>>,
        pub(crate) Rc<std::cell::Cell<bool>>,
    );

    impl PlanControl for FakePlan {
        fn disarm(&mut self, disarmed: &HashSet<u32>) -> Result<usize, PlanError> {
            self.0.borrow_mut().push(disarmed.clone());
            Ok(disarmed.len())
        }

        fn learned(&mut self, _ip: IpAddr, _rules: &[u32]) -> Result<(), PlanError> {
            Ok(())
        }

        fn reload(
            &mut self,
            _policy: Rc<CompiledPolicy>,
            generation: u32,
            disarmed: &HashSet<u32>,
            learned: &[(IpAddr, Vec<u32>)],
        ) -> Result<PlanReload, PlanError> {
            if self.2.get() {
                return Err(PlanError::MissingMap("EXEC_NAME_PLAN"));
            }
            self.1
                .borrow_mut()
                .push((generation, disarmed.clone(), learned.to_vec()));
            Ok(PlanReload {
                written: 1,
                swept: 0,
                swept_first: false,
            })
        }
    }

    /// An enforcer on the real /proc and cgroup v2 mount, protecting this test process and
    /// `never_kill`; `clock` must be the handler's (both convert kernel timestamps).
    pub(crate) fn enforcer<'p>(
        policy: &CompiledPolicy,
        never_kill: &[PathBuf],
        limits: Limits,
        plan: FakePlan,
        clock: BootClock,
        dry_run: bool,
    ) -> Enforcer<'p> {
        let proc = ProcFs::real();
        let protection = Protection::new(EngineIdentity::current(&proc), never_kill);
        let killer = Killer::new(proc, CgroupFs::discover(), protection);
        Enforcer::new(policy, killer, limits, Box::new(plan), clock, dry_run)
    }

    /// A signal-tier handler for `policy` with a default [`enforcer`] (nothing spared beyond
    /// the built-ins, default breaker, a fake plan), its sink writing `dir/audit.jsonl`, and
    /// that path.
    pub(crate) fn handler<'p>(
        policy: &Rc<CompiledPolicy>,
        dir: &std::path::Path,
    ) -> (
        crate::engine::handler::Handler<'p>,
        crate::engine::Sink,
        PathBuf,
    ) {
        let log = dir.join("audit.jsonl");
        let sink = crate::engine::Sink::open(Some(&log), false).expect("audit log");
        let clock = BootClock::new().expect("boot clock");
        let enforcer = enforcer(
            policy,
            &[],
            Limits::DEFAULT,
            FakePlan::default(),
            clock,
            false,
        );
        let handler = crate::engine::handler::Handler::new(
            Rc::clone(policy),
            1,
            "signal",
            false,
            clock,
            enforcer,
        );
        (handler, sink, log)
    }
}

#[cfg(test)]
#[path = "enforce_tests.rs"]
mod tests;
