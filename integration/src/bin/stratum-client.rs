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
//!
//! Output: stdout `CONNECTED <local addr> <peer addr>`, then `SENT <bytes>` after a successful
//! write, then `REPLY <line>` with `--expect-reply`. Exit status: 0 success; 2 usage;
//! 3 the write failed (stderr `WRITE_FAILED errno=<n> <strerror>`); 4 the connection failed
//! (stderr `CONNECT_FAILED <addr> errno=<n> <strerror>`); 5 `--expect-reply` and no reply line
//! (stderr `NO_REPLY <reason>`).
//!
//! Bounded: the whole run (connect, delay, write, reply) has a 5 s deadline; a reply line is
//! read up to 64 KiB.

use std::{
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    os::fd::{AsRawFd as _, RawFd},
    process::ExitCode,
    time::{Duration, Instant},
};

/// The whole run ends within this.
const DEADLINE: Duration = Duration::from_secs(5);
/// Longest wait for the TCP handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest reply line read.
const MAX_REPLY: usize = 64 * 1024;
/// Longest `--write-delay-ms`.
const MAX_DELAY_MS: u64 = 3000;

const V1: &[u8] =
    b"{\"id\": 1, \"method\": \"mining.subscribe\", \"params\": [\"cpuminer/2.5.1\"]}\n";
const ETHEREUM: &[u8] = b"{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[\"ethminer/0.19.0\",\"EthereumStratum/1.0.0\"]}\n";
const MONERO: &[u8] = b"{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"login\",\"params\":{\"login\":\"4FAKEWALLETxxxxxxxxxxxxxxxx\",\"pass\":\"x\",\"agent\":\"XMRig/6.21.0 (Linux x86_64) libuv/1.44.2 gcc/12.2.0\",\"algo\":[\"rx/0\",\"cn/r\"]}}\n";
const JSONRPC: &[u8] =
    b"{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"eth_blockNumber\",\"params\":[]}\n";

const USAGE: &str = "usage: stratum-client --connect IP:PORT --dialect v1|ethereum|monero|jsonrpc \
                     [--write-call write|send] [--expect-reply] [--write-delay-ms N]";

#[derive(Clone, Copy)]
enum WriteCall {
    Write,
    Send,
}

struct Args {
    connect: SocketAddr,
    message: &'static [u8],
    call: WriteCall,
    expect_reply: bool,
    delay: Duration,
}

fn parse_args() -> Result<Args, String> {
    let mut connect = None;
    let mut message = None;
    let mut call = WriteCall::Write;
    let mut expect_reply = false;
    let mut delay = Duration::ZERO;
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        let arg = arg
            .into_string()
            .map_err(|a| format!("argument is not UTF-8: {}", a.to_string_lossy()))?;
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg, None),
        };
        let mut value = || -> Result<String, String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => args
                    .next()
                    .map(|v| v.to_string_lossy().into_owned())
                    .ok_or_else(|| format!("{flag} needs a value")),
            }
        };
        match flag.as_str() {
            "--help" | "-h" => return Err(String::new()),
            "--connect" => {
                let v = value()?;
                connect = Some(
                    v.parse::<SocketAddr>()
                        .map_err(|err| format!("--connect {v}: not an IP:PORT literal: {err}"))?,
                );
            }
            "--dialect" => {
                let v = value()?;
                message = Some(match v.as_str() {
                    "v1" => V1,
                    "ethereum" => ETHEREUM,
                    "monero" => MONERO,
                    "jsonrpc" => JSONRPC,
                    other => return Err(format!("unknown dialect {other}")),
                });
            }
            "--write-call" => {
                let v = value()?;
                call = match v.as_str() {
                    "write" => WriteCall::Write,
                    "send" => WriteCall::Send,
                    other => return Err(format!("unknown --write-call {other}")),
                };
            }
            "--write-delay-ms" => {
                let v = value()?;
                let ms = v
                    .parse::<u64>()
                    .ok()
                    .filter(|ms| *ms <= MAX_DELAY_MS)
                    .ok_or_else(|| format!("--write-delay-ms {v}: not 0..={MAX_DELAY_MS}"))?;
                delay = Duration::from_millis(ms);
            }
            "--expect-reply" if inline.is_none() => expect_reply = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(Args {
        connect: connect.ok_or("--connect is required")?,
        message: message.ok_or("--dialect is required")?,
        call,
        expect_reply,
        delay,
    })
}

/// Prints one line on stdout and flushes it; a closed stdout is ignored (the exit status still
/// tells the outcome).
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// `errno` and its description, as in `WRITE_FAILED errno=1 Operation not permitted`.
fn describe(err: &std::io::Error) -> String {
    match err.raw_os_error() {
        Some(errno) => format!(
            "errno={errno} {}",
            nix::errno::Errno::from_raw(errno).desc()
        ),
        None => format!("errno=0 {err}"),
    }
}

/// Writes all of `buf` to the socket `fd` with the chosen system call, retrying on EINTR and
/// short writes. Returns the bytes written.
fn send_all(fd: RawFd, buf: &[u8], call: WriteCall) -> std::io::Result<usize> {
    let mut rest = buf;
    while !rest.is_empty() {
        let ptr = rest.as_ptr().cast::<libc::c_void>();
        let n = match call {
            // SAFETY: `fd` is the open socket of a `TcpStream` the caller keeps alive for the
            // whole call, and `ptr`/`rest.len()` describe a live, initialised byte slice.
            WriteCall::Write => unsafe { libc::write(fd, ptr, rest.len()) },
            // SAFETY: as above; `send` reads at most `rest.len()` bytes from `ptr`.
            WriteCall::Send => unsafe { libc::send(fd, ptr, rest.len(), libc::MSG_NOSIGNAL) },
        };
        if n < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        let n = usize::try_from(n).unwrap_or(0);
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::WriteZero,
                "the socket accepted no bytes",
            ));
        }
        rest = rest.get(n..).unwrap_or_default();
    }
    Ok(buf.len())
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
    let start = Instant::now();
    let deadline = start + DEADLINE;
    let args = match parse_args() {
        Ok(args) => args,
        Err(msg) if msg.is_empty() => {
            say(USAGE);
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("stratum-client: {msg}\n{USAGE}");
            return ExitCode::from(2);
        }
    };

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

    if !args.delay.is_zero() {
        std::thread::sleep(args.delay);
    }
    // Bound a blocked write by what is left of the deadline (SO_SNDTIMEO applies to write(2)
    // and send(2) alike).
    let left = deadline.saturating_duration_since(Instant::now());
    let _ = stream.set_write_timeout(Some(left.max(Duration::from_millis(100))));

    match send_all(stream.as_raw_fd(), args.message, args.call) {
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
