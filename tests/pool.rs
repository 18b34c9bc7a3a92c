//! BufferPool on a real GPU (lavapipe in CI): after many frames of churn and
//! defragmentation, every live allocation read back through its handle equals
//! its CPU shadow copy.

use forgeflow_test_support::gpu::VerifyRead as _;
use std::collections::HashMap;

use forgeflow::gpu::Gpu;
use forgeflow::jobs::alloc::DefragBudget;
use forgeflow::pool::{BufferPool, BufferPoolConfig, PoolError, PoolHandle};
use forgeflow_test_support::gpu;
use forgeflow_test_support::SplitMix64;

fn bytes(len: usize, rng: &mut SplitMix64) -> Vec<u8> {
    (0..len).map(|_| rng.next_u64() as u8).collect()
}

fn check_all(gpu: &Gpu, pool: &BufferPool, shadow: &HashMap<PoolHandle, Vec<u8>>) {
    for (h, data) in shadow {
        let r = pool.resolve(*h).expect("live handle resolves");
        assert_eq!(r.size, data.len() as u64);
        assert!(
            gpu.read_buffer(r.buffer, r.offset, r.size).unwrap() == *data,
            "allocation {h:?} differs from its shadow at {}+{}",
            r.offset,
            r.size
        );
    }
}

#[test]
fn contents_survive_churn_and_defragmentation() {
    let Some(gpu) = gpu::for_test("contents_survive_churn_and_defragmentation") else {
        return;
    };
    let mut pool = BufferPool::new(
        &gpu.device,
        BufferPoolConfig {
            block_size: 256 << 10,
            budget_bytes: 4 << 20,
            grace_frames: 2,
            defrag: DefragBudget {
                max_bytes: 128 << 10,
                max_moves: 16,
            },
            ..Default::default()
        },
    )
    .unwrap();
    let mut rng = SplitMix64::new(11);
    let mut shadow: HashMap<PoolHandle, Vec<u8>> = HashMap::new();
    let mut live: Vec<PoolHandle> = Vec::new();
    for frame in 0..150u64 {
        for _ in 0..rng.below(6) {
            let len = 4 * (1 + rng.below(8192)) as usize;
            let align = [4, 16, 256][rng.below(3) as usize];
            let h = pool.alloc(len as u64, align).expect("within budget");
            let data = bytes(len, &mut rng);
            let r = pool.resolve(h).unwrap();
            assert_eq!(r.offset % align, 0);
            gpu.queue.write_buffer(r.buffer, r.offset, &data);
            shadow.insert(h, data);
            live.push(h);
        }
        for _ in 0..rng.below(5) {
            if live.is_empty() {
                break;
            }
            let h = live.swap_remove(rng.below(live.len() as u64) as usize);
            pool.free(h, frame).unwrap();
            shadow.remove(&h);
            assert!(
                matches!(pool.resolve(h), Err(PoolError::Alloc(_))),
                "a freed handle is stale"
            );
        }
        if frame == 40 && !live.is_empty() {
            pool.set_pinned(live[0], true).unwrap();
        }
        let mut enc = gpu.device.create_command_encoder(&Default::default());
        let ticket = pool.defrag(&mut enc);
        gpu.queue.submit([enc.finish()]);
        pool.commit(ticket, frame);
        // Frames finish two behind (a fence), as on a GPU with frames in flight.
        pool.retire(frame.saturating_sub(2));
        if frame % 30 == 29 {
            check_all(&gpu, &pool, &shadow);
        }
    }
    check_all(&gpu, &pool, &shadow);
    let st = pool.stats().clone();
    assert!(
        st.allocations_moved > 20,
        "defragmentation moved data: {st:?}"
    );
    assert!(pool.blocks() >= 1);
    // Freeing everything and passing the grace period releases the blocks.
    for h in live.drain(..) {
        pool.free(h, 150).unwrap();
    }
    for f in 150..160 {
        pool.retire(f);
    }
    assert_eq!(
        pool.blocks(),
        0,
        "empty blocks are released after the grace period"
    );
    assert_eq!(pool.block_bytes(), 0);
}

#[test]
fn the_budget_is_a_clear_error() {
    let Some(gpu) = gpu::for_test("the_budget_is_a_clear_error") else {
        return;
    };
    let mut pool = BufferPool::new(
        &gpu.device,
        BufferPoolConfig {
            block_size: 64 << 10,
            budget_bytes: 128 << 10,
            ..Default::default()
        },
    )
    .unwrap();
    pool.alloc(60 << 10, 4).unwrap();
    pool.alloc(60 << 10, 4).unwrap();
    let err = pool.alloc(60 << 10, 4).unwrap_err();
    assert!(
        matches!(err, PoolError::Budget { budget, .. } if budget == 128 << 10),
        "{err}"
    );
    assert!(err.to_string().contains("raise budget_bytes"));
    assert!(BufferPool::new(
        &gpu.device,
        BufferPoolConfig {
            block_size: 6,
            ..Default::default()
        }
    )
    .is_err_and(|e| matches!(e, PoolError::InvalidConfig(_))));
}
