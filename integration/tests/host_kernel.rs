//! Host-tier kernel-activity tests (signal tier: tracepoints only). The `kernel-ops` fixture
//! makes the real system calls; the audit log must hold a `kernel` event for each, with the
//! decoded fields. Module and kexec syscalls exist only on kernels built with them: when the
//! host has none, the engine must say so in `engine_start` (`kernel_syscalls_unseen`).
//! Needs root; skips loudly otherwise (fails under ENFORCER_REQUIRE_HOST=1, as in CI).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod host;

use std::{process::Command, sync::Mutex, time::Duration};

use host::{Engine, actions, can_run};
use serde_json::Value;

static SERIAL: Mutex<()> = Mutex::new(());

const WATCH: &str = include_str!("../fixtures/watch-kernel.yaml");
const DENY: &str = include_str!("../fixtures/deny-kernel.yaml");
const KERNEL_OPS: &str = env!("CARGO_BIN_EXE_kernel-ops");

/// Runs `kernel-ops OP [ARG]` and returns its report line.
fn kernel_ops(args: &[&str]) -> Value {
    let out = Command::new(KERNEL_OPS).args(args).output().unwrap();
    let line = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(line.lines().last().unwrap_or("")).unwrap_or_else(|e| {
        panic!("kernel-ops {args:?}: {e}: {out:?}");
    })
}

fn pid_of(report: &Value) -> u64 {
    report["pid"].as_u64().unwrap()
}

/// The kernel events of process `pid` for `syscall`.
fn events<'a>(records: &'a [Value], pid: u64, syscall: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r["type"] == "event")
        .map(|r| &r["event"])
        .filter(|e| {
            e["kind"] == "kernel" && e["process"]["pid"] == pid && e["kernel"]["syscall"] == syscall
        })
        .collect()
}

fn one<'a>(records: &'a [Value], pid: u64, syscall: &str) -> &'a Value {
    let found = events(records, pid, syscall);
    assert_eq!(found.len(), 1, "{syscall} of {pid}: {found:#?}");
    found[0]
}

#[test]
fn kernel_activity_is_recorded_with_its_fields() {
    if !can_run("kernel_activity_is_recorded_with_its_fields") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let mut engine = Engine::start(dir.path(), WATCH, "block");
    let start = engine.wait_for(Duration::from_secs(5), "engine_start", |r| {
        r["type"] == "engine_start"
    });
    let unseen = start["kernel_syscalls_unseen"].as_object().unwrap().clone();
    let seen = |name: &str| !unseen.contains_key(name);
    for always in [
        "bpf",
        "ptrace",
        "setuid",
        "capset",
        "unshare",
        "setns",
        "memfd_create",
    ] {
        assert!(seen(always), "{always} unseen: {unseen:?}");
    }

    let bogus = dir.path().join("not-a-module");
    std::fs::write(&bogus, b"not an ELF module").unwrap();
    let bogus = bogus.to_str().unwrap();
    let finit = kernel_ops(&["finit-module", bogus]);
    let init = kernel_ops(&["init-module"]);
    let delete = kernel_ops(&["delete-module", "no_such_module_xyz"]);
    let map = kernel_ops(&["bpf-map", "ko_map"]);
    let prog = kernel_ops(&["bpf-prog", "ko_prog"]);
    let attach = kernel_ops(&["ptrace-attach"]);
    let seize = kernel_ops(&["ptrace-seize"]);
    let traceme = kernel_ops(&["traceme"]);
    let writev = kernel_ops(&["vm-writev"]);
    let kexec = kernel_ops(&["kexec-load"]);
    let kexec_file = kernel_ops(&["kexec-file-load", bogus]);
    let creds = kernel_ops(&["creds"]);
    let capset = kernel_ops(&["capset"]);
    let unshare = kernel_ops(&["unshare-uts"]);
    let setns = kernel_ops(&["setns-uts"]);
    let memfd = kernel_ops(&["memfd-exec", "ko-memfd"]);
    for report in [
        &map, &prog, &attach, &seize, &traceme, &writev, &creds, &capset, &unshare, &setns, &memfd,
    ] {
        assert_eq!(report["errno"], 0, "the call succeeds as root: {report}");
    }
    let exec_pid = memfd["target"].as_u64().unwrap();
    engine.wait_for(Duration::from_secs(10), "the memfd exec", |r| {
        r["type"] == "event"
            && r["event"]["kind"] == "exec"
            && r["event"]["process"]["pid"] == exec_pid
    });
    let records = engine.stop();

    // Modules and kexec: recorded when the kernel has the syscalls, said otherwise.
    if seen("finit_module") {
        assert!(seen("module:module_load"), "{unseen:?}");
        let e = one(&records, pid_of(&finit), "finit_module");
        assert_eq!(e["kernel"]["op"], "module_load");
        assert_eq!(e["kernel"]["module"]["file"], "not-a-module");
        assert_eq!(e["kernel"]["module"]["args"], "allow_writes=on");
        assert_eq!(e["kernel"]["stage"], "attempt");
        let e = one(&records, pid_of(&init), "init_module");
        assert_eq!(e["kernel"]["module"]["name_unknown"], true);
        assert_eq!(e["kernel"]["module"]["args"], "kernel_ops=1");
        let e = one(&records, pid_of(&delete), "delete_module");
        assert_eq!(e["kernel"]["op"], "module_unload");
        assert_eq!(e["kernel"]["module"]["name"], "no_such_module_xyz");
    } else {
        for name in [
            "init_module",
            "finit_module",
            "delete_module",
            "module:module_load",
        ] {
            assert!(!seen(name), "{name}: {unseen:?}");
        }
        assert!(events(&records, pid_of(&finit), "finit_module").is_empty());
    }
    if seen("kexec_load") {
        let e = one(&records, pid_of(&kexec), "kexec_load");
        assert_eq!(e["kernel"]["op"], "kexec");
        let e = one(&records, pid_of(&kexec_file), "kexec_file_load");
        assert_eq!(e["kernel"]["kexec"]["file"], "not-a-module");
    } else {
        assert!(!seen("kexec_file_load"), "{unseen:?}");
    }

    // bpf by a process other than the engine.
    let e = one(&records, pid_of(&map), "bpf");
    assert_eq!(e["kernel"]["op"], "bpf");
    assert_eq!(e["kernel"]["bpf"]["cmd"], "map_create");
    assert_eq!(e["kernel"]["bpf"]["map"]["type"], "array");
    assert_eq!(e["kernel"]["bpf"]["map"]["name"], "ko_map");
    let e = one(&records, pid_of(&prog), "bpf");
    assert_eq!(e["kernel"]["bpf"]["cmd"], "prog_load");
    assert_eq!(e["kernel"]["bpf"]["prog"]["type"], "socket_filter");
    assert_eq!(e["kernel"]["bpf"]["prog"]["name"], "ko_prog");
    let engine_pid = start["pid"].as_u64().unwrap();
    assert!(
        records.iter().all(|r| r["type"] != "event"
            || r["event"]["kind"] != "kernel"
            || r["event"]["kernel"]["op"] != "bpf"
            || r["event"]["process"]["pid"] != engine_pid),
        "the engine's own bpf calls are not reported"
    );

    // ptrace: attach and seize name the target, traceme is the child's own call.
    let e = one(&records, pid_of(&attach), "ptrace");
    assert_eq!(e["kernel"]["ptrace"]["request"], "attach");
    assert_eq!(e["kernel"]["target"]["pid"], attach["target"]);
    let e = one(&records, pid_of(&seize), "ptrace");
    assert_eq!(e["kernel"]["ptrace"]["request"], "seize");
    assert_eq!(e["kernel"]["target"]["pid"], seize["target"]);
    let e = one(&records, pid_of(&traceme), "ptrace");
    assert_eq!(e["kernel"]["ptrace"]["request"], "traceme");
    let e = one(&records, pid_of(&writev), "process_vm_writev");
    assert_eq!(e["kernel"]["op"], "ptrace");
    assert_eq!(e["kernel"]["target"]["pid"], writev["target"]);

    // Credentials, in the order the child changed them.
    let child = pid_of(&creds);
    let e = one(&records, child, "setgid");
    assert_eq!(e["kernel"]["op"], "setgid");
    assert_eq!(e["kernel"]["creds"]["old"]["gid"], 0);
    assert_eq!(e["kernel"]["creds"]["new"]["gid"], 65534);
    assert_eq!(e["kernel"]["creds"]["new"]["egid"], 65534);
    one(&records, child, "setregid");
    let e = one(&records, child, "setresgid");
    assert_eq!(e["kernel"]["creds"]["new"]["sgid"], 65534);
    one(&records, child, "setfsgid");
    one(&records, child, "setfsuid");
    one(&records, child, "setreuid");
    let e = one(&records, child, "setresuid");
    assert_eq!(e["kernel"]["op"], "setuid");
    assert_eq!(e["kernel"]["creds"]["old"]["euid"], 0);
    assert_eq!(e["kernel"]["creds"]["new"]["euid"], 65534);
    assert_eq!(e["kernel"]["creds"]["new"]["uid"], 0, "-1: unchanged");
    assert_eq!(e["kernel"]["value"], 65534);
    let e = one(&records, child, "setuid");
    assert_eq!(e["kernel"]["creds"]["old"]["euid"], 65534);
    assert_eq!(e["kernel"]["creds"]["new"]["euid"], 0);

    let e = one(&records, pid_of(&capset), "capset");
    let old = e["kernel"]["caps"]["old"]["effective"].as_u64().unwrap();
    let new = e["kernel"]["caps"]["new"]["effective"].as_u64().unwrap();
    assert_ne!(old & (1 << 13), 0, "root had CAP_NET_RAW: {e:#}");
    assert_eq!(new, old & !(1 << 13), "{e:#}");

    let e = one(&records, pid_of(&unshare), "unshare");
    assert_eq!(e["kernel"]["ns"]["types"], serde_json::json!(["uts"]));
    let e = one(&records, pid_of(&setns), "setns");
    assert_eq!(e["kernel"]["ns"]["types"], serde_json::json!(["uts"]));

    // memfd_create, then the exec of the memfd says so.
    let e = one(&records, pid_of(&memfd), "memfd_create");
    assert_eq!(e["kernel"]["memfd"]["name"], "ko-memfd");
    let exec = records
        .iter()
        .filter(|r| r["type"] == "event")
        .map(|r| &r["event"])
        .find(|e| e["kind"] == "exec" && e["process"]["pid"] == exec_pid)
        .unwrap();
    assert_eq!(exec["exec"]["is_memfd"], true, "{exec:#}");
    assert_eq!(exec["exec"]["file"]["name"], "memfd:ko-memfd");

    // Every reported event was an alert of the one rule.
    assert!(!actions(&records, "alert", Some("watch-kernel")).is_empty());
    let stop = records.iter().find(|r| r["type"] == "engine_stop").unwrap();
    // 2 bpf, 4 ptrace-class, 8 credential calls, capset, unshare, setns, memfd_create.
    assert!(
        stop["counters"]["kernel_seen"].as_u64().unwrap() >= 18,
        "{stop:#}"
    );
}

#[test]
fn without_a_kernel_rule_nothing_leaves_the_kernel() {
    if !can_run("without_a_kernel_rule_nothing_leaves_the_kernel") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let policy = "version: 1\nrules:\n  - id: watch-ptrace\n    description: only ptrace\n    severity: low\n    expression: kernel.op == \"ptrace\"\n    action: alert\n";
    let mut engine = Engine::start(dir.path(), policy, "block");
    let creds = kernel_ops(&["creds"]);
    let attach = kernel_ops(&["ptrace-attach"]);
    engine.wait_for(Duration::from_secs(10), "the attach", |r| {
        r["type"] == "event" && r["event"]["process"]["pid"] == attach["pid"]
    });
    let records = engine.stop();
    assert!(
        records.iter().all(|r| r["type"] != "event"
            || r["event"]["kind"] != "kernel"
            || r["event"]["kernel"]["op"] == "ptrace"),
        "only the operation a rule is about is reported"
    );
    assert!(events(&records, pid_of(&creds), "setuid").is_empty());
    // The credential tracepoints are not even attached: the calls never ran a program.
    let stop = records.iter().find(|r| r["type"] == "engine_stop").unwrap();
    assert_eq!(stop["counters"]["kernel_filtered"], 0, "{stop:#}");
    assert!(
        stop["counters"]["kernel_seen"].as_u64().unwrap() >= 1,
        "{stop:#}"
    );
}

#[test]
fn signal_tier_kills_a_denied_kernel_operation() {
    if !can_run("signal_tier_kills_a_denied_kernel_operation") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let mut engine = Engine::start(dir.path(), DENY, "block");
    // The tracer is killed from the ptrace tracepoint (the attach itself runs: a tracepoint
    // cannot refuse it), so it never prints its report.
    let mut tracer = Command::new(KERNEL_OPS)
        .arg("ptrace-attach")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let tracer_pid = u64::from(tracer.id());
    let status = tracer.wait().unwrap();
    use std::os::unix::process::ExitStatusExt as _;
    assert_eq!(status.signal(), Some(9), "the tracer is killed: {status:?}");
    engine.wait_for(Duration::from_secs(10), "the kill", |r| {
        r["type"] == "action" && r["rule"] == "deny-ptrace"
    });
    let records = engine.stop();
    let kills = actions(&records, "kill", Some("deny-ptrace"));
    assert_eq!(kills.len(), 1, "{records:#?}");
    let e = &kills[0]["event"];
    assert_eq!(e["kernel"]["syscall"], "ptrace");
    assert_eq!(e["kernel"]["ptrace"]["request"], "attach");
    assert_eq!(e["process"]["pid"], tracer_pid);
    assert_eq!(kills[0]["decided_in"], "kernel");
}
