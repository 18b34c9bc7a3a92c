//! Invariant 5 for the pool allocator: after warm-up, a frame of churn with
//! defragmentation planned and committed every frame performs no heap
//! allocation. Checked with a counting global allocator (this file is its own
//! test binary, and only the test's thread is counted).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};

use forgeflow_jobs::alloc::{AllocKey, DefragBudget, PoolAllocator};

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

fn counted() -> bool {
    COUNTING.try_with(|c| c.get()).unwrap_or(false)
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// wrapper only bumps a counter.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if counted() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` through this wrapper.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if counted() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: as for `dealloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// One frame: 12 allocations freed from scattered places of the live list (a
/// fixed stride, so the run is the same every time), 12 new ones (sizes
/// cycling through a fixed list), a defrag plan committed, and the frame two
/// behind retired.
fn frame(pool: &mut PoolAllocator, live: &mut VecDeque<AllocKey>, frame: u64, cursor: &mut usize) {
    const SIZES: [u64; 7] = [256, 4096, 768, 65536, 1280, 16384, 512];
    for i in 0..12u64 {
        if live.is_empty() {
            break;
        }
        let at = ((frame * 7919 + i * 104_729) % live.len() as u64) as usize;
        if let Some(k) = live.swap_remove_back(at) {
            pool.free(k, frame).expect("live key frees");
        }
    }
    for _ in 0..12 {
        let size = SIZES[*cursor % SIZES.len()];
        *cursor += 1;
        if let Ok(k) = pool.alloc(size, 256) {
            live.push_back(k);
        }
    }
    let plan = pool.plan_defrag(DefragBudget {
        max_bytes: 256 << 10,
        max_moves: 8,
    });
    pool.commit_defrag(plan, frame);
    pool.retire(frame.saturating_sub(2));
}

#[test]
fn steady_state_churn_with_defrag_does_not_allocate() {
    // One block: compaction (the gap sweep) has holes to close every frame.
    // (Four blocks, as before, only ever moved allocations into empty blocks,
    // which planning no longer does.)
    let mut pool = PoolAllocator::new();
    pool.add_block(8 << 20);
    let mut live = VecDeque::with_capacity(1024);
    let mut cursor = 0;
    for _ in 0..300 {
        let size = [256u64, 4096, 768, 65536, 1280][cursor % 5];
        cursor += 1;
        live.push_back(pool.alloc(size, 256).expect("fits"));
    }
    for f in 0..3000 {
        frame(&mut pool, &mut live, f, &mut cursor);
    }
    let moved_before = pool.stats().allocations_moved;
    COUNTING.with(|c| c.set(true));
    for f in 3000..3500 {
        frame(&mut pool, &mut live, f, &mut cursor);
    }
    COUNTING.with(|c| c.set(false));
    let moved = pool.stats().allocations_moved - moved_before;
    let allocs = ALLOCS.load(Ordering::Relaxed);
    assert!(moved > 0, "defragmentation must run in the measured frames");
    assert_eq!(
        allocs, 0,
        "500 steady-state frames ({moved} moves) allocated {allocs} times"
    );
}
