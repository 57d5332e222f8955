//! DNS response case (the ingress program in the lsm tier), with the alert-only policy of
//! `fixtures/watch-dns.yaml` and the stub resolver on 127.0.0.1:53: a lookup of
//! `pool.ntp.org` over UDP and over TCP is answered, and each response reaches the audit log
//! from `cgroup_skb/ingress`, decoded (answer 127.0.0.2, TTL 60) and attributed to the
//! `dns-client` that asked; the answer rule fires once per response and the question rule
//! only on the queries.
//!
//! Learned addresses, with `fixtures/learned-pool.yaml`: a connect to 127.0.0.77 succeeds
//! before any answer; the watched lookup of `pool.example-miner.test` is answered 127.0.0.77;
//! then a connect to 127.0.0.77 fails with EPERM and a `deny` record names
//! `learned-pool-connect` and the name, while a connect to 127.0.0.1 succeeds.

use std::path::Path;

use serde_json::Value;

use enforcer_integration::vm::layout;

use super::{
    Ctx,
    exec::{RECORD_TIMEOUT, START_TIMEOUT, STOP_TIMEOUT, dump, expect_clean_exit, require_engine},
    network::{query, start_stub},
    stratum::{bring_up_loopback, client, start_pool},
};
use crate::{audit, engine::Engine};

const AUDIT_LOG: &str = "/tmp/audit-dns-responses.jsonl";

/// See the module documentation.
pub(crate) fn lsm_dns_responses(ctx: &Ctx) -> Result<(), String> {
    require_engine()?;
    bring_up_loopback()?;
    let stub = start_stub()?;
    let mut engine = Engine::start_with(
        layout::DNS_POLICY,
        "block",
        Path::new(AUDIT_LOG),
        Path::new("/tmp/enforcer-dns-responses.log"),
    )?;
    let result = (|| {
        engine.wait_started(START_TIMEOUT)?;
        for via in ["send", "tcp"] {
            let run = query(&stub, "pool.ntp.org", via)?;
            if run.answers() != Some(vec!["127.0.0.2".to_owned()]) {
                return Err(format!("pool.ntp.org via {via} must be answered: {run:?}"));
            }
        }
        engine.wait_record(RECORD_TIMEOUT, "answer alert of the TCP response", |r| {
            audit::is_action(r, "alert", "answer-watch") && r["event"]["dns"]["transport"] == "tcp"
        })?;
        expect_clean_exit(engine.terminate(STOP_TIMEOUT)?)?;
        check_records(&audit::records(Path::new(AUDIT_LOG))?)?;
        ctx.log("UDP and TCP responses decoded and attributed to dns-client");
        Ok(())
    })();
    if result.is_err() {
        dump(ctx, &engine);
    }
    result
}

fn check_records(records: &[Value]) -> Result<(), String> {
    let answers: Vec<&Value> = records
        .iter()
        .filter(|r| audit::is_action(r, "alert", "answer-watch"))
        .map(|r| &r["event"])
        .collect();
    if answers.len() != 2 {
        return Err(format!(
            "want one answer alert per response, got {answers:?}"
        ));
    }
    for ev in &answers {
        let good = ev["hook"] == "cgroup_skb/ingress"
            && ev["dns"]["answers"][0]["ip"] == "127.0.0.2"
            && ev["dns"]["answers"][0]["ttl"] == 60
            && ev["process"]["comm"] == "dns-client";
        if !good {
            return Err(format!(
                "response event not decoded or not attributed: {ev}"
            ));
        }
    }
    let asked: Vec<&Value> = records
        .iter()
        .filter(|r| audit::is_action(r, "alert", "ntp-asked"))
        .collect();
    if asked.len() != 2
        || asked
            .iter()
            .any(|r| r["event"]["dns"]["is_response"] != false)
    {
        return Err(format!(
            "the question rule must fire on the two queries only: {asked:?}"
        ));
    }
    Ok(())
}

const LEARNED_AUDIT_LOG: &str = "/tmp/audit-learned.jsonl";
/// A mock pool address the stub's answer makes a pool's, and an ordinary one.
const LEARNED_POOL: &str = "127.0.0.77:3336";
const LEARNED_OTHER: &str = "127.0.0.1:3337";

/// Learned addresses; see the module documentation.
pub(crate) fn lsm_learned_connect(ctx: &Ctx) -> Result<(), String> {
    require_engine()?;
    bring_up_loopback()?;
    let stub = start_stub()?;
    let mut pool = start_pool(&[LEARNED_POOL, LEARNED_OTHER], "/tmp/pool-learned.jsonl")?;
    let mut engine = Engine::start_with(
        layout::LEARNED_POLICY,
        "block",
        Path::new(LEARNED_AUDIT_LOG),
        Path::new("/tmp/enforcer-learned.log"),
    )?;
    let result = (|| {
        engine.wait_started(START_TIMEOUT)?;
        let before = client(LEARNED_POOL, "jsonrpc", "write")?;
        if !before.status.success() {
            return Err(format!(
                "before any answer the connect must pass: {} {:?}",
                before.status, before.stderr
            ));
        }
        let run = query(&stub, "pool.example-miner.test", "send")?;
        if run.answers() != Some(vec!["127.0.0.77".to_owned()]) {
            return Err(format!("the watched lookup must be answered: {run:?}"));
        }
        engine.wait_record(RECORD_TIMEOUT, "the pool answer", |r| {
            audit::is_type(r, "event")
                && r["event"]["dns"]["is_response"] == true
                && r["event"]["dns"]["question"]["name"] == "pool.example-miner.test"
        })?;
        let after = client(LEARNED_POOL, "jsonrpc", "write")?;
        if after.status.code() != Some(4) || !after.stderr.contains("errno=1 ") {
            return Err(format!(
                "connect to the learned address: want CONNECT_FAILED errno=1, got {} {:?}",
                after.status, after.stderr
            ));
        }
        let other = client(LEARNED_OTHER, "jsonrpc", "write")?;
        if !other.status.success() {
            return Err(format!(
                "connect elsewhere must pass: {} {:?}",
                other.status, other.stderr
            ));
        }
        let deny = engine.wait_record(RECORD_TIMEOUT, "deny of learned-pool-connect", |r| {
            audit::is_action(r, "deny", "learned-pool-connect")
        })?;
        if deny["event"]["connect"]["addr"]["dns_name"] != "pool.example-miner.test" {
            return Err(format!(
                "the deny record must name the learned name: {deny}"
            ));
        }
        ctx.log("connect to the learned pool address refused with EPERM");
        expect_clean_exit(engine.terminate(STOP_TIMEOUT)?)
    })();
    if result.is_err() {
        dump(ctx, &engine);
    }
    let _ = pool.kill();
    let _ = pool.wait();
    result
}
