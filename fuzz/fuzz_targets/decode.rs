//! Any blocks through any decoder: the first bytes pick the format and the
//! size, the rest are the blocks. Nothing may panic, whatever the blocks
//! (texture2ddecoder panics on corrupt ASTC; forgeflow must not).
#![no_main]

use forgeflow_jobs::texture::decode::{decode, decode_3d};

const FORMATS: [u32; 33] = [
    131, 133, 135, 137, 139, 140, 141, 142, 143, 144, 145, 147, 149, 151, 153, 154, 155, 156,
    157, 159, 163, 167, 171, 175, 179, 183, 158, 1_000_066_000, 1_000_066_013,
    // 3D ASTC: 3x3x3 UNORM, 4x4x4 SFLOAT, 6x6x6 SRGB and SFLOAT.
    1_000_288_000, 1_000_288_011, 1_000_288_028, 1_000_288_029,
];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let [f, w, h, rest @ ..] = data else { return };
    let vk = FORMATS[*f as usize % FORMATS.len()];
    let (w, h) = (1 + *w as u32 % 40, 1 + *h as u32 % 40);
    if vk >= 1_000_288_000 {
        let _ = decode_3d(vk, rest, w, h, 1 + w % 6);
    } else {
        let _ = decode(vk, rest, w, h);
    }
});
