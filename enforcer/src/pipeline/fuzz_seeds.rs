//! The `decode_record` fuzz target's seeds (`enforcer/fuzz/seeds/decode_record/<kind>`) kept
//! current: one record of every kind, as the kernel lays it out, so the fuzzer starts from
//! inputs that decode. `fuzz_seeds_are_current` fails when a record's layout changed and the
//! seeds were not rewritten (as the DNS seeds' test does): rewrite them with
//! `cargo test -p enforcer pipeline::decode::fuzz_seeds::write_fuzz_seeds -- --ignored`.
#![allow(clippy::unwrap_used, clippy::panic, clippy::cast_possible_truncation)]

use std::path::PathBuf;

use enforcer_common::{
    event::{EventHeader, EventKind, Hook, PayloadRecord},
    file::FileRecord,
    kernel_event::{KernelRecord, KernelSyscall},
    net::{DnsRecord, DnsResponseRecord, SocketRecord},
    process::{ExitRecord, ForkRecord},
};

use super::{as_bytes, decode, test_exec_record, test_header};

fn seeds_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/decode_record")
}

/// Every record kind, with its seed file name.
fn kinds() -> Vec<(EventKind, String)> {
    (0..256)
        .filter_map(|k| EventKind::try_from(k).ok())
        .map(|k| (k, format!("{k:?}").to_lowercase()))
        .collect()
}

/// A zero `T` record with a header of `kind` (`test_header`: process 10) and, for kernel
/// records, the first known syscall.
fn zero_record<T>(kind: EventKind) -> Vec<u8> {
    let header = test_header::<T>(kind, Hook::TpSchedProcessExec);
    let mut bytes = vec![0u8; size_of::<T>()];
    bytes[..size_of::<EventHeader>()].copy_from_slice(as_bytes(&header));
    if kind == EventKind::Kernel {
        let syscall = (0..256)
            .find(|s| KernelSyscall::try_from(*s).is_ok())
            .unwrap();
        let at = std::mem::offset_of!(KernelRecord, syscall);
        bytes[at..at + 4].copy_from_slice(&syscall.to_ne_bytes());
    }
    bytes
}

/// The seed of `kind`.
fn seed(kind: EventKind) -> Vec<u8> {
    match kind {
        EventKind::Exec => as_bytes(&test_exec_record()).to_vec(),
        EventKind::Payload => zero_record::<PayloadRecord>(kind),
        EventKind::Dns => zero_record::<DnsRecord>(kind),
        EventKind::DnsResponse => zero_record::<DnsResponseRecord>(kind),
        EventKind::Connect | EventKind::Bind | EventKind::Accept => {
            zero_record::<SocketRecord>(kind)
        }
        EventKind::Fork => zero_record::<ForkRecord>(kind),
        EventKind::Exit => zero_record::<ExitRecord>(kind),
        EventKind::File => zero_record::<FileRecord>(kind),
        EventKind::Kernel => zero_record::<KernelRecord>(kind),
        EventKind::Tamper => zero_record::<enforcer_common::guard::TamperRecord>(kind),
    }
}

#[test]
fn every_seed_decodes() {
    for (kind, name) in kinds() {
        assert!(decode(&seed(kind)).is_ok(), "{name}");
    }
}

/// Writes the seeds (see the module documentation).
#[test]
#[ignore = "writes enforcer/fuzz/seeds/decode_record"]
fn write_fuzz_seeds() {
    std::fs::create_dir_all(seeds_dir()).unwrap();
    for (kind, name) in kinds() {
        std::fs::write(seeds_dir().join(&name), seed(kind)).unwrap();
    }
}

#[test]
fn fuzz_seeds_are_current() {
    for (kind, name) in kinds() {
        let stored = std::fs::read(seeds_dir().join(&name)).unwrap_or_default();
        assert!(
            stored == seed(kind),
            "fuzz seed {name} is missing or stale (a record layout changed): run the ignored \
             test write_fuzz_seeds"
        );
        assert!(decode(&stored).is_ok(), "{name}");
    }
}
