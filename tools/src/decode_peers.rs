//! The decoders forgeflow's block decoding is measured against, on the same
//! blocks (`forgeflow-stress texture --compare`, `benches/decode.rs`): whole
//! square images through texture2ddecoder's and astc-decode's image APIs and
//! through bcdec_rs block by block, each into an image the caller reuses.

/// The `side`x`side` image of `vk`'s blocks through texture2ddecoder (BGRA in
/// `out`), if it has the format.
pub fn texture2ddecoder_image(
    vk: u32,
    side: usize,
    data: &[u8],
    out: &mut [u32],
) -> Option<Result<(), &'static str>> {
    let (w, h) = (side, side);
    Some(match vk {
        133 => texture2ddecoder::decode_bc1(data, w, h, out),
        135 => texture2ddecoder::decode_bc2(data, w, h, out),
        137 => texture2ddecoder::decode_bc3(data, w, h, out),
        139 => texture2ddecoder::decode_bc4(data, w, h, out),
        141 => texture2ddecoder::decode_bc5(data, w, h, out),
        143 => texture2ddecoder::decode_bc6_unsigned(data, w, h, out),
        145 => texture2ddecoder::decode_bc7(data, w, h, out),
        149 => texture2ddecoder::decode_etc2_rgba1(data, w, h, out),
        151 => texture2ddecoder::decode_etc2_rgba8(data, w, h, out),
        153 => texture2ddecoder::decode_eacr(data, w, h, out),
        155 => texture2ddecoder::decode_eacrg(data, w, h, out),
        157 => texture2ddecoder::decode_astc(data, w, h, 4, 4, out),
        183 => texture2ddecoder::decode_astc(data, w, h, 12, 12, out),
        _ => return None,
    })
}

/// The `side`x`side` image of `vk`'s blocks through bcdec_rs, block by block
/// (RGBA8 into `rgba8`, or RGB halves into `half` for BC6H); `false` if it
/// has no such format.
pub fn bcdec_image(vk: u32, side: usize, data: &[u8], rgba8: &mut [u8], half: &mut [u16]) -> bool {
    if !matches!(vk, 133 | 135 | 137 | 139 | 141 | 143 | 145) {
        return false;
    }
    let bytes = if matches!(vk, 133 | 139) { 8 } else { 16 };
    for (i, block) in data.chunks_exact(bytes).enumerate() {
        let (bx, by) = (i % (side / 4), i / (side / 4));
        if vk == 143 {
            let at = (by * 4 * side + bx * 4) * 3;
            bcdec_rs::bc6h_half(block, &mut half[at..], side * 3, false);
            continue;
        }
        let dst = &mut rgba8[(by * 4 * side + bx * 4) * 4..];
        match vk {
            133 => bcdec_rs::bc1(block, dst, side * 4),
            135 => bcdec_rs::bc2(block, dst, side * 4),
            137 => bcdec_rs::bc3(block, dst, side * 4),
            139 => bcdec_rs::bc4(block, dst, side, false),
            141 => bcdec_rs::bc5(block, dst, side * 2, false),
            _ => bcdec_rs::bc7(block, dst, side * 4),
        }
    }
    true
}

/// The `side`x`side` image of `vk`'s blocks through astc-decode's image
/// decoder (RGBA8 into `rgba8`), for the ASTC 4x4 and 12x12 UNORM formats;
/// `false` for others or if it refuses the blocks.
pub fn astc_decode_image(vk: u32, side: usize, data: &[u8], rgba8: &mut [u8]) -> bool {
    let (bw, bh) = match vk {
        157 => (4, 4),
        183 => (12, 12),
        _ => return false,
    };
    astc_decode::astc_decode(
        data,
        side as u32,
        side as u32,
        astc_decode::Footprint::new(bw, bh),
        |x, y, rgba| {
            let at = (y as usize * side + x as usize) * 4;
            rgba8[at..at + 4].copy_from_slice(&rgba);
        },
    )
    .is_ok()
}
