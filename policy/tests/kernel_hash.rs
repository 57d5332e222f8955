//! Kernel lowering of content-hash rules (`exec_hashes` in the plan, matched in the lsm tier by
//! `bpf_ima_file_hash`), and which rules need executables hashed at all.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use enforcer_policy::{Enforcement, PlanEntry, load_str};

const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

fn entry(value: &str, rules: &[u32]) -> PlanEntry {
    PlanEntry {
        value: value.to_string(),
        rules: rules.to_vec(),
    }
}

#[test]
fn kill_rules_on_hash_lists_lower_to_exec_hashes() {
    let text = format!(
        "lists:\n  - name: bad\n    type: hash\n    items: [{A}, {B}]\nrules:\n  - id: by-list\n    expression: exec.file.hash.sha256 in bad\n    action: kill\n  - id: one\n    expression: exec.file.hash.sha256 == \"{A}\" || exec.file.hash.sha256 == \"{}\"\n    action: kill\n  - id: watch\n    expression: exec.file.hash.sha256 == \"{B}\"\n    action: alert\n  - id: mixed\n    expression: exec.file.hash.sha256 == \"{B}\" && exec.file.name == \"x\"\n    action: kill\n",
        A.to_uppercase()
    );
    let p = load_str("p.yaml", &text).unwrap();
    let plan = p.lower();
    // The uppercase literal can never equal a computed (lowercase) hash: left out.
    assert_eq!(plan.exec_hashes, vec![entry(A, &[0, 1]), entry(B, &[0])]);
    // They stay userspace rules: the signal tier and unhashed files need them.
    assert!(p.rules().iter().all(|r| r.kernel == Enforcement::Userspace));
    assert_eq!(p.hash_needed(), vec![true, true, true, true]);
}

#[test]
fn rules_on_empty_hash_lists_need_no_hashing() {
    let text = "lists:\n  - name: none\n    type: hash\n    items: []\nrules:\n  - id: empty\n    expression: exec.file.hash.sha256 in none\n    action: kill\n  - id: name\n    expression: exec.file.name == \"xmrig\"\n    action: deny\n";
    let p = load_str("p.yaml", text).unwrap();
    assert_eq!(p.hash_needed(), vec![false, false]);
    assert!(p.lower().exec_hashes.is_empty());
}

#[test]
fn the_default_policy_hashes_only_when_its_list_has_values() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("default");
    let p = enforcer_policy::load(&dir).unwrap();
    let list = std::fs::read_to_string(dir.join("lists/miner_sha256.txt")).unwrap();
    let listed = list
        .lines()
        .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'));
    assert_eq!(p.hash_needed().contains(&true), listed);
    assert_eq!(!p.lower().exec_hashes.is_empty(), listed);
}
