//! The field table: every field of every event kind, in a stable order (it defines the
//! [`FieldId`]s and the `policy fields` listing).

use super::{Derive, FieldDef, KernelFamily, Kind, Locator, Type};

const fn f(
    name: &'static str,
    ty: Type,
    kind: Option<Kind>,
    ptr: &'static str,
    doc: &'static str,
) -> FieldDef {
    FieldDef {
        name,
        ty,
        list: false,
        kind,
        kernel: None,
        locator: Locator::Ptr(ptr),
        derive: None,
        doc,
    }
}

const fn list(mut d: FieldDef) -> FieldDef {
    d.list = true;
    d
}

const fn kernel(mut d: FieldDef, family: KernelFamily) -> FieldDef {
    d.kernel = Some(family);
    d
}

const fn derive(mut d: FieldDef, how: Derive) -> FieldDef {
    d.derive = Some(how);
    d
}

const fn each(mut d: FieldDef, array: &'static str, item: &'static str) -> FieldDef {
    d.list = true;
    d.locator = Locator::Each(array, item);
    d
}

use Kind as K;
use Type as T;

const P: Option<Kind> = None;
const EXEC: Option<Kind> = Some(K::Exec);

/// Every field. Order is stable: it defines [`FieldId`]s and the `policy fields` listing.
pub(crate) static FIELDS: &[FieldDef] = &[
    // process (common to all kinds)
    f(
        "process.pid",
        T::Int,
        P,
        "/process/pid",
        "Thread-group id of the acting process.",
    ),
    f(
        "process.ppid",
        T::Int,
        P,
        "/process/ppid",
        "Parent process id.",
    ),
    f("process.uid", T::Int, P, "/process/uid", "Real user id."),
    f("process.gid", T::Int, P, "/process/gid", "Real group id."),
    f(
        "process.euid",
        T::Int,
        P,
        "/process/euid",
        "Effective user id.",
    ),
    f(
        "process.comm",
        T::Str,
        P,
        "/process/comm",
        "Task command name (at most 15 bytes, settable by the process).",
    ),
    f(
        "process.file.path",
        T::Str,
        P,
        "/process/file/path",
        "Path of the process's executable.",
    ),
    derive(
        f(
            "process.file.name",
            T::Str,
            P,
            "/process/file/name",
            "Basename of the process's executable.",
        ),
        Derive::Basename("/process/file/path"),
    ),
    f(
        "process.cwd",
        T::Str,
        P,
        "/process/cwd",
        "Current working directory.",
    ),
    f(
        "process.cgroup",
        T::Str,
        P,
        "/process/cgroup/path",
        "cgroup v2 path of the process.",
    ),
    f(
        "process.cgroup.id",
        T::Int,
        P,
        "/process/cgroup/id",
        "cgroup v2 id of the process.",
    ),
    f(
        "process.container.id",
        T::Str,
        P,
        "/process/container/id",
        "Container id derived from the cgroup; empty on the host.",
    ),
    f(
        "process.parent.file.name",
        T::Str,
        P,
        "/process/ancestors/0/file/name",
        "Basename of the parent's executable (first ancestor).",
    ),
    f(
        "process.parent.file.path",
        T::Str,
        P,
        "/process/ancestors/0/file/path",
        "Path of the parent's executable (first ancestor).",
    ),
    each(
        f(
            "process.ancestors.file.name",
            T::Str,
            P,
            "",
            "Basenames of all ancestors' executables, parent first (any ancestor matches).",
        ),
        "/process/ancestors",
        "/file/name",
    ),
    each(
        f(
            "process.ancestors.file.path",
            T::Str,
            P,
            "",
            "Paths of all ancestors' executables, parent first (any ancestor matches).",
        ),
        "/process/ancestors",
        "/file/path",
    ),
    each(
        f(
            "process.ancestors.pid",
            T::Int,
            P,
            "",
            "Pids of all ancestors, parent first.",
        ),
        "/process/ancestors",
        "/pid",
    ),
    // exec
    kernel(
        f(
            "exec.file.path",
            T::Str,
            EXEC,
            "/exec/file/path",
            "Absolute path of the executed file.",
        ),
        KernelFamily::ExecPath,
    ),
    kernel(
        derive(
            f(
                "exec.file.name",
                T::Str,
                EXEC,
                "/exec/file/name",
                "Basename of the executed file.",
            ),
            Derive::Basename("/exec/file/path"),
        ),
        KernelFamily::ExecName,
    ),
    f(
        "exec.file.hash.sha256",
        T::Str,
        EXEC,
        "/exec/file/hash/sha256",
        "SHA-256 of the executed file, lowercase hex, when known.",
    ),
    f(
        "exec.file.inode",
        T::Int,
        EXEC,
        "/exec/file/inode",
        "Inode number of the executed file.",
    ),
    f(
        "exec.file.dev",
        T::Int,
        EXEC,
        "/exec/file/dev",
        "Device of the executed file's filesystem (st_dev encoding).",
    ),
    list(f(
        "exec.args",
        T::Str,
        EXEC,
        "/exec/args",
        "Arguments after argv[0]; any argument matches.",
    )),
    f(
        "exec.argv0",
        T::Str,
        EXEC,
        "/exec/argv0",
        "argv[0] as passed by the caller (can be spoofed).",
    ),
    list(f(
        "exec.envs",
        T::Str,
        EXEC,
        "/exec/envs",
        "Selected environment entries, `NAME=value`; any entry matches.",
    )),
    f(
        "exec.interpreter",
        T::Str,
        EXEC,
        "/exec/interpreter",
        "Interpreter of a script or the dynamic loader used, empty if none.",
    ),
    f(
        "exec.is_memfd",
        T::Bool,
        EXEC,
        "/exec/is_memfd",
        "The executed file is a memfd (fileless execution).",
    ),
    f(
        "exec.cwd",
        T::Str,
        EXEC,
        "/exec/cwd",
        "Working directory at exec time.",
    ),
    f(
        "exec.is_deleted",
        T::Bool,
        EXEC,
        "/exec/is_deleted",
        "The executed file has no directory entry left (deleted, or a memfd).",
    ),
    f(
        "exec.euid",
        T::Int,
        EXEC,
        "/exec/euid",
        "Effective user id after the exec (setuid programs change it).",
    ),
    f(
        "exec.caps.effective",
        T::Int,
        EXEC,
        "/exec/caps/effective",
        "Effective capabilities after the exec, as a bit mask (bit n = capability n).",
    ),
    f(
        "exec.caps.permitted",
        T::Int,
        EXEC,
        "/exec/caps/permitted",
        "Permitted capabilities after the exec, as a bit mask.",
    ),
    // fork / exit
    f(
        "fork.child.pid",
        T::Int,
        Some(K::Fork),
        "/fork/child/pid",
        "Pid of the new child.",
    ),
    f(
        "exit.code",
        T::Int,
        Some(K::Exit),
        "/exit/code",
        "Exit status.",
    ),
    f(
        "exit.signal",
        T::Int,
        Some(K::Exit),
        "/exit/signal",
        "Terminating signal, 0 if none.",
    ),
    f(
        "exit.runtime",
        T::Duration,
        Some(K::Exit),
        "/exit/runtime",
        "How long the process ran.",
    ),
    // file events
    f(
        "open.file.path",
        T::Str,
        Some(K::Open),
        "/open/file/path",
        "Path opened.",
    ),
    derive(
        f(
            "open.file.name",
            T::Str,
            Some(K::Open),
            "/open/file/name",
            "Basename of the path opened.",
        ),
        Derive::Basename("/open/file/path"),
    ),
    f(
        "open.flags",
        T::Int,
        Some(K::Open),
        "/open/flags",
        "open(2) flags as a number (O_WRONLY = 1, O_RDWR = 2, O_CREAT = 64, ...).",
    ),
    derive(
        f(
            "open.is_write",
            T::Bool,
            Some(K::Open),
            "/open/is_write",
            "Opened for writing (derived from `open.flags` when absent).",
        ),
        Derive::OpenWrites("/open/flags"),
    ),
    f(
        "unlink.file.path",
        T::Str,
        Some(K::Unlink),
        "/unlink/file/path",
        "Path unlinked.",
    ),
    f(
        "rename.old.path",
        T::Str,
        Some(K::Rename),
        "/rename/old/path",
        "Path before the rename.",
    ),
    f(
        "rename.new.path",
        T::Str,
        Some(K::Rename),
        "/rename/new/path",
        "Path after the rename.",
    ),
    f(
        "chmod.file.path",
        T::Str,
        Some(K::Chmod),
        "/chmod/file/path",
        "Path whose mode changed.",
    ),
    f(
        "chmod.mode",
        T::Int,
        Some(K::Chmod),
        "/chmod/mode",
        "New mode bits.",
    ),
    f(
        "chown.file.path",
        T::Str,
        Some(K::Chown),
        "/chown/file/path",
        "Path whose owner changed.",
    ),
    f(
        "chown.uid",
        T::Int,
        Some(K::Chown),
        "/chown/uid",
        "New owner uid.",
    ),
    f(
        "chown.gid",
        T::Int,
        Some(K::Chown),
        "/chown/gid",
        "New owner gid.",
    ),
    f(
        "link.file.path",
        T::Str,
        Some(K::Link),
        "/link/file/path",
        "Path of the new link.",
    ),
    f(
        "link.target.path",
        T::Str,
        Some(K::Link),
        "/link/target/path",
        "What the link points to.",
    ),
    f(
        "link.is_symlink",
        T::Bool,
        Some(K::Link),
        "/link/is_symlink",
        "A symbolic (not hard) link.",
    ),
    f(
        "mkdir.file.path",
        T::Str,
        Some(K::Mkdir),
        "/mkdir/file/path",
        "Directory created.",
    ),
    f(
        "rmdir.file.path",
        T::Str,
        Some(K::Rmdir),
        "/rmdir/file/path",
        "Directory removed.",
    ),
    f(
        "setxattr.file.path",
        T::Str,
        Some(K::Setxattr),
        "/setxattr/file/path",
        "Path whose attribute was set.",
    ),
    f(
        "setxattr.name",
        T::Str,
        Some(K::Setxattr),
        "/setxattr/name",
        "Attribute name.",
    ),
    f(
        "utimes.file.path",
        T::Str,
        Some(K::Utimes),
        "/utimes/file/path",
        "Path whose times changed.",
    ),
    f(
        "mount.source",
        T::Str,
        Some(K::Mount),
        "/mount/source",
        "Mount source.",
    ),
    f(
        "mount.target",
        T::Str,
        Some(K::Mount),
        "/mount/target",
        "Mount point.",
    ),
    f(
        "mount.fstype",
        T::Str,
        Some(K::Mount),
        "/mount/fstype",
        "File system type.",
    ),
    f(
        "umount.target",
        T::Str,
        Some(K::Umount),
        "/umount/target",
        "Mount point removed.",
    ),
    // dns
    kernel(
        f(
            "dns.question.name",
            T::Str,
            Some(K::Dns),
            "/dns/question/name",
            "Queried name, lowercase, without the trailing dot.",
        ),
        KernelFamily::DnsName,
    ),
    f(
        "dns.question.type",
        T::Str,
        Some(K::Dns),
        "/dns/question/type",
        "Query type mnemonic (`A`, `AAAA`, `TXT`, ...).",
    ),
    f(
        "dns.is_response",
        T::Bool,
        Some(K::Dns),
        "/dns/is_response",
        "A response (false: a query).",
    ),
    f(
        "dns.rcode",
        T::Int,
        Some(K::Dns),
        "/dns/rcode",
        "Response code of a response.",
    ),
    each(
        f(
            "dns.answers.ip",
            T::Ip,
            Some(K::Dns),
            "",
            "Addresses in the answer section; any address matches.",
        ),
        "/dns/answers",
        "/ip",
    ),
    f(
        "dns.server.ip",
        T::Ip,
        Some(K::Dns),
        "/dns/server/ip",
        "Resolver the query was sent to.",
    ),
    // network
    kernel(
        f(
            "connect.addr.ip",
            T::Ip,
            Some(K::Connect),
            "/connect/addr/ip",
            "Destination address.",
        ),
        KernelFamily::ConnectAddr,
    ),
    f(
        "connect.addr.dns_name",
        T::Str,
        Some(K::Connect),
        "/connect/addr/dns_name",
        "The DNS question name whose answer, seen on this host and within its TTL, gave the destination address (absent when none did). A deny/kill rule on it is enforced in the kernel: the engine writes each learned address into the connect plan.",
    ),
    f(
        "connect.addr.port",
        T::Int,
        Some(K::Connect),
        "/connect/addr/port",
        "Destination port.",
    ),
    kernel(
        derive(
            f(
                "connect.addr.is_public",
                T::Bool,
                Some(K::Connect),
                "/connect/addr/is_public",
                "Destination is a public address (derived from the address when absent; `network.extra_public_ranges` count as public).",
            ),
            Derive::IsPublic("/connect/addr/ip"),
        ),
        KernelFamily::ConnectPublic,
    ),
    f(
        "connect.protocol",
        T::Str,
        Some(K::Connect),
        "/connect/protocol",
        "`tcp` or `udp`.",
    ),
    f(
        "bind.addr.ip",
        T::Ip,
        Some(K::Bind),
        "/bind/addr/ip",
        "Local address bound.",
    ),
    f(
        "bind.addr.port",
        T::Int,
        Some(K::Bind),
        "/bind/addr/port",
        "Local port bound.",
    ),
    f(
        "bind.protocol",
        T::Str,
        Some(K::Bind),
        "/bind/protocol",
        "`tcp` or `udp`.",
    ),
    f(
        "accept.addr.ip",
        T::Ip,
        Some(K::Accept),
        "/accept/addr/ip",
        "Remote address of the accepted connection.",
    ),
    f(
        "accept.addr.port",
        T::Int,
        Some(K::Accept),
        "/accept/addr/port",
        "Remote port of the accepted connection.",
    ),
    f(
        "accept.local.port",
        T::Int,
        Some(K::Accept),
        "/accept/local/port",
        "Local port that accepted.",
    ),
    f(
        "accept.protocol",
        T::Str,
        Some(K::Accept),
        "/accept/protocol",
        "`tcp` for a stream socket (`typeN` for other socket types).",
    ),
    // first payload
    f(
        "payload.addr.ip",
        T::Ip,
        Some(K::Payload),
        "/payload/addr/ip",
        "Peer address of the connection.",
    ),
    f(
        "payload.addr.port",
        T::Int,
        Some(K::Payload),
        "/payload/addr/port",
        "Peer port of the connection.",
    ),
    derive(
        f(
            "payload.addr.is_public",
            T::Bool,
            Some(K::Payload),
            "/payload/addr/is_public",
            "Peer is a public address (derived when absent; `network.extra_public_ranges` count as public).",
        ),
        Derive::IsPublic("/payload/addr/ip"),
    ),
    f(
        "payload.data",
        T::Str,
        Some(K::Payload),
        "/payload/data",
        "First bytes written on the connection (lossy UTF-8, capped).",
    ),
    kernel(
        derive(
            f(
                "payload.stratum.method",
                T::Str,
                Some(K::Payload),
                "/payload/stratum/method",
                "`method` of a JSON-RPC object in the first line of the payload (derived from `payload.data` when absent).",
            ),
            Derive::StratumMethod("/payload/data"),
        ),
        KernelFamily::PayloadMethod,
    ),
    // kernel
    f(
        "kernel.op",
        T::Str,
        Some(K::Kernel),
        "/kernel/op",
        "Operation: module_load, module_unload, bpf, ptrace, kexec, devmem, msr, setuid, setgid, capset, unshare, setns, hugepages.",
    ),
    f(
        "kernel.module.name",
        T::Str,
        Some(K::Kernel),
        "/kernel/module/name",
        "Module name for module_load / module_unload.",
    ),
    f(
        "kernel.module.args",
        T::Str,
        Some(K::Kernel),
        "/kernel/module/args",
        "Module parameters for module_load (e.g. `allow_writes=on`).",
    ),
    f(
        "kernel.bpf.cmd",
        T::Str,
        Some(K::Kernel),
        "/kernel/bpf/cmd",
        "bpf(2) command name for op bpf.",
    ),
    f(
        "kernel.target.pid",
        T::Int,
        Some(K::Kernel),
        "/kernel/target/pid",
        "Target pid of ptrace.",
    ),
    f(
        "kernel.target.path",
        T::Str,
        Some(K::Kernel),
        "/kernel/target/path",
        "Device or sysctl path for devmem, msr and hugepages.",
    ),
    f(
        "kernel.value",
        T::Int,
        Some(K::Kernel),
        "/kernel/value",
        "Value written (hugepages) or new id (setuid/setgid).",
    ),
    // cpu
    f(
        "cpu.usage.percent",
        T::Int,
        Some(K::Cpu),
        "/cpu/usage/percent",
        "Mean CPU use over `cpu.window`, percent of the machine's capacity: 100 = N-1 cores busy on an N-CPU machine (one core when N = 1); all N cores read N/(N-1) x 100.",
    ),
    f(
        "cpu.window",
        T::Duration,
        Some(K::Cpu),
        "/cpu/window",
        "How long the process (cgroup) has stayed at or above the sampler's floor (`enforcer run --cpu-floor`) without a break.",
    ),
    f(
        "cpu.scope",
        T::Str,
        Some(K::Cpu),
        "/cpu/scope",
        "`process` (one process, all its threads) or `cgroup` (a leaf cgroup; `process` is then its busiest process).",
    ),
    f(
        "cpu.cgroup",
        T::Str,
        Some(K::Cpu),
        "/cpu/cgroup/path",
        "Path of the sampled cgroup (scope `cgroup` only).",
    ),
    list(f(
        "cpu.indicators",
        T::Str,
        Some(K::Cpu),
        "/cpu/indicators",
        "Ids of the rules tagged T1496 or cryptomining (not cpu rules) that matched an event of this process, a descendant or an ancestor (scope `cgroup`: of the cgroup) in the last 15 minutes; any id matches.",
    )),
    f(
        "cpu.correlated",
        T::Bool,
        Some(K::Cpu),
        "/cpu/correlated",
        "`cpu.indicators` is not empty.",
    ),
];
