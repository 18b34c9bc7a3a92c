//! BC6H blocks decoded straight to RGBA16F (alpha 1.0), the format the CPU
//! fallback uploads them as.
//!
//! The algorithm is the one of the Direct3D 11 specification (and of bcdec,
//! whose Rust port `bcdec_rs` the tests compare against bit for bit):
//!
//! 1. The mode (2 or 5 bits) names one of 14 endpoint layouts. Each layout is
//!    a list of bit fields scattered over the block; `layouts!` writes them
//!    in stream order and turns each list into fixed shifts and masks.
//! 2. Endpoints are sign-extended, delta-decoded against the first and
//!    unquantized to 16 bits.
//! 3. Instead of interpolating per texel (three multiplies and a scale per
//!    channel, sixteen times), the block's palette is built once: 8 colours
//!    for each of the two subsets, or 16 for one, each a finished RGBA16F
//!    texel. Texels are then a palette lookup each.
//! 4. The index bits (3 or 4 per texel, one less for each subset's anchor
//!    texel) are widened to a fixed width by inserting the anchors' missing
//!    high bit, so every texel's index is a constant shift away.

use super::block_rows::write_rows;

/// Which endpoint channel a field fills: red, green, blue, or the partition
/// number.
const R: u8 = 0;
const G: u8 = 1;
const B: u8 = 2;
const D: u8 = 3;
/// Which endpoint: w and x are subset 0's, y and z subset 1's.
const W: u8 = 0;
const X: u8 = 1;
const Y: u8 = 2;
const Z: u8 = 3;
/// Set in a field's bit count when the field is stored most significant bit
/// first (modes 13 and 14 of the specification).
const REVERSED: u8 = 0x80;

/// One bit field of a mode's layout: (channel, endpoint, lowest bit it fills,
/// bit count, with [`REVERSED`] possibly set).
type Field = (u8, u8, u8, u8);

/// The 14 modes' endpoint fields in stream order, after the mode bits (2 for
/// the first two modes, 5 for the others), as the specification's table of
/// mode layouts lists them. The macro writes them twice: as `LAYOUTS`, the
/// data the tests check, and as `endpoints`, straight-line code per mode
/// (a loop over a table costs a third of the decode: LLVM does not unroll
/// it, so each field's position stays a variable).
macro_rules! layouts {
    ($($mode:literal => [$(($c:ident, $e:tt, $shift:literal, $n:expr)),* $(,)?],)*) => {
        #[cfg(test)]
        const LAYOUTS: [&[Field]; 14] = [$(&[$(($c, $e, $shift, $n)),*]),*];

        /// The raw endpoints (indexed [endpoint][channel]) and partition
        /// number of a block of mode `mode`.
        #[inline(always)]
        fn endpoints(mode: usize, bits: u128) -> ([[i32; 3]; 4], u32) {
            let mut e = [[0i32; 3]; 4];
            let mut partition = 0;
            match mode {
                $($mode => {
                    let mut at = if $mode < 2 { 2 } else { 5 };
                    $(field(bits, &mut at, ($c, $e, $shift, $n), &mut e, &mut partition);)*
                })*
                _ => unreachable!("a mode number is below 14"),
            }
            (e, partition)
        }
    };
}

layouts! {
    // 0b00: 10.555 x3, two subsets.
    0 => [(G,Y,4,1),(B,Y,4,1),(B,Z,4,1),(R,W,0,10),(G,W,0,10),(B,W,0,10),(R,X,0,5),(G,Z,4,1),
        (G,Y,0,4),(G,X,0,5),(B,Z,0,1),(G,Z,0,4),(B,X,0,5),(B,Z,1,1),(B,Y,0,4),(R,Y,0,5),(B,Z,2,1),
        (R,Z,0,5),(B,Z,3,1),(D,0,0,5)],
    // 0b01: 7666 x3.
    1 => [(G,Y,5,1),(G,Z,4,1),(G,Z,5,1),(R,W,0,7),(B,Z,0,1),(B,Z,1,1),(B,Y,4,1),(G,W,0,7),
        (B,Y,5,1),(B,Z,2,1),(G,Y,4,1),(B,W,0,7),(B,Z,3,1),(B,Z,5,1),(B,Z,4,1),(R,X,0,6),(G,Y,0,4),
        (G,X,0,6),(G,Z,0,4),(B,X,0,6),(B,Y,0,4),(R,Y,0,6),(R,Z,0,6),(D,0,0,5)],
    // 0b00010: 11.555, 11.444, 11.444.
    2 => [(R,W,0,10),(G,W,0,10),(B,W,0,10),(R,X,0,5),(R,W,10,1),(G,Y,0,4),(G,X,0,4),(G,W,10,1),
        (B,Z,0,1),(G,Z,0,4),(B,X,0,4),(B,W,10,1),(B,Z,1,1),(B,Y,0,4),(R,Y,0,5),(B,Z,2,1),(R,Z,0,5),
        (B,Z,3,1),(D,0,0,5)],
    // 0b00110: 11.444, 11.555, 11.444.
    3 => [(R,W,0,10),(G,W,0,10),(B,W,0,10),(R,X,0,4),(R,W,10,1),(G,Z,4,1),(G,Y,0,4),(G,X,0,5),
        (G,W,10,1),(G,Z,0,4),(B,X,0,4),(B,W,10,1),(B,Z,1,1),(B,Y,0,4),(R,Y,0,4),(B,Z,0,1),
        (B,Z,2,1),(R,Z,0,4),(G,Y,4,1),(B,Z,3,1),(D,0,0,5)],
    // 0b01010: 11.444, 11.444, 11.555.
    4 => [(R,W,0,10),(G,W,0,10),(B,W,0,10),(R,X,0,4),(R,W,10,1),(B,Y,4,1),(G,Y,0,4),(G,X,0,4),
        (G,W,10,1),(B,Z,0,1),(G,Z,0,4),(B,X,0,5),(B,W,10,1),(B,Y,0,4),(R,Y,0,4),(B,Z,1,1),
        (B,Z,2,1),(R,Z,0,4),(B,Z,4,1),(B,Z,3,1),(D,0,0,5)],
    // 0b01110: 9555 x3.
    5 => [(R,W,0,9),(B,Y,4,1),(G,W,0,9),(G,Y,4,1),(B,W,0,9),(B,Z,4,1),(R,X,0,5),(G,Z,4,1),
        (G,Y,0,4),(G,X,0,5),(B,Z,0,1),(G,Z,0,4),(B,X,0,5),(B,Z,1,1),(B,Y,0,4),(R,Y,0,5),(B,Z,2,1),
        (R,Z,0,5),(B,Z,3,1),(D,0,0,5)],
    // 0b10010: 8666, 8555, 8555.
    6 => [(R,W,0,8),(G,Z,4,1),(B,Y,4,1),(G,W,0,8),(B,Z,2,1),(G,Y,4,1),(B,W,0,8),(B,Z,3,1),
        (B,Z,4,1),(R,X,0,6),(G,Y,0,4),(G,X,0,5),(B,Z,0,1),(G,Z,0,4),(B,X,0,5),(B,Z,1,1),(B,Y,0,4),
        (R,Y,0,6),(R,Z,0,6),(D,0,0,5)],
    // 0b10110: 8555, 8666, 8555.
    7 => [(R,W,0,8),(B,Z,0,1),(B,Y,4,1),(G,W,0,8),(G,Y,5,1),(G,Y,4,1),(B,W,0,8),(G,Z,5,1),
        (B,Z,4,1),(R,X,0,5),(G,Z,4,1),(G,Y,0,4),(G,X,0,6),(G,Z,0,4),(B,X,0,5),(B,Z,1,1),(B,Y,0,4),
        (R,Y,0,5),(B,Z,2,1),(R,Z,0,5),(B,Z,3,1),(D,0,0,5)],
    // 0b11010: 8555, 8555, 8666.
    8 => [(R,W,0,8),(B,Z,1,1),(B,Y,4,1),(G,W,0,8),(B,Y,5,1),(G,Y,4,1),(B,W,0,8),(B,Z,5,1),
        (B,Z,4,1),(R,X,0,5),(G,Z,4,1),(G,Y,0,4),(G,X,0,5),(B,Z,0,1),(G,Z,0,4),(B,X,0,6),(B,Y,0,4),
        (R,Y,0,5),(B,Z,2,1),(R,Z,0,5),(B,Z,3,1),(D,0,0,5)],
    // 0b11110: 6666 x3, endpoints stored whole (no deltas).
    9 => [(R,W,0,6),(G,Z,4,1),(B,Z,0,1),(B,Z,1,1),(B,Y,4,1),(G,W,0,6),(G,Y,5,1),(B,Y,5,1),
        (B,Z,2,1),(G,Y,4,1),(B,W,0,6),(G,Z,5,1),(B,Z,3,1),(B,Z,5,1),(B,Z,4,1),(R,X,0,6),(G,Y,0,4),
        (G,X,0,6),(G,Z,0,4),(B,X,0,6),(B,Y,0,4),(R,Y,0,6),(R,Z,0,6),(D,0,0,5)],
    // 0b00011: 10.10 x3, one subset, endpoints stored whole.
    10 => [(R,W,0,10),(G,W,0,10),(B,W,0,10),(R,X,0,10),(G,X,0,10),(B,X,0,10)],
    // 0b00111: 11.9 x3.
    11 => [(R,W,0,10),(G,W,0,10),(B,W,0,10),(R,X,0,9),(R,W,10,1),(G,X,0,9),(G,W,10,1),(B,X,0,9),
        (B,W,10,1)],
    // 0b01011: 12.8 x3.
    12 => [(R,W,0,10),(G,W,0,10),(B,W,0,10),(R,X,0,8),(R,W,10,2|REVERSED),(G,X,0,8),
        (G,W,10,2|REVERSED),(B,X,0,8),(B,W,10,2|REVERSED)],
    // 0b01111: 16.4 x3.
    13 => [(R,W,0,10),(G,W,0,10),(B,W,0,10),(R,X,0,4),(R,W,10,6|REVERSED),(G,X,0,4),
        (G,W,10,6|REVERSED),(B,X,0,4),(B,W,10,6|REVERSED)],
}

/// Per mode: the bits of the first endpoint, then of the others' red, green
/// and blue (deltas, or whole endpoints in modes 9 and 10).
#[rustfmt::skip]
const PRECISION: [[u8; 14]; 4] = [
    [10, 7, 11, 11, 11, 9, 8, 8, 8, 6, 10, 11, 12, 16],
    [5, 6, 5, 4, 4, 5, 6, 5, 5, 6, 10, 9, 8, 4],
    [5, 6, 4, 5, 4, 5, 5, 6, 5, 6, 10, 9, 8, 4],
    [5, 6, 4, 4, 5, 5, 5, 5, 6, 6, 10, 9, 8, 4],
];

/// The 32 two-subset partitions: bit `i` set where texel `i` (row-major)
/// belongs to subset 1 (the table shared with BC7).
#[rustfmt::skip]
const PARTITIONS: [u16; 32] = [
    0xCCCC, 0x8888, 0xEEEE, 0xECC8, 0xC880, 0xFEEC, 0xFEC8, 0xEC80,
    0xC800, 0xFFEC, 0xFE80, 0xE800, 0xFFE8, 0xFF00, 0xFFF0, 0xF000,
    0xF710, 0x008E, 0x7100, 0x08CE, 0x008C, 0x7310, 0x3100, 0x8CCE,
    0x088C, 0x3110, 0x6666, 0x366C, 0x17E8, 0x0FF0, 0x718E, 0x399C,
];

/// Subset 1's anchor texel per partition (subset 0's is texel 0): its index
/// is stored with one bit less.
#[rustfmt::skip]
const ANCHORS: [u8; 32] = [
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
    15, 2, 8, 2, 2, 8, 8, 15, 2, 8, 2, 2, 8, 8, 2, 2,
];

const WEIGHTS3: [i32; 8] = [0, 9, 18, 27, 37, 46, 55, 64];
const WEIGHTS4: [i32; 16] = [0, 4, 9, 13, 17, 21, 26, 30, 34, 38, 43, 47, 51, 55, 60, 64];

/// RGBA16F's alpha of 1.0, in place.
const OPAQUE: u64 = 0x3C00 << 48;

/// Decodes one 16-byte BC6H block into 4 rows of 4 RGBA16F texels (32
/// bytes each) at `dst`, rows `pitch` bytes apart. Reserved modes decode to
/// black, alpha 1.0 (as the specification asks).
#[inline(always)]
pub(crate) fn decode_block(block: &[u8], signed: bool, dst: &mut [u8], pitch: usize) {
    let bits = u128::from_le_bytes(block[..16].try_into().expect("a 16-byte block"));
    let decoded = if signed {
        palette::<true>(bits)
    } else {
        palette::<false>(bits)
    };
    match decoded {
        None => write_rows(dst, pitch, |_, _| OPAQUE),
        Some((palette, Indices::Three(v), partition)) => write_rows(dst, pitch, |x, y| {
            let i = 4 * y + x;
            let subset = (partition >> i & 1) as usize;
            palette[(v >> (3 * i) & 7) as usize + 8 * subset]
        }),
        Some((palette, Indices::Four(v), _)) => write_rows(dst, pitch, |x, y| {
            palette[(v >> (4 * (4 * y + x)) & 15) as usize]
        }),
    }
}

/// A block's texel indices widened to a fixed width per texel.
#[derive(Clone, Copy)]
enum Indices {
    /// Two subsets: 3 bits a texel, palette entry `index + 8 * subset`.
    Three(u64),
    /// One subset: 4 bits a texel.
    Four(u64),
}

/// The block's palette (finished RGBA16F texels), its indices and its
/// partition mask; `None` for a reserved mode.
#[inline(always)]
fn palette<const SIGNED: bool>(bits: u128) -> Option<([u64; 16], Indices, u16)> {
    let mode = match bits as u8 & 3 {
        0 => 0,
        1 => 1,
        _ => match bits as u8 & 31 {
            0b00010 => 2,
            0b00110 => 3,
            0b01010 => 4,
            0b01110 => 5,
            0b10010 => 6,
            0b10110 => 7,
            0b11010 => 8,
            0b11110 => 9,
            0b00011 => 10,
            0b00111 => 11,
            0b01011 => 12,
            0b01111 => 13,
            _ => return None,
        },
    };
    let (mut e, partition) = endpoints(mode, bits);
    let two_subsets = mode < 10;
    let count = if two_subsets { 4 } else { 2 };
    let base_bits = i32::from(PRECISION[0][mode]);
    let whole = mode == 9 || mode == 10;
    for c in 0..3 {
        if SIGNED {
            e[0][c] = extend_sign(e[0][c], base_bits);
        }
        let base = e[0][c];
        let bits_c = i32::from(PRECISION[1 + c][mode]);
        for ep in e.iter_mut().take(count).skip(1) {
            if !whole || SIGNED {
                ep[c] = extend_sign(ep[c], bits_c);
            }
            if !whole {
                // Deltas from endpoint 0, wrapping at its precision.
                ep[c] = (ep[c] + base) & ((1 << base_bits) - 1);
                if SIGNED {
                    ep[c] = extend_sign(ep[c], base_bits);
                }
            }
        }
    }
    for ep in e.iter_mut().take(count) {
        for v in ep.iter_mut() {
            *v = unquantize::<SIGNED>(*v, base_bits);
        }
    }
    // Index bits start after the header: 82 bits with two subsets (46 left),
    // 65 with one (63 left), so they fit a u64.
    Some(if two_subsets {
        let mut palette = [0u64; 16];
        for s in 0..2 {
            let ramp = ramp::<SIGNED, 8>(e[2 * s], e[2 * s + 1], &WEIGHTS3);
            palette[8 * s..8 * s + 8].copy_from_slice(&ramp);
        }
        let p = partition as usize & 31;
        let raw = (bits >> 82) as u64;
        // Texel 0's index has 2 bits, the anchor's too: put a 0 where their
        // third bit would be, the anchor's first (it lies above texel 0).
        let at = 3 * u32::from(ANCHORS[p]) + 2;
        let widened = insert_zero(insert_zero(raw, 2), at);
        (palette, Indices::Three(widened), PARTITIONS[p])
    } else {
        let palette = ramp::<SIGNED, 16>(e[0], e[1], &WEIGHTS4);
        let raw = (bits >> 65) as u64;
        (palette, Indices::Four(insert_zero(raw, 3)), 0)
    })
}

/// `v` with a zero bit inserted at bit `at`, the bits above moving up one.
#[inline(always)]
fn insert_zero(v: u64, at: u32) -> u64 {
    let low = v & ((1 << at) - 1);
    low | (v >> at) << (at + 1)
}

/// Reads one field at bit `at` into its endpoint channel (or the partition
/// number) and moves `at` past it. Every argument but `bits` is a constant
/// where `endpoints` calls it.
#[inline(always)]
fn field(
    bits: u128,
    at: &mut u32,
    (channel, endpoint, shift, count): Field,
    e: &mut [[i32; 3]; 4],
    partition: &mut u32,
) {
    let n = u32::from(count & !REVERSED);
    let mut v = (bits >> *at) as u32 & ((1 << n) - 1);
    if count & REVERSED != 0 {
        v = v.reverse_bits() >> (32 - n);
    }
    *at += n;
    if channel == D {
        *partition = v;
    } else {
        e[endpoint as usize][channel as usize] |= (v << shift) as i32;
    }
}

#[inline(always)]
fn extend_sign(v: i32, bits: i32) -> i32 {
    (v << (32 - bits)) >> (32 - bits)
}

/// An endpoint of `bits` bits to the 16-bit range interpolation works in.
#[inline(always)]
fn unquantize<const SIGNED: bool>(v: i32, bits: i32) -> i32 {
    if !SIGNED {
        if bits >= 15 || v == 0 {
            v
        } else if v == (1 << bits) - 1 {
            0xFFFF
        } else {
            ((v << 16) + 0x8000) >> bits
        }
    } else {
        let (negative, magnitude) = if bits < 16 && v < 0 {
            (true, -v)
        } else {
            (false, v)
        };
        let unq = if magnitude == 0 {
            0
        } else if magnitude >= (1 << (bits - 1)) - 1 {
            0x7FFF
        } else {
            ((magnitude << 15) + 0x4000) >> (bits - 1)
        };
        if negative {
            -unq
        } else {
            unq
        }
    }
}

/// The RGBA16F texels at each of `weights` (of 64) between endpoints `a`
/// and `b`. `a * (64 - w) + b * w` is computed as `64 * a + (b - a) * w`
/// (the same integers), one multiply a channel.
#[inline(always)]
fn ramp<const SIGNED: bool, const N: usize>(
    a: [i32; 3],
    b: [i32; 3],
    weights: &[i32; N],
) -> [u64; N] {
    let base = a.map(|v| 64 * v + 32);
    let delta = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
    let mut texels = [OPAQUE; N];
    for (texel, &w) in texels.iter_mut().zip(weights) {
        for c in 0..3 {
            let v = (base[c] + delta[c] * w) >> 6;
            *texel |= u64::from(half::<SIGNED>(v)) << (16 * c);
        }
    }
    texels
}

/// An interpolated 16-bit value to the half float it stands for.
#[inline(always)]
fn half<const SIGNED: bool>(v: i32) -> u16 {
    if !SIGNED {
        // Scale the magnitude by 31/64: the largest finite half is 0x7BFF.
        ((v * 31) >> 6) as u16
    } else {
        // Sign and magnitude (31/32 of it); a magnitude that rounds to 0
        // is +0, as the specification's reference decoder writes it.
        let m = (v.abs() * 31) >> 5;
        let sign = if v < 0 && m != 0 { 0x8000 } else { 0 };
        (sign | m) as u16
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use forgeflow_test_support::SplitMix64;

    /// Every two-subset layout fills the 82 header bits, every one-subset
    /// layout the 65: a field left out or miscounted shows here.
    #[test]
    fn layouts_fill_the_header() {
        for (mode, layout) in LAYOUTS.iter().enumerate() {
            let mode_bits = if mode < 2 { 2 } else { 5 };
            let bits: u32 = layout
                .iter()
                .map(|f| u32::from(f.3 & !REVERSED))
                .sum::<u32>()
                + mode_bits;
            assert_eq!(bits, if mode < 10 { 82 } else { 65 }, "mode {mode}");
        }
    }

    /// Each endpoint channel receives each of its bits exactly once, and as
    /// many as the mode's precision says.
    #[test]
    fn layouts_fill_each_endpoint_bit_once() {
        for (mode, layout) in LAYOUTS.iter().enumerate() {
            let mut seen = [[0u32; 3]; 4];
            for &(c, e, shift, count) in layout.iter().filter(|f| f.0 != D) {
                let n = u32::from(count & !REVERSED);
                let mask = ((1u32 << n) - 1) << shift;
                assert_eq!(seen[e as usize][c as usize] & mask, 0, "mode {mode}");
                seen[e as usize][c as usize] |= mask;
            }
            let endpoints = if mode < 10 { 4 } else { 2 };
            for (e, channels) in seen.iter().enumerate() {
                for (c, &mask) in channels.iter().enumerate() {
                    let want = if e >= endpoints {
                        0
                    } else if e == 0 {
                        PRECISION[0][mode]
                    } else {
                        PRECISION[1 + c][mode]
                    };
                    assert_eq!(mask, (1u32 << want) - 1, "mode {mode} e{e} c{c}");
                }
            }
        }
    }

    #[test]
    fn anchors_and_texel_0_are_in_their_subsets() {
        for (p, &mask) in PARTITIONS.iter().enumerate() {
            // Texel 0 is always subset 0, and the anchor always subset 1.
            assert_eq!(mask & 1, 0);
            assert_ne!(mask >> ANCHORS[p] & 1, 0, "partition {p}");
        }
    }

    /// Bit for bit what `bcdec_rs` decodes (RGB halves), alpha 1.0, over
    /// random blocks (every mode, reserved ones included), both signednesses.
    #[test]
    fn random_blocks_decode_as_bcdec_does() {
        let mut rng = SplitMix64::new(6);
        let mut modes = [0u32; 32];
        for n in 0..200_000 {
            let mut block = [0u8; 16];
            for b in block.chunks_exact_mut(8) {
                b.copy_from_slice(&rng.next_u64().to_le_bytes());
            }
            modes[usize::from(block[0] & 31)] += 1;
            let signed = n % 2 == 1;
            let mut want = [0u16; 48];
            bcdec_rs::bc6h_half(&block, &mut want, 12, signed);
            let mut ours = [0u8; 128];
            decode_block(&block, signed, &mut ours, 32);
            for (i, texel) in ours.chunks_exact(8).enumerate() {
                let got: Vec<u16> = texel
                    .chunks_exact(2)
                    .map(|h| u16::from_le_bytes([h[0], h[1]]))
                    .collect();
                assert_eq!(
                    got[..3],
                    want[3 * i..3 * i + 3],
                    "block {block:02x?} texel {i}"
                );
                assert_eq!(got[3], 0x3C00);
            }
        }
        assert!(
            modes.iter().all(|&n| n > 1000),
            "every mode seen: {modes:?}"
        );
    }
}
