//! Property tests over random DAGs: every job runs once and after all its
//! dependencies (explicit and derived from resource accesses); failures,
//! panics and cancellations skip exactly the dependent jobs.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use forgeflow_graph::{FailureKind, JobError, JobKey, ResourceKey, Scheduler, SchedulerConfig};
use proptest::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Behaviour {
    Ok,
    Fail,
    Panic,
    Cancelled,
}

#[derive(Debug, Clone)]
struct JobSpec {
    deps: Vec<usize>,
    reads: Vec<usize>,
    writes: Vec<usize>,
    behaviour: Behaviour,
    spin: u32,
}

fn dag(max_jobs: usize, resources: usize, faults: bool) -> impl Strategy<Value = Vec<JobSpec>> {
    (1..=max_jobs).prop_flat_map(move |n| {
        let jobs: Vec<_> = (0..n)
            .map(|i| {
                let deps = if i == 0 {
                    Just(Vec::new()).boxed()
                } else {
                    prop::collection::vec(0..i, 0..4).boxed()
                };
                let behaviour = if faults {
                    prop_oneof![
                        12 => Just(Behaviour::Ok),
                        1 => Just(Behaviour::Fail),
                        1 => Just(Behaviour::Panic),
                        1 => Just(Behaviour::Cancelled),
                    ]
                    .boxed()
                } else {
                    Just(Behaviour::Ok).boxed()
                };
                (
                    deps,
                    prop::collection::vec(0..resources, 0..3),
                    prop::collection::vec(0..resources, 0..2),
                    behaviour,
                    0..200u32,
                )
                    .prop_map(|(deps, reads, writes, behaviour, spin)| JobSpec {
                        deps,
                        reads,
                        writes,
                        behaviour,
                        spin,
                    })
            })
            .collect();
        jobs
    })
}

/// The order every job must respect, derived independently of the scheduler:
/// explicit deps, plus for each resource in declaration order a reader after
/// the last writer and a writer after the last writer and all readers since.
fn required_preds(specs: &[JobSpec]) -> Vec<HashSet<usize>> {
    let mut preds = vec![HashSet::new(); specs.len()];
    let mut last_writer: Vec<Option<usize>> = vec![None; 16];
    let mut readers: Vec<Vec<usize>> = vec![Vec::new(); 16];
    for (j, s) in specs.iter().enumerate() {
        preds[j].extend(s.deps.iter().copied());
        for &r in &s.reads {
            if s.writes.contains(&r) {
                continue;
            }
            if let Some(w) = last_writer[r] {
                preds[j].insert(w);
            }
            readers[r].push(j);
        }
        for &r in &s.writes {
            if let Some(w) = last_writer[r] {
                if w != j {
                    preds[j].insert(w);
                }
            }
            preds[j].extend(readers[r].iter().copied().filter(|&x| x != j));
            readers[r].clear();
            last_writer[r] = Some(j);
        }
    }
    preds
}

#[derive(Default)]
struct Record {
    start: AtomicU64,
    end: AtomicU64,
    runs: AtomicU64,
}

fn run_frame(
    sched: &mut Scheduler,
    res: &[ResourceKey],
    specs: &[JobSpec],
) -> (
    Vec<Arc<Record>>,
    Result<forgeflow_graph::FrameSummary, forgeflow_graph::FrameError>,
    Vec<JobKey>,
) {
    let clock = Arc::new(AtomicU64::new(1));
    let records: Vec<Arc<Record>> = specs.iter().map(|_| Arc::new(Record::default())).collect();
    let mut frame = sched.begin_frame().unwrap();
    let mut keys: Vec<JobKey> = Vec::new();
    for (j, s) in specs.iter().enumerate() {
        let mut b = frame.job("job").after_all(s.deps.iter().map(|&d| keys[d]));
        for &r in &s.reads {
            b = b.reads(res[r]);
        }
        for &r in &s.writes {
            b = b.writes(res[r]);
        }
        let rec = Arc::clone(&records[j]);
        let clock = Arc::clone(&clock);
        let (behaviour, spin) = (s.behaviour, s.spin);
        let key = b
            .spawn(move |_ctx| {
                rec.start
                    .store(clock.fetch_add(1, Ordering::SeqCst), Ordering::SeqCst);
                rec.runs.fetch_add(1, Ordering::SeqCst);
                for _ in 0..spin {
                    std::hint::spin_loop();
                }
                rec.end
                    .store(clock.fetch_add(1, Ordering::SeqCst), Ordering::SeqCst);
                match behaviour {
                    Behaviour::Fail => Err(JobError::msg(format!("job {j} failed on purpose"))),
                    Behaviour::Panic => panic!("job {j} panicked on purpose"),
                    _ => Ok(()),
                }
            })
            .unwrap();
        keys.push(key);
    }
    for (j, s) in specs.iter().enumerate() {
        if s.behaviour == Behaviour::Cancelled {
            assert!(frame.cancel(keys[j]).unwrap());
        }
    }
    let result = frame.run();
    (records, result, keys)
}

fn scheduler(threads: usize) -> (Scheduler, Vec<ResourceKey>) {
    scheduler_inline(threads, SchedulerConfig::default().inline_below)
}

/// A scheduler whose frames run inline when expected to take less than
/// `inline_below` (zero: always on the pool; an hour: inline once every job
/// name has been seen).
fn scheduler_inline(threads: usize, inline_below: Duration) -> (Scheduler, Vec<ResourceKey>) {
    let mut sched = Scheduler::new(SchedulerConfig {
        threads: Some(threads),
        auto_signal_fences: true,
        inline_below,
        ..SchedulerConfig::default()
    })
    .unwrap();
    let res = (0..8).map(|_| sched.register_resource("res")).collect();
    (sched, res)
}

/// `inline_below` for a test that runs its frames inline (true) or on the pool.
fn inline_below(inline: bool) -> Duration {
    if inline {
        Duration::from_secs(3600)
    } else {
        Duration::ZERO
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn every_job_runs_once_after_its_dependencies(specs in dag(120, 6, false), threads in 1usize..5, inline in any::<bool>()) {
        let (mut sched, res) = scheduler_inline(threads, inline_below(inline));
        let preds = required_preds(&specs);
        // Twice: the second frame reuses the planned graph, and runs inline
        // if asked (the first cannot: its job name was never seen).
        for round in 0..2 {
            let (records, result, _) = run_frame(&mut sched, &res, &specs);
            let summary = result.unwrap();
            prop_assert_eq!(summary.graph_reused, round == 1);
            prop_assert_eq!(sched.last_frame_stats().ran_inline, inline && round == 1);
            prop_assert_eq!(summary.jobs_completed as usize, specs.len());
            for (j, rec) in records.iter().enumerate() {
                prop_assert_eq!(rec.runs.load(Ordering::SeqCst), 1, "job {} ran {} times", j, rec.runs.load(Ordering::SeqCst));
                for &p in &preds[j] {
                    prop_assert!(
                        records[p].end.load(Ordering::SeqCst) < rec.start.load(Ordering::SeqCst),
                        "job {} started before its predecessor {} ended", j, p
                    );
                }
            }
        }
    }

    #[test]
    fn failures_skip_exactly_the_dependents(specs in dag(80, 4, true), threads in 1usize..4, inline in any::<bool>()) {
        let (mut sched, res) = scheduler_inline(threads, inline_below(inline));
        let preds = required_preds(&specs);
        if inline {
            // A frame of the same names first, so that the failing one runs inline.
            let warm = vec![JobSpec { deps: vec![], reads: vec![], writes: vec![], behaviour: Behaviour::Ok, spin: 0 }];
            run_frame(&mut sched, &res, &warm).1.unwrap();
        }
        // Expected outcome per job, computed in declaration order (predecessors come first).
        #[derive(Debug, PartialEq, Clone, Copy)]
        enum Want { Completed, Failed, Skipped, Cancelled }
        let mut want = Vec::with_capacity(specs.len());
        for (j, s) in specs.iter().enumerate() {
            let w = if s.behaviour == Behaviour::Cancelled {
                Want::Cancelled
            } else if preds[j].iter().any(|&p| want[p] != Want::Completed) {
                Want::Skipped
            } else if matches!(s.behaviour, Behaviour::Fail | Behaviour::Panic) {
                Want::Failed
            } else {
                Want::Completed
            };
            want.push(w);
        }
        let (records, result, keys) = run_frame(&mut sched, &res, &specs);
        prop_assert_eq!(sched.last_frame_stats().ran_inline, inline);
        let count = |w: Want| want.iter().filter(|&&x| x == w).count() as u32;
        let (summary, failures) = match result {
            Ok(s) => (s, Vec::new()),
            Err(e) => (e.summary, e.failures),
        };
        prop_assert_eq!(summary.jobs_completed, count(Want::Completed));
        prop_assert_eq!(summary.jobs_failed, count(Want::Failed));
        prop_assert_eq!(summary.jobs_skipped, count(Want::Skipped));
        prop_assert_eq!(summary.jobs_cancelled, count(Want::Cancelled));
        prop_assert_eq!(failures.len() as u32, count(Want::Failed));
        for f in &failures {
            let j = keys.iter().position(|&k| k == f.job).expect("failure names a job of the frame");
            prop_assert_eq!(want[j], Want::Failed);
            prop_assert_eq!(f.name, "job");
            let expected_kind = if specs[j].behaviour == Behaviour::Panic { FailureKind::Panic } else { FailureKind::Error };
            prop_assert_eq!(f.kind, expected_kind);
            prop_assert!(f.message.contains(&format!("job {j} ")), "message {:?}", f.message);
        }
        for (j, rec) in records.iter().enumerate() {
            let ran = rec.runs.load(Ordering::SeqCst);
            let should_run = matches!(want[j], Want::Completed | Want::Failed);
            prop_assert_eq!(ran, should_run as u64, "job {} ({:?}) ran {} times", j, want[j], ran);
        }
        // The next frame works normally.
        let ok: Vec<JobSpec> = specs.iter().cloned().map(|mut s| { s.behaviour = Behaviour::Ok; s }).collect();
        let (_, result, _) = run_frame(&mut sched, &res, &ok);
        prop_assert_eq!(result.unwrap().jobs_completed as usize, ok.len());
    }
}

#[test]
fn deep_chains_and_wide_fans_run_in_bounded_stack() {
    // 20,000 levels of width 2 (a fan-out at every level) must not overflow a
    // worker's stack: nesting beyond the limit goes through the overflow queue.
    let (mut sched, _) = scheduler(2);
    let counter = AtomicU64::new(0);
    let mut frame = sched.begin_frame().unwrap();
    let mut prev = frame.add("root", |_| Ok(())).unwrap();
    for _ in 0..20_000 {
        let a = frame
            .job("a")
            .after(prev)
            .spawn(|_| {
                counter.fetch_add(1, Ordering::Relaxed);
                Ok(())
            })
            .unwrap();
        let b = frame
            .job("b")
            .after(prev)
            .spawn(|_| {
                counter.fetch_add(1, Ordering::Relaxed);
                Ok(())
            })
            .unwrap();
        prev = frame
            .job("join")
            .after(a)
            .after(b)
            .spawn(|_| Ok(()))
            .unwrap();
    }
    let summary = frame.run().unwrap();
    assert_eq!(summary.jobs_completed, 1 + 3 * 20_000);
    assert_eq!(counter.load(Ordering::Relaxed), 40_000);
    assert_eq!(sched.last_frame_stats().graph_depth, 1 + 2 * 20_000);
}

#[test]
fn cancel_from_a_running_job_skips_dependents() {
    let (mut sched, _) = scheduler(2);
    let ran = AtomicU64::new(0);
    let mut frame = sched.begin_frame().unwrap();
    // The victim's key is known only after it is declared, and it must wait for
    // the canceller: hand the key over through a mutex.
    let victim_slot = std::sync::Mutex::new(None::<JobKey>);
    let canceller = frame
        .add("canceller", |ctx| {
            let key = victim_slot.lock().unwrap().expect("victim declared");
            if !ctx.cancel(key)? {
                return Err(JobError::msg("victim was not pending"));
            }
            if ctx.cancel(key)? {
                return Err(JobError::msg("a second cancel must report false"));
            }
            if ctx.cancel(ctx.key())? {
                return Err(JobError::msg("a running job cannot be cancelled"));
            }
            Ok(())
        })
        .unwrap();
    let victim = frame
        .job("victim")
        .after(canceller)
        .spawn(|_| {
            ran.fetch_add(1000, Ordering::SeqCst);
            Ok(())
        })
        .unwrap();
    *victim_slot.lock().unwrap() = Some(victim);
    frame
        .job("victim-child")
        .after(victim)
        .spawn(|_| {
            ran.fetch_add(10_000, Ordering::SeqCst);
            Ok(())
        })
        .unwrap();
    let independent = AtomicU64::new(0);
    frame
        .add("independent", |_| {
            independent.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
        .unwrap();
    let summary = frame.run().unwrap();
    assert_eq!(summary.jobs_cancelled, 1);
    assert_eq!(summary.jobs_skipped, 1);
    assert_eq!(summary.jobs_completed, 2);
    assert!(
        ran.load(Ordering::SeqCst) < 1000,
        "neither victim nor its child ran"
    );
    assert_eq!(independent.load(Ordering::SeqCst), 1);
}

/// The thread a one-job frame named `name` (of `weight`) runs its job on.
fn thread_of_job(sched: &mut Scheduler, name: &'static str, weight: u32) -> Option<String> {
    let seen = std::sync::Mutex::new(None);
    let mut frame = sched.begin_frame().unwrap();
    frame
        .job(name)
        .weight(weight)
        .spawn(|_| {
            *seen.lock().unwrap() = std::thread::current().name().map(str::to_owned);
            Ok(())
        })
        .unwrap();
    frame.run().unwrap();
    seen.into_inner().unwrap()
}

#[test]
fn a_cheap_frame_of_known_jobs_runs_on_the_calling_thread() {
    let here = std::thread::current().name().map(str::to_owned);
    let (mut sched, _) = scheduler(2);
    // Never seen: the pool.
    let first = thread_of_job(&mut sched, "probe", 1);
    assert!(
        first
            .as_deref()
            .is_some_and(|n| n.starts_with("forgeflow-worker")),
        "an unseen job name runs on the pool, ran on {first:?}"
    );
    assert!(!sched.last_frame_stats().ran_inline);
    // Seen and cheap: here, without waking a worker.
    assert_eq!(thread_of_job(&mut sched, "probe", 1), here);
    assert!(sched.last_frame_stats().ran_inline);
    assert_eq!(sched.stats().frames_inline, 1);
    // A new name in the frame: the pool again.
    let other = thread_of_job(&mut sched, "another", 1);
    assert!(other
        .as_deref()
        .is_some_and(|n| n.starts_with("forgeflow-worker")));

    // Zero turns it off.
    let (mut sched, _) = scheduler_inline(2, Duration::ZERO);
    for _ in 0..3 {
        let t = thread_of_job(&mut sched, "probe", 1);
        assert!(t
            .as_deref()
            .is_some_and(|n| n.starts_with("forgeflow-worker")));
    }
    assert_eq!(sched.stats().frames_inline, 0);
}

#[test]
fn weights_scale_the_expected_work() {
    // One job of weight 1 takes at least 2 ms (a sleep never returns
    // early); 1000 units of it are expected to take at least 2 s, above the
    // 1 s floor: the pool, however fast or slow the machine. Weight 1 runs
    // inline unless the sleep took a whole second.
    let (mut sched, _) = scheduler_inline(2, Duration::from_secs(1));
    let mut frame = sched.begin_frame().unwrap();
    frame
        .job("sleepy")
        .weight(1)
        .spawn(|_| {
            std::thread::sleep(Duration::from_millis(2));
            Ok(())
        })
        .unwrap();
    frame.run().unwrap();
    let stats = &sched.last_frame_stats().by_name;
    assert_eq!((stats[0].count, stats[0].weight), (1, 1));
    // Weight 1: about 2 ms expected, under the floor: inline.
    thread_of_job(&mut sched, "sleepy", 1);
    assert!(sched.last_frame_stats().ran_inline);
    // Weight 1000: two seconds at least expected: the pool.
    thread_of_job(&mut sched, "sleepy", 1000);
    assert!(!sched.last_frame_stats().ran_inline);
    assert_eq!(sched.last_frame_stats().by_name[0].weight, 1000);
}
