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
//!
//! **Skipping a frame.** A renderer that cannot present (the surface is
//! lost or outdated, the window is minimised) drops the encoder, or the
//! command buffer it finished into, instead of submitting it: nothing else
//! to call. The runtime notices the drop (wgpu drops the callbacks
//! `end_frame` registered on the encoder), signals the frame's fence at once
//! so no later frame waits for it, and the next `begin_frame` does the
//! frame's work again: its buffer writes are queued again ahead of newer
//! ones, its defragmentation copies are recorded again first in the next
//! encoder, its textures' uploads start again, its virtual-texture tiles
//! leave the page table and fault again, its readbacks are answered
//! [`StagingError::Abandoned`].
//! The next [`FrameReport`] lists the frame in `abandoned_frames` with what
//! was done again. Drop the encoder before the next `begin_frame`: one kept
//! unsubmitted holds its frame (and its staging buffer) until it is dropped.
//! Virtual-texture feedback written by a frame's passes is copied by the
//! next `end_frame`, so it arrives one frame later than with a hand-driven
//! [`VirtualTexture`].
//!
//! Faults: a job that fails or panics fails its frame (reported in
//! [`FrameReport::failure`]; a texture fails when one of its own jobs did,
//! other work goes ahead); a lost device makes every call return
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

mod config;
mod declare;
mod device_loss;
mod error;
#[cfg(feature = "tracy")]
mod gpu_zones;
mod in_flight;
mod report;
mod texture_cost;
mod textures;
mod vt_slot;
mod write_queue;

pub use config::RuntimeConfig;
pub use device_loss::DeviceLoss;
pub use error::RuntimeError;
pub use report::{FrameReport, RuntimeStats};
pub use textures::{ReadyTexture, TextureInput, TextureOptions, TextureStatus};

use std::any::Any;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use forgeflow_graph::{Background, Scheduler, SchedulerConfig};
use forgeflow_jobs::vt::TileSource;
use slotmap::SlotMap;

use crate::pool::{BufferPool, PoolHandle, ResolvedBuffer};
use crate::staging::{ReadbackRing, StagingConfig, StagingError, StagingRing};
use crate::submit::Unsubmitted;
use crate::vt::{VirtualTexture, VtConfig, VtStats};
use declare::{declare_jobs, FrameWork};
use in_flight::InFlight;
use textures::{FrameFault, ReadSource, TextureBudget, TextureStreaming};
use vt_slot::ErasedVt;
use write_queue::WriteQueue;

slotmap::new_key_type! {
    /// Names a texture of a [`Runtime`]; stale once freed.
    pub struct TextureHandle;
    /// Names a virtual texture of a [`Runtime`]; stale once removed.
    pub struct VtHandle;
}

/// The facade: see the [module documentation](self).
pub struct Runtime {
    device: wgpu::Device,
    config: RuntimeConfig,
    sched: Scheduler,
    staging: StagingRing,
    readback: ReadbackRing,
    pool: BufferPool,
    textures: TextureStreaming,
    vts: SlotMap<VtHandle, Box<dyn ErasedVt>>,
    /// Removed virtual textures, dropped once the frame's fence has passed.
    retired_vts: VecDeque<(u64, Box<dyn ErasedVt>)>,
    background: Background,
    /// Buffer writes queued for the next `end_frame`.
    queued: WriteQueue,
    /// The frames recorded and not yet retired: what to do again if one's
    /// encoder is dropped unsubmitted.
    in_flight: InFlight,
    /// Abandoned frames found since the last `end_frame`, and what was done
    /// again, for its report.
    abandoned: FrameReport,
    /// The newest frame known to have finished on the GPU.
    completed: Option<u64>,
    lost: DeviceLoss,
    frame_open: bool,
    stats: RuntimeStats,
    #[cfg(feature = "tracy")]
    gpu_zones: Option<gpu_zones::GpuZones>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// A runtime over the embedder's device and queue. It leaves the
    /// device's lost callback to the application, which forwards a loss to
    /// [`device_loss`](Self::device_loss). With the
    /// `tracy` feature, a running Tracy client and a device with
    /// `TIMESTAMP_QUERY | TIMESTAMP_QUERY_INSIDE_ENCODERS`, each frame's
    /// uploads and defragmentation also show as Tracy GPU zones.
    pub fn new(
        device: &wgpu::Device,
        _queue: &wgpu::Queue,
        config: RuntimeConfig,
    ) -> Result<Self, RuntimeError> {
        let sched_config = SchedulerConfig {
            frames_in_flight: config.frames_in_flight,
            threads: config.threads,
            fence_timeout: config.fence_timeout,
            inline_below: config.inline_below,
            ..SchedulerConfig::default()
        };
        let sched = match &config.thread_pool {
            Some(pool) => Scheduler::with_pool(Arc::clone(pool), sched_config)?,
            None => Scheduler::new(sched_config)?,
        };
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
        let lost = DeviceLoss::default();
        Ok(Runtime {
            device: device.clone(),
            sched,
            staging,
            readback,
            pool,
            textures: TextureStreaming::new(
                config.read_ahead,
                config.max_queued_loads,
                device.features(),
            ),
            vts: SlotMap::with_key(),
            retired_vts: VecDeque::new(),
            background,
            queued: WriteQueue::default(),
            in_flight: InFlight::default(),
            abandoned: FrameReport::default(),
            completed: None,
            lost,
            frame_open: false,
            stats: RuntimeStats::default(),
            #[cfg(feature = "tracy")]
            gpu_zones: gpu_zones::GpuZones::new(device, _queue),
            config,
        })
    }

    /// A runtime whose frames run their jobs on the application's rayon
    /// `pool` (its renderer's own workers) instead of threads of its own:
    /// [`new`](Self::new) with `config.thread_pool` set.
    pub fn with_pool(
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        pool: Arc<rayon::ThreadPool>,
        config: RuntimeConfig,
    ) -> Result<Self, RuntimeError> {
        Self::new(
            device,
            queue,
            RuntimeConfig {
                thread_pool: Some(pool),
                ..config
            },
        )
    }

    /// The configuration in force.
    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// `Err(DeviceLost)` once the device is lost.
    fn check_device(&self) -> Result<(), RuntimeError> {
        match self.lost.why() {
            Some(why) => Err(RuntimeError::DeviceLost(why)),
            None => Ok(()),
        }
    }

    /// This runtime's device-loss flag: forward the device's lost callback
    /// to it (see [`DeviceLoss`]). The runtime never replaces the callback
    /// the application set.
    pub fn device_loss(&self) -> DeviceLoss {
        self.lost.clone()
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
        // A frame whose encoder was dropped names itself before its fence
        // signals: taken back before anything of it retires.
        self.take_back_abandoned();
        let retired_below = self.sched.next_frame().0 - self.sched.frames_in_flight();
        if retired_below > 0 {
            let completed = retired_below - 1;
            self.completed = Some(completed);
            self.in_flight.retire(completed);
            self.pool.retire(completed);
            self.textures.retire(completed);
            while self
                .retired_vts
                .front()
                .is_some_and(|(f, _)| *f <= completed)
            {
                self.retired_vts.pop_front();
            }
        }
        self.textures.pump_reads(&self.background);
        self.frame_open = true;
        Ok(())
    }

    /// Takes back the frames whose encoder was dropped unsubmitted (see
    /// [`in_flight`]): their writes queued again ahead of newer ones, their
    /// moves copied again first in the next encoder, their textures'
    /// uploads started again, their tiles taken out of the page tables.
    fn take_back_abandoned(&mut self) {
        let now = self.current_frame();
        for frame in self.in_flight.take_abandoned() {
            let report = &mut self.abandoned;
            report.abandoned_frames.push(frame.index);
            report.buffer_writes_redone += frame.writes.writes.len() as u32;
            self.queued.requeue_before(&frame.writes);
            self.in_flight.give_back(frame.writes);
            report.textures_restarted += self.textures.abandon(frame.index, now);
            for vt in self.vts.values_mut() {
                report.tiles_taken_back += vt.abandon(frame.index) as u32;
            }
            self.stats.abandoned_frames += 1;
        }
    }

    /// Queues the load of a texture file (KTX2, KTX 1, DDS or PNG): a
    /// background thread reads and validates it (and decodes a PNG), and
    /// the frames after that upload it. Errors (a missing, truncated or
    /// invalid file; more than `max_queued_loads` loads waiting) arrive in
    /// [`texture`](Self::texture) as [`TextureStatus::Failed`].
    pub fn load_texture_path(&mut self, path: impl Into<PathBuf>) -> TextureHandle {
        self.textures
            .queue_read(ReadSource::Path(path.into()), None, &self.background)
    }

    /// Queues the load of a texture file already in memory (see
    /// [`load_texture_path`](Self::load_texture_path)).
    pub fn load_texture_bytes(&mut self, bytes: Vec<u8>) -> TextureHandle {
        self.textures
            .queue_read(ReadSource::Bytes(bytes), None, &self.background)
    }

    /// Queues the load of a texture with `options`: its colour space (a
    /// normal map or a mask is linear, whatever the file says), label,
    /// extra usages, view formats and how many mip levels to load. As
    /// [`load_texture_path`](Self::load_texture_path) otherwise; the ready
    /// texture ([`TextureStatus::Ready`]) says how to view it.
    pub fn load_texture_with(
        &mut self,
        input: TextureInput,
        options: TextureOptions,
    ) -> TextureHandle {
        let source = match input {
            TextureInput::Path(path) => ReadSource::Path(path),
            TextureInput::Bytes(bytes) => ReadSource::Bytes(bytes),
            TextureInput::Pixels {
                format,
                width,
                height,
                data,
            } => {
                // As a KTX2 file of the format's Vulkan twin: then the way
                // of any file.
                let vk = (1..=184).find(|&vk| crate::texture::wgpu_format(vk) == Some(format));
                let file = match vk {
                    Some(vk) => {
                        forgeflow_jobs::texture::ktx2::write_image(vk, width, height, &data)
                            .map_err(RuntimeError::from)
                    }
                    None => Err(RuntimeError::Upload(std::sync::Arc::new(
                        crate::texture::TextureUploadError::NoKtx2Format(format),
                    ))),
                };
                match file {
                    Ok(file) => ReadSource::Bytes(file),
                    Err(e) => return self.textures.failed(e),
                }
            }
        };
        self.textures
            .queue_read(source, Some(options), &self.background)
    }

    /// Where a texture is.
    pub fn texture(&self, handle: TextureHandle) -> Result<TextureStatus<'_>, RuntimeError> {
        self.textures.status(handle)
    }

    /// Frees a texture: the handle is stale at once, the GPU texture is
    /// dropped once the fence of the current frame has passed. A load still
    /// queued is abandoned.
    pub fn free_texture(&mut self, handle: TextureHandle) -> Result<(), RuntimeError> {
        let frame = self.current_frame();
        self.textures.free(handle, frame)
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
            return Err(RuntimeError::Write {
                offset,
                len: data.len() as u64,
                size: r.size,
            });
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
        any.downcast_ref().ok_or(RuntimeError::WrongType {
            asked: std::any::type_name::<VirtualTexture<S>>(),
        })
    }

    /// Follows a virtual texture's screen to `screen` (the window was
    /// resized): its feedback is sized anew, its resident tiles stay. Its
    /// bind group is made again: take it anew from
    /// [`vt_bind_group`](Self::vt_bind_group).
    pub fn resize_virtual_texture(
        &mut self,
        handle: VtHandle,
        screen: (u32, u32),
    ) -> Result<(), RuntimeError> {
        self.check_device()?;
        let vt = self
            .vts
            .get_mut(handle)
            .ok_or(RuntimeError::StaleHandle("virtual texture"))?;
        vt.resize(&self.device, screen);
        Ok(())
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
        self.retired_vts.push_back((frame, vt));
        Ok(())
    }

    /// Counters and gauges.
    pub fn stats(&self) -> RuntimeStats {
        let textures = self.textures.counters();
        RuntimeStats {
            textures_live: self.textures.live(),
            textures_ready: textures.ready,
            textures_failed: textures.failed,
            texture_bytes: textures.bytes,
            ..self.stats.clone()
        }
    }

    /// GPU bytes the runtime holds now: staging buffers, pool blocks,
    /// textures and virtual textures (readback buffers are small and not counted).
    pub fn gpu_bytes(&self) -> u64 {
        self.staging.staging_bytes()
            + self.pool.block_bytes()
            + self.textures.counters().bytes
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
        self.take_back_abandoned();
        self.in_flight.retire(self.current_frame());
        self.pool.retire(self.current_frame());
        self.textures.drop_retired();
        self.retired_vts.clear();
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
        self.textures.pump_reads(&self.background);
        let (textures_read, textures_failed) = self.textures.take_reads_done();
        let abandoned = std::mem::take(&mut self.abandoned);
        let mut report = FrameReport {
            textures_read,
            textures_failed,
            abandoned_frames: abandoned.abandoned_frames,
            buffer_writes_redone: abandoned.buffer_writes_redone,
            textures_restarted: abandoned.textures_restarted,
            tiles_taken_back: abandoned.tiles_taken_back,
            ..FrameReport::default()
        };
        self.textures.start_uploads(
            &self.device,
            &self.background,
            (self.config.texture_usage, self.config.texture_budget_bytes),
            &mut report,
        );
        let frame_index = self.current_frame();
        self.textures.collect_inflates(frame_index, &mut report);

        let mut active = self.textures.take_active();
        let queued = std::mem::take(&mut self.queued);
        let mut defrag_plan = None;
        let begun = match self.staging.begin_frame() {
            Ok(staging) => match self.sched.begin_frame() {
                Ok(frame) => Ok((staging, frame)),
                Err(e) => Err(RuntimeError::from(e)),
            },
            // The GPU refuses to map a buffer only when the device is gone:
            // how a loss shows where the callback is not forwarded.
            Err(StagingError::Map(why)) => {
                self.lost
                    .set(format!("a staging buffer could not be mapped: {why}"));
                Err(RuntimeError::DeviceLost(self.lost.why().unwrap_or(why)))
            }
            Err(e) => Err(e.into()),
        };
        let (staging, mut frame) = match begun {
            Ok(begun) => begun,
            Err(e) => {
                self.textures.put_back_active(active);
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
            FrameWork {
                textures: &self.textures,
                active: &mut active,
                texture_budget: TextureBudget {
                    bytes: self.config.texture_upload_bytes_per_frame,
                    ns: self.config.texture_upload_ms_per_frame * 1e6,
                },
                writes: &queued,
                pool: &mut self.pool,
                defrag_plan: &mut defrag_plan,
                vts: &mut self.vts,
            },
            &mut report,
        );
        if let Err(e) = declared {
            // Nothing reaches the GPU: the frame's jobs are dropped unrun and
            // its fence signalled now.
            drop(frame);
            drop(staging);
            fence.signal();
            self.textures.finish_uploads(
                active,
                index,
                FrameFault::NotRun(&e),
                &self.background,
                &mut report,
            );
            self.queued = queued;
            return Err(e);
        }
        report.jobs = frame.len() as u32;
        let run = frame.run();
        if let Err(e) = &run {
            report.failure = Some(RuntimeError::Frame(e.clone()));
            self.stats.failed_frames += 1;
        }
        self.textures.measure_costs(&mut active);
        self.stats.buffer_writes += report.buffer_writes as u64;
        self.stats.buffer_write_bytes += queued.bytes.len() as u64;

        // Tiles whose page-fault job failed leave the page table again.
        for vt in self.vts.values_mut() {
            if let Err(e) = vt.settle_faults(&staging) {
                report.failure.get_or_insert(e.into());
            }
            vt.note_loads(index, self.completed);
        }
        let fault = match &run {
            Err(e) => FrameFault::Jobs(e),
            Ok(_) => FrameFault::None,
        };
        self.textures
            .finish_uploads(active, index, fault, &self.background, &mut report);
        report.staging_bytes = staging.bytes();
        // Uploads first: a write to an allocation that defragmentation moves
        // this frame lands in its old place and is copied with it.
        #[cfg(feature = "tracy")]
        let zone = self.gpu_zones.as_mut().map(|z| z.begin(encoder));
        // The moves of frames that never reached the GPU come first: their
        // sources still hold the data, and this frame's writes land after.
        let replay = self.in_flight.take_replay();
        self.pool.record_moves(replay.iter().copied(), encoder);
        staging.finish(encoder);
        #[cfg(feature = "tracy")]
        if let (Some(z), Some(slot)) = (&self.gpu_zones, zone) {
            z.mark(encoder, slot, 1);
        }
        let plan = defrag_plan.take().unwrap_or_default();
        let moves: Vec<_> = replay
            .into_iter()
            .chain(plan.moves.iter().map(|m| (m.from, m.to)))
            .collect();
        report.moved_buffers = plan.moves.iter().map(|m| m.key).collect();
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
        // Dropped unsubmitted, the encoder drops this callback uncalled: the
        // frame names itself as abandoned, then its fence signals, since
        // none of its work will ever run.
        let (dropped, dropped_fence) = (self.in_flight.dropped(), fence.clone());
        let unsubmitted = Unsubmitted::new(move || {
            dropped
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(index);
            dropped_fence.signal();
        });
        encoder.on_submitted_work_done(move || {
            unsubmitted.disarm();
            fence.signal();
        });

        // The writes stay with the frame until its fence passes; the next
        // frame gets an emptied list (no allocation once warm).
        self.in_flight.record(index, queued, moves.into_iter());
        self.queued = self.in_flight.spare_queue();
        self.stats.frames += 1;
        Ok(report)
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
            self.textures.counters().bytes as f64,
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

impl Drop for Runtime {
    fn drop(&mut self) {
        // Retire work that is only drops needs no GPU; waiting here could hang
        // on a lost device, so the GPU objects are simply dropped (wgpu keeps
        // what in-flight work uses alive).
        self.textures.drop_retired();
        self.retired_vts.clear();
    }
}
