//! Pinned enforcement (`enforcer run --on-crash keep-enforcing`): the links of the programs
//! that deny or kill, and the `COUNTERS` map, pinned under bpffs in one directory per engine
//! run, `/sys/fs/bpf/enforcer/<run id>/`. A pinned link keeps its program attached (and the
//! program keeps its plan maps) after the engine's file descriptors are gone, so a SIGKILLed
//! engine leaves enforcement in place; a clean stop removes the pins. The run id names the
//! engine process (`<pid>-<start time in clock ticks since boot>-<start, Unix seconds>`), so a
//! later engine can tell a dead run's pins from a running engine's.
//!
//! Pinned: LSM programs (lsm tier), fentry programs (signal tier), `sched_process_exec`, and the syscall tracepoints that can
//! kill (send, connect, open, path, kernel activity). Not pinned: the record-only programs
//! (fork, exit, bind, accept, DNS responses): without a reader their records go nowhere.

use std::{
    io,
    path::{Path, PathBuf},
};

use aya::{
    Ebpf,
    maps::{Map, MapData},
    pin::PinError,
    programs::{
        BtfTracePoint, CgroupSkb, CgroupSockAddr, FEntry, Lsm, TracePoint,
        cgroup_skb::CgroupSkbLinkId, cgroup_sock_addr::CgroupSockAddrLinkId, fentry::FEntryLinkId,
        links::FdLink, links::PinnedLink, lsm::LsmLinkId, tp_btf::BtfTracePointLinkId,
        trace_point::TracePointLinkId,
    },
};
use enforcer_common::maps::{COUNTERS, programs};
use serde_json::Value;

use super::{LoadError, program};

/// Where bpffs is mounted.
pub const BPFFS: &str = "/sys/fs/bpf";
/// The directory of the engine's pins (one sub-directory per run).
pub const PIN_ROOT: &str = "/sys/fs/bpf/enforcer";
/// File name of the pinned `COUNTERS` map in a run directory. (bpffs refuses names with a
/// dot: EPERM, they are reserved for the kernel's own files.)
pub const COUNTERS_PIN: &str = "map-COUNTERS";

/// Programs whose links are pinned: the ones that can deny or kill.
const ENFORCING: [&str; 12] = [
    programs::TP_SCHED_PROCESS_EXEC,
    programs::CGROUP_CONNECT4,
    programs::CGROUP_CONNECT6,
    programs::CGROUP_SKB_EGRESS,
    // They note the sockets' owners the egress program's kills are for.
    programs::CGROUP_SENDMSG4,
    programs::CGROUP_SENDMSG6,
    programs::TP_SYS_ENTER_SEND,
    programs::TP_SYS_ENTER_CONNECT,
    programs::TP_SYS_EXIT_OPEN,
    programs::TP_SYS_ENTER_PATH,
    programs::TP_SYS_ENTER_KERNEL,
    programs::TP_MODULE_LOAD,
];

/// Whether the raw tracepoint or tracepoint program `name` can deny or kill (LSM and fentry
/// programs always can).
pub fn enforces(name: &str) -> bool {
    ENFORCING.contains(&name)
}

/// One attached link of an enforcing program, as [`super::Loaded::attach`] made it.
#[derive(Debug)]
pub enum EnforcingLink {
    /// An LSM program.
    Lsm(&'static str, LsmLinkId),
    /// An fentry program (`trampolines.rs`).
    FEntry(&'static str, FEntryLinkId),
    /// A BTF tracepoint program.
    BtfTracePoint(&'static str, BtfTracePointLinkId),
    /// A tracepoint program and its tracepoint (a program may be attached to several).
    TracePoint(&'static str, &'static str, TracePointLinkId),
    /// A `cgroup/connect*` or `cgroup/sendmsg*` program (`cgroup_connect.rs`,
    /// `cgroup_egress.rs`).
    CgroupSockAddr(&'static str, CgroupSockAddrLinkId),
    /// A `cgroup_skb` program (`cgroup_egress.rs`).
    CgroupSkb(&'static str, CgroupSkbLinkId),
}

/// Errors of pinning.
#[derive(Debug, thiserror::Error)]
pub enum PinFailure {
    /// bpffs is not mounted and cannot be.
    #[error("cannot mount bpffs on {BPFFS}: {0}")]
    Mount(io::Error),
    /// The run directory could not be made.
    #[error("cannot create {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A link could not be taken from its program or turned into a pinnable link.
    #[error("cannot pin the link of {program}: {why}")]
    Link {
        /// The program.
        program: &'static str,
        /// Why.
        why: String,
    },
    /// `BPF_OBJ_PIN` failed.
    #[error("cannot pin {what} in {PIN_ROOT}")]
    Pin {
        /// The link or map.
        what: String,
        /// The cause.
        source: PinError,
    },
    /// A program lookup failed.
    #[error(transparent)]
    Load(#[from] Box<LoadError>),
}

/// Mounts bpffs on [`BPFFS`] unless it is mounted there.
pub fn ensure_bpffs() -> io::Result<()> {
    if is_bpffs(Path::new(BPFFS)) {
        return Ok(());
    }
    nix::mount::mount(
        Some("bpf"),
        BPFFS,
        Some("bpf"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .map_err(io::Error::from)
}

fn is_bpffs(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::BPF_FS_MAGIC)
}

/// An engine run: its process and when it started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunId {
    /// The engine's process id.
    pub pid: u32,
    /// The process start time (clock ticks since boot, `/proc/PID/stat` field 22): with the
    /// pid, names one process for the life of the machine.
    pub start_ticks: u64,
    /// When the run started (Unix seconds).
    pub started_unix: u64,
}

impl RunId {
    /// This process.
    pub fn current() -> io::Result<Self> {
        let pid = std::process::id();
        let start_ticks = start_ticks(pid)?
            .ok_or_else(|| io::Error::other("cannot read the start time of this process"))?;
        let started_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Ok(Self {
            pid,
            start_ticks,
            started_unix,
        })
    }

    /// Parses a run directory name.
    pub fn parse(name: &str) -> Option<Self> {
        let mut parts = name.split('-');
        let id = Self {
            pid: parts.next()?.parse().ok()?,
            start_ticks: parts.next()?.parse().ok()?,
            started_unix: parts.next()?.parse().ok()?,
        };
        parts.next().is_none().then_some(id)
    }

    /// Whether the engine process of this run is still running.
    pub fn alive(&self) -> bool {
        start_ticks(self.pid).is_ok_and(|t| t == Some(self.start_ticks))
    }
}

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}-{}", self.pid, self.start_ticks, self.started_unix)
    }
}

/// The start time of process `pid` (field 22 of `/proc/PID/stat`), `None` when it does not
/// exist.
fn start_ticks(pid: u32) -> io::Result<Option<u64>> {
    let stat = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    Ok(after
        .split_whitespace()
        .nth(19)
        .and_then(|t| t.parse().ok()))
}

/// The pins of this engine run; [`Pins::remove`] ends them (the clean stop).
#[derive(Debug)]
pub struct Pins {
    dir: PathBuf,
    /// The pinned links by file name.
    links: Vec<(String, PinnedLink)>,
    map: Option<PathBuf>,
}

impl Pins {
    /// The run directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How many links are pinned.
    pub fn links(&self) -> usize {
        self.links.len()
    }

    /// Removes the pins and the run directory. The links stay attached while the engine still
    /// holds them (until the programs are dropped).
    pub fn remove(self) -> io::Result<()> {
        let mut first_err = None;
        for (_, link) in self.links {
            // The returned FdLink still holds the attachment until the engine drops it.
            if let Err(e) = link.unpin() {
                first_err.get_or_insert(e);
            }
        }
        if let Some(map) = &self.map
            && let Err(e) = std::fs::remove_file(map)
        {
            first_err.get_or_insert(e);
        }
        if let Err(e) = std::fs::remove_dir(&self.dir) {
            first_err.get_or_insert(e);
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// Pins every link in `links` (taken from the programs of `ebpf`) and the `COUNTERS` map into
/// `root/<run>`. On an error the pins made so far are removed: the caller stops.
pub fn pin(
    ebpf: &mut Ebpf,
    links: Vec<EnforcingLink>,
    root: &Path,
    run: RunId,
) -> Result<Pins, PinFailure> {
    ensure_bpffs().map_err(PinFailure::Mount)?;
    let dir = root.join(run.to_string());
    std::fs::create_dir_all(&dir).map_err(|source| PinFailure::Dir {
        path: dir.clone(),
        source,
    })?;
    let mut pins = Pins {
        dir,
        links: Vec::new(),
        map: None,
    };
    match pin_into(ebpf, links, &mut pins) {
        Ok(()) => Ok(pins),
        Err(err) => {
            let _ = pins.remove();
            Err(err)
        }
    }
}

impl Pins {
    /// Pins `links` too (enforcing programs attached after start, by a policy reload).
    pub fn add(&mut self, ebpf: &mut Ebpf, links: Vec<EnforcingLink>) -> Result<(), PinFailure> {
        pin_links(ebpf, links, self)
    }

    /// Pins `link`, already taken out of its program, as `file` in the run directory. On
    /// failure the link is gone (see [`super::on_demand::OnDemandLinks::pin`]).
    pub fn adopt(&mut self, file: String, link: FdLink) -> Result<(), PinFailure> {
        let pinned = link
            .pin(self.dir.join(&file))
            .map_err(|source| PinFailure::Pin {
                what: file.clone(),
                source,
            })?;
        self.links.push((file, pinned));
        Ok(())
    }

    /// Unpins link `file` and drops it: the link detaches (its program leaves the hook). Not
    /// pinned here: nothing to do.
    pub fn release(&mut self, file: &str) -> io::Result<()> {
        let Some(at) = self.links.iter().position(|(name, _)| name == file) else {
            return Ok(());
        };
        let (_, link) = self.links.swap_remove(at);
        link.unpin().map(drop)
    }
}

/// The pin file name of `program`'s link (`link-<program>`), with its tracepoint when it has
/// one (`link-<program>-<tracepoint>`: a program may be attached to several; bpffs refuses
/// dots).
pub fn link_file(program: &str, tracepoint: Option<&str>) -> String {
    match tracepoint {
        Some(tp) => format!("link-{program}-{tp}"),
        None => format!("link-{program}"),
    }
}

fn pin_into(ebpf: &mut Ebpf, links: Vec<EnforcingLink>, pins: &mut Pins) -> Result<(), PinFailure> {
    pin_links(ebpf, links, pins)?;
    if let Some(map) = ebpf.map(COUNTERS) {
        let path = pins.dir.join(COUNTERS_PIN);
        map.pin(&path).map_err(|source| PinFailure::Pin {
            what: COUNTERS_PIN.to_owned(),
            source,
        })?;
        pins.map = Some(path);
    }
    Ok(())
}

fn pin_links(
    ebpf: &mut Ebpf,
    links: Vec<EnforcingLink>,
    pins: &mut Pins,
) -> Result<(), PinFailure> {
    let link_err = |program: &'static str| {
        move |e: &dyn std::fmt::Display| PinFailure::Link {
            program,
            why: e.to_string(),
        }
    };
    for link in links {
        let (file, fd_link) = match link {
            EnforcingLink::Lsm(name, id) => {
                let link = program::<Lsm>(ebpf, name)
                    .map_err(Box::new)?
                    .take_link(id)
                    .map_err(|e| link_err(name)(&e))?;
                (link_file(name, None), FdLink::from(link))
            }
            EnforcingLink::FEntry(name, id) => {
                let link = program::<FEntry>(ebpf, name)
                    .map_err(Box::new)?
                    .take_link(id)
                    .map_err(|e| link_err(name)(&e))?;
                (link_file(name, None), FdLink::from(link))
            }
            EnforcingLink::BtfTracePoint(name, id) => {
                let link = program::<BtfTracePoint>(ebpf, name)
                    .map_err(Box::new)?
                    .take_link(id)
                    .map_err(|e| link_err(name)(&e))?;
                (link_file(name, None), FdLink::from(link))
            }
            EnforcingLink::TracePoint(name, tracepoint, id) => {
                let link = program::<TracePoint>(ebpf, name)
                    .map_err(Box::new)?
                    .take_link(id)
                    .map_err(|e| link_err(name)(&e))?;
                // A perf-event link is a bpf_link on every supported kernel (5.15+).
                let fd = FdLink::try_from(link).map_err(|e| link_err(name)(&e))?;
                (link_file(name, Some(tracepoint)), fd)
            }
            EnforcingLink::CgroupSockAddr(name, id) => {
                let link = program::<CgroupSockAddr>(ebpf, name)
                    .map_err(Box::new)?
                    .take_link(id)
                    .map_err(|e| link_err(name)(&e))?;
                // Attached as a bpf_link (5.7+, every supported kernel).
                let fd = FdLink::try_from(link).map_err(|e| link_err(name)(&e))?;
                (link_file(name, None), fd)
            }
            EnforcingLink::CgroupSkb(name, id) => {
                let link = program::<CgroupSkb>(ebpf, name)
                    .map_err(Box::new)?
                    .take_link(id)
                    .map_err(|e| link_err(name)(&e))?;
                // As above.
                let fd = FdLink::try_from(link).map_err(|e| link_err(name)(&e))?;
                (link_file(name, None), fd)
            }
        };
        pins.adopt(file, fd_link)?;
    }
    Ok(())
}

/// Pins left in `root` by an engine run.
#[derive(Debug, Clone)]
pub struct PinnedRun {
    /// The run, when the directory name parses.
    pub run: Option<RunId>,
    /// The run directory.
    pub dir: PathBuf,
    /// The pinned links' file names.
    pub links: Vec<String>,
    /// Whether the run's engine is still running (then its pins are not leftovers).
    pub alive: bool,
}

/// `BPF_OBJ_GET` and its `BPF_F_RDONLY` file flag (`include/uapi/linux/bpf.h`).
const BPF_OBJ_GET: libc::c_long = 7;
const BPF_F_RDONLY: u32 = 1 << 3;

/// Opens the pinned map at `path` read-only (aya's `MapData::from_pin` asks for read-write,
/// which a running engine's self-protection refuses to every other process; reading the
/// counters needs no more).
fn open_read_only(path: &Path) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::{fd::FromRawFd as _, unix::ffi::OsStrExt as _};
    let path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // `union bpf_attr` for BPF_OBJ_GET: `pathname` (u64), `bpf_fd` (u32), `file_flags` (u32).
    let mut attr = [0u8; 16];
    attr[..8].copy_from_slice(&(path.as_ptr() as u64).to_ne_bytes());
    attr[12..].copy_from_slice(&BPF_F_RDONLY.to_ne_bytes());
    // SAFETY: `attr` is a valid, initialized buffer of the size passed, laid out as the
    // kernel reads it for BPF_OBJ_GET; `path` outlives the call.
    let fd = unsafe { libc::syscall(libc::SYS_bpf, BPF_OBJ_GET, attr.as_ptr(), attr.len()) };
    let fd = i32::try_from(fd)
        .map_err(|_| io::Error::other("bpf(BPF_OBJ_GET) returned an fd out of range"))?;
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

impl PinnedRun {
    /// The kernel counters of the run's programs, from its pinned `COUNTERS` map.
    pub fn counters(&self) -> Option<Value> {
        let fd = open_read_only(&self.dir.join(COUNTERS_PIN)).ok()?;
        let data = MapData::from_fd(fd).ok()?;
        let map = Map::from_map_data(data).ok()?;
        Some(super::counters::read_map(&map))
    }

    /// Removes the run's pins and directory: its programs detach once nothing else holds
    /// them. Returns how many links were pinned.
    pub fn remove(&self) -> io::Result<usize> {
        let mut removed = 0;
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            std::fs::remove_file(entry.path())?;
            if entry.file_name().to_string_lossy().starts_with("link-") {
                removed += 1;
            }
        }
        std::fs::remove_dir(&self.dir)?;
        Ok(removed)
    }
}

/// The run directories under `root` (none when it does not exist), oldest run first.
pub fn runs(root: &Path) -> io::Result<Vec<PinnedRun>> {
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut runs = Vec::new();
    for entry in entries {
        let entry = entry?;
        if !entry.file_type()?.is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        let run = RunId::parse(&name);
        let mut links: Vec<String> = std::fs::read_dir(entry.path())?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("link-"))
            .collect();
        links.sort();
        runs.push(PinnedRun {
            alive: run.is_some_and(|r| r.alive()),
            run,
            dir: entry.path(),
            links,
        });
    }
    runs.sort_by_key(|r| r.run.map(|r| (r.started_unix, r.start_ticks)));
    Ok(runs)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_kernel_operation_programs_are_pinned_and_named_by_their_tracepoint() {
        // Both can kill (`plan::act`); the on-demand links pin only what `enforces` names.
        assert!(enforces(programs::TP_SYS_ENTER_KERNEL));
        assert!(enforces(programs::TP_MODULE_LOAD));
        assert!(!enforces(programs::TP_SYS_ENTER_BIND));
        assert_eq!(
            link_file(programs::TP_SYS_ENTER_KERNEL, Some("sys_enter_ptrace")),
            "link-tp_sys_enter_kernel-sys_enter_ptrace"
        );
        assert_eq!(
            link_file(programs::TP_MODULE_LOAD, None),
            "link-tp_module_load"
        );
    }

    #[test]
    fn run_ids_round_trip_and_name_this_process() {
        let me = RunId::current().unwrap();
        assert_eq!(RunId::parse(&me.to_string()), Some(me));
        assert!(me.alive());
        let other = RunId {
            start_ticks: me.start_ticks + 1,
            ..me
        };
        assert!(!other.alive(), "same pid, other start: a reused pid");
        for bad in ["", "1-2", "1-2-3-4", "a-2-3", "1--3"] {
            assert_eq!(RunId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn no_root_means_no_runs() {
        let dir = tempfile::tempdir().unwrap();
        assert!(runs(&dir.path().join("absent")).unwrap().is_empty());
        std::fs::create_dir(dir.path().join("12-34-56")).unwrap();
        std::fs::create_dir(dir.path().join("junk")).unwrap();
        let found = runs(dir.path()).unwrap();
        assert_eq!(found.len(), 2);
        let parsed = found.iter().find(|r| r.run.is_some()).unwrap();
        assert_eq!(parsed.run.unwrap().pid, 12);
        assert!(parsed.links.is_empty());
    }
}
