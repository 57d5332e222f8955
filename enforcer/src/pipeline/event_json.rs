//! One entry point from any decoded record to its event JSON, so the engine and the fuzz
//! target build events the same way.

use enforcer_common::event::EventHeader;
use serde_json::Value;

use super::{
    decode::Decoded,
    exec_event::exec_event,
    file_event::file_event,
    kernel_event::kernel_event,
    net_event::{dns_event, dns_response_event, socket_event},
    payload_event::payload_event,
    process_event::{exit_event, fork_event},
    tamper_event::tamper_event,
};

impl Decoded {
    /// The record's header.
    pub fn header(&self) -> &EventHeader {
        match self {
            Decoded::Exec(r) => &r.header,
            Decoded::Payload(r) => &r.header,
            Decoded::Dns(r) => &r.header,
            Decoded::DnsResponse(r) => &r.header,
            Decoded::Socket(r) => &r.header,
            Decoded::Fork(r) => &r.header,
            Decoded::Exit(r) => &r.header,
            Decoded::File(r) => &r.header,
            Decoded::Kernel(r) => &r.header,
            Decoded::Tamper(r) => &r.header,
        }
    }

    /// The record's header, to change (a verdict of an earlier policy generation is renamed
    /// to the current one's rule).
    pub fn header_mut(&mut self) -> &mut EventHeader {
        match self {
            Decoded::Exec(r) => &mut r.header,
            Decoded::Payload(r) => &mut r.header,
            Decoded::Dns(r) => &mut r.header,
            Decoded::DnsResponse(r) => &mut r.header,
            Decoded::Socket(r) => &mut r.header,
            Decoded::Fork(r) => &mut r.header,
            Decoded::Exit(r) => &mut r.header,
            Decoded::File(r) => &mut r.header,
            Decoded::Kernel(r) => &mut r.header,
            Decoded::Tamper(r) => &mut r.header,
        }
    }
}

/// The event JSON of `record`; `ts` is the wall-clock time of its kernel timestamp.
pub fn event_json(record: &Decoded, ts: &str) -> Value {
    match record {
        Decoded::Exec(r) => exec_event(r, ts),
        Decoded::Payload(r) => payload_event(r, ts),
        Decoded::Dns(r) => dns_event(r, ts),
        Decoded::DnsResponse(r) => dns_response_event(r, ts),
        Decoded::Socket(r) => socket_event(r, ts),
        Decoded::Fork(r) => fork_event(r, ts),
        Decoded::Exit(r) => exit_event(r, ts),
        Decoded::File(r) => file_event(r, ts),
        Decoded::Kernel(r) => kernel_event(r, ts),
        Decoded::Tamper(r) => tamper_event(r, ts),
    }
}
