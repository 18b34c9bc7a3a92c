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
//! - [`pack`]: the tile pack file (validated, checksummed, memory-mapped).
//! - [`terrain`]: a deterministic procedural terrain as a tile source.

pub mod cache;
pub mod layout;
pub mod pack;
pub mod page_table;
pub mod requests;
pub mod terrain;

pub use cache::{CacheStats, Insert, TileCache};
pub use layout::{TileId, VtError, VtLayout};
pub use pack::{write_pack, PackError, TileFormat, TilePack};
pub use page_table::{Delta, Entry, PageTable};
pub use requests::{MipBias, Request, RequestQueue};
pub use terrain::Terrain;
