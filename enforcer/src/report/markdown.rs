//! The Markdown rendering of an [`AuditReport`].

use std::fmt::Write as _;

use super::{AuditReport, RuleSummary, Target, WOULD_ACT};

/// A table cell: `|` escaped, line breaks as spaces, so no value can break the table.
pub(crate) fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// `name (count)` of each target.
pub(crate) fn targets(list: &[Target], distinct: usize) -> String {
    let mut out: Vec<String> = list
        .iter()
        .map(|t| format!("{} ({})", t.name, t.count))
        .collect();
    if distinct > list.len() {
        out.push(format!("+{} more", distinct - list.len()));
    }
    out.join(", ")
}

/// `action count` pairs of a rule.
pub(crate) fn actions(rule: &RuleSummary) -> String {
    rule.actions
        .iter()
        .map(|(action, n)| format!("{action} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Response times of a rule: `place p50/p99 us`.
pub(crate) fn response(rule: &RuleSummary) -> String {
    rule.response_us
        .iter()
        .map(|(place, p)| format!("{place} {}/{} us (n={})", p.p50, p.p99, p.n))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `; first: <command line> (parent <exe>)` of a rule's sample, or nothing.
pub(crate) fn sample(rule: &RuleSummary) -> String {
    let Some(sample) = &rule.sample else {
        return String::new();
    };
    let parent = sample
        .parent
        .as_deref()
        .map(|p| format!(" (parent {p})"))
        .unwrap_or_default();
    format!("; first, pid {}: {}{parent}", sample.pid, sample.cmdline)
}

/// The report as Markdown.
pub fn render(report: &AuditReport) -> String {
    let mut out = String::new();
    let source = &report.source;
    let _ = writeln!(out, "# Policy audit report\n");
    let _ = writeln!(
        out,
        "Audit log `{}`: {} records ({} in the window{}{}), from {} to {}.",
        source.path,
        source.records,
        source.in_window,
        source
            .since
            .as_deref()
            .map(|s| format!(", since {s}"))
            .unwrap_or_default(),
        source
            .until
            .as_deref()
            .map(|u| format!(", until {u}"))
            .unwrap_or_default(),
        source.first.as_deref().unwrap_or("-"),
        source.last.as_deref().unwrap_or("-"),
    );
    if let Some(note) = source.rotated_note() {
        let _ = writeln!(out, "\n{}", cell(&note));
    }
    for note in report.warnings() {
        let _ = writeln!(out, "\n**{note}**");
    }
    summary(&mut out, report);
    runs(&mut out, report);
    rules(&mut out, report);
    if !report.events.is_empty() {
        let _ = writeln!(out, "\n## Observed events\n\n| kind | records |\n|---|---|");
        for (kind, n) in &report.events {
            let _ = writeln!(out, "| {} | {n} |", cell(kind));
        }
    }
    out
}

fn summary(out: &mut String, report: &AuditReport) {
    let _ = writeln!(out, "\n## Summary\n");
    if report.actions.is_empty() {
        let _ = writeln!(out, "No rule matched.");
        return;
    }
    for (action, n) in &report.actions {
        let _ = writeln!(out, "- `{action}`: {n}");
    }
    let would: Vec<&RuleSummary> = report.would_act().collect();
    if !would.is_empty() {
        let _ = writeln!(out, "\n**{WOULD_ACT}**\n");
        for rule in would {
            let _ = writeln!(
                out,
                "- `{}` ({}): {} on {}{}",
                rule.rule,
                rule.severity,
                actions(rule),
                targets(&rule.top_executables, rule.executables),
                sample(rule)
            );
        }
    }
}

fn runs(out: &mut String, report: &AuditReport) {
    let _ = writeln!(
        out,
        "\n## Engine runs\n\n| started | stopped | mode | tier | kernel | policy | rules | reloads | gaps before |\n|---|---|---|---|---|---|---|---|---|"
    );
    for run in &report.runs {
        let stopped = match (&run.stopped, &run.stop_reason) {
            (Some(at), Some(reason)) => format!("{at} ({reason})"),
            (Some(at), None) => at.clone(),
            (None, _) => "not stopped (running, or killed)".to_owned(),
        };
        let gaps: Vec<String> = run
            .gaps
            .iter()
            .map(|g| match &g.unenforced_from {
                Some(from) => format!("unenforced {from} to {}", g.until),
                None => format!("{} until {}", g.enforcement, g.until),
            })
            .collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            cell(&run.started),
            cell(&stopped),
            cell(&run.mode),
            cell(&run.tier_and_hooks()),
            cell(&run.kernel),
            cell(&run.policy),
            run.rules,
            run.reloads.len(),
            cell(&gaps.join("; "))
        );
    }
    let reloads: Vec<_> = report.runs.iter().flat_map(|r| &r.reloads).collect();
    if !reloads.is_empty() {
        let _ = writeln!(
            out,
            "\n### Policy reloads\n\n| at | trigger | outcome | generation | added | removed | reason |\n|---|---|---|---|---|---|---|"
        );
        for r in reloads {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                cell(&r.at),
                cell(&r.trigger),
                cell(&r.outcome),
                r.generation,
                cell(&r.added.join(", ")),
                cell(&r.removed.join(", ")),
                cell(r.reason.as_deref().unwrap_or(""))
            );
        }
    }
}

fn rules(out: &mut String, report: &AuditReport) {
    if report.rules.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n## Rules\n\n| rule | severity | actions | decided in | executables | containers | first seen | last seen | response p50/p99 |\n|---|---|---|---|---|---|---|---|---|"
    );
    for rule in &report.rules {
        let decided: Vec<String> = rule
            .decided_in
            .iter()
            .map(|(place, n)| format!("{place} {n}"))
            .collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            cell(&rule.rule),
            cell(&rule.severity),
            cell(&actions(rule)),
            cell(&decided.join(", ")),
            cell(&targets(&rule.top_executables, rule.executables)),
            cell(&targets(&rule.top_containers, rule.containers)),
            cell(&rule.first_seen),
            cell(&rule.last_seen),
            cell(&response(rule))
        );
    }
    let details: Vec<&RuleSummary> = report
        .rules
        .iter()
        .filter(|r| r.last_detail.is_some())
        .collect();
    if !details.is_empty() {
        let _ = writeln!(out, "\n### Kills not performed\n");
        for rule in details {
            let _ = writeln!(
                out,
                "- `{}`: {}",
                rule.rule,
                cell(rule.last_detail.as_deref().unwrap_or(""))
            );
        }
    }
}
