//! Builds the programs' `KernelOffsets` from the running kernel's BTF, so one build runs on
//! every kernel (6.1, 6.12, the 6.18 host) without hard-coded struct offsets.

use std::path::Path;

use enforcer_common::offsets::{KernelOffsets, LAYOUT_GROUPS, LAYOUT_REQUIRED};

use crate::btf::{Btf, BtfError};

/// Declares, once, which kernel member each `KernelOffsets` field stands for: generates
/// [`MEMBERS`] and [`from_btf`] from the same table.
macro_rules! offset_table {
    ($($field:ident => ($strukt:literal, $member:literal)),* $(,)?) => {
        /// The member each offset stands for, as (struct, dotted member path).
        pub const MEMBERS: &[(&str, &str)] = &[$(($strukt, $member)),*];

        /// Reads the struct offsets from parsed BTF, and the `layout` bits they allow. The
        /// tracepoint layout (`tp_*`) is left 0 for the loader to fill from tracefs.
        pub fn from_btf(btf: &Btf) -> Result<KernelOffsets, BtfError> {
            let (inode_ctime_sec, inode_ctime_nsec) = inode_ctime(btf)?;
            let (iter_type_ubuf, iter_type_iovec) = iter_types(btf)?;
            let mut offsets = KernelOffsets {
                $($field: btf.member_offset($strukt, $member)?,)*
                inode_ctime_sec,
                inode_ctime_nsec,
                iter_type_ubuf,
                iter_type_iovec,
                ..KernelOffsets::ZERO
            };
            offsets.layout = offsets.layout_bits();
            check_layout(offsets.layout)?;
            Ok(offsets)
        }
    };
}

offset_table! {
    binprm_file => ("linux_binprm", "file"),
    binprm_filename => ("linux_binprm", "filename"),
    file_dentry => ("file", "f_path.dentry"),
    dentry_name => ("dentry", "d_name.name"),
    dentry_name_len => ("dentry", "d_name.len"),
    task_real_parent => ("task_struct", "real_parent"),
    task_tgid => ("task_struct", "tgid"),
    task_mm => ("task_struct", "mm"),
    mm_arg_start => ("mm_struct", "arg_start"),
    mm_arg_end => ("mm_struct", "arg_end"),
    task_files => ("task_struct", "files"),
    files_fdt => ("files_struct", "fdt"),
    fdtable_max_fds => ("fdtable", "max_fds"),
    fdtable_fd => ("fdtable", "fd"),
    file_inode => ("file", "f_inode"),
    inode_mode => ("inode", "i_mode"),
    file_private_data => ("file", "private_data"),
    socket_type => ("socket", "type"),
    socket_sk => ("socket", "sk"),
    skc_family => ("sock_common", "skc_family"),
    skc_dport => ("sock_common", "skc_dport"),
    skc_daddr => ("sock_common", "skc_daddr"),
    skc_v6_daddr => ("sock_common", "skc_v6_daddr"),
    skc_num => ("sock_common", "skc_num"),
    task_pid => ("task_struct", "pid"),
    task_start_boottime => ("task_struct", "start_boottime"),
    task_exit_code => ("task_struct", "exit_code"),
    task_signal => ("task_struct", "signal"),
    signal_live => ("signal_struct", "live"),
    inode_ino => ("inode", "i_ino"),
    inode_sb => ("inode", "i_sb"),
    sb_dev => ("super_block", "s_dev"),
    mm_exe_file => ("mm_struct", "exe_file"),
    dentry_parent => ("dentry", "d_parent"),
    file_mnt => ("file", "f_path.mnt"),
    file_flags => ("file", "f_flags"),
    mount_mnt => ("mount", "mnt"),
    mount_parent => ("mount", "mnt_parent"),
    mount_mountpoint => ("mount", "mnt_mountpoint"),
    vfsmount_root => ("vfsmount", "mnt_root"),
    task_fs => ("task_struct", "fs"),
    fs_pwd_mnt => ("fs_struct", "pwd.mnt"),
    fs_pwd_dentry => ("fs_struct", "pwd.dentry"),
    path_mnt => ("path", "mnt"),
    path_dentry => ("path", "dentry"),
    inode_size => ("inode", "i_size"),
    vma_vm_file => ("vm_area_struct", "vm_file"),
    task_cred => ("task_struct", "cred"),
    cred_euid => ("cred", "euid"),
    cred_cap_effective => ("cred", "cap_effective"),
    cred_cap_permitted => ("cred", "cap_permitted"),
    binprm_interp => ("linux_binprm", "interp"),
    mm_env_start => ("mm_struct", "env_start"),
    mm_env_end => ("mm_struct", "env_end"),
    inode_nlink => ("inode", "i_nlink"),
    cred_uid => ("cred", "uid"),
    cred_cap_inheritable => ("cred", "cap_inheritable"),
    module_name => ("module", "name"),
    msghdr_name => ("msghdr", "msg_name"),
    msghdr_namelen => ("msghdr", "msg_namelen"),
    msghdr_iter => ("msghdr", "msg_iter"),
    iter_type => ("iov_iter", "iter_type"),
    iter_iov_offset => ("iov_iter", "iov_offset"),
    iter_count => ("iov_iter", "count"),
    iter_ubuf => ("iov_iter", "ubuf"),
    iter_nr_segs => ("iov_iter", "nr_segs"),
    dentry_inode => ("dentry", "d_inode"),
    vfsmount_sb => ("vfsmount", "mnt_sb"),
    bpf_map_id => ("bpf_map", "id"),
    task_group_leader => ("task_struct", "group_leader"),
    file_mode => ("file", "f_mode"),
    task_nsproxy => ("task_struct", "nsproxy"),
    nsproxy_mnt_ns => ("nsproxy", "mnt_ns"),
    mnt_ns_root => ("mnt_namespace", "root"),
}

/// `Err` naming the groups of `LAYOUT_REQUIRED` that `layout` lacks.
pub fn check_layout(layout: u32) -> Result<(), BtfError> {
    let missing: Vec<&str> = LAYOUT_GROUPS
        .iter()
        .filter(|(bit, _)| LAYOUT_REQUIRED & bit != 0 && layout & bit == 0)
        .map(|(_, members)| *members)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(BtfError::LayoutUnsupported(missing.join("; ")))
    }
}

/// The inode's change time was renamed twice: `i_ctime` (a `timespec64`, before 6.6),
/// `__i_ctime` (6.6 to 6.10), then split into `i_ctime_sec` and `i_ctime_nsec` (6.11+).
/// (seconds member, nanoseconds member), newest first.
pub const INODE_CTIME: &[(&str, &str)] = &[
    ("i_ctime_sec", "i_ctime_nsec"),
    ("__i_ctime.tv_sec", "__i_ctime.tv_nsec"),
    ("i_ctime.tv_sec", "i_ctime.tv_nsec"),
];

/// The offsets of the inode's change time (seconds, nanoseconds) under whichever name this
/// kernel uses; the error of the oldest layout when none resolves.
fn inode_ctime(btf: &Btf) -> Result<(u32, u32), BtfError> {
    let mut last = None;
    for (sec, nsec) in INODE_CTIME {
        match (
            btf.member_offset("inode", sec),
            btf.member_offset("inode", nsec),
        ) {
            (Ok(sec), Ok(nsec)) => return Ok((sec, nsec)),
            (Err(err), _) | (_, Err(err)) => last = Some(err),
        }
    }
    Err(last.unwrap_or_else(|| BtfError::StructNotFound("inode".to_owned())))
}

/// The values of `ITER_UBUF` (`u32::MAX` before 6.0, which has no such type) and `ITER_IOVEC`
/// in this kernel's `enum iter_type`, which 6.4 renumbered.
fn iter_types(btf: &Btf) -> Result<(u32, u32), BtfError> {
    let value = |name| {
        btf.enum_value("iter_type", name)
            .map(|v| u32::try_from(v).unwrap_or(u32::MAX))
    };
    let ubuf = match value("ITER_UBUF") {
        Ok(v) => v,
        Err(BtfError::EnumeratorNotFound { .. }) => u32::MAX,
        Err(err) => return Err(err),
    };
    Ok((ubuf, value("ITER_IOVEC")?))
}

/// Reads the offsets from the BTF file at `path` (normally /sys/kernel/btf/vmlinux).
pub fn from_btf_file(path: &Path) -> Result<KernelOffsets, BtfError> {
    from_btf(&Btf::from_file(path)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::btf::VMLINUX_BTF_PATH;
    use enforcer_common::offsets::{
        LAYOUT_CAPS, LAYOUT_FILE_INODE_FLAGS, LAYOUT_FILE_WINDOW, LAYOUT_MM_BLOCKS,
    };

    #[test]
    fn a_kernel_without_a_required_group_is_refused_by_name() {
        assert!(check_layout(LAYOUT_REQUIRED).is_ok());
        assert!(check_layout(LAYOUT_REQUIRED | LAYOUT_FILE_INODE_FLAGS).is_ok());
        let err = check_layout(LAYOUT_REQUIRED & !LAYOUT_MM_BLOCKS & !LAYOUT_CAPS)
            .map_err(|e| e.to_string());
        assert_eq!(
            err,
            Err(
                "unsupported kernel struct layout (a kernel built with CONFIG_RANDSTRUCT?): \
                 these members are not side by side: mm_struct: arg_start, arg_end, env_start, \
                 env_end; cred: cap_permitted, cap_effective"
                    .to_owned()
            )
        );
    }

    #[test]
    fn running_kernel_offsets_resolve() {
        let path = Path::new(VMLINUX_BTF_PATH);
        if !path.exists() {
            eprintln!("SKIPPED: {VMLINUX_BTF_PATH} absent, cannot resolve kernel offsets");
            return;
        }
        let off = from_btf_file(path);
        assert!(off.is_ok(), "{off:?}");
        let off = off.unwrap_or_default();
        // Members that are never first in their struct.
        assert_ne!(off.task_tgid, 0);
        assert_ne!(off.task_mm, 0);
        assert_ne!(off.mm_arg_start, 0);
        assert_eq!(
            off.mm_arg_end,
            off.mm_arg_start + 8,
            "arg_end follows arg_start"
        );
        assert_eq!(
            off.dentry_name_len + 4,
            off.dentry_name,
            "qstr: hash, len, then name"
        );
        assert_ne!(off.inode_ino, 0);
        assert_ne!(off.inode_ctime_sec, 0);
        assert_ne!(off.inode_ctime_nsec, 0);
        assert_ne!(off.inode_ctime_nsec, off.inode_ctime_sec);
        assert_ne!(off.task_cred, 0);
        assert_ne!(off.cred_uid, 0);
        assert_ne!(off.msghdr_iter, 0);
        assert_ne!(off.iter_count, 0);
        assert_ne!(off.iter_ubuf, 0);
        assert_ne!(off.iter_type_iovec, u32::MAX);
        assert_ne!(
            off.iter_type_ubuf, off.iter_type_iovec,
            "two different iter types"
        );
        let fsgid = Btf::from_file(path)
            .ok()
            .and_then(|btf| btf.member_offset("cred", "fsgid").ok());
        assert_eq!(
            fsgid,
            Some(off.cred_uid + 28),
            "the eight ids are consecutive"
        );
        assert_eq!(
            off.cred_cap_permitted,
            off.cred_cap_inheritable + 8,
            "kernel_cap_t masks are 8 bytes"
        );
        assert_eq!(
            off.layout,
            off.layout_bits(),
            "from_btf sets the layout bits"
        );
        // 6.1 has `f_flags` far from `f_inode`; every other group is in place everywhere.
        assert_eq!(
            off.layout & !(LAYOUT_FILE_INODE_FLAGS | LAYOUT_FILE_WINDOW),
            LAYOUT_REQUIRED,
            "every grouped read is one read on this (mainstream) kernel"
        );
    }
}
