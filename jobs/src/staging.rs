//! Staging arithmetic, with no wgpu: where each upload goes in a staging buffer
//! and how a texture region is laid out there.
//!
//! The wgpu side (`forgeflow::staging`) owns the buffers; this module decides
//! offsets. Copies from a buffer need 4-byte aligned offsets and sizes; copies
//! into a texture need an offset that is a multiple of the format's block size
//! and rows padded to 256 bytes, counted in whole blocks (a 5x5 BC1 mip is 2x2
//! blocks of 8 bytes).

/// Offsets and sizes of buffer-to-buffer copies must be multiples of this.
pub const COPY_BUFFER_ALIGNMENT: u64 = 4;

/// `bytes_per_row` of buffer-texture copies must be a multiple of this.
pub const COPY_BYTES_PER_ROW_ALIGNMENT: u32 = 256;

/// Rounds `value` up to a multiple of `align` (a power of two).
#[inline]
pub fn align_up(value: u64, align: u64) -> u64 {
    debug_assert!(align.is_power_of_two());
    (value + align - 1) & !(align - 1)
}

/// A bump allocator over `[0, capacity)`: one staging buffer's space in a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinearAllocator {
    capacity: u64,
    head: u64,
}

impl LinearAllocator {
    /// An empty allocator of `capacity` bytes.
    pub fn new(capacity: u64) -> Self {
        LinearAllocator { capacity, head: 0 }
    }

    /// Takes `size` bytes at the next multiple of `align` (a power of two).
    /// Returns the offset, or `None` when they do not fit.
    #[inline]
    pub fn alloc(&mut self, size: u64, align: u64) -> Option<u64> {
        let offset = align_up(self.head, align.max(1));
        let end = offset.checked_add(size)?;
        if end > self.capacity {
            return None;
        }
        self.head = end;
        Some(offset)
    }

    /// Bytes used so far, alignment padding included.
    pub fn used(&self) -> u64 {
        self.head
    }

    /// The allocator's size.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Bytes still free (before alignment of the next allocation).
    pub fn remaining(&self) -> u64 {
        self.capacity - self.head
    }

    /// Frees everything.
    pub fn reset(&mut self) {
        self.head = 0;
    }
}

/// A texture format's block: 1x1 texels for uncompressed formats, 4x4 for BC
/// and ETC2, up to 12x12 for ASTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockInfo {
    /// Block width in texels.
    pub width: u32,
    /// Block height in texels.
    pub height: u32,
    /// Bytes per block (per texel for uncompressed formats).
    pub bytes: u32,
}

/// How one texture region (a mip level's `width x height x layers`) sits in a
/// staging buffer, in the form `copy_buffer_to_texture` wants it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextureCopyLayout {
    /// The region's size in texels rounded up to whole blocks (the copy extent).
    pub physical_width: u32,
    /// See `physical_width`.
    pub physical_height: u32,
    /// Layers (or depth slices) in the region.
    pub layers: u32,
    /// Bytes of one row of blocks without padding.
    pub row_bytes: u32,
    /// Bytes from one row of blocks to the next in the staging buffer (a multiple of 256).
    pub bytes_per_row: u32,
    /// Rows of blocks per layer.
    pub rows_per_image: u32,
    /// Bytes the region occupies in the staging buffer. The last row is not
    /// padded, so this is smaller than `bytes_per_row * rows_per_image * layers`.
    pub staged_bytes: u64,
    /// Bytes of the same region tightly packed (rows of `row_bytes`).
    pub tight_bytes: u64,
}

impl TextureCopyLayout {
    /// The layout of a `width x height x layers` texel region of a format with `block`.
    /// Returns `None` for an empty region or one whose size overflows.
    pub fn new(width: u32, height: u32, layers: u32, block: BlockInfo) -> Option<Self> {
        if width == 0
            || height == 0
            || layers == 0
            || block.width == 0
            || block.height == 0
            || block.bytes == 0
        {
            return None;
        }
        let blocks_wide = width.div_ceil(block.width);
        let blocks_high = height.div_ceil(block.height);
        let row_bytes = blocks_wide.checked_mul(block.bytes)?;
        let bytes_per_row = u32::try_from(align_up(
            row_bytes as u64,
            COPY_BYTES_PER_ROW_ALIGNMENT as u64,
        ))
        .ok()?;
        let rows = blocks_high as u64 * layers as u64;
        let staged_bytes = bytes_per_row as u64 * (rows - 1) + row_bytes as u64;
        Some(TextureCopyLayout {
            physical_width: blocks_wide * block.width,
            physical_height: blocks_high * block.height,
            layers,
            row_bytes,
            bytes_per_row,
            rows_per_image: blocks_high,
            staged_bytes,
            tight_bytes: row_bytes as u64 * rows,
        })
    }

    /// Total rows of blocks over all layers.
    pub fn rows(&self) -> u64 {
        self.rows_per_image as u64 * self.layers as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_allocation_honours_alignment_and_capacity() {
        let mut a = LinearAllocator::new(1024);
        assert_eq!(a.alloc(3, 4), Some(0));
        assert_eq!(a.alloc(8, 4), Some(4));
        assert_eq!(a.alloc(16, 256), Some(256));
        assert_eq!(a.used(), 272);
        assert_eq!(a.alloc(753, 1), None, "753 + 272 > 1024");
        assert_eq!(a.alloc(752, 1), Some(272));
        assert_eq!(a.remaining(), 0);
        assert_eq!(a.alloc(0, 4), Some(1024));
        assert_eq!(a.alloc(u64::MAX, 1), None);
        a.reset();
        assert_eq!(a.alloc(1024, 1024), Some(0));
    }

    #[test]
    fn texture_layouts_count_whole_blocks_and_pad_rows() {
        let rgba8 = BlockInfo {
            width: 1,
            height: 1,
            bytes: 4,
        };
        let l = TextureCopyLayout::new(3, 2, 1, rgba8).unwrap();
        assert_eq!(
            (l.row_bytes, l.bytes_per_row, l.rows_per_image),
            (12, 256, 2)
        );
        assert_eq!(l.staged_bytes, 256 + 12);
        assert_eq!(l.tight_bytes, 24);
        let bc1 = BlockInfo {
            width: 4,
            height: 4,
            bytes: 8,
        };
        // A 5x5 mip is 2x2 blocks of 8 bytes; its copy extent is 8x8 texels.
        let l = TextureCopyLayout::new(5, 5, 1, bc1).unwrap();
        assert_eq!((l.physical_width, l.physical_height), (8, 8));
        assert_eq!((l.row_bytes, l.rows_per_image), (16, 2));
        // 1x1 still takes one block.
        let l = TextureCopyLayout::new(1, 1, 6, bc1).unwrap();
        assert_eq!((l.row_bytes, l.rows(), l.staged_bytes), (8, 6, 256 * 5 + 8));
        // Rows of exactly 256 bytes need no padding.
        let l = TextureCopyLayout::new(64, 4, 1, rgba8).unwrap();
        assert_eq!(l.staged_bytes, l.tight_bytes);
        assert!(TextureCopyLayout::new(0, 4, 1, rgba8).is_none());
        assert!(TextureCopyLayout::new(
            u32::MAX,
            1,
            1,
            BlockInfo {
                width: 1,
                height: 1,
                bytes: 16
            }
        )
        .is_none());
    }
}
