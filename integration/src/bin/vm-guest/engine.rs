//! The engine under test as a child process: started with `enforcer run`, awaited through its
//! `engine_start` audit record, stopped with SIGTERM, and killed if a case ends early.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use enforcer_integration::vm::layout;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

use crate::audit;

/// How long an engine start may take before the guest prints where it is stuck.
const SLOW_START: Duration = Duration::from_secs(40);

/// A running `enforcer run`. Dropping it kills the engine (SIGKILL) if it still runs.
#[derive(Debug)]
pub(crate) struct Engine {
    child: Option<Child>,
    /// `--audit-log` file.
    pub(crate) audit_log: PathBuf,
    /// File receiving the engine's stdout and stderr.
    pub(crate) output_log: PathBuf,
}

impl Engine {
    /// True when the engine binary is in the guest.
    pub(crate) fn present() -> bool {
        Path::new(layout::ENFORCER).is_file()
    }

    /// Starts `enforcer run --policy <deny-marker> --mode <mode> --audit-log <audit_log>`, its
    /// output going to `output_log`. An old audit log is removed first.
    pub(crate) fn start(mode: &str, audit_log: &Path, output_log: &Path) -> Result<Self, String> {
        Self::start_with(layout::DENY_MARKER_POLICY, mode, audit_log, output_log)
    }

    /// As [`Engine::start`], with another guest policy.
    pub(crate) fn start_with(
        policy: &str,
        mode: &str,
        audit_log: &Path,
        output_log: &Path,
    ) -> Result<Self, String> {
        Self::start_args(policy, mode, audit_log, output_log, &[])
    }

    /// [`Engine::start_with`], with `extra` arguments after the others.
    pub(crate) fn start_args(
        policy: &str,
        mode: &str,
        audit_log: &Path,
        output_log: &Path,
        extra: &[&str],
    ) -> Result<Self, String> {
        remove_old(audit_log)?;
        Self::spawn(policy, mode, audit_log, output_log, extra, None)
    }

    /// [`Engine::start_args`] with the engine on a new pseudo-terminal: it leads a new session
    /// whose controlling terminal is the terminal's slave side (its stdin), so its process
    /// group is the terminal's foreground group. Returns the master side: writing the
    /// interrupt character (Ctrl-C) to it makes the kernel's tty layer send SIGINT to the
    /// engine, as a terminal does when a user presses Ctrl-C.
    pub(crate) fn start_on_terminal(
        policy: &str,
        mode: &str,
        audit_log: &Path,
        output_log: &Path,
        extra: &[&str],
    ) -> Result<(Self, OwnedFd), String> {
        remove_old(audit_log)?;
        let pty = nix::pty::openpty(None, None).map_err(|e| format!("openpty: {e}"))?;
        let engine = Self::spawn(policy, mode, audit_log, output_log, extra, Some(pty.slave))?;
        Ok((engine, pty.master))
    }

    /// [`Engine::start_args`] appending to the audit log a previous engine wrote (a restart).
    pub(crate) fn restart_args(
        policy: &str,
        mode: &str,
        audit_log: &Path,
        output_log: &Path,
        extra: &[&str],
    ) -> Result<Self, String> {
        Self::spawn(policy, mode, audit_log, output_log, extra, None)
    }

    /// Starts the engine; with `terminal` (a pseudo-terminal's slave side) as its stdin and
    /// controlling terminal, in a new session (see [`Engine::start_on_terminal`]).
    fn spawn(
        policy: &str,
        mode: &str,
        audit_log: &Path,
        output_log: &Path,
        extra: &[&str],
        terminal: Option<OwnedFd>,
    ) -> Result<Self, String> {
        let out = File::create(output_log)
            .map_err(|e| format!("cannot create {}: {e}", output_log.display()))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("cannot dup {}: {e}", output_log.display()))?;
        let mut command = Command::new(layout::ENFORCER);
        command
            .arg("run")
            .arg("--policy")
            .arg(policy)
            .arg("--mode")
            .arg(mode)
            .arg("--audit-log")
            .arg(audit_log)
            // A case that ends early SIGKILLs its engine: unless the case asks for pins, none
            // are left for the next case.
            .args(if extra.contains(&"--on-crash") {
                &[][..]
            } else {
                &["--on-crash", "stop"][..]
            })
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(out)
            .stderr(err);
        match terminal {
            None => {
                command.stdin(Stdio::null());
            }
            Some(slave) => {
                command.stdin(Stdio::from(slave));
                // SAFETY: between fork and exec the child only makes two system calls
                // (async-signal-safe), touching no memory the parent's threads share.
                unsafe {
                    command.pre_exec(|| {
                        nix::unistd::setsid()?;
                        // The new session's first terminal: stdin becomes the controlling
                        // terminal, with this process group in the foreground.
                        if libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        Ok(())
                    });
                }
            }
        }
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", layout::ENFORCER))?;
        Ok(Self {
            child: Some(child),
            audit_log: audit_log.to_path_buf(),
            output_log: output_log.to_path_buf(),
        })
    }

    /// Sends SIGHUP (a policy reload).
    pub(crate) fn sighup(&self) -> Result<(), String> {
        let child = self.child.as_ref().ok_or("engine already stopped")?;
        let pid = nix::unistd::Pid::from_raw(
            i32::try_from(child.id()).map_err(|e| format!("engine pid: {e}"))?,
        );
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP)
            .map_err(|e| format!("SIGHUP to the engine: {e}"))
    }

    /// Kills the engine with SIGKILL (no clean stop) and reaps it.
    pub(crate) fn sigkill(&mut self) -> Result<ExitStatus, String> {
        let Some(mut child) = self.child.take() else {
            return Err("engine already stopped".to_owned());
        };
        child
            .kill()
            .map_err(|e| format!("cannot SIGKILL the engine: {e}"))?;
        child
            .wait()
            .map_err(|e| format!("cannot reap the engine: {e}"))
    }

    /// `Err` when the engine has already exited (with its status).
    pub(crate) fn check_running(&mut self) -> Result<(), String> {
        let Some(child) = self.child.as_mut() else {
            return Err("engine already stopped".to_owned());
        };
        match child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!("engine exited early with {status}")),
            Err(e) => Err(format!("cannot poll engine: {e}")),
        }
    }

    /// Waits for the `engine_start` record (the engine writes it once everything is attached).
    /// A start slower than [`SLOW_START`] prints a diagnosis (see [`crate::diag`]) once.
    pub(crate) fn wait_started(&mut self, timeout: Duration) -> Result<Value, String> {
        let audit_log = self.audit_log.clone();
        let started = Instant::now();
        let mut diagnosed = false;
        audit::wait_for(
            &audit_log,
            timeout,
            "\"type\":\"engine_start\" record",
            |r| audit::is_type(r, "engine_start"),
            || {
                self.check_running()?;
                if !diagnosed && started.elapsed() >= SLOW_START {
                    diagnosed = true;
                    if let Some(child) = self.child.as_ref() {
                        crate::diag::slow_start(child.id(), started.elapsed());
                    }
                }
                Ok(())
            },
        )
    }

    /// Waits for a record matching `matches` while the engine keeps running.
    pub(crate) fn wait_record(
        &mut self,
        timeout: Duration,
        what: &str,
        matches: impl Fn(&Value) -> bool,
    ) -> Result<Value, String> {
        let audit_log = self.audit_log.clone();
        audit::wait_for(&audit_log, timeout, what, matches, || self.check_running())
    }

    /// Sends SIGTERM and waits up to `timeout` for the exit; on timeout the engine is killed
    /// and that is an error.
    pub(crate) fn terminate(&mut self, timeout: Duration) -> Result<ExitStatus, String> {
        let Some(mut child) = self.child.take() else {
            return Err("engine already stopped".to_owned());
        };
        let pid = i32::try_from(child.id()).map_err(|_| "engine pid out of range".to_owned())?;
        if let Err(e) = kill(Pid::from_raw(pid), Signal::SIGTERM) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("cannot send SIGTERM to the engine: {e}"));
        }
        self.child = Some(child);
        self.wait_exit(timeout, "SIGTERM")
    }

    /// Waits up to `timeout` for the engine to exit after `after` (what should stop it); on
    /// timeout the engine is killed and that is an error.
    pub(crate) fn wait_exit(
        &mut self,
        timeout: Duration,
        after: &str,
    ) -> Result<ExitStatus, String> {
        let Some(mut child) = self.child.take() else {
            return Err("engine already stopped".to_owned());
        };
        let start = Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Ok(status),
                Ok(None) if start.elapsed() >= timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "engine still running {} s after {after}; killed",
                        timeout.as_secs()
                    ));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(100)),
                Err(e) => return Err(format!("cannot wait for the engine: {e}")),
            }
        }
    }
}

/// Removes an old `audit_log` (a case's engine starts with an empty log).
fn remove_old(audit_log: &Path) -> Result<(), String> {
    match std::fs::remove_file(audit_log) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("cannot remove old {}: {e}", audit_log.display())),
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
