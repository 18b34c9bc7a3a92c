//! # forgeflow-test-support
//!
//! What forgeflow's tests, benches and tools share and a user of the library
//! never needs (unpublished, like `wgpu-test`):
//!
//! - [`gpu`]: the GPU for a test (fails under `FORGEFLOW_REQUIRE_GPU=1`
//!   instead of skipping; hardware GPUs taken one test at a time) and
//!   verification reads that do not go through forgeflow's own rings.
//! - [`corpus`]: where the shared corpus of real texture files is.
//! - [`ktx2`]: KTX2 files made to measure, valid or not; [`png`](mod@png): PNG files.
//! - [`tracy_capture`]: the profiler's side of Tracy's protocol, enough to
//!   count what a program built with `--features tracy` sends.
//! - [`tracy_tools`]: Tracy's own `tracy-capture` and `tracy-csvexport`, a
//!   real profiler session recorded and read back.
//! - [`SplitMix64`]: a seedable generator for reproducible data.

#![warn(missing_docs)]

pub mod corpus;
pub mod gpu;
pub mod ktx2;
pub mod png;
mod rng;
pub mod tracy_capture;
pub mod tracy_tools;

pub use rng::SplitMix64;
