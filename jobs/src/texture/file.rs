//! [`Ktx2File`]: a validated KTX2 file over its bytes, its levels inflated on
//! demand and its images addressed by level, layer, face and depth slice.
//!
//! Uncompressed levels are borrowed from the file's bytes, never copied again;
//! zstd and zlib levels are inflated into a buffer of exactly their stated
//! size, and a level that inflates to anything else is an error. Basis
//! Universal payloads (BasisLZ/ETC1S, UASTC) need a transcoder this crate does
//! not have: a clear error.
//!
//! Files are read into memory ([`Ktx2File::open`]): a file truncated or
//! rewritten by another process afterwards changes nothing. A memory mapping
//! saves the copy but turns such a truncation into a `SIGBUS` on the next
//! read, so it is an explicit `unsafe` choice ([`Ktx2File::open_mapped`]).

use std::borrow::Cow;
use std::fmt;
use std::path::Path;

use super::dds::DdsError;
use super::ktx1::Ktx1Error;
use super::ktx2::{self, Ktx2Error, Ktx2Layout, Supercompression};
use super::UnsupportedFormat;

/// Why a texture file could not be opened or read.
#[derive(Debug)]
#[non_exhaustive]
pub enum TextureError {
    /// The file could not be read or mapped.
    Io(std::io::Error),
    /// The file's structure is invalid (KTX2).
    Invalid(Ktx2Error),
    /// The file's structure is invalid (DDS).
    InvalidDds(DdsError),
    /// The file's structure is invalid (KTX 1).
    InvalidKtx1(Ktx1Error),
    /// The PNG could not be decoded.
    InvalidPng(String),
    /// No container this crate knows.
    Unsupported(UnsupportedFormat),
    /// The payload needs a Basis Universal transcoder (BasisLZ/ETC1S or UASTC).
    NeedsTranscoder {
        /// What kind of payload.
        what: &'static str,
    },
    /// The Basis Universal transcoder refused the file (or failed on it).
    Transcode(String),
    /// The levels use a vendor's supercompression scheme: the file is valid,
    /// but nothing here can read them.
    VendorSupercompression {
        /// The scheme (0x10000-0x1FFFF).
        scheme: u32,
    },
    /// A supercompressed level is corrupt or does not inflate to its stated size.
    Inflate {
        /// The level.
        level: u32,
        /// What went wrong.
        reason: String,
    },
    /// A level larger than the configured limit.
    TooLarge {
        /// The level.
        level: u32,
        /// Its stated inflated size.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
    /// An image selector outside the texture.
    NoSuchImage {
        /// What was asked.
        selector: String,
    },
    /// Pixels given in memory are not as many bytes as their size and
    /// format take.
    PixelBytes {
        /// Bytes the size and format take.
        expected: u64,
        /// Bytes given.
        got: u64,
    },
}

impl fmt::Display for TextureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TextureError::Io(e) => write!(f, "cannot read the file: {e}"),
            TextureError::Invalid(e) => write!(f, "invalid KTX2: {e}"),
            TextureError::InvalidDds(e) => write!(f, "invalid DDS: {e}"),
            TextureError::InvalidKtx1(e) => write!(f, "invalid KTX 1: {e}"),
            TextureError::InvalidPng(e) => write!(f, "invalid PNG: {e}"),
            TextureError::Unsupported(e) => e.fmt(f),
            TextureError::Transcode(why) => write!(f, "Basis Universal transcode: {why}"),
            TextureError::VendorSupercompression { scheme } => write!(
                f,
                "supercompressionScheme {scheme:#x} is a vendor's: its levels cannot be read here"
            ),
            TextureError::NeedsTranscoder { what } => write!(
                f,
                "{what} needs a Basis Universal transcoder, which forgeflow does not include; \
                 re-encode the texture as BCn/ETC2/ASTC (toktx without --encode basis-lz/uastc)"
            ),
            TextureError::Inflate { level, reason } => {
                write!(f, "level {level} is corrupt: {reason}")
            }
            TextureError::TooLarge {
                level,
                bytes,
                limit,
            } => {
                write!(
                    f,
                    "level {level} inflates to {bytes} bytes, over the limit of {limit}"
                )
            }
            TextureError::NoSuchImage { selector } => {
                write!(f, "no image {selector} in this texture")
            }
            TextureError::PixelBytes { expected, got } => write!(
                f,
                "the pixels are {got} bytes but their size and format take {expected}"
            ),
        }
    }
}

impl std::error::Error for TextureError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TextureError::Io(e) => Some(e),
            TextureError::Invalid(e) => Some(e),
            TextureError::InvalidDds(e) => Some(e),
            TextureError::InvalidKtx1(e) => Some(e),
            TextureError::Unsupported(e) => Some(e),
            _ => None,
        }
    }
}

impl From<Ktx2Error> for TextureError {
    fn from(e: Ktx2Error) -> Self {
        TextureError::Invalid(e)
    }
}

/// A file's bytes: a copy in memory, or a read-only mapping the caller chose
/// with an `unsafe` open. Shared by every container reader.
pub(crate) enum Bytes {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Bytes {
    /// Reads the file at `path` into memory.
    pub(crate) fn read(path: &Path) -> Result<Bytes, TextureError> {
        std::fs::read(path).map(Bytes::Owned).map_err(|e| {
            TextureError::Io(std::io::Error::new(
                e.kind(),
                format!("{}: {e}", path.display()),
            ))
        })
    }

    /// Maps the file at `path`.
    ///
    /// # Safety
    /// The file must not be truncated while the mapping lives: a read of a
    /// page past the new end faults (`SIGBUS`). Changes to its bytes show.
    pub(crate) unsafe fn map(path: &Path) -> Result<Bytes, TextureError> {
        let file = std::fs::File::open(path).map_err(TextureError::Io)?;
        // SAFETY: read-only, and the caller promises no truncation (above).
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(TextureError::Io)?;
        Ok(Bytes::Mapped(map))
    }
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Owned(v) => v,
        }
    }
}

/// The largest level inflated by default (1 GiB).
pub const DEFAULT_INFLATE_LIMIT: u64 = 1 << 30;

/// A validated KTX2 file.
pub struct Ktx2File {
    bytes: Bytes,
    layout: Ktx2Layout,
    inflate_limit: u64,
}

impl fmt::Debug for Ktx2File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ktx2File")
            .field("layout", &self.layout)
            .finish_non_exhaustive()
    }
}

/// Which image of a texture: level, array layer, cube face, depth slice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImageSelector {
    /// Mip level (0 = base).
    pub level: u32,
    /// Array layer.
    pub layer: u32,
    /// Cube face (0..6).
    pub face: u32,
    /// Depth slice of a 3D texture, in blocks of the format's block depth.
    pub depth: u32,
}

/// Reads the validated file through the `ktx2` crate (only now: it panics
/// on some inputs the validation refuses) and requires it to agree with the
/// validation on the header and on where every level is: two readers of
/// the level index, written apart.
fn cross_check(bytes: &[u8], l: &Ktx2Layout) -> Result<(), Ktx2Error> {
    let disagree = |what: String| Ktx2Error::CrateDisagrees(what);
    let reader = ::ktx2::Reader::new(bytes).map_err(|e| disagree(e.to_string()))?;
    let h = reader.header();
    let vk = h.format.map_or(0, |f| f.value());
    let ours = (l.vk_format, l.width, l.levels);
    let theirs = (vk, h.pixel_width, h.level_count.max(1));
    if ours != theirs {
        return Err(disagree(format!(
            "(vkFormat, width, levels) {theirs:?}, validated {ours:?}"
        )));
    }
    let base = bytes.as_ptr() as usize;
    for (i, (level, (range, inflated))) in reader.levels().zip(&l.level_ranges).enumerate() {
        let start = level.data.as_ptr() as usize - base;
        let theirs = start..start + level.data.len();
        if theirs != *range
            || level.uncompressed_byte_length != *inflated
                && l.supercompression != Supercompression::BasisLz
        {
            return Err(disagree(format!(
                "level {i} at {start}+{} ({} inflated), validated {range:?} ({inflated})",
                level.data.len(),
                level.uncompressed_byte_length
            )));
        }
    }
    Ok(())
}

impl Ktx2File {
    /// Reads the file at `path` into memory and validates it.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, TextureError> {
        Self::new(Bytes::read(path.as_ref())?)
    }

    /// Maps the file at `path` and validates it: no copy of the file.
    ///
    /// # Safety
    /// The file must not be truncated while the returned value lives (by
    /// this process or another): reading a page past its new end faults
    /// (`SIGBUS`), which no error can report. Use [`open`](Self::open) when
    /// that cannot be excluded.
    pub unsafe fn open_mapped(path: impl AsRef<Path>) -> Result<Self, TextureError> {
        // SAFETY: the caller's promise, passed on.
        Self::new(unsafe { Bytes::map(path.as_ref()) }?)
    }

    /// Validates `bytes` (a copy in memory: immune to changes of the file).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, TextureError> {
        Self::new(Bytes::Owned(bytes))
    }

    pub(crate) fn new(bytes: Bytes) -> Result<Self, TextureError> {
        let layout = ktx2::validate(&bytes)?;
        cross_check(&bytes, &layout)?;
        Ok(Ktx2File {
            bytes,
            layout,
            inflate_limit: DEFAULT_INFLATE_LIMIT,
        })
    }

    /// The largest level size `level` will inflate (and a Basis transcode
    /// produce).
    pub fn inflate_limit(&self) -> u64 {
        self.inflate_limit
    }

    /// Sets the largest level size `level` will inflate.
    pub fn with_inflate_limit(mut self, limit: u64) -> Self {
        self.inflate_limit = limit;
        self
    }

    /// The validated header and part locations.
    pub fn layout(&self) -> &Ktx2Layout {
        &self.layout
    }

    /// The whole file.
    pub fn raw(&self) -> &[u8] {
        &self.bytes
    }

    fn check_transcodable(&self) -> Result<(), TextureError> {
        if self.layout.supercompression == Supercompression::BasisLz {
            return Err(TextureError::NeedsTranscoder {
                what: "BasisLZ (ETC1S)",
            });
        }
        if self.layout.vk_format == 0 {
            return Err(TextureError::NeedsTranscoder {
                what: "a VK_FORMAT_UNDEFINED payload (UASTC)",
            });
        }
        Ok(())
    }

    /// The bytes of `level` as stored uncompressed: borrowed from the file when
    /// it is not supercompressed, inflated otherwise.
    pub fn level(&self, level: u32) -> Result<Cow<'_, [u8]>, TextureError> {
        self.check_transcodable()?;
        let (range, inflated) = self
            .layout
            .level_ranges
            .get(level as usize)
            .cloned()
            .ok_or_else(|| TextureError::NoSuchImage {
                selector: format!("level {level}"),
            })?;
        let stored = &self.bytes[range];
        if inflated > self.inflate_limit {
            return Err(TextureError::TooLarge {
                level,
                bytes: inflated,
                limit: self.inflate_limit,
            });
        }
        let inflate_err = |reason: String| TextureError::Inflate { level, reason };
        match self.layout.supercompression {
            Supercompression::None => Ok(Cow::Borrowed(stored)),
            Supercompression::Zstd => {
                let mut out = vec![0u8; inflated as usize];
                let n = ruzstd::decoding::FrameDecoder::new()
                    .decode_all(stored, &mut out)
                    .map_err(|e| inflate_err(format!("zstd: {e}")))?;
                if n as u64 != inflated {
                    return Err(inflate_err(format!(
                        "zstd gave {n} bytes, uncompressedByteLength says {inflated}"
                    )));
                }
                Ok(Cow::Owned(out))
            }
            Supercompression::Zlib => {
                let mut out = vec![0u8; inflated as usize];
                let n = miniz_oxide::inflate::decompress_slice_iter_to_slice(
                    &mut out,
                    std::iter::once(stored),
                    true,
                    false,
                )
                .map_err(|e| inflate_err(format!("zlib: {e:?}")))?;
                if n as u64 != inflated {
                    return Err(inflate_err(format!(
                        "zlib gave {n} bytes, uncompressedByteLength says {inflated}"
                    )));
                }
                Ok(Cow::Owned(out))
            }
            Supercompression::BasisLz => Err(TextureError::NeedsTranscoder {
                what: "BasisLZ (ETC1S)",
            }),
            Supercompression::UastcHdr6x6Intermediate => Err(TextureError::NeedsTranscoder {
                what: "UASTC HDR 6x6 intermediate",
            }),
            Supercompression::Vendor(scheme) => {
                Err(TextureError::VendorSupercompression { scheme })
            }
        }
    }

    /// Bytes of one image (rows of blocks, tightly packed) of `level`.
    pub fn image_bytes(&self, level: u32) -> Option<u64> {
        self.layout
            .format?
            .slice_bytes(self.layout.width, self.layout.height, level)
    }

    /// The bytes of one image, as stored: borrowed from the file when the level
    /// is not supercompressed.
    pub fn image(&self, sel: ImageSelector) -> Result<Cow<'_, [u8]>, TextureError> {
        let l = &self.layout;
        let no = || TextureError::NoSuchImage {
            selector: format!(
                "{sel:?} (levels {}, layers {}, faces {})",
                l.levels, l.layers, l.faces
            ),
        };
        let f = l.format.ok_or(TextureError::NeedsTranscoder {
            what: "a format without a known block",
        })?;
        let depth_blocks = super::level_extent(l.depth, sel.level).div_ceil(f.block[2]);
        if sel.level >= l.levels
            || sel.layer >= l.layers
            || sel.face >= l.faces
            || sel.depth >= depth_blocks
        {
            return Err(no());
        }
        let image = self.image_bytes(sel.level).ok_or_else(no)? as usize;
        let index = ((sel.layer * l.faces + sel.face) * depth_blocks + sel.depth) as usize;
        let start = index * image;
        match self.level(sel.level)? {
            Cow::Borrowed(b) => b
                .get(start..start + image)
                .map(Cow::Borrowed)
                .ok_or_else(no),
            Cow::Owned(v) => v
                .get(start..start + image)
                .map(|s| Cow::Owned(s.to_vec()))
                .ok_or_else(no),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cross-check is a second reader, not a formality: on real files it
    /// agrees with the validation, and a layout that puts a level one byte
    /// off, or names another width, is refused.
    #[test]
    fn cross_check_refuses_a_layout_the_ktx2_crate_disagrees_with() {
        let Some(dir) = forgeflow_test_support::corpus::ktx2_dir() else {
            return;
        };
        let mut checked = 0;
        let files = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .filter(|sub| sub.path().is_dir())
            .flat_map(|sub| std::fs::read_dir(sub.path()).unwrap().flatten());
        for path in files.map(|f| f.path()) {
            if path.extension().is_none_or(|e| e != "ktx2") {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            let Ok(layout) = ktx2::validate(&bytes) else {
                continue;
            };
            assert_eq!(cross_check(&bytes, &layout), Ok(()), "{}", path.display());

            let mut shifted = layout.clone();
            let last = shifted.level_ranges.len() - 1;
            let r = &mut shifted.level_ranges[last].0;
            *r = r.start + 1..r.end + 1;
            assert!(
                matches!(
                    cross_check(&bytes, &shifted),
                    Err(Ktx2Error::CrateDisagrees(_))
                ),
                "{}: a level moved by one byte passed",
                path.display()
            );

            let mut wider = layout.clone();
            wider.width += 1;
            assert!(
                matches!(
                    cross_check(&bytes, &wider),
                    Err(Ktx2Error::CrateDisagrees(_))
                ),
                "{}: another width passed",
                path.display()
            );
            checked += 1;
        }
        assert!(checked >= 30, "only {checked} valid KTX2 files checked");
    }
}
