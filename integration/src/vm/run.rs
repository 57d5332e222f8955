//! One kernel, one boot: runs [`qemu::boot`], parses the console with [`console::parse`], and
//! decides each expected case's outcome, including the boot-level failures (timeout, panic,
//! missing `VMTEST-DONE`) that must show the console tail.

use std::path::Path;
use std::time::Duration;

use super::console::{self, GuestReport};
use super::kernels::Kernel;
use super::protocol::{self, Verdict};
use super::qemu::{self, BootCapture, BootEnd, QemuConfig, QemuError};

/// The outcome of one kernel's boot.
#[derive(Debug, Clone)]
pub struct KernelRun {
    /// The kernel booted.
    pub kernel: Kernel,
    /// The raw capture.
    pub capture: BootCapture,
    /// The parsed console.
    pub report: GuestReport,
}

/// One expected case's final outcome on one kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseOutcome {
    /// The case.
    pub case: String,
    /// Its verdict; a case the guest never reported is a failure.
    pub verdict: Verdict,
    /// The guest's `VMLOG` lines for it.
    pub log: Vec<String>,
}

/// Boots `kernel` with `initrd` and parses what the guest printed.
pub fn run_kernel(
    kernel: &Kernel,
    initrd: &Path,
    config: &QemuConfig,
) -> Result<KernelRun, QemuError> {
    let capture = qemu::boot(&kernel.vmlinuz, initrd, config)?;
    let report = console::parse(&capture.console_text());
    Ok(KernelRun {
        kernel: kernel.clone(),
        capture,
        report,
    })
}

impl KernelRun {
    /// Time from QEMU's start to the first line `/init` prints.
    pub fn boot_to_userspace(&self) -> Option<Duration> {
        self.capture
            .first_line_with(&format!("{} userspace", protocol::INFO))
    }

    /// The kernel release the guest reported (`uname -r`).
    pub fn release(&self) -> Option<&str> {
        self.report.info.get("kernel").map(String::as_str)
    }

    /// Why the boot as a whole failed (hang, crash, panic, no `VMTEST-DONE`), with the last
    /// console lines; `None` when the harness finished normally.
    pub fn boot_failure(&self) -> Option<String> {
        let what = match (&self.capture.end, self.report.incomplete_reason()) {
            (BootEnd::TimedOut, _) => format!(
                "kernel {} hung: QEMU killed after {} s without VMTEST-DONE",
                self.kernel.name,
                self.capture.elapsed.as_secs()
            ),
            (BootEnd::Exited(status), Some(reason)) => {
                format!(
                    "kernel {}: {reason}; QEMU exited with {status}",
                    self.kernel.name
                )
            }
            (BootEnd::Exited(_), None) => return None,
        };
        let mut message = what;
        let stderr = self.capture.qemu_stderr.trim();
        if !stderr.is_empty() {
            message.push_str(&format!("\nQEMU stderr:\n{stderr}"));
        }
        if !self.report.first_fault.is_empty() {
            message.push_str(&format!(
                "\nfirst kernel fault report ({} lines):\n{}",
                self.report.first_fault.len(),
                self.report.first_fault.join("\n")
            ));
        }
        message.push_str(&format!(
            "\nlast {} console lines:\n{}",
            self.report.tail.len(),
            self.report.tail.join("\n")
        ));
        Some(message)
    }

    /// The outcome of every case in `expected`, then of any case the guest reported that was
    /// not expected. An expected case the guest never reported fails.
    pub fn outcomes(&self, expected: &[String]) -> Vec<CaseOutcome> {
        let mut out: Vec<CaseOutcome> = expected
            .iter()
            .map(|name| match self.report.case(name) {
                Some(result) => CaseOutcome {
                    case: name.clone(),
                    verdict: result.verdict.clone(),
                    log: result.log.clone(),
                },
                None => {
                    let log = self.report.unfinished.get(name).cloned();
                    let reason = match (&log, self.report.done.is_some()) {
                        (_, true) => "the guest harness did not run this case",
                        (Some(_), false) => "no result: the guest stopped while running this case",
                        (None, false) => "no result: the guest stopped before this case started",
                    };
                    CaseOutcome {
                        case: name.clone(),
                        verdict: Verdict::Fail(reason.to_owned()),
                        log: log.unwrap_or_default(),
                    }
                }
            })
            .collect();
        for result in &self.report.cases {
            if !expected.contains(&result.case) {
                out.push(CaseOutcome {
                    case: result.case.clone(),
                    verdict: result.verdict.clone(),
                    log: result.log.clone(),
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::vm::qemu::ConsoleLine;

    fn kernel_run(console: &[&str], end: BootEnd) -> KernelRun {
        let lines: Vec<ConsoleLine> = console
            .iter()
            .enumerate()
            .map(|(i, text)| ConsoleLine {
                at: Duration::from_secs(u64::try_from(i).unwrap_or(0)),
                text: (*text).to_owned(),
            })
            .collect();
        let capture = BootCapture {
            lines,
            qemu_stderr: String::new(),
            end,
            elapsed: Duration::from_secs(240),
        };
        KernelRun {
            kernel: Kernel {
                name: "6.1".into(),
                vmlinuz: PathBuf::from("/k/6.1/vmlinuz"),
                package: None,
                release: None,
                msr_module: None,
                diag_modules: Vec::new(),
            },
            report: console::parse(&capture.console_text()),
            capture,
        }
    }

    #[test]
    fn hung_guest_fails_every_unfinished_case_and_names_the_kernel() {
        let run = kernel_run(
            &[
                "SeaBIOS",
                "VMINFO userspace",
                "VMTEST a PASS",
                "VMLOG b started",
                "VMLOG b waiting for the engine",
            ],
            BootEnd::TimedOut,
        );
        assert_eq!(run.boot_to_userspace(), Some(Duration::from_secs(1)));
        let outcomes = run.outcomes(&["a".into(), "b".into(), "c".into()]);
        assert_eq!(outcomes[0].verdict, Verdict::Pass);
        assert!(matches!(&outcomes[1].verdict, Verdict::Fail(r) if r.contains("while running")));
        assert_eq!(outcomes[1].log.len(), 2);
        assert!(matches!(&outcomes[2].verdict, Verdict::Fail(r) if r.contains("before this case")));
        let failure = run.boot_failure().unwrap_or_default();
        assert!(failure.contains("kernel 6.1 hung"), "{failure}");
        assert!(
            failure.contains("VMLOG b waiting for the engine"),
            "{failure}"
        );
    }

    #[test]
    fn finished_guest_is_not_a_boot_failure() {
        let run = kernel_run(
            &[
                "VMTEST a PASS",
                "VMTEST b FAIL denied nothing",
                "VMTEST-DONE 1 1",
            ],
            BootEnd::TimedOut,
        );
        // QEMU was killed after the harness finished (poweroff hung): still reported.
        assert!(run.boot_failure().is_some());
        let outcomes = run.outcomes(&["a".into(), "b".into()]);
        assert_eq!(outcomes[1].verdict, Verdict::Fail("denied nothing".into()));
    }
}
