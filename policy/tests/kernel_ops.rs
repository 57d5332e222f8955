//! Kernel lowering of kernel-activity rules (`kernel_ops` in the plan): a deny/kill rule that
//! is exactly `kernel.op == "..."` (or `in (...)`) lowers; other conditions and unknown
//! operations are rejected where they are; `kernel_ops_needed` pins the operations the kernel
//! reports.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::errors;
use enforcer_policy::{Enforcement, PlanEntry, load_str};

fn rule(expr: &str, action: &str) -> String {
    format!("rules:\n  - id: r\n    description: d\n    expression: {expr}\n    action: {action}\n")
}

#[test]
fn operation_rules_lower_to_kernel_ops() {
    let p = load_str(
        "p.yaml",
        &rule("kernel.op in (\"module_load\", \"ptrace\")", "deny"),
    )
    .unwrap();
    assert_eq!(p.rules()[0].kernel, Enforcement::Kernel);
    assert_eq!(
        p.plan().kernel_ops,
        vec![
            PlanEntry {
                value: "module_load".into(),
                rules: vec![0]
            },
            PlanEntry {
                value: "ptrace".into(),
                rules: vec![0]
            },
        ]
    );
    let needed = p.kernel_ops_needed().unwrap();
    assert_eq!(
        needed.into_iter().collect::<Vec<_>>(),
        vec!["module_load", "ptrace"]
    );
}

#[test]
fn other_conditions_and_unknown_operations_do_not_lower() {
    let d = errors(&rule(
        "kernel.op == \"module_load\" && kernel.module.name == \"msr\"",
        "deny",
    ));
    assert!(d.to_string().contains("kernel.module.name"), "{d}");
    let d = errors(&rule("kernel.op == \"devmem\"", "deny"));
    assert!(d.to_string().contains("not an operation"), "{d}");
    // An alert may say anything: it is evaluated in userspace.
    let p = load_str("p.yaml", &rule("kernel.module.name == \"msr\"", "alert")).unwrap();
    assert_eq!(p.rules()[0].kernel, Enforcement::Userspace);
    assert!(p.plan().kernel_ops.is_empty());
    assert!(
        p.kernel_ops_needed().is_none(),
        "a rule not pinning kernel.op needs every operation"
    );
}

#[test]
fn disjunctions_need_every_branch_pinned() {
    let p = load_str(
        "p.yaml",
        &rule(
            "(kernel.op == \"kexec\" && kernel.syscall == \"kexec_load\") || kernel.op == \"bpf\"",
            "alert",
        ),
    )
    .unwrap();
    let needed: Vec<String> = p.kernel_ops_needed().unwrap().into_iter().collect();
    assert_eq!(needed, vec!["bpf", "kexec"]);
    let p = load_str(
        "p.yaml",
        &rule(
            "kernel.op == \"kexec\" || kernel.syscall == \"setuid\"",
            "alert",
        ),
    )
    .unwrap();
    assert!(p.kernel_ops_needed().is_none());
}
