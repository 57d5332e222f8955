//! Driving the DNS fixtures from a test, on the host or in the VM guest: start `stub-dns` and
//! wait for its `READY` line, run `dns-client` once and read its one-line outcome. The fixture
//! binaries document their own command lines (`src/bin/stub-dns.rs`, `src/bin/dns-client.rs`).

use std::{
    io::{BufRead as _, BufReader},
    net::SocketAddr,
    os::unix::process::ExitStatusExt as _,
    path::Path,
    process::{Child, Command, ExitStatus, Stdio},
};

use serde_json::Value;

/// A running `stub-dns`, killed on drop.
#[derive(Debug)]
pub struct StubDns {
    child: Child,
    /// The bound address (UDP and TCP share it).
    pub addr: SocketAddr,
}

impl StubDns {
    /// Starts `binary --listen listen --answer NAME=IP... --record record` and waits for its
    /// `READY` line (the stub prints it once bound; it exits if binding fails, which ends the
    /// wait with an error).
    pub fn start(
        binary: &Path,
        listen: &str,
        answers: &[&str],
        record: &Path,
    ) -> Result<StubDns, String> {
        let mut cmd = Command::new(binary);
        cmd.args(["--listen", listen]);
        for answer in answers {
            cmd.args(["--answer", answer]);
        }
        let mut child = cmd
            .arg("--record")
            .arg(record)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        let stdout = child.stdout.take().ok_or("stub-dns has no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| format!("stub-dns READY: {e}"))?;
        let addr = line
            .split_whitespace()
            .nth(1)
            .filter(|_| line.starts_with("READY "))
            .and_then(|a| a.parse().ok());
        match addr {
            Some(addr) => Ok(StubDns { child, addr }),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!("stub-dns said {line:?}"))
            }
        }
    }

    /// The queries the stub received so far, from its record file.
    pub fn queries(record: &Path) -> Vec<Value> {
        std::fs::read_to_string(record)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for StubDns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How one `dns-client` run ended.
#[derive(Debug)]
pub struct DnsRun {
    /// The exit status.
    pub status: ExitStatus,
    /// The outcome line (null when the client printed none, e.g. killed before it could).
    pub outcome: Value,
}

impl DnsRun {
    /// Whether the client was killed by SIGKILL.
    pub fn killed(&self) -> bool {
        self.status.signal() == Some(libc::SIGKILL)
    }

    /// Whether the send failed with EPERM (exit 3, `errno` 1).
    pub fn send_refused(&self) -> bool {
        self.status.code() == Some(3)
            && self.outcome["stage"] == "send"
            && self.outcome["errno"] == 1
    }

    /// Whether no answer came within the client's 3 s (a query dropped on its way out).
    pub fn unanswered(&self) -> bool {
        self.status.code() == Some(4)
            && self.outcome["stage"] == "recv"
            && self.outcome["errno"] == libc::ETIMEDOUT
    }

    /// Whether the connection was aborted while the client waited for the answer (a TCP query
    /// dropped on its way out, whose connection the engine then aborted).
    pub fn aborted(&self) -> bool {
        self.status.code() == Some(4)
            && self.outcome["stage"] == "recv"
            && self.outcome["errno"] == libc::ECONNABORTED
    }

    /// The answered addresses, when the query was answered.
    pub fn answers(&self) -> Option<Vec<String>> {
        if self.outcome["ok"] != true {
            return None;
        }
        let list = self.outcome["answers"].as_array()?;
        Some(
            list.iter()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect(),
        )
    }
}

/// Runs `binary --server server --name name --via via` to completion.
pub fn dns_query(
    binary: &Path,
    server: SocketAddr,
    name: &str,
    via: &str,
) -> Result<DnsRun, String> {
    dns_query_lingering(binary, server, name, via, 0)
}

/// [`dns_query`] with `--linger-ms linger_ms`: after a failure the client stays alive that
/// long (a kill that follows a refused send finds it).
pub fn dns_query_lingering(
    binary: &Path,
    server: SocketAddr,
    name: &str,
    via: &str,
    linger_ms: u32,
) -> Result<DnsRun, String> {
    let out = Command::new(binary)
        .args([
            "--server",
            &server.to_string(),
            "--name",
            name,
            "--via",
            via,
            "--linger-ms",
            &linger_ms.to_string(),
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
    let outcome = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null);
    Ok(DnsRun {
        status: out.status,
        outcome,
    })
}

/// Every way `dns-client` can send a query.
pub const ALL_VIAS: [&str; 7] = [
    "sendto",
    "send",
    "write",
    "sendmsg",
    "sendmmsg",
    "tcp",
    "tcp-writev",
];
