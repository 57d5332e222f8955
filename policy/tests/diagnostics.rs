//! Every diagnostic kind, with the exact position (line:col in the YAML file) it must report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{errors, positions};
use enforcer_policy::{Code, load_str};

#[test]
fn unknown_field_in_plain_scalar() {
    let src = "rules:\n  - id: r1\n    expression: exec.file.nme == \"xmrig\"\n";
    assert_eq!(
        positions(src),
        vec![(Code::UnknownField, "3:17".to_string())]
    );
    let text = errors(src).to_string();
    assert!(text.contains("unknown field `exec.file.nme`"), "{text}");
    assert!(text.contains("did you mean `exec.file.name`?"), "{text}");
    assert!(
        text.contains("3 |     expression: exec.file.nme == \"xmrig\""),
        "{text}"
    );
    assert!(text.contains("  |                 ^^^^^^^^^^^^^"), "{text}");
}

#[test]
fn unknown_field_in_block_scalar() {
    let src = "rules:\n  - id: r1\n    expression: >\n      exec.file.name == \"a\" ||\n      exec.bogus == \"b\"\n";
    assert_eq!(
        positions(src),
        vec![(Code::UnknownField, "5:7".to_string())]
    );
}

#[test]
fn unknown_field_in_literal_block_and_quoted() {
    let src = "rules:\n  - id: r1\n    expression: |\n      exec.file.name == 'a'\n        && exec.nope\n  - id: r2\n    expression: 'exec.file.name == \"x\" && dns.nope'\n";
    assert_eq!(
        positions(src),
        vec![
            (Code::UnknownField, "5:12".to_string()),
            (Code::UnknownField, "7:43".to_string())
        ]
    );
}

#[test]
fn type_mismatch() {
    // Integer field compared with a string: points at the literal.
    let src =
        "rules:\n  - id: r1\n    expression: exec.file.name == \"x\" && process.uid == \"root\"\n";
    assert_eq!(
        positions(src),
        vec![(Code::TypeMismatch, "3:57".to_string())]
    );
    // Ordering on a string: points at the operator.
    let src = "rules:\n  - id: r1\n    expression: exec.file.name < \"x\"\n";
    assert_eq!(
        positions(src),
        vec![(Code::TypeMismatch, "3:32".to_string())]
    );
    // A list of integers for a string field: points at the list name.
    let src = "lists:\n  - name: ports\n    type: int\n    items: [3333]\nrules:\n  - id: r1\n    expression: exec.file.name in ports\n";
    assert_eq!(
        positions(src),
        vec![(Code::TypeMismatch, "7:35".to_string())]
    );
}

#[test]
fn unknown_macro_or_list() {
    let src = "rules:\n  - id: r1\n    expression: exec.file.name in miner_names || is_miner\n";
    assert_eq!(
        positions(src),
        vec![
            (Code::UnknownName, "3:35".to_string()),
            (Code::UnknownName, "3:50".to_string())
        ]
    );
}

#[test]
fn duplicate_rule_id_and_names() {
    let src = "lists:\n  - name: a\n    items: [x]\nmacros:\n  - name: a\n    expression: exec.is_memfd\nrules:\n  - id: r1\n    expression: exec.is_memfd\n  - id: r1\n    expression: exec.is_memfd\n";
    assert_eq!(
        positions(src),
        vec![
            (Code::Duplicate, "5:11".to_string()),
            (Code::Duplicate, "10:9".to_string())
        ]
    );
    let text = errors(src).to_string();
    assert!(
        text.contains("duplicate rule id `r1`") && text.contains("first defined here"),
        "{text}"
    );
}

#[test]
fn bad_regex_and_glob() {
    let src = "rules:\n  - id: r1\n    expression: exec.file.name =~ r\"(unclosed\"\n  - id: r2\n    expression: open.file.path =~ ~\"[z-a]\"\n";
    assert_eq!(
        positions(src),
        vec![
            (Code::BadPattern, "3:35".to_string()),
            (Code::BadPattern, "5:35".to_string())
        ]
    );
}

#[test]
fn macro_cycle() {
    let src = "macros:\n  - name: a\n    expression: exec.is_memfd && b\n  - name: b\n    expression: c || exec.is_memfd\n  - name: c\n    expression: a\nrules:\n  - id: r1\n    expression: a\n";
    assert_eq!(positions(src), vec![(Code::Cycle, "7:17".to_string())]);
    assert!(
        errors(src)
            .to_string()
            .contains("macro cycle: a -> b -> c -> a")
    );
}

#[test]
fn mixed_event_kinds() {
    let src = "rules:\n  - id: r1\n    expression: exec.file.name == \"x\" && process.uid == 0 && dns.question.name == \"y\"\n";
    assert_eq!(positions(src), vec![(Code::MixedKinds, "3:62".to_string())]);
    // Through a macro: reported at the macro use, with a note inside the macro.
    let src = "macros:\n  - name: q\n    expression: dns.question.name == \"y\"\nrules:\n  - id: r1\n    expression: exec.is_memfd || q\n";
    assert_eq!(positions(src), vec![(Code::MixedKinds, "6:34".to_string())]);
}

#[test]
fn invalid_yaml() {
    let src = "rules:\n  - id: r1\n    expression: [exec.is_memfd\n  - id: r2\n";
    let got = positions(src);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, Code::Yaml);
    assert_eq!(got[0].1, "4:7");
    let src = "rules:\n  - id: r1\n\texpression: x\n";
    assert_eq!(positions(src)[0].0, Code::Yaml);
}

#[test]
fn syntax_errors() {
    let src = "rules:\n  - id: r1\n    expression: exec.file.name == \n  - id: r2\n    expression: (exec.is_memfd\n  - id: r3\n    expression: exec.file.name == \"x\" $\n";
    assert_eq!(
        positions(src),
        vec![
            (Code::Syntax, "3:34".to_string()),
            (Code::Syntax, "5:31".to_string()),
            (Code::Syntax, "7:39".to_string()),
        ]
    );
}

#[test]
fn deny_rule_that_cannot_be_lowered_is_rejected() {
    // `&&` with a term the kernel cannot see: points at that term.
    let src = "rules:\n  - id: r1\n    expression: exec.file.name == \"xmrig\" && exec.args contains \"-o\"\n    action: deny\n";
    assert_eq!(
        positions(src),
        vec![(Code::NotLowerable, "3:46".to_string())]
    );
    let text = errors(src).to_string();
    assert!(
        text.contains("rule `r1` has action `deny` but the kernel cannot match its expression"),
        "{text}"
    );
    // A field the kernel cannot see at all.
    let src = "rules:\n  - id: r1\n    expression: exec.file.name == \"a\" || exec.argv0 == \"xmrig\"\n    action: [deny, kill]\n";
    assert_eq!(
        positions(src),
        vec![(Code::NotLowerable, "3:42".to_string())]
    );
    // A pattern on a kernel field.
    let src = "rules:\n  - id: r1\n    expression: exec.file.name =~ r\"^xmr\"\n    action: deny\n";
    assert_eq!(
        positions(src),
        vec![(Code::NotLowerable, "3:17".to_string())]
    );
    // Through a macro: the span is inside the macro, with a note at the use.
    let src = "macros:\n  - name: m\n    expression: not exec.is_memfd\nrules:\n  - id: r1\n    expression: exec.file.name == \"a\" || m\n    action: deny\n";
    assert_eq!(
        positions(src),
        vec![(Code::NotLowerable, "3:17".to_string())]
    );
    assert!(
        errors(src)
            .to_string()
            .contains("through macro `m` used here")
    );
    // Too long for the kernel key.
    let long = "a".repeat(64);
    let src = format!(
        "rules:\n  - id: r1\n    expression: exec.file.name == \"{long}\"\n    action: deny\n"
    );
    assert_eq!(
        positions(&src),
        vec![(Code::NotLowerable, "3:17".to_string())]
    );
}

#[test]
fn kill_rule_that_cannot_be_lowered_runs_in_userspace() {
    let src = "rules:\n  - id: r1\n    expression: exec.file.name == \"xmrig\" && exec.args contains \"-o\"\n    action: kill\n";
    let p = load_str("p.yaml", src).unwrap();
    assert_eq!(p.rules()[0].kernel, enforcer_policy::Enforcement::Userspace);
    assert!(
        p.rules()[0]
            .userspace_reason
            .as_deref()
            .unwrap_or("")
            .contains("p.yaml:3:46")
    );
    assert!(p.lower().is_empty());
}

#[test]
fn every_error_of_a_run_is_reported_across_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("b.yaml"),
        "rules:\n  - id: dup\n    expression: exec.nope\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("a.yaml"),
        "rules:\n  - id: dup\n    expression: dns.bad == 1\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
    let d = match enforcer_policy::load(dir.path()) {
        Ok(_) => panic!("expected errors"),
        Err(d) => d,
    };
    let locs: Vec<String> = d
        .items()
        .iter()
        .map(|x| {
            let l = d.location(x);
            l.rsplit('/').next().unwrap_or("").to_string()
        })
        .collect();
    // a.yaml is merged first (file-name order).
    assert_eq!(locs, vec!["a.yaml:3:17", "b.yaml:2:9"]);
    assert_eq!(d.len(), 2);
    assert!(
        d.first_line()
            .contains("a.yaml:3:17: unknown field `dns.bad` (and 1 more)"),
        "{}",
        d.first_line()
    );
}

#[test]
fn structure_and_values() {
    let src = "version: 2\nrulez: []\nrules:\n  - id: r1\n    severity: urgent\n    action: block\n    expression: exec.is_memfd\n    every: soon\n";
    assert_eq!(
        positions(src),
        vec![
            (Code::BadValue, "1:10".to_string()),
            (Code::Structure, "2:1".to_string()),
            (Code::BadValue, "5:15".to_string()),
            (Code::BadValue, "6:13".to_string()),
            (Code::BadValue, "8:12".to_string()),
        ]
    );
}

#[test]
fn bad_list_file_items_point_into_the_list_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("lists")).unwrap();
    std::fs::write(dir.path().join("lists/h.txt"), "# hashes\n\n  nothex\n").unwrap();
    std::fs::write(
        dir.path().join("p.yaml"),
        "lists:\n  - name: h\n    type: hash\n    file: lists/h.txt\n  - name: gone\n    file: lists/missing.txt\nrules:\n  - id: r\n    expression: exec.file.hash.sha256 in h\n",
    )
    .unwrap();
    let d = match enforcer_policy::load(&dir.path().join("p.yaml")) {
        Ok(_) => panic!("expected errors"),
        Err(d) => d,
    };
    let locs: Vec<String> = d
        .items()
        .iter()
        .map(|x| d.location(x).rsplit('/').next().unwrap_or("").to_string())
        .collect();
    assert_eq!(locs, vec!["p.yaml:6:11", "h.txt:3:3"]);
}
