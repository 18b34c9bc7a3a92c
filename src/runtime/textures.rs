//! [`TextureStreaming`]: the runtime's textures from a load request to a
//! texture that passes can sample.
//!
//! A texture moves through these states ([`TextureSlot`]):
//!
//! 1. *Reading*: its file waits for a background thread, or is read,
//!    validated (and a PNG decoded) on one. At most `read_ahead` files are
//!    read or wait for their upload at once.
//! 2. *Queued*: read; waiting for one of the [`MAX_STREAMING`] upload places.
//! 3. *Streaming*: its texture exists; each frame declares its next pieces
//!    (copies, or CPU decodes where the adapter lacks the format) within the
//!    frame's budget of staging bytes and measured work. Supercompressed
//!    levels are inflated on a background thread ahead of their pieces.
//! 4. *Uploading*: its last piece was recorded in frame `n`.
//! 5. *Ready* once frame `n`'s fence has passed; or *Failed*, with the error.
//!
//! A freed texture's GPU texture is dropped once the fence of the frame that
//! last used it has passed (invariant 2).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;

use forgeflow_graph::{Background, Frame, FrameError, Task};
use forgeflow_jobs::texture::file::TextureError;
use forgeflow_jobs::texture::source::{TextureFile, TextureSource};
use slotmap::SlotMap;

use super::texture_cost::{self, TextureCosts};
use super::{FrameReport, RuntimeError, TextureHandle};
use crate::staging::StagingFrame;
use crate::texture::{InflatedLevels, TextureLabels, TextureUpload, UploadOptions};

/// Textures uploading at once at most: the per-frame budget goes to the
/// oldest first, so a texture completes before the next starts using it.
const MAX_STREAMING: usize = 4;

/// Where a texture is.
#[derive(Debug)]
pub enum TextureStatus<'a> {
    /// Its file is being read and validated, or it waits for the upload budget.
    Loading,
    /// Its upload was recorded; it is ready once that frame's fence passes.
    Uploading,
    /// Resident: sample it.
    Ready(ReadyTexture<'a>),
    /// The load failed; the handle stays until freed, so the error can be read.
    Failed(&'a RuntimeError),
}

/// A texture ready to sample, with what a renderer needs to make its view:
/// it dereferences to the `wgpu::Texture` (format, size, levels, layers).
#[derive(Debug, Clone, Copy)]
pub struct ReadyTexture<'a> {
    /// The texture.
    pub texture: &'a wgpu::Texture,
    /// How to view it: 2D, an array, a cube (array) or 3D.
    pub view_dimension: wgpu::TextureViewDimension,
    /// The file's level that is the texture's level 0: above 0 when the
    /// file's larger levels exceed the device's limits.
    pub first_level: u32,
}

impl std::ops::Deref for ReadyTexture<'_> {
    type Target = wgpu::Texture;
    fn deref(&self) -> &wgpu::Texture {
        self.texture
    }
}

/// How a texture is to be loaded ([`Runtime::load_texture_with`](super::Runtime::load_texture_with)).
/// The default is what [`Runtime::load_texture_path`](super::Runtime::load_texture_path) does.
#[derive(Debug, Clone)]
pub struct TextureOptions {
    /// sRGB, linear, or as the file says (the default; PNGs are sRGB).
    pub color_space: crate::texture::ColorSpace,
    /// The texture's label.
    pub label: Option<String>,
    /// Usages on top of `COPY_DST | TEXTURE_BINDING` and the config's
    /// `texture_usage`.
    pub usage: wgpu::TextureUsages,
    /// Formats its views may take (`view_formats`).
    pub view_formats: Vec<wgpu::TextureFormat>,
    /// The most mip levels to load, from the first (`None`: all the file has).
    pub max_levels: Option<u32>,
}

impl Default for TextureOptions {
    fn default() -> Self {
        TextureOptions {
            color_space: crate::texture::ColorSpace::AsFile,
            label: None,
            usage: wgpu::TextureUsages::empty(),
            view_formats: Vec::new(),
            max_levels: None,
        }
    }
}

/// Where a texture comes from ([`Runtime::load_texture_with`](super::Runtime::load_texture_with)).
#[derive(Debug)]
pub enum TextureInput {
    /// A file, read on a background thread.
    Path(PathBuf),
    /// A file's bytes (KTX2, KTX 1, DDS or PNG).
    Bytes(Vec<u8>),
    /// Pixels decoded elsewhere: one 2D image of an uncompressed `format`
    /// with a KTX2 equivalent (R8, RG8, RGBA8 and BGRA8 in their variants,
    /// 16- and 32-bit float and normalized...), rows tight.
    Pixels {
        /// Their format.
        format: wgpu::TextureFormat,
        /// Width in texels.
        width: u32,
        /// Height in texels.
        height: u32,
        /// `width * height` texels.
        data: Vec<u8>,
    },
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
        view: (wgpu::TextureViewDimension, u32),
        /// Kept until its frames reach the GPU: a frame whose encoder is
        /// dropped unsubmitted makes the upload start again from it.
        file: Arc<TextureFile>,
        /// The first frame that carried its pieces.
        first_frame: u64,
    },
    Ready {
        texture: wgpu::Texture,
        bytes: u64,
        /// View dimension and first level.
        view: (wgpu::TextureViewDimension, u32),
    },
    Failed(RuntimeError),
}

/// Where a texture's file comes from.
pub(super) enum ReadSource {
    Path(PathBuf),
    Bytes(Vec<u8>),
}

/// A file read (and validated, and a PNG decoded) on a background thread.
type ReadTask = Task<Result<TextureFile, TextureError>>;

/// Levels of a supercompressed file inflated on a background thread.
type InflateTask = Task<Result<InflatedLevels, TextureError>>;

/// What failed in a frame, for the textures that had pieces in it.
#[derive(Clone, Copy)]
pub(super) enum FrameFault<'a> {
    /// Nothing that concerns textures.
    None,
    /// The frame's jobs never ran: every texture with pieces in it fails.
    NotRun(&'a RuntimeError),
    /// Jobs of the frame failed: a texture fails when one of them is its own
    /// (a panic in a page-fault job leaves the frame's uploads alone).
    Jobs(&'a FrameError),
}

/// A texture whose upload is in progress, with the file its jobs read.
pub(super) struct Streaming {
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
    /// The first frame that carried its pieces.
    first_frame: Option<u64>,
}

/// Counters of the textures since the runtime was made.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct TextureCounters {
    /// Textures that became ready.
    pub(super) ready: u64,
    /// Loads that failed.
    pub(super) failed: u64,
    /// GPU bytes of the textures alive.
    pub(super) bytes: u64,
}

/// How much texture work a frame may declare.
pub(super) struct TextureBudget {
    /// Staging bytes.
    pub(super) bytes: u64,
    /// Work (ns), from the measured costs.
    pub(super) ns: f64,
}

/// The runtime's textures: their slots, the reads on the background
/// threads, the uploads in progress and the textures waiting for a fence.
pub(super) struct TextureStreaming {
    slots: SlotMap<TextureHandle, TextureSlot>,
    /// Loads whose read has not started.
    read_queue: VecDeque<(TextureHandle, ReadSource)>,
    /// Reads running on the background threads.
    reading: Vec<(TextureHandle, ReadTask)>,
    /// Reads finished and failed since the last `end_frame`, for its report.
    reads_done: (u32, u32),
    /// The measured work of a staged byte per format and path, that a
    /// texture starts from until its own pieces have run.
    costs: TextureCosts,
    /// Textures read, waiting for an upload place.
    upload_queue: VecDeque<TextureHandle>,
    /// Textures whose upload was recorded, by that frame (in frame order).
    uploading: VecDeque<(u64, TextureHandle)>,
    /// Textures whose pieces are being declared, frame after frame.
    active: Vec<Streaming>,
    /// GPU textures dropped once the frame's fence has passed.
    retired: VecDeque<(u64, wgpu::Texture)>,
    counters: TextureCounters,
    read_ahead: usize,
    max_queued_loads: usize,
    /// The device's features: where Basis Universal files transcode to.
    features: wgpu::Features,
    /// Textures loaded with options other than the defaults.
    options: slotmap::SecondaryMap<TextureHandle, TextureOptions>,
}

impl TextureStreaming {
    /// No textures; `read_ahead` files read ahead of their upload at most,
    /// `max_queued_loads` loads waiting for their read at most.
    pub(super) fn new(
        read_ahead: usize,
        max_queued_loads: usize,
        features: wgpu::Features,
    ) -> Self {
        TextureStreaming {
            slots: SlotMap::with_key(),
            read_queue: VecDeque::new(),
            reading: Vec::new(),
            reads_done: (0, 0),
            costs: TextureCosts::default(),
            upload_queue: VecDeque::new(),
            uploading: VecDeque::new(),
            active: Vec::new(),
            retired: VecDeque::new(),
            counters: TextureCounters::default(),
            read_ahead,
            max_queued_loads,
            features,
            options: slotmap::SecondaryMap::new(),
        }
    }

    /// Textures alive, in any state.
    pub(super) fn live(&self) -> usize {
        self.slots.len()
    }

    /// Counters since creation.
    pub(super) fn counters(&self) -> TextureCounters {
        self.counters
    }

    /// Reads finished and failed since the last call.
    pub(super) fn take_reads_done(&mut self) -> (u32, u32) {
        std::mem::take(&mut self.reads_done)
    }

    /// Frame `completed`'s fence has passed: its freed textures are dropped
    /// and the uploads it recorded are ready.
    pub(super) fn retire(&mut self, completed: u64) {
        while self.retired.front().is_some_and(|(f, _)| *f <= completed) {
            self.retired.pop_front();
        }
        while let Some(&(f, h)) = self.uploading.front() {
            if f > completed {
                break;
            }
            self.uploading.pop_front();
            if let Some(slot) = self.slots.get_mut(h) {
                if let TextureSlot::Uploading {
                    texture,
                    bytes,
                    view,
                    ..
                } = std::mem::replace(slot, TextureSlot::Reading)
                {
                    *slot = TextureSlot::Ready {
                        texture,
                        bytes,
                        view,
                    };
                    self.counters.ready += 1;
                }
            }
        }
    }

    /// Drops every retired texture: the GPU is idle, or the runtime is
    /// dropped (wgpu keeps what in-flight work uses alive).
    pub(super) fn drop_retired(&mut self) {
        self.retired.clear();
    }

    /// Picks up the reads that finished on the background threads and
    /// starts queued ones while fewer than `read_ahead` files are being read
    /// or wait for their upload. Never blocks.
    pub(super) fn pump_reads(&mut self, background: &Background) {
        let (slots, upload_queue) = (&mut self.slots, &mut self.upload_queue);
        let (counters, done) = (&mut self.counters, &mut self.reads_done);
        self.reading.retain(|(handle, task)| {
            let Some(result) = task.try_take() else {
                return true;
            };
            let Some(slot) = slots.get_mut(*handle) else {
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
                    counters.failed += 1;
                    TextureSlot::Failed(e.into())
                }
                Err(panic) => {
                    done.1 += 1;
                    counters.failed += 1;
                    TextureSlot::Failed(RuntimeError::Task(panic))
                }
            };
            false
        });
        while self.reading.len() + self.upload_queue.len() < self.read_ahead {
            let Some((handle, source)) = self.read_queue.pop_front() else {
                break;
            };
            if !self.slots.contains_key(handle) {
                continue; // freed before its read started
            }
            let features = self.features;
            let task = background.spawn("texture read", move || {
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
                let file = bytes.and_then(TextureFile::from_bytes);
                #[cfg(feature = "basis")]
                let file = file.map(|mut f| {
                    f.transcode_for(crate::texture::transcode_support(features));
                    f
                });
                #[cfg(not(feature = "basis"))]
                let _ = features;
                file
            });
            self.reading.push((handle, task));
        }
    }

    /// Queues a load; more than `max_queued_loads` waiting fails it at once.
    pub(super) fn queue_read(
        &mut self,
        source: ReadSource,
        options: Option<TextureOptions>,
        background: &Background,
    ) -> TextureHandle {
        self.pump_reads(background);
        if self.read_queue.len() >= self.max_queued_loads {
            self.counters.failed += 1;
            return self
                .slots
                .insert(TextureSlot::Failed(RuntimeError::QueueFull {
                    what: "texture loads waiting for their read",
                    limit: self.max_queued_loads as u64,
                    unit: "loads",
                }));
        }
        let handle = self.slots.insert(TextureSlot::Reading);
        if let Some(options) = options {
            self.options.insert(handle, options);
        }
        self.read_queue.push_back((handle, source));
        self.pump_reads(background);
        handle
    }

    /// Where a texture is.
    pub(super) fn status(&self, handle: TextureHandle) -> Result<TextureStatus<'_>, RuntimeError> {
        match self.slots.get(handle) {
            None => Err(RuntimeError::StaleHandle("texture")),
            Some(TextureSlot::Reading | TextureSlot::Queued(_)) => Ok(TextureStatus::Loading),
            Some(TextureSlot::Streaming { .. } | TextureSlot::Uploading { .. }) => {
                Ok(TextureStatus::Uploading)
            }
            Some(TextureSlot::Ready { texture, view, .. }) => {
                Ok(TextureStatus::Ready(ReadyTexture {
                    texture,
                    view_dimension: view.0,
                    first_level: view.1,
                }))
            }
            Some(TextureSlot::Failed(e)) => Ok(TextureStatus::Failed(e)),
        }
    }

    /// Frees a texture: the handle is stale at once, the GPU texture is
    /// dropped once frame `frame`'s fence has passed. A load still queued is
    /// abandoned; a streaming texture leaves with its upload, at the next
    /// `end_frame`.
    pub(super) fn free(&mut self, handle: TextureHandle, frame: u64) -> Result<(), RuntimeError> {
        let slot = self
            .slots
            .remove(handle)
            .ok_or(RuntimeError::StaleHandle("texture"))?;
        self.options.remove(handle);
        match slot {
            TextureSlot::Uploading { texture, bytes, .. }
            | TextureSlot::Ready { texture, bytes, .. } => {
                self.counters.bytes -= bytes;
                self.retired.push_back((frame, texture));
            }
            TextureSlot::Streaming { bytes } => self.counters.bytes -= bytes,
            _ => {}
        }
        Ok(())
    }

    /// A texture that failed before it was read (pixels that make no
    /// image): its handle carries the error.
    pub(super) fn failed(&mut self, error: RuntimeError) -> TextureHandle {
        self.counters.failed += 1;
        self.slots.insert(TextureSlot::Failed(error))
    }

    /// Starts the uploads of queued textures while fewer than
    /// `MAX_STREAMING` are in progress: creates each texture (an error scope
    /// catches wgpu's out-of-memory) within `budget_bytes` of textures.
    pub(super) fn start_uploads(
        &mut self,
        device: &wgpu::Device,
        background: &Background,
        (usage, budget_bytes): (wgpu::TextureUsages, u64),
        report: &mut FrameReport,
    ) {
        while self.active.len() < MAX_STREAMING {
            let Some(h) = self.upload_queue.pop_front() else {
                break;
            };
            let Some(slot) = self.slots.get_mut(h) else {
                continue; // freed while queued
            };
            let TextureSlot::Queued(file) = std::mem::replace(slot, TextureSlot::Reading) else {
                continue;
            };
            let wanted = self.options.get(h).cloned().unwrap_or_default();
            let options = UploadOptions {
                force_fallback: false,
                usage: usage | wanted.usage,
                color_space: wanted.color_space,
                max_levels: wanted.max_levels,
            };
            let labels = TextureLabels {
                label: wanted.label.clone(),
                view_formats: wanted.view_formats.clone(),
            };
            // The budget first: a texture over it never reaches the driver.
            let in_use = self.counters.bytes;
            let planned = crate::texture::TexturePlan::new(
                &TextureSource::desc(&*file),
                device.features(),
                &device.limits(),
                options,
            );
            if let Some(plan) = planned
                .ok()
                .filter(|p| in_use.saturating_add(p.gpu_bytes) > budget_bytes)
            {
                report.textures_failed += 1;
                self.counters.failed += 1;
                *slot = TextureSlot::Failed(RuntimeError::Budget {
                    what: "texture",
                    requested: plan.gpu_bytes,
                    in_use,
                    budget: budget_bytes,
                });
                continue;
            }
            let scope = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
            let upload = TextureUpload::with_labels(device, &*file, options, &labels);
            let upload = upload.map(|mut u| {
                u.set_inflate_in_frame(false);
                u
            });
            let oom = pollster::block_on(scope.pop());
            let in_use = self.counters.bytes;
            let started = match (upload, oom) {
                (_, Some(e)) => Err(RuntimeError::OutOfMemory(e.to_string())),
                (Err(e), None) => Err(e.into()),
                (Ok(u), None) if in_use + u.gpu_bytes() > budget_bytes => {
                    Err(RuntimeError::Budget {
                        what: "texture",
                        requested: u.gpu_bytes(),
                        in_use,
                        budget: budget_bytes,
                    })
                }
                (Ok(u), None) => Ok(u),
            };
            match started {
                Ok(upload) => {
                    let vk_format = TextureSource::desc(&*file).vk_format;
                    self.counters.bytes += upload.gpu_bytes();
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
                        first_frame: None,
                    };
                    spawn_inflate(background, &mut streaming);
                    self.active.push(streaming);
                }
                Err(e) => {
                    report.textures_failed += 1;
                    self.counters.failed += 1;
                    *slot = TextureSlot::Failed(e);
                }
            }
        }
    }

    /// Hands the levels inflated on the background threads to their
    /// uploads; an upload whose inflate failed fails its texture after
    /// frame `frame`.
    pub(super) fn collect_inflates(&mut self, frame: u64, report: &mut FrameReport) {
        let mut active = std::mem::take(&mut self.active);
        active.retain_mut(|s| {
            let Some(result) = s.inflating.as_ref().and_then(|t| t.try_take()) else {
                return true;
            };
            s.inflating = None;
            let provided = match result {
                Ok(Ok(levels)) => s.upload.provide_levels(levels).map_err(RuntimeError::from),
                Ok(Err(e)) => Err(e.into()),
                Err(panic) => Err(RuntimeError::Task(panic)),
            };
            match provided {
                Ok(()) => true,
                Err(e) => {
                    self.fail(s, frame, e, report);
                    false
                }
            }
        });
        self.active = active;
    }

    /// The uploads in progress, taken for a frame's jobs to borrow; they come
    /// back through [`finish_uploads`](Self::finish_uploads).
    pub(super) fn take_active(&mut self) -> Vec<Streaming> {
        std::mem::take(&mut self.active)
    }

    /// Puts back the uploads taken by [`take_active`](Self::take_active)
    /// when the frame could not begin (nothing was declared).
    pub(super) fn put_back_active(&mut self, active: Vec<Streaming>) {
        self.active = active;
    }

    /// Declares the next pieces of the uploads in progress, oldest first,
    /// within `budget`: copies or CPU decodes into `staging`, as jobs of
    /// `frame`. A texture not measured yet starts from its format's cost.
    pub(super) fn declare<'s>(
        &self,
        active: &'s mut [Streaming],
        budget: TextureBudget,
        staging: &'s StagingFrame<'_>,
        frame: &mut Frame<'s>,
    ) -> Result<(), RuntimeError> {
        let (mut used, mut spent) = (0u64, 0f64);
        for s in active.iter_mut() {
            if used >= budget.bytes || spent >= budget.ns {
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
            let step = texture_cost::step_budget(
                *own_cost,
                self.costs.get(upload.native(), *vk_format),
                budget.bytes - used,
                budget.ns - spent,
            );
            let before = staging.bytes();
            upload.step(file, staging, frame, step.bytes)?;
            let bytes = staging.bytes() - before;
            used += bytes;
            spent = match step.ns_per_byte {
                Some(c) => spent + bytes as f64 * c,
                None => budget.ns,
            };
            *staged = bytes;
            *stepped = bytes > 0;
        }
        Ok(())
    }

    /// After a frame has run: each streaming texture's cost per staged byte
    /// from its jobs' time, and the cost of its format that a texture of the
    /// same format starts from.
    pub(super) fn measure_costs(&mut self, active: &mut [Streaming]) {
        for s in active {
            let work = s.upload.take_work();
            let staged = std::mem::take(&mut s.staged);
            if staged == 0 {
                continue;
            }
            let ns = work.as_nanos() as f64;
            texture_cost::fold(&mut s.ns_per_byte, ns / staged as f64, 0.5);
            self.costs
                .record(s.upload.native(), s.vk_format, ns, staged);
        }
    }

    /// After the frame's jobs: uploads whose last piece was declared are
    /// recorded (ready when frame `index` retires); with a `fault`, those
    /// it names fail. The others stay in progress, and
    /// those that reached a level not inflated yet have it inflated on a
    /// background thread while the next frames go on.
    pub(super) fn finish_uploads(
        &mut self,
        mut active: Vec<Streaming>,
        index: u64,
        fault: FrameFault<'_>,
        background: &Background,
        report: &mut FrameReport,
    ) {
        active.retain_mut(|s| {
            let stepped = std::mem::take(&mut s.stepped);
            let Some(slot) = self.slots.get_mut(s.handle) else {
                // Freed while streaming (its bytes were returned then).
                let texture = s.upload.texture().clone();
                self.retired.push_back((index, texture));
                return false;
            };
            let bytes = s.upload.gpu_bytes();
            if stepped {
                s.first_frame.get_or_insert(index);
            }
            let failed = match fault {
                FrameFault::None => None,
                FrameFault::NotRun(e) => stepped.then(|| e.clone()),
                FrameFault::Jobs(e) => (stepped
                    && e.failures.iter().any(|f| s.upload.jobs().contains(&f.job)))
                .then(|| RuntimeError::Frame(e.clone())),
            };
            if let Some(e) = failed {
                self.fail(s, index, e, report);
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
                view: (s.upload.view_dimension(), s.upload.first_level()),
                file: Arc::clone(&s.file),
                first_frame: s.first_frame.unwrap_or(index),
            };
            false
        });
        for s in &mut active {
            spawn_inflate(background, s);
        }
        self.active = active;
    }

    /// Frame `frame` never reached the GPU (its encoder was dropped
    /// unsubmitted): each texture that had pieces in it starts its upload
    /// again, from its file, ahead of the textures waiting; its old texture is
    /// dropped after frame `now`. Returns how many start again.
    pub(super) fn abandon(&mut self, frame: u64, now: u64) -> u32 {
        let mut again = Vec::new();
        let (slots, retired, counters) = (&mut self.slots, &mut self.retired, &mut self.counters);
        self.active.retain(|s| {
            if s.first_frame.is_none_or(|first| first > frame) {
                return true;
            }
            retired.push_back((now, s.upload.texture().clone()));
            if let Some(slot) = slots.get_mut(s.handle) {
                counters.bytes -= s.upload.gpu_bytes();
                *slot = TextureSlot::Queued(Arc::clone(&s.file));
                again.push(s.handle);
            }
            false
        });
        self.uploading.retain(|&(last, h)| {
            let Some(slot) = slots.get_mut(h) else {
                return false;
            };
            let TextureSlot::Uploading { first_frame, .. } = slot else {
                return true;
            };
            if last < frame || *first_frame > frame {
                return true;
            }
            if let TextureSlot::Uploading {
                texture,
                bytes,
                file,
                ..
            } = std::mem::replace(slot, TextureSlot::Reading)
            {
                retired.push_back((now, texture));
                counters.bytes -= bytes;
                *slot = TextureSlot::Queued(file);
                again.push(h);
            }
            false
        });
        let n = again.len() as u32;
        for h in again.into_iter().rev() {
            self.upload_queue.push_front(h);
        }
        n
    }

    /// Fails a streaming texture (already taken out of `active`): its
    /// bytes are returned and its texture dropped after frame `index`.
    fn fail(&mut self, s: &Streaming, index: u64, error: RuntimeError, report: &mut FrameReport) {
        let texture = s.upload.texture().clone();
        self.retired.push_back((index, texture));
        let Some(slot) = self.slots.get_mut(s.handle) else {
            return; // freed meanwhile (its bytes were returned then)
        };
        report.textures_failed += 1;
        self.counters.failed += 1;
        self.counters.bytes -= s.upload.gpu_bytes();
        *slot = TextureSlot::Failed(error);
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
