//! Actions the daemon performs itself (after the fact), for rules the kernel cannot enforce and
//! to widen kernel kills to a rule's `kill_scope`: every kill goes through [`scope::Killer`]
//! (exclusions in [`protect`], the pidfd rails in [`kill`]), and the per-rule [`breaker`]
//! disarms a rule that kills too widely.

pub mod abort;
pub mod breaker;
pub mod cgroupfs;
pub mod error;
pub mod kill;
pub mod procfs;
pub mod protect;
pub mod scope;
#[cfg(test)]
pub(crate) mod test_host;
