//! [`TileCache`]: which tile occupies which slot of the physical atlas, under
//! a fixed number of slots (the memory budget), with least-recently-used
//! eviction that spares tiles younger than a minimum age and pinned ones.
//!
//! The LRU order is an intrusive doubly-linked list over the slots: touching,
//! inserting and evicting are O(1), and a frame allocates nothing.

use super::layout::{TileId, VtLayout};

const NONE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Slot {
    tile: Option<TileId>,
    /// Frame the tile was last requested or loaded.
    last_used: u64,
    /// Frame the tile was loaded.
    loaded: u64,
    pinned: bool,
    /// LRU neighbours (towards the most recent: `newer`).
    older: u32,
    newer: u32,
}

/// What [`TileCache::insert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Insert {
    /// The tile went into a free slot.
    Free((u8, u8)),
    /// The tile took the slot of an evicted one (unmap it from the page table first).
    Evicted {
        /// The slot.
        slot: (u8, u8),
        /// The tile that left.
        evicted: TileId,
    },
    /// No slot could be freed (all younger than the minimum age, or pinned):
    /// the working set exceeds the cache.
    Full,
}

/// Statistics since creation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Tiles inserted.
    pub inserts: u64,
    /// Tiles evicted.
    pub evictions: u64,
    /// Inserts refused because every slot was too young or pinned.
    pub full: u64,
}

/// Slots of a physical atlas and the tiles in them.
#[derive(Debug, Clone)]
pub struct TileCache {
    columns: u32,
    slots: Vec<Slot>,
    /// Per tile (dense index): its slot index.
    where_is: Vec<u32>,
    layout: VtLayout,
    min_age: u64,
    /// Least recently used end of the list, and most recent end.
    oldest: u32,
    newest: u32,
    free: Vec<u32>,
    stats: CacheStats,
}

impl TileCache {
    /// A cache of `columns` x `rows` slots (each at most 256) for tiles of
    /// `layout`; a tile is not evicted before `min_age` frames after it was
    /// loaded.
    pub fn new(layout: VtLayout, columns: u32, rows: u32, min_age: u64) -> Self {
        let (columns, rows) = (columns.clamp(1, 256), rows.clamp(1, 256));
        let n = columns * rows;
        TileCache {
            columns,
            slots: vec![
                Slot {
                    tile: None,
                    last_used: 0,
                    loaded: 0,
                    pinned: false,
                    older: NONE,
                    newer: NONE,
                };
                n as usize
            ],
            where_is: vec![NONE; layout.tile_count() as usize],
            layout,
            min_age,
            oldest: NONE,
            newest: NONE,
            free: (0..n).rev().collect(),
            stats: CacheStats::default(),
        }
    }

    /// Slots in all.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Slots holding a tile.
    pub fn resident(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Counters.
    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    fn slot_xy(&self, s: u32) -> (u8, u8) {
        ((s % self.columns) as u8, (s / self.columns) as u8)
    }

    /// The slot of `tile`, if resident.
    pub fn slot_of(&self, tile: TileId) -> Option<(u8, u8)> {
        let i = self.layout.index(tile).ok()?;
        match self.where_is[i as usize] {
            NONE => None,
            s => Some(self.slot_xy(s)),
        }
    }

    fn unlink(&mut self, s: u32) {
        let Slot { older, newer, .. } = self.slots[s as usize];
        match older {
            NONE => self.oldest = newer,
            o => self.slots[o as usize].newer = newer,
        }
        match newer {
            NONE => self.newest = older,
            n => self.slots[n as usize].older = older,
        }
    }

    fn push_newest(&mut self, s: u32) {
        self.slots[s as usize].older = self.newest;
        self.slots[s as usize].newer = NONE;
        match self.newest {
            NONE => self.oldest = s,
            n => self.slots[n as usize].newer = s,
        }
        self.newest = s;
    }

    /// Marks `tile` used in `frame` (it stays longer). Returns whether it is resident.
    pub fn touch(&mut self, tile: TileId, frame: u64) -> bool {
        let Ok(i) = self.layout.index(tile) else {
            return false;
        };
        let s = self.where_is[i as usize];
        if s == NONE {
            return false;
        }
        self.slots[s as usize].last_used = frame;
        self.unlink(s);
        self.push_newest(s);
        true
    }

    /// Puts `tile` in a slot in `frame`: a free one, else the least recently
    /// used tile's that is at least `min_age` frames old and not pinned.
    pub fn insert(&mut self, tile: TileId, frame: u64, pinned: bool) -> Insert {
        self.insert_evicting(tile, frame, pinned, 0)
    }

    /// As [`insert`](Self::insert), but evicts only a tile unused for at
    /// least `unused_for` frames (for speculative loads, which should only
    /// take the place of cold tiles).
    pub fn insert_cold(&mut self, tile: TileId, frame: u64, unused_for: u64) -> Insert {
        self.insert_evicting(tile, frame, false, unused_for.max(1))
    }

    fn insert_evicting(
        &mut self,
        tile: TileId,
        frame: u64,
        pinned: bool,
        unused_for: u64,
    ) -> Insert {
        let Ok(i) = self.layout.index(tile) else {
            return Insert::Full;
        };
        if self.where_is[i as usize] != NONE {
            self.touch(tile, frame);
            return Insert::Free(self.slot_of(tile).expect("resident"));
        }
        let (s, evicted) = match self.free.pop() {
            Some(s) => (s, None),
            None => {
                // From the least recent end: the first old enough, unpinned.
                let mut s = self.oldest;
                while s != NONE {
                    let slot = &self.slots[s as usize];
                    // From here on, tiles used this frame (or, for a cold
                    // insert, within `unused_for` frames): none can go.
                    if slot.last_used + unused_for.max(1) > frame {
                        s = NONE;
                        break;
                    }
                    if !slot.pinned && frame >= slot.loaded + self.min_age {
                        break;
                    }
                    s = slot.newer;
                }
                if s == NONE {
                    self.stats.full += 1;
                    return Insert::Full;
                }
                let old = self.slots[s as usize].tile.expect("a used slot");
                let j = self.layout.index(old).expect("in the layout");
                self.where_is[j as usize] = NONE;
                self.unlink(s);
                self.stats.evictions += 1;
                (s, Some(old))
            }
        };
        self.slots[s as usize] = Slot {
            tile: Some(tile),
            last_used: frame,
            loaded: frame,
            pinned,
            older: NONE,
            newer: NONE,
        };
        self.push_newest(s);
        self.where_is[i as usize] = s;
        self.stats.inserts += 1;
        let slot = self.slot_xy(s);
        match evicted {
            Some(evicted) => Insert::Evicted { slot, evicted },
            None => Insert::Free(slot),
        }
    }

    /// Takes `tile` out of its slot (its load failed: the slot's bytes never
    /// arrived), freeing the slot. Returns the slot, or `None` if the tile
    /// was not resident.
    pub fn remove(&mut self, tile: TileId) -> Option<(u8, u8)> {
        let i = self.layout.index(tile).ok()?;
        let s = self.where_is[i as usize];
        if s == NONE {
            return None;
        }
        self.where_is[i as usize] = NONE;
        self.unlink(s);
        self.slots[s as usize].tile = None;
        self.slots[s as usize].pinned = false;
        self.free.push(s);
        Some(self.slot_xy(s))
    }

    /// Checks the list and the maps agree (for debugging and tests).
    pub fn validate(&self) -> Result<(), String> {
        let mut seen = 0;
        let mut s = self.oldest;
        let mut prev = NONE;
        let mut last = 0;
        while s != NONE {
            let slot = &self.slots[s as usize];
            if slot.older != prev {
                return Err(format!("slot {s}: broken link"));
            }
            if slot.last_used < last {
                return Err(format!("slot {s}: used {} after {last}", slot.last_used));
            }
            last = slot.last_used;
            let t = slot.tile.ok_or(format!("slot {s} listed but empty"))?;
            let i = self.layout.index(t).map_err(|e| e.to_string())?;
            if self.where_is[i as usize] != s {
                return Err(format!("{t:?} is not mapped to slot {s}"));
            }
            seen += 1;
            prev = s;
            s = slot.newer;
        }
        if seen != self.resident() {
            return Err(format!("{seen} listed, {} resident", self.resident()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(x: u16) -> TileId {
        TileId { mip: 0, x, y: 0 }
    }

    #[test]
    fn a_removed_tile_frees_its_slot_for_the_next_insert() {
        let l = VtLayout::new(4096, 128, 128, 4).unwrap();
        let mut c = TileCache::new(l, 2, 1, 100);
        let a = match c.insert(t(0), 0, false) {
            Insert::Free(s) => s,
            other => panic!("{other:?}"),
        };
        c.insert(t(1), 0, false);
        assert_eq!(c.remove(t(0)), Some(a));
        assert_eq!(c.remove(t(0)), None, "removed once");
        assert_eq!(c.slot_of(t(0)), None);
        assert!(!c.touch(t(0), 1), "no longer resident: it is loaded again");
        assert_eq!(c.resident(), 1);
        c.validate().unwrap();
        // The young tile 1 is not evicted: the freed slot serves the insert.
        assert_eq!(c.insert(t(2), 1, false), Insert::Free(a));
        c.validate().unwrap();
    }

    #[test]
    fn lru_with_a_minimum_age_and_pins() {
        let l = VtLayout::new(4096, 128, 128, 4).unwrap(); // 32 tiles on level 0
        let mut c = TileCache::new(l, 2, 2, 3);
        assert_eq!(c.insert(t(0), 0, true), Insert::Free((0, 0)));
        for x in 1..4 {
            assert!(matches!(c.insert(t(x), 0, false), Insert::Free(_)));
        }
        // Full, and everything is younger than 3 frames.
        assert_eq!(c.insert(t(4), 1, false), Insert::Full);
        // At frame 3, tile 1 is the least recently used unpinned one.
        c.touch(t(2), 2);
        c.touch(t(3), 2);
        match c.insert(t(4), 3, false) {
            Insert::Evicted { evicted, .. } => assert_eq!(evicted, t(1)),
            other => panic!("{other:?}"),
        }
        assert_eq!(c.slot_of(t(1)), None);
        // The pinned tile 0 never goes, however old.
        for f in 10..20 {
            if let Insert::Evicted { evicted, .. } = c.insert(t(f as u16), f, false) {
                assert_ne!(evicted, t(0));
            }
            c.validate().unwrap();
        }
        assert!(c.slot_of(t(0)).is_some());
        // Tiles used this frame are never evicted for another of this frame.
        let mut c = TileCache::new(l, 2, 1, 0);
        c.insert(t(0), 5, false);
        c.insert(t(1), 5, false);
        assert_eq!(c.insert(t(2), 5, false), Insert::Full);
        assert_eq!(c.stats().full, 1);
        // A cold insert takes only the slot of a tile unused for long enough.
        c.touch(t(1), 8);
        assert_eq!(c.insert_cold(t(3), 10, 10), Insert::Full);
        match c.insert_cold(t(3), 15, 10) {
            Insert::Evicted { evicted, .. } => assert_eq!(evicted, t(0)),
            other => panic!("{other:?}"),
        }
        c.validate().unwrap();
    }
}
