//! Statistics: per frame, per job name, and totals since the scheduler started.

use std::time::Duration;

use crate::fence::FrameFence;
use crate::key::FrameIndex;

/// What happened in one frame, in a few numbers. Returned by
/// [`Frame::run`](crate::Frame::run) (inside [`FrameError`](crate::FrameError) when a job failed).
#[derive(Debug, Clone)]
pub struct FrameSummary {
    /// The frame.
    pub frame: FrameIndex,
    /// Its fence: signal it once the GPU work of this frame is complete
    /// (already signalled when `auto_signal_fences` is on).
    pub fence: FrameFence,
    /// Jobs declared.
    pub jobs: u32,
    /// Jobs that ran to completion without error.
    pub jobs_completed: u32,
    /// Jobs that returned an error or panicked.
    pub jobs_failed: u32,
    /// Jobs not run because a job they depend on failed, was skipped or was cancelled.
    pub jobs_skipped: u32,
    /// Jobs cancelled before they started.
    pub jobs_cancelled: u32,
    /// Time `begin_frame` waited for an old frame's fence.
    pub fence_wait: Duration,
    /// Wall time of executing the graph (from `run` to the last job's end).
    pub run_time: Duration,
    /// Whether the frame reused a graph of a shape already seen (no planning, no allocation).
    pub graph_reused: bool,
}

impl FrameSummary {
    /// Jobs that ran, successfully or not.
    pub fn jobs_run(&self) -> u32 {
        self.jobs_completed + self.jobs_failed
    }
}

/// Per job name: how many ran and how long they took.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobNameStats {
    /// The job name, as declared.
    pub name: &'static str,
    /// Jobs of that name that ran (successfully or not).
    pub count: u32,
    /// Their weights added up (see [`JobBuilder::weight`](crate::JobBuilder::weight)).
    pub weight: u64,
    /// Their total run time.
    pub total: Duration,
    /// The longest one.
    pub max: Duration,
}

/// Detailed statistics of the last frame run: see [`Scheduler::last_frame_stats`](crate::Scheduler::last_frame_stats).
#[derive(Debug, Clone, Default)]
pub struct FrameStats {
    /// The frame.
    pub frame: FrameIndex,
    /// Jobs declared, completed, failed, skipped, cancelled.
    pub jobs: u32,
    /// Jobs that ran to completion without error.
    pub jobs_completed: u32,
    /// Jobs that returned an error or panicked.
    pub jobs_failed: u32,
    /// Jobs not run because a dependency failed, was skipped or was cancelled.
    pub jobs_skipped: u32,
    /// Jobs cancelled before they started.
    pub jobs_cancelled: u32,
    /// Time `begin_frame` waited for an old frame's fence.
    pub fence_wait: Duration,
    /// Wall time of executing the graph.
    pub run_time: Duration,
    /// The longest chain of dependent jobs, counted in jobs.
    pub graph_depth: u32,
    /// One entry per distinct job name, in order of first declaration.
    pub by_name: Vec<JobNameStats>,
    /// Whether the frame ran on the calling thread (see
    /// `SchedulerConfig::inline_below` for when it does).
    pub ran_inline: bool,
}

/// Totals since the scheduler was created: see [`Scheduler::stats`](crate::Scheduler::stats).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchedulerStats {
    /// Frames begun.
    pub frames_begun: u64,
    /// Frames whose graph ran.
    pub frames_run: u64,
    /// Frames whose graph ran on the calling thread (see `SchedulerConfig::inline_below`).
    pub frames_inline: u64,
    /// How long a frame given to the pool waits for a worker to start it:
    /// a decaying maximum of the waits measured (each frame run on the pool
    /// takes 1/8 off, or sets a new maximum).
    pub dispatch_wait: Duration,
    /// Frames in which a job failed.
    pub frames_failed: u64,
    /// Jobs that completed, failed, were skipped, were cancelled.
    pub jobs_completed: u64,
    /// Jobs that returned an error or panicked.
    pub jobs_failed: u64,
    /// Jobs skipped because a dependency did not complete.
    pub jobs_skipped: u64,
    /// Jobs cancelled before they started.
    pub jobs_cancelled: u64,
    /// Times `begin_frame` had to wait for a fence (back-pressure).
    pub fence_waits: u64,
    /// Total time spent waiting for fences.
    pub fence_wait_total: Duration,
    /// Times `begin_frame` gave up waiting (see `fence_timeout`).
    pub fence_timeouts: u64,
    /// Graphs planned from scratch (a shape not in the cache).
    pub graphs_planned: u64,
    /// Frames that reused a cached graph.
    pub graphs_reused: u64,
    /// Retire callbacks run.
    pub retired_callbacks: u64,
}
