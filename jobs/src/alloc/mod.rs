//! The allocator core of GPU memory pools, with no wgpu: which range of which
//! block each allocation occupies, when a freed range may be reused, and which
//! allocations to move to keep memory dense.
//!
//! - [`PoolAllocator`]: sub-allocation of blocks with a two-level segregated
//!   fit (O(1) allocation and free, any power-of-two alignment, no stranded
//!   holes), generational handles ([`AllocKey`]), frees deferred until the
//!   fence of the last frame that used the range, pinning, statistics.
//! - Defragmentation planning ([`PoolAllocator::plan_defrag`]): within a budget
//!   of bytes and moves, empty the sparsest block into the others, or slide the
//!   highest allocations of a block down into its holes. Destinations are
//!   reserved at once and never overlap their sources; the GPU layer copies,
//!   then [`PoolAllocator::commit_defrag`] repoints the handles and frees the
//!   old ranges after the frame's fence.
//!
//! Algorithm (after TLSF, M. Masmano et al., 2004): see `tlsf.rs`.

mod pool;
mod tlsf;

pub use pool::{
    AllocError, AllocKey, Allocation, DefragBudget, DefragPlan, Move, PoolAllocator, PoolMetrics,
    PoolStats,
};
