//! Criterion benches of the scheduler, on the same synthetic graphs as
//! `forgeflow-stress graph`:
//!
//! - `overhead/1000_empty_jobs`: a reused graph of 1000 empty jobs with up to 4
//!   dependencies each, declared and run per iteration, through forgeflow,
//!   `rayon::scope` with manual counters, and sequentially.
//! - `overhead/forgeflow_declare_only`, `overhead/forgeflow_run_only`: the two
//!   halves of forgeflow's frame.
//! - `speedup/4096_jobs_50us`: 4096 jobs of 20-80 us: forgeflow, rayon::scope, sequential.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use forgeflow::graph::{JobKey, Scheduler, SchedulerConfig};
use forgeflow_tools::synthetic::{busy_work, calibrate, run_sequential, DagSpec, RayonScopeRunner};

fn scheduler() -> Scheduler {
    Scheduler::new(SchedulerConfig {
        auto_signal_fences: true,
        // The pool is what this measures: no frame inline.
        inline_below: std::time::Duration::ZERO,
        ..SchedulerConfig::default()
    })
    .expect("scheduler")
}

fn declare_and_run<W: Fn(usize) + Sync>(
    sched: &mut Scheduler,
    spec: &DagSpec,
    keys: &mut Vec<JobKey>,
    work: &W,
    run: bool,
) {
    let mut frame = sched.begin_frame().expect("begin_frame");
    keys.clear();
    for (j, preds) in spec.preds.iter().enumerate() {
        let key = frame
            .job("job")
            .after_all(preds.iter().map(|&p| keys[p as usize]))
            .spawn(move |_| {
                work(j);
                Ok(())
            })
            .expect("spawn");
        keys.push(key);
    }
    if run {
        frame.run().expect("frame");
    }
}

fn overhead(c: &mut Criterion) {
    let spec = DagSpec::random(1000, 4, 64, 0..1, 1);
    let mut sched = scheduler();
    let pool = Arc::clone(sched.pool());
    let runner = RayonScopeRunner::new(&spec);
    let mut keys = Vec::new();
    let mut g = c.benchmark_group("overhead");
    g.throughput(Throughput::Elements(spec.len() as u64));
    g.bench_function(BenchmarkId::new("forgeflow", "1000_empty_jobs"), |b| {
        b.iter(|| {
            declare_and_run(
                &mut sched,
                &spec,
                &mut keys,
                &|j| {
                    black_box(j);
                },
                true,
            )
        })
    });
    g.bench_function(
        BenchmarkId::new("forgeflow_declare_only", "1000_empty_jobs"),
        |b| {
            b.iter(|| {
                declare_and_run(
                    &mut sched,
                    &spec,
                    &mut keys,
                    &|j| {
                        black_box(j);
                    },
                    false,
                )
            })
        },
    );
    g.bench_function(
        BenchmarkId::new("forgeflow_run_only", "1000_empty_jobs"),
        |b| {
            b.iter_custom(|iters| {
                let mut total = std::time::Duration::ZERO;
                for _ in 0..iters {
                    let mut frame = sched.begin_frame().expect("begin_frame");
                    keys.clear();
                    for preds in &spec.preds {
                        let key = frame
                            .job("job")
                            .after_all(preds.iter().map(|&p| keys[p as usize]))
                            .spawn(|_| Ok(()))
                            .expect("spawn");
                        keys.push(key);
                    }
                    let t = std::time::Instant::now();
                    frame.run().expect("frame");
                    total += t.elapsed();
                }
                total
            })
        },
    );
    g.bench_function(BenchmarkId::new("rayon_scope", "1000_empty_jobs"), |b| {
        b.iter(|| {
            runner.run(&pool, &|j| {
                black_box(j);
            })
        })
    });
    g.bench_function(BenchmarkId::new("sequential", "1000_empty_jobs"), |b| {
        b.iter(|| {
            run_sequential(&spec, &|j| {
                black_box(j);
            })
        })
    });
    g.finish();
}

fn speedup(c: &mut Criterion) {
    let per_us = calibrate();
    let spec = DagSpec::random(
        4096,
        4,
        256,
        (20.0 * per_us) as u32..(80.0 * per_us) as u32,
        2,
    );
    let mut sched = scheduler();
    let pool = Arc::clone(sched.pool());
    let runner = RayonScopeRunner::new(&spec);
    let mut keys = Vec::new();
    let work = |j: usize| {
        black_box(busy_work(spec.costs[j], j as u64));
    };
    let mut g = c.benchmark_group("speedup");
    g.sample_size(10);
    g.throughput(Throughput::Elements(spec.len() as u64));
    g.bench_function(BenchmarkId::new("forgeflow", "4096_jobs_50us"), |b| {
        b.iter(|| declare_and_run(&mut sched, &spec, &mut keys, &work, true))
    });
    g.bench_function(BenchmarkId::new("rayon_scope", "4096_jobs_50us"), |b| {
        b.iter(|| runner.run(&pool, &work))
    });
    g.bench_function(BenchmarkId::new("sequential", "4096_jobs_50us"), |b| {
        b.iter(|| run_sequential(&spec, &work))
    });
    g.finish();
}

criterion_group!(benches, overhead, speedup);
criterion_main!(benches);
