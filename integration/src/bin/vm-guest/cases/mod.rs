//! The case registry: every guest test case by name, and the context a case logs through.
//! To add a case, write `fn my_case(ctx: &Ctx) -> Result<(), String>` in a module here and list
//! it in [`ALL`]; the host runner picks it up through `vm-guest --list`.

mod crash;
mod default_policy;
mod dns_response;
mod exec;
mod file_ops;
mod files;
mod hash;
mod infra;
mod kernel;
mod lifecycle;
mod mmap;
mod module_loaded;
mod msr;
mod network;
mod reload;
mod self_protect;
mod signal;
mod signal_fentry;
mod sockets;
mod storm;
mod stratum;

use enforcer_integration::vm::protocol::{self, Verdict};

/// Whether the guest was booted with BPF LSM active (`bpf` in `/sys/kernel/security/lsm`).
pub(crate) fn bpf_lsm_active() -> bool {
    std::fs::read_to_string("/sys/kernel/security/lsm")
        .is_ok_and(|list| list.trim().split(',').any(|lsm| lsm == "bpf"))
}

/// One named case. `Err(reason)` fails it.
#[derive(Debug)]
pub(crate) struct Case {
    pub(crate) name: &'static str,
    pub(crate) run: fn(&Ctx) -> Result<(), String>,
}

/// Every case, in the order they run.
pub(crate) const ALL: &[Case] = &[
    Case {
        name: "lsm_bpf_active",
        run: infra::lsm_bpf_active,
    },
    Case {
        name: "lsm_exec_deny",
        run: exec::lsm_exec_deny,
    },
    Case {
        name: "lsm_exec_monitor",
        run: exec::lsm_exec_monitor,
    },
    Case {
        name: "lsm_hash_deny",
        run: hash::lsm_hash_deny,
    },
    Case {
        name: "lsm_hash_first_exec",
        run: hash::lsm_hash_first_exec,
    },
    Case {
        name: "lsm_mmap_ld_so",
        run: mmap::lsm_mmap_ld_so,
    },
    Case {
        name: "lsm_mmap_hash",
        run: mmap::lsm_mmap_hash,
    },
    Case {
        name: "lsm_exec_storm",
        run: storm::lsm_exec_storm,
    },
    Case {
        name: "lsm_stratum_deny",
        run: stratum::lsm_stratum_deny,
    },
    Case {
        name: "lsm_network_deny",
        run: network::lsm_network_deny,
    },
    Case {
        name: "lsm_network_monitor",
        run: network::lsm_network_monitor,
    },
    Case {
        name: "lsm_resolver_spared",
        run: network::lsm_resolver_spared,
    },
    Case {
        name: "lsm_dns_responses",
        run: dns_response::lsm_dns_responses,
    },
    Case {
        name: "lsm_learned_connect",
        run: dns_response::lsm_learned_connect,
    },
    Case {
        name: "lsm_sockets",
        run: sockets::lsm_sockets,
    },
    Case {
        name: "lsm_lifecycle",
        run: lifecycle::lsm_lifecycle,
    },
    Case {
        name: "lsm_default_policy",
        run: default_policy::lsm_default_policy,
    },
    Case {
        name: "lsm_default_policy_monitor",
        run: default_policy::lsm_default_policy_monitor,
    },
    Case {
        name: "lsm_file_deny",
        run: files::lsm_file_deny,
    },
    Case {
        name: "lsm_file_monitor",
        run: files::lsm_file_monitor,
    },
    Case {
        name: "lsm_file_ops",
        run: file_ops::lsm_file_ops,
    },
    Case {
        name: "lsm_kernel_events",
        run: kernel::lsm_kernel_events,
    },
    Case {
        name: "lsm_msr",
        run: msr::lsm_msr,
    },
    Case {
        name: "lsm_policy_reload",
        run: reload::lsm_policy_reload,
    },
    Case {
        name: "lsm_msr_hook",
        run: msr::lsm_msr_hook,
    },
    Case {
        name: "lsm_module_loaded",
        run: module_loaded::lsm_module_loaded,
    },
    Case {
        name: "lsm_crash_pinned",
        run: crash::lsm_crash_pinned,
    },
    Case {
        name: "lsm_reload_pinned_hash",
        run: reload::lsm_reload_pinned_hash,
    },
    Case {
        name: "lsm_self_protect",
        run: self_protect::lsm_self_protect,
    },
    Case {
        name: "signal_egress_abort",
        run: signal::signal_egress_abort,
    },
    Case {
        name: "signal_default_policy",
        run: default_policy::signal_default_policy,
    },
    Case {
        name: "signal_fentry_files",
        run: signal_fentry::signal_fentry_files,
    },
    Case {
        name: "signal_fentry_kernel",
        run: signal_fentry::signal_fentry_kernel,
    },
    Case {
        name: "signal_sockets",
        run: sockets::signal_sockets,
    },
    Case {
        name: "signal_mmap_ld_so",
        run: mmap::signal_mmap_ld_so,
    },
];

/// What a running case can do besides returning.
#[derive(Debug)]
pub(crate) struct Ctx {
    name: &'static str,
}

impl Ctx {
    /// Prints a `VMLOG` line for this case (shown by the host when the case fails).
    pub(crate) fn log(&self, text: impl AsRef<str>) {
        println!("{}", protocol::format_log(self.name, text.as_ref()));
    }
}

/// Runs one case, turning a panic into a failure.
pub(crate) fn run(case: &Case) -> Verdict {
    let ctx = Ctx { name: case.name };
    ctx.log("started");
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (case.run)(&ctx)));
    match result {
        Ok(Ok(())) => Verdict::Pass,
        Ok(Err(reason)) => Verdict::Fail(reason),
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic".to_owned());
            Verdict::Fail(format!("harness panicked: {message}"))
        }
    }
}
