//! A frame's job graph, declared by `Runtime::end_frame`: the next pieces of
//! the textures uploading (*texture upload* / *texture decode*), the buffer
//! writes (*buffer upload*), the pool's defragmentation plan (*defrag*) and
//! each virtual texture's page faults (*page fault*).

use forgeflow_graph::Frame;
use forgeflow_jobs::alloc::DefragPlan;
use slotmap::SlotMap;

use super::textures::{Streaming, TextureBudget, TextureStreaming};
use super::vt_slot::ErasedVt;
use super::write_queue::WriteQueue;
use super::{FrameReport, RuntimeError, VtHandle};
use crate::pool::BufferPool;
use crate::staging::StagingFrame;

/// What a frame's jobs borrow: the requests, and where the plan goes.
pub(super) struct FrameWork<'s, 'r> {
    /// The textures and what a staged byte costs.
    pub(super) textures: &'r TextureStreaming,
    /// The uploads in progress (taken out of `textures` for the frame).
    pub(super) active: &'s mut [Streaming],
    /// How much texture work the frame may declare.
    pub(super) texture_budget: TextureBudget,
    /// The buffer writes queued since the last frame.
    pub(super) writes: &'s WriteQueue,
    /// The pool, which the *defrag* job plans over.
    pub(super) pool: &'s mut BufferPool,
    /// The *defrag* job's plan, recorded after the frame has run.
    pub(super) defrag_plan: &'s mut Option<DefragPlan>,
    /// The virtual textures.
    pub(super) vts: &'r mut SlotMap<VtHandle, Box<dyn ErasedVt>>,
}

/// Declares the frame's jobs on `frame`, their pieces in `staging`.
pub(super) fn declare_jobs<'s>(
    frame: &mut Frame<'s>,
    staging: &'s StagingFrame<'_>,
    work: FrameWork<'s, '_>,
    report: &mut FrameReport,
) -> Result<(), RuntimeError> {
    let FrameWork {
        textures,
        active,
        texture_budget,
        writes,
        pool,
        defrag_plan,
        vts,
    } = work;
    textures.declare(active, texture_budget, staging, frame)?;
    for w in &writes.writes {
        let Ok(r) = pool.resolve(w.handle) else {
            report.buffer_writes_stale += 1; // freed since
            continue;
        };
        let mut piece =
            staging.write_buffer(r.buffer, r.offset + w.offset, w.bytes.len() as u64)?;
        let src = &writes.bytes[w.bytes.clone()];
        // Weight: KiB copied.
        frame
            .job("buffer upload")
            .weight((src.len() / 1024) as u32)
            .spawn(move |_| Ok(piece.write(src)?))?;
        report.buffer_writes += 1;
    }
    // Planning only touches the allocator core: the copies are recorded
    // after the staging copies, so a write above lands before its data moves.
    frame.add("defrag", move |_| {
        *defrag_plan = Some(pool.plan_defrag());
        Ok(())
    })?;
    for vt in vts.values_mut() {
        vt.update(staging, frame)?;
    }
    Ok(())
}
