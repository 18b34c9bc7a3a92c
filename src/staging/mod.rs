//! Staging: moving bytes between the CPU and the GPU through fence-guarded rings.
//!
//! - [`StagingRing`]: uploads. One `MAP_WRITE | COPY_SRC` buffer per frame in
//!   flight, sub-allocated linearly within a frame with the alignment each copy
//!   needs. Workers fill disjoint pieces of the mapped memory in parallel
//!   ([`StagingWrite`] is `Send`); the render thread only records
//!   `copy_buffer_to_buffer` / `copy_buffer_to_texture` in [`StagingFrame::finish`].
//!   A piece costs the render thread tens of nanoseconds: the frame names its
//!   buffers by index (each destination is looked up once, not cloned per
//!   piece), and the list of pieces holds no texture descriptors inline.
//! - [`ReadbackRing`]: the same from the GPU to the CPU; results are delivered by
//!   [`ReadbackRing::poll`] once their copy has finished, never by stalling a frame.
//!
//! ## The fence of a staging buffer
//!
//! A buffer is written only while it is mapped, and wgpu maps a buffer only when
//! no submitted work uses it. `finish` schedules the buffer's next mapping with
//! `CommandEncoder::map_buffer_on_submit`: wgpu maps it once the submission that
//! copies from it has completed on the GPU, and the callback marks it ready. So
//! the mapping *is* the buffer's fence: a buffer is reused only after the GPU
//! work of the frame that used it has finished, and is never written while the
//! GPU may read it. When a frame needs a buffer that is not back yet,
//! `begin_frame` polls the device and waits (bounded, counted in the stats).
//!
//! ## Many small pieces: the GPU scatter
//!
//! wgpu over Vulkan puts a pipeline barrier between two copies into the same
//! buffer, so 1600 pieces of 64 KiB bound for one pool buffer run as 1600
//! serialized copies, far below the link's bandwidth. With `gpu_scatter` (the
//! default on hardware GPUs), pieces of up to `scatter_max_piece` bytes in the frame's current
//! ring buffer whose destination has `BufferUsages::STORAGE` (and fits one
//! storage binding) travel instead as one copy of the staging bytes into a
//! device-local landing buffer, followed by one compute dispatch per
//! destination that writes every piece. The landing buffer costs `buffer_size`
//! bytes of GPU memory. Other pieces, large pieces and textures use copy commands.
//! Uploads of one frame to overlapping destination bytes land in an unspecified
//! order: do not upload the same bytes twice in a frame.
//!
//! ## When a frame asks for more than fits
//!
//! The [`OverflowPolicy`] decides, and the stats count it: wait (bounded) for the
//! next ring buffer and continue in it, refuse with [`StagingError::Deferred`] so
//! that the caller keeps the rest for the next frame, or refuse with
//! [`StagingError::Full`]. A single piece larger than a ring buffer goes through
//! a dedicated buffer created for it and destroyed after its copy (counted, and
//! bounded by `max_dedicated_bytes` in flight). Memory never grows without bound.

mod error;
mod readback;
mod ring;
mod scatter;

pub use error::StagingError;
pub use readback::{ReadbackConfig, ReadbackData, ReadbackFrame, ReadbackRing, ReadbackStats};
pub use ring::{
    StagingFrame, StagingRing, StagingStats, StagingWrite, TextureWrite, UploadSummary,
};

pub use forgeflow_jobs::staging::{
    TextureCopyLayout, COPY_BUFFER_ALIGNMENT, COPY_BYTES_PER_ROW_ALIGNMENT,
};

use std::time::Duration;

/// Runs `unmap` (which unmaps buffers) inside a validation error scope: a lost
/// device destroys its buffers, and wgpu reports unmapping a destroyed buffer
/// as a validation error to the uncaptured-error handler, whose default
/// panics. Here it is an error returned, and the map callbacks that follow
/// report the loss as usual.
pub(crate) fn unmapping(device: &wgpu::Device, unmap: impl FnOnce()) -> Result<(), StagingError> {
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    unmap();
    // Native wgpu answers a pop at once: one poll with a no-op waker reads
    // it, where `pollster::block_on` would allocate its signal every frame.
    let mut popped = std::pin::pin!(scope.pop());
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match std::future::Future::poll(popped.as_mut(), &mut cx) {
        std::task::Poll::Ready(Some(e)) => Err(StagingError::Map(e.to_string())),
        _ => Ok(()),
    }
}

/// What a [`StagingFrame`] does with a piece that does not fit in what is left of
/// its ring buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OverflowPolicy {
    /// Wait, up to `wait_timeout`, for the next ring buffer to come back from the
    /// GPU and continue in it. The frame then holds more than one buffer and
    /// later frames may wait for theirs. The default.
    #[default]
    Wait,
    /// Refuse with [`StagingError::Deferred`]: the caller keeps the piece and
    /// asks again next frame. Counted in `bytes_deferred`.
    Defer,
    /// Refuse with [`StagingError::Full`].
    Error,
}

/// When a [`StagingRing`] scatters small pieces with a compute dispatch instead
/// of one copy command each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GpuScatter {
    /// On hardware GPUs; off on CPU adapters (a software rasterizer runs copy
    /// commands as plain memcpys without barrier cost, and compute copies slowly).
    #[default]
    Auto,
    /// Always, where the device can bind the landing buffer.
    Always,
    /// Never: every piece is a copy command.
    Never,
}

/// How a [`StagingRing`] is set up.
#[derive(Debug, Clone)]
pub struct StagingConfig {
    /// Bytes per ring buffer (default 64 MiB; a multiple of 4).
    pub buffer_size: u64,
    /// Ring buffers, normally the number of frames in flight (1..=8, default 3).
    pub buffers: u32,
    /// See [`OverflowPolicy`].
    pub overflow: OverflowPolicy,
    /// How long to wait for a ring buffer (or dedicated-buffer budget) to come
    /// back from the GPU before [`StagingError::Timeout`] (default 5 s).
    pub wait_timeout: Duration,
    /// Bytes of dedicated buffers (pieces larger than a ring buffer) that may be
    /// in flight at once (default 256 MiB).
    pub max_dedicated_bytes: u64,
    /// When to scatter small buffer pieces on the GPU (see below; default `Auto`).
    pub gpu_scatter: GpuScatter,
    /// Pieces up to this size are scattered when their destination allows it (default 256 KiB).
    pub scatter_max_piece: u64,
}

impl Default for StagingConfig {
    fn default() -> Self {
        StagingConfig {
            buffer_size: 64 << 20,
            buffers: 3,
            overflow: OverflowPolicy::Wait,
            wait_timeout: Duration::from_secs(5),
            max_dedicated_bytes: 256 << 20,
            gpu_scatter: GpuScatter::Auto,
            scatter_max_piece: 256 << 10,
        }
    }
}
