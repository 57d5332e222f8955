//! Filling an `ExecRecord` from the per-CPU scratch keys, shared by the exec and mapping programs.

use aya_ebpf::helpers::{bpf_probe_read_user_buf, generated::bpf_get_current_comm};
use enforcer_common::{
    event::{
        ARGS_LEN, COMM_LEN, EXEC_ARGS_MISSING, EXEC_ARGS_TRUNCATED, EXEC_SHA256_KERNEL, EventKind,
        ExecRecord, Hook,
    },
    plan::SHA256_LEN,
};

use crate::{
    emit::{self, Verdict},
    kernel::ExecTarget,
    maps::Scratch,
};

/// Emits an exec record. `args` is the user-space argument block `(start, end)` of the current
/// task when it can be read (after the exec), `(0, 0)` otherwise. (Not an `Option`: LLVM reads
/// the payload of a `None` speculatively, which the 6.1 verifier rejects as an uninitialized
/// stack read.) `sha256` is the file's digest when the kernel hashed it (flagged
/// `EXEC_SHA256_KERNEL`), all zero otherwise.
#[inline(always)]
pub(crate) fn emit_exec(
    hook: Hook,
    scratch: &Scratch,
    target: &ExecTarget,
    ppid: u32,
    verdict: &Verdict,
    args: (u64, u64),
    sha256: Option<&[u8; SHA256_LEN]>,
) {
    let Some(mut entry) = emit::reserve::<ExecRecord>() else {
        return;
    };
    let rec = entry.as_mut_ptr();
    let mut flags = target.flags;
    // SAFETY: `rec` points at a reserved, writable ExecRecord-sized slot; every write below
    // stays inside it (fixed-size arrays, lengths clamped to their sizes).
    unsafe {
        (*rec).header = emit::header(
            EventKind::Exec,
            size_of::<ExecRecord>(),
            hook,
            ppid,
            verdict,
        );
        (*rec).name = scratch.name.0;
        (*rec).path = scratch.path.0;
        (*rec).file.ino = scratch.inode.ino;
        (*rec).file.ctime_sec = scratch.inode.ctime_sec;
        (*rec).file.ctime_nsec = scratch.inode.ctime_nsec;
        (*rec).file.dev = scratch.inode.dev;
        match sha256 {
            Some(digest) => {
                (*rec).sha256 = *digest;
                flags |= EXEC_SHA256_KERNEL;
            }
            None => (*rec).sha256 = [0; SHA256_LEN],
        }
        (*rec).name_len = target.name_len;
        (*rec).path_len = target.path_len;
        // Straight into the record (a copy through the stack leaves bytes the 6.1 verifier
        // sees as uninitialized); on failure the helper zeroes the buffer itself.
        bpf_get_current_comm((*rec).comm.as_mut_ptr().cast(), COMM_LEN as u32);
        let mut args_len = 0u32;
        let (start, end) = args;
        match end.checked_sub(start) {
            Some(span) if span > 0 => {
                let mut len = span as usize;
                if len > ARGS_LEN {
                    len = ARGS_LEN;
                    flags |= EXEC_ARGS_TRUNCATED;
                }
                let dst = &mut (*rec).args;
                // Checked again after a trip through the stack: LLVM otherwise folds the check
                // into the clamp above, spills the unclamped span and reloads it for the call,
                // and 6.1 does not carry a register's bound to its spilled copy.
                let len = core::hint::black_box(len);
                if len > 0
                    && len <= ARGS_LEN
                    && bpf_probe_read_user_buf(start as *const u8, &mut dst[..len]).is_ok()
                {
                    args_len = len as u32;
                } else {
                    flags |= EXEC_ARGS_MISSING;
                }
            }
            _ => flags |= EXEC_ARGS_MISSING,
        }
        (*rec).args_len = args_len;
        (*rec).flags = flags;
    }
    entry.submit(0);
}
