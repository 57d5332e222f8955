//! Stratum cases (fixture F10 in the lsm tier): with the engine attached in block mode, a
//! stratum subscribe fails with EPERM and never reaches the pool (deny rule), a CryptoNote
//! login kills its sender before a byte leaves (deny + kill rule), on several ports and with
//! both `write` and `sendto`; a shell script piping a subscribe into `nc` is stopped the same
//! way (F13 without Python); an ordinary JSON-RPC request on the same port reaches the pool (N5).

use std::{
    io::{BufRead as _, BufReader},
    os::unix::process::ExitStatusExt as _,
    path::Path,
    process::{Child, Command, Stdio},
};

use enforcer_integration::vm::layout;
use serde_json::Value;

use super::{
    Ctx,
    exec::{
        RECORD_TIMEOUT, START_TIMEOUT, STOP_TIMEOUT, dump, expect_clean_exit, expect_field,
        require_engine,
    },
};
use crate::{audit, engine::Engine};

pub(super) const POOL_RECORD: &str = "/tmp/pool.jsonl";
/// Ports of the mock pool: two common pool ports and 443 (pools hide there).
pub(super) const LISTEN: [&str; 3] = ["127.0.0.1:3333", "127.0.0.1:14444", "127.0.0.1:443"];

pub(super) fn bring_up_loopback() -> Result<(), String> {
    let status = Command::new(layout::BUSYBOX)
        .args(["ip", "link", "set", "lo", "up"])
        .status()
        .map_err(|e| format!("ip link set lo up: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("ip link set lo up: {status}"))
    }
}

/// Starts the mock pool on `listen`, recording into `record`, and waits for `READY`.
pub(super) fn start_pool(listen: &[&str], record: &str) -> Result<Child, String> {
    let mut cmd = Command::new(layout::MOCK_POOL);
    for addr in listen {
        cmd.args(["--listen", addr]);
    }
    let mut child = cmd
        .args(["--record", record])
        .stdout(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start mock-pool: {e}"))?;
    let stdout = child.stdout.take().ok_or("mock-pool stdout")?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| format!("mock-pool READY: {e}"))?;
    if line.starts_with("READY ") {
        Ok(child)
    } else {
        Err(format!("mock-pool said {line:?}"))
    }
}

/// Bytes the pool received from clients so far (message records only).
pub(super) fn pool_messages() -> Vec<Value> {
    std::fs::read_to_string(POOL_RECORD)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r.get("line").is_some())
        .collect()
}

/// How a `stratum-client` run ended.
pub(super) struct ClientRun {
    pub(super) status: std::process::ExitStatus,
    pub(super) stderr: String,
}

/// Runs `stratum-client --connect addr --dialect dialect --write-call call`.
pub(super) fn client(addr: &str, dialect: &str, call: &str) -> Result<ClientRun, String> {
    client_with(addr, dialect, call, &[])
}

/// [`client`] with more options (`--expect-reply`).
pub(super) fn client_with(
    addr: &str,
    dialect: &str,
    call: &str,
    more: &[&str],
) -> Result<ClientRun, String> {
    let out = Command::new(layout::STRATUM_CLIENT)
        .args([
            "--connect",
            addr,
            "--dialect",
            dialect,
            "--write-call",
            call,
        ])
        .args(more)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run stratum-client: {e}"))?;
    Ok(ClientRun {
        status: out.status,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// F13 in the guest (no Python there): a shell script pipes a stratum subscribe into
/// busybox `nc`; the network rule alone stops it (the send fails with EPERM, `nc` fails).
fn script_client(ctx: &Ctx) -> Result<(), String> {
    let script = format!(
        "printf '%s\\n' '{{\"id\": 7, \"method\": \"mining.subscribe\", \"params\": [\"sh/1.0\"]}}' \
         | {bb} timeout 5 {bb} nc {addr}",
        bb = layout::BUSYBOX,
        addr = LISTEN[1].replace(':', " "),
    );
    let out = Command::new(layout::BUSYBOX)
        .args(["sh", "-c", &script])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run the script client: {e}"))?;
    if out.status.success() {
        return Err(format!(
            "the script's stratum subscribe must fail: {} {:?}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    ctx.log(format!("script client (sh + nc) stopped: {}", out.status));
    Ok(())
}

/// Block mode against the mock pool; see the module documentation.
pub(crate) fn lsm_stratum_deny(ctx: &Ctx) -> Result<(), String> {
    require_engine()?;
    bring_up_loopback()?;
    let mut pool = start_pool(&LISTEN, POOL_RECORD)?;
    let mut engine = Engine::start_with(
        layout::STRATUM_POLICY,
        "block",
        Path::new("/tmp/audit-stratum.jsonl"),
        Path::new("/tmp/enforcer-stratum.log"),
    )?;
    let result = stratum_while_attached(ctx, &mut engine);
    if result.is_err() {
        dump(ctx, &engine);
    }
    let _ = pool.kill();
    let _ = pool.wait();
    result
}

fn stratum_while_attached(ctx: &Ctx, engine: &mut Engine) -> Result<(), String> {
    let start = engine.wait_started(START_TIMEOUT)?;
    expect_field(&start, "tier", "lsm")?;
    for (addr, dialect, call) in [
        (LISTEN[0], "v1", "write"),
        (LISTEN[1], "ethereum", "send"),
        (LISTEN[2], "v1", "send"),
    ] {
        let run = client(addr, dialect, call)?;
        if run.status.code() != Some(3) || !run.stderr.contains("errno=1 ") {
            return Err(format!(
                "{dialect} via {call} to {addr}: want WRITE_FAILED errno=1 (EPERM), got {} {:?}",
                run.status, run.stderr
            ));
        }
        ctx.log(format!(
            "{dialect} via {call} to {addr}: send refused with EPERM"
        ));
    }
    for (addr, call) in [(LISTEN[0], "write"), (LISTEN[2], "send")] {
        let run = client(addr, "monero", call)?;
        if run.status.signal() != Some(libc::SIGKILL) {
            return Err(format!(
                "monero via {call} to {addr}: want SIGKILL, got {} {:?}",
                run.status, run.stderr
            ));
        }
        ctx.log(format!("monero via {call} to {addr}: sender killed"));
    }
    script_client(ctx)?;
    let leaked = pool_messages();
    if !leaked.is_empty() {
        return Err(format!("the pool received stratum bytes: {leaked:?}"));
    }
    ctx.log("the pool received nothing from the stratum clients");
    let run = client(LISTEN[0], "jsonrpc", "write")?;
    if !run.status.success() {
        return Err(format!(
            "ordinary JSON-RPC (N5) must pass: {} {:?}",
            run.status, run.stderr
        ));
    }
    // The client exits once its line is written; the pool records it when it has read it,
    // which under load can be a moment later: wait for the record (bounded), then check it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut received = pool_messages();
    while received.is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
        received = pool_messages();
    }
    if received.len() != 1
        || !received[0]["line"]
            .as_str()
            .unwrap_or("")
            .contains("eth_blockNumber")
    {
        return Err(format!(
            "the pool should hold exactly the JSON-RPC request: {received:?}"
        ));
    }
    let deny = engine.wait_record(
        RECORD_TIMEOUT,
        "deny record of stratum-subscribe-deny",
        |r| audit::is_action(r, "deny", "stratum-subscribe-deny"),
    )?;
    // `payload.addr`: the connected socket's peer, one of the pool's listeners.
    let addr = &deny["event"]["payload"]["addr"];
    let to = format!("{}:{}", addr["ip"].as_str().unwrap_or("?"), addr["port"]);
    if !LISTEN.contains(&to.as_str()) {
        return Err(format!("payload.addr should be a pool listener: {deny}"));
    }
    ctx.log(format!("the deny record names the pool, {to}"));
    engine.wait_record(RECORD_TIMEOUT, "kill record of stratum-login-kill", |r| {
        audit::is_action(r, "kill", "stratum-login-kill")
    })?;
    expect_clean_exit(engine.terminate(STOP_TIMEOUT)?)
}
