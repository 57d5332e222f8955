//! `enforcer status`: what this kernel lets the engine do, and which event families each tier
//! sees and stops. Probing the tier loads the programs (nothing is attached), so it needs root;
//! without root the tier is reported as unknown.

use std::{borrow::Cow, process::ExitCode};

use clap::Args;
use serde::Serialize;

use enforcer::loader::{
    self,
    tier::{KernelTier, SecurityHooks},
};

/// Arguments of `enforcer status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// One event family and what the engine does with it in a tier.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct Coverage {
    /// The event family.
    pub(crate) event: &'static str,
    /// Whether the engine records it in this tier.
    pub(crate) seen: bool,
    /// The kernel hooks that see it (empty when not seen).
    pub(crate) hooks: Cow<'static, str>,
    /// What a deny/kill rule does to it: `deny`, `kill`, or `none` (record only).
    pub(crate) stop: &'static str,
    /// Why it is not seen, or a caveat.
    pub(crate) note: Cow<'static, str>,
}

impl Coverage {
    /// The row as the signal tier's fentry programs see the family (`loader::trampolines`):
    /// the LSM hooks' `security_*` functions, where a deny is a kill.
    fn at_fentry(self) -> Self {
        if !self.hooks.contains("lsm/") {
            return self;
        }
        let hooks = self.hooks.replace("lsm/", "fentry/security_").into();
        if self.stop != "deny" {
            return Self { hooks, ..self };
        }
        Self {
            hooks,
            stop: "kill",
            note: format!(
                "fentry cannot refuse: a deny rule kills and the operation completes; {}",
                self.note
            )
            .into(),
            ..self
        }
    }
}

const fn row(
    event: &'static str,
    hooks: &'static str,
    stop: &'static str,
    note: &'static str,
) -> Coverage {
    Coverage {
        event,
        seen: true,
        hooks: Cow::Borrowed(hooks),
        stop,
        note: Cow::Borrowed(note),
    }
}

const fn missing(event: &'static str, note: &'static str) -> Coverage {
    Coverage {
        event,
        seen: false,
        hooks: Cow::Borrowed(""),
        stop: "none",
        note: Cow::Borrowed(note),
    }
}

/// Which optional kernel-activity syscalls the running kernel has (module and kexec
/// syscalls exist only with `CONFIG_MODULES` / `CONFIG_KEXEC*`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct KernelSyscalls {
    pub(crate) modules: bool,
    pub(crate) kexec: bool,
}

impl KernelSyscalls {
    /// What the running kernel has.
    fn probe() -> Self {
        use enforcer_common::kernel_event::KernelSyscall;
        Self {
            modules: loader::kernel_syscalls::present(KernelSyscall::FinitModule),
            kexec: loader::kernel_syscalls::present(KernelSyscall::KexecLoad),
        }
    }
}

/// The kernel-activity rows of `tier`.
fn kernel_rows(lsm: bool, has: KernelSyscalls) -> Vec<Coverage> {
    let mut rows = Vec::new();
    rows.push(match (has.modules, lsm) {
        (false, _) => missing(
            "kernel: module load, unload",
            "this kernel has no module syscalls (CONFIG_MODULES off): nothing to load",
        ),
        (true, true) => row(
            "kernel: module load, unload",
            "lsm/kernel_read_file, lsm/kernel_load_data (loads, from the caller's registers on x86_64), fentry/__x64_sys_delete_module (else tp/syscalls/sys_enter_delete_module), raw_tp/module_load",
            "deny",
            "loads refused by kernel.op rules, and reported only once they pass the capability check; an init_module image is named only once loaded (module_loaded); unloads: kill",
        ),
        (true, false) => row(
            "kernel: module load, unload",
            "tp/syscalls/sys_enter_{init,finit,delete}_module, raw_tp/module_load",
            "kill",
            "the load runs before the kill lands; an init_module image is named only once loaded (module_loaded)",
        ),
    });
    rows.push(match (has.kexec, lsm) {
        (false, _) => missing(
            "kernel: kexec",
            "this kernel has no kexec syscalls (CONFIG_KEXEC off)",
        ),
        (true, true) => row(
            "kernel: kexec",
            "lsm/kernel_read_file, lsm/kernel_load_data (from the caller's registers on x86_64)",
            "deny",
            "refused by a kernel.op rule; reported only once past the capability check",
        ),
        (true, false) => row(
            "kernel: kexec",
            "tp/syscalls/sys_enter_kexec_{load,file_load}",
            "kill",
            "the load runs before the kill lands",
        ),
    });
    rows.push(if lsm {
        row(
            "kernel: ptrace attach",
            "lsm/ptrace_access_check, lsm/ptrace_traceme (from the caller's registers on x86_64)",
            "deny",
            "a deny also refuses other attach-mode access (process_vm_*, /proc/PID/mem); a same-process attach is refused before the hook, unreported",
        )
    } else {
        row(
            "kernel: ptrace attach",
            "tp/syscalls/sys_enter_{ptrace,process_vm_writev}",
            "kill",
            "the attach happens before the kill lands",
        )
    });
    rows.push(if lsm {
        row(
            "kernel: bpf",
            "lsm/bpf (from the caller's registers on x86_64)",
            "deny",
            "reported when a rule is about the operation",
        )
    } else {
        row(
            "kernel: bpf",
            "tp/syscalls/sys_enter_bpf",
            "kill",
            "attempts at syscall entry (result not known), reported when a rule is about the operation",
        )
    });
    rows.push(if lsm {
        // Either tier on a kernel with BPF trampolines (`loader::kernel_syscalls::FENTRY_SYSCALLS`).
        row(
            "kernel: set*id, capset, unshare, setns, memfd_create",
            "fentry/__x64_sys_{set*id,capset,unshare,setns,memfd_create}",
            "kill",
            "attempts at syscall entry (result not known), reported when a rule is about the operation; no LSM deny; the syscall tracepoints instead where fentry programs do not load, or with --no-fentry",
        )
    } else {
        row(
            "kernel: set*id, capset, unshare, setns, memfd_create",
            "tp/syscalls/sys_enter_{set*id,capset,unshare,setns,memfd_create}",
            "kill",
            "attempts at syscall entry (result not known), reported when a rule is about the operation; no LSM deny",
        )
    });
    rows
}

/// The coverage table of `tier`, the file and kernel-activity families watched at `hooks`.
pub(crate) fn coverage(tier: KernelTier, hooks: SecurityHooks) -> Vec<Coverage> {
    coverage_with(tier, hooks, KernelSyscalls::probe())
}

/// The coverage table of `tier` on a kernel with `has`, the file and kernel-activity families
/// watched at `hooks`.
pub(crate) fn coverage_with(
    tier: KernelTier,
    hooks: SecurityHooks,
    has: KernelSyscalls,
) -> Vec<Coverage> {
    let lsm = tier == KernelTier::Lsm;
    let hooked = hooks.at_hooks();
    let mut rows = vec![
        if lsm {
            row(
                "exec",
                "lsm/bprm_check_security, tp_btf/sched_process_exec",
                "deny",
                "by file name or path",
            )
        } else {
            row(
                "exec",
                "tp_btf/sched_process_exec",
                "kill",
                "killed before the new program runs",
            )
        },
        if lsm {
            row(
                "exec by content hash",
                "lsm/bprm_creds_from_file (sleepable, bpf_ima_file_hash), lsm/bprm_check_security",
                "deny",
                "a listed SHA-256 is refused on its first exec when the kernel hash program loads (see exec_hash); otherwise hashed in userspace after the exec and killed, later execs refused by file identity",
            )
        } else {
            row(
                "exec by content hash",
                "tp_btf/sched_process_exec + userspace SHA-256",
                "kill",
                "first exec killed after the fact (hashed in userspace); later execs killed before they run, by file identity",
            )
        },
        if hooked {
            row(
                "program mapped executable by ld.so",
                "lsm/mmap_file, lsm/file_mprotect",
                "deny",
                "by file name or known-bad file identity (not by path; a never-seen file is not hashed there)",
            )
        } else {
            missing(
                "program mapped executable by ld.so",
                "the signal tier sees only the exec of ld.so and its argv (argv rules), not the mapping",
            )
        },
        row(
            "fork, exit",
            "tp_btf/sched_process_fork, tp_btf/sched_process_exit",
            "none",
            "processes only, not threads",
        ),
        if lsm {
            row(
                "dns query",
                "lsm/socket_sendmsg",
                "deny",
                "every socket send, io_uring included; no fd in the record",
            )
        } else {
            row(
                "dns query",
                "cgroup_skb/egress (cgroup v2 root)",
                "deny",
                "dropped on its way out, io_uring included (UDP: the send fails with EPERM; TCP: the daemon then aborts the connection); a kill rule's kill is the daemon's, for the socket's owner; no fd in the record; without cgroup v2, tp/syscalls/sys_enter_{write,sendto,sendmsg,sendmmsg,writev} kill instead (engine_start's send_hook says which)",
            )
        },
        if lsm {
            row(
                "connect",
                "lsm/socket_connect",
                "deny",
                "IPv4 and IPv6; only connects a rule is about are reported when every connect rule is in the plan",
            )
        } else {
            row(
                "connect",
                "cgroup/connect4, cgroup/connect6 (cgroup v2 root)",
                "deny",
                "refused with EPERM before the SYN, io_uring connects included; a kill rule's kill is the daemon's (pidfd); without cgroup v2, tp/syscalls/sys_enter_connect kills instead (engine_start says which); only connects a rule is about are reported when every connect rule is in the plan",
            )
        },
        if lsm {
            row(
                "stratum payload",
                "lsm/socket_sendmsg",
                "deny",
                "first JSON-RPC method of every message sent, io_uring included; no fd in the record",
            )
        } else {
            row(
                "stratum payload",
                "cgroup_skb/egress (cgroup v2 root)",
                "deny",
                "the TCP segment never leaves and the daemon aborts its connection (sock_diag SOCK_DESTROY; engine_start's connection_abort says whether it can), io_uring included; a kill rule's kill is the daemon's, for the socket's owner; the first segment of a message is judged; no fd in the record; without cgroup v2, the send tracepoints kill instead, after the write",
            )
        },
        row(
            "cpu usage",
            "userspace sampling: /proc/<pid>/stat, cgroup v2 cpu.stat (every --cpu-interval)",
            "kill",
            "after the fact, by rules that ask for it (e.g. correlated with a miner indicator)",
        ),
        row(
            "dns response",
            "cgroup_skb/ingress (cgroup v2 root)",
            "none",
            "from port 53 and network.dns_server_ports; attributed to the query's process; needs cgroup v2",
        ),
        if hooked {
            row(
                "bind, accept",
                "lsm/socket_bind, lsm/sock_graft",
                "none",
                "detection only, attached and reported only when a rule is about them; io_uring accepts too; no descriptor in the record",
            )
        } else {
            row(
                "bind, accept",
                "tp/syscalls/sys_enter_bind, tp/syscalls/sys_exit_accept{,4}",
                "none",
                "detection only, attached and reported only when a rule is about them; not io_uring",
            )
        },
        if hooked {
            row(
                "file open for write (FIM)",
                "lsm/file_open",
                "deny",
                "only paths under a watched prefix leave the kernel; reads of watched devices too",
            )
        } else {
            row(
                "file open for write (FIM)",
                "tp/syscalls/sys_exit_{open,openat,openat2,creat}",
                "kill",
                "killed when the open returns (O_TRUNC has run, no write has); only watched paths leave the kernel",
            )
        },
        if hooked {
            row(
                "file unlink, rename, chmod, chown",
                "lsm/path_{unlink,rename,chmod,chown}",
                "deny",
                "resolved paths; fchmod/fchown on a descriptor go through path_chmod/path_chown",
            )
        } else {
            row(
                "file unlink, rename, chmod, chown",
                "tp/syscalls/sys_enter_{unlink,unlinkat,rename,renameat,renameat2,chmod,fchmodat,fchmodat2,fchmod,chown,lchown,fchownat,fchown}",
                "kill",
                "the path as written (relative ones joined to cwd/dirfd, `..` not resolved; fchmod/fchown: the descriptor's path); the operation completes",
            )
        },
        if hooked {
            row(
                "file link/symlink, mkdir/rmdir, truncate, mount/umount",
                "lsm/path_{link,symlink,mkdir,rmdir,truncate}, lsm/file_truncate (6.2+), lsm/sb_mount, lsm/move_mount, lsm/sb_umount",
                "deny",
                "resolved paths; a link watched by its new name and its target, a mount by its mount point; 6.1: O_TRUNC opens and ftruncate through path_truncate",
            )
        } else {
            row(
                "file link/symlink, mkdir/rmdir, truncate, mount/umount",
                "tp/syscalls/sys_enter_{link,linkat,symlink,symlinkat,mkdir,mkdirat,rmdir,truncate,ftruncate,mount,move_mount,umount}",
                "kill",
                "the path as written; the operation completes; O_TRUNC opens are open events, not truncate",
            )
        },
        row(
            "file setxattr, utimes",
            "tp/syscalls/sys_enter_{setxattr,lsetxattr,fsetxattr,setxattrat,utimensat,utimes,utime,futimesat}",
            "kill",
            "no path LSM hook sees them (inode hooks carry no mount): the tracepoint in every tier, the operation completes; setxattrat on 6.13+ only",
        ),
    ];
    rows.extend(kernel_rows(hooked, has));
    if hooks == SecurityHooks::Fentry {
        return rows.into_iter().map(Coverage::at_fentry).collect();
    }
    rows
}

#[derive(Debug, Serialize)]
struct Status {
    kernel: String,
    tier: Option<&'static str>,
    tier_reason: String,
    /// Whether executables can be hashed in the kernel, or why not.
    exec_hash: String,
    /// Where file operations and the kernel activity the LSM hooks report are watched: LSM
    /// programs, fentry programs (signal tier), or syscall tracepoints (and why not fentry).
    security_hooks: String,
    /// Whether `enforcer run --self-protect` can run here (it needs the lsm tier), or why not.
    self_protect: String,
    /// Whether the signal tier can abort the connection of a TCP segment it refused
    /// (`SOCK_DESTROY`), or why not; not needed in the lsm tier.
    connection_abort: String,
    coverage: Vec<Coverage>,
    /// Enforcement pinned under /sys/fs/bpf/enforcer/ (`--on-crash keep-enforcing`), by run.
    pinned: Vec<PinnedStatus>,
}

/// A run's pinned enforcement, for `enforcer status`.
#[derive(Debug, Serialize)]
struct PinnedStatus {
    dir: String,
    run_id: Option<String>,
    pid: Option<u32>,
    /// Whether the engine of the run still runs; `false`: its programs enforce on their own.
    engine_running: bool,
    links: Vec<String>,
    /// The run's kernel counters (from its pinned `COUNTERS` map).
    counters: Option<serde_json::Value>,
}

/// The pinned runs, or an empty list when none (or the directory is unreadable: said on stderr).
fn pinned() -> Vec<PinnedStatus> {
    let root = std::path::Path::new(loader::pins::PIN_ROOT);
    let runs = loader::pins::runs(root).unwrap_or_else(|e| {
        eprintln!("enforcer: cannot list {}: {e}", root.display());
        Vec::new()
    });
    runs.into_iter()
        .map(|run| PinnedStatus {
            dir: run.dir.display().to_string(),
            run_id: run.run.map(|r| r.to_string()),
            pid: run.run.map(|r| r.pid),
            engine_running: run.alive,
            counters: run.counters(),
            links: run.links,
        })
        .collect()
}

/// Runs `enforcer status`.
pub(crate) fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let kernel = loader::tier::kernel_release();
    let Probe {
        tier,
        tier_reason,
        exec_hash,
        security_hooks,
        hooks_note,
    } = probe();
    let status = Status {
        kernel,
        tier: tier.map(KernelTier::name),
        tier_reason,
        exec_hash,
        security_hooks: hooks_note,
        self_protect: self_protection(tier),
        connection_abort: connection_abort(tier),
        coverage: tier
            .map(|tier| coverage(tier, security_hooks))
            .unwrap_or_default(),
        pinned: pinned(),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("kernel {}", status.kernel);
    println!(
        "tier   {} ({})",
        status.tier.unwrap_or("unknown"),
        status.tier_reason
    );
    println!("hash   {}", status.exec_hash);
    println!("hooks  {}", status.security_hooks);
    println!("self   {}", status.self_protect);
    println!("abort  {}", status.connection_abort);
    // The event column as wide as its longest name, so that the columns line up.
    let width = status
        .coverage
        .iter()
        .map(|c| c.event.len())
        .max()
        .unwrap_or(0);
    for c in &status.coverage {
        let seen = if c.seen { "seen" } else { "NOT SEEN" };
        println!(
            "  {:<width$} {:<9} stop={:<5} {} {}",
            c.event, seen, c.stop, c.hooks, c.note
        );
    }
    for p in &status.pinned {
        let state = if p.engine_running {
            "engine running"
        } else {
            "ENGINE GONE: its programs still enforce (`enforcer unpin` removes them)"
        };
        println!(
            "pinned {} run={} pid={} links={} {state}",
            p.dir,
            p.run_id.as_deref().unwrap_or("?"),
            p.pid.map_or_else(|| "?".to_owned(), |p| p.to_string()),
            p.links.len()
        );
    }
    if status.pinned.is_empty() {
        println!("pinned none");
    }
    Ok(ExitCode::SUCCESS)
}

/// Whether refused TCP connections can be aborted in `tier` (the probe destroys a loopback
/// listener of its own, as `enforcer run` does at start).
fn connection_abort(tier: Option<KernelTier>) -> String {
    match tier {
        Some(KernelTier::Lsm) => {
            "not needed: the lsm tier refuses a send before anything is queued".to_owned()
        }
        Some(_) => match enforcer::actions::abort::probe() {
            Ok(()) => "available (sock_diag SOCK_DESTROY): the connection of a TCP segment the egress hook refuses is aborted".to_owned(),
            Err(err) => format!(
                "unavailable: {err}; a refused TCP segment stays queued in its socket, and TCP tries it again until the connection times out"
            ),
        },
        None => "unknown".to_owned(),
    }
}

/// Whether `--self-protect` can run in `tier`.
fn self_protection(tier: Option<KernelTier>) -> String {
    match tier {
        Some(KernelTier::Lsm) => "available (enforcer run --self-protect)".to_owned(),
        Some(_) => "unavailable: --self-protect needs BPF LSM (the lsm tier)".to_owned(),
        None => "unknown".to_owned(),
    }
}

/// What probing the kernel found.
struct Probe {
    tier: Option<KernelTier>,
    tier_reason: String,
    exec_hash: String,
    /// Where file operations and kernel activity are watched.
    security_hooks: SecurityHooks,
    /// The same, said for people (with why not fentry, in the signal tier).
    hooks_note: String,
}

/// Loads the programs without attaching them to learn the tier, whether executables can be
/// hashed in the kernel, and whether the signal tier's fentry programs load.
fn probe() -> Probe {
    let unknown = |why: String| Probe {
        tier: None,
        tier_reason: why,
        exec_hash: "unknown".to_owned(),
        security_hooks: SecurityHooks::Tracepoints,
        hooks_note: "unknown".to_owned(),
    };
    if !nix::unistd::geteuid().is_root() {
        return unknown("probing the tier needs root".to_owned());
    }
    let btf = std::path::Path::new(enforcer::btf::VMLINUX_BTF_PATH);
    let mut offsets = match loader::offsets::from_btf_file(btf) {
        Ok(offsets) => offsets,
        Err(err) => return unknown(format!("kernel BTF unusable: {err}")),
    };
    match loader::load(true, &mut offsets) {
        Ok(loaded) => {
            let exec_hash = match &loaded.kernel_hash {
                Ok(()) => "in the kernel (bpf_ima_file_hash) when the policy lists SHA-256 values; userspace fallback for larger files".to_owned(),
                Err(why) => format!("userspace only, after the exec: {why}"),
            };
            let hooks_note = match (loaded.security_hooks, &loaded.trampolines) {
                (SecurityHooks::Lsm, _) => "BPF LSM programs: file operations and kernel activity refused in the kernel".to_owned(),
                (SecurityHooks::Fentry, _) => "fentry programs on the LSM hooks' security_* functions (BPF trampolines): resolved paths, no syscall tracepoint; a deny is a kill".to_owned(),
                (SecurityHooks::Tracepoints, Some(Err(why))) => format!("syscall tracepoints (paths as written; every system call takes the traced path): {why}"),
                (SecurityHooks::Tracepoints, _) => "syscall tracepoints".to_owned(),
            };
            Probe {
                tier: Some(loaded.tier),
                tier_reason: loaded.tier_reason,
                exec_hash,
                security_hooks: loaded.security_hooks,
                hooks_note,
            }
        }
        Err(err) => unknown(format!("the programs do not load: {err}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_tier_says_what_it_sees_and_stops() {
        let all = KernelSyscalls {
            modules: true,
            kexec: true,
        };
        let lsm = coverage_with(KernelTier::Lsm, SecurityHooks::Lsm, all);
        let signal = coverage_with(KernelTier::Signal, SecurityHooks::Tracepoints, all);
        let fentry = coverage_with(KernelTier::Signal, SecurityHooks::Fentry, all);
        assert_eq!(lsm.len(), signal.len());
        let stop = |t: &[Coverage], e: &str| t.iter().find(|c| c.event == e).map(|c| c.stop);
        assert_eq!(stop(&lsm, "exec"), Some("deny"));
        assert_eq!(stop(&signal, "exec"), Some("kill"));
        assert_eq!(stop(&lsm, "connect"), Some("deny"));
        assert_eq!(stop(&signal, "connect"), Some("deny"), "the cgroup hooks");
        assert_eq!(stop(&signal, "dns query"), Some("deny"), "the egress hook");
        assert_eq!(
            stop(&signal, "stratum payload"),
            Some("deny"),
            "the egress hook"
        );
        assert_eq!(stop(&lsm, "cpu usage"), Some("kill"));
        assert_eq!(stop(&lsm, "kernel: module load, unload"), Some("deny"));
        assert_eq!(stop(&signal, "kernel: ptrace attach"), Some("kill"));
        let bare = coverage_with(
            KernelTier::Signal,
            SecurityHooks::Tracepoints,
            KernelSyscalls {
                modules: false,
                kexec: false,
            },
        );
        let module = bare
            .iter()
            .find(|c| c.event == "kernel: module load, unload");
        assert!(module.is_some_and(|c| !c.seen), "said, not hidden");
        assert!(
            signal.iter().any(|c| !c.seen),
            "families not seen are listed"
        );
        for table in [&lsm, &signal, &fentry] {
            assert!(table.iter().all(|c| c.seen != c.hooks.is_empty()));
            // Every file operation is seen (issue 4): none is listed as not seen.
            assert!(
                table
                    .iter()
                    .filter(|c| c.event.starts_with("file"))
                    .all(|c| c.seen)
            );
        }
        assert_eq!(
            stop(
                &lsm,
                "file link/symlink, mkdir/rmdir, truncate, mount/umount"
            ),
            Some("deny")
        );
        assert_eq!(stop(&lsm, "file setxattr, utimes"), Some("kill"));
        // The fentry programs see what the LSM hooks see, and kill.
        assert_eq!(fentry.len(), lsm.len());
        let hooks =
            |t: &[Coverage], e: &str| t.iter().find(|c| c.event == e).map(|c| c.hooks.to_string());
        assert_eq!(
            hooks(&fentry, "file open for write (FIM)").as_deref(),
            Some("fentry/security_file_open")
        );
        assert_eq!(stop(&fentry, "file open for write (FIM)"), Some("kill"));
        assert_eq!(stop(&fentry, "kernel: bpf"), Some("kill"));
        assert_eq!(stop(&fentry, "exec"), Some("kill"));
        assert_eq!(
            stop(&fentry, "program mapped executable by ld.so"),
            Some("kill")
        );
        let ld_so = signal
            .iter()
            .find(|c| c.event == "program mapped executable by ld.so");
        assert!(
            ld_so.is_some_and(|c| !c.seen),
            "not seen at the tracepoints"
        );
        assert_eq!(stop(&fentry, "connect"), Some("deny"), "the cgroup hooks");
        assert!(fentry.iter().all(|c| !c.hooks.contains("lsm/")));
        assert_eq!(
            hooks(&fentry, "bind, accept").as_deref(),
            Some("fentry/security_socket_bind, fentry/security_sock_graft")
        );
        assert_eq!(stop(&fentry, "bind, accept"), Some("none"));
        assert!(
            fentry
                .iter()
                .filter(|c| c.event.starts_with("file") && c.event != "file setxattr, utimes")
                .all(|c| !c.hooks.contains("tp/syscalls"))
        );
    }
}
