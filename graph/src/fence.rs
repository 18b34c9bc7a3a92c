//! Frame fences: "the GPU has finished frame n".
//!
//! A [`FenceSet`] holds one slot per frame in flight. Frame `n` uses slot
//! `n % frames_in_flight`; the slot records the highest frame number signalled
//! through it (plus one, so that 0 means "never"). Frame `n` is signalled when
//! its slot holds at least `n + 1`. A slot is reused by frame `n + k` only
//! after `begin_frame` has seen frame `n` signalled, so a slot never has to be
//! reset, and a late or repeated signal can only raise the value.
//!
//! Signalling is a store plus a notify under a mutex (so a waiter cannot miss
//! it); checking is one atomic load. Neither allocates.

use std::time::{Duration, Instant};

use crate::sync::{Arc, AtomicU64, Condvar, Mutex, Ordering};

use crate::key::FrameIndex;

/// The fences of every frame in flight of one scheduler.
#[derive(Debug)]
pub(crate) struct FenceSet {
    slots: Box<[AtomicU64]>,
    lock: Mutex<()>,
    signalled: Condvar,
}

impl FenceSet {
    pub(crate) fn new(frames_in_flight: usize) -> Arc<Self> {
        Arc::new(FenceSet {
            slots: (0..frames_in_flight).map(|_| AtomicU64::new(0)).collect(),
            lock: Mutex::new(()),
            signalled: Condvar::new(),
        })
    }

    fn slot(&self, frame: u64) -> &AtomicU64 {
        &self.slots[(frame % self.slots.len() as u64) as usize]
    }

    pub(crate) fn is_signalled(&self, frame: u64) -> bool {
        self.slot(frame).load(Ordering::Acquire) > frame
    }

    pub(crate) fn signal(&self, frame: u64) {
        self.slot(frame).fetch_max(frame + 1, Ordering::AcqRel);
        // Taking the lock orders this notify after any waiter's check, so the
        // wake-up cannot fall between a waiter's check and its wait. A poisoned
        // lock only means another thread panicked while holding `()`.
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.signalled.notify_all();
    }

    /// Waits until `frame` is signalled or `timeout` has passed; true if signalled.
    pub(crate) fn wait(&self, frame: u64, timeout: Duration) -> bool {
        if self.is_signalled(frame) {
            return true;
        }
        let deadline = Instant::now() + timeout;
        let mut guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if self.is_signalled(frame) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            guard = match self.signalled.wait_timeout(guard, deadline - now) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
    }
}

/// The fence of one frame: signalled once the GPU (or whoever consumes the
/// frame's output) has finished with everything that frame used.
///
/// Clone it and hand it to whatever learns of completion, typically
/// `queue.on_submitted_work_done(move || fence.signal())` in the wgpu layer.
/// Cloning and signalling never allocate; signalling twice is harmless.
#[derive(Clone, Debug)]
pub struct FrameFence {
    set: Arc<FenceSet>,
    frame: FrameIndex,
}

impl FrameFence {
    pub(crate) fn new(set: Arc<FenceSet>, frame: FrameIndex) -> Self {
        FrameFence { set, frame }
    }

    /// The frame this fence belongs to.
    pub fn frame(&self) -> FrameIndex {
        self.frame
    }

    /// Marks the frame as finished. Its retire work runs at the next
    /// [`Scheduler::begin_frame`](crate::Scheduler::begin_frame) or
    /// [`Scheduler::retire`](crate::Scheduler::retire), once every earlier frame is finished too.
    pub fn signal(&self) {
        self.set.signal(self.frame.0);
    }

    /// Whether [`signal`](Self::signal) has been called.
    pub fn is_signalled(&self) -> bool {
        self.set.is_signalled(self.frame.0)
    }

    /// Blocks until signalled or until `timeout` has passed; returns whether it was signalled.
    pub fn wait(&self, timeout: Duration) -> bool {
        self.set.wait(self.frame.0, timeout)
    }
}

#[cfg(all(test, loom))]
mod loom_model {
    use super::*;

    /// A signal from another thread is never lost: in every interleaving the
    /// waiter returns signalled (loom's timed wait never times out, so a lost
    /// wake-up would show as a deadlock).
    #[test]
    fn a_signal_is_never_lost() {
        loom::model(|| {
            let set = FenceSet::new(2);
            let signaller = Arc::clone(&set);
            let t = loom::thread::spawn(move || signaller.signal(1));
            assert!(set.wait(1, Duration::from_secs(3600)));
            assert!(
                !set.is_signalled(3),
                "frame 3 shares the slot but is not signalled"
            );
            t.join().unwrap();
        });
    }

    /// A slot reused by frame 2 while frame 0's late (repeated) signal
    /// arrives on another thread: in every interleaving frame 2 ends
    /// signalled, frame 0 stays signalled, and frame 4 (the slot's next
    /// user) is not: a late signal can only raise the slot.
    #[test]
    fn a_late_signal_never_undoes_a_reused_slot() {
        loom::model(|| {
            let set = FenceSet::new(2);
            set.signal(0);
            let (late, next) = (Arc::clone(&set), Arc::clone(&set));
            let a = loom::thread::spawn(move || late.signal(0));
            let b = loom::thread::spawn(move || next.signal(2));
            assert!(set.wait(2, Duration::from_secs(3600)));
            a.join().unwrap();
            b.join().unwrap();
            assert!(set.is_signalled(0) && set.is_signalled(2));
            assert!(!set.is_signalled(4));
        });
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn slots_are_reused_without_reset() {
        let set = FenceSet::new(2);
        assert!(!set.is_signalled(0));
        set.signal(0);
        assert!(set.is_signalled(0));
        // Frame 2 shares frame 0's slot and is not signalled by frame 0's signal.
        assert!(!set.is_signalled(2));
        set.signal(2);
        assert!(set.is_signalled(2));
        // A late repeat of frame 0's signal does not lower the slot.
        set.signal(0);
        assert!(set.is_signalled(2));
        assert!(!set.is_signalled(1));
    }

    #[test]
    fn wait_times_out_and_wakes() {
        let set = FenceSet::new(3);
        let t = Instant::now();
        assert!(!set.wait(1, Duration::from_millis(20)));
        assert!(t.elapsed() >= Duration::from_millis(20));
        let s2 = Arc::clone(&set);
        let h = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(10));
            s2.signal(1);
        });
        assert!(set.wait(1, Duration::from_secs(10)));
        h.join().unwrap();
    }
}
