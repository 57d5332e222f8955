//! What `enforcer policy check | eval | fields` print, built here so the CLI stays thin and
//! the output is unit-tested: the check summary (rules per event kind, kernel vs userspace,
//! kernel plan), evaluation results (human and JSON) and the schema listing.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::event::{Event, EventError};
use crate::model::{Enforcement, KillScope, RuleInfo};
use crate::policy::{CompiledPolicy, Match};
use crate::schema::{self, Kind};

/// Longest event input accepted by [`parse_event`].
pub const MAX_EVENT_INPUT: usize = 1 << 20;

/// Why an event input could not be used.
#[derive(Debug, thiserror::Error)]
pub enum EventInputError {
    /// Too large.
    #[error("event input larger than {MAX_EVENT_INPUT} bytes")]
    TooLarge,
    /// Not JSON.
    #[error("event is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Not an event.
    #[error(transparent)]
    Event(#[from] EventError),
}

/// Parses an event from JSON text (a bare event or an audit record `{"type":"event",...}`).
pub fn parse_event(text: &str) -> Result<Event, EventInputError> {
    if text.len() > MAX_EVENT_INPUT {
        return Err(EventInputError::TooLarge);
    }
    let v: Value = serde_json::from_str(text)?;
    Ok(Event::from_json(&v)?)
}

/// The kill options of a rule that differ from the defaults: `kill_scope=... breaker=...`.
fn kill_options(r: &RuleInfo) -> Option<String> {
    let mut parts = Vec::new();
    if r.kill_scope != KillScope::Process {
        parts.push(format!("kill_scope={}", r.kill_scope));
    }
    if let Some(b) = r.breaker {
        let max = b
            .max_targets
            .map_or("engine".to_string(), |n| n.to_string());
        let window = b
            .window
            .map_or("engine".to_string(), |w| format!("{}s", w.as_secs()));
        parts.push(format!("breaker: max_targets={max} window={window}"));
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}

fn mode_name(r: &RuleInfo) -> &'static str {
    r.mode.map_or("engine", |m| m.name())
}

fn plan_lines(
    out: &mut String,
    title: &str,
    entries: &[crate::plan::PlanEntry],
    policy: &CompiledPolicy,
) {
    let _ = writeln!(out, "  {title}: {} entries", entries.len());
    for e in entries.iter().take(PLAN_LINES_SHOWN) {
        let _ = writeln!(out, "    {:<40} <- {}", e.value, rule_ids(policy, e));
    }
    if entries.len() > PLAN_LINES_SHOWN {
        let _ = writeln!(
            out,
            "    ... and {} more (`enforcer policy eval` shows the entry an event ends at)",
            entries.len() - PLAN_LINES_SHOWN
        );
    }
}

/// Entries of one plan family `policy check` lists before summing up the rest.
const PLAN_LINES_SHOWN: usize = 20;

/// The `policy check` summary of a valid policy.
pub fn check_report(policy: &CompiledPolicy) -> String {
    let mut out = String::new();
    let rules = policy.rules();
    let enabled = rules.iter().filter(|r| !r.disabled).count();
    let _ = writeln!(
        out,
        "policy OK: {} rules ({} enabled) from {} file(s)",
        rules.len(),
        enabled,
        policy.files().len()
    );
    for kind in Kind::ALL {
        let of_kind: Vec<(usize, &RuleInfo)> = rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.event_kind == kind)
            .collect();
        if of_kind.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{kind} ({} rules):", of_kind.len());
        for (i, r) in of_kind {
            let plan = policy.plan();
            let in_args_plan = plan
                .exec_arg_schemes
                .iter()
                .chain(&plan.exec_arg_flags)
                .any(|e| e.rules.iter().any(|&x| x as usize == i));
            let place = match (r.kernel, r.actions.blocks()) {
                (Enforcement::Kernel, _) => "kernel".to_string(),
                (Enforcement::Userspace, true) if in_args_plan => {
                    "kernel at exec (argument plan) + userspace (kill after the fact)".to_string()
                }
                (Enforcement::Userspace, true) => "userspace (kill after the fact)".to_string(),
                (Enforcement::Userspace, false) => "userspace".to_string(),
            };
            let disabled = if r.disabled { " [disabled]" } else { "" };
            let _ = writeln!(
                out,
                "  #{i:<4} {:<32} {:<8} {:<12} mode={:<8} {place}{disabled}",
                r.id,
                r.severity.name(),
                r.actions.to_string(),
                mode_name(r)
            );
            if in_args_plan {
                let _ = writeln!(
                    out,
                    "         in the kernel: a listed `scheme://` or `--flag` in the first 512 bytes of the arguments, executables not in exec_args_spared; the rest in userspace"
                );
            } else if let Some(why) = &r.userspace_reason {
                let _ = writeln!(out, "         not in the kernel: {why}");
            }
            if let Some(kill) = kill_options(r) {
                let _ = writeln!(out, "         {kill}");
            }
        }
    }
    let kernel = rules
        .iter()
        .filter(|r| r.kernel == Enforcement::Kernel)
        .count();
    let plan = policy.lower();
    let _ = writeln!(
        out,
        "\nenforcement: {kernel} rule(s) in the kernel, {} in userspace",
        rules.len() - kernel
    );
    let _ = writeln!(out, "kernel plan: {} entries", plan.len());
    plan_lines(&mut out, "exec_names", &plan.exec_names, policy);
    plan_lines(&mut out, "exec_paths", &plan.exec_paths, policy);
    plan_lines(&mut out, "payload_methods", &plan.payload_methods, policy);
    plan_lines(&mut out, "dns_names", &plan.dns_names, policy);
    plan_lines(&mut out, "dns_domains", &plan.dns_domains, policy);
    plan_lines(&mut out, "connect_nets", &plan.connect_nets, policy);
    plan_lines(&mut out, "kernel_ops", &plan.kernel_ops, policy);
    plan_lines(&mut out, "exec_arg_schemes", &plan.exec_arg_schemes, policy);
    plan_lines(&mut out, "exec_arg_flags", &plan.exec_arg_flags, policy);
    if !plan.exec_arg_schemes.is_empty() || !plan.exec_arg_flags.is_empty() {
        let _ = writeln!(
            out,
            "  exec_args_spared (arguments not searched in the kernel): {}",
            plan.exec_args_spared.join(", ")
        );
    }
    if !plan.learned_rules.is_empty() {
        let ids: Vec<&str> = plan
            .learned_rules
            .iter()
            .filter_map(|&i| rules.get(i as usize).map(|r| r.id.as_str()))
            .collect();
        let _ = writeln!(
            out,
            "  learned addresses (connect_nets entries written from DNS answers): {}",
            ids.join(", ")
        );
    }
    let _ = writeln!(
        out,
        "  connects reported: {}",
        if plan.connect_filtered {
            "only those a rule is about (every connect rule is in the plan)"
        } else {
            "all (some connect rule is not in the plan)"
        }
    );
    if plan.file_rules {
        let _ = writeln!(
            out,
            "  file_watches: {} entries; file events reported: {}",
            plan.file_watches.len(),
            if plan.file_filtered {
                "only under watched paths (in-kernel filter)"
            } else {
                "all file events of the watched kinds (some file rule names no path)"
            }
        );
        for e in plan.file_watches.iter().take(20) {
            let ids: Vec<&str> = e
                .rules
                .iter()
                .chain(&e.watchers)
                .filter_map(|&i| rules.get(i as usize).map(|r| r.id.as_str()))
                .collect();
            let what = if e.exact { "" } else { "/**" };
            let _ = writeln!(
                out,
                "    {:<10} {:<40} <- {}{}",
                e.op,
                format!("{}{what}", e.path),
                ids.join(", "),
                if e.rules.is_empty() {
                    ""
                } else {
                    " (enforced)"
                }
            );
        }
        if plan.file_watches.len() > 20 {
            let _ = writeln!(out, "    ... and {} more", plan.file_watches.len() - 20);
        }
    }
    let extra = policy.extra_public_ranges();
    if !extra.is_empty() {
        let nets: Vec<String> = extra.iter().map(ToString::to_string).collect();
        let _ = writeln!(out, "extra public ranges: {}", nets.join(", "));
    }
    out
}

fn rule_ids(policy: &CompiledPolicy, entry: &crate::plan::PlanEntry) -> String {
    if entry.rules.is_empty() {
        return "none: an exclusion".to_string();
    }
    let ids: Vec<&str> = entry
        .rules
        .iter()
        .filter_map(|r| policy.rules().get(*r as usize))
        .map(|r| r.id.as_str())
        .collect();
    ids.join(", ")
}

/// Human-readable `policy eval` output.
pub fn eval_report(policy: &CompiledPolicy, event: &Event, matches: &[Match]) -> String {
    let mut out = String::new();
    if matches.is_empty() {
        let _ = writeln!(out, "{} event: no rule matches", event.kind());
        return out;
    }
    let _ = writeln!(
        out,
        "{} event: {} rule(s) match",
        event.kind(),
        matches.len()
    );
    for m in matches {
        let r = policy.rules().get(m.rule_index as usize);
        let sev = r.map_or("?", |r| r.severity.name());
        let place = r.map_or("?", |r| {
            if r.kernel == Enforcement::Kernel {
                "kernel"
            } else {
                "userspace"
            }
        });
        let mode = m.mode.map_or("engine", |x| x.name());
        let _ = writeln!(
            out,
            "  #{:<4} {:<32} {:<8} actions={:<12} mode={mode} ({place})",
            m.rule_index,
            m.rule_id,
            sev,
            m.actions.to_string()
        );
    }
    kernel_view(&mut out, policy, event);
    out
}

/// For exec and payload events: whether the kernel plan holds the event's basename / path /
/// method; for DNS and connect events: the entry the kernel's lookup ends at.
fn kernel_view(out: &mut String, policy: &CompiledPolicy, event: &Event) {
    let plan = policy.lower();
    let field = |name: &str| schema::lookup(name).and_then(|id| event.get(id));
    match (
        event.kind(),
        field(schema::DNS_NAME_FIELD),
        field("connect.addr.ip"),
    ) {
        (Kind::Dns, Some(crate::event::Val::Str(name)), _) => {
            let _ = match plan.dns_lookup(name) {
                Some(e) => writeln!(
                    out,
                    "kernel plan: `{name}` ends its lookup at `{}` (rules: {})",
                    e.value,
                    rule_ids(policy, e)
                ),
                None => writeln!(out, "kernel plan: no DNS entry for `{name}`"),
            };
            return;
        }
        (Kind::Connect, _, Some(crate::event::Val::Ip(ip))) => {
            let _ = match plan.connect_lookup(*ip) {
                Some(e) => writeln!(
                    out,
                    "kernel plan: connect_nets holds `{}` for `{ip}` (rules: {})",
                    e.value,
                    rule_ids(policy, e)
                ),
                None => writeln!(out, "kernel plan: no connect_nets prefix holds `{ip}`"),
            };
            return;
        }
        _ => {}
    }
    let families: &[(&str, &[crate::plan::PlanEntry], &str)] = match event.kind() {
        Kind::Exec => &[
            ("exec.file.name", &plan.exec_names, "exec_names"),
            ("exec.file.path", &plan.exec_paths, "exec_paths"),
        ],
        Kind::Payload => &[(
            "payload.stratum.method",
            &plan.payload_methods,
            "payload_methods",
        )],
        _ => return,
    };
    for &(field, entries, title) in families {
        let Some(crate::event::Val::Str(v)) = schema::lookup(field).and_then(|id| event.get(id))
        else {
            continue;
        };
        match entries.binary_search_by(|e| e.value.as_str().cmp(v)) {
            Ok(i) => {
                let ids: Vec<&str> = entries[i]
                    .rules
                    .iter()
                    .filter_map(|r| policy.rules().get(*r as usize))
                    .map(|r| r.id.as_str())
                    .collect();
                let _ = writeln!(
                    out,
                    "kernel plan: {title} holds `{v}` (rules: {})",
                    ids.join(", ")
                );
            }
            Err(_) => {
                let _ = writeln!(out, "kernel plan: {title} does not hold `{v}`");
            }
        }
    }
}

/// JSON `policy eval` output: `{"kind":..., "matches":[{rule_index, rule_id, actions, mode, ...}]}`.
pub fn eval_json(policy: &CompiledPolicy, event: &Event, matches: &[Match]) -> Value {
    let items: Vec<Value> = matches
        .iter()
        .map(|m| {
            let r = policy.rules().get(m.rule_index as usize);
            json!({
                "rule_index": m.rule_index,
                "rule_id": &*m.rule_id,
                "actions": m.actions,
                "mode": m.mode,
                "severity": r.map(|r| r.severity),
                "enforcement": r.map(|r| r.kernel),
            })
        })
        .collect();
    json!({ "kind": event.kind(), "matches": items })
}

/// The `policy fields` listing.
pub fn fields_report() -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<30} {:<14} {:<9} {:<7} doc",
        "field", "type", "kind", "kernel"
    );
    for d in schema::FIELDS {
        let ty = if d.list {
            format!("list<{}>", d.ty)
        } else {
            d.ty.to_string()
        };
        let kind = d.kind.map_or("any", Kind::name);
        let kernel = if d.kernel.is_some() { "yes" } else { "no" };
        let _ = writeln!(
            out,
            "{:<30} {:<14} {:<9} {:<7} {}",
            d.name, ty, kind, kernel, d.doc
        );
    }
    out
}

/// The schema as JSON.
pub fn fields_json() -> Value {
    Value::Array(
        schema::FIELDS
            .iter()
            .map(|d| {
                json!({
                    "name": d.name,
                    "type": d.ty.to_string(),
                    "list": d.list,
                    "kind": d.kind.map(Kind::name),
                    "kernel": d.kernel.is_some(),
                    "doc": d.doc,
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    const POLICY: &str = "version: 1\nrules:\n  - id: deny-xmrig\n    expression: exec.file.name == \"xmrig\" || exec.file.path == \"/opt/m\"\n    action: deny\n  - id: args\n    expression: exec.args contains \"--donate-level\"\n    action: kill\n  - id: url\n    expression: exec.args contains \"stratum+tcp://\"\n    action: kill\n  - id: flag\n    expression: exec.args startswith \"--nicehash\"\n    action: kill\n";

    #[test]
    fn check_report_lists_kernel_and_userspace_rules() {
        let p = crate::load_str("p.yaml", POLICY).unwrap();
        let r = check_report(&p);
        assert!(r.contains("policy OK: 4 rules"), "{r}");
        assert!(
            r.contains("kernel at exec (argument plan) + userspace (kill after the fact)"),
            "{r}"
        );
        assert!(
            r.contains("exec_arg_schemes: 1 entries") && r.contains("stratum+tcp"),
            "{r}"
        );
        assert!(
            r.contains("exec_arg_flags: 1 entries") && r.contains("--nicehash"),
            "{r}"
        );
        assert!(r.contains("deny-xmrig") && r.contains("kernel"), "{r}");
        assert!(r.contains("userspace (kill after the fact)"), "{r}");
        assert!(
            r.contains("not in the kernel: `exec.args` is not visible to the kernel plan"),
            "{r}"
        );
        assert!(
            r.contains("exec_names: 1 entries") && r.contains("exec_paths: 1 entries"),
            "{r}"
        );
    }

    #[test]
    fn eval_outputs() {
        let p = crate::load_str("p.yaml", POLICY).unwrap();
        let ev = parse_event(r#"{"type":"event","ts":1,"event":{"kind":"exec","exec":{"file":{"path":"/tmp/xmrig"},"args":["-o","stratum+tcp://x:1"]}}}"#).unwrap();
        let m = p.eval(&ev);
        let text = eval_report(&p, &ev, &m);
        assert!(text.contains("2 rule(s) match"), "{text}");
        assert!(
            text.contains("kernel plan: exec_names holds `xmrig` (rules: deny-xmrig)"),
            "{text}"
        );
        assert!(
            text.contains("exec_paths does not hold `/tmp/xmrig`"),
            "{text}"
        );
        let j = eval_json(&p, &ev, &m);
        assert_eq!(j["matches"][0]["rule_id"], "deny-xmrig");
        assert_eq!(j["matches"][1]["actions"]["kill"], true);
        assert!(parse_event("{").is_err());
        assert!(fields_report().contains("exec.file.name"));
        assert_eq!(
            fields_json().as_array().map(Vec::len),
            Some(schema::FIELDS.len())
        );
    }
}
