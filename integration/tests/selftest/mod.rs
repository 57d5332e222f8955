//! What the fixture self-tests share: a fixture server process that is stopped with SIGTERM
//! (and must obey within 5 s), and clients run to completion under a time limit.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

/// Longest a client process may take (their own deadlines are shorter).
pub(crate) const CLIENT_LIMIT: Duration = Duration::from_secs(10);

/// A fixture server: killed on drop, stopped politely by [`Server::stop`].
pub(crate) struct Server {
    child: Option<Child>,
    name: &'static str,
}

impl Server {
    /// Wraps a spawned server named `name` (for messages).
    pub(crate) fn new(child: Child, name: &'static str) -> Server {
        Server {
            child: Some(child),
            name,
        }
    }

    /// Sends SIGTERM and returns the exit status (5 s at most, then SIGKILL and a panic).
    pub(crate) fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("{} ignored SIGTERM for 5 s", self.name);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs a command to completion, killing it after [`CLIENT_LIMIT`].
pub(crate) fn run_bounded(mut cmd: Command) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > CLIENT_LIMIT {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{cmd:?} still running after {CLIENT_LIMIT:?}; stdout {:?} stderr {:?}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
