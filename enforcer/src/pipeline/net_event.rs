//! Turns decoded `DnsRecord`s and `SocketRecord`s (connect, bind, accept) into the event JSON the audit log holds and
//! the policy evaluates (`dns.question.name`, `dns.server.ip`, `connect.addr.ip`, ...). The
//! DNS message is decoded in full by `crate::dns` (a DNS library, not the kernel's parser); a
//! message it cannot decode still yields an event, with the error and the raw bytes in hex.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use enforcer_common::event::{EventKind, NO_FD};
#[cfg(test)]
use enforcer_common::net::PacketSocket;
use enforcer_common::net::{
    AF_INET, AF_INET6, DNS_NAME_UNPARSED, DNS_SERVER_FROM_SOCKET, DNS_TCP, DNS_TRUNCATED,
    DnsRecord, DnsResponseRecord, SockAddr, SocketRecord,
};
use serde_json::{Map, Value, json};

use super::exec_event::{hook_name, process_json};
use crate::dns;

/// Longest prefix of an undecodable message shown in hex.
const HEX_PREVIEW: usize = 64;

/// The address and port of `addr`, `None` for an unknown family.
pub fn sockaddr(addr: &SockAddr) -> Option<(IpAddr, u16)> {
    let ip = match addr.family {
        AF_INET => IpAddr::V4(Ipv4Addr::new(
            addr.addr[0],
            addr.addr[1],
            addr.addr[2],
            addr.addr[3],
        )),
        AF_INET6 => IpAddr::V6(Ipv6Addr::from(addr.addr)),
        _ => return None,
    };
    Some((ip, addr.port))
}

/// `{"ip": ..., "port": ...}`, or null for an unknown family.
pub(crate) fn addr_json(addr: &SockAddr) -> Value {
    match sockaddr(addr) {
        Some((ip, port)) => json!({ "ip": ip.to_string(), "port": port }),
        None => Value::Null,
    }
}

/// `tcp`, `udp` or the raw socket type.
/// A record's descriptor: `null` for `NO_FD` (seen by a hook that has the socket, not the
/// descriptor: LSM `socket_sendmsg` and `socket_connect`, the cgroup hooks).
pub(crate) fn fd_json(fd: u32) -> Value {
    if fd == NO_FD {
        Value::Null
    } else {
        Value::from(fd)
    }
}

fn protocol(sock_type: u32) -> Value {
    match sock_type {
        1 => Value::from("tcp"),
        2 => Value::from("udp"),
        other => Value::from(format!("type{other}")),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `dns` object of a message the kernel copied: the decoded message (or the decode error
/// and the first bytes in hex), the transport, the message size and whether the copy is cut.
fn dns_body(data: &[u8], flags: u32, size: u32) -> Map<String, Value> {
    let mut dns = match dns::parse(data) {
        Ok(msg) => msg.to_json(),
        Err(err) => json!({
            "decode_error": err.to_string(),
            "data_hex": hex(&data[..data.len().min(HEX_PREVIEW)]),
        }),
    };
    let mut obj = match dns.as_object_mut() {
        Some(obj) => std::mem::take(obj),
        None => Map::new(),
    };
    obj.insert("transport".into(), Value::from(transport(flags)));
    obj.insert("size".into(), Value::from(size));
    obj.insert("truncated".into(), Value::from(flags & DNS_TRUNCATED != 0));
    obj
}

/// The event JSON of a DNS query record.
pub fn dns_event(rec: &DnsRecord, ts: &str) -> Value {
    let data = &rec.data[..(rec.data_len as usize).min(rec.data.len())];
    let mut obj = dns_body(data, rec.flags, rec.size);
    obj.insert(
        "kernel_name_parsed".into(),
        Value::from(rec.flags & DNS_NAME_UNPARSED == 0),
    );
    let mut server = addr_json(&rec.server);
    if let Value::Object(s) = &mut server {
        let from = if rec.flags & DNS_SERVER_FROM_SOCKET != 0 {
            "socket"
        } else {
            "syscall"
        };
        s.insert("from".into(), Value::from(from));
    }
    obj.insert("server".into(), server);
    // The sending socket's address, when the egress hook saw the query.
    if rec.socket.local.family != 0 {
        obj.insert("client".into(), addr_json(&rec.socket.local));
    }
    json!({
        "kind": "dns",
        "ts": ts,
        "hook": hook_name(rec.header.hook),
        "process": process_json(&rec.header, &rec.comm),
        "fd": fd_json(rec.fd),
        "dns": Value::Object(obj),
    })
}

/// The event JSON of a DNS response record. It has no `process` until the daemon attributes
/// it to the query it answers (`crate::dns::QueryLog`); `cgroup_id` is the receiving socket's.
pub fn dns_response_event(rec: &DnsResponseRecord, ts: &str) -> Value {
    let data = &rec.data[..(rec.data_len as usize).min(rec.data.len())];
    let mut obj = dns_body(data, rec.flags, rec.size);
    obj.insert("server".into(), addr_json(&rec.server));
    obj.insert("client".into(), addr_json(&rec.client));
    json!({
        "kind": "dns",
        "ts": ts,
        "hook": hook_name(rec.header.hook),
        "socket": { "cgroup": { "id": rec.header.cgroup_id } },
        "dns": Value::Object(obj),
    })
}

fn transport(flags: u32) -> &'static str {
    if flags & DNS_TCP != 0 { "tcp" } else { "udp" }
}

/// The event JSON of a connect, bind or accept record: `connect.addr` is the destination,
/// `bind.addr` the local address asked for, `accept.addr` the peer and `accept.local.port` the
/// port that accepted.
pub fn socket_event(rec: &SocketRecord, ts: &str) -> Value {
    let (kind, mut body) = match EventKind::try_from(rec.header.kind) {
        Ok(EventKind::Bind) => ("bind", json!({})),
        Ok(EventKind::Accept) => ("accept", json!({ "local": { "port": rec.local_port } })),
        _ => ("connect", json!({})),
    };
    if let Value::Object(map) = &mut body {
        map.insert("fd".into(), fd_json(rec.fd));
        map.insert("addr".into(), addr_json(&rec.addr));
        map.insert("protocol".into(), protocol(rec.sock_type));
    }
    let mut event = json!({
        "kind": kind,
        "ts": ts,
        "hook": hook_name(rec.header.hook),
        "process": process_json(&rec.header, &rec.comm),
    });
    if let Value::Object(map) = &mut event {
        map.insert(kind.into(), body);
    }
    event
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use enforcer_common::{
        event::{EventKind, Hook},
        net::DNS_DATA_LEN,
    };

    use super::*;
    use crate::pipeline::decode::test_header;

    /// A query for `Pool.Example.TEST` type A, id 0x1234, RD set.
    fn query() -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in ["Pool", "Example", "TEST"] {
            q.push(u8::try_from(label.len()).unwrap());
            q.extend_from_slice(label.as_bytes());
        }
        q.extend_from_slice(&[0, 0, 1, 0, 1]);
        q
    }

    fn dns_record(data: &[u8], flags: u32) -> DnsRecord {
        let mut rec = DnsRecord {
            header: test_header::<DnsRecord>(EventKind::Dns, Hook::TpSysEnterSendto),
            fd: 3,
            size: u32::try_from(data.len()).unwrap(),
            data_len: u32::try_from(data.len()).unwrap(),
            flags,
            name_hash: 0,
            server: SockAddr {
                family: AF_INET,
                port: 53,
                _pad: 0,
                addr: [127, 0, 0, 53, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            },
            comm: [0; 16],
            data: [0; DNS_DATA_LEN],
            socket: PacketSocket::default(),
        };
        rec.data[..data.len()].copy_from_slice(data);
        rec
    }

    #[test]
    fn dns_event_has_the_policy_shape() {
        let ev = dns_event(&dns_record(&query(), 0), "t");
        assert_eq!(ev["kind"], "dns");
        assert_eq!(ev["dns"]["question"]["name"], "pool.example.test");
        assert_eq!(ev["dns"]["question"]["type"], "A");
        assert_eq!(ev["dns"]["is_response"], false);
        assert_eq!(ev["dns"]["server"]["ip"], "127.0.0.53");
        assert_eq!(ev["dns"]["server"]["port"], 53);
        assert_eq!(ev["dns"]["server"]["from"], "syscall");
        assert_eq!(ev["dns"]["transport"], "udp");
        assert_eq!(ev["process"]["pid"], 10);
        assert!(ev["dns"].get("client").is_none());
        // Seen at egress: the sending socket's address too.
        let mut rec = dns_record(&query(), 0);
        rec.socket.local = SockAddr {
            port: 41000,
            ..rec.server
        };
        assert_eq!(dns_event(&rec, "t")["dns"]["client"]["port"], 41000);
    }

    #[test]
    fn undecodable_dns_keeps_the_bytes() {
        let mut q = query();
        q.truncate(15);
        let ev = dns_event(&dns_record(&q, DNS_NAME_UNPARSED), "t");
        assert!(ev["dns"]["decode_error"].is_string());
        assert_eq!(ev["dns"]["data_hex"], "12340100000100000000000004506f");
        assert_eq!(ev["dns"]["kernel_name_parsed"], false);
    }

    fn socket_record(kind: EventKind, hook: Hook, port: u16, local_port: u16) -> SocketRecord {
        SocketRecord {
            header: test_header::<SocketRecord>(kind, hook),
            fd: 4,
            sock_type: 1,
            addr: SockAddr {
                family: AF_INET6,
                port,
                _pad: 0,
                addr: Ipv6Addr::LOCALHOST.octets(),
            },
            local_port,
            _pad: [0; 6],
            comm: [0; 16],
        }
    }

    #[test]
    fn connect_event_has_the_policy_shape() {
        let rec = socket_record(EventKind::Connect, Hook::LsmSocketConnect, 3333, 0);
        let ev = socket_event(&rec, "t");
        assert_eq!(ev["kind"], "connect");
        assert_eq!(ev["connect"]["addr"]["ip"], "::1");
        assert_eq!(ev["connect"]["addr"]["port"], 3333);
        assert_eq!(ev["connect"]["protocol"], "tcp");
        assert_eq!(ev["hook"], "lsm/socket_connect");
        assert_eq!(ev["connect"]["fd"], 4);
        let mut rec = rec;
        rec.fd = NO_FD;
        let ev = socket_event(&rec, "t");
        assert!(ev["connect"]["fd"].is_null(), "no descriptor: {ev}");
    }

    #[test]
    fn bind_and_accept_events_have_the_policy_shape() {
        let bind = socket_event(
            &socket_record(EventKind::Bind, Hook::TpSysEnterBind, 3333, 3333),
            "t",
        );
        assert_eq!(bind["kind"], "bind");
        assert_eq!(bind["bind"]["addr"]["port"], 3333);
        assert_eq!(bind["bind"]["protocol"], "tcp");
        assert!(bind.get("connect").is_none());
        assert_eq!(bind["hook"], "tp/syscalls/sys_enter_bind");
        let accept = socket_event(
            &socket_record(EventKind::Accept, Hook::TpSysExitAccept, 40000, 3333),
            "t",
        );
        assert_eq!(accept["kind"], "accept");
        assert_eq!(accept["accept"]["addr"]["ip"], "::1");
        assert_eq!(accept["accept"]["addr"]["port"], 40000);
        assert_eq!(accept["accept"]["local"]["port"], 3333);
        assert_eq!(accept["hook"], "tp/syscalls/sys_exit_accept{,4}");
    }
}
