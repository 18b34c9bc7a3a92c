//! Texture containers, with no wgpu: what a file is, and whether a KTX2 file's
//! structure can be trusted before any of its offsets is used.
//!
//! - [`detect`]: the container from the bytes, not the file name.
//! - [`ktx2::validate`]: the structural checks of the Khronos validator (header,
//!   level index, DFD, key/value data, cube faces, mip count, supercompression),
//!   each failure a typed [`ktx2::Ktx2Error`]. `ktx2` 0.5 panics on some inputs
//!   (a DFD texel-block dimension byte of 0xFF) and accepts files the validator
//!   rejects, so nothing is handed to it before this passes.
//! - [`findings`]: the checks as `ktx validate` reports them (IDs, severities).
//! - [`dfd`]: data format descriptors, parsed and derived for a `VkFormat`.
//! - [`format`](mod@format): block sizes of the Vulkan formats KTX2 files use.
//! - [`file::Ktx2File`]: a validated file, its levels and images.
//! - [`dds`] and [`ktx1`]: the same checks and image placement for DDS (with
//!   and without the DX10 header) and KTX 1.1.
//! - [`source::TextureFile`]: any of them (and PNG, decoded to RGBA8) behind
//!   one [`source::TextureSource`]: a description and the bytes of an image.
//! - [`decode`]: CPU decoders of block-compressed images (forgeflow's own
//!   for BC1-BC5 in `bc1_5`, BC6H in `bc6h`, ETC2 and EAC in `etc2`).
//! - `basis` (feature `basis`): Basis Universal files transcoded to the
//!   best block format a device samples.

#[cfg(feature = "astc")]
pub mod astc;
#[cfg(feature = "basis")]
pub mod basis;
#[cfg(feature = "bc")]
mod bc1_5;
#[cfg(feature = "bc")]
mod bc6h;
#[cfg(feature = "bc")]
mod bc7;
#[cfg(any(feature = "bc", feature = "etc2"))]
mod block_rows;
pub mod dds;
pub mod decode;
pub mod dfd;
#[cfg(feature = "etc2")]
mod etc2;
pub mod file;
pub mod findings;
pub mod format;
pub mod ktx1;
pub mod ktx2;
pub mod source;

use std::fmt;

/// A texture's width, height or depth at mip `level`: halved per level, at
/// least 1, for any level (a shift by 32 or more is 1, not an overflow).
pub fn level_extent(extent: u32, level: u32) -> u32 {
    extent.checked_shr(level).unwrap_or(0).max(1)
}

/// A texture container, recognised by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// KTX 2.0.
    Ktx2,
    /// KTX 1.1.
    Ktx1,
    /// DirectDraw Surface (with or without the DX10 header).
    Dds,
    /// PNG.
    Png,
}

/// Bytes that are no texture container this crate knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedFormat {
    /// The first bytes seen (up to 12).
    pub magic: Vec<u8>,
}

impl fmt::Display for UnsupportedFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unsupported format: the file starts with ")?;
        for b in &self.magic {
            write!(f, "{b:02x} ")?;
        }
        write!(f, "(")?;
        for &b in &self.magic {
            let c = if b.is_ascii_graphic() { b as char } else { '.' };
            write!(f, "{c}")?;
        }
        write!(f, "), not KTX2, KTX 1, DDS or PNG")
    }
}

impl std::error::Error for UnsupportedFormat {}

/// The KTX2 file identifier.
pub const KTX2_MAGIC: [u8; 12] = [
    0xAB, b'K', b'T', b'X', b' ', b'2', b'0', 0xBB, b'\r', b'\n', 0x1A, b'\n',
];
/// The KTX 1 file identifier.
pub const KTX1_MAGIC: [u8; 12] = [
    0xAB, b'K', b'T', b'X', b' ', b'1', b'1', 0xBB, b'\r', b'\n', 0x1A, b'\n',
];

/// The container of `bytes`, from its magic number.
pub fn detect(bytes: &[u8]) -> Result<Container, UnsupportedFormat> {
    if bytes.starts_with(&KTX2_MAGIC) {
        Ok(Container::Ktx2)
    } else if bytes.starts_with(&KTX1_MAGIC) {
        Ok(Container::Ktx1)
    } else if bytes.starts_with(b"DDS ") {
        Ok(Container::Dds)
    } else if bytes.starts_with(&[0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1A, b'\n']) {
        Ok(Container::Png)
    } else {
        Err(UnsupportedFormat {
            magic: bytes[..bytes.len().min(12)].to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_are_told_by_their_bytes() {
        assert_eq!(detect(&KTX2_MAGIC), Ok(Container::Ktx2));
        assert_eq!(detect(&KTX1_MAGIC), Ok(Container::Ktx1));
        assert_eq!(detect(b"DDS \x7c\x00\x00\x00"), Ok(Container::Dds));
        assert_eq!(detect(b"\x89PNG\r\n\x1a\n...."), Ok(Container::Png));
        let err = detect(b"GIF89a").unwrap_err();
        assert!(err.to_string().contains("GIF89a"), "{err}");
        assert!(detect(b"").is_err());
    }
}
