//! # forgeflow
//!
//! A job-graph runtime that custom wgpu renderers embed to stream GPU
//! resources: each frame's background work (decode, page-fault resolution,
//! upload, defrag) is a graph of jobs run on worker threads, and every
//! resource's lifetime follows per-frame fences through generational handles.
//!
//! The crates, one-way from top to bottom:
//!
//! - `forgeflow` (this crate): the wgpu side (staging and readback rings,
//!   the buffer pool, texture upload, virtual textures) and the
//!   [`runtime::Runtime`] facade that a renderer embeds.
//! - [`forgeflow_jobs`]: CPU kernels and their plain data, no wgpu.
//! - [`forgeflow_graph`]: the scheduler, fences, retire lists and keys.
//!
//! Start with [`runtime::Runtime`]; the scheduler is re-exported as [`graph`]
//! ([`graph::Scheduler`]) for a renderer's own jobs. The design, and the
//! invariants the code cites by number ("invariant 2"), are in the
//! repository's `docs/ARCHITECTURE.md`, which this package ships.

#![warn(missing_docs)]

pub use forgeflow_graph as graph;
pub use forgeflow_jobs as jobs;

pub mod gpu;
pub mod pool;
pub mod runtime;
pub mod staging;
mod submit;
pub mod texture;
pub mod vt;
