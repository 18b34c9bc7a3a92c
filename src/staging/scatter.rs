//! GPU scatter of small buffer uploads.
//!
//! wgpu (over Vulkan) puts a pipeline barrier between two copies into the same
//! buffer, so a frame of 1600 small pieces bound for one pool buffer becomes
//! 1600 serialized copies, each too small to use the PCIe link. The scatter
//! path copies the frame's staging bytes to a device-local landing buffer in
//! one transfer, then one compute dispatch per destination writes every piece
//! (see `scatter.wgsl`). It needs the destination to have `STORAGE` usage and to
//! fit one storage binding; other pieces, large ones and textures use copy commands.

use std::collections::HashMap;

/// Bytes per piece-table entry (four u32).
pub(super) const ENTRY_BYTES: u64 = 16;
/// Pieces one dispatch covers (the dynamic binding's size).
pub(super) const MAX_PIECES_PER_DISPATCH: u64 = 4096;
/// The piece table's buffer.
pub(super) const TABLE_BYTES: u64 = 4 << 20;

pub(super) struct Scatter {
    pub(super) landing: wgpu::Buffer,
    pub(super) table: wgpu::Buffer,
    layout: wgpu::BindGroupLayout,
    pub(super) pipeline: wgpu::ComputePipeline,
    /// Bind groups per destination buffer, with the frame they were last used.
    /// Entries unused for a while are dropped so that destinations the embedder
    /// released are not kept alive.
    bind_groups: HashMap<wgpu::Buffer, (wgpu::BindGroup, u64)>,
    pub(super) max_binding: u64,
    pub(super) offset_alignment: u64,
}

impl Scatter {
    /// The scatter objects, or `None` when the device cannot bind a landing buffer this large.
    pub(super) fn new(device: &wgpu::Device, landing_size: u64) -> Option<Scatter> {
        let limits = device.limits();
        let max_binding = limits.max_storage_buffer_binding_size;
        if landing_size > max_binding || limits.max_storage_buffers_per_shader_stage < 3 {
            return None;
        }
        let landing = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("forgeflow staging landing"),
            size: landing_size,
            usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        let table = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("forgeflow staging piece table"),
            size: TABLE_BYTES,
            usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        let storage = |binding, read_only, has_dynamic_offset, min| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only },
                has_dynamic_offset,
                min_binding_size: wgpu::BufferSize::new(min),
            },
            count: None,
        };
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("forgeflow scatter"),
            entries: &[
                storage(0, true, false, 4),
                storage(1, false, false, 4),
                storage(2, true, true, ENTRY_BYTES),
            ],
        });
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("forgeflow scatter"),
            source: wgpu::ShaderSource::Wgsl(include_str!("scatter.wgsl").into()),
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("forgeflow scatter"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("forgeflow scatter"),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some("scatter"),
            compilation_options: Default::default(),
            cache: None,
        });
        Some(Scatter {
            landing,
            table,
            layout,
            pipeline,
            bind_groups: HashMap::new(),
            max_binding,
            offset_alignment: limits.min_storage_buffer_offset_alignment as u64,
        })
    }

    /// Whether pieces bound for `dst` can be scattered.
    pub(super) fn accepts(&self, dst: &wgpu::Buffer) -> bool {
        dst.usage().contains(wgpu::BufferUsages::STORAGE) && dst.size() <= self.max_binding
    }

    /// The bind group for `dst` (created on first use).
    pub(super) fn bind_group(
        &mut self,
        device: &wgpu::Device,
        dst: &wgpu::Buffer,
        frame: u64,
    ) -> &wgpu::BindGroup {
        let (landing, table, layout) = (&self.landing, &self.table, &self.layout);
        let entry = self.bind_groups.entry(dst.clone()).or_insert_with(|| {
            let bg = device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("forgeflow scatter"),
                layout,
                entries: &[
                    wgpu::BindGroupEntry {
                        binding: 0,
                        resource: landing.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: dst.as_entire_binding(),
                    },
                    wgpu::BindGroupEntry {
                        binding: 2,
                        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: table,
                            offset: 0,
                            size: wgpu::BufferSize::new(MAX_PIECES_PER_DISPATCH * ENTRY_BYTES),
                        }),
                    },
                ],
            });
            (bg, frame)
        });
        entry.1 = frame;
        &entry.0
    }

    /// Drops bind groups (and so the references to their destinations) unused since `before`.
    pub(super) fn evict(&mut self, before: u64) {
        self.bind_groups.retain(|_, (_, last)| *last >= before);
    }
}
