//! Actions the daemon performs itself (after the fact), for rules the kernel cannot enforce.

pub mod kill;
