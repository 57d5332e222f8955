//! Filling an `ExecRecord` from the per-CPU scratch keys, shared by the exec and mapping programs.

use core::ptr::write_volatile;

use aya_ebpf::helpers::{
    bpf_get_current_uid_gid, bpf_probe_read_kernel_buf, bpf_probe_read_user_buf,
    generated::bpf_get_current_comm,
};
use enforcer_common::{
    event::{
        ARGS_LEN, COMM_LEN, ENV_LEN, EXEC_ARGS_MISSING, EXEC_ARGS_TRUNCATED, EXEC_CREDS, EXEC_CWD,
        EXEC_CWD_TRUNCATED, EXEC_DELETED, EXEC_ENV_MISSING, EXEC_ENV_TRUNCATED, EventKind,
        ExecRecord, Hook,
    },
    file::FILE_PATH_TRUNCATED,
};

use crate::{
    emit::{self, Verdict},
    file::{self, Slot},
    kernel::{self, ExecTarget},
    maps::Scratch,
    mem,
    typed::Typed,
};

// `ExecRecord::sha256` sits on an 8-byte boundary, as `mem::zero_bytes` needs.
const _: () = assert!(core::mem::offset_of!(ExecRecord, sha256).is_multiple_of(8));

/// What only the record of a successful exec carries (read after the exec, in the new image's
/// context): credentials, interpreter, unlinked flag, and the environment block when a rule
/// reads it (`(0, 0)` otherwise). The working directory comes with it when the program called
/// [`build_cwd`] first.
pub(crate) struct ExecExtra {
    pub(crate) task: *const u8,
    pub(crate) bprm: *const u8,
    /// The executable's `struct inode *` (null when it could not be read).
    pub(crate) inode: *const u8,
    pub(crate) env: (u64, u64),
}

/// Emits an exec record. `args` is the user-space argument block `(start, end)` of the current
/// task when it can be read (after the exec), `(0, 0)` otherwise. (Not an `Option`: LLVM reads
/// the payload of a `None` speculatively, which the 6.1 verifier rejects as an uninitialized
/// stack read.) `extra` is what only the record of a successful exec carries.
#[inline(always)]
pub(crate) fn emit_exec(
    hook: Hook,
    scratch: &Scratch,
    target: &ExecTarget,
    ppid: u32,
    verdict: &Verdict,
    args: (u64, u64),
    extra: Option<&ExecExtra>,
) {
    let Some(mut entry) = emit::reserve::<ExecRecord>() else {
        return;
    };
    let rec = entry.as_mut_ptr();
    let mut flags = target.flags;
    // SAFETY: `rec` points at a reserved, writable ExecRecord-sized slot; every write below
    // stays inside it (fixed-size arrays, lengths clamped to their sizes).
    unsafe {
        // Helper copies, not assignments: LLVM turns a 64- or 256-byte array assignment into
        // a call to `memcpy` (a BPF subprogram with a byte loop) once the object has enough
        // copies, and 6.1 then verifies that loop once per state of the ring-buffer reference
        // until it gives up (E2BIG). Only the valid bytes and their NUL are copied.
        copy_prefix(scratch.name.0.as_ptr(), &mut (*rec).name, target.name_len);
        copy_prefix(scratch.path.0.as_ptr(), &mut (*rec).path, target.path_len);
        (*rec).file.ino = scratch.inode.ino;
        (*rec).file.ctime_sec = scratch.inode.ctime_sec;
        (*rec).file.ctime_nsec = scratch.inode.ctime_nsec;
        (*rec).file.dev = scratch.inode.dev;
        // Hashed in the kernel only by bprm_creds_from_file, which writes its own record.
        // (8-byte aligned: ring-buffer records are, and the field is: asserted at the top.)
        mem::zero_bytes(&raw mut (*rec).sha256);
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
        // Volatile: LLVM merges adjacent zero stores into a `memset` call (see mem.rs).
        write_volatile(&raw mut (*rec).euid, 0);
        write_volatile(&raw mut (*rec).interp_len, 0);
        write_volatile(&raw mut (*rec).cap_effective, 0);
        write_volatile(&raw mut (*rec).cap_permitted, 0);
        write_volatile(&raw mut (*rec).env_len, 0);
        write_volatile(&raw mut (*rec).cwd_len, 0);
        let uid_gid = match extra {
            Some(extra) => {
                let (extra_flags, uid_gid) = fill_extra(rec, extra);
                flags |= extra_flags;
                uid_gid
            }
            None => {
                flags |= EXEC_ENV_MISSING;
                bpf_get_current_uid_gid()
            }
        };
        (*rec).flags = flags;
        (*rec).header = emit::header_with_ids(
            EventKind::Exec,
            size_of::<ExecRecord>(),
            hook,
            ppid,
            verdict,
            uid_gid,
        );
    }
    entry.submit(emit::event_flags());
}

/// Copies the `len` valid bytes of the string at `src` (a scratch buffer) and its NUL into
/// `dst`, at most `N` bytes: the record's bytes past them are never read (the daemon reads the
/// lengths), and a helper copy of a whole 256-byte buffer cost about 250 guest instructions.
/// On a failed read the helper zeroes what it was given.
///
/// # Safety
/// `src` must be readable kernel memory of at least `N` bytes.
#[inline(always)]
unsafe fn copy_prefix<const N: usize>(src: *const u8, dst: &mut [u8; N], len: u32) {
    let n = (len as usize + 1).min(N);
    // Checked again after a trip through the stack (see the argv read in `emit_exec`).
    let n = core::hint::black_box(n);
    if n > 0 && n <= N {
        // SAFETY: the caller guarantees `src`; `dst[..n]` is inside the record.
        let _ = unsafe { bpf_probe_read_kernel_buf(src, &mut dst[..n]) };
    }
}

/// Builds the current task's working directory (`current->fs->pwd`) in `FILE_SCRATCH`'s
/// path with the file hooks' path walk, for [`fill_cwd`]: its length in the record's
/// `path_len` (0 when it could not be read), `FILE_PATH_TRUNCATED` in its flags for a cut
/// path. The result stays in map memory, and the exec program calls this first: the 6.1
/// verifier walks the loop once per state that reaches it (a million instructions when it ran
/// after the plan look-ups, inside the record).
///
/// The daemon reads `/proc/<pid>/cwd` only when this is missing or cut: that read, at the rate
/// of execs, cost the exec storm's processes more than this walk (the kernel flushes the
/// `/proc` entries the daemon instantiated when each process exits).
#[inline(always)]
pub(crate) fn build_cwd() {
    let Some(s) = file::scratch() else {
        return;
    };
    s.record.flags = 0;
    // SAFETY: a field of the scratch slot (volatile: read back by `fill_cwd`).
    unsafe { core::ptr::write_volatile(&mut s.record.path_len, 0) };
    let Ok((mnt, dentry)) = kernel::current_pwd() else {
        return;
    };
    if file::build_dentry_path::<Typed>(s, Slot::Path, mnt, dentry).is_err() {
        // SAFETY: as above.
        unsafe { core::ptr::write_volatile(&mut s.record.path_len, 0) };
    }
}

/// Copies the working directory [`build_cwd`] left in `FILE_SCRATCH` into `rec.cwd`;
/// returns the `EXEC_CWD*` flags to set (0 without one).
///
/// # Safety
/// `rec` must point at a reserved, writable `ExecRecord`.
#[inline(always)]
unsafe fn fill_cwd(rec: *mut ExecRecord) -> u32 {
    let Some(s) = file::scratch() else {
        return 0;
    };
    // SAFETY: fields of the scratch slot, written by `build_cwd` (volatile: map memory).
    let (len, file_flags) = unsafe {
        (
            core::ptr::read_volatile(&s.record.path_len),
            core::ptr::read_volatile(&s.record.flags),
        )
    };
    if len == 0 {
        return 0;
    }
    // SAFETY: the caller guarantees `rec`; the copy stays inside its `cwd` array.
    unsafe {
        copy_prefix(s.record.path.as_ptr(), &mut (*rec).cwd, len);
        (*rec).cwd_len = len;
    }
    if file_flags & FILE_PATH_TRUNCATED != 0 {
        EXEC_CWD | EXEC_CWD_TRUNCATED
    } else {
        EXEC_CWD
    }
}

/// Writes the [`ExecExtra`] fields into `rec`; returns the `EXEC_*` flags they give and the
/// task's uid and gid for the header (from the credentials read here, or the helper when
/// they could not be read).
///
/// # Safety
/// `rec` must point at a reserved, writable `ExecRecord`.
#[inline(always)]
unsafe fn fill_extra(rec: *mut ExecRecord, extra: &ExecExtra) -> (u32, u64) {
    let mut flags = 0;
    let mut uid_gid = None;
    // SAFETY: the caller guarantees `rec`; the writes stay inside it (fixed arrays, lengths
    // clamped to their sizes).
    unsafe {
        if let Ok(creds) = kernel::creds(extra.task) {
            uid_gid = Some(u64::from(creds.uid) | (u64::from(creds.gid) << 32));
            (*rec).euid = creds.euid;
            (*rec).cap_effective = creds.cap_effective;
            (*rec).cap_permitted = creds.cap_permitted;
            flags |= EXEC_CREDS;
        }
        if let Ok(len) = kernel::read_interp(extra.bprm, &mut (*rec).interp) {
            (*rec).interp_len = len;
        }
        if matches!(kernel::inode_unlinked(extra.inode), Ok(true)) {
            flags |= EXEC_DELETED;
        }
        flags |= fill_cwd(rec);
        let (start, end) = extra.env;
        match end.checked_sub(start) {
            Some(span) if span > 0 => {
                let mut len = span as usize;
                if len > ENV_LEN {
                    len = ENV_LEN;
                    flags |= EXEC_ENV_TRUNCATED;
                }
                let dst = &mut (*rec).env;
                // Checked again after a trip through the stack (see the argv read above).
                let len = core::hint::black_box(len);
                if len > 0
                    && len <= ENV_LEN
                    && bpf_probe_read_user_buf(start as *const u8, &mut dst[..len]).is_ok()
                {
                    (*rec).env_len = len as u32;
                } else {
                    flags |= EXEC_ENV_MISSING;
                }
            }
            _ => flags |= EXEC_ENV_MISSING,
        }
    }
    (flags, uid_gid.unwrap_or_else(bpf_get_current_uid_gid))
}
