//! Support for the host-tier tests: find the engine, start it with a policy, wait for its
//! `engine_start` record, stop it, read its audit log.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use enforcer_integration::vm::paths;
use serde_json::Value;

/// Whether the suite must run (CI): then a missing prerequisite fails instead of skipping.
pub(crate) fn required() -> bool {
    std::env::var_os("ENFORCER_REQUIRE_HOST").is_some_and(|v| v == "1")
}

/// Returns `false` (after a loud SKIPPED line) when the host tests cannot run here; panics
/// instead when they are required.
pub(crate) fn can_run(test: &str) -> bool {
    let reason = if !nix::unistd::geteuid().is_root() {
        Some("not root (loading BPF programs needs CAP_BPF/CAP_SYS_ADMIN)".to_owned())
    } else if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        Some("kernel has no BTF (/sys/kernel/btf/vmlinux)".to_owned())
    } else {
        None
    };
    match reason {
        None => true,
        Some(reason) if required() => {
            panic!("{test}: cannot run: {reason} (ENFORCER_REQUIRE_HOST=1)")
        }
        Some(reason) => {
            eprintln!("SKIPPED {test}: {reason}");
            false
        }
    }
}

/// The engine binary: `$ENFORCER_BIN`, else the workspace's release or debug build.
pub(crate) fn enforcer_bin() -> PathBuf {
    let root = paths::workspace_root();
    match paths::engine_under_test(&root) {
        Ok(Some(binary)) => binary,
        Ok(None) => panic!(
            "enforcer binary not found: build it with `cargo build --release -p enforcer` or set \
             ENFORCER_BIN"
        ),
        Err(why) => panic!("{why}"),
    }
}

/// The kernel counter `name` of the `engine_stop` record in `records`.
pub(crate) fn stop_counter(records: &[Value], name: &str) -> u64 {
    let stop = records
        .iter()
        .find(|r| r["type"] == "engine_stop")
        .expect("engine_stop record");
    stop["counters"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("counter {name}: {stop:#}"))
}

/// A NUL-terminated copy of `p` for libc calls.
pub(crate) fn cpath(p: &Path) -> std::ffi::CString {
    use std::os::unix::ffi::OsStrExt as _;
    std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap()
}

/// A temporary directory by its canonical path (the kernel reports resolved paths), with the
/// sub-directories `subdirs` made in it.
pub(crate) fn canonical_workdir(subdirs: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().canonicalize().unwrap();
    for sub in subdirs {
        std::fs::create_dir(path.join(sub)).unwrap();
    }
    (dir, path)
}

/// The `action` records with `action`, and for `rule` when one is given.
pub(crate) fn actions<'a>(
    records: &'a [Value],
    action: &str,
    rule: Option<&str>,
) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| {
            r["type"] == "action"
                && r["action"] == action
                && rule.is_none_or(|rule| r["rule"] == rule)
        })
        .collect()
}

/// A running engine.
pub(crate) struct Engine {
    child: Option<Child>,
    pub(crate) audit: PathBuf,
}

impl Engine {
    /// Starts `enforcer run` with `policy` in `mode` and waits for its `engine_start` record.
    pub(crate) fn start(dir: &Path, policy: &str, mode: &str) -> Engine {
        Self::start_with(dir, policy, mode, &[])
    }

    /// Like [`Engine::start`], with more `enforcer run` arguments.
    pub(crate) fn start_with(dir: &Path, policy: &str, mode: &str, extra: &[&str]) -> Engine {
        let policy_path = dir.join("policy.yaml");
        std::fs::write(&policy_path, policy).unwrap();
        Self::start_at(dir, &policy_path, mode, extra)
    }

    /// Starts `enforcer run` with the policy file or directory at `policy_path` (the audit log
    /// goes into `dir`) and waits for its `engine_start` record. Unless `extra` says otherwise
    /// the engine runs with `--on-crash stop`: [`Engine`]'s drop SIGKILLs it, and a killed test
    /// engine must not leave its programs pinned on a machine other tests share.
    pub(crate) fn start_at(dir: &Path, policy_path: &Path, mode: &str, extra: &[&str]) -> Engine {
        Self::start_by(&[], dir, policy_path, mode, extra)
    }

    /// Like [`Engine::start_at`], run by `launcher` (a command and its arguments, given the
    /// engine's command line after them, which it must exec in its own process so the child's
    /// pid is the engine's); an empty `launcher` runs the engine itself.
    pub(crate) fn start_by(
        launcher: &[&str],
        dir: &Path,
        policy_path: &Path,
        mode: &str,
        extra: &[&str],
    ) -> Engine {
        let audit = dir.join(format!("audit-{mode}.jsonl"));
        let on_crash: &[&str] = if extra.contains(&"--on-crash") {
            &[]
        } else {
            &["--on-crash", "stop"]
        };
        let mut command = match launcher.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(enforcer_bin());
                c
            }
            None => Command::new(enforcer_bin()),
        };
        let child = command
            .args(["run", "--quiet", "--mode", mode, "--policy"])
            .arg(policy_path)
            .arg("--audit-log")
            .arg(&audit)
            .args(on_crash)
            .args(extra)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn enforcer");
        let mut engine = Engine {
            child: Some(child),
            audit,
        };
        engine.wait_for(Duration::from_secs(60), "engine_start", |r| {
            r["type"] == "engine_start"
        });
        engine
    }

    /// The audit records so far.
    pub(crate) fn records(&self) -> Vec<Value> {
        // A line being written may be incomplete: skip what does not parse.
        std::fs::read_to_string(&self.audit)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// Waits until a record satisfies `pred`, returning it.
    pub(crate) fn wait_for(
        &mut self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(r) = self.records().into_iter().find(|r| pred(r)) {
                return r;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "enforcer exited with {status} before {what}; audit: {:?}",
                    self.records()
                );
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; audit: {:#?}",
                self.records()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends SIGHUP (a policy reload).
    pub(crate) fn sighup(&self) {
        let pid = nix::unistd::Pid::from_raw(self.pid() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    }

    /// The engine's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Kills the engine with SIGKILL (no clean stop) and reaps it; returns its audit log.
    pub(crate) fn sigkill(mut self) -> PathBuf {
        if let Some(mut child) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
            let status = child.wait().unwrap();
            assert_eq!(
                std::os::unix::process::ExitStatusExt::signal(&status),
                Some(libc::SIGKILL),
                "{status}"
            );
        }
        self.audit.clone()
    }

    /// Sends SIGTERM and asserts a clean exit.
    pub(crate) fn stop(mut self) -> Vec<Value> {
        let mut child = self.child.take().unwrap();
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let status = child.wait().unwrap();
        assert!(status.success(), "enforcer exit status {status}");
        self.records()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Copies `src` to `dir/name` with mode 0755.
pub(crate) fn install(src: &Path, dir: &Path, name: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let dst = dir.join(name);
    std::fs::copy(src, &dst).unwrap();
    std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o755)).unwrap();
    dst
}

/// A mock stratum pool (`mock-pool`), killed when dropped.
pub(crate) struct MockPool {
    child: Child,
    /// Its listening addresses, as its `READY` line gave them (one per `listen`).
    pub(crate) addrs: Vec<String>,
}

impl MockPool {
    /// Starts `mock-pool` listening on each of `listen` (`IP:PORT`, port 0 for any) and
    /// recording into `record`, and waits for its `READY` line.
    pub(crate) fn start(listen: &[&str], record: &Path) -> MockPool {
        use std::io::{BufRead as _, BufReader};
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mock-pool"));
        for addr in listen {
            cmd.args(["--listen", addr]);
        }
        let mut child = cmd
            .arg("--record")
            .arg(record)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addrs: Vec<String> = line
            .strip_prefix("READY ")
            .unwrap_or_else(|| panic!("mock-pool said {line:?}"))
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        assert_eq!(addrs.len(), listen.len(), "{line:?}");
        MockPool { child, addrs }
    }

    /// The pool's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for MockPool {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the `io-uring-client` fixture with `args` to completion; fails the test when io_uring
/// is not available on this host (exit 6: `kernel.io_uring_disabled`, seccomp, ...).
#[allow(dead_code)]
pub(crate) fn io_uring_client(args: &[&str]) -> std::process::Output {
    let out = Command::new(env!("CARGO_BIN_EXE_io-uring-client"))
        .args(args)
        .output()
        .unwrap();
    assert_ne!(
        out.status.code(),
        Some(6),
        "io_uring is not available here: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
