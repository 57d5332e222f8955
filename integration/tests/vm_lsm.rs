//! LSM tier, for real: boots every cached Debian kernel in a throw-away QEMU VM with an
//! initramfs holding the engine (`enforcer`), the guest harness (`vm-guest`), the payload
//! (`write-marker`), the policies, each cached kernel's msr and socket diagnostics modules at
//! `/lib/modules/<release>/`, and turns the guest's `VMTEST` lines into one result per kernel
//! and case. Each kernel boots twice: with BPF LSM active for the `lsm_*` cases, and without
//! it (as Debian boots by default) for the `signal_*` cases, where the engine runs in the
//! signal tier. See integration/README.md for the protocol and the switches.
//!
//! Skips loudly (`SKIPPED: <reason>`) when the host cannot run the VM (not root, no QEMU, no
//! kernels cached) unless `ENFORCER_REQUIRE_VM=1`, which turns every skip into a failure.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use enforcer_integration::vm::init_script::{self, InitConfig};
use enforcer_integration::vm::initramfs::InitramfsBuilder;
use enforcer_integration::vm::protocol::Verdict;
use enforcer_integration::vm::qemu::QemuConfig;
use enforcer_integration::vm::{kernels, layout, paths, preflight, run};

const GUEST_HARNESS: &str = env!("CARGO_BIN_EXE_vm-guest");
const WRITE_MARKER: &str = env!("CARGO_BIN_EXE_write-marker");
const DENY_MARKER_POLICY: &str = include_str!("../fixtures/deny-marker.yaml");
const STRATUM_POLICY: &str = include_str!("../fixtures/deny-stratum.yaml");
const MOCK_POOL: &str = env!("CARGO_BIN_EXE_mock-pool");
const STRATUM_CLIENT: &str = env!("CARGO_BIN_EXE_stratum-client");
const IO_URING_CLIENT: &str = env!("CARGO_BIN_EXE_io-uring-client");
const NETWORK_POLICY: &str = include_str!("../fixtures/deny-network.yaml");
const SOCKETS_POLICY: &str = include_str!("../fixtures/watch-sockets.yaml");
const DNS_POLICY: &str = include_str!("../fixtures/watch-dns.yaml");
const LEARNED_POLICY: &str = include_str!("../fixtures/learned-pool.yaml");
const FILES_POLICY: &str = include_str!("../fixtures/protect-files.yaml");
const FILE_OPS_POLICY: &str = include_str!("../fixtures/file-ops.yaml");
const STUB_DNS: &str = env!("CARGO_BIN_EXE_stub-dns");
const DNS_CLIENT: &str = env!("CARGO_BIN_EXE_dns-client");
const FAKE_MINER: &str = env!("CARGO_BIN_EXE_fake-miner");
const KERNEL_OPS: &str = env!("CARGO_BIN_EXE_kernel-ops");
const KERNEL_POLICY: &str = include_str!("../fixtures/vm-kernel.yaml");
/// Per boot, before the cases: TCG boots in 6-17 s (more on a busy machine).
const BOOT_ALLOWANCE: Duration = Duration::from_secs(120);
/// Per case: an engine case takes 20-35 s under emulation (engine start included) and gives
/// up on its own after at most 60 + 20 + 30 s.
const CASE_ALLOWANCE: Duration = Duration::from_secs(75);

/// The hard limit of one boot running `cases` cases.
fn boot_timeout(cases: usize) -> Duration {
    BOOT_ALLOWANCE + CASE_ALLOWANCE * u32::try_from(cases).unwrap_or(u32::MAX / 100)
}

#[test]
fn lsm_tier_in_vm() {
    let root = paths::workspace_root();
    let tools = match preflight::check_host() {
        Ok(tools) => tools,
        Err(problems) => return skip(&problems.join("; ")),
    };
    let cache = paths::kernel_cache_dir(&root);
    let all = kernels::discover(&cache).expect("kernel cache unreadable");
    let filter = preflight::env_nonempty(preflight::KERNELS_ENV);
    let (kernels, missing) = kernels::select(all, filter.as_deref());
    if !missing.is_empty() {
        let reason = format!(
            "{}={} names kernels not cached in {}: {}",
            preflight::KERNELS_ENV,
            filter.as_deref().unwrap_or(""),
            cache.display(),
            missing.join(", ")
        );
        if preflight::vm_required() {
            panic!("{reason}");
        }
        println!("WARNING: {reason}");
    }
    if kernels.is_empty() {
        return skip(&match &filter {
            Some(names) => format!(
                "none of {}={names} is cached in {}",
                preflight::KERNELS_ENV,
                cache.display()
            ),
            None => format!(
                "no kernels cached in {} (run scripts/setup)",
                cache.display()
            ),
        });
    }

    let cases = expected_cases();
    let enforcer = paths::engine_under_test(&root).unwrap_or_else(|why| panic!("{why}"));
    match &enforcer {
        Some(path) => println!("enforcer binary: {}", path.display()),
        None => println!(
            "WARNING: no enforcer binary ({}, target/release/enforcer, target/debug/enforcer): \
             the engine cases will FAIL",
            preflight::ENFORCER_BIN_ENV
        ),
    }

    let mut harness = vec![layout::GUEST_HARNESS.to_owned()];
    if preflight::env_nonempty(preflight::CASES_ENV).is_some() {
        harness.extend(cases.iter().cloned());
    }
    // The guest runs the cases of the tier it was booted in (BPF LSM active or not).
    let init = init_script::render(&InitConfig { harness });
    let builder = InitramfsBuilder::new(&tools.busybox, init)
        .binary(GUEST_HARNESS, layout::GUEST_HARNESS)
        .binary(WRITE_MARKER, layout::WRITE_MARKER)
        .file(layout::DENY_MARKER_POLICY, DENY_MARKER_POLICY, 0o644)
        .binary(MOCK_POOL, layout::MOCK_POOL)
        .binary(STRATUM_CLIENT, layout::STRATUM_CLIENT)
        .binary(IO_URING_CLIENT, layout::IO_URING_CLIENT)
        .file(layout::STRATUM_POLICY, STRATUM_POLICY, 0o644)
        .binary(STUB_DNS, layout::STUB_DNS)
        .binary(DNS_CLIENT, layout::DNS_CLIENT)
        .file(layout::NETWORK_POLICY, NETWORK_POLICY, 0o644)
        .file(layout::SOCKETS_POLICY, SOCKETS_POLICY, 0o644)
        .file(layout::DNS_POLICY, DNS_POLICY, 0o644)
        .file(layout::LEARNED_POLICY, LEARNED_POLICY, 0o644)
        .binary(FAKE_MINER, layout::FAKE_MINER)
        .file(layout::FILES_POLICY, FILES_POLICY, 0o644)
        .file(layout::FILE_OPS_POLICY, FILE_OPS_POLICY, 0o644)
        .binary(KERNEL_OPS, layout::KERNEL_OPS)
        .file(layout::KERNEL_POLICY, KERNEL_POLICY, 0o644)
        .strip_debug(true);
    let mut builder = builder
        .policy_dir(
            &root.join("policy/default"),
            Path::new(layout::DEFAULT_POLICY_DIR),
        )
        .expect("cannot read policy/default");
    if let Some(path) = &enforcer {
        builder = builder.binary(path, layout::ENFORCER);
    }
    // Each kernel's msr module at /lib/modules/<release>/msr.ko (catalog F7, case lsm_msr),
    // and its socket diagnostics modules beside it (the signal-tier case). A kernel cached
    // without them boots anyway; the cases then fail and name scripts/setup.
    for kernel in &kernels {
        match (&kernel.release, &kernel.msr_module) {
            (Some(release), Some(module)) => {
                builder = builder.host_file(module, layout::msr_module(release), 0o644);
                for (module, name) in kernel.diag_modules.iter().zip(layout::DIAG_MODULES) {
                    builder = builder.host_file(module, layout::module(release, name), 0o644);
                }
            }
            _ => println!(
                "WARNING: kernel {} has no msr.ko and release in its cache (run scripts/setup): \
                 lsm_msr will FAIL",
                kernel.name
            ),
        }
    }
    let cache_dir = paths::vm_cache_dir(&root);
    std::fs::create_dir_all(&cache_dir).expect("cannot create the VM cache dir");
    let image = builder
        .build(&cache_dir.join("initramfs.cpio.gz"))
        .expect("cannot build the initramfs");
    println!(
        "initramfs: {} ({} KiB)",
        image.path.display(),
        image.size / 1024
    );

    let mut failures = Vec::new();
    for kernel in &kernels {
        for tier in [Tier::Lsm, Tier::Signal] {
            let cases: Vec<String> = cases
                .iter()
                .filter(|case| Tier::of(case) == tier)
                .cloned()
                .collect();
            if !cases.is_empty() {
                boot(
                    kernel,
                    tier,
                    &cases,
                    &image.path,
                    &tools.qemu,
                    &mut failures,
                );
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} VM failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The tier a boot gives the engine: BPF LSM active or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tier {
    Lsm,
    Signal,
}

impl Tier {
    /// The tier of a guest case, by its name (`signal_*` cases run without BPF LSM).
    fn of(case: &str) -> Self {
        if case.starts_with("signal_") {
            Self::Signal
        } else {
            Self::Lsm
        }
    }
}

/// Boots `kernel` in `tier` with `image`, runs `cases` and adds each failure to `failures`.
fn boot(
    kernel: &kernels::Kernel,
    tier: Tier,
    cases: &[String],
    image: &Path,
    qemu: &Path,
    failures: &mut Vec<String>,
) {
    let root = paths::workspace_root();
    let cache_dir = paths::vm_cache_dir(&root);
    let timeout = preflight::env_nonempty(preflight::TIMEOUT_ENV)
        .and_then(|s| s.parse().ok())
        .map_or_else(|| boot_timeout(cases.len()), Duration::from_secs);
    let (label, suffix) = match tier {
        Tier::Lsm => (
            format!("kernel {} ({})", kernel.name, kernel.package_label()),
            "",
        ),
        Tier::Signal => (
            format!(
                "kernel {} ({}, BPF LSM off)",
                kernel.name,
                kernel.package_label()
            ),
            "-signal",
        ),
    };
    let mut config = QemuConfig::new(qemu, timeout);
    if tier == Tier::Signal {
        config
            .without_bpf_lsm()
            .unwrap_or_else(|why| panic!("{why}"));
    }
    if preflight::env_nonempty(preflight::ECHO_ENV).as_deref() == Some("1") {
        config.echo = Some(kernel.name.clone());
    }
    let kernel_run = run::run_kernel(kernel, image, &config)
        .unwrap_or_else(|e| panic!("{label}: cannot boot: {e}"));
    let log = cache_dir.join(format!("console-{}{suffix}.log", kernel.name));
    let _ = std::fs::write(&log, kernel_run.capture.timestamped_text());
    println!(
        "{label}: release {}, LSMs {}, boot to userspace {}, whole run {:.1} s, console {}",
        kernel_run.release().unwrap_or("unknown"),
        kernel_run
            .report
            .info
            .get("lsm")
            .map_or("unknown", String::as_str),
        kernel_run
            .boot_to_userspace()
            .map_or("never".to_owned(), |d| format!("{:.1} s", d.as_secs_f64())),
        kernel_run.capture.elapsed.as_secs_f64(),
        log.display()
    );
    for outcome in kernel_run.outcomes(cases) {
        match outcome.verdict.reason() {
            None => println!("{label}: {} {}", outcome.case, outcome.verdict.word()),
            Some(reason) => println!(
                "{label}: {} {} {reason}",
                outcome.case,
                outcome.verdict.word()
            ),
        }
        if let Verdict::Fail(reason) = &outcome.verdict {
            for line in &outcome.log {
                println!("    | {line}");
            }
            failures.push(format!("{label}: {} FAIL {reason}", outcome.case));
        }
    }
    if let Some(message) = kernel_run.boot_failure() {
        println!("{label}: BOOT FAILED: {message}");
        failures.push(format!("{label}: {message}"));
    }
}

/// Skips loudly, or fails when `ENFORCER_REQUIRE_VM=1`.
fn skip(reason: &str) {
    if preflight::vm_required() {
        panic!(
            "{}=1 but the VM test cannot run: {reason}",
            preflight::REQUIRE_VM_ENV
        );
    }
    println!("SKIPPED: {reason}");
    eprintln!("SKIPPED: {reason}");
}

/// The cases the guest should report: `ENFORCER_VM_CASES`, else everything `vm-guest --list`
/// names.
fn expected_cases() -> Vec<String> {
    if let Some(list) = preflight::env_nonempty(preflight::CASES_ENV) {
        return list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
    }
    let output = Command::new(GUEST_HARNESS)
        .arg("--list")
        .output()
        .expect("cannot run vm-guest --list");
    assert!(output.status.success(), "vm-guest --list failed");
    let cases: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(!cases.is_empty(), "vm-guest --list names no case");
    cases
}
