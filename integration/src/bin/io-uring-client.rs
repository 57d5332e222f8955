//! io_uring client fixture: a TCP connect submitted as `IORING_OP_CONNECT` and, optionally, one
//! line sent as `IORING_OP_SEND`. Neither makes a `connect(2)` or `write(2)`/`send(2)` system
//! call (so no syscall tracepoint sees them); the kernel's connect and send paths, and their
//! cgroup and LSM hooks, still run.
//!
//! io-uring-client --connect IP:PORT [--send TEXT] [--linger-ms N]
//!
//! Output: stdout `CONNECTED <addr>`, or stderr `CONNECT_FAILED <addr> errno=<n>`; with `--send`,
//! after a connect, stdout `SENT <bytes>` or stderr `SEND_FAILED errno=<n>`. Then it sleeps
//! `--linger-ms` (at most 5000) with the socket still open before exiting, so that a kill that
//! comes after the connect or the send finds it alive. Exit status: 0 connected (and sent);
//! 2 usage; 4 the connect failed; 5 the send failed; 6 io_uring is not available (stderr
//! `NO_IO_URING <error>`: kernel.io_uring_disabled, seccomp, ...).
//!
//! Bounded: one submission and one completion per operation (a refused loopback connect
//! completes at once; a send completes once the kernel has queued the bytes); `--send` takes at
//! most 4096 bytes, sent with a newline.

use std::{
    io::Write as _,
    net::SocketAddr,
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
    process::ExitCode,
    time::Duration,
};

use enforcer_integration::sockaddr::SockAddr;
use io_uring::{IoUring, opcode, squeue, types};

/// Longest `--linger-ms`.
const MAX_LINGER_MS: u64 = 5000;
/// Longest `--send` text.
const MAX_SEND: usize = 4096;

/// Connects (and sends) through io_uring. Usage errors exit with status 2.
#[derive(Debug, clap::Parser)]
struct Args {
    /// Address to connect to, an IP:PORT literal.
    #[arg(long)]
    connect: SocketAddr,
    /// A line to send after the connect (a newline is added).
    #[arg(long, value_parser = send_text)]
    send: Option<String>,
    /// Sleep after the connect (and send), in milliseconds.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=MAX_LINGER_MS))]
    linger_ms: u64,
}

/// `--send`'s value, at most [`MAX_SEND`] bytes.
fn send_text(text: &str) -> Result<String, String> {
    if text.len() > MAX_SEND {
        return Err(format!("at most {MAX_SEND} bytes"));
    }
    Ok(text.to_owned())
}

/// Submits `op` and waits for its completion: its result (`>= 0`, or `-errno`), or why
/// io_uring cannot be used.
///
/// # Safety
/// What `op` points at (an address, a buffer, the socket) must stay valid until this returns.
unsafe fn run(ring: &mut IoUring, op: &squeue::Entry) -> Result<i32, String> {
    // SAFETY: the caller keeps the operation's memory alive; this waits for its completion.
    unsafe { ring.submission().push(op) }.map_err(|e| format!("push: {e}"))?;
    ring.submit_and_wait(1)
        .map_err(|e| format!("io_uring_enter: {e}"))?;
    ring.completion()
        .next()
        .map(|cqe| cqe.result())
        .ok_or_else(|| "no completion".to_owned())
}

/// A new TCP socket for `addr`'s family.
fn tcp_socket(addr: SocketAddr) -> Result<OwnedFd, String> {
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
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Prints `line` on stdout at once.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Connects, sends, and returns the exit status and the socket (kept open while lingering).
fn client(args: &Args) -> (u8, Option<OwnedFd>) {
    let prepared = tcp_socket(args.connect).and_then(|socket| {
        let ring = IoUring::new(4).map_err(|e| format!("io_uring_setup: {e}"))?;
        Ok((socket, ring))
    });
    let (socket, mut ring) = match prepared {
        Ok(prepared) => prepared,
        Err(why) => {
            eprintln!("NO_IO_URING {why}");
            return (6, None);
        }
    };
    let sockaddr = SockAddr::new(args.connect);
    let connect = opcode::Connect::new(
        types::Fd(socket.as_raw_fd()),
        sockaddr.as_ptr(),
        sockaddr.len(),
    )
    .build()
    .user_data(1);
    // SAFETY: the address and the socket outlive the operation (`run` waits for it).
    match unsafe { run(&mut ring, &connect) } {
        Ok(0) => say(&format!("CONNECTED {}", args.connect)),
        Ok(negative) => {
            eprintln!("CONNECT_FAILED {} errno={}", args.connect, -negative);
            return (4, Some(socket));
        }
        Err(why) => {
            eprintln!("NO_IO_URING {why}");
            return (6, Some(socket));
        }
    }
    let Some(text) = &args.send else {
        return (0, Some(socket));
    };
    let line = format!("{text}\n");
    let len = u32::try_from(line.len()).unwrap_or(u32::MAX);
    let send = opcode::Send::new(types::Fd(socket.as_raw_fd()), line.as_ptr(), len)
        .build()
        .user_data(2);
    // SAFETY: the buffer and the socket outlive the operation (`run` waits for it).
    match unsafe { run(&mut ring, &send) } {
        Ok(sent) if sent >= 0 => {
            say(&format!("SENT {sent}"));
            (0, Some(socket))
        }
        Ok(negative) => {
            eprintln!("SEND_FAILED errno={}", -negative);
            (5, Some(socket))
        }
        Err(why) => {
            eprintln!("NO_IO_URING {why}");
            (6, Some(socket))
        }
    }
}

fn main() -> ExitCode {
    let args = <Args as clap::Parser>::parse();
    let (code, socket) = client(&args);
    std::thread::sleep(Duration::from_millis(args.linger_ms));
    drop(socket);
    ExitCode::from(code)
}
