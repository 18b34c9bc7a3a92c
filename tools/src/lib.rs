//! # forgeflow-tools
//!
//! The library half of forgeflow's command-line tools (unpublished, like
//! `rayon-demo`): the synthetic workloads that `forgeflow-stress`, the
//! benches and the tests run, and the peer baselines they are compared with.
//!
//! - [`synthetic`]: job graphs with calibrated costs and the baselines that
//!   run them (`rayon::scope`, one thread); an allocation churn trace.
//! - [`replay`]: that trace replayed through forgeflow's allocator core and
//!   through `offset-allocator`, on the same events.
//! - [`terrain`]: a deterministic procedural terrain as a virtual-texture
//!   tile source.
//! - [`flight`]: the scene the examples draw over it (the renderer an
//!   embedder would have).
//! - [`decode_peers`]: the block decoders forgeflow's are measured against.
//!
//! The binaries: `forgeflow-stress` (the stress scenarios, `--compare` runs
//! the peers), `forgeflow-tex` (texture files: info, validate, extract,
//! decode, upload, tile packs) and `tracy-summary` (a headless look at what a
//! Tracy profiler receives).

#![warn(missing_docs)]

pub mod decode_peers;
pub mod flight;
pub mod replay;
pub mod synthetic;
pub mod terrain;

pub use terrain::Terrain;
