//! What Tracy itself records of the runtime (feature `tracy`): Tracy's own
//! `tracy-capture` (protocol 82) records a session while the runtime runs
//! frames with every kind of job, and `tracy-csvexport` reads it back: the
//! job zones by name, the runtime's plots, the GPU zones, and the frames the
//! capture counted. `tests/tracy.rs` checks the same stream message by message
//! with forgeflow's own capture.
#![cfg(feature = "tracy")]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use forgeflow_test_support::gpu;
use forgeflow_test_support::tracy_tools::{self, Recording};

#[path = "support/tracy_workload.rs"]
mod tracy_workload;
use tracy_workload::Workload;

/// Counts of the first column's names in `rows` (the header skipped).
fn names(rows: &[Vec<String>]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for row in rows.iter().skip(1) {
        if let Some(name) = row.first() {
            *out.entry(name.trim_matches('"').to_owned()).or_insert(0) += 1;
        }
    }
    out
}

#[test]
fn tracys_capture_records_job_zones_plots_gpu_zones_and_frames() {
    let test = "tracys_capture_records_job_zones_plots_gpu_zones_and_frames";
    let Some(tools) = tracy_tools::for_test(test) else {
        return;
    };
    let Some(gpu) = gpu::for_test(test) else {
        return;
    };
    let port: u16 = std::env::var("TRACY_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(8086);
    let dir = std::env::temp_dir().join(format!("forgeflow-tracy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("run.tracy");
    let mut recording = Recording::start(&tools, &out, port, 3).expect("tracy-capture starts");
    // The runtime starts the client; the capture connects to it.
    let mut rt = tracy_workload::runtime(&gpu);
    let start = Instant::now();
    while !tracy_client::Client::is_connected() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "tracy-capture never connected on port {port}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Frames until the capture's seconds are up.
    let mut work = Workload::new(&mut rt);
    let mut frames = 0u32;
    while !recording.finished() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the capture never ended"
        );
        let report = work.frame(&gpu, &mut rt);
        assert!(report.failure.is_none(), "{:?}", report.failure);
        frames += 1;
    }
    let printed = recording
        .wait(Duration::from_secs(30))
        .expect("the capture saves its file");
    eprintln!("tracy-capture: {printed}");
    assert!(frames >= 10, "{frames} frames ran while recording");

    let zones = names(&recording.export(&["-u"]).expect("CPU zones export"));
    for job in ["buffer upload", "defrag", "page fault", "texture upload"] {
        assert!(
            zones.get(job).is_some_and(|&n| n > 0),
            "a zone per {job:?} job: {zones:?}"
        );
    }
    assert!(
        zones.get("defrag").copied().unwrap_or(0) >= 10,
        "a defrag zone every frame: {zones:?}"
    );
    assert!(
        work.moves > 0,
        "defragmentation moved the freed buffers' neighbours"
    );

    let plots = names(&recording.export(&["-u", "-p"]).expect("plot export"));
    for plot in [
        "forgeflow staging bytes in use",
        "forgeflow pool fragmentation pct",
        "forgeflow graph ms",
        "forgeflow resident tiles",
    ] {
        assert!(
            plots.get(plot).is_some_and(|&n| n >= 10),
            "plot {plot:?} once a frame: {plots:?}"
        );
    }
    let timestamps =
        wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS;
    if gpu::has_features(&gpu, timestamps, "timestamps inside encoders") {
        let gpu_zones = names(&recording.export(&["-g"]).expect("GPU zones export"));
        for zone in ["forgeflow uploads", "forgeflow defrag"] {
            assert!(
                gpu_zones.get(zone).is_some_and(|&n| n > 0),
                "GPU zone {zone:?}: {gpu_zones:?}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
