//! The HTML rendering of an [`AuditReport`]: one self-contained page (no script, no external
//! resource); every value from the log is escaped (`html-escape`).

use std::fmt::Write as _;

use html_escape::encode_text as esc;

use super::{
    AuditReport, WOULD_ACT,
    markdown::{actions, response, sample, targets},
};

const STYLE: &str = "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}\
td,th{border:1px solid #bbb;padding:3px 6px;text-align:left;vertical-align:top}\
th{background:#eee}.warn{color:#a00}";

/// Writes one table row of `cells` (escaped).
fn row(out: &mut String, tag: &str, cells: &[String]) {
    out.push_str("<tr>");
    for c in cells {
        let _ = write!(out, "<{tag}>{}</{tag}>", esc(c));
    }
    out.push_str("</tr>\n");
}

fn header(out: &mut String, names: &[&str]) {
    let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    row(out, "th", &names);
}

/// The report as an HTML page.
pub fn render(report: &AuditReport) -> String {
    let mut out = String::new();
    let source = &report.source;
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Policy audit report</title>\
         <style>{STYLE}</style></head><body>\n<h1>Policy audit report</h1>\n<p>Audit log <code>{}</code>: \
         {} records ({} in the window), from {} to {}.</p>\n",
        esc(&source.path),
        source.records,
        source.in_window,
        esc(source.first.as_deref().unwrap_or("-")),
        esc(source.last.as_deref().unwrap_or("-")),
    );
    if let Some(note) = source.rotated_note() {
        let _ = writeln!(out, "<p>{}</p>", esc(&note));
    }
    for note in report.warnings() {
        let _ = writeln!(out, "<p class=\"warn\">{}</p>", esc(&note));
    }
    out.push_str("<h2>Summary</h2>\n<table>\n");
    header(&mut out, &["action", "records"]);
    for (action, n) in &report.actions {
        row(&mut out, "td", &[action.clone(), n.to_string()]);
    }
    out.push_str("</table>\n");
    let would: Vec<_> = report.would_act().collect();
    if !would.is_empty() {
        let _ = writeln!(out, "<p><strong>{}</strong></p>\n<ul>", esc(WOULD_ACT));
        for rule in would {
            let _ = writeln!(
                out,
                "<li><code>{}</code> ({}): {} on {}{}</li>",
                esc(&rule.rule),
                esc(&rule.severity),
                esc(&actions(rule)),
                esc(&targets(&rule.top_executables, rule.executables)),
                esc(&sample(rule))
            );
        }
        out.push_str("</ul>\n");
    }
    out.push_str("<h2>Engine runs</h2>\n<table>\n");
    header(
        &mut out,
        &[
            "started", "stopped", "mode", "tier", "kernel", "policy", "rules", "reloads",
        ],
    );
    for run in &report.runs {
        let stopped = run
            .stopped
            .clone()
            .unwrap_or_else(|| "not stopped (running, or killed)".to_owned());
        row(
            &mut out,
            "td",
            &[
                run.started.clone(),
                stopped,
                run.mode.clone(),
                run.tier_and_hooks(),
                run.kernel.clone(),
                run.policy.clone(),
                run.rules.to_string(),
                run.reloads.len().to_string(),
            ],
        );
    }
    out.push_str("</table>\n");
    if !report.rules.is_empty() {
        out.push_str("<h2>Rules</h2>\n<table>\n");
        header(
            &mut out,
            &[
                "rule",
                "severity",
                "actions",
                "executables",
                "containers",
                "first seen",
                "last seen",
                "response p50/p99",
            ],
        );
        for rule in &report.rules {
            row(
                &mut out,
                "td",
                &[
                    rule.rule.clone(),
                    rule.severity.clone(),
                    actions(rule),
                    targets(&rule.top_executables, rule.executables),
                    targets(&rule.top_containers, rule.containers),
                    rule.first_seen.clone(),
                    rule.last_seen.clone(),
                    response(rule),
                ],
            );
        }
        out.push_str("</table>\n");
    }
    out.push_str("</body></html>\n");
    out
}
