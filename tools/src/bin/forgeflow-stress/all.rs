//! `forgeflow-stress all`: every subsystem in one frame loop through the
//! [`Runtime`], as a renderer drives it.
//!
//! Each frame: `begin_frame`; texture loads (the corpus's files by path and
//! generated PNGs by bytes, a new one every `TEXTURE_EVERY` frames, the
//! oldest freed beyond `LIVE_TEXTURES`, the same sequence in every cycle of
//! the corpus, as a renderer going round its levels); pool churn (allocations of 256 B to
//! 256 KiB written on creation, some rewritten, as many freed, about
//! `LIVE_ALLOCATIONS` live; defragmentation runs in every frame);
//! `end_frame` into the frame's encoder; then the embedder's own work: the
//! camera and a render pass of the virtual-texture flythrough (feedback
//! included), and the submit. Only `begin_frame` to
//! `end_frame` is timed (`frame_cpu_ms_*`): the embedder's pass and
//! `queue.submit` (inside which lavapipe renders) are not. The render
//! thread and the runtime's workers run in the real-time class where the
//! system allows it (see `priority`; `--render-normal` leaves them in the
//! normal class), and a slow frame's note says how long of it the render
//! thread was runnable without a CPU and `end_frame` waited for the GPU.
//!
//! Integrity, every `VERIFY_EVERY` frames and at the end, read back with plain
//! wgpu copies: live allocations against their CPU shadows (a sample of
//! them), generated textures against their pixels, every frame's report
//! without a failed job, and every corpus file ready or refused with a typed
//! error. At the end everything is freed: no handle may leak. Memory (RSS,
//! exact from `/proc/self/smaps_rollup`, and the runtime's GPU bytes) is
//! sampled every `VERIFY_EVERY` frames; the growth after warm-up is the
//! highest sample of the second half of the run after warm-up less the
//! highest of the first half (a leak shows; the live set's ups and downs,
//! which repeat every cycle of the corpus, do not). Where each half's
//! highest RSS lay, by kind of mapping, is in the notes (see `smaps`).

use forgeflow_test_support::gpu::VerifyRead as _;
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::time::Instant;

use forgeflow::jobs::alloc::DefragBudget;
use forgeflow::jobs::vt::{write_pack_parallel, TileFormat, TilePack, VtLayout};
use forgeflow_test_support::SplitMix64;

use forgeflow::pool::{BufferPoolConfig, PoolHandle};
use forgeflow::runtime::{Runtime, RuntimeConfig, RuntimeError, TextureHandle, TextureStatus};
use forgeflow::staging::StagingConfig;
use forgeflow::vt::VtConfig;
use forgeflow_tools::Terrain;

use crate::cli::Options;
use crate::report::{Integrity, Progress, ScenarioReport};

const TEXTURE_EVERY: u64 = 12;
const LIVE_TEXTURES: usize = 16;
/// Generated textures of a cycle when there is no corpus.
const GENERATED_CYCLE: u64 = 64;
const VERIFY_EVERY: u64 = 60;
/// Random bytes that pool writes take slices of: a shadow is an offset.
const NOISE_BYTES: usize = 1 << 20;
const MAX_ALLOC: u64 = 256 << 10;
/// Pool allocations the churn keeps live, about.
const LIVE_ALLOCATIONS: usize = 256;

/// A texture the loop loaded, and what it must hold.
enum Loaded {
    /// A generated PNG: level 0 must read back as these pixels.
    Generated { pixels: Vec<u8>, verified: bool },
    /// A corpus file: it must become ready or be refused with a typed error.
    Corpus(PathBuf),
}

/// The pack of the terrain of `layout` and `seed` in the temporary
/// directory, made (on all cores) when it is not there or not valid.
fn terrain_pack(layout: VtLayout, seed: u64, progress: &mut Progress) -> Result<TilePack, String> {
    let (w, _) = layout.size();
    let path = std::env::temp_dir().join(format!("forgeflow-stress-terrain-{w}-{seed}.vtpack"));
    if let Ok(pack) = TilePack::open(&path) {
        if *pack.layout() == layout {
            return Ok(pack);
        }
    }
    let terrain = Terrain::new(layout, seed);
    // The pack appears at `path` only once complete.
    write_pack_parallel(
        &path,
        layout,
        TileFormat::Rgba8,
        false,
        |t| terrain.tile_rgba8(t),
        |done, total| {
            progress.update(
                "all: making the terrain's tile pack",
                done as f64 / total as f64,
            )
        },
    )
    .map_err(|e| format!("{}: {e}", path.display()))?;
    TilePack::open(&path).map_err(|e| format!("{}: {e}", path.display()))
}

/// The corpus files listed in its manifest, when the corpus is there.
fn corpus_files() -> Vec<PathBuf> {
    let Some(dir) = forgeflow_test_support::corpus::ktx2_dir() else {
        return Vec::new();
    };
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap_or_default();
    manifest
        .lines()
        .skip(1)
        .filter_map(|l| l.split('\t').next())
        .map(|name| dir.join(name))
        .filter(|p| p.is_file())
        .collect()
}

/// A PNG of `w` x `h` random pixels, and the pixels.
fn generated_png(w: u32, h: u32, rng: &mut SplitMix64) -> (Vec<u8>, Vec<u8>) {
    let pixels: Vec<u8> = (0..w * h * 4).map(|_| rng.next_u64() as u8).collect();
    (forgeflow_test_support::png::rgba(w, h, &pixels), pixels)
}

/// Frame times in a fixed histogram (10 µs bins to 100 ms, the exact
/// maximum beside it): an hour's soak keeps no per-frame list, whose growth
/// would show as the process's own.
struct FrameTimes {
    bins: Vec<u64>,
    count: u64,
    max: f64,
}

impl FrameTimes {
    const BIN_MS: f64 = 0.01;

    fn new() -> Self {
        FrameTimes {
            bins: vec![0; 10_001],
            count: 0,
            max: 0.0,
        }
    }

    fn record(&mut self, ms: f64) {
        let i = ((ms / Self::BIN_MS) as usize).min(self.bins.len() - 1);
        self.bins[i] += 1;
        self.count += 1;
        self.max = self.max.max(ms);
    }

    /// The `q` quantile, to the bin's upper edge.
    fn quantile(&self, q: f64) -> f64 {
        if self.count == 0 {
            return f64::NAN;
        }
        let rank = ((self.count - 1) as f64 * q).round() as u64;
        let mut seen = 0;
        for (i, &n) in self.bins.iter().enumerate() {
            seen += n;
            if seen > rank {
                return ((i + 1) as f64 * Self::BIN_MS).min(self.max);
            }
        }
        self.max
    }
}

/// The slowest frames after warm-up, with where their time went: what a
/// user reads to tell a forgeflow job from the OS or the driver (a frame
/// whose graph took 0.1 ms of jobs but 4 ms of wall time waited for a core).
struct SlowFrames {
    /// (ms, description), slowest first; at most `SLOW_FRAMES`.
    worst: Vec<(f64, String)>,
}

const SLOW_FRAMES: usize = 5;

/// Where one frame's render-thread time went.
struct FrameSplit {
    frame: u64,
    begin_ms: f64,
    requests_ms: f64,
    end_ms: f64,
    /// Of the frame, the time the render thread waited for a CPU.
    runnable_ms: Option<f64>,
    /// Of the frame, the time `end_frame` waited for the GPU: for a staging
    /// buffer to come back, and for the fence of the frame that many back.
    gpu_wait_ms: f64,
}

impl SlowFrames {
    /// Whether a frame of `ms` would be kept (cheap: most frames are not).
    fn wants(&self, ms: f64) -> bool {
        self.worst.len() < SLOW_FRAMES || self.worst.last().is_some_and(|w| ms > w.0)
    }

    fn record(&mut self, ms: f64, split: FrameSplit, stats: &forgeflow::graph::FrameStats) {
        let mut jobs: Vec<_> = stats.by_name.iter().filter(|n| n.count > 0).collect();
        jobs.sort_by_key(|n| std::cmp::Reverse(n.max));
        let jobs: Vec<String> = jobs
            .iter()
            .take(3)
            .map(|n| {
                format!(
                    "{} x{} (longest {:.2}, all {:.2})",
                    n.name,
                    n.count,
                    n.max.as_secs_f64() * 1e3,
                    n.total.as_secs_f64() * 1e3
                )
            })
            .collect();
        let waited = split.runnable_ms.map_or(String::new(), |w| {
            format!(", {w:.2} of it runnable without a CPU")
        });
        let text = format!(
            "frame {} {ms:.2} ms{waited}: begin_frame {:.2}, requests {:.2}, end_frame {:.2} \
             (waiting for the GPU {:.2}; graph {:.2} {}; jobs: {})",
            split.frame,
            split.begin_ms,
            split.requests_ms,
            split.end_ms,
            split.gpu_wait_ms,
            stats.run_time.as_secs_f64() * 1e3,
            if stats.ran_inline {
                "on the render thread"
            } else {
                "on the workers"
            },
            jobs.join(", ")
        );
        self.worst.push((ms, text));
        self.worst.sort_by(|a, b| b.0.total_cmp(&a.0));
        self.worst.truncate(SLOW_FRAMES);
    }
}

/// Samples kept within a fixed capacity, allocated up front (the heap is
/// measured too): when full, every other one is dropped and samples are kept
/// half as often, so they stay spread over the whole run.
struct Decimated<T> {
    points: Vec<T>,
    every: u64,
    seen: u64,
}

impl<T> Decimated<T> {
    fn with_capacity(capacity: usize) -> Self {
        Decimated {
            points: Vec::with_capacity(capacity),
            every: 1,
            seen: 0,
        }
    }

    fn sample(&mut self, point: T) {
        self.seen += 1;
        if !(self.seen - 1).is_multiple_of(self.every) {
            return;
        }
        if self.points.len() == self.points.capacity() {
            let mut i = 0;
            self.points.retain(|_| {
                i += 1;
                i % 2 == 1
            });
            self.every *= 2;
        }
        self.points.push(point);
    }
}

/// Memory over the run, at most `TRACE_POINTS` samples of
/// (seconds, RSS, heap, malloc in use, GPU bytes).
struct MemoryTrace(Decimated<(f64, u64, u64, u64, u64)>);

const TRACE_POINTS: usize = 32;

impl MemoryTrace {
    fn new() -> Self {
        MemoryTrace(Decimated::with_capacity(TRACE_POINTS))
    }

    fn sample(&mut self, seconds: f64, rss: u64, heap: u64, malloc: u64, gpu: u64) {
        self.0.sample((seconds, rss, heap, malloc, gpu));
    }

    /// `seconds RSS/heap/malloc/GPU MB` per sample, for the report's notes.
    fn describe(&self) -> String {
        let mb = |b: u64| b as f64 / 1e6;
        self.0
            .points
            .iter()
            .map(|&(t, r, h, m, g)| {
                format!(
                    "{t:.0}s {:.0}/{:.0}/{:.0}/{:.0}",
                    mb(r),
                    mb(h),
                    mb(m),
                    mb(g)
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The samples of each half of the run after warm-up, for their medians: a
/// leak moves the whole second half up, while the peaks also move with how
/// much free memory the C allocator happens to keep at one moment. At most
/// `HALF_SAMPLES` a half.
struct Medians {
    halves: [Decimated<u64>; 2],
}

const HALF_SAMPLES: usize = 4096;

impl Medians {
    fn new() -> Self {
        Medians {
            halves: [
                Decimated::with_capacity(HALF_SAMPLES),
                Decimated::with_capacity(HALF_SAMPLES),
            ],
        }
    }

    fn sample(&mut self, second_half: bool, v: u64) {
        self.halves[second_half as usize].sample(v);
    }

    /// The second half's median less the first half's.
    fn growth(&mut self) -> f64 {
        let median = |v: &mut Vec<u64>| {
            v.sort_unstable();
            v.get(v.len() / 2).copied()
        };
        let [a, b] = &mut self.halves;
        match (median(&mut a.points), median(&mut b.points)) {
            (Some(a), Some(b)) => b as f64 - a as f64,
            _ => f64::NAN,
        }
    }
}

/// The highest and lowest memory samples of the first and the second half
/// of the run after warm-up.
#[derive(Default)]
struct Growth {
    first: Option<(u64, u64)>,
    second: Option<(u64, u64)>,
}

impl Growth {
    fn sample(&mut self, second_half: bool, v: u64) {
        let slot = if second_half {
            &mut self.second
        } else {
            &mut self.first
        };
        *slot = Some(slot.map_or((v, v), |(hi, lo)| (hi.max(v), lo.min(v))));
    }

    /// Whether `v` would be the highest sample of its half so far.
    fn would_raise(&self, second_half: bool, v: u64) -> bool {
        let slot = if second_half { self.second } else { self.first };
        slot.is_none_or(|(hi, _)| v > hi)
    }

    /// The second half's highest less the first half's: a leak raises it;
    /// the live set's ups and downs (textures of many sizes come and go) do not.
    fn growth(&self) -> f64 {
        match (self.first, self.second) {
            (Some(a), Some(b)) => b.0 as f64 - a.0 as f64,
            _ => f64::NAN,
        }
    }

    /// The second half's lowest less the first half's: the floor the
    /// process returns to between loads. A leak raises it as well; work in
    /// flight at a sample (a large file being read) does not.
    fn floor_growth(&self) -> f64 {
        match (self.first, self.second) {
            (Some(a), Some(b)) => b.1 as f64 - a.1 as f64,
            _ => f64::NAN,
        }
    }
}

pub fn run(opts: &Options, progress: &mut Progress) -> Result<ScenarioReport, String> {
    let gpu = forgeflow::gpu::open().map_err(|e| e.to_string())?;
    let mut report = ScenarioReport::on_gpu(&gpu);
    let mut integrity = Integrity::default();
    let err = |e: RuntimeError| e.to_string();
    let mut rt = Runtime::new(
        &gpu.device,
        &gpu.queue,
        RuntimeConfig {
            threads: Some(opts.threads),
            staging: StagingConfig {
                buffer_size: 16 << 20,
                ..Default::default()
            },
            pool: BufferPoolConfig {
                block_size: 16 << 20,
                budget_bytes: 256 << 20,
                defrag: DefragBudget {
                    max_bytes: 2 << 20,
                    max_moves: 32,
                },
                ..Default::default()
            },
            texture_budget_bytes: 512 << 20,
            texture_upload_bytes_per_frame: 512 << 10,
            texture_usage: wgpu::TextureUsages::COPY_SRC,
            ..RuntimeConfig::default()
        },
    )
    .map_err(err)?;
    // Page faults read a tile pack, as a shipped renderer's do: the terrain's
    // tiles are made once into a pack in the temporary directory.
    let side = opts.vt_size.min(8192);
    let layout = VtLayout::new(side, side, 128, 4).map_err(|e| e.to_string())?;
    let pack = terrain_pack(layout, opts.seed, progress)?;
    let vt = rt
        .add_virtual_texture(
            pack,
            VtConfig {
                budget_bytes: (opts.budget_mb << 20).min(128 << 20),
                // A few tiles a frame (a tile is 72 KiB read and checked):
                // the flythrough needs a handful, and the frame stays short.
                max_uploads: 8,
                max_fault_ms: 0.5,
                ..VtConfig::default()
            },
            opts.resolution,
        )
        .map_err(err)?;
    let scene = crate::vt::scene(
        &gpu,
        rt.virtual_texture::<TilePack>(vt).map_err(err)?,
        opts.resolution,
    );
    let corpus = corpus_files();
    if corpus.is_empty() {
        report
            .notes
            .push("no texture corpus: generated textures only".into());
    }
    let mut rng = SplitMix64::new(opts.seed ^ 0xa11);
    let noise: Vec<u8> = (0..NOISE_BYTES).map(|_| rng.next_u64() as u8).collect();

    let mut textures: VecDeque<(TextureHandle, Loaded)> = VecDeque::new();
    let mut buffers: HashMap<PoolHandle, (usize, usize)> = HashMap::new();
    let mut live: Vec<PoolHandle> = Vec::new();
    let (mut next_corpus, mut loads, mut alloc_refused) = (0usize, 0u64, 0u64);
    let (mut dropped, mut abandoned_seen, mut verify_due) = (0u64, 0u64, false);
    let mut cpu_ms = FrameTimes::new();
    // The same frames without the time end_frame waited for the GPU (a
    // staging buffer or a fence): the render thread's own work.
    let (mut own_ms, mut gpu_wait_ms) = (FrameTimes::new(), FrameTimes::new());
    let runqueue = crate::runqueue::RunQueueWait::for_this_thread();
    // Now that every thread of the runtime and the driver has started (a
    // thread inherits its creator's class), as a renderer would: the render
    // thread and the runtime's workers (not its background threads, nor
    // the driver's).
    if opts.render_fifo {
        let workers = crate::priority::set_threads_fifo("forgeflow-worke", 1);
        match crate::priority::set_this_thread_fifo(1).and(workers) {
            Ok(n) => report.metric("worker_threads_fifo", n as f64),
            Err(why) => report.notes.push(why),
        }
    }
    report.metric(
        "render_thread_fifo",
        crate::priority::this_thread_is_fifo() as u8 as f64,
    );
    let mut slow = SlowFrames { worst: Vec::new() };
    let mut rss_medians = Medians::new();
    let (mut rss, mut heap, mut gpu_bytes) =
        (Growth::default(), Growth::default(), Growth::default());
    let (mut rss_anon, mut rss_file) = (Growth::default(), Growth::default());
    let (mut malloc_used, mut malloc_free) = (Growth::default(), Growth::default());
    let (mut rss_end, mut gpu_bytes_end) = (0, 0);
    let mut trace = MemoryTrace::new();
    // Where each half's highest RSS lay (see `smaps`), allocated up front.
    let mut rss_peaks = [
        crate::smaps::Snapshot::with_capacity(4096),
        crate::smaps::Snapshot::with_capacity(4096),
    ];
    let mut smaps_text = String::with_capacity(1 << 20);
    let mut rollup_text = String::with_capacity(4096);
    let started = Instant::now();
    let frames = opts.frames.max(2 * VERIFY_EVERY);
    // Warm-up: a tenth of the run (at least a minute of a timed run) unless
    // `--warmup` says otherwise, so the virtual texture's cache, the pool's
    // blocks and the corpus cycle reach their steady state before growth is
    // measured.
    let warmup_for = opts.duration.map(|d| {
        opts.warmup
            .unwrap_or_else(|| (d / 10).max(std::time::Duration::from_secs(60)).min(d / 2))
    });
    let mut warmup = (frames / 10).clamp(VERIFY_EVERY, 600);
    let mut frame = 0u64;
    let mut warmup_time = std::time::Duration::ZERO;
    loop {
        let done = match opts.duration {
            Some(d) => started.elapsed() >= d,
            None => frame >= frames,
        };
        if done {
            break;
        }
        let fraction = match opts.duration {
            Some(d) => started.elapsed().as_secs_f64() / d.as_secs_f64(),
            None => frame as f64 / frames as f64,
        };
        progress.update("all: every subsystem in one frame loop", fraction.min(1.0));

        // The embedder's data for this frame, made before the frame is timed.
        let new_texture = frame.is_multiple_of(TEXTURE_EVERY).then(|| {
            loads += 1;
            if !corpus.is_empty() && loads.is_multiple_of(2) {
                next_corpus += 1;
                (None, corpus[(next_corpus - 1) % corpus.len()].clone())
            } else {
                // The same texture at the same point of every cycle of the
                // corpus: the live set repeats, so the two halves of the
                // run compare equal sets (see `Growth`).
                let cycle = match corpus.len() {
                    0 => GENERATED_CYCLE,
                    n => n as u64,
                };
                let mut g = SplitMix64::new(opts.seed ^ 0x6e6 ^ ((loads / 2 % cycle) << 8));
                let (w, h) = (64 + 4 * g.below(112) as u32, 64 + 4 * g.below(112) as u32);
                (Some(generated_png(w, h, &mut g)), PathBuf::new())
            }
        });

        if let Some(w) = warmup_for {
            if started.elapsed() < w {
                warmup = frame + 1;
            }
        }
        let runnable_before = runqueue.total_ns();
        let staging_waited_before = rt.staging().stats().wait_total;
        let t = Instant::now();
        rt.begin_frame().map_err(err)?;
        let begun = t.elapsed();
        if let Some((generated, path)) = new_texture {
            match generated {
                None => textures.push_back((rt.load_texture_path(&path), Loaded::Corpus(path))),
                Some((file, pixels)) => {
                    let handle = rt.load_texture_bytes(file);
                    textures.push_back((
                        handle,
                        Loaded::Generated {
                            pixels,
                            verified: false,
                        },
                    ));
                }
            }
            if textures.len() > LIVE_TEXTURES {
                let (h, _) = textures.pop_front().expect("non-empty");
                integrity.check(rt.free_texture(h).is_ok());
            }
        }
        for _ in 0..rng.below(6) {
            let len = (256f64 * ((MAX_ALLOC / 256) as f64).powf(rng.below(1000) as f64 / 1000.0))
                as usize
                / 4
                * 4;
            match rt.alloc_buffer(len as u64, [4, 16, 256][rng.below(3) as usize]) {
                Ok(h) => {
                    let at = rng.below((NOISE_BYTES - len) as u64) as usize & !3;
                    integrity.check(rt.write_buffer(h, 0, &noise[at..at + len]).is_ok());
                    buffers.insert(h, (at, len));
                    live.push(h);
                }
                Err(_) => alloc_refused += 1,
            }
        }
        // Upload traffic: rewrite a few live allocations whole.
        for _ in 0..2 {
            if let Some(&h) = live.get(rng.below(live.len().max(1) as u64) as usize) {
                let len = buffers[&h].1;
                let at = rng.below((NOISE_BYTES - len) as u64) as usize & !3;
                integrity.check(rt.write_buffer(h, 0, &noise[at..at + len]).is_ok());
                buffers.insert(h, (at, len));
            }
        }
        // As many frees as allocations on average, and one more a frame while
        // more than LIVE_ALLOCATIONS are live: the live set stays near that
        // size instead of drifting as a random walk would (an hour's soak
        // measured that drift as growth).
        let frees = rng.below(6) + (live.len() > LIVE_ALLOCATIONS) as u64;
        for _ in 0..frees {
            if live.len() < LIVE_ALLOCATIONS / 4 {
                break;
            }
            let h = live.swap_remove(rng.below(live.len() as u64) as usize);
            buffers.remove(&h);
            integrity.check(rt.free_buffer(h).is_ok());
        }
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        let requested = t.elapsed();
        let frame_report = rt.end_frame(&mut encoder).map_err(err)?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        if frame >= warmup {
            cpu_ms.record(ms);
            let waited = (rt.staging().stats().wait_total - staging_waited_before)
                + rt.scheduler().last_frame_stats().fence_wait;
            let waited_ms = waited.as_secs_f64() * 1e3;
            own_ms.record((ms - waited_ms).max(0.0));
            gpu_wait_ms.record(waited_ms);
            if slow.wants(ms) {
                let runnable_ms = runnable_before
                    .zip(runqueue.total_ns())
                    .map(|(a, b)| b.saturating_sub(a) as f64 / 1e6);
                let staging_wait = rt.staging().stats().wait_total - staging_waited_before;
                let fence_wait = rt.scheduler().last_frame_stats().fence_wait;
                let split = FrameSplit {
                    frame,
                    begin_ms: begun.as_secs_f64() * 1e3,
                    requests_ms: (requested - begun).as_secs_f64() * 1e3,
                    end_ms: ms - requested.as_secs_f64() * 1e3,
                    runnable_ms,
                    gpu_wait_ms: (staging_wait + fence_wait).as_secs_f64() * 1e3,
                };
                slow.record(ms, split, rt.scheduler().last_frame_stats());
            }
        }
        integrity.check(frame_report.failure.is_none());

        abandoned_seen += frame_report.abandoned_frames.len() as u64;
        let drop_now = opts.drop_every.is_some_and(|n| frame % n == n - 1);
        if drop_now {
            // A skipped frame (a lost surface, a minimised window): the
            // encoder is dropped, and the runtime must redo its work.
            drop(encoder);
            dropped += 1;
        } else {
            // The embedder's own frame: the flythrough samples the virtual texture.
            let cam = crate::vt::camera(frame, frames.max(3600), opts.resolution);
            gpu.queue.write_buffer(&scene.camera, 0, &cam);
            crate::vt::record_pass(&mut encoder, &scene, rt.vt_bind_group(vt).map_err(err)?);
            gpu.queue.submit([encoder.finish()]);
        }

        // A dropped frame's writes are redone by the next frame: the check
        // waits for it.
        verify_due |= frame % VERIFY_EVERY == VERIFY_EVERY - 1;
        if verify_due && !drop_now {
            verify_due = false;
            verify(
                &gpu,
                &rt,
                &mut textures,
                &buffers,
                &noise,
                &mut rng,
                &mut integrity,
            )?;
            // Exact where the rollup can be read (see `smaps::exact_rss`).
            let rss_exact = crate::smaps::exact_rss(&mut rollup_text);
            let rss_now = rss_exact
                .map(|(all, _)| all)
                .or_else(|| crate::texture::rss().map(|(now, _)| now))
                .unwrap_or(0);
            let heap_now = crate::alloc::live();
            let malloc_now = crate::alloc::malloc_totals();
            trace.sample(
                started.elapsed().as_secs_f64(),
                rss_now,
                heap_now,
                malloc_now.map_or(0, |(used, _)| used),
                rt.gpu_bytes(),
            );
            if frame >= warmup {
                // The second half, by frames or by time, whichever the run counts.
                let second = match opts.duration {
                    Some(d) => {
                        started.elapsed() >= warmup_time + (d.saturating_sub(warmup_time)) / 2
                    }
                    None => frame >= warmup + (frames - warmup) / 2,
                };
                rss_end = rss_now;
                gpu_bytes_end = rt.gpu_bytes();
                if rss.would_raise(second, rss_end) {
                    let at = started.elapsed().as_secs_f64();
                    rss_peaks[second as usize].take(&mut smaps_text, rss_end, at);
                }
                rss.sample(second, rss_end);
                rss_medians.sample(second, rss_end);
                let parts = rss_exact
                    .map(|(all, anon)| (anon, all - anon))
                    .or_else(crate::texture::rss_parts);
                if let Some((anon, file)) = parts {
                    rss_anon.sample(second, anon);
                    rss_file.sample(second, file);
                }
                heap.sample(second, heap_now);
                if let Some((used, free)) = malloc_now {
                    malloc_used.sample(second, used);
                    malloc_free.sample(second, free);
                }
                gpu_bytes.sample(second, gpu_bytes_end);
            } else {
                warmup_time = started.elapsed();
            }
        }
        frame += 1;
    }
    verify(
        &gpu,
        &rt,
        &mut textures,
        &buffers,
        &noise,
        &mut rng,
        &mut integrity,
    )?;
    let stats = rt.stats();
    let vt_stats = rt.vt_stats(vt).map_err(err)?.clone();
    let pool_stats = rt.pool().stats().clone();
    let staging_stats = rt.staging().stats().clone();
    let frag = rt.pool().allocator().fragmentation();
    let live_allocations = rt.pool().allocator().len();

    // Everything freed: nothing may stay behind.
    rt.begin_frame().map_err(err)?;
    for (h, _) in textures.drain(..) {
        integrity.check(rt.free_texture(h).is_ok());
    }
    for h in live.drain(..) {
        integrity.check(rt.free_buffer(h).is_ok());
    }
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    rt.end_frame(&mut encoder).map_err(err)?;
    gpu.queue.submit([encoder.finish()]);
    rt.wait_idle(std::time::Duration::from_secs(10))
        .map_err(err)?;
    integrity.check(rt.pool().allocator().is_empty());
    integrity.check(rt.stats().textures_live == 0 && rt.stats().texture_bytes == 0);
    // Every dropped frame was found, once.
    integrity.check(rt.stats().abandoned_frames == dropped);

    let (p50, p99, max) = (cpu_ms.quantile(0.5), cpu_ms.quantile(0.99), cpu_ms.max);
    report.frames = frame;
    report.metric("frames", frame as f64);
    // Every dropped frame is found (the last one by the final frames below
    // at the latest) and none other.
    report.metric("frames_dropped", dropped as f64);
    report.metric("frames_abandoned_reported", abandoned_seen as f64);
    report.metric("warmup_frames", warmup as f64);
    report.metric("warmup_seconds", warmup_time.as_secs_f64());
    report.metric("duration_s", started.elapsed().as_secs_f64());
    report.metric("frame_cpu_ms_p50", p50);
    report.metric("frame_cpu_ms_p99", p99);
    report.metric("frame_cpu_ms_max", max);
    report.metric("frame_cpu_own_ms_p50", own_ms.quantile(0.5));
    report.metric("frame_cpu_own_ms_p99", own_ms.quantile(0.99));
    report.metric("frame_cpu_own_ms_max", own_ms.max);
    report.metric("gpu_wait_ms_p99", gpu_wait_ms.quantile(0.99));
    let (rss_growth, gpu_growth) = (rss.growth(), gpu_bytes.growth());
    report.metric("rss_growth_bytes_after_warmup", rss_growth);
    // RSS in two parts: anonymous memory (what the process and its driver
    // allocated) and the pages of mapped files (libraries, textures read
    // through a mapping), which grow as more of a file is touched.
    report.metric("rss_anon_growth_bytes_after_warmup", rss_anon.growth());
    report.metric("rss_file_growth_bytes_after_warmup", rss_file.growth());
    report.metric("rss_floor_growth_bytes_after_warmup", rss.floor_growth());
    report.metric("rss_median_growth_bytes_after_warmup", rss_medians.growth());
    // The RSS peak growth by kind of mapping, and the mappings behind it.
    if rss_peaks.iter().all(|s| s.is_taken()) {
        let (kinds, text) = crate::smaps::diff(&rss_peaks[0], &rss_peaks[1]);
        for (kind, bytes) in kinds {
            report.metric(&format!("rss_peak_growth_{}_bytes", kind.name()), bytes);
        }
        report.notes.push(text);
    }
    report.metric("heap_floor_growth_bytes_after_warmup", heap.floor_growth());
    report.metric(
        "gpu_bytes_floor_growth_after_warmup",
        gpu_bytes.floor_growth(),
    );
    // The Rust heap alone (forgeflow, wgpu, this binary): a growth of RSS
    // without one of the heap is the driver's.
    report.metric("heap_growth_bytes_after_warmup", heap.growth());
    // glibc's malloc as a whole (the Rust heap, the Vulkan driver, the
    // loader): what it hands out, and what it keeps free in its arenas.
    report.metric(
        "malloc_in_use_growth_bytes_after_warmup",
        malloc_used.growth(),
    );
    report.metric(
        "malloc_in_use_floor_growth_bytes_after_warmup",
        malloc_used.floor_growth(),
    );
    report.metric(
        "malloc_free_floor_growth_bytes_after_warmup",
        malloc_free.floor_growth(),
    );
    report.metric("gpu_bytes_growth_after_warmup", gpu_growth);
    report.metric("rss_bytes_end", rss_end as f64);
    report.metric("gpu_bytes_end", gpu_bytes_end as f64);
    report.metric("graph.failed_frames", stats.failed_frames as f64);
    let sched_stats = rt.scheduler().stats();
    report.metric(
        "graph.frames_inline_pct",
        100.0 * sched_stats.frames_inline as f64 / sched_stats.frames_run.max(1) as f64,
    );
    report.metric(
        "graph.dispatch_wait_ms",
        sched_stats.dispatch_wait.as_secs_f64() * 1e3,
    );
    let bg = rt.background().stats();
    report.metric("background.tasks", bg.finished as f64);
    report.metric("background.busy_s", bg.busy.as_secs_f64());
    report.metric("texture.loads", loads as f64);
    report.metric("texture.ready", stats.textures_ready as f64);
    report.metric("texture.failed", stats.textures_failed as f64);
    report.metric("pool.allocations_refused", alloc_refused as f64);
    report.metric("pool.live_allocations", live_allocations as f64);
    report.metric("pool.frag_ext_pct", frag * 100.0);
    report.metric("pool.defrag_bytes_moved", pool_stats.bytes_moved as f64);
    report.metric(
        "pool.defrag_allocations_moved",
        pool_stats.allocations_moved as f64,
    );
    report.metric("pool.buffer_writes", stats.buffer_writes as f64);
    report.metric("pool.buffer_write_bytes", stats.buffer_write_bytes as f64);
    report.metric("staging.bytes_total", staging_stats.bytes_total as f64);
    report.metric("staging.waits", staging_stats.waits as f64);
    report.metric(
        "staging.wait_max_ms",
        staging_stats.wait_max.as_secs_f64() * 1e3,
    );
    report.metric(
        "vt.hit_rate_pct",
        100.0 * vt_stats.hits as f64 / vt_stats.requests.max(1) as f64,
    );
    report.metric("vt.resident_tiles", vt_stats.resident as f64);
    report.metric("vt.tiles_uploaded", vt_stats.tiles_uploaded as f64);
    report.metric("vt.failed_loads", vt_stats.failed_loads as f64);
    report.metric("vt.deferred_loads", vt_stats.deferred_loads as f64);
    report.metric("vt.mip_bias", vt_stats.bias as f64);
    report.metric("vt.gpu_bytes", vt_stats.gpu_bytes as f64);
    report.target("frame_cpu_ms_p99", "<= 2", p99 <= 2.0);
    report.target("frame_cpu_ms_max", "<= 8", max <= 8.0);
    report.target(
        "rss_growth_bytes_after_warmup",
        "0 over a one-hour soak (--duration 1h)",
        rss_growth <= 0.0,
    );
    report.target(
        "gpu_bytes_growth_after_warmup",
        "0 over a one-hour soak (--duration 1h)",
        gpu_growth <= 0.0,
    );
    report.notes.push(format!(
        "memory over the run (time RSS/Rust heap/malloc in use/runtime GPU, MB): {}",
        trace.describe()
    ));
    for (_, text) in slow.worst {
        report.notes.push(format!("slowest after warm-up: {text}"));
    }
    report.integrity.add(integrity);
    Ok(report)
}

/// Reads back a sample of live allocations and the generated textures not
/// yet checked; checks that corpus files settled (ready or a typed error).
fn verify(
    gpu: &forgeflow::gpu::Gpu,
    rt: &Runtime,
    textures: &mut VecDeque<(TextureHandle, Loaded)>,
    buffers: &HashMap<PoolHandle, (usize, usize)>,
    noise: &[u8],
    rng: &mut SplitMix64,
    integrity: &mut Integrity,
) -> Result<(), String> {
    let _ = gpu.device.poll(wgpu::PollType::wait_indefinitely());
    let handles: Vec<_> = buffers.keys().copied().collect();
    for _ in 0..handles.len().min(32) {
        let h = handles[rng.below(handles.len() as u64) as usize];
        let (at, len) = buffers[&h];
        let r = rt.resolve_buffer(h).map_err(|e| e.to_string())?;
        let bytes = gpu
            .read_buffer(r.buffer, r.offset, r.size)
            .map_err(|e| e.to_string())?;
        integrity.check(bytes == noise[at..at + len]);
    }
    for (h, loaded) in textures.iter_mut() {
        let status = rt.texture(*h).map_err(|e| e.to_string())?;
        match (loaded, status) {
            (Loaded::Generated { pixels, verified }, TextureStatus::Ready(t)) if !*verified => {
                let got = gpu
                    .read_texture(t.texture, 0, 0..1)
                    .map_err(|e| e.to_string())?;
                integrity.check(got == *pixels);
                *verified = true;
            }
            (Loaded::Generated { .. }, TextureStatus::Failed(e)) => {
                eprintln!("forgeflow-stress all: a generated texture failed: {e}");
                integrity.check(false);
            }
            (Loaded::Corpus(path), TextureStatus::Failed(e)) => {
                // Only typed refusals (formats this build cannot hold);
                // Basis Universal files load transcoded.
                let expected = matches!(e, RuntimeError::Texture(_) | RuntimeError::Upload(_));
                if !expected {
                    eprintln!("forgeflow-stress all: {}: {e}", path.display());
                }
                integrity.check(expected);
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Medians;

    #[test]
    fn median_growth_compares_the_halves_and_survives_decimation() {
        let mut m = Medians::new();
        // Three times the room: the halves are decimated twice.
        for i in 0..3 * super::HALF_SAMPLES as u64 {
            m.sample(false, 1000 + i % 100);
            m.sample(true, 1010 + i % 100);
        }
        assert!(m
            .halves
            .iter()
            .all(|h| h.points.len() <= super::HALF_SAMPLES));
        assert_eq!(m.growth(), 10.0);
        // A spike in one half moves its peak, not its median.
        let mut m = Medians::new();
        for i in 0..101 {
            m.sample(false, 500);
            m.sample(true, if i == 50 { 900 } else { 500 });
        }
        assert_eq!(m.growth(), 0.0);
    }
}
