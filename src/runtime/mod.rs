//! [`Runtime`]: one object a renderer embeds, over its own `wgpu::Device` and
//! `wgpu::Queue`: the scheduler, the staging and readback rings, a buffer
//! pool, textures and virtual textures, each named by a generational handle.
//!
//! A frame, as a renderer drives it:
//!
//! 1. [`Runtime::begin_frame`] never blocks: it runs the callbacks of finished
//!    GPU work, retires the frames whose fence has passed (their freed pool
//!    ranges, textures and virtual textures are released then, never
//!    earlier), marks the textures whose upload has completed as ready, and
//!    delivers feedback read back from the GPU.
//! 2. Requests, in any number: [`load_texture_path`](Runtime::load_texture_path)
//!    and [`load_texture_bytes`](Runtime::load_texture_bytes),
//!    [`alloc_buffer`](Runtime::alloc_buffer) and
//!    [`write_buffer`](Runtime::write_buffer),
//!    [`push_vt_feedback`](Runtime::push_vt_feedback), and the frees.
//!    They only queue work: the render thread touches no file and decodes nothing.
//! 3. [`Runtime::end_frame`] declares the frame's job graph (a texture's
//!    images copied or decoded into staging memory by *texture upload* /
//!    *texture decode* jobs, within a per-frame budget of bytes and of
//!    work measured per texture; buffer writes are *buffer upload* jobs; the pool's
//!    plan is a *defrag* job; page faults are *page fault* jobs), runs it,
//!    then records into the embedder's encoder: the staging copies, the
//!    pool's defragmentation copies, the virtual textures' feedback copies.
//!    It ties the frame's fence to that encoder's submission
//!    (`on_submitted_work_done`), so a frame is retired once the GPU has
//!    finished the embedder's submission.
//!
//! Work that cannot be cut into pieces short enough for a frame runs on
//! [background threads](forgeflow_graph::Background) instead, across as
//! many frames as it takes: a texture file's read, its validation and a
//! PNG's decode (*texture read*), a supercompressed level's inflate
//! (*texture inflate*, the level and the small ones after it, while the
//! upload waits). A frame's graph runs on the calling thread when it is
//! small, on the worker threads otherwise (see
//! [`SchedulerConfig::inline_below`](forgeflow_graph::SchedulerConfig::inline_below)).
//!
//! Call `end_frame` before recording passes that use forgeflow's resources
//! in the same encoder (the uploads come first), then submit the encoder.
//! Virtual-texture feedback written by a frame's passes is copied by the
//! next `end_frame`, so it arrives one frame later than with a hand-driven
//! [`VirtualTexture`].
//!
//! Faults: a job that fails or panics fails its frame (reported in
//! [`FrameReport::failure`]; the textures loading in that frame fail, other
//! work goes ahead); a lost device makes every call return
//! [`RuntimeError::DeviceLost`]; wgpu's out-of-memory on a texture or a pool
//! block is [`RuntimeError::OutOfMemory`]; budgets give
//! [`RuntimeError::Budget`]. Files are read through a copy, never mapped, so
//! a file truncated or deleted meanwhile is an error, not a `SIGBUS`.
//!
//! ```no_run
//! # fn demo(device: wgpu::Device, queue: wgpu::Queue) -> Result<(), forgeflow::runtime::RuntimeError> {
//! use forgeflow::runtime::{Runtime, RuntimeConfig, TextureStatus};
//!
//! let mut rt = Runtime::new(&device, &queue, RuntimeConfig::default())?;
//! let albedo = rt.load_texture_path("albedo.ktx2");
//! let vertices = rt.alloc_buffer(4096, 16)?;
//! rt.write_buffer(vertices, 0, &[0u8; 4096])?;
//! loop {
//!     rt.begin_frame()?;
//!     let mut encoder = device.create_command_encoder(&Default::default());
//!     let report = rt.end_frame(&mut encoder)?;
//!     if let Some(failure) = &report.failure {
//!         eprintln!("{failure}");
//!     }
//!     if let Ok(TextureStatus::Ready(texture)) = rt.texture(albedo) {
//!         // ... passes that sample `texture` and read `rt.resolve_buffer(vertices)` ...
//!         # let _ = texture;
//!     }
//!     queue.submit([encoder.finish()]);
//! #   break;
//! }
//! # Ok(()) }
//! ```

mod error;
#[cfg(feature = "tracy")]
mod gpu_zones;
mod texture_cost;
mod vt_slot;

pub use error::RuntimeError;

use std::any::Any;
use std::collections::VecDeque;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use forgeflow_graph::{Background, BackgroundConfig, Frame, Scheduler, SchedulerConfig, Task};
use forgeflow_jobs::texture::file::TextureError;
use forgeflow_jobs::texture::source::TextureFile;
use forgeflow_jobs::vt::TileSource;
use slotmap::SlotMap;

use crate::pool::{BufferPool, BufferPoolConfig, PoolHandle, ResolvedBuffer};
use crate::staging::{ReadbackConfig, ReadbackRing, StagingConfig, StagingFrame, StagingRing};
use crate::texture::{InflatedLevels, TextureUpload, UploadOptions};
use crate::vt::{VirtualTexture, VtConfig, VtStats};
use forgeflow_jobs::alloc::DefragPlan;
use vt_slot::ErasedVt;

slotmap::new_key_type! {
    /// Names a texture of a [`Runtime`]; stale once freed.
    pub struct TextureHandle;
    /// Names a virtual texture of a [`Runtime`]; stale once removed.
    pub struct VtHandle;
}

/// How a [`Runtime`] is set up. Every field has a default that suits a
/// desktop renderer; start from `RuntimeConfig::default()`.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Frames whose GPU work may be outstanding (1..=8, default 3): the
    /// scheduler's fences and the staging ring's buffers.
    pub frames_in_flight: u32,
    /// Worker threads (`None`, the default: one per core).
    pub threads: Option<usize>,
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
    /// load beyond it fails at once with [`RuntimeError::QueueFull`].
    pub max_queued_loads: usize,
    /// Bytes of buffer writes queued between two `end_frame`s, at most
    /// (default 32 MiB, a frame's staging): a write beyond it is
    /// [`RuntimeError::QueueFull`] and queues nothing.
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

/// Where a texture is.
#[derive(Debug)]
pub enum TextureStatus<'a> {
    /// Its file is being read and validated, or it waits for the upload budget.
    Loading,
    /// Its upload was recorded; it is ready once that frame's fence passes.
    Uploading,
    /// Resident: sample it.
    Ready(&'a wgpu::Texture),
    /// The load failed; the handle stays until freed, so the error can be read.
    Failed(&'a RuntimeError),
}

/// What one [`Runtime::end_frame`] did.
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
    /// A job that failed or panicked (the frame's other work went ahead).
    pub failure: Option<RuntimeError>,
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
}

enum TextureSlot {
    /// Its read waits for a background thread, or runs on one.
    Reading,
    /// Read and validated; waiting for its upload to start.
    Queued(Arc<TextureFile>),
    /// Its pieces are being declared, a budget per frame.
    Streaming {
        bytes: u64,
    },
    Uploading {
        texture: wgpu::Texture,
        bytes: u64,
    },
    Ready {
        texture: wgpu::Texture,
        bytes: u64,
    },
    Failed(RuntimeError),
}

enum ReadSource {
    Path(PathBuf),
    Bytes(Vec<u8>),
}

/// A file read (and validated, and a PNG decoded) on a background thread.
type ReadTask = Task<Result<TextureFile, TextureError>>;

/// Levels of a supercompressed file inflated on a background thread.
type InflateTask = Task<Result<InflatedLevels, TextureError>>;

/// A texture whose upload is in progress, with the file its jobs read.
struct Streaming {
    handle: TextureHandle,
    file: Arc<TextureFile>,
    upload: TextureUpload,
    /// Whether this frame declared pieces of it.
    stepped: bool,
    /// The levels its next pieces need, being inflated.
    inflating: Option<InflateTask>,
    /// Staging bytes this frame declared for it.
    staged: u64,
    /// The measured work of one of its staged bytes (ns; 0 until measured).
    ns_per_byte: f64,
    /// Its format (`VkFormat`), whose cost it starts from.
    vk_format: u32,
}

/// Textures uploading at once at most: the per-frame budget goes to the
/// oldest first, so a texture completes before the next starts using it.
const MAX_STREAMING: usize = 4;

struct BufferWrite {
    handle: PoolHandle,
    offset: u64,
    bytes: Range<usize>,
    /// The frame's previous write to the same allocation.
    prev_same: Option<u32>,
}

/// A frame's buffer writes: their bytes in one arena, reused frame after
/// frame (no allocation once warm).
#[derive(Default)]
struct WriteQueue {
    writes: Vec<BufferWrite>,
    bytes: Vec<u8>,
    /// Per allocation, its newest write of the frame (an index in `writes`).
    last: std::collections::HashMap<PoolHandle, u32>,
}

impl WriteQueue {
    /// Queues `data` at `offset` of `handle`. Writes of one frame reach the
    /// GPU in no set order (small ones are scattered by a compute dispatch):
    /// where this write overlaps an earlier one of the frame, its bytes also
    /// go into the earlier one, so that whichever lands last, the newest
    /// bytes are there.
    fn push(&mut self, handle: PoolHandle, offset: u64, data: &[u8]) {
        let end = offset + data.len() as u64;
        let mut prev = self.last.get(&handle).copied();
        while let Some(i) = prev {
            let e = &self.writes[i as usize];
            let e_end = e.offset + e.bytes.len() as u64;
            let (lo, hi) = (e.offset.max(offset), e_end.min(end));
            if lo < hi {
                let dst = e.bytes.start + (lo - e.offset) as usize;
                let src = (lo - offset) as usize..(hi - offset) as usize;
                self.bytes[dst..dst + src.len()].copy_from_slice(&data[src]);
            }
            prev = e.prev_same;
        }
        let start = self.bytes.len();
        self.bytes.extend_from_slice(data);
        let index = self.writes.len() as u32;
        self.writes.push(BufferWrite {
            handle,
            offset,
            bytes: start..self.bytes.len(),
            prev_same: self.last.insert(handle, index),
        });
    }

    /// Empties the queue, keeping its capacity.
    fn clear(&mut self) {
        self.writes.clear();
        self.bytes.clear();
        self.last.clear();
    }
}

/// What waits for a frame's fence before it is dropped (held, never read).
#[allow(dead_code)]
enum Retired {
    Texture(wgpu::Texture),
    Vt(Box<dyn ErasedVt>),
}

/// A [`TextureBook`] of a runtime's fields.
macro_rules! book {
    ($rt:expr) => {
        TextureBook {
            textures: &mut $rt.textures,
            uploading: &mut $rt.uploading,
            retired: &mut $rt.retired,
            stats: &mut $rt.stats,
            active: &mut $rt.active,
        }
    };
}

/// The facade: see the [module documentation](self).
pub struct Runtime {
    device: wgpu::Device,
    config: RuntimeConfig,
    sched: Scheduler,
    staging: StagingRing,
    readback: ReadbackRing,
    pool: BufferPool,
    textures: SlotMap<TextureHandle, TextureSlot>,
    vts: SlotMap<VtHandle, Box<dyn ErasedVt>>,
    background: Background,
    /// Loads whose read has not started (at most `read_ahead` files are
    /// being read or wait for their upload).
    read_queue: VecDeque<(TextureHandle, ReadSource)>,
    /// Reads running on the background threads.
    reading: Vec<(TextureHandle, ReadTask)>,
    /// What happened to reads since the last `end_frame`, for its report.
    reads_done: (u32, u32),
    /// Moving means of the work a staged byte of texture costs (ns), over
    /// the textures uploaded: [a copy, a CPU decode]; 0 until measured. A
    /// texture's own cost replaces it once its first pieces have run.
    texture_costs: texture_cost::TextureCosts,
    upload_queue: VecDeque<TextureHandle>,
    /// Textures uploading, by the frame that recorded them (in frame order).
    uploading: VecDeque<(u64, TextureHandle)>,
    /// Buffer writes queued for the next `end_frame`.
    queued: WriteQueue,
    retired: VecDeque<(u64, Retired)>,
    /// Scratch kept between frames (taken and put back, so a frame of a
    /// known shape allocates nothing here).
    /// Textures whose pieces are being declared, frame after frame.
    active: Vec<Streaming>,
    lost: Arc<Mutex<Option<String>>>,
    frame_open: bool,
    stats: RuntimeStats,
    #[cfg(feature = "tracy")]
    gpu_zones: Option<gpu_zones::GpuZones>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("config", &self.config)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// A runtime over the embedder's device and queue. It sets the device's
    /// lost callback (to report [`RuntimeError::DeviceLost`]). With the
    /// `tracy` feature, a running Tracy client and a device with
    /// `TIMESTAMP_QUERY | TIMESTAMP_QUERY_INSIDE_ENCODERS`, each frame's
    /// uploads and defragmentation also show as Tracy GPU zones.
    pub fn new(
        device: &wgpu::Device,
        _queue: &wgpu::Queue,
        config: RuntimeConfig,
    ) -> Result<Self, RuntimeError> {
        let sched = Scheduler::new(SchedulerConfig {
            frames_in_flight: config.frames_in_flight,
            threads: config.threads,
            fence_timeout: config.fence_timeout,
            inline_below: config.inline_below,
            ..SchedulerConfig::default()
        })?;
        let staging = StagingRing::new(
            device,
            StagingConfig {
                buffers: config.frames_in_flight,
                ..config.staging.clone()
            },
        )?;
        let readback = ReadbackRing::new(device, config.readback.clone())?;
        let pool = BufferPool::new(device, config.pool.clone())?;
        let background = Background::new(config.background.clone())?;
        if config.read_ahead == 0 {
            return Err(RuntimeError::InvalidConfig(
                "read_ahead is 0: no texture could ever be read; 8 suits most renderers".into(),
            ));
        }
        let lost = Arc::new(Mutex::new(None));
        let flag = Arc::clone(&lost);
        device.set_device_lost_callback(move |reason, message| {
            *flag.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(format!("{reason:?}: {message}"));
        });
        Ok(Runtime {
            device: device.clone(),
            config,
            sched,
            staging,
            readback,
            pool,
            textures: SlotMap::with_key(),
            vts: SlotMap::with_key(),
            background,
            read_queue: VecDeque::new(),
            reading: Vec::new(),
            reads_done: (0, 0),
            texture_costs: texture_cost::TextureCosts::default(),
            upload_queue: VecDeque::new(),
            uploading: VecDeque::new(),
            queued: WriteQueue::default(),
            retired: VecDeque::new(),
            active: Vec::new(),
            lost,
            frame_open: false,
            stats: RuntimeStats::default(),
            #[cfg(feature = "tracy")]
            gpu_zones: gpu_zones::GpuZones::new(device, _queue),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// `Err(DeviceLost)` once the device is lost.
    fn check_device(&self) -> Result<(), RuntimeError> {
        match &*self.lost.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(why) => Err(RuntimeError::DeviceLost(why.clone())),
            None => Ok(()),
        }
    }

    /// The index of the frame the next `end_frame` records: the last frame
    /// that may use what is freed now.
    fn current_frame(&self) -> u64 {
        self.sched.next_frame().0
    }

    /// Starts a frame (see the [module documentation](self)). Never blocks.
    pub fn begin_frame(&mut self) -> Result<(), RuntimeError> {
        self.check_device()?;
        if self.frame_open {
            return Err(RuntimeError::FrameOrder(
                "begin_frame called twice without end_frame",
            ));
        }
        // The gauges as the last frame left them.
        #[cfg(feature = "tracy")]
        self.plot();
        // Runs the callbacks of finished submissions: fences, mappings, readbacks.
        self.readback.poll();
        self.sched.retire();
        let retired_below = self.sched.next_frame().0 - self.sched.frames_in_flight();
        if retired_below > 0 {
            let completed = retired_below - 1;
            self.pool.retire(completed);
            while self.retired.front().is_some_and(|(f, _)| *f <= completed) {
                self.retired.pop_front();
            }
            while let Some(&(f, h)) = self.uploading.front() {
                if f > completed {
                    break;
                }
                self.uploading.pop_front();
                if let Some(slot) = self.textures.get_mut(h) {
                    if let TextureSlot::Uploading { texture, bytes } =
                        std::mem::replace(slot, TextureSlot::Reading)
                    {
                        *slot = TextureSlot::Ready { texture, bytes };
                        self.stats.textures_ready += 1;
                    }
                }
            }
        }
        self.pump_reads();
        self.frame_open = true;
        Ok(())
    }

    /// Picks up the reads that finished on the background threads and
    /// starts queued ones while fewer than `read_ahead` files are being read
    /// or wait for their upload. Never blocks.
    fn pump_reads(&mut self) {
        let (textures, upload_queue) = (&mut self.textures, &mut self.upload_queue);
        let (stats, done) = (&mut self.stats, &mut self.reads_done);
        self.reading.retain(|(handle, task)| {
            let Some(result) = task.try_take() else {
                return true;
            };
            let Some(slot) = textures.get_mut(*handle) else {
                return false; // freed meanwhile
            };
            done.0 += 1;
            *slot = match result {
                Ok(Ok(file)) => {
                    upload_queue.push_back(*handle);
                    TextureSlot::Queued(Arc::new(file))
                }
                Ok(Err(e)) => {
                    done.1 += 1;
                    stats.textures_failed += 1;
                    TextureSlot::Failed(e.into())
                }
                Err(panic) => {
                    done.1 += 1;
                    stats.textures_failed += 1;
                    TextureSlot::Failed(RuntimeError::Texture(panic.to_string()))
                }
            };
            false
        });
        while self.reading.len() + self.upload_queue.len() < self.config.read_ahead {
            let Some((handle, source)) = self.read_queue.pop_front() else {
                break;
            };
            if !self.textures.contains_key(handle) {
                continue; // freed before its read started
            }
            let task = self.background.spawn("texture read", move || {
                // Read through a copy, never mapped: a file truncated or
                // deleted meanwhile is an error here, not a SIGBUS later.
                let bytes = match source {
                    ReadSource::Path(p) => std::fs::read(&p).map_err(|e| {
                        TextureError::Io(std::io::Error::new(
                            e.kind(),
                            format!("{}: {e}", p.display()),
                        ))
                    }),
                    ReadSource::Bytes(b) => Ok(b),
                };
                bytes.and_then(TextureFile::from_bytes)
            });
            self.reading.push((handle, task));
        }
    }

    /// Queues the load of a texture file (KTX2, KTX 1, DDS or PNG): a
    /// background thread reads and validates it (and decodes a PNG), and
    /// the frames after that upload it. Errors (a missing, truncated or
    /// invalid file; more than `max_queued_loads` loads waiting) arrive in
    /// [`texture`](Self::texture) as [`TextureStatus::Failed`].
    pub fn load_texture_path(&mut self, path: impl Into<PathBuf>) -> TextureHandle {
        self.queue_read(ReadSource::Path(path.into()))
    }

    /// Queues the load of a texture file already in memory (see
    /// [`load_texture_path`](Self::load_texture_path)).
    pub fn load_texture_bytes(&mut self, bytes: Vec<u8>) -> TextureHandle {
        self.queue_read(ReadSource::Bytes(bytes))
    }

    fn queue_read(&mut self, source: ReadSource) -> TextureHandle {
        self.pump_reads();
        if self.read_queue.len() >= self.config.max_queued_loads {
            self.stats.textures_failed += 1;
            return self
                .textures
                .insert(TextureSlot::Failed(RuntimeError::QueueFull {
                    what: "texture loads waiting for their read",
                    limit: self.config.max_queued_loads as u64,
                    unit: "loads",
                }));
        }
        let handle = self.textures.insert(TextureSlot::Reading);
        self.read_queue.push_back((handle, source));
        self.pump_reads();
        handle
    }

    /// Where a texture is.
    pub fn texture(&self, handle: TextureHandle) -> Result<TextureStatus<'_>, RuntimeError> {
        match self.textures.get(handle) {
            None => Err(RuntimeError::StaleHandle("texture")),
            Some(TextureSlot::Reading | TextureSlot::Queued(_)) => Ok(TextureStatus::Loading),
            Some(TextureSlot::Streaming { .. } | TextureSlot::Uploading { .. }) => {
                Ok(TextureStatus::Uploading)
            }
            Some(TextureSlot::Ready { texture, .. }) => Ok(TextureStatus::Ready(texture)),
            Some(TextureSlot::Failed(e)) => Ok(TextureStatus::Failed(e)),
        }
    }

    /// Frees a texture: the handle is stale at once, the GPU texture is
    /// dropped once the fence of the current frame has passed. A load still
    /// queued is abandoned.
    pub fn free_texture(&mut self, handle: TextureHandle) -> Result<(), RuntimeError> {
        let slot = self
            .textures
            .remove(handle)
            .ok_or(RuntimeError::StaleHandle("texture"))?;
        let frame = self.current_frame();
        match slot {
            TextureSlot::Uploading { texture, bytes } | TextureSlot::Ready { texture, bytes } => {
                self.stats.texture_bytes -= bytes;
                self.retired.push_back((frame, Retired::Texture(texture)));
            }
            // The texture itself leaves with its upload, at the next end_frame.
            TextureSlot::Streaming { bytes } => self.stats.texture_bytes -= bytes,
            _ => {}
        }
        Ok(())
    }

    /// Allocates `size` bytes at `align` in the buffer pool.
    pub fn alloc_buffer(&mut self, size: u64, align: u64) -> Result<PoolHandle, RuntimeError> {
        self.check_device()?;
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let result = self.pool.alloc(size, align);
        if let Some(e) = pollster::block_on(scope.pop()) {
            // The block the pool just made has no memory behind it.
            if let Ok(h) = result {
                let _ = self.pool.free(h, self.current_frame());
            }
            return Err(RuntimeError::OutOfMemory(e.to_string()));
        }
        Ok(result?)
    }

    /// Queues a write of `data` at `offset` into an allocation; the copy is
    /// recorded by the next `end_frame` (data and offset: multiples of 4).
    /// Writes of one frame to the same bytes: the last one wins. More than
    /// `max_queued_write_bytes` in one frame is [`RuntimeError::QueueFull`].
    pub fn write_buffer(
        &mut self,
        handle: PoolHandle,
        offset: u64,
        data: &[u8],
    ) -> Result<(), RuntimeError> {
        let r = self.pool.resolve(handle)?;
        let end = offset.checked_add(data.len() as u64);
        if end.is_none_or(|e| e > r.size)
            || !offset.is_multiple_of(4)
            || !data.len().is_multiple_of(4)
        {
            return Err(RuntimeError::Staging(format!(
                "a write of {} bytes at offset {offset} does not fit an allocation of {} bytes \
                 (offset and length must be multiples of 4)",
                data.len(),
                r.size
            )));
        }
        if data.is_empty() {
            return Ok(());
        }
        let limit = self.config.max_queued_write_bytes;
        if self.queued.bytes.len() as u64 + data.len() as u64 > limit {
            return Err(RuntimeError::QueueFull {
                what: "buffer writes of this frame",
                limit,
                unit: "bytes",
            });
        }
        self.queued.push(handle, offset, data);
        Ok(())
    }

    /// Where an allocation is this frame (it may move between frames).
    pub fn resolve_buffer(&self, handle: PoolHandle) -> Result<ResolvedBuffer<'_>, RuntimeError> {
        Ok(self.pool.resolve(handle)?)
    }

    /// Frees an allocation: the handle is stale at once, the range is reused
    /// after the current frame's fence. Writes still queued for it are dropped.
    pub fn free_buffer(&mut self, handle: PoolHandle) -> Result<(), RuntimeError> {
        let frame = self.current_frame();
        Ok(self.pool.free(handle, frame)?)
    }

    /// Pins (or unpins) an allocation: defragmentation never moves it.
    pub fn pin_buffer(&mut self, handle: PoolHandle, pinned: bool) -> Result<(), RuntimeError> {
        Ok(self.pool.set_pinned(handle, pinned)?)
    }

    /// The buffer pool (statistics, fragmentation).
    pub fn pool(&self) -> &BufferPool {
        &self.pool
    }

    /// Adds a virtual texture streamed from `source` (see
    /// [`VirtualTexture::new`]); its page faults run in every frame's graph.
    pub fn add_virtual_texture<S: TileSource + 'static>(
        &mut self,
        source: S,
        config: VtConfig,
        screen: (u32, u32),
    ) -> Result<VtHandle, RuntimeError> {
        self.check_device()?;
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let vt = VirtualTexture::new(&self.device, source, config, screen);
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(RuntimeError::OutOfMemory(e.to_string()));
        }
        Ok(self.vts.insert(Box::new(vt?)))
    }

    /// A virtual texture, for its bind group, layout and statistics. `S` is
    /// the tile source it was added with.
    pub fn virtual_texture<S: TileSource + 'static>(
        &self,
        handle: VtHandle,
    ) -> Result<&VirtualTexture<S>, RuntimeError> {
        let vt = self
            .vts
            .get(handle)
            .ok_or(RuntimeError::StaleHandle("virtual texture"))?;
        let any: &dyn Any = vt.as_any();
        any.downcast_ref().ok_or(RuntimeError::StaleHandle(
            "virtual texture (of another source type)",
        ))
    }

    /// A virtual texture's bind group (whatever its source type).
    pub fn vt_bind_group(&self, handle: VtHandle) -> Result<&wgpu::BindGroup, RuntimeError> {
        Ok(self
            .vts
            .get(handle)
            .ok_or(RuntimeError::StaleHandle("virtual texture"))?
            .bind_group())
    }

    /// A virtual texture's statistics (whatever its source type).
    pub fn vt_stats(&self, handle: VtHandle) -> Result<&VtStats, RuntimeError> {
        Ok(self
            .vts
            .get(handle)
            .ok_or(RuntimeError::StaleHandle("virtual texture"))?
            .stats())
    }

    /// Feedback words the renderer read back itself, for this frame's page
    /// faults: call it between `begin_frame` (which delivers the feedback
    /// the runtime read back, replacing older words) and `end_frame`.
    pub fn push_vt_feedback(&self, handle: VtHandle, words: Vec<u32>) -> Result<(), RuntimeError> {
        self.vts
            .get(handle)
            .ok_or(RuntimeError::StaleHandle("virtual texture"))?
            .push_feedback(words);
        Ok(())
    }

    /// Removes a virtual texture; its GPU objects are dropped once the
    /// current frame's fence has passed.
    pub fn remove_virtual_texture(&mut self, handle: VtHandle) -> Result<(), RuntimeError> {
        let vt = self
            .vts
            .remove(handle)
            .ok_or(RuntimeError::StaleHandle("virtual texture"))?;
        let frame = self.current_frame();
        self.retired.push_back((frame, Retired::Vt(vt)));
        Ok(())
    }

    /// Counters and gauges.
    pub fn stats(&self) -> RuntimeStats {
        RuntimeStats {
            textures_live: self.textures.len(),
            ..self.stats.clone()
        }
    }

    /// GPU bytes the runtime holds now: staging buffers, pool blocks,
    /// textures and virtual textures (readback buffers are small and not counted).
    pub fn gpu_bytes(&self) -> u64 {
        self.staging.staging_bytes()
            + self.pool.block_bytes()
            + self.stats.texture_bytes
            + self.vts.values().map(|v| v.stats().gpu_bytes).sum::<u64>()
    }

    /// Whether each frame's uploads and defragmentation show as Tracy GPU
    /// zones (a Tracy client runs and the device has timestamp queries
    /// inside encoders).
    #[cfg(feature = "tracy")]
    pub fn tracy_gpu_zones(&self) -> bool {
        self.gpu_zones.is_some()
    }

    /// The staging ring (statistics).
    pub fn staging(&self) -> &StagingRing {
        &self.staging
    }

    /// The scheduler (statistics, the worker pool).
    pub fn scheduler(&self) -> &Scheduler {
        &self.sched
    }

    /// The background threads (statistics).
    pub fn background(&self) -> &Background {
        &self.background
    }

    /// Waits (up to `timeout`) until every frame's GPU work has finished and
    /// runs all deferred releases: before dropping the runtime, or to quiesce.
    pub fn wait_idle(&mut self, timeout: Duration) -> Result<(), RuntimeError> {
        self.check_device()?;
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| RuntimeError::DeviceLost(e.to_string()))?;
        self.sched.wait_idle(timeout)?;
        self.pool.retire(self.current_frame());
        self.retired.clear();
        Ok(())
    }

    /// Ends the frame: runs its job graph and records its copies into
    /// `encoder` (see the [module documentation](self)). Submit `encoder`
    /// afterwards: the frame's fence signals when that submission completes.
    ///
    /// `Err` means nothing was recorded. Reads and buffer writes wait for
    /// the next frame; a texture whose upload had pieces in this frame fails
    /// (its pieces never reach the GPU). After [`RuntimeError::DeviceLost`]
    /// nothing more can be done with the runtime.
    pub fn end_frame(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
    ) -> Result<FrameReport, RuntimeError> {
        if !self.frame_open {
            return Err(RuntimeError::FrameOrder("end_frame without begin_frame"));
        }
        self.frame_open = false;
        self.check_device()?;
        self.pump_reads();
        let (textures_read, textures_failed) = std::mem::take(&mut self.reads_done);
        let mut report = FrameReport {
            textures_read,
            textures_failed,
            ..FrameReport::default()
        };
        self.start_uploads(&mut report);
        self.collect_inflates(&mut report);

        let mut active = std::mem::take(&mut self.active);
        let queued = std::mem::take(&mut self.queued);
        let mut defrag_plan = None;
        let begun = match self.staging.begin_frame() {
            Ok(staging) => match self.sched.begin_frame() {
                Ok(frame) => Ok((staging, frame)),
                Err(e) => Err(RuntimeError::from(e)),
            },
            Err(e) => Err(e.into()),
        };
        let (staging, mut frame) = match begun {
            Ok(begun) => begun,
            Err(e) => {
                self.active = active;
                self.queued = queued;
                return Err(e);
            }
        };
        let index = frame.index().0;
        let fence = frame.fence();
        report.frame = index;
        let declared = declare_jobs(
            &mut frame,
            &staging,
            Declared {
                active: &mut active,
                writes: &queued,
            },
            TextureBudget {
                bytes: self.config.texture_upload_bytes_per_frame,
                ns: self.config.texture_upload_ms_per_frame * 1e6,
                costs: &self.texture_costs,
            },
            (&mut self.pool, &mut defrag_plan),
            &mut self.vts,
            &mut report,
        );
        if let Err(e) = declared {
            // Nothing reaches the GPU: the frame's jobs are dropped unrun and
            // its fence signalled now.
            drop(frame);
            drop(staging);
            fence.signal();
            book!(self).finish_uploads(active, index, Some(&e), &mut report);
            self.queued = queued;
            return Err(e);
        }
        report.jobs = frame.len() as u32;
        let run = frame.run();
        if let Err(e) = &run {
            report.failure = Some(RuntimeError::Frame(e.to_string()));
            self.stats.failed_frames += 1;
        }
        measure_texture_cost(&mut active, &mut self.texture_costs);
        self.stats.buffer_writes += report.buffer_writes as u64;
        self.stats.buffer_write_bytes += queued.bytes.len() as u64;

        // Tiles whose page-fault job failed leave the page table again.
        for vt in self.vts.values_mut() {
            if let Err(e) = vt.settle_faults(&staging) {
                report.failure.get_or_insert(e.into());
            }
        }
        let failure = report.failure.clone();
        book!(self).finish_uploads(active, index, failure.as_ref(), &mut report);
        // Uploads that reached a level not inflated yet: a background thread
        // inflates it while the next frames go on.
        for s in &mut self.active {
            spawn_inflate(&self.background, s);
        }
        report.staging_bytes = staging.bytes();
        // Uploads first: a write to an allocation that defragmentation moves
        // this frame lands in its old place and is copied with it.
        #[cfg(feature = "tracy")]
        let zone = self.gpu_zones.as_mut().map(|z| z.begin(encoder));
        staging.finish(encoder);
        #[cfg(feature = "tracy")]
        if let (Some(z), Some(slot)) = (&self.gpu_zones, zone) {
            z.mark(encoder, slot, 1);
        }
        let plan = defrag_plan.take().unwrap_or_default();
        let ticket = self.pool.record_defrag(plan, encoder);
        report.defrag_moves = ticket.moves() as u32;
        self.pool.commit(ticket, index);
        let mut rb = self.readback.begin_frame();
        #[cfg(feature = "tracy")]
        if let (Some(z), Some(slot)) = (&self.gpu_zones, zone) {
            z.mark(encoder, slot, 2);
            z.finish(encoder, slot, &mut rb);
        }
        for vt in self.vts.values_mut() {
            vt.end_frame(encoder, &mut rb);
        }
        rb.finish(encoder);
        encoder.on_submitted_work_done(move || fence.signal());

        // The list goes back, empty, for the next frame (no allocation once warm).
        let mut queued = queued;
        queued.clear();
        self.queued = queued;
        self.stats.frames += 1;
        Ok(report)
    }

    /// Starts the uploads of queued textures while fewer than
    /// `MAX_STREAMING` are in progress: creates each texture (an error scope
    /// catches wgpu's out-of-memory) within the texture budget.
    fn start_uploads(&mut self, report: &mut FrameReport) {
        let options = UploadOptions {
            force_fallback: false,
            usage: self.config.texture_usage,
        };
        while self.active.len() < MAX_STREAMING {
            let Some(h) = self.upload_queue.pop_front() else {
                break;
            };
            let Some(slot) = self.textures.get_mut(h) else {
                continue; // freed while queued
            };
            let TextureSlot::Queued(file) = std::mem::replace(slot, TextureSlot::Reading) else {
                continue;
            };
            let scope = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
            let upload = TextureUpload::new(&self.device, &*file, options);
            let upload = upload.map(|mut u| {
                u.set_inflate_in_frame(false);
                u
            });
            let oom = pollster::block_on(scope.pop());
            let in_use = self.stats.texture_bytes;
            let started = match (upload, oom) {
                (_, Some(e)) => Err(RuntimeError::OutOfMemory(e.to_string())),
                (Err(e), None) => Err(e.into()),
                (Ok(u), None) if in_use + u.gpu_bytes() > self.config.texture_budget_bytes => {
                    Err(RuntimeError::Budget {
                        what: "texture",
                        requested: u.gpu_bytes(),
                        in_use,
                        budget: self.config.texture_budget_bytes,
                    })
                }
                (Ok(u), None) => Ok(u),
            };
            match started {
                Ok(upload) => {
                    let vk_format =
                        forgeflow_jobs::texture::source::TextureSource::desc(&*file).vk_format;
                    self.stats.texture_bytes += upload.gpu_bytes();
                    *slot = TextureSlot::Streaming {
                        bytes: upload.gpu_bytes(),
                    };
                    let mut streaming = Streaming {
                        handle: h,
                        file,
                        upload,
                        stepped: false,
                        inflating: None,
                        staged: 0,
                        ns_per_byte: 0.0,
                        vk_format,
                    };
                    spawn_inflate(&self.background, &mut streaming);
                    self.active.push(streaming);
                }
                Err(e) => {
                    report.textures_failed += 1;
                    self.stats.textures_failed += 1;
                    *slot = TextureSlot::Failed(e);
                }
            }
        }
    }

    /// Hands the levels inflated on the background threads to their
    /// uploads; an upload whose inflate failed fails its texture.
    fn collect_inflates(&mut self, report: &mut FrameReport) {
        let frame = self.current_frame();
        let mut book = book!(self);
        let mut active = std::mem::take(book.active);
        active.retain_mut(|s| {
            let Some(result) = s.inflating.as_ref().and_then(|t| t.try_take()) else {
                return true;
            };
            s.inflating = None;
            let provided = match result {
                Ok(Ok(levels)) => s.upload.provide_levels(levels).map_err(RuntimeError::from),
                Ok(Err(e)) => Err(e.into()),
                Err(panic) => Err(RuntimeError::Texture(panic.to_string())),
            };
            match provided {
                Ok(()) => true,
                Err(e) => {
                    book.fail(s, frame, e, report);
                    false
                }
            }
        });
        *book.active = active;
    }

    /// Tracy plots of the runtime's gauges.
    #[cfg(feature = "tracy")]
    fn plot(&self) {
        let Some(client) = tracy_client::Client::running() else {
            return;
        };
        client.plot(
            tracy_client::plot_name!("forgeflow staging bytes in use"),
            self.staging.stats().bytes_last_frame as f64,
        );
        client.plot(
            tracy_client::plot_name!("forgeflow pool fragmentation pct"),
            self.pool.allocator().fragmentation() * 100.0,
        );
        client.plot(
            tracy_client::plot_name!("forgeflow pool block bytes"),
            self.pool.block_bytes() as f64,
        );
        client.plot(
            tracy_client::plot_name!("forgeflow texture bytes"),
            self.stats.texture_bytes as f64,
        );
        let (resident, bias) = self.vts.values().fold((0usize, 0f32), |(r, b), v| {
            (r + v.stats().resident, b.max(v.stats().bias))
        });
        client.plot(
            tracy_client::plot_name!("forgeflow resident tiles"),
            resident as f64,
        );
        client.plot(tracy_client::plot_name!("forgeflow mip bias"), bias as f64);
    }
}

/// After a frame has run: each streaming texture's cost per staged byte
/// from its jobs' time, and the cost of its format that a texture of the
/// same format starts from.
fn measure_texture_cost(active: &mut [Streaming], costs: &mut texture_cost::TextureCosts) {
    for s in active {
        let work = s.upload.take_work();
        let staged = std::mem::take(&mut s.staged);
        if staged == 0 {
            continue;
        }
        let ns = work.as_nanos() as f64;
        texture_cost::fold(&mut s.ns_per_byte, ns / staged as f64, 0.5);
        costs.record(s.upload.native(), s.vk_format, ns, staged);
    }
}

/// Starts inflating the levels an upload's next pieces need, on a
/// background thread, unless that is under way.
fn spawn_inflate(background: &Background, s: &mut Streaming) {
    if s.inflating.is_some() {
        return;
    }
    if let Some(level) = s.upload.level_needed() {
        let file = Arc::clone(&s.file);
        s.inflating = Some(background.spawn("texture inflate", move || {
            TextureUpload::inflate_levels(&*file, level)
        }));
    }
}

/// The runtime's texture bookkeeping, borrowed apart from the rings (which
/// a frame holds meanwhile).
struct TextureBook<'a> {
    textures: &'a mut SlotMap<TextureHandle, TextureSlot>,
    uploading: &'a mut VecDeque<(u64, TextureHandle)>,
    retired: &'a mut VecDeque<(u64, Retired)>,
    stats: &'a mut RuntimeStats,
    active: &'a mut Vec<Streaming>,
}

impl TextureBook<'_> {
    /// Fails a streaming texture (already taken out of `active`): its
    /// bytes are returned and its texture dropped after frame `index`.
    fn fail(&mut self, s: &Streaming, index: u64, error: RuntimeError, report: &mut FrameReport) {
        let texture = s.upload.texture().clone();
        self.retired.push_back((index, Retired::Texture(texture)));
        let Some(slot) = self.textures.get_mut(s.handle) else {
            return; // freed meanwhile (its bytes were returned then)
        };
        report.textures_failed += 1;
        self.stats.textures_failed += 1;
        self.stats.texture_bytes -= s.upload.gpu_bytes();
        *slot = TextureSlot::Failed(error);
    }

    /// After the frame's jobs: uploads whose last piece was declared are
    /// recorded (ready when frame `index` retires); with `failure`, those
    /// that had pieces in this frame fail. The others stay in progress.
    fn finish_uploads(
        mut self,
        mut active: Vec<Streaming>,
        index: u64,
        failure: Option<&RuntimeError>,
        report: &mut FrameReport,
    ) {
        active.retain_mut(|s| {
            let stepped = std::mem::take(&mut s.stepped);
            let Some(slot) = self.textures.get_mut(s.handle) else {
                // Freed while streaming (its bytes were returned then).
                let texture = s.upload.texture().clone();
                self.retired.push_back((index, Retired::Texture(texture)));
                return false;
            };
            let bytes = s.upload.gpu_bytes();
            if let (Some(f), true) = (failure, stepped) {
                self.fail(s, index, f.clone(), report);
                return false;
            }
            if !s.upload.is_done() {
                return true;
            }
            report.textures_uploaded += 1;
            self.uploading.push_back((index, s.handle));
            *slot = TextureSlot::Uploading {
                texture: s.upload.texture().clone(),
                bytes,
            };
            false
        });
        *self.active = active;
    }
}

/// How much texture work a frame may declare.
struct TextureBudget<'a> {
    /// Staging bytes.
    bytes: u64,
    /// Work (ns), from the measured costs.
    ns: f64,
    /// Measured costs of a staged byte per format, for a texture not
    /// measured itself yet.
    costs: &'a texture_cost::TextureCosts,
}

/// The frame's request lists, borrowed by its jobs.
struct Declared<'s> {
    active: &'s mut [Streaming],
    writes: &'s WriteQueue,
}

/// Declares the frame's jobs: the next pieces of the textures uploading (within `texture_budget` staging bytes), buffer
/// writes, the pool's defragmentation plan, page faults.
#[allow(clippy::too_many_arguments)]
fn declare_jobs<'s>(
    frame: &mut Frame<'s>,
    staging: &'s StagingFrame<'_>,
    requests: Declared<'s>,
    texture_budget: TextureBudget<'_>,
    (pool, defrag_plan): (&'s mut BufferPool, &'s mut Option<DefragPlan>),
    vts: &mut SlotMap<VtHandle, Box<dyn ErasedVt>>,
    report: &mut FrameReport,
) -> Result<(), RuntimeError> {
    let TextureBudget {
        bytes: byte_budget,
        ns: ns_budget,
        costs,
    } = texture_budget;
    let (mut used, mut spent) = (0u64, 0f64);
    for s in requests.active.iter_mut() {
        if used >= byte_budget || spent >= ns_budget {
            break;
        }
        let Streaming {
            file,
            upload,
            stepped,
            staged,
            ns_per_byte: own_cost,
            vk_format,
            ..
        } = s;
        let file: &'s TextureFile = file;
        let budget = texture_cost::step_budget(
            *own_cost,
            costs.get(upload.native(), *vk_format),
            byte_budget - used,
            ns_budget - spent,
        );
        let before = staging.bytes();
        upload.step(file, staging, frame, budget.bytes)?;
        let bytes = staging.bytes() - before;
        used += bytes;
        spent = match budget.ns_per_byte {
            Some(c) => spent + bytes as f64 * c,
            None => ns_budget,
        };
        *staged = bytes;
        *stepped = bytes > 0;
    }
    for w in &requests.writes.writes {
        let Ok(r) = pool.resolve(w.handle) else {
            report.buffer_writes_stale += 1; // freed since
            continue;
        };
        let mut piece =
            staging.write_buffer(r.buffer, r.offset + w.offset, w.bytes.len() as u64)?;
        let src = &requests.writes.bytes[w.bytes.clone()];
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

impl Drop for Runtime {
    fn drop(&mut self) {
        // Retire work that is only drops needs no GPU; waiting here could hang
        // on a lost device, so the GPU objects are simply dropped (wgpu keeps
        // what in-flight work uses alive).
        self.retired.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use forgeflow_test_support::SplitMix64;

    /// Whatever order the GPU applies a frame's writes in, the buffer ends
    /// with the newest bytes: every queued write agrees, over its range,
    /// with the last writes (the GPU test cannot show this on lavapipe,
    /// which happens to apply them in order).
    #[test]
    fn every_queued_write_holds_the_newest_bytes_of_its_range() {
        let mut rng = SplitMix64::new(3);
        let handles: Vec<PoolHandle> = {
            let mut keys = slotmap::SlotMap::<PoolHandle, ()>::with_key();
            (0..3).map(|_| keys.insert(())).collect()
        };
        let mut q = WriteQueue::default();
        for round in 0..20 {
            let mut shadow = vec![vec![0u8; 4096]; handles.len()];
            for _ in 0..40 {
                let h = rng.below(handles.len() as u64) as usize;
                let a = 4 * rng.below(1000) as usize;
                let b = (a + 4 * (1 + rng.below(200)) as usize).min(4096);
                let data: Vec<u8> = (a..b).map(|_| rng.next_u64() as u8).collect();
                q.push(handles[h], a as u64, &data);
                shadow[h][a..b].copy_from_slice(&data);
            }
            for w in &q.writes {
                let h = handles.iter().position(|&k| k == w.handle).unwrap();
                let at = w.offset as usize;
                let want = &shadow[h][at..at + w.bytes.len()];
                assert!(
                    q.bytes[w.bytes.clone()] == *want,
                    "round {round}: a queued write holds older bytes than a later overlapping one"
                );
            }
            assert_eq!(q.writes.len(), 40);
            q.clear();
        }
    }
}
