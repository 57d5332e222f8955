//! io_uring connect fixture: a TCP connect submitted as `IORING_OP_CONNECT`, which no
//! `connect(2)` system call (and so no `sys_enter_connect` tracepoint) carries; the kernel's
//! connect path, and its cgroup and LSM hooks, still run.
//!
//! io-uring-connect --connect IP:PORT [--linger-ms N]
//!
//! Output: stdout `CONNECTED <addr>`, or stderr `CONNECT_FAILED <addr> errno=<n>`; then it
//! sleeps `--linger-ms` (at most 5000) before exiting, so that a kill that comes after the
//! connect finds it alive. Exit status: 0 connected; 2 usage; 4 the connect failed; 6 io_uring
//! is not available (stderr `NO_IO_URING <error>`: kernel.io_uring_disabled, seccomp, ...).
//!
//! Bounded: one submission, one completion (a refused or unanswered loopback connect completes
//! at once; a timeout op is not needed there).

use std::{
    io::Write as _,
    net::SocketAddr,
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
    process::ExitCode,
    time::Duration,
};

use enforcer_integration::sockaddr::SockAddr;
use io_uring::{IoUring, opcode, types};

/// Longest `--linger-ms`.
const MAX_LINGER_MS: u64 = 5000;

/// Connects through io_uring. Usage errors exit with status 2.
#[derive(Debug, clap::Parser)]
struct Args {
    /// Address to connect to, an IP:PORT literal.
    #[arg(long)]
    connect: SocketAddr,
    /// Sleep after the connect, in milliseconds.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=MAX_LINGER_MS))]
    linger_ms: u64,
}

/// Submits the connect and waits for its completion: `Ok(result)` (0 or `-errno`), or why
/// io_uring cannot be used.
fn connect(addr: SocketAddr) -> Result<i32, String> {
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: socket takes plain integers.
    let fd = unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(format!("socket: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: `fd` is a new descriptor owned by nothing else.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut ring = IoUring::new(4).map_err(|e| format!("io_uring_setup: {e}"))?;
    let sockaddr = SockAddr::new(addr);
    let op = opcode::Connect::new(
        types::Fd(socket.as_raw_fd()),
        sockaddr.as_ptr(),
        sockaddr.len(),
    )
    .build()
    .user_data(1);
    // SAFETY: the address and the socket outlive the operation: this function waits for its
    // completion before either is dropped.
    unsafe { ring.submission().push(&op) }.map_err(|e| format!("push: {e}"))?;
    ring.submit_and_wait(1)
        .map_err(|e| format!("io_uring_enter: {e}"))?;
    let result = ring
        .completion()
        .next()
        .map(|cqe| cqe.result())
        .ok_or("no completion")?;
    drop(socket);
    Ok(result)
}

fn main() -> ExitCode {
    let args = <Args as clap::Parser>::parse();
    let code = match connect(args.connect) {
        Ok(0) => {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "CONNECTED {}", args.connect);
            let _ = out.flush();
            0
        }
        Ok(negative) => {
            eprintln!("CONNECT_FAILED {} errno={}", args.connect, -negative);
            4
        }
        Err(why) => {
            eprintln!("NO_IO_URING {why}");
            6
        }
    };
    std::thread::sleep(Duration::from_millis(args.linger_ms));
    ExitCode::from(code)
}
