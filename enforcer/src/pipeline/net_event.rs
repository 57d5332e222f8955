//! Turns decoded `DnsRecord`s and `ConnectRecord`s into the event JSON the audit log holds and
//! the policy evaluates (`dns.question.name`, `dns.server.ip`, `connect.addr.ip`, ...). The
//! DNS message is decoded in full by `crate::dns` (a DNS library, not the kernel's parser); a
//! message it cannot decode still yields an event, with the error and the raw bytes in hex.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use enforcer_common::net::{
    AF_INET, AF_INET6, ConnectRecord, DNS_NAME_UNPARSED, DNS_SERVER_FROM_SOCKET, DNS_TCP,
    DNS_TRUNCATED, DnsRecord, SockAddr,
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
fn addr_json(addr: &SockAddr) -> Value {
    match sockaddr(addr) {
        Some((ip, port)) => json!({ "ip": ip.to_string(), "port": port }),
        None => Value::Null,
    }
}

/// `tcp`, `udp` or the raw socket type.
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

/// The event JSON of a DNS record.
pub fn dns_event(rec: &DnsRecord, ts: &str) -> Value {
    let data = &rec.data[..(rec.data_len as usize).min(rec.data.len())];
    let mut dns = match dns::parse(data) {
        Ok(msg) => msg.to_json(),
        Err(err) => json!({
            "decode_error": err.to_string(),
            "data_hex": hex(&data[..data.len().min(HEX_PREVIEW)]),
        }),
    };
    if let Value::Object(obj) = &mut dns {
        let mut extra = Map::new();
        extra.insert("transport".into(), Value::from(transport(rec.flags)));
        extra.insert("size".into(), Value::from(rec.size));
        extra.insert(
            "truncated".into(),
            Value::from(rec.flags & DNS_TRUNCATED != 0),
        );
        extra.insert(
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
        extra.insert("server".into(), server);
        obj.extend(extra);
    }
    json!({
        "kind": "dns",
        "ts": ts,
        "hook": hook_name(rec.header.hook),
        "process": process_json(&rec.header, &rec.comm),
        "fd": rec.fd,
        "dns": dns,
    })
}

fn transport(flags: u32) -> &'static str {
    if flags & DNS_TCP != 0 { "tcp" } else { "udp" }
}

/// The event JSON of a connect record.
pub fn connect_event(rec: &ConnectRecord, ts: &str) -> Value {
    json!({
        "kind": "connect",
        "ts": ts,
        "hook": hook_name(rec.header.hook),
        "process": process_json(&rec.header, &rec.comm),
        "connect": {
            "fd": rec.fd,
            "addr": addr_json(&rec.addr),
            "protocol": protocol(rec.sock_type),
        },
    })
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

    #[test]
    fn connect_event_has_the_policy_shape() {
        let rec = ConnectRecord {
            header: test_header::<ConnectRecord>(EventKind::Connect, Hook::LsmSocketConnect),
            fd: 0,
            sock_type: 1,
            addr: SockAddr {
                family: AF_INET6,
                port: 3333,
                _pad: 0,
                addr: Ipv6Addr::LOCALHOST.octets(),
            },
            comm: [0; 16],
        };
        let ev = connect_event(&rec, "t");
        assert_eq!(ev["connect"]["addr"]["ip"], "::1");
        assert_eq!(ev["connect"]["addr"]["port"], 3333);
        assert_eq!(ev["connect"]["protocol"], "tcp");
        assert_eq!(ev["hook"], "lsm/socket_connect");
    }
}
