//! Staging rings on a real GPU (lavapipe in CI): every upload is read back with
//! plain wgpu copies, independently of the rings, and compared byte for byte.

use forgeflow_test_support::gpu::VerifyRead as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use forgeflow::gpu::Gpu;
use forgeflow::graph::{Scheduler, SchedulerConfig};
use forgeflow::staging::{
    GpuScatter, OverflowPolicy, ReadbackConfig, ReadbackRing, StagingConfig, StagingError,
    StagingRing,
};
use forgeflow_test_support::gpu;
use forgeflow_test_support::SplitMix64;

fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = SplitMix64::new(seed);
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        v.extend_from_slice(&rng.next_u64().to_le_bytes());
    }
    v.truncate(len);
    v
}

fn dst_buffer(gpu: &Gpu, size: u64) -> wgpu::Buffer {
    dst_buffer_with(gpu, size, false)
}

/// A destination; with `storage`, small pieces bound for it take the GPU scatter path.
fn dst_buffer_with(gpu: &Gpu, size: u64, storage: bool) -> wgpu::Buffer {
    let mut usage = wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC;
    if storage {
        usage |= wgpu::BufferUsages::STORAGE;
    }
    gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("test destination"),
        size,
        usage,
        mapped_at_creation: false,
    })
}

fn submit(gpu: &Gpu, encoder: wgpu::CommandEncoder) {
    gpu.queue.submit([encoder.finish()]);
}

fn ring(gpu: &Gpu, buffer_size: u64, buffers: u32, overflow: OverflowPolicy) -> StagingRing {
    StagingRing::new(
        &gpu.device,
        StagingConfig {
            buffer_size,
            buffers,
            overflow,
            wait_timeout: Duration::from_secs(10),
            // Exercised on lavapipe too, where `Auto` would leave it off.
            gpu_scatter: GpuScatter::Always,
            ..StagingConfig::default()
        },
    )
    .unwrap()
}

#[test]
fn buffers_of_many_sizes_round_trip_filled_by_parallel_jobs() {
    let Some(gpu) = gpu::for_test("buffers_of_many_sizes_round_trip_filled_by_parallel_jobs")
    else {
        return;
    };
    let mut ring = ring(&gpu, 8 << 20, 3, OverflowPolicy::Wait);
    let mut sched = Scheduler::new(SchedulerConfig {
        auto_signal_fences: true,
        ..Default::default()
    })
    .unwrap();
    let mut rng = SplitMix64::new(7);
    // 4 bytes to 64 MiB: tiny, odd multiples of 4, exactly a ring buffer, one
    // word more (a dedicated buffer), and a 64 MiB piece.
    let mut sizes: Vec<u64> = vec![
        4,
        8,
        12,
        60,
        256,
        4100,
        65_540,
        (1 << 20) + 12,
        8 << 20,
        (8 << 20) + 4,
        64 << 20,
    ];
    sizes.extend((0..40).map(|_| 4 * (1 + rng.below(300_000))));
    for (round, chunk) in sizes.chunks(6).enumerate() {
        let datas: Vec<Vec<u8>> = chunk
            .iter()
            .enumerate()
            .map(|(i, &s)| random_bytes(s as usize, (round * 100 + i) as u64))
            .collect();
        let offsets: Vec<u64> = chunk.iter().map(|_| 4 * rng.below(1000)).collect();
        // Odd rounds have STORAGE destinations (small pieces take the GPU scatter).
        let dsts: Vec<wgpu::Buffer> = chunk
            .iter()
            .zip(&offsets)
            .map(|(&s, &o)| dst_buffer_with(&gpu, o + s + 64, round % 2 == 1))
            .collect();
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        {
            let staging = ring.begin_frame().unwrap();
            let mut frame = sched.begin_frame().unwrap();
            for ((data, dst), &off) in datas.iter().zip(&dsts).zip(&offsets) {
                let piece = staging.write_buffer(dst, off, data.len() as u64).unwrap();
                // Big pieces are copied by several workers at once, into disjoint chunks.
                for (k, mut part) in piece.into_chunks(1 << 20).enumerate() {
                    let src = &data[k << 20..(k << 20) + part.len()];
                    frame.add("upload", move |_| Ok(part.write(src)?)).unwrap();
                }
            }
            frame.run().unwrap();
            staging.finish(&mut enc);
        }
        submit(&gpu, enc);
        for ((data, dst), &off) in datas.iter().zip(&dsts).zip(&offsets) {
            let back = gpu.read_buffer(dst, off, data.len() as u64).unwrap();
            assert!(
                back == *data,
                "round {round}: {} bytes at offset {off} differ after the round trip",
                data.len()
            );
        }
    }
    let st = ring.stats();
    assert_eq!(st.ring_buffers_created, 3);
    assert!(st.dedicated_buffers_created >= 2, "{st:?}");
    assert!(st.peak_staging_bytes <= 3 * (8 << 20) + (256 << 20));
}

#[test]
fn bad_buffer_uploads_are_refused_with_a_reason() {
    let Some(gpu) = gpu::for_test("bad_buffer_uploads_are_refused_with_a_reason") else {
        return;
    };
    let mut ring = ring(&gpu, 1 << 16, 2, OverflowPolicy::Error);
    let dst = dst_buffer(&gpu, 1024);
    let frame = ring.begin_frame().unwrap();
    assert!(matches!(
        frame.write_buffer(&dst, 0, 3),
        Err(StagingError::Unaligned {
            what: "upload size",
            value: 3,
            required: 4
        })
    ));
    assert!(matches!(
        frame.write_buffer(&dst, 2, 4),
        Err(StagingError::Unaligned {
            what: "destination offset",
            ..
        })
    ));
    assert!(matches!(
        frame.write_buffer(&dst, 1020, 8),
        Err(StagingError::OutOfBounds {
            end: 1028,
            size: 1024
        })
    ));
    assert!(matches!(
        frame.write_buffer(&dst, 0, 0),
        Err(StagingError::Empty)
    ));
    let mut w = frame.write_buffer(&dst, 0, 16).unwrap();
    let err = w.write(&[0; 15]).unwrap_err();
    assert_eq!(
        err,
        StagingError::Mismatch {
            expected: 16,
            got: 15
        }
    );
    assert!(err.to_string().contains("16 bytes"));
    let _ = w;
    drop(frame);
    assert!(StagingRing::new(
        &gpu.device,
        StagingConfig {
            buffers: 0,
            ..Default::default()
        }
    )
    .is_err_and(|e| matches!(
        e,
        StagingError::InvalidConfig {
            setting: "buffers",
            ..
        }
    )));
    assert!(StagingRing::new(
        &gpu.device,
        StagingConfig {
            buffer_size: 6,
            ..Default::default()
        }
    )
    .is_err_and(|e| matches!(
        e,
        StagingError::InvalidConfig {
            setting: "buffer_size",
            ..
        }
    )));
}

/// Every uncompressed and BC format the adapter can copy both ways.
fn copyable_formats(gpu: &Gpu) -> Vec<wgpu::TextureFormat> {
    use wgpu::TextureFormat::*;
    let all = [
        R8Unorm,
        R8Snorm,
        R8Uint,
        R8Sint,
        R16Uint,
        R16Sint,
        R16Unorm,
        R16Snorm,
        R16Float,
        Rg8Unorm,
        Rg8Snorm,
        Rg8Uint,
        Rg8Sint,
        R32Uint,
        R32Sint,
        R32Float,
        Rg16Uint,
        Rg16Sint,
        Rg16Unorm,
        Rg16Snorm,
        Rg16Float,
        Rgba8Unorm,
        Rgba8UnormSrgb,
        Rgba8Snorm,
        Rgba8Uint,
        Rgba8Sint,
        Bgra8Unorm,
        Bgra8UnormSrgb,
        Rgb9e5Ufloat,
        Rgb10a2Uint,
        Rgb10a2Unorm,
        Rg11b10Ufloat,
        R64Uint,
        Rg32Uint,
        Rg32Sint,
        Rg32Float,
        Rgba16Uint,
        Rgba16Sint,
        Rgba16Unorm,
        Rgba16Snorm,
        Rgba16Float,
        Rgba32Uint,
        Rgba32Sint,
        Rgba32Float,
        Stencil8,
        Depth16Unorm,
        Bc1RgbaUnorm,
        Bc1RgbaUnormSrgb,
        Bc2RgbaUnorm,
        Bc2RgbaUnormSrgb,
        Bc3RgbaUnorm,
        Bc3RgbaUnormSrgb,
        Bc4RUnorm,
        Bc4RSnorm,
        Bc5RgUnorm,
        Bc5RgSnorm,
        Bc6hRgbUfloat,
        Bc6hRgbFloat,
        Bc7RgbaUnorm,
        Bc7RgbaUnormSrgb,
    ];
    all.into_iter()
        .filter(|f| gpu.device.features().contains(f.required_features()))
        .filter(|f| {
            let usages = gpu.adapter.get_texture_format_features(*f).allowed_usages;
            usages.contains(wgpu::TextureUsages::COPY_DST | wgpu::TextureUsages::COPY_SRC)
        })
        .collect()
}

#[test]
fn textures_of_every_copyable_format_round_trip_all_mips() {
    let Some(gpu) = gpu::for_test("textures_of_every_copyable_format_round_trip_all_mips") else {
        return;
    };
    let formats = copyable_formats(&gpu);
    eprintln!("{} formats: {formats:?}", formats.len());
    assert!(
        formats.len() >= 30,
        "only {} copyable formats",
        formats.len()
    );
    if gpu
        .device
        .features()
        .contains(wgpu::Features::TEXTURE_COMPRESSION_BC)
    {
        assert!(
            formats.iter().filter(|f| f.is_compressed()).count() >= 14,
            "BC formats missing"
        );
    }
    let mut ring = ring(&gpu, 1 << 20, 3, OverflowPolicy::Wait);
    for (fi, &format) in formats.iter().enumerate() {
        // Odd sizes: block formats need a base that is a multiple of the block,
        // but their mips (18x10, 9x5, 4x2, 2x1, 1x1) are not.
        let size = if format.is_compressed() {
            wgpu::Extent3d {
                width: 36,
                height: 20,
                depth_or_array_layers: 2,
            }
        } else {
            wgpu::Extent3d {
                width: 37,
                height: 23,
                depth_or_array_layers: 2,
            }
        };
        let mips = 6;
        let tex = gpu.device.create_texture(&wgpu::TextureDescriptor {
            label: Some("test texture"),
            size,
            mip_level_count: mips,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format,
            usage: wgpu::TextureUsages::COPY_DST | wgpu::TextureUsages::COPY_SRC,
            view_formats: &[],
        });
        let mut expected = Vec::new();
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        {
            let staging = ring.begin_frame().unwrap();
            for mip in 0..mips {
                let m = size.mip_level_size(mip, wgpu::TextureDimension::D2);
                let mut w = staging
                    .write_texture(&tex, mip, wgpu::Origin3d::ZERO, m, wgpu::TextureAspect::All)
                    .unwrap_or_else(|e| panic!("{format:?} mip {mip}: {e}"));
                let data = random_bytes(
                    w.layout().tight_bytes as usize,
                    (fi * 16 + mip as usize) as u64,
                );
                w.write_tight(&data).unwrap();
                expected.push(data);
            }
            staging.finish(&mut enc);
        }
        submit(&gpu, enc);
        for mip in 0..mips {
            let back = gpu
                .read_texture(&tex, mip, 0..size.depth_or_array_layers)
                .unwrap();
            assert!(
                back == expected[mip as usize],
                "{format:?} mip {mip}: read-back differs"
            );
        }
    }
}

#[test]
fn the_ring_wraps_and_reuses_buffers_only_after_their_copies() {
    wraps_and_reuses(false);
}

#[test]
fn the_ring_wraps_with_small_pieces_scattered_on_the_gpu() {
    wraps_and_reuses(true);
}

fn wraps_and_reuses(storage: bool) {
    let Some(gpu) = gpu::for_test("wraps_and_reuses") else {
        return;
    };
    // Deliberately small: 3 buffers of 64 KiB for frames of up to 96 KiB (so a
    // frame often spans two buffers) plus, every 7th frame, a piece larger than
    // a buffer (a dedicated buffer).
    let mut ring = ring(&gpu, 64 << 10, 3, OverflowPolicy::Wait);
    let total = 16u64 << 20;
    let dst = dst_buffer_with(&gpu, total, storage);
    let mut shadow = vec![0u8; total as usize];
    let mut rng = SplitMix64::new(3);
    let mut cursor = 0u64;
    for frame_no in 0..60 {
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        let staging = ring.begin_frame().unwrap();
        for piece_no in 0..1 + rng.below(6) {
            let len = if piece_no == 0 && frame_no % 7 == 0 {
                4 * (16_385 + rng.below(30_000))
            } else {
                4 * (1 + rng.below(4_096))
            };
            // Gaps between pieces, so that copies cannot simply be merged.
            cursor += 4 * rng.below(64);
            if cursor + len > total {
                cursor = 0;
            }
            let data = random_bytes(len as usize, frame_no * 100 + piece_no);
            staging
                .write_buffer(&dst, cursor, len)
                .unwrap()
                .write(&data)
                .unwrap();
            shadow[cursor as usize..(cursor + len) as usize].copy_from_slice(&data);
            cursor += len;
        }
        staging.finish(&mut enc);
        submit(&gpu, enc);
    }
    assert!(
        gpu.read_buffer(&dst, 0, total).unwrap() == shadow,
        "the GPU copy differs from the CPU shadow"
    );
    let st = ring.stats();
    assert!(
        st.wraps >= 60 / 3,
        "every third frame passes the end of the ring: {st:?}"
    );
    assert!(st.dedicated_buffers_created > 0, "{st:?}");
    assert_eq!(st.ring_buffers_created, 3);
    assert!(
        st.peak_staging_bytes <= 3 * (64 << 10) + st.dedicated_bytes_created,
        "{st:?}"
    );
    assert!(ring.scatters());
    if storage {
        assert!(
            st.pieces_scattered > st.pieces / 2,
            "the scatter path was not taken: {st:?}"
        );
    } else {
        assert_eq!(st.pieces_scattered, 0, "{st:?}");
    }
}

/// Sixteen thousand small pieces in one frame, interleaved between three
/// destinations: two that take the GPU scatter (each over
/// `MAX_PIECES_PER_DISPATCH` = 4096 pieces, so in several dispatches) and one
/// that cannot (no STORAGE usage: copy commands), with a texture piece among
/// them. Every byte lands where it belongs (a CPU shadow of each
/// destination), and the stats count the scattered pieces exactly.
#[test]
fn many_small_pieces_to_several_destinations_land_where_they_belong() {
    let Some(gpu) = gpu::for_test("many_small_pieces_to_several_destinations") else {
        return;
    };
    let mut ring = ring(&gpu, 8 << 20, 2, OverflowPolicy::Error);
    let slot = 64u64;
    let slots = 8_000u64;
    let dsts = [
        dst_buffer_with(&gpu, slot * slots, true),
        dst_buffer_with(&gpu, slot * slots, false),
        dst_buffer_with(&gpu, slot * slots, true),
    ];
    let mut shadows = vec![vec![0u8; (slot * slots) as usize]; 3];
    // Each destination's slots in a random order: pieces never overlap, and
    // neighbours in staging are not neighbours in the destination.
    let mut rng = SplitMix64::new(11);
    let mut order: Vec<Vec<u64>> = (0..3)
        .map(|_| {
            let mut v: Vec<u64> = (0..slots).collect();
            for i in (1..v.len()).rev() {
                v.swap(i, rng.below(i as u64 + 1) as usize);
            }
            v
        })
        .collect();
    let texture = gpu.device.create_texture(&wgpu::TextureDescriptor {
        label: Some("test texture"),
        size: wgpu::Extent3d {
            width: 64,
            height: 64,
            depth_or_array_layers: 1,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: wgpu::TextureFormat::Rgba8Unorm,
        usage: wgpu::TextureUsages::COPY_DST | wgpu::TextureUsages::COPY_SRC,
        view_formats: &[],
    });
    let texels = random_bytes(64 * 64 * 4, 99);
    let mut enc = gpu.device.create_command_encoder(&Default::default());
    let staging = ring.begin_frame().unwrap();
    let (mut per_destination, mut pieces) = ([0u64; 3], 0u64);
    for n in 0..16_000u64 {
        let d = rng.below(3) as usize;
        let Some(at) = order[d].pop() else { continue };
        let len = 4 * (1 + rng.below(slot / 4));
        let data = random_bytes(len as usize, n);
        staging
            .write_buffer(&dsts[d], at * slot, len)
            .unwrap()
            .write(&data)
            .unwrap();
        shadows[d][(at * slot) as usize..(at * slot + len) as usize].copy_from_slice(&data);
        per_destination[d] += 1;
        pieces += 1;
        if n == 8_000 {
            staging
                .write_texture(
                    &texture,
                    0,
                    wgpu::Origin3d::ZERO,
                    wgpu::Extent3d {
                        width: 64,
                        height: 64,
                        depth_or_array_layers: 1,
                    },
                    wgpu::TextureAspect::All,
                )
                .unwrap()
                .write_tight(&texels)
                .unwrap();
        }
    }
    let summary = staging.finish(&mut enc);
    submit(&gpu, enc);
    assert_eq!(summary.pieces as u64, pieces + 1, "{summary:?}");
    assert!(
        per_destination[0] > 4096 && per_destination[2] > 4096,
        "{per_destination:?}: a scatter destination in one dispatch"
    );
    let scattered = per_destination[0] + per_destination[2];
    for (d, (dst, shadow)) in dsts.iter().zip(&shadows).enumerate() {
        assert!(
            gpu.read_buffer(dst, 0, slot * slots).unwrap() == *shadow,
            "destination {d} differs from its CPU shadow"
        );
    }
    assert_eq!(
        gpu.read_texture(&texture, 0, 0..1).unwrap(),
        texels,
        "the texture piece"
    );
    assert_eq!(
        ring.stats().pieces_scattered,
        scattered,
        "{:?}",
        ring.stats()
    );
}

#[test]
fn a_buffer_still_in_flight_is_never_handed_out() {
    // Frames A and B fill both buffers of a 2-buffer ring; frame C needs A's
    // buffer. begin_frame must wait until A's copy is done and the buffer is
    // mapped again: without that check it would hand out an unmapped buffer
    // (an error) or one the GPU still reads (A's data corrupted).
    let Some(gpu) = gpu::for_test("a_buffer_still_in_flight_is_never_handed_out") else {
        return;
    };
    let mut ring = ring(&gpu, 1 << 20, 2, OverflowPolicy::Error);
    let len = 1u64 << 20;
    let dsts: Vec<wgpu::Buffer> = (0..6).map(|_| dst_buffer(&gpu, len)).collect();
    let datas: Vec<Vec<u8>> = (0..6)
        .map(|i| random_bytes(len as usize, 1000 + i))
        .collect();
    for (dst, data) in dsts.iter().zip(&datas) {
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        let staging = ring
            .begin_frame()
            .expect("begin_frame waits for the buffer instead of failing");
        staging
            .write_buffer(dst, 0, len)
            .unwrap()
            .write(data)
            .unwrap();
        staging.finish(&mut enc);
        submit(&gpu, enc);
    }
    for (dst, data) in dsts.iter().zip(&datas) {
        assert!(gpu.read_buffer(dst, 0, len).unwrap() == *data);
    }
    // Finishing without submitting never returns the buffer: a clear timeout, not a hang.
    let mut short = StagingRing::new(
        &gpu.device,
        StagingConfig {
            buffer_size: 1024,
            buffers: 1,
            wait_timeout: Duration::from_millis(100),
            ..Default::default()
        },
    )
    .unwrap();
    let mut enc = gpu.device.create_command_encoder(&Default::default());
    short.begin_frame().unwrap().finish(&mut enc);
    let err = short.begin_frame().unwrap_err();
    assert_eq!(
        short.scatters(),
        gpu.info.device_type != wgpu::DeviceType::Cpu,
        "Auto is off on CPU adapters only"
    );
    assert!(matches!(err, StagingError::Timeout { .. }), "{err}");
    assert!(err.to_string().contains("submitted"));
    drop(enc);
}

#[test]
fn overflow_policies_wait_defer_error() {
    let Some(gpu) = gpu::for_test("overflow_policies_wait_defer_error") else {
        return;
    };
    let dst = dst_buffer(&gpu, 1 << 20);
    let a = random_bytes(40 << 10, 1);
    let b = random_bytes(40 << 10, 2);

    // Error: the second 40 KiB piece does not fit in 64 KiB.
    let mut r = ring(&gpu, 64 << 10, 2, OverflowPolicy::Error);
    {
        let f = r.begin_frame().unwrap();
        f.write_buffer(&dst, 0, a.len() as u64)
            .unwrap()
            .write(&a)
            .unwrap();
        let err = f.write_buffer(&dst, 1 << 16, b.len() as u64).unwrap_err();
        assert_eq!(
            err,
            StagingError::Full {
                requested: 40 << 10,
                available: 24 << 10
            }
        );
    }
    assert_eq!(r.stats().pieces_refused, 1);

    // Defer: refused with Deferred and counted; it goes through next frame.
    let mut r = ring(&gpu, 64 << 10, 2, OverflowPolicy::Defer);
    let mut enc = gpu.device.create_command_encoder(&Default::default());
    {
        let f = r.begin_frame().unwrap();
        f.write_buffer(&dst, 0, a.len() as u64)
            .unwrap()
            .write(&a)
            .unwrap();
        assert_eq!(
            f.write_buffer(&dst, 1 << 16, b.len() as u64).unwrap_err(),
            StagingError::Deferred {
                requested: 40 << 10
            }
        );
        f.finish(&mut enc);
    }
    assert_eq!(
        (r.stats().pieces_deferred, r.stats().bytes_deferred),
        (1, 40 << 10)
    );
    {
        let f = r.begin_frame().unwrap();
        f.write_buffer(&dst, 1 << 16, b.len() as u64)
            .unwrap()
            .write(&b)
            .unwrap();
        f.finish(&mut enc);
    }
    submit(&gpu, enc);
    assert!(gpu.read_buffer(&dst, 0, a.len() as u64).unwrap() == a);
    assert!(gpu.read_buffer(&dst, 1 << 16, b.len() as u64).unwrap() == b);

    // Wait: the frame continues in the next buffer.
    let mut r = ring(&gpu, 64 << 10, 2, OverflowPolicy::Wait);
    let mut enc = gpu.device.create_command_encoder(&Default::default());
    let f = r.begin_frame().unwrap();
    f.write_buffer(&dst, 2 << 16, a.len() as u64)
        .unwrap()
        .write(&a)
        .unwrap();
    f.write_buffer(&dst, 3 << 16, b.len() as u64)
        .unwrap()
        .write(&b)
        .unwrap();
    // Both buffers now belong to this frame: a third piece cannot wait for either.
    assert!(matches!(
        f.write_buffer(&dst, 4 << 16, a.len() as u64),
        Err(StagingError::Full { .. })
    ));
    let summary = f.finish(&mut enc);
    assert_eq!((summary.pieces, summary.ring_buffers), (2, 2));
    submit(&gpu, enc);
    assert!(gpu.read_buffer(&dst, 2 << 16, a.len() as u64).unwrap() == a);
    assert!(gpu.read_buffer(&dst, 3 << 16, b.len() as u64).unwrap() == b);

    // Dedicated buffers are bounded: over the budget, Error refuses.
    let mut r = StagingRing::new(
        &gpu.device,
        StagingConfig {
            buffer_size: 1024,
            buffers: 2,
            overflow: OverflowPolicy::Error,
            max_dedicated_bytes: 64 << 10,
            ..Default::default()
        },
    )
    .unwrap();
    let f = r.begin_frame().unwrap();
    f.write_buffer(&dst, 0, a.len() as u64)
        .unwrap()
        .write(&a)
        .unwrap();
    assert!(matches!(
        f.write_buffer(&dst, 1 << 16, b.len() as u64),
        Err(StagingError::DedicatedBudget { .. })
    ));
    assert!(matches!(
        f.write_buffer(&dst, 0, 128 << 10),
        Err(StagingError::DedicatedBudget { .. })
    ));
}

#[test]
fn readbacks_arrive_after_their_copy_without_stalling() {
    let Some(gpu) = gpu::for_test("readbacks_arrive_after_their_copy_without_stalling") else {
        return;
    };
    let src = dst_buffer(&gpu, 1 << 16);
    let data = random_bytes(1 << 16, 9);
    gpu.queue.write_buffer(&src, 0, &data);
    let mut rb = ReadbackRing::new(
        &gpu.device,
        ReadbackConfig {
            buffer_size: 1 << 17,
            buffers: 1,
        },
    )
    .unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let mut enc = gpu.device.create_command_encoder(&Default::default());
    let mut f = rb.begin_frame();
    let g = Arc::clone(&got);
    f.read_buffer(&src, 256, 1024, move |r| {
        g.lock().unwrap().push(r.unwrap().bytes.to_vec())
    })
    .unwrap();
    assert!(matches!(
        f.read_buffer(&src, 1, 4, |_| {}),
        Err(StagingError::Unaligned { .. })
    ));
    f.finish(&mut enc);
    // Before the submit nothing can arrive, and the only buffer is busy: refused, not waited for.
    assert_eq!(rb.poll(), 0);
    let mut f = rb.begin_frame();
    assert_eq!(
        f.read_buffer(&src, 0, 4, |_| {}).unwrap_err(),
        StagingError::ReadbackBusy
    );
    let _ = f;
    submit(&gpu, enc);
    let mut delivered = 0;
    for _ in 0..1000 {
        delivered += rb.poll();
        if delivered > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(delivered, 1);
    assert_eq!(got.lock().unwrap()[0], data[256..1280]);
    // A texture, through the same ring; BC when the adapter has it.
    let format = if gpu
        .device
        .features()
        .contains(wgpu::Features::TEXTURE_COMPRESSION_BC)
    {
        wgpu::TextureFormat::Bc1RgbaUnorm
    } else {
        wgpu::TextureFormat::Rgba8Unorm
    };
    let tex = gpu.device.create_texture(&wgpu::TextureDescriptor {
        label: None,
        size: wgpu::Extent3d {
            width: 20,
            height: 12,
            depth_or_array_layers: 1,
        },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format,
        usage: wgpu::TextureUsages::COPY_DST | wgpu::TextureUsages::COPY_SRC,
        view_formats: &[],
    });
    let mut ring = ring(&gpu, 1 << 16, 2, OverflowPolicy::Wait);
    let mut enc = gpu.device.create_command_encoder(&Default::default());
    let staging = ring.begin_frame().unwrap();
    let extent = wgpu::Extent3d {
        width: 20,
        height: 12,
        depth_or_array_layers: 1,
    };
    let mut w = staging
        .write_texture(
            &tex,
            0,
            wgpu::Origin3d::ZERO,
            extent,
            wgpu::TextureAspect::All,
        )
        .unwrap();
    let texels = random_bytes(w.layout().tight_bytes as usize, 5);
    w.write_tight(&texels).unwrap();
    staging.finish(&mut enc);
    let mut f = rb.begin_frame();
    let g = Arc::clone(&got);
    f.read_texture(
        &tex,
        0,
        wgpu::Origin3d::ZERO,
        extent,
        wgpu::TextureAspect::All,
        move |r| g.lock().unwrap().push(r.unwrap().to_tight_vec()),
    )
    .unwrap();
    f.finish(&mut enc);
    submit(&gpu, enc);
    while rb.poll() == 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(got.lock().unwrap()[1], texels);
    assert_eq!(rb.stats().delivered, 2);
}

/// A device destroyed (lost) while a ring buffer is mapped: neither ring
/// panics in wgpu's uncaptured-error handler (unmapping a destroyed buffer is
/// a validation error there); the readback's request is answered once, its
/// buffer is freed, and the staging ring reports the loss as a map error.
#[test]
fn a_device_lost_while_buffers_are_mapped_is_an_error_not_a_panic() {
    let Some(gpu) = gpu::for_test("a_device_lost_while_buffers_are_mapped_is_an_error_not_a_panic")
    else {
        return;
    };
    let src = dst_buffer(&gpu, 1 << 12);
    let mut staging = ring(&gpu, 1 << 16, 2, OverflowPolicy::Wait);
    let mut rb = ReadbackRing::new(
        &gpu.device,
        ReadbackConfig {
            buffer_size: 1 << 12,
            buffers: 1,
        },
    )
    .unwrap();
    let answers = Arc::new(Mutex::new(0));
    let mut enc = gpu.device.create_command_encoder(&Default::default());
    let mut f = rb.begin_frame();
    let a = Arc::clone(&answers);
    f.read_buffer(&src, 0, 256, move |_| *a.lock().unwrap() += 1)
        .unwrap();
    f.finish(&mut enc);
    submit(&gpu, enc);
    // The readback buffer is mapped (its callback ran), not yet collected.
    let _ = gpu.device.poll(wgpu::PollType::wait_indefinitely());
    // A staging buffer taken by a frame, mapped and written, not yet finished.
    let frame = staging.begin_frame().unwrap();
    frame
        .write_buffer(&src, 0, 256)
        .unwrap()
        .write(&[5; 256])
        .unwrap();
    gpu.device.destroy();
    let _ = gpu.device.poll(wgpu::PollType::Poll);
    let mut enc = gpu.device.create_command_encoder(&Default::default());
    frame.finish(&mut enc);
    drop(enc);
    for _ in 0..3 {
        rb.poll();
    }
    assert_eq!(*answers.lock().unwrap(), 1, "answered once");
    let mut f = rb.begin_frame();
    assert!(
        f.read_buffer(&src, 0, 4, |_| {}).is_ok(),
        "the readback buffer is free again"
    );
    let mut lost = None;
    for _ in 0..4 {
        match staging.begin_frame() {
            Err(e) => {
                lost = Some(e);
                break;
            }
            Ok(frame) => drop(frame),
        }
    }
    assert!(
        matches!(lost, Some(StagingError::Map(_))),
        "the staging ring reports the loss: {lost:?}"
    );
}
