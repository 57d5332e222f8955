//! Kernel programs of the enforcement engine, one file per hook under `hooks/`.
//!
//! | program | attach point | tier | job |
//! |---|---|---|---|
//! | `lsm_bprm_check_security` | LSM `bprm_check_security` | lsm | deny (and optionally kill) an exec the plan names |
//! | `tp_sched_process_exec` | raw tracepoint `sched_process_exec` | all | exec record with argv; SIGKILL in the signal tier; SIGKILL for a listed `scheme://` in the arguments (argument plan, `args.rs`) in every tier |
//! | `tp_sched_process_fork`, `tp_sched_process_exit` | raw tracepoints `sched_process_{fork,exit}` | all | process lifecycle records (new processes, last-thread exits) for the process cache |
//! | `cgroup_skb_egress` | `cgroup_skb/egress` on the cgroup v2 root | signal, monitor | classify every packet a local socket sends (`egress.rs`): DNS query or JSON-RPC method; drop it for deny/kill rules (the daemon kills the socket's owner) |
//! | `cgroup_sendmsg4`, `cgroup_sendmsg6` | `cgroup/sendmsg4,6` on the cgroup v2 root | signal, monitor | note the sender of an unconnected UDP datagram as its socket's owner (`socket_state.rs`) |
//! | `tp_sys_enter_send` | tracepoints `syscalls/sys_enter_{write,sendto,sendmsg,sendmmsg,writev}` (one program, five attachments) | signal, monitor without cgroup v2 (the egress program's fallback) | classify a socket send (`send.rs`): DNS query (question name) or JSON-RPC method; SIGKILL for deny/kill rules |
//! | `lsm_socket_sendmsg` | LSM `socket_sendmsg` | lsm | classify every socket send from the kernel's copy of the message (`send.rs`); deny stratum logins and pool look-ups |
//! | `cgroup_connect4`, `cgroup_connect6` | `cgroup/connect4,6` on the cgroup v2 root | signal, monitor | connect records, pool-address match (refused with EPERM); note the socket's owner |
//! | `tp_sys_enter_connect` | tracepoint `syscalls/sys_enter_connect` | signal, monitor without cgroup v2 (the cgroup hooks' fallback) | connect records and pool-address match; SIGKILL in the signal tier |
//! | `lsm_socket_connect` | LSM `socket_connect` | lsm | connect records; deny connects to pool addresses |
//! | `tp_sys_exit_open` | tracepoints `syscalls/sys_exit_{open,openat,openat2,creat}` | signal, monitor | write opens of watched paths; SIGKILL for deny/kill rules |
//! | `tp_sys_enter_path` | tracepoints `syscalls/sys_enter_*` of the path syscalls (unlink, rename, chmod, chown, link, symlink, mkdir, rmdir, setxattr, utimes, truncate, mount, umount families and fchmod/fchown) | signal, monitor; lsm (setxattr, utimes only) | path operations on watched paths; SIGKILL for deny/kill rules |
//! | `lsm_file_open`, `lsm_path_{unlink,rename,chmod,chown,link,symlink,mkdir,rmdir,truncate}`, `lsm_file_truncate`, `lsm_sb_mount`, `lsm_move_mount`, `lsm_sb_umount` | LSM hooks of the same names (`file_truncate`, `move_mount` optional) | lsm | file events on watched paths; -EPERM for deny rules |
//! | `lsm_bprm_creds_from_file` | sleepable LSM `bprm_creds_from_file` | lsm (optional) | SHA-256 of first-seen executables in the kernel (`bpf_ima_file_hash`), deny on a hash-plan match; verdicts cached by file identity |
//! | `lsm_mmap_file_hash` | sleepable LSM `mmap_file` | lsm (optional, with `lsm_bprm_creds_from_file`) | SHA-256 of a file mapped executable with no cached verdict (a renamed miner run through ld.so), deny on a hash-plan match |
//! | `lsm_mmap_file`, `lsm_file_mprotect` | LSM `mmap_file`, `file_mprotect` | lsm | a file mapped executable (a program run through ld.so) checked against the exec name and identity plans |
//! | `tp_sys_enter_kernel` | tracepoints `syscalls/sys_enter_*` of the kernel-activity syscalls (module, bpf, ptrace, kexec, set*id, capset, unshare, setns, memfd_create; one program) | all (lsm: only those no LSM hook reports) | kernel-activity records when a rule is about the operation; SIGKILL for a `kernel.op` deny/kill rule outside the LSM hooks |
//! | `lsm_guard_task_kill`, `lsm_guard_ptrace`, `lsm_guard_path_{unlink,rmdir,rename}`, `lsm_guard_sb_umount`, `lsm_guard_bpf_map` | LSM `task_kill`, `ptrace_access_check`, `path_{unlink,rmdir,rename}`, `sb_umount`, `bpf_map` | lsm, with `--self-protect` (`hooks/self_guard.rs`) | refuse other processes the signals, ptrace, pin removal, unmount and map writes that would stop the engine or its enforcement |
//! | `lsm_kernel_read_file`, `lsm_kernel_load_data`, `lsm_ptrace_access_check`, `lsm_ptrace_traceme`, `lsm_bpf` | LSM hooks of the same names | lsm | report module loads, kexec, ptrace attaches and `bpf` calls a rule is about, from the caller's registers (x86_64: their tracepoints are then not attached); deny those a `kernel.op` rule refuses |
//!
//! Maps are in `maps.rs`, record emission in `emit.rs`, zeroing without `memset` in `mem.rs`, struct reads through load-time offsets in
//! `kernel.rs`, file paths and the watch plan in `file.rs`, the plan look-up and verdict logic in `plan.rs`, payload classification in
//! `classify.rs`, syscall tracepoint records in `syscall_record.rs`, DNS name parsing and look-up in `dns.rs`, socket addresses and the connect
//! plan in `net.rs`, IP and transport headers of the cgroup skb programs in `packet.rs`.
#![no_std]
#![no_main]
// Casts here split helper-packed u64 halves (pid/tgid, uid/gid) or narrow lengths already
// clamped to fixed buffers (<= 512 bytes); checked conversions would only add verifier paths.
#![allow(clippy::cast_possible_truncation)]

mod args;
mod classify;
mod dns;
mod emit;
mod file;
mod hooks;
mod kernel;
mod maps;
mod mem;
mod net;
mod packet;
mod plan;
mod syscall_record;
mod typed;
mod user_regs;

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    // The verifier rejects any program that could reach this; the loop satisfies the type.
    loop {}
}
