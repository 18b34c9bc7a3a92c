//! # forgeflow-jobs
//!
//! The CPU side of forgeflow's work, with no wgpu: kernels that jobs run and
//! the plain data they exchange. Everything here is testable, fuzzable and
//! benchable without a GPU.
//!
//! For now it holds the [`synthetic`] workloads that measure the scheduler
//! (random, wide and deep job graphs with calibrated costs) and the peer
//! baselines they are compared with.

#![warn(missing_docs)]

pub use forgeflow_graph as graph;

pub mod alloc;
pub mod memcpy;
pub mod staging;
pub mod synthetic;
pub mod texture;
pub mod vt;
