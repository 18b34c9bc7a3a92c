//! [`PageTable`]: for every tile of every level, where the sampler finds its
//! texels: the cache slot of the tile itself when it is resident, else of its
//! nearest resident coarser ancestor (so a miss shows a blurrier texel, never
//! garbage). This is the CPU copy of the GPU's indirection texture, one entry
//! per tile per level; each change is also recorded as a delta for the GPU.
//!
//! Invariant: the coarsest level is always resident (the cache pins it), so
//! every entry names some resident tile.

use super::layout::{TileId, VtLayout};

/// One page-table entry: the slot (column, row in the atlas) and the level of
/// the tile whose texels are there. Packed for the GPU as `x | y << 8 | mip << 16`
/// ([`Entry::pack`]); `mip` tells the shader how to scale into that tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// Atlas slot column.
    pub slot_x: u8,
    /// Atlas slot row.
    pub slot_y: u8,
    /// Level of the resident tile the texels come from.
    pub mip: u8,
}

impl Entry {
    /// The 32-bit texel of the indirection texture.
    pub fn pack(self) -> u32 {
        self.slot_x as u32 | (self.slot_y as u32) << 8 | (self.mip as u32) << 16
    }
}

/// A change of one entry, for the GPU copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delta {
    /// Which entry (level, column, row).
    pub tile: TileId,
    /// Its new value.
    pub entry: Entry,
}

/// The indirection of one virtual texture.
#[derive(Debug, Clone)]
pub struct PageTable {
    layout: VtLayout,
    /// Per tile (dense index): its entry.
    entries: Vec<Entry>,
    /// Per tile: its slot when resident.
    resident: Vec<Option<(u8, u8)>>,
    deltas: Vec<Delta>,
}

impl PageTable {
    /// A table whose every entry points at the coarsest tile, resident in `root_slot`.
    pub fn new(layout: VtLayout, root_slot: (u8, u8)) -> Self {
        let n = layout.tile_count() as usize;
        let root = Entry {
            slot_x: root_slot.0,
            slot_y: root_slot.1,
            mip: (layout.mips() - 1) as u8,
        };
        let mut resident = vec![None; n];
        resident[n - 1] = Some(root_slot);
        PageTable {
            layout,
            entries: vec![root; n],
            resident,
            deltas: Vec::new(),
        }
    }

    /// The layout.
    pub fn layout(&self) -> &VtLayout {
        &self.layout
    }

    /// Where the sampler finds `tile`'s texels now.
    pub fn lookup(&self, tile: TileId) -> Option<Entry> {
        let i = self.layout.index(tile).ok()?;
        Some(self.entries[i as usize])
    }

    /// Whether `tile` itself is resident.
    pub fn is_resident(&self, tile: TileId) -> bool {
        self.layout
            .index(tile)
            .is_ok_and(|i| self.resident[i as usize].is_some())
    }

    /// Records that `tile` is now in `slot`: it and every finer tile below it
    /// that showed a coarser ancestor now show it.
    pub fn map(&mut self, tile: TileId, slot: (u8, u8)) {
        let Ok(i) = self.layout.index(tile) else {
            return;
        };
        self.resident[i as usize] = Some(slot);
        let entry = Entry {
            slot_x: slot.0,
            slot_y: slot.1,
            mip: tile.mip,
        };
        self.fill_below(tile, entry, |old| old.mip >= tile.mip);
    }

    /// Records that `tile` left the cache: it and the tiles below it that
    /// showed it now show its nearest resident ancestor. The coarsest level is
    /// never unmapped.
    pub fn unmap(&mut self, tile: TileId) {
        let Ok(i) = self.layout.index(tile) else {
            return;
        };
        if tile.mip as u32 + 1 >= self.layout.mips() {
            return;
        }
        self.resident[i as usize] = None;
        let mut up = tile.parent();
        let fallback = loop {
            let j = self.layout.index(up).expect("a parent of a tile is a tile") as usize;
            if let Some((x, y)) = self.resident[j] {
                break Entry {
                    slot_x: x,
                    slot_y: y,
                    mip: up.mip,
                };
            }
            up = up.parent();
        };
        self.fill_below(tile, fallback, |old| old.mip == tile.mip);
    }

    /// Sets `entry` on `tile` and on the tiles of finer levels under it whose
    /// current entry satisfies `replace`, recording deltas. A finer tile that
    /// is itself resident keeps its entry (and so do the tiles under it that
    /// show it, since `replace` looks at the old entry's level).
    fn fill_below(&mut self, tile: TileId, entry: Entry, replace: impl Fn(Entry) -> bool) {
        for mip in (0..=tile.mip as u32).rev() {
            let shift = tile.mip as u32 - mip;
            let (tx, ty) = self.layout.tiles_at(mip);
            let x0 = (tile.x as u32) << shift;
            let y0 = (tile.y as u32) << shift;
            for y in y0..(y0 + (1 << shift)).min(ty) {
                for x in x0..(x0 + (1 << shift)).min(tx) {
                    let t = TileId {
                        mip: mip as u8,
                        x: x as u16,
                        y: y as u16,
                    };
                    let i = self.layout.index(t).expect("inside the layout") as usize;
                    let old = self.entries[i];
                    if old != entry && replace(old) {
                        self.entries[i] = entry;
                        self.deltas.push(Delta { tile: t, entry });
                    }
                }
            }
        }
    }

    /// The changes since the last call, for the GPU copy (in order; a later
    /// delta of the same entry wins).
    pub fn take_deltas(&mut self) -> Vec<Delta> {
        std::mem::take(&mut self.deltas)
    }

    /// As [`take_deltas`](Self::take_deltas), into `out` (cleared first),
    /// giving `out`'s storage to the table for the next changes: a frame
    /// loop that swaps the same vector back and forth allocates nothing.
    pub fn swap_deltas(&mut self, out: &mut Vec<Delta>) {
        out.clear();
        std::mem::swap(out, &mut self.deltas);
    }

    /// Checks the invariant against a direct computation (for debugging and
    /// tests): every
    /// entry shows the finest resident tile among itself and its ancestors.
    pub fn validate(&self) -> Result<(), String> {
        for i in 0..self.layout.tile_count() {
            let t = self.layout.tile_at(i).expect("in range");
            let mut up = t;
            let want = loop {
                let j = self.layout.index(up).expect("ancestor") as usize;
                if let Some((x, y)) = self.resident[j] {
                    break Entry {
                        slot_x: x,
                        slot_y: y,
                        mip: up.mip,
                    };
                }
                up = up.parent();
            };
            if self.entries[i as usize] != want {
                return Err(format!(
                    "{t:?} shows {:?}, its finest resident ancestor is {want:?}",
                    self.entries[i as usize]
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use forgeflow_test_support::SplitMix64;

    #[test]
    fn misses_fall_back_to_the_nearest_resident_coarser_tile() {
        let l = VtLayout::new(2048, 1024, 128, 4).unwrap(); // 16x8 tiles, 5 levels
        let mut pt = PageTable::new(l, (0, 0));
        let leaf = TileId {
            mip: 0,
            x: 13,
            y: 6,
        };
        assert_eq!(pt.lookup(leaf).unwrap().mip, 4);
        pt.map(leaf.parent().parent(), (3, 1)); // mip 2
        assert_eq!(
            pt.lookup(leaf).unwrap(),
            Entry {
                slot_x: 3,
                slot_y: 1,
                mip: 2
            }
        );
        pt.map(leaf, (5, 5));
        assert_eq!(pt.lookup(leaf).unwrap().mip, 0);
        let sibling = TileId {
            mip: 0,
            x: 12,
            y: 6,
        };
        assert_eq!(pt.lookup(sibling).unwrap().mip, 2);
        pt.unmap(leaf.parent().parent());
        // The leaf keeps its own slot; its sibling falls to the root.
        assert_eq!(pt.lookup(leaf).unwrap().mip, 0);
        assert_eq!(pt.lookup(sibling).unwrap().mip, 4);
        pt.validate().unwrap();
        assert!(!pt.take_deltas().is_empty());
        assert!(pt.take_deltas().is_empty());
    }

    #[test]
    fn random_maps_and_unmaps_keep_the_invariant() {
        let l = VtLayout::new(1000, 700, 32, 2).unwrap();
        let mut pt = PageTable::new(l, (0, 0));
        let mut rng = SplitMix64::new(9);
        let n = l.tile_count() - 1; // not the root
        let mut shadow: Vec<Entry> = (0..l.tile_count())
            .map(|i| pt.lookup(l.tile_at(i).unwrap()).unwrap())
            .collect();
        for step in 0..3000 {
            let t = l.tile_at(rng.below(n as u64) as u32).unwrap();
            if rng.below(2) == 0 {
                pt.map(t, (rng.below(200) as u8, rng.below(200) as u8));
            } else {
                pt.unmap(t);
            }
            // Deltas replayed on a copy give the table itself.
            for d in pt.take_deltas() {
                shadow[l.index(d.tile).unwrap() as usize] = d.entry;
            }
            if step % 100 == 0 {
                pt.validate().unwrap();
                for i in 0..l.tile_count() {
                    assert_eq!(
                        shadow[i as usize],
                        pt.lookup(l.tile_at(i).unwrap()).unwrap()
                    );
                }
            }
        }
        pt.validate().unwrap();
    }
}
