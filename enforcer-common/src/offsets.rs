//! Kernel struct member offsets, read by the loader from the running kernel's BTF
//! (/sys/kernel/btf/vmlinux) and written into the programs' read-only data before load, so one
//! build runs on every kernel without hard-coded offsets.

/// The read-only global [`crate::maps::GLOBAL_OFFSETS`]. All values are byte offsets.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KernelOffsets {
    /// `struct linux_binprm` -> `file` (`struct file *`).
    pub binprm_file: u32,
    /// `struct linux_binprm` -> `filename` (`const char *`, the name given to execve).
    pub binprm_filename: u32,
    /// `struct file` -> `f_path.dentry` (`struct dentry *`).
    pub file_dentry: u32,
    /// `struct dentry` -> `d_name.name` (`const unsigned char *`).
    pub dentry_name: u32,
    /// `struct dentry` -> `d_name.len` (u32).
    pub dentry_name_len: u32,
    /// `struct task_struct` -> `real_parent` (`struct task_struct *`).
    pub task_real_parent: u32,
    /// `struct task_struct` -> `tgid` (pid_t).
    pub task_tgid: u32,
    /// `struct task_struct` -> `mm` (`struct mm_struct *`).
    pub task_mm: u32,
    /// `struct mm_struct` -> `arg_start` (unsigned long).
    pub mm_arg_start: u32,
    /// `struct mm_struct` -> `arg_end` (unsigned long).
    pub mm_arg_end: u32,
    /// `struct task_struct` -> `files` (`struct files_struct *`).
    pub task_files: u32,
    /// `struct files_struct` -> `fdt` (`struct fdtable *`).
    pub files_fdt: u32,
    /// `struct fdtable` -> `max_fds` (unsigned int).
    pub fdtable_max_fds: u32,
    /// `struct fdtable` -> `fd` (`struct file **`).
    pub fdtable_fd: u32,
    /// `struct file` -> `f_inode` (`struct inode *`).
    pub file_inode: u32,
    /// `struct inode` -> `i_mode` (umode_t, u16).
    pub inode_mode: u32,
    /// `struct file` -> `private_data` (`void *`, the `struct socket *` of a socket file).
    pub file_private_data: u32,
    /// `struct socket` -> `type` (short: `SOCK_STREAM`, `SOCK_DGRAM`, ...).
    pub socket_type: u32,
    /// `struct socket` -> `sk` (`struct sock *`; `struct sock_common` is its first member).
    pub socket_sk: u32,
    /// `struct sock_common` -> `skc_family` (unsigned short).
    pub skc_family: u32,
    /// `struct sock_common` -> `skc_dport` (__be16).
    pub skc_dport: u32,
    /// `struct sock_common` -> `skc_daddr` (__be32).
    pub skc_daddr: u32,
    /// `struct sock_common` -> `skc_v6_daddr` (struct in6_addr).
    pub skc_v6_daddr: u32,
    /// `struct sock_common` -> `skc_num` (local port, host byte order).
    pub skc_num: u32,
    /// `struct task_struct` -> `pid` (pid_t, the thread id).
    pub task_pid: u32,
    /// `struct task_struct` -> `start_boottime` (u64, ns since boot).
    pub task_start_boottime: u32,
    /// `struct task_struct` -> `exit_code` (int).
    pub task_exit_code: u32,
    /// `struct task_struct` -> `signal` (`struct signal_struct *`).
    pub task_signal: u32,
    /// `struct signal_struct` -> `live` (atomic_t: threads not yet exited).
    pub signal_live: u32,
    /// Byte offset of the first syscall argument in every `syscalls/sys_enter_*` tracepoint
    /// record the engine reads; argument `i` is at this offset + 8 * i. The loader checks
    /// each used tracepoint's tracefs `format` file against this layout.
    pub tp_syscall_args: u32,
    /// Byte offset of `__syscall_nr` (i32) in the same records.
    pub tp_syscall_nr: u32,
    /// This architecture's number of `write`: one program serves every send tracepoint and
    /// tells them apart by `__syscall_nr`.
    pub nr_write: u32,
    /// Number of `sendto`.
    pub nr_sendto: u32,
    /// Number of `sendmsg`.
    pub nr_sendmsg: u32,
    /// Number of `sendmmsg`.
    pub nr_sendmmsg: u32,
    /// Number of `writev`.
    pub nr_writev: u32,
    /// `struct inode` -> `i_ino` (unsigned long).
    pub inode_ino: u32,
    /// `struct inode` -> `i_sb` (`struct super_block *`).
    pub inode_sb: u32,
    /// `struct super_block` -> `s_dev` (dev_t, u32).
    pub sb_dev: u32,
    /// `struct inode` -> change time seconds (i64): `i_ctime_sec` (6.11+),
    /// `__i_ctime.tv_sec` (6.6 to 6.10) or `i_ctime.tv_sec` (before 6.6).
    pub inode_ctime_sec: u32,
    /// `struct inode` -> change time nanoseconds (read as u32): `i_ctime_nsec`,
    /// `__i_ctime.tv_nsec` or `i_ctime.tv_nsec` (a long, little-endian: its low half).
    pub inode_ctime_nsec: u32,
    /// `struct mm_struct` -> `exe_file` (`struct file *`, the running executable).
    pub mm_exe_file: u32,
    /// `LAYOUT_*` bits: which groups of members this kernel lays out side by side, so the
    /// programs read each group with one helper call instead of one per member (a helper call
    /// costs 40-90 ns on the 2-vCPU host). Set by the loader from the offsets
    /// ([`KernelOffsets::layout_bits`]), which refuses a kernel without the groups of
    /// [`LAYOUT_REQUIRED`]; the others are read member by member where their bit is clear.
    pub layout: u32,
    /// `struct dentry` -> `d_parent` (`struct dentry *`).
    pub dentry_parent: u32,
    /// `struct file` -> `f_path.mnt` (`struct vfsmount *`).
    pub file_mnt: u32,
    /// `struct file` -> `f_flags` (unsigned int, the open flags).
    pub file_flags: u32,
    /// `struct mount` -> `mnt` (the embedded `struct vfsmount`).
    pub mount_mnt: u32,
    /// `struct mount` -> `mnt_parent` (`struct mount *`).
    pub mount_parent: u32,
    /// `struct mount` -> `mnt_mountpoint` (`struct dentry *`).
    pub mount_mountpoint: u32,
    /// `struct vfsmount` -> `mnt_root` (`struct dentry *`).
    pub vfsmount_root: u32,
    /// `struct task_struct` -> `fs` (`struct fs_struct *`).
    pub task_fs: u32,
    /// `struct fs_struct` -> `pwd.mnt` (`struct vfsmount *`).
    pub fs_pwd_mnt: u32,
    /// `struct fs_struct` -> `pwd.dentry` (`struct dentry *`).
    pub fs_pwd_dentry: u32,
    /// `struct path` -> `mnt` (`struct vfsmount *`).
    pub path_mnt: u32,
    /// `struct path` -> `dentry` (`struct dentry *`).
    pub path_dentry: u32,
    /// Number of `open` (0 where the architecture has none).
    pub nr_open: u32,
    /// Number of `creat`.
    pub nr_creat: u32,
    /// Number of `unlink`.
    pub nr_unlink: u32,
    /// Number of `unlinkat`.
    pub nr_unlinkat: u32,
    /// Number of `rename`.
    pub nr_rename: u32,
    /// Number of `renameat`.
    pub nr_renameat: u32,
    /// Number of `renameat2`.
    pub nr_renameat2: u32,
    /// Number of `chmod`.
    pub nr_chmod: u32,
    /// Number of `fchmodat`.
    pub nr_fchmodat: u32,
    /// Number of `chown`.
    pub nr_chown: u32,
    /// Number of `lchown`.
    pub nr_lchown: u32,
    /// Number of `fchownat`.
    pub nr_fchownat: u32,
    /// `struct inode` -> `i_size` (loff_t, i64).
    pub inode_size: u32,
    /// `struct vm_area_struct` -> `vm_file` (`struct file *`).
    pub vma_vm_file: u32,
    /// `struct task_struct` -> `cred` (`const struct cred *`, the effective credentials).
    pub task_cred: u32,
    /// `struct cred` -> `euid` (kuid_t, u32).
    pub cred_euid: u32,
    /// `struct cred` -> `cap_effective` (kernel_cap_t, 64 bits: `u32 cap[2]` before 6.3,
    /// `u64 val` since; the same bits either way).
    pub cred_cap_effective: u32,
    /// `struct cred` -> `cap_permitted`.
    pub cred_cap_permitted: u32,
    /// `struct linux_binprm` -> `interp` (`const char *`).
    pub binprm_interp: u32,
    /// `struct mm_struct` -> `env_start` (unsigned long).
    pub mm_env_start: u32,
    /// `struct mm_struct` -> `env_end` (unsigned long).
    pub mm_env_end: u32,
    /// `struct inode` -> `i_nlink` (unsigned int, in an anonymous union).
    pub inode_nlink: u32,
    /// `struct cred` -> `uid`; `gid, suid, sgid, euid, egid, fsuid, fsgid` follow, 4 bytes
    /// apart (as in every kernel since 2.6.29; `loader/offsets.rs`'s test checks `fsgid` on
    /// the running kernel).
    pub cred_uid: u32,
    /// `struct cred` -> `cap_inheritable` (`kernel_cap_t`, 8 bytes).
    pub cred_cap_inheritable: u32,
    /// `struct module` -> `name` (`char[MODULE_NAME_LEN]`).
    pub module_name: u32,
    /// `struct msghdr` -> `msg_name` (kernel pointer to the copied address, or null).
    pub msghdr_name: u32,
    /// `struct msghdr` -> `msg_namelen` (int).
    pub msghdr_namelen: u32,
    /// `struct msghdr` -> `msg_iter` (an embedded `struct iov_iter`).
    pub msghdr_iter: u32,
    /// `struct iov_iter` -> `iter_type` (u8).
    pub iter_type: u32,
    /// `struct iov_iter` -> `iov_offset` (size_t; in a union from 6.1 to 6.3).
    pub iter_iov_offset: u32,
    /// `struct iov_iter` -> `count` (size_t; bytes left).
    pub iter_count: u32,
    /// `struct iov_iter` -> `ubuf` (user buffer of an `ITER_UBUF`; the same union holds the
    /// kernel copy of the `struct iovec` array of an `ITER_IOVEC`, `iov` / `__iov`).
    pub iter_ubuf: u32,
    /// `struct iov_iter` -> `nr_segs` (unsigned long).
    pub iter_nr_segs: u32,
    /// Value of `ITER_UBUF` in this kernel's `enum iter_type` (`u32::MAX`: no such type).
    pub iter_type_ubuf: u32,
    /// Value of `ITER_IOVEC` in this kernel's `enum iter_type` (0 in 6.1, 1 in 6.12).
    pub iter_type_iovec: u32,
    /// `struct dentry` -> `d_inode` (`struct inode *`, null for a negative dentry).
    pub dentry_inode: u32,
    /// `struct vfsmount` -> `mnt_sb` (`struct super_block *`).
    pub vfsmount_sb: u32,
    /// `struct bpf_map` -> `id` (u32).
    pub bpf_map_id: u32,
    /// `struct task_struct` -> `group_leader` (`struct task_struct *`).
    pub task_group_leader: u32,
    /// `struct file` -> `f_mode` (fmode_t, u32).
    pub file_mode: u32,
    /// `struct task_struct` -> `nsproxy` (`struct nsproxy *`; null once the task has exited).
    pub task_nsproxy: u32,
    /// `struct nsproxy` -> `mnt_ns` (`struct mnt_namespace *`).
    pub nsproxy_mnt_ns: u32,
    /// `struct mnt_namespace` -> `root` (`struct mount *`, the top of the namespace's mount
    /// tree: its own parent).
    pub mnt_ns_root: u32,
}

impl KernelOffsets {
    /// Every offset 0: the kernel object's initial value, replaced by the loader before load.
    pub const ZERO: Self = Self {
        binprm_file: 0,
        binprm_filename: 0,
        file_dentry: 0,
        dentry_name: 0,
        dentry_name_len: 0,
        task_real_parent: 0,
        task_tgid: 0,
        task_mm: 0,
        mm_arg_start: 0,
        mm_arg_end: 0,
        task_files: 0,
        files_fdt: 0,
        fdtable_max_fds: 0,
        fdtable_fd: 0,
        file_inode: 0,
        inode_mode: 0,
        file_private_data: 0,
        socket_type: 0,
        socket_sk: 0,
        skc_family: 0,
        skc_dport: 0,
        skc_daddr: 0,
        skc_v6_daddr: 0,
        skc_num: 0,
        task_pid: 0,
        task_start_boottime: 0,
        task_exit_code: 0,
        task_signal: 0,
        signal_live: 0,
        tp_syscall_args: 0,
        tp_syscall_nr: 0,
        nr_write: 0,
        nr_sendto: 0,
        nr_sendmsg: 0,
        nr_sendmmsg: 0,
        nr_writev: 0,
        inode_ino: 0,
        inode_sb: 0,
        sb_dev: 0,
        inode_ctime_sec: 0,
        inode_ctime_nsec: 0,
        mm_exe_file: 0,
        layout: 0,
        dentry_parent: 0,
        file_mnt: 0,
        file_flags: 0,
        mount_mnt: 0,
        mount_parent: 0,
        mount_mountpoint: 0,
        vfsmount_root: 0,
        task_fs: 0,
        fs_pwd_mnt: 0,
        fs_pwd_dentry: 0,
        path_mnt: 0,
        path_dentry: 0,
        nr_open: 0,
        nr_creat: 0,
        nr_unlink: 0,
        nr_unlinkat: 0,
        nr_rename: 0,
        nr_renameat: 0,
        nr_renameat2: 0,
        nr_chmod: 0,
        nr_fchmodat: 0,
        nr_chown: 0,
        nr_lchown: 0,
        nr_fchownat: 0,
        inode_size: 0,
        vma_vm_file: 0,
        task_cred: 0,
        cred_euid: 0,
        cred_cap_effective: 0,
        cred_cap_permitted: 0,
        binprm_interp: 0,
        mm_env_start: 0,
        mm_env_end: 0,
        inode_nlink: 0,
        cred_uid: 0,
        cred_cap_inheritable: 0,
        module_name: 0,
        msghdr_name: 0,
        msghdr_namelen: 0,
        msghdr_iter: 0,
        iter_type: 0,
        iter_iov_offset: 0,
        iter_count: 0,
        iter_ubuf: 0,
        iter_nr_segs: 0,
        iter_type_ubuf: u32::MAX,
        iter_type_iovec: u32::MAX,
        dentry_inode: 0,
        vfsmount_sb: 0,
        bpf_map_id: 0,
        task_group_leader: 0,
        file_mode: 0,
        task_nsproxy: 0,
        nsproxy_mnt_ns: 0,
        mnt_ns_root: 0,
    };
}

/// `mm_struct`: `arg_start`, `arg_end`, `env_start`, `env_end` are four consecutive `u64`s.
pub const LAYOUT_MM_BLOCKS: u32 = 1 << 0;
/// `fdtable`: `fd` is the 8 bytes after `max_fds` (a `u32` and its padding).
pub const LAYOUT_FDTABLE: u32 = 1 << 1;
// 1 << 2 was `LAYOUT_PID_TGID` (`task_struct`: `tgid` after `pid`); the fork program loads
// the two members one by one now.
/// `cred`: `cap_effective` is the 8 bytes after `cap_permitted`.
pub const LAYOUT_CAPS: u32 = 1 << 3;
/// `dentry`: `d_parent`, then `d_name` (`hash`, `len`, `name`): `d_name.name` is 16 bytes
/// after `d_parent` and `d_name.len` 12, so also 4 bytes after `len`. A path walk reads a
/// component's parent, name length and name pointer at once.
pub const LAYOUT_DENTRY: u32 = 1 << 4;
/// `file`: `f_flags` is the 8 bytes after `f_inode` (6.12 on; not 6.1).
pub const LAYOUT_FILE_INODE_FLAGS: u32 = 1 << 5;
/// `path`: `dentry` is the 8 bytes after `mnt` (every `struct path`: a file's `f_path`, a
/// task's working directory).
pub const LAYOUT_PATH: u32 = 1 << 6;
/// `cred`: `euid` is 16 bytes after `uid` (`uid, gid, suid, sgid, euid`, 4 bytes each).
pub const LAYOUT_CRED_IDS: u32 = 1 << 7;
/// `file`: `f_flags` 8 bytes after `f_inode` (as [`LAYOUT_FILE_INODE_FLAGS`]), and `f_path`
/// (`mnt`, then `dentry`) in the [`FILE_WINDOW_WORDS`] words from `f_inode`, 16 to 32 bytes
/// after it (6.12: 24; 6.18: 32; not 6.1): the open tracepoint reads the four at once.
pub const LAYOUT_FILE_WINDOW: u32 = 1 << 9;
/// The 8-byte words read from `f_inode` where [`LAYOUT_FILE_WINDOW`].
pub const FILE_WINDOW_WORDS: usize = 6;
/// `mount`: `mnt_parent`, `mnt_mountpoint`, then the embedded `mnt` whose first member is
/// `mnt_root`: a path walk reads a mount's parent, mount point and root at once (one read per
/// mount crossing instead of three).
pub const LAYOUT_MOUNT: u32 = 1 << 8;

/// The groups the programs read as one without checking (`kernel.rs`): the loader refuses a
/// kernel without them (a branch per group made the 6.1 verifier walk the exec program past
/// its limit of a million instructions). Every kernel from 6.1 to 6.18 has them.
pub const LAYOUT_REQUIRED: u32 = LAYOUT_MM_BLOCKS
    | LAYOUT_FDTABLE
    | LAYOUT_CAPS
    | LAYOUT_DENTRY
    | LAYOUT_PATH
    | LAYOUT_CRED_IDS
    | LAYOUT_MOUNT;

/// Each group bit and the members it stands for, for error messages.
pub const LAYOUT_GROUPS: &[(u32, &str)] = &[
    (
        LAYOUT_MM_BLOCKS,
        "mm_struct: arg_start, arg_end, env_start, env_end",
    ),
    (LAYOUT_FDTABLE, "fdtable: max_fds, fd"),
    (LAYOUT_CAPS, "cred: cap_permitted, cap_effective"),
    (LAYOUT_DENTRY, "dentry: d_parent, d_name"),
    (LAYOUT_FILE_INODE_FLAGS, "file: f_inode, f_flags"),
    (LAYOUT_FILE_WINDOW, "file: f_inode, f_flags, f_path"),
    (LAYOUT_PATH, "path: mnt, dentry"),
    (LAYOUT_CRED_IDS, "cred: uid, gid, suid, sgid, euid"),
    (
        LAYOUT_MOUNT,
        "mount: mnt_parent, mnt_mountpoint, mnt.mnt_root",
    ),
];

impl KernelOffsets {
    /// The `LAYOUT_*` bits these offsets allow (see [`KernelOffsets::layout`]). Every
    /// mainstream kernel has them all; a kernel built with `CONFIG_RANDSTRUCT` may not.
    #[must_use]
    pub const fn layout_bits(&self) -> u32 {
        const fn follows(first: u32, then: u32, gap: u32) -> bool {
            match first.checked_add(gap) {
                Some(at) => at == then,
                None => false,
            }
        }
        let mut bits = 0;
        if follows(self.mm_arg_start, self.mm_arg_end, 8)
            && follows(self.mm_arg_start, self.mm_env_start, 16)
            && follows(self.mm_arg_start, self.mm_env_end, 24)
        {
            bits |= LAYOUT_MM_BLOCKS;
        }
        if follows(self.fdtable_max_fds, self.fdtable_fd, 8) {
            bits |= LAYOUT_FDTABLE;
        }
        if follows(self.cred_cap_permitted, self.cred_cap_effective, 8) {
            bits |= LAYOUT_CAPS;
        }
        if follows(self.dentry_parent, self.dentry_name, 16)
            && follows(self.dentry_parent, self.dentry_name_len, 12)
        {
            bits |= LAYOUT_DENTRY;
        }
        if follows(self.file_inode, self.file_flags, 8) {
            bits |= LAYOUT_FILE_INODE_FLAGS;
        }
        if bits & LAYOUT_FILE_INODE_FLAGS != 0
            && follows(self.file_mnt, self.file_dentry, 8)
            && matches!(
                self.file_mnt.checked_sub(self.file_inode),
                Some(16 | 24 | 32)
            )
        {
            bits |= LAYOUT_FILE_WINDOW;
        }
        if follows(self.path_mnt, self.path_dentry, 8) {
            bits |= LAYOUT_PATH;
        }
        if follows(self.cred_uid, self.cred_euid, 16) {
            bits |= LAYOUT_CRED_IDS;
        }
        if follows(self.mount_parent, self.mount_mountpoint, 8)
            && follows(self.mount_parent, self.mount_mnt, 16)
            && self.vfsmount_root == 0
        {
            bits |= LAYOUT_MOUNT;
        }
        bits
    }
}

/// The members of `struct file` a [`LAYOUT_FILE_WINDOW`] read gets: [`FILE_WINDOW_WORDS`]
/// words read from `f_inode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileWindow {
    pub inode: u64,
    pub flags: u32,
    pub mnt: u64,
    pub dentry: u64,
}

impl FileWindow {
    /// Picks the members out of `words` (read from `f_inode`, at offset `file_inode` of the
    /// file) for a kernel whose `f_path.mnt` is at `file_mnt`; valid where
    /// [`KernelOffsets::layout_bits`] has [`LAYOUT_FILE_WINDOW`] (the gap is 16, 24 or 32).
    /// Little-endian: `f_flags` is the low half of the word after `f_inode`.
    #[inline(always)]
    #[allow(clippy::cast_possible_truncation)] // f_flags is the word's low 32 bits
    pub const fn pick(words: &[u64; FILE_WINDOW_WORDS], file_inode: u32, file_mnt: u32) -> Self {
        let (mnt, dentry) = match file_mnt.wrapping_sub(file_inode) {
            16 => (words[2], words[3]),
            24 => (words[3], words[4]),
            _ => (words[4], words[5]),
        };
        Self {
            inode: words[0],
            flags: words[1] as u32,
            mnt,
            dentry,
        }
    }
}

const _: () = assert!(
    core::mem::size_of::<KernelOffsets>() == 176 + 4 * 24 + 4 * 10 + 4 * 3 + 4 * 9 + 4 * 5 + 4 * 3
);

#[cfg(test)]
mod tests {
    use super::*;

    /// Offsets of the groups as 6.18 lays them out (x86_64): every bit set.
    fn mainstream() -> KernelOffsets {
        KernelOffsets {
            mm_arg_start: 296,
            mm_arg_end: 304,
            mm_env_start: 312,
            mm_env_end: 320,
            fdtable_max_fds: 0,
            fdtable_fd: 8,
            task_pid: 1480,
            task_tgid: 1484,
            cred_cap_permitted: 48,
            cred_cap_effective: 56,
            dentry_parent: 24,
            dentry_name_len: 36,
            dentry_name: 40,
            file_inode: 32,
            file_flags: 40,
            file_mnt: 64,
            file_dentry: 72,
            path_mnt: 0,
            path_dentry: 8,
            cred_uid: 8,
            cred_euid: 24,
            mount_parent: 16,
            mount_mountpoint: 24,
            mount_mnt: 32,
            vfsmount_root: 0,
            ..KernelOffsets::ZERO
        }
    }

    #[test]
    fn a_mainstream_layout_has_every_group_bit() {
        assert_eq!(
            mainstream().layout_bits(),
            LAYOUT_MM_BLOCKS
                | LAYOUT_FDTABLE
                | LAYOUT_CAPS
                | LAYOUT_DENTRY
                | LAYOUT_FILE_INODE_FLAGS
                | LAYOUT_FILE_WINDOW
                | LAYOUT_PATH
                | LAYOUT_CRED_IDS
                | LAYOUT_MOUNT
        );
    }

    #[test]
    fn a_file_window_picks_the_members_at_each_gap() {
        // Words from `f_inode`: the inode, then `f_flags` (low half) beside `f_iocb_flags`.
        for (gap, mnt_word) in [(16, 2), (24, 3), (32, 4)] {
            let offsets = KernelOffsets {
                file_mnt: 32 + gap,
                file_dentry: 40 + gap,
                ..mainstream()
            };
            assert_ne!(offsets.layout_bits() & LAYOUT_FILE_WINDOW, 0, "gap {gap}");
            let mut words = [0xdead_u64; FILE_WINDOW_WORDS];
            words[0] = 0x1000;
            words[1] = (7 << 32) | 0o101;
            words[mnt_word] = 0x2000;
            words[mnt_word + 1] = 0x3000;
            assert_eq!(
                FileWindow::pick(&words, offsets.file_inode, offsets.file_mnt),
                FileWindow {
                    inode: 0x1000,
                    flags: 0o101,
                    mnt: 0x2000,
                    dentry: 0x3000
                },
                "gap {gap}"
            );
        }
        // A gap of 40 puts `f_path.dentry` past the window.
        let far = KernelOffsets {
            file_mnt: 72,
            file_dentry: 80,
            ..mainstream()
        };
        assert_eq!(far.layout_bits() & LAYOUT_FILE_WINDOW, 0);
    }

    #[test]
    fn a_member_out_of_place_clears_only_its_groups_bits() {
        let all = mainstream().layout_bits();
        let cases = [
            (
                KernelOffsets {
                    mm_env_end: 400,
                    ..mainstream()
                },
                LAYOUT_MM_BLOCKS,
            ),
            (
                KernelOffsets {
                    fdtable_fd: 16,
                    ..mainstream()
                },
                LAYOUT_FDTABLE,
            ),
            (
                KernelOffsets {
                    cred_cap_effective: 40,
                    ..mainstream()
                },
                LAYOUT_CAPS,
            ),
            (
                KernelOffsets {
                    dentry_name: 48,
                    ..mainstream()
                },
                LAYOUT_DENTRY,
            ),
            (
                KernelOffsets {
                    dentry_name_len: 32,
                    ..mainstream()
                },
                LAYOUT_DENTRY,
            ),
            (
                KernelOffsets {
                    dentry_parent: 16,
                    ..mainstream()
                },
                LAYOUT_DENTRY,
            ),
            (
                KernelOffsets {
                    file_flags: 64,
                    ..mainstream()
                },
                LAYOUT_FILE_INODE_FLAGS | LAYOUT_FILE_WINDOW,
            ),
            (
                KernelOffsets {
                    file_mnt: 72,
                    file_dentry: 80,
                    ..mainstream()
                },
                LAYOUT_FILE_WINDOW,
            ),
            (
                KernelOffsets {
                    file_dentry: 88,
                    ..mainstream()
                },
                LAYOUT_FILE_WINDOW,
            ),
            (
                KernelOffsets {
                    path_dentry: 16,
                    ..mainstream()
                },
                LAYOUT_PATH,
            ),
            (
                KernelOffsets {
                    cred_euid: 20,
                    ..mainstream()
                },
                LAYOUT_CRED_IDS,
            ),
            (
                KernelOffsets {
                    mount_mountpoint: 40,
                    ..mainstream()
                },
                LAYOUT_MOUNT,
            ),
            (
                KernelOffsets {
                    mount_mnt: 48,
                    ..mainstream()
                },
                LAYOUT_MOUNT,
            ),
            (
                KernelOffsets {
                    vfsmount_root: 8,
                    ..mainstream()
                },
                LAYOUT_MOUNT,
            ),
            (
                KernelOffsets {
                    mm_arg_start: u32::MAX,
                    ..mainstream()
                },
                LAYOUT_MM_BLOCKS,
            ),
        ];
        for (offsets, bits) in cases {
            assert_eq!(offsets.layout_bits(), all & !bits, "{offsets:?}");
        }
    }
}
