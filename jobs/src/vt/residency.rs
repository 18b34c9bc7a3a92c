//! [`Residency`]: which tiles of a virtual texture are in its atlas, and
//! which a frame loads, evicts and prefetches. The policy, as plain data: the
//! wgpu layer (`forgeflow::vt::VirtualTexture`) executes the plan, one
//! page-fault job per load, and reports back how each load went.
//!
//! Each frame ([`Residency::plan`]):
//!
//! 1. The coarsest tile (the root) first, until it is loaded: a miss always
//!    falls back to a resident coarser tile, never to garbage.
//! 2. The newest feedback, de-duplicated and prioritised (coarser levels
//!    first, see [`RequestQueue`]).
//! 3. Each requested tile not resident is a fault: it takes a free slot, or
//!    the least recently used tile's older than the minimum age (evicted and
//!    unmapped), while the frame's budgets last. The budget of loads comes
//!    from the measured cost of a page-fault job over the workers; the
//!    budget of bytes from the configuration.
//! 4. Prefetch: with the budgets left, the neighbours of requested tiles go
//!    into free slots or those of tiles unused for [`PREFETCH_COLD`] frames.
//! 5. Bookkeeping: fault latency from a tile's first request to its load,
//!    reloads of recently evicted tiles, the mip bias from the working set.
//!
//! After the frame's jobs ran, [`Residency::settle`] takes back the loads
//! that failed or were put off (their tile was not in memory yet): they
//! leave the cache and the page table, and their requests keep their age.

use std::time::Instant;

use super::cache::{Insert, TileCache};
use super::layout::{TileId, VtLayout};
use super::page_table::PageTable;
use super::requests::{MipBias, Request, RequestQueue};

/// Frames a requested tile's load may be put off for want of its bytes in
/// memory; after that its page-fault job reads it, from the disk if need be.
pub const MAX_DEFER_FRAMES: u64 = 30;

/// Frames a tile must have gone unrequested before a prefetch may take its slot.
pub const PREFETCH_COLD: u64 = 30;

/// The budgets and switches of the residency policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ResidencyConfig {
    /// Frames a loaded tile stays at least before it may be evicted.
    pub min_age: u64,
    /// Tiles loaded per frame at most.
    pub max_uploads: u32,
    /// Bytes loaded per frame at most.
    pub max_upload_bytes: u64,
    /// Milliseconds of page-fault work a frame plans at most, from the
    /// measured average per job over the worker threads.
    pub max_fault_ms: f64,
    /// Also load the neighbours of requested tiles while the cache has room.
    pub prefetch: bool,
}

/// One tile the frame loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Load {
    /// The tile.
    pub tile: TileId,
    /// Its atlas slot (column, row).
    pub slot: (u8, u8),
    /// Whether its job may put the load off when the tile's bytes are not
    /// in memory yet (false once it was first requested
    /// [`MAX_DEFER_FRAMES`] ago).
    pub may_defer: bool,
}

/// How a page-fault job's load went, for [`Residency::settle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadOutcome {
    /// The tile's bytes are in staging memory.
    Written,
    /// Put off: its bytes were not in memory yet.
    PutOff,
    /// The job failed or panicked.
    Failed,
}

/// Counters and gauges of a virtual texture.
#[derive(Debug, Clone)]
pub struct VtStats {
    /// Frames updated.
    pub frames: u64,
    /// Tiles resident now.
    pub resident: usize,
    /// Slots in the atlas.
    pub slots: usize,
    /// Distinct tiles requested by the last feedback.
    pub requested: usize,
    /// Of those, not resident when requested (page faults).
    pub faults: usize,
    /// Tiles loaded in all.
    pub tiles_uploaded: u64,
    /// Tiles evicted in all.
    pub evicted: u64,
    /// Tiles loaded ahead of a request (neighbours of requested ones).
    pub prefetched: u64,
    /// Loads asked for by feedback of a tile evicted within the last 60
    /// frames (the eviction was a mistake; prefetches do not count).
    pub reloaded_within_60: u64,
    /// Requested tiles that were resident, over all feedback so far.
    pub hits: u64,
    /// Requested tiles, over all feedback so far.
    pub requests: u64,
    /// The mip bias now.
    pub bias: f32,
    /// Loads by frames from the tile's first request (the frame whose
    /// feedback asked) to its load: index = frames, the last bucket counts
    /// 63 and more. A histogram, so that a long run stays bounded.
    pub fault_latency_frames: [u64; 64],
    /// GPU bytes: atlas, page table, feedback, parameters.
    pub gpu_bytes: u64,
    /// Loads whose page-fault job failed (see [`Residency::settle`]).
    pub failed_loads: u64,
    /// Loads put off because their tile was not in memory yet (a cold
    /// page cache: the source said it would wait for a disk and started a
    /// read-ahead); the tile is asked for again by later feedback.
    pub deferred_loads: u64,
    /// CPU time of the last plan's feedback processing (de-duplication and
    /// prioritisation), in milliseconds.
    pub feedback_ms: f64,
}

impl Default for VtStats {
    fn default() -> Self {
        VtStats {
            frames: 0,
            resident: 0,
            slots: 0,
            requested: 0,
            faults: 0,
            tiles_uploaded: 0,
            evicted: 0,
            prefetched: 0,
            reloaded_within_60: 0,
            hits: 0,
            requests: 0,
            bias: 0.0,
            fault_latency_frames: [0; 64],
            gpu_bytes: 0,
            failed_loads: 0,
            deferred_loads: 0,
            feedback_ms: 0.0,
        }
    }
}

impl VtStats {
    /// The `q` quantile (0..=1) of the fault latency in frames, or `None`
    /// before any load.
    pub fn fault_latency_quantile(&self, q: f64) -> Option<u32> {
        let total: u64 = self.fault_latency_frames.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((total - 1) as f64 * q.clamp(0.0, 1.0)).round() as u64;
        let mut seen = 0;
        for (frames, &n) in self.fault_latency_frames.iter().enumerate() {
            seen += n;
            if seen > rank {
                return Some(frames as u32);
            }
        }
        Some(63)
    }
}

/// A virtual texture's residency: the tile cache, the page table, the
/// request queue, the mip bias and each frame's loads.
#[derive(Debug)]
pub struct Residency {
    layout: VtLayout,
    config: ResidencyConfig,
    /// Bytes of one slot in the atlas.
    slot_bytes: u64,
    cache: TileCache,
    page_table: PageTable,
    requests: RequestQueue,
    bias: MipBias,
    /// The last plan's loads, then its prefetches from `prefetch_from`.
    loads: Vec<Load>,
    prefetch_from: usize,
    /// Per load of the last plan: the frame of its tile's first request and
    /// the latency bucket it was counted in, for a load asked for by
    /// feedback; a load that fails or is put off gives both back.
    load_latency: Vec<Option<(u64, usize)>>,
    /// Scratch kept between frames: the requests.
    wanted: Vec<Request>,
    /// Per tile: the frame it was first requested while missing, and when it left.
    first_request: Vec<u64>,
    evicted_at: Vec<u64>,
    frame: u64,
    /// The root's bytes were lost (see [`forget`](Self::forget)): the next
    /// plan loads it again.
    reload_root: bool,
    stats: VtStats,
}

impl Residency {
    /// The residency of a virtual texture of `layout` with an atlas of
    /// `columns x rows` slots of `slot_bytes` each: the root tile pinned in
    /// the first slot (its bytes are loaded by the first plan), the page
    /// table pointing every tile at it. Feedback words name the texture as
    /// `texture_id`.
    pub fn new(
        layout: VtLayout,
        (columns, rows): (u32, u32),
        slot_bytes: u64,
        texture_id: u8,
        bias: MipBias,
        config: ResidencyConfig,
    ) -> Self {
        let mut cache = TileCache::new(layout, columns, rows, config.min_age);
        let root = root_of(&layout);
        let Insert::Free(root_slot) = cache.insert(root, 0, true) else {
            unreachable!("an empty cache has a free slot");
        };
        let n = layout.tile_count() as usize;
        let mut first_request = vec![u64::MAX; n];
        // The root's bytes go up with the first plan (frame 1).
        first_request[n - 1] = 1;
        Residency {
            layout,
            config,
            slot_bytes,
            loads: Vec::with_capacity(cache.capacity()),
            load_latency: Vec::with_capacity(cache.capacity()),
            prefetch_from: 0,
            page_table: PageTable::new(layout, root_slot),
            requests: RequestQueue::new(layout, texture_id + 1),
            cache,
            bias,
            wanted: Vec::new(),
            first_request,
            evicted_at: vec![u64::MAX; n],
            frame: 0,
            reload_root: false,
            stats: VtStats {
                slots: (columns * rows) as usize,
                ..VtStats::default()
            },
        }
    }

    /// The tiling.
    pub fn layout(&self) -> &VtLayout {
        &self.layout
    }

    /// The frames planned so far (the last plan's frame).
    pub fn frame(&self) -> u64 {
        self.frame
    }

    /// The mip bias now.
    pub fn bias(&self) -> f32 {
        self.bias.bias
    }

    /// The page table (its deltas are what the GPU copy applies).
    pub fn page_table(&self) -> &PageTable {
        &self.page_table
    }

    /// The page table, to take its deltas.
    pub fn page_table_mut(&mut self) -> &mut PageTable {
        &mut self.page_table
    }

    /// The most loads a plan can hold: one per slot.
    pub fn max_loads(&self) -> usize {
        self.cache.capacity()
    }

    /// Counters and gauges.
    pub fn stats(&self) -> &VtStats {
        &self.stats
    }

    /// Sets the GPU bytes the statistics report (the wgpu layer's to know).
    pub fn set_gpu_bytes(&mut self, bytes: u64) {
        self.stats.gpu_bytes = bytes;
    }

    /// The last plan's loads, its prefetches last.
    pub fn loads(&self) -> &[Load] {
        &self.loads
    }

    /// Plans the next frame (see the [module documentation](self)) from
    /// `feedback`: the newest words read back and the frame that rendered
    /// them, or `None` when no newer feedback arrived. `fault_ns` is the
    /// measured average time of a page-fault job (0 before any), `workers`
    /// the threads that run them. Returns the loads; the page table maps
    /// them already.
    pub fn plan(
        &mut self,
        feedback: Option<(u64, &[u32])>,
        fault_ns: u64,
        workers: usize,
    ) -> &[Load] {
        self.frame += 1;
        let now = self.frame;
        let started = Instant::now();
        let (rendered, words) = feedback.unwrap_or((now, &[]));
        let has_feedback = !words.is_empty();
        let mut wanted = std::mem::take(&mut self.wanted);
        wanted.clear();
        self.loads.clear();
        self.load_latency.clear();
        let root = root_of(&self.layout);
        let load_root = self.stats.tiles_uploaded == 0 || std::mem::take(&mut self.reload_root);
        if load_root {
            wanted.push(Request {
                tile: root,
                count: 1,
            });
        }
        wanted.extend_from_slice(self.requests.process(words));
        self.stats.feedback_ms = started.elapsed().as_secs_f64() * 1e3;
        let mut missing = 0;
        let mut budget_bytes = self.config.max_upload_bytes;
        let slot_bytes = self.slot_bytes;
        // The time budget, from the average job so far over the workers.
        let max_uploads = if fault_ns == 0 {
            self.config.max_uploads
        } else {
            let fit =
                (self.config.max_fault_ms * 1e6 * workers.max(1) as f64 / fault_ns as f64) as u32;
            self.config.max_uploads.min(fit.max(1))
        };
        for r in &wanted {
            let i = self.layout.index(r.tile).expect("requests name tiles") as usize;
            let resident = self.cache.touch(r.tile, now) && !(r.tile == root && load_root);
            if has_feedback {
                self.stats.requests += 1;
                self.stats.hits += resident as u64;
            }
            if resident {
                continue;
            }
            missing += 1;
            if self.first_request[i] == u64::MAX {
                self.first_request[i] = rendered;
            }
            if self.loads.len() as u32 >= max_uploads || budget_bytes < slot_bytes {
                continue;
            }
            let slot = if r.tile == root {
                self.cache.slot_of(root).expect("pinned at creation")
            } else {
                match self.cache.insert(r.tile, now, false) {
                    Insert::Free(s) => s,
                    Insert::Evicted { slot, evicted } => {
                        self.evict(evicted, now);
                        slot
                    }
                    Insert::Full => continue,
                }
            };
            budget_bytes -= slot_bytes;
            self.push_load(r.tile, slot, now);
        }
        self.prefetch_from = self.loads.len();
        if self.config.prefetch && self.bias.bias == 0.0 && wanted.len() * 3 < self.stats.slots {
            self.prefetch(&wanted, max_uploads, budget_bytes, now);
        }
        self.stats.requested = wanted.len();
        self.stats.faults = missing;
        // The bias from the distinct tiles wanted against the slots.
        if has_feedback {
            self.bias
                .update(wanted.len(), self.stats.slots.saturating_sub(1));
        }
        self.stats.bias = self.bias.bias;
        self.stats.resident = self.cache.resident();
        self.stats.frames += 1;
        self.wanted = wanted;
        &self.loads
    }

    /// The neighbours of what the view wants, at the same level, with the
    /// budget left, into free slots or those of cold tiles: tiles about to
    /// enter the view are often there before they are asked for. A prefetch
    /// never evicts a tile in use.
    fn prefetch(&mut self, wanted: &[Request], max_uploads: u32, mut budget_bytes: u64, now: u64) {
        const AROUND: [(i32, i32); 8] = [
            (-1, 0),
            (1, 0),
            (0, -1),
            (0, 1),
            (-1, -1),
            (1, -1),
            (-1, 1),
            (1, 1),
        ];
        for r in wanted {
            let (tx, ty) = self.layout.tiles_at(r.tile.mip as u32);
            for (dx, dy) in AROUND {
                if self.loads.len() as u32 >= max_uploads || budget_bytes < self.slot_bytes {
                    return;
                }
                let (x, y) = (r.tile.x as i32 + dx, r.tile.y as i32 + dy);
                if x < 0 || y < 0 || x >= tx as i32 || y >= ty as i32 {
                    continue;
                }
                let t = TileId {
                    mip: r.tile.mip,
                    x: x as u16,
                    y: y as u16,
                };
                if self.cache.slot_of(t).is_some() || self.loads.iter().any(|l| l.tile == t) {
                    continue;
                }
                let slot = match self.cache.insert_cold(t, now, PREFETCH_COLD) {
                    Insert::Free(s) => s,
                    Insert::Evicted { slot, evicted } => {
                        self.evict(evicted, now);
                        slot
                    }
                    Insert::Full => return,
                };
                budget_bytes -= self.slot_bytes;
                self.push_load(t, slot, now);
                self.stats.prefetched += 1;
            }
        }
    }

    /// Adds a load to the plan: maps the tile, counts its latency if
    /// feedback asked for it (a prefetch was not), and whether a recent
    /// eviction was a mistake.
    fn push_load(&mut self, tile: TileId, slot: (u8, u8), now: u64) {
        let i = self.layout.index(tile).expect("a tile") as usize;
        // A tile asked for long ago is read even from a cold disk: put off
        // no further, in case read-ahead never lands.
        let first = self.first_request[i];
        let may_defer = first == u64::MAX || now - first < MAX_DEFER_FRAMES;
        self.loads.push(Load {
            tile,
            slot,
            may_defer,
        });
        self.page_table.map(tile, slot);
        let requested = first != u64::MAX;
        if requested {
            let frames = (now - first).min(63) as usize;
            self.stats.fault_latency_frames[frames] += 1;
            self.load_latency.push(Some((first, frames)));
            self.first_request[i] = u64::MAX;
        } else {
            self.load_latency.push(None);
        }
        if requested && self.evicted_at[i] != u64::MAX && now - self.evicted_at[i] <= 60 {
            self.stats.reloaded_within_60 += 1;
        }
        self.stats.tiles_uploaded += 1;
    }

    /// Takes `evicted` out of the page table (its texels fall back to the
    /// nearest resident ancestor) and counts the eviction.
    fn evict(&mut self, evicted: TileId, now: u64) {
        self.page_table.unmap(evicted);
        let j = self.layout.index(evicted).expect("a tile") as usize;
        self.evicted_at[j] = now;
        self.stats.evicted += 1;
    }

    /// After the plan's jobs ran: `outcome(k)` says how load `k` went. A
    /// load that failed or was put off leaves the cache and the page table
    /// again (the root stays mapped and is loaded again by the next plan),
    /// and its request keeps its age. Returns (loads failed, loads taken
    /// back); when any was taken back, the page table's new deltas must go
    /// up in this frame.
    pub fn settle(&mut self, outcome: impl Fn(usize) -> LoadOutcome) -> (usize, usize) {
        let root = root_of(&self.layout);
        let (mut failed, mut unloaded) = (0, 0);
        for (k, load) in self.loads.iter().enumerate() {
            match outcome(k) {
                LoadOutcome::Written => continue,
                LoadOutcome::PutOff => self.stats.deferred_loads += 1,
                LoadOutcome::Failed => {
                    failed += 1;
                    self.stats.failed_loads += 1;
                }
            }
            unloaded += 1;
            self.stats.tiles_uploaded -= 1;
            if k >= self.prefetch_from {
                self.stats.prefetched -= 1;
            }
            if let Some(Some((first_request, bucket))) = self.load_latency.get(k) {
                self.stats.fault_latency_frames[*bucket] -= 1;
                let i = self.layout.index(load.tile).expect("a tile") as usize;
                self.first_request[i] = *first_request;
            }
            if load.tile != root {
                self.cache.remove(load.tile);
                self.page_table.unmap(load.tile);
            }
        }
        if unloaded > 0 {
            self.stats.resident = self.cache.resident();
        }
        (failed, unloaded)
    }
}

impl Residency {
    /// Tiles whose upload was recorded into an encoder that was dropped
    /// unsubmitted: their texels never arrived, so each still resident
    /// leaves the cache and the page table (the root stays mapped: it is
    /// loaded again by the next plan). Feedback asks for them again. The
    /// whole page table must go up again, since the rows staged with them
    /// never arrived either. Returns how many were taken back.
    pub fn forget(&mut self, tiles: &[TileId]) -> usize {
        let root = root_of(&self.layout);
        let mut taken = 0;
        for &tile in tiles {
            if tile == root {
                self.reload_root = true;
                continue;
            }
            if self.page_table.is_resident(tile) {
                self.cache.remove(tile);
                self.page_table.unmap(tile);
                taken += 1;
            }
        }
        self.stats.resident = self.cache.resident();
        taken
    }
}

/// The coarsest level's one tile.
fn root_of(layout: &VtLayout) -> TileId {
    TileId {
        mip: (layout.mips() - 1) as u8,
        x: 0,
        y: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn residency(columns: u32, rows: u32) -> Residency {
        let layout = VtLayout::new(1024, 1024, 128, 4).expect("a layout");
        Residency::new(
            layout,
            (columns, rows),
            1,
            0,
            MipBias::default(),
            ResidencyConfig {
                min_age: 2,
                max_uploads: 64,
                max_upload_bytes: u64::MAX,
                max_fault_ms: 8.0,
                prefetch: false,
            },
        )
    }

    /// Feedback words of texture 0 (packed as id 1) naming `tiles`.
    fn words(tiles: &[TileId]) -> Vec<u32> {
        tiles.iter().map(|&t| t.pack(1)).collect()
    }

    #[test]
    fn the_root_loads_first_and_requests_then_fault_once() {
        let mut r = residency(4, 4);
        let root = root_of(r.layout());
        assert_eq!(
            r.plan(None, 0, 1).to_vec().len(),
            1,
            "the root alone, first"
        );
        assert_eq!(r.loads()[0].tile, root);
        let t = TileId { mip: 0, x: 2, y: 3 };
        let w = words(&[t, t]);
        let loads = r.plan(Some((1, &w)), 0, 1).to_vec();
        assert_eq!(loads.iter().map(|l| l.tile).collect::<Vec<_>>(), [t]);
        assert!(r.page_table().is_resident(t));
        // Resident now: the same feedback is a hit, no load.
        assert!(r.plan(Some((2, &w)), 0, 1).is_empty());
        assert_eq!((r.stats().hits, r.stats().requests), (1, 2));
    }

    #[test]
    fn a_failed_load_is_taken_back_and_keeps_its_age() {
        let mut r = residency(4, 4);
        r.plan(None, 0, 1);
        let t = TileId { mip: 0, x: 1, y: 1 };
        let w = words(&[t]);
        r.plan(Some((1, &w)), 0, 1);
        assert_eq!(r.settle(|_| LoadOutcome::Failed), (1, 1));
        assert!(!r.page_table().is_resident(t));
        assert_eq!(r.stats().failed_loads, 1);
        // Asked again: loaded in frame 3, its latency counted from the
        // first request (rendered in frame 1), not from the failed load.
        r.plan(Some((3, &w)), 0, 1);
        assert_eq!(r.loads()[0].tile, t);
        assert_eq!(r.stats().fault_latency_quantile(1.0), Some(2));
    }

    #[test]
    fn forgotten_loads_leave_the_page_table_and_fault_again() {
        let mut r = residency(4, 4);
        r.plan(None, 0, 1);
        let root = root_of(r.layout());
        let t = TileId { mip: 0, x: 1, y: 2 };
        let w = words(&[t]);
        r.plan(Some((1, &w)), 0, 1);
        assert!(r.page_table().is_resident(t));
        // The frame that carried its bytes (and the root's) never ran.
        assert_eq!(r.forget(&[t, root]), 1);
        assert!(!r.page_table().is_resident(t));
        assert!(r.page_table().is_resident(root), "the root stays mapped");
        // The next plan loads the root again, and the tile when asked.
        let loads: Vec<TileId> = r.plan(Some((2, &w)), 0, 1).iter().map(|l| l.tile).collect();
        assert_eq!(loads, [root, t]);
        assert!(r.plan(Some((3, &w)), 0, 1).is_empty());
    }

    #[test]
    fn the_fault_budget_follows_the_measured_job_cost() {
        let mut r = residency(8, 8);
        r.plan(None, 0, 1);
        let tiles: Vec<TileId> = (0..8).map(|x| TileId { mip: 0, x, y: 0 }).collect();
        let w = words(&tiles);
        // 2 ms a job, 8 ms a frame on one worker: four loads.
        assert_eq!(r.plan(Some((1, &w)), 2_000_000, 1).len(), 4);
        // On two workers, the other four.
        assert_eq!(r.plan(Some((2, &w)), 2_000_000, 2).len(), 4);
    }
}
