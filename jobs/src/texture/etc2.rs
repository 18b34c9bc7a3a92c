//! ETC2 RGB, RGBA1 (punch-through alpha) and RGBA8 (ETC2 colour with an
//! EAC alpha block) decoded straight to RGBA8, and EAC R11 and RG11 to R8
//! and RG8 (unorm or snorm): the formats the CPU fallback uploads them as.
//!
//! The algorithm is the one of the Khronos Data Format Specification's ETC2
//! chapter, as the Khronos conformance tests' reference decoder implements
//! it. The tests compare it bit for bit with texture2ddecoder (BGRA there),
//! save the transparent texels of punch-through blocks, which the
//! specification makes black (all four channels 0: premultiplied, so that
//! filtering does not bleed their colour) and texture2ddecoder leaves
//! coloured. Each block is decoded as a palette and a lookup per texel:
//!
//! - Colour: the individual and differential modes give 4 colours for each
//!   of the two sub-blocks (8 in all) and a mask of the texels of sub-block
//!   1; the T and H modes give 4 colours for the whole block. A texel's
//!   palette entry is its two index bits (plus 4 in sub-block 1). The planar
//!   mode has no palette: its texels are a gradient, computed each.
//! - Alpha: 8 values from the base, the multiplier and the modifier table;
//!   a texel's entry is its 3-bit index.
//!
//! - EAC R11/RG11: the same alpha-style block at 11 bits, each channel's 8
//!   values computed once and narrowed to 8 bits (the top 8 of the 11).
//!
//! Texels are numbered column-major in ETC (texel `x * 4 + y`), so each
//! output row gathers every fourth index bit. Index bits are big-endian in
//! every ETC block: texture2ddecoder 0.1.2 reads EAC R11/RG11 blocks
//! little-endian (its C++ original does not), which is why forgeflow decodes
//! EAC itself; the reference test compares with that C++ original.

use super::block_rows::write_rows;

/// The ETC1 modifier tables: the two magnitudes of each codeword.
const MODIFIERS: [[i32; 2]; 8] = [
    [2, 8],
    [5, 17],
    [9, 29],
    [13, 42],
    [18, 60],
    [24, 80],
    [33, 106],
    [47, 183],
];

/// The T and H modes' distances.
const DISTANCES: [i32; 8] = [3, 6, 11, 16, 23, 32, 41, 64];

/// The EAC modifier tables.
#[rustfmt::skip]
const ALPHA_MODIFIERS: [[i32; 8]; 16] = [
    [-3, -6, -9, -15, 2, 5, 8, 14], [-3, -7, -10, -13, 2, 6, 9, 12],
    [-2, -5, -8, -13, 1, 4, 7, 12], [-2, -4, -6, -13, 1, 3, 5, 12],
    [-3, -6, -8, -12, 2, 5, 7, 11], [-3, -7, -9, -11, 2, 6, 8, 10],
    [-4, -7, -8, -11, 3, 6, 7, 10], [-3, -5, -8, -11, 2, 4, 7, 10],
    [-2, -6, -8, -10, 1, 5, 7, 9], [-2, -5, -8, -10, 1, 4, 7, 9],
    [-2, -4, -8, -10, 1, 3, 7, 9], [-2, -5, -7, -10, 1, 4, 6, 9],
    [-3, -4, -7, -10, 2, 3, 6, 9], [-1, -2, -3, -10, 0, 1, 2, 9],
    [-4, -6, -8, -9, 3, 5, 7, 8], [-3, -5, -7, -9, 2, 4, 6, 8],
];

/// Decodes one ETC2 RGB block (8 bytes), or one ETC2 RGBA8 block (16 bytes:
/// the EAC alpha block, then the colour block) when `with_alpha`, into 4
/// rows of 4 RGBA8 texels at `dst`, rows `pitch` bytes apart.
#[inline(always)]
pub(crate) fn decode_block(block: &[u8], with_alpha: bool, dst: &mut [u8], pitch: usize) {
    let (alpha, colour) = if with_alpha {
        (Some(alpha_palette(&block[..8])), &block[8..16])
    } else {
        (None, &block[..8])
    };
    let colour: &[u8; 8] = colour.try_into().expect("an 8-byte colour block");
    let indices = u32::from_be_bytes([colour[4], colour[5], colour[6], colour[7]]);
    // Alpha 255 in every colour entry unless an alpha block replaces it.
    let opaque = if alpha.is_some() { 0 } else { 0xFF00_0000 };
    let texel_alpha = |p: usize| match alpha {
        Some((palette, bits)) => palette[(bits >> (45 - 3 * p) & 7) as usize],
        None => 0,
    };
    match colour_palette(colour, false) {
        Colours::Palette(palette, sub_block_1) => write_rows(dst, pitch, |x, y| {
            let p = 4 * x + y;
            let index = (indices >> (16 + p) & 1) << 1 | indices >> p & 1;
            let entry = index as usize + 4 * (sub_block_1 >> p & 1) as usize;
            palette[entry] | opaque | texel_alpha(p)
        }),
        Colours::Planar(o, h, v) => write_rows(dst, pitch, |x, y| {
            let p = 4 * x + y;
            planar_texel(o, h, v, p) | opaque | texel_alpha(p)
        }),
    }
}

/// Decodes one ETC2 RGBA1 (punch-through alpha) block (8 bytes) into 4
/// rows of 4 RGBA8 texels. In a block whose opaque flag is clear, texels of
/// index 2 (outside the planar mode) are transparent black: all four
/// channels 0.
#[inline(always)]
pub(crate) fn decode_punch_through_block(block: &[u8], dst: &mut [u8], pitch: usize) {
    let colour: &[u8; 8] = block[..8].try_into().expect("an 8-byte block");
    let indices = u32::from_be_bytes([colour[4], colour[5], colour[6], colour[7]]);
    let see_through = colour[3] & 2 == 0;
    match colour_palette(colour, true) {
        Colours::Palette(palette, sub_block_1) => write_rows(dst, pitch, |x, y| {
            let p = 4 * x + y;
            let index = (indices >> (16 + p) & 1) << 1 | indices >> p & 1;
            let entry = index as usize + 4 * (sub_block_1 >> p & 1) as usize;
            if see_through && index == 2 {
                0
            } else {
                palette[entry] | 0xFF00_0000
            }
        }),
        Colours::Planar(o, h, v) => write_rows(dst, pitch, |x, y| {
            planar_texel(o, h, v, 4 * x + y) | 0xFF00_0000
        }),
    }
}

/// Texel `p` of a planar block: the gradient from the origin `o` through
/// the horizontal `h` and vertical `v` colours.
#[inline(always)]
fn planar_texel(o: [i32; 3], h: [i32; 3], v: [i32; 3], p: usize) -> u32 {
    let (x, y) = ((p / 4) as i32, (p % 4) as i32);
    let channel = |c: usize| clamp((x * (h[c] - o[c]) + y * (v[c] - o[c]) + 4 * o[c] + 2) >> 2);
    rgb(channel(0), channel(1), channel(2))
}

/// A colour block's colours.
enum Colours {
    /// 8 RGB entries (alpha 0) and the mask of texels (by ETC number) that
    /// take theirs from the second four.
    Palette([u32; 8], u16),
    /// The planar mode's origin, horizontal and vertical colours (8 bits a
    /// channel).
    Planar([i32; 3], [i32; 3], [i32; 3]),
}

#[inline(always)]
fn rgb(r: u8, g: u8, b: u8) -> u32 {
    u32::from(r) | u32::from(g) << 8 | u32::from(b) << 16
}

#[inline(always)]
fn clamp(v: i32) -> u8 {
    v.clamp(0, 255) as u8
}

/// `c` moved by `d` on every channel, clamped.
#[inline(always)]
fn shifted(c: [i32; 3], d: i32) -> u32 {
    rgb(clamp(c[0] + d), clamp(c[1] + d), clamp(c[2] + d))
}

/// 4-bit channels to 8 bits.
#[inline(always)]
fn from4(v: u8) -> i32 {
    i32::from(v & 15) * 17
}

/// The colours of a colour block; `punch_through` for the RGBA1 format,
/// whose bit 1 of byte 3 is the opaque flag instead of the differential one
/// (there is no individual mode) and whose non-opaque blocks use a small
/// modifier of 0 (their index 2, the transparent texel, is the caller's).
#[inline(always)]
fn colour_palette(d: &[u8; 8], punch_through: bool) -> Colours {
    let flip = d[3] & 1 != 0;
    let codes = [usize::from(d[3] >> 5), usize::from(d[3] >> 2 & 7)];
    let small_is_zero = punch_through && d[3] & 2 == 0;
    let bases = if d[3] & 2 == 0 && !punch_through {
        // Individual: two 4-bit colours.
        [
            [from4(d[0] >> 4), from4(d[1] >> 4), from4(d[2] >> 4)],
            [from4(d[0]), from4(d[1]), from4(d[2])],
        ]
    } else {
        // Differential: a 5-bit colour and a 3-bit signed delta per channel;
        // a delta that leaves the 5-bit range selects T, H or planar.
        let base = |b: u8| i32::from(b >> 3);
        let delta = |b: u8| i32::from((b as i8) << 5 >> 5);
        let (r, g, b) = (base(d[0]), base(d[1]), base(d[2]));
        let (r2, g2, b2) = (r + delta(d[0]), g + delta(d[1]), b + delta(d[2]));
        if !(0..32).contains(&r2) {
            return t_mode(d);
        }
        if !(0..32).contains(&g2) {
            return h_mode(d);
        }
        if !(0..32).contains(&b2) {
            return planar(d);
        }
        let from5 = |v: i32| v << 3 | v >> 2;
        [
            [from5(r), from5(g), from5(b)],
            [from5(r2), from5(g2), from5(b2)],
        ]
    };
    let mut palette = [0u32; 8];
    for s in 0..2 {
        let [small, large] = MODIFIERS[codes[s]];
        let small = if small_is_zero { 0 } else { small };
        // Index (MSB, LSB): 0 = +small, 1 = +large, 2 = -small, 3 = -large.
        for (i, m) in [small, large, -small, -large].into_iter().enumerate() {
            palette[4 * s + i] = shifted(bases[s], m);
        }
    }
    // Sub-block 1 is the right half (texels 8..16) unflipped, the bottom
    // half (rows 2 and 3 of each column) flipped.
    Colours::Palette(palette, if flip { 0xCCCC } else { 0xFF00 })
}

/// The T mode: a colour, and a second colour moved by a distance both ways.
#[inline(always)]
fn t_mode(d: &[u8; 8]) -> Colours {
    let c0 = [
        from4((d[0] >> 1 & 0xC) | (d[0] & 3)),
        from4(d[1] >> 4),
        from4(d[1]),
    ];
    let c1 = [from4(d[2] >> 4), from4(d[2]), from4(d[3] >> 4)];
    let dist = DISTANCES[usize::from((d[3] >> 1 & 6) | (d[3] & 1))];
    let palette = [
        shifted(c0, 0),
        shifted(c1, dist),
        shifted(c1, 0),
        shifted(c1, -dist),
    ];
    Colours::Palette(
        [palette[0], palette[1], palette[2], palette[3], 0, 0, 0, 0],
        0,
    )
}

/// The H mode: two colours, each moved by a distance both ways; the
/// distance's lowest bit is the order of the two colours.
#[inline(always)]
fn h_mode(d: &[u8; 8]) -> Colours {
    let c0 = [
        from4(d[0] >> 3),
        from4((d[0] << 1 & 0xE) | (d[1] >> 4 & 1)),
        from4((d[1] & 8) | (d[1] << 1 & 6) | d[2] >> 7),
    ];
    let c1 = [
        from4(d[2] >> 3),
        from4((d[2] << 1 & 0xE) | d[3] >> 7),
        from4(d[3] >> 3),
    ];
    let packed = |c: [i32; 3]| c[0] << 16 | c[1] << 8 | c[2];
    let low_bit = usize::from(packed(c0) >= packed(c1));
    let dist = DISTANCES[usize::from((d[3] & 4) | (d[3] << 1 & 2)) | low_bit];
    let palette = [
        shifted(c0, dist),
        shifted(c0, -dist),
        shifted(c1, dist),
        shifted(c1, -dist),
    ];
    Colours::Palette(
        [palette[0], palette[1], palette[2], palette[3], 0, 0, 0, 0],
        0,
    )
}

/// The planar mode: origin, horizontal and vertical colours (RGB 676).
#[inline(always)]
fn planar(d: &[u8; 8]) -> Colours {
    let from6 = |v: u8| i32::from(v << 2 | v >> 4);
    let from7 = |v: u8| i32::from(v << 1 | v >> 6);
    let o = [
        from6(d[0] >> 1 & 0x3F),
        from7((d[0] & 1) << 6 | (d[1] >> 1 & 0x3F)),
        from6((d[1] & 1) << 5 | (d[2] & 0x18) | (d[2] << 1 & 6) | d[3] >> 7),
    ];
    let h = [
        from6((d[3] >> 1 & 0x3E) | (d[3] & 1)),
        from7(d[4] >> 1),
        from6((d[4] & 1) << 5 | d[5] >> 3),
    ];
    let v = [
        from6((d[5] & 7) << 3 | d[6] >> 5),
        from7((d[6] & 0x1F) << 2 | d[7] >> 6),
        from6(d[7] & 0x3F),
    ];
    Colours::Planar(o, h, v)
}

/// An EAC alpha block's 8 alpha values (in the top byte of a texel) and its
/// 48 index bits (texel `p`'s at bit `45 - 3p`).
#[inline(always)]
fn alpha_palette(a: &[u8]) -> ([u32; 8], u64) {
    let bits = u64::from_be_bytes(a[..8].try_into().expect("an 8-byte alpha block"));
    let base = i32::from(a[0]);
    let multiplier = i32::from(a[1] >> 4);
    let table = ALPHA_MODIFIERS[usize::from(a[1] & 15)];
    let palette = table.map(|m| u32::from(clamp(base + multiplier * m)) << 24);
    (palette, bits)
}

/// Decodes one EAC R11 block (8 bytes) into 4 rows of 4 R8 texels at
/// `dst` (unorm, or snorm when `signed`), rows `pitch` bytes apart.
#[inline(always)]
pub(crate) fn decode_eac_r(block: &[u8], signed: bool, dst: &mut [u8], pitch: usize) {
    let (values, bits) = eac_channel(block, signed);
    write_rows(dst, pitch, |x, y| {
        values[(bits >> (45 - 3 * (4 * x + y)) & 7) as usize]
    });
}

/// Decodes one EAC RG11 block (16 bytes: red's block, then green's) into 4
/// rows of 4 RG8 texels.
#[inline(always)]
pub(crate) fn decode_eac_rg(block: &[u8], signed: bool, dst: &mut [u8], pitch: usize) {
    let (red, red_bits) = eac_channel(&block[..8], signed);
    let (green, green_bits) = eac_channel(&block[8..16], signed);
    write_rows(dst, pitch, |x, y| {
        let shift = 45 - 3 * (4 * x + y);
        let r = red[(red_bits >> shift & 7) as usize];
        let g = green[(green_bits >> shift & 7) as usize];
        u16::from_le_bytes([r, g])
    });
}

/// An EAC R11 channel block's 8 values as output bytes (unorm, or snorm in
/// two's complement) and its 48 index bits (texel `p`'s at bit `45 - 3p`).
///
/// The 11-bit value is `base * 8 + 4 + modifier * multiplier * 8` unsigned,
/// `base * 8 + modifier * multiplier * 8` signed (base -128 reads as -127),
/// a multiplier of 0 counting as 1/8; clamped to 0..=2047 or -1023..=1023.
/// The output keeps its top 8 bits (an arithmetic shift, so signed values
/// stay within -128..=127; -128 is then -127, the symmetric range).
#[inline(always)]
fn eac_channel(block: &[u8], signed: bool) -> ([u8; 8], u64) {
    let bits = u64::from_be_bytes(block[..8].try_into().expect("an 8-byte block"));
    let multiplier = match i32::from(block[1] >> 4) {
        0 => 1,
        m => m * 8,
    };
    let table = ALPHA_MODIFIERS[usize::from(block[1] & 15)];
    let values = if signed {
        let base = i32::from(block[0] as i8).max(-127);
        table.map(|m| {
            let v = (base * 8 + multiplier * m).clamp(-1023, 1023);
            (v >> 3).max(-127) as i8 as u8
        })
    } else {
        let base = i32::from(block[0]);
        table.map(|m| ((base * 8 + 4 + multiplier * m).clamp(0, 2047) >> 3) as u8)
    };
    (values, bits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use forgeflow_test_support::SplitMix64;

    fn random_block(rng: &mut SplitMix64) -> [u8; 16] {
        let mut block = [0u8; 16];
        for b in block.chunks_exact_mut(8) {
            b.copy_from_slice(&rng.next_u64().to_le_bytes());
        }
        block
    }

    /// texture2ddecoder's block as RGBA8 rows.
    fn reference(block: &[u8], with_alpha: bool) -> [u8; 64] {
        let mut bgra = [0u32; 16];
        if with_alpha {
            texture2ddecoder::decode_etc2_rgba8_block(block, &mut bgra);
        } else {
            texture2ddecoder::decode_etc2_rgb_block(block, &mut bgra);
        }
        let mut rgba = [0u8; 64];
        for (out, p) in rgba.chunks_exact_mut(4).zip(bgra) {
            let [b, g, r, a] = p.to_le_bytes();
            out.copy_from_slice(&[r, g, b, a]);
        }
        rgba
    }

    /// Bit for bit what texture2ddecoder decodes, over random blocks: every
    /// mode (individual, differential, T, H, planar; flipped or not), with
    /// and without an alpha block.
    #[test]
    fn random_blocks_decode_as_texture2ddecoder_does() {
        let mut rng = SplitMix64::new(7);
        let mut modes = [0u32; 5];
        for n in 0..200_000 {
            let block = random_block(&mut rng);
            let with_alpha = n % 2 == 1;
            let colour: &[u8; 8] = block[if with_alpha { 8 } else { 0 }..][..8]
                .try_into()
                .unwrap();
            modes[match colour_palette(colour, false) {
                Colours::Planar(..) => 4,
                Colours::Palette(_, 0) => 3,
                Colours::Palette(..) if colour[3] & 2 == 0 => 0,
                Colours::Palette(..) => 1 + usize::from(colour[3] & 1),
            }] += 1;
            let mut ours = [0u8; 64];
            decode_block(&block, with_alpha, &mut ours, 16);
            assert_eq!(ours, reference(&block, with_alpha), "block {block:02x?}");
        }
        assert!(
            modes.iter().all(|&n| n > 5000),
            "every mode seen: {modes:?}"
        );
    }

    /// Punch-through blocks as texture2ddecoder decodes them (its Rust port
    /// and its C++ original agree on this format), opaque or not, except
    /// that a transparent texel is black: all four channels 0, as the
    /// specification (and the Khronos conformance tests' decoder) has it,
    /// where texture2ddecoder keeps its colour. Some blocks have some.
    #[test]
    fn random_punch_through_blocks_decode_as_texture2ddecoder_does() {
        let mut rng = SplitMix64::new(9);
        let mut transparent = 0;
        for _ in 0..200_000 {
            let block = random_block(&mut rng);
            let mut bgra = [0u32; 16];
            texture2ddecoder::decode_etc2_rgba1_block(&block, &mut bgra);
            let mut want = [0u8; 64];
            for (out, p) in want.chunks_exact_mut(4).zip(bgra) {
                let [b, g, r, a] = p.to_le_bytes();
                if a == 0 {
                    transparent += 1;
                } else {
                    out.copy_from_slice(&[r, g, b, a]);
                }
            }
            let mut ours = [0u8; 64];
            decode_punch_through_block(&block, &mut ours, 16);
            assert_eq!(ours, want, "block {:02x?}", &block[..8]);
        }
        assert!(transparent > 100_000, "{transparent} transparent texels");
    }
}
