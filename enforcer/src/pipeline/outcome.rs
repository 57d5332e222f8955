//! The enforcement records a kernel verdict stands for: one per outcome bit, in a fixed order.

use enforcer_common::event::{
    OUTCOME_DENIED, OUTCOME_KILL_FAILED, OUTCOME_KILLED, OUTCOME_SPARED, OUTCOME_WOULD_DENY,
    OUTCOME_WOULD_KILL,
};

use crate::audit::Action;

/// The actions recorded for the kernel's `outcome` bits, in the order they are written.
pub fn actions(outcome: u32) -> impl Iterator<Item = Action> {
    [
        (OUTCOME_DENIED, Action::Deny),
        (OUTCOME_KILLED, Action::Kill),
        (OUTCOME_KILL_FAILED, Action::KillFailed),
        (OUTCOME_WOULD_DENY, Action::WouldDeny),
        (OUTCOME_WOULD_KILL, Action::WouldKill),
        (OUTCOME_SPARED, Action::Spared),
    ]
    .into_iter()
    .filter(move |(bit, _)| outcome & bit != 0)
    .map(|(_, action)| action)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bit_gives_its_action() {
        assert_eq!(actions(0).count(), 0);
        assert_eq!(
            actions(OUTCOME_DENIED | OUTCOME_KILLED).collect::<Vec<_>>(),
            [Action::Deny, Action::Kill]
        );
        assert_eq!(
            actions(OUTCOME_WOULD_DENY | OUTCOME_WOULD_KILL).collect::<Vec<_>>(),
            [Action::WouldDeny, Action::WouldKill]
        );
        assert_eq!(
            actions(OUTCOME_SPARED).collect::<Vec<_>>(),
            [Action::Spared]
        );
    }
}
