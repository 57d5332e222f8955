//! A policy reload, on the handler's side: the next generation's policy becomes current, the
//! kernel plan is rewritten (through the enforcer), and the userspace state follows the rules
//! by id (learned addresses are judged again, the breaker keeps its disarmed rules).

use std::rc::Rc;

use enforcer_policy::{CompiledPolicy, ratelimit::RateLimiter};

use super::{Handler, lifecycle_chains};
use crate::{engine::enforce::PlanReload, loader::plan_sync::PlanError};

impl Handler<'_> {
    /// Makes `policy` current as generation `generation`. When the kernel plan cannot be
    /// written, nothing changes in userspace and the error is returned: the caller then
    /// writes the current policy back ([`Handler::restore`]).
    pub(crate) fn reload(
        &mut self,
        policy: Rc<CompiledPolicy>,
        generation: u32,
    ) -> Result<PlanReload, PlanError> {
        let learned = self.learned.under(&policy);
        let done = self.enforcer.reload(
            self.generations.current(),
            &policy,
            generation,
            &learned.all(),
        )?;
        self.learned = learned;
        self.generations.advance(generation, Rc::clone(&policy));
        self.enricher
            .set_lifecycle_chains(lifecycle_chains(&policy));
        self.env_selector = policy.entry_selector("exec.envs");
        // `every:` periods are per rule index: they start again.
        self.limiter = RateLimiter::default();
        if let Some(hashing) = self.hashing.as_mut() {
            hashing.rules = policy.rules_reading("exec.file.hash.");
        }
        Ok(done)
    }

    /// Writes the current policy back into the kernel as generation `restored`, after the
    /// reload to `failed` (of `attempted`) could not be written: records of both generations
    /// may be in the ring, and are named after the right rules.
    pub(crate) fn restore(
        &mut self,
        attempted: Rc<CompiledPolicy>,
        failed: u32,
        restored: u32,
    ) -> Result<PlanReload, PlanError> {
        let current = Rc::clone(self.policy());
        self.generations.advance(failed, attempted);
        self.generations.advance(restored, Rc::clone(&current));
        self.enforcer
            .restore(&current, restored, &self.learned.all())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use enforcer_common::event::OUTCOME_KILLED;

    use super::*;
    use crate::{
        actions::breaker::Limits,
        audit::AuditReader,
        clock::BootClock,
        engine::{
            enforce::testing::{self, FakePlan},
            sink::Sink,
        },
        pipeline::decode::{as_bytes, test_exec_record},
    };

    fn kill_rules(ids: &[(&str, &str)]) -> Rc<CompiledPolicy> {
        let rules: String = ids
            .iter()
            .map(|(id, name)| {
                format!(
                    "  - id: {id}\n    expression: exec.file.name == \"{name}\"\n    action: kill\n"
                )
            })
            .collect();
        Rc::new(enforcer_policy::load_str("p.yaml", &format!("rules:\n{rules}")).unwrap())
    }

    #[test]
    fn kernel_records_of_the_previous_generation_name_their_rules() {
        let old = kill_rules(&[("gone", "xmrig"), ("kept", "true")]);
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit.jsonl");
        let mut sink = Sink::open(Some(&log), false).unwrap();
        let clock = BootClock::new().unwrap();
        let plan = FakePlan::default();
        let enforcer = testing::enforcer(&old, &[], Limits::DEFAULT, plan.clone(), clock, false);
        let mut handler = Handler::new(Rc::clone(&old), 1, "signal", false, clock, enforcer);

        let new = kill_rules(&[("added", "minerd"), ("kept", "true")]);
        let done = handler.reload(Rc::clone(&new), 2).unwrap();
        assert_eq!(done.written, 1);
        assert_eq!(plan.1.borrow().len(), 1);
        assert_eq!(plan.1.borrow()[0].0, 2, "written as generation 2");
        assert!(Rc::ptr_eq(handler.policy(), &new));

        // Two kills the kernel made under generation 1, read after the reload.
        for rule_index in [1, 0] {
            let mut rec = test_exec_record();
            rec.header.outcome = OUTCOME_KILLED;
            rec.header.generation = 1;
            rec.header.rule_index = rule_index;
            handler.handle(as_bytes(&rec), &mut sink).unwrap();
        }
        sink.flush().unwrap();
        let (records, _) = AuditReader::read_path(&log).unwrap();
        let rules: Vec<_> = records
            .iter()
            .filter(|r| r["action"] == "kill")
            .map(|r| r["rule"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(rules, ["kept", "gone"], "{records:#?}");

        // A reload whose kernel write fails changes nothing in userspace.
        plan.2.set(true);
        let third = kill_rules(&[("third", "x")]);
        assert!(handler.reload(Rc::clone(&third), 3).is_err());
        assert!(Rc::ptr_eq(handler.policy(), &new));
        assert!(
            handler.restore(third, 3, 4).is_err(),
            "the fake fails every write"
        );
        plan.2.set(false);
        handler
            .restore(kill_rules(&[("third", "x")]), 3, 4)
            .unwrap();
        assert_eq!(plan.1.borrow().last().unwrap().0, 4);
    }
}
