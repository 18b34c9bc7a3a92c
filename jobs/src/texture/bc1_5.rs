//! BC1 to BC5 blocks decoded straight to their output formats: BC1, BC2
//! and BC3 (the S3TC colour block, alone or after an explicit or an
//! interpolated alpha block) to RGBA8, BC4 and BC5 (one or two interpolated
//! channel blocks) to R8 and RG8, unsigned or signed.
//!
//! The arithmetic is bcdec's (its Rust port `bcdec_rs`, which the tests
//! compare against bit for bit, used to decode these formats here): the same
//! integer expansions of the 565 endpoints and of the thirds between them,
//! the same fixed-point sevenths and fifths of BC4's channels. What differs
//! is the writing: each block's colours are built first as output texels,
//! and each output row is stored at once (`block_rows`).

use super::block_rows::write_rows;

/// Decodes one BC1 block (8 bytes) into 4 rows of 4 RGBA8 texels at `dst`,
/// rows `pitch` bytes apart. `opaque` (the BC1 RGB formats) makes every
/// texel's alpha 255, the transparent black of the 3-colour mode included.
#[inline(always)]
pub(crate) fn decode_bc1(block: &[u8], opaque: bool, dst: &mut [u8], pitch: usize) {
    let colours = colour_palette(block, false);
    let forced = if opaque { 0xFF00_0000 } else { 0 };
    let indices = u32::from_le_bytes(block[4..8].try_into().expect("an 8-byte block"));
    write_rows(dst, pitch, |x, y| {
        colours[(indices >> (2 * (4 * y + x)) & 3) as usize] | forced
    });
}

/// Decodes one BC2 block (16 bytes: 4-bit alphas, then a colour block).
#[inline(always)]
pub(crate) fn decode_bc2(block: &[u8], dst: &mut [u8], pitch: usize) {
    let colours = colour_palette(&block[8..16], true);
    let alphas = u64::from_le_bytes(block[..8].try_into().expect("a 16-byte block"));
    let indices = u32::from_le_bytes(block[12..16].try_into().expect("a 16-byte block"));
    write_rows(dst, pitch, |x, y| {
        let i = 4 * y + x;
        let alpha = (alphas >> (4 * i) & 15) as u32 * 17;
        colours[(indices >> (2 * i) & 3) as usize] & 0x00FF_FFFF | alpha << 24
    });
}

/// Decodes one BC3 block (16 bytes: an interpolated alpha block, then a
/// colour block).
#[inline(always)]
pub(crate) fn decode_bc3(block: &[u8], dst: &mut [u8], pitch: usize) {
    let colours = colour_palette(&block[8..16], true);
    let alpha_block = u64::from_le_bytes(block[..8].try_into().expect("a 16-byte block"));
    let alphas = alpha_palette(block[0], block[1]);
    let alpha_indices = alpha_block >> 16;
    let indices = u32::from_le_bytes(block[12..16].try_into().expect("a 16-byte block"));
    write_rows(dst, pitch, |x, y| {
        let i = 4 * y + x;
        let alpha = alphas[(alpha_indices >> (3 * i) & 7) as usize];
        colours[(indices >> (2 * i) & 3) as usize] & 0x00FF_FFFF | alpha << 24
    });
}

/// Decodes one BC4 block (8 bytes) into 4 rows of 4 R8 texels (unorm, or
/// snorm when `signed`) at `dst`, rows `pitch` bytes apart.
#[inline(always)]
pub(crate) fn decode_bc4(block: &[u8], signed: bool, dst: &mut [u8], pitch: usize) {
    let (values, indices) = channel_block(block, signed);
    write_rows(dst, pitch, |x, y| {
        values[(indices >> (3 * (4 * y + x)) & 7) as usize]
    });
}

/// Decodes one BC5 block (16 bytes: red's block, then green's) into 4 rows
/// of 4 RG8 texels.
#[inline(always)]
pub(crate) fn decode_bc5(block: &[u8], signed: bool, dst: &mut [u8], pitch: usize) {
    let (red, red_indices) = channel_block(&block[..8], signed);
    let (green, green_indices) = channel_block(&block[8..16], signed);
    write_rows(dst, pitch, |x, y| {
        let shift = 3 * (4 * y + x);
        let r = red[(red_indices >> shift & 7) as usize];
        let g = green[(green_indices >> shift & 7) as usize];
        u16::from_le_bytes([r, g])
    });
}

/// A BC4 channel block's 8 values (as output bytes: two's complement when
/// `signed`) and its 48 index bits (texel `i`'s at bit `3i`).
#[inline(always)]
fn channel_block(block: &[u8], signed: bool) -> ([u8; 8], u64) {
    let bits = u64::from_le_bytes(block[..8].try_into().expect("an 8-byte block"));
    let (a0, a1) = if signed {
        // -128 reads as -127: the signed range is symmetric.
        let s = |b: u8| i32::from(b as i8).max(-127);
        (s(block[0]), s(block[1]))
    } else {
        (i32::from(block[0]), i32::from(block[1]))
    };
    // Sevenths and fifths in 16-bit fixed point, rounded.
    const SEVENTHS: [i32; 6] = [9363, 18724, 28086, 37450, 46812, 56173];
    const FIFTHS: [i32; 4] = [13107, 26215, 39321, 52429];
    let blend = |w: [i32; 2]| (w[0] * a0 + w[1] * a1 + 32768) >> 16;
    let values: [i32; 8] = if a0 > a1 {
        let s = |k: usize| blend([SEVENTHS[5 - k], SEVENTHS[k]]);
        [a0, a1, s(0), s(1), s(2), s(3), s(4), s(5)]
    } else {
        let f = |k: usize| blend([FIFTHS[3 - k], FIFTHS[k]]);
        let (low, high) = if signed { (-127, 127) } else { (0, 255) };
        [a0, a1, f(0), f(1), f(2), f(3), low, high]
    };
    (values.map(|v| v as u8), bits >> 16)
}

#[inline(always)]
fn rgba(r: u32, g: u32, b: u32, a: u32) -> u32 {
    r | g << 8 | b << 16 | a << 24
}

/// The colour block's four RGBA8 colours. `four_colours` forces the
/// 4-colour mode (BC2 and BC3); otherwise `c0 <= c1` selects the 3-colour
/// mode, whose fourth colour is transparent black.
#[inline(always)]
fn colour_palette(block: &[u8], four_colours: bool) -> [u32; 4] {
    let c0 = u32::from(u16::from_le_bytes([block[0], block[1]]));
    let c1 = u32::from(u16::from_le_bytes([block[2], block[3]]));
    let (r0, g0, b0) = (c0 >> 11 & 31, c0 >> 5 & 63, c0 & 31);
    let (r1, g1, b1) = (c1 >> 11 & 31, c1 >> 5 & 63, c1 & 31);
    let expand = |r: u32, g: u32, b: u32| {
        rgba(
            (r * 527 + 23) >> 6,
            (g * 259 + 33) >> 6,
            (b * 527 + 23) >> 6,
            255,
        )
    };
    let first = expand(r0, g0, b0);
    let second = expand(r1, g1, b1);
    if c0 > c1 || four_colours {
        let third = |r: u32, g: u32, b: u32| {
            rgba(
                (r * 351 + 61) >> 7,
                (g * 2763 + 1039) >> 11,
                (b * 351 + 61) >> 7,
                255,
            )
        };
        [
            first,
            second,
            third(2 * r0 + r1, 2 * g0 + g1, 2 * b0 + b1),
            third(r0 + 2 * r1, g0 + 2 * g1, b0 + 2 * b1),
        ]
    } else {
        let half = rgba(
            ((r0 + r1) * 1053 + 125) >> 8,
            ((g0 + g1) * 4145 + 1019) >> 11,
            ((b0 + b1) * 1053 + 125) >> 8,
            255,
        );
        [first, second, half, 0]
    }
}

/// The 8 alphas of BC3's interpolated alpha block (bcdec rounds these by
/// division; BC4 and BC5 by fixed point, in [`channel_block`]).
#[inline(always)]
fn alpha_palette(a0: u8, a1: u8) -> [u32; 8] {
    let (a0, a1) = (u32::from(a0), u32::from(a1));
    if a0 > a1 {
        // Six values at sevenths between the two.
        std::array::from_fn(|i| match i {
            0 => a0,
            1 => a1,
            _ => {
                let k = i as u32 - 1;
                ((7 - k) * a0 + k * a1 + 1) / 7
            }
        })
    } else {
        // Four values at fifths between the two, then 0 and 255.
        std::array::from_fn(|i| match i {
            0 => a0,
            1 => a1,
            6 => 0,
            7 => 255,
            _ => {
                let k = i as u32 - 1;
                ((5 - k) * a0 + k * a1 + 1) / 5
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use forgeflow_test_support::SplitMix64;

    /// Bit for bit what `bcdec_rs` decodes, over random blocks (both BC1
    /// modes, both alpha modes of BC3, BC4 and BC5 of either sign, -128
    /// endpoints included).
    #[test]
    fn random_blocks_decode_as_bcdec_does() {
        let mut rng = SplitMix64::new(11);
        for n in 0..100_000 {
            let mut block = [0u8; 16];
            for b in block.chunks_exact_mut(8) {
                b.copy_from_slice(&rng.next_u64().to_le_bytes());
            }
            // Equal endpoints and alphas now and then: the edge of each mode.
            if n % 16 == 0 {
                block[1] = block[0];
                block[3] = block[1];
                block[2] = block[0];
                block[9] = block[8];
                block[11] = block[9];
                block[10] = block[8];
            }
            let (mut want, mut ours) = ([0u8; 64], [0u8; 64]);
            bcdec_rs::bc1(&block, &mut want, 16);
            decode_bc1(&block, false, &mut ours, 16);
            assert_eq!(ours, want, "BC1 {block:02x?}");
            decode_bc1(&block, true, &mut ours, 16);
            for px in want.chunks_exact_mut(4) {
                px[3] = 255;
            }
            assert_eq!(ours, want, "BC1 opaque {block:02x?}");
            bcdec_rs::bc2(&block, &mut want, 16);
            decode_bc2(&block, &mut ours, 16);
            assert_eq!(ours, want, "BC2 {block:02x?}");
            bcdec_rs::bc3(&block, &mut want, 16);
            decode_bc3(&block, &mut ours, 16);
            assert_eq!(ours, want, "BC3 {block:02x?}");
            for signed in [false, true] {
                let (mut want, mut ours) = ([0u8; 16], [0u8; 16]);
                bcdec_rs::bc4(&block, &mut want, 4, signed);
                decode_bc4(&block, signed, &mut ours, 4);
                assert_eq!(ours, want, "BC4 signed {signed} {block:02x?}");
                let (mut want, mut ours) = ([0u8; 32], [0u8; 32]);
                bcdec_rs::bc5(&block, &mut want, 8, signed);
                decode_bc5(&block, signed, &mut ours, 8);
                assert_eq!(ours, want, "BC5 signed {signed} {block:02x?}");
            }
        }
    }
}
