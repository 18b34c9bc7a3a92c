//! Criterion bench of the pool allocator core against offset-allocator on the
//! same churn (the first 20,000 frames of `ChurnTrace`, about 40,000
//! allocations and as many frees, in a 2 GiB pool; no defragmentation, frees
//! released two frames late as after a fence). Per iteration: the whole trace.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use forgeflow::jobs::alloc::AllocKey;
use forgeflow_tools::replay::{self, FENCE_LAG, POOL_BYTES as POOL};
use forgeflow_tools::synthetic::ChurnEvent;

fn churn(c: &mut Criterion) {
    let (events, ids) = replay::dense_trace(20_000, 1);
    let ops = events
        .iter()
        .filter(|e| !matches!(e, ChurnEvent::EndFrame))
        .count() as u64;
    let mut g = c.benchmark_group("churn_20000_frames");
    g.throughput(Throughput::Elements(ops));
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(5));
    g.bench_function(BenchmarkId::new("forgeflow", "tlsf"), |b| {
        let mut slots: Vec<Option<AllocKey>> = vec![None; ids];
        b.iter(|| replay::replay_forgeflow(&events, &mut slots, POOL, FENCE_LAG))
    });
    g.bench_function(
        BenchmarkId::new("offset_allocator", "padding_for_alignment"),
        |b| {
            let mut slots: Vec<Option<offset_allocator::Allocation>> = vec![None; ids];
            b.iter(|| replay::replay_offset_allocator(&events, &mut slots, POOL, FENCE_LAG))
        },
    );
    g.finish();
}

criterion_group!(benches, churn);
criterion_main!(benches);
