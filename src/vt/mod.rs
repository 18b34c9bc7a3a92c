//! Virtual texture streaming on the GPU: [`VirtualTexture`] keeps a physical
//! atlas of tile slots sized from a memory budget, a page table texture (one
//! level per virtual level, each texel naming the slot to sample), a feedback
//! buffer the renderer's shader fills through the WGSL module, and turns each
//! frame's feedback into page-fault jobs within per-frame budgets.
//!
//! A frame, as a renderer drives it:
//!
//! 1. [`VirtualTexture::update`] (before recording passes that sample it):
//!    takes the feedback read back so far, de-duplicates and prioritises it
//!    (coarser levels first), inserts tiles into the cache (evicting the least
//!    recently used ones older than the minimum age), declares one job per
//!    tile that reads (or makes) its bytes into staging memory aimed at its
//!    atlas slot, updates the page table (and its texture, by dirty rects),
//!    the bias and the feedback jitter.
//! 2. The renderer runs the frame's jobs, calls
//!    [`VirtualTexture::settle_faults`] (tiles whose job failed, or was put
//!    off because its bytes were not in memory yet, leave the page table
//!    again), finishes the staging frame into its encoder, then records its
//!    passes with [`VirtualTexture::bind_group`] and the module from [`wgsl`].
//!    The `Runtime` does all of this.
//! 3. [`VirtualTexture::end_frame`] copies the feedback into the readback
//!    ring (never stalling: results arrive with `ReadbackRing::poll`) and
//!    clears it for the next frame.
//!
//! The coarsest level is loaded at creation and pinned, so a miss always
//! shows a coarser resident tile, never garbage.
//!
//! Who writes what (invariant 2): the CPU never writes atlas or page-table
//! memory. Jobs fill staging memory, guarded by the staging ring's fences;
//! the atlas slot of an evicted tile is rewritten only by a GPU copy that
//! [`StagingFrame::finish`] records ahead of this frame's passes, with the
//! page-table update that stops pointing at it. Queue order puts that copy after
//! every earlier frame's reads of the slot, and a tile is evicted only once it
//! is `min_age` frames old, so no pass samples a slot while it is rewritten.
//!
//! Allocation (invariant 5): in steady state `update` allocates nothing
//! (asserted by `tests/vt.rs`); `end_frame` asks the readback ring for one
//! read, which boxes its callback, and wgpu's `map_async` allocates its own.
//! The tile source is shared with the jobs through an `Arc`.
//!
//! ```no_run
//! # fn demo(device: &wgpu::Device, queue: &wgpu::Queue) -> Result<(), Box<dyn std::error::Error>> {
//! use forgeflow::graph::{Scheduler, SchedulerConfig};
//! use forgeflow::jobs::vt::TilePack;
//! use forgeflow::staging::{ReadbackRing, ReadbackConfig, StagingConfig, StagingRing};
//! use forgeflow::vt::{wgsl, VirtualTexture, VtConfig};
//!
//! // A pack written by `forgeflow-tex vt-build`, 256 MiB of GPU memory, a 1080p screen.
//! let pack = TilePack::open("terrain.vtpack")?;
//! let mut vt = VirtualTexture::new(device, pack, VtConfig::default(), (1920, 1080))?;
//! let shader_source = format!("{}\n/* your shader: vt_sample(...), vt_feedback(...) */", wgsl(1));
//! let mut ring = StagingRing::new(device, StagingConfig::default())?;
//! let mut readback = ReadbackRing::new(device, ReadbackConfig::default())?;
//! let mut sched = Scheduler::new(SchedulerConfig::default())?;
//! loop {
//!     readback.poll(); // feedback of earlier frames arrives here
//!     let staging = ring.begin_frame()?;
//!     {
//!         let mut frame = sched.begin_frame()?;
//!         vt.update(&staging, &mut frame)?; // page faults become jobs
//!         frame.run()?;
//!     }
//!     let mut encoder = device.create_command_encoder(&Default::default());
//!     staging.finish(&mut encoder); // tile and page-table copies first
//!     // ... passes with `vt.bind_group()` at group 1 ...
//!     let mut rb = readback.begin_frame();
//!     vt.end_frame(&mut encoder, &mut rb);
//!     rb.finish(&mut encoder);
//!     queue.submit([encoder.finish()]);
//! #   break;
//! }
//! # let _ = shader_source;
//! # Ok(()) }
//! ```

mod dedup;

use std::sync::{Arc, Mutex};

use forgeflow_graph::{Frame, GraphError};
use forgeflow_jobs::vt::{
    Load, LoadOutcome, MipBias, Residency, ResidencyConfig, TileFormat, TileId, TileSource,
    VtLayout,
};

use crate::staging::{ReadbackFrame, StagingError, StagingFrame};

pub use forgeflow_jobs::vt::VtStats;

/// The WGSL module to include in shaders that sample a virtual texture, its
/// bindings in bind group `group`.
pub fn wgsl(group: u32) -> String {
    include_str!("vt.wgsl").replace("VT_GROUP", &group.to_string())
}

/// How a [`VirtualTexture`] is set up.
#[derive(Debug, Clone)]
pub struct VtConfig {
    /// GPU bytes for the atlas, the page table, the feedback buffer and the
    /// parameters together (staging memory is the ring's own).
    pub budget_bytes: u64,
    /// Frames a loaded tile stays at least before it may be evicted.
    pub min_age: u64,
    /// Tiles loaded per frame at most.
    pub max_uploads: u32,
    /// Bytes loaded per frame at most.
    pub max_upload_bytes: u64,
    /// Screen pixels per feedback word along each side (default 16).
    pub feedback_divisor: u32,
    /// This texture's id in feedback words (0..=14).
    pub texture_id: u8,
    /// The mip-bias control.
    pub bias: MipBias,
    /// Also load the neighbours of requested tiles while the cache has room.
    pub prefetch: bool,
    /// Decode BC tiles to RGBA8 even where the adapter samples BC (tests,
    /// comparisons).
    pub force_decode: bool,
    /// Milliseconds of page-fault work (loading, decoding) a frame plans at
    /// most, from the measured average per tile over the worker threads.
    pub max_fault_ms: f64,
}

impl Default for VtConfig {
    fn default() -> Self {
        VtConfig {
            budget_bytes: 256 << 20,
            min_age: 8,
            max_uploads: 64,
            max_upload_bytes: 16 << 20,
            feedback_divisor: 16,
            texture_id: 0,
            bias: MipBias::default(),
            prefetch: true,
            force_decode: false,
            max_fault_ms: 8.0,
        }
    }
}

/// Why a virtual texture could not be made or fed.
#[derive(Debug)]
#[non_exhaustive]
pub enum VirtualTextureError {
    /// The budget cannot hold the page table, the feedback and a few slots.
    Budget(String),
    /// Staging refused a piece.
    Staging(StagingError),
    /// Declaring a job failed.
    Graph(GraphError),
}

impl std::fmt::Display for VirtualTextureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VirtualTextureError::Budget(why) => write!(f, "virtual texture budget: {why}"),
            VirtualTextureError::Staging(e) => e.fmt(f),
            VirtualTextureError::Graph(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for VirtualTextureError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            VirtualTextureError::Staging(e) => Some(e),
            VirtualTextureError::Graph(e) => Some(e),
            VirtualTextureError::Budget(_) => None,
        }
    }
}

impl From<StagingError> for VirtualTextureError {
    fn from(e: StagingError) -> Self {
        VirtualTextureError::Staging(e)
    }
}
impl From<GraphError> for VirtualTextureError {
    fn from(e: GraphError) -> Self {
        VirtualTextureError::Graph(e)
    }
}

thread_local! {
    /// Each thread's buffer for the tiles its page-fault jobs read.
    static TILE_SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// What a page-fault job did with its load (`VirtualTexture::load_state`).
const LOAD_FAILED: u8 = 0;
/// See [`LOAD_FAILED`]: the tile's bytes are in staging.
const LOAD_WRITTEN: u8 = 1;
/// See [`LOAD_FAILED`]: put off, the bytes were not in memory yet.
const LOAD_PUT_OFF: u8 = 2;

const PARAMS_BYTES: u64 = 64;

/// Emptied feedback vectors kept for reuse at most (readbacks in flight are
/// bounded by the ring, so a few suffice).
const MAX_SPARE_FEEDBACK: usize = 4;

/// The bind group of a virtual texture's atlas, page table, sampler,
/// parameters and feedback buffer, as the WGSL module binds them.
fn bind_group(
    device: &wgpu::Device,
    layout: &wgpu::BindGroupLayout,
    [atlas, page_texture]: [&wgpu::Texture; 2],
    sampler: &wgpu::Sampler,
    [params, feedback]: [&wgpu::Buffer; 2],
) -> wgpu::BindGroup {
    device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("forgeflow vt"),
        layout,
        entries: &[
            wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::TextureView(
                    &atlas.create_view(&Default::default()),
                ),
            },
            wgpu::BindGroupEntry {
                binding: 1,
                resource: wgpu::BindingResource::TextureView(
                    &page_texture.create_view(&Default::default()),
                ),
            },
            wgpu::BindGroupEntry {
                binding: 2,
                resource: wgpu::BindingResource::Sampler(sampler),
            },
            wgpu::BindGroupEntry {
                binding: 3,
                resource: params.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 4,
                resource: feedback.as_entire_binding(),
            },
        ],
    })
}

/// Feedback read back, handed from the readback ring's callback to `update`:
/// the newest words (with the frame that rendered them) and emptied vectors
/// to fill next, so that steady frames allocate nothing and older feedback
/// is dropped, never queued.
#[derive(Default)]
struct Mailbox {
    newest: Option<(u64, Vec<u32>)>,
    spare: Vec<Vec<u32>>,
}

/// A virtual texture on the GPU, fed from a [`TileSource`].
pub struct VirtualTexture<S: TileSource + 'static> {
    source: Arc<S>,
    layout: VtLayout,
    /// Set when tiles are decoded to RGBA8 on the way (their vkFormat).
    decode_vk: Option<u32>,
    /// Average nanoseconds of one page-fault job (updated by the jobs).
    fault_ns: Arc<std::sync::atomic::AtomicU64>,
    /// Per load of the last update (by position in `loads`): what its
    /// page-fault job did, a `LOAD_*` value. One per slot, made once.
    load_state: Arc<[std::sync::atomic::AtomicU8]>,
    config: VtConfig,
    /// The policy: cache, page table, requests, bias and each frame's loads.
    residency: Residency,
    atlas: wgpu::Texture,
    page_texture: wgpu::Texture,
    /// CPU copy of each page-table level, for dirty-rect uploads.
    page_levels: Vec<Vec<u32>>,
    /// The whole table must go up (the first frame: the texture starts zeroed).
    page_all_dirty: bool,
    /// The tiles each recent runtime frame loaded, until that frame retires:
    /// a frame whose encoder is dropped unsubmitted takes them back.
    recent_loads: std::collections::VecDeque<(u64, Vec<TileId>)>,
    params: wgpu::Buffer,
    feedback: wgpu::Buffer,
    /// The feedback de-duplicated on the GPU: what is read back.
    dedup: dedup::FeedbackDedup,
    feedback_size: (u32, u32),
    sampler: wgpu::Sampler,
    layout_group: wgpu::BindGroupLayout,
    group: wgpu::BindGroup,
    delivered: Arc<Mutex<Mailbox>>,
    /// Per-frame scratch, kept between frames: the page table's deltas,
    /// its dirty rows and their bytes.
    deltas: Vec<forgeflow_jobs::vt::Delta>,
    dirty_rows: Vec<Option<(u32, u32)>>,
    page_bytes: Vec<u8>,
}

impl<S: TileSource + 'static> std::fmt::Debug for VirtualTexture<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtualTexture")
            .field("layout", &self.layout)
            .field("stats", self.residency.stats())
            .finish_non_exhaustive()
    }
}

impl<S: TileSource + 'static> VirtualTexture<S> {
    /// Creates the atlas (as many slots as the budget holds after the page
    /// table and the feedback buffer for a `screen` of that size), the page
    /// table and the feedback buffer, and queues the coarsest level's tile
    /// (call [`update`](Self::update) before the first frame samples it).
    pub fn new(
        device: &wgpu::Device,
        source: S,
        config: VtConfig,
        screen: (u32, u32),
    ) -> Result<Self, VirtualTextureError> {
        let layout = source.layout();
        // BC tiles stay compressed in the atlas when the adapter samples BC
        // and slots are whole blocks; otherwise page-fault jobs decode them.
        let (atlas_format, decode_vk) = match source.format() {
            TileFormat::Rgba8 => (wgpu::TextureFormat::Rgba8Unorm, None),
            f => {
                let (native, vk) = match f {
                    TileFormat::Bc1 => (wgpu::TextureFormat::Bc1RgbaUnorm, 133),
                    _ => (wgpu::TextureFormat::Bc7RgbaUnorm, 145),
                };
                let can = device
                    .features()
                    .contains(wgpu::Features::TEXTURE_COMPRESSION_BC)
                    && layout.slot().is_multiple_of(4)
                    && !config.force_decode;
                if can {
                    (native, None)
                } else {
                    (wgpu::TextureFormat::Rgba8Unorm, Some(vk))
                }
            }
        };
        let div = config.feedback_divisor.max(1);
        let feedback_size = (screen.0.div_ceil(div), screen.1.div_ceil(div));
        let feedback_bytes = (feedback_size.0 * feedback_size.1) as u64 * 4;
        let page_bytes: u64 = (0..layout.mips())
            .map(|m| {
                let (x, y) = layout.tiles_at(m);
                x as u64 * y as u64 * 4
            })
            .sum();
        let slot = layout.slot();
        let slot_bytes = match (atlas_format, source.format()) {
            (wgpu::TextureFormat::Rgba8Unorm, _) => slot as u64 * slot as u64 * 4,
            (_, f) => f.slot_bytes(slot),
        };
        let feedback_words = feedback_size.0 * feedback_size.1;
        let fixed = page_bytes
            + feedback_bytes
            + dedup::FeedbackDedup::gpu_bytes(&layout, feedback_words)
            + PARAMS_BYTES;
        let max_side = device.limits().max_texture_dimension_2d;
        let columns_max = (max_side / slot).min(256);
        let slots = config.budget_bytes.saturating_sub(fixed) / slot_bytes;
        if slots < 4 {
            return Err(VirtualTextureError::Budget(format!(
                "{} bytes hold {slots} slots of {slot_bytes} after {fixed} for the page table and feedback",
                config.budget_bytes
            )));
        }
        let columns = ((slots as f64).sqrt().floor() as u32).clamp(1, columns_max);
        let rows = ((slots / columns as u64) as u32).min(columns_max);
        let atlas = device.create_texture(&wgpu::TextureDescriptor {
            label: Some("forgeflow vt atlas"),
            size: wgpu::Extent3d {
                width: columns * slot,
                height: rows * slot,
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: atlas_format,
            usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        });
        let (tx, ty) = layout.tiles_at(0);
        let page_texture = device.create_texture(&wgpu::TextureDescriptor {
            label: Some("forgeflow vt page table"),
            size: wgpu::Extent3d {
                width: tx,
                height: ty,
                depth_or_array_layers: 1,
            },
            mip_level_count: layout.mips(),
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::R32Uint,
            usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
            view_formats: &[],
        });
        let params = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("forgeflow vt params"),
            size: PARAMS_BYTES,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let feedback = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("forgeflow vt feedback"),
            size: feedback_bytes.max(4),
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let dedup = dedup::FeedbackDedup::new(device, &layout, &feedback, feedback_words);
        let sampler = device.create_sampler(&wgpu::SamplerDescriptor {
            label: Some("forgeflow vt sampler"),
            mag_filter: wgpu::FilterMode::Linear,
            min_filter: wgpu::FilterMode::Linear,
            ..Default::default()
        });
        let entry = |binding, ty| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::FRAGMENT | wgpu::ShaderStages::COMPUTE,
            ty,
            count: None,
        };
        let layout_group = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("forgeflow vt"),
            entries: &[
                entry(
                    0,
                    wgpu::BindingType::Texture {
                        sample_type: wgpu::TextureSampleType::Float { filterable: true },
                        view_dimension: wgpu::TextureViewDimension::D2,
                        multisampled: false,
                    },
                ),
                entry(
                    1,
                    wgpu::BindingType::Texture {
                        sample_type: wgpu::TextureSampleType::Uint,
                        view_dimension: wgpu::TextureViewDimension::D2,
                        multisampled: false,
                    },
                ),
                entry(
                    2,
                    wgpu::BindingType::Sampler(wgpu::SamplerBindingType::Filtering),
                ),
                entry(
                    3,
                    wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                ),
                entry(
                    4,
                    wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage { read_only: false },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                ),
            ],
        });
        let group = bind_group(
            device,
            &layout_group,
            [&atlas, &page_texture],
            &sampler,
            [&params, &feedback],
        );
        let residency = Residency::new(
            layout,
            (columns, rows),
            slot_bytes,
            config.texture_id,
            config.bias,
            ResidencyConfig {
                min_age: config.min_age,
                max_uploads: config.max_uploads,
                max_upload_bytes: config.max_upload_bytes,
                max_fault_ms: config.max_fault_ms,
                prefetch: config.prefetch,
            },
        );
        let page_table = residency.page_table();
        let page_levels = (0..layout.mips())
            .map(|m| {
                let (x, y) = layout.tiles_at(m);
                let e = page_table
                    .lookup(TileId {
                        mip: m as u8,
                        x: 0,
                        y: 0,
                    })
                    .expect("a tile")
                    .pack();
                vec![e; (x * y) as usize]
            })
            .collect();
        let gpu_bytes = slot_bytes * (columns * rows) as u64 + fixed;
        let mut vt = VirtualTexture {
            source: Arc::new(source),
            layout,
            decode_vk,
            fault_ns: Arc::new(std::sync::atomic::AtomicU64::new(0)),
            load_state: (0..residency.max_loads())
                .map(|_| std::sync::atomic::AtomicU8::new(LOAD_FAILED))
                .collect(),
            config,
            residency,
            atlas,
            page_texture,
            page_levels,
            page_all_dirty: true,
            recent_loads: std::collections::VecDeque::new(),
            params,
            feedback,
            dedup,
            feedback_size,
            sampler,
            layout_group,
            group,
            delivered: Arc::new(Mutex::new(Mailbox::default())),
            deltas: Vec::new(),
            dirty_rows: Vec::new(),
            page_bytes: Vec::new(),
        };
        vt.residency.set_gpu_bytes(gpu_bytes);
        Ok(vt)
    }

    /// Follows the screen to `screen`'s size (a window resized): the
    /// feedback buffers are made again at the new size, and the resident
    /// tiles, the page table and the atlas stay as they are. The bind group
    /// is made again too: take it anew from [`bind_group`](Self::bind_group).
    /// Feedback of the old size still in flight is used as it arrives (it
    /// names tiles, not pixels).
    pub fn resize(&mut self, device: &wgpu::Device, screen: (u32, u32)) {
        let div = self.config.feedback_divisor.max(1);
        let size = (screen.0.max(1).div_ceil(div), screen.1.max(1).div_ceil(div));
        if size == self.feedback_size {
            return;
        }
        let feedback_bytes = |(w, h): (u32, u32)| {
            u64::from(w) * u64::from(h) * 4 + dedup::FeedbackDedup::gpu_bytes(&self.layout, w * h)
        };
        let old_bytes = feedback_bytes(self.feedback_size);
        let bytes = u64::from(size.0) * u64::from(size.1) * 4;
        let buffer = |label, usage| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes.max(4),
                usage,
                mapped_at_creation: false,
            })
        };
        use wgpu::BufferUsages as U;
        self.feedback = buffer(
            "forgeflow vt feedback",
            U::STORAGE | U::COPY_SRC | U::COPY_DST,
        );
        self.dedup
            .resize(device, &self.layout, &self.feedback, size.0 * size.1);
        self.feedback_size = size;
        self.group = bind_group(
            device,
            &self.layout_group,
            [&self.atlas, &self.page_texture],
            &self.sampler,
            [&self.params, &self.feedback],
        );
        let gpu_bytes = self.residency.stats().gpu_bytes + feedback_bytes(size) - old_bytes;
        self.residency.set_gpu_bytes(gpu_bytes);
    }

    /// The bind group layout the WGSL module expects.
    pub fn bind_group_layout(&self) -> &wgpu::BindGroupLayout {
        &self.layout_group
    }

    /// The bind group to set at the module's group.
    pub fn bind_group(&self) -> &wgpu::BindGroup {
        &self.group
    }

    /// The tiling.
    pub fn layout(&self) -> &VtLayout {
        &self.layout
    }

    /// Counters and gauges.
    pub fn stats(&self) -> &VtStats {
        self.residency.stats()
    }

    /// Bytes of feedback asked of the readback ring so far: the
    /// de-duplicated list's prefix, a word per tile asked for (see the
    /// module documentation), not a word per feedback block.
    pub fn feedback_readback_bytes(&self) -> u64 {
        self.dedup.read_bytes()
    }

    /// The tile source.
    pub fn source(&self) -> &Arc<S> {
        &self.source
    }

    /// Feedback words (as read back) for the next [`update`](Self::update):
    /// for renderers that read the buffer themselves, and for tests.
    pub fn push_feedback(&self, words: Vec<u32>) {
        self.delivered.lock().expect("not poisoned").newest = Some((self.residency.frame(), words));
    }

    /// The frame's work (see the module documentation): feedback in, page
    /// faults resolved within the budgets as jobs on `frame` that fill
    /// `staging`, the page table and the parameters updated.
    pub fn update<'s>(
        &mut self,
        staging: &'s StagingFrame<'_>,
        frame: &mut Frame<'s>,
    ) -> Result<(), VirtualTextureError> {
        // The newest feedback only: older batches (frames whose readbacks
        // arrived together) describe views already left behind.
        let delivered = self.delivered.lock().expect("not poisoned").newest.take();
        let fault_ns = self.fault_ns.load(std::sync::atomic::Ordering::Relaxed);
        let workers = rayon::current_num_threads();
        self.residency.plan(
            delivered
                .as_ref()
                .map(|(rendered, words)| (*rendered, &words[..])),
            fault_ns,
            workers,
        );
        // The words' vector goes back for the next readback to fill; a frame
        // with no feedback (the GPU has not finished a newer one yet) has
        // only an empty stand-in, which goes nowhere: returning those grew
        // the spares by one a frame, each filled later (found on the H100,
        // where feedback arrives frames late; lavapipe delivers every frame).
        if let Some((_, words)) = delivered.filter(|(_, w)| w.capacity() > 0) {
            let mut mailbox = self.delivered.lock().expect("not poisoned");
            if mailbox.spare.len() < MAX_SPARE_FEEDBACK {
                mailbox.spare.push(words);
            }
        }
        for (k, &load) in self.residency.loads().iter().enumerate() {
            self.declare_fault(k, load, staging, frame)?;
        }
        self.upload_page_table(staging)?;
        self.write_params(staging)?;
        Ok(())
    }

    /// Declares the page-fault job of load `k`: the tile's bytes (decoded
    /// to RGBA8 where the atlas needs it) into staging memory aimed at its
    /// atlas slot. The job records what it did in `load_state[k]`.
    fn declare_fault<'s>(
        &self,
        k: usize,
        Load {
            tile,
            slot,
            may_defer,
        }: Load,
        staging: &'s StagingFrame<'_>,
        frame: &mut Frame<'s>,
    ) -> Result<(), VirtualTextureError> {
        let s = self.layout.slot();
        let mut piece = staging.write_texture(
            &self.atlas,
            0,
            wgpu::Origin3d {
                x: slot.0 as u32 * s,
                y: slot.1 as u32 * s,
                z: 0,
            },
            wgpu::Extent3d {
                width: s,
                height: s,
                depth_or_array_layers: 1,
            },
            wgpu::TextureAspect::All,
        )?;
        let source = Arc::clone(&self.source);
        let (decode_vk, fault_ns) = (self.decode_vk, Arc::clone(&self.fault_ns));
        let state = Arc::clone(&self.load_state);
        // Failed until the job says otherwise (a panic says nothing).
        state[k].store(LOAD_FAILED, std::sync::atomic::Ordering::Relaxed);
        frame.add("page fault", move |_| {
            let started = std::time::Instant::now();
            // Never wait for a disk inside a frame: a tile not in memory
            // yet is put off (its read-ahead has started) and loaded
            // when feedback asks again.
            // The tile is read into this thread's buffer, kept from job
            // to job: a frame's faults allocate nothing once it has grown.
            let written = TILE_SCRATCH.with_borrow_mut(
                |scratch| -> Result<bool, forgeflow_graph::JobError> {
                    let bytes = if may_defer {
                        source.tile_if_cached(tile, scratch)?
                    } else {
                        Some(source.tile(tile)?)
                    };
                    let Some(bytes) = bytes else {
                        return Ok(false);
                    };
                    match decode_vk {
                        None => piece.write_tight(&bytes)?,
                        Some(vk) => {
                            let (_, rgba) =
                                forgeflow_jobs::texture::decode::decode(vk, &bytes, s, s)?;
                            piece.write_tight(&rgba)?
                        }
                    }
                    Ok(true)
                },
            )?;
            if !written {
                state[k].store(LOAD_PUT_OFF, std::sync::atomic::Ordering::Release);
                return Ok(());
            }
            // An exponential average (1/8 weight): a racy update loses at
            // most one sample.
            let ns = started.elapsed().as_nanos() as u64;
            let old = fault_ns.load(std::sync::atomic::Ordering::Relaxed);
            let new = if old == 0 { ns } else { old - old / 8 + ns / 8 };
            fault_ns.store(new, std::sync::atomic::Ordering::Relaxed);
            state[k].store(LOAD_WRITTEN, std::sync::atomic::Ordering::Release);
            Ok(())
        })?;
        Ok(())
    }

    /// Applies the page table's deltas to the CPU copy and uploads, per level,
    /// the rows they touched.
    fn upload_page_table(&mut self, staging: &StagingFrame<'_>) -> Result<(), VirtualTextureError> {
        let mut deltas = std::mem::take(&mut self.deltas);
        self.residency.page_table_mut().swap_deltas(&mut deltas);
        let mips = self.layout.mips() as usize;
        self.dirty_rows.clear();
        if std::mem::take(&mut self.page_all_dirty) {
            let layout = self.layout;
            self.dirty_rows
                .extend((0..mips as u32).map(|m| Some((0, layout.tiles_at(m).1 - 1))));
        } else {
            self.dirty_rows.resize(mips, None);
        }
        for d in &deltas {
            let m = d.tile.mip as usize;
            let (w, _) = self.layout.tiles_at(m as u32);
            self.page_levels[m][(d.tile.y as u32 * w + d.tile.x as u32) as usize] = d.entry.pack();
            let y = d.tile.y as u32;
            self.dirty_rows[m] =
                Some(self.dirty_rows[m].map_or((y, y), |(a, b)| (a.min(y), b.max(y))));
        }
        self.deltas = deltas;
        for m in 0..mips {
            let Some((y0, y1)) = self.dirty_rows[m] else {
                continue;
            };
            let (w, _) = self.layout.tiles_at(m as u32);
            let mut piece = staging.write_texture(
                &self.page_texture,
                m as u32,
                wgpu::Origin3d { x: 0, y: y0, z: 0 },
                wgpu::Extent3d {
                    width: w,
                    height: y1 - y0 + 1,
                    depth_or_array_layers: 1,
                },
                wgpu::TextureAspect::All,
            )?;
            self.page_bytes.clear();
            self.page_bytes.extend(
                self.page_levels[m][(y0 * w) as usize..((y1 + 1) * w) as usize]
                    .iter()
                    .flat_map(|e| e.to_le_bytes()),
            );
            piece.write_tight(&self.page_bytes)?;
        }
        Ok(())
    }

    /// The parameters through the staging ring (no buffer of wgpu's own per
    /// write, as `Queue::write_buffer` would make).
    fn write_params(&self, staging: &StagingFrame<'_>) -> Result<(), VirtualTextureError> {
        let (w, h) = self.layout.size();
        let atlas = self.atlas.size();
        let div = self.config.feedback_divisor.max(1);
        // The feedback fragment moves through the block over frames (a
        // stride coprime with the block's area visits every position).
        let k = (self.residency.frame() * 37) % (div as u64 * div as u64);
        let jitter = [(k % div as u64) as u32, (k / div as u64) as u32];
        let mut p = [0u8; PARAMS_BYTES as usize];
        let mut at = 0;
        let mut put = |b: [u8; 4]| {
            p[at..at + 4].copy_from_slice(&b);
            at += 4;
        };
        for f in [
            w as f32,
            h as f32,
            atlas.width as f32,
            atlas.height as f32,
            self.layout.tile() as f32,
            self.layout.border() as f32,
            self.layout.slot() as f32,
            self.layout.mips() as f32,
            self.residency.bias(),
        ] {
            put(f.to_le_bytes());
        }
        for u in [
            div,
            self.feedback_size.0,
            self.feedback_size.1,
            jitter[0],
            jitter[1],
            self.config.texture_id as u32 + 1,
            0,
        ] {
            put(u.to_le_bytes());
        }
        staging
            .write_buffer(&self.params, 0, PARAMS_BYTES)?
            .write(&p)?;
        Ok(())
    }

    /// After the frame's jobs have run (`Frame::run`), before
    /// `StagingFrame::finish`: a tile whose page-fault job failed (a
    /// corrupt pack, a panic) or put its load off (its bytes were not in
    /// memory yet) leaves the cache and the page table again, and the
    /// page-table rows it touched are staged once more in this frame, so no
    /// pass samples a slot whose bytes never arrived; feedback asks for the
    /// tile again, and its request keeps its age (the latency histogram
    /// counts it when a load succeeds). Returns how many loads failed (put
    /// off loads are counted in [`VtStats::deferred_loads`]). (The coarsest
    /// tile, if its first load fails, stays mapped and is loaded again next
    /// update.)
    pub fn settle_faults(
        &mut self,
        staging: &StagingFrame<'_>,
    ) -> Result<usize, VirtualTextureError> {
        let state = &self.load_state;
        let (failed, unloaded) =
            self.residency.settle(
                |k| match state[k].load(std::sync::atomic::Ordering::Acquire) {
                    LOAD_WRITTEN => LoadOutcome::Written,
                    LOAD_PUT_OFF => LoadOutcome::PutOff,
                    _ => LoadOutcome::Failed,
                },
            );
        if unloaded > 0 {
            self.upload_page_table(staging)?;
        }
        Ok(failed)
    }

    /// Tags this update's loads with the runtime's frame `frame` (after
    /// [`settle_faults`](Self::settle_faults)), and forgets the tags of
    /// frames up to `completed`, which reached the GPU.
    pub(crate) fn note_loads(&mut self, frame: u64, completed: Option<u64>) {
        while self
            .recent_loads
            .front()
            .is_some_and(|(f, _)| completed.is_some_and(|c| *f <= c))
        {
            self.recent_loads.pop_front();
        }
        let tiles: Vec<TileId> = self.residency.loads().iter().map(|l| l.tile).collect();
        if !tiles.is_empty() {
            self.recent_loads.push_back((frame, tiles));
        }
    }

    /// The runtime's frame `frame` never reached the GPU (its encoder was
    /// dropped unsubmitted): the tiles it loaded leave the cache and the page
    /// table, and the whole page table goes up with the next update, since
    /// the rows staged with them never arrived. Returns the tiles taken back.
    pub(crate) fn abandon(&mut self, frame: u64) -> usize {
        let Some(at) = self.recent_loads.iter().position(|(f, _)| *f == frame) else {
            return 0;
        };
        let (_, tiles) = self.recent_loads.remove(at).expect("found");
        self.page_all_dirty = true;
        self.residency.forget(&tiles)
    }

    /// After the passes that wrote feedback: copies it aside and clears the
    /// buffer for the next frame, and asks `readback` for the copy (the words
    /// arrive with a later `ReadbackRing::poll`, for a later
    /// [`update`](Self::update)). A readback frame with no room drops this
    /// frame's feedback (the next one will ask again).
    pub fn end_frame(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        readback: &mut ReadbackFrame<'_>,
    ) {
        let (list, bytes) = self.dedup.record(encoder);
        encoder.clear_buffer(&self.feedback, 0, None);
        let delivered = Arc::clone(&self.delivered);
        let rendered = self.residency.frame();
        let words_of = self.dedup.words_of();
        let _ = readback.read_buffer(list, 0, bytes, move |r| {
            if let Ok(data) = r {
                let mut mailbox = delivered.lock().expect("not poisoned");
                let mut words = mailbox.spare.pop().unwrap_or_default();
                words.clear();
                words_of(data.bytes, &mut words);
                // Only the newest feedback is kept; an unread older one is
                // emptied for reuse (a few at most are kept).
                if let Some((_, old)) = mailbox.newest.replace((rendered, words)) {
                    if mailbox.spare.len() < MAX_SPARE_FEEDBACK {
                        mailbox.spare.push(old);
                    }
                }
            }
        });
    }
}
