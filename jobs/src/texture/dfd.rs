//! The basic data format descriptor block (Khronos Data Format
//! Specification 1.3, section 5): parsed from a KTX2 file, and derived for a
//! `VkFormat` as the KTX2 specification requires a writer to describe it.
//!
//! [`BasicDfd::for_format`] is the descriptor a KTX2 file of that format must
//! carry: one sample per channel (little-endian, so no channel is split),
//! ordered from bit 0, the normalisation range of each channel in
//! `lower`/`upper` (the maximum code for UNORM, ±max for SNORM, 1 for integer
//! formats, ±1.0 as `f32` bits for float formats), and for block-compressed
//! formats the colour model's samples over the whole block. The validator
//! compares a file's samples field by field against it; tests compare it
//! against the descriptors that libktx wrote into the corpus's files.

/// A sample's qualifier bits, as stored in the top nibble of its
/// channel byte.
pub mod qualifier {
    /// The sample is linear even though the transfer function is not (the
    /// alpha of an sRGB format).
    pub const LINEAR: u8 = 0x10;
    /// The sample is the exponent of a shared-exponent format.
    pub const EXPONENT: u8 = 0x20;
    /// The sample is signed.
    pub const SIGNED: u8 = 0x40;
    /// The sample is a floating-point value.
    pub const FLOAT: u8 = 0x80;
}

/// One sample of a basic descriptor block (16 bytes in the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// The first bit of the sample in the texel block.
    pub bit_offset: u16,
    /// The number of bits, less one (as stored).
    pub bit_length: u8,
    /// The channel ID (low nibble) and the qualifier bits (high nibble).
    pub channel_type: u8,
    /// The sample's position in the texel block, each coordinate in
    /// 1/256ths of the block's dimension.
    pub position: [u8; 4],
    /// The value that maps to the bottom of the channel's range.
    pub lower: u32,
    /// The value that maps to the top of the channel's range.
    pub upper: u32,
}

impl Sample {
    /// The channel ID, without the qualifiers.
    pub fn channel(&self) -> u8 {
        self.channel_type & 0x0F
    }

    /// Whether qualifier `bit` (one of [`qualifier`]) is set.
    pub fn has(&self, bit: u8) -> bool {
        self.channel_type & bit != 0
    }
}

/// The fields of a basic descriptor block that a format determines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BasicDfd {
    /// `colorModel` (KHR_DF_MODEL_*).
    pub model: u8,
    /// `colorPrimaries` (KHR_DF_PRIMARIES_*).
    pub primaries: u8,
    /// `transferFunction` (KHR_DF_TRANSFER_*).
    pub transfer: u8,
    /// `flags` (bit 0: premultiplied alpha).
    pub flags: u8,
    /// `texelBlockDimension0..3`, each the dimension less one.
    pub block: [u8; 4],
    /// `bytesPlane0..7`.
    pub bytes_planes: [u8; 8],
    /// The samples.
    pub samples: Vec<Sample>,
}

/// The KHR_DF_MODEL_* values this module names.
pub mod model {
    /// Red, green, blue, stencil, depth, alpha.
    pub const RGBSDA: u8 = 1;
    /// Luma and colour differences (the 4:2:2 formats).
    pub const YUVSDA: u8 = 2;
    /// ETC1S (Basis Universal's BasisLZ).
    pub const ETC1S: u8 = 163;
    /// UASTC LDR 4x4.
    pub const UASTC: u8 = 166;
    /// UASTC HDR 4x4 (stored as `VK_FORMAT_ASTC_4x4_SFLOAT_BLOCK`).
    pub const UASTC_HDR_4X4: u8 = 167;
    /// UASTC HDR 6x6 intermediate (supercompression scheme 4).
    pub const UASTC_HDR_6X6: u8 = 168;
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Suffix {
    Unorm,
    Snorm,
    Uscaled,
    Sscaled,
    Uint,
    Sint,
    Sfloat,
    Ufloat,
    Srgb,
}

use Suffix::*;

const ALPHA: u8 = 15;
const DEPTH: u8 = 14;
const STENCIL: u8 = 13;
const ONE: u32 = 0x3F80_0000; // 1.0f32
const MINUS_ONE: u32 = 0xBF80_0000; // -1.0f32

impl Suffix {
    fn qualifiers(self, channel: u8) -> u8 {
        use qualifier::*;
        match self {
            Snorm | Sscaled | Sint => SIGNED,
            Sfloat => FLOAT | SIGNED,
            Ufloat => FLOAT,
            Srgb if channel == ALPHA => LINEAR,
            _ => 0,
        }
    }

    /// `lower` and `upper` of a whole channel of `bits` bits.
    fn range(self, bits: u32) -> (u32, u32) {
        let max = |b: u32| if b >= 32 { u32::MAX } else { (1u32 << b) - 1 };
        match self {
            Unorm | Srgb => (0, max(bits)),
            Snorm => {
                let upper = if bits > 32 {
                    i32::MAX as u32
                } else {
                    max(bits - 1)
                };
                (upper.wrapping_neg(), upper)
            }
            Uint | Uscaled => (0, 1),
            Sint | Sscaled => (u32::MAX, 1),
            Sfloat => (MINUS_ONE, ONE),
            Ufloat => (0, ONE),
        }
    }

    /// `lower` and `upper` of a compressed block's sample.
    fn block_range(self) -> (u32, u32) {
        match self {
            Snorm => (0x8000_0000, 0x7FFF_FFFF),
            Uint | Uscaled => (0, 1),
            Sint | Sscaled => (u32::MAX, 1),
            Sfloat => (MINUS_ONE, ONE),
            Ufloat => (0, ONE),
            Unorm | Srgb => (0, u32::MAX),
        }
    }
}

fn sample(channel: u8, bits: u32, offset: u32, suffix: Suffix) -> Sample {
    let (lower, upper) = suffix.range(bits);
    Sample {
        bit_offset: offset as u16,
        bit_length: (bits - 1) as u8,
        channel_type: channel | suffix.qualifiers(channel),
        position: [0; 4],
        lower,
        upper,
    }
}

fn header(model: u8, primaries: u8, suffix: Suffix, bytes: u32, samples: Vec<Sample>) -> BasicDfd {
    BasicDfd {
        model,
        primaries,
        transfer: if suffix == Srgb { 2 } else { 1 },
        flags: 0,
        block: [0; 4],
        bytes_planes: [bytes as u8, 0, 0, 0, 0, 0, 0, 0],
        samples,
    }
}

/// Channels of `bytes` bytes each, in memory order from bit 0.
fn unpacked(channels: &[u8], bytes: u32, suffix: Suffix) -> BasicDfd {
    let samples = channels
        .iter()
        .enumerate()
        .map(|(i, &c)| sample(c, 8 * bytes, 8 * bytes * i as u32, suffix))
        .collect();
    header(
        model::RGBSDA,
        1,
        suffix,
        bytes * channels.len() as u32,
        samples,
    )
}

/// Packed channels `(channel, bits, padding bits below it)` from bit 0.
fn packed(fields: &[(u8, u32, u32)], suffix: Suffix) -> BasicDfd {
    let mut offset = 0;
    let samples = fields
        .iter()
        .map(|&(c, bits, pad)| {
            offset += pad;
            let s = sample(c, bits, offset, suffix);
            offset += bits;
            s
        })
        .collect();
    header(model::RGBSDA, 1, suffix, offset / 8, samples)
}

fn depth_stencil(depth: u32, stencil: u32, bytes: u32) -> BasicDfd {
    let mut samples = Vec::new();
    if depth == 24 && stencil == 8 {
        // D24_UNORM_S8_UINT keeps stencil in the low byte.
        samples.push(sample(STENCIL, 8, 0, Uint));
        samples.push(sample(DEPTH, 24, 8, Unorm));
    } else {
        if depth > 0 {
            let suffix = if depth == 32 { Sfloat } else { Unorm };
            samples.push(sample(DEPTH, depth, 0, suffix));
        }
        if stencil > 0 {
            samples.push(sample(STENCIL, stencil, depth, Uint));
        }
    }
    header(model::RGBSDA, 0, Unorm, bytes, samples)
}

/// A block-compressed format: `model`, the block, its bytes, and the samples
/// `(channel, bit offset)` each `bits` long.
fn compressed(
    model: u8,
    block: [u32; 3],
    bytes: u32,
    bits: u32,
    samples: &[(u8, u32)],
    suffix: Suffix,
) -> BasicDfd {
    let (lower, upper) = suffix.block_range();
    let samples = samples
        .iter()
        .map(|&(c, offset)| Sample {
            bit_offset: offset as u16,
            bit_length: (bits - 1) as u8,
            channel_type: c | suffix.qualifiers(c),
            position: [0; 4],
            lower,
            upper,
        })
        .collect();
    let mut d = header(model, 1, suffix, bytes, samples);
    d.block = [
        (block[0] - 1) as u8,
        (block[1] - 1) as u8,
        (block[2] - 1) as u8,
        0,
    ];
    d
}

/// A 4:2:2 format: samples `(channel, x position)` of `bits` bits with
/// `pad` padding bits below each.
fn yuv422(samples: [(u8, u8); 4], bits: u32, pad: u32) -> BasicDfd {
    let mut offset = 0;
    let samples = samples
        .iter()
        .map(|&(c, x)| {
            offset += pad;
            let s = Sample {
                bit_offset: offset as u16,
                bit_length: (bits - 1) as u8,
                channel_type: c,
                position: [x, 128, 0, 0],
                lower: 0,
                upper: (1u32 << bits) - 1,
            };
            offset += bits;
            s
        })
        .collect();
    let mut d = header(model::YUVSDA, 0, Unorm, offset / 8, samples);
    d.block = [1, 0, 0, 0];
    d
}

const SUFFIXES_8: [Suffix; 7] = [Unorm, Snorm, Uscaled, Sscaled, Uint, Sint, Srgb];
const SUFFIXES_16: [Suffix; 7] = [Unorm, Snorm, Uscaled, Sscaled, Uint, Sint, Sfloat];
const SUFFIXES_32: [Suffix; 3] = [Uint, Sint, Sfloat];
const RGBA: [u8; 4] = [0, 1, 2, ALPHA];
const BGRA: [u8; 4] = [2, 1, 0, ALPHA];
/// G, B, G, R and B, G, R, G with the chroma sited between the two texels.
const GBGR: [(u8, u8); 4] = [(0, 64), (1, 64), (0, 192), (2, 64)];
const BGRG: [(u8, u8); 4] = [(1, 64), (0, 64), (2, 64), (0, 192)];

impl BasicDfd {
    /// The descriptor a KTX2 file of `vk_format` must carry; `None` for
    /// `VK_FORMAT_UNDEFINED`, prohibited formats and formats this crate does
    /// not know.
    pub fn for_format(vk: u32) -> Option<BasicDfd> {
        let suffix8 = |base: u32| SUFFIXES_8[(vk - base) as usize];
        let srgb_pair = |base: u32| {
            if (vk - base).is_multiple_of(2) {
                Unorm
            } else {
                Srgb
            }
        };
        let snorm_pair = |base: u32| {
            if (vk - base).is_multiple_of(2) {
                Unorm
            } else {
                Snorm
            }
        };
        if super::findings::is_prohibited(vk) {
            return None;
        }
        Some(match vk {
            1 => packed(&[(1, 4, 0), (0, 4, 0)], Unorm),
            2 => packed(&[(ALPHA, 4, 0), (2, 4, 0), (1, 4, 0), (0, 4, 0)], Unorm),
            3 => packed(&[(ALPHA, 4, 0), (0, 4, 0), (1, 4, 0), (2, 4, 0)], Unorm),
            4 => packed(&[(2, 5, 0), (1, 6, 0), (0, 5, 0)], Unorm),
            5 => packed(&[(0, 5, 0), (1, 6, 0), (2, 5, 0)], Unorm),
            6 => packed(&[(ALPHA, 1, 0), (2, 5, 0), (1, 5, 0), (0, 5, 0)], Unorm),
            7 => packed(&[(ALPHA, 1, 0), (0, 5, 0), (1, 5, 0), (2, 5, 0)], Unorm),
            8 => packed(&[(2, 5, 0), (1, 5, 0), (0, 5, 0), (ALPHA, 1, 0)], Unorm),
            9..=15 => unpacked(&RGBA[..1], 1, suffix8(9)),
            16..=22 => unpacked(&RGBA[..2], 1, suffix8(16)),
            23..=29 => unpacked(&RGBA[..3], 1, suffix8(23)),
            30..=36 => unpacked(&BGRA[..3], 1, suffix8(30)),
            37..=43 => unpacked(&RGBA, 1, suffix8(37)),
            44..=50 => unpacked(&BGRA, 1, suffix8(44)),
            // 51..=57 (A8B8G8R8_*_PACK32) are prohibited: returned above.
            58..=63 => packed(
                &[(2, 10, 0), (1, 10, 0), (0, 10, 0), (ALPHA, 2, 0)],
                SUFFIXES_8[(vk - 58) as usize],
            ),
            64..=69 => packed(
                &[(0, 10, 0), (1, 10, 0), (2, 10, 0), (ALPHA, 2, 0)],
                SUFFIXES_8[(vk - 64) as usize],
            ),
            70..=97 => {
                let i = (vk - 70) as usize;
                unpacked(&RGBA[..i / 7 + 1], 2, SUFFIXES_16[i % 7])
            }
            98..=121 => {
                let i = (vk - 98) as usize;
                let bytes = if vk < 110 { 4 } else { 8 };
                let i = i % 12;
                unpacked(&RGBA[..i / 3 + 1], bytes, SUFFIXES_32[i % 3])
            }
            122 => packed(&[(0, 11, 0), (1, 11, 0), (2, 10, 0)], Ufloat),
            123 => {
                // Three 9-bit mantissas, each followed by the shared 5-bit
                // exponent (bias 15) as its own sample.
                let mut samples = Vec::new();
                for c in 0..3u8 {
                    let mut m = sample(c, 9, 9 * u32::from(c), Unorm);
                    m.upper = 8448;
                    let mut e = sample(c | qualifier::EXPONENT, 5, 27, Unorm);
                    e.lower = 15;
                    e.upper = 31;
                    samples.extend([m, e]);
                }
                header(model::RGBSDA, 1, Ufloat, 4, samples)
            }
            124 => depth_stencil(16, 0, 2),
            125 => depth_stencil(24, 0, 4),
            126 => depth_stencil(32, 0, 4),
            127 => depth_stencil(0, 8, 1),
            128 => depth_stencil(16, 8, super::format::info(vk)?.bytes),
            129 => depth_stencil(24, 8, 4),
            130 => depth_stencil(32, 8, 8),
            131 | 132 => compressed(128, [4, 4, 1], 8, 64, &[(0, 0)], srgb_pair(131)),
            133 | 134 => compressed(128, [4, 4, 1], 8, 64, &[(1, 0)], srgb_pair(133)),
            135 | 136 => compressed(
                129,
                [4, 4, 1],
                16,
                64,
                &[(ALPHA, 0), (0, 64)],
                srgb_pair(135),
            ),
            137 | 138 => compressed(
                130,
                [4, 4, 1],
                16,
                64,
                &[(ALPHA, 0), (0, 64)],
                srgb_pair(137),
            ),
            139 | 140 => compressed(131, [4, 4, 1], 8, 64, &[(0, 0)], snorm_pair(139)),
            141 | 142 => compressed(132, [4, 4, 1], 16, 64, &[(0, 0), (1, 64)], snorm_pair(141)),
            143 => compressed(133, [4, 4, 1], 16, 128, &[(0, 0)], Ufloat),
            144 => compressed(133, [4, 4, 1], 16, 128, &[(0, 0)], Sfloat),
            145 | 146 => compressed(134, [4, 4, 1], 16, 128, &[(0, 0)], srgb_pair(145)),
            147 | 148 => compressed(161, [4, 4, 1], 8, 64, &[(2, 0)], srgb_pair(147)),
            149 | 150 => compressed(161, [4, 4, 1], 8, 64, &[(2, 0), (ALPHA, 0)], srgb_pair(149)),
            151 | 152 => compressed(
                161,
                [4, 4, 1],
                16,
                64,
                &[(ALPHA, 0), (2, 64)],
                srgb_pair(151),
            ),
            153 | 154 => compressed(161, [4, 4, 1], 8, 64, &[(0, 0)], snorm_pair(153)),
            155 | 156 => compressed(161, [4, 4, 1], 16, 64, &[(0, 0), (1, 64)], snorm_pair(155)),
            157..=184 | 1_000_066_000..=1_000_066_013 | 1_000_288_000..=1_000_288_029 => {
                let suffix = match vk {
                    157..=184 => srgb_pair(157),
                    1_000_066_000..=1_000_066_013 => Sfloat,
                    _ => [Unorm, Srgb, Sfloat][((vk - 1_000_288_000) % 3) as usize],
                };
                let block = super::format::info(vk)?.block;
                compressed(162, block, 16, 128, &[(0, 0)], suffix)
            }
            1_000_054_000..=1_000_054_007 => {
                let i = vk - 1_000_054_000;
                let model = if i % 4 < 2 { 164 } else { 165 };
                let block = super::format::info(vk)?.block;
                let suffix = if i < 4 { Unorm } else { Srgb };
                compressed(model, block, 8, 64, &[(0, 0)], suffix)
            }
            1_000_156_000 => yuv422(GBGR, 8, 0),
            1_000_156_001 => yuv422(BGRG, 8, 0),
            1_000_156_010 => yuv422(GBGR, 10, 6),
            1_000_156_011 => yuv422(BGRG, 10, 6),
            1_000_156_020 => yuv422(GBGR, 12, 4),
            1_000_156_021 => yuv422(BGRG, 12, 4),
            1_000_156_027 => yuv422(GBGR, 16, 0),
            1_000_156_028 => yuv422(BGRG, 16, 0),
            1_000_156_007..=1_000_156_009 | 1_000_156_017..=1_000_156_019 => {
                let (bits, pad, base) = if vk < 1_000_156_017 {
                    (10, 6, 1_000_156_007)
                } else {
                    (12, 4, 1_000_156_017)
                };
                let channels = [1, 2, 4][(vk - base) as usize];
                let f: Vec<_> = RGBA[..channels].iter().map(|&c| (c, bits, pad)).collect();
                packed(&f, Unorm)
            }
            1_000_340_000 => packed(&[(2, 4, 0), (1, 4, 0), (0, 4, 0), (ALPHA, 4, 0)], Unorm),
            1_000_340_001 => packed(&[(0, 4, 0), (1, 4, 0), (2, 4, 0), (ALPHA, 4, 0)], Unorm),
            1_000_470_000 => packed(&[(0, 5, 0), (1, 5, 0), (2, 5, 0), (ALPHA, 1, 0)], Unorm),
            1_000_470_001 => unpacked(&[ALPHA], 1, Unorm),
            _ => return None,
        })
    }

    /// The descriptor of UASTC HDR 4x4 blocks, which a KTX2 file stores
    /// under `VK_FORMAT_ASTC_4x4_SFLOAT_BLOCK` (every UASTC HDR 4x4 block is
    /// an ASTC HDR block) with colour model UASTC_HDR_4X4 (167), as
    /// KTX-Software 4.4 and Basis Universal 2 write it: one unsigned float
    /// sample of the whole block, from 0 to 1.0.
    pub fn uastc_hdr_4x4() -> BasicDfd {
        let mut d = compressed(model::UASTC_HDR_4X4, [4, 4, 1], 16, 128, &[(0, 0)], Ufloat);
        d.transfer = 1;
        d
    }

    /// The basic block at the start of `block` (the descriptor after
    /// `dfdTotalSize`): `None` if it is shorter than its 24-byte header.
    /// Samples are read as far as `descriptorBlockSize` and the bytes allow.
    pub fn parse(block: &[u8]) -> Option<BasicDfd> {
        let head = block.get(..24)?;
        let size = usize::from(u16::from_le_bytes([head[6], head[7]]));
        let end = size.min(block.len());
        let samples = block
            .get(24..end.max(24))?
            .chunks_exact(16)
            .map(|s| Sample {
                bit_offset: u16::from_le_bytes([s[0], s[1]]),
                bit_length: s[2],
                channel_type: s[3],
                position: [s[4], s[5], s[6], s[7]],
                lower: u32::from_le_bytes([s[8], s[9], s[10], s[11]]),
                upper: u32::from_le_bytes([s[12], s[13], s[14], s[15]]),
            })
            .collect();
        Some(BasicDfd {
            model: head[8],
            primaries: head[9],
            transfer: head[10],
            flags: head[11],
            block: [head[12], head[13], head[14], head[15]],
            bytes_planes: head[16..24].try_into().expect("8 bytes"),
            samples,
        })
    }

    /// The whole data format descriptor as a KTX2 file stores it:
    /// `dfdTotalSize`, then this basic block.
    pub fn to_bytes(&self) -> Vec<u8> {
        let block_size = 24 + 16 * self.samples.len();
        let mut d = Vec::with_capacity(4 + block_size);
        d.extend(((4 + block_size) as u32).to_le_bytes());
        d.extend(0u32.to_le_bytes()); // Khronos, basic block
        d.extend(2u16.to_le_bytes()); // KHR_DF_VERSIONNUMBER_1_3
        d.extend((block_size as u16).to_le_bytes());
        d.extend([self.model, self.primaries, self.transfer, self.flags]);
        d.extend(self.block);
        d.extend(self.bytes_planes);
        for s in &self.samples {
            d.extend(s.bit_offset.to_le_bytes());
            d.extend([s.bit_length, s.channel_type]);
            d.extend(s.position);
            d.extend(s.lower.to_le_bytes());
            d.extend(s.upper.to_le_bytes());
        }
        d
    }
}

/// Whether `channel` is a channel ID that colour `model` defines (any of
/// 0-15 for the unspecified model; `true` for models this list does not
/// know, whose channels the specification leaves to the model).
pub fn is_channel_valid(model: u8, channel: u8) -> bool {
    let ids: &[u8] = match model {
        0 => return channel <= 15,
        1..=4 | 12 | 13 => &[0, 1, 2, 13, 14, 15],
        5 => &[0, 1, 2, 3, 15],
        6 => &[0, 1, 2, 3],
        7..=11 => &[0, 1, 2, 15],
        14 | 15 => &[0, 1, 2],
        128 => &[0, 1],
        129 | 130 => &[0, 15],
        131 | 133 | 134 | 160 | 164 | 165 => &[0],
        132 => &[0, 1],
        161 => &[0, 1, 2, 15],
        162 => &[0, 3],
        163 => &[0, 3, 4, 15],
        166 => &[0, 3, 4, 5, 6],
        167 | 168 => &[0],
        _ => return true,
    };
    ids.contains(&channel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rgba8_srgb_has_a_linear_alpha() {
        let d = BasicDfd::for_format(43).unwrap();
        assert_eq!(d.transfer, 2);
        assert_eq!(d.bytes_planes[0], 4);
        assert_eq!(d.samples.len(), 4);
        assert_eq!(d.samples[3].channel_type, ALPHA | qualifier::LINEAR);
        assert_eq!(d.samples[2].bit_offset, 16);
        assert_eq!((d.samples[0].lower, d.samples[0].upper), (0, 255));
    }

    #[test]
    fn snorm_and_integer_ranges() {
        let s = BasicDfd::for_format(10).unwrap().samples[0]; // R8_SNORM
        assert_eq!((s.lower, s.upper), (0xFFFF_FF81, 0x7F));
        assert!(s.has(qualifier::SIGNED));
        let s = BasicDfd::for_format(14).unwrap().samples[0]; // R8_SINT
        assert_eq!((s.lower, s.upper), (u32::MAX, 1));
        let s = BasicDfd::for_format(109).unwrap().samples[3]; // RGBA32F
        assert_eq!((s.lower, s.upper, s.bit_offset), (MINUS_ONE, ONE, 96));
    }

    #[test]
    fn packed_formats_start_at_bit_zero() {
        let d = BasicDfd::for_format(4).unwrap(); // R5G6B5: blue in the low bits
        let fields: Vec<_> = d
            .samples
            .iter()
            .map(|s| (s.channel(), s.bit_offset, s.bit_length + 1))
            .collect();
        assert_eq!(fields, [(2, 0, 5), (1, 5, 6), (0, 11, 5)]);
        assert_eq!(d.bytes_planes[0], 2);
        let d = BasicDfd::for_format(1_000_156_009).unwrap(); // R10X6G10X6B10X6A10X6
        let offsets: Vec<_> = d.samples.iter().map(|s| s.bit_offset).collect();
        assert_eq!(offsets, [6, 22, 38, 54]);
        assert_eq!(d.bytes_planes[0], 8);
    }

    #[test]
    fn every_known_format_matches_its_texel_block() {
        let known = (1..=184)
            .chain(1_000_054_000..=1_000_054_007)
            .chain(1_000_066_000..=1_000_066_013)
            .chain(1_000_156_000..=1_000_156_033)
            .chain(1_000_288_000..=1_000_288_029)
            .chain(1_000_340_000..=1_000_340_001)
            .chain(1_000_470_000..=1_000_470_001);
        let mut described = 0;
        for vk in known {
            let Some(info) = crate::texture::format::info(vk) else {
                continue;
            };
            if super::super::findings::is_prohibited(vk) {
                assert!(BasicDfd::for_format(vk).is_none(), "{vk}");
                continue;
            }
            let d = BasicDfd::for_format(vk).unwrap_or_else(|| panic!("no DFD for {vk}"));
            described += 1;
            assert_eq!(u32::from(d.bytes_planes[0]), info.bytes, "bytes of {vk}");
            let block: Vec<u32> = d.block[..3].iter().map(|&b| u32::from(b) + 1).collect();
            assert_eq!(block, info.block, "block of {vk}");
            let bits: u32 = d
                .samples
                .iter()
                .filter(|s| !s.has(qualifier::EXPONENT))
                .map(|s| u32::from(s.bit_offset) + u32::from(s.bit_length) + 1)
                .max()
                .unwrap();
            assert!(bits <= 8 * info.bytes, "samples of {vk} past its block");
            // Round trip through the file layout.
            let bytes = d.to_bytes();
            assert_eq!(BasicDfd::parse(&bytes[4..]).as_ref(), Some(&d));
            for s in &d.samples {
                assert!(is_channel_valid(d.model, s.channel()), "{vk}: {s:?}");
            }
        }
        assert!(described > 200, "{described}");
    }
}
