#![allow(clippy::unwrap_used)]

use super::*;
use crate::enrich::process_cache::Origin;

fn record(tgid: u32, ppid: u32, exe: &str, comm: &str) -> ProcessRecord {
    ProcessRecord {
        tgid,
        ppid,
        start_ns: u64::from(tgid) * 1_000,
        exe: exe.to_owned(),
        comm: comm.to_owned(),
        argv: vec![exe.to_owned()],
        argv_truncated: false,
        uid: Some(1000),
        cgroup_id: None,
        cgroup_path: None,
        container: None,
        exited_at: None,
        origin: Origin::Exec,
    }
}

/// A shell (30) started by a terminal (20) started by init (1), parent first.
fn chain() -> Vec<ProcessRecord> {
    vec![
        record(30, 20, "/usr/bin/bash", "bash"),
        record(20, 1, "/usr/bin/xterm \"x\"", "xterm"),
        record(1, 0, "", "systemd"),
    ]
}

fn refs(records: &[ProcessRecord]) -> Vec<&ProcessRecord> {
    records.iter().collect()
}

/// What serializing freshly built parts writes.
fn fresh_json(records: &[ProcessRecord]) -> String {
    let parts: Vec<AncestorPart> = records.iter().map(AncestorPart::new).collect();
    serde_json::to_string(&parts).unwrap()
}

#[test]
fn a_kept_chain_writes_and_reads_what_fresh_parts_do() {
    let records = chain();
    let mut memo = AncestryMemo::default();
    let first = memo.chain(&refs(&records));
    let second = memo.chain(&refs(&records));
    assert!(
        Rc::ptr_eq(&first.json, &second.json),
        "the second is shared"
    );
    let expected = fresh_json(&records);
    assert!(
        expected.contains(r#""path":"/usr/bin/xterm \"x\"""#),
        "{expected}"
    );
    assert_eq!(serde_json::to_string(&second).unwrap(), expected);
    // The general path turns it into a tree: the same array.
    let tree = serde_json::to_value(&second).unwrap();
    assert_eq!(
        tree,
        serde_json::from_str::<serde_json::Value>(&expected).unwrap()
    );
    let pids: Vec<u32> = second.iter().map(|part| part.pid).collect();
    assert_eq!(pids, [30, 20, 1]);
    assert!(
        second[2].file.is_none(),
        "init's executable is unknown here"
    );
}

#[test]
fn any_change_of_an_ancestor_builds_a_new_chain() {
    type Change = fn(&mut Vec<ProcessRecord>);
    let changes: [(&str, Change); 7] = [
        ("the grandparent execs", |r| {
            r[1].exe = "/usr/bin/tmux".into();
        }),
        ("the parent renames itself", |r| r[0].comm = "bash2".into()),
        ("the parent's uid changes", |r| r[0].uid = Some(0)),
        ("the grandparent's uid becomes unknown", |r| r[1].uid = None),
        ("the parent is reparented", |r| r[0].ppid = 1),
        ("the parent's pid is reused", |r| r[0].start_ns += 1),
        ("the grandparent is gone from the cache", |r| {
            r.remove(1);
        }),
    ];
    for (what, change) in changes {
        let mut records = chain();
        let mut memo = AncestryMemo::default();
        let before = memo.chain(&refs(&records));
        change(&mut records);
        let after = memo.chain(&refs(&records));
        assert!(!Rc::ptr_eq(&before.json, &after.json), "{what}: rebuilt");
        assert_eq!(
            serde_json::to_string(&after).unwrap(),
            fresh_json(&records),
            "{what}"
        );
        // And the new chain is the one kept.
        let again = memo.chain(&refs(&records));
        assert!(Rc::ptr_eq(&after.json, &again.json), "{what}: kept");
    }
}

#[test]
fn an_empty_chain_is_an_empty_array_and_not_kept() {
    let mut memo = AncestryMemo::default();
    let none = memo.chain(&[]);
    assert_eq!(serde_json::to_string(&none).unwrap(), "[]");
    assert!(none.is_empty());
    assert_eq!(memo.len(), 0);
}

#[test]
fn the_memo_holds_at_most_its_bound_of_parents() {
    let mut memo = AncestryMemo::default();
    let init = record(1, 0, "/sbin/init", "init");
    for pid in 2..u32::try_from(MEMO_PARENTS + 50).unwrap() {
        let parent = record(pid, 1, "/usr/bin/bash", "bash");
        memo.chain(&[&parent, &init]);
        assert!(memo.len() <= MEMO_PARENTS, "{} parents kept", memo.len());
    }
    assert!(memo.len() >= 1);
}
