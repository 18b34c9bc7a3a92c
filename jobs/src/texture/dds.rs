//! DirectDraw Surface (DDS) files: the header (legacy pixel formats and
//! FourCCs, or the DX10 extension with a DXGI format), validated before any
//! offset is trusted, and the place of every image.
//!
//! Layout of the data after the header(s), as Direct3D writes it: for each
//! array layer, for each cube face, for each mip level, the level's image (a
//! volume texture's level holds all its depth slices). Images are rows of
//! blocks, tightly packed; the header's pitch field is ignored, as most
//! readers do, since writers fill it inconsistently.

use std::fmt;
use std::ops::Range;

use super::format::{self, FormatInfo};

/// Why a file is not a DDS this crate can read. Each variant names the check.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DdsError {
    /// Shorter than the header (or the DX10 header it announces).
    Truncated {
        /// Bytes the headers need.
        needed: u64,
        /// Bytes in the file.
        got: u64,
    },
    /// `dwSize` of the header is not 124, or of the pixel format not 32.
    HeaderSize {
        /// Which structure.
        what: &'static str,
        /// The value found.
        found: u32,
    },
    /// A zero width or height, or a zero depth on a volume texture.
    ZeroSize,
    /// More mip levels than the largest dimension allows.
    TooManyLevels {
        /// Levels stated.
        levels: u32,
        /// Most allowed for the size.
        max: u32,
    },
    /// A cube map that is not square, or stores only some of its faces.
    Cube(&'static str),
    /// A pixel format (FourCC, bit masks or DXGI format) this crate has no
    /// Vulkan equivalent for.
    UnsupportedFormat(String),
    /// A DX10 resource dimension other than 2D or 3D (1D textures, buffers).
    Dimension(u32),
    /// A DX10 array size of zero, or an array of volume textures.
    ArraySize(u32),
    /// The images need more bytes than the file has after its headers.
    DataSize {
        /// Bytes the images need.
        needed: u64,
        /// Bytes there are.
        got: u64,
    },
}

impl fmt::Display for DdsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DdsError::Truncated { needed, got } => {
                write!(
                    f,
                    "truncated: the header needs {needed} bytes, the file has {got}"
                )
            }
            DdsError::HeaderSize { what, found } => {
                write!(f, "the {what} says its size is {found}")
            }
            DdsError::ZeroSize => write!(f, "a width, height or volume depth of 0"),
            DdsError::TooManyLevels { levels, max } => {
                write!(f, "{levels} mip levels, but the size allows {max}")
            }
            DdsError::Cube(why) => write!(f, "cube map: {why}"),
            DdsError::UnsupportedFormat(what) => write!(f, "unsupported pixel format: {what}"),
            DdsError::Dimension(d) => write!(
                f,
                "DX10 resource dimension {d}: only 2D (3) and 3D (4) textures are read"
            ),
            DdsError::ArraySize(n) => write!(f, "DX10 array size {n} is not allowed here"),
            DdsError::DataSize { needed, got } => write!(
                f,
                "the images need {needed} bytes after the header, the file has {got}"
            ),
        }
    }
}

impl std::error::Error for DdsError {}

/// A validated DDS header: the format and where each image is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DdsLayout {
    /// The equivalent Vulkan format.
    pub vk_format: u32,
    /// Its block.
    pub format: FormatInfo,
    /// What the file names the format (a FourCC, a DXGI format number, or bit masks).
    pub source_format: String,
    /// Whether the DX10 header is present.
    pub dx10: bool,
    /// Base level size in texels (`depth` is 1 unless a volume texture).
    pub width: u32,
    /// See `width`.
    pub height: u32,
    /// See `width`.
    pub depth: u32,
    /// Array layers (at least 1).
    pub layers: u32,
    /// 1, or 6 for cube maps.
    pub faces: u32,
    /// Mip levels (at least 1).
    pub levels: u32,
    /// Byte offset of the first image.
    pub data_offset: usize,
    /// Bytes of one (layer, face) chain of all levels.
    pub chain_bytes: u64,
}

impl DdsLayout {
    /// Bytes of one depth slice of `level` (validated: fits the file).
    pub fn slice_bytes(&self, level: u32) -> u64 {
        self.checked_slice_bytes(level)
            .expect("validated: the images fit in the file")
    }

    fn checked_slice_bytes(&self, level: u32) -> Option<u64> {
        self.format.slice_bytes(self.width, self.height, level)
    }

    /// Depth slices of `level`.
    pub fn slices(&self, level: u32) -> u32 {
        super::level_extent(self.depth, level)
    }

    /// The bytes of one depth slice (`slice`) of one image, in the file.
    /// `None` when the selector is outside the texture.
    pub fn image_range(
        &self,
        level: u32,
        layer: u32,
        face: u32,
        slice: u32,
    ) -> Option<Range<usize>> {
        if level >= self.levels
            || layer >= self.layers
            || face >= self.faces
            || slice >= self.slices(level)
        {
            return None;
        }
        let before: u64 = (0..level)
            .map(|l| self.slice_bytes(l) * self.slices(l) as u64)
            .sum();
        let chain = (layer * self.faces + face) as u64 * self.chain_bytes;
        let start =
            self.data_offset as u64 + chain + before + slice as u64 * self.slice_bytes(level);
        let start = usize::try_from(start).ok()?;
        Some(start..start + self.slice_bytes(level) as usize)
    }
}

const DDSD_DEPTH: u32 = 0x80_0000;
const DDSD_MIPMAPCOUNT: u32 = 0x2_0000;
const DDPF_ALPHAPIXELS: u32 = 0x1;
const DDPF_FOURCC: u32 = 0x4;
const DDPF_RGB: u32 = 0x40;
const DDPF_LUMINANCE: u32 = 0x2_0000;
const DDSCAPS2_CUBEMAP: u32 = 0x200;
const DDSCAPS2_ALL_FACES: u32 = 0xFC00;
const DDSCAPS2_VOLUME: u32 = 0x20_0000;
const DX10_MISC_TEXTURECUBE: u32 = 0x4;

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The Vulkan format of a DXGI format, for those with one.
pub fn vk_from_dxgi(dxgi: u32) -> Option<u32> {
    Some(match dxgi {
        2 => 109,  // R32G32B32A32_FLOAT
        10 => 97,  // R16G16B16A16_FLOAT
        11 => 91,  // R16G16B16A16_UNORM
        24 => 64,  // R10G10B10A2_UNORM -> A2B10G10R10_UNORM_PACK32
        26 => 122, // R11G11B10_FLOAT
        28 => 37,  // R8G8B8A8_UNORM
        29 => 43,  // R8G8B8A8_UNORM_SRGB
        30 => 41,  // R8G8B8A8_UINT
        31 => 38,  // R8G8B8A8_SNORM
        34 => 83,  // R16G16_FLOAT
        41 => 100, // R32_FLOAT
        49 => 16,  // R8G8_UNORM
        54 => 76,  // R16_FLOAT
        56 => 70,  // R16_UNORM
        61 => 9,   // R8_UNORM
        67 => 123, // R9G9B9E5_SHAREDEXP
        71 => 133, // BC1_UNORM (with its 1-bit alpha)
        72 => 134, // BC1_UNORM_SRGB
        74 => 135, // BC2
        75 => 136,
        77 => 137, // BC3
        78 => 138,
        80 => 139, // BC4
        81 => 140,
        83 => 141, // BC5
        84 => 142,
        87 => 44,  // B8G8R8A8_UNORM
        91 => 50,  // B8G8R8A8_UNORM_SRGB
        95 => 143, // BC6H_UF16
        96 => 144, // BC6H_SF16
        98 => 145, // BC7
        99 => 146,
        _ => return None,
    })
}

/// The Vulkan format of a legacy (non-DX10) pixel format.
fn vk_from_legacy(pf: &[u8]) -> Result<(u32, String), DdsError> {
    let flags = u32_at(pf, 4);
    let fourcc = u32_at(pf, 8);
    if flags & DDPF_FOURCC != 0 {
        let name = fourcc.to_le_bytes();
        let vk = match &name {
            b"DXT1" => Some(133),
            b"DXT2" | b"DXT3" => Some(135),
            b"DXT4" | b"DXT5" => Some(137),
            b"ATI1" | b"BC4U" => Some(139),
            b"BC4S" => Some(140),
            b"ATI2" | b"BC5U" => Some(141),
            b"BC5S" => Some(142),
            // D3DFORMAT numbers stored in the FourCC field.
            _ => match fourcc {
                36 => Some(91),   // A16B16G16R16
                111 => Some(76),  // R16F
                112 => Some(83),  // G16R16F
                113 => Some(97),  // A16B16G16R16F
                114 => Some(100), // R32F
                115 => Some(103), // G32R32F
                116 => Some(109), // A32B32G32R32F
                _ => None,
            },
        };
        let shown = if name.iter().all(u8::is_ascii_graphic) {
            format!("FourCC {:?}", String::from_utf8_lossy(&name))
        } else {
            format!("FourCC {fourcc}")
        };
        return vk
            .map(|v| (v, shown.clone()))
            .ok_or(DdsError::UnsupportedFormat(shown));
    }
    let bits = u32_at(pf, 12);
    let masks = [
        u32_at(pf, 16),
        u32_at(pf, 20),
        u32_at(pf, 24),
        u32_at(pf, 28),
    ];
    let alpha = flags & DDPF_ALPHAPIXELS != 0;
    let a = if alpha { masks[3] } else { 0 };
    let shown = format!(
        "{bits}-bit masks r {:#x} g {:#x} b {:#x} a {:#x}",
        masks[0], masks[1], masks[2], masks[3]
    );
    let vk = if flags & DDPF_RGB != 0 {
        match (bits, masks[0], masks[1], masks[2], a) {
            (32, 0xff, 0xff00, 0xff_0000, 0xff00_0000) => Some(37),
            (32, 0xff_0000, 0xff00, 0xff, 0xff00_0000) => Some(44),
            (32, 0xffff, 0xffff_0000, 0, 0) => Some(77), // G16R16
            _ => None,
        }
    } else if flags & DDPF_LUMINANCE != 0 {
        match (bits, masks[0], a) {
            (8, 0xff, 0) => Some(9),
            (16, 0xffff, 0) => Some(70),
            (16, 0xff, 0xff00) => Some(16),
            _ => None,
        }
    } else {
        None
    };
    vk.map(|v| (v, shown.clone()))
        .ok_or(DdsError::UnsupportedFormat(shown))
}

/// Checks a DDS file's headers and that every image lies within it.
pub fn validate(bytes: &[u8]) -> Result<DdsLayout, DdsError> {
    let got = bytes.len() as u64;
    if got < 128 {
        return Err(DdsError::Truncated { needed: 128, got });
    }
    debug_assert_eq!(&bytes[..4], b"DDS ");
    let h = &bytes[4..128];
    if u32_at(h, 0) != 124 {
        return Err(DdsError::HeaderSize {
            what: "header",
            found: u32_at(h, 0),
        });
    }
    let pf = &h[72..104];
    if u32_at(pf, 0) != 32 {
        return Err(DdsError::HeaderSize {
            what: "pixel format",
            found: u32_at(pf, 0),
        });
    }
    let flags = u32_at(h, 4);
    let (height, width) = (u32_at(h, 8), u32_at(h, 12));
    let caps2 = u32_at(h, 108);
    let volume = caps2 & DDSCAPS2_VOLUME != 0 || flags & DDSD_DEPTH != 0 && u32_at(h, 20) > 1;
    let mut depth = if volume { u32_at(h, 20) } else { 1 };
    let levels = if flags & DDSD_MIPMAPCOUNT != 0 {
        u32_at(h, 24).max(1)
    } else {
        1
    };
    let dx10 = u32_at(pf, 4) & DDPF_FOURCC != 0 && &pf[8..12] == b"DX10";
    let (vk_format, source_format, layers, cube, data_offset) = if dx10 {
        if got < 148 {
            return Err(DdsError::Truncated { needed: 148, got });
        }
        let d = &bytes[128..148];
        let dxgi = u32_at(d, 0);
        let dimension = u32_at(d, 4);
        let cube = u32_at(d, 8) & DX10_MISC_TEXTURECUBE != 0;
        let array = u32_at(d, 12);
        match dimension {
            3 => depth = 1,
            4 => {
                depth = u32_at(h, 20);
                if array != 1 {
                    return Err(DdsError::ArraySize(array));
                }
            }
            other => return Err(DdsError::Dimension(other)),
        }
        if array == 0 {
            return Err(DdsError::ArraySize(0));
        }
        let vk = vk_from_dxgi(dxgi)
            .ok_or_else(|| DdsError::UnsupportedFormat(format!("DXGI format {dxgi}")))?;
        (vk, format!("DXGI format {dxgi}"), array, cube, 148)
    } else {
        let cube = caps2 & DDSCAPS2_CUBEMAP != 0;
        if cube && caps2 & DDSCAPS2_ALL_FACES != DDSCAPS2_ALL_FACES {
            return Err(DdsError::Cube("only some faces are stored"));
        }
        let (vk, shown) = vk_from_legacy(pf)?;
        (vk, shown, 1, cube, 128)
    };
    if width == 0 || height == 0 || depth == 0 {
        return Err(DdsError::ZeroSize);
    }
    if cube && (width != height || depth != 1) {
        return Err(DdsError::Cube("faces must be square 2D images"));
    }
    let max = 32 - width.max(height).max(depth).leading_zeros();
    if levels > max {
        return Err(DdsError::TooManyLevels { levels, max });
    }
    let format = format::info(vk_format)
        .ok_or_else(|| DdsError::UnsupportedFormat(format!("vkFormat {vk_format}")))?;
    let mut layout = DdsLayout {
        vk_format,
        format,
        source_format,
        dx10,
        width,
        height,
        depth,
        layers,
        faces: if cube { 6 } else { 1 },
        levels,
        data_offset,
        chain_bytes: 0,
    };
    // Checked: 2^32 x 2^32 texels of 16 bytes overflow a u64.
    let chain = (0..levels).try_fold(0u64, |acc, l| {
        layout
            .checked_slice_bytes(l)?
            .checked_mul(layout.slices(l) as u64)
            .and_then(|b| acc.checked_add(b))
    });
    let needed = chain.and_then(|c| c.checked_mul(layers as u64 * layout.faces as u64));
    let have = got - data_offset as u64;
    match (chain, needed) {
        (Some(c), Some(n)) if n <= have => {
            layout.chain_bytes = c;
            Ok(layout)
        }
        (_, n) => Err(DdsError::DataSize {
            needed: n.unwrap_or(u64::MAX),
            got: have,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DDS header for tests: `fourcc` (or DX10 with `dxgi`), size, levels, caps2.
    pub(crate) fn header(
        fourcc: &[u8; 4],
        dx10: Option<(u32, u32, u32, u32)>,
        w: u32,
        h: u32,
        depth: u32,
        levels: u32,
        caps2: u32,
    ) -> Vec<u8> {
        let mut b = vec![0u8; 128];
        b[..4].copy_from_slice(b"DDS ");
        let put =
            |b: &mut Vec<u8>, at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_le_bytes());
        put(&mut b, 4, 124);
        put(
            &mut b,
            8,
            0x1007 | DDSD_MIPMAPCOUNT | if depth > 1 { DDSD_DEPTH } else { 0 },
        );
        put(&mut b, 12, h);
        put(&mut b, 16, w);
        put(&mut b, 24, depth);
        put(&mut b, 28, levels);
        put(&mut b, 76, 32);
        put(&mut b, 80, DDPF_FOURCC);
        b[84..88].copy_from_slice(fourcc);
        put(&mut b, 112, caps2);
        if let Some((dxgi, dim, misc, array)) = dx10 {
            for v in [dxgi, dim, misc, array, 0] {
                b.extend_from_slice(&v.to_le_bytes());
            }
        }
        b
    }

    #[test]
    fn dxt1_mip_chain_places_each_level() {
        let mut b = header(b"DXT1", None, 16, 8, 1, 3, 0);
        // 16x8: 4x2 blocks = 64 B; 8x4: 2x1 = 16 B; 4x2: 1x1 = 8 B.
        b.resize(128 + 64 + 16 + 8, 0);
        let l = validate(&b).unwrap();
        assert_eq!((l.vk_format, l.levels, l.chain_bytes), (133, 3, 88));
        assert_eq!(l.image_range(1, 0, 0, 0), Some(128 + 64..128 + 80));
        assert_eq!(l.image_range(2, 0, 0, 0), Some(128 + 80..128 + 88));
        assert_eq!(l.image_range(3, 0, 0, 0), None);
        b.pop();
        assert!(matches!(
            validate(&b),
            Err(DdsError::DataSize {
                needed: 88,
                got: 87
            })
        ));
    }

    #[test]
    fn dx10_cube_array_orders_layer_face_level() {
        let mut b = header(
            b"DX10",
            Some((98, 3, DX10_MISC_TEXTURECUBE, 2)),
            8,
            8,
            1,
            2,
            0,
        );
        // BC7 8x8: 4 blocks = 64 B, 4x4: 16 B; chain 80; 2 layers x 6 faces.
        b.resize(148 + 80 * 12, 0);
        let l = validate(&b).unwrap();
        assert_eq!((l.vk_format, l.layers, l.faces), (145, 2, 6));
        assert_eq!(
            l.image_range(1, 1, 2, 0),
            Some(148 + 80 * 8 + 64..148 + 80 * 8 + 80)
        );
    }

    #[test]
    fn bad_headers_are_typed_errors() {
        let ok = {
            let mut b = header(b"DXT5", None, 4, 4, 1, 1, 0);
            b.resize(144, 0);
            b
        };
        assert!(validate(&ok).is_ok());
        let mut b = ok.clone();
        b[4] = 100;
        assert!(matches!(validate(&b), Err(DdsError::HeaderSize { .. })));
        let mut b = ok.clone();
        b[84..88].copy_from_slice(b"ABCD");
        assert!(matches!(validate(&b), Err(DdsError::UnsupportedFormat(_))));
        let mut b = ok.clone();
        b[28] = 9; // 9 levels on 4x4
        assert!(matches!(
            validate(&b),
            Err(DdsError::TooManyLevels { max: 3, .. })
        ));
        let mut b = ok.clone();
        b[112..116].copy_from_slice(&(DDSCAPS2_CUBEMAP | 0x400).to_le_bytes());
        assert!(matches!(validate(&b), Err(DdsError::Cube(_))));
        let mut b = header(b"DX10", Some((98, 2, 0, 1)), 4, 4, 1, 1, 0);
        b.resize(200, 0);
        assert!(matches!(validate(&b), Err(DdsError::Dimension(2))));
        assert!(matches!(
            validate(&ok[..100]),
            Err(DdsError::Truncated { .. })
        ));
        // Huge sizes: no overflow, a data size error.
        let mut b = header(
            b"DX10",
            Some((2, 4, 0, 1)),
            u32::MAX,
            u32::MAX,
            u32::MAX,
            1,
            0,
        );
        b.resize(200, 0);
        assert!(matches!(validate(&b), Err(DdsError::DataSize { .. })));
    }
}
