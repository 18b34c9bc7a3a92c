//! PNG files made by tests and tools.

/// An 8-bit RGBA PNG of `w` x `h` `pixels` (rows tightly packed).
///
/// # Panics
/// When `pixels` is not `w * h * 4` bytes long.
pub fn rgba(w: u32, h: u32, pixels: &[u8]) -> Vec<u8> {
    let mut file = Vec::new();
    let mut enc = png::Encoder::new(&mut file, w, h);
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()
        .and_then(|mut writer| writer.write_image_data(pixels))
        .expect("w x h RGBA pixels");
    file
}
