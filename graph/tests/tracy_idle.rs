//! With the `tracy` feature and no profiler connected, frames neither block
//! nor make the process grow: tracy-client is built `ondemand` (collects only
//! while a profiler is connected) and `only-localhost` (listens on loopback).
#![cfg(feature = "tracy")]

use std::time::{Duration, Instant};

use forgeflow_graph::{Scheduler, SchedulerConfig};

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

#[test]
fn frames_without_a_profiler_do_not_block_or_grow() {
    assert!(
        std::env::var_os("TRACY_NO_EXIT").is_none(),
        "TRACY_NO_EXIT would hang the test at exit"
    );
    let mut sched = Scheduler::new(SchedulerConfig {
        threads: Some(2),
        auto_signal_fences: true,
        ..SchedulerConfig::default()
    })
    .unwrap();
    let mut frame_batch = |frames: usize| {
        for _ in 0..frames {
            let mut f = sched.begin_frame().unwrap();
            let mut prev = f.add("decode", |_| Ok(())).unwrap();
            for _ in 0..200 {
                prev = f.job("upload").after(prev).spawn(|_| Ok(())).unwrap();
                f.add("defrag", |_| Ok(())).unwrap();
            }
            f.run().unwrap();
        }
    };
    let start = Instant::now();
    frame_batch(2_000);
    let warm = rss_bytes();
    frame_batch(10_000); // 4 million zones and 10,000 frame marks if they were recorded
    let grown = rss_bytes().saturating_sub(warm);
    assert!(
        start.elapsed() < Duration::from_secs(120),
        "frames were blocked"
    );
    assert!(
        grown < 16 << 20,
        "RSS grew by {grown} bytes without a profiler connected"
    );
}
