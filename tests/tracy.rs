//! What a Tracy profiler sees of the runtime (feature `tracy`): a capture
//! connects as a Tracy 0.14 profiler would (protocol 82, see
//! `forgeflow_test_support::tracy_capture`) while the runtime runs frames with every kind
//! of job, and the test checks the stream by name: one zone per job named
//! after its kind, a secondary frame mark ("forgeflow") per frame and never
//! the application's main one, the runtime's plots, and GPU zones
//! where the adapter has timestamps inside encoders.
#![cfg(feature = "tracy")]

use std::time::{Duration, Instant};

use forgeflow::runtime::TextureStatus;
use forgeflow_test_support::gpu;
use forgeflow_test_support::tracy_capture::Capture;

#[path = "support/tracy_workload.rs"]
mod tracy_workload;
use tracy_workload::{frame, Workload};

/// The client's port: tracy-client listens on 8086 unless `TRACY_PORT` says otherwise.
fn tracy_addr() -> String {
    let port = std::env::var("TRACY_PORT").unwrap_or_else(|_| "8086".into());
    format!("127.0.0.1:{port}")
}

#[test]
fn a_connected_profiler_sees_job_zones_frame_marks_plots_and_gpu_zones() {
    let Some(gpu) =
        gpu::for_test("a_connected_profiler_sees_job_zones_frame_marks_plots_and_gpu_zones")
    else {
        return;
    };
    let mut rt = tracy_workload::runtime(&gpu);
    let addr = tracy_addr();
    let capture = Capture::connect(&addr, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("no Tracy client listening on {addr}: {e}"));

    let mut work = Workload::new(&mut rt);
    let frames = 60u32;
    for _ in 0..frames {
        let report = work.frame(&gpu, &mut rt);
        assert!(report.failure.is_none(), "{:?}", report.failure);
    }
    let start = Instant::now();
    while work
        .textures
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
        work.moves > 0,
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
