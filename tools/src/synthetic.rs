//! Synthetic workloads and the baselines that run them, shared by
//! `forgeflow-stress` and the criterion benches so both measure the same
//! work: job graphs (below) and an allocation churn trace ([`ChurnTrace`]).
//!
//! A [`DagSpec`] is a plain graph: for each job its predecessors (always earlier
//! jobs) and a cost in work units. [`busy_work`] burns a deterministic amount of
//! CPU per unit, calibrated by [`calibrate`]. [`RayonScopeRunner`] and
//! [`run_sequential`] execute a spec the way an embedder would without
//! forgeflow: `rayon::scope` spawning each job when its last dependency
//! finishes (manual atomic counters), or one thread in declaration order.

use std::hint::black_box;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

pub use forgeflow_test_support::SplitMix64;

/// A job graph as plain data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DagSpec {
    /// For each job, the earlier jobs it depends on (distinct, sorted).
    pub preds: Vec<Vec<u32>>,
    /// For each job, its cost in [`busy_work`] units.
    pub costs: Vec<u32>,
}

impl DagSpec {
    /// `n` jobs, each depending on up to `max_deps` distinct jobs among the
    /// `window` declared just before it, with costs drawn from `cost`.
    pub fn random(
        n: usize,
        max_deps: usize,
        window: usize,
        cost: std::ops::Range<u32>,
        seed: u64,
    ) -> Self {
        let mut rng = SplitMix64::new(seed);
        let mut preds = Vec::with_capacity(n);
        let mut costs = Vec::with_capacity(n);
        for j in 0..n {
            let mut p = Vec::new();
            if j > 0 && max_deps > 0 {
                let k = rng.below(max_deps as u64 + 1) as usize;
                let lo = j.saturating_sub(window.max(1));
                for _ in 0..k {
                    p.push((lo + rng.below((j - lo) as u64) as usize) as u32);
                }
                p.sort_unstable();
                p.dedup();
            }
            preds.push(p);
            costs.push(if cost.is_empty() {
                cost.start
            } else {
                cost.start + rng.below((cost.end - cost.start) as u64) as u32
            });
        }
        DagSpec { preds, costs }
    }

    /// Wide: one root fanning out to `width` independent jobs joined by one sink.
    pub fn wide(width: usize, cost: u32) -> Self {
        let mut preds = vec![Vec::new()];
        preds.extend((0..width).map(|_| vec![0]));
        preds.push((1..=width as u32).collect());
        let costs = vec![cost; width + 2];
        DagSpec { preds, costs }
    }

    /// Deep: `levels` levels of `width` jobs, each depending on two jobs of the level above.
    pub fn deep(levels: usize, width: usize, cost: u32, seed: u64) -> Self {
        let mut rng = SplitMix64::new(seed);
        let mut preds = Vec::with_capacity(levels * width);
        for level in 0..levels {
            for _ in 0..width {
                let mut p = Vec::new();
                if level > 0 {
                    let base = ((level - 1) * width) as u32;
                    p.push(base + rng.below(width as u64) as u32);
                    p.push(base + rng.below(width as u64) as u32);
                    p.sort_unstable();
                    p.dedup();
                }
                preds.push(p);
            }
        }
        let costs = vec![cost; levels * width];
        DagSpec { preds, costs }
    }

    /// Number of jobs.
    pub fn len(&self) -> usize {
        self.preds.len()
    }

    /// Whether the graph has no job.
    pub fn is_empty(&self) -> bool {
        self.preds.is_empty()
    }

    /// Total number of dependency edges.
    pub fn edges(&self) -> usize {
        self.preds.iter().map(Vec::len).sum()
    }

    /// Successor lists and in-degrees, for executors that count down.
    pub fn csr(&self) -> Csr {
        let n = self.len();
        let indegree: Vec<u32> = self.preds.iter().map(|p| p.len() as u32).collect();
        let mut start = vec![0u32; n + 1];
        for p in self.preds.iter().flatten() {
            start[*p as usize + 1] += 1;
        }
        for i in 0..n {
            start[i + 1] += start[i];
        }
        let mut fill = start.clone();
        let mut succ = vec![0u32; self.edges()];
        for (j, p) in self.preds.iter().enumerate() {
            for &q in p {
                succ[fill[q as usize] as usize] = j as u32;
                fill[q as usize] += 1;
            }
        }
        let roots = (0..n as u32)
            .filter(|&j| indegree[j as usize] == 0)
            .collect();
        Csr {
            indegree,
            start,
            succ,
            roots,
        }
    }
}

/// A graph as successor lists (compressed sparse rows).
#[derive(Debug, Clone)]
pub struct Csr {
    /// Predecessor count of each job.
    pub indegree: Vec<u32>,
    /// `succ[start[j]..start[j + 1]]` are the successors of `j`.
    pub start: Vec<u32>,
    /// Flat successor array.
    pub succ: Vec<u32>,
    /// Jobs without predecessors.
    pub roots: Vec<u32>,
}

impl Csr {
    /// Successors of job `j`.
    pub fn successors(&self, j: usize) -> &[u32] {
        &self.succ[self.start[j] as usize..self.start[j + 1] as usize]
    }
}

/// Burns `units` units of CPU deterministically (an xorshift chain the
/// optimiser cannot remove) and returns the final state.
#[inline(never)]
pub fn busy_work(units: u32, seed: u64) -> u64 {
    let mut x = seed | 1;
    for _ in 0..units {
        for _ in 0..64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
        }
        x = black_box(x);
    }
    x
}

/// Work units per microsecond on this thread (best of a few measurements).
pub fn calibrate() -> f64 {
    let units = 20_000;
    let mut best = f64::MAX;
    for i in 0..5 {
        let t = Instant::now();
        black_box(busy_work(units, i));
        best = best.min(t.elapsed().as_secs_f64());
    }
    units as f64 / (best * 1e6)
}

/// Runs a graph through `rayon::scope`: each job is spawned when its last
/// dependency finishes, tracked with atomic counters. The baseline for
/// forgeflow's scheduler overhead.
pub struct RayonScopeRunner {
    csr: Csr,
    remaining: Vec<AtomicU32>,
}

impl RayonScopeRunner {
    /// A runner for `spec`.
    pub fn new(spec: &DagSpec) -> Self {
        let csr = spec.csr();
        let remaining = csr.indegree.iter().map(|&d| AtomicU32::new(d)).collect();
        RayonScopeRunner { csr, remaining }
    }

    /// Runs every job once on `pool`, calling `work(j)` for job `j`.
    pub fn run<W: Fn(usize) + Sync>(&self, pool: &rayon::ThreadPool, work: &W) {
        for (r, &d) in self.remaining.iter().zip(&self.csr.indegree) {
            r.store(d, Ordering::Relaxed);
        }
        pool.scope(|s| {
            for &root in &self.csr.roots {
                self.spawn(s, root as usize, work);
            }
        });
    }

    fn spawn<'s, W: Fn(usize) + Sync>(&'s self, s: &rayon::Scope<'s>, j: usize, work: &'s W) {
        s.spawn(move |s| {
            work(j);
            for &succ in self.csr.successors(j) {
                if self.remaining[succ as usize].fetch_sub(1, Ordering::AcqRel) == 1 {
                    self.spawn(s, succ as usize, work);
                }
            }
        });
    }
}

/// Runs every job of `spec` on the calling thread, in declaration order (a
/// topological order, since predecessors always come first).
pub fn run_sequential<W: Fn(usize)>(spec: &DagSpec, work: &W) {
    for j in 0..spec.len() {
        work(j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    #[test]
    fn specs_are_acyclic_and_reproducible() {
        let a = DagSpec::random(500, 4, 64, 1..10, 7);
        assert_eq!(a, DagSpec::random(500, 4, 64, 1..10, 7));
        assert_ne!(a, DagSpec::random(500, 4, 64, 1..10, 8));
        for (j, p) in a.preds.iter().enumerate() {
            assert!(p.iter().all(|&q| (q as usize) < j));
            assert!(p.windows(2).all(|w| w[0] < w[1]));
            assert!(p.len() <= 4);
        }
        let d = DagSpec::deep(10, 8, 1, 3);
        assert_eq!(d.len(), 80);
        let w = DagSpec::wide(100, 1);
        assert_eq!(w.preds.last().unwrap().len(), 100);
    }

    #[test]
    fn rayon_scope_runner_respects_dependencies() {
        let spec = DagSpec::random(800, 4, 32, 0..1, 11);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        let runner = RayonScopeRunner::new(&spec);
        let clock = AtomicU64::new(1);
        let start: Vec<AtomicU64> = (0..spec.len()).map(|_| AtomicU64::new(0)).collect();
        let end: Vec<AtomicU64> = (0..spec.len()).map(|_| AtomicU64::new(0)).collect();
        runner.run(&pool, &|j| {
            start[j].store(clock.fetch_add(1, Ordering::SeqCst), Ordering::SeqCst);
            end[j].store(clock.fetch_add(1, Ordering::SeqCst), Ordering::SeqCst);
        });
        for (j, p) in spec.preds.iter().enumerate() {
            assert!(start[j].load(Ordering::SeqCst) > 0, "job {j} never ran");
            for &q in p {
                assert!(end[q as usize].load(Ordering::SeqCst) < start[j].load(Ordering::SeqCst));
            }
        }
    }

    #[test]
    fn busy_work_scales_with_units() {
        let per_us = calibrate();
        assert!(per_us > 0.0);
        assert_ne!(busy_work(10, 1), busy_work(11, 1));
    }
}

/// One step of an allocation churn trace (see [`ChurnTrace`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChurnEvent {
    /// Allocate `size` bytes at `align`, named `id` by the trace.
    Alloc {
        /// The trace's name for the allocation.
        id: u32,
        /// Bytes.
        size: u64,
        /// Alignment (a power of two).
        align: u64,
    },
    /// Free allocation `id` (ignore it if that allocation failed).
    Free {
        /// The trace's name for the allocation.
        id: u32,
    },
    /// The frame ends.
    EndFrame,
}

/// A deterministic, realistic allocation churn at 60 frames per second (one
/// simulated hour is 216,000 frames): a permanent set made at the start;
/// streaming allocations every frame (log-uniform 256 B to 4 MiB; half of them
/// live 1-10 frames, 40% 1-10 seconds, 10% 1-5 minutes); and every 30-120
/// seconds a level load burst of 60-200 allocations of 4 KiB to 8 MiB, unloaded
/// at once 1-2.5 minutes later. About 1.1-1.8 GiB live at a time.
#[derive(Debug, Clone)]
pub struct ChurnTrace {
    rng: SplitMix64,
    frame: u64,
    frames: u64,
    next_id: u32,
    expiring: std::collections::BinaryHeap<std::cmp::Reverse<(u64, u32)>>,
    levels: std::collections::VecDeque<(u64, Vec<u32>)>,
    next_level: u64,
    queue: std::collections::VecDeque<ChurnEvent>,
}

impl ChurnTrace {
    /// A trace of `frames` frames from `seed`.
    pub fn new(frames: u64, seed: u64) -> Self {
        let mut t = ChurnTrace {
            rng: SplitMix64::new(seed),
            frame: 0,
            frames,
            next_id: 0,
            expiring: Default::default(),
            levels: Default::default(),
            next_level: 60,
            queue: Default::default(),
        };
        for _ in 0..200 {
            let size = t.log_uniform(1 << 10, 4 << 20);
            t.alloc(size, None);
        }
        t
    }

    fn log_uniform(&mut self, lo: u64, hi: u64) -> u64 {
        let u = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        ((lo as f64).ln() + u * ((hi as f64).ln() - (lo as f64).ln())).exp() as u64
    }

    fn alloc(&mut self, size: u64, expires: Option<u64>) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        let align = match self.rng.below(10) {
            0..=5 => 16,
            6..=8 => 256,
            _ => 4,
        };
        self.queue.push_back(ChurnEvent::Alloc { id, size, align });
        if let Some(at) = expires {
            self.expiring.push(std::cmp::Reverse((at, id)));
        }
        id
    }

    fn frame_events(&mut self) {
        let f = self.frame;
        while let Some(&std::cmp::Reverse((at, id))) = self.expiring.peek() {
            if at > f {
                break;
            }
            self.expiring.pop();
            self.queue.push_back(ChurnEvent::Free { id });
        }
        while self.levels.front().is_some_and(|(at, _)| *at <= f) {
            let (_, ids) = self.levels.pop_front().expect("checked");
            self.queue
                .extend(ids.into_iter().map(|id| ChurnEvent::Free { id }));
        }
        if f >= self.next_level {
            let n = 60 + self.rng.below(141);
            let ids = (0..n)
                .map(|_| {
                    let size = self.log_uniform(4 << 10, 8 << 20);
                    self.alloc(size, None)
                })
                .collect();
            let unload = f + 3600 + self.rng.below(5400);
            self.levels.push_back((unload, ids));
            self.levels.make_contiguous().sort_by_key(|(at, _)| *at);
            self.next_level = f + 1800 + self.rng.below(5400);
        }
        for _ in 0..(1 + self.rng.below(3)) {
            let size = self.log_uniform(256, 4 << 20);
            let life = match self.rng.below(10) {
                0..=4 => 1 + self.rng.below(10),
                5..=8 => 60 + self.rng.below(540),
                _ => 3600 + self.rng.below(14_400),
            };
            self.alloc(size, Some(f + life));
        }
        self.queue.push_back(ChurnEvent::EndFrame);
    }
}

impl Iterator for ChurnTrace {
    type Item = ChurnEvent;

    fn next(&mut self) -> Option<ChurnEvent> {
        loop {
            if let Some(e) = self.queue.pop_front() {
                return Some(e);
            }
            if self.frame >= self.frames {
                return None;
            }
            self.frame_events();
            self.frame += 1;
        }
    }
}
