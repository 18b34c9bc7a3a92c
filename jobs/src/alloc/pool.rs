//! [`PoolAllocator`]: handles, deferred frees and defragmentation over the TLSF core.

use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

use slotmap::{Key, KeyData, SlotMap};

use super::tlsf::{NodeState, Tlsf, GRANULE, MAX_BLOCK, NIL};

mod defrag;

use defrag::DefragState;
pub use defrag::{DefragBudget, DefragPlan, Move};

/// The largest block a pool takes, 16 GiB less 4 bytes: ranges are stored as
/// 32-bit counts of 4-byte granules, which keeps the allocator's nodes at 32
/// bytes. GPU buffers are far smaller in practice (wgpu's `max_buffer_size`).
pub const MAX_BLOCK_BYTES: u64 = MAX_BLOCK;

slotmap::new_key_type! {
    /// Names one allocation. Stale once freed: every lookup is then an `Err`.
    pub struct AllocKey;
}

/// Where an allocation is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allocation {
    /// The block (GPU buffer) index.
    pub block: u32,
    /// Byte offset in the block.
    pub offset: u64,
    /// Bytes (the requested size rounded up to 4).
    pub size: u64,
}

/// Why an allocation or a lookup failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AllocError {
    /// No free range holds the request.
    OutOfSpace {
        /// Bytes asked for.
        size: u64,
        /// Alignment asked for.
        align: u64,
        /// The largest free range.
        largest_free: u64,
        /// All free bytes.
        free: u64,
    },
    /// An alignment that is not a power of two.
    BadAlignment(u64),
    /// A zero-sized request.
    Empty,
    /// A key whose allocation was freed (or that belongs to another pool).
    Stale(AllocKey),
    /// A block index that does not exist, is removed, or still holds allocations.
    Block(u32),
}

impl fmt::Display for AllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllocError::OutOfSpace { size, align, largest_free, free } => write!(
                f,
                "no room for {size} bytes aligned to {align}: {free} bytes free, the largest free range {largest_free}; \
                 add a block, raise the budget, or defragment"
            ),
            AllocError::BadAlignment(a) => write!(f, "alignment {a} is not a power of two"),
            AllocError::Empty => f.write_str("cannot allocate 0 bytes"),
            AllocError::Stale(k) => write!(f, "stale allocation key {k:?}: it was freed or belongs to another pool"),
            AllocError::Block(b) => write!(f, "block {b} does not exist, was removed, or still holds allocations"),
        }
    }
}

impl std::error::Error for AllocError {}

struct Entry {
    node: u32,
    /// Granules of data (the node may also hold alignment padding before it
    /// and, after a defragmentation move to the end of a range, slack after
    /// it). Kept small: the handle table is touched by every operation.
    granules: u32,
    align_log2: u8,
    pinned: bool,
}

impl Entry {
    fn new(node: u32, size: u64, align: u64) -> Entry {
        Entry {
            node,
            granules: (size / GRANULE) as u32,
            align_log2: align.trailing_zeros() as u8,
            pinned: false,
        }
    }

    /// Bytes of data.
    #[inline]
    fn size(&self) -> u64 {
        self.granules as u64 * GRANULE
    }

    #[inline]
    fn align(&self) -> u64 {
        1 << self.align_log2
    }
}

/// Counters since creation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Successful allocations.
    pub allocations: u64,
    /// Failed allocations.
    pub failures: u64,
    /// Frees (deferred or immediate).
    pub frees: u64,
    /// Frees whose range has been released to the pool.
    pub released: u64,
    /// Allocations moved by committed defragmentation.
    pub allocations_moved: u64,
    /// Bytes moved by committed defragmentation.
    pub bytes_moved: u64,
    /// Blocks that defragmentation emptied.
    pub blocks_emptied: u64,
    /// Defragmentation plans made.
    pub plans: u64,
    /// Total and longest planning time.
    pub plan_time_total: Duration,
    /// See `plan_time_total`.
    pub plan_time_max: Duration,
}

/// A snapshot of how the pool's memory is used.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolMetrics {
    /// Bytes of all live blocks.
    pub pool_bytes: u64,
    /// Bytes of live allocations.
    pub live_bytes: u64,
    /// Bytes freed but waiting for their fence.
    pub pending_bytes: u64,
    /// Free bytes that defragmentation holds back until the fence of its
    /// moves passes, so that they join the gap (an allocation that fits
    /// nowhere else takes them). Part of `free_bytes`.
    pub held_bytes: u64,
    /// Free bytes, held ones included.
    pub free_bytes: u64,
    /// The largest free range (held or not).
    pub largest_free: u64,
    /// External fragmentation, `1 - largest_free / free_bytes` (0 when nothing is free).
    pub fragmentation: f64,
    /// Reserved (live + pending + alignment padding kept with them) over live bytes.
    pub reserved_over_live: f64,
    /// Free ranges per bin: (the bin's smallest size, ranges).
    pub free_bins: Vec<(u64, u32)>,
}

/// Sub-allocates blocks with generational handles, fence-deferred frees and
/// defragmentation planning. See the [module documentation](crate::alloc).
pub struct PoolAllocator {
    tlsf: Tlsf,
    keys: SlotMap<AllocKey, Entry>,
    /// Frees waiting for their frame's fence: (last frame that may use it, node), in frame order.
    pending: VecDeque<(u64, u32)>,
    pending_bytes: u64,
    /// Free ranges compaction holds back until its moves' frame retires:
    /// (that frame, node), in frame order (see `compact`).
    held: VecDeque<(u64, u32)>,
    held_bytes: u64,
    live_bytes: u64,
    stats: PoolStats,
    /// Defragmentation planning's state between plans (see `defrag.rs`).
    defrag: DefragState,
}

impl Default for PoolAllocator {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for PoolAllocator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolAllocator")
            .field("blocks", &self.tlsf.blocks.len())
            .field("live", &self.keys.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

fn key_of(ffi: u64) -> AllocKey {
    AllocKey::from(KeyData::from_ffi(ffi))
}

impl PoolAllocator {
    /// An empty pool with no block.
    pub fn new() -> Self {
        PoolAllocator {
            tlsf: Tlsf::new(),
            keys: SlotMap::with_key(),
            pending: VecDeque::new(),
            pending_bytes: 0,
            held: VecDeque::new(),
            held_bytes: 0,
            live_bytes: 0,
            stats: PoolStats::default(),
            defrag: DefragState::default(),
        }
    }

    /// Adds a block of `size` bytes (rounded down to a multiple of 4, and cut
    /// to [`MAX_BLOCK_BYTES`]); returns its index.
    pub fn add_block(&mut self, size: u64) -> u32 {
        self.tlsf
            .add_block(size.min(MAX_BLOCK_BYTES) / GRANULE * GRANULE)
    }

    /// Removes a block that holds nothing (no live, pending or reserved range).
    pub fn remove_block(&mut self, block: u32) -> Result<(), AllocError> {
        if self.tlsf.remove_block(block) {
            Ok(())
        } else {
            Err(AllocError::Block(block))
        }
    }

    /// Live blocks whose every byte is free.
    pub fn empty_blocks(&self) -> impl Iterator<Item = u32> + '_ {
        (0..self.tlsf.blocks.len() as u32).filter(|&i| self.is_block_empty(i))
    }

    /// Whether `block` is live and holds nothing: no allocation and no free
    /// still waiting for its frame (its whole range is one free node).
    pub fn is_block_empty(&self, block: u32) -> bool {
        self.tlsf.blocks.get(block as usize).is_some_and(|b| {
            b.live && b.used_bytes == 0 && self.tlsf.nodes[b.first as usize].size() == b.size
        })
    }

    /// Allocates `size` bytes aligned to `align` (a power of two; 4 at least is used).
    #[inline]
    pub fn alloc(&mut self, size: u64, align: u64) -> Result<AllocKey, AllocError> {
        if size == 0 {
            return Err(AllocError::Empty);
        }
        if !align.is_power_of_two() {
            return Err(AllocError::BadAlignment(align));
        }
        let align = align.max(GRANULE);
        // Larger than any block: refused before the size arithmetic can overflow.
        let fits_a_block = size <= MAX_BLOCK && align <= MAX_BLOCK;
        let size = size.min(MAX_BLOCK + 1).div_ceil(GRANULE) * GRANULE;
        // From the end of a free range away from the ranges compaction is
        // vacating next to the gap (see `plan_compaction`): they join the gap
        // once their fence passes, and an allocation carved from the gap's
        // end on their side would wall them off as a new hole (a level's
        // worth of megabytes, after a fill that moved it into the holes of an
        // unload). With no fill pending on exactly one side, away from the
        // sweep's front.
        let high = match self.defrag.vacating {
            [Some(_), None] => true,
            [None, Some(_)] => false,
            _ => !self.defrag.sweep_up,
        };
        let mut found = fits_a_block
            .then(|| self.tlsf.alloc_from(size, align, high))
            .flatten();
        if found.is_none() && fits_a_block && !self.held.is_empty() {
            // Held ranges are free, only kept for the gap: rather than fail,
            // give them back.
            found = self.release_all_held(size, align, high);
        }
        match found {
            Some(node) => {
                let key = self.keys.insert(Entry::new(node, size, align));
                self.tlsf.set_owner(node, key.data().as_ffi());
                self.live_bytes += size;
                self.stats.allocations += 1;
                Ok(key)
            }
            None => {
                self.stats.failures += 1;
                Err(AllocError::OutOfSpace {
                    size,
                    align,
                    largest_free: self.tlsf.largest_free(),
                    free: self.tlsf.free_bytes,
                })
            }
        }
    }

    /// Where an allocation is.
    #[inline]
    pub fn resolve(&self, key: AllocKey) -> Result<Allocation, AllocError> {
        let entry = self.keys.get(key).ok_or(AllocError::Stale(key))?;
        Ok(self.data_range(entry.node, entry.size(), entry.align()))
    }

    /// Frees an allocation that frame `last_frame` (and none after it) may still
    /// use: the key is stale at once, the range is reused only after
    /// [`retire`](Self::retire) reaches that frame.
    #[inline]
    pub fn free(&mut self, key: AllocKey, last_frame: u64) -> Result<(), AllocError> {
        let entry = self.keys.remove(key).ok_or(AllocError::Stale(key))?;
        self.tlsf.set_pending(entry.node);
        self.live_bytes -= entry.size();
        self.pending_bytes += self.tlsf.nodes[entry.node as usize].size();
        // Keep the queue in frame order even if frees name older frames
        // (rare: most frees name the newest frame, and go at the back).
        // (As a value, not a branch on the queue being empty: it empties
        // and fills every few frames, which a branch mispredicts.)
        if self.pending.back().map_or(0, |&(f, _)| f) <= last_frame {
            self.pending.push_back((last_frame, entry.node));
        } else {
            let pos = self
                .pending
                .iter()
                .rposition(|&(f, _)| f <= last_frame)
                .map_or(0, |p| p + 1);
            self.pending.insert(pos, (last_frame, entry.node));
        }
        self.stats.frees += 1;
        Ok(())
    }

    /// Frees an allocation no GPU work has used: its range is reusable at once.
    #[inline]
    pub fn free_now(&mut self, key: AllocKey) -> Result<(), AllocError> {
        let entry = self.keys.remove(key).ok_or(AllocError::Stale(key))?;
        self.tlsf.free(entry.node);
        self.live_bytes -= entry.size();
        self.stats.frees += 1;
        self.stats.released += 1;
        Ok(())
    }

    /// Releases every pending free whose last frame is at most `completed` (its
    /// fence has signalled). Returns how many ranges were released.
    pub fn retire(&mut self, completed: u64) -> usize {
        let mut released = 0;
        while let Some(&(frame, node)) = self.pending.front() {
            if frame > completed {
                break;
            }
            self.pending.pop_front();
            self.pending_bytes -= self.tlsf.nodes[node as usize].size();
            self.tlsf.free(node);
            released += 1;
        }
        while let Some(&(frame, node)) = self.held.front() {
            if frame > completed {
                break;
            }
            self.held.pop_front();
            self.release_held(node);
        }
        for side in &mut self.defrag.vacating {
            if side.is_some_and(|frame| frame <= completed) {
                *side = None;
            }
        }
        self.stats.released += released as u64;
        released
    }

    #[cold]
    #[inline(never)]
    fn release_all_held(&mut self, size: u64, align: u64, high: bool) -> Option<u32> {
        while let Some((_, node)) = self.held.pop_front() {
            self.release_held(node);
        }
        self.tlsf.alloc_from(size, align, high)
    }

    fn release_held(&mut self, node: u32) {
        self.held_bytes -= self.tlsf.nodes[node as usize].size();
        self.tlsf.free(node);
    }

    /// Pins (or unpins) an allocation: pinned allocations are never moved.
    pub fn set_pinned(&mut self, key: AllocKey, pinned: bool) -> Result<(), AllocError> {
        self.keys.get_mut(key).ok_or(AllocError::Stale(key))?.pinned = pinned;
        Ok(())
    }

    /// Live allocations.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there is no live allocation.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Counters since creation.
    pub fn stats(&self) -> &PoolStats {
        &self.stats
    }

    /// Fragmentation, occupancy and bins now (walks the bins: not for every frame's hot path).
    pub fn metrics(&self) -> PoolMetrics {
        let pool_bytes: u64 = self
            .tlsf
            .blocks
            .iter()
            .filter(|b| b.live)
            .map(|b| b.size)
            .sum();
        let free = self.free_bytes();
        let largest = self.largest_free();
        PoolMetrics {
            pool_bytes,
            live_bytes: self.live_bytes,
            pending_bytes: self.pending_bytes,
            held_bytes: self.held_bytes,
            free_bytes: free,
            largest_free: largest,
            fragmentation: self.fragmentation(),
            reserved_over_live: if self.live_bytes == 0 {
                0.0
            } else {
                (pool_bytes - free) as f64 / self.live_bytes as f64
            },
            free_bins: self.tlsf.free_bins(),
        }
    }

    /// External fragmentation, `1 - largest_free / free_bytes`. Ranges held
    /// for the gap are free and count: one held apart from the gap is
    /// fragmentation until its fence passes.
    pub fn fragmentation(&self) -> f64 {
        let free = self.free_bytes();
        if free == 0 {
            0.0
        } else {
            1.0 - self.largest_free() as f64 / free as f64
        }
    }

    /// The largest free range, held ranges included.
    pub fn largest_free(&self) -> u64 {
        let held = self
            .held
            .iter()
            .map(|&(_, n)| self.tlsf.nodes[n as usize].size());
        held.fold(self.tlsf.largest_free(), u64::max)
    }

    /// Free ranges in the bins as (offset, size), block after block in address
    /// order (ranges held for the gap are left out): for diagnostics and
    /// visualisation (walks every range).
    pub fn free_ranges(&self) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        for b in &self.tlsf.blocks {
            let mut n = b.first;
            while n != NIL {
                let node = &self.tlsf.nodes[n as usize];
                if node.state == NodeState::Free {
                    out.push((node.offset(), node.size()));
                }
                n = node.next;
            }
        }
        out
    }

    /// Free bytes, ranges held for the gap included.
    pub fn free_bytes(&self) -> u64 {
        self.tlsf.free_bytes + self.held_bytes
    }

    /// Bytes of live allocations.
    pub fn live_bytes(&self) -> u64 {
        self.live_bytes
    }

    /// The data of an allocation of `size` at `align` held by `node`.
    #[inline]
    fn data_range(&self, node: u32, size: u64, align: u64) -> Allocation {
        let n = &self.tlsf.nodes[node as usize];
        Allocation {
            block: n.block,
            offset: n.offset().next_multiple_of(align),
            size,
        }
    }

    /// Checks the pool's invariants (for tests and debugging): ranges of each
    /// block tile it without gap or overlap, every live key's node is used and
    /// owned by it, byte counts add up. Returns a description of the first violation.
    pub fn validate(&self) -> Result<(), String> {
        let mut free = 0;
        for (bi, b) in self.tlsf.blocks.iter().enumerate() {
            if !b.live {
                continue;
            }
            let mut n = b.first;
            let mut at = 0;
            let mut prev = NIL;
            let mut used = 0;
            while n != NIL {
                let node = &self.tlsf.nodes[n as usize];
                if node.offset() != at || node.block != bi as u32 || node.prev != prev {
                    return Err(format!(
                        "block {bi}: node {n} at {} (expected {at})",
                        node.offset()
                    ));
                }
                if node.state == NodeState::Free
                    && prev != NIL
                    && self.tlsf.nodes[prev as usize].state == NodeState::Free
                {
                    return Err(format!("block {bi}: free nodes {prev} and {n} not merged"));
                }
                match node.state {
                    NodeState::Free => free += node.size(),
                    NodeState::Used | NodeState::Pending => used += node.size(),
                    NodeState::Spare => {
                        return Err(format!("block {bi}: spare node {n} in the chain"))
                    }
                }
                at += node.size();
                prev = n;
                n = node.next;
            }
            if at != b.size {
                return Err(format!("block {bi}: ranges cover {at} of {} bytes", b.size));
            }
            if used != b.used_bytes {
                return Err(format!(
                    "block {bi}: used {used} but counted {}",
                    b.used_bytes
                ));
            }
        }
        if free != self.tlsf.free_bytes {
            return Err(format!("free {free} but counted {}", self.tlsf.free_bytes));
        }
        for (key, e) in &self.keys {
            let node = &self.tlsf.nodes[e.node as usize];
            let owner = self.tlsf.owner(e.node);
            if node.state != NodeState::Used || owner != key.data().as_ffi() {
                return Err(format!(
                    "key {key:?}: node {} is {:?}, owner {owner}",
                    e.node, node.state
                ));
            }
            let data = self.data_range(e.node, e.size(), e.align());
            if data.offset + data.size > node.offset() + node.size() {
                return Err(format!(
                    "key {key:?}: {} bytes at {} (aligned to {}) overrun its range {}+{}",
                    data.size,
                    data.offset,
                    e.align(),
                    node.offset(),
                    node.size()
                ));
            }
        }
        Ok(())
    }
}
