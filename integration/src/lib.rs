//! Integration test support.
//!
//! [`vm`] is the QEMU runner for the LSM tier: it boots Debian kernels with an initramfs that
//! holds the engine, a guest harness and test payloads, and turns the guest's console output
//! into test results. See `integration/README.md`.
//!
//! [`catalog`] holds the catalog fixtures the shipped policy must stop, shared by the host and
//! VM suites that run them.
//!
//! [`dns_fixture`] drives the stub resolver and DNS client fixtures from host and guest tests.
//!
//! [`stratum`] holds the stratum dialects' first messages and the socket write shared by the
//! `stratum-client` and `fake-miner` fixtures; [`syscall`] reads a data-moving call's result
//! (EINTR, no progress) for every fixture loop; [`pins`] lists the engine's pinned runs;
//! [`sockaddr`] lays socket addresses out for the fixtures' own socket calls.

pub mod catalog;
pub mod connection_limit;
pub mod dns_fixture;
pub mod memfd;
pub mod pins;
pub mod sockaddr;
pub mod stratum;
pub mod syscall;
pub mod vm;
