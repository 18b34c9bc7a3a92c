//! # forgeflow-jobs
//!
//! The CPU side of forgeflow's work, with no wgpu: kernels that jobs run and
//! the plain data they exchange. Everything here is testable, fuzzable and
//! benchable without a GPU.
//!
//! - [`texture`]: texture files (KTX2, KTX 1, DDS, PNG) read and validated,
//!   supercompression inflated, block formats decoded on the CPU.
//! - [`alloc`]: the pool allocator's core (TLSF bins over GPU blocks) and its
//!   defragmentation planning.
//! - [`staging`]: the staging ring's arithmetic (which bytes of which buffer
//!   a piece takes).
//! - [`memcpy`]: the parallel copy into mapped staging memory.
//! - [`vt`]: virtual texturing's tiling, page table, tile cache, request
//!   de-duplication, residency policy and tile pack format.
//!
//! Nothing here depends on `forgeflow-graph`: the kernels are plain functions
//! and the policies plain data, which the `forgeflow` crate runs as jobs.

#![warn(missing_docs)]

pub mod alloc;
pub mod memcpy;
pub mod staging;
pub mod texture;
pub mod vt;
