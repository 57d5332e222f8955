#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::{KernelPlan, PlanEntry, load_str};

fn plan(rules: &str) -> KernelPlan {
    let text = format!(
        "lists:\n  - name: tools\n    type: string\n    items: [grep, less]\n  - name: schemes\n    type: string\n    items: [\"stratum+tcp://\", \"stratum+ssl://\"]\nmacros:\n  - name: tool\n    expression: exec.file.name in tools || (exec.file.name == \"busybox\" && exec.argv0 endswith \"/grep\")\nrules:\n{rules}"
    );
    load_str("p.yaml", &text).expect("policy loads").lower()
}

/// Each entry's value and rules.
fn pairs(entries: &[PlanEntry]) -> Vec<(&str, Vec<u32>)> {
    entries
        .iter()
        .map(|e| (e.value.as_str(), e.rules.clone()))
        .collect()
}

fn schemes(plan: &KernelPlan) -> Vec<(&str, Vec<u32>)> {
    pairs(&plan.exec_arg_schemes)
}

#[test]
fn a_scheme_rule_with_a_name_exception_is_lowered_with_its_spared_names() {
    let plan = plan(
        "  - id: url\n    expression: exec.args contains schemes && !tool\n    action: kill\n",
    );
    assert_eq!(
        schemes(&plan),
        [("stratum+ssl", vec![0]), ("stratum+tcp", vec![0])]
    );
    // The busybox branch needs argv0 too; its name bounds it.
    assert_eq!(plan.exec_args_spared, ["busybox", "grep", "less"]);
}

fn flags(plan: &KernelPlan) -> Vec<(&str, Vec<u32>)> {
    pairs(&plan.exec_arg_flags)
}

#[test]
fn a_flag_rule_is_lowered_beside_a_scheme_rule_and_they_share_the_spared_names() {
    let plan = plan(
        "  - id: url\n    expression: exec.args contains schemes && !tool\n    action: kill\n  - id: flags\n    expression: (exec.args startswith (\"--donate-level\", \"--nicehash\") || exec.args startswith \"--cpu-priority\") && exec.file.name != \"vim\"\n    action: kill\n",
    );
    assert_eq!(
        flags(&plan),
        [
            ("--cpu-priority", vec![1]),
            ("--donate-level", vec![1]),
            ("--nicehash", vec![1])
        ]
    );
    assert_eq!(schemes(&plan).len(), 2, "the scheme rule's entries stay");
    assert_eq!(plan.exec_args_spared, ["busybox", "grep", "less", "vim"]);
}

#[test]
fn flags_the_kernel_cannot_key_are_not_lowered() {
    for expr in [
        // Short options, bare words, values: the kernel keys `--name` up to its `=`.
        "exec.args startswith \"-o\"",
        "exec.args startswith \"--\"",
        "exec.args startswith \"donate-level\"",
        "exec.args startswith \"--donate-level=1\"",
        // Longer than the kernel's key.
        "exec.args startswith \"--a-very-long-option-name-over-31\"",
        // One of a list the kernel cannot key leaves the whole test to userspace.
        "exec.args startswith (\"--donate-level\", \"-t\")",
        // Not a prefix test, or a second argument test.
        "exec.args endswith \"--donate-level\"",
        "exec.args == \"--donate-level\"",
        "exec.args startswith \"--donate-level\" && exec.args contains schemes",
        "!(exec.args startswith \"--donate-level\")",
    ] {
        let plan = plan(&format!(
            "  - id: r\n    expression: '{expr}'\n    action: kill\n"
        ));
        assert!(plan.exec_arg_flags.is_empty(), "{expr} was lowered");
    }
    let alert =
        plan("  - id: a\n    expression: exec.args startswith \"--nicehash\"\n    action: alert\n");
    assert!(alert.exec_arg_flags.is_empty(), "alerts stay in userspace");
}

#[test]
fn negated_name_tests_and_single_values_are_exceptions_and_schemes() {
    let plan = plan(
        "  - id: url\n    expression: exec.args contains \"daemon+http://\" && exec.file.name != \"vim\" && exec.file.name not in tools\n    action: kill\n",
    );
    assert_eq!(schemes(&plan), [("daemon+http", vec![0])]);
    assert_eq!(plan.exec_args_spared, ["grep", "less", "vim"]);
}

#[test]
fn rules_the_kernel_could_get_wrong_are_not_lowered() {
    for expr in [
        // Not a scheme: no `://`, or too long for the kernel's key.
        "exec.args contains \"--url\"",
        "exec.args contains \"averyveryverylongscheme://\"",
        // An exception the kernel cannot bound by basename.
        "exec.args contains schemes && !(exec.argv0 == \"grep\")",
        // A second condition the kernel does not check.
        "exec.args contains schemes && process.uid == 0",
        "exec.args contains schemes && exec.args contains \"daemon+http://\"",
        // A disjunction with something else.
        "exec.args contains schemes || exec.file.name == \"x\"",
        // Negated scheme test.
        "!(exec.args contains schemes)",
        // argv[0] is not in `exec.args`, and the kernel skips it.
        "exec.argv0 contains \"stratum+tcp://\"",
    ] {
        let plan = plan(&format!(
            "  - id: r\n    expression: '{expr}'\n    action: kill\n"
        ));
        assert!(plan.exec_arg_schemes.is_empty(), "{expr} was lowered");
    }
}

#[test]
fn only_enabled_kill_rules_are_lowered() {
    let alert = plan("  - id: a\n    expression: exec.args contains schemes\n    action: alert\n");
    assert!(alert.exec_arg_schemes.is_empty());
    let disabled = plan(
        "  - id: a\n    expression: exec.args contains schemes\n    action: kill\n    disabled: true\n",
    );
    assert!(disabled.exec_arg_schemes.is_empty());
    let monitor = plan(
        "  - id: a\n    expression: exec.args contains schemes\n    action: kill\n    mode: monitor\n",
    );
    assert_eq!(
        monitor.exec_arg_schemes.len(),
        2,
        "monitor rules record would_kill"
    );
}

#[test]
fn the_default_policy_lowers_its_stratum_url_and_miner_flag_rules() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policy/default");
    let policy = crate::load(&dir).expect("default policy loads");
    let plan = policy.lower();
    let rule = policy
        .rules()
        .iter()
        .position(|r| r.id == "miner-args-stratum-url")
        .unwrap();
    let rule = u32::try_from(rule).unwrap();
    assert!(
        plan.exec_arg_schemes
            .iter()
            .any(|e| e.value == "stratum+tcp" && e.rules == [rule])
    );
    for spared in ["grep", "less", "busybox", "toybox"] {
        assert!(
            plan.exec_args_spared.iter().any(|s| s == spared),
            "{spared}"
        );
    }
    assert!(!plan.exec_args_spared.iter().any(|s| s == "kworker_upd"));
    let flags_rule = policy
        .rules()
        .iter()
        .position(|r| r.id == "miner-args-flags")
        .unwrap();
    let flags_rule = u32::try_from(flags_rule).unwrap();
    for flag in ["--donate-level", "--cpu-priority", "--randomx-1gb-pages"] {
        assert!(
            plan.exec_arg_flags
                .iter()
                .any(|e| e.value == flag && e.rules == [flags_rule]),
            "{flag}: {:?}",
            plan.exec_arg_flags
        );
    }
}

#[test]
fn a_long_option_list_is_lowered_with_every_abbreviation() {
    let text = "lists:\n  - name: opts\n    type: long_option\n    items: [\"--donate-l[evel]\", \"--nicehash\"]\nrules:\n  - id: opts\n    expression: exec.args in opts && exec.file.name != \"grep\"\n    action: kill\n";
    let policy = load_str("p.yaml", text).unwrap();
    let plan = policy.lower();
    assert_eq!(
        flags(&plan),
        [
            ("--donate-l", vec![0]),
            ("--donate-le", vec![0]),
            ("--donate-lev", vec![0]),
            ("--donate-leve", vec![0]),
            ("--donate-level", vec![0]),
            ("--nicehash", vec![0]),
        ]
    );
    assert_eq!(plan.exec_args_spared, ["grep"]);
    // The kernel's test is the rule's own: an abbreviation with or without a value matches,
    // a longer name or a single dash does not.
    let event = |args: &str| {
        crate::report::parse_event(&format!(
            r#"{{"kind":"exec","exec":{{"file":{{"name":"x"}},"args":{args}}}}}"#
        ))
        .unwrap()
    };
    let holds = |args: &str| !policy.eval(&event(args)).is_empty();
    assert!(holds(r#"["-o","p:1","--donate-l=1"]"#));
    assert!(holds(r#"["--donate-lev","1"]"#));
    assert!(holds(r#"["--nicehash"]"#));
    assert!(
        !holds(r#"["--donate","1"]"#),
        "shorter than the listed abbreviation"
    );
    assert!(!holds(r#"["--donate-levels=1"]"#));
    assert!(!holds(r#"["-donate-level=1"]"#));
    assert!(!holds(r#"["--nicehas"]"#), "no abbreviation listed");
}

#[test]
fn a_bad_long_option_item_is_refused_at_its_place() {
    let text = "lists:\n  - name: opts\n    type: long_option\n    items: [\"--ok\", \"donate\"]\nrules: []\n";
    let err = load_str("p.yaml", text).unwrap_err().to_string();
    assert!(
        err.contains("invalid long_option list item `donate`"),
        "{err}"
    );
    assert!(err.contains("p.yaml:4:"), "{err}");
}
