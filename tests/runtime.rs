//! The `Runtime` facade on a real GPU (lavapipe in CI): textures loaded by
//! path and by bytes read back equal to their pixels, pool writes read back
//! equal to CPU shadows across churn and defragmentation, and each injected
//! fault (corrupt, missing and truncated files, a panicking job, budgets, a
//! lost device, stale handles) reported as a typed error while what is
//! already resident stays intact.

use forgeflow_test_support::gpu::VerifyRead as _;
use std::borrow::Cow;
use std::collections::HashMap;

use forgeflow::gpu::Gpu;
use forgeflow::jobs::vt::{PackError, TileFormat, TileId, TileSource, VtLayout};
use forgeflow_test_support::gpu;
use forgeflow_test_support::ktx2::Ktx2Builder;
use forgeflow_test_support::SplitMix64;

use forgeflow::pool::{BufferPoolConfig, PoolError, PoolHandle};
use forgeflow::runtime::{
    FrameReport, Runtime, RuntimeConfig, RuntimeError, TextureHandle, TextureStatus,
};
use forgeflow::vt::VtConfig;
use forgeflow_tools::Terrain;

fn config() -> RuntimeConfig {
    RuntimeConfig {
        threads: Some(2),
        staging: forgeflow::staging::StagingConfig {
            buffer_size: 4 << 20,
            ..Default::default()
        },
        pool: BufferPoolConfig {
            block_size: 1 << 20,
            budget_bytes: 8 << 20,
            ..Default::default()
        },
        texture_usage: wgpu::TextureUsages::COPY_SRC,
        ..RuntimeConfig::default()
    }
}

/// A runtime over the test's device.
fn runtime(gpu: &Gpu, config: RuntimeConfig) -> Runtime {
    Runtime::new(&gpu.device, &gpu.queue, config).expect("runtime")
}

/// One frame: begin, end into a fresh encoder, submit.
fn frame(gpu: &Gpu, rt: &mut Runtime) -> FrameReport {
    rt.begin_frame().expect("begin_frame");
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    let report = rt.end_frame(&mut encoder).expect("end_frame");
    gpu.queue.submit([encoder.finish()]);
    let _ = gpu.device.poll(wgpu::PollType::wait_indefinitely());
    report
}

/// Whether the texture is done loading, one way or the other.
fn settled(rt: &Runtime, h: TextureHandle) -> bool {
    matches!(
        rt.texture(h).unwrap(),
        TextureStatus::Ready(_) | TextureStatus::Failed(_)
    )
}

/// Frames until the texture is no longer loading (reads run on background
/// threads, so this waits in time, up to 20 s, not in frames). Returns the
/// frames' reports.
fn settle(gpu: &Gpu, rt: &mut Runtime, h: TextureHandle) -> Vec<FrameReport> {
    let start = std::time::Instant::now();
    let mut reports = Vec::new();
    while !settled(rt, h) && start.elapsed() < std::time::Duration::from_secs(20) {
        reports.push(frame(gpu, rt));
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    reports
}

fn png(w: u32, h: u32, seed: u64) -> (Vec<u8>, Vec<u8>) {
    let mut rng = SplitMix64::new(seed);
    let pixels: Vec<u8> = (0..w * h * 4).map(|_| rng.next_u64() as u8).collect();
    (forgeflow_test_support::png::rgba(w, h, &pixels), pixels)
}

fn ready(rt: &Runtime, h: TextureHandle) -> &wgpu::Texture {
    match rt.texture(h).unwrap() {
        TextureStatus::Ready(t) => t.texture,
        other => panic!("texture not ready: {other:?}"),
    }
}

#[test]
fn textures_by_bytes_and_path_read_back_equal() {
    let Some(gpu) = gpu::for_test("textures_by_bytes_and_path_read_back_equal") else {
        return;
    };
    let mut rt = runtime(&gpu, config());
    let (file_a, pixels_a) = png(64, 32, 1);
    let (file_b, pixels_b) = png(16, 16, 2);
    let dir = std::env::temp_dir().join(format!("forgeflow-rt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("b.png");
    std::fs::write(&path, &file_b).unwrap();
    let a = rt.load_texture_bytes(file_a);
    let b = rt.load_texture_path(&path);
    assert!(matches!(rt.texture(a).unwrap(), TextureStatus::Loading));
    let mut reports = settle(&gpu, &mut rt, a);
    reports.extend(settle(&gpu, &mut rt, b));
    let read: u32 = reports.iter().map(|r| r.textures_read).sum();
    let uploaded: u32 = reports.iter().map(|r| r.textures_uploaded).sum();
    assert_eq!(
        (read, uploaded),
        (2, 2),
        "each file read once, uploaded once"
    );
    assert_eq!(gpu.read_texture(ready(&rt, a), 0, 0..1).unwrap(), pixels_a);
    assert_eq!(gpu.read_texture(ready(&rt, b), 0, 0..1).unwrap(), pixels_b);
    assert_eq!(rt.stats().textures_ready, 2);
    assert_eq!(rt.stats().texture_bytes, (64 * 32 + 16 * 16) * 4);

    rt.free_texture(a).unwrap();
    assert!(matches!(
        rt.texture(a),
        Err(RuntimeError::StaleHandle("texture"))
    ));
    assert!(
        matches!(
            rt.free_texture(a),
            Err(RuntimeError::StaleHandle("texture"))
        ),
        "a second free is a stale handle"
    );
    assert_eq!(rt.stats().texture_bytes, 16 * 16 * 4);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_large_texture_streams_within_the_per_frame_budget() {
    let Some(gpu) = gpu::for_test("a_large_texture_streams_within_the_per_frame_budget") else {
        return;
    };
    let budget = 128 << 10;
    let mut rt = runtime(
        &gpu,
        RuntimeConfig {
            texture_upload_bytes_per_frame: budget,
            ..config()
        },
    );
    let (file, pixels) = png(512, 512, 4); // 1 MiB of RGBA8
    let h = rt.load_texture_bytes(file);
    // Until its background read is done.
    while matches!(rt.texture(h).unwrap(), TextureStatus::Loading) {
        frame(&gpu, &mut rt);
    }
    let mut frames = 0;
    while !matches!(rt.texture(h).unwrap(), TextureStatus::Ready(_)) {
        let report = frame(&gpu, &mut rt);
        assert!(
            report.staging_bytes <= budget + (64 << 10),
            "a frame staged {} bytes",
            report.staging_bytes
        );
        frames += 1;
        assert!(frames < 40, "the upload never completed");
    }
    assert!(frames >= 8, "1 MiB at 128 KiB a frame took {frames} frames");
    assert_eq!(gpu.read_texture(ready(&rt, h), 0, 0..1).unwrap(), pixels);
}

#[test]
fn buffer_writes_survive_churn_and_defragmentation() {
    let Some(gpu) = gpu::for_test("buffer_writes_survive_churn_and_defragmentation") else {
        return;
    };
    let mut rt = runtime(&gpu, config());
    let mut rng = SplitMix64::new(5);
    let mut shadow: HashMap<PoolHandle, Vec<u8>> = HashMap::new();
    let mut live: Vec<PoolHandle> = Vec::new();
    let mut moves = 0;
    for _ in 0..120 {
        for _ in 0..rng.below(6) {
            let len = 4 * (1 + rng.below(4096)) as usize;
            let h = rt
                .alloc_buffer(len as u64, [4, 16, 256][rng.below(3) as usize])
                .unwrap();
            let data: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            rt.write_buffer(h, 0, &data).unwrap();
            shadow.insert(h, data);
            live.push(h);
        }
        // Rewrite part of a live allocation: the newest bytes must win.
        if let Some(&h) = live.get(rng.below(live.len().max(1) as u64) as usize) {
            let patch = [0xA5u8; 8];
            if shadow[&h].len() >= 8 {
                rt.write_buffer(h, 0, &patch).unwrap();
                shadow.get_mut(&h).unwrap()[..8].copy_from_slice(&patch);
            }
        }
        for _ in 0..rng.below(6) {
            if live.is_empty() {
                break;
            }
            let h = live.swap_remove(rng.below(live.len() as u64) as usize);
            rt.free_buffer(h).unwrap();
            shadow.remove(&h);
            assert!(
                matches!(
                    rt.resolve_buffer(h),
                    Err(RuntimeError::Pool(PoolError::Alloc(
                        forgeflow::jobs::alloc::AllocError::Stale(_)
                    )))
                ),
                "freed handles are stale at once"
            );
        }
        // Where each live allocation is before the frame: the report must
        // name exactly those whose buffer or offset the frame changed.
        let before: HashMap<PoolHandle, (wgpu::Buffer, u64)> = live
            .iter()
            .map(|&h| {
                let r = rt.resolve_buffer(h).unwrap();
                (h, (r.buffer.clone(), r.offset))
            })
            .collect();
        let report = frame(&gpu, &mut rt);
        moves += report.defrag_moves;
        let changed: std::collections::HashSet<PoolHandle> = before
            .iter()
            .filter(|(h, (buffer, offset))| {
                let r = rt.resolve_buffer(**h).unwrap();
                r.buffer != buffer || r.offset != *offset
            })
            .map(|(h, _)| *h)
            .collect();
        let named: std::collections::HashSet<PoolHandle> =
            report.moved_buffers.iter().copied().collect();
        assert_eq!(report.moved_buffers.len(), report.defrag_moves as usize);
        assert!(
            changed.is_subset(&named),
            "moved but not named: {:?}",
            changed.difference(&named)
        );
        assert!(
            named
                .iter()
                .all(|h| !live.contains(h) || changed.contains(h)),
            "named but not moved"
        );
    }
    assert!(
        moves > 0,
        "the churn must make defragmentation move something"
    );
    for (h, data) in &shadow {
        let r = rt.resolve_buffer(*h).unwrap();
        assert!(
            gpu.read_buffer(r.buffer, r.offset, r.size).unwrap() == *data,
            "allocation {h:?} differs from its shadow"
        );
    }
}

#[test]
fn the_last_write_of_a_frame_wins_even_when_scattered() {
    let Some(gpu) = gpu::for_test("the_last_write_of_a_frame_wins_even_when_scattered") else {
        return;
    };
    // The GPU scatter writes a frame's small pieces in parallel, in no set order.
    let mut rt = runtime(
        &gpu,
        RuntimeConfig {
            staging: forgeflow::staging::StagingConfig {
                buffer_size: 4 << 20,
                gpu_scatter: forgeflow::staging::GpuScatter::Always,
                ..Default::default()
            },
            ..config()
        },
    );
    let mut rng = SplitMix64::new(17);
    let h = rt.alloc_buffer(64 << 10, 256).unwrap();
    let mut shadow = vec![0u8; 64 << 10];
    for _ in 0..20 {
        // Overlapping writes: whole, halves, unaligned-to-each-other pieces.
        for _ in 0..8 {
            let a = 4 * rng.below(16 << 10) as usize;
            let b = (a + 4 * (1 + rng.below(8 << 10)) as usize).min(64 << 10);
            let data: Vec<u8> = (a..b).map(|_| rng.next_u64() as u8).collect();
            rt.write_buffer(h, a as u64, &data).unwrap();
            shadow[a..b].copy_from_slice(&data);
        }
        frame(&gpu, &mut rt);
        let r = rt.resolve_buffer(h).unwrap();
        assert!(
            gpu.read_buffer(r.buffer, r.offset, r.size).unwrap() == shadow,
            "the newest bytes of the frame must be what the buffer holds"
        );
    }
}

#[test]
fn bad_files_fail_their_texture_only() {
    let Some(gpu) = gpu::for_test("bad_files_fail_their_texture_only") else {
        return;
    };
    let mut rt = runtime(&gpu, config());
    let (good_file, pixels) = png(32, 32, 3);
    let good = rt.load_texture_bytes(good_file.clone());
    let corrupt = rt.load_texture_bytes(b"\xABKTX 20\xBB\r\n\x1A\nthis is no header".to_vec());
    let missing = rt.load_texture_path("/nonexistent/forgeflow/texture.ktx2");
    // A file truncated after it was asked for (before its read job runs).
    let dir = std::env::temp_dir().join(format!("forgeflow-rt-trunc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("t.png");
    std::fs::write(&path, &good_file).unwrap();
    let truncated = rt.load_texture_path(&path);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(good_file.len() as u64 / 2)
        .unwrap();
    for h in [good, corrupt, missing, truncated] {
        settle(&gpu, &mut rt, h);
    }
    for (h, what) in [
        (corrupt, "corrupt"),
        (missing, "missing"),
        (truncated, "truncated"),
    ] {
        match rt.texture(h).unwrap() {
            TextureStatus::Failed(RuntimeError::Texture(e)) => {
                assert!(!e.to_string().is_empty(), "{what}: an empty message")
            }
            other => panic!("{what}: expected a texture error, got {other:?}"),
        }
    }
    // The causes are typed: a missing file's I/O error keeps its kind.
    match rt.texture(missing).unwrap() {
        TextureStatus::Failed(e) => {
            let io = std::error::Error::source(e)
                .and_then(|s| s.source())
                .and_then(|s| s.downcast_ref::<std::io::Error>())
                .unwrap_or_else(|| panic!("no io::Error under {e}"));
            assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    match rt.texture(missing).unwrap() {
        TextureStatus::Failed(e) => assert!(
            e.to_string()
                .contains("/nonexistent/forgeflow/texture.ktx2"),
            "the message names the file: {e}"
        ),
        _ => unreachable!(),
    }
    assert_eq!(gpu.read_texture(ready(&rt, good), 0, 0..1).unwrap(), pixels);
    assert_eq!(rt.stats().textures_failed, 3);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn budgets_give_typed_errors() {
    let Some(gpu) = gpu::for_test("budgets_give_typed_errors") else {
        return;
    };
    let mut rt = runtime(
        &gpu,
        RuntimeConfig {
            texture_budget_bytes: 64 * 64 * 4,
            ..config()
        },
    );
    let fits = rt.load_texture_bytes(png(64, 64, 1).0);
    settle(&gpu, &mut rt, fits);
    ready(&rt, fits);
    let over = rt.load_texture_bytes(png(8, 8, 2).0);
    settle(&gpu, &mut rt, over);
    assert!(matches!(
        rt.texture(over).unwrap(),
        TextureStatus::Failed(RuntimeError::Budget {
            what: "texture",
            ..
        })
    ));
    // The pool's budget is 8 MiB of 1 MiB blocks.
    let mut held = Vec::new();
    let err = loop {
        match rt.alloc_buffer(768 << 10, 256) {
            Ok(h) => held.push(h),
            Err(e) => break e,
        }
        assert!(held.len() <= 8, "the pool's budget was not enforced");
    };
    assert!(
        matches!(err, RuntimeError::Pool(PoolError::Budget { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("budget"), "{err}");
    // Freeing makes room again once the frame's fence has passed.
    rt.free_buffer(held.pop().unwrap()).unwrap();
    for _ in 0..4 {
        frame(&gpu, &mut rt);
    }
    rt.alloc_buffer(768 << 10, 256)
        .expect("the freed range is reused after its fence");
}

/// A terrain whose tiles of level 0 panic when made: a page-fault job that panics.
struct Panicky(Terrain);

impl TileSource for Panicky {
    fn layout(&self) -> VtLayout {
        self.0.layout()
    }
    fn format(&self) -> TileFormat {
        TileFormat::Rgba8
    }
    fn tile(&self, tile: TileId) -> Result<Cow<'_, [u8]>, PackError> {
        assert!(tile.mip != 0, "injected fault: tile {tile:?} panics");
        TileSource::tile(&self.0, tile)
    }
}

#[test]
fn a_panicking_job_fails_its_frame_and_nothing_else() {
    let Some(gpu) = gpu::for_test("a_panicking_job_fails_its_frame_and_nothing_else") else {
        return;
    };
    // A texture's upload spans several frames (1 MiB at 32 KiB a frame),
    // so it has pieces in the failing frame.
    let mut rt = runtime(
        &gpu,
        RuntimeConfig {
            texture_upload_bytes_per_frame: 32 << 10,
            ..config()
        },
    );
    let layout = VtLayout::new(256, 256, 64, 4).unwrap();
    let vt = rt
        .add_virtual_texture(
            Panicky(Terrain::new(layout, 3)),
            VtConfig {
                budget_bytes: 4 << 20,
                ..VtConfig::default()
            },
            (64, 64),
        )
        .unwrap();
    let h = rt.alloc_buffer(1024, 16).unwrap();
    let data: Vec<u8> = (0..1024).map(|i| i as u8).collect();
    rt.write_buffer(h, 0, &data).unwrap();
    assert!(
        frame(&gpu, &mut rt).failure.is_none(),
        "the root tile loads"
    );
    assert!(rt.vt_stats(vt).unwrap().resident >= 1);
    let (file, pixels) = png(512, 512, 9);
    let tex = rt.load_texture_bytes(file);
    // Frames until the texture is read: its upload starts in that frame.
    let start = std::time::Instant::now();
    while frame(&gpu, &mut rt).textures_read == 0 {
        assert!(start.elapsed().as_secs() < 20, "the texture never started");
    }
    assert!(!settled(&rt, tex), "the upload spans more frames");
    // Ask for a tile of level 0: its job panics.
    rt.begin_frame().unwrap();
    // A write declared in the failing frame: an independent job.
    let data: Vec<u8> = (0..1024).map(|i| (i * 7) as u8).collect();
    rt.write_buffer(h, 0, &data).unwrap();
    // Texture 0 writes id 1 into its words (0 marks an empty word).
    let word = TileId { mip: 0, x: 1, y: 1 }.pack(1);
    rt.push_vt_feedback(vt, vec![word]).unwrap();
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    let failed = rt.end_frame(&mut encoder).expect("a failed job is no Err");
    gpu.queue.submit([encoder.finish()]);
    let failure = failed.failure.expect("the panic fails the frame");
    let RuntimeError::Frame(frame_error) = &failure else {
        panic!("a frame failure: {failure}");
    };
    assert_eq!(
        frame_error.failures[0].kind,
        forgeflow::graph::FailureKind::Panic
    );
    assert!(failure.to_string().contains("page fault"), "{failure}");
    assert_eq!(
        failed.buffer_writes, 1,
        "independent jobs of the frame still ran"
    );
    assert!(
        failed.staging_bytes >= 32 << 10,
        "the texture had pieces in the failing frame"
    );
    assert_eq!(failed.textures_failed, 0, "the texture's own jobs ran");
    // The failed tiles left the cache and the page table: only the root is
    // resident, and the page table names no slot whose bytes never arrived.
    let stats = rt.vt_stats(vt).unwrap();
    assert!(stats.failed_loads >= 1);
    assert_eq!(stats.resident, 1, "{stats:?}");
    // The runtime goes on: later frames run, resident data is intact.
    for _ in 0..3 {
        assert!(frame(&gpu, &mut rt).failure.is_none());
    }
    settle(&gpu, &mut rt, tex);
    assert_eq!(
        gpu.read_texture(ready(&rt, tex), 0, 0..1).unwrap(),
        pixels,
        "the pieces of the failing frame arrived"
    );
    let r = rt.resolve_buffer(h).unwrap();
    assert_eq!(gpu.read_buffer(r.buffer, r.offset, r.size).unwrap(), data);
    assert_eq!(rt.stats().failed_frames, 1);
}

#[test]
fn frame_order_and_stale_handles_are_errors() {
    let Some(gpu) = gpu::for_test("frame_order_and_stale_handles_are_errors") else {
        return;
    };
    let mut rt = runtime(&gpu, config());
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    assert!(matches!(
        rt.end_frame(&mut encoder),
        Err(RuntimeError::FrameOrder(_))
    ));
    rt.begin_frame().unwrap();
    assert!(matches!(rt.begin_frame(), Err(RuntimeError::FrameOrder(_))));
    rt.end_frame(&mut encoder).unwrap();
    gpu.queue.submit([encoder.finish()]);
    let h = rt.alloc_buffer(64, 4).unwrap();
    rt.free_buffer(h).unwrap();
    assert!(matches!(
        rt.write_buffer(h, 0, &[0; 4]),
        Err(RuntimeError::Pool(PoolError::Alloc(
            forgeflow::jobs::alloc::AllocError::Stale(_)
        )))
    ));
    assert!(matches!(
        rt.free_buffer(h),
        Err(RuntimeError::Pool(PoolError::Alloc(
            forgeflow::jobs::alloc::AllocError::Stale(_)
        )))
    ));
    let live = rt.alloc_buffer(64, 4).unwrap();
    assert!(
        matches!(
            rt.write_buffer(live, 60, &[0; 8]),
            Err(RuntimeError::Write {
                offset: 60,
                len: 8,
                size: 64
            })
        ),
        "a write past the allocation's end is refused"
    );
    assert!(
        matches!(
            rt.write_buffer(live, 2, &[0; 4]),
            Err(RuntimeError::Write { offset: 2, .. })
        ),
        "a misaligned write is a write error, not a staging one"
    );
    let vt = rt
        .add_virtual_texture(
            Terrain::new(VtLayout::new(256, 256, 64, 4).unwrap(), 1),
            VtConfig {
                budget_bytes: 4 << 20,
                ..VtConfig::default()
            },
            (64, 64),
        )
        .unwrap();
    assert!(rt.virtual_texture::<Terrain>(vt).is_ok());
    assert!(
        matches!(
            rt.virtual_texture::<Panicky>(vt),
            Err(RuntimeError::WrongType { .. })
        ),
        "the wrong source type is an error, not a bad cast"
    );
    rt.remove_virtual_texture(vt).unwrap();
    assert!(matches!(
        rt.vt_stats(vt),
        Err(RuntimeError::StaleHandle("virtual texture"))
    ));
    assert!(matches!(
        rt.push_vt_feedback(vt, vec![1]),
        Err(RuntimeError::StaleHandle(_))
    ));
}

#[test]
fn a_lost_device_is_reported_not_a_panic() {
    let Some(gpu) = gpu::for_test("a_lost_device_is_reported_not_a_panic") else {
        return;
    };
    // The application's own callback, set before the runtimes: it stays.
    let app_saw = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut rt = runtime(&gpu, config());
    let mut second = runtime(&gpu, config());
    let (a, b, saw) = (rt.device_loss(), second.device_loss(), app_saw.clone());
    gpu.device.set_device_lost_callback(move |reason, message| {
        saw.store(true, std::sync::atomic::Ordering::SeqCst);
        a.report(reason, &message);
        b.report(reason, &message);
    });
    let h = rt.alloc_buffer(256, 4).unwrap();
    rt.write_buffer(h, 0, &[7; 256]).unwrap();
    frame(&gpu, &mut rt);
    frame(&gpu, &mut second);
    gpu.device.destroy();
    let _ = gpu.device.poll(wgpu::PollType::Poll);
    assert!(
        app_saw.load(std::sync::atomic::Ordering::SeqCst),
        "the application's callback ran"
    );
    for rt in [&mut rt, &mut second] {
        let err = rt.begin_frame().expect_err("a lost device is an error");
        assert!(matches!(err, RuntimeError::DeviceLost(_)), "{err}");
        assert!(err.to_string().contains("Destroyed"), "{err}");
        assert!(matches!(
            rt.alloc_buffer(64, 4),
            Err(RuntimeError::DeviceLost(_))
        ));
    }
    // Dropping the runtimes after the loss neither hangs nor panics.
    drop(rt);
    drop(second);
}

/// A loss nobody forwards still shows: the GPU refuses to map the staging
/// buffers of a lost device, and the runtime reports `DeviceLost` from then.
#[test]
fn a_lost_device_shows_without_its_callback() {
    let Some(gpu) = gpu::for_test("a_lost_device_shows_without_its_callback") else {
        return;
    };
    let mut rt = runtime(&gpu, config());
    frame(&gpu, &mut rt);
    gpu.device.destroy();
    let _ = gpu.device.poll(wgpu::PollType::Poll);
    let mut lost = None;
    for _ in 0..8 {
        let result = rt.begin_frame().and_then(|()| {
            let mut encoder = gpu.device.create_command_encoder(&Default::default());
            rt.end_frame(&mut encoder).map(|_| ())
        });
        if let Err(e) = result {
            lost = Some(e);
            break;
        }
    }
    let err = lost.expect("the loss shows within a ring's worth of frames");
    assert!(matches!(err, RuntimeError::DeviceLost(_)), "{err}");
    assert!(rt.device_loss().is_lost());
    assert!(matches!(rt.begin_frame(), Err(RuntimeError::DeviceLost(_))));
}

/// With the `tracy` feature, on a device with timestamps inside encoders,
/// every frame brackets its uploads and defragmentation with timestamps that
/// the readback ring brings back (no validation error, no stall).
#[cfg(feature = "tracy")]
#[test]
fn tracy_gpu_zones_run_where_timestamps_exist() {
    let Some(gpu) = gpu::for_test("tracy_gpu_zones_run_where_timestamps_exist") else {
        return;
    };
    let mut rt = runtime(&gpu, config());
    let needed = wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS;
    assert_eq!(rt.tracy_gpu_zones(), gpu.device.features().contains(needed));
    eprintln!("Tracy GPU zones on this adapter: {}", rt.tracy_gpu_zones());
    let h = rt.alloc_buffer(4096, 16).unwrap();
    for i in 0..12u8 {
        rt.write_buffer(h, 0, &[i; 4096]).unwrap();
        assert!(frame(&gpu, &mut rt).failure.is_none());
    }
    let r = rt.resolve_buffer(h).unwrap();
    assert_eq!(
        gpu.read_buffer(r.buffer, r.offset, 4096).unwrap(),
        vec![11u8; 4096]
    );
}

/// A read that blocks (a named pipe whose writer has not written yet) runs
/// on a background thread: frames go on meanwhile, a load queued after it
/// goes ahead on the other background thread, and the texture loads once
/// the bytes arrive.
#[cfg(unix)]
#[test]
fn a_slow_read_never_holds_up_a_frame() {
    let Some(gpu) = gpu::for_test("a_slow_read_never_holds_up_a_frame") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("forgeflow-rt-fifo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("slow.png");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success(), "mkfifo failed");
    let mut rt = runtime(
        &gpu,
        RuntimeConfig {
            background: forgeflow::graph::BackgroundConfig {
                threads: 2,
                ..Default::default()
            },
            ..config()
        },
    );
    let slow = rt.load_texture_path(&fifo);
    // Were the read on the render thread, the frames below would block for
    // good: after 20 s a watchdog opens the pipe and closes it, which ends a
    // waiting read (an empty file: `slow` fails and the test with it). When
    // no read waits any more, its non-blocking open just fails.
    let watchdog_fifo = fifo.clone();
    std::thread::spawn(move || {
        use std::os::unix::fs::OpenOptionsExt;
        std::thread::sleep(std::time::Duration::from_secs(20));
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&watchdog_fifo);
    });
    let (quick_file, quick_pixels) = png(16, 16, 12);
    let quick = rt.load_texture_bytes(quick_file);
    // The read of `slow` blocks until a writer opens the pipe: every frame
    // must still end, and a texture queued after it must still load.
    for _ in 0..10 {
        frame(&gpu, &mut rt);
    }
    settle(&gpu, &mut rt, quick);
    assert_eq!(
        gpu.read_texture(ready(&rt, quick), 0, 0..1).unwrap(),
        quick_pixels
    );
    assert!(
        matches!(rt.texture(slow).unwrap(), TextureStatus::Loading),
        "the frames waited for the blocked read"
    );
    let (slow_file, slow_pixels) = png(32, 8, 13);
    std::fs::write(&fifo, &slow_file).unwrap();
    settle(&gpu, &mut rt, slow);
    assert_eq!(
        gpu.read_texture(ready(&rt, slow), 0, 0..1).unwrap(),
        slow_pixels
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A zstd-supercompressed KTX2 (the corpus's BC7 cube map) is inflated on
/// a background thread, never by a job of a frame, and reads back equal to
/// the file's images.
#[test]
fn supercompressed_levels_inflate_outside_the_frame() {
    let Some(gpu) = gpu::for_test("supercompressed_levels_inflate_outside_the_frame") else {
        return;
    };
    // Fails under FORGEFLOW_REQUIRE_CORPUS=1 without the corpus.
    let Some(dir) = forgeflow_test_support::corpus::ktx2_dir() else {
        return;
    };
    let path = dir.join("bevy/Ryfjallet_cubemap_bc7.ktx2");
    let file =
        forgeflow::jobs::texture::source::TextureFile::from_bytes(std::fs::read(&path).unwrap())
            .unwrap();
    use forgeflow::jobs::texture::source::TextureSource;
    let desc = file.desc();
    assert!(desc.supercompressed && desc.faces == 6);
    if !gpu::has_features(&gpu, wgpu::Features::TEXTURE_COMPRESSION_BC, "BC") {
        return;
    }
    let mut rt = runtime(
        &gpu,
        RuntimeConfig {
            // Several frames per level, so pieces meet levels not inflated yet.
            texture_upload_bytes_per_frame: 256 << 10,
            ..config()
        },
    );
    let h = rt.load_texture_path(&path);
    let start = std::time::Instant::now();
    while !settled(&rt, h) && start.elapsed() < std::time::Duration::from_secs(30) {
        frame(&gpu, &mut rt);
        let names = &rt.scheduler().last_frame_stats().by_name;
        assert!(
            names.iter().all(|n| n.name != "texture inflate"),
            "a frame ran an inflate job: {names:?}"
        );
    }
    let texture = ready(&rt, h);
    for level in 0..desc.levels {
        let want = file.level(level).unwrap();
        let got = gpu.read_texture(texture, level, 0..6).unwrap();
        assert!(got == *want, "level {level} differs from the file's");
    }
    let bg = rt.background().stats();
    assert!(
        bg.spawned >= 2 && bg.panicked == 0,
        "one read and at least one inflate ran in the background: {bg:?}"
    );
}

/// A valid zstd-supercompressed KTX2 header that names a 16384² RGBA8
/// texture of 1024 layers (1 TiB) over a few bytes of payload: a file that
/// validates, within the device's limits, whose texture no device can hold.
/// Creating it makes wgpu report out-of-memory (the payload is never inflated).
fn ktx2_naming_a_terabyte() -> Vec<u8> {
    let mut b = Ktx2Builder::uncompressed(37, 4, 16384, 16384);
    b.layers = 1024;
    b.supercompression = 2;
    b.levels = vec![vec![0x28, 0xB5, 0x2F, 0xFD, 0, 0, 0, 0]];
    b.build()
}

/// wgpu's out-of-memory, injected for real: a texture too large for any
/// device fails with `OutOfMemory`; what was resident stays intact and the
/// runtime goes on loading.
#[test]
fn out_of_memory_fails_the_texture_and_nothing_else() {
    let Some(gpu) = gpu::for_test("out_of_memory_fails_the_texture_and_nothing_else") else {
        return;
    };
    let mut rt = runtime(
        &gpu,
        RuntimeConfig {
            // No budget of ours stands in the way: the device must refuse.
            texture_budget_bytes: u64::MAX,
            ..config()
        },
    );
    let (before_file, before_pixels) = png(32, 32, 21);
    let before = rt.load_texture_bytes(before_file);
    settle(&gpu, &mut rt, before);
    let held = rt.alloc_buffer(4096, 256).unwrap();
    let data: Vec<u8> = (0..4096).map(|i| (i * 13) as u8).collect();
    rt.write_buffer(held, 0, &data).unwrap();

    let huge = rt.load_texture_bytes(ktx2_naming_a_terabyte());
    settle(&gpu, &mut rt, huge);
    match rt.texture(huge).unwrap() {
        TextureStatus::Failed(RuntimeError::OutOfMemory(msg)) => {
            assert!(!msg.is_empty())
        }
        other => panic!("expected wgpu's out-of-memory, got {other:?}"),
    }
    assert_eq!(
        rt.stats().texture_bytes,
        32 * 32 * 4,
        "nothing of it is counted"
    );
    // What was resident is intact; the runtime goes on.
    assert_eq!(
        gpu.read_texture(ready(&rt, before), 0, 0..1).unwrap(),
        before_pixels
    );
    let r = rt.resolve_buffer(held).unwrap();
    assert_eq!(gpu.read_buffer(r.buffer, r.offset, r.size).unwrap(), data);
    let (after_file, after_pixels) = png(16, 8, 22);
    let after = rt.load_texture_bytes(after_file);
    settle(&gpu, &mut rt, after);
    assert_eq!(
        gpu.read_texture(ready(&rt, after), 0, 0..1).unwrap(),
        after_pixels
    );
}

/// A texture's pieces a frame are bounded by measured work as well as by
/// bytes. Deterministic on any machine: with a nanosecond of texture work a
/// frame, whatever a byte measures no frame can afford more than the
/// smallest piece (one row), so a 64-row texture takes a frame a row; with
/// unbounded time it takes at most two.
#[test]
fn texture_work_per_frame_is_bounded_in_time() {
    let Some(gpu) = gpu::for_test("texture_work_per_frame_is_bounded_in_time") else {
        return;
    };
    // Frames to upload a 256 x 64 texture once the cost of a byte is known.
    let frames_for = |ms: f64| {
        let mut rt = runtime(
            &gpu,
            RuntimeConfig {
                texture_upload_bytes_per_frame: 4 << 20,
                texture_upload_ms_per_frame: ms,
                ..config()
            },
        );
        // A first texture measures what a byte costs.
        let probe = rt.load_texture_bytes(png(256, 256, 30).0);
        settle(&gpu, &mut rt, probe);
        let (file, pixels) = png(256, 64, 31);
        let h = rt.load_texture_bytes(file);
        while matches!(rt.texture(h).unwrap(), TextureStatus::Loading) {
            frame(&gpu, &mut rt);
        }
        let mut frames = 0;
        while !matches!(rt.texture(h).unwrap(), TextureStatus::Ready(_)) {
            frame(&gpu, &mut rt);
            frames += 1;
            assert!(frames < 2000, "the upload never completed");
        }
        assert_eq!(gpu.read_texture(ready(&rt, h), 0, 0..1).unwrap(), pixels);
        frames
    };
    let unbounded = frames_for(1e12);
    let bounded = frames_for(1e-6);
    assert!(unbounded <= 2, "unbounded time: {unbounded} frames");
    // The format's cost is known from the first texture, so even the first
    // step is priced by time: a row a frame, 64 frames (a margin for a
    // piece that reached a level's end).
    assert!(
        bounded >= 48,
        "a nanosecond a frame: a row a frame, {bounded} frames"
    );
}

/// What a staged byte costs is learned per texture: each texture declares
/// a small probe in its first frame (a slow decode must not take a frame's
/// budget at another file's price), then what the budget buys at its own
/// measured cost.
#[test]
fn a_texture_starts_with_a_probe() {
    let Some(gpu) = gpu::for_test("a_texture_starts_with_a_probe") else {
        return;
    };
    let mut rt = runtime(
        &gpu,
        RuntimeConfig {
            texture_upload_bytes_per_frame: 4 << 20,
            texture_upload_ms_per_frame: 1000.0,
            ..config()
        },
    );
    // The staging bytes of the frames that staged some of an upload of 1
    // MiB of RGBA8 (frames while the file is read or the last copy is in
    // flight stage nothing).
    let mut upload = |seed| {
        let (file, pixels) = png(512, 512, seed);
        let h = rt.load_texture_bytes(file);
        let mut staged = Vec::new();
        while !matches!(rt.texture(h).unwrap(), TextureStatus::Ready(_)) {
            staged.push(frame(&gpu, &mut rt).staging_bytes);
            std::thread::sleep(std::time::Duration::from_millis(1));
            assert!(staged.len() < 20_000, "the upload never completed");
        }
        assert_eq!(gpu.read_texture(ready(&rt, h), 0, 0..1).unwrap(), pixels);
        staged.retain(|&b| b > 0);
        staged
    };
    for seed in [60, 61] {
        let staged = upload(seed);
        assert_eq!(
            staged,
            [64 << 10, (1 << 20) - (64 << 10)],
            "a probe, then the rest within a second's budget"
        );
    }
}

/// The request queues are bounded: loads beyond `max_queued_loads` and
/// writes beyond `max_queued_write_bytes` are refused with `QueueFull`, and
/// accepted again once frames have drained the queues.
#[test]
fn request_queues_are_bounded() {
    let Some(gpu) = gpu::for_test("request_queues_are_bounded") else {
        return;
    };
    let mut rt = runtime(
        &gpu,
        RuntimeConfig {
            read_ahead: 1,
            max_queued_loads: 2,
            max_queued_write_bytes: 8 << 10,
            ..config()
        },
    );
    // One read runs (read_ahead 1), two wait, the fourth is refused: no
    // frame starts an upload meanwhile, so nothing drains.
    let loads: Vec<_> = (0..4)
        .map(|i| rt.load_texture_bytes(png(8, 8, 40 + i).0))
        .collect();
    match rt.texture(loads[3]).unwrap() {
        TextureStatus::Failed(e @ RuntimeError::QueueFull { .. }) => {
            assert!(e.to_string().contains("end a frame"), "{e}")
        }
        other => panic!("expected a full queue, got {other:?}"),
    }
    for &h in &loads[..3] {
        settle(&gpu, &mut rt, h);
        ready(&rt, h);
    }
    let later = rt.load_texture_bytes(png(8, 8, 50).0);
    settle(&gpu, &mut rt, later);
    ready(&rt, later);

    let h = rt.alloc_buffer(16 << 10, 256).unwrap();
    rt.write_buffer(h, 0, &[1; 8 << 10]).unwrap();
    assert!(matches!(
        rt.write_buffer(h, 0, &[2; 4]),
        Err(RuntimeError::QueueFull { .. })
    ));
    frame(&gpu, &mut rt);
    let read = |rt: &Runtime| {
        let r = rt.resolve_buffer(h).unwrap();
        gpu.read_buffer(r.buffer, r.offset, r.size).unwrap()
    };
    assert!(
        read(&rt)[..8 << 10].iter().all(|&b| b == 1),
        "the refused write queued nothing"
    );
    rt.write_buffer(h, 0, &[3; 8 << 10])
        .expect("the next frame takes writes again");
    frame(&gpu, &mut rt);
    assert!(read(&rt)[..8 << 10].iter().all(|&b| b == 3));
}

/// The corpus's Basis Universal files (ETC1S, UASTC with zstd, XUASTC) load
/// through the runtime like any other: read and retargeted on a background
/// thread, transcoded level by level, ready in the format the adapter
/// samples best (BC7 on lavapipe where the size is whole blocks, RGBA8
/// otherwise), holding the transcode.
#[test]
fn basis_universal_files_load_transcoded_to_what_the_adapter_samples() {
    use forgeflow::jobs::texture::file::ImageSelector;
    use forgeflow::jobs::texture::source::{TextureFile, TextureSource};
    use forgeflow_test_support::corpus::ktx2_dir;
    let Some(gpu) =
        gpu::for_test("basis_universal_files_load_transcoded_to_what_the_adapter_samples")
    else {
        return;
    };
    let Some(dir) = ktx2_dir() else { return };
    let mut rt = runtime(&gpu, config());
    for name in [
        "bevy-pr18411/ktx2-etc1s-srgb.ktx2",
        "bevy-pr18411/ktx2-zstd-uastc-srgb-rdo.ktx2",
        "cts/cimg5293_uastc_zstd.ktx2",
        "ktxsw/base_xuastc_zstd.ktx2",
    ] {
        let h = rt.load_texture_path(dir.join(name));
        settle(&gpu, &mut rt, h);
        let texture = ready(&rt, h);
        let mut file = TextureFile::open(dir.join(name)).unwrap();
        file.transcode_for(forgeflow::texture::transcode_support(gpu.device.features()));
        let want_format = forgeflow::texture::wgpu_format(file.desc().vk_format).unwrap();
        assert_eq!(texture.format(), want_format, "{name}");
        let want = file.image(ImageSelector::default()).unwrap();
        let got = gpu.read_texture(texture, 0, 0..1).unwrap();
        assert!(got == *want, "{name}: level 0 holds the transcode");
    }
}

/// One frame whose encoder never reaches the GPU: dropped as it is, or
/// finished and the command buffer dropped (both drop wgpu's callbacks).
fn dropped_frame(gpu: &Gpu, rt: &mut Runtime, finish_first: bool) -> FrameReport {
    rt.begin_frame().expect("begin_frame");
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    let report = rt.end_frame(&mut encoder).expect("end_frame");
    if finish_first {
        drop(encoder.finish());
    } else {
        drop(encoder);
    }
    report
}

/// A renderer skips frames (a lost surface, a minimised window) by dropping
/// the encoder it gave `end_frame`. The runtime finds each such frame and
/// does its work again: every buffer write lands (the pool's contents match
/// their shadow after churn and defragmentation), every texture becomes
/// ready with its pixels, and no later frame waits for the dropped one's
/// buffers (on the code before this, the fourth frame after a drop waited
/// for a staging buffer that never came back, and failed with a timeout).
#[test]
fn dropped_encoders_cost_nothing_and_lose_nothing() {
    let Some(gpu) = gpu::for_test("dropped_encoders_cost_nothing_and_lose_nothing") else {
        return;
    };
    let mut rt = runtime(&gpu, config());
    let mut rng = SplitMix64::new(11);
    let mut shadow: HashMap<PoolHandle, Vec<u8>> = HashMap::new();
    let mut live: Vec<PoolHandle> = Vec::new();
    let mut textures = Vec::new();
    let (mut dropped, mut moves_dropped, mut found, mut redone, mut restarted) = (0, 0, 0, 0, 0);
    for i in 0..150u32 {
        for _ in 0..rng.below(6) {
            let len = 4 * (1 + rng.below(4096)) as usize;
            let h = rt.alloc_buffer(len as u64, 16).unwrap();
            let data: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            rt.write_buffer(h, 0, &data).unwrap();
            shadow.insert(h, data);
            live.push(h);
        }
        if let Some(&h) = live.get(rng.below(live.len().max(1) as u64) as usize) {
            let patch = (i as u64).to_le_bytes();
            rt.write_buffer(h, 0, &patch).unwrap();
            shadow.get_mut(&h).unwrap()[..8].copy_from_slice(&patch);
        }
        for _ in 0..rng.below(6) {
            if live.is_empty() {
                break;
            }
            let h = live.swap_remove(rng.below(live.len() as u64) as usize);
            rt.free_buffer(h).unwrap();
            shadow.remove(&h);
        }
        if i % 10 == 0 {
            let (file, pixels) = png(96 + i, 64, u64::from(i));
            textures.push((rt.load_texture_bytes(file), 96 + i, pixels));
        }
        // Every third frame is dropped, alternately before and after
        // `finish`.
        let report = if i % 3 == 1 {
            dropped += 1;
            let r = dropped_frame(&gpu, &mut rt, i % 2 == 0);
            moves_dropped += r.defrag_moves;
            r
        } else {
            frame(&gpu, &mut rt)
        };
        found += report.abandoned_frames.len();
        redone += report.buffer_writes_redone;
        restarted += report.textures_restarted;
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    // Frames until every texture has settled (the last drop is found too).
    for &(h, _, _) in &textures {
        for r in settle(&gpu, &mut rt, h) {
            found += r.abandoned_frames.len();
        }
    }
    frame(&gpu, &mut rt);
    assert_eq!(found, dropped, "every dropped frame is found once");
    assert_eq!(rt.stats().abandoned_frames, dropped as u64);
    assert!(
        redone > 0 && moves_dropped > 0,
        "dropped frames carried writes ({redone}) and moves ({moves_dropped})"
    );
    assert_eq!(rt.staging().stats().frames_abandoned, dropped as u64);
    for (h, data) in &shadow {
        let r = rt.resolve_buffer(*h).unwrap();
        assert!(
            gpu.read_buffer(r.buffer, r.offset, r.size).unwrap() == *data,
            "allocation {h:?} differs from its shadow"
        );
    }
    for (h, width, pixels) in &textures {
        let texture = ready(&rt, *h);
        assert_eq!(texture.width(), *width);
        assert!(
            gpu.read_texture(texture, 0, 0..1).unwrap() == *pixels,
            "texture {width} wide differs from its pixels"
        );
    }
    eprintln!("{dropped} frames dropped, {redone} writes redone, {restarted} textures restarted");
}

/// A virtual texture's page faults in a dropped frame never delivered their
/// tiles: the tiles leave the cache and the page table again (the root
/// stays mapped and loads again), and feedback brings them back.
#[test]
fn tiles_of_a_dropped_frame_are_taken_back() {
    let Some(gpu) = gpu::for_test("tiles_of_a_dropped_frame_are_taken_back") else {
        return;
    };
    let mut rt = runtime(&gpu, config());
    let layout = VtLayout::new(256, 256, 64, 4).unwrap();
    let vt = rt
        .add_virtual_texture(
            Terrain::new(layout, 3),
            VtConfig {
                budget_bytes: 4 << 20,
                ..VtConfig::default()
            },
            (64, 64),
        )
        .unwrap();
    // The first frame's loads (the root, and coarse tiles prefetched) go in
    // a dropped frame: all but the root leave, and load again.
    rt.begin_frame().unwrap();
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    rt.end_frame(&mut encoder).unwrap();
    let loaded = rt.vt_stats(vt).unwrap().resident;
    drop(encoder);
    let report = frame(&gpu, &mut rt);
    assert_eq!(report.abandoned_frames.len(), 1);
    assert_eq!(report.tiles_taken_back as usize, loaded - 1, "{report:?}");
    for _ in 0..8 {
        frame(&gpu, &mut rt);
    }
    let settled = rt.vt_stats(vt).unwrap().resident;
    assert!(settled >= loaded, "loaded again: {settled} of {loaded}");
    // A level-0 tile faulted in a dropped frame is taken back.
    let word = TileId { mip: 0, x: 1, y: 1 }.pack(1);
    rt.begin_frame().unwrap();
    rt.push_vt_feedback(vt, vec![word]).unwrap();
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    rt.end_frame(&mut encoder).unwrap();
    let faulted = rt.vt_stats(vt).unwrap().resident;
    assert!(
        faulted > settled,
        "the tile (and what is prefetched with it)"
    );
    drop(encoder);
    let report = frame(&gpu, &mut rt);
    assert_eq!(
        report.tiles_taken_back as usize,
        faulted - settled,
        "{report:?}"
    );
    assert_eq!(rt.vt_stats(vt).unwrap().resident, settled);
    // Asked again, it loads and stays.
    rt.begin_frame().unwrap();
    rt.push_vt_feedback(vt, vec![word]).unwrap();
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    rt.end_frame(&mut encoder).unwrap();
    gpu.queue.submit([encoder.finish()]);
    for _ in 0..3 {
        assert_eq!(frame(&gpu, &mut rt).tiles_taken_back, 0);
    }
    assert!(rt.vt_stats(vt).unwrap().resident > settled);
}

/// A runtime on the application's own rayon pool runs its frames' jobs
/// there, and makes no pool of its own.
#[test]
fn the_applications_thread_pool_runs_the_jobs() {
    let Some(gpu) = gpu::for_test("the_applications_thread_pool_runs_the_jobs") else {
        return;
    };
    let pool = std::sync::Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .thread_name(|i| format!("renderer-worker-{i}"))
            .build()
            .unwrap(),
    );
    let mut rt = Runtime::with_pool(
        &gpu.device,
        &gpu.queue,
        std::sync::Arc::clone(&pool),
        RuntimeConfig {
            // Never inline: every frame's jobs go to the pool.
            inline_below: std::time::Duration::ZERO,
            ..config()
        },
    )
    .unwrap();
    assert!(std::sync::Arc::ptr_eq(rt.scheduler().pool(), &pool));
    let h = rt.alloc_buffer(1 << 16, 16).unwrap();
    let data: Vec<u8> = (0..1 << 16).map(|i| (i * 3) as u8).collect();
    rt.write_buffer(h, 0, &data).unwrap();
    let report = frame(&gpu, &mut rt);
    assert!(report.jobs > 0);
    let r = rt.resolve_buffer(h).unwrap();
    assert_eq!(gpu.read_buffer(r.buffer, r.offset, r.size).unwrap(), data);
}

/// `Runtime` can move to another thread (a renderer's render thread is
/// seldom the one that made it); it is not `Sync`: every call that changes
/// it takes `&mut self`, and the few that read share nothing worth locking.
#[test]
fn the_runtime_is_send() {
    fn send<T: Send>() {}
    send::<Runtime>();
    send::<forgeflow::runtime::DeviceLoss>();
    fn sync<T: Sync>() {}
    sync::<forgeflow::runtime::DeviceLoss>();
}

/// `load_texture_with`: a PNG loaded linear (a normal map) is not sRGB, a
/// label and view formats reach the texture, `max_levels` keeps the first
/// levels only, and the ready texture says how to view it (a cube, an
/// array).
#[test]
fn textures_load_with_intent() {
    use forgeflow::runtime::{TextureInput, TextureOptions};
    use forgeflow::texture::ColorSpace;
    let Some(gpu) = gpu::for_test("textures_load_with_intent") else {
        return;
    };
    let mut rt = runtime(&gpu, config());
    let (file, pixels) = png(16, 8, 21);
    let as_file = rt.load_texture_bytes(file.clone());
    let normal = rt.load_texture_with(
        TextureInput::Bytes(file),
        TextureOptions {
            color_space: ColorSpace::Linear,
            label: Some("a normal map".into()),
            view_formats: vec![wgpu::TextureFormat::Rgba8UnormSrgb],
            ..TextureOptions::default()
        },
    );
    // An RGBA8 cube of 4 levels, loaded with its first 2 only, and a
    // 3-layer array.
    let mut cube = Ktx2Builder::uncompressed(37, 4, 8, 8);
    cube.faces = 6;
    cube.levels = (0..4)
        .map(|l| {
            (0..cube.level_bytes(l))
                .map(|i| (i * 7 + u64::from(l)) as u8)
                .collect()
        })
        .collect();
    let cube_level_0 = cube.levels[0][..8 * 8 * 4].to_vec();
    let cube = rt.load_texture_with(
        TextureInput::Bytes(cube.build()),
        TextureOptions {
            max_levels: Some(2),
            ..TextureOptions::default()
        },
    );
    // Pixels decoded elsewhere, half floats; and two that make no image.
    let half: Vec<u8> = (0..4 * 2 * 8).map(|i| (i * 5) as u8).collect();
    let pixels_in = |format, data: Vec<u8>| TextureInput::Pixels {
        format,
        width: 4,
        height: 2,
        data,
    };
    let from_pixels = rt.load_texture_with(
        pixels_in(wgpu::TextureFormat::Rgba16Float, half.clone()),
        TextureOptions::default(),
    );
    let short = rt.load_texture_with(
        pixels_in(wgpu::TextureFormat::Rgba16Float, vec![0; 63]),
        TextureOptions::default(),
    );
    let depth = rt.load_texture_with(
        pixels_in(wgpu::TextureFormat::Depth32Float, vec![0; 32]),
        TextureOptions::default(),
    );
    match rt.texture(short).unwrap() {
        TextureStatus::Failed(RuntimeError::Texture(e)) => assert!(
            matches!(
                **e,
                forgeflow::jobs::texture::file::TextureError::PixelBytes {
                    expected: 64,
                    got: 63
                }
            ),
            "{e}"
        ),
        other => panic!("{other:?}"),
    }
    match rt.texture(depth).unwrap() {
        TextureStatus::Failed(RuntimeError::Upload(e)) => assert!(
            matches!(**e, forgeflow::texture::TextureUploadError::NoKtx2Format(_)),
            "{e}"
        ),
        other => panic!("{other:?}"),
    }
    let mut array = Ktx2Builder::uncompressed(37, 4, 4, 4);
    array.layers = 3;
    array.levels = vec![vec![9u8; array.level_bytes(0) as usize]];
    let array = rt.load_texture_bytes(array.build());
    for h in [as_file, normal, cube, array, from_pixels] {
        settle(&gpu, &mut rt, h);
    }
    let half_t = ready_texture(&rt, from_pixels);
    assert_eq!(half_t.format(), wgpu::TextureFormat::Rgba16Float);
    assert!(gpu.read_texture(half_t.texture, 0, 0..1).unwrap() == half);
    let as_file = ready_texture(&rt, as_file);
    assert_eq!(
        as_file.format(),
        wgpu::TextureFormat::Rgba8UnormSrgb,
        "PNGs are sRGB"
    );
    let normal_t = ready_texture(&rt, normal);
    assert_eq!(normal_t.format(), wgpu::TextureFormat::Rgba8Unorm);
    assert_eq!(normal_t.view_dimension, wgpu::TextureViewDimension::D2);
    assert!(gpu.read_texture(normal_t.texture, 0, 0..1).unwrap() == pixels);
    // The view format is usable: a view of the other colour space.
    let _view = normal_t.create_view(&wgpu::TextureViewDescriptor {
        format: Some(wgpu::TextureFormat::Rgba8UnormSrgb),
        ..Default::default()
    });
    let cube_t = ready_texture(&rt, cube);
    assert_eq!(cube_t.view_dimension, wgpu::TextureViewDimension::Cube);
    assert_eq!(
        (cube_t.mip_level_count(), cube_t.depth_or_array_layers()),
        (2, 6)
    );
    assert_eq!(cube_t.first_level, 0);
    assert!(gpu.read_texture(cube_t.texture, 0, 0..1).unwrap() == cube_level_0);
    let array_t = ready_texture(&rt, array);
    assert_eq!(array_t.view_dimension, wgpu::TextureViewDimension::D2Array);
    assert_eq!(array_t.depth_or_array_layers(), 3);
}

fn ready_texture(rt: &Runtime, h: TextureHandle) -> forgeflow::runtime::ReadyTexture<'_> {
    match rt.texture(h).unwrap() {
        TextureStatus::Ready(t) => t,
        other => panic!("texture not ready: {other:?}"),
    }
}

/// The texture budget is checked before the texture is made: a texture
/// over it fails with `Budget` and never reaches the driver (on the old code
/// the terabyte texture below was created first, and failed with the
/// driver's out-of-memory instead).
#[test]
fn the_texture_budget_is_checked_before_the_driver_sees_the_texture() {
    let Some(gpu) =
        gpu::for_test("the_texture_budget_is_checked_before_the_driver_sees_the_texture")
    else {
        return;
    };
    let mut rt = runtime(&gpu, config());
    let huge = rt.load_texture_bytes(ktx2_naming_a_terabyte());
    settle(&gpu, &mut rt, huge);
    match rt.texture(huge).unwrap() {
        TextureStatus::Failed(RuntimeError::Budget {
            what: "texture",
            requested,
            in_use: 0,
            budget,
        }) => {
            assert_eq!(*budget, RuntimeConfig::default().texture_budget_bytes);
            // Level 0 of its 1024 layers at least.
            assert!(*requested >= 16384 * 16384 * 4 * 1024, "{requested}");
        }
        other => panic!("expected the texture budget, got {other:?}"),
    }
    assert_eq!(rt.stats().texture_bytes, 0);
}
