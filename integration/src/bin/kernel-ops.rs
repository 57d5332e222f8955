//! Test fixture: makes one kernel-activity system call (or a short sequence of one family)
//! so the engine's kernel-activity records can be checked, and prints one JSON line with what
//! happened: `{"op": ..., "pid": <the calling process>, "target": <other pid or 0>,
//! "errno": <0 or the failure>}`. Calls that need a separate process (credential changes,
//! unshare, ptrace targets) run in a forked child whose pid is `pid`.
//!
//! Usage: `kernel-ops OP [ARG]` with OP one of `finit-module PATH [PARAMS]` (PARAMS default
//! `allow_writes=on`, what catalog F7's `modprobe msr allow_writes=on` passes), `init-module`
//! (a bogus 64-byte image), `init-module-file PATH [PARAMS]` (the file's image, from memory),
//! `delete-module NAME`, `bpf-map NAME`, `bpf-prog NAME`, `ptrace-attach`, `ptrace-seize`,
//! `traceme`, `vm-writev`, `proc-mem` (open of a child's `/proc/PID/mem` for writing: the
//! kernel's ptrace access check from `openat`), `kexec-load`, `kexec-file-load PATH`, `creds`, `capset`,
//! `unshare-uts`, `setns-uts`, `memfd-exec NAME`, `setuid-storm N` (prints ns per call).
#![allow(clippy::cast_possible_truncation)]

use std::{ffi::CString, process::ExitCode};

/// `errno` of the last failed call, 0 after a success.
fn errno_of(ret: libc::c_long) -> i32 {
    if ret < 0 {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(-1)
    } else {
        0
    }
}

fn report(op: &str, pid: i32, target: i32, errno: i32) {
    println!("{{\"op\":\"{op}\",\"pid\":{pid},\"target\":{target},\"errno\":{errno}}}");
}

/// Runs `body` in a forked child (which exits with 0) and returns the child's pid once it
/// has exited; `body` returns the errno to exit with.
fn in_child(body: impl FnOnce() -> i32) -> (i32, i32) {
    // SAFETY: fork in a single-threaded fixture; the child only makes system calls and exits.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let code = body();
        // SAFETY: _exit never returns and runs no destructors in the child.
        unsafe { libc::_exit(code & 0xff) };
    }
    let mut status = 0;
    // SAFETY: waits for our own child; `status` is a valid out pointer.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -libc::WTERMSIG(status)
    };
    (pid, code)
}

/// A child that sleeps until killed: a ptrace target. The parent waits until the child has
/// asked for SIGKILL on the parent's death and dropped every inherited descriptor: a tracer
/// the engine kills right after fork (before the child's `prctl`) must not leave a stopped
/// orphan holding the test's output pipe (a hung `cargo test | tee`, seen in CI).
fn sleeper() -> i32 {
    let mut ready = [0i32; 2];
    // SAFETY: pipe2 writes two descriptors into the 2-element array.
    if unsafe { libc::pipe2(ready.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return -1;
    }
    // SAFETY: as in `in_child`.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: prctl, open, dup2, write and close_range on this process's own descriptors;
        // pause only waits for a signal.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            for fd in 0..3 {
                libc::dup2(null, fd);
            }
            libc::write(ready[1], [1u8].as_ptr().cast(), 1);
            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
            loop {
                libc::pause();
            }
        }
    }
    let mut byte = 0u8;
    // SAFETY: closes our copy of the write end, then reads one byte (or EOF if the child
    // died) from the read end, which we close after.
    unsafe {
        libc::close(ready[1]);
        libc::read(ready[0], (&mut byte as *mut u8).cast(), 1);
        libc::close(ready[0]);
    }
    pid
}

fn reap(pid: i32) {
    // SAFETY: signals and waits for our own child.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    }
}

fn cstring(s: &str) -> CString {
    CString::new(s).unwrap_or_default()
}

/// `init_module` of `image` with `params`: 0 or the errno.
fn init_module(image: &[u8], params: &str) -> i32 {
    let params = cstring(params);
    // SAFETY: `image.len()` readable bytes and a NUL-terminated string.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_init_module,
            image.as_ptr(),
            image.len(),
            params.as_ptr(),
        )
    };
    errno_of(ret)
}

fn open_path(path: &str) -> i32 {
    let c = cstring(path);
    // SAFETY: a NUL-terminated path and flags.
    unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) }
}

/// `bpf(cmd, attr, size)` with a zeroed 128-byte attribute block `fill` writes into.
fn bpf(cmd: libc::c_long, fill: impl FnOnce(&mut [u8; 128])) -> i32 {
    let mut attr = [0u8; 128];
    fill(&mut attr);
    // SAFETY: the attribute block is 128 readable bytes and its size is passed.
    let ret = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_ptr(), attr.len()) };
    let errno = errno_of(ret);
    if ret >= 0 {
        // SAFETY: closes the descriptor bpf returned.
        unsafe { libc::close(ret as i32) };
    }
    errno
}

fn put_u32(attr: &mut [u8; 128], at: usize, v: u32) {
    attr[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put_u64(attr: &mut [u8; 128], at: usize, v: u64) {
    attr[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn put_name(attr: &mut [u8; 128], at: usize, name: &str) {
    let bytes = name.as_bytes();
    let n = bytes.len().min(15);
    attr[at..at + n].copy_from_slice(&bytes[..n]);
}

fn ptrace_attach(request: libc::c_uint) -> (i32, i32) {
    let target = sleeper();
    // SAFETY: ptrace on our own child; null addr/data as the request allows.
    let ret = unsafe { libc::ptrace(request, target, 0usize, 0usize) };
    let errno = errno_of(ret);
    reap(target);
    (target, errno)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let op = args.first().map_or("", String::as_str);
    let arg = args.get(1).map_or("", String::as_str);
    let me = std::process::id() as i32;
    match op {
        "finit-module" => {
            let fd = open_path(arg);
            let params = cstring(args.get(2).map_or("allow_writes=on", String::as_str));
            // SAFETY: a descriptor, a NUL-terminated parameter string and flags.
            let ret = unsafe { libc::syscall(libc::SYS_finit_module, fd, params.as_ptr(), 0) };
            report(op, me, 0, errno_of(ret));
        }
        "init-module" => report(op, me, 0, init_module(&[0u8; 64], "kernel_ops=1")),
        "init-module-file" => {
            let errno = match std::fs::read(arg) {
                Ok(image) => init_module(
                    &image,
                    args.get(2).map_or("allow_writes=on", String::as_str),
                ),
                Err(err) => err.raw_os_error().unwrap_or(-1),
            };
            report(op, me, 0, errno);
        }
        "delete-module" => {
            let name = cstring(arg);
            // SAFETY: a NUL-terminated name and O_NONBLOCK.
            let ret =
                unsafe { libc::syscall(libc::SYS_delete_module, name.as_ptr(), libc::O_NONBLOCK) };
            report(op, me, 0, errno_of(ret));
        }
        "bpf-map" => {
            // BPF_MAP_CREATE of a one-entry array: map_type 2, key 4, value 4, max 1, name.
            let errno = bpf(0, |a| {
                put_u32(a, 0, 2);
                put_u32(a, 4, 4);
                put_u32(a, 8, 4);
                put_u32(a, 12, 1);
                put_name(a, 28, arg);
            });
            report(op, me, 0, errno);
        }
        "bpf-prog" => {
            // BPF_PROG_LOAD of a socket filter `r0 = 0; exit`.
            let insns: [u64; 2] = [0x0000_0000_0000_00b7, 0x0000_0000_0000_0095];
            let license = cstring("GPL");
            let errno = bpf(5, |a| {
                put_u32(a, 0, 1);
                put_u32(a, 4, 2);
                put_u64(a, 8, insns.as_ptr() as u64);
                put_u64(a, 16, license.as_ptr() as u64);
                put_name(a, 48, arg);
            });
            report(op, me, 0, errno);
        }
        "ptrace-attach" => {
            let (target, errno) = ptrace_attach(libc::PTRACE_ATTACH);
            report(op, me, target, errno);
        }
        "ptrace-seize" => {
            let (target, errno) = ptrace_attach(libc::PTRACE_SEIZE);
            report(op, me, target, errno);
        }
        "traceme" => {
            let (pid, errno) = in_child(|| {
                // SAFETY: PTRACE_TRACEME takes no other argument.
                let ret = unsafe { libc::ptrace(libc::PTRACE_TRACEME, 0, 0usize, 0usize) };
                errno_of(ret)
            });
            report(op, pid, me, errno);
        }
        "vm-writev" => {
            static mut SLOT: u64 = 0;
            let target = sleeper();
            let value: u64 = 7;
            let local = libc::iovec {
                iov_base: (&raw const value).cast_mut().cast(),
                iov_len: 8,
            };
            let remote = libc::iovec {
                iov_base: (&raw mut SLOT).cast(),
                iov_len: 8,
            };
            // SAFETY: one iovec each side; the remote address is the forked child's copy of
            // SLOT, valid there; the kernel checks both.
            let ret = unsafe { libc::process_vm_writev(target, &local, 1, &remote, 1, 0) };
            let errno = errno_of(ret as libc::c_long);
            reap(target);
            report(op, me, target, errno);
        }
        "proc-mem" => {
            let target = sleeper();
            let path = cstring(&format!("/proc/{target}/mem"));
            // SAFETY: a NUL-terminated path and flags; the descriptor is closed at once.
            let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
            let errno = errno_of(libc::c_long::from(fd));
            if fd >= 0 {
                // SAFETY: our own descriptor.
                unsafe { libc::close(fd) };
            }
            reap(target);
            report(op, me, target, errno);
        }
        "kexec-load" => {
            // SAFETY: no segments; the kernel refuses the call before reading anything.
            let ret =
                unsafe { libc::syscall(libc::SYS_kexec_load, 0usize, 0usize, 0usize, 0usize) };
            report(op, me, 0, errno_of(ret));
        }
        "kexec-file-load" => {
            let fd = open_path(arg);
            let cmdline = cstring("");
            // SAFETY: a descriptor, no initrd (KEXEC_FILE_NO_INITRAMFS = 4), an empty command
            // line of length 1 (its NUL).
            let ret =
                unsafe { libc::syscall(libc::SYS_kexec_file_load, fd, -1, 1, cmdline.as_ptr(), 4) };
            report(op, me, 0, errno_of(ret));
        }
        "creds" => {
            // In a child: group changes first (they need the privilege the user changes drop).
            let (pid, errno) = in_child(|| {
                // SAFETY: credential changes of this child only (setfs*id return the old id,
                // not an error).
                unsafe {
                    let mut worst = 0;
                    for ret in [
                        libc::setgid(65534),
                        libc::setregid(u32::MAX, 65534),
                        libc::setresgid(65534, 65534, 65534),
                    ] {
                        worst = worst.max(errno_of(libc::c_long::from(ret)));
                    }
                    libc::setfsgid(65534);
                    libc::setfsuid(0);
                    for ret in [
                        libc::setreuid(u32::MAX, 0),
                        libc::setresuid(u32::MAX, 65534, u32::MAX),
                        libc::setuid(0),
                    ] {
                        worst = worst.max(errno_of(libc::c_long::from(ret)));
                    }
                    worst
                }
            });
            report(op, pid, 0, errno);
        }
        "capset" => {
            let (pid, errno) = in_child(|| {
                // _LINUX_CAPABILITY_VERSION_3, this process.
                let mut header = [0x2008_0522u32, 0];
                let mut data = [0u32; 6];
                // SAFETY: a v3 header and two data structs (24 bytes), as capget expects.
                let got = unsafe {
                    libc::syscall(libc::SYS_capget, header.as_mut_ptr(), data.as_mut_ptr())
                };
                if got != 0 {
                    return errno_of(got);
                }
                // Drop CAP_NET_RAW (13) from the effective set.
                data[0] &= !(1 << 13);
                header[1] = 0;
                // SAFETY: as above, for capset.
                let ret =
                    unsafe { libc::syscall(libc::SYS_capset, header.as_ptr(), data.as_ptr()) };
                errno_of(ret)
            });
            report(op, pid, 0, errno);
        }
        "unshare-uts" => {
            let (pid, errno) = in_child(|| {
                // SAFETY: a new UTS namespace for this child only.
                errno_of(libc::c_long::from(unsafe {
                    libc::unshare(libc::CLONE_NEWUTS)
                }))
            });
            report(op, pid, 0, errno);
        }
        "setns-uts" => {
            let fd = open_path("/proc/self/ns/uts");
            // SAFETY: re-enters the UTS namespace the process is already in.
            let ret = unsafe { libc::setns(fd, libc::CLONE_NEWUTS) };
            report(op, me, 0, errno_of(libc::c_long::from(ret)));
        }
        "memfd-exec" => {
            let name = cstring(arg);
            // SAFETY: a NUL-terminated name, no flags (the fd survives exec).
            let fd = unsafe { libc::memfd_create(name.as_ptr(), 0) };
            if fd < 0 {
                report(op, me, 0, errno_of(-1));
                return ExitCode::FAILURE;
            }
            let bytes = std::fs::read("/bin/true").unwrap_or_default();
            // SAFETY: writes the bytes we hold into our memfd.
            let written = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
            if written < 0 || written as usize != bytes.len() {
                report(op, me, 0, errno_of(-1));
                return ExitCode::FAILURE;
            }
            let path = cstring(&format!("/proc/self/fd/{fd}"));
            let (pid, errno) = in_child(|| {
                let argv = [path.as_ptr(), std::ptr::null()];
                let envp = [std::ptr::null()];
                // SAFETY: a NUL-terminated path, argv and envp arrays ending in null.
                unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
                errno_of(-1)
            });
            report(op, me, pid, errno);
        }
        "setuid-storm" => {
            // N no-op setresuid(-1, -1, -1) calls: the cost the kernel-activity tracepoint adds
            // to a busy host's credential calls. Prints nanoseconds per call as `target`.
            let n: u32 = arg.parse().unwrap_or(1_000_000);
            let start = std::time::Instant::now();
            for _ in 0..n {
                // SAFETY: changes nothing (every id -1).
                unsafe { libc::setresuid(u32::MAX, u32::MAX, u32::MAX) };
            }
            let per_call = start.elapsed().as_nanos() / u128::from(n.max(1));
            report(op, me, i32::try_from(per_call).unwrap_or(i32::MAX), 0);
        }
        _ => {
            eprintln!("usage: kernel-ops OP [ARG] (see the source)");
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}
