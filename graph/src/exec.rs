//! Execution: running a planned graph on a rayon pool.
//!
//! Every job has an atomic count of unfinished predecessors. Whoever finishes a
//! job decrements its successors' counts; a successor whose count reaches zero
//! is ready, and belongs to the thread that brought it there. That thread keeps
//! one ready successor for itself (a loop, no recursion) and offers each of the
//! others to the pool as its own `rayon::join` half, all of them before it runs
//! anything: each offer can wake a sleeping worker at once. (Offering them as
//! one batch that thieves split again wakes workers one after another; on 16
//! cores that left a third of the pool idle.) There is no queue and no lock on
//! this path: only the counters, one state byte per job, and rayon's own deques.
//! Because work is offered through `join`, jobs may use rayon themselves
//! (`par_iter` inside a decode job) and idle workers help.
//!
//! `join` nests, so a thread's stack grows with the fan-outs it runs inline. A
//! thread-local record of where this module's outermost frame on the current
//! stack began bounds it:
//! past [`MAX_NESTED_STACK`] bytes, ready jobs go to an overflow queue, which threads drain
//! whenever a chain of theirs ends and the frame drains from the top at the
//! end. Any depth of graph runs in bounded stack.
//!
//! A job that fails, panics, is cancelled or is skipped *poisons* its
//! successors: they still count down (so the frame always finishes) but are
//! skipped instead of run. A job's state moves `PENDING -> RUNNING -> COMPLETED | FAILED`,
//! or `PENDING -> SKIPPED`, or `PENDING -> CANCELLED`; the compare-and-swap out of
//! `PENDING` decides, once, who owns the job.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};

use crate::sync::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};

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

/// How much stack this module's nested frames (each with a `rayon::join`) may
/// use on one thread before ready jobs go to the overflow queue instead. Measured
/// in bytes, not levels, because a level costs a few hundred bytes in release
/// builds and several KiB in debug ones; 512 KiB leaves most of rayon's default
/// 2 MiB worker stack to the jobs themselves.
pub(crate) const MAX_NESTED_STACK: usize = 512 * 1024;

/// Ready jobs up to this many are offered one `join` each; longer lists are
/// halved first, so the stack grows with the logarithm of their length.
const FLAT_FANOUT: usize = 16;

thread_local! {
    /// This module's frames on the current thread's stack, and the stack
    /// address where the outermost of them started.
    static NESTING: Cell<(u32, usize)> = const { Cell::new((0, 0)) };
}

/// Counts one level of nesting while alive.
struct Nested;

impl Nested {
    /// Enters a level; returns the stack bytes used since the outermost level.
    fn enter() -> (Nested, usize) {
        let marker = 0u8;
        let here = std::hint::black_box(&marker) as *const u8 as usize;
        let used = NESTING.with(|n| {
            let (depth, base) = n.get();
            let base = if depth == 0 { here } else { base };
            n.set((depth + 1, base));
            base.abs_diff(here)
        });
        (Nested, used)
    }
}

/// Stack bytes used by this module's frames on the current thread, without entering a level.
fn nested_stack_used() -> usize {
    let marker = 0u8;
    let here = std::hint::black_box(&marker) as *const u8 as usize;
    NESTING.with(|n| match n.get() {
        (0, _) => 0,
        (_, base) => base.abs_diff(here),
    })
}

impl Drop for Nested {
    fn drop(&mut self) {
        NESTING.with(|n| {
            let (depth, base) = n.get();
            n.set((depth.saturating_sub(1), base));
        });
    }
}

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
    /// Its size relative to other jobs of its name (see `JobBuilder::weight`).
    pub(crate) weight: u32,
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
    pub(crate) fn push_job(&mut self, key: JobKey, work: JobSlot, weight: u32) {
        self.jobs.push(JobRecord {
            state: AtomicU8::new(PENDING),
            poisoned: AtomicBool::new(false),
            remaining: AtomicU32::new(0),
            elapsed_ns: AtomicU64::new(0),
            weight,
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

/// Finishes one dependency edge into `succ`: marks it poisoned if the
/// predecessor did not complete, then counts it down. Returns whether `succ` is
/// now ready; if so it belongs to the caller. AcqRel: the predecessor's writes
/// (and the poison flag) happen before the successor runs, on whichever thread
/// takes it. Checked by `loom_model::dependents_see_their_predecessors`.
#[inline]
pub(crate) fn release_edge(succ: &JobRecord, predecessor_ok: bool) -> bool {
    if !predecessor_ok {
        succ.poisoned.store(true, Ordering::Relaxed);
    }
    succ.remaining.fetch_sub(1, Ordering::AcqRel) == 1
}

/// Takes a ready job out of PENDING: to RUNNING (returns true: run it) or, if a
/// predecessor did not complete, to SKIPPED (returns false). A failed exchange
/// means it was cancelled first (returns false). Exactly one of the runner and
/// a canceller wins. Checked by `loom_model::run_or_cancel_never_both`.
#[inline]
pub(crate) fn claim(record: &JobRecord) -> bool {
    let target = if record.poisoned.load(Ordering::Relaxed) {
        SKIPPED
    } else {
        RUNNING
    };
    record
        .state
        .compare_exchange(PENDING, target, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
        && target == RUNNING
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
        self.run_list(&self.topology.roots);
        // Jobs parked in the overflow queue by deep nesting: run them from the top.
        while let Some(j) = self.exec.overflow.pop() {
            self.run_from(j as usize);
        }
    }

    /// Runs the whole graph on the calling thread (which need not belong
    /// to the pool), in dependency order: ready jobs wait in the overflow
    /// queue (its capacity is the job count, and each job enters it once).
    pub(crate) fn execute_inline(&self) {
        for &r in &self.topology.roots {
            let _ = self.exec.overflow.push(r);
        }
        while let Some(j) = self.exec.overflow.pop() {
            let j = j as usize;
            let ok = self.run_one(j);
            for edge in self.topology.successors(j) {
                let s = self.topology.succ[edge];
                if release_edge(&self.exec.jobs[s as usize], ok) {
                    let _ = self.exec.overflow.push(s);
                }
            }
        }
    }

    /// Runs every job of `list` (all ready), offering all but one to the pool.
    fn run_list<T: ReadyIndex>(&self, list: &[T]) {
        if let Some((first, rest)) = list.split_first() {
            self.offer(first.index(), rest);
        }
    }

    /// Offers each job of `rest` to the pool, then runs `first` on this thread.
    fn offer<T: ReadyIndex>(&self, first: usize, rest: &[T]) {
        let (_level, stack_used) = Nested::enter();
        if rest.is_empty() {
            return self.run_from(first);
        }
        if stack_used >= MAX_NESTED_STACK {
            for r in rest {
                // Capacity is the job count and each job enters at most once.
                let _ = self.exec.overflow.push(r.index() as u32);
            }
            return self.run_from(first);
        }
        if rest.len() <= FLAT_FANOUT {
            // Offer the last one, then (inline) the others: every offer is made
            // before `first` starts.
            let (last, init) = rest.split_last().expect("rest is not empty");
            rayon::join(|| self.offer(first, init), || self.run_from(last.index()));
        } else {
            let (a, b) = rest.split_at(rest.len() / 2);
            rayon::join(|| self.offer(first, a), || self.run_list(b));
        }
    }

    /// Runs job `j`, then whatever it makes ready, keeping one ready job on this
    /// thread and offering the rest to the pool.
    fn run_from(&self, mut j: usize) {
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
                if release_edge(&self.exec.jobs[s], ok) {
                    if first == usize::MAX {
                        first = s;
                    } else {
                        self.exec.ready[base + others].store(s as u32, Ordering::Relaxed);
                        others += 1;
                    }
                }
            }
            if first == usize::MAX {
                // This chain ended: pick up work parked by a deep stack, if any.
                match self.exec.overflow.pop() {
                    Some(parked) => {
                        j = parked as usize;
                        continue;
                    }
                    None => return,
                }
            }
            if others == 0 {
                j = first;
                continue;
            }
            let rest = &self.exec.ready[base..base + others];
            if nested_stack_used() >= MAX_NESTED_STACK {
                // Too deep to offer: park the others and go on with `first` in
                // this loop, so the stack stops growing here.
                for r in rest {
                    // Capacity is the job count and each job enters at most once.
                    let _ = self.exec.overflow.push(r.index() as u32);
                }
                j = first;
                continue;
            }
            return self.offer(first, rest);
        }
    }

    /// Runs (or skips) one job. Returns whether it completed successfully.
    fn run_one(&self, j: usize) -> bool {
        let exec = self.exec;
        let record = &exec.jobs[j];
        if !claim(record) {
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

pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
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

#[cfg(all(test, loom))]
mod loom_model {
    use super::*;
    use crate::job::JobSlot;
    use loom::cell::UnsafeCell;
    use loom::sync::Arc;

    fn record(remaining: u32) -> JobRecord {
        JobRecord {
            state: AtomicU8::new(PENDING),
            poisoned: AtomicBool::new(false),
            remaining: AtomicU32::new(remaining),
            elapsed_ns: AtomicU64::new(0),
            weight: 1,
            key: Default::default(),
            work: JobSlot::empty(),
        }
    }

    /// Two predecessors finish on two threads: exactly one of them makes the
    /// successor ready, and that thread sees both predecessors' results (loom
    /// reports a data race on the cells otherwise) and the right poison flag.
    #[test]
    fn dependents_see_their_predecessors() {
        for (ok0, ok1) in [(true, true), (true, false)] {
            loom::model(move || {
                let succ = Arc::new(record(2));
                let results = Arc::new([UnsafeCell::new(0u32), UnsafeCell::new(0u32)]);
                let threads: Vec<_> = [(0usize, ok0), (1, ok1)]
                    .into_iter()
                    .map(|(i, ok)| {
                        let (succ, results) = (Arc::clone(&succ), Arc::clone(&results));
                        loom::thread::spawn(move || {
                            // The predecessor's work: a plain write.
                            results[i].with_mut(|p| unsafe { *p = 10 + i as u32 });
                            if release_edge(&succ, ok) {
                                let seen = (
                                    results[0].with(|p| unsafe { *p }),
                                    results[1].with(|p| unsafe { *p }),
                                );
                                assert_eq!(
                                    seen,
                                    (10, 11),
                                    "the successor runs after both predecessors"
                                );
                                assert_eq!(succ.poisoned.load(Ordering::Relaxed), !(ok0 && ok1));
                                return 1;
                            }
                            0
                        })
                    })
                    .collect();
                let readied: u32 = threads.into_iter().map(|t| t.join().unwrap()).sum();
                assert_eq!(readied, 1, "exactly one thread makes the successor ready");
            });
        }
    }

    /// A ready job parked in the overflow queue (deep nesting) is handed to
    /// whichever thread drains it: the thread that readied it parks its
    /// index; two drainers race for it. Exactly one takes the job's slot
    /// (loom reports a data race on the slot otherwise), and it sees the
    /// predecessor's write. The queue is a stand-in (a mutex around a vector)
    /// for crossbeam's `ArrayQueue`, whose own correctness is crossbeam's:
    /// the model checks the protocol on top, the countdown and the claim.
    #[test]
    fn a_parked_job_is_handed_to_one_thread_with_its_predecessors_writes() {
        loom::model(|| {
            let job = Arc::new(record(1));
            let slot = Arc::new(UnsafeCell::new(Some(7u32))); // written when declared
            let result = Arc::new(UnsafeCell::new(0u32));
            let queue = Arc::new(loom::sync::Mutex::new(Vec::new()));
            let take =
                |job: &JobRecord, slot: &UnsafeCell<Option<u32>>, result: &UnsafeCell<u32>| {
                    if !claim(job) {
                        return 0;
                    }
                    assert_eq!(
                        result.with(|p| unsafe { *p }),
                        42,
                        "the predecessor's write"
                    );
                    slot.with_mut(|p| unsafe { (*p).take() }).map_or(0, |_| 1)
                };
            let predecessor = {
                let (job, result, queue) =
                    (Arc::clone(&job), Arc::clone(&result), Arc::clone(&queue));
                loom::thread::spawn(move || {
                    result.with_mut(|p| unsafe { *p = 42 });
                    if release_edge(&job, true) {
                        queue.lock().unwrap().push(0u32); // parked, not run here
                    }
                })
            };
            let drainer = {
                let (job, slot, result, queue) = (
                    Arc::clone(&job),
                    Arc::clone(&slot),
                    Arc::clone(&result),
                    Arc::clone(&queue),
                );
                loom::thread::spawn(move || match queue.lock().unwrap().pop() {
                    Some(_) => take(&job, &slot, &result),
                    None => 0,
                })
            };
            // This thread drains too, and at the frame's end drains what is left.
            let mut taken = match queue.lock().unwrap().pop() {
                Some(_) => take(&job, &slot, &result),
                None => 0,
            };
            predecessor.join().unwrap();
            taken += drainer.join().unwrap();
            if queue.lock().unwrap().pop().is_some() {
                taken += take(&job, &slot, &result);
            }
            assert_eq!(taken, 1, "the job runs exactly once");
        });
    }

    /// A worker claiming a ready job races a canceller: never both win.
    #[test]
    fn run_or_cancel_never_both() {
        loom::model(|| {
            let job = Arc::new(record(0));
            let j2 = Arc::clone(&job);
            let canceller = loom::thread::spawn(move || {
                j2.state
                    .compare_exchange(PENDING, CANCELLED, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            });
            let ran = claim(&job);
            let cancelled = canceller.join().unwrap();
            assert!(ran ^ cancelled, "ran {ran}, cancelled {cancelled}");
        });
    }
}
