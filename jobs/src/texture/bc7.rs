//! BC7 blocks decoded straight to RGBA8.
//!
//! The arithmetic is bcdec's (its Rust port `bcdec_rs`, which the tests
//! compare against bit for bit, used to decode BC7 here): the same endpoint
//! expansion with P-bits, the same 6-bit interpolation weights, the same
//! channel rotation, and transparent black for the reserved mode 8. What
//! differs is the order of the work (as in `bc1_5`): each subset's colours
//! are built once as a palette of output texels, the index bits are spread
//! to one width (the anchors' missing top bit put back as 0), and each
//! output row is stored at once (`block_rows`).

use super::block_rows::write_rows;

/// How a mode's endpoints carry P-bits (a shared low bit).
#[derive(Clone, Copy, PartialEq)]
enum PBits {
    None,
    /// One per endpoint.
    Unique,
    /// One per subset, its two endpoints' RGB.
    Shared,
}

/// The layout of one of the eight modes.
struct Mode {
    subsets: usize,
    partition_bits: u32,
    rotation_bits: u32,
    selector_bits: u32,
    colour_bits: u32,
    alpha_bits: u32,
    pbits: PBits,
    index_bits: u32,
    /// Bits of the second index set (modes 4 and 5), 0 if none.
    index2_bits: u32,
}

const fn mode(
    subsets: usize,
    partition_bits: u32,
    (rotation_bits, selector_bits): (u32, u32),
    (colour_bits, alpha_bits): (u32, u32),
    pbits: PBits,
    (index_bits, index2_bits): (u32, u32),
) -> Mode {
    Mode {
        subsets,
        partition_bits,
        rotation_bits,
        selector_bits,
        colour_bits,
        alpha_bits,
        pbits,
        index_bits,
        index2_bits,
    }
}

/// The eight modes, as the BC7 format's mode table gives them.
const MODES: [Mode; 8] = [
    mode(3, 4, (0, 0), (4, 0), PBits::Unique, (3, 0)),
    mode(2, 6, (0, 0), (6, 0), PBits::Shared, (3, 0)),
    mode(3, 6, (0, 0), (5, 0), PBits::None, (2, 0)),
    mode(2, 6, (0, 0), (7, 0), PBits::Unique, (2, 0)),
    mode(1, 0, (2, 1), (5, 6), PBits::None, (2, 3)),
    mode(1, 0, (2, 0), (7, 8), PBits::None, (2, 2)),
    mode(1, 0, (0, 0), (7, 7), PBits::Unique, (4, 0)),
    mode(2, 6, (0, 0), (5, 5), PBits::Unique, (2, 0)),
];

/// Interpolation weights (of 64) of 2-, 3- and 4-bit indices.
const WEIGHTS_2: [u32; 4] = [0, 21, 43, 64];
const WEIGHTS_3: [u32; 8] = [0, 9, 18, 27, 37, 46, 55, 64];
const WEIGHTS_4: [u32; 16] = [0, 4, 9, 13, 17, 21, 26, 30, 34, 38, 43, 47, 51, 55, 60, 64];

fn weights(bits: u32) -> &'static [u32] {
    match bits {
        2 => &WEIGHTS_2,
        3 => &WEIGHTS_3,
        _ => &WEIGHTS_4,
    }
}

/// The 64 two-subset partitions: texel i's subset in bits 2i..2i+2.
const PARTITIONS_2: [u32; 64] = [
    0x50505050, 0x40404040, 0x54545454, 0x54505040, 0x50404000, 0x55545450, 0x55545040, 0x54504000,
    0x50400000, 0x55555450, 0x55544000, 0x54400000, 0x55555440, 0x55550000, 0x55555500, 0x55000000,
    0x55150100, 0x00004054, 0x15010000, 0x00405054, 0x00004050, 0x15050100, 0x05010000, 0x40505054,
    0x00404050, 0x05010100, 0x14141414, 0x05141450, 0x01155440, 0x00555500, 0x15014054, 0x05414150,
    0x44444444, 0x55005500, 0x11441144, 0x05055050, 0x05500550, 0x11114444, 0x41144114, 0x44111144,
    0x15055054, 0x01055040, 0x05041050, 0x05455150, 0x14414114, 0x50050550, 0x41411414, 0x00141400,
    0x00041504, 0x00105410, 0x10541000, 0x04150400, 0x50410514, 0x41051450, 0x05415014, 0x14054150,
    0x41050514, 0x41505014, 0x40011554, 0x54150140, 0x50505500, 0x00555050, 0x15151010, 0x54540404,
];

/// The 64 three-subset partitions, likewise.
const PARTITIONS_3: [u32; 64] = [
    0xAA685050, 0x6A5A5040, 0x5A5A4200, 0x5450A0A8, 0xA5A50000, 0xA0A05050, 0x5555A0A0, 0x5A5A5050,
    0xAA550000, 0xAA555500, 0xAAAA5500, 0x90909090, 0x94949494, 0xA4A4A4A4, 0xA9A59450, 0x2A0A4250,
    0xA5945040, 0x0A425054, 0xA5A5A500, 0x55A0A0A0, 0xA8A85454, 0x6A6A4040, 0xA4A45000, 0x1A1A0500,
    0x0050A4A4, 0xAAA59090, 0x14696914, 0x69691400, 0xA08585A0, 0xAA821414, 0x50A4A450, 0x6A5A0200,
    0xA9A58000, 0x5090A0A8, 0xA8A09050, 0x24242424, 0x00AA5500, 0x24924924, 0x24499224, 0x50A50A50,
    0x500AA550, 0xAAAA4444, 0x66660000, 0xA5A0A5A0, 0x50A050A0, 0x69286928, 0x44AAAA44, 0x66666600,
    0xAA444444, 0x54A854A8, 0x95809580, 0x96969600, 0xA85454A8, 0x80959580, 0xAA141414, 0x96960000,
    0xAAAA1414, 0xA05050A0, 0xA0A5A5A0, 0x96000000, 0x40804080, 0xA9A8A9A8, 0xAAAAAA44, 0x2A4A5254,
];

/// The anchor texel of subset 1 of each two-subset partition.
const ANCHORS_2: [u8; 64] = [
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 2, 8, 2, 2, 8, 8, 15, 2, 8,
    2, 2, 8, 8, 2, 2, 15, 15, 6, 8, 2, 8, 15, 15, 2, 8, 2, 2, 2, 15, 15, 6, 6, 2, 6, 8, 15, 15, 2,
    2, 15, 15, 15, 15, 15, 2, 2, 15,
];

/// The anchor texels of subsets 1 and 2 of each three-subset partition.
const ANCHORS_3: [(u8, u8); 64] = [
    (3, 15),
    (3, 8),
    (15, 8),
    (15, 3),
    (8, 15),
    (3, 15),
    (15, 3),
    (15, 8),
    (8, 15),
    (8, 15),
    (6, 15),
    (6, 15),
    (6, 15),
    (5, 15),
    (3, 15),
    (3, 8),
    (3, 15),
    (3, 8),
    (8, 15),
    (15, 3),
    (3, 15),
    (3, 8),
    (6, 15),
    (10, 8),
    (5, 3),
    (8, 15),
    (8, 6),
    (6, 10),
    (8, 15),
    (5, 15),
    (15, 10),
    (15, 8),
    (8, 15),
    (15, 3),
    (3, 15),
    (5, 10),
    (6, 10),
    (10, 8),
    (8, 9),
    (15, 10),
    (15, 6),
    (3, 15),
    (15, 8),
    (5, 15),
    (15, 3),
    (15, 6),
    (15, 6),
    (15, 8),
    (3, 15),
    (15, 3),
    (5, 15),
    (5, 15),
    (5, 15),
    (8, 15),
    (5, 15),
    (10, 15),
    (5, 15),
    (10, 15),
    (8, 15),
    (13, 15),
    (15, 3),
    (12, 15),
    (3, 15),
    (3, 8),
];

/// The block's bits, read from the lowest up.
struct Bits {
    v: u128,
    at: u32,
}

impl Bits {
    #[inline(always)]
    fn read(&mut self, n: u32) -> u32 {
        let v = (self.v >> self.at) as u32 & ((1u32 << n) - 1);
        self.at += n;
        v
    }
}

/// An index set of 16 texels, `bits` each, read from `at` in `v`: the
/// anchors (`anchors`, ascending, texel 0 first) are stored a bit short, so
/// a 0 is put back as their top bit. Texel `i`'s index is then bits
/// `i * bits ..` of the result.
#[inline(always)]
fn spread_indices(v: u128, at: u32, bits: u32, anchors: &[u32]) -> u64 {
    let mut x = (v >> at) as u64;
    for &a in anchors {
        let low = (1u64 << (a * bits + bits - 1)) - 1;
        x = (x & low) | ((x & !low) << 1);
    }
    x
}

/// Decodes one BC7 block (16 bytes) into 4 rows of 4 RGBA8 texels at `dst`,
/// rows `pitch` bytes apart.
#[inline(always)]
pub(crate) fn decode_bc7(block: &[u8], dst: &mut [u8], pitch: usize) {
    let v = u128::from_le_bytes(block[..16].try_into().expect("a 16-byte block"));
    let m = (v as u8).trailing_zeros() as usize;
    let Some(mode) = MODES.get(m) else {
        // Mode 8 is reserved: transparent black.
        return write_rows(dst, pitch, |_, _| 0u32);
    };
    let mut bits = Bits {
        v,
        at: m as u32 + 1,
    };
    let partition = bits.read(mode.partition_bits) as usize;
    let rotation = bits.read(mode.rotation_bits);
    let selector = bits.read(mode.selector_bits);
    // Endpoints: every endpoint's red, then green, blue, alpha.
    let n = 2 * mode.subsets;
    let mut ends = [[0u32; 4]; 6];
    for c in 0..4 {
        let width = if c < 3 {
            mode.colour_bits
        } else {
            mode.alpha_bits
        };
        if width > 0 {
            for e in &mut ends[..n] {
                e[c] = bits.read(width);
            }
        }
    }
    let pbit = (mode.pbits != PBits::None) as u32;
    match mode.pbits {
        PBits::None => {}
        PBits::Unique => {
            for e in &mut ends[..n] {
                let p = bits.read(1);
                *e = e.map(|c| c << 1 | p);
            }
        }
        PBits::Shared => {
            for s in 0..mode.subsets {
                let p = bits.read(1);
                for e in &mut ends[2 * s..2 * s + 2] {
                    *e = e.map(|c| c << 1);
                    for c in &mut e[..3] {
                        *c |= p;
                    }
                }
            }
        }
    }
    // To 8 bits: the top bits repeated below.
    let expand = |c: u32, width: u32| {
        let c = c << (8 - width);
        c | c >> width
    };
    for e in &mut ends[..n] {
        for c in &mut e[..3] {
            *c = expand(*c, mode.colour_bits + pbit);
        }
        e[3] = if mode.alpha_bits == 0 {
            0xFF
        } else {
            expand(e[3], mode.alpha_bits + pbit)
        };
        // Rotation: the alpha channel swapped with red, green or blue.
        if rotation > 0 {
            e.swap(3, rotation as usize - 1);
        }
    }
    // Partition and anchors.
    let (subset_of, anchors): (u32, [u32; 3]) = match mode.subsets {
        1 => (0, [0; 3]),
        2 => (
            PARTITIONS_2[partition],
            [0, ANCHORS_2[partition] as u32, 16],
        ),
        _ => {
            let (a, b) = ANCHORS_3[partition];
            let (a, b) = (a.min(b) as u32, a.max(b) as u32);
            (PARTITIONS_3[partition], [0, a, b])
        }
    };
    let index_at = bits.at;
    let primary = spread_indices(v, index_at, mode.index_bits, &anchors[..mode.subsets]);
    let palette = |(e0, e1): ([u32; 4], [u32; 4]), w: u32| -> u32 {
        let c: [u32; 4] = std::array::from_fn(|k| (e0[k] * (64 - w) + e1[k] * w + 32) >> 6);
        c[0] | c[1] << 8 | c[2] << 16 | c[3] << 24
    };
    let ib = mode.index_bits;
    let imask = (1u64 << ib) - 1;
    if mode.index2_bits == 0 {
        // One index set: a palette per subset.
        let table = weights(ib);
        let mut colours = [[0u32; 16]; 3];
        for (s, colours) in colours.iter_mut().enumerate().take(mode.subsets) {
            for (k, w) in table.iter().enumerate() {
                colours[k] = palette((ends[2 * s], ends[2 * s + 1]), *w);
            }
        }
        return write_rows(dst, pitch, |x, y| {
            let i = (4 * y + x) as u32;
            let s = (subset_of >> (2 * i) & 3) as usize;
            colours[s][(primary >> (i * ib) & imask) as usize]
        });
    }
    // Two index sets (modes 4 and 5): the colour from one, the scalar
    // channel (alpha, or the channel rotated into its place) from the other.
    let ib2 = mode.index2_bits;
    let secondary = spread_indices(v, index_at + 16 * ib - 1, ib2, &[0]);
    let i2mask = (1u64 << ib2) - 1;
    let first: [u32; 8] = std::array::from_fn(|k| {
        palette((ends[0], ends[1]), weights(ib).get(k).copied().unwrap_or(0))
    });
    let second: [u32; 8] = std::array::from_fn(|k| {
        palette(
            (ends[0], ends[1]),
            weights(ib2).get(k).copied().unwrap_or(0),
        )
    });
    let (colour, scalar) = if selector == 0 {
        (&first, &second)
    } else {
        (&second, &first)
    };
    let scalar_mask = 0xFFu32 << (8 * if rotation == 0 { 3 } else { rotation - 1 });
    write_rows(dst, pitch, |x, y| {
        let i = (4 * y + x) as u32;
        let (a, b) = (
            (primary >> (i * ib) & imask) as usize,
            (secondary >> (i * ib2) & i2mask) as usize,
        );
        let (c, s) = if selector == 0 { (a, b) } else { (b, a) };
        colour[c] & !scalar_mask | scalar[s] & scalar_mask
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use forgeflow_test_support::SplitMix64;

    /// Bit for bit with bcdec_rs on random blocks of every mode (the mode
    /// bits set so that each is as common as the others, the reserved one
    /// included), written at an offset into a wider image.
    #[test]
    fn random_blocks_decode_as_bcdec_rs_decodes_them() {
        let mut rng = SplitMix64::new(77);
        let pitch = 4 * 4 + 12;
        for k in 0..200_000 {
            let mut block = [0u8; 16];
            for b in &mut block {
                *b = rng.next_u64() as u8;
            }
            let m = k % 9;
            block[0] = if m == 8 { 0 } else { (block[0] | 1) << m };
            let mut ours = vec![0xAAu8; 4 * pitch];
            let mut theirs = ours.clone();
            decode_bc7(&block, &mut ours, pitch);
            bcdec_rs::bc7(&block, &mut theirs, pitch);
            assert_eq!(ours, theirs, "mode {m}: block {block:02x?}");
        }
    }
}
