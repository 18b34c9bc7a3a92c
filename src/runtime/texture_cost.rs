//! What a staged byte of texture work costs, learned per format.
//!
//! A frame bounds its texture work by time (`texture_upload_ms_per_frame`),
//! so it must know what a byte of each texture costs before declaring it. A
//! CPU decode costs from about 0.2 ns a staged byte (BC1) to 50 (3D ASTC on
//! one core): a mean over formats let a slow format's first frame declare
//! eight times its budget. Within a format the cost depends on the content
//! too (an ASTC block of one colour decodes far faster than one of many
//! partitions): on the H100 host, textures of a format measured on cheaper
//! files declared four times their budget in their first frame. So every
//! texture declares a small probe in its first frame (smaller still where
//! its format is known to be slow), and its own measured cost from then on.

use std::collections::HashMap;

/// Staging bytes that a texture declares in its first frame at most (at
/// least one band of block rows: see
/// [`TextureUpload::step`](crate::texture::TextureUpload::step)).
pub(super) const PROBE_BYTES: u64 = 64 << 10;

/// What a texture may declare in a frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct StepBudget {
    /// Staging bytes.
    pub bytes: u64,
    /// The cost of a byte the budget was priced at; `None` when nothing is
    /// known (the probe of a format never measured): nothing else is
    /// declared after it in the frame.
    pub ns_per_byte: Option<f64>,
}

/// The budget of a texture's next step, from its own measured cost (`own`,
/// 0 before its first frame has run), its format's (`format`), and what
/// the frame has left of its bytes and time.
pub(super) fn step_budget(
    own: f64,
    format: Option<f64>,
    bytes_left: u64,
    ns_left: f64,
) -> StepBudget {
    let by_time = |c: f64| (ns_left.max(0.0) / c) as u64;
    match (own, format) {
        (c, _) if c > 0.0 => StepBudget {
            bytes: bytes_left.min(by_time(c)),
            ns_per_byte: Some(c),
        },
        (_, Some(c)) if c > 0.0 => StepBudget {
            bytes: bytes_left.min(PROBE_BYTES).min(by_time(c)),
            ns_per_byte: Some(c),
        },
        _ => StepBudget {
            bytes: bytes_left.min(PROBE_BYTES),
            ns_per_byte: None,
        },
    }
}

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
        let cost = self.by_format.entry((native, vk_format)).or_insert(0.0);
        fold(cost, ns / staged as f64, KEEP);
    }
}

/// Folds `sample` into a running estimate that keeps `keep` of itself
/// (0: nothing measured yet, the sample is taken whole).
pub(super) fn fold(estimate: &mut f64, sample: f64, keep: f64) {
    *estimate = if *estimate == 0.0 {
        sample
    } else {
        keep * *estimate + (1.0 - keep) * sample
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_step_is_a_probe_and_a_slow_format_gets_less() {
        let unknown = step_budget(0.0, None, 4 << 20, 1e6);
        assert_eq!(unknown.bytes, PROBE_BYTES);
        assert_eq!(unknown.ns_per_byte, None);
        // A fast format known: still a probe (its files may decode slower).
        assert_eq!(step_budget(0.0, Some(0.2), 4 << 20, 1e6).bytes, PROBE_BYTES);
        // A slow format known: what a millisecond buys at its cost.
        let slow = step_budget(0.0, Some(50.0), 4 << 20, 1e6);
        assert_eq!(slow.bytes, 20_000);
        assert_eq!(slow.ns_per_byte, Some(50.0));
        // Measured itself: its own cost, whatever its format's.
        let own = step_budget(2.0, Some(50.0), 4 << 20, 1e6);
        assert_eq!((own.bytes, own.ns_per_byte), (500_000, Some(2.0)));
        assert_eq!(step_budget(0.001, None, 4 << 20, 1e6).bytes, 4 << 20);
        assert_eq!(step_budget(2.0, None, 4 << 20, -5.0).bytes, 0);
    }

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
