//! [`MapState`]: whose turn it is on a buffer that the CPU and the GPU take
//! turns on (a staging or readback ring's buffer).
//!
//! Two threads change it. The render thread takes the buffer for a frame and
//! gives it back; whichever thread polls the device runs the mapping callback
//! that says the GPU is done with it (mapped again, or the mapping failed), and
//! the callback dropped with an encoder that was never submitted says the GPU
//! never used it. One atomic holds the state, and each change is a
//! compare-and-swap from the state it expects, so:
//!
//! - a change the state does not expect is refused, never applied on top of
//!   another (a late or stray callback cannot undo a later turn);
//! - the change that hands the buffer over is a release, and seeing it is an
//!   acquire: what the callback's thread wrote before saying "mapped" (the
//!   bytes read back) is visible to the render thread that sees `Mapped`, and
//!   the render thread's writes before handing the buffer on happen before
//!   the next turn.
//!
//! The loom models at the bottom of this file check both in every
//! interleaving (`RUSTFLAGS="--cfg loom" cargo test -p forgeflow-graph --lib
//! --release loom`).
//!
//! ```text
//!            take                      callback: ok
//!   Free ──────────────► InUse ─────────────────────► Mapped
//!    ▲                    │  │  callback: error         │
//!    │                    │  └──────────────► Failed    │ take (staging:
//!    │ collect            │ encoder dropped             │ mapped = writable)
//!    │ (readback)         ▼                             ▼
//!    └──────────────  Abandoned ───── take ──────►  InUse
//! ```

use crate::sync::{Arc, AtomicU8, Ordering};

/// The states of a [`MapState`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Mapping {
    /// Unused and unmapped: the CPU may record work on it.
    Free = 0,
    /// The CPU has it for a frame, or the GPU is using it: nobody else may
    /// touch it until its callback (or the dropped encoder) says otherwise.
    InUse = 1,
    /// The GPU is done with it and it is mapped for the CPU.
    Mapped = 2,
    /// Mapping it failed (the device is lost, most likely).
    Failed = 3,
    /// The encoder that was to use it was dropped unsubmitted: the GPU never
    /// touched it, and its mapping was never requested.
    Abandoned = 4,
}

impl Mapping {
    fn from_u8(v: u8) -> Mapping {
        match v {
            0 => Mapping::Free,
            1 => Mapping::InUse,
            2 => Mapping::Mapped,
            3 => Mapping::Failed,
            _ => Mapping::Abandoned,
        }
    }
}

/// Whose turn it is on one buffer, shared between the render thread and the
/// mapping callbacks; cheap to clone (an `Arc`), `Send` and `Sync`.
#[derive(Debug, Clone)]
pub struct MapState(Arc<AtomicU8>);

impl MapState {
    /// A state starting at `initial` (`Mapped` for a buffer mapped at creation).
    pub fn new(initial: Mapping) -> Self {
        MapState(Arc::new(AtomicU8::new(initial as u8)))
    }

    /// The state now; an acquire, so that what was written before it was set
    /// is visible.
    pub fn get(&self) -> Mapping {
        Mapping::from_u8(self.0.load(Ordering::Acquire))
    }

    /// Moves from `from` to `to` if the state is `from`; returns whether it
    /// did. A release on success, an acquire either way.
    pub fn change(&self, from: Mapping, to: Mapping) -> bool {
        self.0
            .compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// The render thread takes the buffer if it is in `from` (`Free` for a
    /// readback buffer, `Mapped` or `Abandoned` for a staging buffer).
    pub fn take(&self, from: Mapping) -> bool {
        self.change(from, Mapping::InUse)
    }

    /// The mapping callback: `InUse` becomes `Mapped` or `Failed`. Refused
    /// (false) in any other state.
    pub fn mapped(&self, ok: bool) -> bool {
        let to = if ok { Mapping::Mapped } else { Mapping::Failed };
        self.change(Mapping::InUse, to)
    }

    /// The callback was dropped with its encoder, unsubmitted: `InUse`
    /// becomes `Abandoned`. Refused (false) in any other state.
    pub fn abandoned(&self) -> bool {
        self.change(Mapping::InUse, Mapping::Abandoned)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn each_change_happens_only_from_the_state_it_expects() {
        let s = MapState::new(Mapping::Free);
        assert!(
            !s.mapped(true),
            "nothing in use: a stray callback is refused"
        );
        assert!(!s.abandoned());
        assert!(s.take(Mapping::Free));
        assert!(!s.take(Mapping::Free), "taken once");
        assert!(s.mapped(true));
        assert!(
            !s.abandoned(),
            "a drop after the callback ran changes nothing"
        );
        assert_eq!(s.get(), Mapping::Mapped);
        assert!(s.take(Mapping::Mapped));
        assert!(s.abandoned());
        assert!(!s.mapped(false), "a late callback cannot undo the drop");
        assert_eq!(s.get(), Mapping::Abandoned);
        assert!(s.take(Mapping::Abandoned));
        assert!(s.mapped(false));
        assert_eq!(s.get(), Mapping::Failed);
        for v in 0..=4u8 {
            assert_eq!(Mapping::from_u8(v) as u8, v);
        }
    }
}

#[cfg(all(test, loom))]
mod loom_model {
    use super::*;
    use loom::cell::UnsafeCell;

    /// A readback buffer: the GPU side (another thread) writes the bytes and
    /// says "mapped"; the render thread, polling, delivers them once and
    /// frees the buffer. In every interleaving the render thread reads what
    /// was written (loom's cell reports a read not ordered after the write),
    /// and the buffer is delivered exactly once.
    #[test]
    fn readback_bytes_are_seen_once_mapped() {
        loom::model(|| {
            let state = MapState::new(Mapping::Free);
            let bytes = Arc::new(UnsafeCell::new(0u32));
            assert!(state.take(Mapping::Free));
            let (gpu_state, gpu_bytes) = (state.clone(), Arc::clone(&bytes));
            let gpu = loom::thread::spawn(move || {
                // SAFETY (model): the buffer is `InUse`, so only this thread touches it.
                gpu_bytes.with_mut(|b| unsafe { *b = 42 });
                assert!(gpu_state.mapped(true));
            });
            let mut delivered = 0;
            loop {
                if state.get() == Mapping::Mapped {
                    // SAFETY (model): seen `Mapped`, the writer is done.
                    let value = bytes.with(|b| unsafe { *b });
                    assert_eq!(value, 42);
                    delivered += 1;
                    assert!(state.change(Mapping::Mapped, Mapping::Free));
                    break;
                }
                loom::thread::yield_now();
            }
            gpu.join().unwrap();
            assert_eq!(delivered, 1);
            assert_eq!(state.get(), Mapping::Free);
        });
    }

    /// A staging buffer: the render thread writes it and hands it to the GPU
    /// (another thread), which reads it and maps it again; the render thread
    /// takes it again only once mapped and writes the next frame's bytes. In
    /// every interleaving the GPU reads the first frame's bytes and the
    /// render thread's second write never overlaps the GPU's read.
    #[test]
    fn a_staging_buffer_is_written_only_between_turns() {
        loom::model(|| {
            let state = MapState::new(Mapping::Mapped);
            let bytes = Arc::new(UnsafeCell::new(0u32));
            assert!(state.take(Mapping::Mapped));
            // SAFETY (model): taken, the render thread alone has it.
            bytes.with_mut(|b| unsafe { *b = 1 });
            let (gpu_state, gpu_bytes) = (state.clone(), Arc::clone(&bytes));
            // Spawning is the submission: it orders the write before the copy.
            let gpu = loom::thread::spawn(move || {
                // SAFETY (model): the GPU's turn.
                let copied = gpu_bytes.with(|b| unsafe { *b });
                assert!(gpu_state.mapped(true));
                copied
            });
            while !state.take(Mapping::Mapped) {
                loom::thread::yield_now();
            }
            // SAFETY (model): taken again after the callback: the GPU is done.
            bytes.with_mut(|b| unsafe { *b = 2 });
            assert_eq!(gpu.join().unwrap(), 1);
        });
    }

    /// A frame's encoder dropped unsubmitted while the render thread polls:
    /// the drop's thread marks the buffer `Abandoned`; the render thread
    /// takes it and maps it again itself, and a callback that arrives late
    /// for the old turn is refused. In every interleaving the buffer ends
    /// `Mapped` by the new mapping and never `Failed`.
    #[test]
    fn an_abandoned_buffer_is_mapped_again_and_a_late_callback_is_refused() {
        loom::model(|| {
            let state = MapState::new(Mapping::Mapped);
            assert!(state.take(Mapping::Mapped));
            let dropper = state.clone();
            let drop_thread = loom::thread::spawn(move || assert!(dropper.abandoned()));
            while !state.take(Mapping::Abandoned) {
                loom::thread::yield_now();
            }
            drop_thread.join().unwrap();
            let (mapper, late) = (state.clone(), state.clone());
            let map_thread = loom::thread::spawn(move || mapper.mapped(true));
            // A stray failure report for the abandoned turn, racing the new mapping.
            let late_thread = loom::thread::spawn(move || late.abandoned());
            let new_mapping_applied = map_thread.join().unwrap();
            let late_applied = late_thread.join().unwrap();
            assert!(
                new_mapping_applied != late_applied,
                "exactly one change from InUse wins"
            );
            let end = state.get();
            if new_mapping_applied {
                assert_eq!(end, Mapping::Mapped);
            } else {
                assert_eq!(end, Mapping::Abandoned, "the stray drop won: taken again");
            }
            assert_ne!(end, Mapping::Failed);
        });
    }
}
