//! After warm-up, a frame of a known shape performs no heap allocation: checked
//! with a counting global allocator (this file is its own test binary).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use forgeflow_graph::{ResourceKey, Scheduler, SchedulerConfig};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);
static OFF_THREAD: AtomicUsize = AtomicUsize::new(0);
static SIZES: Mutex<Vec<usize>> = Mutex::new(Vec::new());

thread_local! {
    static MEASURING_THREAD: Cell<bool> = const { Cell::new(false) };
    static IN_HOOK: Cell<bool> = const { Cell::new(false) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
            let on_caller = MEASURING_THREAD.try_with(|c| c.get()).unwrap_or(false);
            if !on_caller {
                OFF_THREAD.fetch_add(1, Ordering::Relaxed);
            }
            // Record sizes (the Vec's own growth must not recurse into counting).
            if IN_HOOK.try_with(|h| !h.replace(true)).unwrap_or(false) {
                if let Ok(mut sizes) = SIZES.try_lock() {
                    if sizes.len() < sizes.capacity() {
                        sizes.push(layout.size());
                    }
                }
                let _ = IN_HOOK.try_with(|h| h.set(false));
            }
        }
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// One frame: 1000 jobs, each capturing data (so each is a real object in the
/// arena), up to 4 dependencies, reads and writes of 8 resources, a retire callback.
fn frame(sched: &mut Scheduler, res: &[ResourceKey], work: &[AtomicU64], retired: &Arc<AtomicU64>) {
    let mut f = sched.begin_frame().expect("begin_frame");
    let mut keys = [Default::default(); 1000];
    for i in 0..1000usize {
        let mut b = f.job(if i % 3 == 0 { "decode" } else { "upload" });
        for d in 1..=4usize {
            // A fixed pseudo-random choice of up to 4 earlier jobs.
            let h = (i * 2654435761 + d * 40503) % 1000;
            if i > 0 && h % 3 != 0 {
                b = b.after(keys[h % i]);
            }
        }
        if i % 7 == 0 {
            b = b.writes(res[i % res.len()]);
        } else if i % 5 == 0 {
            b = b.reads(res[i % res.len()]);
        }
        let cell = &work[i];
        let salt = i as u64;
        keys[i] = b
            .spawn(move |_| {
                cell.fetch_add(salt | 1, Ordering::Relaxed);
                Ok(())
            })
            .expect("spawn");
    }
    let r = Arc::clone(retired);
    f.on_retire(move || {
        r.fetch_add(1, Ordering::Relaxed);
    });
    let summary = f.run().expect("frame runs");
    assert_eq!(summary.jobs_completed, 1000);
}

#[test]
fn steady_state_frames_do_not_allocate() {
    SIZES.lock().unwrap().reserve(4096);
    let mut sched = Scheduler::new(SchedulerConfig {
        threads: Some(2),
        auto_signal_fences: true,
        ..SchedulerConfig::default()
    })
    .unwrap();
    let res: Vec<ResourceKey> = (0..8).map(|_| sched.register_resource("r")).collect();
    let work: Vec<AtomicU64> = (0..1000).map(|_| AtomicU64::new(0)).collect();
    let retired = Arc::new(AtomicU64::new(0));
    MEASURING_THREAD.with(|c| c.set(true));

    // Warm-up: plans the graph, grows the arenas and vectors.
    for _ in 0..64 {
        frame(&mut sched, &res, &work, &retired);
    }

    // 1. Frames driven from inside the pool: not one allocation.
    let pool = Arc::clone(sched.pool());
    let frames = 500;
    let inside = pool.install(|| {
        // Warm this thread's own state too.
        for _ in 0..16 {
            frame(&mut sched, &res, &work, &retired);
        }
        ALLOCS.store(0, Ordering::SeqCst);
        COUNTING.store(true, Ordering::SeqCst);
        for _ in 0..frames {
            frame(&mut sched, &res, &work, &retired);
        }
        COUNTING.store(false, Ordering::SeqCst);
        ALLOCS.load(Ordering::SeqCst)
    });
    assert_eq!(
        inside, 0,
        "{inside} allocations in {frames} frames driven from inside the pool"
    );

    // 2. Frames driven from a thread outside the pool (a render thread): the
    //    only allocations are rayon's global injector blocks, one per 63
    //    injections, all the same size, all on the calling thread.
    SIZES.lock().unwrap().clear();
    ALLOCS.store(0, Ordering::SeqCst);
    OFF_THREAD.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    for _ in 0..frames {
        frame(&mut sched, &res, &work, &retired);
    }
    COUNTING.store(false, Ordering::SeqCst);
    let outside = ALLOCS.load(Ordering::SeqCst);
    let sizes = SIZES.lock().unwrap().clone();
    assert!(
        outside <= frames / 63 + 2,
        "{outside} allocations in {frames} frames from outside the pool (sizes {sizes:?})"
    );
    assert_eq!(OFF_THREAD.load(Ordering::SeqCst), 0, "workers allocated");
    let first = sizes.first().copied();
    assert!(
        sizes.iter().all(|&s| Some(s) == first),
        "allocation sizes differ: {sizes:?}"
    );
    eprintln!("outside the pool: {outside} allocations in {frames} frames, sizes {sizes:?}");

    // And the work really ran: every job of every frame.
    let total_frames = 64 + 16 + 2 * frames as u64;
    for (i, w) in work.iter().enumerate() {
        assert_eq!(w.load(Ordering::Relaxed), total_frames * (i as u64 | 1));
    }
    sched.retire();
    assert!(retired.load(Ordering::Relaxed) >= total_frames - 3);
}
