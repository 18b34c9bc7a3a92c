//! # forgeflow-graph
//!
//! The core of forgeflow, in the way `rayon-core` is rayon's: per-frame job
//! graphs executed on a rayon thread pool, frames in flight bounded by fences,
//! work deferred until a frame's fence has passed, and generational keys for
//! everything. It knows nothing of GPUs; the `forgeflow` crate builds the wgpu
//! side (staging rings, pools, textures) on top of it.
//!
//! ## A frame's life
//!
//! 1. [`Scheduler::begin_frame`] retires finished frames (running their
//!    [`on_retire`](Scheduler::on_retire) work in frame order) and, if the frame
//!    `frames_in_flight` back is still on the GPU, waits for its fence (bounded
//!    by `fence_timeout`; the wait is counted).
//! 2. Declare jobs on the [`Frame`]: a static name, explicit dependencies
//!    ([`JobBuilder::after`]) and resource reads and writes
//!    ([`JobBuilder::reads`], [`JobBuilder::writes`]) from which the order
//!    follows: a reader runs after the last earlier writer, a writer after the
//!    last writer and all readers since.
//! 3. [`Frame::run`] executes the graph on the pool (or, for a small frame,
//!    on the calling thread: see [`SchedulerConfig::inline_below`]) and
//!    returns a [`FrameSummary`], or a [`FrameError`] naming each failed job. A job that
//!    returns an error or panics fails the frame; jobs depending on it are
//!    skipped; independent jobs still run; the next frame is unaffected.
//! 4. The GPU layer signals the frame's [`FrameFence`] when the GPU is done.
//!
//! Work too long for any frame (reading a file, inflating a whole level)
//! goes to a [`Background`]: threads of their own, at a lower priority,
//! whose [`Task`]s a frame polls.
//!
//! ## Cost
//!
//! Planning a graph (dependency counts, successor lists) happens once per
//! distinct shape; a frame whose shape was seen before reuses the plan. Jobs
//! live in a bump arena reset every frame. Once warm, a frame allocates nothing
//! in forgeflow-graph. (rayon itself allocates a 1.5 KiB block of its global
//! injector queue once every 63 frames when `run` is called from a thread
//! outside the pool; called from inside the pool, a frame allocates nothing at all.)
//!
//! ## Safety
//!
//! Jobs may borrow from the caller's stack, like `rayon::scope`: all of a
//! frame's jobs have run or been dropped when `run` returns or the frame is
//! dropped. `unsafe` is confined to these files, each block with a
//! `SAFETY` comment saying why it holds:
//!
//! - `job.rs`: type-erased job storage in the frame's arena;
//! - `exec.rs`: taking a job out of its slot after winning its state
//!   transition;
//! - `scheduler.rs`: dropping, once the pool is done with a frame, the jobs
//!   that never ran;
//! - `retire.rs`: type-erased retire callbacks, as in `job.rs`;
//! - `background.rs`: `setpriority` on the background threads (Linux);
//! - `profiling.rs` (feature `tracy`): Tracy's C zone calls on static source
//!   locations.
//! - `mapping.rs`: only in its loom models, reading the cells they stand in
//!   for a buffer's bytes.

#![warn(missing_docs)]

mod background;
mod error;
mod exec;
mod fence;
mod job;
mod key;
mod mapping;
#[cfg(feature = "tracy")]
mod profiling;
mod retire;
mod scheduler;
mod stats;
mod sync;
mod topology;

pub use background::{Background, BackgroundConfig, BackgroundStats, Task, TaskFailed};
pub use error::{FailureKind, FrameError, GraphError, JobError, JobFailure, JobResult};
pub use fence::FrameFence;
pub use job::{Job, JobContext};
pub use key::{Access, FrameIndex, JobKey, ResourceKey};
pub use mapping::{MapState, Mapping};
pub use scheduler::{
    Frame, JobBuilder, Scheduler, SchedulerConfig, MAX_FRAMES_IN_FLIGHT, MAX_JOBS_PER_FRAME,
};
pub use stats::{FrameStats, FrameSummary, JobNameStats, SchedulerStats};

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctest;
