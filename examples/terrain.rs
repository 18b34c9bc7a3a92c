//! A small renderer that embeds forgeflow: the reference for embedders.
//!
//! It streams a 16384x16384 procedural terrain as a virtual texture (the
//! page faults run as jobs; the feedback comes from its own pass) and loads a
//! KTX2 texture through the runtime, then draws a low flight over the terrain
//! with the texture in a corner, headless, writing a few frames as PNGs.
//!
//! ```text
//! cargo run --release --example terrain -- [TEXTURE.ktx2] [--frames N] [--out DIR]
//! ```
//!
//! Without a texture argument it takes `t2d/BC7.ktx2` from the shared corpus
//! when there is one, else it draws the terrain alone.

use forgeflow_test_support::gpu::VerifyRead as _;
use std::path::PathBuf;

use forgeflow::jobs::vt::VtLayout;

use forgeflow::runtime::{Runtime, RuntimeConfig, TextureHandle, TextureStatus};
use forgeflow::vt::{wgsl, VtConfig};
use forgeflow_tools::Terrain;

const SIZE: (u32, u32) = (640, 360);

/// The scene: a ray per pixel meets the ground plane; the virtual texture
/// gives its colour (and records which tiles it needed); the top-left corner
/// shows the loaded texture once it is ready.
const SHADER: &str = "
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
    let ndc = vec2<f32>(frag.x / 640.0 * 2.0 - 1.0, 1.0 - frag.y / 360.0 * 2.0);
    let dir = normalize(view.forward.xyz + ndc.x * 0.58 * 1.78 * view.right.xyz + ndc.y * 0.58 * view.up.xyz);
    let t = view.pos.y / max(-dir.y, 0.002);
    let uv = view.pos.xz + dir.xz * t;
    let ddx = dpdx(uv);
    let ddy = dpdy(uv);
    vt_feedback(frag.xy, uv, ddx, ddy);
    let haze = clamp((t - 0.5) / 0.5, 0.0, 1.0); // the horizon fades into the sky
    var colour = mix(vt_sample(uv, ddx, ddy).rgb, vec3<f32>(0.62, 0.72, 0.86), haze);
    let inset = frag.xy / 160.0;
    let shown = textureSampleLevel(picture, linear, inset, 0.0);
    if (view.flags.x > 0.5 && inset.x < 1.0 && inset.y < 1.0) {
        colour = shown.rgb;
    }
    return vec4<f32>(colour, 1.0);
}
";

/// The camera at frame `f`: low over the terrain along a slow curve (five
/// vec4s: position, forward, right, up, flags).
fn camera(f: u32, picture_ready: bool) -> Vec<u8> {
    let a = 0.6 + f as f32 * 0.004;
    let pos = [0.5 + 0.3 * a.cos(), 0.012, 0.5 + 0.3 * (a * 1.3).sin(), 0.0];
    let (h, p) = (a + 1.9, -0.28f32);
    let forward = [h.cos() * p.cos(), p.sin(), h.sin() * p.cos(), 0.0];
    let right = [-h.sin(), 0.0, h.cos(), 0.0];
    let up = [
        right[1] * forward[2] - right[2] * forward[1],
        right[2] * forward[0] - right[0] * forward[2],
        right[0] * forward[1] - right[1] * forward[0],
        0.0,
    ];
    let flags = [picture_ready as u32 as f32, 0.0, 0.0, 0.0];
    [pos, forward, right, up, flags]
        .iter()
        .flatten()
        .flat_map(|v: &f32| v.to_le_bytes())
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (mut picture, mut frames, mut out) = (None, 240u32, std::env::temp_dir());
    while let Some(a) = args.next() {
        match a.as_str() {
            "--frames" => frames = args.next().ok_or("--frames needs a number")?.parse()?,
            "--out" => out = PathBuf::from(args.next().ok_or("--out needs a folder")?),
            path => picture = Some(PathBuf::from(path)),
        }
    }
    let picture = picture.or_else(|| {
        let corpus = std::env::var_os("FORGEFLOW_CORPUS")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"));
        Some(corpus.join("ktx2/t2d/BC7.ktx2")).filter(|p| p.is_file())
    });
    std::fs::create_dir_all(&out)?;

    // 1. The embedder's device and queue (forgeflow's helper opens the
    //    default adapter with the compression features it has).
    let gpu = forgeflow::gpu::open()?;
    let (device, queue) = (&gpu.device, &gpu.queue);

    // 2. The runtime, and what it streams.
    let mut rt = Runtime::new(device, queue, RuntimeConfig::default())?;
    let layout = VtLayout::new(16384, 16384, 128, 4)?;
    let terrain = rt.add_virtual_texture(
        Terrain::new(layout, 1),
        VtConfig {
            budget_bytes: 64 << 20,
            ..VtConfig::default()
        },
        SIZE,
    )?;
    let texture: Option<TextureHandle> = picture.as_ref().map(|p| rt.load_texture_path(p));

    // 3. The embedder's pipeline: its own bind group 0, the virtual texture's at 1.
    let vt_layout = rt
        .virtual_texture::<Terrain>(terrain)?
        .bind_group_layout()
        .clone();
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("terrain"),
        source: wgpu::ShaderSource::Wgsl(format!("{}\n{SHADER}", wgsl(1)).into()),
    });
    let view_buffer = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("view"),
        size: 80,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let entry = |binding, ty| wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::FRAGMENT,
        ty,
        count: None,
    };
    let own_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
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
    let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
        label: Some("terrain"),
        layout: Some(
            &device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                label: None,
                bind_group_layouts: &[Some(&own_layout), Some(&vt_layout)],
                immediate_size: 0,
            }),
        ),
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
            targets: &[Some(wgpu::TextureFormat::Rgba8Unorm.into())],
        }),
        multiview_mask: None,
        cache: None,
    });
    let image = |(width, height), usage| {
        device.create_texture(&wgpu::TextureDescriptor {
            label: None,
            size: wgpu::Extent3d {
                width,
                height,
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: wgpu::TextureFormat::Rgba8Unorm,
            usage,
            view_formats: &[],
        })
    };
    let target = image(
        SIZE,
        wgpu::TextureUsages::RENDER_ATTACHMENT | wgpu::TextureUsages::COPY_SRC,
    );
    let target_view = target.create_view(&Default::default()); // once, not per frame
                                                               // Until the texture is ready, a 1x1 placeholder fills its binding.
    let placeholder = image((1, 1), wgpu::TextureUsages::TEXTURE_BINDING);
    let sampler = device.create_sampler(&wgpu::SamplerDescriptor {
        mag_filter: wgpu::FilterMode::Linear,
        min_filter: wgpu::FilterMode::Linear,
        ..Default::default()
    });
    let group_for = |t: &wgpu::Texture| {
        let view = t.create_view(&wgpu::TextureViewDescriptor {
            dimension: Some(wgpu::TextureViewDimension::D2),
            array_layer_count: Some(1),
            ..Default::default()
        });
        device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &own_layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: view_buffer.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: wgpu::BindingResource::TextureView(&view),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: wgpu::BindingResource::Sampler(&sampler),
                },
            ],
        })
    };
    let mut group = group_for(&placeholder);
    let mut picture_ready = false;

    // 4. The frame loop.
    for f in 0..frames {
        rt.begin_frame()?;
        if let Some(h) = texture.filter(|_| !picture_ready) {
            match rt.texture(h)? {
                TextureStatus::Ready(t) => {
                    group = group_for(t.texture);
                    picture_ready = true;
                }
                TextureStatus::Failed(e) => return Err(e.clone().into()),
                _ => {}
            }
        }
        let mut encoder = device.create_command_encoder(&Default::default());
        let report = rt.end_frame(&mut encoder)?; // uploads first, into our encoder
        if let Some(failure) = report.failure {
            eprintln!("frame {f}: {failure}");
        }
        queue.write_buffer(&view_buffer, 0, &camera(f, picture_ready));
        {
            let mut pass = encoder.begin_render_pass(&wgpu::RenderPassDescriptor {
                color_attachments: &[Some(wgpu::RenderPassColorAttachment {
                    view: &target_view,
                    depth_slice: None,
                    resolve_target: None,
                    ops: wgpu::Operations::default(),
                })],
                ..Default::default()
            });
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, &group, &[]);
            pass.set_bind_group(1, rt.vt_bind_group(terrain)?, &[]);
            pass.draw(0..3, 0..1);
        }
        queue.submit([encoder.finish()]); // the frame's fence follows this submission
        if f % 60 == 59 || f + 1 == frames {
            let pixels = gpu.read_texture(&target, 0, 0..1)?;
            let path = out.join(format!("terrain-{f:04}.png"));
            let mut png = png::Encoder::new(std::fs::File::create(&path)?, SIZE.0, SIZE.1);
            png.set_color(png::ColorType::Rgba);
            png.write_header()?.write_image_data(&pixels)?;
            let vt = rt.vt_stats(terrain)?;
            println!(
                "{}: {} tiles resident, {:.1}% hits, texture {}",
                path.display(),
                vt.resident,
                100.0 * vt.hits as f64 / vt.requests.max(1) as f64,
                if picture_ready { "shown" } else { "loading" }
            );
        }
    }
    Ok(())
}
