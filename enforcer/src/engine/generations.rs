//! The policy generations the daemon knows: the current one and the few before it.
//!
//! A kernel record names the plan entry that decided it by rule index and generation
//! (`EventHeader::rule_index`, `EventHeader::generation`). Records written just before a reload
//! are still in the ring buffers when the daemon has moved on, and a rule index means nothing
//! without its generation's rule table. [`Generations::translate`] moves such a verdict onto
//! the current generation's rule of the same id; a rule the reload removed keeps its old
//! generation and is named from that generation's table ([`Generations::rule_of`]).

use std::{collections::VecDeque, rc::Rc};

use enforcer_common::event::EventHeader;
use enforcer_policy::{CompiledPolicy, RuleInfo};

/// Earlier generations kept for naming (a record older than that is named `#<index>`).
pub(crate) const EARLIER_KEPT: usize = 4;

/// The current policy generation and up to [`EARLIER_KEPT`] earlier ones.
#[derive(Debug)]
pub(crate) struct Generations {
    current: (u32, Rc<CompiledPolicy>),
    earlier: VecDeque<(u32, Rc<CompiledPolicy>)>,
}

impl Generations {
    /// Generation `generation` of `policy`, the first.
    pub(crate) fn new(generation: u32, policy: Rc<CompiledPolicy>) -> Self {
        Self {
            current: (generation, policy),
            earlier: VecDeque::new(),
        }
    }

    /// The current generation's number.
    pub(crate) fn generation(&self) -> u32 {
        self.current.0
    }

    /// The current generation's policy.
    pub(crate) fn current(&self) -> &Rc<CompiledPolicy> {
        &self.current.1
    }

    /// Makes `policy` current as `generation`; the one it replaces is kept for naming.
    pub(crate) fn advance(&mut self, generation: u32, policy: Rc<CompiledPolicy>) {
        let previous = std::mem::replace(&mut self.current, (generation, policy));
        self.earlier.push_front(previous);
        self.earlier.truncate(EARLIER_KEPT);
    }

    fn of(&self, generation: u32) -> Option<&CompiledPolicy> {
        if generation == self.current.0 {
            return Some(&self.current.1);
        }
        self.earlier
            .iter()
            .find(|(g, _)| *g == generation)
            .map(|(_, p)| &**p)
    }

    /// Moves a verdict of an earlier generation onto the current generation's rule of the same
    /// id (index and generation rewritten). A header with no verdict (generation 0), of the
    /// current generation, or whose rule is gone, is left as it is.
    pub(crate) fn translate(&self, header: &mut EventHeader) {
        if header.generation == 0 || header.generation == self.current.0 {
            return;
        }
        let Some(rule) = self
            .of(header.generation)
            .and_then(|p| p.rules().get(header.rule_index as usize))
        else {
            return;
        };
        if let Some(index) = index_of(&self.current.1, &rule.id) {
            header.rule_index = index;
            header.generation = self.current.0;
        }
    }

    /// Whether `header`'s verdict is of the current generation (or is one the daemon built
    /// itself, generation 0).
    pub(crate) fn is_current(&self, header: &EventHeader) -> bool {
        header.generation == 0 || header.generation == self.current.0
    }

    /// The rule `header`'s verdict names, in the generation that wrote it.
    pub(crate) fn rule_of(&self, header: &EventHeader) -> Option<&RuleInfo> {
        // Records the daemon built itself (and tests) carry generation 0: the current one.
        let generation = match header.generation {
            0 => self.current.0,
            g => g,
        };
        self.of(generation)?.rules().get(header.rule_index as usize)
    }
}

/// The index of the rule `id` in `policy`.
pub(crate) fn index_of(policy: &CompiledPolicy, id: &str) -> Option<u32> {
    policy
        .rules()
        .iter()
        .position(|r| r.id == id)
        .and_then(|i| u32::try_from(i).ok())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn policy(ids: &[&str]) -> Rc<CompiledPolicy> {
        let rules: String = ids
            .iter()
            .map(|id| {
                format!(
                    "  - id: {id}\n    expression: exec.file.name == \"{id}\"\n    action: kill\n"
                )
            })
            .collect();
        Rc::new(enforcer_policy::load_str("p.yaml", &format!("rules:\n{rules}")).unwrap())
    }

    fn header(generation: u32, rule_index: u32) -> EventHeader {
        EventHeader {
            generation,
            rule_index,
            ..crate::pipeline::decode::test_header::<u8>(
                enforcer_common::event::EventKind::Exec,
                enforcer_common::event::Hook::TpSchedProcessExec,
            )
        }
    }

    #[test]
    fn verdicts_of_earlier_generations_move_to_the_rule_of_the_same_id() {
        let mut generations = Generations::new(1, policy(&["a", "b", "c"]));
        generations.advance(2, policy(&["c", "a"]));
        // Rule b (index 1 in generation 1) is gone: left as it is, named from generation 1.
        let mut gone = header(1, 1);
        generations.translate(&mut gone);
        assert_eq!((gone.generation, gone.rule_index), (1, 1));
        assert_eq!(generations.rule_of(&gone).unwrap().id, "b");
        // Rule c moved from index 2 to index 0.
        let mut moved = header(1, 2);
        generations.translate(&mut moved);
        assert_eq!((moved.generation, moved.rule_index), (2, 0));
        assert_eq!(generations.rule_of(&moved).unwrap().id, "c");
        // The current generation, and records with no verdict, are left alone.
        for (g, i) in [(2, 1), (0, 1)] {
            let mut h = header(g, i);
            generations.translate(&mut h);
            assert_eq!((h.generation, h.rule_index), (g, i));
            assert_eq!(generations.rule_of(&h).unwrap().id, "a");
        }
    }

    #[test]
    fn only_a_few_earlier_generations_are_kept() {
        let mut generations = Generations::new(1, policy(&["a"]));
        let last = 2 + u32::try_from(EARLIER_KEPT).unwrap();
        for g in 2..=last {
            generations.advance(g, policy(&["z"]));
        }
        let mut first = header(1, 0);
        generations.translate(&mut first);
        assert_eq!(first.generation, 1, "generation 1 is forgotten");
        assert!(generations.rule_of(&first).is_none());
        assert_eq!(
            generations.rule_of(&header(2, 0)).unwrap().id,
            "z",
            "the last {EARLIER_KEPT} are kept"
        );
        assert_eq!(generations.generation(), last);
    }
}
