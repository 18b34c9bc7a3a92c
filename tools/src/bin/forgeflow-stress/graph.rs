//! `forgeflow-stress graph`: the scheduler under synthetic frames.
//!
//! Phases, all on one pool of `--threads` workers:
//! 1. overhead: a reused graph of 1000 empty jobs (up to 4 dependencies each),
//!    declared and run every frame; the same graph through `rayon::scope` with
//!    manual counters and sequentially (`--compare`). Also counts heap
//!    allocations per frame, and the cost of frames whose shape is new.
//! 2. speedup: 4096 jobs of 20-80 us (50 us on average) with up to 4
//!    dependencies; sequential time over graph time.
//! 3. shapes: wide, deep and random graphs (new every frame, with resource
//!    reads and writes); every job checks that all the jobs it must follow,
//!    computed here independently of the scheduler, have finished.
//! 4. back-pressure: fences signalled by a simulated GPU 1 ms per frame behind;
//!    frames in flight stay bounded and retire work runs once, in order, after its fence.
//! 5. faults: injected errors, panics and cancellations; the reported failures
//!    and skips must match what the graph implies, and the next frame is clean.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use forgeflow::graph::{
    FailureKind, FrameError, FrameSummary, JobError, JobKey, ResourceKey, Scheduler,
    SchedulerConfig,
};
use forgeflow_tools::synthetic::{
    busy_work, calibrate, run_sequential, DagSpec, RayonScopeRunner, SplitMix64,
};

use crate::alloc;
use crate::cli::Options;
use crate::report::{Integrity, Progress, ScenarioReport};

pub fn run(opts: &Options, progress: &mut Progress) -> Result<ScenarioReport, String> {
    let mut report = ScenarioReport::default();
    let mut sched = Scheduler::new(SchedulerConfig {
        threads: Some(opts.threads),
        auto_signal_fences: true,
        // The pool's overhead and speedup are what this measures: no frame inline.
        inline_below: Duration::ZERO,
        ..SchedulerConfig::default()
    })
    .map_err(|e| e.to_string())?;
    let resources: Vec<ResourceKey> = (0..8)
        .map(|_| sched.register_resource("synthetic"))
        .collect();

    overhead(opts, &mut sched, &mut report, progress);
    speedup(opts, &mut sched, &mut report, progress);
    let started = Instant::now();
    loop {
        shapes(opts, &mut sched, &resources, &mut report, progress);
        back_pressure(opts, &mut report, progress)?;
        faults(opts, &mut sched, &mut report, progress);
        match opts.duration {
            Some(d) if started.elapsed() < d => continue,
            _ => break,
        }
    }
    let totals = sched.stats();
    report.metric("graphs_planned", totals.graphs_planned as f64);
    report.metric("graphs_reused", totals.graphs_reused as f64);
    Ok(report)
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Declares `spec` as a frame of jobs running `work(j)` and runs it.
fn run_spec<'a, W>(
    sched: &'a mut Scheduler,
    spec: &'a DagSpec,
    keys: &mut Vec<JobKey>,
    name: &'static str,
    work: &'a W,
) -> Result<FrameSummary, String>
where
    W: Fn(usize) -> Result<(), JobError> + Sync,
{
    let mut frame = sched.begin_frame().map_err(|e| e.to_string())?;
    keys.clear();
    for (j, preds) in spec.preds.iter().enumerate() {
        let key = frame
            .job(name)
            .after_all(preds.iter().map(|&p| keys[p as usize]))
            .spawn(move |_| work(j))
            .map_err(|e| e.to_string())?;
        keys.push(key);
    }
    frame.run().map_err(|e| e.to_string())
}

fn overhead(
    opts: &Options,
    sched: &mut Scheduler,
    report: &mut ScenarioReport,
    progress: &mut Progress,
) {
    const JOBS: usize = 1000;
    let spec = DagSpec::random(JOBS, 4, 64, 0..1, opts.seed);
    let empty = |_j: usize| Ok(());
    let mut keys = Vec::with_capacity(JOBS);
    let runner = RayonScopeRunner::new(&spec);
    let pool = Arc::clone(sched.pool());
    let mut integrity = Integrity::default();

    for _ in 0..64 {
        integrity.check(run_spec(sched, &spec, &mut keys, "empty", &empty).is_ok());
        runner.run(&pool, &|_| {});
    }
    let rounds = 10u64;
    let per_round = (opts.frames / rounds).max(1);
    let (mut ours, mut theirs, mut seq) = (Vec::new(), Vec::new(), Vec::new());
    let mut allocations = 0u64;
    // Frame by frame, forgeflow then (with --compare) rayon::scope and the
    // sequential loop, so that both see the same machine state.
    for round in 0..rounds {
        progress.update("graph: overhead", round as f64 / rounds as f64);
        for _ in 0..per_round {
            let ((ns, ok), allocs) = alloc::count(|| {
                let t = Instant::now();
                let ok = run_spec(sched, &spec, &mut keys, "empty", &empty).is_ok();
                (t.elapsed().as_nanos() as f64, ok)
            });
            allocations += allocs;
            ours.push(ns / JOBS as f64);
            integrity.check(ok);
            if opts.compare {
                let t = Instant::now();
                runner.run(&pool, &|_| {});
                theirs.push(t.elapsed().as_nanos() as f64 / JOBS as f64);
                let t = Instant::now();
                run_sequential(&spec, &|j| {
                    std::hint::black_box(j);
                });
                seq.push(t.elapsed().as_nanos() as f64 / JOBS as f64);
            }
        }
    }
    let measured = rounds * per_round;
    let mean = ours.iter().sum::<f64>() / ours.len() as f64;
    let ours_median = median(&mut ours);
    report.metric("overhead_ns_per_job", ours_median);
    report.metric("overhead_ns_per_job_mean", mean);
    report.metric("jobs_per_s", 1e9 / ours_median);
    report.metric(
        "allocations_per_frame",
        allocations as f64 / measured as f64,
    );

    // The same frames driven from a thread of the pool (no hand-off into rayon's injector).
    let in_pool_frames = (opts.frames / 4).max(10);
    let (ok, in_pool) = pool.install(|| {
        for _ in 0..8 {
            let _ = run_spec(sched, &spec, &mut keys, "empty", &empty);
        }
        alloc::count(|| {
            (0..in_pool_frames).all(|_| run_spec(sched, &spec, &mut keys, "empty", &empty).is_ok())
        })
    });
    integrity.check(ok);
    report.metric(
        "allocations_per_frame_in_pool",
        in_pool as f64 / in_pool_frames as f64,
    );
    report.target(
        "allocations_per_frame_in_pool",
        "0 (frames driven from a pool thread)",
        in_pool == 0,
    );
    report.target(
        "allocations_per_frame",
        "0 (a render thread outside the pool also pays rayon's injector: one 1.5 KiB block per 63 frames)",
        allocations == 0,
    );

    // Frames whose shape is new every time: planning included.
    let fresh: Vec<DagSpec> = (0..40)
        .map(|i| DagSpec::random(JOBS, 4, 64, 0..1, opts.seed ^ (0xABCD + i)))
        .collect();
    let mut planned = Vec::new();
    for spec in &fresh {
        let t = Instant::now();
        integrity.check(run_spec(sched, spec, &mut keys, "empty", &empty).is_ok());
        planned.push(t.elapsed().as_nanos() as f64 / JOBS as f64);
    }
    report.metric("overhead_ns_per_job_new_shape", median(&mut planned));

    if opts.compare {
        let theirs_median = median(&mut theirs);
        report.compare("rayon_scope", "overhead_ns_per_job", theirs_median);
        report.compare("sequential", "overhead_ns_per_job", median(&mut seq));
        let ratio = ours_median / theirs_median;
        report.ratio("overhead_vs_rayon_scope", ratio);
        // The performance issue's target: a scheduler that earns its keep
        // costs well under rayon::scope's per job, not merely as much.
        report.target("overhead_vs_rayon_scope", "<= 0.6", ratio <= 0.6);
    }
    report.frames += measured + 64 + in_pool_frames + 8 + fresh.len() as u64;
    report.integrity.add(integrity);
}

/// The job body of the measured phases: check that every job this one must
/// follow has finished in this frame, do the work, mark this one finished.
struct Checked<'a> {
    preds: &'a [Vec<u32>],
    done: Vec<AtomicU64>,
    checks: AtomicU64,
    failures: AtomicU64,
    costs: &'a [u32],
}

impl<'a> Checked<'a> {
    fn new(preds: &'a [Vec<u32>], costs: &'a [u32]) -> Self {
        Checked {
            preds,
            done: (0..preds.len()).map(|_| AtomicU64::new(0)).collect(),
            checks: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            costs,
        }
    }

    fn job(&self, j: usize, stamp: u64) {
        let mut bad = 0;
        for &p in &self.preds[j] {
            if self.done[p as usize].load(Ordering::Acquire) != stamp {
                bad += 1;
            }
        }
        std::hint::black_box(busy_work(self.costs[j], j as u64));
        self.checks
            .fetch_add(self.preds[j].len() as u64 + 1, Ordering::Relaxed);
        if bad > 0 {
            self.failures.fetch_add(bad, Ordering::Relaxed);
        }
        // Each job runs once per frame: finding its mark already set means it ran twice.
        if self.done[j].swap(stamp, Ordering::AcqRel) == stamp {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn take(&self) -> Integrity {
        Integrity {
            checks: self.checks.swap(0, Ordering::Relaxed),
            failures: self.failures.swap(0, Ordering::Relaxed),
        }
    }
}

fn speedup(
    opts: &Options,
    sched: &mut Scheduler,
    report: &mut ScenarioReport,
    progress: &mut Progress,
) {
    const JOBS: usize = 4096;
    let per_us = calibrate();
    let lo = (20.0 * per_us) as u32;
    let hi = (80.0 * per_us) as u32;
    let spec = DagSpec::random(
        JOBS,
        4,
        256,
        lo.max(1)..hi.max(2),
        opts.seed.wrapping_add(1),
    );
    let checked = Checked::new(&spec.preds, &spec.costs);
    let runner = RayonScopeRunner::new(&spec);
    let pool = Arc::clone(sched.pool());
    let mut keys = Vec::with_capacity(JOBS);
    let reps = (opts.frames / 400).clamp(3, 25);
    let (mut ours, mut theirs, mut seq) = (Vec::new(), Vec::new(), Vec::new());
    let mut stamp = 0u64;
    let mut integrity = Integrity::default();
    for rep in 0..=reps {
        progress.update("graph: speedup", rep as f64 / reps as f64);
        stamp += 1;
        let s = stamp;
        let t = Instant::now();
        run_sequential(&spec, &|j| checked.job(j, s));
        let seq_t = t.elapsed().as_secs_f64();
        stamp += 1;
        let s = stamp;
        let t = Instant::now();
        let ok = run_spec(sched, &spec, &mut keys, "busy", &|j| {
            checked.job(j, s);
            Ok(())
        })
        .is_ok();
        let ours_t = t.elapsed().as_secs_f64();
        integrity.check(ok);
        let theirs_t = if opts.compare {
            stamp += 1;
            let s = stamp;
            let t = Instant::now();
            runner.run(&pool, &|j| checked.job(j, s));
            t.elapsed().as_secs_f64()
        } else {
            f64::NAN
        };
        if rep > 0 {
            // The first repetition warms caches and the graph cache.
            seq.push(seq_t);
            ours.push(ours_t);
            theirs.push(theirs_t);
        }
    }
    integrity.add(checked.take());
    let seq_m = median(&mut seq);
    let ours_m = median(&mut ours);
    let speedup = seq_m / ours_m;
    report.metric("speedup", speedup);
    report.metric("speedup_graph_ms", ours_m * 1e3);
    report.metric("speedup_sequential_ms", seq_m * 1e3);
    report.metric("busy_work_units_per_us", per_us);
    let threads = opts.threads;
    let target = match threads {
        2 => Some(1.8),
        16 => Some(12.0),
        _ => None,
    };
    match target {
        Some(t) => report.target(
            "speedup",
            format!(">= {t} on {threads} threads"),
            speedup >= t,
        ),
        None => report.notes.push(format!(
            "the issue sets speedup targets for 2 and 16 threads; this run used {threads}"
        )),
    }
    if opts.compare {
        let theirs_m = median(&mut theirs);
        report.compare("rayon_scope", "speedup", seq_m / theirs_m);
        report.compare("sequential", "time_ms", seq_m * 1e3);
        let ratio = speedup / (seq_m / theirs_m);
        report.ratio("speedup_vs_rayon_scope", ratio);
        report.target(
            "speedup_vs_rayon_scope",
            ">= 1.0 (cores rayon::scope keeps busy, kept busy too)",
            ratio >= 1.0,
        );
    }
    report.frames += reps + 1;
    report.integrity.add(integrity);
}

/// What each job must wait for, derived here from explicit dependencies and
/// resource accesses, independently of the scheduler's planner.
fn required_preds(
    deps: &[Vec<u32>],
    accesses: &[Vec<(usize, bool)>],
    resources: usize,
) -> Vec<Vec<u32>> {
    let mut last_writer: Vec<Option<u32>> = vec![None; resources];
    let mut readers: Vec<Vec<u32>> = vec![Vec::new(); resources];
    let mut out = Vec::with_capacity(deps.len());
    for (j, acc) in accesses.iter().enumerate() {
        let j = j as u32;
        let mut p = deps[j as usize].clone();
        for &(r, write) in acc {
            let writes = write || acc.iter().any(|&(r2, w2)| r2 == r && w2);
            if !write && writes {
                continue;
            }
            if let Some(w) = last_writer[r] {
                if w != j {
                    p.push(w);
                }
            }
            if writes {
                p.extend(readers[r].iter().copied().filter(|&x| x != j));
                readers[r].clear();
                last_writer[r] = Some(j);
            } else {
                readers[r].push(j);
            }
        }
        p.sort_unstable();
        p.dedup();
        out.push(p);
    }
    out
}

fn shapes(
    opts: &Options,
    sched: &mut Scheduler,
    resources: &[ResourceKey],
    report: &mut ScenarioReport,
    progress: &mut Progress,
) {
    let frames = (opts.frames / 10).max(20);
    let mut keys = Vec::new();
    let mut integrity = Integrity::default();
    let mut rng = SplitMix64::new(opts.seed.wrapping_add(2));
    let wide = DagSpec::wide(2048, 1);
    let deep = DagSpec::deep(64, 32, 1, opts.seed);
    let mut stamp = 1u64 << 40;
    for (name, spec) in [("wide", &wide), ("deep", &deep)] {
        let checked = Checked::new(&spec.preds, &spec.costs);
        for f in 0..frames {
            progress.update(&format!("graph: {name} DAG"), f as f64 / frames as f64);
            stamp += 1;
            let s = stamp;
            let ok = run_spec(sched, spec, &mut keys, name, &|j| {
                checked.job(j, s);
                Ok(())
            });
            integrity.check(ok.is_ok_and(|s| s.jobs_completed as usize == spec.len()));
        }
        integrity.add(checked.take());
    }
    // Random graphs, a new shape every frame, with resource reads and writes.
    for f in 0..frames {
        progress.update("graph: random DAGs", f as f64 / frames as f64);
        let n = 50 + rng.below(1500) as usize;
        let spec = DagSpec::random(n, 3, 48, 0..3, rng.next_u64());
        let accesses: Vec<Vec<(usize, bool)>> = (0..n)
            .map(|_| {
                (0..rng.below(3))
                    .map(|_| {
                        (
                            rng.below(resources.len() as u64) as usize,
                            rng.below(3) == 0,
                        )
                    })
                    .collect()
            })
            .collect();
        let required = required_preds(&spec.preds, &accesses, resources.len());
        let checked = Checked::new(&required, &spec.costs);
        stamp += 1;
        let s = stamp;
        let mut frame = match sched.begin_frame() {
            Ok(f) => f,
            Err(_) => {
                integrity.check(false);
                continue;
            }
        };
        keys.clear();
        let mut declared = true;
        for (j, (preds, job_accesses)) in spec.preds.iter().zip(&accesses).enumerate() {
            let mut b = frame
                .job("random")
                .after_all(preds.iter().map(|&p| keys[p as usize]));
            for &(r, write) in job_accesses {
                b = if write {
                    b.writes(resources[r])
                } else {
                    b.reads(resources[r])
                };
            }
            let checked = &checked;
            match b.spawn(move |_| {
                checked.job(j, s);
                Ok(())
            }) {
                Ok(k) => keys.push(k),
                Err(_) => {
                    declared = false;
                    break;
                }
            }
        }
        integrity.check(declared);
        integrity.check(frame.run().is_ok_and(|s| s.jobs_completed as usize == n));
        integrity.add(checked.take());
    }
    report.frames += 3 * frames;
    report.integrity.add(integrity);
}

fn back_pressure(
    opts: &Options,
    report: &mut ScenarioReport,
    progress: &mut Progress,
) -> Result<(), String> {
    const IN_FLIGHT: u32 = 3;
    let mut sched = Scheduler::new(SchedulerConfig {
        threads: Some(opts.threads),
        frames_in_flight: IN_FLIGHT,
        fence_timeout: Duration::from_secs(10),
        ..SchedulerConfig::default()
    })
    .map_err(|e| e.to_string())?;
    let frames = (opts.frames / 20).max(20);
    let spec = DagSpec::random(200, 3, 32, 0..2, opts.seed.wrapping_add(3));
    let mut keys = Vec::new();
    let mut integrity = Integrity::default();
    // The "GPU": completes frames in order, 1 ms each.
    let (tx, rx) = crossbeam_channel::unbounded::<forgeflow::graph::FrameFence>();
    let gpu = std::thread::spawn(move || {
        for fence in rx {
            std::thread::sleep(Duration::from_millis(1));
            fence.signal();
        }
    });
    let retired = Arc::new(Mutex::new(Vec::new()));
    let mut max_in_flight = 0;
    for f in 0..frames {
        progress.update("graph: fence back-pressure", f as f64 / frames as f64);
        let mut frame = sched.begin_frame().map_err(|e| e.to_string())?;
        let fence = frame.fence();
        let (log, own, index) = (Arc::clone(&retired), fence.clone(), frame.index().get());
        frame.on_retire(move || {
            log.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((index, own.is_signalled()))
        });
        keys.clear();
        for preds in &spec.preds {
            match frame
                .job("gpu-bound")
                .after_all(preds.iter().map(|&p| keys[p as usize]))
                .spawn(|_| Ok(()))
            {
                Ok(k) => keys.push(k),
                Err(e) => return Err(e.to_string()),
            }
        }
        integrity.check(frame.run().is_ok());
        max_in_flight = max_in_flight.max(sched.frames_in_flight());
        integrity.check(sched.frames_in_flight() <= IN_FLIGHT as u64);
        let _ = tx.send(fence);
    }
    drop(tx);
    gpu.join()
        .map_err(|_| "the simulated GPU thread panicked".to_string())?;
    sched
        .wait_idle(Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    let log = retired.lock().unwrap_or_else(|p| p.into_inner()).clone();
    integrity.check(log.len() as u64 == frames);
    for (i, &(frame, signalled)) in log.iter().enumerate() {
        integrity.check(frame == i as u64 && signalled);
    }
    let stats = sched.stats();
    report.metric("fence_waits", stats.fence_waits as f64);
    report.metric(
        "fence_wait_ms_total",
        stats.fence_wait_total.as_secs_f64() * 1e3,
    );
    report.metric("frames_in_flight_max", max_in_flight as f64);
    report.frames += frames;
    report.integrity.add(integrity);
    Ok(())
}

fn faults(
    opts: &Options,
    sched: &mut Scheduler,
    report: &mut ScenarioReport,
    progress: &mut Progress,
) {
    #[derive(Clone, Copy, PartialEq, Debug)]
    enum Plan {
        Ok,
        Fail,
        Panic,
        Cancel,
    }
    // Injected panics are expected: keep them off stderr, let any other through.
    let default_hook = Arc::new(std::panic::take_hook());
    let hook = Arc::clone(&default_hook);
    std::panic::set_hook(Box::new(move |info| {
        let injected = info
            .payload()
            .downcast_ref::<&str>()
            .is_some_and(|s| s.starts_with("injected"));
        if !injected {
            hook(info)
        }
    }));
    let frames = (opts.frames / 50).max(10);
    let mut rng = SplitMix64::new(opts.seed.wrapping_add(4));
    let mut integrity = Integrity::default();
    let mut keys: Vec<JobKey> = Vec::new();
    for f in 0..frames {
        progress.update("graph: injected faults", f as f64 / frames as f64);
        let spec = DagSpec::random(300, 3, 40, 0..1, rng.next_u64());
        let plan: Vec<Plan> = (0..spec.len())
            .map(|_| match rng.below(60) {
                0 => Plan::Fail,
                1 => Plan::Panic,
                2 => Plan::Cancel,
                _ => Plan::Ok,
            })
            .collect();
        // Expected: cancelled as planned; skipped if any predecessor did not complete.
        let mut completes = vec![false; spec.len()];
        let (mut want_failed, mut want_skipped, mut want_cancelled) = (0u32, 0u32, 0u32);
        for j in 0..spec.len() {
            if plan[j] == Plan::Cancel {
                want_cancelled += 1;
            } else if spec.preds[j].iter().any(|&p| !completes[p as usize]) {
                want_skipped += 1;
            } else if matches!(plan[j], Plan::Fail | Plan::Panic) {
                want_failed += 1;
            } else {
                completes[j] = true;
            }
        }
        let Ok(mut frame) = sched.begin_frame() else {
            integrity.check(false);
            continue;
        };
        keys.clear();
        for (j, preds) in spec.preds.iter().enumerate() {
            let p = plan[j];
            let key = frame
                .job("faulty")
                .after_all(preds.iter().map(|&q| keys[q as usize]))
                .spawn(move |_| match p {
                    Plan::Fail => Err(JobError::msg("injected error")),
                    Plan::Panic => panic!("injected panic"),
                    _ => Ok(()),
                });
            match key {
                Ok(k) => keys.push(k),
                Err(_) => break,
            }
        }
        for j in 0..spec.len() {
            if plan[j] == Plan::Cancel {
                integrity.check(frame.cancel(keys[j]).unwrap_or(false));
            }
        }
        let (summary, failures) = match frame.run() {
            Ok(s) => (s, Vec::new()),
            Err(FrameError { summary, failures }) => (summary, failures),
        };
        integrity.check(summary.jobs_failed == want_failed);
        integrity.check(summary.jobs_skipped == want_skipped);
        integrity.check(summary.jobs_cancelled == want_cancelled);
        integrity.check(failures.len() as u32 == want_failed);
        for fl in &failures {
            let j = keys.iter().position(|&k| k == fl.job);
            let kind_ok = match j.map(|j| plan[j]) {
                Some(Plan::Fail) => fl.kind == FailureKind::Error && fl.message == "injected error",
                Some(Plan::Panic) => {
                    fl.kind == FailureKind::Panic && fl.message == "injected panic"
                }
                _ => false,
            };
            integrity.check(kind_ok && fl.name == "faulty");
        }
        // The next frame is clean.
        let clean = run_spec(sched, &spec, &mut keys, "after-faults", &|_| Ok(()));
        integrity.check(clean.is_ok_and(|s| s.jobs_completed as usize == spec.len()));
    }
    let _ = std::panic::take_hook();
    if let Ok(hook) = Arc::try_unwrap(default_hook) {
        std::panic::set_hook(hook);
    }
    report.frames += 2 * frames;
    report.integrity.add(integrity);
}
