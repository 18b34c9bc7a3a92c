//! Jobs: what a frame's work is made of, and how it is stored without allocating.
//!
//! A job is a value implementing [`Job`]; every `FnOnce(&JobContext) -> JobResult + Send`
//! closure is one. Jobs may borrow from the caller's stack (like `rayon::scope`): a
//! frame's jobs all run, or are dropped, before [`Frame::run`](crate::Frame::run) returns.
//!
//! Storage: each job is moved into a bump arena owned by the scheduler and
//! reached through a type-erased pointer. The arena is reset once the frame's
//! jobs are gone and keeps its largest chunk, so once warm a frame's jobs
//! cost no heap allocation however many closures it declares.

use std::cell::UnsafeCell;
use std::ptr::NonNull;

use bumpalo::Bump;

use crate::error::{GraphError, JobResult};
use crate::exec::ExecState;
use crate::key::{FrameIndex, JobKey};

/// A unit of work in a frame's graph.
///
/// Closures implement it; so can a plain struct, which is handy for jobs that
/// carry data and a name of their own:
///
/// ```
/// use forgeflow_graph::{Job, JobContext, JobResult};
///
/// struct Checksum<'a> { data: &'a [u8], out: &'a std::sync::atomic::AtomicU64 }
///
/// impl Job for Checksum<'_> {
///     fn run(self, _ctx: &JobContext<'_>) -> JobResult {
///         let sum = self.data.iter().map(|&b| b as u64).sum();
///         self.out.store(sum, std::sync::atomic::Ordering::Relaxed);
///         Ok(())
///     }
/// }
/// ```
pub trait Job: Send {
    /// Does the work. An `Err` (or a panic) fails the frame and skips the jobs that depend on this one.
    fn run(self, ctx: &JobContext<'_>) -> JobResult;
}

impl<F> Job for F
where
    F: FnOnce(&JobContext<'_>) -> JobResult + Send,
{
    fn run(self, ctx: &JobContext<'_>) -> JobResult {
        self(ctx)
    }
}

/// What a running job knows about itself and may do to its frame.
pub struct JobContext<'a> {
    pub(crate) frame: FrameIndex,
    pub(crate) key: JobKey,
    pub(crate) name: &'static str,
    pub(crate) exec: &'a ExecState,
    pub(crate) keys: &'a slotmap::SlotMap<JobKey, u32>,
}

impl JobContext<'_> {
    /// The frame this job belongs to.
    pub fn frame(&self) -> FrameIndex {
        self.frame
    }

    /// This job's key.
    pub fn key(&self) -> JobKey {
        self.key
    }

    /// This job's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Cancels another job of the same frame if it has not started yet; the jobs
    /// depending on it are then skipped. Returns whether it was cancelled
    /// (`false` when it is running, finished or already cancelled).
    pub fn cancel(&self, job: JobKey) -> Result<bool, GraphError> {
        match self.keys.get(job) {
            Some(&index) => Ok(self.exec.cancel(index as usize)),
            None => Err(GraphError::StaleJob {
                key: job,
                frame: self.frame,
            }),
        }
    }
}

/// Object-safe face of a stored job: call it at most once.
pub(crate) trait ErasedJob: Send {
    fn call(&mut self, ctx: &JobContext<'_>) -> JobResult;
}

struct JobCell<J>(Option<J>);

impl<J: Job> ErasedJob for JobCell<J> {
    fn call(&mut self, ctx: &JobContext<'_>) -> JobResult {
        match self.0.take() {
            Some(job) => job.run(ctx),
            None => Err(crate::error::JobError::msg(
                "internal error: a job was started twice",
            )),
        }
    }
}

/// A pointer to a job stored in the arena. The `'static` is a lie told to the
/// type system: the real lifetime is the frame's, and [`JobArena`] makes sure
/// the job is run or dropped before that ends.
pub(crate) type JobPtr = NonNull<dyn ErasedJob + 'static>;

/// One job's slot: the pointer until the job is taken to run or to be dropped.
pub(crate) struct JobSlot(UnsafeCell<Option<JobPtr>>);

// SAFETY: the stored job is `Send` (required by `Job`), and the slot is only
// touched by the one thread that owns the job at that moment: the declaring
// thread before `run`, the worker that won the job's state transition during
// `run` (see `ExecState::claim`), the declaring thread again afterwards.
unsafe impl Send for JobSlot {}
// SAFETY: as above; shared references cross threads during `run`, but each
// slot is accessed by exactly one thread, chosen by an atomic state transition.
unsafe impl Sync for JobSlot {}

impl JobSlot {
    #[inline]
    pub(crate) fn new(ptr: JobPtr) -> Self {
        JobSlot(UnsafeCell::new(Some(ptr)))
    }

    /// A slot without a job (for the model tests).
    #[cfg(all(test, loom))]
    pub(crate) fn empty() -> Self {
        JobSlot(UnsafeCell::new(None))
    }

    /// Takes the job out of its slot.
    ///
    /// # Safety
    /// The caller must be the slot's only user at this moment (see the `Sync` impl).
    pub(crate) unsafe fn take(&self) -> Option<JobPtr> {
        // SAFETY: exclusive access is the caller's promise.
        unsafe { (*self.0.get()).take() }
    }
}

/// Runs a job taken from a slot and drops it in place.
///
/// # Safety
/// `ptr` must come from [`JobArena::store`] of the current frame and must not
/// have been run or dropped yet.
pub(crate) unsafe fn run_and_drop(ptr: JobPtr, ctx: &JobContext<'_>) -> JobResult {
    let raw = ptr.as_ptr();
    // SAFETY: the pointer is live and exclusively ours (the caller's promise).
    // The drop happens even if the job panics, through the guard.
    struct DropGuard(*mut (dyn ErasedJob + 'static));
    impl Drop for DropGuard {
        fn drop(&mut self) {
            // SAFETY: see above; this is the only drop of this job.
            unsafe { std::ptr::drop_in_place(self.0) }
        }
    }
    let guard = DropGuard(raw);
    // SAFETY: live and exclusive, as above.
    let result = unsafe { (*guard.0).call(ctx) };
    drop(guard);
    result
}

/// Drops a job that will never run.
///
/// # Safety
/// As for [`run_and_drop`].
pub(crate) unsafe fn drop_unrun(ptr: JobPtr) {
    // SAFETY: live and exclusive (the caller's promise); dropped exactly once.
    unsafe { std::ptr::drop_in_place(ptr.as_ptr()) }
}

/// The bump arena that holds the jobs of the frame being declared.
#[derive(Default)]
pub(crate) struct JobArena {
    bump: Bump,
}

impl JobArena {
    /// Moves `job` into the arena and returns an erased pointer to it.
    ///
    /// The returned pointer claims `'static`; the caller (the scheduler) must
    /// run or drop it before the frame's lifetime `'f` ends, and must not reset
    /// the arena while it is live.
    #[inline]
    pub(crate) fn store<'f, J: Job + 'f>(&self, job: J) -> JobPtr {
        let cell: &mut (dyn ErasedJob + 'f) = self.bump.alloc(JobCell(Some(job)));
        let ptr: NonNull<dyn ErasedJob + 'f> = NonNull::from(cell);
        // SAFETY: only the lifetime bound of the trait object changes. The
        // scheduler runs or drops every stored job before the frame (which
        // borrows everything `'f` covers) ends; if the frame is leaked with
        // `mem::forget`, the jobs are leaked too, never touched again.
        unsafe { std::mem::transmute::<NonNull<dyn ErasedJob + 'f>, JobPtr>(ptr) }
    }

    /// Frees the arena's memory for reuse (keeping its largest chunk).
    ///
    /// Call only when no pointer from [`store`](Self::store) is live.
    pub(crate) fn reset(&mut self) {
        self.bump.reset();
    }

    /// Bytes the arena holds (for tests and stats).
    #[allow(dead_code)]
    pub(crate) fn allocated_bytes(&self) -> usize {
        self.bump.allocated_bytes()
    }
}
