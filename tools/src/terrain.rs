//! A deterministic, seeded procedural terrain: a tile source for virtual
//! sizes too large for disk (a 65536x65536 texture is 16 GiB of RGBA8), and
//! the generator `forgeflow-tex vt-build` writes packs from, and the source
//! the stress runs, the tests and the example stream.
//!
//! Height is fractal value noise (octaves of a hashed lattice, smoothly
//! interpolated) over the whole virtual texture; colour comes from height
//! (water, sand, grass, rock, snow) lit by the slope. Every texel is a pure
//! function of (seed, level-0 position, level), so a tile and its border,
//! made separately, agree with their neighbours exactly.

use std::borrow::Cow;

use forgeflow::jobs::vt::{PackError, TileFormat, TileId, TileSource, VtError, VtLayout};

/// The terrain of a virtual texture.
#[derive(Debug, Clone, Copy)]
pub struct Terrain {
    seed: u64,
    layout: VtLayout,
    /// Texels of level 0 per lattice cell of the largest octave.
    scale: f32,
}

fn hash(seed: u64, x: i64, y: i64) -> f32 {
    let mut h = seed
        ^ (x as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (y as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    h ^= h >> 33;
    h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    h ^= h >> 33;
    (h >> 40) as f32 / (1u64 << 24) as f32
}

fn smooth(t: f32) -> f32 {
    t * t * (3.0 - 2.0 * t)
}

impl Terrain {
    /// The terrain of `layout` from `seed`.
    pub fn new(layout: VtLayout, seed: u64) -> Self {
        let (w, h) = layout.size();
        Terrain {
            seed,
            layout,
            scale: w.max(h) as f32 / 6.0,
        }
    }

    fn noise(&self, x: f32, y: f32, octave: u64) -> f32 {
        let (xi, yi) = (x.floor(), y.floor());
        let (fx, fy) = (smooth(x - xi), smooth(y - yi));
        let (xi, yi) = (xi as i64, yi as i64);
        let s = self
            .seed
            .wrapping_add(octave.wrapping_mul(0x1234_5678_9ABC));
        let a = hash(s, xi, yi);
        let b = hash(s, xi + 1, yi);
        let c = hash(s, xi, yi + 1);
        let d = hash(s, xi + 1, yi + 1);
        let top = a + (b - a) * fx;
        let bottom = c + (d - c) * fx;
        top + (bottom - top) * fy
    }

    /// The tiling it fills.
    pub fn layout(&self) -> VtLayout {
        self.layout
    }

    /// Height in 0..1 at level-0 position `(x, y)` (texels), with the octaves
    /// finer than `footprint` texels left out (a coarser level's texel covers
    /// `2^mip` texels: detail below that would only alias).
    pub fn height(&self, x: f32, y: f32, footprint: f32) -> f32 {
        let (mut sum, mut amp, mut norm, mut freq) = (0.0, 1.0, 0.0, 1.0 / self.scale);
        for octave in 0..16u64 {
            if 1.0 / freq < 2.0 * footprint {
                break;
            }
            sum += amp * self.noise(x * freq, y * freq, octave);
            norm += amp;
            amp *= 0.5;
            freq *= 2.0;
        }
        if norm == 0.0 {
            0.5
        } else {
            sum / norm
        }
    }

    /// The RGBA8 texel at level-0 position `(x, y)` seen at `mip`.
    pub fn texel(&self, x: f32, y: f32, mip: u32) -> [u8; 4] {
        let f = (1u32 << mip) as f32;
        let h = self.height(x, y, f);
        let hx = self.height(x + f, y, f);
        let hy = self.height(x, y + f, f);
        Self::shade(h, hx, hy, f)
    }

    /// The colour of a texel of height `h` whose neighbours one texel to the
    /// right and below are `hx` and `hy`, at a texel size of `f`.
    fn shade(h: f32, hx: f32, hy: f32, f: f32) -> [u8; 4] {
        let (dx, dy) = (hx - h, hy - h);
        let light = (0.75 + (dx - dy) * 40.0 / f.sqrt()).clamp(0.35, 1.25);
        let base: [f32; 3] = match h {
            h if h < 0.42 => [0.10, 0.25, 0.55],
            h if h < 0.45 => [0.76, 0.70, 0.50],
            h if h < 0.60 => [0.20, 0.50, 0.18],
            h if h < 0.72 => [0.45, 0.40, 0.35],
            _ => [0.95, 0.95, 0.97],
        };
        let c = |v: f32| (v * light * 255.0).clamp(0.0, 255.0) as u8;
        [c(base[0]), c(base[1]), c(base[2]), 255]
    }

    /// The RGBA8 slot of `tile`: its payload and its border, row by row.
    /// Heights are computed once per texel on a grid one texel wider and
    /// taller than the slot, so each texel costs one height, not three (the
    /// texels are those of [`texel`](Self::texel), exactly).
    pub fn tile_rgba8(&self, tile: TileId) -> Vec<u8> {
        let slot = self.layout.slot() as i64;
        let border = self.layout.border() as i64;
        let mip = tile.mip as u32;
        let f = (1u64 << mip) as f32;
        let x0 = tile.x as i64 * self.layout.tile() as i64 - border;
        let y0 = tile.y as i64 * self.layout.tile() as i64 - border;
        let g = (slot + 1) as usize;
        let mut heights = Vec::with_capacity(g * g);
        for y in 0..=slot {
            for x in 0..=slot {
                // The texel's centre at level 0.
                let px = ((x0 + x) as f32 + 0.5) * f;
                let py = ((y0 + y) as f32 + 0.5) * f;
                heights.push(self.height(px, py, f));
            }
        }
        let mut out = Vec::with_capacity((slot * slot * 4) as usize);
        for y in 0..slot as usize {
            for x in 0..slot as usize {
                let h = heights[y * g + x];
                let texel = Self::shade(h, heights[y * g + x + 1], heights[(y + 1) * g + x], f);
                out.extend_from_slice(&texel);
            }
        }
        out
    }
}

impl TileSource for Terrain {
    fn layout(&self) -> VtLayout {
        Terrain::layout(self)
    }
    fn format(&self) -> TileFormat {
        TileFormat::Rgba8
    }
    fn tile(&self, tile: TileId) -> Result<Cow<'_, [u8]>, PackError> {
        if !Terrain::layout(self).contains(tile) {
            return Err(PackError::Layout(VtError::NoSuchTile(tile)));
        }
        Ok(Cow::Owned(self.tile_rgba8(tile)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_are_deterministic_and_borders_match_neighbours() {
        let l = VtLayout::new(4096, 4096, 64, 4).unwrap();
        let t = Terrain::new(l, 7);
        let a = TileId { mip: 1, x: 3, y: 5 };
        let b = TileId { mip: 1, x: 4, y: 5 };
        let (ta, tb) = (t.tile_rgba8(a), t.tile_rgba8(b));
        assert_eq!(ta, t.tile_rgba8(a), "deterministic");
        assert_ne!(ta, Terrain::new(l, 8).tile_rgba8(a), "seeded");
        let slot = l.slot() as usize;
        // a's right border (its 4 columns after the payload) is b's first
        // 4 payload columns.
        for y in 0..slot {
            for k in 0..4 {
                let ra = (y * slot + 64 + 4 + k) * 4;
                let rb = (y * slot + 4 + k) * 4;
                assert_eq!(ta[ra..ra + 4], tb[rb..rb + 4], "row {y}, border column {k}");
            }
        }
        // The grid gives the texels of `texel`, exactly.
        let slot = l.slot() as usize;
        for (x, y) in [(0usize, 0usize), (5, 9), (slot - 1, slot - 1)] {
            let px = ((3 * 64 - 4 + x as i64) as f32 + 0.5) * 2.0;
            let py = ((5 * 64 - 4 + y as i64) as f32 + 0.5) * 2.0;
            assert_eq!(
                ta[(y * slot + x) * 4..][..4],
                t.texel(px, py, 1),
                "({x}, {y})"
            );
        }
        // Not flat: more than a few colours.
        let mut colours: Vec<&[u8]> = ta.chunks_exact(4).collect();
        colours.sort();
        colours.dedup();
        assert!(colours.len() > 20, "{}", colours.len());
    }
}
