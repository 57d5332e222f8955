//! The QEMU launcher: boots one kernel with an initramfs under TCG, captures the serial
//! console line by line with timestamps, and kills QEMU when the hard timeout expires.

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Errors starting or reaping QEMU (a hung guest is not an error: see [`BootEnd::TimedOut`]).
#[derive(Debug, thiserror::Error)]
pub enum QemuError {
    /// QEMU could not be started.
    #[error("cannot start {qemu}: {source}")]
    Spawn {
        /// The QEMU binary.
        qemu: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Waiting for or killing QEMU failed.
    #[error("cannot reap QEMU: {0}")]
    Wait(std::io::Error),
}

/// How to boot.
#[derive(Debug, Clone)]
pub struct QemuConfig {
    /// `qemu-system-x86_64`.
    pub qemu: PathBuf,
    /// Guest memory in MiB.
    pub memory_mib: u32,
    /// Guest CPUs.
    pub cpus: u32,
    /// Kernel command line.
    pub append: String,
    /// Hard limit for the whole boot; QEMU is killed when it expires.
    pub timeout: Duration,
    /// Copy console lines to stderr as they arrive, prefixed with `tag`.
    pub echo: Option<String>,
    /// `Some(n)`: the guest's clocks count instructions, one every 2^n ns (QEMU `-icount
    /// shift=n,sleep=off`), so a guest timing is an instruction count whatever else the host
    /// is doing, and an idle guest skips to its next timer at once. `None` (the tests): the
    /// guest's clocks follow the host's.
    pub icount_shift: Option<u8>,
}

/// The LSM list of the recipe: BPF LSM active (the lsm tier).
pub const LSM_WITH_BPF: &str = "lsm=lockdown,capability,bpf";
/// The LSM list of a signal-tier boot: BPF LSM built in but not active, as on a distribution
/// kernel booted with its default list.
pub const LSM_WITHOUT_BPF: &str = "lsm=lockdown,capability";

impl QemuConfig {
    /// The same boot with BPF LSM inactive, so the engine runs in the signal tier; `Err` when
    /// the command line has no [`LSM_WITH_BPF`] to change.
    pub fn without_bpf_lsm(&mut self) -> Result<(), String> {
        if !self.append.contains(LSM_WITH_BPF) {
            return Err(format!(
                "the VM's command line has no {LSM_WITH_BPF} to change: {}",
                self.append
            ));
        }
        self.append = self.append.replace(LSM_WITH_BPF, LSM_WITHOUT_BPF);
        Ok(())
    }

    /// The verified recipe: single-threaded TCG, `-cpu max`, 1 GiB, 2 CPUs, serial console,
    /// BPF LSM enabled, soft lockups fatal.
    pub fn new(qemu: impl Into<PathBuf>, timeout: Duration) -> Self {
        Self {
            qemu: qemu.into(),
            memory_mib: 1024,
            cpus: 2,
            // A soft lockup panics with every CPU's backtrace (and ends the boot at once)
            // instead of hanging until the timeout.
            append: "console=ttyS0 quiet panic=-1 softlockup_panic=1 \
                     softlockup_all_cpu_backtrace=1 "
                .to_owned()
                + LSM_WITH_BPF,
            timeout,
            echo: None,
            icount_shift: None,
        }
    }

    /// The full QEMU argument list for `kernel` and `initrd`.
    pub fn args(&self, kernel: &Path, initrd: &Path) -> Vec<String> {
        let mut args: Vec<String> = [
            // One host thread runs both vCPUs in turn. With multi-threaded TCG, code the guest
            // patches on one vCPU (jump labels and static calls flipped by every BPF attach
            // and detach, through text_poke_bp) was seen executing stale on the other: an
            // "Oops: int3" in syscall_trace_enter on 6.12 and a two-CPU soft lockup on 6.1,
            // each while an engine attached and the guest harness made syscalls.
            "-accel",
            "tcg,thread=single",
            "-cpu",
            "max",
            "-nographic",
            "-no-reboot",
            "-nic",
            "none",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        args.extend([
            "-m".to_owned(),
            self.memory_mib.to_string(),
            "-smp".to_owned(),
            self.cpus.to_string(),
            "-kernel".to_owned(),
            kernel.display().to_string(),
            "-initrd".to_owned(),
            initrd.display().to_string(),
            "-append".to_owned(),
            self.append.clone(),
        ]);
        if let Some(shift) = self.icount_shift {
            args.extend(["-icount".to_owned(), format!("shift={shift},sleep=off")]);
        }
        args
    }
}

/// One console line and when it arrived, relative to QEMU's start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleLine {
    /// Time since QEMU started.
    pub at: Duration,
    /// The text, without the line ending.
    pub text: String,
}

/// How the boot ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootEnd {
    /// QEMU exited by itself (the guest powered off, or QEMU failed).
    Exited(ExitStatus),
    /// The timeout expired and QEMU was killed.
    TimedOut,
}

/// Everything captured from one boot.
#[derive(Debug, Clone)]
pub struct BootCapture {
    /// Console lines in order.
    pub lines: Vec<ConsoleLine>,
    /// QEMU's own stderr (errors about arguments, missing files).
    pub qemu_stderr: String,
    /// How it ended.
    pub end: BootEnd,
    /// Wall time from start to exit or kill.
    pub elapsed: Duration,
}

impl BootCapture {
    /// The console as one text, lines joined with `\n`.
    pub fn console_text(&self) -> String {
        let mut text = String::new();
        for line in &self.lines {
            text.push_str(&line.text);
            text.push('\n');
        }
        text
    }

    /// The console with each line prefixed by its arrival time since QEMU's start
    /// (`[  12.345] text`), for the saved console log.
    pub fn timestamped_text(&self) -> String {
        let mut text = String::new();
        for line in &self.lines {
            text.push_str(&format!("[{:8.3}] {}\n", line.at.as_secs_f64(), line.text));
        }
        text
    }

    /// When the first line containing `needle` arrived.
    pub fn first_line_with(&self, needle: &str) -> Option<Duration> {
        self.lines
            .iter()
            .find(|l| l.text.contains(needle))
            .map(|l| l.at)
    }
}

/// Kills and reaps QEMU if the launcher unwinds before it did so itself.
struct KillOnDrop(Option<Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Boots `kernel` with `initrd` and captures the console until QEMU exits or the timeout
/// expires (then QEMU is killed and the capture ends with [`BootEnd::TimedOut`]).
pub fn boot(kernel: &Path, initrd: &Path, config: &QemuConfig) -> Result<BootCapture, QemuError> {
    let start = Instant::now();
    let mut child = Command::new(&config.qemu)
        .args(config.args(kernel, initrd))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| QemuError::Spawn {
            qemu: config.qemu.clone(),
            source,
        })?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let mut guard = KillOnDrop(Some(child));

    let (tx, rx) = mpsc::channel::<ConsoleLine>();
    let echo = config.echo.clone();
    let reader = std::thread::spawn(move || {
        let Some(stdout) = stdout else { return };
        let mut reader = BufReader::new(stdout);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = strip_terminal_codes(&String::from_utf8_lossy(&buf));
                    if let Some(tag) = &echo {
                        eprintln!("[{tag}] {text}");
                    }
                    if tx
                        .send(ConsoleLine {
                            at: start.elapsed(),
                            text,
                        })
                        .is_err()
                    {
                        break;
                    }
                }
            }
        }
    });
    let err_reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut stderr) = stderr {
            let _ = stderr.read_to_string(&mut text);
        }
        text
    });

    let deadline = start + config.timeout;
    let mut lines = Vec::new();
    let mut timed_out = false;
    loop {
        let now = Instant::now();
        if now >= deadline {
            timed_out = true;
            break;
        }
        match rx.recv_timeout(deadline - now) {
            Ok(line) => lines.push(line),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                timed_out = true;
                break;
            }
            // The reader saw EOF: QEMU closed its stdout, i.e. it is exiting.
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let mut child = guard
        .0
        .take()
        .ok_or_else(|| QemuError::Wait(std::io::Error::other("QEMU child handle lost")))?;
    let end = if timed_out {
        child.kill().map_err(QemuError::Wait)?;
        child.wait().map_err(QemuError::Wait)?;
        BootEnd::TimedOut
    } else {
        BootEnd::Exited(child.wait().map_err(QemuError::Wait)?)
    };
    let elapsed = start.elapsed();
    // QEMU is gone, so its pipes are closed; the bound only guards against a stray process
    // that inherited them.
    let _ = join_within(reader, Duration::from_secs(5));
    // Lines that raced with the exit or the kill.
    lines.extend(rx.try_iter());
    let qemu_stderr = join_within(err_reader, Duration::from_secs(5)).unwrap_or_default();
    Ok(BootCapture {
        lines,
        qemu_stderr,
        end,
        elapsed,
    })
}

/// Removes what the firmware and kernel send for a terminal rather than for a reader: ANSI
/// escape sequences (`ESC [ ... final`, `ESC c`), the line ending and other control characters
/// (tabs stay).
pub fn strip_terminal_codes(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                if chars.peek() == Some(&'[') {
                    chars.next();
                    // Parameter and intermediate bytes, then one final byte in '@'..='~'.
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                } else {
                    chars.next();
                }
            }
            '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Joins `handle` if it finishes within `limit`; otherwise leaves it detached.
fn join_within<T>(handle: std::thread::JoinHandle<T>, limit: Duration) -> Option<T> {
    let until = Instant::now() + limit;
    while !handle.is_finished() {
        if Instant::now() >= until {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    handle.join().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_codes_are_stripped() {
        assert_eq!(
            strip_terminal_codes(
                "Booting from ROM..\u{1b}c\u{1b}[?7l\u{1b}[2JVMINFO userspace\r\n"
            ),
            "Booting from ROM..VMINFO userspace"
        );
        assert_eq!(strip_terminal_codes("a\tb\u{1b}[0m"), "a\tb");
    }

    #[test]
    fn args_follow_the_verified_recipe() {
        let config = QemuConfig::new("qemu-system-x86_64", Duration::from_secs(1));
        let args = config
            .args(Path::new("/k/vmlinuz"), Path::new("/t/initrd.gz"))
            .join(" ");
        for part in [
            "-accel tcg,thread=single",
            "-cpu max",
            "-m 1024",
            "-smp 2",
            "-nographic",
            "-no-reboot",
            "-nic none",
            "-kernel /k/vmlinuz",
            "-initrd /t/initrd.gz",
        ] {
            assert!(args.contains(part), "{part} missing from {args}");
        }
        assert!(config.append.contains("lsm=lockdown,capability,bpf"));
        let mut signal = config.clone();
        assert_eq!(signal.without_bpf_lsm(), Ok(()));
        assert!(
            signal.append.contains("lsm=lockdown,capability"),
            "{}",
            signal.append
        );
        assert!(!signal.append.contains("bpf"), "{}", signal.append);
        assert!(signal.without_bpf_lsm().is_err(), "no bpf left to drop");
        assert!(config.append.contains("console=ttyS0"));
        assert!(config.append.contains("panic=-1"));
        assert!(
            !args.contains("-icount"),
            "the tests run on the host's clock"
        );
        let counted = QemuConfig {
            icount_shift: Some(0),
            ..config
        };
        let args = counted
            .args(Path::new("/k/vmlinuz"), Path::new("/t/initrd.gz"))
            .join(" ");
        assert!(args.contains("-icount shift=0,sleep=off"), "{args}");
    }

    /// A stand-in "QEMU" (a shell script) that prints and then hangs is killed at the timeout.
    #[test]
    fn hung_guest_is_killed_at_the_timeout() -> Result<(), Box<dyn std::error::Error>> {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("vm-qemu-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let fake = dir.join("fake-qemu");
        std::fs::write(
            &fake,
            "#!/bin/sh\necho 'booting\r'\necho 'VMINFO userspace'\nexec sleep 30\n",
        )?;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755))?;
        let config = QemuConfig::new(&fake, Duration::from_millis(1500));
        let capture = boot(Path::new("/k"), Path::new("/i"), &config)?;
        std::fs::remove_dir_all(&dir)?;
        assert_eq!(capture.end, BootEnd::TimedOut);
        assert!(capture.elapsed < Duration::from_secs(10));
        let texts: Vec<&str> = capture.lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["booting", "VMINFO userspace"]);
        assert!(capture.first_line_with("VMINFO userspace").is_some());
        let stamped = capture.timestamped_text();
        assert!(stamped.starts_with('['), "{stamped}");
        assert!(stamped.contains("] VMINFO userspace\n"), "{stamped}");
        Ok(())
    }

    #[test]
    fn exiting_guest_reports_its_status() -> Result<(), Box<dyn std::error::Error>> {
        let config = QemuConfig::new("/bin/true", Duration::from_secs(20));
        let capture = boot(Path::new("/k"), Path::new("/i"), &config)?;
        assert!(matches!(capture.end, BootEnd::Exited(status) if status.success()));
        assert!(capture.lines.is_empty());
        Ok(())
    }
}
