//! KTX 1.1 files: the header, validated, and the place of every image.
//!
//! After the 64-byte header and the key/value data, each mip level is its
//! `imageSize` (a u32) followed by, for each array element, for each face,
//! for each depth slice, the rows of the image; a non-array cube map's
//! `imageSize` counts one face, and each face is padded to 4 bytes
//! (`cubePadding`), as each level is (`mipPadding`). Rows of uncompressed
//! images are padded to 4 bytes (GL's unpack alignment); this reader takes
//! the uncompressed formats whose rows need no padding (4, 8 or 16 bytes per
//! texel) and every block-compressed format with a Vulkan equivalent. Files
//! written big-endian are refused with a clear error.

use std::fmt;
use std::ops::Range;

use super::format::{self, FormatInfo};

/// Why a file is not a KTX 1 this crate can read.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ktx1Error {
    /// Shorter than its header, key/value data or images.
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Bytes needed up to its end.
        needed: u64,
        /// Bytes in the file.
        got: u64,
    },
    /// The endianness field says the file was written big-endian.
    BigEndian,
    /// A `glInternalFormat` this crate has no Vulkan equivalent for.
    UnsupportedFormat(u32),
    /// A zero width, a depth on a cube map, or a faces count other than 1 or 6.
    Dimensions(&'static str),
    /// More mip levels than the largest dimension allows.
    TooManyLevels {
        /// Levels stated.
        levels: u32,
        /// Most allowed.
        max: u32,
    },
    /// A level's `imageSize` does not match its format and size.
    ImageSize {
        /// The level.
        level: u32,
        /// `imageSize` in the file.
        stated: u32,
        /// What the format and size need.
        expected: u64,
    },
}

impl fmt::Display for Ktx1Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ktx1Error::Truncated { what, needed, got } => write!(
                f,
                "truncated in the {what}: {needed} bytes needed, the file has {got}"
            ),
            Ktx1Error::BigEndian => write!(
                f,
                "written big-endian; convert it (or re-export it as KTX2 with toktx)"
            ),
            Ktx1Error::UnsupportedFormat(gl) => write!(
                f,
                "glInternalFormat {gl:#06x} is not supported (uncompressed formats with rows \
                 that need padding, or formats without a Vulkan equivalent)"
            ),
            Ktx1Error::Dimensions(why) => write!(f, "bad dimensions: {why}"),
            Ktx1Error::TooManyLevels { levels, max } => {
                write!(f, "{levels} mip levels, but the size allows {max}")
            }
            Ktx1Error::ImageSize {
                level,
                stated,
                expected,
            } => write!(
                f,
                "level {level}: imageSize {stated}, but its format and size need {expected}"
            ),
        }
    }
}

impl std::error::Error for Ktx1Error {}

/// A validated KTX 1 header and the place of each level's images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ktx1Layout {
    /// The Vulkan format.
    pub vk_format: u32,
    /// Its block.
    pub format: FormatInfo,
    /// The file's `glInternalFormat`.
    pub gl_internal_format: u32,
    /// Base level size in texels (`height` and `depth` at least 1).
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
    /// Per level, the offset of its first image.
    pub level_offsets: Vec<usize>,
}

impl Ktx1Layout {
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

    /// Bytes of one (layer, face) image of `level`, padded as stored.
    fn face_stride(&self, level: u32) -> u64 {
        let bytes = self.slice_bytes(level) * self.slices(level) as u64;
        if self.faces == 6 && self.layers == 1 {
            bytes.next_multiple_of(4)
        } else {
            bytes
        }
    }

    /// The bytes of one depth slice of one image in the file, or `None` when
    /// the selector is outside the texture.
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
        let index = (layer * self.faces + face) as u64;
        let start = self.level_offsets[level as usize] as u64
            + index * self.face_stride(level)
            + slice as u64 * self.slice_bytes(level);
        let start = usize::try_from(start).ok()?;
        Some(start..start + self.slice_bytes(level) as usize)
    }
}

/// The Vulkan format of a GL internal format, for the formats this reader takes.
pub fn vk_from_gl(gl: u32) -> Option<u32> {
    Some(match gl {
        0x8058 => 37,  // RGBA8
        0x8C43 => 43,  // SRGB8_ALPHA8
        0x881A => 97,  // RGBA16F
        0x8814 => 109, // RGBA32F
        0x822F => 83,  // RG16F
        0x8230 => 103, // RG32F
        0x8E8C => 145, // COMPRESSED_RGBA_BPTC_UNORM
        0x8E8D => 146, // COMPRESSED_SRGB_ALPHA_BPTC_UNORM
        0x8E8E => 144, // COMPRESSED_RGB_BPTC_SIGNED_FLOAT
        0x8E8F => 143, // COMPRESSED_RGB_BPTC_UNSIGNED_FLOAT
        0x83F0 => 131, // COMPRESSED_RGB_S3TC_DXT1
        0x83F1 => 133, // COMPRESSED_RGBA_S3TC_DXT1
        0x83F2 => 135, // DXT3
        0x83F3 => 137, // DXT5
        0x8C4C => 132, // COMPRESSED_SRGB_S3TC_DXT1
        0x8C4D => 134,
        0x8C4E => 136,
        0x8C4F => 138,
        0x8DBB => 139, // COMPRESSED_RED_RGTC1
        0x8DBC => 140,
        0x8DBD => 141, // COMPRESSED_RG_RGTC2
        0x8DBE => 142,
        0x8D64 => 147, // ETC1_RGB8 (a subset of ETC2 RGB)
        0x9274 => 147, // COMPRESSED_RGB8_ETC2
        0x9275 => 148,
        0x9276 => 149, // RGB8_PUNCHTHROUGH_ALPHA1_ETC2
        0x9277 => 150,
        0x9278 => 151, // RGBA8_ETC2_EAC
        0x9279 => 152,
        0x9270 => 153, // R11_EAC
        0x9271 => 154,
        0x9272 => 155, // RG11_EAC
        0x9273 => 156,
        0x93B0..=0x93BD => 157 + 2 * (gl - 0x93B0), // COMPRESSED_RGBA_ASTC_*
        0x93D0..=0x93DD => 158 + 2 * (gl - 0x93D0), // COMPRESSED_SRGB8_ALPHA8_ASTC_*
        _ => return None,
    })
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Checks a KTX 1 file's header and that every image lies within it.
pub fn validate(bytes: &[u8]) -> Result<Ktx1Layout, Ktx1Error> {
    let got = bytes.len() as u64;
    let truncated = |what, needed: u64| Ktx1Error::Truncated { what, needed, got };
    if got < 64 {
        return Err(truncated("header", 64));
    }
    match u32_at(bytes, 12) {
        0x0403_0201 => {}
        _ => return Err(Ktx1Error::BigEndian),
    }
    let gl = u32_at(bytes, 28);
    let vk_format = vk_from_gl(gl).ok_or(Ktx1Error::UnsupportedFormat(gl))?;
    let format = format::info(vk_format).ok_or(Ktx1Error::UnsupportedFormat(gl))?;
    let width = u32_at(bytes, 36);
    let height = u32_at(bytes, 40).max(1);
    let depth = u32_at(bytes, 44).max(1);
    let layers = u32_at(bytes, 48).max(1);
    let faces = u32_at(bytes, 52);
    let levels = u32_at(bytes, 56).max(1);
    let kvd = u32_at(bytes, 60) as u64;
    if width == 0 {
        return Err(Ktx1Error::Dimensions("pixelWidth is 0"));
    }
    if faces != 1 && faces != 6 {
        return Err(Ktx1Error::Dimensions("numberOfFaces must be 1 or 6"));
    }
    if faces == 6 && (width != height || depth != 1) {
        return Err(Ktx1Error::Dimensions("cube faces must be square 2D images"));
    }
    let max = 32 - width.max(height).max(depth).leading_zeros();
    if levels > max {
        return Err(Ktx1Error::TooManyLevels { levels, max });
    }
    let mut layout = Ktx1Layout {
        vk_format,
        format,
        gl_internal_format: gl,
        width,
        height,
        depth,
        layers,
        faces,
        levels,
        level_offsets: Vec::with_capacity(levels as usize),
    };
    let mut at = 64 + kvd;
    if at > got {
        return Err(truncated("key/value data", at));
    }
    for level in 0..levels {
        if at + 4 > got {
            return Err(truncated("imageSize", at + 4));
        }
        let stated = u32_at(bytes, at as usize);
        let images = layers as u64 * faces as u64;
        let too_big = || truncated("images", u64::MAX);
        let face = layout
            .checked_slice_bytes(level)
            .and_then(|b| b.checked_mul(layout.slices(level) as u64))
            .ok_or_else(too_big)?;
        let non_array_cube = faces == 6 && layers == 1;
        let expected = if non_array_cube {
            face
        } else {
            face.checked_mul(images).ok_or_else(too_big)?
        };
        if stated as u64 != expected {
            return Err(Ktx1Error::ImageSize {
                level,
                stated,
                expected,
            });
        }
        at += 4;
        layout.level_offsets.push(at as usize);
        // `expected` matched a u32, so these products stay far below 2^64.
        at += layout.face_stride(level) * images;
        at = at.next_multiple_of(4);
        if at > got {
            return Err(truncated("images", at));
        }
    }
    Ok(layout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::texture::KTX1_MAGIC;

    /// A KTX 1 file of `gl` format with zeroed images of the right sizes.
    fn file(gl: u32, w: u32, h: u32, layers: u32, faces: u32, levels: u32) -> Vec<u8> {
        let mut b = KTX1_MAGIC.to_vec();
        for v in [
            0x0403_0201u32,
            0,
            1,
            0,
            gl,
            0,
            w,
            h,
            0,
            layers,
            faces,
            levels,
            0,
        ] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        let f = format::info(vk_from_gl(gl).unwrap()).unwrap();
        for level in 0..levels.max(1) {
            let dim = |v: u32, bl: u32| crate::texture::level_extent(v, level).div_ceil(bl) as u64;
            let face = dim(w, f.block[0]) * dim(h.max(1), f.block[1]) * f.bytes as u64;
            let cube = faces == 6 && layers == 0;
            let stated = if cube {
                face
            } else {
                face * layers.max(1) as u64 * faces as u64
            };
            b.extend_from_slice(&(stated as u32).to_le_bytes());
            let stride = if cube { face.next_multiple_of(4) } else { face };
            b.resize(
                b.len() + (stride * (layers.max(1) * faces) as u64) as usize,
                0,
            );
            b.resize(b.len().next_multiple_of(4), 0);
        }
        b
    }

    #[test]
    fn rgba8_mips_and_bc7_cube_are_placed() {
        let b = file(0x8058, 4, 4, 0, 1, 3);
        let l = validate(&b).unwrap();
        assert_eq!((l.vk_format, l.levels), (37, 3));
        assert_eq!(l.image_range(0, 0, 0, 0), Some(68..68 + 64));
        assert_eq!(
            l.image_range(1, 0, 0, 0),
            Some(68 + 64 + 4..68 + 64 + 4 + 16)
        );
        let b = file(0x8E8C, 8, 8, 0, 6, 1);
        let l = validate(&b).unwrap();
        assert_eq!((l.vk_format, l.faces), (145, 6));
        assert_eq!(l.image_range(0, 0, 5, 0), Some(68 + 5 * 64..68 + 6 * 64));
        assert!(validate(&b[..b.len() - 1]).is_err());
    }

    #[test]
    fn bad_headers_are_typed_errors() {
        let ok = file(0x8058, 4, 4, 0, 1, 1);
        let mut b = ok.clone();
        b[12..16].copy_from_slice(&[4, 3, 2, 1]); // 0x04030201 written big-endian
        assert_eq!(validate(&b), Err(Ktx1Error::BigEndian));
        let mut b = ok.clone();
        b[28..32].copy_from_slice(&0x1908u32.to_le_bytes()); // GL_RGBA, unsized
        assert_eq!(validate(&b), Err(Ktx1Error::UnsupportedFormat(0x1908)));
        let mut b = ok.clone();
        b[64..68].copy_from_slice(&60u32.to_le_bytes());
        assert!(matches!(
            validate(&b),
            Err(Ktx1Error::ImageSize { stated: 60, .. })
        ));
        let mut b = ok.clone();
        b[56..60].copy_from_slice(&5u32.to_le_bytes());
        assert!(matches!(validate(&b), Err(Ktx1Error::TooManyLevels { .. })));
        let mut b = ok.clone();
        b[60..64].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(validate(&b), Err(Ktx1Error::Truncated { .. })));
        // Sizes whose byte counts overflow: an error, no panic.
        let mut b = ok.clone();
        for at in [36, 40, 48] {
            b[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        }
        b[52..56].copy_from_slice(&6u32.to_le_bytes());
        assert!(validate(&b).is_err());
        b[52..56].copy_from_slice(&1u32.to_le_bytes());
        assert!(validate(&b).is_err());
    }
}
