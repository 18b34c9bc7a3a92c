//! [`Background`]: threads for work that outlives a frame.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::Thread;
use std::time::{Duration, Instant};

use crossbeam_queue::SegQueue;

use crate::error::GraphError;

/// How a [`Background`] is set up.
#[derive(Debug, Clone)]
pub struct BackgroundConfig {
    /// Threads (default: a quarter of the cores, at least two, so that
    /// one task that blocks, such as a read from a slow disk, leaves
    /// another thread for the rest).
    pub threads: usize,
    /// How much to lower the threads' priority (Linux `nice` increment,
    /// 0..=19; default 10). Ignored elsewhere.
    pub nice: i32,
    /// The longest an idle thread sleeps before it looks at the queue again
    /// (default 16 ms, at least 1 ms): the latest a task spawned on an idle
    /// pool starts, against the wake-ups an idle pool costs (about
    /// 1/`max_poll` per thread and second).
    pub max_poll: Duration,
    /// After this long with nothing to run (default 1 s), an idle thread
    /// stops looking and sleeps until a task is spawned: an application that
    /// streams nothing costs no wake-ups. The spawn that ends such a sleep
    /// wakes the threads (a system call, once per idle period).
    pub sleep_after: Duration,
}

impl Default for BackgroundConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        BackgroundConfig {
            threads: (cores / 4).max(2),
            nice: 10,
            max_poll: Duration::from_millis(16),
            sleep_after: Duration::from_secs(1),
        }
    }
}

/// Counters since creation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackgroundStats {
    /// Tasks spawned.
    pub spawned: u64,
    /// Tasks that finished (returned or panicked).
    pub finished: u64,
    /// Tasks that panicked.
    pub panicked: u64,
    /// Time the threads spent running tasks.
    pub busy: Duration,
    /// Times an idle thread woke to look at an empty queue.
    pub idle_wakeups: u64,
    /// Threads asleep until a task is spawned, now.
    pub sleeping: usize,
}

#[derive(Default)]
struct Counters {
    spawned: AtomicU64,
    finished: AtomicU64,
    panicked: AtomicU64,
    busy_ns: AtomicU64,
}

type Work = Box<dyn FnOnce() + Send>;

/// What the threads share with the spawner. (The counters are apart: every
/// queued task holds them, and a task holding the queue that holds it would
/// never be dropped.)
#[derive(Default)]
struct Shared {
    queue: SegQueue<Work>,
    shutdown: AtomicBool,
    /// Threads asleep until a spawn wakes them.
    sleeping: AtomicUsize,
    idle_wakeups: AtomicU64,
}

/// Threads for work that takes longer than a frame.
///
/// A frame's graph must finish inside `end_frame`, so each of its jobs must
/// be short. Some work cannot be cut into short pieces: reading and
/// validating a file, decoding a PNG, inflating a whole zstd level. Run in
/// a frame, such a job *is* the frame's time. A [`Background`] runs it
/// instead on threads of its own, across as many frames as it takes; the
/// caller polls the [`Task`] once a frame and picks the result up when it
/// is there.
///
/// The threads run at a lower OS priority (Linux: `nice` +10 per thread),
/// so that on a machine with few cores they take what the render thread
/// and the frame's workers leave, not a share of the frame. With the
/// `tracy` feature each task is a zone named after it.
///
/// `spawn` makes no system call: the task goes into a lock-free queue, and
/// idle threads look at the queue on their own, at intervals that grow from
/// 1 ms to [`BackgroundConfig::max_poll`] while it stays empty. A task starts
/// at most that late, which for a file load is nothing; the render thread
/// never wakes a thread. Waking one (rayon's pool, or a futex unpark) gives
/// the kernel a moment to preempt the waker: on a 2-core machine whose cores
/// a driver keeps busy, the render thread then waited 2-6 ms for its next
/// time slice in about one load in thirty, and `frame_cpu_ms_p99` of
/// `forgeflow-stress all` at 1080p was 3.65 ms with wakes, 2.26-2.30 without.
pub struct Background {
    shared: Arc<Shared>,
    counters: Arc<Counters>,
    threads: Vec<Thread>,
}

impl std::fmt::Debug for Background {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Background")
            .field("threads", &self.threads.len())
            .field("stats", &self.stats())
            .finish()
    }
}

/// A task that panicked (the panic was caught on its thread), or that never
/// ran because its [`Background`] was dropped first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFailed {
    /// The task's name, as spawned.
    pub name: &'static str,
    /// The panic's payload, or why it never ran.
    pub message: String,
}

impl std::fmt::Display for TaskFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "background task '{}' failed: {}",
            self.name, self.message
        )
    }
}

impl std::error::Error for TaskFailed {}

type Slot<T> = Arc<Mutex<Option<Result<T, TaskFailed>>>>;

/// The result of a spawned task, once it is there. Dropping it abandons the
/// result (the task still runs to its end).
#[derive(Debug)]
pub struct Task<T> {
    slot: Slot<T>,
    name: &'static str,
    taken: AtomicBool,
}

impl<T> Task<T> {
    /// The result, if the task has finished (or can no longer run: its
    /// [`Background`] was dropped before it started); `None` while it waits
    /// or runs, and after the result was taken.
    pub fn try_take(&self) -> Option<Result<T, TaskFailed>> {
        let mut slot = self.slot.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(result) = slot.take() {
            self.taken.store(true, Ordering::Relaxed);
            return Some(result);
        }
        // No one else holds the slot: the task was dropped unrun (a task
        // that ran stored its result before letting go of it).
        if Arc::strong_count(&self.slot) == 1 && !self.taken.swap(true, Ordering::Relaxed) {
            return Some(Err(TaskFailed {
                name: self.name,
                message: "it never ran: its Background was dropped first".into(),
            }));
        }
        None
    }

    /// Waits for the result (tests, shutdown). Called again after the
    /// result was taken, it waits forever.
    pub fn wait(&self) -> Result<T, TaskFailed> {
        loop {
            if let Some(r) = self.try_take() {
                return r;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

impl Background {
    /// Starts the threads.
    pub fn new(config: BackgroundConfig) -> Result<Self, GraphError> {
        if config.threads == 0 {
            return Err(GraphError::InvalidConfig {
                setting: "background threads",
                reason: "0 threads cannot run anything".into(),
            });
        }
        if config.max_poll < Duration::from_millis(1) {
            return Err(GraphError::InvalidConfig {
                setting: "background max_poll",
                reason: format!("{:?} is under 1 ms", config.max_poll),
            });
        }
        if !(0..=19).contains(&config.nice) {
            return Err(GraphError::InvalidConfig {
                setting: "background nice",
                reason: format!("{} is outside 0..=19", config.nice),
            });
        }
        let shared = Arc::new(Shared::default());
        let mut threads = Vec::with_capacity(config.threads);
        for i in 0..config.threads {
            let shared = Arc::clone(&shared);
            let (nice, max_poll, sleep_after) = (config.nice, config.max_poll, config.sleep_after);
            let handle = std::thread::Builder::new()
                .name(format!("forgeflow-background-{i}"))
                .spawn(move || {
                    lower_priority(nice);
                    work_loop(&shared, max_poll, sleep_after);
                })
                .map_err(|e| GraphError::ThreadPool(e.to_string()))?;
            threads.push(handle.thread().clone());
        }
        #[cfg(feature = "tracy")]
        crate::profiling::start();
        Ok(Background {
            shared,
            counters: Arc::default(),
            threads,
        })
    }

    /// Threads.
    pub fn threads(&self) -> usize {
        self.threads.len()
    }

    /// Runs `work` on a background thread; its result (or its panic) comes
    /// back through the returned [`Task`].
    ///
    /// ```
    /// use forgeflow_graph::{Background, BackgroundConfig};
    ///
    /// let background = Background::new(BackgroundConfig::default()).unwrap();
    /// let task = background.spawn("checksum", || (1..=100u64).sum::<u64>());
    /// // Frames go on; each one asks once, without blocking:
    /// let mut result = task.try_take();
    /// while result.is_none() {
    ///     // ... a frame ...
    ///     # std::thread::sleep(std::time::Duration::from_millis(1));
    ///     result = task.try_take();
    /// }
    /// assert_eq!(result, Some(Ok(5050)));
    /// ```
    pub fn spawn<T, F>(&self, name: &'static str, work: F) -> Task<T>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let slot: Slot<T> = Arc::new(Mutex::new(None));
        let out = Arc::clone(&slot);
        let counters = Arc::clone(&self.counters);
        self.counters.spawned.fetch_add(1, Ordering::Relaxed);
        self.shared.queue.push(Box::new(move || {
            let start = Instant::now();
            let result = {
                #[cfg(feature = "tracy")]
                let _zone = crate::profiling::named_zone(name);
                panic::catch_unwind(AssertUnwindSafe(work))
            };
            let result = result.map_err(|payload| {
                counters.panicked.fetch_add(1, Ordering::Relaxed);
                TaskFailed {
                    name,
                    message: crate::exec::panic_message(payload.as_ref()),
                }
            });
            let busy = start.elapsed().as_nanos() as u64;
            counters.busy_ns.fetch_add(busy, Ordering::Relaxed);
            *out.lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
            counters.finished.fetch_add(1, Ordering::Relaxed);
        }));
        // Threads asleep after a long idle period look at the queue no more:
        // wake them (the task was pushed first, so a woken thread finds it).
        if self.shared.sleeping.load(Ordering::SeqCst) > 0 {
            for t in &self.threads {
                t.unpark();
            }
        }
        Task {
            slot,
            name,
            taken: AtomicBool::new(false),
        }
    }

    /// Tasks spawned and not finished.
    pub fn in_flight(&self) -> u64 {
        let c = &self.counters;
        c.spawned.load(Ordering::Relaxed) - c.finished.load(Ordering::Relaxed)
    }

    /// Counters since creation.
    pub fn stats(&self) -> BackgroundStats {
        let c = &self.counters;
        BackgroundStats {
            spawned: c.spawned.load(Ordering::Relaxed),
            finished: c.finished.load(Ordering::Relaxed),
            panicked: c.panicked.load(Ordering::Relaxed),
            busy: Duration::from_nanos(c.busy_ns.load(Ordering::Relaxed)),
            idle_wakeups: self.shared.idle_wakeups.load(Ordering::Relaxed),
            sleeping: self.shared.sleeping.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Background {
    /// The threads end once their current task has (they are not joined: a
    /// task blocked on a slow read must not block the drop).
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::Release);
        for t in &self.threads {
            t.unpark();
        }
    }
}

/// A thread's life: run tasks while there are some; while there are none,
/// sleep, 1 ms at first and twice as long each time up to `max_poll`, and
/// after `sleep_after` of nothing, until a spawn wakes it; end at shutdown
/// (tasks still queued then are dropped unrun).
fn work_loop(shared: &Shared, max_poll: Duration, sleep_after: Duration) {
    let mut sleep = Duration::from_millis(1);
    let mut idle_since: Option<Instant> = None;
    loop {
        if shared.shutdown.load(Ordering::Acquire) {
            return;
        }
        match shared.queue.pop() {
            Some(work) => {
                work();
                sleep = Duration::from_millis(1);
                idle_since = None;
            }
            None if idle_since.is_some_and(|t| t.elapsed() >= sleep_after) => {
                // Counted asleep before the queue is looked at once more: a
                // spawn either sees the count (and unparks) or pushed before
                // this look (and the task is found).
                shared.sleeping.fetch_add(1, Ordering::SeqCst);
                if shared.queue.is_empty() && !shared.shutdown.load(Ordering::SeqCst) {
                    std::thread::park();
                }
                shared.sleeping.fetch_sub(1, Ordering::SeqCst);
                idle_since = None;
                sleep = Duration::from_millis(1);
            }
            None => {
                idle_since.get_or_insert_with(Instant::now);
                // Parked, not slept: `Drop` unparks for a prompt shutdown.
                std::thread::park_timeout(sleep);
                shared.idle_wakeups.fetch_add(1, Ordering::Relaxed);
                sleep = (sleep * 2).min(max_poll);
            }
        }
    }
}

/// Lowers the calling thread's priority by `nice` (Linux; a no-op elsewhere
/// or when the OS refuses).
fn lower_priority(nice: i32) {
    #[cfg(target_os = "linux")]
    {
        if nice == 0 {
            return;
        }
        // SAFETY: plain system calls on the calling thread, no memory
        // passed. On Linux a thread is a task with its own nice value, and
        // PRIO_PROCESS with a thread id sets that thread's alone.
        unsafe {
            let tid = libc::gettid();
            let now = libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t);
            libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, now + nice);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bg() -> Background {
        Background::new(BackgroundConfig {
            threads: 2,
            ..BackgroundConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn a_task_result_comes_back_once() {
        let bg = bg();
        let task = bg.spawn("sum", || (1..=100u64).sum::<u64>());
        assert_eq!(task.wait(), Ok(5050));
        assert_eq!(task.try_take(), None, "a result is taken once");
        let s = bg.stats();
        assert_eq!((s.spawned, s.finished, s.panicked), (1, 1, 0));
        assert_eq!(bg.in_flight(), 0);
    }

    #[test]
    fn a_panicking_task_is_a_failure_not_a_crash() {
        let bg = bg();
        let task = bg.spawn("boom", || -> u32 { panic!("corrupt level") });
        let err = task.wait().unwrap_err();
        assert_eq!(err.name, "boom");
        assert!(err.message.contains("corrupt level"), "{err}");
        assert!(err.to_string().contains("background task 'boom' failed"));
        // The thread survives and runs the next task.
        assert_eq!(bg.spawn("after", || 7).wait(), Ok(7));
        assert_eq!(bg.stats().panicked, 1);
    }

    #[test]
    fn a_task_dropped_unrun_fails_instead_of_waiting_forever() {
        let bg = Background::new(BackgroundConfig {
            threads: 1,
            ..BackgroundConfig::default()
        })
        .unwrap();
        let (started_tx, started) = std::sync::mpsc::channel::<()>();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let first = bg.spawn("blocker", move || {
            started_tx.send(()).unwrap();
            rx.recv().is_ok()
        });
        // The one thread is busy: the next task can only wait in the queue.
        started.recv().unwrap();
        let second = bg.spawn("queued", || 1);
        drop(bg);
        tx.send(()).unwrap();
        assert_eq!(first.wait(), Ok(true), "the running task finishes");
        let err = second.wait().unwrap_err();
        assert_eq!(err.name, "queued");
        assert!(err.message.contains("never ran"), "{err}");
        assert_eq!(second.try_take(), None, "reported once");
    }

    #[test]
    fn tasks_run_while_the_caller_goes_on() {
        let bg = bg();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        // The task waits for the caller: it can only finish if spawn returned
        // at once and the caller went on.
        let task = bg.spawn("wait for caller", move || rx.recv().is_ok());
        assert_eq!(task.try_take(), None);
        assert_eq!(bg.in_flight(), 1);
        tx.send(()).unwrap();
        assert_eq!(task.wait(), Ok(true));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_threads_run_at_a_lower_priority() {
        let bg = bg();
        // SAFETY: reads the calling thread's nice value.
        let nice =
            || unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) };
        let here = nice();
        let there = bg.spawn("nice", nice).wait().unwrap();
        assert_eq!(there, (here + 10).min(19));
    }

    #[test]
    fn idle_threads_sleep_until_a_spawn_wakes_them() {
        let bg = Background::new(BackgroundConfig {
            threads: 2,
            sleep_after: Duration::from_millis(20),
            ..BackgroundConfig::default()
        })
        .unwrap();
        bg.spawn("warm", || ()).wait().unwrap();
        // Both threads stop looking at the queue once idle long enough
        // (waited for as a state, up to 10 s, not timed).
        let deadline = Instant::now() + Duration::from_secs(10);
        while bg.stats().sleeping < 2 {
            assert!(Instant::now() < deadline, "{:?}", bg.stats());
            std::thread::sleep(Duration::from_millis(5));
        }
        let wakeups = bg.stats().idle_wakeups;
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(bg.stats().idle_wakeups, wakeups, "asleep: no wake-ups");
        // A spawn wakes them: the task runs.
        assert_eq!(bg.spawn("after", || 7).wait().unwrap(), 7);
    }

    #[test]
    fn zero_threads_a_bad_nice_or_no_poll_interval_is_a_config_error() {
        for (threads, nice, ms) in [(0, 10, 16), (1, 20, 16), (1, -1, 16), (1, 10, 0)] {
            let e = Background::new(BackgroundConfig {
                threads,
                nice,
                max_poll: Duration::from_millis(ms),
                ..BackgroundConfig::default()
            })
            .unwrap_err();
            assert!(matches!(e, GraphError::InvalidConfig { .. }), "{e}");
        }
    }
}
