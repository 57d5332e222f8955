//! The kernel plan of a running engine ([`LivePlan`]): the one writer of the plan maps after
//! start, for the kill breaker's downgrades, the addresses learned from DNS answers and the
//! policy reloads.

use std::{
    cell::RefCell,
    collections::{HashMap, HashSet},
    net::IpAddr,
    rc::Rc,
};

use enforcer_policy::CompiledPolicy;

use super::enforce;
use crate::loader::{self, connect_plan, inode_plan::InodePlan, plan_sync};

/// The loaded kernel plan, rewritten when the kill breaker disarms a rule, when DNS answers
/// teach an address, and when the policy is reloaded.
#[derive(Debug)]
pub(super) struct LivePlan {
    /// The loaded programs and maps (shared with the run loop, which reads the counters and
    /// attaches programs a reloaded policy needs).
    loaded: Rc<RefCell<loader::Loaded>>,
    policy: Rc<CompiledPolicy>,
    generation: u32,
    /// Rules the kill breaker disarmed so far.
    disarmed: HashSet<u32>,
    /// Learned addresses and their rules, as written (rewritten on a disarm).
    learned: HashMap<IpAddr, Vec<u32>>,
    /// The verdicts the daemon wrote by file identity (content hash matches).
    inode: Rc<RefCell<InodePlan>>,
}

impl LivePlan {
    /// The plan of generation `generation` of `policy`, as written into `loaded`'s maps at
    /// start, with the daemon's inode verdicts `inode`.
    pub(super) fn new(
        loaded: Rc<RefCell<loader::Loaded>>,
        policy: Rc<CompiledPolicy>,
        generation: u32,
        inode: Rc<RefCell<InodePlan>>,
    ) -> Self {
        Self {
            loaded,
            policy,
            generation,
            disarmed: HashSet::new(),
            learned: HashMap::new(),
            inode,
        }
    }
}

impl enforce::PlanControl for LivePlan {
    fn disarm(&mut self, disarmed: &HashSet<u32>) -> Result<usize, plan_sync::PlanError> {
        self.disarmed.clone_from(disarmed);
        let ebpf = &mut self.loaded.borrow_mut().ebpf;
        let written = plan_sync::write_with(ebpf, &self.policy, self.generation, disarmed)?
            + self.inode.borrow_mut().disarm(disarmed)?;
        for (ip, rules) in &self.learned {
            connect_plan::write_learned(ebpf, &self.policy, self.generation, disarmed, *ip, rules)?;
        }
        Ok(written + self.learned.len())
    }

    fn learned(&mut self, ip: IpAddr, rules: &[u32]) -> Result<(), plan_sync::PlanError> {
        connect_plan::write_learned(
            &mut self.loaded.borrow_mut().ebpf,
            &self.policy,
            self.generation,
            &self.disarmed,
            ip,
            rules,
        )?;
        if rules.is_empty() {
            self.learned.remove(&ip);
        } else {
            self.learned.insert(ip, rules.to_vec());
        }
        Ok(())
    }

    fn reload(
        &mut self,
        policy: Rc<CompiledPolicy>,
        generation: u32,
        disarmed: &HashSet<u32>,
        learned: &[(IpAddr, Vec<u32>)],
    ) -> Result<enforce::PlanReload, plan_sync::PlanError> {
        // Held from the first write on: a failure part-way leaves entries of `generation`, and
        // the restore that follows must write over them with a later one.
        self.policy = policy;
        self.generation = generation;
        self.disarmed.clone_from(disarmed);
        self.learned = learned.iter().cloned().collect();
        let ebpf = &mut self.loaded.borrow_mut().ebpf;
        let mut swept_first = None;
        let mut written = match plan_sync::write_with(ebpf, &self.policy, generation, disarmed) {
            // The running plan and the new one do not fit in a map side by side (each fits
            // alone: checked first). Rewrite in place what both hold, sweep the rest of the
            // running plan, then write the new one: what both deny is never let through; what
            // only the running one denies ends before what only the new one denies begins.
            Err(plan_sync::PlanError::Full { map, .. }) => {
                tracing::warn!(
                    "plan map {map} cannot hold the running and the new policy's entries together: rewriting the shared entries, sweeping the old ones, then writing the new ones"
                );
                plan_sync::rewrite_existing(ebpf, &self.policy, generation, disarmed)?;
                // The learned addresses' keys are in the tries already: rewritten in place
                // too, before the sweep (written again below, like every reload's).
                for (ip, rules) in learned {
                    connect_plan::write_learned(
                        ebpf,
                        &self.policy,
                        generation,
                        disarmed,
                        *ip,
                        rules,
                    )?;
                }
                swept_first = Some(loader::plan_sweep::sweep(ebpf, generation)?);
                plan_sync::write_with(ebpf, &self.policy, generation, disarmed)?
            }
            other => other?,
        };
        for (ip, rules) in learned {
            connect_plan::write_learned(ebpf, &self.policy, generation, disarmed, *ip, rules)?;
            written += 1;
        }
        let swept = self.inode.borrow_mut().renew(generation)?
            + loader::plan_sweep::sweep(ebpf, generation)?
            + swept_first.unwrap_or(0);
        Ok(enforce::PlanReload {
            written,
            swept,
            swept_first: swept_first.is_some(),
        })
    }
}
