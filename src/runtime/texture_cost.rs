//! What a staged byte of texture work costs, learned per format.
//!
//! A frame bounds its texture work by time (`texture_upload_ms_per_frame`),
//! so it must know what a byte of each texture costs before declaring it. A
//! CPU decode costs from about 0.2 ns a staged byte (BC1) to 50 (3D ASTC on
//! one core): a mean over formats would let a slow format's first frame
//! declare ten times its budget. Costs are therefore kept per format and
//! per path (copied as is, or decoded on the CPU), and a texture of a
//! format not measured yet declares a small probe in its first frame.

use std::collections::HashMap;

/// Staging bytes that a texture of a format not measured yet declares in
/// its first frame (at least one band of block rows: see
/// [`TextureUpload::step`](crate::texture::TextureUpload::step)); nothing
/// else is declared after it in that frame.
pub(super) const PROBE_BYTES: u64 = 64 << 10;

/// How much of the previous estimate a new sample keeps.
const KEEP: f64 = 0.75;

/// Measured cost (ns) of a staged byte, per format and path.
#[derive(Debug, Default)]
pub(super) struct TextureCosts {
    /// `(native, vk_format)` to ns per staged byte.
    by_format: HashMap<(bool, u32), f64>,
}

impl TextureCosts {
    /// The cost of a staged byte of `vk_format` on that path, once measured.
    pub(super) fn get(&self, native: bool, vk_format: u32) -> Option<f64> {
        self.by_format.get(&(native, vk_format)).copied()
    }

    /// Folds in a frame's measurement: `ns` of job time for `staged` bytes.
    pub(super) fn record(&mut self, native: bool, vk_format: u32, ns: f64, staged: u64) {
        if staged == 0 {
            return;
        }
        let sample = ns / staged as f64;
        self.by_format
            .entry((native, vk_format))
            .and_modify(|c| *c = KEEP * *c + (1.0 - KEEP) * sample)
            .or_insert(sample);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_paths_are_learned_apart() {
        let mut c = TextureCosts::default();
        assert_eq!(c.get(false, 131), None);
        c.record(false, 131, 1000.0, 1000); // 1 ns a byte
        c.record(false, 157, 50_000.0, 1000); // 50 ns a byte
        assert_eq!(c.get(false, 131), Some(1.0));
        assert_eq!(c.get(false, 157), Some(50.0));
        assert_eq!(c.get(true, 131), None, "a copy is not a decode");
        c.record(false, 131, 5000.0, 1000);
        assert_eq!(c.get(false, 131), Some(0.75 + 0.25 * 5.0));
        c.record(false, 131, 5000.0, 0);
        assert_eq!(c.get(false, 131), Some(2.0), "nothing staged: no sample");
    }
}
