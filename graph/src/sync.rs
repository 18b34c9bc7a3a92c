//! The synchronization primitives of the fence and the executor: std's, or
//! loom's when built with `--cfg loom`, so that the model tests (the
//! `loom_model` modules of `fence.rs` and `exec.rs`) check the real code.
//! Run them with `RUSTFLAGS="--cfg loom" cargo test -p forgeflow-graph --lib --release loom`.

#[cfg(loom)]
pub(crate) use loom::sync::{
    atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering},
    Arc, Condvar, Mutex,
};
#[cfg(not(loom))]
pub(crate) use std::sync::{
    atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering},
    Arc, Condvar, Mutex,
};
