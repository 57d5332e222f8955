//! Where the guest is stuck when an engine start is slow: the engine's kernel stacks
//! (`/proc/<pid>/task/*/stack`) and a backtrace of every CPU (SysRq `l`, read back from
//! `/dev/kmsg`), printed as `VMDIAG` lines. Under TCG a start normally takes 10-30 s; a start
//! that hangs (a kernel lockup while programs load or attach) is otherwise a bare timeout.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::time::Duration;

/// Most kernel-log records printed after the SysRq backtrace.
const KMSG_RECORDS: usize = 120;

/// Prints the diagnosis of a slow start of the engine `pid`, once per call.
pub(crate) fn slow_start(pid: u32, waited: Duration) {
    println!(
        "VMDIAG engine {pid} not started after {} s",
        waited.as_secs()
    );
    print_task_stacks(pid);
    print_cpu_backtraces();
}

fn print_task_stacks(pid: u32) {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        println!("VMDIAG engine {pid}: no /proc entry");
        return;
    };
    for task in tasks.flatten() {
        let tid = task.file_name().to_string_lossy().into_owned();
        let stack = std::fs::read_to_string(task.path().join("stack")).unwrap_or_default();
        let state = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        let state = state
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .next();
        println!("VMDIAG task {tid} state {}", state.unwrap_or("?"));
        for frame in stack.lines().take(24) {
            println!("VMDIAG task {tid}   {frame}");
        }
    }
}

/// SysRq `l` (backtrace of all active CPUs) and the kernel-log records it produced.
fn print_cpu_backtraces() {
    let kmsg = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg");
    let Ok(mut kmsg) = kmsg else {
        println!("VMDIAG cannot open /dev/kmsg");
        return;
    };
    let _ = kmsg.seek(SeekFrom::End(0));
    let triggered = File::options()
        .write(true)
        .open("/proc/sysrq-trigger")
        .and_then(|mut f| f.write_all(b"l"));
    if let Err(e) = triggered {
        println!("VMDIAG cannot trigger SysRq: {e}");
        return;
    }
    std::thread::sleep(Duration::from_secs(2));
    let mut record = vec![0u8; 4096];
    for _ in 0..KMSG_RECORDS {
        // One read returns one record; EAGAIN when none is left.
        match kmsg.read(&mut record) {
            Ok(n) if n > 0 => {
                let text = String::from_utf8_lossy(&record[..n]);
                let message = text.split_once(';').map_or(&*text, |(_, m)| m);
                println!("VMDIAG kmsg {}", message.lines().next().unwrap_or(""));
            }
            _ => break,
        }
    }
}
