//! A small virtual texture rendered through the WGSL sampling function on the
//! GPU (lavapipe in CI), fed by its own feedback, against a reference render
//! computed on the CPU from the terrain's tiles; and the fallback to a coarser
//! tile before the fine ones have arrived.

use forgeflow::gpu::Gpu;
use forgeflow::graph::{Scheduler, SchedulerConfig};
use forgeflow::jobs::vt::{
    write_pack, PackError, TileFormat, TileId, TilePack, TileSource, VtLayout,
};
use forgeflow_test_support::gpu;
use forgeflow_test_support::gpu::VerifyRead as _;

use forgeflow::staging::{ReadbackConfig, ReadbackRing, StagingConfig, StagingRing};
use forgeflow::vt::{wgsl, VirtualTexture, VtConfig};
use forgeflow_tools::Terrain;

const SIDE: u32 = 128;

/// Counts this thread's heap allocations while `COUNTING` is set: what the
/// render thread's `VirtualTexture::update` costs in steady frames.
struct Counting;
thread_local! {
    static COUNTING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static ALLOCS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    static UPDATE_ALLOCS: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}

// SAFETY: forwards to the system allocator; counts in const-initialised
// thread-locals, which never allocate.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        if COUNTING.with(|c| c.get()) {
            ALLOCS.with(|a| a.set(a.get() + 1));
        }
        // SAFETY: the caller's layout, unchanged.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: as above.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new: usize) -> *mut u8 {
        if COUNTING.with(|c| c.get()) {
            ALLOCS.with(|a| a.set(a.get() + 1));
        }
        // SAFETY: as above.
        unsafe { std::alloc::System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The view: a quarter of the texture on a 128x128 screen, two texels per pixel.
fn uv_of(x: u32, y: u32) -> [f32; 2] {
    [
        0.25 + (x as f32 + 0.5) / SIDE as f32 * 0.25,
        0.5 + (y as f32 + 0.5) / SIDE as f32 * 0.25,
    ]
}

struct Renderer {
    pipeline: wgpu::ComputePipeline,
    out: wgpu::Buffer,
    group: wgpu::BindGroup,
}

fn renderer<S: TileSource>(gpu: &Gpu, vt: &VirtualTexture<S>) -> Renderer {
    let shader = format!(
        "{}
        @group(0) @binding(0) var<storage, read_write> out: array<vec4<f32>>;
        @compute @workgroup_size(8, 8)
        fn main(@builtin(global_invocation_id) id: vec3<u32>) {{
            if (id.x >= {SIDE}u || id.y >= {SIDE}u) {{ return; }}
            let uv = vec2<f32>(0.25, 0.5) + (vec2<f32>(id.xy) + 0.5) / {SIDE}.0 * 0.25;
            let d = 0.25 / {SIDE}.0;
            vt_feedback(vec2<f32>(id.xy), uv, vec2<f32>(d, 0.0), vec2<f32>(0.0, d));
            out[id.y * {SIDE}u + id.x] = vt_sample(uv, vec2<f32>(d, 0.0), vec2<f32>(0.0, d));
        }}",
        wgsl(1)
    );
    let d = &gpu.device;
    let module = d.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("vt test"),
        source: wgpu::ShaderSource::Wgsl(shader.into()),
    });
    let out_layout = d.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: None,
        entries: &[wgpu::BindGroupLayoutEntry {
            binding: 0,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only: false },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        }],
    });
    let layout = d.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: None,
        bind_group_layouts: &[Some(&out_layout), Some(vt.bind_group_layout())],
        immediate_size: 0,
    });
    let pipeline = d.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: None,
        layout: Some(&layout),
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    });
    let out = d.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: (SIDE * SIDE * 16) as u64,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let group = d.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &out_layout,
        entries: &[wgpu::BindGroupEntry {
            binding: 0,
            resource: out.as_entire_binding(),
        }],
    });
    Renderer {
        pipeline,
        out,
        group,
    }
}

/// The reference: level `mip`, bilinear within the tile's slot, from the
/// terrain's own tiles.
fn reference(terrain: &Terrain, layout: &VtLayout, mip: u32) -> Vec<[f32; 4]> {
    reference_of(layout, mip, |t| terrain.tile_rgba8(t))
}

/// The reference at level `mip` from each tile's slot as RGBA8.
fn reference_of(
    layout: &VtLayout,
    mip: u32,
    slot_rgba8: impl Fn(TileId) -> Vec<u8>,
) -> Vec<[f32; 4]> {
    let (w, h) = layout.size();
    let texels = (layout.tile() << mip) as f32;
    let slot = layout.slot() as usize;
    let mut tiles = std::collections::HashMap::new();
    let mut out = Vec::new();
    for y in 0..SIDE {
        for x in 0..SIDE {
            let uv = uv_of(x, y);
            let (tx, ty) = (uv[0] * w as f32 / texels, uv[1] * h as f32 / texels);
            let t = TileId {
                mip: mip as u8,
                x: tx as u16,
                y: ty as u16,
            };
            let px = tiles.entry(t).or_insert_with(|| slot_rgba8(t));
            // Texel-centre bilinear, as the sampler does.
            let sx = layout.border() as f32 + tx.fract() * layout.tile() as f32 - 0.5;
            let sy = layout.border() as f32 + ty.fract() * layout.tile() as f32 - 0.5;
            let (x0, y0) = (sx.floor() as usize, sy.floor() as usize);
            let (fx, fy) = (sx - sx.floor(), sy - sy.floor());
            let at = |xx: usize, yy: usize, c: usize| {
                px[(yy.min(slot - 1) * slot + xx.min(slot - 1)) * 4 + c] as f32 / 255.0
            };
            out.push(std::array::from_fn(|c| {
                let top = at(x0, y0, c) * (1.0 - fx) + at(x0 + 1, y0, c) * fx;
                let bottom = at(x0, y0 + 1, c) * (1.0 - fx) + at(x0 + 1, y0 + 1, c) * fx;
                top * (1.0 - fy) + bottom * fy
            }));
        }
    }
    out
}

fn psnr(a: &[[f32; 4]], b: &[[f32; 4]]) -> f64 {
    let mse: f64 = a
        .iter()
        .zip(b)
        .map(|(p, q)| (0..3).map(|c| ((p[c] - q[c]) as f64).powi(2)).sum::<f64>())
        .sum::<f64>()
        / (a.len() * 3) as f64;
    10.0 * (1.0 / mse.max(1e-12)).log10()
}

/// `frames` frames of the view through `vt`, each fed by the last ones' feedback.
fn render<S: TileSource>(
    gpu: &Gpu,
    vt: &mut VirtualTexture<S>,
    frames: usize,
) -> Vec<Vec<[f32; 4]>> {
    let r = renderer(gpu, vt);
    let mut ring = StagingRing::new(
        &gpu.device,
        StagingConfig {
            buffer_size: 8 << 20,
            ..Default::default()
        },
    )
    .unwrap();
    let mut readback = ReadbackRing::new(
        &gpu.device,
        ReadbackConfig {
            buffer_size: 1 << 20,
            buffers: 3,
        },
    )
    .unwrap();
    let mut sched = Scheduler::new(SchedulerConfig {
        auto_signal_fences: true,
        ..Default::default()
    })
    .unwrap();
    let mut renders = Vec::new();
    for _ in 0..frames {
        readback.poll();
        let staging = ring.begin_frame().unwrap();
        {
            let mut frame = sched.begin_frame().unwrap();
            ALLOCS.with(|a| a.set(0));
            COUNTING.with(|c| c.set(true));
            vt.update(&staging, &mut frame).unwrap();
            COUNTING.with(|c| c.set(false));
            let n = ALLOCS.with(|a| a.get());
            UPDATE_ALLOCS.with(|u| u.borrow_mut().push(n));
            frame.run().unwrap();
        }
        // As the runtime does: loads that failed or were put off leave the
        // page table before the frame's uploads go out.
        vt.settle_faults(&staging).unwrap();
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        staging.finish(&mut enc);
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            pass.set_pipeline(&r.pipeline);
            pass.set_bind_group(0, &r.group, &[]);
            pass.set_bind_group(1, vt.bind_group(), &[]);
            pass.dispatch_workgroups(SIDE / 8, SIDE / 8, 1);
        }
        let mut rb = readback.begin_frame();
        vt.end_frame(&mut enc, &mut rb);
        rb.finish(&mut enc);
        gpu.queue.submit([enc.finish()]);
        gpu.device
            .poll(wgpu::PollType::wait_indefinitely())
            .unwrap();
        let px: Vec<[f32; 4]> = gpu
            .read_buffer(&r.out, 0, (SIDE * SIDE * 16) as u64)
            .unwrap()
            .chunks_exact(16)
            .map(|c| {
                std::array::from_fn(|i| f32::from_le_bytes(c[4 * i..4 * i + 4].try_into().unwrap()))
            })
            .collect();
        renders.push(px);
    }
    renders
}

/// A test's config: `budget_bytes`, tiles old after 2 frames, and no time
/// budget, so that how many tiles a frame loads does not depend on how busy
/// the machine is.
fn steady(budget_bytes: u64) -> VtConfig {
    VtConfig {
        budget_bytes,
        min_age: 2,
        max_fault_ms: f64::MAX,
        ..Default::default()
    }
}

#[test]
fn a_virtual_texture_renders_as_its_tiles_once_its_feedback_is_served() {
    let Some(gpu) =
        gpu::for_test("a_virtual_texture_renders_as_its_tiles_once_its_feedback_is_served")
    else {
        return;
    };
    let layout = VtLayout::new(1024, 1024, 64, 4).unwrap();
    let terrain = Terrain::new(layout, 3);
    let mut vt = VirtualTexture::new(&gpu.device, terrain, steady(4 << 20), (SIDE, SIDE)).unwrap();
    let renders = render(&gpu, &mut vt, 8);
    let terrain = vt.source().clone();
    // Frame 1: only the root is resident: every pixel shows it (level 4).
    let root = reference(&terrain, &layout, layout.mips() - 1);
    let first = psnr(&renders[0], &root);
    assert!(
        first > 30.0,
        "the first frame shows the root tile: {first:.1} dB"
    );
    // Once the feedback has been served: the wanted level, exactly as the tiles say.
    let fine = reference(&terrain, &layout, 1);
    let last = psnr(renders.last().unwrap(), &fine);
    assert!(
        last > 40.0,
        "the served frame matches the reference: {last:.1} dB"
    );
    assert!(
        psnr(&renders[0], &fine) < last,
        "the first frame was the coarse fallback"
    );
    let s = vt.stats();
    assert_eq!(s.faults, 0, "nothing missing at the end: {s:?}");
    assert!(
        s.tiles_uploaded >= 5 && s.resident as u64 == s.tiles_uploaded,
        "{s:?}"
    );
    assert!(s.gpu_bytes <= 4 << 20);
    // Requested in frame N's feedback, loaded in frame N + 1.
    assert_eq!(s.fault_latency_frames[2..].iter().sum::<u64>(), 0, "{s:?}");
    assert_eq!(
        s.fault_latency_frames.iter().sum::<u64>(),
        s.tiles_uploaded - s.prefetched,
        "every requested load, not prefetches"
    );
    assert_eq!(s.fault_latency_quantile(1.0), Some(1));
    // Once every tile is in, a frame's update allocates nothing on the
    // render thread (ARCHITECTURE.md, invariant 5).
    let allocs = UPDATE_ALLOCS.with(|u| u.borrow().clone());
    assert!(
        allocs.iter().any(|&n| n > 0),
        "the counter saw no allocation even while warming up: it is not counting"
    );
    assert_eq!(
        allocs[allocs.len() - 3..],
        [0, 0, 0],
        "allocations per update: {allocs:?}"
    );
}

/// Frames whose feedback has not arrived yet (a GPU running frames behind,
/// as on the H100) allocate nothing either: the update's empty stand-in for
/// missing feedback must not be kept (it was, one a frame, and grew the heap
/// by 4 MB/s in the mixed stress run on the H100).
#[test]
fn updates_without_new_feedback_allocate_nothing() {
    let Some(gpu) = gpu::for_test("updates_without_new_feedback_allocate_nothing") else {
        return;
    };
    let layout = VtLayout::new(1024, 1024, 64, 4).unwrap();
    let mut vt = VirtualTexture::new(
        &gpu.device,
        Terrain::new(layout, 3),
        steady(4 << 20),
        (SIDE, SIDE),
    )
    .unwrap();
    render(&gpu, &mut vt, 6); // warm: every wanted tile in, feedback delivered
    let mut ring = StagingRing::new(&gpu.device, StagingConfig::default()).unwrap();
    let mut sched = Scheduler::new(SchedulerConfig {
        auto_signal_fences: true,
        ..Default::default()
    })
    .unwrap();
    let mut allocs = 0;
    for i in 0..300 {
        let staging = ring.begin_frame().unwrap();
        {
            let mut frame = sched.begin_frame().unwrap();
            ALLOCS.with(|a| a.set(0));
            COUNTING.with(|c| c.set(true));
            vt.update(&staging, &mut frame).unwrap();
            COUNTING.with(|c| c.set(false));
            if i >= 2 {
                allocs += ALLOCS.with(|a| a.get());
            }
            frame.run().unwrap();
        }
        vt.settle_faults(&staging).unwrap();
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        staging.finish(&mut enc);
        gpu.queue.submit([enc.finish()]);
        let _ = gpu.device.poll(wgpu::PollType::wait_indefinitely());
    }
    assert_eq!(allocs, 0, "updates without new feedback allocated");
}

#[test]
fn bc7_tiles_render_natively_and_decoded_the_same_as_their_blocks() {
    use forgeflow::jobs::texture::decode::decode;
    use forgeflow::jobs::texture::file::Ktx2File;
    use forgeflow_test_support::corpus::ktx2_dir;
    let Some(gpu) = gpu::for_test("bc7_tiles_render_natively_and_decoded_the_same_as_their_blocks")
    else {
        return;
    };
    let Some(dir) = ktx2_dir() else { return };
    // A BC7 pack whose slots are blocks of a real BC7 image (128x128 blocks),
    // each tile from its own offset into it.
    let img = Ktx2File::open(dir.join("t2d/BC7.ktx2")).unwrap();
    let blocks = img.image(Default::default()).unwrap().into_owned();
    let layout = VtLayout::new(1024, 1024, 64, 4).unwrap();
    let side = (layout.slot() / 4) as usize; // 18 blocks
    let slot_blocks = |t: TileId| -> Vec<u8> {
        let (ox, oy) = (t.x as usize * 5 + t.mip as usize * 11, t.y as usize * 7);
        let mut out = Vec::with_capacity(side * side * 16);
        for by in 0..side {
            for bx in 0..side {
                let at = (((oy + by) % 128) * 128 + (ox + bx) % 128) * 16;
                out.extend_from_slice(&blocks[at..at + 16]);
            }
        }
        out
    };
    let path = std::env::temp_dir().join(format!("ff-vt-bc7-{}.vtpack", std::process::id()));
    write_pack(&path, layout, TileFormat::Bc7, true, slot_blocks, |_, _| {}).unwrap();
    let slot = layout.slot();
    let want = reference_of(&layout, 1, |t| {
        decode(145, &slot_blocks(t), slot, slot).unwrap().1
    });
    for force_decode in [false, true] {
        let mut vt = VirtualTexture::new(
            &gpu.device,
            TilePack::open(&path).unwrap(),
            VtConfig {
                budget_bytes: 4 << 20,
                force_decode,
                // No time budget: how many tiles a frame loads must not depend
                // on how busy the machine is.
                max_fault_ms: f64::MAX,
                ..Default::default()
            },
            (SIDE, SIDE),
        )
        .unwrap();
        let renders = render(&gpu, &mut vt, 6);
        let got = psnr(renders.last().unwrap(), &want);
        // The GPU's BC7 decoder (Mesa's) against bcdec: within a step.
        let floor = if force_decode { 60.0 } else { 40.0 };
        assert!(got > floor, "force_decode {force_decode}: {got:.1} dB");
        assert_eq!(vt.stats().faults, 0);
    }
    let _ = std::fs::remove_file(&path);
}

#[test]
fn a_budget_too_small_for_the_page_table_is_a_clear_error() {
    let Some(gpu) = gpu::for_test("a_budget_too_small_for_the_page_table_is_a_clear_error") else {
        return;
    };
    let layout = VtLayout::new(65536, 65536, 128, 4).unwrap();
    let err = VirtualTexture::new(
        &gpu.device,
        Terrain::new(layout, 1),
        VtConfig {
            budget_bytes: 1 << 20,
            ..Default::default()
        },
        (1920, 1080),
    )
    .unwrap_err();
    assert!(err.to_string().contains("budget"), "{err}");
    // Within a budget: every byte counted stays under it.
    let vt = VirtualTexture::new(
        &gpu.device,
        Terrain::new(layout, 1),
        VtConfig {
            budget_bytes: 64 << 20,
            ..Default::default()
        },
        (1920, 1080),
    )
    .unwrap();
    let s = vt.stats();
    assert!(
        s.gpu_bytes <= 64 << 20 && s.gpu_bytes > 60 << 20,
        "{}",
        s.gpu_bytes
    );
    assert!(s.slots > 800, "{}", s.slots);
}

#[test]
fn a_working_set_larger_than_the_cache_raises_the_bias_instead_of_thrashing() {
    let Some(gpu) =
        gpu::for_test("a_working_set_larger_than_the_cache_raises_the_bias_instead_of_thrashing")
    else {
        return;
    };
    // 4096x4096 in tiles of 16: the view wants about a thousand level-1
    // tiles; the budget holds about sixty slots.
    let layout = VtLayout::new(4096, 4096, 16, 4).unwrap();
    let page_bytes: u64 = (0..layout.mips())
        .map(|m| {
            let (x, y) = layout.tiles_at(m);
            x as u64 * y as u64 * 4
        })
        .sum();
    let budget = page_bytes + 4096 + 60 * 24 * 24 * 4;
    let mut vt = VirtualTexture::new(
        &gpu.device,
        Terrain::new(layout, 5),
        steady(budget),
        (SIDE, SIDE),
    )
    .unwrap();
    let renders = render(&gpu, &mut vt, 30);
    let s = vt.stats().clone();
    assert!(s.gpu_bytes <= budget, "{} > {budget}", s.gpu_bytes);
    assert!(s.resident <= s.slots && s.slots < 70, "{s:?}");
    assert!(s.bias > 0.0, "the bias rose: {s:?}");
    assert!(s.evicted > 0, "{s:?}");
    // Whatever level the bias leaves, every texel comes from a resident
    // tile of this terrain: the render stays close to the coarsest level's.
    let root = reference(vt.source(), &layout, layout.mips() - 1);
    let p = psnr(renders.last().unwrap(), &root);
    assert!(p > 15.0, "{p:.1} dB against the coarsest level: garbage?");
    assert!(renders
        .last()
        .unwrap()
        .iter()
        .all(|px| px.iter().all(|c| c.is_finite() && (0.0..=1.0).contains(c))));
}

/// A terrain whose tiles are "on a cold disk": `tile_if_cached` says `None`
/// for each finer tile's first `cold_reads` asks (`u32::MAX`: always).
struct ColdDisk {
    terrain: Terrain,
    cold_reads: u32,
    asked: std::sync::Mutex<std::collections::HashMap<TileId, u32>>,
}

impl TileSource for ColdDisk {
    fn layout(&self) -> VtLayout {
        self.terrain.layout()
    }
    fn format(&self) -> TileFormat {
        TileFormat::Rgba8
    }
    fn tile(&self, tile: TileId) -> Result<std::borrow::Cow<'_, [u8]>, PackError> {
        TileSource::tile(&self.terrain, tile)
    }
    fn tile_if_cached<'a>(
        &'a self,
        tile: TileId,
        _scratch: &'a mut Vec<u8>,
    ) -> Result<Option<std::borrow::Cow<'a, [u8]>>, PackError> {
        let root = tile.mip as u32 == self.terrain.layout().mips() - 1;
        let mut asked = self.asked.lock().unwrap();
        let n = asked.entry(tile).or_insert(0);
        *n += 1;
        if !root && *n <= self.cold_reads {
            return Ok(None);
        }
        self.tile(tile).map(Some)
    }
}

/// Page-fault jobs never wait for a disk: a tile whose bytes are not in
/// memory yet is put off (no failed frame, no failed load, nothing sampled
/// from its empty slot) and loads when feedback asks again; its request
/// keeps its age, so the latency histogram shows the wait.
#[test]
fn tiles_not_in_memory_yet_are_put_off_not_waited_for() {
    let Some(gpu) = gpu::for_test("tiles_not_in_memory_yet_are_put_off_not_waited_for") else {
        return;
    };
    let layout = VtLayout::new(1024, 1024, 64, 4).unwrap();
    let source = ColdDisk {
        terrain: Terrain::new(layout, 3),
        cold_reads: 2,
        asked: Default::default(),
    };
    let mut vt = VirtualTexture::new(&gpu.device, source, steady(4 << 20), (SIDE, SIDE)).unwrap();
    let renders = render(&gpu, &mut vt, 12);
    let s = vt.stats().clone();
    let terrain = vt.source().terrain;
    let fine = reference(&terrain, &layout, 1);
    let last = psnr(renders.last().unwrap(), &fine);
    assert!(last > 40.0, "the tiles arrived in the end: {last:.1} dB");
    // Until they did, every frame showed resident tiles only: never an empty
    // slot (black, or whatever the atlas held), always near the root's level.
    let root = reference(&terrain, &layout, layout.mips() - 1);
    for (f, r) in renders.iter().enumerate() {
        let p = psnr(r, &root).max(psnr(r, &fine));
        assert!(p > 15.0, "frame {f}: {p:.1} dB from both levels");
    }
    assert_eq!(s.failed_loads, 0, "{s:?}");
    let loaded = s.tiles_uploaded - 1 - s.prefetched; // less the root
    assert!(loaded >= 4, "{s:?}");
    assert!(
        s.deferred_loads >= 2 * loaded,
        "each finer tile put off twice: {s:?}"
    );
    assert_eq!(
        s.fault_latency_frames.iter().sum::<u64>(),
        s.tiles_uploaded - s.prefetched,
        "each requested load counted once, when it succeeded: {s:?}"
    );
    assert_eq!(
        s.fault_latency_frames[1..3].iter().sum::<u64>(),
        0,
        "requested in frame N, put off in N + 1 and N + 2: {s:?}"
    );
}

/// A tile that stays out of memory (read-ahead that never lands) is read
/// anyway once its request is 30 frames old: put off, never starved.
#[test]
fn a_tile_put_off_for_30_frames_is_read_from_the_disk() {
    let Some(gpu) = gpu::for_test("a_tile_put_off_for_30_frames_is_read_from_the_disk") else {
        return;
    };
    let layout = VtLayout::new(1024, 1024, 64, 4).unwrap();
    let source = ColdDisk {
        terrain: Terrain::new(layout, 4),
        cold_reads: u32::MAX,
        asked: Default::default(),
    };
    let mut vt = VirtualTexture::new(&gpu.device, source, steady(4 << 20), (SIDE, SIDE)).unwrap();
    let renders = render(&gpu, &mut vt, 40);
    let s = vt.stats().clone();
    let fine = reference(&vt.source().terrain, &layout, 1);
    let last = psnr(renders.last().unwrap(), &fine);
    assert!(
        last > 40.0,
        "read from the disk in the end: {last:.1} dB ({s:?})"
    );
    assert_eq!(s.failed_loads, 0, "{s:?}");
    assert!(s.deferred_loads > 0, "{s:?}");
    assert!(
        s.fault_latency_frames[1..30].iter().sum::<u64>() == 0
            && s.fault_latency_frames[30..].iter().sum::<u64>() > 0,
        "loaded once 30 frames old (the root, never cold, at once): {:?}",
        &s.fault_latency_frames[..]
    );
}

/// A window resized: the virtual texture's feedback buffers follow the new
/// screen size (the whole screen then asks for tiles a quarter of it did
/// not), its resident tiles stay (none is loaded again), and it renders as
/// its tiles say through the new bind group.
#[test]
fn a_resized_virtual_texture_keeps_its_tiles_and_follows_the_new_screen() {
    let Some(gpu) =
        gpu::for_test("a_resized_virtual_texture_keeps_its_tiles_and_follows_the_new_screen")
    else {
        return;
    };
    let layout = VtLayout::new(1024, 1024, 64, 4).unwrap();
    let terrain = Terrain::new(layout, 3);
    let mut vt =
        VirtualTexture::new(&gpu.device, terrain, steady(4 << 20), (SIDE / 4, SIDE / 4)).unwrap();
    render(&gpu, &mut vt, 8);
    let terrain = vt.source().clone();
    let fine = reference(&terrain, &layout, 1);
    let (resident, uploaded) = (vt.stats().resident, vt.stats().tiles_uploaded);
    let (group, bytes) = (vt.bind_group().clone(), vt.stats().gpu_bytes);
    vt.resize(&gpu.device, (SIDE, SIDE));
    assert_eq!(vt.stats().resident, resident, "the tiles stay");
    assert!(
        *vt.bind_group() != group,
        "a new bind group, over the new feedback"
    );
    assert!(
        vt.stats().gpu_bytes > bytes,
        "the larger feedback is counted"
    );
    let whole = render(&gpu, &mut vt, 4);
    let last = psnr(whole.last().unwrap(), &fine);
    assert!(
        last > 40.0,
        "renders as its tiles after the resize: {last:.1} dB"
    );
    // The whole screen's feedback asks for tiles the quarter's did not; the
    // tiles kept are not loaded again.
    let s = vt.stats();
    assert!(s.tiles_uploaded > uploaded, "{s:?}");
    assert_eq!(
        s.tiles_uploaded - uploaded,
        (s.resident - resident) as u64,
        "{s:?}"
    );
}

/// Feedback is de-duplicated on the GPU: a frame whose 16,384 feedback words
/// name 300 distinct tiles (each many times, with empty words between) reads
/// back a list of those 300 words, not the 64 KiB of words; a list longer
/// than the last one is cut to what was asked and read whole the next frame.
#[test]
fn feedback_is_deduplicated_on_the_gpu_and_read_back_by_the_tile() {
    let Some(gpu) = gpu::for_test("feedback_is_deduplicated_on_the_gpu_and_read_back_by_the_tile")
    else {
        return;
    };
    let layout = VtLayout::new(4096, 4096, 128, 4).unwrap();
    let mut vt = VirtualTexture::new(
        &gpu.device,
        Terrain::new(layout, 5),
        VtConfig {
            feedback_divisor: 1,
            ..steady(64 << 20)
        },
        (SIDE, SIDE),
    )
    .unwrap();
    // Word i names tile i % 300 of level 0 (32 x 32 tiles), every 7th is empty.
    let shader = format!(
        "{}
        @compute @workgroup_size(64)
        fn main(@builtin(global_invocation_id) id: vec3<u32>) {{
            let i = id.x;
            if (i >= {words}u) {{ return; }}
            let t = i % 300u;
            var w = (t % 32u) | ((t / 32u) << 12u) | (1u << 28u);
            if (i % 7u == 3u) {{ w = 0u; }}
            vt_feedback_words[i] = w;
        }}",
        wgsl(0),
        words = SIDE * SIDE
    );
    let d = &gpu.device;
    let module = d.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("feedback writer"),
        source: wgpu::ShaderSource::Wgsl(shader.into()),
    });
    let pipeline_layout = d.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: None,
        bind_group_layouts: &[Some(vt.bind_group_layout())],
        immediate_size: 0,
    });
    let pipeline = d.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: None,
        layout: Some(&pipeline_layout),
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    });
    let mut ring = StagingRing::new(d, StagingConfig::default()).unwrap();
    let mut readback = ReadbackRing::new(
        d,
        ReadbackConfig {
            buffer_size: 1 << 20,
            buffers: 3,
        },
    )
    .unwrap();
    let mut sched = Scheduler::new(SchedulerConfig {
        auto_signal_fences: true,
        ..Default::default()
    })
    .unwrap();
    let mut requested = Vec::new();
    let mut read = Vec::new();
    for _ in 0..4 {
        readback.poll();
        let staging = ring.begin_frame().unwrap();
        {
            let mut frame = sched.begin_frame().unwrap();
            vt.update(&staging, &mut frame).unwrap();
            frame.run().unwrap();
        }
        vt.settle_faults(&staging).unwrap();
        requested.push(vt.stats().requested);
        let mut enc = d.create_command_encoder(&Default::default());
        staging.finish(&mut enc);
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            pass.set_pipeline(&pipeline);
            pass.set_bind_group(0, vt.bind_group(), &[]);
            pass.dispatch_workgroups((SIDE * SIDE).div_ceil(64), 1, 1);
        }
        let before = vt.feedback_readback_bytes();
        let mut rb = readback.begin_frame();
        vt.end_frame(&mut enc, &mut rb);
        rb.finish(&mut enc);
        read.push(vt.feedback_readback_bytes() - before);
        gpu.queue.submit([enc.finish()]);
        d.poll(wgpu::PollType::wait_indefinitely()).unwrap();
    }
    // Frame 0 reads the first 64 words of the list (and its count); frame 1
    // uses them and, knowing the count, reads the whole list; frame 2 has
    // every tile. Reads follow the tiles: 300 words, not 16,384.
    assert_eq!(read[0], 4 * (1 + 64), "{read:?}");
    assert_eq!(
        requested[1], 64,
        "the cut list's words, distinct: {requested:?}"
    );
    assert_eq!(read[1], 4 * (1 + 600), "{read:?}");
    assert_eq!(requested[2], 300, "every distinct tile once: {requested:?}");
    assert!(read.iter().all(|&b| b <= 4 * 601), "{read:?}");
}
