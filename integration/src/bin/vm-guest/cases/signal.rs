//! The signal tier on Debian's own kernels: the boot leaves BPF LSM out of the LSM list, as
//! Debian does by default, so the engine runs in the signal tier there (the host's tests run it
//! on the host's kernel only). With the socket diagnostics modules loaded (a guest has no
//! `modprobe` to load them on demand), `cgroup_skb/egress` drops a stratum subscribe (deny rule)
//! and the daemon aborts its connection (`SOCK_DESTROY`): the client's wait for a reply fails
//! with `ECONNABORTED`, and the pool receives nothing, not even after the engine stopped; a
//! CryptoNote login (deny + kill rule) is dropped and its sender killed by the daemon.

use std::{os::unix::process::ExitStatusExt as _, path::Path, time::Duration};

use enforcer_integration::vm::layout;

use super::{
    Ctx,
    exec::{
        RECORD_TIMEOUT, START_TIMEOUT, STOP_TIMEOUT, dump, expect_clean_exit, expect_field,
        require_engine,
    },
    kernel::kernel_ops,
    stratum::{LISTEN, POOL_RECORD, bring_up_loopback, client_with, pool_messages, start_pool},
};
use crate::{audit, engine::Engine};

/// Refused logins, then the engine stopped: TCP would try a queued segment again 0.2, 0.4,
/// 0.8 s after the drop.
const AFTER_STOP: Duration = Duration::from_millis(1500);

pub(crate) fn signal_egress_abort(ctx: &Ctx) -> Result<(), String> {
    require_engine()?;
    bring_up_loopback()?;
    load_diag_modules(ctx)?;
    let mut pool = start_pool(&LISTEN[..1], POOL_RECORD)?;
    let mut engine = Engine::start_with(
        layout::STRATUM_POLICY,
        "block",
        Path::new("/tmp/audit-signal-stratum.jsonl"),
        Path::new("/tmp/enforcer-signal-stratum.log"),
    )?;
    let result = while_attached(ctx, &mut engine);
    if result.is_err() {
        dump(ctx, &engine);
    }
    let result = result.and_then(|()| {
        std::thread::sleep(AFTER_STOP);
        let received = pool_messages();
        if received.is_empty() {
            ctx.log("the pool received nothing, engine stopped 1.5 s ago");
            Ok(())
        } else {
            Err(format!("a refused login reached the pool: {received:?}"))
        }
    });
    let _ = pool.kill();
    let _ = pool.wait();
    result
}

/// Loads `inet_diag` and `tcp_diag` from the image (`/lib/modules/<release>/`).
pub(super) fn load_diag_modules(ctx: &Ctx) -> Result<(), String> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_err(|e| format!("cannot read the kernel release: {e}"))?;
    for name in layout::DIAG_MODULES {
        if Path::new("/sys/module").join(name).exists() {
            continue;
        }
        let path = layout::module(release.trim(), name);
        if !Path::new(&path).is_file() {
            return Err(format!(
                "no {path} in the image (run scripts/setup: it keeps the socket diagnostics \
                 modules next to vmlinuz)"
            ));
        }
        let load = kernel_ops(&["finit-module", &path, ""])?;
        if load["errno"] != 0 {
            return Err(format!("finit_module of {path} must succeed: {load}"));
        }
    }
    ctx.log("inet_diag and tcp_diag loaded");
    Ok(())
}

fn while_attached(ctx: &Ctx, engine: &mut Engine) -> Result<(), String> {
    let start = engine.wait_started(START_TIMEOUT)?;
    expect_field(&start, "tier", "signal")?;
    expect_field(&start, "send_hook", "cgroup_skb/egress")?;
    expect_field(&start, "connection_abort", "sock_diag SOCK_DESTROY")?;
    let run = client_with(LISTEN[0], "v1", "write", &["--expect-reply"])?;
    let aborted = format!("errno={} ", libc::ECONNABORTED);
    if run.status.code() != Some(5) || !run.stderr.contains(&aborted) {
        return Err(format!(
            "v1 subscribe: want NO_REPLY {aborted}(the connection aborted), got {} {:?}",
            run.status, run.stderr
        ));
    }
    ctx.log("v1 subscribe dropped, its connection aborted (ECONNABORTED)");
    let run = client_with(LISTEN[0], "monero", "write", &["--expect-reply"])?;
    if run.status.signal() != Some(libc::SIGKILL) {
        return Err(format!(
            "monero login: want SIGKILL, got {} {:?}",
            run.status, run.stderr
        ));
    }
    ctx.log("monero login dropped, its sender killed");
    for rule in ["stratum-subscribe-deny", "stratum-login-kill"] {
        let deny = engine.wait_record(RECORD_TIMEOUT, "deny record", |r| {
            audit::is_action(r, "deny", rule)
        })?;
        if deny["event"]["hook"] != "cgroup_skb/egress" || deny["connection"]["aborted"] != true {
            return Err(format!(
                "{rule}: want the egress hook and connection.aborted: {deny}"
            ));
        }
    }
    engine.wait_record(RECORD_TIMEOUT, "kill record of stratum-login-kill", |r| {
        audit::is_action(r, "kill", "stratum-login-kill")
    })?;
    expect_clean_exit(engine.terminate(STOP_TIMEOUT)?)
}
