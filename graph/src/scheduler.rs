//! The scheduler: frames in flight, their fences and retire lists, and the
//! declaration and execution of each frame's job graph.
//!
//! ```
//! use forgeflow_graph::{Scheduler, SchedulerConfig};
//! use std::sync::atomic::{AtomicU32, Ordering};
//!
//! let mut sched = Scheduler::new(SchedulerConfig {
//!     auto_signal_fences: true, // CPU-only frames: no GPU signals the fences
//!     ..SchedulerConfig::default()
//! })?;
//! let atlas = sched.register_resource("atlas");
//! let uploaded = AtomicU32::new(0);
//!
//! let mut frame = sched.begin_frame()?;
//! let decode = frame.job("decode").writes(atlas).spawn(|_ctx| Ok(()))?;
//! frame
//!     .job("upload")
//!     .after(decode)
//!     .reads(atlas)
//!     .spawn(|_ctx| {
//!         uploaded.fetch_add(1, Ordering::Relaxed);
//!         Ok(())
//!     })?;
//! let summary = frame.run()?;
//! assert_eq!(summary.jobs_completed, 2);
//! assert_eq!(uploaded.load(Ordering::Relaxed), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use rayon::ThreadPool;
use slotmap::SlotMap;

use crate::error::JobResult;
use crate::error::{FrameError, GraphError};
use crate::exec::{self, ExecState, Run};
use crate::fence::{FenceSet, FrameFence};
use crate::job::{Job, JobArena, JobContext, JobSlot};
use crate::key::{Access, FrameIndex, JobKey, ResourceKey};
use crate::retire::RetireList;
use crate::stats::{FrameStats, FrameSummary, JobNameStats, SchedulerStats};
use crate::topology::{Shape, ShapeJob, TopologyCache};

/// The most frames that may be in flight.
pub const MAX_FRAMES_IN_FLIGHT: u32 = 8;

/// The most jobs one frame may declare.
pub const MAX_JOBS_PER_FRAME: usize = u32::MAX as usize / 2;

/// How a [`Scheduler`] is set up. Every field has a sensible default.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// Frames whose GPU work may be outstanding at once (1..=8, default 3).
    /// `begin_frame` of frame `n` waits for the fence of frame `n - frames_in_flight`.
    pub frames_in_flight: u32,
    /// Worker threads of the pool the scheduler creates; `None` (the default)
    /// uses one per available core. Ignored by [`Scheduler::with_pool`].
    pub threads: Option<usize>,
    /// How long `begin_frame` waits for an old frame's fence before it returns
    /// [`GraphError::FenceTimeout`] (default 10 s).
    pub fence_timeout: Duration,
    /// How many graph shapes to keep planned (default 16).
    pub graph_cache_capacity: usize,
    /// Signal each frame's fence as soon as its graph has run (or the frame is
    /// dropped without running). For CPU-only use
    /// and tests; a GPU layer leaves this off and signals from
    /// `Queue::on_submitted_work_done`. Default off.
    pub auto_signal_fences: bool,
    /// A frame whose jobs are expected to take less than this in all runs on
    /// the calling thread, in dependency order, instead of on the pool
    /// (default 500 µs; zero: always the pool, whatever the rule below).
    /// Waking a pool worker costs a few microseconds on an idle machine but
    /// milliseconds on a busy one (a driver rendering on the same cores: a
    /// woken worker waits for a time slice); a small frame does not need the
    /// parallelism. The expected work is the sum over the frame's jobs of
    /// each one's [`weight`](JobBuilder::weight) times its name's recent
    /// mean run time per unit; a frame with a job name not seen before runs
    /// on the pool. Above this floor a frame also runs inline when the pool
    /// is expected to be slower: when its work spread over the workers, plus
    /// the time a frame waits for a worker to start it (a decaying maximum
    /// of the waits measured), exceeds the work itself (one frame in 128 of
    /// those goes to the pool anyway, to measure that wait again).
    pub inline_below: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            frames_in_flight: 3,
            threads: None,
            fence_timeout: Duration::from_secs(10),
            graph_cache_capacity: 16,
            auto_signal_fences: false,
            inline_below: Duration::from_micros(500),
        }
    }
}

impl SchedulerConfig {
    fn validate(&self) -> Result<(), GraphError> {
        if !(1..=MAX_FRAMES_IN_FLIGHT).contains(&self.frames_in_flight) {
            return Err(GraphError::InvalidConfig {
                setting: "frames_in_flight",
                reason: format!(
                    "{} is out of range; use 1 to {MAX_FRAMES_IN_FLIGHT}",
                    self.frames_in_flight
                ),
            });
        }
        if self.threads == Some(0) {
            return Err(GraphError::InvalidConfig {
                setting: "threads",
                reason: "0 threads cannot run anything; use None for one per core".into(),
            });
        }
        if self.graph_cache_capacity == 0 {
            return Err(GraphError::InvalidConfig {
                setting: "graph_cache_capacity",
                reason: "must keep at least one graph".into(),
            });
        }
        Ok(())
    }
}

/// Runs each frame's job graph on a rayon pool and keeps frames in flight
/// bounded by their fences. See the [crate documentation](crate) for the model.
pub struct Scheduler {
    config: SchedulerConfig,
    pool: Arc<ThreadPool>,
    fences: crate::sync::Arc<FenceSet>,
    /// The next frame `begin_frame` starts.
    next_frame: u64,
    /// Every frame below this has retired (its fence signalled, its retire list run).
    retired_below: u64,
    retire_lists: Vec<RetireList>,
    resources: SlotMap<ResourceKey, &'static str>,
    // The frame being declared.
    jobs: SlotMap<JobKey, u32>,
    shape: Shape,
    arena: JobArena,
    exec: ExecState,
    /// A `Frame` was leaked with `mem::forget`: its jobs must be forgotten, not dropped.
    frame_open: bool,
    cache: TopologyCache,
    clock: quanta::Clock,
    #[cfg(feature = "tracy")]
    zones: crate::profiling::ZoneLocations,
    /// Per job name, a moving mean of its jobs' run time per unit of weight
    /// (ns): what decides whether a frame runs inline (see
    /// `SchedulerConfig::inline_below`).
    job_cost_ns: std::collections::HashMap<&'static str, u64>,
    /// Scratch: the cost of each name group of the topology being run.
    group_cost: Vec<Option<u64>>,
    /// A decaying maximum of how long a frame given to the pool waits for a
    /// worker to start it (ns).
    dispatch_ns: u64,
    /// Frames above the floor for which the pool was expected to be slower
    /// (every 128th of them goes to the pool to measure the wait again).
    inline_by_dispatch: u64,
    last_stats: FrameStats,
    totals: SchedulerStats,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("config", &self.config)
            .field("threads", &self.pool.current_num_threads())
            .field("next_frame", &self.next_frame)
            .field("retired_below", &self.retired_below)
            .finish_non_exhaustive()
    }
}

impl Scheduler {
    /// A scheduler with a thread pool of its own (`config.threads` workers).
    pub fn new(config: SchedulerConfig) -> Result<Self, GraphError> {
        config.validate()?;
        let mut builder =
            rayon::ThreadPoolBuilder::new().thread_name(|i| format!("forgeflow-worker-{i}"));
        if let Some(n) = config.threads {
            builder = builder.num_threads(n);
        }
        let pool = builder
            .build()
            .map_err(|e| GraphError::ThreadPool(e.to_string()))?;
        Self::with_pool(Arc::new(pool), config)
    }

    /// A scheduler that runs its jobs on the embedder's pool.
    pub fn with_pool(pool: Arc<ThreadPool>, config: SchedulerConfig) -> Result<Self, GraphError> {
        config.validate()?;
        #[cfg(feature = "tracy")]
        crate::profiling::start();
        let k = config.frames_in_flight as usize;
        Ok(Scheduler {
            fences: FenceSet::new(k),
            retire_lists: (0..k).map(|_| RetireList::default()).collect(),
            cache: TopologyCache::new(config.graph_cache_capacity),
            clock: quanta::Clock::new(),
            config,
            pool,
            next_frame: 0,
            retired_below: 0,
            resources: SlotMap::with_key(),
            jobs: SlotMap::with_key(),
            shape: Shape::default(),
            arena: JobArena::default(),
            exec: ExecState::new(),
            frame_open: false,
            #[cfg(feature = "tracy")]
            zones: Default::default(),
            job_cost_ns: std::collections::HashMap::new(),
            group_cost: Vec::new(),
            dispatch_ns: 0,
            inline_by_dispatch: 0,
            last_stats: FrameStats::default(),
            totals: SchedulerStats::default(),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &SchedulerConfig {
        &self.config
    }

    /// The pool jobs run on.
    pub fn pool(&self) -> &Arc<ThreadPool> {
        &self.pool
    }

    /// Registers a resource whose reads and writes jobs can declare.
    pub fn register_resource(&mut self, name: &'static str) -> ResourceKey {
        self.resources.insert(name)
    }

    /// Removes a resource; its key becomes stale.
    pub fn remove_resource(&mut self, key: ResourceKey) -> Result<(), GraphError> {
        self.resources
            .remove(key)
            .map(|_| ())
            .ok_or(GraphError::StaleResource { key })
    }

    /// The name a resource was registered with.
    pub fn resource_name(&self, key: ResourceKey) -> Result<&'static str, GraphError> {
        self.resources
            .get(key)
            .copied()
            .ok_or(GraphError::StaleResource { key })
    }

    /// The next frame `begin_frame` will start.
    pub fn next_frame(&self) -> FrameIndex {
        FrameIndex(self.next_frame)
    }

    /// The fence of a frame that has begun.
    pub fn fence(&self, frame: FrameIndex) -> Result<FrameFence, GraphError> {
        if frame.0 >= self.next_frame {
            return Err(GraphError::FrameNotBegun {
                frame,
                next: self.next_frame(),
            });
        }
        Ok(FrameFence::new(
            crate::sync::Arc::clone(&self.fences),
            frame,
        ))
    }

    /// Registers work to run exactly once after `frame`'s fence has signalled,
    /// after the retire work of every earlier frame. If `frame` has already
    /// retired, `f` runs now. Allocation-free once warm.
    pub fn on_retire<F>(&mut self, frame: FrameIndex, f: F) -> Result<(), GraphError>
    where
        F: FnOnce() + Send + 'static,
    {
        if frame.0 >= self.next_frame {
            return Err(GraphError::FrameNotBegun {
                frame,
                next: self.next_frame(),
            });
        }
        if frame.0 < self.retired_below {
            f();
            self.totals.retired_callbacks += 1;
            return Ok(());
        }
        let slot = self.slot(frame.0);
        self.retire_lists[slot].push(f);
        Ok(())
    }

    /// Runs the retire work of every frame whose fence has signalled (in frame
    /// order, stopping at the first frame still in flight). Never blocks.
    /// Returns how many frames retired.
    pub fn retire(&mut self) -> u64 {
        let before = self.retired_below;
        while self.retired_below < self.next_frame && self.fences.is_signalled(self.retired_below) {
            self.retire_one();
        }
        self.retired_below - before
    }

    /// Retire callbacks registered and not yet run.
    pub fn pending_retire_callbacks(&self) -> usize {
        self.retire_lists.iter().map(RetireList::len).sum()
    }

    /// Frames begun whose retire work has not run yet.
    pub fn frames_in_flight(&self) -> u64 {
        self.next_frame - self.retired_below
    }

    /// Waits (up to `timeout`) for every begun frame's fence and runs all retire
    /// work. Use before dropping the scheduler if retire work must not be lost:
    /// dropping drops unretired callbacks without running them.
    pub fn wait_idle(&mut self, timeout: Duration) -> Result<(), GraphError> {
        let deadline = Instant::now() + timeout;
        while self.retired_below < self.next_frame {
            let frame = self.retired_below;
            let left = deadline.saturating_duration_since(Instant::now());
            if !self.fences.wait(frame, left) {
                return Err(GraphError::FenceTimeout {
                    frame: FrameIndex(frame),
                    waited: timeout,
                });
            }
            self.retire_one();
        }
        Ok(())
    }

    fn retire_one(&mut self) {
        let slot = self.slot(self.retired_below);
        self.totals.retired_callbacks += self.retire_lists[slot].run_all() as u64;
        self.retired_below += 1;
    }

    fn slot(&self, frame: u64) -> usize {
        (frame % self.config.frames_in_flight as u64) as usize
    }

    /// Starts the next frame. Retires every finished frame; if the frame
    /// `frames_in_flight` back has not signalled its fence, waits for it (up to
    /// `fence_timeout`; the wait is counted in the stats).
    pub fn begin_frame(&mut self) -> Result<Frame<'_>, GraphError> {
        if self.frame_open {
            // The previous `Frame` was leaked: its jobs may borrow data that no
            // longer exists, so they are forgotten, never dropped or run.
            self.exec.forget();
            self.jobs.clear();
            self.arena.reset();
            self.frame_open = false;
        }
        self.retire();
        let n = self.next_frame;
        let k = self.config.frames_in_flight as u64;
        let mut fence_wait = Duration::ZERO;
        if n >= k {
            let oldest = n - k;
            if self.retired_below <= oldest {
                let start = Instant::now();
                self.totals.fence_waits += 1;
                while self.retired_below <= oldest {
                    let frame = self.retired_below;
                    let left = self.config.fence_timeout.saturating_sub(start.elapsed());
                    if !self.fences.wait(frame, left) {
                        self.totals.fence_timeouts += 1;
                        self.totals.fence_wait_total += start.elapsed();
                        return Err(GraphError::FenceTimeout {
                            frame: FrameIndex(frame),
                            waited: start.elapsed(),
                        });
                    }
                    self.retire_one();
                }
                fence_wait = start.elapsed();
                self.totals.fence_wait_total += fence_wait;
            }
        }
        self.next_frame += 1;
        self.totals.frames_begun += 1;
        self.jobs.clear();
        self.shape.clear();
        self.frame_open = true;
        Ok(Frame {
            sched: self,
            index: FrameIndex(n),
            fence_wait,
        })
    }

    /// Statistics of the last frame that ran, per job name included.
    pub fn last_frame_stats(&self) -> &FrameStats {
        &self.last_stats
    }

    /// Totals since the scheduler was created.
    pub fn stats(&self) -> &SchedulerStats {
        &self.totals
    }
}

/// One frame being declared. Declare jobs with [`job`](Frame::job) or
/// [`add`](Frame::add), then [`run`](Frame::run) it. Dropping a frame without
/// running it drops its jobs unrun; the frame still counts as in flight until
/// its fence signals.
pub struct Frame<'s> {
    sched: &'s mut Scheduler,
    index: FrameIndex,
    fence_wait: Duration,
}

impl std::fmt::Debug for Frame<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("index", &self.index)
            .field("jobs", &self.len())
            .field("fence_wait", &self.fence_wait)
            .finish()
    }
}

impl<'s> Frame<'s> {
    /// This frame's number.
    pub fn index(&self) -> FrameIndex {
        self.index
    }

    /// This frame's fence (to hand to the GPU layer).
    pub fn fence(&self) -> FrameFence {
        FrameFence::new(crate::sync::Arc::clone(&self.sched.fences), self.index)
    }

    /// How long `begin_frame` waited for a fence before this frame could start.
    pub fn fence_wait(&self) -> Duration {
        self.fence_wait
    }

    /// Starts declaring a job named `name` (the name appears in stats, errors and profiles).
    /// Add dependencies and resource accesses, then call [`JobBuilder::spawn`].
    #[inline]
    pub fn job(&mut self, name: &'static str) -> JobBuilder<'_, 's> {
        let shape = &self.sched.shape;
        JobBuilder {
            deps_start: shape.deps.len(),
            acc_start: shape.accesses.len(),
            frame: self,
            name,
            error: None,
            spawned: false,
            weight: 1,
        }
    }

    /// Declares a closure job with no dependencies and no resource accesses.
    #[inline]
    pub fn add<F>(&mut self, name: &'static str, work: F) -> Result<JobKey, GraphError>
    where
        F: FnOnce(&JobContext<'_>) -> JobResult + Send + 's,
    {
        self.job(name).spawn(work)
    }

    /// Declares a [`Job`] value with no dependencies and no resource accesses.
    pub fn add_job<J: Job + 's>(
        &mut self,
        name: &'static str,
        job: J,
    ) -> Result<JobKey, GraphError> {
        self.job(name).spawn_job(job)
    }

    /// Cancels a job of this frame before the frame runs: it will not run and
    /// the jobs depending on it will be skipped. Returns whether it was pending.
    pub fn cancel(&mut self, job: JobKey) -> Result<bool, GraphError> {
        match self.sched.jobs.get(job) {
            Some(&j) => Ok(self.sched.exec.cancel(j as usize)),
            None => Err(GraphError::StaleJob {
                key: job,
                frame: self.index,
            }),
        }
    }

    /// Registers work to run once this frame's fence has signalled (see
    /// [`Scheduler::on_retire`]).
    pub fn on_retire<F: FnOnce() + Send + 'static>(&mut self, f: F) {
        let slot = self.sched.slot(self.index.0);
        self.sched.retire_lists[slot].push(f);
    }

    /// Jobs declared so far.
    pub fn len(&self) -> usize {
        self.sched.shape.len()
    }

    /// Whether no job has been declared.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs the frame's graph on the pool and blocks until every job has run,
    /// failed, been skipped or been cancelled. Job failures come back (over a
    /// crossbeam channel from the workers) as a [`FrameError`] naming each failed
    /// job; the scheduler is ready for the next frame either way.
    ///
    /// Do not call it from inside one of the frame's own jobs' pool threads
    /// while holding locks those jobs need: it runs jobs on the pool like
    /// `ThreadPool::install`.
    pub fn run(self) -> Result<FrameSummary, FrameError> {
        let sched = &mut *self.sched;
        let started = Instant::now();
        let (index, reused) = sched.cache.get_or_plan(&sched.shape);
        let topology = sched.cache.get(index);
        if reused {
            sched.totals.graphs_reused += 1;
        } else {
            sched.totals.graphs_planned += 1;
        }
        #[cfg(feature = "tracy")]
        sched.zones.select(&topology.group_names);
        sched.exec.prepare(topology);
        let expected = expected_work(
            topology,
            &sched.exec,
            &sched.job_cost_ns,
            &mut sched.group_cost,
        );
        let floor = sched.config.inline_below.as_nanos() as u64;
        let inline = match expected {
            _ if floor == 0 => false,
            Some(w) if w < floor => true,
            Some(w) => {
                // On the pool: the wait for a worker, then the work spread
                // over the workers (at best).
                let p = sched.pool.current_num_threads().max(1) as u64;
                let slower = sched.dispatch_ns + w / p > w;
                if slower {
                    sched.inline_by_dispatch += 1;
                }
                slower && !sched.inline_by_dispatch.is_multiple_of(128)
            }
            None => false,
        };
        {
            let run = Run {
                exec: &sched.exec,
                topology,
                keys: &sched.jobs,
                frame: self.index,
                clock: &sched.clock,
                #[cfg(feature = "tracy")]
                zones: &sched.zones,
            };
            if inline {
                run.execute_inline();
            } else {
                let clock = &sched.clock;
                let asked = clock.raw();
                let entered = sched.pool.install(|| {
                    let entered = clock.raw();
                    run.execute();
                    entered
                });
                let wait = clock.delta_as_nanos(asked, entered);
                // A decaying maximum, not a mean: the wait is bimodal on a
                // busy machine (a worker is often on a core at once, or
                // waits out another thread's time slice) and the frames
                // that matter are those that wait.
                sched.dispatch_ns = wait.max(sched.dispatch_ns - sched.dispatch_ns / 8);
                sched.totals.dispatch_wait = Duration::from_nanos(sched.dispatch_ns);
            }
        }
        let run_time = started.elapsed();

        // Tally, on the calling thread, from the per-job state (no shared counters on the hot path).
        let stats = &mut sched.last_stats;
        stats.frame = self.index;
        stats.jobs = topology.shape.len() as u32;
        stats.graph_depth = topology.depth;
        stats.jobs_completed = 0;
        stats.jobs_failed = 0;
        stats.jobs_skipped = 0;
        stats.jobs_cancelled = 0;
        stats.fence_wait = self.fence_wait;
        stats.run_time = run_time;
        stats.by_name.clear();
        stats
            .by_name
            .extend(topology.group_names.iter().map(|&name| JobNameStats {
                name,
                ..JobNameStats::default()
            }));
        let mut unfinished = 0u32;
        for (j, job) in sched.exec.jobs.iter().enumerate() {
            let state = job.state.load(crate::sync::Ordering::Acquire);
            match state {
                exec::COMPLETED => stats.jobs_completed += 1,
                exec::FAILED => stats.jobs_failed += 1,
                exec::SKIPPED => stats.jobs_skipped += 1,
                exec::CANCELLED => stats.jobs_cancelled += 1,
                _ => unfinished += 1,
            }
            // SAFETY: the pool is done with this frame (`install` returned), so
            // this thread is the slot's only user; a job still stored never ran
            // and is dropped here, once.
            if let Some(ptr) = unsafe { job.work.take() } {
                unsafe { crate::job::drop_unrun(ptr) };
            }
            if state == exec::COMPLETED || state == exec::FAILED {
                let elapsed =
                    Duration::from_nanos(job.elapsed_ns.load(crate::sync::Ordering::Relaxed));
                let entry = &mut stats.by_name[topology.name_group[j] as usize];
                entry.count += 1;
                entry.weight += job.weight as u64;
                entry.total += elapsed;
                entry.max = entry.max.max(elapsed);
            }
        }
        // Every job has now been run or dropped: forget them in O(1).
        sched.exec.forget();
        let totals = &mut sched.totals;
        totals.frames_run += 1;
        totals.jobs_completed += stats.jobs_completed as u64;
        totals.jobs_failed += stats.jobs_failed as u64;
        totals.jobs_skipped += stats.jobs_skipped as u64;
        totals.jobs_cancelled += stats.jobs_cancelled as u64;
        totals.frames_inline += inline as u64;
        stats.ran_inline = inline;
        for n in &stats.by_name {
            if n.count > 0 {
                let mean = (n.total.as_nanos() / n.weight.max(1) as u128) as u64;
                sched
                    .job_cost_ns
                    .entry(n.name)
                    .and_modify(|c| *c = (*c * 3 + mean) / 4)
                    .or_insert(mean);
            }
        }
        #[cfg(feature = "tracy")]
        crate::profiling::frame_end(stats);

        let fence = FrameFence::new(crate::sync::Arc::clone(&sched.fences), self.index);
        let summary = FrameSummary {
            frame: self.index,
            fence,
            jobs: stats.jobs,
            jobs_completed: stats.jobs_completed,
            jobs_failed: stats.jobs_failed,
            jobs_skipped: stats.jobs_skipped,
            jobs_cancelled: stats.jobs_cancelled,
            fence_wait: self.fence_wait,
            run_time,
            graph_reused: reused,
        };
        let mut failures = Vec::new();
        while let Ok(f) = sched.exec.failures_rx.try_recv() {
            failures.push(f);
        }
        if unfinished > 0 {
            // Cannot happen unless the executor is wrong; report it rather than hide it.
            failures.push(crate::error::JobFailure {
                job: JobKey::default(),
                name: "forgeflow-internal",
                kind: crate::error::FailureKind::Error,
                message: format!("{unfinished} job(s) never finished; this is a forgeflow bug"),
            });
        }
        if !failures.is_empty() {
            sched.totals.frames_failed += 1;
        }
        // `self` drops here: the remaining (unrun) jobs are dropped, the arena
        // reset and, with `auto_signal_fences`, the fence signalled.
        drop(self);
        if failures.is_empty() {
            Ok(summary)
        } else {
            Err(FrameError { failures, summary })
        }
    }
}

impl Drop for Frame<'_> {
    fn drop(&mut self) {
        let sched = &mut *self.sched;
        // Every job is either run (and dropped by its worker) or dropped here,
        // before the frame's borrows end; then the arena can be reused.
        sched.exec.clear();
        sched.arena.reset();
        sched.frame_open = false;
        if sched.config.auto_signal_fences {
            sched.fences.signal(self.index.0);
        }
    }
}

/// Declares one job: its dependencies, its resource accesses, then its work.
/// Errors (a stale key) are reported by [`spawn`](JobBuilder::spawn).
/// Dropping the builder without spawning declares nothing.
#[must_use = "a job is declared only when `spawn` is called"]
pub struct JobBuilder<'f, 's> {
    frame: &'f mut Frame<'s>,
    name: &'static str,
    deps_start: usize,
    acc_start: usize,
    /// The first error, boxed: it is rare and the builder is passed by value.
    error: Option<Box<GraphError>>,
    spawned: bool,
    weight: u32,
}

impl<'s> JobBuilder<'_, 's> {
    /// Records a dependency in place (the builder is not moved per dependency:
    /// moving it was most of the cost of declaring a job).
    #[inline]
    fn add_dep(&mut self, dep: JobKey) {
        if self.error.is_none() {
            match self.frame.sched.jobs.get(dep) {
                Some(&j) => self.frame.sched.shape.deps.push(j),
                None => {
                    self.error = Some(Box::new(GraphError::StaleJob {
                        key: dep,
                        frame: self.frame.index,
                    }))
                }
            }
        }
    }

    /// How large this job is against other jobs of its name (default 1):
    /// bytes, pixels, tiles, in units of the caller's choosing, the same for
    /// every job of a name. The scheduler learns each name's time per unit
    /// and predicts a frame's work from it (see
    /// [`SchedulerConfig::inline_below`]), so a frame of many small jobs is
    /// not mistaken for one of as many large ones.
    #[inline]
    pub fn weight(mut self, weight: u32) -> Self {
        self.weight = weight.max(1);
        self
    }

    /// Runs after `dep` (a job declared earlier in this frame) has completed.
    /// If `dep` fails, is skipped or is cancelled, this job is skipped.
    #[inline]
    pub fn after(mut self, dep: JobKey) -> Self {
        self.add_dep(dep);
        self
    }

    /// Runs after each of `deps`.
    #[inline]
    pub fn after_all(mut self, deps: impl IntoIterator<Item = JobKey>) -> Self {
        for dep in deps {
            self.add_dep(dep);
        }
        self
    }

    fn access(mut self, resource: ResourceKey, access: Access) -> Self {
        if self.error.is_none() {
            if self.frame.sched.resources.contains_key(resource) {
                let id = slotmap::Key::data(&resource).as_ffi();
                self.frame.sched.shape.accesses.push((id, access));
            } else {
                self.error = Some(Box::new(GraphError::StaleResource { key: resource }));
            }
        }
        self
    }

    /// Reads `resource`: runs after the last job declared before it that writes it.
    #[inline]
    pub fn reads(self, resource: ResourceKey) -> Self {
        self.access(resource, Access::Read)
    }

    /// Writes `resource`: runs after the last earlier writer and every reader since.
    #[inline]
    pub fn writes(self, resource: ResourceKey) -> Self {
        self.access(resource, Access::Write)
    }

    /// Declares the job with a closure as its work and returns its key (valid for this frame).
    #[inline]
    pub fn spawn<F>(self, work: F) -> Result<JobKey, GraphError>
    where
        F: FnOnce(&JobContext<'_>) -> JobResult + Send + 's,
    {
        self.spawn_job(work)
    }

    /// Declares the job with a [`Job`] value as its work and returns its key (valid for this frame).
    #[inline]
    pub fn spawn_job<J: Job + 's>(mut self, job: J) -> Result<JobKey, GraphError> {
        if let Some(err) = self.error.take() {
            return Err(*err);
        }
        let sched = &mut *self.frame.sched;
        let j = sched.shape.len();
        if j >= MAX_JOBS_PER_FRAME {
            return Err(GraphError::TooManyJobs {
                limit: MAX_JOBS_PER_FRAME,
            });
        }
        let key = sched.jobs.insert(j as u32);
        let ptr = sched.arena.store::<J>(job);
        sched.exec.push_job(key, JobSlot::new(ptr), self.weight);
        let shape = &mut sched.shape;
        shape.jobs.push(ShapeJob {
            name: self.name,
            dep_end: shape.deps.len() as u32,
            acc_end: shape.accesses.len() as u32,
        });
        self.spawned = true;
        Ok(key)
    }
}

impl Drop for JobBuilder<'_, '_> {
    fn drop(&mut self) {
        if !self.spawned {
            // Undo the dependencies and accesses recorded for a job never declared.
            let shape = &mut self.frame.sched.shape;
            shape.deps.truncate(self.deps_start);
            shape.accesses.truncate(self.acc_start);
        }
    }
}

/// The work the frame's jobs are expected to take in all (ns): each job
/// costs its weight times its name's moving mean per unit; `None` when a
/// name was never seen.
fn expected_work(
    topology: &crate::topology::Topology,
    exec: &ExecState,
    cost_ns: &std::collections::HashMap<&'static str, u64>,
    group_cost: &mut Vec<Option<u64>>,
) -> Option<u64> {
    group_cost.clear();
    group_cost.extend(topology.group_names.iter().map(|n| cost_ns.get(n).copied()));
    let mut expected = 0u64;
    for (&g, job) in topology.name_group.iter().zip(&exec.jobs) {
        let unit = group_cost[g as usize]?;
        expected = expected.saturating_add(unit.saturating_mul(job.weight as u64));
    }
    Some(expected)
}
