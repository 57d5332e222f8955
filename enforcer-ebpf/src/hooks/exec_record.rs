//! Filling an `ExecRecord` from the per-CPU scratch keys, shared by both exec programs.

use aya_ebpf::helpers::{bpf_get_current_comm, bpf_probe_read_user_buf};
use enforcer_common::event::{
    ARGS_LEN, EXEC_ARGS_MISSING, EXEC_ARGS_TRUNCATED, EventKind, ExecRecord, Hook,
};

use crate::{
    emit::{self, Verdict},
    kernel::ExecTarget,
    maps::Scratch,
};

/// Emits an exec record. `args` is the user-space argument block of the current task when it
/// can be read (after the exec), `None` otherwise.
#[inline(always)]
pub(crate) fn emit_exec(
    hook: Hook,
    scratch: &Scratch,
    target: &ExecTarget,
    ppid: u32,
    verdict: &Verdict,
    args: Option<(u64, u64)>,
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
        (*rec).name_len = target.name_len;
        (*rec).path_len = target.path_len;
        (*rec).comm = bpf_get_current_comm().unwrap_or([0; 16]);
        let mut args_len = 0u32;
        match args {
            Some((start, end)) if end > start => {
                let mut len = (end - start) as usize;
                if len > ARGS_LEN {
                    len = ARGS_LEN;
                    flags |= EXEC_ARGS_TRUNCATED;
                }
                let dst = &mut (*rec).args;
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
