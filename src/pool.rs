//! [`BufferPool`]: GPU buffers sub-allocated by the pool allocator core.
//!
//! A pool serves one usage class (vertex, index, uniform, storage, indirect or a
//! combination) from blocks: large `wgpu::Buffer`s of `block_size` bytes,
//! created on demand within `budget_bytes` and released after staying empty for
//! `grace_frames`. Allocations are handles ([`PoolHandle`]); [`BufferPool::resolve`]
//! says where one is this frame. Frees wait for the fence of the last frame that
//! used the range (see `forgeflow_jobs::alloc`).
//!
//! Defragmentation: [`BufferPool::defrag`] plans moves within a budget and
//! records their copies into the embedder's encoder. wgpu cannot copy within one
//! buffer, so a move inside a block goes through a scratch buffer (two copies);
//! a move between blocks is one copy. After submitting the encoder, the embedder
//! calls [`BufferPool::commit`]: handles then point to the new places, and the
//! old ranges are freed once that frame's fence has passed ([`BufferPool::retire`]).

use std::fmt;

use forgeflow_jobs::alloc::{
    AllocError, AllocKey, Allocation, DefragBudget, DefragPlan, PoolAllocator, PoolStats,
};

/// An allocation of a [`BufferPool`]: a generational handle, stale once freed.
pub type PoolHandle = AllocKey;

/// How a [`BufferPool`] is set up.
#[derive(Debug, Clone)]
pub struct BufferPoolConfig {
    /// A label for its buffers.
    pub label: &'static str,
    /// The usage class of the pool's buffers (`COPY_SRC | COPY_DST` are added for defragmentation).
    pub usage: wgpu::BufferUsages,
    /// Bytes per block (default 64 MiB).
    pub block_size: u64,
    /// Most bytes of blocks alive at once (default 1 GiB).
    pub budget_bytes: u64,
    /// Frames a block stays empty before it is released (default 120).
    pub grace_frames: u64,
    /// Defragmentation budget per [`BufferPool::defrag`] (default 16 MiB, 64 moves).
    pub defrag: DefragBudget,
}

impl Default for BufferPoolConfig {
    fn default() -> Self {
        BufferPoolConfig {
            label: "forgeflow pool",
            usage: wgpu::BufferUsages::VERTEX
                | wgpu::BufferUsages::INDEX
                | wgpu::BufferUsages::STORAGE,
            block_size: 64 << 20,
            budget_bytes: 1 << 30,
            grace_frames: 120,
            defrag: DefragBudget {
                max_bytes: 16 << 20,
                max_moves: 64,
            },
        }
    }
}

/// Why a pool operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoolError {
    /// A new block would exceed the budget.
    Budget {
        /// Bytes asked for.
        requested: u64,
        /// Bytes of blocks alive.
        in_use: u64,
        /// The budget.
        budget: u64,
    },
    /// The allocator refused (a stale handle, a bad alignment...).
    Alloc(AllocError),
    /// A configuration value out of range.
    InvalidConfig(String),
    /// One allocation larger than any buffer the device can create.
    TooLarge {
        /// Bytes asked for (with alignment).
        size: u64,
        /// The largest buffer: the device's `max_buffer_size`, at most
        /// [`MAX_BLOCK_BYTES`](crate::jobs::alloc::MAX_BLOCK_BYTES).
        max: u64,
    },
}

impl fmt::Display for PoolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PoolError::Budget { requested, in_use, budget } => write!(
                f,
                "the pool's budget of {budget} bytes is used ({in_use} in blocks) and {requested} more were needed; \
                 free allocations, defragment, or raise budget_bytes"
            ),
            PoolError::Alloc(e) => e.fmt(f),
            PoolError::InvalidConfig(why) => write!(f, "invalid pool setting: {why}"),
            PoolError::TooLarge { size, max } => write!(
                f,
                "an allocation of {size} bytes is larger than the largest buffer the device can \
                 create ({max} bytes); split it, or use a dedicated buffer"
            ),
        }
    }
}

impl std::error::Error for PoolError {}

impl From<AllocError> for PoolError {
    fn from(e: AllocError) -> Self {
        PoolError::Alloc(e)
    }
}

/// Where an allocation is this frame.
#[derive(Debug, Clone)]
pub struct ResolvedBuffer<'a> {
    /// The block's buffer.
    pub buffer: &'a wgpu::Buffer,
    /// Byte offset of the allocation in it.
    pub offset: u64,
    /// Bytes.
    pub size: u64,
}

struct Block {
    buffer: wgpu::Buffer,
    empty_since: Option<u64>,
}

/// What one [`BufferPool::defrag`] recorded; pass it to [`BufferPool::commit`]
/// once the encoder is submitted.
#[derive(Debug)]
#[must_use = "commit the plan after submitting the encoder, or its reserved ranges stay reserved"]
pub struct DefragTicket {
    plan: DefragPlan,
}

impl DefragTicket {
    /// Moves recorded.
    pub fn moves(&self) -> usize {
        self.plan.moves.len()
    }

    /// Bytes the moves copy.
    pub fn bytes(&self) -> u64 {
        self.plan.bytes
    }
}

/// GPU buffers sub-allocated with handles, budgets, deferred frees and defragmentation.
pub struct BufferPool {
    device: wgpu::Device,
    config: BufferPoolConfig,
    alloc: PoolAllocator,
    blocks: Vec<Option<Block>>,
    block_bytes: u64,
    /// The largest block this device can hold.
    max_block: u64,
    scratch: Option<wgpu::Buffer>,
    buffers_created: u64,
    blocks_released: u64,
}

impl fmt::Debug for BufferPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufferPool")
            .field("config", &self.config)
            .field("block_bytes", &self.block_bytes)
            .field("allocations", &self.alloc.len())
            .finish_non_exhaustive()
    }
}

impl BufferPool {
    /// An empty pool (blocks are created on demand).
    pub fn new(device: &wgpu::Device, config: BufferPoolConfig) -> Result<Self, PoolError> {
        let max = device
            .limits()
            .max_buffer_size
            .min(forgeflow_jobs::alloc::MAX_BLOCK_BYTES);
        if config.block_size == 0 || !config.block_size.is_multiple_of(4) || config.block_size > max
        {
            return Err(PoolError::InvalidConfig(format!(
                "block_size {} must be a non-zero multiple of 4 within the device's \
                 max_buffer_size ({max})",
                config.block_size
            )));
        }
        if config.budget_bytes < config.block_size {
            return Err(PoolError::InvalidConfig(format!(
                "budget_bytes {} is smaller than one block ({})",
                config.budget_bytes, config.block_size
            )));
        }
        Ok(BufferPool {
            device: device.clone(),
            config,
            alloc: PoolAllocator::new(),
            blocks: Vec::new(),
            block_bytes: 0,
            max_block: max,
            scratch: None,
            buffers_created: 0,
            blocks_released: 0,
        })
    }

    /// Allocates `size` bytes at `align` (a power of two; the adapter's
    /// `min_storage_buffer_offset_alignment`, 256 for uniforms, ...), creating a
    /// block (of `block_size`, or larger for a larger request) if none has room
    /// and the budget allows.
    pub fn alloc(&mut self, size: u64, align: u64) -> Result<PoolHandle, PoolError> {
        match self.alloc.alloc(size, align) {
            Ok(h) => return Ok(h),
            Err(AllocError::OutOfSpace { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        let block_size = self.config.block_size.max(
            size.div_ceil(4)
                .saturating_mul(4)
                .saturating_add(align.max(4)),
        );
        if block_size > self.max_block {
            return Err(PoolError::TooLarge {
                size: block_size,
                max: self.max_block,
            });
        }
        if self.block_bytes + block_size > self.config.budget_bytes {
            return Err(PoolError::Budget {
                requested: block_size,
                in_use: self.block_bytes,
                budget: self.config.budget_bytes,
            });
        }
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(self.config.label),
            size: block_size,
            usage: self.config.usage | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.buffers_created += 1;
        let index = self.alloc.add_block(block_size) as usize;
        if self.blocks.len() <= index {
            self.blocks.resize_with(index + 1, || None);
        }
        self.blocks[index] = Some(Block {
            buffer,
            empty_since: None,
        });
        self.block_bytes += block_size;
        Ok(self.alloc.alloc(size, align)?)
    }

    /// Where `handle` is this frame.
    pub fn resolve(&self, handle: PoolHandle) -> Result<ResolvedBuffer<'_>, PoolError> {
        let a = self.alloc.resolve(handle)?;
        let block = self.blocks[a.block as usize]
            .as_ref()
            .ok_or(PoolError::Alloc(AllocError::Stale(handle)))?;
        Ok(ResolvedBuffer {
            buffer: &block.buffer,
            offset: a.offset,
            size: a.size,
        })
    }

    /// Frees `handle`, which frame `last_frame` may still use: the handle is
    /// stale now, the range is reused after that frame's fence ([`retire`](Self::retire)).
    pub fn free(&mut self, handle: PoolHandle, last_frame: u64) -> Result<(), PoolError> {
        Ok(self.alloc.free(handle, last_frame)?)
    }

    /// Pins or unpins an allocation (pinned ones are never moved by defragmentation).
    pub fn set_pinned(&mut self, handle: PoolHandle, pinned: bool) -> Result<(), PoolError> {
        Ok(self.alloc.set_pinned(handle, pinned)?)
    }

    /// Plans moves within the configured budget and records their copies into
    /// `encoder`. Submit it, then [`commit`](Self::commit) the ticket.
    pub fn defrag(&mut self, encoder: &mut wgpu::CommandEncoder) -> DefragTicket {
        let plan = self.plan_defrag();
        self.record_defrag(plan, encoder)
    }

    /// The planning half of [`defrag`](Self::defrag), CPU only (for a job):
    /// moves within the configured budget, destinations reserved. Pass the
    /// plan to [`record_defrag`](Self::record_defrag) in the same frame.
    pub fn plan_defrag(&mut self) -> DefragPlan {
        self.alloc.plan_defrag(self.config.defrag)
    }

    /// The recording half of [`defrag`](Self::defrag): the plan's copies into
    /// `encoder`. Submit it, then [`commit`](Self::commit) the ticket.
    pub fn record_defrag(
        &mut self,
        plan: DefragPlan,
        encoder: &mut wgpu::CommandEncoder,
    ) -> DefragTicket {
        self.record_moves(plan.moves.iter().map(|m| (m.from, m.to)), encoder);
        DefragTicket { plan }
    }

    /// The copies of moves `(from, to)` into `encoder`, in order. Also how
    /// the moves of a frame whose encoder was dropped unsubmitted are made
    /// again, first in the next frame's encoder: `from` still holds the
    /// data (nothing ran), and anything written or moved since follows.
    pub(crate) fn record_moves(
        &mut self,
        moves: impl Iterator<Item = (Allocation, Allocation)> + Clone,
        encoder: &mut wgpu::CommandEncoder,
    ) {
        let largest_in_block = moves
            .clone()
            .filter(|(from, to)| from.block == to.block)
            .map(|(from, _)| from.size)
            .max()
            .unwrap_or(0);
        if largest_in_block > 0
            && self
                .scratch
                .as_ref()
                .is_none_or(|s| s.size() < largest_in_block)
        {
            let size =
                largest_in_block.max(self.config.defrag.max_bytes.min(self.config.block_size));
            self.scratch = Some(self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("forgeflow pool defrag scratch"),
                size,
                usage: wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }));
            self.buffers_created += 1;
        }
        for (from, to) in moves {
            let (Some(src), Some(dst)) = (
                &self.blocks[from.block as usize],
                &self.blocks[to.block as usize],
            ) else {
                continue;
            };
            if from.block == to.block {
                // wgpu cannot copy within one buffer: through the scratch buffer.
                let scratch = self
                    .scratch
                    .as_ref()
                    .expect("created above for in-block moves");
                encoder.copy_buffer_to_buffer(&src.buffer, from.offset, scratch, 0, from.size);
                encoder.copy_buffer_to_buffer(scratch, 0, &dst.buffer, to.offset, from.size);
            } else {
                encoder.copy_buffer_to_buffer(
                    &src.buffer,
                    from.offset,
                    &dst.buffer,
                    to.offset,
                    from.size,
                );
            }
        }
    }

    /// After the encoder given to [`defrag`](Self::defrag) was submitted in
    /// frame `frame`: handles point to the new places; old ranges are freed
    /// when `frame` retires.
    pub fn commit(&mut self, ticket: DefragTicket, frame: u64) {
        self.alloc.commit_defrag(ticket.plan, frame);
    }

    /// Every frame up to `completed` has finished on the GPU: releases its
    /// freed ranges, and releases blocks empty for `grace_frames`.
    pub fn retire(&mut self, completed: u64) {
        self.alloc.retire(completed);
        // No list of empty blocks: this runs every frame and must not allocate.
        for (i, block) in self.blocks.iter_mut().enumerate() {
            let Some(b) = block else { continue };
            if self.alloc.is_block_empty(i as u32) {
                let since = *b.empty_since.get_or_insert(completed);
                if completed.saturating_sub(since) >= self.config.grace_frames
                    && self.alloc.remove_block(i as u32).is_ok()
                {
                    self.block_bytes -= b.buffer.size();
                    *block = None;
                    self.blocks_released += 1;
                }
            } else {
                b.empty_since = None;
            }
        }
    }

    /// Bytes of blocks alive.
    pub fn block_bytes(&self) -> u64 {
        self.block_bytes
    }

    /// Blocks alive.
    pub fn blocks(&self) -> usize {
        self.blocks.iter().flatten().count()
    }

    /// wgpu buffers created since the pool was made (blocks and scratch).
    pub fn buffers_created(&self) -> u64 {
        self.buffers_created
    }

    /// Blocks released after staying empty.
    pub fn blocks_released(&self) -> u64 {
        self.blocks_released
    }

    /// The allocator's counters (moves, bytes moved, planning time...).
    pub fn stats(&self) -> &PoolStats {
        self.alloc.stats()
    }

    /// The allocator core, for metrics (fragmentation, occupancy, bins).
    pub fn allocator(&self) -> &PoolAllocator {
        &self.alloc
    }
}
