//! The TCP connections of segments the signal tier's egress hook refused. The hook drops the
//! segment, but TCP keeps it queued and tries it again; the daemon aborts the connection
//! (`actions::abort`) once it has done the rest for the record. A kill rule's kill comes first,
//! so the owner dies of it rather than of a failed read it might survive; the owner's network
//! namespace is opened before, while the owner still has one.

use enforcer_common::{
    event::{EventHeader, Hook, OUTCOME_DENIED},
    net::{DNS_TCP, PacketSocket, SockAddr},
};

use crate::{
    actions::abort::{self, Connection, Prepared},
    audit::ConnectionAbort,
    pipeline::{decode::Decoded, net_event::sockaddr},
};

/// The connection of `record`, ready to abort, when it is a TCP segment the egress hook
/// dropped.
pub(super) fn refused(record: &Decoded, header: &EventHeader) -> Option<Prepared> {
    refused_connection(record, header).map(abort::prepare)
}

/// Aborts `refused`; what became of it, for the `deny` record.
pub(super) fn abort(refused: Prepared) -> ConnectionAbort {
    let conn = *refused.connection();
    match refused.abort() {
        Ok(()) => ConnectionAbort {
            aborted: true,
            error: None,
        },
        Err(err) => {
            tracing::warn!(
                "the connection {} -> {} of pid {}, whose segment was refused, was not aborted: \
                 {err}; the segment stays queued in its socket",
                conn.local,
                conn.peer,
                conn.owner
            );
            ConnectionAbort {
                aborted: false,
                error: Some(err.to_string()),
            }
        }
    }
}

/// The connection of `record` when its TCP segment was dropped by `cgroup_skb/egress`.
fn refused_connection(record: &Decoded, header: &EventHeader) -> Option<Connection> {
    if header.hook != Hook::CgroupSkbEgress as u32 || header.outcome & OUTCOME_DENIED == 0 {
        return None;
    }
    let (peer, socket) = match record {
        // A JSON-RPC payload is judged only on TCP.
        Decoded::Payload(rec) => (&rec.peer, &rec.socket),
        Decoded::Dns(rec) if rec.flags & DNS_TCP != 0 => (&rec.server, &rec.socket),
        _ => return None,
    };
    connection(peer, socket, header.tgid)
}

fn connection(peer: &SockAddr, socket: &PacketSocket, owner: u32) -> Option<Connection> {
    let (peer_ip, peer_port) = sockaddr(peer)?;
    let (local_ip, local_port) = sockaddr(&socket.local)?;
    Some(Connection {
        local: (local_ip, local_port).into(),
        peer: (peer_ip, peer_port).into(),
        cookie: socket.cookie,
        owner,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use enforcer_common::{
        event::{EventKind, OUTCOME_WOULD_DENY},
        net::{AF_INET, DnsRecord},
    };

    use super::*;
    use crate::pipeline::decode::test_header;

    fn refused_query(flags: u32, hook: Hook, outcome: u32) -> (Decoded, EventHeader) {
        let addr = |last: u8, port: u16| SockAddr {
            family: AF_INET,
            port,
            _pad: 0,
            addr: [10, 0, 0, last, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        };
        let mut header = test_header::<DnsRecord>(EventKind::Dns, hook);
        header.outcome = outcome;
        // SAFETY: DnsRecord is plain old data; all zeros is a valid value.
        let mut rec: DnsRecord = unsafe { std::mem::zeroed() };
        rec.header = header;
        rec.flags = flags;
        rec.server = addr(53, 53);
        rec.socket = PacketSocket {
            cookie: 77,
            local: addr(1, 41000),
        };
        (Decoded::Dns(rec), header)
    }

    #[test]
    fn a_dropped_tcp_query_names_its_connection() {
        let (rec, header) = refused_query(DNS_TCP, Hook::CgroupSkbEgress, OUTCOME_DENIED);
        let conn = refused_connection(&rec, &header).expect("a refused connection");
        assert_eq!(conn.local, "10.0.0.1:41000".parse().unwrap());
        assert_eq!(conn.peer, "10.0.0.53:53".parse().unwrap());
        assert_eq!((conn.cookie, conn.owner), (77, header.tgid));
    }

    #[test]
    fn only_tcp_segments_the_egress_hook_dropped_are_aborted() {
        for (flags, hook, outcome) in [
            // A refused UDP send failed with EPERM: nothing is queued.
            (0, Hook::CgroupSkbEgress, OUTCOME_DENIED),
            // Monitor mode: the segment left.
            (DNS_TCP, Hook::CgroupSkbEgress, OUTCOME_WOULD_DENY),
            (DNS_TCP, Hook::CgroupSkbEgress, 0),
            // The LSM hook refused the send itself.
            (DNS_TCP, Hook::LsmSocketSendmsg, OUTCOME_DENIED),
        ] {
            let (rec, header) = refused_query(flags, hook, outcome);
            assert!(
                refused_connection(&rec, &header).is_none(),
                "{flags} {hook:?} {outcome}"
            );
        }
    }
}
