//! forgeflow's ASTC block decoder: LDR and HDR endpoints, 2D and 3D blocks.
//! Written from the ASTC specification (Khronos Data Format Specification,
//! "ASTC Compressed Texture Image Formats") and checked against Arm's
//! astcenc (`jobs/tests/astc_reference.rs`): bit for bit in the HDR profile,
//! within 1 in 8 bits (astcenc rounds through a half float) in the LDR one.
//!
//! A block is decoded in the order the specification gives: block mode and
//! weight grid, partitions and endpoint modes, the integer sequences of
//! weights and colour values and their unquantisation, endpoint unpacking
//! (`symbolic`), then weight infill (bilinear in 2D, simplex in 3D),
//! interpolation, and the final conversion: UNORM16 for the LDR profile,
//! half float for the HDR profile (LNS values of HDR endpoints, UNORM16 ones
//! of LDR endpoints). [`decode_block_rgba8`] is the LDR 2D path straight to
//! 8 bits, the CPU fallback's for the UNORM and sRGB formats: it replaced
//! astc-decode, at about 1.5x its rate, with the same bytes for encoders'
//! blocks (astc-decode 0.3 misdecodes about 1% of the texels of random legal
//! blocks, by astcenc). Illegal encodings decode to the error colour
//! (magenta for LDR, NaN for HDR), HDR endpoints in the LDR profile the
//! texels of their partition, as astcenc does; nothing panics.

/// The decoding profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// LDR: UNORM16 results (HDR endpoints are errors).
    Ldr,
    /// HDR: half-float results.
    Hdr,
}

/// The levels a value can take in each quantisation mode, and its encoding
/// (trits, quints, bits).
const QUANT: [(u32, u32, u32); 21] = [
    (0, 0, 1),
    (1, 0, 0),
    (0, 0, 2),
    (0, 1, 0),
    (1, 0, 1),
    (0, 0, 3),
    (0, 1, 1),
    (1, 0, 2),
    (0, 0, 4),
    (0, 1, 2),
    (1, 0, 3),
    (0, 0, 5),
    (0, 1, 3),
    (1, 0, 4),
    (0, 0, 6),
    (0, 1, 4),
    (1, 0, 5),
    (0, 0, 7),
    (0, 1, 5),
    (1, 0, 6),
    (0, 0, 8),
];

/// Bits of an integer sequence of `n` values in quantisation mode `q`.
fn ise_bits(n: u32, q: usize) -> u32 {
    let (t, qu, b) = QUANT[q];
    n * b
        + if t == 1 { (8 * n).div_ceil(5) } else { 0 }
        + if qu == 1 { (7 * n).div_ceil(3) } else { 0 }
}

fn bits_at(v: u128, start: u32, n: u32) -> u32 {
    if n == 0 || start >= 128 {
        return 0;
    }
    ((v >> start) & ((1u128 << n) - 1)) as u32
}

/// Decodes `n` values of quantisation mode `q` from `data` starting at bit
/// `start`: (trit or quint value, low bits) of each.
fn decode_ise(data: u128, start: u32, n: usize, q: usize, out: &mut [(u32, u32)]) {
    let (t, qu, b) = QUANT[q];
    // Bits past the sequence read as zero (a last, partial group of trits or
    // quints is stored without the bits it does not need).
    let end = start + ise_bits(n as u32, q);
    let data = if end >= 128 {
        data
    } else {
        data & ((1u128 << end) - 1)
    };
    let mut pos = start;
    let mut read = |k: u32| {
        let v = bits_at(data, pos, k);
        pos += k;
        v
    };
    let mut i = 0;
    while i < n {
        if t == 1 {
            // Five values: m0 t[1:0] m1 t[3:2] m2 t[4] m3 t[6:5] m4 t[7].
            let mut m = [0u32; 5];
            let mut tt;
            m[0] = read(b);
            tt = read(2);
            m[1] = read(b);
            tt |= read(2) << 2;
            m[2] = read(b);
            tt |= read(1) << 4;
            m[3] = read(b);
            tt |= read(2) << 5;
            m[4] = read(b);
            tt |= read(1) << 7;
            let trits = decode_trits(tt);
            for k in 0..5 {
                if i + k < n {
                    out[i + k] = (trits[k], m[k]);
                }
            }
            i += 5;
        } else if qu == 1 {
            let mut m = [0u32; 3];
            let mut qq;
            m[0] = read(b);
            qq = read(3);
            m[1] = read(b);
            qq |= read(2) << 3;
            m[2] = read(b);
            qq |= read(2) << 5;
            let quints = decode_quints(qq);
            for k in 0..3 {
                if i + k < n {
                    out[i + k] = (quints[k], m[k]);
                }
            }
            i += 3;
        } else {
            out[i] = (0, read(b));
            i += 1;
        }
    }
}

fn bit(v: u32, i: u32) -> u32 {
    (v >> i) & 1
}

fn decode_trits(t: u32) -> [u32; 5] {
    let mut r = [0u32; 5];
    let c;
    if (t >> 2) & 7 == 7 {
        c = ((t >> 5) & 7) << 2 | (t & 3);
        r[4] = 2;
        r[3] = 2;
    } else {
        c = t & 0x1F;
        if (t >> 5) & 3 == 3 {
            r[4] = 2;
            r[3] = bit(t, 7);
        } else {
            r[4] = bit(t, 7);
            r[3] = (t >> 5) & 3;
        }
    }
    if c & 3 == 3 {
        r[2] = 2;
        r[1] = bit(c, 4);
        r[0] = bit(c, 3) << 1 | (bit(c, 2) & !bit(c, 3) & 1);
    } else if (c >> 2) & 3 == 3 {
        r[2] = 2;
        r[1] = 2;
        r[0] = c & 3;
    } else {
        r[2] = bit(c, 4);
        r[1] = (c >> 2) & 3;
        r[0] = bit(c, 1) << 1 | (bit(c, 0) & !bit(c, 1) & 1);
    }
    r
}

fn decode_quints(q: u32) -> [u32; 3] {
    let mut r = [0u32; 3];
    if (q >> 1) & 3 == 3 && (q >> 5) & 3 == 0 {
        r[0] = 4;
        r[1] = 4;
        r[2] = bit(q, 0) << 2 | ((bit(q, 4) & !bit(q, 0) & 1) << 1) | (bit(q, 3) & !bit(q, 0) & 1);
    } else {
        let c;
        if (q >> 1) & 3 == 3 {
            r[2] = 4;
            c = ((q >> 3) & 3) << 3 | ((!(q >> 5)) & 3) << 1 | bit(q, 0);
        } else {
            r[2] = (q >> 5) & 3;
            c = q & 0x1F;
        }
        if c & 7 == 5 {
            r[1] = 4;
            r[0] = (c >> 3) & 3;
        } else {
            r[1] = (c >> 3) & 3;
            r[0] = c & 7;
        }
    }
    r
}

/// Replicates the `n` low bits of `v` to fill `to` bits.
fn replicate(v: u32, n: u32, to: u32) -> u32 {
    if n == 0 {
        return 0;
    }
    let mut out = 0;
    let mut have = 0;
    while have < to {
        out = (out << n) | v;
        have += n;
    }
    out >> (have - to)
}

/// A colour value (0..=255) from its integer-sequence parts.
fn unquant_color(q: usize, (tq, m): (u32, u32)) -> u32 {
    let (t, qu, b) = QUANT[q];
    if t == 0 && qu == 0 {
        return replicate(m, b, 8);
    }
    let a = (m & 1) * 0x1FF;
    let x = m >> 1;
    let (c, bb) = if t == 1 {
        match b {
            1 => (204, 0),
            2 => (93, (x << 8) | (x << 4) | (x << 2) | (x << 1)),
            3 => (44, (x << 7) | (x << 2) | x),
            4 => (22, (x << 6) | x),
            5 => (11, (x << 5) | (x >> 2)),
            _ => (5, (x << 4) | (x >> 4)),
        }
    } else {
        match b {
            1 => (113, 0),
            2 => (54, (x << 8) | (x << 3) | (x << 2)),
            3 => (26, (x << 7) | (x << 1) | (x >> 1)),
            4 => (13, (x << 6) | (x >> 1)),
            _ => (6, (x << 5) | (x >> 3)),
        }
    };
    let v = (tq * c + bb) ^ a;
    (a & 0x80) | (v >> 2)
}

/// A weight (0..=64) from its integer-sequence parts.
fn unquant_weight(q: usize, (tq, m): (u32, u32)) -> u32 {
    let (t, qu, b) = QUANT[q];
    let w = if t == 0 && qu == 0 {
        replicate(m, b, 6)
    } else if b == 0 {
        if t == 1 {
            [0, 32, 63][tq.min(2) as usize]
        } else {
            [0, 16, 32, 47, 63][tq.min(4) as usize]
        }
    } else {
        let a = (m & 1) * 0x7F;
        let x = m >> 1;
        let (c, bb) = if t == 1 {
            match b {
                1 => (50, 0),
                2 => (23, (x << 6) | (x << 2) | x),
                _ => (11, (x << 5) | x),
            }
        } else {
            match b {
                1 => (28, 0),
                _ => (13, (x << 6) | (x << 1)),
            }
        };
        let v = (tq * c + bb) ^ a;
        (a & 0x20) | (v >> 2)
    };
    if w > 32 {
        w + 1
    } else {
        w
    }
}

/// Weight grid and weight quantisation of a block mode: (x, y, z, dual
/// plane, quantisation mode index into `QUANT`), or `None` if reserved.
fn block_mode(mode: u32, three_d: bool) -> Option<(u32, u32, u32, bool, usize)> {
    let mut base = (mode >> 4) & 1;
    let mut h = (mode >> 9) & 1;
    let mut d = (mode >> 10) & 1;
    let a = (mode >> 5) & 3;
    let (x, y, z);
    if !three_d {
        if mode & 3 != 0 {
            base |= (mode & 3) << 1;
            let b = (mode >> 7) & 3;
            (x, y) = match (mode >> 2) & 3 {
                0 => (b + 4, a + 2),
                1 => (b + 8, a + 2),
                2 => (a + 2, b + 8),
                _ if mode & 0x100 != 0 => ((b & 1) + 2, a + 2),
                _ => (a + 2, (b & 1) + 6),
            };
        } else {
            base |= ((mode >> 2) & 3) << 1;
            if (mode >> 2) & 3 == 0 {
                return None;
            }
            let b = (mode >> 9) & 3;
            (x, y) = match (mode >> 7) & 3 {
                0 => (12, a + 2),
                1 => (a + 2, 12),
                2 => {
                    d = 0;
                    h = 0;
                    (a + 6, b + 6)
                }
                _ => match a {
                    0 => (6, 10),
                    1 => (10, 6),
                    _ => return None,
                },
            };
        }
        z = 1;
    } else if mode & 3 != 0 {
        base |= (mode & 3) << 1;
        (x, y, z) = (a + 2, ((mode >> 7) & 3) + 2, ((mode >> 2) & 3) + 2);
    } else {
        base |= ((mode >> 2) & 3) << 1;
        if (mode >> 2) & 3 == 0 {
            return None;
        }
        let b = (mode >> 9) & 3;
        if (mode >> 7) & 3 != 3 {
            d = 0;
            h = 0;
        }
        (x, y, z) = match (mode >> 7) & 3 {
            0 => (6, b + 2, a + 2),
            1 => (a + 2, 6, b + 2),
            2 => (a + 2, b + 2, 6),
            _ => match a {
                0 => (6, 2, 2),
                1 => (2, 6, 2),
                2 => (2, 2, 6),
                _ => return None,
            },
        };
    }
    // Weight modes: base 2..=7 (and H) index QUANT_2 ... QUANT_32.
    let q = (base as i32 - 2) + 6 * h as i32;
    if !(0..12).contains(&q) {
        return None;
    }
    Some((x, y, z, d != 0, q as usize))
}

fn hash52(p: u32) -> u32 {
    let mut p = p;
    p ^= p >> 15;
    p = p.wrapping_sub(p << 17);
    p = p.wrapping_add(p << 7);
    p = p.wrapping_add(p << 4);
    p ^= p >> 5;
    p = p.wrapping_add(p << 16);
    p ^= p >> 7;
    p ^= p >> 3;
    p ^= p << 6;
    p ^= p >> 17;
    p
}

/// The partition function of one block (the specification's
/// `select_partition`): its per-seed constants are computed once per block,
/// not once per texel.
struct Partitioning {
    count: u32,
    small: bool,
    r: u32,
    s: [u32; 12],
}

impl Partitioning {
    /// Partition `seed` of `count` partitions; `small` for blocks of fewer
    /// than 31 texels (their coordinates are doubled).
    fn new(seed: u32, count: u32, small: bool) -> Self {
        let seed = seed + (count.max(1) - 1) * 1024;
        let r = hash52(seed);
        let mut s = [
            r & 0xF,
            (r >> 4) & 0xF,
            (r >> 8) & 0xF,
            (r >> 12) & 0xF,
            (r >> 16) & 0xF,
            (r >> 20) & 0xF,
            (r >> 24) & 0xF,
            (r >> 28) & 0xF,
            (r >> 18) & 0xF,
            (r >> 22) & 0xF,
            (r >> 26) & 0xF,
            r.rotate_left(2) & 0xF,
        ];
        let (sh1, sh2) = if seed & 1 != 0 {
            (
                if seed & 2 != 0 { 4 } else { 5 },
                if count == 3 { 6 } else { 5 },
            )
        } else {
            (
                if count == 3 { 6 } else { 5 },
                if seed & 2 != 0 { 4 } else { 5 },
            )
        };
        let sh3 = if seed & 0x10 != 0 { sh1 } else { sh2 };
        for (i, v) in s.iter_mut().enumerate() {
            let sh = match i {
                0 | 2 | 4 | 6 => sh1,
                1 | 3 | 5 | 7 => sh2,
                _ => sh3,
            };
            *v = (*v * *v) >> sh;
        }
        Self { count, small, r, s }
    }

    /// The partition of texel (x, y, z).
    fn of(&self, x: u32, y: u32, z: u32) -> usize {
        if self.count == 1 {
            return 0;
        }
        let (s, r) = (&self.s, self.r);
        let (x, y, z) = if self.small {
            (x << 1, y << 1, z << 1)
        } else {
            (x, y, z)
        };
        let a = (s[0] * x + s[1] * y + s[10] * z + (r >> 14)) & 0x3F;
        let b = (s[2] * x + s[3] * y + s[11] * z + (r >> 10)) & 0x3F;
        let c = if self.count >= 3 {
            (s[4] * x + s[5] * y + s[8] * z + (r >> 6)) & 0x3F
        } else {
            0
        };
        let d = if self.count >= 4 {
            (s[6] * x + s[7] * y + s[9] * z + (r >> 2)) & 0x3F
        } else {
            0
        };
        if a >= b && a >= c && a >= d {
            0
        } else if b >= c && b >= d {
            1
        } else if c >= d {
            2
        } else {
            3
        }
    }
}

/// Endpoints of one partition: UNORM16 (LDR) or 16-bit LNS (HDR) per
/// channel, and which channels are HDR (rgb, alpha). `None`: an HDR endpoint
/// in the LDR profile (the error colour).
fn unpack_endpoints(cem: u32, v: &[u32], profile: Profile) -> Option<Endpoints> {
    let ldr = |e0: [i32; 4], e1: [i32; 4]| {
        let c = |x: i32| x.clamp(0, 255) as u32 * 257;
        Some((e0.map(c), e1.map(c), false, false))
    };
    let bit_transfer = |a: i32, b: i32| -> (i32, i32) {
        let b2 = (b >> 1) | (a & 0x80);
        let mut a2 = (a >> 1) & 0x3F;
        if a2 & 0x20 != 0 {
            a2 -= 0x40;
        }
        (a2, b2)
    };
    let v: [i32; 8] = std::array::from_fn(|i| v.get(i).map_or(0, |&x| x as i32));
    let hdr_alpha = |profile: Profile| {
        if profile == Profile::Hdr {
            0x7800
        } else {
            0xFF * 257
        }
    };
    match cem {
        0 => ldr([v[0], v[0], v[0], 255], [v[1], v[1], v[1], 255]),
        1 => {
            let l0 = (v[0] >> 2) | (v[1] & 0xC0);
            let l1 = (l0 + (v[1] & 0x3F)).min(255);
            ldr([l0, l0, l0, 255], [l1, l1, l1, 255])
        }
        4 => ldr([v[0], v[0], v[0], v[2]], [v[1], v[1], v[1], v[3]]),
        5 => {
            let (b0, a0) = bit_transfer(v[1], v[0]);
            let (b2, a2) = bit_transfer(v[3], v[2]);
            ldr([a0, a0, a0, a2], [a0 + b0, a0 + b0, a0 + b0, a2 + b2])
        }
        6 => ldr(
            [
                (v[0] * v[3]) >> 8,
                (v[1] * v[3]) >> 8,
                (v[2] * v[3]) >> 8,
                255,
            ],
            [v[0], v[1], v[2], 255],
        ),
        8 | 12 => {
            let a = if cem == 12 { (v[6], v[7]) } else { (255, 255) };
            let s0 = v[0] + v[2] + v[4];
            let s1 = v[1] + v[3] + v[5];
            if s1 >= s0 {
                ldr([v[0], v[2], v[4], a.0], [v[1], v[3], v[5], a.1])
            } else {
                // Blue contraction, endpoints swapped.
                let bc = |r: i32, g: i32, b: i32, al: i32| [(r + b) >> 1, (g + b) >> 1, b, al];
                ldr(bc(v[1], v[3], v[5], a.1), bc(v[0], v[2], v[4], a.0))
            }
        }
        9 | 13 => {
            let (b0, a0) = bit_transfer(v[1], v[0]);
            let (b1, a1) = bit_transfer(v[3], v[2]);
            let (b2, a2) = bit_transfer(v[5], v[4]);
            let (b3, a3) = if cem == 13 {
                bit_transfer(v[7], v[6])
            } else {
                (0, 255)
            };
            if b0 + b1 + b2 >= 0 {
                ldr([a0, a1, a2, a3], [a0 + b0, a1 + b1, a2 + b2, a3 + b3])
            } else {
                let bc = |r: i32, g: i32, b: i32, al: i32| [(r + b) >> 1, (g + b) >> 1, b, al];
                ldr(bc(a0 + b0, a1 + b1, a2 + b2, a3 + b3), bc(a0, a1, a2, a3))
            }
        }
        10 => ldr(
            [
                (v[0] * v[3]) >> 8,
                (v[1] * v[3]) >> 8,
                (v[2] * v[3]) >> 8,
                v[4],
            ],
            [v[0], v[1], v[2], v[5]],
        ),
        _ if profile == Profile::Ldr => None,
        2 => {
            let (y0, y1) = if v[1] >= v[0] {
                (v[0] << 4, v[1] << 4)
            } else {
                ((v[1] << 4) + 8, (v[0] << 4) - 8)
            };
            let a = hdr_alpha(profile);
            let (y0, y1) = ((y0 << 4) as u32, (y1 << 4) as u32);
            Some(([y0, y0, y0, a], [y1, y1, y1, a], true, true))
        }
        3 => {
            let (y0, d) = if v[0] & 0x80 != 0 {
                (
                    ((v[1] & 0xE0) << 4) | ((v[0] & 0x7F) << 2),
                    (v[1] & 0x1F) << 2,
                )
            } else {
                (
                    ((v[1] & 0xF0) << 4) | ((v[0] & 0x7F) << 1),
                    (v[1] & 0xF) << 1,
                )
            };
            let y1 = (y0 + d).min(0xFFF);
            let a = hdr_alpha(profile);
            let (y0, y1) = ((y0 << 4) as u32, (y1 << 4) as u32);
            Some(([y0, y0, y0, a], [y1, y1, y1, a], true, true))
        }
        7 => {
            let (e0, e1) = hdr_rgbo(&v);
            let a = hdr_alpha(profile);
            Some((
                [e0[0], e0[1], e0[2], a],
                [e1[0], e1[1], e1[2], a],
                true,
                true,
            ))
        }
        11 => {
            let (e0, e1) = hdr_rgb(&v);
            let a = hdr_alpha(profile);
            Some((
                [e0[0], e0[1], e0[2], a],
                [e1[0], e1[1], e1[2], a],
                true,
                true,
            ))
        }
        14 => {
            let (e0, e1) = hdr_rgb(&v);
            Some((
                [e0[0], e0[1], e0[2], v[6] as u32 * 257],
                [e1[0], e1[1], e1[2], v[7] as u32 * 257],
                true,
                false,
            ))
        }
        _ => {
            // 15: HDR RGB and HDR alpha.
            let (e0, e1) = hdr_rgb(&v);
            let (a0, a1) = hdr_alpha_unpack(v[6], v[7]);
            Some((
                [e0[0], e0[1], e0[2], a0],
                [e1[0], e1[1], e1[2], a1],
                true,
                true,
            ))
        }
    }
}

/// HDR RGB + offset (endpoint mode 7): 12-bit values, shifted to 16.
fn hdr_rgbo(v: &[i32]) -> ([u32; 3], [u32; 3]) {
    let (v0, v1, v2, v3) = (v[0], v[1], v[2], v[3]);
    let modeval = ((v0 & 0xC0) >> 6) | (((v1 & 0x80) >> 7) << 2) | (((v2 & 0x80) >> 7) << 3);
    let (majcomp, mode) = if modeval & 0xC != 0xC {
        (modeval >> 2, modeval & 3)
    } else if modeval != 0xF {
        (modeval & 3, 4)
    } else {
        (0, 5)
    };
    let (mut red, mut green, mut blue, mut scale) = (v0 & 0x3F, v1 & 0x1F, v2 & 0x1F, v3 & 0x1F);
    let b = |x: i32, i: i32| (x >> i) & 1;
    let (bit0, bit1, bit2, bit3) = (b(v1, 6), b(v1, 5), b(v2, 6), b(v2, 5));
    let (bit4, bit5, bit6) = (b(v3, 7), b(v3, 6), b(v3, 5));
    let oh = 1 << mode;
    if oh & 0x30 != 0 {
        green |= bit0 << 6;
    }
    if oh & 0x3A != 0 {
        green |= bit1 << 5;
    }
    if oh & 0x30 != 0 {
        blue |= bit2 << 6;
    }
    if oh & 0x3A != 0 {
        blue |= bit3 << 5;
    }
    if oh & 0x3D != 0 {
        scale |= bit6 << 5;
    }
    if oh & 0x2D != 0 {
        scale |= bit5 << 6;
    }
    if oh & 0x04 != 0 {
        scale |= bit4 << 7;
    }
    if oh & 0x3B != 0 {
        red |= bit4 << 6;
    }
    if oh & 0x04 != 0 {
        red |= bit3 << 6;
    }
    if oh & 0x10 != 0 {
        red |= bit5 << 7;
    }
    if oh & 0x0F != 0 {
        red |= bit2 << 7;
    }
    if oh & 0x05 != 0 {
        red |= bit1 << 8;
    }
    if oh & 0x0A != 0 {
        red |= bit0 << 8;
    }
    if oh & 0x05 != 0 {
        red |= bit0 << 9;
    }
    if oh & 0x02 != 0 {
        red |= bit6 << 9;
    }
    if oh & 0x01 != 0 {
        red |= bit3 << 10;
    }
    if oh & 0x02 != 0 {
        red |= bit5 << 10;
    }
    let shamt = [1, 1, 2, 3, 4, 5][mode as usize];
    red <<= shamt;
    green <<= shamt;
    blue <<= shamt;
    scale <<= shamt;
    if mode != 5 {
        green = red - green;
        blue = red - blue;
    }
    match majcomp {
        1 => std::mem::swap(&mut red, &mut green),
        2 => std::mem::swap(&mut red, &mut blue),
        _ => {}
    }
    let c = |x: i32| (x.max(0) as u32) << 4;
    (
        [c(red - scale), c(green - scale), c(blue - scale)],
        [c(red), c(green), c(blue)],
    )
}

/// HDR RGB (endpoint modes 11, 14, 15): 12-bit values, shifted to 16.
fn hdr_rgb(v: &[i32]) -> ([u32; 3], [u32; 3]) {
    let (v0, v1, v2, v3, v4, v5) = (v[0], v[1], v[2], v[3], v[4], v[5]);
    let modeval = ((v1 & 0x80) >> 7) | (((v2 & 0x80) >> 7) << 1) | (((v3 & 0x80) >> 7) << 2);
    let majcomp = ((v4 & 0x80) >> 7) | (((v5 & 0x80) >> 7) << 1);
    if majcomp == 3 {
        return (
            [
                (v0 << 8) as u32,
                (v2 << 8) as u32,
                ((v4 & 0x7F) << 9) as u32,
            ],
            [
                (v1 << 8) as u32,
                (v3 << 8) as u32,
                ((v5 & 0x7F) << 9) as u32,
            ],
        );
    }
    let mut a = v0 | ((v1 & 0x40) << 2);
    let (mut b0, mut b1, mut c) = (v2 & 0x3F, v3 & 0x3F, v1 & 0x3F);
    let (mut d0, mut d1) = (v4 & 0x7F, v5 & 0x7F);
    let dbits = [7, 6, 7, 6, 5, 6, 5, 6][modeval as usize];
    let b = |x: i32, i: i32| (x >> i) & 1;
    let (bit0, bit1, bit2, bit3, bit4, bit5) =
        (b(v2, 6), b(v3, 6), b(v4, 6), b(v5, 6), b(v4, 5), b(v5, 5));
    let oh = 1 << modeval;
    if oh & 0xA4 != 0 {
        a |= bit0 << 9;
    }
    if oh & 0x8 != 0 {
        a |= bit2 << 9;
    }
    if oh & 0x50 != 0 {
        a |= bit4 << 9;
    }
    if oh & 0x50 != 0 {
        a |= bit5 << 10;
    }
    if oh & 0xA0 != 0 {
        a |= bit1 << 10;
    }
    if oh & 0xC0 != 0 {
        a |= bit2 << 11;
    }
    if oh & 0x4 != 0 {
        c |= bit1 << 6;
    }
    if oh & 0xE8 != 0 {
        c |= bit3 << 6;
    }
    if oh & 0x20 != 0 {
        c |= bit2 << 7;
    }
    if oh & 0x5B != 0 {
        b0 |= bit0 << 6;
        b1 |= bit1 << 6;
    }
    if oh & 0x12 != 0 {
        b0 |= bit2 << 7;
        b1 |= bit3 << 7;
    }
    if oh & 0xAF != 0 {
        d0 |= bit4 << 5;
        d1 |= bit5 << 5;
    }
    if oh & 0x5 != 0 {
        d0 |= bit2 << 6;
        d1 |= bit3 << 6;
    }
    let sx = 32 - dbits;
    d0 = (d0 << sx) >> sx;
    d1 = (d1 << sx) >> sx;
    let shamt = (modeval >> 1) ^ 3;
    a <<= shamt;
    b0 <<= shamt;
    b1 <<= shamt;
    c <<= shamt;
    d0 <<= shamt;
    d1 <<= shamt;
    let cl = |x: i32| x.clamp(0, 4095);
    let mut e1 = [cl(a), cl(a - b0), cl(a - b1)];
    let mut e0 = [cl(a - c), cl(a - b0 - c - d0), cl(a - b1 - c - d1)];
    match majcomp {
        1 => {
            e0.swap(0, 1);
            e1.swap(0, 1);
        }
        2 => {
            e0.swap(0, 2);
            e1.swap(0, 2);
        }
        _ => {}
    }
    let s = |x: i32| (x as u32) << 4;
    (e0.map(s), e1.map(s))
}

fn hdr_alpha_unpack(v6: i32, v7: i32) -> (u32, u32) {
    let selector = ((v6 >> 7) & 1) | ((v7 >> 6) & 2);
    let (mut a0, mut a1) = (v6 & 0x7F, v7 & 0x7F);
    if selector == 3 {
        a0 <<= 5;
        a1 <<= 5;
    } else {
        a0 |= (a1 << (selector + 1)) & 0x780;
        a1 &= 0x3F >> selector;
        a1 ^= 32 >> selector;
        a1 -= 32 >> selector;
        a0 <<= 4 - selector;
        a1 <<= 4 - selector;
        a1 += a0;
        a1 = a1.clamp(0, 0xFFF);
    }
    ((a0 as u32) << 4, (a1 as u32) << 4)
}

/// 16-bit LNS to half float.
fn lns_to_f16(p: u32) -> u16 {
    let mc = p & 0x7FF;
    let ec = p >> 11;
    let mt = if mc < 512 {
        3 * mc
    } else if mc < 1536 {
        4 * mc - 512
    } else {
        5 * mc - 2048
    };
    ((ec << 10) | (mt >> 3)).min(0x7BFF) as u16
}

/// UNORM16 to half float.
fn unorm16_to_f16(p: u32) -> u16 {
    if p >= 0xFFFF {
        return 0x3C00;
    }
    if p < 4 {
        return (p << 8) as u16;
    }
    let lz = p.leading_zeros() - 16;
    let mut q = p << (lz + 1);
    q = (q & 0xFFFF) >> 6;
    (q | (14 - lz) << 10) as u16
}

/// A texel between a partition's endpoints (`unpack_endpoints`) at weight
/// `w0`, or `w1` for channel `plane2` (the second plane's; 4: none).
#[inline(always)]
fn interpolate(
    &(e0, e1, rgb_hdr, alpha_hdr): &Endpoints,
    w0: u32,
    w1: u32,
    plane2: usize,
    profile: Profile,
) -> [u16; 4] {
    std::array::from_fn(|c| {
        let wt = if c == plane2 { w1 } else { w0 };
        let v = (e0[c] * (64 - wt) + e1[c] * wt + 32) >> 6;
        match profile {
            Profile::Ldr => v as u16,
            Profile::Hdr => {
                let hdr = if c < 3 { rgb_hdr } else { alpha_hdr };
                if hdr {
                    lns_to_f16(v)
                } else {
                    unorm16_to_f16(v)
                }
            }
        }
    })
}

/// A block decoded up to its texels: one colour, the error colour, or
/// endpoints and a weight grid. Unboxed: it lives on the stack for one block,
/// and the decoder's rate is what a box per block would cost.
#[allow(clippy::large_enum_variant)]
enum Symbolic {
    /// A void extent: every texel this colour (UNORM16 for the LDR profile,
    /// half floats for HDR).
    Constant([u16; 4]),
    /// An illegal encoding: the profile's error colour.
    Error,
    /// Endpoints per partition and the weight grid they are mixed by.
    Weighted(Weighted),
}

/// A block's endpoints (`unpack_endpoints`) per partition, its partition
/// function and its weight grid.
struct Weighted {
    eps: [Endpoints; 4],
    partition: Partitioning,
    /// The grid's unquantised weights (0..=64), planes interleaved.
    weights: [u32; 64],
    /// The grid's size in weights (x, y, z).
    grid: (u32, u32, u32),
    dual: bool,
    /// The channel the second plane weighs (4: none).
    plane2: usize,
}

/// One partition's endpoints: UNORM16 (or LNS) per channel, and which
/// channels are HDR (rgb, alpha).
type Endpoints = ([u32; 4], [u32; 4], bool, bool);

/// The specification's decoding of one block up to its texels: block mode
/// and weight grid, partitions and endpoint modes, the integer sequences of
/// weights and colour values, endpoint unpacking.
fn symbolic(block: &[u8; 16], dims: (u32, u32, u32), profile: Profile) -> Symbolic {
    let n = (dims.0 * dims.1 * dims.2) as usize;
    let data = u128::from_le_bytes(*block);
    let mode = bits_at(data, 0, 11);
    let three_d = dims.2 > 1;
    // Void extent: one colour.
    if mode & 0x1FF == 0x1FC {
        let hdr = mode & 0x200 != 0;
        let valid = if three_d {
            let e: [u32; 6] = std::array::from_fn(|i| bits_at(data, 10 + 9 * i as u32, 9));
            e.iter().all(|&v| v == 0x1FF) || (e[0] < e[1] && e[2] < e[3] && e[4] < e[5])
        } else {
            let e: [u32; 4] = std::array::from_fn(|i| bits_at(data, 12 + 13 * i as u32, 13));
            bits_at(data, 10, 2) == 3
                && (e.iter().all(|&v| v == 0x1FFF) || (e[0] < e[1] && e[2] < e[3]))
        };
        if !valid || (hdr && profile == Profile::Ldr) {
            return Symbolic::Error;
        }
        let c: [u32; 4] = std::array::from_fn(|i| bits_at(data, 64 + 16 * i as u32, 16));
        let texel = match (profile, hdr) {
            (Profile::Hdr, true) => c.map(|v| v as u16),
            (Profile::Hdr, false) => c.map(unorm16_to_f16),
            (Profile::Ldr, _) => c.map(|v| v as u16),
        };
        return Symbolic::Constant(texel);
    }
    let Some((wx, wy, wz, dual, wq)) = block_mode(mode, three_d) else {
        return Symbolic::Error;
    };
    let weight_count = wx * wy * wz * (1 + dual as u32);
    let weight_bits = ise_bits(weight_count, wq);
    if weight_count > 64
        || !(24..=96).contains(&weight_bits)
        || wx > dims.0
        || wy > dims.1
        || wz > dims.2
    {
        return Symbolic::Error;
    }
    let partitions = bits_at(data, 11, 2) + 1;
    if dual && partitions == 4 {
        return Symbolic::Error;
    }
    // Colour endpoint modes.
    let mut cems = [0u32; 4];
    let mut below_weights = 128 - weight_bits;
    let mut extra_bits = 0;
    let (partition_index, color_start) = if partitions == 1 {
        cems[0] = bits_at(data, 13, 4);
        (0, 17)
    } else {
        let high = 3 * partitions - 4;
        let encoded = bits_at(data, 23, 6) | (bits_at(data, below_weights - high, high) << 6);
        let base = encoded & 3;
        if base == 0 {
            for c in cems.iter_mut().take(partitions as usize) {
                *c = (encoded >> 2) & 0xF;
            }
        } else {
            below_weights -= high;
            extra_bits = high;
            let mut pos = 2;
            for c in cems.iter_mut().take(partitions as usize) {
                *c = (((encoded >> pos) & 1) + base - 1) << 2;
                pos += 1;
            }
            for c in cems.iter_mut().take(partitions as usize) {
                *c |= (encoded >> pos) & 3;
                pos += 2;
            }
        }
        (bits_at(data, 13, 10), 29)
    };
    let value_count: u32 = cems[..partitions as usize]
        .iter()
        .map(|c| ((c >> 2) + 1) * 2)
        .sum();
    if value_count > 18 {
        return Symbolic::Error;
    }
    let mut color_bits = 128i32 - color_start as i32 - weight_bits as i32 - extra_bits as i32;
    if dual {
        color_bits -= 2;
    }
    let color_bits = color_bits.max(0) as u32;
    let Some(cq) = (0..21)
        .rev()
        .find(|&q| ise_bits(value_count, q) <= color_bits)
    else {
        return Symbolic::Error;
    };
    if cq < 4 {
        return Symbolic::Error;
    }
    let mut raw = [(0u32, 0u32); 18];
    decode_ise(data, color_start, value_count as usize, cq, &mut raw);
    let mut values = [0u32; 18];
    for (v, &r) in values.iter_mut().zip(&raw[..value_count as usize]) {
        *v = unquant_color(cq, r);
    }
    let plane2 = if dual {
        bits_at(data, below_weights - 2, 2) as usize
    } else {
        4
    };
    // Weights, from the bit-reversed block.
    let reversed = data.reverse_bits();
    let mut wraw = [(0u32, 0u32); 64];
    decode_ise(reversed, 0, weight_count as usize, wq, &mut wraw);
    let mut weights = [0u32; 64];
    for (w, &r) in weights.iter_mut().zip(&wraw[..weight_count as usize]) {
        *w = unquant_weight(wq, r);
    }
    // Endpoints per partition. HDR endpoints in the LDR profile make their
    // partition's texels the error colour, as Arm's astcenc and astc-decode
    // decode them (the specification: "decoding from a HDR endpoint results
    // in the error color").
    let mut eps = [([0u32; 4], [0u32; 4], false, false); 4];
    let mut at = 0;
    for p in 0..partitions as usize {
        let k = (((cems[p] >> 2) + 1) * 2) as usize;
        const MAGENTA: [u32; 4] = [0xFFFF, 0, 0xFFFF, 0xFFFF];
        eps[p] = unpack_endpoints(cems[p], &values[at..at + k], profile)
            .unwrap_or((MAGENTA, MAGENTA, false, false));
        at += k;
    }
    Symbolic::Weighted(Weighted {
        eps,
        partition: Partitioning::new(partition_index, partitions, n < 31),
        weights,
        grid: (wx, wy, wz),
        dual,
        plane2,
    })
}

/// The error colour of `profile`: magenta for LDR (UNORM16), NaN for HDR.
fn error_colour(profile: Profile) -> [u16; 4] {
    match profile {
        Profile::Hdr => [0xFFFF; 4],
        Profile::Ldr => [0xFFFF, 0, 0xFFFF, 0xFFFF],
    }
}

/// Bilinear infill of a 2D block's weights (`dims` texels): each texel's
/// weight in each plane, x fastest. Positions along each axis are computed
/// once per block; a factor of 0 never reads past the grid.
#[inline(always)]
fn infill_2d(w: &Weighted, dims: (u32, u32)) -> [[u32; 144]; 2] {
    let (wx, wy, _) = w.grid;
    let planes = 1 + w.dual as usize;
    let mut out = [[0u32; 144]; 2];
    if (wx, wy) == dims {
        // The grid is the block: each texel has its own weight.
        for (p, plane) in out.iter_mut().enumerate().take(planes) {
            for (i, t) in plane[..(wx * wy) as usize].iter_mut().enumerate() {
                *t = w.weights[i * planes + p];
            }
        }
        return out;
    }
    let gx: [u32; 12] = std::array::from_fn(|x| grid_position(x as u32, dims.0, wx));
    let gy: [u32; 12] = std::array::from_fn(|y| grid_position(y as u32, dims.1, wy));
    let get = |i: u32, p: usize| w.weights.get(i as usize * planes + p).copied().unwrap_or(0);
    let mut i = 0;
    for &g_y in &gy[..dims.1 as usize] {
        let (jy, fy) = (g_y >> 4, g_y & 15);
        for &g_x in &gx[..dims.0 as usize] {
            let (jx, fx) = (g_x >> 4, g_x & 15);
            let v0 = jy * wx + jx;
            let w11 = (fx * fy + 8) >> 4;
            let (w01, w10) = (fx - w11, fy - w11);
            let w00 = 16 + w11 - fx - fy;
            for (p, plane) in out.iter_mut().enumerate().take(planes) {
                let f = |i: u32, f: u32| if f > 0 { get(i, p) * f } else { 0 };
                plane[i] =
                    (get(v0, p) * w00 + f(v0 + 1, w01) + f(v0 + wx, w10) + f(v0 + wx + 1, w11) + 8)
                        >> 4;
            }
            i += 1;
        }
    }
    out
}

/// A texel's position in the weight grid along one axis, in sixteenths (the
/// specification's Gs, Gt, Gr).
fn grid_position(t: u32, texels: u32, ws: u32) -> u32 {
    if texels < 2 {
        return 0;
    }
    (((1024 + texels / 2) / (texels - 1)) * t * (ws - 1) + 32) >> 6
}

/// Decodes one block of `dims` texels (x, y, z) into `out` (x fastest, then
/// y, then z): UNORM16 per channel for [`Profile::Ldr`], half-float bits for
/// [`Profile::Hdr`].
pub fn decode_block(
    block: &[u8; 16],
    dims: (u32, u32, u32),
    profile: Profile,
    out: &mut [[u16; 4]],
) {
    let n = (dims.0 * dims.1 * dims.2) as usize;
    if out.len() < n || n == 0 {
        return;
    }
    let w = match symbolic(block, dims, profile) {
        Symbolic::Constant(c) => return out[..n].fill(c),
        Symbolic::Error => return out[..n].fill(error_colour(profile)),
        Symbolic::Weighted(w) => w,
    };
    let texel = |x: u32, y: u32, z: u32, w0: u32, w1: u32| {
        interpolate(&w.eps[w.partition.of(x, y, z)], w0, w1, w.plane2, profile)
    };
    if dims.2 == 1 {
        let tw = infill_2d(&w, (dims.0, dims.1));
        for y in 0..dims.1 {
            for x in 0..dims.0 {
                let i = (y * dims.0 + x) as usize;
                let w1 = if w.dual { tw[1][i] } else { tw[0][i] };
                out[i] = texel(x, y, 0, tw[0][i], w1);
            }
        }
        return;
    }
    let (wx, wy, _) = w.grid;
    let planes = 1 + w.dual as usize;
    let get = |i: u32, p: usize| w.weights.get(i as usize * planes + p).copied().unwrap_or(0);
    for z in 0..dims.2 {
        for y in 0..dims.1 {
            for x in 0..dims.0 {
                // Simplex infill.
                let infill = |plane: usize| -> u32 {
                    let (gx, gy, gz) = (
                        grid_position(x, dims.0, wx),
                        grid_position(y, dims.1, wy),
                        grid_position(z, dims.2, w.grid.2),
                    );
                    let (fs, ft, fp) = (gx & 15, gy & 15, gz & 15);
                    let q0 = ((gz >> 4) * wy + (gy >> 4)) * wx + (gx >> 4);
                    let (nn, nm) = (wx, wx * wy);
                    let case = ((fs > ft) as u32) << 2 | ((ft > fp) as u32) << 1 | (fs > fp) as u32;
                    let (s1, s2, w0, w1, w2, w3) = match case {
                        7 => (1, nn, 16 - fs, fs - ft, ft - fp, fp),
                        3 => (nn, 1, 16 - ft, ft - fs, fs - fp, fp),
                        5 => (1, nm, 16 - fs, fs - fp, fp - ft, ft),
                        4 => (nm, 1, 16 - fp, fp - fs, fs - ft, ft),
                        2 => (nn, nm, 16 - ft, ft - fp, fp - fs, fs),
                        _ => (nm, nn, 16 - fp, fp - ft, ft - fs, fs),
                    };
                    let q1 = q0 + s1;
                    let q2 = q1 + s2;
                    let q3 = q0 + nm + nn + 1;
                    let p = |i: u32, wt: u32| if wt > 0 { get(i, plane) * wt } else { 0 };
                    (p(q0, w0) + p(q1, w1) + p(q2, w2) + p(q3, w3) + 8) >> 4
                };
                let w0 = infill(0);
                let w1 = if w.dual { infill(1) } else { w0 };
                out[((z * dims.1 + y) * dims.0 + x) as usize] = texel(x, y, z, w0, w1);
            }
        }
    }
}

/// Decodes one 2D block (`bw` x `bh` texels) in the LDR profile straight to
/// RGBA8 in `dst`, its rows `pitch` bytes apart: each UNORM16 value `v` as
/// `(v * 255 + 32767) >> 16`, the bytes astc-decode gives. Rows `dst` does
/// not hold are left out.
pub fn decode_block_rgba8(block: &[u8; 16], (bw, bh): (u32, u32), dst: &mut [u8], pitch: usize) {
    let to8 = |v: u32| ((v * 255 + 32767) >> 16) as u8;
    let w = bw as usize;
    let mut rows = dst.chunks_mut(pitch).take(bh as usize);
    let fill = |rows: &mut dyn Iterator<Item = &mut [u8]>, c: [u16; 4]| {
        let px = c.map(|v| to8(v as u32));
        for row in rows {
            for out in row.chunks_exact_mut(4).take(w) {
                out.copy_from_slice(&px);
            }
        }
    };
    if bw * bh == 0 || bw > 12 || bh > 12 {
        return;
    }
    let wt = match symbolic(block, (bw, bh, 1), Profile::Ldr) {
        Symbolic::Constant(c) => return fill(&mut rows, c),
        Symbolic::Error => return fill(&mut rows, error_colour(Profile::Ldr)),
        Symbolic::Weighted(wt) => wt,
    };
    let tw = infill_2d(&wt, (bw, bh));
    let single = wt.partition.count == 1;
    for (y, row) in rows.enumerate() {
        for (x, out) in row.chunks_exact_mut(4).take(w).enumerate() {
            let i = y * w + x;
            let part = if single {
                0
            } else {
                wt.partition.of(x as u32, y as u32, 0)
            };
            let (e0, e1, _, _) = wt.eps[part];
            let w0 = tw[0][i];
            let w1 = if wt.dual { tw[1][i] } else { w0 };
            let px: [u8; 4] = std::array::from_fn(|c| {
                let wc = if c == wt.plane2 { w1 } else { w0 };
                to8((e0[c] * (64 - wc) + e1[c] * wc + 32) >> 6)
            });
            out.copy_from_slice(&px);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_never_panics() {
        let mut out = vec![[0u16; 4]; 216];
        let mut s = 0x1234_5678_9abc_def0u64;
        for _ in 0..20_000 {
            let mut b = [0u8; 16];
            for v in &mut b {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                *v = s as u8;
            }
            for dims in [(4, 4, 1), (12, 12, 1), (3, 3, 3), (6, 6, 6), (5, 4, 1)] {
                for p in [Profile::Ldr, Profile::Hdr] {
                    decode_block(&b, dims, p, &mut out);
                }
            }
        }
    }

    #[test]
    fn conversions() {
        assert_eq!(unorm16_to_f16(0xFFFF), 0x3C00);
        assert_eq!(unorm16_to_f16(0x8000), 0x3800); // 0.5
        assert_eq!(lns_to_f16(0), 0);
        assert_eq!(replicate(0b101, 3, 8), 0b1011_0110);
    }
}
