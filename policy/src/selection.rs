//! Which entries of a list field the policy looks at. The daemon keeps only those in the
//! records it writes (`exec.envs`: an environment holds tokens and passwords; an entry that no
//! test of any rule can match is evidence of nothing and is left out, and counted).

use std::sync::Arc;

use crate::{
    ir::{Cond, CondNode, Matcher},
    policy::CompiledPolicy,
    schema,
};

/// The matchers of every test of a policy on one list field (negated tests by their positive
/// matcher: the entry `!=` compares with is the evidence).
#[derive(Debug, Default)]
pub struct EntrySelector {
    matchers: Vec<Arc<Matcher>>,
}

impl EntrySelector {
    /// Whether some test of the policy matches `entry` on its own.
    pub fn selects(&self, entry: &str) -> bool {
        self.matchers.iter().any(|m| m.matches_str(entry))
    }
}

fn collect(cond: &Cond, field: &str, out: &mut Vec<Arc<Matcher>>) {
    match &cond.node {
        CondNode::Const(_) => {}
        CondNode::And(all) | CondNode::Or(all) => all.iter().for_each(|c| collect(c, field, out)),
        CondNode::Not(inner) | CondNode::Macro(_, inner) => collect(inner, field, out),
        CondNode::Test(test) => {
            if schema::def(test.field).name == field {
                out.push(Arc::clone(&test.matcher));
            }
        }
    }
}

impl CompiledPolicy {
    /// The selector of the entries of list field `field` (a dotted name, e.g. `exec.envs`)
    /// that the policy's rules test.
    pub fn entry_selector(&self, field: &str) -> EntrySelector {
        let mut matchers = Vec::new();
        for cond in &self.conds {
            collect(cond, field, &mut matchers);
        }
        EntrySelector { matchers }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[test]
    fn entries_any_test_matches_are_selected_through_macros_and_negations() {
        let policy = crate::load_str(
            "p.yaml",
            r#"macros:
  - name: preload
    expression: exec.envs startswith "LD_PRELOAD="
rules:
  - id: pool-url
    expression: exec.envs contains "stratum+tcp://" && !preload
    action: kill
  - id: not-prod
    expression: exec.envs != "STAGE=prod" && exec.file.name == "x"
    action: alert
  - id: by-args
    expression: exec.args contains "SECRET"
    action: alert
"#,
        )
        .unwrap();
        let envs = policy.entry_selector("exec.envs");
        assert!(envs.selects("POOL=stratum+tcp://pool.example:3333"));
        assert!(
            envs.selects("LD_PRELOAD=/tmp/x.so"),
            "inside a macro, negated"
        );
        assert!(envs.selects("STAGE=prod"), "the entry != compares with");
        assert!(!envs.selects("STAGE=dev"));
        assert!(!envs.selects("AWS_SECRET_ACCESS_KEY=abc"));
        assert!(!envs.selects("SECRET"), "a test on another field");
        let none = crate::load_str(
            "p.yaml",
            "rules:\n  - id: a\n    expression: exec.file.name == \"x\"\n    action: alert\n",
        )
        .unwrap();
        assert!(!none.entry_selector("exec.envs").selects("PATH=/bin"));
    }
}
