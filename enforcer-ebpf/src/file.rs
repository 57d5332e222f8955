//! File paths and the watch plan: builds the absolute path of a dentry (walking `d_parent` and
//! crossing mounts through `struct mount`), joins a user path to a base directory, matches the
//! path against `FILE_WATCH` and emits the `FileRecord`. Everything happens in the per-CPU
//! `FILE_SCRATCH` slot (the record is 624 bytes; the stack has 512).
//!
//! Verifier notes (6.1): every write position is masked right before the constant-size string
//! read (`black_box` + `& 0xff`), the buffer has 256 bytes of slack after each path, so a
//! 256-byte read at any masked position stays inside the map value; loops are bounded
//! (`FILE_DEPTH` components, `FILE_PATH_LEN` bytes). Verifier cost: the byte loop of
//! [`match_path`] runs in `bpf_loop` (its body is checked once, not once per byte), and a built
//! path's length goes through map memory before it is returned, so the verifier carries no
//! length ranges from a first path into the second one of a rename or link (each distinct
//! range was a separate state walked through the whole second path: 350k instructions for
//! `path_link` on 6.1, a start of many seconds under TCG).

use core::ffi::c_void;

use aya_ebpf::helpers::generated::{bpf_loop, bpf_probe_read_kernel_str, bpf_probe_read_user_str};
use enforcer_common::{
    event::{COMM_LEN, Counter, EventKind, Hook},
    file::{
        FILE_DEPTH, FILE_FSTYPE_LEN, FILE_NEW_PATH_TRUNCATED, FILE_PATH_DOTS, FILE_PATH_LEN,
        FILE_PATH_TRUNCATED, FileOp, FileRecord, FileWatchKey, PATH_HASH_INIT, path_hash_step,
    },
    plan::{PLAN_FLAG_RECORD, PlanVerdict, RECORD_FILE_ALL, RECORD_FILE_DIRS},
};

use crate::{
    emit,
    kernel::{self, ReadError, read_at},
    maps::{EVENTS, FILE_DIR_BITS, FILE_SCRATCH, FILE_WATCH, count, offset},
    mem,
    typed::{Access, Typed},
};

/// Contents of `FILE_SCRATCH`.
#[repr(C)]
pub(crate) struct FileScratch {
    /// The record being built; `path` and `new_path` are written in place.
    pub(crate) record: FileRecord,
    /// Slack after `new_path` (a constant-size read at any masked position stays inside).
    pub(crate) slack: [u8; FILE_PATH_LEN],
    /// Name pointers (`d_name.name`) of the components of the path being built, leaf first.
    pub(crate) comps: [u64; FILE_DEPTH],
    /// One component's name, read by [`dirs_verdict`].
    pub(crate) dir_name: [u8; DIR_NAME_LEN],
    /// The acting plan entry found for the event (valid when `acting != 0`).
    pub(crate) verdict: PlanVerdict,
    /// A plan entry with actions was found.
    pub(crate) acting: u32,
    /// Some watched entry (acting or record-only) was found.
    pub(crate) watched: u32,
    /// Components collected by the walk (see `build_dentry_path`).
    pub(crate) depth: u32,
    /// The path syscall being handled (`hooks/file_path.rs`).
    pub(crate) call: crate::hooks::PathCall,
    /// State of the [`match_path`] loop (map memory: see `dns.rs` on `bpf_loop` state).
    pub(crate) matching: MatchState,
    /// The mount namespace's top mount and its root dentry, passed through map memory by
    /// [`MountAt::cross`].
    mount_top: [u64; 2],
}

/// Zeroes the record's `fstype` with word stores (see `mem.rs`).
#[inline(always)]
fn zero_fstype(s: &mut FileScratch) {
    const {
        // The record starts the (8-byte aligned) map value, and `fstype` is word aligned in it.
        assert!(core::mem::offset_of!(FileScratch, record) == 0);
        assert!(core::mem::offset_of!(FileRecord, fstype).is_multiple_of(8));
    };
    // SAFETY: a writable FILE_FSTYPE_LEN-byte field, 8-byte aligned (asserted above).
    unsafe { mem::zero_bytes(&raw mut s.record.fstype) };
}

/// The [`match_path`] loop state in [`FileScratch::matching`].
#[repr(C)]
pub(crate) struct MatchState {
    /// Hash of the path bytes walked so far.
    hash: u64,
    /// Valid bytes of the path.
    len: u64,
    /// The file operation looked up.
    op: u32,
    /// The [`Slot`] matched (0: `path`, 1: `new_path`).
    slot: u32,
    /// Bytes of the current component so far.
    comp: u32,
    /// `.` bytes of the current component so far (a component of one or two bytes that are
    /// all dots is `.` or `..`).
    dots: u32,
    /// 1 when the slot holds a path whose `.`, `..` and empty components are flagged; 0 for a
    /// symlink's text (relative targets such as `../lib/x` are ordinary there).
    check_dots: u32,
}

impl MatchState {
    /// Whether the component just walked makes the path unclean: `.` or `..`, or (when
    /// `empty_counts`, i.e. at a `/` that is not the first byte) an empty one (`//`).
    #[inline(always)]
    fn unclean_component(&self, empty_counts: bool) -> bool {
        self.check_dots != 0
            && if self.comp == 0 {
                empty_counts
            } else {
                self.comp <= 2 && self.comp == self.dots
            }
    }
}

/// What `bpf_loop` hands to [`match_step`]: a stack pointer to the scratch.
#[repr(C)]
struct LoopCtx {
    scratch: *mut FileScratch,
}

/// Which path of the record a builder writes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    Path = 0,
    NewPath = 1,
}

/// The scratch slot of this CPU.
#[inline(always)]
pub(crate) fn scratch() -> Option<&'static mut FileScratch> {
    let ptr = FILE_SCRATCH.get_ptr_mut(0)?;
    // SAFETY: per-CPU slot from a successful look-up; programs do not re-enter on one CPU.
    Some(unsafe { &mut *ptr })
}

/// Start of the path buffer of `slot` (followed by at least `FILE_PATH_LEN` bytes of slack).
#[inline(always)]
fn buf(s: &mut FileScratch, slot: Slot) -> *mut u8 {
    match slot {
        Slot::Path => s.record.path.as_mut_ptr(),
        Slot::NewPath => s.record.new_path.as_mut_ptr(),
    }
}

/// Builds the absolute path of `dentry` on mount `vfsmount` into `slot`; returns its length.
/// Sets `FILE_PATH_TRUNCATED` (in the record's flags) when the path is deeper than
/// `FILE_DEPTH` or longer than `FILE_PATH_LEN - 1`.
#[inline(always)]
pub(crate) fn build_dentry_path<A: Access>(
    s: &mut FileScratch,
    slot: Slot,
    vfsmount: *const u8,
    dentry: *const u8,
) -> Result<u32, ReadError> {
    let complete = walk_dentry::<A>(s, vfsmount, dentry)?;
    write_path(s, slot, complete)
}

/// [`build_dentry_path`] for a one-path event of a plan whose record bits are `bits`: `None`
/// when the directory filter ([`dirs_verdict`], with `RECORD_FILE_DIRS`) drops the path before
/// its string is built (counted seen and filtered), else the path's length.
#[inline(always)]
pub(crate) fn build_watched_path<A: Access>(
    s: &mut FileScratch,
    slot: Slot,
    vfsmount: *const u8,
    dentry: *const u8,
    bits: u32,
) -> Result<Option<u32>, ReadError> {
    let complete = walk_dentry::<A>(s, vfsmount, dentry)?;
    if bits & RECORD_FILE_DIRS != 0 && dirs_verdict(s, complete) != DirVerdict::PassOn {
        count_dropped_by_dirs();
        return Ok(None);
    }
    write_path(s, slot, complete).map(Some)
}

/// `struct mount`'s `mnt_parent`, `mnt_mountpoint` and `mnt.mnt_root`, side by side
/// (`LAYOUT_MOUNT`, required by the loader).
#[repr(C)]
struct MountLinks {
    parent: u64,
    mountpoint: u64,
    root: u64,
}

/// The mount a walk is on (`struct mount`, probed: see [`walk_dentry`]) and its links, read in
/// one helper call (`LAYOUT_MOUNT`), again only when the walk crosses into the parent mount;
/// not, in the probed walks, when it crosses into the top of the current task's mount
/// namespace at the top's root ([`Self::cross`]).
struct MountAt {
    mnt: *const u8,
    links: MountLinks,
}

impl MountAt {
    /// The mount of `vfsmount` (its `mnt` member).
    #[inline(always)]
    fn of(vfsmount: *const u8) -> Result<Self, ReadError> {
        let mnt = vfsmount.wrapping_sub(offset(|o| &o.mount_mnt) as usize);
        let links = read_at(mnt, offset(|o| &o.mount_parent))?;
        Ok(Self { mnt, links })
    }

    /// At this mount's root: moves to the parent mount and returns the mount point to go on
    /// from, or `None` at the top of the mount tree (a mount that is its own parent).
    ///
    /// With `top_shortcut`, crossing into the top of the current task's mount namespace at
    /// the top's root dentry (where the kernel mounts the real root on rootfs, and where a
    /// container runtime's pivot_root leaves a container's root) ends the walk without
    /// reading the top's links: that dentry is the top's root, and the top has no parent.
    /// Only the probed walks take it: the syscall tracepoints, whose walks on a real host end
    /// so (one helper call less per file event: 10 to 15 ns per run of the open program on
    /// an Intel Xeon, attached first; not visible in the whole open storm; benches/README). In the BTF-typed programs, in each of three forms
    /// tried (a branch here, a branch at the walk's start, a branch-free mask), it made the
    /// verifier's work swing (6.12, the lsm tier's 21 programs of a file policy: 1.15M
    /// instructions in all became 1.20M to 1.75M, one program up to 690k), for one helper
    /// call of the walk's several.
    #[inline(always)]
    fn cross(
        &mut self,
        s: &mut FileScratch,
        top_shortcut: bool,
    ) -> Result<Option<*const u8>, ReadError> {
        let up = self.links.parent as *const u8;
        if up == self.mnt || up.is_null() {
            return Ok(None);
        }
        if top_shortcut {
            let (top, top_root) = kernel::current_mount_ns_top();
            // The top and its root are plain loads, which the verifier types as kernel
            // pointers; through the scratch slot they come back as numbers, like the probed
            // links, and cost the verifier no more states than those.
            // SAFETY: a field of the scratch slot; volatile so the values are read back.
            let [top, top_root] = unsafe {
                core::ptr::write_volatile(&mut s.mount_top, [top as u64, top_root]);
                core::ptr::read_volatile(&s.mount_top)
            };
            if self.links.parent == top && self.links.mountpoint == top_root {
                return Ok(None);
            }
        }
        let mountpoint = self.links.mountpoint as *const u8;
        self.mnt = up;
        self.links = read_at(up, offset(|o| &o.mount_parent))?;
        Ok(Some(mountpoint))
    }
}

/// The walk of [`build_dentry_path`]: collects the name pointers of the path's components in
/// [`FileScratch::comps`] (leaf first; their count in [`FileScratch::depth`]); returns whether
/// it reached the root (false: deeper than `FILE_DEPTH`).
///
/// With a BTF-typed `dentry` (`A` = [`Typed`]) the components on the leaf's own mount are
/// read with plain loads ([`walk_typed`]): an unwatched write open then costs a few loads per
/// directory instead of a `bpf_probe_read_kernel` call each. `struct mount` has no BTF type
/// reachable from a `vfsmount` (it is `container_of`, a negative offset the verifier
/// refuses), so the mount links, and every component past the first mount crossing, are
/// probed.
#[inline(always)]
pub(crate) fn walk_dentry<A: Access>(
    s: &mut FileScratch,
    vfsmount: *const u8,
    dentry: *const u8,
) -> Result<bool, ReadError> {
    let mut d = dentry;
    // The component count lives in map memory: as a stack value the verifier would check the
    // rest of the walk once per count.
    // SAFETY: a field of the scratch slot.
    unsafe { core::ptr::write_volatile(&mut s.depth, 0) };
    let mut m = MountAt::of(vfsmount)?;
    if A::TYPED {
        if !walk_typed(s, dentry, m.links.root)? {
            return Ok(false);
        }
        match m.cross(s, !A::TYPED)? {
            Some(mountpoint) => d = mountpoint,
            None => return Ok(true),
        }
    }
    let mut complete = false;
    for _ in 0..FILE_DEPTH + 8 {
        // A mount's root is recognised before it is read: a mount crossed costs no read of
        // its root dentry.
        let step = if d as u64 == m.links.root {
            None
        } else {
            let (parent, name) = kernel::dentry_parent_name(d)?;
            (d != parent).then_some((parent, name))
        };
        let Some((parent, name)) = step else {
            match m.cross(s, !A::TYPED)? {
                Some(mountpoint) => d = mountpoint,
                None => {
                    complete = true;
                    break;
                }
            }
            continue;
        };
        if !push_component(s, name) {
            break;
        }
        d = parent;
    }
    Ok(complete)
}

/// The components of BTF-typed `dentry` up to `root`, its mount's root (or a dentry that is
/// its own parent), in plain loads; returns whether it got there (false: deeper than
/// `FILE_DEPTH`).
#[inline(always)]
fn walk_typed(s: &mut FileScratch, dentry: *const u8, root: u64) -> Result<bool, ReadError> {
    let mut d = dentry;
    for _ in 0..=FILE_DEPTH {
        if d as u64 == root {
            return Ok(true);
        }
        let parent: *const u8 = Typed::read(d, offset(|o| &o.dentry_parent))?;
        if d == parent {
            return Ok(true);
        }
        let name: *const u8 = Typed::read(d, offset(|o| &o.dentry_name))?;
        if !push_component(s, name) {
            return Ok(false);
        }
        d = parent;
    }
    Ok(false)
}

/// Appends the name pointer of one more component to [`FileScratch::comps`]; false when
/// `FILE_DEPTH` are already there.
#[inline(always)]
fn push_component(s: &mut FileScratch, name: *const u8) -> bool {
    // SAFETY: a field of the scratch slot.
    let n = unsafe { core::ptr::read_volatile(&s.depth) } as usize;
    if n >= FILE_DEPTH {
        return false;
    }
    s.comps[n] = name as u64;
    // SAFETY: as above.
    unsafe { core::ptr::write_volatile(&mut s.depth, n as u32 + 1) };
    true
}

/// The string of [`build_dentry_path`]: writes the components [`walk_dentry`] collected into
/// `slot`; returns the path's length.
#[inline(always)]
pub(crate) fn write_path(
    s: &mut FileScratch,
    slot: Slot,
    complete: bool,
) -> Result<u32, ReadError> {
    // SAFETY: a field of the scratch slot.
    let n = unsafe { core::ptr::read_volatile(&s.depth) } as usize;
    let mut truncated = !complete;
    let base = buf(s, slot);
    let mut pos: u32 = 0;
    let mut j = n;
    for _ in 0..FILE_DEPTH {
        if j == 0 {
            break;
        }
        j -= 1;
        // Laundered and checked right before the index, so LLVM cannot turn the index into a
        // pointer walk from an unchecked start (6.1 then rejects the access).
        let idx = core::hint::black_box(j);
        if idx >= FILE_DEPTH {
            break;
        }
        let name = s.comps[idx] as *const u8;
        let p = (core::hint::black_box(pos) & 0xff) as usize;
        // SAFETY: p < 256 and the buffer has 256 bytes after the path buffer's 256.
        unsafe { *base.add(p) = b'/' };
        let p = core::hint::black_box(p) & 0xff;
        // SAFETY: destination p + 1 <= 256, size 256: inside the buffer and its slack.
        let r = unsafe {
            bpf_probe_read_kernel_str(base.add(p + 1).cast(), FILE_PATH_LEN as u32, name.cast())
        };
        if r <= 0 {
            return Err(ReadError);
        }
        pos = p as u32 + r as u32;
        if pos >= FILE_PATH_LEN as u32 - 1 {
            truncated = true;
            pos = FILE_PATH_LEN as u32 - 1;
            break;
        }
    }
    if n == 0 {
        // SAFETY: index 0 and 1 of the path buffer.
        unsafe {
            *base = b'/';
            *base.add(1) = 0;
        }
        pos = 1;
    }
    if truncated {
        s.record.flags |= FILE_PATH_TRUNCATED << (slot as u32);
    }
    Ok(through_map(s, slot, pos))
}

/// Bytes of one component name [`dirs_verdict`] reads (with its NUL); a longer one is not
/// judged.
pub(crate) const DIR_NAME_LEN: usize = 64;

/// What the directory filter ([`dirs_verdict`]) makes of a walked path.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum DirVerdict {
    /// The path may be watched: build its string and match it.
    PassOn,
    /// Dropped at its last component: another name in the same directory may be watched.
    DroppedAtLeaf,
    /// Dropped at a directory above its last component: so is every path in that directory.
    DroppedAbove,
}

/// The directory filter's verdict on the path [`walk_dentry`] collected (`FILE_DIR_BITS`,
/// the bits of `FILE_WATCH_DIRS`, valid while `PLAN_SETTINGS` has `RECORD_FILE_DIRS`): from
/// the first component down, the leading part so far is looked up; dropped at the first part
/// whose bit is clear (no watched path lies at or below it), passed on at a part listed with
/// a `/` after it (a watched subtree: the full match decides) or at a listed leaf (it can
/// only be a watched file). A part that only shares a listed part's bit is walked on, never
/// dropped. One name read, a short hash and one or two bit tests per component, until the
/// path leaves the watched directories; the whole path's string and per-byte match only for
/// the paths that stay in them. An incomplete walk, or a name of `DIR_NAME_LEN` bytes or
/// more, is not judged (passed on).
#[inline(always)]
pub(crate) fn dirs_verdict(s: &mut FileScratch, complete: bool) -> DirVerdict {
    // SAFETY: a field of the scratch slot.
    let n = unsafe { core::ptr::read_volatile(&s.depth) } as usize;
    if !complete || n == 0 {
        return DirVerdict::PassOn;
    }
    let Some(listed) = FILE_DIR_BITS.get(0) else {
        return DirVerdict::PassOn;
    };
    let mut hash = PATH_HASH_INIT;
    for level in 0..FILE_DEPTH {
        if level >= n {
            break;
        }
        // Laundered and checked right before the index (as in `write_path`): LLVM would
        // otherwise check a copy and index with the unchecked value, which the verifier
        // refuses.
        let idx = core::hint::black_box(n - 1 - level);
        if idx >= FILE_DEPTH {
            return DirVerdict::PassOn;
        }
        let name = s.comps[idx];
        let Some(part) = extend_by_name(s, hash, name) else {
            return DirVerdict::PassOn;
        };
        hash = part;
        if !listed.contains(hash) {
            return if level + 1 < n {
                DirVerdict::DroppedAbove
            } else {
                DirVerdict::DroppedAtLeaf
            };
        }
        if level + 1 < n && listed.contains(path_hash_step(hash, b'/')) {
            return DirVerdict::PassOn;
        }
    }
    DirVerdict::PassOn
}

/// `hash` (of a leading part of a path) extended by `/` and the name at kernel address
/// `name`, read into the scratch's `dir_name`; `None` for a name that cannot be read, is
/// empty, or has `DIR_NAME_LEN` bytes or more.
#[inline(always)]
fn extend_by_name(s: &mut FileScratch, hash: u64, name: u64) -> Option<u64> {
    let buf = &mut s.dir_name;
    // SAFETY: the helper writes at most DIR_NAME_LEN bytes into the buffer (NUL-terminated).
    let r = unsafe {
        bpf_probe_read_kernel_str(
            buf.as_mut_ptr().cast(),
            DIR_NAME_LEN as u32,
            name as *const _,
        )
    };
    if r <= 1 || r as usize >= DIR_NAME_LEN {
        return None;
    }
    let len = r as usize - 1;
    let mut hash = path_hash_step(hash, b'/');
    for (i, &b) in buf.iter().enumerate() {
        if i >= len {
            break;
        }
        hash = path_hash_step(hash, b);
    }
    Some(hash)
}

/// Stores `len` as the record's length of `slot` and returns it read back from map memory: an
/// unknown value to the verifier, so every exit of a path builder continues in one state.
#[inline(always)]
fn through_map(s: &mut FileScratch, slot: Slot, len: u32) -> u32 {
    let field = match slot {
        Slot::Path => &mut s.record.path_len,
        Slot::NewPath => &mut s.record.new_path_len,
    };
    // SAFETY: a field of the scratch slot.
    unsafe {
        core::ptr::write_volatile(field, len);
        core::ptr::read_volatile(field)
    }
}

/// Appends `/` and the user string at `user` to the path of `slot` of length `len`; returns the
/// new length (flags truncation).
#[inline(always)]
pub(crate) fn append_user(
    s: &mut FileScratch,
    slot: Slot,
    len: u32,
    user: u64,
) -> Result<u32, ReadError> {
    let base = buf(s, slot);
    let mut p = (core::hint::black_box(len) & 0xff) as usize;
    // A base of "/" needs no second separator.
    if p != 1 {
        // SAFETY: p < 256, inside the path buffer.
        unsafe { *base.add(p) = b'/' };
        p += 1;
    }
    let p = core::hint::black_box(p) & 0x1ff;
    if p > FILE_PATH_LEN {
        return Err(ReadError);
    }
    // SAFETY: destination p <= 256, size 256: inside the buffer and its slack.
    let r = unsafe {
        bpf_probe_read_user_str(base.add(p).cast(), FILE_PATH_LEN as u32, user as *const _)
    };
    if r <= 0 {
        return Err(ReadError);
    }
    let mut pos = p as u32 + r as u32 - 1;
    if pos >= FILE_PATH_LEN as u32 - 1 {
        s.record.flags |= FILE_PATH_TRUNCATED << (slot as u32);
        pos = FILE_PATH_LEN as u32 - 1;
    }
    Ok(pos)
}

/// Reads the user string at `user` into the start of `slot`; returns its length (without the
/// NUL), flags truncation.
#[inline(always)]
pub(crate) fn read_user_path(s: &mut FileScratch, slot: Slot, user: u64) -> Result<u32, ReadError> {
    let base = buf(s, slot);
    // SAFETY: destination is the 256-byte path buffer, size 256.
    let r = unsafe { bpf_probe_read_user_str(base.cast(), FILE_PATH_LEN as u32, user as *const _) };
    if r <= 0 {
        return Err(ReadError);
    }
    let len = r as u32 - 1;
    if len >= FILE_PATH_LEN as u32 - 1 {
        s.record.flags |= FILE_PATH_TRUNCATED << (slot as u32);
    }
    Ok(len.min(FILE_PATH_LEN as u32 - 1))
}

/// Where a string argument lives.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Space {
    User,
    Kernel,
}

/// Reads the string at `ptr` (in `space`) as it is into the start of `slot` (a symlink's
/// text, an attribute name, a mount source: nothing is joined or resolved); returns its
/// length, flags truncation.
#[inline(always)]
pub(crate) fn read_str(
    s: &mut FileScratch,
    slot: Slot,
    space: Space,
    ptr: u64,
) -> Result<u32, ReadError> {
    if space == Space::User {
        return read_user_path(s, slot, ptr);
    }
    let base = buf(s, slot);
    // SAFETY: destination is the 256-byte path buffer, size 256.
    let r =
        unsafe { bpf_probe_read_kernel_str(base.cast(), FILE_PATH_LEN as u32, ptr as *const _) };
    if r <= 0 {
        return Err(ReadError);
    }
    let len = r as u32 - 1;
    if len >= FILE_PATH_LEN as u32 - 1 {
        s.record.flags |= FILE_PATH_TRUNCATED << (slot as u32);
    }
    Ok(len.min(FILE_PATH_LEN as u32 - 1))
}

/// Reads a mount's file system type at `ptr` (in `space`; null: none) into the record's
/// `fstype` (cut to `FILE_FSTYPE_LEN - 1` bytes; left zero when unreadable).
#[inline(always)]
pub(crate) fn read_fstype(s: &mut FileScratch, space: Space, ptr: u64) {
    if ptr == 0 {
        return;
    }
    let dst = s.record.fstype.as_mut_ptr().cast();
    // SAFETY: destination is the FILE_FSTYPE_LEN-byte `fstype` buffer, size FILE_FSTYPE_LEN.
    let r = unsafe {
        match space {
            Space::User => bpf_probe_read_user_str(dst, FILE_FSTYPE_LEN as u32, ptr as *const _),
            Space::Kernel => {
                bpf_probe_read_kernel_str(dst, FILE_FSTYPE_LEN as u32, ptr as *const _)
            }
        }
    };
    if r <= 0 {
        zero_fstype(s);
    }
}

/// Looks `hash` up for `op`; remembers the first acting entry and whether any entry was found.
#[inline(always)]
fn lookup(s: &mut FileScratch, hash: u64, op: u32, exact: u32) {
    let key = FileWatchKey { hash, op, exact };
    if let Some(v) = FILE_WATCH.get_ptr(key) {
        // SAFETY: pointer from a successful look-up; PlanVerdict is Copy.
        let v = unsafe { *v };
        if v.actions != 0 && s.acting == 0 {
            s.verdict = v;
            s.acting = 1;
        }
        if v.actions != 0 || v.flags & PLAN_FLAG_RECORD != 0 {
            s.watched = 1;
        }
    }
}

/// Matches the path of `slot` (length `len`) against `FILE_WATCH` for `op`: each directory
/// prefix (at every `/` after the first byte), then the whole path as an exact entry. A
/// truncated path is not matched. The byte loop runs in `bpf_loop` ([`match_step`]) with its
/// state in the scratch; it flags `.`, `..` and empty components (`FILE_PATH_DOTS`: only user
/// paths of the signal tier's path syscalls have them), so the event is reported for userspace
/// to match on the cleaned path.
#[inline(always)]
pub(crate) fn match_path(s: &mut FileScratch, slot: Slot, len: u32, op: u32) {
    if s.record.flags & (FILE_PATH_TRUNCATED << (slot as u32)) != 0 {
        return;
    }
    s.matching = MatchState {
        hash: PATH_HASH_INIT,
        len: u64::from(len),
        op,
        slot: slot as u32,
        comp: 0,
        dots: 0,
        check_dots: u32::from(!(slot == Slot::NewPath && op == FileOp::Symlink as u32)),
    };
    let mut ctx = LoopCtx { scratch: s };
    // SAFETY: the callback and its context follow bpf_loop's contract (see match_step).
    unsafe {
        bpf_loop(
            FILE_PATH_LEN as u32,
            match_step as *const () as *mut c_void,
            (&mut ctx as *mut LoopCtx).cast(),
            0,
        );
    }
    // SAFETY: the scratch pointer is still valid; a volatile read, as the helper wrote it.
    let hash = unsafe { core::ptr::read_volatile(&(*ctx.scratch).matching.hash) };
    if s.matching.unclean_component(false) {
        s.record.flags |= FILE_PATH_DOTS;
    }
    lookup(s, hash, op, 1);
}

/// One byte of [`match_path`]: looks the directory prefix up at a `/`, then hashes the byte.
/// Returns 1 to stop the loop.
///
/// # Safety
/// `ctx` is the `LoopCtx` [`match_path`] passes to `bpf_loop`.
unsafe extern "C" fn match_step(index: u64, ctx: *mut c_void) -> i64 {
    // SAFETY: bpf_loop passes back the pointer match_path gave it, to a live LoopCtx whose
    // scratch pointer comes from a successful per-CPU array look-up.
    let s = unsafe { &mut *(*ctx.cast::<LoopCtx>()).scratch };
    let i = index as usize;
    if index >= s.matching.len {
        return 1;
    }
    let path = if s.matching.slot == Slot::NewPath as u32 {
        &s.record.new_path
    } else {
        &s.record.path
    };
    let Some(&b) = path.get(i) else {
        return 1;
    };
    let hash = s.matching.hash;
    if b == b'/' {
        if s.matching.unclean_component(i > 0) {
            s.record.flags |= FILE_PATH_DOTS;
        }
        s.matching.comp = 0;
        s.matching.dots = 0;
        if i > 0 {
            lookup(s, hash, s.matching.op, 0);
        }
    } else {
        s.matching.comp += 1;
        if b == b'.' {
            s.matching.dots += 1;
        }
    }
    s.matching.hash = path_hash_step(hash, b);
    0
}

/// Resets the per-event state of the scratch slot.
#[inline(always)]
pub(crate) fn reset(s: &mut FileScratch, op: u32) {
    s.record.op = op;
    s.record.flags = 0;
    s.record.open_flags = 0;
    s.record.mode = 0;
    s.record.uid = u32::MAX;
    s.record.gid = u32::MAX;
    s.record.path_len = 0;
    s.record.new_path_len = 0;
    zero_fstype(s);
    s.acting = 0;
    s.watched = 0;
}

/// Whether the event is reported: a watched path, a path the kernel could not match
/// (truncated, or with a `.`, `..` or empty component: the signal tier's path as written,
/// which userspace cleans and matches again), or a plan that cannot filter file events. Counts
/// seen/filtered/matched.
#[inline(always)]
pub(crate) fn reported(s: &FileScratch, record_bits: u32) -> bool {
    count(Counter::FileSeen);
    if s.watched != 0 {
        count(Counter::FileMatched);
        return true;
    }
    if record_bits & RECORD_FILE_ALL != 0
        || s.record.flags & (FILE_PATH_TRUNCATED | FILE_NEW_PATH_TRUNCATED | FILE_PATH_DOTS) != 0
    {
        count(Counter::FileUnfiltered);
        return true;
    }
    count(Counter::FileFiltered);
    false
}

/// Counts an event the directory filter dropped before its path string was built: seen and
/// filtered, as [`reported`] counts one dropped after the match.
#[inline(always)]
pub(crate) fn count_dropped_by_dirs() {
    count(Counter::FileSeen);
    count(Counter::FileFiltered);
}

/// Fills the header and comm and writes the record to the ring buffer.
#[inline(always)]
pub(crate) fn emit(s: &mut FileScratch, hook: Hook, verdict: &emit::Verdict) {
    s.record.header = emit::header(EventKind::File, size_of::<FileRecord>(), hook, 0, verdict);
    // SAFETY: the comm buffer is COMM_LEN bytes; on failure the helper zeroes it.
    unsafe {
        aya_ebpf::helpers::generated::bpf_get_current_comm(
            s.record.comm.as_mut_ptr().cast(),
            COMM_LEN as u32,
        );
    }
    if EVENTS
        .output::<FileRecord>(&s.record, emit::event_flags())
        .is_err()
    {
        count(Counter::RingbufFull);
    }
}
