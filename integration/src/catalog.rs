//! The catalog fixtures (`../shared/threats/CATALOG.md`) the shipped policy (`policy/default`)
//! must stop, written once as data for the two suites that run them: on the host in the signal
//! tier (`tests/host_default_policy.rs`) and in the VM in the lsm tier (`vm-guest` case
//! `lsm_default_policy`). Each entry names the fixture, the program as the engine sees it and
//! the rule the policy documents for it; how a tier stops it (EPERM, SIGKILL, after the fact)
//! is for the suites to assert.

/// A program started under a miner's name or with a miner's command line.
#[derive(Clone, Copy, Debug)]
pub struct MinerExec {
    /// Catalog id (`F1`, ...).
    pub fixture: &'static str,
    /// File name the fixture binary is installed under (also its comm).
    pub name: &'static str,
    /// Its arguments (after the fixture's own, for `fake-miner`).
    pub args: &'static [&'static str],
    /// The rule that must act.
    pub rule: &'static str,
}

/// F1, F5, F6: programs named like miners, denied at exec by name (`write-marker` installed
/// under the name; the arguments are the catalog's command lines).
pub const NAMED_MINERS: [MinerExec; 3] = [
    MinerExec {
        fixture: "F1",
        name: "xmrig",
        args: &[
            "-o",
            "stratum+tcp://pool.supportxmr.com:3333",
            "-u",
            "4FAKE",
            "-p",
            "x",
            "--donate-level=1",
        ],
        rule: "miner-exec-name",
    },
    MinerExec {
        fixture: "F5",
        name: "ethminer",
        args: &["-P", "stratum1+tcp://0xFAKE.rig@eth-eu1.nanopool.org:9999"],
        rule: "miner-exec-name",
    },
    MinerExec {
        fixture: "F6",
        name: "minerd",
        args: &[
            "-a",
            "scrypt",
            "-o",
            "stratum+tcps://pool.test:3333",
            "-u",
            "u",
        ],
        rule: "miner-exec-name",
    },
];

/// F2: a renamed program (`write-marker`, so the suites see whether any of its code ran)
/// with a pool URL and a miner flag: killed by its arguments, in the kernel at
/// `sched_process_exec` (argument plan), before its first instruction.
pub const RENAMED_MINER: MinerExec = MinerExec {
    fixture: "F2",
    name: "kworker_upd",
    args: &[
        "--",
        "--url=stratum+ssl://gulf.moneroocean.stream:10128",
        "--cpu-priority=0",
    ],
    rule: "miner-args-stratum-url",
};

/// F2's miner flag alone: a renamed program (`write-marker`) whose one tell is an xmrig-family
/// flag, killed in the kernel at `sched_process_exec` (flag plan) before its first
/// instruction.
pub const FLAGGED_MINER: MinerExec = MinerExec {
    fixture: "F2 flag",
    name: "app-flagged",
    args: &["--", "--donate-level=1"],
    rule: "miner-args-flags",
};

/// F2's miner flag abbreviated as `getopt_long` takes it (`--donate-l=0` for
/// `--donate-level`): killed in the kernel by the flag plan, which holds every abbreviation of
/// the default policy's `long_option` list.
pub const ABBREVIATED_FLAG_MINER: MinerExec = MinerExec {
    fixture: "F2 flag abbreviated",
    name: "app-abbrev",
    args: &["--", "--donate-l=0"],
    rule: "miner-args-flags",
};

/// The alert F2's kernel-thread-like name raises besides.
pub const MASQUERADE_RULE: &str = "kernel-thread-name-exec";

/// F11: the fake miner executed from a memfd, with a miner flag.
pub const MEMFD_MINER: MinerExec = MinerExec {
    fixture: "F11",
    name: "fake-miner",
    args: &["--", "--donate-level=1"],
    rule: "miner-args-flags",
};

/// The alert every memfd exec raises besides (F11's fileless execution).
pub const MEMFD_EXEC_RULE: &str = "memfd-exec";

/// F4: a renamed fake miner configured only through its environment (the variables
/// containerised miners read), no arguments. Started with exactly these variables (the
/// kernel copies the first 512 bytes of the environment).
#[derive(Clone, Copy, Debug)]
pub struct EnvMiner {
    /// Catalog id.
    pub fixture: &'static str,
    /// File name of the `fake-miner` copy.
    pub name: &'static str,
    /// Its whole environment.
    pub envs: &'static [(&'static str, &'static str)],
    /// The rule that must act (a pool URL in a variable: kill).
    pub rule: &'static str,
    /// The alert the variables' names raise besides.
    pub alert_rule: &'static str,
}

/// F4, see [`EnvMiner`].
pub const ENV_MINER: EnvMiner = EnvMiner {
    fixture: "F4",
    name: "app-svc",
    envs: &[
        ("POOL_URL", "stratum+tcp://pool.supportxmr.com:3333"),
        ("POOL_USER", "4FAKE"),
        ("DONATE_LEVEL", "0"),
        ("PATH", "/usr/bin:/bin"),
    ],
    rule: "miner-env-stratum-url",
    alert_rule: "miner-env-vars",
};

/// F12: a miner started through the dynamic loader (`ld.so ./xmrig`): the executed file is
/// the loader, the miner is its argument.
pub const LOADER_MINER: MinerExec = MinerExec {
    fixture: "F12",
    name: "xmrig",
    args: &[],
    rule: "miner-exec-via-loader",
};

/// The dynamic loader F12 runs, and its file name (the exec's `exec.file.name`).
pub const DYNAMIC_LOADER: (&str, &str) = ("/lib64/ld-linux-x86-64.so.2", "ld-linux-x86-64.so.2");

/// F7, command-line side: `modprobe msr allow_writes=on` and an exec of `wrmsr`, alerts
/// (`write-marker` stands in, so nothing touches the MSRs).
pub const MSR_COMMANDS: [MinerExec; 2] = [
    MinerExec {
        fixture: "F7",
        name: "modprobe",
        args: &["msr", "allow_writes=on"],
        rule: "msr-allow-writes-cmdline",
    },
    MinerExec {
        fixture: "F7",
        name: "wrmsr",
        args: &["0x1a4", "0xf"],
        rule: "msr-wrmsr-exec",
    },
];

/// F8: the fake miner writes the huge-page sysctl (`/proc/sys/vm/nr_hugepages`, its own value
/// back, so nothing changes): a corroborating alert.
pub const HUGEPAGE_MINER: MinerExec = MinerExec {
    fixture: "F8",
    name: "hp-worker",
    args: &["--touch-hugepages"],
    rule: "hugepages-write",
};

/// A renamed miner with no tell-tale arguments speaking stratum to the mock pool (F3, F10).
#[derive(Clone, Copy, Debug)]
pub struct StratumMiner {
    /// Catalog id.
    pub fixture: &'static str,
    /// File name of the `fake-miner` copy.
    pub name: &'static str,
    /// `fake-miner --dialect` value.
    pub dialect: &'static str,
    /// The rule that must act.
    pub rule: &'static str,
}

/// F3 (stratum v1: decided in the kernel on the first write) and F10's CryptoNote login
/// (killed in userspace: the kernel sees only `login`).
pub const STRATUM_MINERS: [StratumMiner; 2] = [
    StratumMiner {
        fixture: "F3",
        name: "app-worker",
        dialect: "v1",
        rule: "stratum-v1-payload",
    },
    StratumMiner {
        fixture: "F10",
        name: "app-worker-2",
        dialect: "monero",
        rule: "stratum-cryptonote-payload",
    },
];

/// F10's EthereumStratum subscribe, sent by `stratum-client`.
pub const ETHEREUM_STRATUM_RULE: &str = "stratum-v1-payload";

/// F9: pool lookups, (name, rule): an exact pool host and a pool domain's sub-domain.
pub const POOL_LOOKUPS: [(&str, &str); 2] = [
    ("eth-eu1.nanopool.org", "pool-host-lookup"),
    ("rx.supportxmr.com", "pool-domain-lookup"),
];

/// N4: an ordinary name containing "pool"; must be answered.
pub const ORDINARY_POOL_NAME: &str = "pool.ntp.org";

/// The stub resolver's answers: the pool names get a loopback address nothing listens on.
pub const STUB_ANSWERS: [&str; 3] = [
    "eth-eu1.nanopool.org=127.0.0.78",
    "rx.supportxmr.com=127.0.0.78",
    "pool.ntp.org=127.0.0.2",
];

/// N1: a note holding a pool URL, searched with `grep -F` for [`N1_PATTERN`].
pub const NOTE_WITH_POOL_URL: &str = "pool: stratum+tcp://pool.supportxmr.com:3333\n";
/// N1: what `grep` searches for: a whole scheme, so its command line holds a pool URL scheme.
pub const N1_PATTERN: &str = "stratum+tcp://";

/// N5: the JSON-RPC method of `stratum-client --dialect jsonrpc`; nothing may act on it.
pub const ORDINARY_JSONRPC_METHOD: &str = "eth_blockNumber";

/// Rules that may act during a run besides the ones a fixture names: the second miner-argument
/// rule of F2 (its flag), the args rules on F1 in monitor mode (the process runs, so userspace
/// sees its stratum URL) and the CPU info alert.
pub const INCIDENTAL_RULES: [&str; 3] = [
    "miner-args-flags",
    "miner-args-stratum-url",
    "cpu-sustained-high",
];

/// One rule that must have acted on one fixture.
#[derive(Clone, Debug)]
pub struct Expected {
    /// Catalog id.
    pub fixture: &'static str,
    /// The acting process's comm or, for an exec decided before the new image runs (the
    /// caller is the process then), the executed file's name; `None` when the fixture has no
    /// fixed one.
    pub comm: Option<String>,
    /// The rule.
    pub rule: &'static str,
    /// An alert rule (the same record in both modes) rather than an enforcing one.
    pub alert: bool,
}

/// Whether `record`'s process is `runner` or one of its descendants (an `ancestors` entry).
fn started_by(record: &serde_json::Value, runner: u32) -> bool {
    let process = &record["event"]["process"];
    process["pid"] == runner
        || process["ancestors"]
            .as_array()
            .is_some_and(|a| a.iter().any(|p| p["pid"] == runner))
}

/// Checks that the enforcing record of `f.rule` on the program named `f.name` (kill or
/// would-kill) was decided in the kernel.
pub fn decided_in_kernel(records: &[serde_json::Value], f: &MinerExec) -> Result<(), String> {
    let hit = records.iter().find(|r| {
        r["type"] == "action"
            && r["rule"] == f.rule
            && (r["action"] == "kill" || r["action"] == "would_kill")
            && r["event"]["exec"]["file"]["name"] == f.name
    });
    match hit {
        Some(r) if r["decided_in"] == "kernel" => Ok(()),
        Some(r) => Err(format!(
            "{}: {} not decided in the kernel: {r}",
            f.fixture, f.rule
        )),
        None => Err(format!("{}: no enforcing record of {}", f.fixture, f.rule)),
    }
}

/// Checks an audit log against what the fixtures expect. `block`: enforcement records are
/// `deny` / `kill`, else `would_deny` / `would_kill`; each must say `tier`. Nothing may act on
/// the negative fixtures (N1 `grep`, N2 the compiler, N4, N5) or under a rule that neither a
/// fixture nor [`INCIDENTAL_RULES`] explains. Only the actions on `runner` (the suite's own
/// process) and its descendants count: the engine sees the whole host, whose other activity
/// is not the suite's. Returns one line per expectation met (rule, action, where it was
/// decided, response time) for the test output.
pub fn check_actions(
    records: &[serde_json::Value],
    expected: &[Expected],
    block: bool,
    tier: &str,
    runner: u32,
) -> Result<Vec<String>, String> {
    let actions: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r["type"] == "action" && started_by(r, runner))
        .collect();
    let enforcing: &[&str] = if block {
        &["deny", "kill"]
    } else {
        &["would_deny", "would_kill"]
    };
    let mut lines = Vec::new();
    for want in expected {
        let hit = actions.iter().find(|r| {
            r["rule"] == want.rule
                && if want.alert {
                    r["action"] == "alert"
                } else {
                    enforcing.iter().any(|a| r["action"] == *a)
                }
                && want.comm.as_deref().is_none_or(|comm| {
                    r["event"]["process"]["comm"] == comm
                        || r["event"]["exec"]["file"]["name"] == comm
                })
        });
        let Some(hit) = hit else {
            return Err(format!(
                "{}: no record of {} ({}) for {:?}",
                want.fixture,
                want.rule,
                if want.alert { "alert" } else { "enforcing" },
                want.comm
            ));
        };
        if hit["tier"] != tier {
            return Err(format!("{}: tier is not {tier}: {hit}", want.fixture));
        }
        lines.push(format!(
            "{} {}: {} decided in {}, response {} us",
            want.fixture, want.rule, hit["action"], hit["decided_in"], hit["report"]["response_us"]
        ));
    }
    for r in &actions {
        let comm = r["event"]["process"]["comm"].as_str().unwrap_or_default();
        if ["grep", "cc", "cc1", "as", "gcc"].contains(&comm) {
            return Err(format!("N1/N2 must not fire: {r}"));
        }
        if r["event"]["dns"]["question"]["name"] == ORDINARY_POOL_NAME {
            return Err(format!("N4 must not fire: {r}"));
        }
        if r["event"]["payload"]["stratum"]["method"] == ORDINARY_JSONRPC_METHOD {
            return Err(format!("N5 must not fire: {r}"));
        }
        let explained = expected.iter().any(|e| r["rule"] == e.rule)
            || INCIDENTAL_RULES.iter().any(|rule| r["rule"] == *rule);
        if !explained {
            return Err(format!("an action no fixture explains: {r}"));
        }
    }
    Ok(lines)
}
