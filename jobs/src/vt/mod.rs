//! Virtual texture streaming, the CPU side (no wgpu): a texture far larger
//! than GPU memory is cut into tiles; the renderer's feedback says which tiles
//! the screen needs; those are read from a pack (or made by a procedural
//! source), put in a fixed cache of atlas slots, and the page table tells the
//! sampling shader where each tile's texels are, falling back to a coarser
//! resident tile when one is missing.
//!
//! - [`layout`]: the tiling, tile names, the feedback word.
//! - [`page_table`]: the indirection and its deltas for the GPU copy.
//! - [`cache`]: slots under a budget, LRU with a minimum age, pinning.
//! - [`requests`]: feedback to de-duplicated, prioritised requests; the mip bias.
//! - [`residency`]: the policy: which tiles a frame loads, evicts and
//!   prefetches within its budgets, and the statistics it keeps.
//! - [`pack`]: the tile pack file (validated, checksummed, read tile by tile).
//! - [`read_ahead`]: tiles of a source that makes them (procedural, or
//!   decompressed) made ahead on threads of their own, off the frame.

pub mod cache;
pub mod layout;
pub mod pack;
pub mod page_table;
pub mod read_ahead;
pub mod requests;
pub mod residency;

pub use cache::{CacheStats, Insert, TileCache};
pub use layout::{TileId, VtError, VtLayout};
pub use pack::{write_pack, write_pack_parallel, PackError, TileFormat, TilePack};
pub use page_table::{Delta, Entry, PageTable};
pub use read_ahead::{ReadAhead, ReadAheadStats};
pub use requests::{MipBias, Request, RequestQueue};
pub use residency::{Load, LoadOutcome, Residency, ResidencyConfig, VtStats};

use std::borrow::Cow;

/// Where tiles come from: a pack on disk, or a procedural source that makes
/// them on demand (in a page-fault job).
pub trait TileSource: Send + Sync {
    /// The tiling.
    fn layout(&self) -> VtLayout;
    /// How tiles are stored.
    fn format(&self) -> TileFormat;
    /// The slot's bytes of `tile` (payload and borders).
    fn tile(&self, tile: TileId) -> Result<Cow<'_, [u8]>, PackError>;
    /// The same, or `None` when getting them would wait for a disk (the
    /// caller asks again later; a source that reads ahead starts that read
    /// now). Page-fault jobs call this, so that no frame waits for a read.
    /// A source that reads may read into `scratch`, a buffer the caller
    /// reuses from tile to tile. By default, [`tile`](Self::tile).
    fn tile_if_cached<'a>(
        &'a self,
        tile: TileId,
        scratch: &'a mut Vec<u8>,
    ) -> Result<Option<Cow<'a, [u8]>>, PackError> {
        let _ = scratch;
        self.tile(tile).map(Some)
    }
}

impl TileSource for TilePack {
    fn layout(&self) -> VtLayout {
        *TilePack::layout(self)
    }
    fn format(&self) -> TileFormat {
        TilePack::format(self)
    }
    fn tile(&self, tile: TileId) -> Result<Cow<'_, [u8]>, PackError> {
        TilePack::tile(self, tile)
    }
    fn tile_if_cached<'a>(
        &'a self,
        tile: TileId,
        scratch: &'a mut Vec<u8>,
    ) -> Result<Option<Cow<'a, [u8]>>, PackError> {
        TilePack::tile_if_cached(self, tile, scratch)
    }
}
