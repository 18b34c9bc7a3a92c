//! Criterion bench of the pool allocator core against offset-allocator on the
//! same churn (the first 20,000 frames of `ChurnTrace`, about 40,000
//! allocations and as many frees, in a 2 GiB pool; no defragmentation, frees
//! released two frames late as after a fence). Per iteration: the whole trace.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use forgeflow::jobs::alloc::{AllocKey, PoolAllocator};
use forgeflow::jobs::synthetic::{ChurnEvent, ChurnTrace};

const POOL: u64 = 2 << 30;

/// The trace with allocation ids made dense (index into a slot table).
fn trace() -> (Vec<ChurnEvent>, usize) {
    let events: Vec<ChurnEvent> = ChurnTrace::new(20_000, 1).collect();
    let ids = events
        .iter()
        .filter(|e| matches!(e, ChurnEvent::Alloc { .. }))
        .count();
    (events, ids)
}

fn churn(c: &mut Criterion) {
    let (events, ids) = trace();
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
        b.iter(|| {
            let mut pool = PoolAllocator::new();
            pool.add_block(POOL);
            let mut frame = 0u64;
            for e in &events {
                match *e {
                    ChurnEvent::Alloc { id, size, align } => {
                        slots[id as usize] = pool.alloc(size, align).ok()
                    }
                    ChurnEvent::Free { id } => {
                        if let Some(k) = slots[id as usize].take() {
                            let _ = pool.free(k, frame);
                        }
                    }
                    ChurnEvent::EndFrame => {
                        pool.retire(frame.saturating_sub(2));
                        frame += 1;
                    }
                }
            }
            pool
        })
    });
    g.bench_function(
        BenchmarkId::new("offset_allocator", "padding_for_alignment"),
        |b| {
            let mut slots: Vec<Option<offset_allocator::Allocation>> = vec![None; ids];
            b.iter(|| {
                let mut oa =
                    offset_allocator::Allocator::<u32>::with_max_allocs(POOL as u32, 1 << 20);
                let mut pending = std::collections::VecDeque::new();
                let mut frame = 0u64;
                for e in &events {
                    match *e {
                        ChurnEvent::Alloc { id, size, align } => {
                            slots[id as usize] = oa.allocate((size + align - 1) as u32)
                        }
                        ChurnEvent::Free { id } => {
                            if let Some(a) = slots[id as usize].take() {
                                pending.push_back((frame, a));
                            }
                        }
                        ChurnEvent::EndFrame => {
                            while pending.front().is_some_and(|(f, _)| f + 2 <= frame) {
                                oa.free(pending.pop_front().expect("checked").1);
                            }
                            frame += 1;
                        }
                    }
                }
                oa
            })
        },
    );
    g.finish();
}

criterion_group!(benches, churn);
criterion_main!(benches);
