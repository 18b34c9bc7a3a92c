//! `forgeflow-stress vt`: a scripted flythrough over a procedural terrain
//! streamed as a virtual texture, rendered headless with the feedback pass of
//! the WGSL module, a few frames written as PNGs.
//!
//! Each frame: the readback ring delivers earlier feedback, the virtual
//! texture resolves page faults as jobs (tiles made by the terrain source)
//! within its budgets, the frame renders a ground plane seen from a low camera
//! (a full-screen pass: a ray per pixel meets the plane, its texture
//! coordinates' derivatives pick the level), and the feedback goes to the
//! readback ring. After warm-up, every `PSNR_EVERY` frames the same view is
//! rendered by a reference virtual texture given every tile it asks for, and
//! compared. `--compare` runs the same path under a naive policy: plain LRU
//! (no minimum age), 8 uploads a frame, no mip bias; and once more with the
//! terrain's tiles made ahead on threads of their own (`ReadAhead`, the
//! `read_ahead` column): no frame waits for a tile, a fault takes a frame
//! longer.

use forgeflow_test_support::gpu::VerifyRead as _;
use std::path::PathBuf;
use std::time::Instant;

use forgeflow::graph::{Scheduler, SchedulerConfig};
use forgeflow::jobs::vt::{MipBias, ReadAhead, VtLayout};

use forgeflow::staging::{ReadbackConfig, ReadbackRing, StagingConfig, StagingRing};
use forgeflow::vt::{wgsl, VirtualTexture, VtConfig};
use forgeflow_tools::Terrain;

use crate::cli::Options;
use crate::report::{Integrity, Progress, ScenarioReport};

const PSNR_EVERY: u64 = 30;
/// Made tiles the terrain's read-ahead keeps waiting for their page fault.
const READ_AHEAD_TILES: usize = 256;
const STAGING_BYTES: u64 = 24 << 20;

const SCENE: &str = "
struct Camera {
    pos: vec3<f32>, tan_half: f32,
    forward: vec3<f32>, aspect: f32,
    right: vec3<f32>, width: f32,
    up: vec3<f32>, height: f32,
};
@group(0) @binding(0) var<uniform> cam: Camera;

@vertex
fn vs(@builtin(vertex_index) i: u32) -> @builtin(position) vec4<f32> {
    let p = vec2<f32>(f32((i << 1u) & 2u), f32(i & 2u));
    return vec4<f32>(p * 2.0 - 1.0, 0.0, 1.0);
}

@fragment
fn fs(@builtin(position) frag: vec4<f32>) -> @location(0) vec4<f32> {
    let ndc = vec2<f32>(frag.x / cam.width * 2.0 - 1.0, 1.0 - frag.y / cam.height * 2.0);
    let dir = normalize(cam.forward + ndc.x * cam.tan_half * cam.aspect * cam.right
        + ndc.y * cam.tan_half * cam.up);
    // The ground plane y = 0; rays above the horizon meet it far away.
    let t = cam.pos.y / max(-dir.y, 0.002);
    let uv = cam.pos.xz + dir.xz * t;
    let ddx = dpdx(uv);
    let ddy = dpdy(uv);
    vt_feedback(frag.xy, uv, ddx, ddy);
    let ground = vt_sample(uv, ddx, ddy);
    let fog = clamp((t - 0.6) / 0.6, 0.0, 1.0);
    return vec4<f32>(mix(ground.rgb, vec3<f32>(0.62, 0.72, 0.86), fog), 1.0);
}
";

/// The camera at frame `f` of `n`: low over the terrain, along a slow curve.
pub(crate) fn camera(f: u64, n: u64, size: (u32, u32)) -> Vec<u8> {
    let aspect = size.0 as f32 / size.1 as f32;
    let s = f as f32 / n.max(1) as f32;
    let angle = 0.6 + s * 2.2;
    let pos = [
        0.5 + 0.3 * (angle).cos(),
        0.012 + 0.006 * (s * 9.0).sin(),
        0.5 + 0.3 * (angle * 1.3).sin(),
    ];
    let heading = angle + 1.9;
    let pitch: f32 = -0.28;
    let forward = [
        heading.cos() * pitch.cos(),
        pitch.sin(),
        heading.sin() * pitch.cos(),
    ];
    let right = [-heading.sin(), 0.0, heading.cos()];
    let up = [
        right[1] * forward[2] - right[2] * forward[1],
        right[2] * forward[0] - right[0] * forward[2],
        right[0] * forward[1] - right[1] * forward[0],
    ];
    let mut b = Vec::with_capacity(64);
    for v in [pos, forward, right, up] {
        for c in v {
            b.extend_from_slice(&c.to_le_bytes());
        }
        b.extend_from_slice(&0f32.to_le_bytes());
    }
    let tan_half = (30f32).to_radians().tan();
    for (i, v) in [tan_half, aspect, size.0 as f32, size.1 as f32]
        .iter()
        .enumerate()
    {
        b[12 + 16 * i..16 + 16 * i].copy_from_slice(&v.to_le_bytes());
    }
    b
}

/// One streaming run's results.
#[derive(Default)]
struct Run {
    feedback_ms: Vec<f64>,
    fallback_frames: u64,
    measured_frames: u64,
    psnr_min: f64,
    hit_rate_pct: f64,
    /// Fault latency p95 in frames (NaN before any load).
    latency_p95: f64,
    tiles_uploaded: u64,
    reloaded_pct: f64,
    gpu_bytes: u64,
    max_bias: f32,
    frame_ms: Vec<f64>,
    /// The render thread's time less its waits for the GPU.
    own_ms: Vec<f64>,
    /// Its waits for the GPU: pacing (at most FRAMES_IN_FLIGHT frames
    /// submitted and unfinished) and staging buffers still in use.
    gpu_wait_ms: Vec<f64>,
    feedback_bytes_per_frame: f64,
}

/// Frames submitted and not finished on the GPU at most, as a renderer
/// paces its loop (a swap chain of two images).
const FRAMES_IN_FLIGHT: usize = 2;

/// The flythrough's pipeline, its camera buffer and its target.
pub(crate) struct Scene {
    pipeline: wgpu::RenderPipeline,
    pub(crate) camera: wgpu::Buffer,
    group: wgpu::BindGroup,
    target: wgpu::Texture,
    /// Made once: a view made every frame grows the Vulkan backend's
    /// framebuffer cache on NVIDIA's driver (RSS rose 4 MB/s on the H200).
    view: wgpu::TextureView,
}

pub(crate) fn scene<S: forgeflow::jobs::vt::TileSource>(
    gpu: &forgeflow::gpu::Gpu,
    vt: &VirtualTexture<S>,
    size: (u32, u32),
) -> Scene {
    let d = &gpu.device;
    let module = d.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("vt flythrough"),
        source: wgpu::ShaderSource::Wgsl(format!("{}\n{SCENE}", wgsl(1)).into()),
    });
    let camera = d.create_buffer(&wgpu::BufferDescriptor {
        label: Some("camera"),
        size: 64,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let cam_layout = d.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: None,
        entries: &[wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::FRAGMENT,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        }],
    });
    let group = d.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &cam_layout,
        entries: &[wgpu::BindGroupEntry {
            binding: 0,
            resource: camera.as_entire_binding(),
        }],
    });
    let layout = d.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: None,
        bind_group_layouts: &[Some(&cam_layout), Some(vt.bind_group_layout())],
        immediate_size: 0,
    });
    let pipeline = d.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
        label: Some("vt flythrough"),
        layout: Some(&layout),
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
            targets: &[Some(wgpu::ColorTargetState {
                format: wgpu::TextureFormat::Rgba8Unorm,
                blend: None,
                write_mask: wgpu::ColorWrites::ALL,
            })],
        }),
        multiview_mask: None,
        cache: None,
    });
    let target = forgeflow_tools::flight::target(d, "vt frame", size);
    let view = target.create_view(&Default::default());
    Scene {
        pipeline,
        camera,
        group,
        target,
        view,
    }
}

/// Streams and renders one frame: feedback in, faults as jobs, the pass, the
/// feedback out. Returns the wall time of the frame on the render thread.
#[allow(clippy::too_many_arguments)]
fn frame<S: forgeflow::jobs::vt::TileSource + 'static>(
    gpu: &forgeflow::gpu::Gpu,
    vt: &mut VirtualTexture<S>,
    sc: &Scene,
    ring: &mut StagingRing,
    readback: &mut ReadbackRing,
    sched: &mut Scheduler,
    cam: &[u8],
) -> Result<FrameTime, String> {
    let started = Instant::now();
    readback.poll();
    let waited = ring.stats().wait_total;
    let staging = ring.begin_frame().map_err(|e| e.to_string())?;
    {
        let mut f = sched.begin_frame().map_err(|e| e.to_string())?;
        vt.update(&staging, &mut f).map_err(|e| e.to_string())?;
        f.run().map_err(|e| e.to_string())?;
    }
    vt.settle_faults(&staging).map_err(|e| e.to_string())?;
    gpu.queue.write_buffer(&sc.camera, 0, cam);
    let mut enc = gpu.device.create_command_encoder(&Default::default());
    staging.finish(&mut enc);
    let ring_wait = ring.stats().wait_total.saturating_sub(waited);
    record_pass(&mut enc, sc, vt.bind_group());
    let mut rb = readback.begin_frame();
    vt.end_frame(&mut enc, &mut rb);
    rb.finish(&mut enc);
    let ms = started.elapsed().as_secs_f64() * 1e3;
    let submitted = gpu.queue.submit([enc.finish()]);
    Ok(FrameTime {
        ms,
        ring_wait_ms: ring_wait.as_secs_f64() * 1e3,
        submitted,
    })
}

/// One frame's render-thread time: all of it, the part spent waiting for a
/// staging buffer the GPU still used, and its submission.
struct FrameTime {
    ms: f64,
    ring_wait_ms: f64,
    submitted: wgpu::SubmissionIndex,
}

/// Records the flythrough's pass (the virtual texture at bind group 1).
pub(crate) fn record_pass(enc: &mut wgpu::CommandEncoder, sc: &Scene, vt_group: &wgpu::BindGroup) {
    let mut pass = enc.begin_render_pass(&wgpu::RenderPassDescriptor {
        label: Some("vt flythrough"),
        color_attachments: &[Some(wgpu::RenderPassColorAttachment {
            view: &sc.view,
            depth_slice: None,
            resolve_target: None,
            ops: wgpu::Operations {
                load: wgpu::LoadOp::Clear(wgpu::Color::BLACK),
                store: wgpu::StoreOp::Store,
            },
        })],
        depth_stencil_attachment: None,
        timestamp_writes: None,
        occlusion_query_set: None,
        multiview_mask: None,
    });
    pass.set_pipeline(&sc.pipeline);
    pass.set_bind_group(0, &sc.group, &[]);
    pass.set_bind_group(1, vt_group, &[]);
    pass.draw(0..3, 0..1);
}

fn psnr(a: &[u8], b: &[u8]) -> f64 {
    let mse = a
        .chunks_exact(4)
        .zip(b.chunks_exact(4))
        .map(|(p, q)| {
            (0..3)
                .map(|c| (p[c] as f64 - q[c] as f64).powi(2))
                .sum::<f64>()
        })
        .sum::<f64>()
        / (a.len() / 4 * 3) as f64;
    10.0 * (255.0f64.powi(2) / mse.max(1e-9)).log10()
}

fn write_png(path: &PathBuf, size: (u32, u32), rgba: &[u8]) -> Result<(), String> {
    let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), size.0, size.1);
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()
        .and_then(|mut w| w.write_image_data(rgba))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Where the flythrough's tiles come from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tiles {
    /// The terrain, each tile made inside the page-fault job that loads it
    /// (the frame waits for it).
    InFrame,
    /// The terrain behind a [`ReadAhead`]: a page fault copies a tile made
    /// on threads of their own, or is put off while it is made (a frame
    /// never waits for one; the fault takes a frame longer).
    ReadAhead,
}

/// The flythrough under `config`; with `reference`, PSNR checks against a
/// virtual texture given every tile it asks for; with `pngs`, a few frames saved.
#[allow(clippy::too_many_arguments)]
fn run_path(
    gpu: &forgeflow::gpu::Gpu,
    opts: &Options,
    layout: VtLayout,
    config: VtConfig,
    tiles: Tiles,
    frames: u64,
    reference: bool,
    pngs: Option<&PathBuf>,
    label: &str,
    progress: &mut Progress,
    integrity: &mut Integrity,
) -> Result<Run, String> {
    let terrain = Terrain::new(layout, opts.seed);
    let path = Path {
        opts,
        layout,
        config,
        frames,
        reference,
        pngs,
        label,
    };
    match tiles {
        Tiles::InFrame => run_source(gpu, terrain, path, progress, integrity),
        Tiles::ReadAhead => {
            let source = ReadAhead::new(terrain, opts.threads, READ_AHEAD_TILES)
                .map_err(|e| e.to_string())?;
            run_source(gpu, source, path, progress, integrity)
        }
    }
}

/// [`run_path`]'s arguments that do not depend on the source.
struct Path<'a> {
    opts: &'a Options,
    layout: VtLayout,
    config: VtConfig,
    frames: u64,
    reference: bool,
    pngs: Option<&'a PathBuf>,
    label: &'a str,
}

/// [`run_path`] over `source`.
fn run_source<S: forgeflow::jobs::vt::TileSource + 'static>(
    gpu: &forgeflow::gpu::Gpu,
    source: S,
    Path {
        opts,
        layout,
        config,
        frames,
        reference,
        pngs,
        label,
    }: Path<'_>,
    progress: &mut Progress,
    integrity: &mut Integrity,
) -> Result<Run, String> {
    let size = opts.resolution;
    let mut vt =
        VirtualTexture::new(&gpu.device, source, config, size).map_err(|e| e.to_string())?;
    let sc = scene(gpu, &vt, size);
    let mut ring = StagingRing::new(
        &gpu.device,
        StagingConfig {
            buffer_size: STAGING_BYTES / 3,
            ..Default::default()
        },
    )
    .map_err(|e| e.to_string())?;
    let mut readback = ReadbackRing::new(
        &gpu.device,
        ReadbackConfig {
            buffer_size: ((size.0.div_ceil(16) * size.1.div_ceil(16) * 4) as u64)
                .next_multiple_of(256)
                .max(256),
            buffers: 3,
        },
    )
    .map_err(|e| e.to_string())?;
    let mut sched = Scheduler::new(SchedulerConfig {
        threads: Some(opts.threads),
        auto_signal_fences: true,
        ..Default::default()
    })
    .map_err(|e| e.to_string())?;
    // The reference: a budget for every tile a view asks for, all loads at once.
    let mut refv = if reference {
        let r = VirtualTexture::new(
            &gpu.device,
            Terrain::new(layout, opts.seed),
            VtConfig {
                budget_bytes: 1 << 30,
                max_uploads: 100_000,
                max_upload_bytes: u64::MAX,
                min_age: 0,
                // Every pixel writes feedback: one pass names every tile.
                feedback_divisor: 1,
                prefetch: false,
                bias: MipBias {
                    max: 0.0,
                    ..Default::default()
                },
                ..Default::default()
            },
            size,
        )
        .map_err(|e| e.to_string())?;
        let rs = scene(gpu, &r, size);
        let rring = StagingRing::new(
            &gpu.device,
            StagingConfig {
                buffer_size: 64 << 20,
                ..Default::default()
            },
        )
        .map_err(|e| e.to_string())?;
        let rrb = ReadbackRing::new(
            &gpu.device,
            ReadbackConfig {
                // A word per pixel.
                buffer_size: ((size.0 * size.1 * 4) as u64).next_multiple_of(256),
                buffers: 3,
            },
        )
        .map_err(|e| e.to_string())?;
        Some((r, rs, rring, rrb))
    } else {
        None
    };
    let warmup = (frames / 10).clamp(10, 60);
    let mut run = Run {
        psnr_min: f64::INFINITY,
        gpu_bytes: vt.stats().gpu_bytes + STAGING_BYTES,
        ..Default::default()
    };
    let png_frames = [warmup, frames / 2, frames - 1];
    let mut in_flight = std::collections::VecDeque::new();
    for f in 0..frames {
        progress.update(label, f as f64 / frames as f64);
        let cam = camera(f, frames, size);
        let mut paced = std::time::Duration::ZERO;
        if in_flight.len() >= FRAMES_IN_FLIGHT {
            let oldest = in_flight.pop_front().expect("frames in flight");
            let t = Instant::now();
            gpu.device
                .poll(wgpu::PollType::Wait {
                    submission_index: Some(oldest),
                    timeout: None,
                })
                .map_err(|e| e.to_string())?;
            paced = t.elapsed();
        }
        let ft = frame(
            gpu,
            &mut vt,
            &sc,
            &mut ring,
            &mut readback,
            &mut sched,
            &cam,
        )?;
        in_flight.push_back(ft.submitted);
        let s = vt.stats();
        if f >= warmup {
            run.frame_ms.push(ft.ms);
            run.own_ms.push((ft.ms - ft.ring_wait_ms).max(0.0));
            run.gpu_wait_ms
                .push(ft.ring_wait_ms + paced.as_secs_f64() * 1e3);
            run.feedback_ms.push(s.feedback_ms);
            run.measured_frames += 1;
            // This update's faults were missing when the fed-back frame rendered.
            run.fallback_frames += (s.faults > 0) as u64;
            run.max_bias = run.max_bias.max(s.bias);
        }
        let check = reference && f >= warmup && (f - warmup).is_multiple_of(PSNR_EVERY);
        if check || pngs.is_some() && png_frames.contains(&f) {
            gpu.device
                .poll(wgpu::PollType::wait_indefinitely())
                .map_err(|e| e.to_string())?;
            let got = gpu
                .read_texture(&sc.target, 0, 0..1)
                .map_err(|e| e.to_string())?;
            if let (Some(dir), true) = (pngs, png_frames.contains(&f)) {
                write_png(&dir.join(format!("vt-frame-{f:05}.png")), size, &got)?;
            }
            if let (true, Some((r, rs, rring, rrb))) = (check, refv.as_mut()) {
                // Feed the reference its own feedback until it misses nothing.
                let mut rsched = Scheduler::new(SchedulerConfig {
                    threads: Some(opts.threads),
                    auto_signal_fences: true,
                    ..Default::default()
                })
                .map_err(|e| e.to_string())?;
                // The first pass renders this view's feedback, the next ones
                // serve it: stop once one misses nothing.
                for k in 0..12 {
                    frame(gpu, r, rs, rring, rrb, &mut rsched, &cam)?;
                    gpu.device
                        .poll(wgpu::PollType::wait_indefinitely())
                        .map_err(|e| e.to_string())?;
                    if k >= 2 && r.stats().faults == 0 {
                        break;
                    }
                }
                let want = gpu
                    .read_texture(&rs.target, 0, 0..1)
                    .map_err(|e| e.to_string())?;
                let p = psnr(&got, &want);
                if std::env::var_os("FORGEFLOW_VT_DUMP").is_some() {
                    let dir = std::env::temp_dir();
                    write_png(&dir.join(format!("vt-check-{f:05}-got.png")), size, &got)?;
                    write_png(&dir.join(format!("vt-check-{f:05}-ref.png")), size, &want)?;
                }
                integrity.check(p.is_finite() && p > 10.0);
                run.psnr_min = run.psnr_min.min(p);
            }
        }
    }
    gpu.device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(|e| e.to_string())?;
    let s = vt.stats();
    integrity.check(s.resident <= s.slots);
    integrity.check(run.gpu_bytes <= opts.budget_mb << 20);
    run.hit_rate_pct = 100.0 * s.hits as f64 / s.requests.max(1) as f64;
    run.latency_p95 = s
        .fault_latency_quantile(0.95)
        .map_or(f64::NAN, |v| v as f64);
    run.tiles_uploaded = s.tiles_uploaded;
    run.feedback_bytes_per_frame = vt.feedback_readback_bytes() as f64 / frames as f64;
    run.reloaded_pct = 100.0 * s.reloaded_within_60 as f64 / s.tiles_uploaded.max(1) as f64;
    Ok(run)
}

fn p(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

pub fn run(opts: &Options, progress: &mut Progress) -> Result<ScenarioReport, String> {
    let gpu = forgeflow::gpu::open().map_err(|e| e.to_string())?;
    let mut report = ScenarioReport::on_gpu(&gpu);
    let mut integrity = Integrity::default();
    let layout = VtLayout::new(opts.vt_size, opts.vt_size, 128, 4).map_err(|e| e.to_string())?;
    let budget = opts.budget_mb << 20;
    let frames = opts.frames.max(60);
    let pngs = opts.png_dir.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&pngs).map_err(|e| format!("{}: {e}", pngs.display()))?;
    // The procedural source makes each tile on the CPU (about 2 ms on the
    // VM): page faults may take a 30 fps frame of the workers' time.
    let config = VtConfig {
        budget_bytes: budget - STAGING_BYTES,
        max_fault_ms: 33.0,
        ..Default::default()
    };
    let mut ours = run_path(
        &gpu,
        opts,
        layout,
        config.clone(),
        Tiles::InFrame,
        frames,
        true,
        Some(&pngs),
        "vt: flythrough",
        progress,
        &mut integrity,
    )?;
    // The texture's own bytes, RGBA8 with a full mip chain.
    let full_bytes: u64 = (0..=opts.vt_size.ilog2())
        .map(|m| ((opts.vt_size >> m).max(1) as u64).pow(2) * 4)
        .sum();
    report.metric("virtual_size_px", opts.vt_size as f64);
    report.metric("virtual_bytes_with_mips", full_bytes as f64);
    report.metric("budget_bytes", budget as f64);
    report.metric("gpu_bytes_total", ours.gpu_bytes as f64);
    report.metric("hit_rate_pct", ours.hit_rate_pct);
    let lat95 = ours.latency_p95;
    report.metric("fault_latency_frames_p95", lat95);
    let fb95 = p(&mut ours.feedback_ms, 0.95);
    report.metric("feedback_ms_p95", fb95);
    report.metric("frame_cpu_ms_p50", p(&mut ours.frame_ms, 0.5));
    report.metric("frames_in_flight", FRAMES_IN_FLIGHT as f64);
    let own50 = p(&mut ours.own_ms, 0.5);
    let own99 = p(&mut ours.own_ms, 0.99);
    report.metric("frame_cpu_own_ms_p50", own50);
    report.metric("frame_cpu_own_ms_p99", own99);
    report.metric("gpu_wait_ms_p50", p(&mut ours.gpu_wait_ms, 0.5));
    report.metric(
        "feedback_readback_bytes_per_frame",
        ours.feedback_bytes_per_frame,
    );
    report.metric("tiles_uploaded", ours.tiles_uploaded as f64);
    report.metric(
        "evicted_rerequested_within_60_frames_pct",
        ours.reloaded_pct,
    );
    report.metric("psnr_db_min", ours.psnr_min);
    report.metric("fallback_frames", ours.fallback_frames as f64);
    report.metric("mip_bias_max", ours.max_bias as f64);
    report.metric("frames_measured", ours.measured_frames as f64);
    report
        .notes
        .push(format!("PNG frames in {}", pngs.display()));
    report.target(
        "gpu_bytes_total",
        "<= budget_bytes",
        ours.gpu_bytes <= budget,
    );
    report.target("fault_latency_frames_p95", "<= 2", lat95 <= 2.0);
    let full_hd = opts.resolution == (1920, 1080);
    if full_hd {
        report.target("frame_cpu_own_ms_p50", "<= 1 at 1080p", own50 <= 1.0);
        report.target("frame_cpu_own_ms_p99", "<= 2 at 1080p", own99 <= 2.0);
        report.target(
            "feedback_readback_bytes_per_frame",
            "<= 16384 at 1080p",
            ours.feedback_bytes_per_frame <= 16384.0,
        );
    }
    report.target(
        "feedback_ms_p95",
        format!(
            "<= 0.3 at 1080p/16 (here {}x{})",
            opts.resolution.0, opts.resolution.1
        ),
        fb95 <= 0.3,
    );
    report.target("psnr_db_min", ">= 40 after warm-up", ours.psnr_min >= 40.0);
    report.target(
        "evicted_rerequested_within_60_frames_pct",
        "< 1",
        ours.reloaded_pct < 1.0,
    );
    if opts.compare {
        let naive = VtConfig {
            budget_bytes: budget - STAGING_BYTES,
            max_fault_ms: 33.0,
            min_age: 0,
            max_uploads: 8,
            bias: MipBias {
                max: 0.0,
                ..Default::default()
            },
            prefetch: false,
            ..Default::default()
        };
        let mut n = run_path(
            &gpu,
            opts,
            layout,
            naive,
            Tiles::InFrame,
            frames,
            false,
            None,
            "vt: naive policy",
            progress,
            &mut integrity,
        )?;
        report.compare("naive", "hit_rate_pct", n.hit_rate_pct);
        report.compare("naive", "fallback_frames", n.fallback_frames as f64);
        report.compare("naive", "tiles_uploaded", n.tiles_uploaded as f64);
        report.compare(
            "naive",
            "evicted_rerequested_within_60_frames_pct",
            n.reloaded_pct,
        );
        report.compare("naive", "fault_latency_frames_p95", n.latency_p95);
        report.compare("naive", "frame_cpu_ms_p50", p(&mut n.frame_ms, 0.5));
        report.compare("naive", "frame_cpu_own_ms_p50", p(&mut n.own_ms, 0.5));
        let ratio = ours.fallback_frames as f64 / n.fallback_frames.max(1) as f64;
        report.ratio("fallback_frames_vs_naive", ratio);
        report.target(
            "fallback_frames_vs_naive",
            "<= 0.5 (2x fewer frames showing fallback texels)",
            ratio <= 0.5,
        );
        // The same policy with the tiles made ahead, off the frame: what
        // the render thread saves, and what the faults pay for it.
        let mut r = run_path(
            &gpu,
            opts,
            layout,
            config,
            Tiles::ReadAhead,
            frames,
            true,
            None,
            "vt: tiles made ahead",
            progress,
            &mut integrity,
        )?;
        let peer = "read_ahead";
        report.compare(peer, "frame_cpu_own_ms_p50", p(&mut r.own_ms, 0.5));
        report.compare(peer, "frame_cpu_own_ms_p99", p(&mut r.own_ms, 0.99));
        report.compare(peer, "fault_latency_frames_p95", r.latency_p95);
        report.compare(peer, "hit_rate_pct", r.hit_rate_pct);
        report.compare(peer, "fallback_frames", r.fallback_frames as f64);
        report.compare(peer, "psnr_db_min", r.psnr_min);
        report.compare(peer, "tiles_uploaded", r.tiles_uploaded as f64);
    }
    report.frames = frames;
    report.integrity.add(integrity);
    Ok(report)
}
