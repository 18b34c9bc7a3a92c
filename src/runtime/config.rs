//! [`RuntimeConfig`]: how a [`Runtime`](super::Runtime) is set up.

use std::time::Duration;

use forgeflow_graph::{BackgroundConfig, SchedulerConfig};

use crate::pool::BufferPoolConfig;
use crate::staging::{ReadbackConfig, StagingConfig};

/// How a [`Runtime`](super::Runtime) is set up. Every field has a default that suits a
/// desktop renderer; start from `RuntimeConfig::default()`.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Frames whose GPU work may be outstanding (1..=8, default 3): the
    /// scheduler's fences and the staging ring's buffers.
    pub frames_in_flight: u32,
    /// Worker threads (`None`, the default: one per core). Ignored with
    /// `thread_pool`.
    pub threads: Option<usize>,
    /// The application's rayon pool to run the frames' jobs on, instead of a
    /// pool of the runtime's own (`None`, the default). See
    /// [`Runtime::with_pool`](super::Runtime::with_pool).
    pub thread_pool: Option<std::sync::Arc<rayon::ThreadPool>>,
    /// How long a frame waits for the fence `frames_in_flight` back before
    /// it fails with a graph error (default 10 s).
    pub fence_timeout: Duration,
    /// A frame whose jobs are expected to take less than this runs on the
    /// render thread instead of the workers (default 500 µs; zero: never);
    /// see [`SchedulerConfig::inline_below`].
    pub inline_below: Duration,
    /// The staging ring (default: 32 MiB per frame in flight; `buffers` is
    /// set from `frames_in_flight`).
    pub staging: StagingConfig,
    /// The readback ring (virtual-texture feedback).
    pub readback: ReadbackConfig,
    /// The buffer pool (usage class, block size, budget, defragmentation budget).
    pub pool: BufferPoolConfig,
    /// GPU bytes that textures may take together (default 1 GiB).
    pub texture_budget_bytes: u64,
    /// Staging bytes of texture data a frame declares at most (default 4
    /// MiB): the bound on each frame's texture copy and decode work. A
    /// texture larger than that streams over several frames, in bands of
    /// block rows; a burst of loads never stalls one frame.
    pub texture_upload_bytes_per_frame: u64,
    /// Milliseconds of texture copy and decode work a frame declares at most
    /// (default 1.0; CPU time summed over the workers), from the cost of a
    /// staged byte measured per texture (a copy costs far less than a CPU
    /// decode, a BC1 decode far less than an ASTC one); a texture declares
    /// a probe of 64 KiB in its first frame, less where its format is known
    /// to be slow. With
    /// `texture_upload_bytes_per_frame`, whichever binds first bounds the
    /// frame.
    pub texture_upload_ms_per_frame: f64,
    /// Extra usages of loaded textures (`COPY_DST | TEXTURE_BINDING` are
    /// always set; add `COPY_SRC` to read them back).
    pub texture_usage: wgpu::TextureUsages,
    /// The background threads (default: a quarter of the cores, at least
    /// two, at a lower priority) that read, validate and decode texture
    /// files and inflate supercompressed levels: work that cannot be cut
    /// into pieces short enough for a frame.
    pub background: BackgroundConfig,
    /// Loads that wait for their read to start, at most (default 4096): a
    /// load beyond it fails at once with [`RuntimeError::QueueFull`](super::RuntimeError::QueueFull).
    pub max_queued_loads: usize,
    /// Bytes of buffer writes queued between two `end_frame`s, at most
    /// (default 32 MiB, a frame's staging): a write beyond it is
    /// [`RuntimeError::QueueFull`](super::RuntimeError::QueueFull) and queues nothing.
    pub max_queued_write_bytes: u64,
    /// Texture files read ahead of their upload at most (default 8): files
    /// being read plus files read and waiting for their upload. The bound
    /// on the memory that a burst of loads holds.
    pub read_ahead: usize,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            frames_in_flight: 3,
            threads: None,
            thread_pool: None,
            fence_timeout: Duration::from_secs(10),
            inline_below: SchedulerConfig::default().inline_below,
            staging: StagingConfig {
                buffer_size: 32 << 20,
                ..StagingConfig::default()
            },
            readback: ReadbackConfig::default(),
            pool: BufferPoolConfig::default(),
            texture_budget_bytes: 1 << 30,
            texture_upload_bytes_per_frame: 4 << 20,
            texture_upload_ms_per_frame: 1.0,
            texture_usage: wgpu::TextureUsages::empty(),
            background: BackgroundConfig::default(),
            read_ahead: 8,
            max_queued_loads: 4096,
            max_queued_write_bytes: 32 << 20,
        }
    }
}
