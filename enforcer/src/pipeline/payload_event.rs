//! Turns a decoded `PayloadRecord` into the event JSON the audit log holds and the policy
//! evaluates (`payload.stratum.method`, `payload.data`, ...). The kernel's method is taken as
//! found; userspace re-parses the bytes and reports whether they are a complete JSON object.

use enforcer_common::event::{PAYLOAD_TRUNCATED, PayloadRecord};
use serde_json::{Value, json};

use super::exec_event::{hook_name, process_json, text};
use super::net_event::{addr_json, fd_json};

/// The event JSON of a payload record.
pub fn payload_event(rec: &PayloadRecord, ts: &str) -> Value {
    let data = &rec.data[..(rec.data_len as usize).min(rec.data.len())];
    let method = text(&rec.method, rec.method_len as usize);
    let complete_json = serde_json::from_slice::<Value>(data).is_ok_and(|v| v.is_object());
    let mut event = json!({
        "kind": "payload",
        "ts": ts,
        "hook": hook_name(rec.header.hook),
        "process": process_json(&rec.header, &rec.comm),
        "payload": {
            "fd": fd_json(rec.fd),
            "size": rec.size,
            "data": String::from_utf8_lossy(data),
            "truncated": rec.flags & PAYLOAD_TRUNCATED != 0,
            "complete_json": complete_json,
            "stratum": { "method": method },
        },
    });
    // Where the call went (`payload.addr`), and from which socket when the egress hook saw it.
    if let Some(payload) = event.get_mut("payload").and_then(Value::as_object_mut) {
        if rec.peer.family != 0 {
            payload.insert("addr".into(), addr_json(&rec.peer));
        }
        if rec.socket.local.family != 0 {
            payload.insert("local".into(), addr_json(&rec.socket.local));
        }
    }
    event
}

#[cfg(test)]
mod tests {
    use enforcer_common::{
        event::{EventKind, Hook, PAYLOAD_LEN},
        net::{AF_INET, PacketSocket, SockAddr},
        plan::METHOD_LEN,
    };

    use super::*;
    use crate::pipeline::decode::test_header;

    #[test]
    #[allow(clippy::cast_possible_truncation)]
    fn payload_event_has_the_policy_shape() {
        let line = br#"{"id":1,"jsonrpc":"2.0","method":"login","params":{"login":"4FAKE"}}"#;
        let mut rec = PayloadRecord {
            header: test_header::<PayloadRecord>(EventKind::Payload, Hook::TpSysEnterWrite),
            fd: 4,
            size: line.len() as u32,
            data_len: line.len() as u32,
            method_len: 5,
            flags: 0,
            _pad: 0,
            method: [0; METHOD_LEN],
            data: [0; PAYLOAD_LEN],
            comm: [0; 16],
            peer: SockAddr::default(),
            socket: PacketSocket::default(),
        };
        rec.method[..5].copy_from_slice(b"login");
        rec.data[..line.len()].copy_from_slice(line);
        let ev = payload_event(&rec, "t");
        assert_eq!(ev["kind"], "payload");
        assert_eq!(ev["payload"]["stratum"]["method"], "login");
        assert_eq!(ev["payload"]["fd"], 4);
        assert_eq!(ev["payload"]["complete_json"], true);
        assert_eq!(ev["process"]["pid"], 10);
        rec.data_len = 20;
        assert_eq!(payload_event(&rec, "t")["payload"]["complete_json"], false);
        // Seen by LSM socket_sendmsg: the socket, no descriptor.
        rec.fd = enforcer_common::event::NO_FD;
        rec.header.hook = Hook::LsmSocketSendmsg as u32;
        let ev = payload_event(&rec, "t");
        assert_eq!(ev["payload"]["fd"], serde_json::Value::Null);
        assert_eq!(ev["hook"], "lsm/socket_sendmsg");
        assert!(ev["payload"].get("addr").is_none());
        // Seen at egress: the segment's ends.
        rec.header.hook = Hook::CgroupSkbEgress as u32;
        rec.peer = SockAddr {
            family: AF_INET,
            port: 3333,
            _pad: 0,
            addr: [10, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        };
        rec.socket.local = SockAddr {
            port: 40000,
            addr: [10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            ..rec.peer
        };
        let ev = payload_event(&rec, "t");
        assert_eq!(ev["payload"]["addr"]["ip"], "10.0.0.9");
        assert_eq!(ev["payload"]["addr"]["port"], 3333);
        assert_eq!(ev["payload"]["local"]["port"], 40000);
    }
}
