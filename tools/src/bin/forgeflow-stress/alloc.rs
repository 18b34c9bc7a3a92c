//! A counting global allocator: how many heap allocations a stretch of frames
//! makes, and the peak of live heap bytes since a reset.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

pub struct Counting;

static ON: AtomicBool = AtomicBool::new(false);
static COUNT: AtomicU64 = AtomicU64::new(0);
/// Heap bytes live now, and the most since `reset_peak` (relaxed: a gauge).
static LIVE: AtomicI64 = AtomicI64::new(0);
static PEAK: AtomicI64 = AtomicI64::new(0);
static BASE: AtomicI64 = AtomicI64::new(0);

#[inline]
fn grew(by: i64) {
    let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: forwards every call to the system allocator unchanged; counting is
// relaxed atomic arithmetic that never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ON.load(Ordering::Relaxed) {
            COUNT.fetch_add(1, Ordering::Relaxed);
        }
        grew(layout.size() as i64);
        // SAFETY: the caller's layout is passed through unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if ON.load(Ordering::Relaxed) {
            COUNT.fetch_add(1, Ordering::Relaxed);
        }
        grew(new_size as i64 - layout.size() as i64);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Counts the allocations (all threads) made while `f` runs.
pub fn count<R>(f: impl FnOnce() -> R) -> (R, u64) {
    COUNT.store(0, Ordering::SeqCst);
    ON.store(true, Ordering::SeqCst);
    let r = f();
    ON.store(false, Ordering::SeqCst);
    (r, COUNT.load(Ordering::SeqCst))
}

/// Starts a new peak measurement from the heap bytes live now.
pub fn reset_peak() {
    let now = LIVE.load(Ordering::SeqCst);
    BASE.store(now, Ordering::SeqCst);
    PEAK.store(now, Ordering::SeqCst);
}

/// The most heap bytes live since `reset_peak`, above what was live then.
pub fn peak_above_reset() -> u64 {
    (PEAK.load(Ordering::SeqCst) - BASE.load(Ordering::SeqCst)).max(0) as u64
}

/// Heap bytes live now (Rust's allocations: forgeflow, wgpu, the stress;
/// not a driver's own `malloc`s).
pub fn live() -> u64 {
    LIVE.load(Ordering::Relaxed).max(0) as u64
}

/// What the C allocator holds, all threads' arenas together: (bytes in use,
/// bytes it keeps free). glibc's malloc serves Rust's `System` allocator
/// (so [`live`] is part of the first) and the Vulkan driver and loader alike:
/// in-use bytes that grow while [`live`] does not are the driver's, free
/// bytes that grow are fragmentation of its arenas. `None` off glibc.
pub fn malloc_totals() -> Option<(u64, u64)> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 (glibc 2.33+) takes no argument and returns a
        // plain struct of counters, read under the allocator's own locks.
        let m = unsafe { libc::mallinfo2() };
        Some(((m.uordblks + m.hblkhd) as u64, m.fordblks as u64))
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        None
    }
}
