//! Reads the kernel's per-CPU counters (`COUNTERS`), summed over CPUs.

use aya::{
    Ebpf,
    maps::{Map, PerCpuArray},
};
use enforcer_common::{event::Counter, maps::COUNTERS};
use serde_json::Value;

/// Every counter with its name, in slot order.
pub const ALL: [(Counter, &str); 29] = [
    (Counter::RingbufFull, "ringbuf_full"),
    (Counter::ReadError, "read_error"),
    (Counter::KillFailed, "kill_failed"),
    (Counter::ExecSeen, "exec_seen"),
    (Counter::ExecMatched, "exec_matched"),
    (Counter::PayloadClassified, "payload_classified"),
    (Counter::PayloadMatched, "payload_matched"),
    (Counter::DnsSeen, "dns_seen"),
    (Counter::DnsMatched, "dns_matched"),
    (Counter::DnsUnparsed, "dns_unparsed"),
    (Counter::ConnectSeen, "connect_seen"),
    (Counter::ConnectMatched, "connect_matched"),
    (Counter::DnsResponseSeen, "dns_response_seen"),
    (Counter::FileSeen, "file_seen"),
    (Counter::FileFiltered, "file_filtered"),
    (Counter::FileMatched, "file_matched"),
    (Counter::FileUnfiltered, "file_unfiltered"),
    (Counter::ImaHashed, "ima_hashed"),
    (Counter::ImaCacheHit, "ima_cache_hit"),
    (Counter::ImaMatched, "ima_matched"),
    (Counter::ImaSkipped, "ima_skipped"),
    (Counter::MmapChecked, "mmap_checked"),
    (Counter::MmapMatched, "mmap_matched"),
    (Counter::KernelSeen, "kernel_seen"),
    (Counter::KernelMatched, "kernel_matched"),
    (Counter::KernelFiltered, "kernel_filtered"),
    (Counter::ExecArgsSearched, "exec_args_searched"),
    (Counter::ExecArgsMatched, "exec_args_matched"),
    (Counter::TamperDenied, "tamper_denied"),
];

/// The counters as a JSON object (name -> sum over CPUs); unreadable slots are left out.
pub fn read(ebpf: &Ebpf) -> Value {
    match ebpf.map(COUNTERS) {
        Some(map) => read_map(map),
        None => Value::Object(serde_json::Map::new()),
    }
}

/// The counters of a `COUNTERS` map (e.g. opened from a pin), as [`read`] returns them.
pub fn read_map(map: &Map) -> Value {
    let mut out = serde_json::Map::new();
    let Ok(array) = PerCpuArray::<_, u64>::try_from(map) else {
        return Value::Object(out);
    };
    for (counter, name) in ALL {
        if let Ok(values) = array.get(&(counter as u32), 0) {
            out.insert(name.to_owned(), Value::from(values.iter().sum::<u64>()));
        }
    }
    Value::Object(out)
}
