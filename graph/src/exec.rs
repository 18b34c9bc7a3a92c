//! Execution: running a planned graph on a rayon pool.
//!
//! Every job has an atomic count of unfinished predecessors. Whoever finishes a
//! job decrements its successors' counts; a successor whose count reaches zero
//! is ready, and belongs to the thread that brought it there. That thread keeps
//! one ready successor for itself (a loop, no recursion) and offers the others
//! to the pool with `rayon::join`, which idle workers steal. There is no queue
//! and no lock on this path: only the counters, one state byte per job, and
//! rayon's own deques. Because work is offered through `join`, jobs may use
//! rayon themselves (`par_iter` inside a decode job) and idle workers help.
//!
//! `join` nests, so the stack grows with the number of fan-outs along a chain.
//! Past [`MAX_NESTING`] levels ready jobs go to an overflow queue instead, which
//! the frame drains from the top once the stack has unwound: any depth of graph
//! runs in bounded stack.
//!
//! A job that fails, panics, is cancelled or is skipped *poisons* its
//! successors: they still count down (so the frame always finishes) but are
//! skipped instead of run. A job's state moves `PENDING -> RUNNING -> COMPLETED | FAILED`,
//! or `PENDING -> SKIPPED`, or `PENDING -> CANCELLED`; the compare-and-swap out of
//! `PENDING` decides, once, who owns the job.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};

use crossbeam_channel::{Receiver, Sender};
use crossbeam_queue::ArrayQueue;

use crate::error::{FailureKind, JobFailure};
use crate::job::{self, JobContext, JobSlot};
use crate::key::{FrameIndex, JobKey};
use crate::topology::Topology;

pub(crate) const PENDING: u8 = 0;
pub(crate) const RUNNING: u8 = 1;
pub(crate) const COMPLETED: u8 = 2;
pub(crate) const FAILED: u8 = 3;
pub(crate) const SKIPPED: u8 = 4;
pub(crate) const CANCELLED: u8 = 5;

/// How many nested fan-outs one thread may have on its stack before ready jobs
/// go to the overflow queue. Each level costs a few hundred bytes of stack.
pub(crate) const MAX_NESTING: u32 = 64;

/// Everything the executor tracks about one job, together so that running a
/// job touches one cache line, and alone on it so that two workers running
/// neighbouring jobs do not bounce a shared line between their cores.
#[repr(align(64))]
pub(crate) struct JobRecord {
    pub(crate) state: AtomicU8,
    pub(crate) poisoned: AtomicBool,
    /// Predecessors not finished yet.
    pub(crate) remaining: AtomicU32,
    pub(crate) elapsed_ns: AtomicU64,
    pub(crate) key: JobKey,
    pub(crate) work: JobSlot,
}

/// Per-frame execution state, reused frame after frame (vectors only grow).
pub(crate) struct ExecState {
    pub(crate) jobs: Vec<JobRecord>,
    /// Per-successor-edge scratch: the ready successors found when a job finishes,
    /// written only by the thread that finished it.
    pub(crate) ready: Vec<AtomicU32>,
    pub(crate) overflow: ArrayQueue<u32>,
    failures_tx: Sender<JobFailure>,
    pub(crate) failures_rx: Receiver<JobFailure>,
}

impl ExecState {
    pub(crate) fn new() -> Self {
        let (failures_tx, failures_rx) = crossbeam_channel::unbounded();
        ExecState {
            jobs: Vec::new(),
            ready: Vec::new(),
            overflow: ArrayQueue::new(1),
            failures_tx,
            failures_rx,
        }
    }

    /// Registers a newly declared job (pending, with its stored work).
    #[inline]
    pub(crate) fn push_job(&mut self, key: JobKey, work: JobSlot) {
        self.jobs.push(JobRecord {
            state: AtomicU8::new(PENDING),
            poisoned: AtomicBool::new(false),
            remaining: AtomicU32::new(0),
            elapsed_ns: AtomicU64::new(0),
            key,
            work,
        });
    }

    /// Prepares counters for running `topology`; allocates only when the graph
    /// is larger than any before.
    pub(crate) fn prepare(&mut self, topology: &Topology) {
        for (job, &d) in self.jobs.iter().zip(&topology.indegree) {
            job.remaining.store(d, Ordering::Relaxed);
        }
        if self.ready.len() < topology.succ.len() {
            self.ready
                .resize_with(topology.succ.len(), || AtomicU32::new(0));
        }
        let n = self.jobs.len().max(1);
        if self.overflow.capacity() < n {
            self.overflow = ArrayQueue::new(n);
        }
    }

    /// Drops every job that is still stored and forgets the frame's jobs.
    pub(crate) fn clear(&mut self) {
        for job in &self.jobs {
            // SAFETY: `&mut self` means no worker is running; each pointer in a
            // slot is live (not yet run or dropped) and is dropped once, here.
            if let Some(ptr) = unsafe { job.work.take() } {
                unsafe { job::drop_unrun(ptr) };
            }
        }
        self.forget();
    }

    /// Forgets the frame's jobs without dropping them (after a leaked frame,
    /// whose jobs may borrow data that no longer exists).
    pub(crate) fn forget(&mut self) {
        self.jobs.clear();
        while self.overflow.pop().is_some() {}
    }

    /// Cancels job `j` if it has not started. Returns whether it was cancelled.
    pub(crate) fn cancel(&self, j: usize) -> bool {
        self.jobs[j]
            .state
            .compare_exchange(PENDING, CANCELLED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

/// Everything the workers need for one frame, shared by reference.
pub(crate) struct Run<'a> {
    pub(crate) exec: &'a ExecState,
    pub(crate) topology: &'a Topology,
    pub(crate) keys: &'a slotmap::SlotMap<JobKey, u32>,
    pub(crate) frame: FrameIndex,
    /// A TSC-based clock where the CPU has an invariant one (a few ns a read,
    /// against ~20 ns for `Instant::now` on a VM), the OS clock otherwise.
    pub(crate) clock: &'a quanta::Clock,
    #[cfg(feature = "tracy")]
    pub(crate) zones: &'a crate::profiling::ZoneLocations,
}

impl Run<'_> {
    /// Runs the whole graph; returns when every job has completed, failed,
    /// been skipped or been cancelled. Call on a thread of the pool.
    pub(crate) fn execute(&self) {
        self.run_list(&self.topology.roots, 0);
        // Jobs parked in the overflow queue by deep nesting: run them from the top.
        while let Some(j) = self.exec.overflow.pop() {
            self.run_from(j as usize, 0);
        }
    }

    fn run_list<T: ReadyIndex>(&self, list: &[T], nesting: u32) {
        match list {
            [] => {}
            [one] => self.run_from(one.index(), nesting),
            _ => {
                let (a, b) = list.split_at(list.len() / 2);
                rayon::join(
                    || self.run_list(a, nesting + 1),
                    || self.run_list(b, nesting + 1),
                );
            }
        }
    }

    /// Runs job `j`, then whatever it makes ready, keeping one ready job on this
    /// thread and offering the rest to the pool.
    fn run_from(&self, mut j: usize, nesting: u32) {
        loop {
            let ok = self.run_one(j);
            let succ = self.topology.successors(j);
            let base = succ.start;
            // The first ready successor stays in a register; only further ones
            // go to the scratch array (shared memory), so a plain chain never touches it.
            let mut first = usize::MAX;
            let mut others = 0usize;
            for edge in succ {
                let s = self.topology.succ[edge] as usize;
                let succ_job = &self.exec.jobs[s];
                if !ok {
                    succ_job.poisoned.store(true, Ordering::Relaxed);
                }
                // AcqRel: the finishing job's writes (and the poison flag) happen
                // before the successor runs on whichever thread takes it.
                if succ_job.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                    if first == usize::MAX {
                        first = s;
                    } else {
                        self.exec.ready[base + others].store(s as u32, Ordering::Relaxed);
                        others += 1;
                    }
                }
            }
            if first == usize::MAX {
                return;
            }
            if others == 0 {
                j = first;
                continue;
            }
            let rest = &self.exec.ready[base..base + others];
            if nesting >= MAX_NESTING {
                for r in rest {
                    // Capacity is the job count and each job enters at most once.
                    let _ = self.exec.overflow.push(r.index() as u32);
                }
                j = first;
                continue;
            }
            rayon::join(
                || self.run_from(first, nesting + 1),
                || self.run_list(rest, nesting + 1),
            );
            return;
        }
    }

    /// Runs (or skips) one job. Returns whether it completed successfully.
    fn run_one(&self, j: usize) -> bool {
        let exec = self.exec;
        let record = &exec.jobs[j];
        let target = if record.poisoned.load(Ordering::Relaxed) {
            SKIPPED
        } else {
            RUNNING
        };
        // Whoever moves the job out of PENDING owns it; a failed exchange means
        // it was cancelled first.
        if record
            .state
            .compare_exchange(PENDING, target, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
            || target == SKIPPED
        {
            // SAFETY: the state transition (ours, or the canceller's, which
            // never touches the slot) makes this thread the slot's only user.
            if let Some(ptr) = unsafe { record.work.take() } {
                unsafe { job::drop_unrun(ptr) };
            }
            return false;
        }
        // SAFETY: as above: this thread won PENDING -> RUNNING.
        let Some(ptr) = (unsafe { record.work.take() }) else {
            record.state.store(FAILED, Ordering::Release);
            return false;
        };
        let name = self.topology.shape.name(j);
        let ctx = JobContext {
            frame: self.frame,
            key: record.key,
            name,
            exec,
            keys: self.keys,
        };
        #[cfg(feature = "tracy")]
        let _zone = self.zones.begin(self.topology.name_group[j] as usize);
        let start = self.clock.raw();
        // SAFETY: `ptr` was stored this frame and is run exactly once, here.
        let outcome =
            panic::catch_unwind(AssertUnwindSafe(|| unsafe { job::run_and_drop(ptr, &ctx) }));
        let elapsed = self.clock.delta_as_nanos(start, self.clock.raw());
        record.elapsed_ns.store(elapsed, Ordering::Relaxed);
        let failure = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(err)) => Some((FailureKind::Error, err.message().to_owned())),
            Err(payload) => Some((FailureKind::Panic, panic_message(payload.as_ref()))),
        };
        match failure {
            None => {
                record.state.store(COMPLETED, Ordering::Release);
                true
            }
            Some((kind, message)) => {
                record.state.store(FAILED, Ordering::Release);
                // The receiver lives as long as the sender (both in ExecState).
                let _ = exec.failures_tx.send(JobFailure {
                    job: record.key,
                    name,
                    kind,
                    message,
                });
                false
            }
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

/// A job number in a list: plain (`roots`) or atomic (the ready scratch).
trait ReadyIndex: Sync {
    fn index(&self) -> usize;
}

impl ReadyIndex for u32 {
    fn index(&self) -> usize {
        *self as usize
    }
}

impl ReadyIndex for AtomicU32 {
    fn index(&self) -> usize {
        self.load(Ordering::Relaxed) as usize
    }
}
