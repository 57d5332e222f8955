//! Which fields a compiled condition reads (macro bodies included).

use crate::{
    ir::{Cond, CondNode},
    schema,
};

/// Which fields `conds` test, by [`schema::FieldId`] (macro bodies included): `true` at the
/// index of each field read.
pub fn fields_read<'c>(conds: impl IntoIterator<Item = &'c Cond>) -> Vec<bool> {
    let read = std::cell::RefCell::new(vec![false; schema::FIELDS.len()]);
    for cond in conds {
        cond.reads(&|field| {
            if let Some(slot) = read.borrow_mut().get_mut(usize::from(field)) {
                *slot = true;
            }
            false
        });
    }
    read.into_inner()
}

/// Whether `cond` reads a field whose dotted name starts with `prefix`.
pub fn reads(cond: &Cond, prefix: &str) -> bool {
    match &cond.node {
        CondNode::Const(_) => false,
        CondNode::And(all) | CondNode::Or(all) => all.iter().any(|c| reads(c, prefix)),
        CondNode::Not(inner) | CondNode::Macro(_, inner) => reads(inner, prefix),
        CondNode::Test(test) => schema::def(test.field).name.starts_with(prefix),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    #[test]
    fn rules_reading_a_field_prefix_are_found_through_macros_and_negations() {
        let policy = crate::load_str(
            "p.yaml",
            r#"macros:
  - name: bad_hash
    expression: exec.file.hash.sha256 == "00"
rules:
  - id: by-name
    expression: exec.file.name == "x"
    action: deny
  - id: by-hash
    expression: exec.file.name == "y" || !bad_hash
    action: kill
  - id: net
    expression: dns.question.name == "pool.example"
    action: alert
"#,
        )
        .unwrap();
        assert_eq!(
            policy.rules_reading("exec.file.hash."),
            [false, true, false]
        );
    }
}
