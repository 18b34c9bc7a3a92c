//! Tiles made ahead, off the frame: a [`TileSource`] wrapper for sources
//! whose tiles cost CPU time to make (a procedural generator, a source that
//! decompresses), so that a page fault never waits for one inside a frame.
//!
//! It gives such a source the contract a pack on disk has (see
//! [`TileSource::tile_if_cached`]): a page-fault job asks for a tile; if it
//! was made already, the job gets its bytes (a copy); if not, the job is put
//! off and the tile is made on the wrapper's own threads, to be there when
//! feedback asks for it again (normally the next frame). [`TileSource::tile`]
//! (what the residency asks for once a tile has been put off for
//! [`MAX_DEFER_FRAMES`](super::residency::MAX_DEFER_FRAMES)) makes it at
//! once, as before.
//!
//! Made tiles wait in a bounded set (oldest dropped first): a tile the
//! camera has left behind is not kept. Tiles being made are bounded by the
//! same number: beyond it, a fault is put off without starting anything. A tile whose making failed is not
//! kept either; asked again, it is made again (and a synchronous `tile`
//! reports the error).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use super::{PackError, TileFormat, TileId, TileSource, VtLayout};

/// Made tiles and tiles being made.
#[derive(Default)]
struct Made {
    /// Made tiles: the serial number they were made under, their bytes.
    ready: HashMap<TileId, (u64, Vec<u8>)>,
    /// `ready`'s tiles with their serial numbers, oldest first. An entry
    /// whose serial is no longer its tile's (taken since, perhaps made
    /// again) is stale: skipped when dropping, and cleared out once there
    /// are as many stale entries as the bound.
    order: VecDeque<(TileId, u64)>,
    in_flight: HashSet<TileId>,
    /// Buffers of taken tiles, for the next ones made.
    spare: Vec<Vec<u8>>,
    made: u64,
    taken: u64,
    dropped: u64,
}

impl Made {
    /// Keeps `bytes` as `tile`'s, dropping the oldest made tiles beyond
    /// `capacity`.
    fn keep(&mut self, tile: TileId, bytes: Vec<u8>, capacity: usize) {
        self.made += 1;
        let serial = self.made;
        if let Some((_, old)) = self.ready.insert(tile, (serial, bytes)) {
            self.spare.push(old);
        }
        self.order.push_back((tile, serial));
        while self.ready.len() > capacity {
            let Some((oldest, s)) = self.order.pop_front() else {
                break;
            };
            if self.ready.get(&oldest).is_some_and(|&(r, _)| r == s) {
                let (_, buffer) = self.ready.remove(&oldest).expect("checked");
                self.dropped += 1;
                self.spare.push(buffer);
            }
        }
        if self.order.len() > 2 * capacity {
            let ready = &self.ready;
            self.order
                .retain(|(t, s)| ready.get(t).is_some_and(|&(r, _)| r == *s));
        }
    }

    /// Takes `tile`'s made bytes, if there are.
    fn take(&mut self, tile: TileId) -> Option<Vec<u8>> {
        let (_, bytes) = self.ready.remove(&tile)?;
        self.taken += 1;
        Some(bytes)
    }
}

/// What a [`ReadAhead`] did (for reports and tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadAheadStats {
    /// Tiles made on the wrapper's threads.
    pub made: u64,
    /// Made tiles a page fault took.
    pub taken: u64,
    /// Made tiles dropped unasked (the bound was reached).
    pub dropped: u64,
    /// Tiles being made now.
    pub in_flight: u64,
}

/// A [`TileSource`] whose tiles are made ahead on `threads` threads of its
/// own (see the module documentation).
pub struct ReadAhead<S> {
    inner: Arc<S>,
    made: Arc<Mutex<Made>>,
    pool: rayon::ThreadPool,
    capacity: usize,
}

impl<S: TileSource + 'static> ReadAhead<S> {
    /// Wraps `inner`; made tiles are kept, and tiles are made, up to
    /// `capacity` (at least 1) at a time, on `threads` threads (at least 1).
    pub fn new(inner: S, threads: usize, capacity: usize) -> Result<Self, PackError> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(|i| format!("forgeflow-read-ahead-{i}"))
            .build()
            .map_err(|e| PackError::Io(std::io::Error::other(e.to_string())))?;
        Ok(ReadAhead {
            inner: Arc::new(inner),
            made: Arc::default(),
            pool,
            capacity: capacity.max(1),
        })
    }

    /// The wrapped source.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// What it did so far.
    pub fn stats(&self) -> ReadAheadStats {
        let m = self.made.lock().expect("not poisoned");
        ReadAheadStats {
            made: m.made,
            taken: m.taken,
            dropped: m.dropped,
            in_flight: m.in_flight.len() as u64,
        }
    }

    /// Starts making `tile` unless it is being made, or as many tiles as
    /// the bound are (the fault is put off all the same, and asks again).
    fn make_ahead(&self, m: &mut Made, tile: TileId) {
        if m.in_flight.len() >= self.capacity || !m.in_flight.insert(tile) {
            return;
        }
        let (inner, made, capacity) = (
            Arc::clone(&self.inner),
            Arc::clone(&self.made),
            self.capacity,
        );
        self.pool.spawn(move || {
            let bytes = inner.tile(tile).map(|b| {
                let mut out = made
                    .lock()
                    .expect("not poisoned")
                    .spare
                    .pop()
                    .unwrap_or_default();
                out.clear();
                out.extend_from_slice(&b);
                out
            });
            let mut m = made.lock().expect("not poisoned");
            m.in_flight.remove(&tile);
            // A failure keeps nothing: asked again, the tile is made again.
            if let Ok(bytes) = bytes {
                m.keep(tile, bytes, capacity);
            }
        });
    }
}

impl<S: TileSource + 'static> TileSource for ReadAhead<S> {
    fn layout(&self) -> VtLayout {
        self.inner.layout()
    }

    fn format(&self) -> TileFormat {
        self.inner.format()
    }

    /// The made tile if there is one, else made now, on the caller's thread.
    fn tile(&self, tile: TileId) -> Result<Cow<'_, [u8]>, PackError> {
        let made = self.made.lock().expect("not poisoned").take(tile);
        match made {
            Some(bytes) => Ok(Cow::Owned(bytes)),
            None => self.inner.tile(tile),
        }
    }

    /// The made tile (copied into `scratch`, outside the lock), or `None`
    /// after starting to make it.
    fn tile_if_cached<'a>(
        &'a self,
        tile: TileId,
        scratch: &'a mut Vec<u8>,
    ) -> Result<Option<Cow<'a, [u8]>>, PackError> {
        if !self.inner.layout().contains(tile) {
            return self.inner.tile(tile).map(Some);
        }
        let made = {
            let mut m = self.made.lock().expect("not poisoned");
            let made = m.take(tile);
            if made.is_none() {
                self.make_ahead(&mut m, tile);
            }
            made
        };
        let Some(bytes) = made else {
            return Ok(None);
        };
        scratch.clear();
        scratch.extend_from_slice(&bytes);
        self.made.lock().expect("not poisoned").spare.push(bytes);
        Ok(Some(Cow::Borrowed(&scratch[..])))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    /// Tiles of one byte value each (the tile's x), counting how many it made.
    struct Counting {
        layout: VtLayout,
        made: AtomicU64,
    }

    impl TileSource for Counting {
        fn layout(&self) -> VtLayout {
            self.layout
        }
        fn format(&self) -> TileFormat {
            TileFormat::Rgba8
        }
        fn tile(&self, tile: TileId) -> Result<Cow<'_, [u8]>, PackError> {
            if tile.x == 7 {
                return Err(PackError::Io(std::io::Error::other("tile 7 is bad")));
            }
            self.made.fetch_add(1, Ordering::Relaxed);
            Ok(Cow::Owned(vec![tile.x as u8; 16]))
        }
    }

    fn source() -> ReadAhead<Counting> {
        let layout = VtLayout::new(1024, 1024, 64, 4).unwrap();
        let inner = Counting {
            layout,
            made: AtomicU64::new(0),
        };
        ReadAhead::new(inner, 2, 4).unwrap()
    }

    /// Asks until the tile is made (or a second passes).
    fn ask_until_made(r: &ReadAhead<Counting>, tile: TileId) -> Option<Vec<u8>> {
        let started = Instant::now();
        let mut scratch = Vec::new();
        while started.elapsed() < Duration::from_secs(5) {
            if let Some(b) = r.tile_if_cached(tile, &mut scratch).unwrap() {
                return Some(b.into_owned());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        None
    }

    #[test]
    fn a_tile_is_put_off_once_made_ahead_then_given() {
        let r = source();
        let tile = TileId { mip: 0, x: 3, y: 1 };
        let mut scratch = Vec::new();
        assert!(
            r.tile_if_cached(tile, &mut scratch).unwrap().is_none(),
            "not made yet"
        );
        assert_eq!(ask_until_made(&r, tile).unwrap(), vec![3u8; 16]);
        // Made once, on the wrapper's threads, however often it was asked.
        assert_eq!(r.inner().made.load(Ordering::Relaxed), 1);
        let s = r.stats();
        assert_eq!((s.made, s.taken, s.in_flight), (1, 1, 0));
        // Taken: the next ask makes it again.
        assert!(r.tile_if_cached(tile, &mut scratch).unwrap().is_none());
    }

    #[test]
    fn tile_makes_it_at_once_and_reports_errors() {
        let r = source();
        assert_eq!(&*r.tile(TileId { mip: 0, x: 2, y: 0 }).unwrap(), &[2u8; 16]);
        let bad = TileId { mip: 0, x: 7, y: 0 };
        assert!(r.tile(bad).is_err());
        // Made ahead, a bad tile fails there, keeps nothing, and stays put off.
        let mut scratch = Vec::new();
        assert!(r.tile_if_cached(bad, &mut scratch).unwrap().is_none());
        let started = Instant::now();
        while r.stats().in_flight > 0 && started.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(r.tile_if_cached(bad, &mut scratch).unwrap().is_none());
        assert_eq!(r.stats().made, 0);
    }

    #[test]
    fn made_tiles_are_bounded_oldest_dropped_first() {
        let r = source();
        let mut scratch = Vec::new();
        let tiles: Vec<TileId> = (0..6).map(|x| TileId { mip: 0, x, y: 2 }).collect();
        // Four asked (as many as may be made at once), then two more.
        for wave in [&tiles[..4], &tiles[4..]] {
            for &t in wave {
                assert!(r.tile_if_cached(t, &mut scratch).unwrap().is_none());
            }
            let started = Instant::now();
            while r.stats().in_flight > 0 && started.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        let s = r.stats();
        assert_eq!((s.made, s.dropped), (6, 2), "capacity 4");
        let ready = &r.made.lock().unwrap().ready;
        assert!(
            tiles[4..].iter().all(|t| ready.contains_key(t)),
            "the youngest stay"
        );
        assert_eq!(tiles.iter().filter(|t| ready.contains_key(t)).count(), 4);
    }

    /// No more tiles are being made at once than the bound: a fault beyond
    /// it is put off without starting anything.
    #[test]
    fn tiles_being_made_are_bounded() {
        struct Slow(VtLayout);
        impl TileSource for Slow {
            fn layout(&self) -> VtLayout {
                self.0
            }
            fn format(&self) -> TileFormat {
                TileFormat::Rgba8
            }
            fn tile(&self, _: TileId) -> Result<Cow<'_, [u8]>, PackError> {
                std::thread::sleep(Duration::from_millis(200));
                Ok(Cow::Owned(vec![0; 4]))
            }
        }
        let layout = VtLayout::new(1024, 1024, 64, 4).unwrap();
        let r = ReadAhead::new(Slow(layout), 1, 3).unwrap();
        let mut scratch = Vec::new();
        for x in 0..10 {
            assert!(r
                .tile_if_cached(TileId { mip: 0, x, y: 0 }, &mut scratch)
                .unwrap()
                .is_none());
        }
        assert_eq!(r.stats().in_flight, 3);
    }

    /// Taken tiles leave stale entries in the drop order; they are cleared
    /// out (the order stays bounded), and a tile made again is not dropped
    /// for its older, taken copy.
    #[test]
    fn the_drop_order_stays_bounded_and_names_each_copy() {
        let mut m = Made::default();
        let tile = |x| TileId { mip: 0, x, y: 0 };
        for round in 0..1000u16 {
            m.keep(tile(round % 3), vec![0; 4], 4);
            assert!(m.take(tile(round % 3)).is_some());
            assert!(m.order.len() <= 8, "round {round}: {}", m.order.len());
        }
        // Made, taken, made again: the new copy is the youngest.
        m.keep(tile(1), vec![1], 2);
        m.take(tile(1));
        m.keep(tile(2), vec![2], 2);
        m.keep(tile(1), vec![1], 2);
        m.keep(tile(3), vec![3], 2);
        assert!(m.ready.contains_key(&tile(1)), "the copy made last stays");
        assert!(!m.ready.contains_key(&tile(2)), "the oldest copy goes");
        assert_eq!(m.dropped, 1);
    }
}
