//! Frames in flight, fences, retire lists, stale keys, leaked frames.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use forgeflow_graph::{FrameIndex, GraphError, Scheduler, SchedulerConfig};

fn sched(frames_in_flight: u32) -> Scheduler {
    Scheduler::new(SchedulerConfig {
        frames_in_flight,
        threads: Some(2),
        fence_timeout: Duration::from_millis(200),
        ..SchedulerConfig::default()
    })
    .unwrap()
}

#[test]
fn begin_frame_waits_only_for_the_oldest_fence() {
    let mut s = sched(3);
    let mut fences = Vec::new();
    for _ in 0..3 {
        let f = s.begin_frame().unwrap();
        assert_eq!(f.fence_wait(), Duration::ZERO);
        fences.push(f.run().unwrap().fence);
    }
    assert_eq!(s.frames_in_flight(), 3);
    assert_eq!(s.stats().fence_waits, 0);
    // Frame 3 needs frame 0's fence: without it, begin_frame times out with a clear error.
    let err = s.begin_frame().unwrap_err();
    assert!(
        matches!(
            err,
            GraphError::FenceTimeout {
                frame: FrameIndex(0),
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("FrameFence::signal"));
    assert_eq!(s.stats().fence_timeouts, 1);
    // Signalled from another thread while begin_frame waits: the wait is
    // counted. A fence timeout of a minute, so that however slow the
    // machine, the signal comes before it (the 200 ms above is only ever
    // run out, never raced).
    let mut s = Scheduler::new(SchedulerConfig {
        frames_in_flight: 3,
        threads: Some(2),
        fence_timeout: Duration::from_secs(60),
        ..SchedulerConfig::default()
    })
    .unwrap();
    let fences: Vec<_> = (0..3)
        .map(|_| s.begin_frame().unwrap().run().unwrap().fence)
        .collect();
    let f0 = fences[0].clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        f0.signal();
    });
    let frame = s.begin_frame().unwrap();
    assert_eq!(frame.index(), FrameIndex(3));
    assert!(
        frame.fence_wait() > Duration::ZERO,
        "{:?}",
        frame.fence_wait()
    );
    drop(frame);
    t.join().unwrap();
    assert_eq!(s.stats().fence_waits, 1);
    // Frames 1 and 2 signalled early: no wait for frames 4 and 5.
    fences[1].signal();
    fences[2].signal();
    let f4 = s.begin_frame().unwrap();
    assert_eq!(f4.fence_wait(), Duration::ZERO);
    drop(f4);
    assert_eq!(s.stats().fence_waits, 1);
}

#[test]
fn retire_work_runs_once_in_frame_order_after_the_fence() {
    let mut s = sched(4);
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut fences = Vec::new();
    for i in 0..4u64 {
        let mut f = s.begin_frame().unwrap();
        for k in 0..3u64 {
            let log = Arc::clone(&log);
            f.on_retire(move || log.lock().unwrap().push((i, k)));
        }
        fences.push(f.run().unwrap().fence);
    }
    assert_eq!(s.pending_retire_callbacks(), 12);
    // Out-of-order fences: 2 and 1 signal before 0. Nothing may retire before frame 0.
    fences[2].signal();
    fences[1].signal();
    assert_eq!(s.retire(), 0);
    assert!(log.lock().unwrap().is_empty());
    fences[0].signal();
    assert_eq!(s.retire(), 3);
    let expected: Vec<(u64, u64)> = (0..3).flat_map(|i| (0..3).map(move |k| (i, k))).collect();
    assert_eq!(*log.lock().unwrap(), expected);
    // Registering for an already retired frame runs at once; for a future frame is an error.
    let log2 = Arc::clone(&log);
    s.on_retire(FrameIndex(1), move || log2.lock().unwrap().push((99, 0)))
        .unwrap();
    assert_eq!(log.lock().unwrap().last(), Some(&(99, 0)));
    let err = s.on_retire(FrameIndex(9), || {}).unwrap_err();
    assert!(matches!(err, GraphError::FrameNotBegun { .. }));
    // Retire never runs twice.
    assert_eq!(s.retire(), 0);
    fences[3].signal();
    s.wait_idle(Duration::from_secs(1)).unwrap();
    assert_eq!(log.lock().unwrap().len(), 13);
    assert_eq!(s.stats().retired_callbacks, 13);
    assert_eq!(s.pending_retire_callbacks(), 0);
}

#[test]
fn unretired_callbacks_are_dropped_not_run_when_the_scheduler_goes() {
    let ran = Arc::new(AtomicU64::new(0));
    let dropped = Arc::new(AtomicU64::new(0));
    struct OnDrop(Arc<AtomicU64>);
    impl Drop for OnDrop {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    {
        let mut s = sched(2);
        let mut f = s.begin_frame().unwrap();
        let (r, d) = (Arc::clone(&ran), OnDrop(Arc::clone(&dropped)));
        f.on_retire(move || {
            let _keep = &d;
            r.fetch_add(1, Ordering::SeqCst);
        });
        f.run().unwrap();
        assert!(s.wait_idle(Duration::from_millis(10)).is_err());
    }
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
}

#[test]
fn keys_from_an_earlier_frame_are_stale() {
    let mut s = sched(2);
    let mut f = s.begin_frame().unwrap();
    let old = f.add("a", |_| Ok(())).unwrap();
    f.run().unwrap().fence.signal();
    let mut f = s.begin_frame().unwrap();
    let fresh = f.add("a", |_| Ok(())).unwrap();
    assert_ne!(old, fresh);
    let err = f.job("b").after(old).spawn(|_| Ok(())).unwrap_err();
    assert!(
        matches!(err, GraphError::StaleJob { key, .. } if key == old),
        "{err}"
    );
    assert!(err.to_string().contains("valid only in the frame"));
    assert!(matches!(f.cancel(old), Err(GraphError::StaleJob { .. })));
    // The failed declaration left nothing behind.
    assert_eq!(f.len(), 1);
    let s2 = f.run().unwrap();
    assert_eq!(s2.jobs, 1);
}

#[test]
fn removed_resources_are_stale() {
    let mut s = sched(2);
    let r = s.register_resource("atlas");
    assert_eq!(s.resource_name(r).unwrap(), "atlas");
    s.remove_resource(r).unwrap();
    assert!(matches!(
        s.remove_resource(r),
        Err(GraphError::StaleResource { .. })
    ));
    let r2 = s.register_resource("atlas");
    assert_ne!(r, r2);
    let mut f = s.begin_frame().unwrap();
    let err = f.job("x").reads(r).spawn(|_| Ok(())).unwrap_err();
    assert!(matches!(err, GraphError::StaleResource { key } if key == r));
    assert!(f.job("x").writes(r2).spawn(|_| Ok(())).is_ok());
}

#[test]
fn config_is_validated() {
    for (cfg, setting) in [
        (
            SchedulerConfig {
                frames_in_flight: 0,
                ..Default::default()
            },
            "frames_in_flight",
        ),
        (
            SchedulerConfig {
                frames_in_flight: 9,
                ..Default::default()
            },
            "frames_in_flight",
        ),
        (
            SchedulerConfig {
                threads: Some(0),
                ..Default::default()
            },
            "threads",
        ),
        (
            SchedulerConfig {
                graph_cache_capacity: 0,
                ..Default::default()
            },
            "graph_cache_capacity",
        ),
    ] {
        match Scheduler::new(cfg) {
            Err(GraphError::InvalidConfig { setting: s, .. }) => assert_eq!(s, setting),
            other => panic!("expected InvalidConfig for {setting}, got {other:?}"),
        }
    }
    for k in 1..=8 {
        assert!(Scheduler::new(SchedulerConfig {
            frames_in_flight: k,
            threads: Some(1),
            ..Default::default()
        })
        .is_ok());
    }
}

#[test]
fn jobs_borrow_the_stack_and_unrun_jobs_are_dropped() {
    let mut s = sched(2);
    let data: Vec<u64> = (0..1000).collect();
    let sum = AtomicU64::new(0);
    let drops = Arc::new(AtomicU64::new(0));
    struct Guard(Arc<AtomicU64>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    {
        let mut f = s.begin_frame().unwrap();
        for chunk in data.chunks(100) {
            let g = Guard(Arc::clone(&drops));
            f.add("sum", |_| {
                let _g = g;
                sum.fetch_add(chunk.iter().sum::<u64>(), Ordering::Relaxed);
                Ok(())
            })
            .unwrap();
        }
        f.run().unwrap().fence.signal();
    }
    assert_eq!(sum.load(Ordering::Relaxed), 499_500);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        10,
        "each run job dropped once"
    );
    // A frame dropped without running drops its jobs without running them.
    {
        let mut f = s.begin_frame().unwrap();
        for _ in 0..5 {
            let g = Guard(Arc::clone(&drops));
            f.add("never", move |_| {
                let _g = g;
                panic!("must not run")
            })
            .unwrap();
        }
    }
    assert_eq!(drops.load(Ordering::SeqCst), 15);
    // Cancelled and skipped jobs are dropped too.
    let mut f = s.begin_frame().unwrap();
    let g1 = Guard(Arc::clone(&drops));
    let g2 = Guard(Arc::clone(&drops));
    let a = f
        .add("a", move |_| {
            let _g = g1;
            Ok(())
        })
        .unwrap();
    f.job("b")
        .after(a)
        .spawn(move |_| {
            let _g = g2;
            Ok(())
        })
        .unwrap();
    f.cancel(a).unwrap();
    let summary = f.run().unwrap();
    assert_eq!((summary.jobs_cancelled, summary.jobs_skipped), (1, 1));
    assert_eq!(drops.load(Ordering::SeqCst), 17);
}

#[test]
fn a_leaked_frame_does_not_break_the_next() {
    let mut s = sched(3);
    let f = {
        let mut f = s.begin_frame().unwrap();
        f.add("leaked", |_| panic!("must never run")).unwrap();
        f
    };
    std::mem::forget(f);
    let mut f = s.begin_frame().unwrap();
    f.add("fine", |_| Ok(())).unwrap();
    let summary = f.run().unwrap();
    assert_eq!(summary.jobs_completed, 1);
    assert_eq!(summary.frame, FrameIndex(1));
}

#[test]
fn per_name_stats_count_and_time_jobs() {
    let mut s = sched(2);
    let mut f = s.begin_frame().unwrap();
    for _ in 0..3 {
        f.add("sleep", |_| {
            std::thread::sleep(Duration::from_millis(5));
            Ok(())
        })
        .unwrap();
    }
    f.add("quick", |_| Ok(())).unwrap();
    f.add("broken", |_| {
        Err(forgeflow_graph::JobError::msg("bad input: magic"))
    })
    .unwrap();
    let err = f.run().unwrap_err();
    assert_eq!(
        err.to_string(),
        "frame 0 failed: job 'broken' failed: bad input: magic"
    );
    let st = s.last_frame_stats();
    assert_eq!(st.by_name.len(), 3);
    let sleep = &st.by_name[0];
    assert_eq!((sleep.name, sleep.count), ("sleep", 3));
    assert!(sleep.total >= Duration::from_millis(15));
    assert!(sleep.max >= Duration::from_millis(5) && sleep.max <= sleep.total);
    assert_eq!(st.by_name[1].count, 1);
    assert_eq!((st.by_name[2].name, st.by_name[2].count), ("broken", 1));
    assert_eq!((st.jobs_completed, st.jobs_failed), (4, 1));
    assert_eq!((s.stats().frames_run, s.stats().frames_failed), (1, 1));
}

#[test]
fn job_values_and_question_mark() {
    use forgeflow_graph::{Job, JobContext, JobResult};
    struct Parse<'a>(&'a str, &'a AtomicU64);
    impl Job for Parse<'_> {
        fn run(self, ctx: &JobContext<'_>) -> JobResult {
            assert_eq!(ctx.name(), "parse");
            let v: u64 = self.0.parse()?;
            self.1.store(v, Ordering::SeqCst);
            Ok(())
        }
    }
    let out = AtomicU64::new(0);
    let mut s = sched(2);
    let mut f = s.begin_frame().unwrap();
    f.add_job("parse", Parse("42", &out)).unwrap();
    f.run().unwrap().fence.signal();
    assert_eq!(out.load(Ordering::SeqCst), 42);
    let mut f = s.begin_frame().unwrap();
    f.add_job("parse", Parse("forty-two", &out)).unwrap();
    let err = f.run().unwrap_err();
    assert!(
        err.failures[0].message.contains("invalid digit"),
        "{}",
        err.failures[0].message
    );
}

#[test]
fn an_embedder_pool_is_used() {
    let pool = Arc::new(
        rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .thread_name(|i| format!("embedder-{i}"))
            .build()
            .unwrap(),
    );
    let mut s = Scheduler::with_pool(
        Arc::clone(&pool),
        SchedulerConfig {
            auto_signal_fences: true,
            ..Default::default()
        },
    )
    .unwrap();
    let name = Mutex::new(String::new());
    let mut f = s.begin_frame().unwrap();
    f.add("where", |_| {
        *name.lock().unwrap() = std::thread::current().name().unwrap_or("").to_owned();
        Ok(())
    })
    .unwrap();
    f.run().unwrap();
    assert!(name.lock().unwrap().starts_with("embedder-"));
    // Nested rayon parallelism inside a job works (idle workers help).
    let mut f = s.begin_frame().unwrap();
    let total = AtomicU64::new(0);
    f.add("par", |_| {
        use rayon::prelude::*;
        total.store((0..100_000u64).into_par_iter().sum(), Ordering::SeqCst);
        Ok(())
    })
    .unwrap();
    f.run().unwrap();
    assert_eq!(total.load(Ordering::SeqCst), 4_999_950_000);
}
