//! Policy evaluation cost per event with 10 / 100 / 1,000 / 10,000 rules (a realistic mix,
//! and a worst case where every rule is a candidate), `eval_into` with a reused result vector,
//! and compile time of a 1,000-rule policy.
//! Run: `cargo bench -p enforcer-benches --bench policy_eval -- --warm-up-time 1 --measurement-time 3`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use enforcer_policy::{CompiledPolicy, Event, load_str};
use serde_json::json;

/// A realistic mix of rule shapes over exec, dns, connect and open events.
fn mixed_policy(n: usize) -> String {
    let mut s = String::from("version: 1\nrules:\n");
    for i in 0..n {
        let expr = match i % 8 {
            0 => format!("exec.file.name == \"bin{i}\""),
            1 => format!(
                "exec.args contains \"--flag{i}\" && exec.file.name not in (\"grep\", \"less\")"
            ),
            2 => format!("dns.question.name in (\"pool{i}.example.com\", \"x{i}.example.net\")"),
            3 => format!(
                "connect.addr.port == {} && connect.addr.ip in 203.0.113.0/24",
                10000 + i
            ),
            4 => format!("open.file.path startswith \"/etc/secret{i}/\" && open.is_write"),
            5 => format!("exec.file.path == \"/opt/app{i}/bin\" || exec.file.name == \"tool{i}\""),
            6 => format!("process.uid == 0 && exec.envs startswith \"VAR{i}=\""),
            _ => format!("exec.file.name =~ r\"^evil{i}[0-9]+$\" && process.uid != 0"),
        };
        let _ = writeln!(
            s,
            "  - id: r{i}\n    expression: '{expr}'\n    action: alert"
        );
    }
    s
}

/// Every rule is a candidate for every exec event (negations defeat the index).
fn worst_policy(n: usize) -> String {
    let mut s = String::from("version: 1\nrules:\n");
    for i in 0..n {
        let _ = writeln!(
            s,
            "  - id: w{i}\n    expression: '!(exec.argv0 == \"a{i}\") && process.uid != {i}'\n    action: alert"
        );
    }
    s
}

fn exec_event() -> Event {
    Event::from_json(&json!({"kind":"exec",
        "process":{"pid":1234,"ppid":1,"uid":1000,"gid":1000,"comm":"xmrig","cgroup":{"id":4242,"path":"/system.slice/x.service"},
                   "container":{"id":""},"ancestors":[{"pid":1,"file":{"name":"bash","path":"/usr/bin/bash"}}]},
        "exec":{"file":{"path":"/tmp/xmrig","name":"xmrig","hash":{"sha256":"00".repeat(32)}},"argv0":"xmrig",
                "args":["-o","stratum+tcp://pool.example:3333","-u","4FAKE","-p","x","--flag77"],
                "envs":["PATH=/usr/bin","HOME=/root"],"interpreter":"","is_memfd":false}}))
    .unwrap()
}

fn dns_event() -> Event {
    Event::from_json(&json!({"kind":"dns","process":{"pid":1,"uid":0},"dns":{"question":{"name":"pool2.example.com","type":"A"}}})).unwrap()
}

fn compile(src: &str) -> CompiledPolicy {
    load_str("bench.yaml", src).unwrap_or_else(|d| panic!("{d}"))
}

fn bench_eval(c: &mut Criterion) {
    let exec = exec_event();
    let dns = dns_event();
    let mut g = c.benchmark_group("eval_mixed");
    for n in [10usize, 100, 1_000, 10_000] {
        let p = compile(&mixed_policy(n));
        g.bench_with_input(BenchmarkId::new("exec", n), &p, |b, p| {
            b.iter(|| black_box(p.eval(black_box(&exec))))
        });
        g.bench_with_input(BenchmarkId::new("dns", n), &p, |b, p| {
            b.iter(|| black_box(p.eval(black_box(&dns))))
        });
    }
    g.finish();
    let mut g = c.benchmark_group("eval_into");
    for n in [1_000usize, 10_000] {
        let p = compile(&mixed_policy(n));
        let mut out = Vec::new();
        g.bench_with_input(BenchmarkId::new("exec", n), &p, |b, p| {
            b.iter(|| {
                out.clear();
                p.eval_into(black_box(&exec), &mut out);
                black_box(out.len())
            })
        });
    }
    g.finish();
    let mut g = c.benchmark_group("eval_worst");
    for n in [10usize, 100, 1_000, 10_000] {
        let p = compile(&worst_policy(n));
        g.bench_with_input(BenchmarkId::new("exec", n), &p, |b, p| {
            b.iter(|| black_box(p.eval(black_box(&exec))))
        });
    }
    g.finish();
}

fn bench_compile(c: &mut Criterion) {
    let src = mixed_policy(1_000);
    let mut g = c.benchmark_group("compile");
    g.sample_size(10);
    g.bench_function("mixed_1000_rules", |b| {
        b.iter(|| black_box(compile(black_box(&src))))
    });
    g.finish();
}

criterion_group!(benches, bench_eval, bench_compile);
criterion_main!(benches);
