//! A decoded 4x4 block written into an image: each row of four texels is
//! assembled in registers and stored with one copy (one bounds check a row;
//! a store per texel into the image, each bounds-checked, cost up to a fifth
//! of a fast format's rate). Shared by forgeflow's own block decoders.

/// A decoded texel, little-endian in the image: R8 as a `u8`, RG8 as a
/// `u16` (red in the low byte), RGBA8 as a `u32`, RGBA16F as a `u64`.
pub(super) trait Texel: Copy {
    /// Bytes in the image.
    const BYTES: usize;
    /// The texel's bytes, the first [`BYTES`](Self::BYTES) of them used.
    fn bytes(self) -> [u8; 8];
}

/// The texel types, each its own size in the image.
macro_rules! texels {
    ($($t:ty),*) => {$(
        impl Texel for $t {
            const BYTES: usize = std::mem::size_of::<$t>();
            #[inline(always)]
            fn bytes(self) -> [u8; 8] {
                u64::from(self).to_le_bytes()
            }
        }
    )*};
}

texels!(u8, u16, u32, u64);

/// Writes `texel(x, y)` for the block's 16 texels into `dst`, rows `pitch`
/// bytes apart.
#[inline(always)]
pub(super) fn write_rows<T: Texel>(
    dst: &mut [u8],
    pitch: usize,
    texel: impl Fn(usize, usize) -> T,
) {
    let row_bytes = 4 * T::BYTES;
    for y in 0..4 {
        let mut row = [0u8; 32];
        for x in 0..4 {
            row[x * T::BYTES..(x + 1) * T::BYTES].copy_from_slice(&texel(x, y).bytes()[..T::BYTES]);
        }
        dst[y * pitch..y * pitch + row_bytes].copy_from_slice(&row[..row_bytes]);
    }
}
