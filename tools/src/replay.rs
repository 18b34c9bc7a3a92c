//! Replays of a churn trace through forgeflow's allocator core and through
//! offset-allocator, on the same events, frees released `fence_lag` frames
//! late as after a fence, no defragmentation: the one loop behind
//! `forgeflow-stress pool`'s whole-trace speed and `benches/pool.rs`.

use std::collections::VecDeque;

use crate::synthetic::{ChurnEvent, ChurnTrace};
use forgeflow::jobs::alloc::{AllocKey, DefragBudget, PoolAllocator};

/// The churn scenario's pool: one block of this many bytes (`forgeflow-stress
/// pool`, `benches/pool.rs` and the Python package's `simulate_churn`).
pub const POOL_BYTES: u64 = 2 << 30;
/// Frames a free waits for its fence.
pub const FENCE_LAG: u64 = 2;
/// Frames before fragmentation is sampled: the first simulated minute.
pub const WARMUP_FRAMES: u64 = 3600;
/// A frame's defragmentation budget.
pub const DEFRAG_BUDGET: DefragBudget = DefragBudget {
    max_bytes: 32 << 20,
    max_moves: 64,
};

/// Whether frame `frame` takes a fragmentation sample: once a simulated
/// second after the first minute, while at least a tenth of the pool is free
/// (the fragmentation of a nearly full pool says nothing).
pub fn samples_fragmentation(frame: u64, pool: &PoolAllocator) -> bool {
    frame >= WARMUP_FRAMES && frame.is_multiple_of(60) && pool.free_bytes() >= POOL_BYTES / 10
}

/// The first `frames` frames of the trace of `seed`, and how many allocation
/// ids they use (ids are dense: they index a slot table of that length).
pub fn dense_trace(frames: u64, seed: u64) -> (Vec<ChurnEvent>, usize) {
    let events: Vec<ChurnEvent> = ChurnTrace::new(frames, seed).collect();
    let ids = events
        .iter()
        .filter(|e| matches!(e, ChurnEvent::Alloc { .. }))
        .count();
    (events, ids)
}

/// Replays `events` through a [`PoolAllocator`] of one `pool_bytes` block;
/// `slots` (one per id) holds the live keys.
pub fn replay_forgeflow(
    events: &[ChurnEvent],
    slots: &mut [Option<AllocKey>],
    pool_bytes: u64,
    fence_lag: u64,
) -> PoolAllocator {
    let mut pool = PoolAllocator::new();
    pool.add_block(pool_bytes);
    let mut frame = 0u64;
    for e in events {
        match *e {
            ChurnEvent::Alloc { id, size, align } => {
                slots[id as usize] = pool.alloc(size, align).ok()
            }
            ChurnEvent::Free { id } => {
                if let Some(k) = slots[id as usize].take() {
                    let _ = pool.free(k, frame);
                }
            }
            ChurnEvent::EndFrame => {
                pool.retire(frame.saturating_sub(fence_lag));
                frame += 1;
            }
        }
    }
    pool
}

/// Replays `events` through offset-allocator over `pool_bytes`, alignment by
/// padding (it has none of its own), frees queued until their fence passes.
pub fn replay_offset_allocator(
    events: &[ChurnEvent],
    slots: &mut [Option<offset_allocator::Allocation>],
    pool_bytes: u64,
    fence_lag: u64,
) -> offset_allocator::Allocator<u32> {
    let mut oa = offset_allocator::Allocator::<u32>::with_max_allocs(pool_bytes as u32, 1 << 20);
    let mut pending = VecDeque::new();
    let mut frame = 0u64;
    for e in events {
        match *e {
            ChurnEvent::Alloc { id, size, align } => {
                slots[id as usize] = oa.allocate((size + align - 1) as u32)
            }
            ChurnEvent::Free { id } => {
                if let Some(a) = slots[id as usize].take() {
                    pending.push_back((frame, a));
                }
            }
            ChurnEvent::EndFrame => {
                while pending.front().is_some_and(|(f, _)| f + fence_lag <= frame) {
                    oa.free(pending.pop_front().expect("checked").1);
                }
                frame += 1;
            }
        }
    }
    oa
}
