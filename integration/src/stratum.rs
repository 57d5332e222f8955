//! The first message of each stratum dialect and the socket write the stratum fixtures use,
//! shared by `stratum-client` (catalog F10, N5) and `fake-miner` (F17).

use std::os::fd::RawFd;

const V1: &[u8] =
    b"{\"id\": 1, \"method\": \"mining.subscribe\", \"params\": [\"cpuminer/2.5.1\"]}\n";
const ETHEREUM: &[u8] = b"{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[\"ethminer/0.19.0\",\"EthereumStratum/1.0.0\"]}\n";
const MONERO: &[u8] = b"{\"id\":1,\"jsonrpc\":\"2.0\",\"method\":\"login\",\"params\":{\"login\":\"4FAKEWALLETxxxxxxxxxxxxxxxx\",\"pass\":\"x\",\"agent\":\"XMRig/6.21.0 (Linux x86_64) libuv/1.44.2 gcc/12.2.0\",\"algo\":[\"rx/0\",\"cn/r\"]}}\n";
const JSONRPC: &[u8] =
    b"{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"eth_blockNumber\",\"params\":[]}\n";

/// The system call that writes the message.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum WriteCall {
    /// `write(2)` on the raw fd.
    Write,
    /// `send(2)` (glibc issues `sendto`).
    Send,
}

/// A stratum dialect (or ordinary JSON-RPC).
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Dialect {
    /// Stratum v1 `mining.subscribe` (cpuminer).
    V1,
    /// EthereumStratum/1.0.0 `mining.subscribe` (ethminer).
    Ethereum,
    /// CryptoNote `login` (XMRig).
    Monero,
    /// Ordinary JSON-RPC, not stratum (fixture N5).
    Jsonrpc,
}

impl Dialect {
    /// The first line a miner of this dialect sends (ends with `\n`).
    pub fn message(self) -> &'static [u8] {
        match self {
            Dialect::V1 => V1,
            Dialect::Ethereum => ETHEREUM,
            Dialect::Monero => MONERO,
            Dialect::Jsonrpc => JSONRPC,
        }
    }
}

/// `errno` and its description, as in `WRITE_FAILED errno=1 Operation not permitted`.
pub fn describe(err: &std::io::Error) -> String {
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
pub fn send_all(fd: RawFd, buf: &[u8], call: WriteCall) -> std::io::Result<usize> {
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
        let Some(n) = crate::syscall::progress(n, "the socket accepted no bytes")? else {
            continue;
        };
        rest = rest.get(n..).unwrap_or_default();
    }
    Ok(buf.len())
}
