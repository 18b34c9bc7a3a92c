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
//! Here a request first looks at up to `EXACT_SCAN` ranges of its own bin,
//! then falls back to the rounded-up search: still O(1), and a hole always serves
//! a later request of its size.

/// No node.
pub(crate) const NIL: u32 = u32::MAX;
/// Sizes and offsets are multiples of this.
pub(crate) const GRANULE: u64 = 4;
const SL_LOG2: u32 = 5;
const SL_COUNT: u32 = 1 << SL_LOG2;
const FL_COUNT: usize = (64 - SL_LOG2 + 1) as usize;
/// Ranges of the request's own bin looked at before rounding up.
const EXACT_SCAN: usize = 4;

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

/// A range of a block.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Node {
    pub(crate) offset: u64,
    pub(crate) size: u64,
    pub(crate) block: u32,
    /// Neighbours in address order within the block.
    pub(crate) prev: u32,
    pub(crate) next: u32,
    free_prev: u32,
    free_next: u32,
    pub(crate) state: NodeState,
    /// The handle that owns a used node (its 64-bit ffi value), 0 if none.
    pub(crate) owner: u64,
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

/// The bin whose range contains `size`.
#[inline]
fn bin_floor(size: u64) -> (u32, u32) {
    if size < SL_COUNT as u64 {
        (0, size as u32)
    } else {
        let l = 63 - size.leading_zeros();
        let sl = ((size >> (l - SL_LOG2)) as u32) ^ SL_COUNT;
        (l - SL_LOG2 + 1, sl)
    }
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
            nodes: Vec::new(),
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
        let m = self.new_node(Node {
            offset,
            size,
            block,
            prev,
            next,
            free_prev: NIL,
            free_next: NIL,
            state: NodeState::Free,
            owner: 0,
        });
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
        let (fl, sl) = bin_floor(self.nodes[n as usize].size);
        let b = bin_index(fl, sl);
        let head = self.heads[b];
        {
            let node = &mut self.nodes[n as usize];
            node.state = NodeState::Free;
            node.free_prev = NIL;
            node.free_next = head;
        }
        if head != NIL {
            self.nodes[head as usize].free_prev = n;
        }
        self.heads[b] = n;
        self.fl_bitmap |= 1 << fl;
        self.sl_bitmaps[fl as usize] |= 1 << sl;
        self.free_bytes += self.nodes[n as usize].size;
    }

    #[inline]
    fn remove_free(&mut self, n: u32) {
        let Node {
            size,
            free_prev,
            free_next,
            ..
        } = self.nodes[n as usize];
        let (fl, sl) = bin_floor(size);
        let b = bin_index(fl, sl);
        if free_prev != NIL {
            self.nodes[free_prev as usize].free_next = free_next;
        } else {
            self.heads[b] = free_next;
        }
        if free_next != NIL {
            self.nodes[free_next as usize].free_prev = free_prev;
        }
        if self.heads[b] == NIL {
            self.sl_bitmaps[fl as usize] &= !(1 << sl);
            if self.sl_bitmaps[fl as usize] == 0 {
                self.fl_bitmap &= !(1 << fl);
            }
        }
        self.free_bytes -= size;
    }

    /// Adds a block of `size` bytes (a multiple of `GRANULE`); returns its index.
    pub(crate) fn add_block(&mut self, size: u64) -> u32 {
        let block = self.blocks.len() as u32;
        let n = self.new_node(Node {
            offset: 0,
            size,
            block,
            prev: NIL,
            next: NIL,
            free_prev: NIL,
            free_next: NIL,
            state: NodeState::Free,
            owner: 0,
        });
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
        if !b.live || first.state != NodeState::Free || first.size != b.size {
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
        align_up(node.offset, align) + size <= node.offset + node.size
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
    fn find(&self, size: u64, align: u64) -> Option<u32> {
        // 1. The request's own bin: its holes may be exactly the right size.
        let (fl, sl) = bin_floor(size);
        let mut n = self.heads[bin_index(fl, sl)];
        for _ in 0..EXACT_SCAN {
            if n == NIL {
                break;
            }
            if self.fits(n, size, align) {
                return Some(n);
            }
            n = self.nodes[n as usize].free_next;
        }
        // 2. A bin whose every range fits, alignment padding included.
        let need = size + (align - GRANULE.min(align));
        let (fl, sl) = bin_ceil(need);
        let (fl, sl) = self.first_bin_from(fl, sl)?;
        let head = self.heads[bin_index(fl, sl)];
        debug_assert!(head != NIL && self.fits(head, size, align));
        Some(head)
    }

    /// Allocates `size` bytes at `align` (both multiples of `GRANULE`, align a
    /// power of two). Returns the used node.
    #[inline]
    pub(crate) fn alloc(&mut self, size: u64, align: u64) -> Option<u32> {
        let n = self.find(size, align)?;
        self.remove_free(n);
        Some(self.carve(n, size, align))
    }

    /// Turns the (removed from its bin) free node `n` into a used node of
    /// `size` at `align`, returning the leftovers before and after to the bins.
    #[inline]
    fn carve(&mut self, n: u32, size: u64, align: u64) -> u32 {
        let Node {
            offset,
            size: node_size,
            block,
            ..
        } = self.nodes[n as usize];
        let start = align_up(offset, align);
        let front = start - offset;
        let back = offset + node_size - (start + size);
        if front > 0 {
            let prev = self.nodes[n as usize].prev;
            self.link_free(block, prev, n, offset, front);
        }
        if back > 0 {
            let next = self.nodes[n as usize].next;
            self.link_free(block, n, next, start + size, back);
        }
        let node = &mut self.nodes[n as usize];
        node.offset = start;
        node.size = size;
        node.state = NodeState::Used;
        self.blocks[block as usize].used_bytes += size;
        n
    }

    /// Marks a used node as pending (freed, not reusable yet).
    pub(crate) fn set_pending(&mut self, n: u32) {
        let node = &mut self.nodes[n as usize];
        debug_assert_eq!(node.state, NodeState::Used);
        node.state = NodeState::Pending;
        node.owner = 0;
    }

    /// Frees a used or pending node, merging it with free neighbours.
    #[inline]
    pub(crate) fn free(&mut self, n: u32) {
        let node = self.nodes[n as usize];
        debug_assert!(matches!(node.state, NodeState::Used | NodeState::Pending));
        self.blocks[node.block as usize].used_bytes -= node.size;
        let prev = node.prev;
        if prev != NIL && self.nodes[prev as usize].state == NodeState::Free {
            self.remove_free(prev);
            let p = self.nodes[prev as usize];
            let cur = &mut self.nodes[n as usize];
            cur.offset = p.offset;
            cur.size += p.size;
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
            cur.size += q.size;
            cur.next = q.next;
            if q.next != NIL {
                self.nodes[q.next as usize].prev = n;
            } else {
                self.blocks[q.block as usize].last = n;
            }
            self.recycle(next);
        }
        self.nodes[n as usize].owner = 0;
        self.insert_free(n);
    }

    /// The largest free range (bytes).
    pub(crate) fn largest_free(&self) -> u64 {
        if self.fl_bitmap == 0 {
            return 0;
        }
        let fl = 63 - self.fl_bitmap.leading_zeros();
        let sl = 31 - self.sl_bitmaps[fl as usize].leading_zeros();
        let mut n = self.heads[bin_index(fl, sl)];
        let mut best = 0;
        while n != NIL {
            best = best.max(self.nodes[n as usize].size);
            n = self.nodes[n as usize].free_next;
        }
        best
    }

    /// Takes the free nodes of `block` out of the bins (so allocations avoid
    /// it), appending them to `out` (a reused list: no allocation per plan).
    pub(crate) fn detach_block(&mut self, block: u32, out: &mut Vec<u32>) {
        let mut n = self.blocks[block as usize].first;
        while n != NIL {
            if self.nodes[n as usize].state == NodeState::Free {
                self.remove_free(n);
                self.nodes[n as usize].state = NodeState::Spare; // parked; not recycled
                out.push(n);
            }
            n = self.nodes[n as usize].next;
        }
    }

    /// Puts back nodes taken by `detach_block`, emptying `nodes`.
    pub(crate) fn reattach(&mut self, nodes: &mut Vec<u32>) {
        for n in nodes.drain(..) {
            self.insert_free(n);
        }
    }

    /// Reserves `size` at `align` in a free range that lies before `(block,
    /// offset)` in pool order (an earlier block, or lower in the same block), if
    /// the range the TLSF search picks does. O(1): used by compaction, which only
    /// wants moves that bring an allocation down.
    pub(crate) fn alloc_lower(
        &mut self,
        size: u64,
        align: u64,
        block: u32,
        offset: u64,
    ) -> Option<u32> {
        let n = self.find(size, align)?;
        let node = &self.nodes[n as usize];
        if node.block > block || (node.block == block && node.offset >= offset) {
            return None;
        }
        self.remove_free(n);
        Some(self.carve(n, size, align))
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
        assert_eq!(t.nodes[again as usize].offset, 300);
    }

    #[test]
    fn alignment_splits_and_merges_back() {
        let mut t = Tlsf::new();
        t.add_block(4096);
        let a = t.alloc(12, 4).unwrap();
        let b = t.alloc(64, 256).unwrap();
        assert_eq!(t.nodes[b as usize].offset % 256, 0);
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
