//! [`VtLayout`]: how a virtual texture is cut into tiles, level by level, and
//! how tiles are named ([`TileId`]), numbered (a dense index over all levels)
//! and packed into the 32 bits a feedback write has.

use std::fmt;

/// Why a virtual texture (or a pack of its tiles) cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VtError {
    /// A size, tile size or border out of range.
    Layout(String),
    /// A tile outside the texture.
    NoSuchTile(TileId),
}

impl fmt::Display for VtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VtError::Layout(why) => write!(f, "virtual texture layout: {why}"),
            VtError::NoSuchTile(t) => write!(f, "no tile {t:?} in this virtual texture"),
        }
    }
}

impl std::error::Error for VtError {}

/// A tile: its mip level and its column and row in that level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TileId {
    /// Mip level (0 = full resolution).
    pub mip: u8,
    /// Column of tiles.
    pub x: u16,
    /// Row of tiles.
    pub y: u16,
}

impl TileId {
    /// The tile one level coarser that covers this one.
    pub fn parent(self) -> TileId {
        TileId {
            mip: self.mip + 1,
            x: self.x / 2,
            y: self.y / 2,
        }
    }

    /// The feedback word: x in bits 0-11, y in 12-23, mip in 24-27, texture
    /// in 28-31 (as the WGSL feedback module writes it).
    pub fn pack(self, texture: u8) -> u32 {
        (self.x as u32 & 0xFFF)
            | (self.y as u32 & 0xFFF) << 12
            | (self.mip as u32 & 0xF) << 24
            | (texture as u32 & 0xF) << 28
    }

    /// The tile and texture of a feedback word.
    pub fn unpack(word: u32) -> (TileId, u8) {
        (
            TileId {
                x: (word & 0xFFF) as u16,
                y: (word >> 12 & 0xFFF) as u16,
                mip: (word >> 24 & 0xF) as u8,
            },
            (word >> 28) as u8,
        )
    }
}

/// The most tiles along a side (the feedback word has 12 bits per coordinate).
pub const MAX_TILES_PER_SIDE: u32 = 4096;

/// A virtual texture's tiling: `width` x `height` texels at level 0, cut into
/// tiles of `tile` texels (the payload) each stored with `border` texels of
/// its neighbours on every side, so that filtering across tiles has no seams.
/// Levels halve down to the one that fits in a single tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VtLayout {
    width: u32,
    height: u32,
    tile: u32,
    border: u32,
    mips: u32,
    /// Dense index of each level's first tile (feedback processing looks up
    /// thousands of tiles a frame: O(1) each).
    level_start: [u32; 16],
}

impl VtLayout {
    /// A layout, or why not: `tile` a power of two from 16 to 1024, `border`
    /// at most a quarter of it, at most 4096 tiles along a side.
    pub fn new(width: u32, height: u32, tile: u32, border: u32) -> Result<Self, VtError> {
        if !tile.is_power_of_two() || !(16..=1024).contains(&tile) {
            return Err(VtError::Layout(format!(
                "tile size {tile} must be a power of two from 16 to 1024"
            )));
        }
        if border > tile / 4 {
            return Err(VtError::Layout(format!(
                "border {border} is more than a quarter of the tile ({tile})"
            )));
        }
        if width == 0 || height == 0 {
            return Err(VtError::Layout("a zero width or height".into()));
        }
        let tiles = width.div_ceil(tile).max(height.div_ceil(tile));
        if tiles > MAX_TILES_PER_SIDE {
            return Err(VtError::Layout(format!(
                "{width}x{height} is {tiles} tiles of {tile} along a side, over {MAX_TILES_PER_SIDE}"
            )));
        }
        // Levels until the whole texture fits in one tile.
        let mips = 1 + (32 - (tiles - 1).leading_zeros()).min(15);
        let mut layout = VtLayout {
            width,
            height,
            tile,
            border,
            mips,
            level_start: [0; 16],
        };
        let mut start = 0;
        for m in 0..mips {
            layout.level_start[m as usize] = start;
            let (x, y) = layout.tiles_at(m);
            start += x * y;
        }
        Ok(layout)
    }

    /// Level 0 size in texels.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// Payload texels per tile side.
    pub fn tile(&self) -> u32 {
        self.tile
    }

    /// Border texels on each side of a tile.
    pub fn border(&self) -> u32 {
        self.border
    }

    /// Texels per side of a stored tile (payload and borders): a cache slot.
    pub fn slot(&self) -> u32 {
        self.tile + 2 * self.border
    }

    /// Mip levels; the last is one tile.
    pub fn mips(&self) -> u32 {
        self.mips
    }

    /// Tiles across and down at `mip`.
    pub fn tiles_at(&self, mip: u32) -> (u32, u32) {
        let t = self.tile << mip.min(31 - self.tile.trailing_zeros());
        (
            self.width.div_ceil(t).max(1),
            self.height.div_ceil(t).max(1),
        )
    }

    /// Tiles over all levels.
    pub fn tile_count(&self) -> u32 {
        (0..self.mips)
            .map(|m| {
                let (x, y) = self.tiles_at(m);
                x * y
            })
            .sum()
    }

    /// Whether `t` is a tile of this texture.
    pub fn contains(&self, t: TileId) -> bool {
        let (x, y) = self.tiles_at(t.mip as u32);
        (t.mip as u32) < self.mips && (t.x as u32) < x && (t.y as u32) < y
    }

    /// The dense index of `t` (level 0's tiles first, row by row).
    pub fn index(&self, t: TileId) -> Result<u32, VtError> {
        if !self.contains(t) {
            return Err(VtError::NoSuchTile(t));
        }
        let (x, _) = self.tiles_at(t.mip as u32);
        Ok(self.level_start[t.mip as usize] + t.y as u32 * x + t.x as u32)
    }

    /// The tile of a dense index.
    pub fn tile_at(&self, mut index: u32) -> Option<TileId> {
        for m in 0..self.mips {
            let (x, y) = self.tiles_at(m);
            if index < x * y {
                return Some(TileId {
                    mip: m as u8,
                    x: (index % x) as u16,
                    y: (index / x) as u16,
                });
            }
            index -= x * y;
        }
        None
    }

    /// The tile at texture coordinates `(u, v)` (0..1, clamped) and `mip`.
    pub fn tile_of_uv(&self, u: f32, v: f32, mip: u32) -> TileId {
        let mip = mip.min(self.mips - 1);
        let (tx, ty) = self.tiles_at(mip);
        let t = (self.tile << mip) as f32;
        let x = ((u.clamp(0.0, 1.0) * self.width as f32) / t) as u32;
        let y = ((v.clamp(0.0, 1.0) * self.height as f32) / t) as u32;
        TileId {
            mip: mip as u8,
            x: x.min(tx - 1) as u16,
            y: y.min(ty - 1) as u16,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_tiles_and_indices() {
        let l = VtLayout::new(16384, 16384, 128, 4).unwrap();
        assert_eq!((l.mips(), l.slot()), (8, 136));
        assert_eq!(l.tiles_at(0), (128, 128));
        assert_eq!(l.tiles_at(7), (1, 1));
        assert_eq!(l.tile_count(), (0..8).map(|m| (128u32 >> m).pow(2)).sum());
        for i in [0, 1, 127, 128, 16383, 16384, l.tile_count() - 1] {
            let t = l.tile_at(i).unwrap();
            assert_eq!(l.index(t).unwrap(), i, "{t:?}");
        }
        assert_eq!(l.tile_at(l.tile_count()), None);
        let t = TileId {
            mip: 3,
            x: 15,
            y: 9,
        };
        assert_eq!(TileId::unpack(t.pack(5)), (t, 5));
        assert_eq!(t.parent(), TileId { mip: 4, x: 7, y: 4 });
        assert_eq!(
            l.tile_of_uv(1.0, 0.0, 0),
            TileId {
                mip: 0,
                x: 127,
                y: 0
            }
        );
        // Non-square, not a multiple of the tile.
        let l = VtLayout::new(1000, 300, 128, 4).unwrap();
        assert_eq!((l.tiles_at(0), l.mips()), ((8, 3), 4));
        assert_eq!(l.tiles_at(3), (1, 1));
        assert!(l.index(TileId { mip: 0, x: 8, y: 0 }).is_err());
        // The largest the feedback word can name, and beyond.
        assert!(VtLayout::new(65536, 65536, 128, 4).is_ok());
        assert!(VtLayout::new(1 << 20, 64, 128, 4).is_err());
        assert!(VtLayout::new(64, 64, 100, 4).is_err());
        assert!(VtLayout::new(64, 64, 128, 40).is_err());
    }
}
