//! The allocator core of GPU memory pools, with no wgpu: which range of which
//! block each allocation occupies, when a freed range may be reused, and which
//! allocations to move to keep memory dense.
//!
//! - [`PoolAllocator`]: sub-allocation of blocks with a two-level segregated
//!   fit (O(1) allocation and free, any power-of-two alignment, no stranded
//!   holes), generational handles ([`AllocKey`]), frees deferred until the
//!   fence of the last frame that used the range, pinning, statistics.
//! - Defragmentation planning ([`PoolAllocator::plan_defrag`]): within a budget
//!   of bytes and moves, empty the sparsest block into the others, or compact
//!   around the gap (the largest free range). Destinations are reserved at once
//!   and never overlap their sources; the GPU layer copies, then
//!   [`PoolAllocator::commit_defrag`] repoints the handles and frees the old
//!   ranges after the frame's fence.
//!
//! Compaction around the gap: external fragmentation is the free space
//! outside the gap (the largest free range). Each plan walks outward from
//! both ends of the gap, past free and pending ranges, and moves the
//! allocations it meets into holes beyond the walked ranges: each such hole
//! closes at once, and the walked ranges join the gap once the moves' fence
//! passes. Meanwhile the free ranges the walk passed are held out of the
//! bins, so that no new allocation lands between the gap and what is about to
//! join it (they stay free: they count in the free bytes and in external
//! fragmentation, and an allocation that fits nowhere else takes them). When
//! that finds nothing to move (no hole outside holds the allocation bordering
//! the gap) and more than 1/32 of the free bytes lie outside the gap, the gap
//! sweeps through the block instead: the allocation bordering it on the
//! sweep's side moves to its far end (8 MiB a plan at most), so the holes
//! behind it join the gap. The sweep turns at the block's ends and at pinned
//! allocations, and rests when a round trip gathers nothing. New allocations
//! are carved from the end of a free range away from the ranges the last
//! plans vacate next to the gap (or, with none on exactly one side, away from
//! the sweep's front): carved from the gap's end on their side, an allocation
//! would wall them off as a new hole when they are released, and a fill goes
//! on first on the side it vacated. Walks are bounded by the budget and by
//! the free bytes outside them (free ranges a walk passes after its last
//! allocation stay outside it; a free range of 8 MiB or more ends a walk and
//! takes its allocations, from its end away from the gap), and a search for a destination sets aside
//! each free range inside the walked ranges once per plan, so planning costs
//! microseconds.
//!
//! On the stress trace (`forgeflow-stress pool`, one simulated hour), with a
//! budget of 32 MiB and 64 moves a frame, 3,538 of 3,540 samples have under
//! 5% of free space outside the gap; what remains are the frames right after
//! a level unload releases 100-250 MB scattered over the pool at once, which
//! the budget closes over the next frames. No plan within the budget could
//! do better in those frames: a plan takes free bytes and frees none before
//! its fence, so from `T` free bytes, `S` of them outside the gap, it leaves
//! at least `(S - B) / (T - B)` with a budget of `B` bytes. Over 192 seeds of
//! the trace, 515 of the 599 samples over 5% at 32 MiB are forced so; at
//! 256 MiB and 1024 moves none of the 92 is.
//!
//! Algorithm (after TLSF, M. Masmano et al., 2004): see `tlsf.rs`.

mod pool;
mod tlsf;

pub use pool::{
    AllocError, AllocKey, Allocation, DefragBudget, DefragPlan, Move, PoolAllocator, PoolMetrics,
    PoolStats, MAX_BLOCK_BYTES,
};
