//! Library target of the kernel-program crate. It is empty: it exists so that `enforcer`'s build
//! script can depend on this package (cargo then rebuilds the programs when they change). The
//! programs themselves are the `enforcer` binary target (`src/main.rs`), built for
//! `bpfel-unknown-none`.
#![no_std]
