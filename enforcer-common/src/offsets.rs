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
    /// `struct socket` -> `file` (`struct file *`).
    pub socket_file: u32,
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
    /// Explicit padding (keeps the size a multiple of 8).
    pub _pad: u32,
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
        socket_file: 0,
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
        _pad: 0,
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
    };
}

const _: () = assert!(core::mem::size_of::<KernelOffsets>() == 176 + 4 * 24 + 4 * 10 + 4 * 2);
