//! `forgeflow-stress upload`: 100 MiB per frame from the CPU to a GPU buffer.
//!
//! The frame is cut three ways (1 x 100 MiB, 1600 x 64 KiB, 25,600 x 4 KiB);
//! piece `i` goes to a shuffled place in the destination, so nobody can merge
//! copies. Methods, in the same process on the same bytes:
//! - forgeflow: a [`StagingRing`] of 3 x 128 MiB; the render thread reserves the
//!   pieces and declares jobs (about 1 MiB of pieces each) that copy them into
//!   mapped memory on the workers; then it records the copies.
//! - `Queue::write_buffer` per piece, one submit per frame (`--compare`).
//! - `wgpu::util::StagingBelt` with 32 MiB chunks (`--compare`).
//! - memcpy into a CPU buffer, one thread and all workers (`--compare`): the ceiling.
//!
//! Integrity: the first frames of each method and piece size are read back
//! (plain wgpu copies) and every piece compared; the timed frames are checked
//! by reading back the final state. Throughput counts until the GPU has
//! finished the last frame.

use forgeflow_test_support::gpu::VerifyRead as _;
use std::num::NonZeroU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use forgeflow::graph::{Scheduler, SchedulerConfig};
use forgeflow::staging::{OverflowPolicy, StagingConfig, StagingRing};
use forgeflow_test_support::SplitMix64;
use rayon::prelude::*;
use serde_json::{json, Map, Value};

use crate::cli::Options;
use crate::report::{Integrity, Progress, ScenarioReport};

const FRAME_BYTES: usize = 100 << 20;
const RING_BUFFER: u64 = 128 << 20;
const RING_BUFFERS: u32 = 3;
const PIECE_SIZES: [usize; 3] = [4 << 10, 64 << 10, FRAME_BYTES];
const MB: f64 = 1e6;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Method {
    Forgeflow,
    WriteBuffer,
    StagingBelt,
    Memcpy,
    MemcpyParallel,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Forgeflow => "forgeflow",
            Method::WriteBuffer => "write_buffer",
            Method::StagingBelt => "staging_belt",
            Method::Memcpy => "memcpy",
            Method::MemcpyParallel => "memcpy_parallel",
        }
    }

    fn uses_gpu(self) -> bool {
        !matches!(self, Method::Memcpy | Method::MemcpyParallel)
    }
}

/// What one method did over a run of frames.
#[derive(Default)]
struct Measured {
    bytes: u64,
    seconds: f64,
    render_thread: Duration,
    fence_wait: Duration,
    buffers_created: u64,
}

struct Bench {
    gpu: forgeflow::gpu::Gpu,
    sched: Scheduler,
    ring: StagingRing,
    belt: wgpu::util::StagingBelt,
    dst: wgpu::Buffer,
    cpu_dst: Vec<u8>,
    sources: [Vec<u8>; 2],
}

pub fn run(opts: &Options, progress: &mut Progress) -> Result<ScenarioReport, String> {
    let gpu = forgeflow::gpu::open().map_err(|e| e.to_string())?;
    let mut report = ScenarioReport::on_gpu(&gpu);
    let sched = Scheduler::new(SchedulerConfig {
        threads: Some(opts.threads),
        auto_signal_fences: true,
        // The workers' parallel fill is what this measures: no frame inline.
        inline_below: std::time::Duration::ZERO,
        ..SchedulerConfig::default()
    })
    .map_err(|e| e.to_string())?;
    let ring = StagingRing::new(
        &gpu.device,
        StagingConfig {
            buffer_size: RING_BUFFER,
            buffers: RING_BUFFERS,
            overflow: OverflowPolicy::Wait,
            wait_timeout: Duration::from_secs(30),
            gpu_scatter: opts.gpu_scatter,
            ..StagingConfig::default()
        },
    )
    .map_err(|e| e.to_string())?;
    let belt = wgpu::util::StagingBelt::new(gpu.device.clone(), 32 << 20);
    let dst = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("upload destination"),
        size: FRAME_BYTES as u64,
        // STORAGE, as a pool buffer has it: small pieces take the GPU scatter.
        usage: wgpu::BufferUsages::COPY_DST
            | wgpu::BufferUsages::COPY_SRC
            | wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    let sources = [
        random_bytes(FRAME_BYTES, opts.seed),
        random_bytes(FRAME_BYTES, opts.seed ^ 0x5eed),
    ];
    let mut bench = Bench {
        gpu,
        sched,
        ring,
        belt,
        dst,
        cpu_dst: vec![0u8; FRAME_BYTES],
        sources,
    };

    let timed = (opts.frames / 100).clamp(3, 100_000);
    let verified = 2u64;
    let methods: &[Method] = if opts.compare {
        &[
            Method::Forgeflow,
            Method::WriteBuffer,
            Method::StagingBelt,
            Method::Memcpy,
            Method::MemcpyParallel,
        ]
    } else {
        &[Method::Forgeflow]
    };
    let steps = (PIECE_SIZES.len() * methods.len()) as f64;
    let mut by_size = Map::new();
    let mut step = 0.0;
    for (si, &piece) in PIECE_SIZES.iter().enumerate() {
        let pieces = FRAME_BYTES / piece;
        let mut rng = SplitMix64::new(opts.seed.wrapping_add(si as u64));
        let mut placement: Vec<usize> = (0..pieces).collect();
        for i in (1..pieces).rev() {
            placement.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let mut entry = Map::new();
        let mut compare = Map::new();
        for &method in methods {
            progress.update(
                &format!("upload: {} x {} B, {}", pieces, piece, method.name()),
                step / steps,
            );
            step += 1.0;
            // Verified frames: every piece read back and compared.
            for f in 0..verified {
                let parity = (f % 2) as usize;
                bench.frame(method, piece, &placement, parity)?;
                let integrity = bench.verify(method, piece, &placement, parity);
                report.integrity.add(integrity);
            }
            // Timed frames, pipelined, until the GPU has finished.
            let created_before = bench.ring.stats().ring_buffers_created
                + bench.ring.stats().dedicated_buffers_created;
            let wait_before = bench.ring.stats().wait_total;
            let start = Instant::now();
            let mut m = Measured::default();
            for f in 0..timed {
                m.render_thread += bench.frame(method, piece, &placement, (f % 2) as usize)?;
                m.bytes += FRAME_BYTES as u64;
            }
            if method.uses_gpu() {
                let _ = bench.gpu.device.poll(wgpu::PollType::wait_indefinitely());
            }
            m.seconds = start.elapsed().as_secs_f64();
            m.fence_wait = bench.ring.stats().wait_total - wait_before;
            m.buffers_created = bench.ring.stats().ring_buffers_created
                + bench.ring.stats().dedicated_buffers_created
                - created_before;
            report.integrity.add(bench.verify(
                method,
                piece,
                &placement,
                ((timed - 1) % 2) as usize,
            ));
            report.frames += timed + verified;

            let throughput = m.bytes as f64 / MB / m.seconds;
            let frames_f = timed as f64;
            let render_ms =
                m.render_thread.as_secs_f64() * 1e3 / frames_f * (100.0 * MB / FRAME_BYTES as f64);
            if method == Method::Forgeflow {
                entry.insert("throughput_mb_per_s".into(), num(throughput));
                entry.insert("render_thread_ms_per_100mb".into(), num(render_ms));
                entry.insert(
                    "fence_wait_ms_per_frame".into(),
                    num(m.fence_wait.as_secs_f64() * 1e3 / frames_f),
                );
                entry.insert(
                    "buffers_created_steady_state".into(),
                    json!(m.buffers_created),
                );
                entry.insert("steady_state_frames".into(), json!(timed));
            } else {
                let mut c = Map::new();
                c.insert("throughput_mb_per_s".into(), num(throughput));
                if method.uses_gpu() {
                    c.insert("render_thread_ms_per_100mb".into(), num(render_ms));
                }
                compare.insert(method.name().into(), Value::Object(c));
            }
        }
        if opts.compare {
            entry.insert("compare".into(), Value::Object(compare));
        }
        by_size.insert(piece.to_string(), Value::Object(entry));
    }

    // The headline figures are those of 64 KiB pieces.
    let main = by_size
        .get(&(64usize << 10).to_string())
        .cloned()
        .unwrap_or(Value::Null);
    let get = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64).unwrap_or(f64::NAN);
    let throughput = get(&main, "throughput_mb_per_s");
    let render_ms = get(&main, "render_thread_ms_per_100mb");
    let created = get(&main, "buffers_created_steady_state");
    report.metric("throughput_mb_per_s", throughput);
    report.metric("render_thread_ms_per_100mb", render_ms);
    report.metric(
        "peak_staging_bytes",
        bench.ring.stats().peak_staging_bytes as f64,
    );
    report.metric("buffers_created_steady_state", created);
    report.metric("frame_bytes", FRAME_BYTES as f64);
    report.metric("timed_frames_per_run", timed as f64);
    // Which path small pieces took (see `--gpu-scatter`): the render thread's
    // time at 4 KiB depends on it.
    report.metric("gpu_scatter", bench.ring.scatters() as u8 as f64);
    report
        .metrics
        .insert("by_piece_size".into(), Value::Object(by_size));
    let bound = RING_BUFFER * RING_BUFFERS as u64 + bench.ring.stats().dedicated_bytes_created;
    // The render thread's time per 100 MB by piece size, and on a discrete
    // GPU the throughput, against the performance issue's targets.
    let discrete = bench.gpu.info.device_type == wgpu::DeviceType::DiscreteGpu;
    for (piece, render_max, throughput_min) in [
        (64usize << 10, 0.2, 40_000.0),
        (4 << 10, 2.0, 20_000.0),
        (FRAME_BYTES, f64::INFINITY, 40_000.0),
    ] {
        let Some(entry) = report.metrics["by_piece_size"]
            .get(piece.to_string())
            .cloned()
        else {
            continue;
        };
        let name = |what: &str| format!("by_piece_size.{piece}.{what}");
        if render_max.is_finite() {
            let ms = get(&entry, "render_thread_ms_per_100mb");
            report.target(
                &name("render_thread_ms_per_100mb"),
                format!("<= {render_max}"),
                ms <= render_max,
            );
        }
        if discrete {
            let mb = get(&entry, "throughput_mb_per_s");
            report.target(
                &name("throughput_mb_per_s"),
                format!(">= {throughput_min} on a discrete GPU (80% of the H100 host's bus)"),
                mb >= throughput_min,
            );
        }
    }
    report.target("buffers_created_steady_state", "0", created == 0.0);
    report.target(
        "peak_staging_bytes",
        format!("<= frames in flight x ring size (+ dedicated) = {bound}"),
        bench.ring.stats().peak_staging_bytes <= bound,
    );
    if let Some(compare) = main.get("compare") {
        for (peer, v) in compare.as_object().into_iter().flatten() {
            report.compare(peer, "throughput_mb_per_s", get(v, "throughput_mb_per_s"));
        }
        let belt = get(&compare["staging_belt"], "throughput_mb_per_s");
        let ratio = throughput / belt;
        report.ratio("throughput_vs_staging_belt", ratio);
        if discrete {
            report.target(
                "throughput_vs_staging_belt",
                ">= 3 on a discrete GPU",
                ratio >= 3.0,
            );
        } else {
            report.target(
                "throughput_vs_staging_belt",
                ">= 1 (software rasterizer: fill and copy share the cores)",
                ratio >= 1.0,
            );
        }
    }
    Ok(report)
}

impl Bench {
    /// Uploads one frame; returns the render thread's time in forgeflow (or in
    /// the method), fence waits and the workers' copying excluded.
    fn frame(
        &mut self,
        method: Method,
        piece: usize,
        placement: &[usize],
        parity: usize,
    ) -> Result<Duration, String> {
        let src = &self.sources[parity];
        let device = &self.gpu.device;
        match method {
            Method::Forgeflow => {
                let t0 = Instant::now();
                let wait0 = self.ring.stats().wait_total;
                let staging = self.ring.begin_frame().map_err(|e| e.to_string())?;
                let mut frame = self.sched.begin_frame().map_err(|e| e.to_string())?;
                if piece >= 1 << 20 {
                    let write = staging
                        .write_buffer(&self.dst, 0, piece as u64)
                        .map_err(|e| e.to_string())?;
                    for (k, mut part) in write.into_chunks(1 << 20).enumerate() {
                        let from = &src[k << 20..(k << 20) + part.len()];
                        frame
                            .add("upload", move |_| Ok(part.write(from)?))
                            .map_err(|e| e.to_string())?;
                    }
                } else {
                    let per_job = ((1 << 20) / piece).max(1);
                    for first in (0..placement.len()).step_by(per_job) {
                        let group = first..(first + per_job).min(placement.len());
                        let mut writes = Vec::with_capacity(group.len());
                        for i in group {
                            let w = staging
                                .write_buffer(
                                    &self.dst,
                                    (placement[i] * piece) as u64,
                                    piece as u64,
                                )
                                .map_err(|e| e.to_string())?;
                            writes.push((w, &src[i * piece..(i + 1) * piece]));
                        }
                        frame
                            .add("upload", move |_| {
                                for (mut w, from) in writes {
                                    w.write(from)?;
                                }
                                Ok(())
                            })
                            .map_err(|e| e.to_string())?;
                    }
                }
                let declared = Instant::now();
                frame.run().map_err(|e| e.to_string())?;
                let ran = Instant::now();
                let mut encoder = device.create_command_encoder(&Default::default());
                staging.finish(&mut encoder);
                let finished = Instant::now();
                self.gpu.queue.submit([encoder.finish()]);
                let waited = self.ring.stats().wait_total - wait0;
                Ok((declared - t0).saturating_sub(waited) + (finished - ran))
            }
            Method::WriteBuffer => {
                let t0 = Instant::now();
                for (i, &slot) in placement.iter().enumerate() {
                    self.gpu.queue.write_buffer(
                        &self.dst,
                        (slot * piece) as u64,
                        &src[i * piece..(i + 1) * piece],
                    );
                }
                self.gpu.queue.submit([]);
                Ok(t0.elapsed())
            }
            Method::StagingBelt => {
                let t0 = Instant::now();
                let mut encoder = device.create_command_encoder(&Default::default());
                let size = NonZeroU64::new(piece as u64).expect("pieces are not empty");
                for (i, &slot) in placement.iter().enumerate() {
                    self.belt
                        .write_buffer(&mut encoder, &self.dst, (slot * piece) as u64, size)
                        .copy_from_slice(&src[i * piece..(i + 1) * piece]);
                }
                self.belt.finish();
                self.gpu.queue.submit([encoder.finish()]);
                self.belt.recall();
                Ok(t0.elapsed())
            }
            Method::Memcpy => {
                let t0 = Instant::now();
                for (i, &slot) in placement.iter().enumerate() {
                    self.cpu_dst[slot * piece..(slot + 1) * piece]
                        .copy_from_slice(&src[i * piece..(i + 1) * piece]);
                }
                Ok(t0.elapsed())
            }
            Method::MemcpyParallel => {
                let t0 = Instant::now();
                let pool = Arc::clone(self.sched.pool());
                let chunk = piece.max(1 << 20);
                pool.install(|| {
                    // Destination chunks in order, each filled from its source piece(s).
                    let inverse: Vec<usize> = {
                        let mut inv = vec![0; placement.len()];
                        for (i, &slot) in placement.iter().enumerate() {
                            inv[slot] = i;
                        }
                        inv
                    };
                    self.cpu_dst
                        .par_chunks_mut(chunk)
                        .enumerate()
                        .for_each(|(c, out)| {
                            for (k, dst_piece) in out.chunks_mut(piece).enumerate() {
                                let slot = c * (chunk / piece) + k;
                                let i = inverse[slot];
                                dst_piece
                                    .copy_from_slice(&src[i * piece..i * piece + dst_piece.len()]);
                            }
                        });
                });
                Ok(t0.elapsed())
            }
        }
    }

    /// Reads the destination back (plain wgpu, or the CPU buffer for memcpy)
    /// and compares every piece with its source.
    fn verify(
        &mut self,
        method: Method,
        piece: usize,
        placement: &[usize],
        parity: usize,
    ) -> Integrity {
        let src = &self.sources[parity];
        let mut integrity = Integrity::default();
        let back;
        let bytes: &[u8] = if method.uses_gpu() {
            // A failed readback is an integrity failure (the length check below).
            back = self
                .gpu
                .read_buffer(&self.dst, 0, self.dst.size())
                .unwrap_or_default();
            &back
        } else {
            &self.cpu_dst
        };
        if bytes.len() != FRAME_BYTES {
            integrity.check(false);
            return integrity;
        }
        for (i, &slot) in placement.iter().enumerate() {
            integrity
                .check(bytes[slot * piece..(slot + 1) * piece] == src[i * piece..(i + 1) * piece]);
        }
        integrity
    }
}

fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0u8; len];
    out.par_chunks_mut(1 << 20)
        .enumerate()
        .for_each(|(c, chunk)| {
            let mut rng = SplitMix64::new(seed ^ (c as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
            for word in chunk.chunks_mut(8) {
                let v = rng.next_u64().to_le_bytes();
                word.copy_from_slice(&v[..word.len()]);
            }
        });
    out
}

fn num(v: f64) -> Value {
    serde_json::Number::from_f64((v * 1e4).round() / 1e4).map_or(Value::Null, Value::Number)
}
