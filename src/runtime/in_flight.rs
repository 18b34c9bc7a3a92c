//! [`InFlight`]: what each recorded frame did that must be done again if its
//! encoder never reaches the GPU.
//!
//! `end_frame` ties a frame's completion to the embedder's encoder, and wgpu
//! drops an encoder's callbacks uncalled when the encoder (or its command
//! buffer) is dropped unsubmitted (see `crate::submit`). The frame's fence
//! callback notices that drop: it signals the fence at once (no work of the
//! frame will ever run, so nothing waits for it) and names the frame here.
//! The next `begin_frame` then takes the frame back, before anything
//! retires:
//!
//! - its buffer writes are queued again, ahead of the writes queued since;
//! - its defragmentation moves are copied again, first in the next frame's
//!   encoder (their sources still hold the data: nothing of the frame ran;
//!   what was written or moved since lands after them);
//! - its textures' uploads start again from their files;
//! - the tiles its page faults loaded leave the virtual textures' caches and
//!   page tables, which go up whole with the next frame;
//! - its readbacks are answered `StagingError::Abandoned` and its staging
//!   buffers are mapped again without waiting for the GPU.
//!
//! An encoder should be dropped before the next `begin_frame`. One dropped
//! later is still found and taken back, but the frames recorded meanwhile may
//! have sampled or moved what never arrived until then.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use forgeflow_jobs::alloc::Allocation;

use super::write_queue::WriteQueue;

/// One recorded frame, kept until its fence passes.
struct Record {
    index: u64,
    writes: WriteQueue,
    moves: Vec<(Allocation, Allocation)>,
}

/// What an abandoned frame leaves to do again.
pub(super) struct Abandoned {
    /// Its index.
    pub(super) index: u64,
    /// Its buffer writes.
    pub(super) writes: WriteQueue,
}

/// The frames recorded and not yet retired, and those found abandoned.
#[derive(Default)]
pub(super) struct InFlight {
    records: VecDeque<Record>,
    /// Emptied write queues, reused (no allocation once warm).
    spare: Vec<WriteQueue>,
    /// Frames whose encoder was dropped unsubmitted, named by their fence
    /// callback's guard.
    dropped: Arc<Mutex<Vec<u64>>>,
    /// Moves of abandoned frames, copied first in the next encoder.
    replay: Vec<(Allocation, Allocation)>,
}

impl InFlight {
    /// Where a frame's fence guard names its frame when the encoder is
    /// dropped unsubmitted.
    pub(super) fn dropped(&self) -> Arc<Mutex<Vec<u64>>> {
        Arc::clone(&self.dropped)
    }

    /// An empty write queue for the next frame.
    pub(super) fn spare_queue(&mut self) -> WriteQueue {
        self.spare.pop().unwrap_or_default()
    }

    /// Frame `index` was recorded with these writes and defragmentation moves.
    pub(super) fn record(
        &mut self,
        index: u64,
        writes: WriteQueue,
        moves: impl Iterator<Item = (Allocation, Allocation)>,
    ) {
        self.records.push_back(Record {
            index,
            writes,
            moves: moves.collect(),
        });
    }

    /// Frames up to `completed` reached the GPU: their records go (their
    /// write queues are kept, empty, for reuse).
    pub(super) fn retire(&mut self, completed: u64) {
        while self.records.front().is_some_and(|r| r.index <= completed) {
            let mut r = self.records.pop_front().expect("checked");
            r.writes.clear();
            self.spare.push(r.writes);
        }
    }

    /// The frames found abandoned since the last call, oldest first; their
    /// moves join the replay list.
    pub(super) fn take_abandoned(&mut self) -> Vec<Abandoned> {
        let mut indices =
            std::mem::take(&mut *self.dropped.lock().unwrap_or_else(|p| p.into_inner()));
        if indices.is_empty() {
            return Vec::new();
        }
        indices.sort_unstable();
        let mut out = Vec::with_capacity(indices.len());
        for index in indices {
            let Some(at) = self.records.iter().position(|r| r.index == index) else {
                continue; // retired already: it was never recorded in full
            };
            let r = self.records.remove(at).expect("found");
            self.replay.extend(r.moves);
            out.push(Abandoned {
                index,
                writes: r.writes,
            });
        }
        out
    }

    /// The moves to copy again, first in this frame's encoder.
    pub(super) fn take_replay(&mut self) -> Vec<(Allocation, Allocation)> {
        std::mem::take(&mut self.replay)
    }

    /// Gives back a write queue emptied after use.
    pub(super) fn give_back(&mut self, mut writes: WriteQueue) {
        writes.clear();
        self.spare.push(writes);
    }
}
