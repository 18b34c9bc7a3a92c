//! `forgeflow.pool.simulate_churn`: a simulated stretch of a renderer's
//! buffer churn through the pool's allocator core, as `forgeflow-stress
//! pool` replays it, with its setup and sampling (`forgeflow_tools::replay`):
//! the same trace (`ChurnTrace`, 60 frames a second), one 2 GiB block, frees
//! released two frames late (a simulated fence), a defragmentation plan every
//! frame within 32 MiB and 64 moves, and fragmentation sampled once a second
//! after the first minute while at least a tenth of the pool is free.

use forgeflow::jobs::alloc::{AllocKey, PoolAllocator};
use forgeflow_tools::replay::{self, DEFRAG_BUDGET, FENCE_LAG, POOL_BYTES};
use forgeflow_tools::synthetic::{ChurnEvent, ChurnTrace};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use std::collections::HashMap;

use crate::errors;

/// Replays `hours` of churn (216,000 frames an hour); returns the
/// fragmentation figures: `fragmentation_end` (when the replay ends),
/// `fragmentation_max`, `fragmentation_p99`,
/// `fragmentation_mean` (external fragmentation, 1 - largest free range /
/// free bytes), `samples`, `frames`, `allocations`, `frees`, `failures`,
/// `moves`, `bytes_moved`, `utilization_end` (live / pool bytes at the end).
#[pyfunction]
#[pyo3(signature = (hours = 1.0, seed = 1, defrag = true))]
pub fn simulate_churn<'py>(
    py: Python<'py>,
    hours: f64,
    seed: u64,
    defrag: bool,
) -> PyResult<Bound<'py, PyDict>> {
    if !(hours > 0.0 && hours <= 24.0) {
        return Err(errors::raise(
            "InvalidConfigError",
            format!("hours must be in (0, 24], not {hours}"),
        ));
    }
    let frames = (hours * 216_000.0).round() as u64;
    let r = py.detach(|| {
        let mut pool = PoolAllocator::new();
        pool.add_block(POOL_BYTES);
        let mut live: HashMap<u32, AllocKey> = HashMap::new();
        let (mut frame, mut allocs, mut frees, mut failures) = (0u64, 0u64, 0u64, 0u64);
        let mut samples = Vec::new();
        for event in ChurnTrace::new(frames, seed) {
            match event {
                ChurnEvent::Alloc { id, size, align } => match pool.alloc(size, align) {
                    Ok(k) => {
                        allocs += 1;
                        live.insert(id, k);
                    }
                    Err(_) => failures += 1,
                },
                ChurnEvent::Free { id } => {
                    if let Some(k) = live.remove(&id) {
                        if pool.free(k, frame).is_ok() {
                            frees += 1;
                        }
                    }
                }
                ChurnEvent::EndFrame => {
                    pool.retire(frame.saturating_sub(FENCE_LAG));
                    if defrag {
                        let plan = pool.plan_defrag(DEFRAG_BUDGET);
                        pool.commit_defrag(plan, frame);
                    }
                    if replay::samples_fragmentation(frame, &pool) {
                        samples.push(pool.fragmentation());
                    }
                    frame += 1;
                }
            }
        }
        let metrics = pool.metrics();
        samples.sort_by(f64::total_cmp);
        (
            samples,
            pool.fragmentation(),
            frame,
            allocs,
            frees,
            failures,
            pool.stats().clone(),
            metrics,
        )
    });
    let (samples, end, frames, allocs, frees, failures, stats, metrics) = r;
    let at = |q: f64| {
        samples
            .get(((samples.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    let d = PyDict::new(py);
    d.set_item("frames", frames)?;
    d.set_item("samples", samples.len())?;
    d.set_item("fragmentation_end", end)?;
    d.set_item("fragmentation_max", samples.last().copied().unwrap_or(0.0))?;
    d.set_item("fragmentation_p99", at(0.99))?;
    d.set_item(
        "fragmentation_mean",
        samples.iter().sum::<f64>() / samples.len().max(1) as f64,
    )?;
    d.set_item("allocations", allocs)?;
    d.set_item("frees", frees)?;
    d.set_item("failures", failures)?;
    d.set_item("moves", stats.allocations_moved)?;
    d.set_item("bytes_moved", stats.bytes_moved)?;
    d.set_item(
        "utilization_end",
        metrics.live_bytes as f64 / metrics.pool_bytes.max(1) as f64,
    )?;
    Ok(d)
}
