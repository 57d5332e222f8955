//! The enforcement engine's userspace: loader and tier probe, policy sync into kernel maps, the
//! event pipeline (decode, enrich, evaluate, act) and the audit log. `main.rs` is the CLI.

pub mod actions;
pub mod audit;
pub mod btf;
pub mod clock;
pub mod cpu;
pub mod dns;
pub mod engine;
pub mod enrich;
pub mod hash;
pub mod loader;
pub mod pipeline;
pub mod report;
