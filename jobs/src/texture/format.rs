//! Block dimensions and sizes of the Vulkan formats KTX2 files use.

/// A format's texel block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormatInfo {
    /// The Vulkan name without `VK_FORMAT_`.
    pub name: &'static str,
    /// Block width, height and depth in texels (1x1x1 for uncompressed formats).
    pub block: [u32; 3],
    /// Bytes per block (per texel for uncompressed formats).
    pub bytes: u32,
}

impl FormatInfo {
    /// Whether the format is block-compressed.
    pub fn is_compressed(&self) -> bool {
        self.block != [1, 1, 1]
    }

    /// Bytes of one depth slice (of blocks) of `level` of a `width` x
    /// `height` image: rows of whole blocks. `None` if it overflows a `u64`.
    pub fn slice_bytes(&self, width: u32, height: u32, level: u32) -> Option<u64> {
        let dim = |v: u32, b: u32| (v.checked_shr(level).unwrap_or(0).max(1)).div_ceil(b) as u64;
        dim(width, self.block[0])
            .checked_mul(dim(height, self.block[1]))?
            .checked_mul(self.bytes as u64)
    }
}

const fn px(name: &'static str, bytes: u32) -> FormatInfo {
    FormatInfo {
        name,
        block: [1, 1, 1],
        bytes,
    }
}

const fn bc(name: &'static str, w: u32, h: u32, bytes: u32) -> FormatInfo {
    FormatInfo {
        name,
        block: [w, h, 1],
        bytes,
    }
}

/// The block of `vk_format`, or `None` for formats this table does not know
/// (`VK_FORMAT_UNDEFINED` = 0 among them, used by Basis Universal files).
pub fn info(vk_format: u32) -> Option<FormatInfo> {
    const ASTC: [(u32, u32); 14] = [
        (4, 4),
        (5, 4),
        (5, 5),
        (6, 5),
        (6, 6),
        (8, 5),
        (8, 6),
        (8, 8),
        (10, 5),
        (10, 6),
        (10, 8),
        (10, 10),
        (12, 10),
        (12, 12),
    ];
    Some(match vk_format {
        9..=15 => px("R8", 1),
        16..=22 => px("R8G8", 2),
        23..=36 => px("R8G8B8", 3),
        37..=50 => px("R8G8B8A8", 4),
        51..=69 => px("PACK32", 4),
        70..=76 => px("R16", 2),
        77..=83 => px("R16G16", 4),
        84..=90 => px("R16G16B16", 6),
        91..=97 => px("R16G16B16A16", 8),
        98..=100 => px("R32", 4),
        101..=103 => px("R32G32", 8),
        104..=106 => px("R32G32B32", 12),
        107..=109 => px("R32G32B32A32", 16),
        122 => px("B10G11R11_UFLOAT_PACK32", 4),
        123 => px("E5B9G9R9_UFLOAT_PACK32", 4),
        124 => px("D16_UNORM", 2),
        126 => px("D32_SFLOAT", 4),
        127 => px("S8_UINT", 1),
        131..=134 => bc("BC1", 4, 4, 8),
        135 | 136 => bc("BC2", 4, 4, 16),
        137 | 138 => bc("BC3", 4, 4, 16),
        139 | 140 => bc("BC4", 4, 4, 8),
        141 | 142 => bc("BC5", 4, 4, 16),
        143 | 144 => bc("BC6H", 4, 4, 16),
        145 | 146 => bc("BC7", 4, 4, 16),
        147..=150 => bc("ETC2_RGB(A1)", 4, 4, 8),
        151 | 152 => bc("ETC2_RGBA8", 4, 4, 16),
        153 | 154 => bc("EAC_R11", 4, 4, 8),
        155 | 156 => bc("EAC_R11G11", 4, 4, 16),
        157..=184 => {
            let (w, h) = ASTC[((vk_format - 157) / 2) as usize];
            bc("ASTC", w, h, 16)
        }
        1_000_066_000..=1_000_066_013 => {
            let (w, h) = ASTC[(vk_format - 1_000_066_000) as usize];
            bc("ASTC_SFLOAT", w, h, 16)
        }
        // VK_EXT_texture_compression_astc_3d: each size as UNORM, SRGB, SFLOAT.
        1_000_288_000..=1_000_288_029 => {
            const SIZES: [[u32; 3]; 10] = [
                [3, 3, 3],
                [4, 3, 3],
                [4, 4, 3],
                [4, 4, 4],
                [5, 4, 4],
                [5, 5, 4],
                [5, 5, 5],
                [6, 5, 5],
                [6, 6, 5],
                [6, 6, 6],
            ];
            FormatInfo {
                name: "ASTC_3D",
                block: SIZES[((vk_format - 1_000_288_000) / 3) as usize],
                bytes: 16,
            }
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_blocks() {
        assert_eq!(info(37).unwrap().bytes, 4);
        assert_eq!(info(145).unwrap().block, [4, 4, 1]);
        assert_eq!(info(157).unwrap().block, [4, 4, 1]);
        assert_eq!(info(184).unwrap().block, [12, 12, 1]);
        assert_eq!(info(173).unwrap().block, [10, 5, 1]);
        assert_eq!(info(1_000_066_000).unwrap().block, [4, 4, 1]);
        assert_eq!(info(1_000_288_000).unwrap().block, [3, 3, 3]);
        assert_eq!(info(1_000_288_029).unwrap().block, [6, 6, 6]);
        assert_eq!(info(1_000_288_010).unwrap().block, [4, 4, 4]);
        assert!(info(0).is_none());
        assert!(!info(97).unwrap().is_compressed());
    }
}
