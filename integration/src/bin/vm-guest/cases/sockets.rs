//! Bind and accept case, with the alert-only policy of `fixtures/watch-sockets.yaml`: a mock
//! pool started while the engine runs binds 127.0.0.79:3335 and accepts a client; the audit
//! log holds a `watch-bind` alert for the bind and a `watch-accept` alert for the accepted
//! connection (peer on loopback, local port 3335), both attributed to the pool's process.
//! They come from the hooks, with no syscall tracepoint attached: LSM `socket_bind` and
//! `sock_graft` in the lsm tier (`lsm_sockets`), their fentry twins in the signal tier
//! (`signal_sockets`, BPF LSM off); the hooks have the socket, not the descriptor (`fd`
//! null).

use std::path::Path;

use enforcer_integration::vm::layout;

use super::{
    Ctx,
    exec::{
        RECORD_TIMEOUT, START_TIMEOUT, STOP_TIMEOUT, dump, expect_clean_exit, expect_field,
        require_engine,
    },
    stratum::{bring_up_loopback, client, start_pool},
};
use crate::{audit, engine::Engine};

const LISTEN: &str = "127.0.0.79:3335";
const POOL_RECORD: &str = "/tmp/pool-sockets.jsonl";

/// See the module documentation.
pub(crate) fn lsm_sockets(ctx: &Ctx) -> Result<(), String> {
    sockets_in(ctx, "lsm", "lsm/socket_bind", "lsm/sock_graft")
}

/// See the module documentation.
pub(crate) fn signal_sockets(ctx: &Ctx) -> Result<(), String> {
    sockets_in(
        ctx,
        "signal",
        "fentry/security_socket_bind",
        "fentry/security_sock_graft",
    )
}

fn sockets_in(ctx: &Ctx, tier: &str, bind_hook: &str, accept_hook: &str) -> Result<(), String> {
    require_engine()?;
    bring_up_loopback()?;
    let mut engine = Engine::start_with(
        layout::SOCKETS_POLICY,
        "block",
        Path::new("/tmp/audit-sockets.jsonl"),
        Path::new("/tmp/enforcer-sockets.log"),
    )?;
    let result = (|| {
        let start = engine.wait_started(START_TIMEOUT)?;
        expect_field(&start, "tier", tier)?;
        if start["syscall_tracepoints"] != serde_json::json!([]) {
            return Err(format!("want no syscall tracepoint: {start}"));
        }
        let mut pool = start_pool(&[LISTEN], POOL_RECORD)?;
        let pool_pid = pool.id();
        let run = client(LISTEN, "jsonrpc", "write");
        let _ = pool.kill();
        let _ = pool.wait();
        let run = run?;
        if !run.status.success() {
            return Err(format!(
                "the client must connect: {} {:?}",
                run.status, run.stderr
            ));
        }
        let bind = engine.wait_record(RECORD_TIMEOUT, "watch-bind alert", |r| {
            audit::is_action(r, "alert", "watch-bind")
        })?;
        if bind["event"]["process"]["pid"] != pool_pid
            || bind["event"]["bind"]["addr"]["port"] != 3335
            || bind["event"]["hook"] != bind_hook
            || !bind["event"]["bind"]["fd"].is_null()
        {
            return Err(format!(
                "bind alert without the pool's pid or port, or not from {bind_hook}: {bind}"
            ));
        }
        let accept = engine.wait_record(RECORD_TIMEOUT, "watch-accept alert", |r| {
            audit::is_action(r, "alert", "watch-accept")
        })?;
        let peer_on_loopback = accept["event"]["accept"]["addr"]["ip"]
            .as_str()
            .is_some_and(|ip| ip.starts_with("127."));
        if accept["event"]["process"]["pid"] != pool_pid
            || accept["event"]["accept"]["local"]["port"] != 3335
            || !peer_on_loopback
            || accept["event"]["hook"] != accept_hook
        {
            return Err(format!(
                "accept alert with the wrong process or addresses: {accept}"
            ));
        }
        ctx.log(format!(
            "bind and accept reported by {bind_hook} and {accept_hook} with the pool's pid, ports and peer"
        ));
        expect_clean_exit(engine.terminate(STOP_TIMEOUT)?)
    })();
    if result.is_err() {
        dump(ctx, &engine);
    }
    result
}
