//! What the runtime tells: [`FrameReport`] per frame, [`RuntimeStats`] since creation.

use super::RuntimeError;

/// What one [`Runtime::end_frame`](super::Runtime::end_frame) did.
#[derive(Debug, Clone, Default)]
pub struct FrameReport {
    /// The frame's index (its fence's).
    pub frame: u64,
    /// Jobs the frame ran.
    pub jobs: u32,
    /// Texture files whose background read (and validation) finished
    /// since the last `end_frame`.
    pub textures_read: u32,
    /// Textures whose upload this frame recorded.
    pub textures_uploaded: u32,
    /// Textures that failed in this frame (read, validation, upload, budget).
    pub textures_failed: u32,
    /// Buffer writes recorded.
    pub buffer_writes: u32,
    /// Buffer writes dropped because their allocation was freed meanwhile.
    pub buffer_writes_stale: u32,
    /// Staging bytes the frame used.
    pub staging_bytes: u64,
    /// Pool allocations moved by this frame's defragmentation.
    pub defrag_moves: u32,
    /// The allocations those moves moved: each now resolves to another
    /// buffer or offset, so bind groups over them must be made again (and
    /// only over them).
    pub moved_buffers: Vec<crate::pool::PoolHandle>,
    /// A job that failed or panicked (the frame's other work went ahead).
    pub failure: Option<RuntimeError>,
    /// Earlier frames found abandoned since the last `end_frame`: their
    /// encoder was dropped without being submitted. Their work is done again
    /// (see the counts below); nothing of theirs is lost.
    pub abandoned_frames: Vec<u64>,
    /// Of those frames' work: buffer writes queued again (they go up in
    /// this frame, ahead of newer writes).
    pub buffer_writes_redone: u32,
    /// Textures whose upload started again from their file.
    pub textures_restarted: u32,
    /// Virtual-texture tiles taken back out of the page table (feedback
    /// asks for them again).
    pub tiles_taken_back: u32,
}

/// Counters and gauges since creation.
#[derive(Debug, Clone, Default)]
pub struct RuntimeStats {
    /// Frames ended.
    pub frames: u64,
    /// Frames in which a job failed.
    pub failed_frames: u64,
    /// Textures that became ready.
    pub textures_ready: u64,
    /// Texture loads that failed.
    pub textures_failed: u64,
    /// Textures alive (any state).
    pub textures_live: usize,
    /// GPU bytes of textures alive.
    pub texture_bytes: u64,
    /// Buffer writes recorded.
    pub buffer_writes: u64,
    /// Bytes of buffer writes recorded.
    pub buffer_write_bytes: u64,
    /// Frames whose encoder was dropped without being submitted.
    pub abandoned_frames: u64,
}
