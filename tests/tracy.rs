//! What a Tracy profiler sees of the runtime (feature `tracy`): a capture
//! connects as a Tracy 0.14 profiler would (protocol 82, see
//! `forgeflow_test_support::tracy_capture`) while the runtime runs frames with every kind
//! of job, and the test checks the stream by name: one zone per job named
//! after its kind, a secondary frame mark ("forgeflow") per frame and never
//! the application's main one, the runtime's plots, and GPU zones
//! where the adapter has timestamps inside encoders.
#![cfg(feature = "tracy")]

use std::time::{Duration, Instant};

use forgeflow::gpu::Gpu;
use forgeflow::jobs::vt::{TileId, VtLayout};
use forgeflow_test_support::gpu;

use forgeflow::pool::BufferPoolConfig;
use forgeflow::runtime::{FrameReport, Runtime, RuntimeConfig, TextureStatus};
use forgeflow::vt::VtConfig;
use forgeflow_test_support::tracy_capture::Capture;
use forgeflow_tools::Terrain;

/// The client's port: tracy-client listens on 8086 unless `TRACY_PORT` says otherwise.
fn tracy_addr() -> String {
    let port = std::env::var("TRACY_PORT").unwrap_or_else(|_| "8086".into());
    format!("127.0.0.1:{port}")
}

fn frame(gpu: &Gpu, rt: &mut Runtime) -> FrameReport {
    rt.begin_frame().expect("begin_frame");
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    let report = rt.end_frame(&mut encoder).expect("end_frame");
    gpu.queue.submit([encoder.finish()]);
    let _ = gpu.device.poll(wgpu::PollType::wait_indefinitely());
    report
}

/// A `w` x `h` RGBA PNG of a gradient.
fn png(w: u32, h: u32) -> Vec<u8> {
    let pixels: Vec<u8> = (0..w * h * 4).map(|i| (i * 7 % 251) as u8).collect();
    forgeflow_test_support::png::rgba(w, h, &pixels)
}

#[test]
fn a_connected_profiler_sees_job_zones_frame_marks_plots_and_gpu_zones() {
    let Some(gpu) =
        gpu::for_test("a_connected_profiler_sees_job_zones_frame_marks_plots_and_gpu_zones")
    else {
        return;
    };
    let mut rt = Runtime::new(
        &gpu.device,
        &gpu.queue,
        RuntimeConfig {
            threads: Some(2),
            pool: BufferPoolConfig {
                block_size: 1 << 20,
                budget_bytes: 8 << 20,
                ..Default::default()
            },
            ..RuntimeConfig::default()
        },
    )
    .expect("runtime");
    let addr = tracy_addr();
    let capture = Capture::connect(&addr, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("no Tracy client listening on {addr}: {e}"));

    // Every kind of job: buffer uploads and defragmentation (a pool with
    // holes), texture reads and uploads (PNGs by bytes), page faults (a
    // virtual texture asked for tiles of its finest level).
    let buffers: Vec<_> = (0..16)
        .map(|i| {
            let h = rt.alloc_buffer(32 << 10, 16).unwrap();
            rt.write_buffer(h, 0, &vec![i as u8; 32 << 10]).unwrap();
            h
        })
        .collect();
    let vt = rt
        .add_virtual_texture(
            Terrain::new(VtLayout::new(512, 512, 64, 4).unwrap(), 7),
            VtConfig {
                budget_bytes: 4 << 20,
                ..VtConfig::default()
            },
            (64, 64),
        )
        .unwrap();
    let textures: Vec<_> = (0..4)
        .map(|i| rt.load_texture_bytes(png(64 + i * 16, 64)))
        .collect();
    let frames = 60u32;
    let mut moves = 0;
    for f in 0..frames {
        if f == 2 {
            for &h in buffers.iter().step_by(2) {
                rt.free_buffer(h).unwrap();
            }
        }
        if f % 4 == 0 {
            rt.write_buffer(buffers[1], 0, &[f as u8; 256]).unwrap();
        }
        let (x, y) = ((f % 8) as u16, ((f / 8) % 8) as u16);
        rt.push_vt_feedback(vt, vec![TileId { mip: 0, x, y }.pack(1)])
            .unwrap();
        let report = frame(&gpu, &mut rt);
        assert!(report.failure.is_none(), "{:?}", report.failure);
        moves += report.defrag_moves;
    }
    let start = Instant::now();
    while textures
        .iter()
        .any(|&t| matches!(rt.texture(t), Ok(TextureStatus::Loading)))
        && start.elapsed() < Duration::from_secs(20)
    {
        frame(&gpu, &mut rt);
    }
    let frames_run = rt.stats().frames;
    let session = capture
        .finish()
        .expect("the capture reads the stream to the end");
    eprintln!("{session:#?}");

    assert!(
        !session.program.is_empty(),
        "the welcome message names the program"
    );
    assert_eq!(session.unanswered, 0, "every name query answered");
    let forgeflow_marks = session
        .named_frame_marks
        .get("forgeflow")
        .copied()
        .unwrap_or(0);
    assert!(
        forgeflow_marks >= u64::from(frames),
        "a \"forgeflow\" frame mark per frame: {forgeflow_marks} for {frames_run} frames ({:?})",
        session.named_frame_marks
    );
    assert_eq!(
        session.frame_marks, 0,
        "the main frame mark is the application's: forgeflow never emits it"
    );
    for job in ["buffer upload", "defrag", "texture upload", "page fault"] {
        assert!(
            session.zones.get(job).is_some_and(|&n| n > 0),
            "a zone per {job:?} job: {:?}",
            session.zones
        );
    }
    assert!(
        session.zones.get("defrag").copied().unwrap_or(0) >= u64::from(frames),
        "a defrag zone every frame"
    );
    assert!(
        session.zones.contains_key("texture read"),
        "background reads show as zones: {:?}",
        session.zones
    );
    assert!(
        moves > 0,
        "the freed buffers left holes that defragmentation closed"
    );
    for plot in [
        "forgeflow staging bytes in use",
        "forgeflow pool fragmentation pct",
        "forgeflow texture bytes",
        "forgeflow resident tiles",
        "forgeflow mip bias",
        "forgeflow graph ms",
    ] {
        assert!(
            session
                .plots
                .get(plot)
                .is_some_and(|&n| n >= u64::from(frames)),
            "plot {plot:?} once a frame: {:?}",
            session.plots
        );
    }
    // CI's lavapipe has timestamps inside encoders: there the GPU zones
    // must be checked, not skipped.
    let timestamps =
        wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS;
    if gpu::has_features(&gpu, timestamps, "timestamps inside encoders") {
        assert!(
            rt.tracy_gpu_zones(),
            "the runtime measures GPU zones where it can"
        );
        assert!(session.gpu_contexts >= 1, "the GPU context is announced");
        for zone in ["forgeflow uploads", "forgeflow defrag"] {
            assert!(
                session.gpu_zones.get(zone).is_some_and(|&n| n > 0),
                "GPU zone {zone:?}: {:?}",
                session.gpu_zones
            );
        }
        assert!(session.gpu_times > 0, "GPU timestamps arrive");
    }
}
