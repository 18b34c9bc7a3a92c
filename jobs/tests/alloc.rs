//! Property tests of the pool allocator against an independent model of which
//! ranges are live and which are freed but not yet past their fence.

use std::collections::HashMap;

use forgeflow_jobs::alloc::{
    AllocError, AllocKey, Allocation, DefragBudget, PoolAllocator, MAX_BLOCK_BYTES,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Alloc { size: u64, align_log2: u32 },
    Free { pick: usize, frames_ahead: u64 },
    FreeNow { pick: usize },
    NextFrame,
    Retire,
    Pin { pick: usize },
    Defrag { max_moves: u32 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (prop_oneof![1u64..512, 512u64..65_536, 65_536u64..400_000], 0u32..13)
            .prop_map(|(size, align_log2)| Op::Alloc { size, align_log2 }),
        3 => (any::<usize>(), 0u64..3).prop_map(|(pick, frames_ahead)| Op::Free { pick, frames_ahead }),
        1 => any::<usize>().prop_map(|pick| Op::FreeNow { pick }),
        2 => Just(Op::NextFrame),
        2 => Just(Op::Retire),
        1 => any::<usize>().prop_map(|pick| Op::Pin { pick }),
        1 => (1u32..20).prop_map(|max_moves| Op::Defrag { max_moves }),
    ]
}

fn overlaps(a: &Allocation, b: &Allocation) -> bool {
    a.block == b.block && a.offset < b.offset + b.size && b.offset < a.offset + a.size
}

struct Model {
    live: Vec<(AllocKey, u64 /*align*/)>,
    /// Freed ranges not yet past their fence: (last frame, range).
    pending: Vec<(u64, Allocation)>,
    pinned: HashMap<AllocKey, Allocation>,
    freed: Vec<AllocKey>,
    frame: u64,
    completed: u64,
}

fn check(pool: &PoolAllocator, m: &Model) -> Result<(), TestCaseError> {
    pool.validate().map_err(TestCaseError::fail)?;
    let mut ranges: Vec<Allocation> = Vec::new();
    for &(key, align) in &m.live {
        let a = pool
            .resolve(key)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(a.offset % align.max(4), 0, "misaligned");
        ranges.push(a);
    }
    ranges.extend(m.pending.iter().map(|(_, r)| *r));
    ranges.sort_by_key(|r| (r.block, r.offset));
    for w in ranges.windows(2) {
        prop_assert!(!overlaps(&w[0], &w[1]), "{:?} overlaps {:?}", w[0], w[1]);
    }
    for (key, at) in &m.pinned {
        if let Ok(now) = pool.resolve(*key) {
            prop_assert_eq!(now, *at, "a pinned allocation moved");
        }
    }
    for key in &m.freed {
        prop_assert_eq!(pool.resolve(*key), Err(AllocError::Stale(*key)));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn random_operations_keep_every_invariant(ops in prop::collection::vec(op(), 1..300), blocks in 1usize..4) {
        let mut pool = PoolAllocator::new();
        for _ in 0..blocks {
            pool.add_block(4 << 20);
        }
        let mut m = Model { live: vec![], pending: vec![], pinned: HashMap::new(), freed: vec![], frame: 0, completed: 0 };
        for op in ops {
            match op {
                Op::Alloc { size, align_log2 } => match pool.alloc(size, 1 << align_log2) {
                    Ok(k) => m.live.push((k, 1 << align_log2)),
                    Err(AllocError::OutOfSpace { .. }) => {}
                    Err(e) => return Err(TestCaseError::fail(e.to_string())),
                },
                Op::Free { pick, frames_ahead } if !m.live.is_empty() => {
                    let (k, _) = m.live.swap_remove(pick % m.live.len());
                    let r = pool.resolve(k).unwrap();
                    let last = m.frame + frames_ahead;
                    pool.free(k, last).unwrap();
                    m.pending.push((last, r));
                    m.pinned.remove(&k);
                    m.freed.push(k);
                }
                Op::FreeNow { pick } if !m.live.is_empty() => {
                    let (k, _) = m.live.swap_remove(pick % m.live.len());
                    pool.free_now(k).unwrap();
                    m.pinned.remove(&k);
                    m.freed.push(k);
                }
                Op::NextFrame => m.frame += 1,
                Op::Retire => {
                    m.completed = m.frame;
                    pool.retire(m.completed);
                    let done = m.completed;
                    m.pending.retain(|(f, _)| *f > done);
                }
                Op::Pin { pick } if !m.live.is_empty() => {
                    let (k, _) = m.live[pick % m.live.len()];
                    pool.set_pinned(k, true).unwrap();
                    m.pinned.insert(k, pool.resolve(k).unwrap());
                }
                Op::Defrag { max_moves } => {
                    let plan = pool.plan_defrag(DefragBudget { max_bytes: 8 << 20, max_moves });
                    for mv in &plan.moves {
                        prop_assert!(!overlaps(&mv.from, &mv.to), "a move overlaps its source");
                        prop_assert_eq!(pool.resolve(mv.key).unwrap(), mv.from, "handles move only at commit");
                    }
                    let moved: Vec<_> = plan.moves.iter().map(|mv| (mv.key, mv.from, mv.to)).collect();
                    pool.commit_defrag(plan, m.frame);
                    for (k, from, to) in moved {
                        prop_assert_eq!(pool.resolve(k).unwrap(), to);
                        m.pending.push((m.frame, from));
                    }
                }
                _ => {}
            }
            check(&pool, &m)?;
        }
        // Freeing everything and passing every fence returns an empty pool.
        for (k, _) in m.live.drain(..) {
            pool.free(k, m.frame).unwrap();
        }
        pool.retire(u64::MAX);
        prop_assert!(pool.validate().is_ok());
        prop_assert_eq!(pool.live_bytes(), 0);
        prop_assert_eq!(pool.free_bytes(), (blocks as u64) * (4 << 20));
        let empties: Vec<u32> = pool.empty_blocks().collect();
        prop_assert_eq!(empties.len(), blocks);
        for b in empties {
            prop_assert!(pool.remove_block(b).is_ok());
        }
    }
}

#[test]
fn deferred_frees_wait_for_their_fence() {
    let mut pool = PoolAllocator::new();
    pool.add_block(1024);
    let a = pool.alloc(1024, 4).unwrap();
    pool.free(a, 5).unwrap();
    assert_eq!(pool.resolve(a), Err(AllocError::Stale(a)));
    assert!(matches!(
        pool.alloc(4, 4),
        Err(AllocError::OutOfSpace { free: 0, .. })
    ));
    assert_eq!(pool.retire(4), 0, "frame 5's fence has not passed");
    assert!(pool.alloc(4, 4).is_err());
    assert_eq!(pool.retire(5), 1);
    assert!(pool.alloc(1024, 4).is_ok());
    assert!(matches!(pool.free(a, 9), Err(AllocError::Stale(_))));
    assert_eq!(pool.alloc(8, 3), Err(AllocError::BadAlignment(3)));
    assert_eq!(pool.alloc(0, 4), Err(AllocError::Empty));
}

#[test]
fn uniform_sizes_fill_the_pool_and_holes_serve_them_again() {
    // 100,003 bytes: not a bin size, the case where OffsetAllocator strands holes.
    let mut pool = PoolAllocator::new();
    let pool_bytes = 256u64 << 20;
    pool.add_block(pool_bytes);
    let size = 100_003;
    let mut keys = Vec::new();
    while let Ok(k) = pool.alloc(size, 4) {
        keys.push(k);
    }
    let utilization = pool.live_bytes() as f64 / pool_bytes as f64;
    assert!(utilization > 0.999, "utilization {utilization}");
    // Free every other one; each hole must serve the same size again.
    let freed = keys.len() / 2;
    for k in keys.iter().step_by(2) {
        pool.free_now(*k).unwrap();
    }
    for _ in 0..freed {
        pool.alloc(size, 4)
            .expect("a hole of the same size serves the request");
    }
}

#[test]
fn defrag_empties_the_sparsest_block_and_compacts_within_one() {
    let mut pool = PoolAllocator::new();
    pool.add_block(1 << 20);
    pool.add_block(1 << 20);
    let a: Vec<AllocKey> = (0..16)
        .map(|_| pool.alloc(64 << 10, 256).unwrap())
        .collect(); // fills block 0
    let b: Vec<AllocKey> = (0..4).map(|_| pool.alloc(64 << 10, 256).unwrap()).collect(); // block 1
    for k in &a[..8] {
        pool.free_now(*k).unwrap();
    }
    let pinned = b[0];
    pool.set_pinned(pinned, true).unwrap();
    let before = pool.resolve(pinned).unwrap();
    let plan = pool.plan_defrag(DefragBudget {
        max_bytes: u64::MAX,
        max_moves: 100,
    });
    assert!(!plan.moves.is_empty());
    assert!(plan.moves.iter().all(|m| m.key != pinned));
    pool.commit_defrag(plan, 7);
    pool.retire(7);
    assert_eq!(pool.resolve(pinned).unwrap(), before);
    pool.validate().unwrap();
    // One block: compaction slides the top allocations down.
    let mut one = PoolAllocator::new();
    one.add_block(1 << 20);
    let keys: Vec<AllocKey> = (0..16).map(|_| one.alloc(64 << 10, 4).unwrap()).collect();
    for k in keys.iter().step_by(2) {
        one.free_now(*k).unwrap();
    }
    assert!(one.fragmentation() > 0.8);
    for frame in 0..10 {
        let plan = one.plan_defrag(DefragBudget {
            max_bytes: 1 << 20,
            max_moves: 4,
        });
        one.commit_defrag(plan, frame);
        one.retire(frame);
    }
    assert_eq!(one.fragmentation(), 0.0, "compacted: one free range left");
    let moved = one.stats().allocations_moved;
    assert!(
        (4..=40).contains(&moved),
        "compaction moved something, at most 4 moves in each of 10 frames: {moved}"
    );
}

#[test]
fn emptying_a_block_never_fills_an_empty_one() {
    // Three blocks, each three quarters full with one allocation, and a
    // fourth block empty: moving a block's allocation into the empty block
    // empties nothing in net, and would repeat every frame (the runtime test
    // that found it: the blocks traded their contents back and forth).
    let mut pool = PoolAllocator::new();
    for _ in 0..4 {
        pool.add_block(1 << 20);
    }
    let keys: Vec<AllocKey> = (0..4)
        .map(|_| pool.alloc(768 << 10, 256).unwrap())
        .collect();
    pool.free_now(keys[3]).unwrap();
    assert_eq!(pool.empty_blocks().count(), 1);
    for frame in 0..5 {
        let plan = pool.plan_defrag(DefragBudget {
            max_bytes: u64::MAX,
            max_moves: 100,
        });
        assert!(
            plan.moves.iter().all(|m| m.from.block == m.to.block),
            "frame {frame}: a move between blocks fills the empty block: {:?}",
            plan.moves
        );
        pool.commit_defrag(plan, frame);
        pool.retire(frame);
    }
    assert_eq!(
        pool.empty_blocks().count(),
        1,
        "the empty block stays empty"
    );
    assert_eq!(pool.stats().allocations_moved, 0);
    pool.validate().unwrap();
}

#[test]
fn compaction_sweeps_holes_into_the_gap_when_no_hole_holds_its_neighbour() {
    // [16 KiB, hole 16 KiB] x 32, then 1 MiB allocations, then the gap: no
    // hole holds a 1 MiB neighbour of the gap, so only the sweep gathers them.
    let mut pool = PoolAllocator::new();
    pool.add_block(8 << 20);
    let small: Vec<AllocKey> = (0..64).map(|_| pool.alloc(16 << 10, 16).unwrap()).collect();
    let big: Vec<AllocKey> = (0..4).map(|_| pool.alloc(1 << 20, 256).unwrap()).collect();
    for k in small.iter().step_by(2) {
        pool.free_now(*k).unwrap();
    }
    assert_eq!(
        pool.free_bytes() - pool.metrics().largest_free,
        32 * (16 << 10)
    );
    assert!(pool.fragmentation() > 0.12);
    let budget = DefragBudget {
        max_bytes: 1 << 20,
        max_moves: 8,
    };
    let mut late_moves = 0;
    // Frees deferred two frames, as behind a fence.
    for frame in 0..300u64 {
        pool.retire(frame.saturating_sub(2));
        let plan = pool.plan_defrag(budget);
        assert!(plan.bytes <= budget.max_bytes && plan.moves.len() <= 8);
        if frame >= 200 {
            late_moves += plan.moves.len();
        }
        pool.commit_defrag(plan, frame);
        pool.validate().unwrap();
    }
    pool.retire(u64::MAX);
    assert!(
        pool.fragmentation() < 1.0 / 32.0,
        "the holes joined the gap: {:?}",
        pool.free_ranges()
    );
    assert_eq!(late_moves, 0, "a compact pool plans no more moves");
    let mut ranges: Vec<_> = small
        .iter()
        .skip(1)
        .step_by(2)
        .chain(&big)
        .map(|&k| pool.resolve(k).unwrap())
        .collect();
    ranges.sort_by_key(|a| a.offset);
    for w in ranges.windows(2) {
        assert!(w[0].offset + w[0].size <= w[1].offset, "{w:?} overlap");
    }
}

#[test]
fn the_sweep_turns_at_a_pinned_allocation_and_stops_when_it_gains_nothing() {
    // [32 KiB, hole] x 16, the pinned allocation, then [96 KiB x 2, hole] x 13
    // and the gap, in address order or its mirror (allocations are carved from
    // whichever end of a free range the sweep leaves behind). Nothing on the
    // gap's side of the pin fits the 32 KiB holes on the other, and the sweep
    // cannot pass the pin: those holes stay, and planning must stop.
    let mut pool = PoolAllocator::new();
    pool.add_block(8 << 20);
    let low: Vec<AllocKey> = (0..32).map(|_| pool.alloc(32 << 10, 16).unwrap()).collect();
    let pinned = pool.alloc(96 << 10, 16).unwrap();
    pool.set_pinned(pinned, true).unwrap();
    let at = pool.resolve(pinned).unwrap();
    let high: Vec<AllocKey> = (0..39).map(|_| pool.alloc(96 << 10, 16).unwrap()).collect();
    for k in low.iter().step_by(2).chain(high.iter().step_by(3)) {
        pool.free_now(*k).unwrap();
    }
    let walled = 16 * (32 << 10);
    assert!((walled as f64) / (pool.free_bytes() as f64) > 1.0 / 32.0);
    let mut late_moves = 0;
    for frame in 0..400u64 {
        pool.retire(frame.saturating_sub(2));
        let plan = pool.plan_defrag(DefragBudget {
            max_bytes: 512 << 10,
            max_moves: 4,
        });
        assert!(plan.moves.iter().all(|m| m.key != pinned));
        if frame >= 300 {
            late_moves += plan.moves.len();
        }
        pool.commit_defrag(plan, frame);
        assert_eq!(pool.resolve(pinned).unwrap(), at);
    }
    pool.retire(u64::MAX);
    pool.validate().unwrap();
    let free = pool.free_ranges();
    let low_above = pool.resolve(low[1]).unwrap().offset > at.offset;
    let beyond = |r: &&(u64, u64)| (r.0 > at.offset) == low_above;
    assert_eq!(
        free.iter().filter(|r| !beyond(r)).count(),
        1,
        "every hole on the gap's side of the pin joined the gap: {free:?}"
    );
    assert_eq!(free.iter().filter(beyond).count(), 16);
    assert_eq!(late_moves, 0, "no endless sweeping: {free:?}");
}

/// Whether `a` lies inside `outer`.
fn within(a: &Allocation, outer: (u64, u64)) -> bool {
    a.offset >= outer.0 && a.offset + a.size <= outer.0 + outer.1
}

/// A pool where, from the gap outward, lie B and A (16 KiB each) with a
/// `small`-byte hole between them, then a `big`-byte hole, then X (`rest`
/// bytes), after one compaction plan, committed in frame `frame`: it moves
/// A and B into the big hole and walks past the small one. The block must
/// leave a gap larger than the big hole.
struct WalkedPast {
    pool: PoolAllocator,
    x: AllocKey,
    a: AllocKey,
    b: AllocKey,
    /// Where A, the small hole and B were.
    a_at: Allocation,
    small_at: Allocation,
    b_at: Allocation,
}

fn walked_past(block: u64, rest: u64, big: u64, small: u64, frame: u64) -> WalkedPast {
    let mut pool = PoolAllocator::new();
    pool.add_block(block);
    let x = pool.alloc(rest, 16).unwrap();
    let big_hole = pool.alloc(big, 16).unwrap();
    let a = pool.alloc(16 << 10, 16).unwrap();
    let small_hole = pool.alloc(small, 16).unwrap();
    let b = pool.alloc(16 << 10, 16).unwrap();
    let big_at = pool.resolve(big_hole).unwrap();
    let small_at = pool.resolve(small_hole).unwrap();
    let (a_at, b_at) = (pool.resolve(a).unwrap(), pool.resolve(b).unwrap());
    pool.free_now(big_hole).unwrap();
    pool.free_now(small_hole).unwrap();
    let plan = pool.plan_defrag(DefragBudget {
        max_bytes: 1 << 20,
        max_moves: 16,
    });
    let moved: Vec<AllocKey> = plan.moves.iter().map(|m| m.key).collect();
    assert_eq!(moved.len(), 2, "{moved:?}");
    assert!(moved.contains(&a) && moved.contains(&b));
    for m in &plan.moves {
        assert!(
            within(&m.to, (big_at.offset, big)),
            "{m:?} into the big hole"
        );
    }
    pool.commit_defrag(plan, frame);
    WalkedPast {
        pool,
        x,
        a,
        b,
        a_at,
        small_at,
        b_at,
    }
}

#[test]
fn a_hole_the_compaction_walks_past_is_held_until_the_moves_fence() {
    // The small hole between A and B must not serve an allocation before
    // their old ranges are released, or it would wall them off from the gap.
    let WalkedPast {
        mut pool,
        x,
        a_at,
        small_at: h_at,
        b_at,
        ..
    } = walked_past(1 << 20, 64 << 10, 128 << 10, 4 << 10, 7);
    assert!(
        pool.free_ranges().iter().all(|r| r.0 != h_at.offset),
        "the small hole is held: {:?}",
        pool.free_ranges()
    );
    assert_eq!(pool.metrics().held_bytes, 4 << 10);
    // Held is still free: it counts in the free bytes and, apart from the
    // gap, as fragmentation.
    let in_bins: u64 = pool.free_ranges().iter().map(|r| r.1).sum();
    let largest_in_bins = pool.free_ranges().iter().map(|r| r.1).max().unwrap();
    assert_eq!(pool.free_bytes(), in_bins + (4 << 10));
    let expected = 1.0 - largest_in_bins as f64 / (in_bins + (4 << 10)) as f64;
    assert!((pool.fragmentation() - expected).abs() < 1e-12);
    assert!(pool.fragmentation() > 0.0);
    let meanwhile = pool.alloc(4 << 10, 16).unwrap();
    assert!(!overlaps(&pool.resolve(meanwhile).unwrap(), &h_at));
    pool.validate().unwrap();
    pool.retire(6);
    assert!(pool.free_ranges().iter().all(|r| r.0 != h_at.offset));
    pool.retire(7);
    pool.validate().unwrap();
    assert_eq!(pool.metrics().held_bytes, 0);
    let largest = *pool.free_ranges().iter().max_by_key(|r| r.1).unwrap();
    for old in [a_at, h_at, b_at] {
        assert!(within(&old, largest), "{old:?} joined the gap {largest:?}");
    }
    assert_eq!(pool.resolve(x).unwrap().size, 64 << 10);
}

#[test]
fn allocations_are_carved_from_the_gaps_end_away_from_what_compaction_vacates() {
    // One block: the gap [0, 832K), then Z, Y and X of 64 KiB each. X is
    // freed: compaction moves Z (next to the gap, above it) into X's hole,
    // and Z's old range joins the gap when the moves' fence passes. An
    // allocation made meanwhile must come from the gap's low end: carved
    // from its high end, it would wall Z's old range off as a new hole.
    let mut pool = PoolAllocator::new();
    pool.add_block(1 << 20);
    let unit = 64 << 10;
    let x = pool.alloc(unit, 256).unwrap();
    let y = pool.alloc(unit, 256).unwrap();
    let z = pool.alloc(unit, 256).unwrap();
    let (x_at, z_at) = (pool.resolve(x).unwrap(), pool.resolve(z).unwrap());
    assert!(
        z_at.offset < pool.resolve(y).unwrap().offset
            && pool.resolve(y).unwrap().offset < x_at.offset
    );
    assert_eq!(
        x_at.offset + unit,
        1 << 20,
        "the first allocations sit at the block's top"
    );
    pool.free_now(x).unwrap();
    let plan = pool.plan_defrag(DefragBudget {
        max_bytes: 1 << 20,
        max_moves: 8,
    });
    assert_eq!(plan.moves.len(), 1, "{plan:?}");
    assert_eq!(plan.moves[0].from, z_at);
    pool.commit_defrag(plan, 1);
    let meanwhile = pool.alloc(16 << 10, 256).unwrap();
    assert_eq!(pool.resolve(meanwhile).unwrap().offset, 0);
    pool.retire(1);
    pool.validate().unwrap();
    assert_eq!(pool.fragmentation(), 0.0, "{:?}", pool.free_ranges());
    assert_eq!(
        pool.free_ranges(),
        [(16 << 10, (1 << 20) - 16 * 1024 - 2 * unit)]
    );
}

#[test]
fn an_allocation_that_fits_only_in_held_ranges_takes_them() {
    // Compaction holds the 12 KiB hole between A and B. Once everything else
    // is full, a 12 KiB request fits only in the held range: it must get it,
    // not fail.
    let WalkedPast {
        mut pool,
        x: rest,
        a,
        b,
        ..
    } = walked_past(256 << 10, 32 << 10, 64 << 10, 12 << 10, 3);
    assert_eq!(pool.metrics().held_bytes, 12 << 10);
    // Fill everything that is free, then ask for one more range of the
    // held size: it fits only where the hold is.
    let mut fillers = Vec::new();
    while let Some(take) = pool.free_ranges().iter().map(|r| r.1).max() {
        fillers.push(pool.alloc(take, 4).unwrap());
    }
    assert_eq!(pool.free_bytes(), 12 << 10, "only the held range is free");
    let k = pool.alloc(12 << 10, 4).expect("the held range serves it");
    assert_eq!(pool.metrics().held_bytes, 0);
    assert!(matches!(
        pool.alloc(4, 4),
        Err(AllocError::OutOfSpace { .. })
    ));
    pool.validate().unwrap();
    pool.retire(u64::MAX);
    pool.validate().unwrap();
    for key in [rest, a, b, k].into_iter().chain(fillers) {
        pool.free_now(key).unwrap();
    }
    assert_eq!(pool.free_ranges(), vec![(0, 256 << 10)]);
}

#[test]
fn a_level_unload_interleaved_with_live_data_closes_in_one_plan() {
    // 200 allocations of 64 KiB, every other one a "level" freed at once
    // (behind a fence), then the gap: when the fence passes, 100 holes
    // amount to 11% of the free space. A budget that covers them closes them
    // in the frame they are released: half the live ones fill the holes
    // farther out, and the holes nearer the gap join it when those moves'
    // fence passes (held for the gap meanwhile, still free).
    let mut pool = PoolAllocator::new();
    pool.add_block(64 << 20);
    let keys: Vec<AllocKey> = (0..200)
        .map(|_| pool.alloc(64 << 10, 256).unwrap())
        .collect();
    for k in keys.iter().step_by(2) {
        pool.free(*k, 10).unwrap();
    }
    let budget = DefragBudget {
        max_bytes: 8 << 20,
        max_moves: 512,
    };
    let plan = pool.plan_defrag(budget);
    assert!(plan.moves.is_empty(), "nothing to do before the fence");
    pool.commit_defrag(plan, 10);
    pool.retire(10);
    let released = pool.fragmentation();
    assert!(released > 0.1, "{released}");
    for frame in 12..20 {
        // A renderer's order: the fences that passed release, then the plan.
        pool.retire(frame - 2);
        let plan = pool.plan_defrag(budget);
        assert!(plan.bytes <= budget.max_bytes);
        pool.commit_defrag(plan, frame);
        pool.validate().unwrap();
        let f = pool.fragmentation();
        if frame < 14 {
            // The holes farther out are filled; the nearer ones are held
            // until frame 12's moves retire, and count as free meanwhile.
            assert!(f < released / 1.5, "frame {frame}: {f:.3}");
            assert!(pool.metrics().held_bytes > 0);
            continue;
        }
        assert!(f <= 0.01, "frame {frame}: {f:.3} {:?}", pool.free_ranges());
    }
    pool.retire(u64::MAX);
    assert_eq!(pool.free_ranges().len(), 1, "{:?}", pool.free_ranges());
    let live: Vec<Allocation> = keys
        .iter()
        .skip(1)
        .step_by(2)
        .map(|&k| pool.resolve(k).unwrap())
        .collect();
    for (i, a) in live.iter().enumerate() {
        assert!(live[..i].iter().all(|b| !overlaps(a, b)));
    }
}

#[test]
fn requests_larger_than_any_block_fail_cleanly() {
    let mut pool = PoolAllocator::new();
    pool.add_block(1 << 20);
    for (size, align) in [
        (u64::MAX, 4),
        (u64::MAX - 3, 256),
        (MAX_BLOCK_BYTES + 1, 4),
        (16, 1 << 63),
        ((1 << 20) + 4, 4),
    ] {
        match pool.alloc(size, align) {
            Err(AllocError::OutOfSpace { .. }) => {}
            other => panic!("{size} bytes at {align}: {other:?}"),
        }
    }
    // A block larger than the limit is cut to it.
    let big = pool.add_block(u64::MAX);
    assert!(pool.alloc(MAX_BLOCK_BYTES - 4, 4).is_ok());
    assert!(!pool.is_block_empty(big));
    pool.validate().unwrap();
}

/// A block of `count` allocations of `unit` bytes with nothing free, and
/// their keys in address order: tests free some to lay out holes and a gap.
fn units_in_a_block(unit: u64, count: usize) -> (PoolAllocator, Vec<AllocKey>) {
    let mut pool = PoolAllocator::new();
    pool.add_block(count as u64 * unit);
    let mut keys: Vec<AllocKey> = (0..count).map(|_| pool.alloc(unit, 16).unwrap()).collect();
    keys.sort_by_key(|k| pool.resolve(*k).unwrap().offset);
    (pool, keys)
}

#[test]
fn a_walk_stopped_before_a_hole_leaves_it_to_the_other_side() {
    // 1 MiB of 64 KiB allocations, in address order: X X [hole H: 4] I
    // [gap: 5] Y Y Y Y. Compaction walks down from the gap, takes I and
    // stops before X (H then X would be more than the free bytes outside
    // can take). H is outside the walked range, so the walk up from the gap
    // may still fill it with three of the Ys: the frame closes H at once
    // rather than leave it to the next plans.
    let unit = 64 << 10;
    let (mut pool, keys) = units_in_a_block(unit, 16);
    for i in (2..6).chain(7..12) {
        pool.free_now(keys[i]).unwrap();
    }
    let budget = DefragBudget {
        max_bytes: 16 * unit,
        max_moves: 64,
    };
    let plan = pool.plan_defrag(budget);
    let gap_top = 12 * unit;
    let from_above = plan
        .moves
        .iter()
        .filter(|m| m.from.offset >= gap_top)
        .count();
    assert_eq!(plan.moves.len(), 4, "{:?}", plan.moves);
    assert_eq!(from_above, 3, "{:?}", plan.moves);
    assert!(plan
        .moves
        .iter()
        .all(|m| m.to.offset >= 2 * unit && m.to.offset < 6 * unit));
    pool.commit_defrag(plan, 1);
    assert_eq!(pool.fragmentation(), 0.0, "{:?}", pool.free_ranges());
    pool.retire(1);
    pool.validate().unwrap();
    assert_eq!(pool.free_ranges(), [(6 * unit, 9 * unit)]);
}

#[test]
fn a_walk_stops_at_a_large_free_range_and_fills_it() {
    // 1 MiB allocations, in address order: ten live ones with a 1 MiB hole
    // after each, four more (X), a 16 MiB hole (H), two (I), the 40 MiB gap,
    // then the rest. Walked past, H would only join the gap at the moves'
    // fence and could take none of them; the walk stops there instead, and
    // the allocations moved from both sides of the gap land in H in this
    // frame.
    let mib = 1 << 20;
    let (mut pool, keys) = units_in_a_block(mib, 128);
    let holes = (0..10).map(|i| 2 * i + 1);
    let h = 24..40;
    let gap = 42..82;
    for i in holes.chain(h.clone()).chain(gap) {
        pool.free_now(keys[i]).unwrap();
    }
    let before = pool.fragmentation();
    let budget = DefragBudget {
        max_bytes: 64 * mib,
        max_moves: 64,
    };
    let plan = pool.plan_defrag(budget);
    let in_h = |offset: u64| offset >= h.start as u64 * mib && offset < h.end as u64 * mib;
    let into_h = plan.moves.iter().filter(|m| in_h(m.to.offset)).count();
    assert!(into_h >= 8, "{into_h} moves into H: {:?}", plan.moves);
    assert!(
        plan.moves
            .iter()
            .any(|m| m.from.offset >= 82 * mib && in_h(m.to.offset)),
        "the side above the gap fills H too: {:?}",
        plan.moves
    );
    pool.commit_defrag(plan, 1);
    assert!(
        pool.fragmentation() < before / 2.0,
        "{} then {}",
        before,
        pool.fragmentation()
    );
    pool.retire(1);
    pool.validate().unwrap();
}

#[test]
fn a_range_that_ends_a_walk_is_filled_from_its_far_end() {
    // 1 MiB allocations: the 40 MiB gap at the block's start, two (I), a
    // 16 MiB hole (H), then live ones to the end. The walk up from the gap
    // takes I and stops at H, which takes them: at its far end from the
    // gap, so that the rest of H joins the gap with I's old ranges when the
    // fence passes. Filled from its near end, H would be walled off by them.
    let mib = 1 << 20;
    let (mut pool, keys) = units_in_a_block(mib, 128);
    let (gap, h) = (0..40, 42..58);
    for i in gap.clone().chain(h.clone()) {
        pool.free_now(keys[i]).unwrap();
    }
    let budget = DefragBudget {
        max_bytes: 64 * mib,
        max_moves: 64,
    };
    let plan = pool.plan_defrag(budget);
    let to: Vec<u64> = plan.moves.iter().map(|m| m.to.offset / mib).collect();
    assert_eq!(to.len(), 2, "{:?}", plan.moves);
    assert!(
        to.iter().all(|o| (56..58).contains(o)),
        "H is filled from its far end: {to:?}"
    );
    pool.commit_defrag(plan, 1);
    pool.retire(1);
    pool.validate().unwrap();
    assert_eq!(pool.free_ranges(), [(0, 56 * mib)]);
}

/// A move whose allocation is freed between `plan_defrag` and
/// `commit_defrag`: its copy was recorded and runs on the GPU with the
/// frame, so its destination must not be handed out before that frame's
/// fence; on the old code the commit released it at once, and the next
/// allocation took the range the late copy then overwrote.
#[test]
fn a_freed_moves_destination_waits_for_its_frames_fence() {
    let mut pool = PoolAllocator::new();
    pool.add_block(1 << 20);
    let keys: Vec<AllocKey> = (0..16).map(|_| pool.alloc(64 << 10, 4).unwrap()).collect();
    for k in keys.iter().step_by(2) {
        pool.free_now(*k).unwrap();
    }
    let plan = pool.plan_defrag(DefragBudget {
        max_bytes: u64::MAX,
        max_moves: 1,
    });
    let moved = plan.moves[0].key;
    let destination = plan.moves[0].to;
    // The renderer frees the allocation while the frame's copy is recorded.
    pool.free(moved, 3).unwrap();
    pool.commit_defrag(plan, 3);
    // Until frame 3 retires, no allocation overlaps the late copy's target.
    let overlaps = |a: Allocation| {
        a.block == destination.block
            && a.offset < destination.offset + destination.size
            && destination.offset < a.offset + a.size
    };
    let mut taken = Vec::new();
    while let Ok(k) = pool.alloc(64 << 10, 4) {
        let a = pool.resolve(k).unwrap();
        assert!(
            !overlaps(a),
            "{a:?} overlaps the pending copy into {destination:?}"
        );
        taken.push(k);
    }
    pool.validate().unwrap();
    // Once the frame has retired, the range is free again.
    pool.retire(3);
    pool.alloc(64 << 10, 4)
        .expect("the range is free once the frame retired");
    pool.validate().unwrap();
}
