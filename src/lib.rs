//! # forgeflow
//!
//! A job-graph runtime that custom wgpu renderers embed to stream GPU
//! resources: each frame's background work (decode, page-fault resolution,
//! upload, defrag) is a graph of jobs run on worker threads, and every
//! resource's lifetime follows per-frame fences through generational handles.
//!
//! The crates, one-way from top to bottom:
//!
//! - `forgeflow` (this crate): the wgpu side and the binaries.
//! - [`forgeflow_jobs`]: CPU kernels and their plain data, no wgpu.
//! - [`forgeflow_graph`]: the scheduler, fences, retire lists and keys.
//!
//! The scheduler is re-exported as [`graph`]; start with [`graph::Scheduler`].

#![warn(missing_docs)]

pub use forgeflow_graph as graph;
pub use forgeflow_jobs as jobs;

pub mod gpu;
pub mod pool;
pub mod runtime;
pub mod staging;
pub mod texture;
pub mod vt;
