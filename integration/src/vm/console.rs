//! Turns a captured serial console into a [`GuestReport`]: one result per guest case, the
//! guest's own totals, `/init` information, the console tail and the first kernel fault
//! report (soft lockup, oops, panic, RCU stall) for failure messages.

use std::collections::BTreeMap;

use super::protocol::{self, Line, Verdict};

/// How many console lines a failure message shows.
pub const TAIL_LINES: usize = 40;

/// How many lines of the first kernel fault report a failure message shows (enough for the
/// report's call trace).
pub const FAULT_LINES: usize = 60;

/// Console markers that start a kernel fault report.
const FAULT_MARKERS: [&str; 6] = [
    "BUG:",
    "Oops",
    "Kernel panic",
    "rcu: INFO:",
    "WARNING: CPU",
    "general protection fault",
];

/// One guest case as reported on the console.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseResult {
    /// The case name.
    pub case: String,
    /// Its outcome.
    pub verdict: Verdict,
    /// The `VMLOG` lines the guest printed for it, in order.
    pub log: Vec<String>,
}

/// Everything the host learned from one boot's console.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuestReport {
    /// Case results in the order the guest printed them.
    pub cases: Vec<CaseResult>,
    /// `VMTEST-DONE <passed> <failed>`, when the harness got that far.
    pub done: Option<(u32, u32)>,
    /// `VMINFO` values by key (`kernel`, `lsm`, `harness-exit`, ...); a repeated key keeps the
    /// last value.
    pub info: BTreeMap<String, String>,
    /// `VMLOG` lines of cases that never printed a result (the case the guest was in when it
    /// hung or crashed), by case.
    pub unfinished: BTreeMap<String, Vec<String>>,
    /// The last [`TAIL_LINES`] console lines.
    pub tail: Vec<String>,
    /// The first kernel fault report (see [`FAULT_MARKERS`]): up to [`FAULT_LINES`] lines from
    /// its first line; empty when the kernel reported none.
    pub first_fault: Vec<String>,
}

impl GuestReport {
    /// True when the harness finished and its totals agree with the result lines seen.
    pub fn complete(&self) -> bool {
        self.done == Some(self.counted())
    }

    /// (passed, failed) counted from the result lines.
    pub fn counted(&self) -> (u32, u32) {
        let count = |f: fn(&Verdict) -> bool| {
            u32::try_from(self.cases.iter().filter(|c| f(&c.verdict)).count()).unwrap_or(u32::MAX)
        };
        (
            count(|v| matches!(v, Verdict::Pass)),
            count(|v| matches!(v, Verdict::Fail(_))),
        )
    }

    /// The result of `case`, if the guest reported it.
    pub fn case(&self, case: &str) -> Option<&CaseResult> {
        self.cases.iter().find(|c| c.case == case)
    }

    /// Why this boot counts as failed as a whole (no `VMTEST-DONE`, or totals that disagree
    /// with the result lines), or `None`.
    pub fn incomplete_reason(&self) -> Option<String> {
        match self.done {
            None => Some("the guest never printed VMTEST-DONE (crash, panic or timeout)".into()),
            Some(done) if done != self.counted() => Some(format!(
                "VMTEST-DONE says {} passed {} failed, but the console has {} PASS and {} FAIL lines",
                done.0,
                done.1,
                self.counted().0,
                self.counted().1
            )),
            Some(_) => None,
        }
    }
}

/// Parses a whole console capture.
pub fn parse(console: &str) -> GuestReport {
    let mut report = GuestReport::default();
    let mut pending_logs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let lines: Vec<&str> = console.lines().map(|l| l.trim_end_matches('\r')).collect();
    for line in &lines {
        match protocol::parse_line(line) {
            Line::Result { case, verdict } => {
                let log = pending_logs.remove(&case).unwrap_or_default();
                report.cases.push(CaseResult { case, verdict, log });
            }
            Line::Done { passed, failed } => report.done = Some((passed, failed)),
            Line::Log { case, text } => pending_logs.entry(case).or_default().push(text),
            Line::Info { key, value } => {
                report.info.insert(key, value);
            }
            Line::Other => {}
        }
    }
    report.unfinished = pending_logs;
    let start = lines.len().saturating_sub(TAIL_LINES);
    report.tail = lines[start..].iter().map(|l| (*l).to_owned()).collect();
    if let Some(first) = lines
        .iter()
        .position(|l| FAULT_MARKERS.iter().any(|m| l.contains(m)))
    {
        report.first_fault = lines[first..]
            .iter()
            .take(FAULT_LINES)
            .map(|l| (*l).to_owned())
            .collect();
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
[    0.000000] Linux version 6.1.0\r
VMINFO userspace\r
VMINFO kernel 6.1.0-47-amd64\r
VMINFO lsm lockdown,capability,bpf\r
VMTEST lsm_bpf_active PASS\r
VMLOG lsm_exec_deny exec of /bin/write-marker was allowed\r
VMLOG lsm_exec_deny engine log: attached\r
VMTEST lsm_exec_deny FAIL exec was not denied\r
VMTEST lsm_exec_monitor SKIP no engine\r
VMTEST-DONE 1 1\r
VMINFO harness-exit 1\r
";

    #[test]
    fn parses_results_logs_and_info() {
        let r = parse(GOOD);
        assert!(r.complete());
        assert_eq!(r.incomplete_reason(), None);
        assert_eq!(r.cases.len(), 3);
        assert_eq!(
            r.case("lsm_bpf_active").map(|c| &c.verdict),
            Some(&Verdict::Pass)
        );
        let deny = r.case("lsm_exec_deny");
        assert_eq!(
            deny.map(|c| &c.verdict),
            Some(&Verdict::Fail("exec was not denied".into()))
        );
        assert_eq!(deny.map(|c| c.log.len()), Some(2));
        assert_eq!(
            r.info.get("lsm").map(String::as_str),
            Some("lockdown,capability,bpf")
        );
        assert_eq!(r.info.get("harness-exit").map(String::as_str), Some("1"));
    }

    #[test]
    fn missing_done_is_incomplete_and_keeps_the_tail() {
        let mut console = String::from("VMTEST a PASS\nVMLOG b started\n");
        for i in 0..100 {
            console.push_str(&format!("line {i}\n"));
        }
        console.push_str("Kernel panic - not syncing: Attempted to kill init!\n");
        let r = parse(&console);
        assert!(!r.complete());
        assert!(r.incomplete_reason().is_some());
        assert_eq!(
            r.unfinished.get("b").map(Vec::as_slice),
            Some(&["started".to_owned()][..])
        );
        assert_eq!(r.tail.len(), TAIL_LINES);
        assert_eq!(
            r.tail.last().map(String::as_str),
            Some("Kernel panic - not syncing: Attempted to kill init!")
        );
    }

    #[test]
    fn keeps_the_first_fault_report_with_its_trace() {
        let mut console = String::from("VMLOG a started\n");
        console.push_str("[ 1.0] watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [x:1]\n");
        for i in 0..100 {
            console.push_str(&format!("trace {i}\n"));
        }
        console.push_str("[ 9.0] watchdog: BUG: soft lockup - CPU#0 stuck for 48s! [x:1]\n");
        let r = parse(&console);
        assert_eq!(r.first_fault.len(), FAULT_LINES);
        assert!(r.first_fault[0].contains("stuck for 22s"));
        assert_eq!(r.first_fault[1], "trace 0");
        assert!(parse(GOOD).first_fault.is_empty());
    }

    #[test]
    fn totals_must_match_result_lines() {
        let r = parse("VMTEST a PASS\nVMTEST-DONE 2 0\n");
        assert!(!r.complete());
        assert!(
            r.incomplete_reason()
                .is_some_and(|reason| reason.contains("2 passed"))
        );
    }
}
