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

/// The 2D ASTC block sizes in `VkFormat` order: `ASTC_4x4_UNORM` is 157,
/// each size a UNORM and an SRGB format (157 + 2 x index), and the SFLOAT
/// formats follow the same order from 1000066000.
pub const ASTC_BLOCKS: [(u32, u32); 14] = [
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

/// The block of `vk_format`, or `None` for formats this table does not know
/// (`VK_FORMAT_UNDEFINED` = 0 among them, used by Basis Universal files).
pub fn info(vk_format: u32) -> Option<FormatInfo> {
    Some(match vk_format {
        1 => px("R4G4_UNORM_PACK8", 1),
        2 => px("R4G4B4A4_UNORM_PACK16", 2),
        3 => px("B4G4R4A4_UNORM_PACK16", 2),
        4 => px("R5G6B5_UNORM_PACK16", 2),
        5 => px("B5G6R5_UNORM_PACK16", 2),
        6 => px("R5G5B5A1_UNORM_PACK16", 2),
        7 => px("B5G5R5A1_UNORM_PACK16", 2),
        8 => px("A1R5G5B5_UNORM_PACK16", 2),
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
        110..=112 => px("R64", 8),
        113..=115 => px("R64G64", 16),
        116..=118 => px("R64G64B64", 24),
        119..=121 => px("R64G64B64A64", 32),
        122 => px("B10G11R11_UFLOAT_PACK32", 4),
        123 => px("E5B9G9R9_UFLOAT_PACK32", 4),
        124 => px("D16_UNORM", 2),
        125 => px("X8_D24_UNORM_PACK32", 4),
        126 => px("D32_SFLOAT", 4),
        127 => px("S8_UINT", 1),
        // Depth and stencil packed as KTX2 stores them (libktx's DFDs).
        128 => px("D16_UNORM_S8_UINT", 3),
        129 => px("D24_UNORM_S8_UINT", 4),
        130 => px("D32_SFLOAT_S8_UINT", 8),
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
            let (w, h) = ASTC_BLOCKS[((vk_format - 157) / 2) as usize];
            bc("ASTC", w, h, 16)
        }
        1_000_066_000..=1_000_066_013 => {
            let (w, h) = ASTC_BLOCKS[(vk_format - 1_000_066_000) as usize];
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
        // PVRTC (VK_IMG_format_pvrtc): 2 bits a texel in 8x4 blocks, 4 in
        // 4x4, UNORM then SRGB.
        1_000_054_000..=1_000_054_007 => {
            const NAMES: [&str; 4] = ["PVRTC1_2BPP", "PVRTC1_4BPP", "PVRTC2_2BPP", "PVRTC2_4BPP"];
            let i = (vk_format - 1_000_054_000) as usize % 4;
            bc(NAMES[i], if i.is_multiple_of(2) { 8 } else { 4 }, 4, 8)
        }
        // 4:2:2 formats: two texels (one chroma pair) per block.
        1_000_156_000 => bc("G8B8G8R8_422_UNORM", 2, 1, 4),
        1_000_156_001 => bc("B8G8R8G8_422_UNORM", 2, 1, 4),
        1_000_156_007 => px("R10X6_UNORM_PACK16", 2),
        1_000_156_008 => px("R10X6G10X6_UNORM_2PACK16", 4),
        1_000_156_009 => px("R10X6G10X6B10X6A10X6_UNORM_4PACK16", 8),
        1_000_156_010 => bc("G10X6B10X6G10X6R10X6_422_UNORM_4PACK16", 2, 1, 8),
        1_000_156_011 => bc("B10X6G10X6R10X6G10X6_422_UNORM_4PACK16", 2, 1, 8),
        1_000_156_017 => px("R12X4_UNORM_PACK16", 2),
        1_000_156_018 => px("R12X4G12X4_UNORM_2PACK16", 4),
        1_000_156_019 => px("R12X4G12X4B12X4A12X4_UNORM_4PACK16", 8),
        1_000_156_020 => bc("G12X4B12X4G12X4R12X4_422_UNORM_4PACK16", 2, 1, 8),
        1_000_156_021 => bc("B12X4G12X4R12X4G12X4_422_UNORM_4PACK16", 2, 1, 8),
        1_000_156_027 => bc("G16B16G16R16_422_UNORM", 2, 1, 8),
        1_000_156_028 => bc("B16G16R16G16_422_UNORM", 2, 1, 8),
        1_000_340_000 => px("A4R4G4B4_UNORM_PACK16", 2),
        1_000_340_001 => px("A4B4G4R4_UNORM_PACK16", 2),
        1_000_470_000 => px("A1B5G5R5_UNORM_PACK16", 2),
        1_000_470_001 => px("A8_UNORM", 1),
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
        assert_eq!(info(4).unwrap().bytes, 2);
        assert_eq!(info(130).unwrap().bytes, 8);
        assert_eq!(info(120).unwrap().bytes, 32);
        assert_eq!(info(1_000_054_000).unwrap().block, [8, 4, 1]);
        assert_eq!(info(1_000_054_005).unwrap().block, [4, 4, 1]);
        assert_eq!(info(1_000_156_000).unwrap().block, [2, 1, 1]);
        assert_eq!(info(1_000_340_001).unwrap().bytes, 2);
        // Multi-planar formats have no single texel block: KTX2 prohibits them.
        assert!(info(1_000_156_002).is_none());
        assert!(!info(97).unwrap().is_compressed());
    }
}
