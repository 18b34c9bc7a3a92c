//! Two-level segregated fit (TLSF) over one or more blocks of address space.
//!
//! Free ranges live in bins: the first level is the power of two of the size,
//! the second splits each power of two into `SL_COUNT` linear steps, so a bin's
//! sizes differ by at most 1/32. Two bitmaps find the first non-empty bin at or
//! above a size in O(1). Ranges (nodes) are linked in address order within their
//! block, so a freed range merges with free neighbours at once.
//!
//! Stranding: a plain TLSF rounds a request up to the next bin boundary so that
//! any range of that bin fits. A freed hole of exactly the request's size sits in
//! the bin below and would never serve that request again (OffsetAllocator
//! loses a third of its pool to this with uniform sizes that are not bin sizes).
//! Here a request first looks at the newest range of its own bin (a hole just
//! freed by an allocation of its size is there), then at the rounded-up bins,
//! and only when those are empty, on the way to an out-of-space error, walks
//! its own bin: O(1) in the common case, and a hole always serves a later
//! request of its size. (Looking at more ranges of the own bin first was
//! measured: each is a likely cache miss, 4 of them cost 5% of the whole
//! churn trace, for no gain in utilization.)
//!
//! Alignment padding stays inside the used range it precedes instead of
//! becoming a free sliver of a few bytes: one node less to bin and merge per
//! aligned allocation (most of them), as OffsetAllocator does by padding.
//! Offsets and sizes are stored as 32-bit counts of granules, so a node is 32
//! bytes and a block at most `MAX_BLOCK` bytes.

/// No node.
pub(crate) const NIL: u32 = u32::MAX;
/// Node 0 is never part of a block: the free lists write their links to it
/// where there is no neighbour to write to, so that linking and unlinking
/// need no branch on `NIL` (each was mispredicted about a third of the time
/// in the churn trace).
const DUMMY: u32 = 0;
/// Sizes and offsets are multiples of this.
pub(crate) const GRANULE: u64 = 4;
const SL_LOG2: u32 = 5;
const SL_COUNT: u32 = 1 << SL_LOG2;
const FL_COUNT: usize = (64 - SL_LOG2 + 1) as usize;

/// What a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NodeState {
    /// In a bin, available.
    Free,
    /// Holds an allocation (or a reserved defrag destination).
    Used,
    /// Freed, waiting for the fence of the last frame that used it.
    Pending,
    /// Recycled: not part of any block.
    Spare,
}

/// The largest block: offsets and sizes are stored as `u32` counts of
/// `GRANULE`s, which keeps a node at 32 bytes (two per cache line).
pub(crate) const MAX_BLOCK: u64 = u32::MAX as u64 * GRANULE;

/// A range of a block. Offsets and sizes are in granules (see [`MAX_BLOCK`]);
/// [`offset`](Node::offset) and [`size`](Node::size) give bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Node {
    off: u32,
    len: u32,
    pub(crate) block: u32,
    /// Neighbours in address order within the block.
    pub(crate) prev: u32,
    pub(crate) next: u32,
    /// A free node's neighbours in its bin's list. A used node has no bin:
    /// the two hold the handle that owns it instead ([`Tlsf::owner`]), so
    /// that an allocation writes one node, not a node and a second table.
    free_prev: u32,
    free_next: u32,
    pub(crate) state: NodeState,
}

impl Node {
    /// Byte offset in the block.
    #[inline(always)]
    pub(crate) fn offset(&self) -> u64 {
        self.off as u64 * GRANULE
    }

    /// Bytes.
    #[inline(always)]
    pub(crate) fn size(&self) -> u64 {
        self.len as u64 * GRANULE
    }

    #[inline(always)]
    fn set_offset(&mut self, bytes: u64) {
        self.off = (bytes / GRANULE) as u32;
    }

    #[inline(always)]
    fn set_size(&mut self, bytes: u64) {
        self.len = (bytes / GRANULE) as u32;
    }

    #[inline(always)]
    fn new(block: u32, offset: u64, size: u64, prev: u32, next: u32) -> Node {
        Node {
            off: (offset / GRANULE) as u32,
            len: (size / GRANULE) as u32,
            block,
            prev,
            next,
            free_prev: NIL,
            free_next: NIL,
            state: NodeState::Free,
        }
    }
}

/// A block: one contiguous range of address space (a GPU buffer).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Block {
    pub(crate) size: u64,
    pub(crate) first: u32,
    pub(crate) last: u32,
    pub(crate) live: bool,
    pub(crate) used_bytes: u64,
}

pub(crate) struct Tlsf {
    pub(crate) nodes: Vec<Node>,
    spare: Vec<u32>,
    heads: Vec<u32>,
    fl_bitmap: u64,
    sl_bitmaps: [u32; FL_COUNT],
    pub(crate) blocks: Vec<Block>,
    pub(crate) free_bytes: u64,
}

#[inline]
fn align_up(v: u64, a: u64) -> u64 {
    (v + a - 1) & !(a - 1)
}

/// The bin whose range contains `size`: sizes below `SL_COUNT` one bin
/// each in level 0, then `SL_COUNT` bins per power of two. Without a
/// branch: small and large sizes alternate unpredictably in a churn, and a
/// mispredicted branch here cost more than the arithmetic.
#[inline]
fn bin_floor(size: u64) -> (u32, u32) {
    let l = 63 - (size | 1).leading_zeros();
    // Below SL_COUNT: no shift, level 0. Above: the bits after the leading
    // one pick the bin (the leading one itself masked off).
    let sl = (size >> l.saturating_sub(SL_LOG2)) as u32 & (SL_COUNT - 1);
    (l.saturating_sub(SL_LOG2 - 1), sl)
}

/// The smallest size of a bin.
#[inline]
fn bin_min(fl: u32, sl: u32) -> u64 {
    if fl == 0 {
        sl as u64
    } else {
        ((SL_COUNT | sl) as u64) << (fl - 1)
    }
}

/// The first bin all of whose sizes are at least `size`.
#[inline]
fn bin_ceil(size: u64) -> (u32, u32) {
    let (fl, sl) = bin_floor(size);
    if bin_min(fl, sl) == size {
        (fl, sl)
    } else if sl + 1 < SL_COUNT {
        (fl, sl + 1)
    } else {
        (fl + 1, 0)
    }
}

#[inline]
fn bin_index(fl: u32, sl: u32) -> usize {
    fl as usize * SL_COUNT as usize + sl as usize
}

impl Tlsf {
    pub(crate) fn new() -> Self {
        Tlsf {
            nodes: vec![Node {
                state: NodeState::Spare,
                ..Node::new(0, 0, 0, NIL, NIL)
            }],
            spare: Vec::new(),
            heads: vec![NIL; FL_COUNT * SL_COUNT as usize],
            fl_bitmap: 0,
            sl_bitmaps: [0; FL_COUNT],
            blocks: Vec::new(),
            free_bytes: 0,
        }
    }

    /// Makes `offset..offset + size` of `block` a free node linked between
    /// `prev` and `next` (either may be `NIL`: the block's ends) and puts it in
    /// its free list. The caller has shrunk the neighbour it was carved from.
    #[inline(always)] // `cargo bench --bench pool` ran 4% slower with plain #[inline]
    fn link_free(&mut self, block: u32, prev: u32, next: u32, offset: u64, size: u64) {
        let m = self.new_node(Node::new(block, offset, size, prev, next));
        match prev {
            NIL => self.blocks[block as usize].first = m,
            p => self.nodes[p as usize].next = m,
        }
        match next {
            NIL => self.blocks[block as usize].last = m,
            x => self.nodes[x as usize].prev = m,
        }
        self.insert_free(m);
    }

    #[inline]
    fn new_node(&mut self, node: Node) -> u32 {
        match self.spare.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        }
    }

    #[inline]
    fn recycle(&mut self, n: u32) {
        self.nodes[n as usize].state = NodeState::Spare;
        self.spare.push(n);
    }

    #[inline]
    fn insert_free(&mut self, n: u32) {
        let (fl, sl) = bin_floor(self.nodes[n as usize].size());
        let b = bin_index(fl, sl);
        let head = self.heads[b];
        {
            let node = &mut self.nodes[n as usize];
            node.state = NodeState::Free;
            node.free_prev = NIL;
            node.free_next = head;
        }
        let next = if head != NIL { head } else { DUMMY };
        self.nodes[next as usize].free_prev = n;
        self.heads[b] = n;
        self.fl_bitmap |= 1 << fl;
        self.sl_bitmaps[fl as usize] |= 1 << sl;
        self.free_bytes += self.nodes[n as usize].size();
    }

    #[inline]
    fn remove_free(&mut self, n: u32) {
        let node = self.nodes[n as usize];
        let (size, free_prev, free_next) = (node.size(), node.free_prev, node.free_next);
        let (fl, sl) = bin_floor(size);
        let b = bin_index(fl, sl);
        let before = if free_prev != NIL { free_prev } else { DUMMY };
        let after = if free_next != NIL { free_next } else { DUMMY };
        self.nodes[before as usize].free_next = free_next;
        self.nodes[after as usize].free_prev = free_prev;
        let head = &mut self.heads[b];
        *head = if free_prev == NIL { free_next } else { *head };
        // An emptied bin leaves the bitmaps, its level too if that was its last.
        let emptied = (*head == NIL) as u32;
        let sl_map = &mut self.sl_bitmaps[fl as usize];
        *sl_map &= !(emptied << sl);
        self.fl_bitmap &= !(((*sl_map == 0) as u64) << fl);
        self.free_bytes -= size;
    }

    /// Adds a block of `size` bytes (a multiple of `GRANULE`); returns its index.
    pub(crate) fn add_block(&mut self, size: u64) -> u32 {
        let block = self.blocks.len() as u32;
        let n = self.new_node(Node::new(block, 0, size, NIL, NIL));
        self.blocks.push(Block {
            size,
            first: n,
            last: n,
            live: true,
            used_bytes: 0,
        });
        self.insert_free(n);
        block
    }

    /// Removes a block whose whole range is free. Returns whether it was.
    pub(crate) fn remove_block(&mut self, block: u32) -> bool {
        let Some(b) = self.blocks.get(block as usize).copied() else {
            return false;
        };
        let first = self.nodes[b.first as usize];
        if !b.live || first.state != NodeState::Free || first.size() != b.size {
            return false;
        }
        self.remove_free(b.first);
        self.recycle(b.first);
        self.blocks[block as usize].live = false;
        true
    }

    #[inline]
    fn fits(&self, n: u32, size: u64, align: u64) -> bool {
        let node = &self.nodes[n as usize];
        align_up(node.offset(), align) + size <= node.offset() + node.size()
    }

    /// First non-empty bin at or above (fl, sl).
    #[inline]
    fn first_bin_from(&self, fl: u32, sl: u32) -> Option<(u32, u32)> {
        if fl as usize >= FL_COUNT {
            return None;
        }
        let sl_map = self.sl_bitmaps[fl as usize] & (!0u32 << sl);
        if sl_map != 0 {
            return Some((fl, sl_map.trailing_zeros()));
        }
        let fl_map = if fl + 1 >= 64 {
            0
        } else {
            self.fl_bitmap & (!0u64 << (fl + 1))
        };
        if fl_map == 0 {
            return None;
        }
        let fl2 = fl_map.trailing_zeros();
        Some((fl2, self.sl_bitmaps[fl2 as usize].trailing_zeros()))
    }

    /// A free node that can hold `size` bytes at `align`.
    #[inline]
    pub(crate) fn find(&self, size: u64, align: u64) -> Option<u32> {
        // 1. The request's own bin: its newest range may be exactly the right
        //    size (a hole freed by an allocation like this one).
        let (fl, sl) = bin_floor(size);
        let own = self.heads[bin_index(fl, sl)];
        if own != NIL && self.fits(own, size, align) {
            return Some(own);
        }
        // 2. A bin whose every range fits, alignment padding included.
        let need = size + (align - GRANULE.min(align));
        let (fl, sl) = bin_ceil(need);
        if let Some((fl, sl)) = self.first_bin_from(fl, sl) {
            let head = self.heads[bin_index(fl, sl)];
            debug_assert!(head != NIL && self.fits(head, size, align));
            return Some(head);
        }
        // 3. Nothing larger: any range from the own bin up to the rounded-up
        //    one that holds it. Only on the way to an out-of-space error, so
        //    its walk costs nothing in the common case, and no hole is ever
        //    stranded.
        self.first_fit_below(size, align, bin_ceil(need))
    }

    /// The first range that holds `size` at `align` in the bins from the
    /// request's own up to (not including) `limit`.
    #[cold]
    #[inline(never)]
    fn first_fit_below(&self, size: u64, align: u64, limit: (u32, u32)) -> Option<u32> {
        let mut bin = bin_floor(size);
        while bin_index(bin.0, bin.1) < bin_index(limit.0, limit.1) {
            let (fl, sl) = self.first_bin_from(bin.0, bin.1)?;
            if bin_index(fl, sl) >= bin_index(limit.0, limit.1) {
                return None;
            }
            let mut n = self.heads[bin_index(fl, sl)];
            while n != NIL {
                if self.fits(n, size, align) {
                    return Some(n);
                }
                n = self.nodes[n as usize].free_next;
            }
            bin = if sl + 1 < SL_COUNT {
                (fl, sl + 1)
            } else {
                (fl + 1, 0)
            };
        }
        None
    }

    /// Allocates `size` bytes at `align` (both multiples of `GRANULE`, align a
    /// power of two). Returns the used node.
    #[inline]
    pub(crate) fn alloc(&mut self, size: u64, align: u64) -> Option<u32> {
        let n = self.find(size, align)?;
        self.remove_free(n);
        Some(self.carve(n, size, align))
    }

    /// Allocates like [`alloc`](Self::alloc), but from the high end of the
    /// range found when `high` (the slack after the data then stays in the
    /// used node, as in [`alloc_in`](Self::alloc_in)).
    #[inline]
    pub(crate) fn alloc_from(&mut self, size: u64, align: u64, high: bool) -> Option<u32> {
        let n = self.find(size, align)?;
        // `find` checked that it fits.
        self.remove_free(n);
        Some(self.carve_at(n, size, align, high))
    }

    /// Turns the (removed from its bin) free node `n` into a used node that
    /// holds `size` bytes at `align`, returning the rest after it to the bins.
    /// The alignment padding before the data stays in the used node (like
    /// OffsetAllocator's padding): a sliver of a few bytes would be one more
    /// free node to bin and merge, and could serve nothing.
    #[inline]
    fn carve(&mut self, n: u32, size: u64, align: u64) -> u32 {
        let offset = self.nodes[n as usize].offset();
        self.carve_range(n, offset, align_up(offset, align) + size)
    }

    /// Turns the (removed from its bin) free node `n` into a used node of
    /// `lo..hi` (inside it), returning the leftovers before and after to the bins.
    #[inline(always)]
    fn carve_range(&mut self, n: u32, lo: u64, hi: u64) -> u32 {
        let (offset, end, block) = {
            let node = &self.nodes[n as usize];
            (node.offset(), node.offset() + node.size(), node.block)
        };
        debug_assert!(lo >= offset && lo < hi && hi <= end);
        if lo > offset {
            let prev = self.nodes[n as usize].prev;
            self.link_free(block, prev, n, offset, lo - offset);
        }
        if hi < end {
            let next = self.nodes[n as usize].next;
            self.link_free(block, n, next, hi, end - hi);
        }
        let node = &mut self.nodes[n as usize];
        node.set_offset(lo);
        node.set_size(hi - lo);
        node.state = NodeState::Used;
        self.blocks[block as usize].used_bytes += hi - lo;
        n
    }

    /// Reserves `size` at `align` in the free node `n`, at its low end
    /// (`high == false`) or its high end (the slack after the data then stays
    /// in the used node). Returns the used node, or `None` if it does not fit.
    pub(crate) fn alloc_in(&mut self, n: u32, size: u64, align: u64, high: bool) -> Option<u32> {
        let node = self.nodes[n as usize];
        debug_assert_eq!(node.state, NodeState::Free);
        if !self.fits(n, size, align) {
            return None;
        }
        self.remove_free(n);
        Some(self.carve_at(n, size, align, high))
    }

    /// Carves `size` at `align` from the (removed from its bin) free node
    /// `n`, which holds it: at its low end, or its high end when `high`.
    #[inline(always)]
    fn carve_at(&mut self, n: u32, size: u64, align: u64, high: bool) -> u32 {
        let node = &self.nodes[n as usize];
        let (offset, end) = (node.offset(), node.offset() + node.size());
        if high {
            self.carve_range(n, (end - size) & !(align - 1), end)
        } else {
            self.carve_range(n, offset, align_up(offset, align) + size)
        }
    }

    /// The handle that owns the used node `n` (its 64-bit ffi value), 0 for
    /// a reserved defragmentation destination; meaningless for other states.
    #[inline]
    pub(crate) fn owner(&self, n: u32) -> u64 {
        let node = &self.nodes[n as usize];
        node.free_prev as u64 | (node.free_next as u64) << 32
    }

    /// Sets the owner of the used node `n` (see [`owner`](Self::owner)).
    #[inline]
    pub(crate) fn set_owner(&mut self, n: u32, owner: u64) {
        let node = &mut self.nodes[n as usize];
        debug_assert_eq!(node.state, NodeState::Used);
        node.free_prev = owner as u32;
        node.free_next = (owner >> 32) as u32;
    }

    /// Marks a used node as pending (freed, not reusable yet).
    pub(crate) fn set_pending(&mut self, n: u32) {
        let node = &mut self.nodes[n as usize];
        debug_assert_eq!(node.state, NodeState::Used);
        node.state = NodeState::Pending;
        // The node keeps the freed key as its owner: readers look at used
        // nodes only, and a stale key finds nothing in the handle table anyway.
    }

    /// Takes the free node `n` out of the bins for a while, so that
    /// searches pass it by; [`unpark`](Self::unpark) puts it back. Nothing
    /// may free a neighbour meanwhile (it would not merge).
    pub(crate) fn park(&mut self, n: u32) {
        debug_assert_eq!(self.nodes[n as usize].state, NodeState::Free);
        self.remove_free(n);
        self.nodes[n as usize].state = NodeState::Spare;
    }

    /// Puts a node taken by [`park`](Self::park) back in its bin, unless it
    /// was put back (and perhaps allocated from) since.
    pub(crate) fn unpark(&mut self, n: u32) {
        if self.nodes[n as usize].state == NodeState::Spare {
            self.insert_free(n);
        }
    }

    /// Takes the free node `n` out of the bins as a pending range: nothing
    /// is allocated from it until it is freed again (with its neighbours).
    pub(crate) fn hold(&mut self, n: u32) {
        debug_assert_eq!(self.nodes[n as usize].state, NodeState::Free);
        self.remove_free(n);
        let node = &mut self.nodes[n as usize];
        node.state = NodeState::Pending;
        let size = node.size();
        self.blocks[node.block as usize].used_bytes += size;
    }

    /// Frees a used or pending node, merging it with free neighbours.
    #[inline]
    pub(crate) fn free(&mut self, n: u32) {
        let node = self.nodes[n as usize];
        debug_assert!(matches!(node.state, NodeState::Used | NodeState::Pending));
        self.blocks[node.block as usize].used_bytes -= node.size();
        let prev = node.prev;
        if prev != NIL && self.nodes[prev as usize].state == NodeState::Free {
            self.remove_free(prev);
            let p = self.nodes[prev as usize];
            let cur = &mut self.nodes[n as usize];
            cur.off = p.off;
            cur.len += p.len;
            cur.prev = p.prev;
            if p.prev != NIL {
                self.nodes[p.prev as usize].next = n;
            } else {
                self.blocks[p.block as usize].first = n;
            }
            self.recycle(prev);
        }
        let next = self.nodes[n as usize].next;
        if next != NIL && self.nodes[next as usize].state == NodeState::Free {
            self.remove_free(next);
            let q = self.nodes[next as usize];
            let cur = &mut self.nodes[n as usize];
            cur.len += q.len;
            cur.next = q.next;
            if q.next != NIL {
                self.nodes[q.next as usize].prev = n;
            } else {
                self.blocks[q.block as usize].last = n;
            }
            self.recycle(next);
        }
        self.insert_free(n);
    }

    /// The largest free range (bytes).
    pub(crate) fn largest_free(&self) -> u64 {
        self.largest_free_node()
            .map_or(0, |n| self.nodes[n as usize].size())
    }

    /// The largest free node (the highest non-empty bin holds it).
    pub(crate) fn largest_free_node(&self) -> Option<u32> {
        if self.fl_bitmap == 0 {
            return None;
        }
        let fl = 63 - self.fl_bitmap.leading_zeros();
        let sl = 31 - self.sl_bitmaps[fl as usize].leading_zeros();
        let mut n = self.heads[bin_index(fl, sl)];
        let mut best = n;
        while n != NIL {
            if self.nodes[n as usize].size() > self.nodes[best as usize].size() {
                best = n;
            }
            n = self.nodes[n as usize].free_next;
        }
        Some(best)
    }

    /// Takes the free nodes of `block` out of the bins (so allocations avoid
    /// it), appending them to `out` (a reused list: no allocation per plan).
    pub(crate) fn detach_block(&mut self, block: u32, out: &mut Vec<u32>) {
        let mut n = self.blocks[block as usize].first;
        while n != NIL {
            if self.nodes[n as usize].state == NodeState::Free {
                self.park(n);
                out.push(n);
            }
            n = self.nodes[n as usize].next;
        }
    }

    /// Puts back nodes taken by `detach_block`, emptying `nodes`.
    pub(crate) fn reattach(&mut self, nodes: &mut Vec<u32>) {
        for n in nodes.drain(..) {
            self.unpark(n);
        }
    }

    /// Occupied nodes count per bin of free ranges, for statistics: (bin's smallest size, free ranges).
    pub(crate) fn free_bins(&self) -> Vec<(u64, u32)> {
        let mut out = Vec::new();
        for fl in 0..FL_COUNT as u32 {
            if self.sl_bitmaps[fl as usize] == 0 {
                continue;
            }
            for sl in 0..SL_COUNT {
                let mut n = self.heads[bin_index(fl, sl)];
                let mut count = 0;
                while n != NIL {
                    count += 1;
                    n = self.nodes[n as usize].free_next;
                }
                if count > 0 {
                    out.push((bin_min(fl, sl), count));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_cover_sizes_in_order() {
        let mut last = (0, 0);
        for size in 1..5000u64 {
            let b = bin_floor(size);
            assert!(bin_min(b.0, b.1) <= size, "{size}");
            assert!(b >= last);
            last = b;
            let c = bin_ceil(size);
            assert!(
                bin_min(c.0, c.1) >= size,
                "{size}: ceil bin min {}",
                bin_min(c.0, c.1)
            );
        }
        for size in [1u64 << 20, (1 << 20) + 4, 1 << 40, u64::MAX / 4] {
            let b = bin_floor(size);
            assert!(bin_min(b.0, b.1) <= size);
        }
    }

    /// The branchless `bin_floor` is the textbook one: sizes below
    /// `SL_COUNT` in level 0, then `SL_COUNT` linear steps per power of two.
    #[test]
    fn bin_floor_is_the_two_level_split() {
        let textbook = |size: u64| {
            if size < SL_COUNT as u64 {
                (0, size as u32)
            } else {
                let l = 63 - size.leading_zeros();
                (l - SL_LOG2 + 1, ((size >> (l - SL_LOG2)) as u32) ^ SL_COUNT)
            }
        };
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        let sizes = (0..100_000u64).chain((0..100_000).map(|_| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng >> (rng % 64)
        }));
        for size in sizes.chain([u64::MAX, u64::MAX / 2 + 1, 31, 32, 63, 64]) {
            assert_eq!(bin_floor(size), textbook(size), "{size}");
        }
    }

    #[test]
    fn a_freed_hole_serves_the_same_size_again() {
        // 100 is not a bin boundary: a plain TLSF would look for it in the next bin only.
        let mut t = Tlsf::new();
        t.add_block(100 * 10);
        let nodes: Vec<u32> = (0..10)
            .map(|_| t.alloc(100, 4).expect("fits exactly"))
            .collect();
        assert_eq!(t.free_bytes, 0);
        t.free(nodes[3]);
        let again = t.alloc(100, 4).expect("the hole of 100 serves 100");
        assert_eq!(t.nodes[again as usize].offset(), 300);
    }

    #[test]
    fn a_hole_behind_the_head_of_its_bin_serves_when_nothing_else_can() {
        // Two holes of 256 bytes; 4 bytes are taken from the newer, and its
        // 252 left cannot hold 252 bytes at 256: the older hole, in the bin
        // above, can. Nothing is free beyond, so the rounded-up search (504
        // bytes) finds nothing.
        let mut t = Tlsf::new();
        t.add_block(256 * 8);
        let nodes: Vec<u32> = (0..8).map(|_| t.alloc(256, 256).unwrap()).collect();
        assert!(t.alloc(4, 4).is_none(), "the block is full");
        t.free(nodes[2]); // 512..768: aligned
        t.free(nodes[5]); // 1280..1536: aligned too; carve a misaligned head:
        let pad = t.alloc(4, 4).unwrap();
        let head_off = t.nodes[pad as usize].offset();
        let got = t.alloc(252, 256).expect("the older hole serves it");
        let at = t.nodes[got as usize].offset();
        assert!(at.is_multiple_of(256) && at != head_off, "{at}");
    }

    #[test]
    fn alignment_padding_stays_in_the_used_node_and_merges_back() {
        let mut t = Tlsf::new();
        t.add_block(4096);
        let a = t.alloc(12, 4).unwrap();
        let b = t.alloc(64, 256).unwrap();
        let nb = t.nodes[b as usize];
        assert_eq!(
            (nb.offset(), nb.size()),
            (12, 256 - 12 + 64),
            "padding, then data at 256"
        );
        assert_eq!(
            t.free_bytes,
            4096 - 256 - 64,
            "no free sliver before the data"
        );
        assert_eq!(t.nodes[nb.next as usize].offset(), 256 + 64);
        t.free(a);
        t.free(b);
        assert_eq!(t.free_bytes, 4096);
        assert_eq!(
            t.largest_free(),
            4096,
            "everything merged back into one range"
        );
        assert!(t.remove_block(0));
    }
}
