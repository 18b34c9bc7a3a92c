//! The scene the examples draw over a virtual texture: a low flight over the
//! ground plane, the ground coloured by the virtual texture (whose
//! feedback the same pass records), a loaded texture shown in the top-left
//! corner once it is ready. What an embedder's own renderer would be: the
//! examples show how forgeflow fits around it.

/// The scene's WGSL, after `forgeflow::vt::wgsl(1)`: its own bind group 0
/// (the view, the picture, a sampler), the virtual texture's at 1.
pub const SHADER: &str = "
struct View { pos: vec4<f32>, forward: vec4<f32>, right: vec4<f32>, up: vec4<f32>, flags: vec4<f32> };
@group(0) @binding(0) var<uniform> view: View;
@group(0) @binding(1) var picture: texture_2d<f32>;
@group(0) @binding(2) var linear: sampler;

@vertex
fn vs(@builtin(vertex_index) i: u32) -> @builtin(position) vec4<f32> {
    let p = vec2<f32>(f32((i << 1u) & 2u), f32(i & 2u));
    return vec4<f32>(p * 2.0 - 1.0, 0.0, 1.0);
}

@fragment
fn fs(@builtin(position) frag: vec4<f32>) -> @location(0) vec4<f32> {
    let screen = view.flags.yz;
    let ndc = vec2<f32>(frag.x / screen.x * 2.0 - 1.0, 1.0 - frag.y / screen.y * 2.0);
    let aspect = screen.x / screen.y;
    let dir = normalize(view.forward.xyz + ndc.x * 0.58 * aspect * view.right.xyz + ndc.y * 0.58 * view.up.xyz);
    let t = view.pos.y / max(-dir.y, 0.002);
    let uv = view.pos.xz + dir.xz * t;
    let ddx = dpdx(uv);
    let ddy = dpdy(uv);
    vt_feedback(frag.xy, uv, ddx, ddy);
    let haze = clamp((t - 0.5) / 0.5, 0.0, 1.0); // the horizon fades into the sky
    var colour = mix(vt_sample(uv, ddx, ddy).rgb, vec3<f32>(0.62, 0.72, 0.86), haze);
    let inset = frag.xy / 160.0;
    if (view.flags.x > 0.5 && inset.x < 1.0 && inset.y < 1.0) {
        colour = textureSampleLevel(picture, linear, inset, 0.0).rgb;
    }
    return vec4<f32>(colour, 1.0);
}
";

/// Where the scene is seen from: a position over the ground plane (x and z
/// in the virtual texture's [0, 1] coordinates, y the height above it), a
/// heading (radians, about the vertical) and a pitch (radians, negative
/// looks down).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Camera {
    /// x, height, z.
    pub position: [f32; 3],
    /// Heading in radians.
    pub yaw: f32,
    /// Pitch in radians.
    pub pitch: f32,
}

impl Camera {
    /// The camera at frame `f` of the examples' flight: low over the terrain
    /// along a slow curve.
    pub fn flight(f: u32) -> Self {
        let a = 0.6 + f as f32 * 0.004;
        Camera {
            position: [0.5 + 0.3 * a.cos(), 0.012, 0.5 + 0.3 * (a * 1.3).sin()],
            yaw: a + 1.9,
            pitch: -0.28,
        }
    }

    /// The view uniform's bytes for this camera, whether the picture is
    /// shown, and the screen's size.
    pub fn uniform(&self, picture: bool, (width, height): (u32, u32)) -> Vec<u8> {
        let [x, y, z] = self.position;
        let (h, p) = (self.yaw, self.pitch);
        let pos = [x, y, z, 0.0];
        let forward = [h.cos() * p.cos(), p.sin(), h.sin() * p.cos(), 0.0];
        let right = [-h.sin(), 0.0, h.cos(), 0.0];
        let up = [
            right[1] * forward[2] - right[2] * forward[1],
            right[2] * forward[0] - right[0] * forward[2],
            right[0] * forward[1] - right[1] * forward[0],
            0.0,
        ];
        let flags = [picture as u32 as f32, width as f32, height as f32, 0.0];
        [pos, forward, right, up, flags]
            .iter()
            .flatten()
            .flat_map(|v: &f32| v.to_le_bytes())
            .collect()
    }
}

/// A texture of `size` the scene is drawn into and read back from
/// (RGBA8, the format [`Flight::new`] is made for in the examples).
pub fn target(device: &wgpu::Device, label: &str, (width, height): (u32, u32)) -> wgpu::Texture {
    device.create_texture(&wgpu::TextureDescriptor {
        label: Some(label),
        size: wgpu::Extent3d {
            width,
            height,
            depth_or_array_layers: 1,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: wgpu::TextureFormat::Rgba8Unorm,
        usage: wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC,
        view_formats: &[],
    })
}

/// The scene's pipeline and its own bind group.
pub struct Flight {
    pipeline: wgpu::RenderPipeline,
    layout: wgpu::BindGroupLayout,
    view: wgpu::Buffer,
    sampler: wgpu::Sampler,
    group: wgpu::BindGroup,
    picture: bool,
}

impl Flight {
    /// The pipeline for a `target` format, over a virtual texture whose bind
    /// group layout is `vt_layout`; a 1x1 placeholder stands for the picture.
    pub fn new(
        device: &wgpu::Device,
        vt_layout: &wgpu::BindGroupLayout,
        target: wgpu::TextureFormat,
    ) -> Self {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("flight"),
            source: wgpu::ShaderSource::Wgsl(
                format!("{}\n{SHADER}", forgeflow::vt::wgsl(1)).into(),
            ),
        });
        let entry = |binding, ty| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::FRAGMENT,
            ty,
            count: None,
        };
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: None,
            entries: &[
                entry(
                    0,
                    wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                ),
                entry(
                    1,
                    wgpu::BindingType::Texture {
                        sample_type: wgpu::TextureSampleType::Float { filterable: true },
                        view_dimension: wgpu::TextureViewDimension::D2,
                        multisampled: false,
                    },
                ),
                entry(
                    2,
                    wgpu::BindingType::Sampler(wgpu::SamplerBindingType::Filtering),
                ),
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: None,
            bind_group_layouts: &[Some(&layout), Some(vt_layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("flight"),
            layout: Some(&pipeline_layout),
            vertex: wgpu::VertexState {
                module: &module,
                entry_point: Some("vs"),
                compilation_options: Default::default(),
                buffers: &[],
            },
            primitive: Default::default(),
            depth_stencil: None,
            multisample: Default::default(),
            fragment: Some(wgpu::FragmentState {
                module: &module,
                entry_point: Some("fs"),
                compilation_options: Default::default(),
                targets: &[Some(target.into())],
            }),
            multiview_mask: None,
            cache: None,
        });
        let view = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("flight view"),
            size: 80,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let sampler = device.create_sampler(&wgpu::SamplerDescriptor {
            mag_filter: wgpu::FilterMode::Linear,
            min_filter: wgpu::FilterMode::Linear,
            ..Default::default()
        });
        let placeholder = device.create_texture(&wgpu::TextureDescriptor {
            label: Some("flight placeholder"),
            size: wgpu::Extent3d {
                width: 1,
                height: 1,
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::Rgba8Unorm,
            usage: wgpu::TextureUsages::TEXTURE_BINDING,
            view_formats: &[],
        });
        let group = bind_group(device, &layout, &view, &sampler, &placeholder);
        Flight {
            pipeline,
            layout,
            view,
            sampler,
            group,
            picture: false,
        }
    }

    /// Shows `picture` in the corner from now on.
    pub fn show(&mut self, device: &wgpu::Device, picture: &wgpu::Texture) {
        self.group = bind_group(device, &self.layout, &self.view, &self.sampler, picture);
        self.picture = true;
    }

    /// Whether a picture is shown.
    pub fn shows_picture(&self) -> bool {
        self.picture
    }

    /// Draws frame `f` of the flight at `size` into `target`, the ground
    /// from the virtual texture's bind group `vt`.
    pub fn draw(
        &self,
        queue: &wgpu::Queue,
        encoder: &mut wgpu::CommandEncoder,
        target: &wgpu::TextureView,
        vt: &wgpu::BindGroup,
        (f, size): (u32, (u32, u32)),
    ) {
        self.draw_from(queue, encoder, target, vt, (&Camera::flight(f), size));
    }

    /// Draws the scene seen from `camera` at `size` into `target`, the
    /// ground from the virtual texture's bind group `vt`.
    pub fn draw_from(
        &self,
        queue: &wgpu::Queue,
        encoder: &mut wgpu::CommandEncoder,
        target: &wgpu::TextureView,
        vt: &wgpu::BindGroup,
        (camera, size): (&Camera, (u32, u32)),
    ) {
        queue.write_buffer(&self.view, 0, &camera.uniform(self.picture, size));
        let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
            color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                view: target,
                depth_slice: None,
                resolve_target: None,
                ops: wgpu::Operations::default(),
            })],
            ..Default::default()
        });
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.group, &[]);
        pass.set_bind_group(1, vt, &[]);
        pass.draw(0..3, 0..1);
    }
}

fn bind_group(
    device: &wgpu::Device,
    layout: &wgpu::BindGroupLayout,
    view: &wgpu::Buffer,
    sampler: &wgpu::Sampler,
    picture: &wgpu::Texture,
) -> wgpu::BindGroup {
    let picture = picture.create_view(&wgpu::TextureViewDescriptor {
        dimension: Some(wgpu::TextureViewDimension::D2),
        array_layer_count: Some(1),
        ..Default::default()
    });
    device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout,
        entries: &[
            wgpu::BindGroupEntry {
                binding: 0,
                resource: view.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 1,
                resource: wgpu::BindingResource::TextureView(&picture),
            },
            wgpu::BindGroupEntry {
                binding: 2,
                resource: wgpu::BindingResource::Sampler(sampler),
            },
        ],
    })
}
