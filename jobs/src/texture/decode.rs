//! CPU decoding of block-compressed images, for adapters without the format.
//!
//! Each format goes to the decoder that measured right (see the README):
//! - BC1-BC7: forgeflow's own (`bc1_5`, `bc6h`, `bc7`), bcdec's arithmetic
//!   and bit-exact with its Rust port `bcdec_rs`, which they replaced (BC6H
//!   also with the C `bcdec`): a palette per block (per subset in BC7) and
//!   whole rows written at once, 1.1-2.1x its rate. BC2 and BC3 colour
//!   always in four-colour mode. (texture2ddecoder 0.1.2 decodes BC6H
//!   wrongly, clamps it to 8 bits, and treats BC3 colour like BC1.)
//! - ETC2 (RGB, RGBA1, RGBA8) and EAC (R11, RG11, at 8 bits of the 11):
//!   forgeflow's own (`etc2`), twice texture2ddecoder's rate and bit-exact
//!   with it for ETC2, but for punch-through's transparent texels, black as
//!   the specification makes them. (texture2ddecoder 0.1.2 reads EAC index
//!   bits in the wrong byte order and gives signed values biased, unusable
//!   as snorm.)
//! - ASTC, LDR and HDR, 2D and 3D: forgeflow's own decoder ([`super::astc`]),
//!   checked against Arm's astcenc; LDR 2D straight to RGBA8, about 1.5x the
//!   rate of astc-decode, which it replaced (the same bytes for encoders'
//!   blocks; astc-decode misdecodes some legal random ones, and
//!   texture2ddecoder panics on corrupt ASTC blocks). 3D images go a slab of
//!   blocks at a time ([`decode_3d`]).
//!
//! Each family is a cargo feature (`bc`, `etc2`, `astc`; all on by default):
//! a format whose family was built out is [`DecodeError::FeatureDisabled`].
//!
//! Formats no GPU format holds are expanded texel by texel the same way:
//! packed 8- and 16-bit formats (R5G6B5, R4G4B4A4, A1R5G5B5, ...) to RGBA8
//! (R4G4 to RG8), and the three-channel formats (R8G8B8, B8G8R8, R16G16B16
//! float) to four channels.
//!
//! Output is the narrowest format that holds the data, rows tightly packed:
//! R8 for BC4 and EAC R11, RG8 for BC5 and EAC RG11 (unorm, or snorm for the
//! signed variants), RGBA16F for BC6H and HDR ASTC, RGBA8 otherwise.
//! [`DecodedFormat::expand_to_rgba8`] widens R8 and RG8 where four channels
//! are wanted (an image file, a comparison). Decoding works in bands of block rows, so that decode
//! jobs can split an image between workers ([`decode_rows`]).

use std::fmt;
use std::ops::Range;

use super::format;

/// The pixel format of decoded data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodedFormat {
    /// 8-bit unsigned normalized red (BC4, EAC R11).
    R8Unorm,
    /// 8-bit signed normalized red (signed BC4 and EAC R11).
    R8Snorm,
    /// 8-bit unsigned normalized red and green (BC5, EAC RG11).
    Rg8Unorm,
    /// 8-bit signed normalized red and green (signed BC5 and EAC RG11).
    Rg8Snorm,
    /// 8-bit unsigned normalized RGBA.
    Rgba8Unorm,
    /// 8-bit signed normalized RGBA (signed three-channel formats).
    Rgba8Snorm,
    /// Half-float RGBA (BC6H, HDR ASTC), little-endian.
    Rgba16Float,
}

impl DecodedFormat {
    /// Bytes per pixel.
    pub fn bytes_per_pixel(self) -> usize {
        match self {
            DecodedFormat::R8Unorm | DecodedFormat::R8Snorm => 1,
            DecodedFormat::Rg8Unorm | DecodedFormat::Rg8Snorm => 2,
            DecodedFormat::Rgba8Unorm | DecodedFormat::Rgba8Snorm => 4,
            DecodedFormat::Rgba16Float => 8,
        }
    }

    /// Whether the channels are signed normalized.
    pub fn is_snorm(self) -> bool {
        matches!(
            self,
            DecodedFormat::R8Snorm | DecodedFormat::Rg8Snorm | DecodedFormat::Rgba8Snorm
        )
    }

    /// Pixels of this format as RGBA8 of the same signedness: missing
    /// channels are 0, alpha is one (255, or 127 for snorm). RGBA8 comes back
    /// as it is; half floats are not widened (`None`).
    pub fn expand_to_rgba8(self, px: &[u8]) -> Option<Vec<u8>> {
        let one = if self.is_snorm() { 127 } else { 255 };
        Some(match self {
            DecodedFormat::R8Unorm | DecodedFormat::R8Snorm => {
                px.iter().flat_map(|&r| [r, 0, 0, one]).collect()
            }
            DecodedFormat::Rg8Unorm | DecodedFormat::Rg8Snorm => px
                .chunks_exact(2)
                .flat_map(|rg| [rg[0], rg[1], 0, one])
                .collect(),
            DecodedFormat::Rgba8Unorm | DecodedFormat::Rgba8Snorm => px.to_vec(),
            DecodedFormat::Rgba16Float => return None,
        })
    }
}

/// Why an image cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// A format this decoder does not handle.
    Unsupported {
        /// The Vulkan format.
        vk_format: u32,
        /// Why.
        why: &'static str,
    },
    /// A format whose decoder family this build leaves out.
    FeatureDisabled {
        /// The Vulkan format.
        vk_format: u32,
        /// The cargo feature of `forgeflow` (and `forgeflow-jobs`) that
        /// decodes it.
        feature: &'static str,
    },
    /// Fewer block bytes than the image size needs.
    DataSize {
        /// Bytes needed.
        expected: usize,
        /// Bytes given.
        got: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Unsupported { vk_format, why } => {
                write!(f, "cannot decode vkFormat {vk_format}: {why}")
            }
            DecodeError::FeatureDisabled { vk_format, feature } => write!(
                f,
                "cannot decode vkFormat {vk_format}: this build of forgeflow leaves out \
                 the `{feature}` feature that decodes it"
            ),
            DecodeError::DataSize { expected, got } => {
                write!(
                    f,
                    "the image needs {expected} bytes of blocks but {got} were given"
                )
            }
        }
    }
}

impl std::error::Error for DecodeError {}

#[derive(Clone, Copy)]
// Fields go unread when their decoder family is built out.
#[cfg_attr(
    not(all(feature = "bc", feature = "etc2", feature = "astc")),
    allow(dead_code)
)]
enum Kind {
    Bc1 {
        opaque: bool,
    },
    Bc2,
    Bc3,
    Bc4 {
        signed: bool,
    },
    Bc5 {
        signed: bool,
    },
    Bc6h {
        signed: bool,
    },
    Bc7,
    Etc2Rgb,
    Etc2Rgba1,
    Etc2Rgba8,
    EacR {
        signed: bool,
    },
    EacRg {
        signed: bool,
    },
    Astc,
    /// 2D ASTC with HDR endpoints allowed (the SFLOAT formats): forgeflow's
    /// own decoder, to half floats.
    AstcHdr,
    /// Three 8-bit channels (uncompressed), red first or blue first: no GPU
    /// format holds them, so they are expanded to RGBA8.
    Rgb8 {
        bgr: bool,
        signed: bool,
    },
    /// Three half floats (uncompressed), expanded to RGBA16F.
    Rgb16f,
    /// A packed 8- or 16-bit format wgpu has no equivalent of (R5G6B5,
    /// R4G4B4A4, A1R5G5B5 and the like), expanded to RGBA8 (RG8 for R4G4).
    Packed {
        layout: &'static PackedLayout,
    },
}

/// Where a packed format keeps its channels: (lowest bit, bits) of red,
/// green, blue and alpha in a little-endian 8- or 16-bit word; 0 bits for a
/// channel it lacks (colour 0, alpha one).
#[derive(Debug)]
struct PackedLayout {
    channels: [(u8, u8); 4],
    /// Two channels out (RG8) rather than four.
    two_channels: bool,
}

/// The layout of a packed format (`VK_FORMAT_*_PACK8/16`: the name lists
/// channels from the most significant bit down).
fn packed_layout(vk_format: u32) -> Option<&'static PackedLayout> {
    const fn l(r: (u8, u8), g: (u8, u8), b: (u8, u8), a: (u8, u8)) -> PackedLayout {
        PackedLayout {
            channels: [r, g, b, a],
            two_channels: false,
        }
    }
    static R4G4: PackedLayout = PackedLayout {
        channels: [(4, 4), (0, 4), (0, 0), (0, 0)],
        two_channels: true,
    };
    static R4G4B4A4: PackedLayout = l((12, 4), (8, 4), (4, 4), (0, 4));
    static B4G4R4A4: PackedLayout = l((4, 4), (8, 4), (12, 4), (0, 4));
    static R5G6B5: PackedLayout = l((11, 5), (5, 6), (0, 5), (0, 0));
    static B5G6R5: PackedLayout = l((0, 5), (5, 6), (11, 5), (0, 0));
    static R5G5B5A1: PackedLayout = l((11, 5), (6, 5), (1, 5), (0, 1));
    static B5G5R5A1: PackedLayout = l((1, 5), (6, 5), (11, 5), (0, 1));
    static A1R5G5B5: PackedLayout = l((10, 5), (5, 5), (0, 5), (15, 1));
    static A4R4G4B4: PackedLayout = l((8, 4), (4, 4), (0, 4), (12, 4));
    static A4B4G4R4: PackedLayout = l((0, 4), (4, 4), (8, 4), (12, 4));
    static A1B5G5R5: PackedLayout = l((0, 5), (5, 5), (10, 5), (15, 1));
    static A8: PackedLayout = l((0, 0), (0, 0), (0, 0), (0, 8));
    Some(match vk_format {
        1 => &R4G4,
        2 => &R4G4B4A4,
        3 => &B4G4R4A4,
        4 => &R5G6B5,
        5 => &B5G6R5,
        6 => &R5G5B5A1,
        7 => &B5G5R5A1,
        8 => &A1R5G5B5,
        1_000_340_000 => &A4R4G4B4,
        1_000_340_001 => &A4B4G4R4,
        1_000_470_000 => &A1B5G5R5,
        1_000_470_001 => &A8,
        _ => return None,
    })
}

impl PackedLayout {
    /// One texel: its word in `bytes`, out as RG8 or RGBA8 in `dst`.
    #[inline(always)]
    fn expand(&self, bytes: &[u8], dst: &mut [u8]) {
        let word = match bytes {
            [lo, hi, ..] => u16::from_le_bytes([*lo, *hi]),
            [b] => u16::from(*b),
            [] => 0,
        };
        let unorm = |(shift, bits): (u8, u8), absent: u8| {
            if bits == 0 {
                return absent;
            }
            let max = (1u32 << bits) - 1;
            let v = (u32::from(word) >> shift) & max;
            ((v * 255 + max / 2) / max) as u8
        };
        let [r, g, b, a] = self.channels;
        if self.two_channels {
            dst[..2].copy_from_slice(&[unorm(r, 0), unorm(g, 0)]);
        } else {
            dst[..4].copy_from_slice(&[unorm(r, 0), unorm(g, 0), unorm(b, 0), unorm(a, 255)]);
        }
    }
}

/// How an image of `vk_format` decodes: the decoder kind, the block size and
/// the output format.
struct Plan {
    kind: Kind,
    block: (u32, u32),
    block_bytes: usize,
    out: DecodedFormat,
}

fn plan(vk_format: u32) -> Result<Plan, DecodeError> {
    let info = format::info(vk_format).ok_or(DecodeError::Unsupported {
        vk_format,
        why: "unknown format",
    })?;
    let three_channels = match vk_format {
        23 | 25..=29 => Some(Kind::Rgb8 {
            bgr: false,
            signed: false,
        }),
        24 => Some(Kind::Rgb8 {
            bgr: false,
            signed: true,
        }),
        30 | 32..=36 => Some(Kind::Rgb8 {
            bgr: true,
            signed: false,
        }),
        31 => Some(Kind::Rgb8 {
            bgr: true,
            signed: true,
        }),
        90 => Some(Kind::Rgb16f),
        _ => None,
    };
    if let Some(layout) = packed_layout(vk_format) {
        return Ok(Plan {
            kind: Kind::Packed { layout },
            block: (1, 1),
            block_bytes: info.bytes as usize,
            out: if layout.two_channels {
                DecodedFormat::Rg8Unorm
            } else {
                DecodedFormat::Rgba8Unorm
            },
        });
    }
    if let Some(kind) = three_channels {
        return Ok(Plan {
            kind,
            block: (1, 1),
            block_bytes: info.bytes as usize,
            out: match kind {
                Kind::Rgb16f => DecodedFormat::Rgba16Float,
                Kind::Rgb8 { signed: true, .. } => DecodedFormat::Rgba8Snorm,
                _ => DecodedFormat::Rgba8Unorm,
            },
        });
    }
    if !info.is_compressed() {
        return Err(DecodeError::Unsupported {
            vk_format,
            why: "not block-compressed (upload it as it is)",
        });
    }
    if info.block[2] != 1 {
        return Err(DecodeError::Unsupported {
            vk_format,
            why: "3D blocks: decode them a slab at a time with decode_3d",
        });
    }
    let kind = match vk_format {
        131 | 132 => Kind::Bc1 { opaque: true },
        133 | 134 => Kind::Bc1 { opaque: false },
        135 | 136 => Kind::Bc2,
        137 | 138 => Kind::Bc3,
        139 | 140 => Kind::Bc4 {
            signed: vk_format == 140,
        },
        141 | 142 => Kind::Bc5 {
            signed: vk_format == 142,
        },
        143 | 144 => Kind::Bc6h {
            signed: vk_format == 144,
        },
        145 | 146 => Kind::Bc7,
        147 | 148 => Kind::Etc2Rgb,
        149 | 150 => Kind::Etc2Rgba1,
        151 | 152 => Kind::Etc2Rgba8,
        153 | 154 => Kind::EacR {
            signed: vk_format == 154,
        },
        155 | 156 => Kind::EacRg {
            signed: vk_format == 156,
        },
        157..=184 => Kind::Astc,
        1_000_066_000..=1_000_066_013 => Kind::AstcHdr,
        _ => {
            return Err(DecodeError::Unsupported {
                vk_format,
                why: "no decoder for this block format",
            })
        }
    };
    family_enabled(vk_format, kind)?;
    let out = match kind {
        Kind::Bc6h { .. } | Kind::AstcHdr => DecodedFormat::Rgba16Float,
        Kind::Bc4 { signed: false } | Kind::EacR { signed: false } => DecodedFormat::R8Unorm,
        Kind::Bc4 { signed: true } | Kind::EacR { signed: true } => DecodedFormat::R8Snorm,
        Kind::Bc5 { signed: false } | Kind::EacRg { signed: false } => DecodedFormat::Rg8Unorm,
        Kind::Bc5 { signed: true } | Kind::EacRg { signed: true } => DecodedFormat::Rg8Snorm,
        _ => DecodedFormat::Rgba8Unorm,
    };
    Ok(Plan {
        kind,
        block: (info.block[0], info.block[1]),
        block_bytes: info.bytes as usize,
        out,
    })
}

/// `Ok` when the decoder family of `kind` is built in.
fn family_enabled(vk_format: u32, kind: Kind) -> Result<(), DecodeError> {
    let (feature, enabled) = match kind {
        Kind::Bc1 { .. }
        | Kind::Bc2
        | Kind::Bc3
        | Kind::Bc4 { .. }
        | Kind::Bc5 { .. }
        | Kind::Bc6h { .. }
        | Kind::Bc7 => ("bc", cfg!(feature = "bc")),
        Kind::Etc2Rgb
        | Kind::Etc2Rgba1
        | Kind::Etc2Rgba8
        | Kind::EacR { .. }
        | Kind::EacRg { .. } => ("etc2", cfg!(feature = "etc2")),
        Kind::Astc | Kind::AstcHdr => ("astc", cfg!(feature = "astc")),
        Kind::Rgb8 { .. } | Kind::Rgb16f | Kind::Packed { .. } => return Ok(()),
    };
    if enabled {
        Ok(())
    } else {
        Err(DecodeError::FeatureDisabled { vk_format, feature })
    }
}

/// The decoded format and bytes an image of `vk_format` decodes to.
pub fn decoded_format(vk_format: u32) -> Result<DecodedFormat, DecodeError> {
    if let Some(hdr) = astc_3d(vk_format) {
        return Ok(if hdr {
            DecodedFormat::Rgba16Float
        } else {
            DecodedFormat::Rgba8Unorm
        });
    }
    plan(vk_format).map(|p| p.out)
}

/// For a 3D ASTC format, whether it is the SFLOAT (HDR) variant.
fn astc_3d(vk_format: u32) -> Option<bool> {
    (1_000_288_000..=1_000_288_029)
        .contains(&vk_format)
        .then(|| (vk_format - 1_000_288_000) % 3 == 2)
}

/// Decodes one slab of a 3D ASTC image: `data` holds one layer of blocks
/// (rows of blocks, tightly packed, as a KTX2 depth selector returns them),
/// which covers `depth` texel slices (at most the block depth) of a
/// `width` x `height` image. Returns the slices one after another: RGBA8 for
/// the UNORM and SRGB formats, RGBA16F for SFLOAT. Illegal blocks decode to
/// the error colour (magenta, or NaN).
pub fn decode_3d(
    vk_format: u32,
    data: &[u8],
    width: u32,
    height: u32,
    depth: u32,
) -> Result<(DecodedFormat, Vec<u8>), DecodeError> {
    let hdr = astc_3d(vk_format).ok_or(DecodeError::Unsupported {
        vk_format,
        why: "not a 3D ASTC format",
    })?;
    #[cfg(not(feature = "astc"))]
    {
        let _ = (data, width, height, depth, hdr);
        Err(DecodeError::FeatureDisabled {
            vk_format,
            feature: "astc",
        })
    }
    #[cfg(feature = "astc")]
    decode_astc_3d(vk_format, hdr, data, (width, height, depth))
}

/// [`decode_3d`] once the format is known to be 3D ASTC.
#[cfg(feature = "astc")]
fn decode_astc_3d(
    vk_format: u32,
    hdr: bool,
    data: &[u8],
    (width, height, depth): (u32, u32, u32),
) -> Result<(DecodedFormat, Vec<u8>), DecodeError> {
    use super::astc::{decode_block, Profile};
    let info = format::info(vk_format).expect("a 3D ASTC format");
    let [bw, bh, bd] = info.block;
    let depth = depth.clamp(1, bd);
    let (bx, by) = (width.div_ceil(bw) as usize, height.div_ceil(bh) as usize);
    let expected = bx * by * 16;
    if data.len() < expected {
        return Err(DecodeError::DataSize {
            expected,
            got: data.len(),
        });
    }
    let (fmt, bpp) = if hdr {
        (DecodedFormat::Rgba16Float, 8)
    } else {
        (DecodedFormat::Rgba8Unorm, 4)
    };
    let (w, h) = (width as usize, height as usize);
    let mut out = vec![0u8; w * h * depth as usize * bpp];
    let mut texels = vec![[0u16; 4]; (bw * bh * bd) as usize];
    let profile = if hdr { Profile::Hdr } else { Profile::Ldr };
    for (i, block) in data[..expected].chunks_exact(16).enumerate() {
        let block: &[u8; 16] = block.try_into().expect("16 bytes");
        decode_block(block, (bw, bh, bd), profile, &mut texels);
        let (x0, y0) = ((i % bx) * bw as usize, (i / bx) * bh as usize);
        for z in 0..depth as usize {
            for ty in 0..bh as usize {
                for tx in 0..bw as usize {
                    let (x, y) = (x0 + tx, y0 + ty);
                    if x >= w || y >= h {
                        continue;
                    }
                    let t = texels[(z * bh as usize + ty) * bw as usize + tx];
                    let at = ((z * h + y) * w + x) * bpp;
                    if hdr {
                        for c in 0..4 {
                            out[at + 2 * c..at + 2 * c + 2].copy_from_slice(&t[c].to_le_bytes());
                        }
                    } else {
                        for c in 0..4 {
                            // The nearest 8-bit value of the UNORM16 result.
                            out[at + c] = ((t[c] as u32 * 255 + 32767) / 65535) as u8;
                        }
                    }
                }
            }
        }
    }
    Ok((fmt, out))
}

/// Decodes one `width x height` image whose blocks are `data` (rows of blocks,
/// tightly packed). Returns the pixels and their format.
pub fn decode(
    vk_format: u32,
    data: &[u8],
    width: u32,
    height: u32,
) -> Result<(DecodedFormat, Vec<u8>), DecodeError> {
    let p = plan(vk_format)?;
    // The input is checked before the output is allocated: a tiny input
    // naming a huge image must not allocate the image first.
    let blocks = u64::from(width.div_ceil(p.block.0)) * u64::from(height.div_ceil(p.block.1));
    let expected = blocks.saturating_mul(p.block_bytes as u64);
    if (data.len() as u64) < expected {
        return Err(DecodeError::DataSize {
            expected: usize::try_from(expected).unwrap_or(usize::MAX),
            got: data.len(),
        });
    }
    let bytes = u64::from(width) * u64::from(height) * p.out.bytes_per_pixel() as u64;
    let mut out = vec![
        0u8;
        usize::try_from(bytes).map_err(|_| DecodeError::DataSize {
            expected: usize::MAX,
            got: data.len(),
        })?
    ];
    let rows = height.div_ceil(p.block.1);
    decode_rows(vk_format, data, width, height, 0..rows, &mut out)?;
    Ok((p.out, out))
}

/// Decodes the block rows `rows` of an image into `out`, which holds exactly
/// those rows of pixels (the last band may be shorter than a block). `data` is
/// the whole image's blocks.
pub fn decode_rows(
    vk_format: u32,
    data: &[u8],
    width: u32,
    height: u32,
    rows: Range<u32>,
    out: &mut [u8],
) -> Result<(), DecodeError> {
    let p = plan(vk_format)?;
    let (bw, bh) = p.block;
    let blocks_x = width.div_ceil(bw) as usize;
    let blocks_y = height.div_ceil(bh);
    let expected = blocks_x * blocks_y as usize * p.block_bytes;
    if data.len() < expected {
        return Err(DecodeError::DataSize {
            expected,
            got: data.len(),
        });
    }
    let bpp = p.out.bytes_per_pixel();
    let row_bytes = width as usize * bpp;
    let first_y = rows.start * bh;
    let end_y = (rows.end * bh).min(height);
    let need = (end_y.saturating_sub(first_y)) as usize * row_bytes;
    if out.len() < need || rows.end > blocks_y {
        return Err(DecodeError::DataSize {
            expected: need,
            got: out.len(),
        });
    }
    let geometry = Geometry {
        block: (bw, bh),
        block_bytes: p.block_bytes,
        bpp,
        size: (width, height),
        blocks_x,
        row_bytes,
        first_y,
    };
    // One loop per kind, so that each block decoder is inlined into a loop
    // of its own instead of a match on the kind for every block (worth up
    // to a fifth of BC1's rate).
    macro_rules! by_kind {
        ($($v:ident $({ $($f:ident),* })?),* $(,)?) => {
            match p.kind {
                $(Kind::$v $({ $($f),* })? => for_each_block(&geometry, data, rows, out, |b, d, pitch| {
                    decode_block(Kind::$v $({ $($f),* })?, b, (bw, bh), d, pitch)
                }),)*
            }
        };
    }
    by_kind!(
        Bc1 { opaque },
        Bc2,
        Bc3,
        Bc4 { signed },
        Bc5 { signed },
        Bc6h { signed },
        Bc7,
        Etc2Rgb,
        Etc2Rgba1,
        Etc2Rgba8,
        EacR { signed },
        EacRg { signed },
        Astc,
        AstcHdr,
        Rgb8 { bgr, signed },
        Rgb16f,
        Packed { layout },
    );
    Ok(())
}

/// Where an image's blocks go in `decode_rows`'s output.
struct Geometry {
    block: (u32, u32),
    block_bytes: usize,
    /// Output bytes per texel.
    bpp: usize,
    size: (u32, u32),
    blocks_x: usize,
    row_bytes: usize,
    /// The first texel row the output holds.
    first_y: u32,
}

/// Decodes the block rows `rows` of `data` into `out` with `decode(block,
/// dst, pitch)`: whole blocks straight into `out`, a block the image's edge
/// cuts into a tile whose visible part is then copied.
#[inline(always)]
fn for_each_block(
    g: &Geometry,
    data: &[u8],
    rows: Range<u32>,
    out: &mut [u8],
    mut decode: impl FnMut(&[u8], &mut [u8], usize),
) {
    let ((bw, bh), (width, height)) = (g.block, g.size);
    let tile_pitch = bw as usize * g.bpp;
    let mut tile = [0u8; 12 * 12 * 8];
    // Blocks whole in both directions, a row of blocks at a time: the
    // block's bytes and its place in the output advance by fixed steps
    // (what the block decoders' own image loops do).
    let whole_x = (width / bw) as usize;
    let block_step = bw as usize * g.bpp;
    for by in rows {
        let row_blocks =
            &data[by as usize * g.blocks_x * g.block_bytes..][..g.blocks_x * g.block_bytes];
        let whole_rows = by * bh + bh <= height;
        let first_x = if whole_rows {
            let band = &mut out[(by * bh - g.first_y) as usize * g.row_bytes..];
            for (bx, block) in row_blocks
                .chunks_exact(g.block_bytes)
                .take(whole_x)
                .enumerate()
            {
                decode(block, &mut band[bx * block_step..], g.row_bytes);
            }
            whole_x
        } else {
            0
        };
        for bx in first_x..g.blocks_x {
            let block = &row_blocks[bx * g.block_bytes..][..g.block_bytes];
            let x0 = bx as u32 * bw;
            decode(block, &mut tile, tile_pitch);
            for ty in 0..bh {
                let y = by * bh + ty;
                if y >= height {
                    break;
                }
                let n = bw.min(width - x0) as usize * g.bpp;
                let src = &tile[ty as usize * tile_pitch..][..n];
                let dst_at = (y - g.first_y) as usize * g.row_bytes + x0 as usize * g.bpp;
                out[dst_at..dst_at + n].copy_from_slice(src);
            }
        }
    }
}

/// Decodes one block of `kind` (`bw` x `bh` texels) into `dst`, its rows
/// `pitch` bytes apart, in the plan's output format: straight into the image
/// for a whole block, into a tile for a block the image's edge cuts.
#[cfg_attr(
    not(all(feature = "bc", feature = "etc2", feature = "astc")),
    allow(unused_variables)
)]
#[inline(always)]
fn decode_block(kind: Kind, block: &[u8], (bw, bh): (u32, u32), dst: &mut [u8], pitch: usize) {
    match kind {
        #[cfg(feature = "bc")]
        Kind::Bc1 { opaque } => super::bc1_5::decode_bc1(block, opaque, dst, pitch),
        #[cfg(feature = "bc")]
        Kind::Bc2 => super::bc1_5::decode_bc2(block, dst, pitch),
        #[cfg(feature = "bc")]
        Kind::Bc3 => super::bc1_5::decode_bc3(block, dst, pitch),
        #[cfg(feature = "bc")]
        Kind::Bc4 { signed } => super::bc1_5::decode_bc4(block, signed, dst, pitch),
        #[cfg(feature = "bc")]
        Kind::Bc5 { signed } => super::bc1_5::decode_bc5(block, signed, dst, pitch),
        #[cfg(feature = "bc")]
        Kind::Bc6h { signed } => super::bc6h::decode_block(block, signed, dst, pitch),
        #[cfg(feature = "bc")]
        Kind::Bc7 => super::bc7::decode_bc7(block, dst, pitch),
        #[cfg(feature = "etc2")]
        Kind::Etc2Rgb => super::etc2::decode_block(block, false, dst, pitch),
        #[cfg(feature = "etc2")]
        Kind::Etc2Rgba8 => super::etc2::decode_block(block, true, dst, pitch),
        #[cfg(feature = "etc2")]
        Kind::EacR { signed } => super::etc2::decode_eac_r(block, signed, dst, pitch),
        #[cfg(feature = "etc2")]
        Kind::EacRg { signed } => super::etc2::decode_eac_rg(block, signed, dst, pitch),
        #[cfg(feature = "etc2")]
        Kind::Etc2Rgba1 => super::etc2::decode_punch_through_block(block, dst, pitch),
        Kind::Rgb8 { bgr, signed } => {
            let one = if signed { 127 } else { 255 };
            let (r, b) = if bgr {
                (block[2], block[0])
            } else {
                (block[0], block[2])
            };
            dst[..4].copy_from_slice(&[r, block[1], b, one]);
        }
        Kind::Rgb16f => {
            dst[..6].copy_from_slice(&block[..6]);
            dst[6..8].copy_from_slice(&0x3C00u16.to_le_bytes());
        }
        Kind::Packed { layout } => layout.expand(block, dst),
        #[cfg(feature = "astc")]
        Kind::AstcHdr => {
            let input: [u8; 16] = block.try_into().unwrap_or([0; 16]);
            let mut texels = [[0u16; 4]; 144];
            super::astc::decode_block(&input, (bw, bh, 1), super::astc::Profile::Hdr, &mut texels);
            for y in 0..bh as usize {
                for x in 0..bw as usize {
                    let t = &texels[y * bw as usize + x];
                    let px = &mut dst[y * pitch + 8 * x..y * pitch + 8 * x + 8];
                    for c in 0..4 {
                        px[2 * c..2 * c + 2].copy_from_slice(&t[c].to_le_bytes());
                    }
                }
            }
        }
        #[cfg(feature = "astc")]
        Kind::Astc => {
            let input: [u8; 16] = block.try_into().unwrap_or([0; 16]);
            super::astc::decode_block_rgba8(&input, (bw, bh), dst, pitch);
        }
        // A family built out: `plan` refused its formats before any block.
        #[allow(unreachable_patterns)]
        _ => {}
    }
}

#[cfg(test)]
mod feature_tests {
    use super::*;

    /// Built without `etc2` (CI builds it so), an ETC2 image is a typed
    /// error naming the feature, not a panic or zeroed pixels.
    #[cfg(not(feature = "etc2"))]
    #[test]
    fn a_family_built_out_is_a_typed_error() {
        let err = decode(147, &[0u8; 8], 4, 4).expect_err("ETC2 is built out");
        assert_eq!(
            err,
            DecodeError::FeatureDisabled {
                vk_format: 147,
                feature: "etc2"
            }
        );
        assert!(err.to_string().contains("`etc2` feature"));
    }

    /// With every family built in, each block family decodes.
    #[cfg(all(feature = "bc", feature = "etc2", feature = "astc"))]
    #[test]
    fn every_family_is_built_in_by_default() {
        for vk in [131, 147, 157] {
            assert!(decode(vk, &[0u8; 16], 4, 4).is_ok(), "vkFormat {vk}");
        }
    }
}
