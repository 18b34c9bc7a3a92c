//! Feedback de-duplicated on the GPU, so that what is read back follows the
//! tiles a frame asked for, not its pixels.
//!
//! After the frame's passes, a compute pass (`dedup.wgsl`) runs one
//! invocation per feedback word: the word's tile sets its bit in a bitmap of
//! every tile of the texture, and the invocation that set it first appends
//! the word to a list (`[count, words...]`, at most one word per tile). Only
//! a prefix of the list is read back: twice as many words as the last list
//! that arrived held (at least [`MIN_READ_WORDS`]), so a flythrough reads
//! back a few hundred words a frame where a 1080p screen has 8,160 feedback
//! words. A list longer than what was read is cut (its count says so; the
//! next frames read more, and the jittered feedback asks again).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use forgeflow_jobs::vt::VtLayout;

/// Words read back at least, whatever the last list held.
pub const MIN_READ_WORDS: u32 = 64;
/// The parameters: words, capacity, workgroups across, and per level (16 at
/// most) its first dense tile index, tiles across and down.
const PARAMS_BYTES: u64 = 16 + 16 * 16;
const WORKGROUP: u32 = 64;
const MAX_GROUPS_X: u32 = 65_535;

/// What depends on the feedback buffer's size.
struct Sized {
    list: wgpu::Buffer,
    /// The list's prefix, copied out before the next frame clears it: what
    /// the readback ring reads, whenever it records its copies.
    list_copy: wgpu::Buffer,
    group: wgpu::BindGroup,
    words: u32,
    capacity: u32,
}

/// The de-duplication pass over one virtual texture's feedback buffer.
pub(super) struct FeedbackDedup {
    pipeline: wgpu::ComputePipeline,
    layout: wgpu::BindGroupLayout,
    seen: wgpu::Buffer,
    sized: Sized,
    /// Words the last list that arrived held (its count).
    last_count: Arc<AtomicU32>,
    /// Bytes asked of the readback ring, in all.
    read_bytes: Arc<AtomicU64>,
}

impl FeedbackDedup {
    /// GPU bytes of the pass's buffers for `words` feedback words.
    pub fn gpu_bytes(layout: &VtLayout, words: u32) -> u64 {
        let capacity = u64::from(words.min(layout.tile_count()));
        PARAMS_BYTES + u64::from(layout.tile_count().div_ceil(32)) * 4 + 2 * 4 * (1 + capacity)
    }

    /// The pass over `feedback` (`words` words) for a texture of `layout`.
    pub fn new(
        device: &wgpu::Device,
        layout: &VtLayout,
        feedback: &wgpu::Buffer,
        words: u32,
    ) -> Self {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("forgeflow vt feedback dedup"),
            source: wgpu::ShaderSource::Wgsl(include_str!("dedup.wgsl").into()),
        });
        let entry = |binding, ty| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty,
            count: None,
        };
        let buffer = |ty| wgpu::BindingType::Buffer {
            ty,
            has_dynamic_offset: false,
            min_binding_size: None,
        };
        use wgpu::BufferBindingType as B;
        let bind_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("forgeflow vt feedback dedup"),
            entries: &[
                entry(0, buffer(B::Uniform)),
                entry(1, buffer(B::Storage { read_only: true })),
                entry(2, buffer(B::Storage { read_only: false })),
                entry(3, buffer(B::Storage { read_only: false })),
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("forgeflow vt feedback dedup"),
            bind_group_layouts: &[Some(&bind_layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("forgeflow vt feedback dedup"),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some("dedup"),
            compilation_options: Default::default(),
            cache: None,
        });
        let seen = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("forgeflow vt feedback seen tiles"),
            size: u64::from(layout.tile_count().div_ceil(32)).max(1) * 4,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let sized = sized(device, &bind_layout, layout, [feedback, &seen], words);
        FeedbackDedup {
            pipeline,
            layout: bind_layout,
            seen,
            sized,
            last_count: Arc::new(AtomicU32::new(0)),
            read_bytes: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Follows a feedback buffer made again at another size.
    pub fn resize(
        &mut self,
        device: &wgpu::Device,
        layout: &VtLayout,
        feedback: &wgpu::Buffer,
        words: u32,
    ) {
        self.sized = sized(device, &self.layout, layout, [feedback, &self.seen], words);
    }

    /// Records the pass (after the passes that wrote the feedback, before it
    /// is cleared) and the copy of the list's prefix to read back; returns
    /// that copy and its bytes.
    pub fn record(&self, encoder: &mut wgpu::CommandEncoder) -> (&wgpu::Buffer, u64) {
        let s = &self.sized;
        encoder.clear_buffer(&self.seen, 0, None);
        encoder.clear_buffer(&s.list, 0, Some(4));
        if s.words > 0 {
            let groups = s.words.div_ceil(WORKGROUP);
            let x = groups.min(MAX_GROUPS_X);
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("forgeflow vt feedback dedup"),
                timestamp_writes: None,
            });
            pass.set_pipeline(&self.pipeline);
            pass.set_bind_group(0, &s.group, &[]);
            pass.dispatch_workgroups(x, groups.div_ceil(x), 1);
        }
        let want = self
            .last_count
            .load(Ordering::Relaxed)
            .saturating_mul(2)
            .max(MIN_READ_WORDS)
            .min(s.capacity);
        let bytes = 4 * (1 + u64::from(want));
        encoder.copy_buffer_to_buffer(&s.list, 0, &s.list_copy, 0, bytes);
        self.read_bytes.fetch_add(bytes, Ordering::Relaxed);
        (&s.list_copy, bytes)
    }

    /// The words of a list read back (`[count, words...]`, a prefix), into
    /// `out`; notes the count for the next reads.
    pub fn words_of(&self) -> impl Fn(&[u8], &mut Vec<u32>) + Send + 'static {
        let last = Arc::clone(&self.last_count);
        move |bytes, out| {
            let mut words = bytes
                .chunks_exact(4)
                .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]));
            let count = words.next().unwrap_or(0);
            last.store(count, Ordering::Relaxed);
            out.extend(words.take(count as usize).filter(|&w| w != 0));
        }
    }

    /// Bytes of de-duplicated feedback asked of the readback ring so far.
    pub fn read_bytes(&self) -> u64 {
        self.read_bytes.load(Ordering::Relaxed)
    }
}

/// The parameters, the list, its copy and the bind group for `words`
/// feedback words.
fn sized(
    device: &wgpu::Device,
    bind_layout: &wgpu::BindGroupLayout,
    layout: &VtLayout,
    [feedback, seen]: [&wgpu::Buffer; 2],
    words: u32,
) -> Sized {
    let capacity = words.min(layout.tile_count());
    let groups = words.div_ceil(WORKGROUP).max(1);
    let mut params = vec![words, capacity, groups.min(MAX_GROUPS_X), 0];
    let mut start = 0;
    for m in 0..16 {
        let (x, y) = if m < layout.mips() {
            layout.tiles_at(m)
        } else {
            (0, 0)
        };
        params.extend([start, x, y, 0]);
        start += x * y;
    }
    let params_buffer = wgpu::util::DeviceExt::create_buffer_init(
        device,
        &wgpu::util::BufferInitDescriptor {
            label: Some("forgeflow vt feedback dedup params"),
            contents: &params
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<u8>>(),
            usage: wgpu::BufferUsages::UNIFORM,
        },
    );
    let list_bytes = 4 * (1 + u64::from(capacity));
    let list = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("forgeflow vt feedback list"),
        size: list_bytes,
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let list_copy = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("forgeflow vt feedback list copy"),
        size: list_bytes,
        usage: wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some("forgeflow vt feedback dedup"),
        layout: bind_layout,
        entries: &[
            wgpu::BindGroupEntry {
                binding: 0,
                resource: params_buffer.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 1,
                resource: feedback.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 2,
                resource: seen.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 3,
                resource: list.as_entire_binding(),
            },
        ],
    });
    Sized {
        list,
        list_copy,
        group,
        words,
        capacity,
    }
}
