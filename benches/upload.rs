//! Criterion bench of uploads (needs a GPU; lavapipe works): 16 MiB per
//! iteration as 256 pieces of 64 KiB to shuffled places of one STORAGE buffer,
//! through the staging ring (pieces filled by parallel jobs), StagingBelt and
//! Queue::write_buffer, each waited for on the GPU. `forgeflow-stress upload`
//! runs the full 100 MiB-per-frame comparison; this is its quick repeatable form.
//!
//! A second group times only the render thread's part of a frame of 4096
//! pieces of 4 KiB (16 MiB): reserving each piece and `finish` recording the
//! copies (or the scatter), not the fill, the submit or the GPU's copy.

use std::num::NonZeroU64;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use forgeflow::graph::{Scheduler, SchedulerConfig};
use forgeflow::staging::{StagingConfig, StagingRing};
use forgeflow_test_support::SplitMix64;

const PIECE: usize = 64 << 10;
const PIECES: usize = 256;

fn upload(c: &mut Criterion) {
    let Ok(gpu) = forgeflow::gpu::open() else {
        eprintln!("benches/upload: skipped, no GPU (install mesa-vulkan-drivers)");
        return;
    };
    let bytes = PIECE * PIECES;
    let mut rng = SplitMix64::new(1);
    let src: Vec<u8> = (0..bytes).map(|_| rng.next_u64() as u8).collect();
    let mut placement: Vec<usize> = (0..PIECES).collect();
    for i in (1..PIECES).rev() {
        placement.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let dst = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("bench destination"),
        size: bytes as u64,
        usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    let mut ring = StagingRing::new(
        &gpu.device,
        StagingConfig {
            buffer_size: 32 << 20,
            ..Default::default()
        },
    )
    .expect("ring");
    let mut sched = Scheduler::new(SchedulerConfig {
        auto_signal_fences: true,
        ..Default::default()
    })
    .expect("scheduler");
    let mut belt = wgpu::util::StagingBelt::new(gpu.device.clone(), 32 << 20);
    let wait = |gpu: &forgeflow::gpu::Gpu| {
        let _ = gpu.device.poll(wgpu::PollType::wait_indefinitely());
    };

    let mut g = c.benchmark_group("upload_16mib_as_64kib_pieces");
    g.throughput(Throughput::Bytes(bytes as u64));
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(5));
    g.bench_function(BenchmarkId::new("forgeflow", "staging_ring"), |b| {
        b.iter(|| {
            let staging = ring.begin_frame().expect("staging frame");
            let mut frame = sched.begin_frame().expect("frame");
            for group in placement.chunks(16).enumerate() {
                let (k, slots) = group;
                let mut writes = Vec::with_capacity(slots.len());
                for (j, &slot) in slots.iter().enumerate() {
                    let i = k * 16 + j;
                    let w = staging
                        .write_buffer(&dst, (slot * PIECE) as u64, PIECE as u64)
                        .expect("reserve");
                    writes.push((w, &src[i * PIECE..(i + 1) * PIECE]));
                }
                frame
                    .add("upload", move |_| {
                        for (mut w, s) in writes {
                            w.write(s)?;
                        }
                        Ok(())
                    })
                    .expect("job");
            }
            frame.run().expect("run");
            let mut encoder = gpu.device.create_command_encoder(&Default::default());
            staging.finish(&mut encoder);
            gpu.queue.submit([encoder.finish()]);
            wait(&gpu);
        })
    });
    g.bench_function(BenchmarkId::new("staging_belt", "32mib_chunks"), |b| {
        b.iter(|| {
            let mut encoder = gpu.device.create_command_encoder(&Default::default());
            for (i, &slot) in placement.iter().enumerate() {
                belt.write_buffer(
                    &mut encoder,
                    &dst,
                    (slot * PIECE) as u64,
                    NonZeroU64::new(PIECE as u64).unwrap(),
                )
                .copy_from_slice(&src[i * PIECE..(i + 1) * PIECE]);
            }
            belt.finish();
            gpu.queue.submit([encoder.finish()]);
            belt.recall();
            wait(&gpu);
        })
    });
    g.bench_function(BenchmarkId::new("write_buffer", "per_piece"), |b| {
        b.iter(|| {
            for (i, &slot) in placement.iter().enumerate() {
                gpu.queue.write_buffer(
                    &dst,
                    (slot * PIECE) as u64,
                    &src[i * PIECE..(i + 1) * PIECE],
                );
            }
            gpu.queue.submit([]);
            wait(&gpu);
        })
    });
    g.finish();

    // The render thread's own part: reserve every piece, record the frame.
    const SMALL: usize = 4 << 10;
    let small_pieces = bytes / SMALL;
    let mut small_placement: Vec<usize> = (0..small_pieces).collect();
    for i in (1..small_pieces).rev() {
        small_placement.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let mut g = c.benchmark_group("render_thread_16mib_as_4kib_pieces");
    g.throughput(Throughput::Elements(small_pieces as u64));
    g.sample_size(20);
    g.bench_function(BenchmarkId::new("forgeflow", "reserve_and_finish"), |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let t0 = std::time::Instant::now();
                let staging = ring.begin_frame().expect("staging frame");
                for &slot in &small_placement {
                    let w = staging
                        .write_buffer(&dst, (slot * SMALL) as u64, SMALL as u64)
                        .expect("reserve");
                    std::hint::black_box(w);
                }
                let mut encoder = gpu.device.create_command_encoder(&Default::default());
                staging.finish(&mut encoder);
                spent += t0.elapsed();
                gpu.queue.submit([encoder.finish()]);
                wait(&gpu);
            }
            spent
        })
    });
    g.finish();
}

criterion_group!(benches, upload);
criterion_main!(benches);
