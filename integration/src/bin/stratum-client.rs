//! Stratum client fixture (catalog F10, and N5 for the `jsonrpc` dialect): connects to a (mock)
//! pool and sends the first message a miner of the given dialect sends, with a chosen system
//! call, so tests can check that the engine denies or kills exactly that first write.
//!
//! ```text
//! stratum-client --connect IP:PORT --dialect v1|ethereum|monero|jsonrpc
//!                [--write-call write|send] [--expect-reply] [--write-delay-ms N]
//! ```
//!
//! - `--connect IP:PORT`: an address literal (no host names, so no DNS lookup).
//! - `--dialect`: which first line to send (each ends with `\n`):
//!   - `v1`: `{"id": 1, "method": "mining.subscribe", "params": ["cpuminer/2.5.1"]}`
//!   - `ethereum`: `{"id":1,"method":"mining.subscribe","params":["ethminer/0.19.0","EthereumStratum/1.0.0"]}`
//!   - `monero`: `{"id":1,"jsonrpc":"2.0","method":"login","params":{"login":"4FAKEWALLET...",
//!     "pass":"x","agent":"XMRig/6.21.0 (Linux x86_64) libuv/1.44.2 gcc/12.2.0","algo":["rx/0","cn/r"]}}`
//!   - `jsonrpc`: `{"jsonrpc":"2.0","id":7,"method":"eth_blockNumber","params":[]}`, an ordinary
//!     JSON-RPC call that is not stratum (the N5 false-positive case).
//! - `--write-call write` (default): `write(2)` on the socket's fd. `--write-call send`:
//!   `send(2)` with `MSG_NOSIGNAL`, which glibc issues as the `sendto` system call. (Rust's own
//!   `TcpStream::write` is also `sendto`, which is why `write` mode calls `libc::write`.)
//! - `--expect-reply`: after the write, wait for one reply line.
//! - `--write-delay-ms N` (at most 3000): wait between connecting and writing, to separate the
//!   connect from the first write.
//! - `--write-on-stdin`: after connecting, wait (at most 60 s) for a line on stdin before the
//!   delay and the write, so a test can connect first and start the engine before the write;
//!   the 5 s deadline starts when the line comes (exit 6 when none comes).
//!
//! Output: stdout `CONNECTED <local addr> <peer addr>`, then `SENT <bytes>` after a successful
//! write, then `REPLY <line>` with `--expect-reply`. Exit status: 0 success; 2 usage;
//! 3 the write failed (stderr `WRITE_FAILED errno=<n> <strerror>`); 4 the connection failed
//! (stderr `CONNECT_FAILED <addr> errno=<n> <strerror>`); 5 `--expect-reply` and no reply line
//! (stderr `NO_REPLY <reason>`); 6 `--write-on-stdin` and no line came.
//!
//! Bounded: the whole run (connect, delay, write, reply) has a 5 s deadline; a reply line is
//! read up to 64 KiB.

use std::{
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    os::fd::AsRawFd as _,
    process::ExitCode,
    time::{Duration, Instant},
};

use enforcer_integration::stratum::{Dialect, WriteCall, describe, send_all};

/// The whole run ends within this.
const DEADLINE: Duration = Duration::from_secs(5);
/// Longest wait for the TCP handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest reply line read.
const MAX_REPLY: usize = 64 * 1024;
/// Longest `--write-delay-ms`.
const MAX_DELAY_MS: u64 = 3000;

/// Connects, sends the first message of a stratum dialect, optionally waits for a reply.
/// Usage errors exit with status 2.
#[derive(Debug, clap::Parser)]
struct Args {
    /// Pool address, an IP:PORT literal.
    #[arg(long)]
    connect: SocketAddr,
    /// Which first message to send.
    #[arg(long, value_enum)]
    dialect: Dialect,
    /// The system call that sends it.
    #[arg(long, value_enum, default_value = "write")]
    write_call: WriteCall,
    /// Wait for a reply line (exit 5 when none comes).
    #[arg(long)]
    expect_reply: bool,
    /// Sleep between connect and write, in milliseconds.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=MAX_DELAY_MS))]
    write_delay_ms: u64,
    /// After connecting, wait for a line on stdin before writing.
    #[arg(long)]
    write_on_stdin: bool,
}

/// Longest wait for `--write-on-stdin`'s line, in milliseconds.
const STDIN_WAIT_MS: i32 = 60_000;

/// Waits for one line on stdin (at most [`STDIN_WAIT_MS`]); false when none came.
fn wait_for_stdin_line() -> bool {
    let mut fds = libc::pollfd {
        fd: libc::STDIN_FILENO,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, for the duration of the call.
    if unsafe { libc::poll(&raw mut fds, 1, STDIN_WAIT_MS) } != 1 {
        return false;
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0)
}

/// Prints one line on stdout and flushes it; a closed stdout is ignored (the exit status still
/// tells the outcome).
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Reads one line (without its newline) before `deadline`.
fn read_reply(stream: &mut TcpStream, deadline: Instant) -> Result<String, String> {
    let mut line = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("timed out".to_owned());
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(|err| format!("set_read_timeout: {err}"))?;
        match stream.read(&mut chunk) {
            Ok(0) => return Err("connection closed before a reply line".to_owned()),
            Ok(n) => {
                line.extend_from_slice(chunk.get(..n).unwrap_or_default());
                if let Some(end) = line.iter().position(|b| *b == b'\n') {
                    line.truncate(end);
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    return Ok(String::from_utf8_lossy(&line).into_owned());
                }
                if line.len() > MAX_REPLY {
                    return Err(format!("no newline in the first {MAX_REPLY} bytes"));
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Err("timed out".to_owned());
            }
            Err(err) => return Err(format!("read failed: {}", describe(&err))),
        }
    }
}

fn main() -> ExitCode {
    let mut deadline = Instant::now() + DEADLINE;
    let args = <Args as clap::Parser>::parse();
    let delay = Duration::from_millis(args.write_delay_ms);
    let message = args.dialect.message();
    let call = args.write_call;

    let mut stream = match TcpStream::connect_timeout(&args.connect, CONNECT_TIMEOUT) {
        Ok(stream) => stream,
        Err(err) => {
            eprintln!("CONNECT_FAILED {} {}", args.connect, describe(&err));
            return ExitCode::from(4);
        }
    };
    let local = stream
        .local_addr()
        .map_or_else(|_| "?".to_owned(), |a| a.to_string());
    say(&format!("CONNECTED {local} {}", args.connect));

    if args.write_on_stdin {
        if !wait_for_stdin_line() {
            eprintln!("NO_STDIN_LINE");
            return ExitCode::from(6);
        }
        deadline = Instant::now() + DEADLINE;
    }
    if !delay.is_zero() {
        std::thread::sleep(delay);
    }
    // Bound a blocked write by what is left of the deadline (SO_SNDTIMEO applies to write(2)
    // and send(2) alike).
    let left = deadline.saturating_duration_since(Instant::now());
    let _ = stream.set_write_timeout(Some(left.max(Duration::from_millis(100))));

    match send_all(stream.as_raw_fd(), message, call) {
        Ok(n) => {
            say(&format!("SENT {n}"));
        }
        Err(err) => {
            eprintln!("WRITE_FAILED {}", describe(&err));
            return ExitCode::from(3);
        }
    }

    if args.expect_reply {
        match read_reply(&mut stream, deadline) {
            Ok(line) => say(&format!("REPLY {line}")),
            Err(reason) => {
                eprintln!("NO_REPLY {reason}");
                return ExitCode::from(5);
            }
        }
    }
    ExitCode::SUCCESS
}
