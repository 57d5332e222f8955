//! Network cases (catalog F9, N4 and pool-address connects in the lsm tier), with the policy of
//! `fixtures/deny-network.yaml`. With the engine attached in block mode:
//! - a DNS query for a pool domain or a sub-domain fails with EPERM, whichever call sends it
//!   (`sendto`, `send`, `write`, `sendmsg`, `sendmmsg`, TCP), and never reaches the stub;
//! - the exact pool host `kill.pool.test` kills its asker;
//! - the excluded documentation host and `pool.ntp.org` (N4) are answered;
//! - a connect to the pool address fails with EPERM, through connect(2) and through io_uring,
//!   and a connect elsewhere succeeds.
//!
//! In monitor mode the same pool lookup is answered and a `would_deny` record names the rule.

use std::{os::unix::process::ExitStatusExt as _, path::Path};

use enforcer_integration::{
    dns_fixture::{ALL_VIAS, DnsRun, StubDns, dns_query},
    vm::layout,
};

use super::{
    Ctx,
    exec::{
        RECORD_TIMEOUT, START_TIMEOUT, STOP_TIMEOUT, dump, expect_clean_exit, expect_field,
        require_engine,
    },
    stratum::{bring_up_loopback, client, start_pool},
};
use crate::{audit, engine::Engine};

const STUB_RECORD: &str = "/tmp/stub-dns.jsonl";
const AUDIT_LOG: &str = "/tmp/audit-network.jsonl";
const POOL_RECORD: &str = "/tmp/pool-network.jsonl";
const ANSWERS: [&str; 4] = [
    "pool.example-miner.test=127.0.0.77",
    "docs.example-miner.test=127.0.0.1",
    "pool.ntp.org=127.0.0.2",
    "kill.pool.test=127.0.0.77",
];
/// The pool address of the policy, and an ordinary one.
const POOL_ADDR: &str = "127.0.0.77:3333";
const OTHER_ADDR: &str = "127.0.0.1:3334";

pub(super) fn start_stub() -> Result<StubDns, String> {
    StubDns::start(
        Path::new(layout::STUB_DNS),
        "127.0.0.1:53",
        &ANSWERS,
        Path::new(STUB_RECORD),
    )
}

pub(super) fn query(stub: &StubDns, name: &str, via: &str) -> Result<DnsRun, String> {
    dns_query(Path::new(layout::DNS_CLIENT), stub.addr, name, via)
}

/// Block mode; see the module documentation.
pub(crate) fn lsm_network_deny(ctx: &Ctx) -> Result<(), String> {
    require_engine()?;
    bring_up_loopback()?;
    let stub = start_stub()?;
    let mut pool = start_pool(&[POOL_ADDR, OTHER_ADDR], POOL_RECORD)?;
    let mut engine = Engine::start_with(
        layout::NETWORK_POLICY,
        "block",
        Path::new(AUDIT_LOG),
        Path::new("/tmp/enforcer-network.log"),
    )?;
    let result = network_while_attached(ctx, &stub, &mut engine);
    if result.is_err() {
        dump(ctx, &engine);
    }
    let _ = pool.kill();
    let _ = pool.wait();
    result
}

fn network_while_attached(ctx: &Ctx, stub: &StubDns, engine: &mut Engine) -> Result<(), String> {
    let start = engine.wait_started(START_TIMEOUT)?;
    expect_field(&start, "tier", "lsm")?;
    for via in ALL_VIAS {
        let run = query(stub, "pool.example-miner.test", via)?;
        if !run.send_refused() {
            return Err(format!(
                "F9 via {via}: want the send refused with EPERM, got {run:?}"
            ));
        }
    }
    ctx.log("pool lookups refused with EPERM through every send call");
    let run = query(stub, "A.B.Example-Miner.TEST", "send")?;
    if !run.send_refused() {
        return Err(format!("sub-domain, any case: want EPERM, got {run:?}"));
    }
    let run = query(stub, "kill.pool.test", "sendto")?;
    if !run.killed() {
        return Err(format!("kill.pool.test: want SIGKILL, got {run:?}"));
    }
    for (name, want) in [
        ("docs.example-miner.test", "127.0.0.1"),
        ("pool.ntp.org", "127.0.0.2"),
    ] {
        let run = query(stub, name, "send")?;
        if run.answers() != Some(vec![want.to_owned()]) {
            return Err(format!("{name} must be answered with {want}: {run:?}"));
        }
    }
    ctx.log("the excluded name and pool.ntp.org (N4) were answered");
    let reached: Vec<String> = StubDns::queries(Path::new(STUB_RECORD))
        .iter()
        .filter_map(|q| q["name"].as_str().map(str::to_owned))
        .collect();
    if reached.iter().any(|n| {
        n.ends_with("example-miner.test") && n != "docs.example-miner.test" || n == "kill.pool.test"
    }) {
        return Err(format!("a refused query reached the resolver: {reached:?}"));
    }

    let run = client(POOL_ADDR, "jsonrpc", "write")?;
    if run.status.code() != Some(4) || !run.stderr.contains("errno=1 ") {
        return Err(format!(
            "connect to the pool address: want CONNECT_FAILED errno=1, got {} {:?}",
            run.status, run.stderr
        ));
    }
    // io_uring's connect makes no connect(2) call; LSM socket_connect still runs.
    let out = std::process::Command::new(layout::IO_URING_CLIENT)
        .args(["--connect", POOL_ADDR])
        .output()
        .map_err(|e| format!("cannot run io-uring-client: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(4) || !stderr.contains("errno=1") {
        return Err(format!(
            "io_uring connect to the pool address: want errno=1, got {} {stderr:?}",
            out.status
        ));
    }
    let run = client(OTHER_ADDR, "jsonrpc", "write")?;
    if !run.status.success() {
        return Err(format!(
            "connect elsewhere must pass: {} {:?}",
            run.status, run.stderr
        ));
    }
    ctx.log(
        "connect to the pool address refused with EPERM (connect(2) and io_uring), elsewhere allowed",
    );

    let deny = engine.wait_record(RECORD_TIMEOUT, "deny of pool-lookup-deny", |r| {
        audit::is_action(r, "deny", "pool-lookup-deny")
    })?;
    if deny["event"]["process"]["comm"] != "dns-client"
        || deny["event"]["hook"] != "lsm/socket_sendmsg"
    {
        return Err(format!(
            "deny record without the asking process or hook: {deny}"
        ));
    }
    engine.wait_record(RECORD_TIMEOUT, "kill of pool-lookup-kill", |r| {
        audit::is_action(r, "kill", "pool-lookup-kill")
    })?;
    engine.wait_record(RECORD_TIMEOUT, "deny of pool-ip-deny", |r| {
        audit::is_action(r, "deny", "pool-ip-deny")
            && r["event"]["connect"]["addr"]["ip"] == "127.0.0.77"
    })?;
    engine.wait_record(RECORD_TIMEOUT, "dns event of pool.ntp.org", |r| {
        audit::is_type(r, "event") && r["event"]["dns"]["question"]["name"] == "pool.ntp.org"
    })?;
    expect_clean_exit(engine.terminate(STOP_TIMEOUT)?)?;
    // In-kernel approvers: every connect rule is in the plan, so the connect to 127.0.0.1
    // concerns no rule and never left the kernel.
    let records = audit::records(Path::new(AUDIT_LOG))?;
    if let Some(r) = records
        .iter()
        .find(|r| r["event"]["connect"]["addr"]["ip"] == "127.0.0.1")
    {
        return Err(format!("a connect no rule is about was reported: {r}"));
    }
    ctx.log("the connect no rule is about stayed in the kernel");
    Ok(())
}

/// Monitor mode: the pool lookup is answered and recorded as `would_deny`.
pub(crate) fn lsm_network_monitor(ctx: &Ctx) -> Result<(), String> {
    require_engine()?;
    bring_up_loopback()?;
    let stub = start_stub()?;
    let mut engine = Engine::start_with(
        layout::NETWORK_POLICY,
        "monitor",
        Path::new("/tmp/audit-network-monitor.jsonl"),
        Path::new("/tmp/enforcer-network-monitor.log"),
    )?;
    let result = (|| {
        engine.wait_started(START_TIMEOUT)?;
        let run = query(&stub, "pool.example-miner.test", "sendmmsg")?;
        if run.answers() != Some(vec!["127.0.0.77".to_owned()]) || run.status.signal().is_some() {
            return Err(format!("monitor mode must not stop the lookup: {run:?}"));
        }
        engine.wait_record(RECORD_TIMEOUT, "would_deny of pool-lookup-deny", |r| {
            audit::is_action(r, "would_deny", "pool-lookup-deny")
        })?;
        ctx.log("monitor mode: lookup answered, would_deny recorded");
        expect_clean_exit(engine.terminate(STOP_TIMEOUT)?)
    })();
    if result.is_err() {
        dump(ctx, &engine);
    }
    result
}

/// A local resolver found at its usual path is spared by default (`--never-kill` defaults):
/// `dns-client` copied to `/usr/sbin/dnsmasq` asks for the kill-rule host; the query is still
/// refused with EPERM but the "resolver" lives (`spared` record), while the same client at
/// its own path is killed.
pub(crate) fn lsm_resolver_spared(ctx: &Ctx) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt as _;
    require_engine()?;
    bring_up_loopback()?;
    let stub = start_stub()?;
    let resolver = "/usr/sbin/dnsmasq";
    std::fs::create_dir_all("/usr/sbin").map_err(|e| format!("mkdir /usr/sbin: {e}"))?;
    std::fs::copy(layout::DNS_CLIENT, resolver).map_err(|e| format!("copy to {resolver}: {e}"))?;
    std::fs::set_permissions(resolver, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| format!("chmod {resolver}: {e}"))?;
    let mut engine = Engine::start_with(
        layout::NETWORK_POLICY,
        "block",
        Path::new("/tmp/audit-resolver.jsonl"),
        Path::new("/tmp/enforcer-resolver.log"),
    )?;
    let result = (|| {
        let start = engine.wait_started(START_TIMEOUT)?;
        if !start["never_kill"]
            .as_array()
            .is_some_and(|l| l.iter().any(|p| p == resolver))
        {
            return Err(format!("{resolver} is not in never_kill: {start}"));
        }
        let run = dns_query(Path::new(resolver), stub.addr, "kill.pool.test", "sendto")?;
        if !run.send_refused() {
            return Err(format!(
                "the resolver's query: want EPERM and no kill, got {run:?}"
            ));
        }
        let run = query(&stub, "kill.pool.test", "sendto")?;
        if !run.killed() {
            return Err(format!("an ordinary asker: want SIGKILL, got {run:?}"));
        }
        engine.wait_record(RECORD_TIMEOUT, "spared record of the resolver", |r| {
            audit::is_action(r, "spared", "pool-lookup-kill")
                && r["event"]["process"]["comm"] == "dnsmasq"
        })?;
        ctx.log("the resolver's lookup was refused and the resolver spared; dns-client killed");
        expect_clean_exit(engine.terminate(STOP_TIMEOUT)?)
    })();
    if result.is_err() {
        dump(ctx, &engine);
    }
    let _ = std::fs::remove_file(resolver);
    result
}
