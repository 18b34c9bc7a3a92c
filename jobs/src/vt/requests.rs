//! From a frame's feedback (one packed word per sampled screen region, many
//! the same) to the tiles to load: de-duplicated with a frame-stamped table
//! (no hashing, no allocation once grown), counted, and ordered coarsest level
//! first, then most requested first. Plus the mip-bias control that keeps the
//! working set within the cache instead of thrashing it.

use super::layout::{TileId, VtLayout};

/// A de-duplicated request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// The tile.
    pub tile: TileId,
    /// Feedback words that named it this frame.
    pub count: u32,
}

/// De-duplicates and orders one texture's feedback, frame after frame.
#[derive(Debug, Clone)]
pub struct RequestQueue {
    layout: VtLayout,
    texture: u8,
    /// Per tile: the frame that last counted it, and its position in `out`.
    stamp: Vec<u64>,
    pos: Vec<u32>,
    out: Vec<Request>,
    frame: u64,
}

impl RequestQueue {
    /// A queue for the feedback words of `texture` (words of other textures
    /// and words naming no tile of `layout` are ignored).
    pub fn new(layout: VtLayout, texture: u8) -> Self {
        let n = layout.tile_count() as usize;
        RequestQueue {
            layout,
            texture,
            stamp: vec![u64::MAX; n],
            pos: vec![0; n],
            out: Vec::new(),
            frame: 0,
        }
    }

    /// The distinct tiles `words` name, coarsest level first, then most
    /// named first, then by position (deterministic). The slice is valid
    /// until the next call.
    pub fn process(&mut self, words: &[u32]) -> &[Request] {
        self.frame += 1;
        self.out.clear();
        // Neighbouring screen blocks mostly name the same tile: a run of equal
        // words costs one comparison each.
        let mut last: Option<(u32, usize)> = None;
        for &w in words {
            if let Some((lw, at)) = last {
                if lw == w {
                    self.out[at].count += 1;
                    continue;
                }
            }
            let (tile, texture) = TileId::unpack(w);
            if texture != self.texture {
                continue;
            }
            let Ok(i) = self.layout.index(tile) else {
                continue;
            };
            let i = i as usize;
            if self.stamp[i] == self.frame {
                self.out[self.pos[i] as usize].count += 1;
            } else {
                self.stamp[i] = self.frame;
                self.pos[i] = self.out.len() as u32;
                self.out.push(Request { tile, count: 1 });
            }
            last = Some((w, self.pos[i] as usize));
        }
        self.out.sort_unstable_by(|a, b| {
            b.tile
                .mip
                .cmp(&a.tile.mip)
                .then(b.count.cmp(&a.count))
                .then(a.tile.cmp(&b.tile))
        });
        &self.out
    }
}

/// The level-of-detail bias fed back to the sampling shader: raised (coarser
/// sampling, fewer tiles) while the visible working set is more than the
/// cache can hold, lowered again when room returns. Hysteresis keeps it from
/// oscillating.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MipBias {
    /// The bias now (levels, 0 = none).
    pub bias: f32,
    /// The most it rises.
    pub max: f32,
    /// Raise when the working set exceeds this share of the slots...
    pub high: f32,
    /// ...lower when it falls under this one.
    pub low: f32,
    /// Change per frame.
    pub step: f32,
}

impl Default for MipBias {
    fn default() -> Self {
        MipBias {
            bias: 0.0,
            max: 4.0,
            high: 0.9,
            low: 0.6,
            step: 0.25,
        }
    }
}

impl MipBias {
    /// One frame's update from the distinct tiles requested and the slots
    /// the cache has for them. Returns the new bias.
    pub fn update(&mut self, working_set: usize, slots: usize) -> f32 {
        let share = working_set as f32 / slots.max(1) as f32;
        if share > self.high {
            self.bias = (self.bias + self.step).min(self.max);
        } else if share < self.low {
            self.bias = (self.bias - self.step).max(0.0);
        }
        self.bias
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_count_and_coarse_levels_come_first() {
        let l = VtLayout::new(2048, 2048, 128, 4).unwrap();
        let mut q = RequestQueue::new(l, 1);
        let a = TileId { mip: 0, x: 3, y: 4 };
        let b = TileId { mip: 2, x: 1, y: 1 };
        let c = TileId { mip: 0, x: 9, y: 9 };
        let words = [
            a.pack(1),
            c.pack(1),
            a.pack(1),
            b.pack(1),
            a.pack(2),                     // another texture
            0xFFFu32 | 15 << 24 | 1 << 28, // no such tile
            c.pack(1),
            a.pack(1),
        ];
        let got = q.process(&words).to_vec();
        assert_eq!(
            got,
            vec![
                Request { tile: b, count: 1 },
                Request { tile: a, count: 3 },
                Request { tile: c, count: 2 },
            ]
        );
        // The next frame starts afresh.
        assert_eq!(q.process(&[c.pack(1)]), &[Request { tile: c, count: 1 }]);
    }

    #[test]
    fn the_bias_rises_under_pressure_and_falls_with_room() {
        let mut m = MipBias::default();
        for _ in 0..100 {
            m.update(1000, 500);
        }
        assert_eq!(m.bias, m.max);
        m.update(400, 500); // between low and high: unchanged
        assert_eq!(m.bias, m.max);
        for _ in 0..100 {
            m.update(100, 500);
        }
        assert_eq!(m.bias, 0.0);
    }
}
