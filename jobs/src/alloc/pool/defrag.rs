//! Defragmentation planning: which allocations a frame moves, within a
//! budget of bytes and moves, and the state that planning keeps between
//! frames. The algorithm is described in the [module documentation](crate::alloc)
//! of `alloc`; the copies are the GPU layer's, between
//! [`PoolAllocator::plan_defrag`] and [`PoolAllocator::commit_defrag`].

use std::time::Instant;

use slotmap::Key;

use super::super::tlsf::{NodeState, NIL};
use super::{key_of, AllocKey, Allocation, PoolAllocator};

/// A budget for one frame's defragmentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefragBudget {
    /// Bytes that may be moved.
    pub max_bytes: u64,
    /// Allocations that may be moved.
    pub max_moves: u32,
}

/// One planned move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Move {
    /// The allocation.
    pub key: AllocKey,
    /// Where it is.
    pub from: Allocation,
    /// Where it goes (reserved; never overlaps `from`).
    pub to: Allocation,
    dest_node: u32,
}

/// Moves to perform: copy each `from` to `to` on the GPU, then
/// [`commit_defrag`](PoolAllocator::commit_defrag) (or
/// [`cancel_defrag`](PoolAllocator::cancel_defrag)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DefragPlan {
    /// The moves, in the order to copy them.
    pub moves: Vec<Move>,
    /// Bytes the moves copy.
    pub bytes: u64,
    /// Blocks the plan empties completely.
    pub blocks_emptied: u32,
    /// Free ranges between the gap and the allocations moved away from it,
    /// held out of the bins until the moves' fence passes (see
    /// `PoolAllocator::compact`).
    held: Vec<u32>,
    /// Whether the plan moves allocations away from below the gap (`[0]`)
    /// and from above it (`[1]`): those ranges join the gap when the fence
    /// passes, so new allocations are carved from the gap's other end.
    vacates: [bool; 2],
}

/// A free range at least this large ends a compaction walk rather than be
/// walked past. Walked past, it would join the gap only when the moves'
/// fence passes, counting as fragmentation until then, and could take none
/// of the moved allocations; left outside, it takes them, and closes in the
/// frame (after a level unload, the frame its ranges are released in). Over
/// 192 seeds of the stress trace, 4, 8 and 16 MiB all cut the samples over
/// 5% at every budget measured; 8 MiB the most.
const FILL_RANGE: u64 = 8 << 20;

/// A compaction pass (see `PoolAllocator::plan_compaction`).
#[derive(Clone, Copy)]
enum Compaction {
    /// Both sides of the gap into holes elsewhere.
    Fill,
    /// One side (below the gap if `down`) into holes or the gap's far end.
    Sweep { down: bool },
}

/// What a compaction pass has walked: the range from the lowest to the
/// highest allocation it takes (the gap included), the free bytes outside it
/// still unclaimed, and the bytes it takes.
struct Walk {
    lo: u64,
    hi: u64,
    room: u64,
    bytes: u64,
}

/// Defragmentation's state between plans, kept in the [`PoolAllocator`].
pub(super) struct DefragState {
    /// The last committed or cancelled plan's move list, cleared, for the next
    /// plan: planning every frame allocates nothing once it has grown.
    pub(super) spare_moves: Vec<Move>,
    /// The same for the plan's held ranges.
    pub(super) spare_held: Vec<u32>,
    /// Scratch for the used nodes of the block a plan tries to empty.
    pub(super) scratch_nodes: Vec<(u32, AllocKey)>,
    /// Scratch for that block's free nodes, parked out of the bins meanwhile.
    pub(super) scratch_parked: Vec<u32>,
    /// The direction compaction's sweep moves the gap (see `plan_compaction`).
    pub(super) sweep_up: bool,
    /// Scattered free bytes at the sweep's last turn in each direction (down, up).
    pub(super) sweep_turns: [u64; 2],
    /// Scattered free bytes when a round trip of the sweep gathered nothing
    /// (pinned allocations wall the holes off): the sweep waits until new
    /// holes appear rather than copy the block back and forth for nothing.
    pub(super) sweep_stalled: Option<u64>,
    /// The frame of the last committed plan that vacated ranges below
    /// (`[0]`) or above (`[1]`) the gap, until it retires (see `alloc`).
    pub(super) vacating: [Option<u64>; 2],
}

impl Default for DefragState {
    fn default() -> Self {
        DefragState {
            spare_moves: Vec::new(),
            spare_held: Vec::new(),
            scratch_nodes: Vec::new(),
            scratch_parked: Vec::new(),
            sweep_up: false,
            sweep_turns: [u64::MAX; 2],
            sweep_stalled: None,
            vacating: [None; 2],
        }
    }
}

impl PoolAllocator {
    /// Plans moves within `budget`: if some block can be emptied into the free
    /// space of the others, its allocations move there (sparsest block first);
    /// otherwise compaction grows the largest free range by filling holes with
    /// its neighbours and, while free space is scattered, sweeps it through the
    /// block (see the [module documentation](crate::alloc)). Destinations are reserved
    /// now; nothing moves until [`commit_defrag`](Self::commit_defrag). Pinned
    /// allocations stay.
    pub fn plan_defrag(&mut self, budget: DefragBudget) -> DefragPlan {
        let started = Instant::now();
        let mut plan = DefragPlan {
            moves: std::mem::take(&mut self.defrag.spare_moves),
            held: std::mem::take(&mut self.defrag.spare_held),
            ..DefragPlan::default()
        };
        let live_blocks = self.tlsf.blocks.iter().filter(|b| b.live).count();
        if live_blocks > 1 {
            self.plan_empty_block(budget, &mut plan);
        }
        if plan.moves.is_empty() {
            self.plan_compaction(budget, &mut plan);
        }
        let took = started.elapsed();
        self.stats.plans += 1;
        self.stats.plan_time_total += took;
        self.stats.plan_time_max = self.stats.plan_time_max.max(took);
        plan
    }

    fn budget_allows(plan: &DefragPlan, budget: DefragBudget, size: u64) -> bool {
        (plan.moves.len() as u32) < budget.max_moves && plan.bytes + size <= budget.max_bytes
    }

    /// Used nodes of a block in address order, (node, key), into `out`.
    fn used_nodes(&self, block: u32, out: &mut Vec<(u32, AllocKey)>) {
        out.clear();
        let mut n = self.tlsf.blocks[block as usize].first;
        while n != NIL {
            let node = &self.tlsf.nodes[n as usize];
            let owner = self.tlsf.owner(n);
            if node.state == NodeState::Used && owner != 0 {
                out.push((n, key_of(owner)));
            }
            n = node.next;
        }
    }

    fn plan_empty_block(&mut self, budget: DefragBudget, plan: &mut DefragPlan) {
        // The sparsest block with something to move whose live bytes fit elsewhere.
        let candidate = self
            .tlsf
            .blocks
            .iter()
            .enumerate()
            .filter(|(_, b)| b.live && b.used_bytes > 0)
            .min_by_key(|(_, b)| b.used_bytes)
            .map(|(i, b)| (i as u32, b.used_bytes));
        let Some((block, used)) = candidate else {
            return;
        };
        // Empty blocks take nothing: filling one to empty another gains
        // nothing, and blocks of equal occupancy would trade their contents
        // back and forth every frame. Their ranges are parked with the
        // candidate's while the plan is made.
        let mut empty_bytes = 0;
        for b in 0..self.tlsf.blocks.len() as u32 {
            if b != block && self.is_block_empty(b) {
                empty_bytes += self.tlsf.blocks[b as usize].size;
            }
        }
        let free_elsewhere = self.tlsf.free_bytes - self.block_free_bytes(block) - empty_bytes;
        if used > free_elsewhere || used > budget.max_bytes {
            return;
        }
        let mut parked = std::mem::take(&mut self.defrag.scratch_parked);
        for b in 0..self.tlsf.blocks.len() as u32 {
            if b == block || self.is_block_empty(b) {
                self.tlsf.detach_block(b, &mut parked);
            }
        }
        let mut emptied = true;
        let mut nodes = std::mem::take(&mut self.defrag.scratch_nodes);
        self.used_nodes(block, &mut nodes);
        for &(node, key) in &nodes {
            let Some(entry) = self.keys.get(key) else {
                continue;
            };
            if entry.pinned {
                emptied = false;
                continue;
            }
            let (size, align) = (entry.size(), entry.align());
            if !Self::budget_allows(plan, budget, size) {
                emptied = false;
                break;
            }
            match self.tlsf.alloc(size, align) {
                Some(dest) => self.push_move(plan, key, node, dest),
                None => {
                    emptied = false;
                    break;
                }
            }
        }
        self.defrag.scratch_nodes = nodes;
        self.tlsf.reattach(&mut parked);
        self.defrag.scratch_parked = parked;
        if emptied && self.pending_in_block(block) == 0 {
            plan.blocks_emptied += 1;
        }
    }

    fn block_free_bytes(&self, block: u32) -> u64 {
        let mut n = self.tlsf.blocks[block as usize].first;
        let mut free = 0;
        while n != NIL {
            let node = &self.tlsf.nodes[n as usize];
            if node.state == NodeState::Free {
                free += node.size();
            }
            n = node.next;
        }
        free
    }

    fn pending_in_block(&self, block: u32) -> usize {
        self.pending
            .iter()
            .filter(|&&(_, n)| self.tlsf.nodes[n as usize].block == block)
            .count()
    }

    /// Compaction around the gap, the largest free range of the pool:
    ///
    /// 1. Fill: the allocations bordering the gap, on both sides, move into
    ///    holes elsewhere (each hole closes at once; the gap grows by the moved
    ///    ranges once their fence passes).
    /// 2. Sweep: when the fill found nothing to move and more than
    ///    `1 / SWEEP_TRIGGER` of the free bytes lie outside the gap, the gap
    ///    sweeps through the block: the allocations bordering it on the
    ///    sweep's side move to its far end (at most `SWEEP_BYTES` a plan), so
    ///    the holes behind them join the gap. At the block's end, or at a
    ///    pinned allocation, the sweep turns.
    ///
    /// Both walk outward from the gap past pending and free ranges (which
    /// join the gap with the moved ones) and are bounded by the budget and by
    /// the free bytes outside the ranges they cover, so planning time stays
    /// bounded. See [`compact`](Self::compact).
    fn plan_compaction(&mut self, budget: DefragBudget, plan: &mut DefragPlan) {
        const SWEEP_TRIGGER: u64 = 32;
        let Some(gap) = self.tlsf.largest_free_node() else {
            return;
        };
        let scattered = self.tlsf.free_bytes - self.tlsf.nodes[gap as usize].size();
        let trigger = self.tlsf.free_bytes / SWEEP_TRIGGER;
        if scattered <= trigger {
            self.defrag.sweep_stalled = None;
            self.defrag.sweep_turns = [u64::MAX; 2];
        }
        let sweeping = scattered > trigger
            && self
                .defrag
                .sweep_stalled
                .is_none_or(|s| scattered > s + trigger);
        self.compact(budget, plan, gap, Compaction::Fill, scattered);
        if plan.moves.is_empty() && sweeping {
            let down = !self.defrag.sweep_up;
            self.compact(budget, plan, gap, Compaction::Sweep { down }, scattered);
        }
    }

    /// One compaction pass around `gap` (see [`plan_compaction`](Self::plan_compaction)):
    ///
    /// 1. Each side the pass works on is walked outward from the gap, past
    ///    pending and free ranges, collecting the allocations to move, until
    ///    the budget, a pinned or reserved range, the block's end, or the room
    ///    there is for them: the free bytes outside the walked ranges (plus
    ///    `SWEEP_BYTES` for a sweep).
    /// 2. In that order, each gets a destination: a hole outside every walked
    ///    range (one inside would wall the gap off again), or for a sweep the
    ///    gap's far end. A side stops at its first allocation with none, since
    ///    what lies beyond could not join the gap.
    /// 3. The free ranges between the gap and the last allocation moved on
    ///    each side are held (pending, out of the bins) until the moves'
    ///    fence passes: they join the gap then, and a small allocation placed
    ///    in one meanwhile would cut the gap off from everything behind it.
    ///    Without this, a hole left of a level unload routinely kept a
    ///    hundred megabytes apart from the gap for good. Held ranges are
    ///    free all the same: an allocation that fits nowhere else takes them.
    fn compact(
        &mut self,
        budget: DefragBudget,
        plan: &mut DefragPlan,
        gap: u32,
        pass: Compaction,
        scattered: u64,
    ) {
        /// Bytes a sweep may move to the gap's far end per plan: the gap
        /// shrinks by as much until the fence passes, which costs more than
        /// it gains when free space is scattered after a burst of frees.
        const SWEEP_BYTES: u64 = 8 << 20;
        // A fill goes on first where the last plans vacate (so new
        // allocations keep being carved from the gap's other end).
        let fill_sides = match self.defrag.vacating {
            [None, Some(_)] => [false, true],
            _ => [true, false],
        };
        let (sides, sweep_room): (&[bool], u64) = match pass {
            Compaction::Fill => (&fill_sides, 0),
            Compaction::Sweep { down: true } => (&[true], SWEEP_BYTES),
            Compaction::Sweep { down: false } => (&[false], SWEEP_BYTES),
        };
        let g = self.tlsf.nodes[gap as usize];
        let mut walk = Walk {
            lo: g.offset(),
            hi: g.offset() + g.size(),
            room: scattered + sweep_room,
            bytes: 0,
        };
        let mut cands = std::mem::take(&mut self.defrag.scratch_nodes);
        cands.clear();
        let mut side_end = [0usize; 2];
        for (i, &down) in sides.iter().enumerate() {
            let walled = self.walk_side(gap, down, budget, &mut walk, &mut cands);
            side_end[i] = cands.len();
            if walled && matches!(pass, Compaction::Sweep { .. }) {
                self.turn_sweep(down, scattered);
            }
        }
        let first = [self.neighbour(gap, true), self.neighbour(gap, false)];
        let mut parked = std::mem::take(&mut self.defrag.scratch_parked);
        let mut last_moved = [None; 2];
        let mut gap = gap;
        let mut swept = 0;
        let mut side_start = 0;
        for (i, &down) in sides.iter().enumerate() {
            for &(n, key) in &cands[side_start..side_end[i]] {
                let (size, align) = (self.keys[key].size(), self.keys[key].align());
                let hole = self.find_outside(size, align, g.block, &walk, &mut parked);
                let mut gap_used_up = false;
                let dest = match hole {
                    Some(h) => {
                        // At the hole's end away from the gap: a hole next to
                        // the walk (one that ended it) then joins the gap with
                        // what the walk vacates.
                        let hn = &self.tlsf.nodes[h as usize];
                        let above = hn.block == g.block && hn.offset() > g.offset();
                        self.tlsf.alloc_in(h, size, align, above)
                    }
                    None if sweep_room > 0 && (swept == 0 || swept + size <= sweep_room) => {
                        // To the gap's far end; what is left of the gap stays
                        // on the near side.
                        self.tlsf.unpark(gap);
                        let d = self.tlsf.alloc_in(gap, size, align, down);
                        if let Some(d) = d {
                            swept += size;
                            let rest = self.neighbour(d, down);
                            if rest != NIL
                                && self.tlsf.nodes[rest as usize].state == NodeState::Free
                            {
                                gap = rest;
                            } else {
                                gap_used_up = true;
                            }
                        }
                        d
                    }
                    None => None,
                };
                let Some(d) = dest else { break };
                self.push_move(plan, key, n, d);
                last_moved[i] = Some(n);
                if gap_used_up {
                    break;
                }
            }
            side_start = side_end[i];
        }
        for n in parked.drain(..) {
            self.tlsf.unpark(n);
        }
        self.defrag.scratch_parked = parked;
        for (i, &down) in sides.iter().enumerate() {
            if let Some(last) = last_moved[i] {
                plan.vacates[(!down) as usize] = true;
                let mut n = first[(!down) as usize];
                while n != NIL && n != last {
                    if self.tlsf.nodes[n as usize].state == NodeState::Free {
                        self.tlsf.hold(n);
                        plan.held.push(n);
                    }
                    n = self.neighbour(n, down);
                }
            }
        }
        self.defrag.scratch_nodes = cands;
    }

    /// A free range outside the walked range (or in another block) that
    /// holds `size` at `align`. The ranges inside met on the way are parked
    /// in `parked` (out of the bins until the plan's destinations are
    /// chosen), so each is looked at once per plan however many searches
    /// meet it; at most `PARK_LIMIT` of them.
    fn find_outside(
        &mut self,
        size: u64,
        align: u64,
        block: u32,
        walk: &Walk,
        parked: &mut Vec<u32>,
    ) -> Option<u32> {
        /// Ranges a plan parks at most: a walk passes about as many free
        /// ranges as it takes allocations, so this bounds the plan's time
        /// well above any budget's number of moves in use.
        const PARK_LIMIT: usize = 4096;
        loop {
            let h = self.tlsf.find(size, align)?;
            let node = &self.tlsf.nodes[h as usize];
            if node.block != block
                || node.offset() + node.size() <= walk.lo
                || node.offset() >= walk.hi
            {
                return Some(h);
            }
            if parked.len() >= PARK_LIMIT {
                return None;
            }
            self.tlsf.park(h);
            parked.push(h);
        }
    }

    /// Walks from `gap` outward (down or up) past free and pending ranges,
    /// appending the allocations met to `cands` while `budget` and the
    /// walk's room allow; widens the walked range. Returns whether it ended
    /// at the block's end or at a pinned allocation (where a sweep turns).
    fn walk_side(
        &self,
        gap: u32,
        down: bool,
        budget: DefragBudget,
        walk: &mut Walk,
        cands: &mut Vec<(u32, AllocKey)>,
    ) -> bool {
        // Free bytes passed so far, and those passed up to the last
        // allocation taken: only these end up inside the walked range (the
        // ones passed after it stay outside, destinations for either side).
        let mut passed_free = 0;
        let mut passed_inside = 0;
        let mut n = self.neighbour(gap, down);
        loop {
            while n != NIL && self.tlsf.nodes[n as usize].state != NodeState::Used {
                let node = &self.tlsf.nodes[n as usize];
                if node.state == NodeState::Free {
                    if node.size() >= FILL_RANGE {
                        // Left outside the walk, a destination for both sides.
                        walk.room = walk.room.saturating_sub(passed_inside);
                        return false;
                    }
                    passed_free += node.size();
                }
                n = self.neighbour(n, down);
            }
            // The block's end, a pinned or reserved range, or the budget.
            let stop = if n == NIL {
                Some(true)
            } else if !self.is_movable_candidate(n) {
                Some(self.is_pinned(n))
            } else {
                None
            };
            if let Some(walled) = stop {
                walk.room = walk.room.saturating_sub(passed_inside);
                return walled;
            }
            let key = key_of(self.tlsf.owner(n));
            let size = self.keys[key].size();
            if cands.len() as u32 >= budget.max_moves
                || walk.bytes + size > budget.max_bytes
                || passed_free + size > walk.room
            {
                walk.room = walk.room.saturating_sub(passed_inside);
                return false;
            }
            walk.room -= size;
            walk.bytes += size;
            passed_inside = passed_free;
            cands.push((n, key));
            let node = &self.tlsf.nodes[n as usize];
            if down {
                walk.lo = node.offset();
            } else {
                walk.hi = node.offset() + node.size();
            }
            n = self.neighbour(n, down);
        }
    }

    /// Turns the sweep (to go up if `up`), noting a round trip that gathered nothing.
    fn turn_sweep(&mut self, up: bool, scattered: u64) {
        self.defrag.sweep_up = up;
        let last = &mut self.defrag.sweep_turns[up as usize];
        if scattered >= *last {
            self.defrag.sweep_stalled = Some(scattered);
            self.defrag.sweep_turns = [u64::MAX; 2];
        } else {
            *last = scattered;
        }
    }

    /// The node before (`down`) or after `n` in its block.
    fn neighbour(&self, n: u32, down: bool) -> u32 {
        let node = &self.tlsf.nodes[n as usize];
        if down {
            node.prev
        } else {
            node.next
        }
    }

    /// A used node that holds an unpinned allocation.
    fn is_movable_candidate(&self, n: u32) -> bool {
        let owner = self.tlsf.owner(n);
        self.tlsf.nodes[n as usize].state == NodeState::Used
            && owner != 0
            && self.keys.get(key_of(owner)).is_some_and(|e| !e.pinned)
    }

    fn is_pinned(&self, n: u32) -> bool {
        let owner = self.tlsf.owner(n);
        owner != 0 && self.keys.get(key_of(owner)).is_some_and(|e| e.pinned)
    }

    fn push_move(&mut self, plan: &mut DefragPlan, key: AllocKey, from: u32, dest: u32) {
        let (size, align) = (self.keys[key].size(), self.keys[key].align());
        self.tlsf.set_owner(dest, 0); // reserved, not yet the key's
        plan.bytes += size;
        plan.moves.push(Move {
            key,
            from: self.data_range(from, size, align),
            to: self.data_range(dest, size, align),
            dest_node: dest,
        });
    }

    /// After the plan's copies were submitted in frame `frame`: handles point to
    /// the new places and the old ranges are freed once `frame` retires. A move
    /// whose allocation was freed meanwhile only releases its destination.
    pub fn commit_defrag(&mut self, mut plan: DefragPlan, frame: u64) {
        for m in plan.moves.drain(..) {
            match self.keys.get_mut(m.key) {
                Some(entry) => {
                    let old = entry.node;
                    entry.node = m.dest_node;
                    self.tlsf.set_owner(m.dest_node, m.key.data().as_ffi());
                    self.tlsf.set_pending(old);
                    self.pending_bytes += self.tlsf.nodes[old as usize].size();
                    self.pending.push_back((frame, old));
                    self.stats.allocations_moved += 1;
                    self.stats.bytes_moved += m.from.size;
                }
                // Freed since the plan: the copy into its destination was
                // recorded and runs with the frame, so the destination is
                // released with the frame's fence, as freed ranges are.
                None => {
                    self.tlsf.set_pending(m.dest_node);
                    self.pending_bytes += self.tlsf.nodes[m.dest_node as usize].size();
                    self.pending.push_back((frame, m.dest_node));
                }
            }
        }
        for n in plan.held.drain(..) {
            self.held_bytes += self.tlsf.nodes[n as usize].size();
            self.held.push_back((frame, n));
        }
        for (side, vacates) in plan.vacates.iter_mut().enumerate() {
            if std::mem::take(vacates) {
                self.defrag.vacating[side] = Some(frame);
            }
        }
        self.stats.blocks_emptied += plan.blocks_emptied as u64;
        self.defrag.spare_moves = plan.moves;
        self.defrag.spare_held = plan.held;
    }

    /// Abandons a plan: its reserved destinations are released.
    pub fn cancel_defrag(&mut self, mut plan: DefragPlan) {
        for m in plan.moves.drain(..) {
            self.tlsf.free(m.dest_node);
        }
        for n in plan.held.drain(..) {
            self.tlsf.free(n);
        }
        plan.vacates = [false; 2];
        self.defrag.spare_moves = plan.moves;
        self.defrag.spare_held = plan.held;
    }
}
