//! KTX2 structure validation: the checks the Khronos validator makes about a
//! file's structure, before any offset in it is trusted.
//!
//! Layout (KTX 2.0 specification): a 12-byte identifier; nine u32 header fields
//! (`vkFormat`, `typeSize`, `pixelWidth`, `pixelHeight`, `pixelDepth`,
//! `layerCount`, `faceCount`, `levelCount`, `supercompressionScheme`); the index
//! (DFD, key/value data and supercompression global data: offsets and lengths);
//! the level index (per level: byte offset, byte length, uncompressed length);
//! then the DFD, the key/value data, the global data, and the levels, smallest
//! first. All little-endian. Reads are bounds-checked and sizes computed with
//! checked arithmetic: no input panics.

use std::fmt;
use std::ops::Range;

use super::format::{self, FormatInfo};
use super::KTX2_MAGIC;

/// `supercompressionScheme` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Supercompression {
    /// Levels stored as they are.
    None,
    /// Basis Universal ETC1S (needs a transcoder).
    BasisLz,
    /// Zstandard, per level.
    Zstd,
    /// zlib (deflate), per level.
    Zlib,
    /// Basis Universal UASTC HDR 6x6 intermediate (scheme 4; needs a
    /// transcoder).
    UastcHdr6x6Intermediate,
    /// A vendor's scheme (0x10000-0x1FFFF): valid, but its levels cannot be
    /// read here (`ktx validate` warns that it cannot validate them).
    Vendor(u32),
}

/// A validated file: its header and where each part lies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ktx2Layout {
    /// The Vulkan format (0 for Basis Universal payloads).
    pub vk_format: u32,
    /// The format's block, when the format is one this crate knows.
    pub format: Option<FormatInfo>,
    /// Base level size in texels (`height` and `depth` at least 1).
    pub width: u32,
    /// See `width`.
    pub height: u32,
    /// See `width`.
    pub depth: u32,
    /// Array layers (at least 1).
    pub layers: u32,
    /// 1, or 6 for cubemaps.
    pub faces: u32,
    /// Levels stored (at least 1).
    pub levels: u32,
    /// How levels are stored.
    pub supercompression: Supercompression,
    /// Per level, base first: the byte range in the file and the byte length once inflated.
    pub level_ranges: Vec<(Range<usize>, u64)>,
    /// The DFD's colour model (first basic block).
    pub color_model: u8,
    /// The DFD's transfer function (2 = sRGB).
    pub transfer: u8,
    /// Key/value pairs (key, value bytes without the terminating NUL of text values).
    pub key_values: Vec<(String, Vec<u8>)>,
}

/// Why a file is not valid KTX2. Each variant names the check that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Ktx2Error {
    /// The file does not start with the KTX2 identifier.
    NotKtx2,
    /// The file ends before a part it announces.
    UnexpectedEof {
        /// What was being read.
        what: &'static str,
        /// Bytes needed.
        needed: u64,
        /// The file's length.
        len: u64,
    },
    /// `pixelWidth` is 0.
    ZeroWidth,
    /// A block-compressed (or 3D) image has `pixelHeight` 0.
    ZeroHeight {
        /// The format.
        vk_format: u32,
    },
    /// `faceCount` is neither 1 nor 6.
    FaceCount(u32),
    /// A cubemap whose faces are not square (or that has depth).
    CubeNotSquare {
        /// `pixelWidth`.
        width: u32,
        /// `pixelHeight`.
        height: u32,
    },
    /// More levels than a full mip chain has.
    TooManyLevels {
        /// `levelCount`.
        levels: u32,
        /// The most levels the size allows.
        max: u32,
    },
    /// A `supercompressionScheme` the specification does not define.
    UnknownSupercompression(u32),
    /// The DFD is not where the specification puts it, or has a bad size.
    DfdPlacement(String),
    /// The DFD's texel block does not match the format (or is larger than any).
    DfdBlock {
        /// Dimensions the DFD gives.
        dfd: [u32; 3],
        /// Dimensions of the format (0s when the format is not in the table).
        format: [u32; 3],
    },
    /// The key/value data is misplaced or malformed.
    KeyValue(String),
    /// The supercompression global data is missing, misplaced or unexpected.
    GlobalData(String),
    /// A level's byte range is invalid: outside the file, overlapping, empty.
    LevelRange {
        /// The level.
        level: u32,
        /// What is wrong.
        reason: String,
    },
    /// A level's offset is not aligned as the format requires.
    LevelAlignment {
        /// The level.
        level: u32,
        /// Its offset.
        offset: u64,
        /// The alignment required.
        align: u64,
    },
    /// Levels are not stored smallest first.
    LevelOrder {
        /// The level stored before a smaller one.
        level: u32,
    },
    /// A level's size does not match the format and dimensions.
    LevelSize {
        /// The level.
        level: u32,
        /// Bytes the file says.
        stated: u64,
        /// Bytes the format and size give.
        expected: u64,
    },
    /// The `ktx2` crate, reading the validated file, refuses it or reads its
    /// header or level index differently.
    CrateDisagrees(String),
}

impl fmt::Display for Ktx2Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ktx2Error::NotKtx2 => f.write_str("not a KTX2 file: the 12-byte identifier is missing"),
            Ktx2Error::CrateDisagrees(why) => {
                write!(f, "the ktx2 crate reads this file differently: {why}")
            }
            Ktx2Error::UnexpectedEof { what, needed, len } => {
                write!(f, "truncated: the {what} needs {needed} bytes but the file has {len}")
            }
            Ktx2Error::ZeroWidth => f.write_str("pixelWidth is 0"),
            Ktx2Error::ZeroHeight { vk_format } => write!(
                f,
                "pixelHeight is 0, but format {vk_format} is block-compressed (or the image is 3D) and needs a height"
            ),
            Ktx2Error::FaceCount(n) => write!(f, "faceCount is {n}; it must be 1 or 6"),
            Ktx2Error::CubeNotSquare { width, height } => {
                write!(f, "a cubemap's faces must be square and 2D, but they are {width}x{height}")
            }
            Ktx2Error::TooManyLevels { levels, max } => {
                write!(f, "levelCount is {levels} but a full mip chain of this size has {max} levels")
            }
            Ktx2Error::UnknownSupercompression(s) => {
                write!(f, "supercompressionScheme {s} is not defined (0 none, 1 BasisLZ, 2 Zstandard, 3 zlib)")
            }
            Ktx2Error::DfdPlacement(why) => write!(f, "data format descriptor: {why}"),
            Ktx2Error::DfdBlock {
                dfd,
                format: [0, 0, 0],
            } => write!(
                f,
                "the DFD's texel block is {}x{}x{}: no format has blocks that large",
                dfd[0], dfd[1], dfd[2]
            ),
            Ktx2Error::DfdBlock { dfd, format } => write!(
                f,
                "the DFD's texel block is {}x{}x{} but the format's is {}x{}x{}",
                dfd[0], dfd[1], dfd[2], format[0], format[1], format[2]
            ),
            Ktx2Error::KeyValue(why) => write!(f, "key/value data: {why}"),
            Ktx2Error::GlobalData(why) => write!(f, "supercompression global data: {why}"),
            Ktx2Error::LevelRange { level, reason } => write!(f, "level {level}: {reason}"),
            Ktx2Error::LevelAlignment { level, offset, align } => {
                write!(f, "level {level} starts at byte {offset}, which is not a multiple of {align}")
            }
            Ktx2Error::LevelOrder { level } => write!(
                f,
                "level {level} is stored before the smaller level {}; levels must be stored smallest first",
                level + 1
            ),
            Ktx2Error::LevelSize { level, stated, expected } => write!(
                f,
                "level {level} holds {stated} bytes but its format and size give {expected}"
            ),
        }
    }
}

impl std::error::Error for Ktx2Error {}

fn read_u32(b: &[u8], at: usize, what: &'static str) -> Result<u32, Ktx2Error> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or(Ktx2Error::UnexpectedEof {
            what,
            needed: at as u64 + 4,
            len: b.len() as u64,
        })
}

fn read_u64(b: &[u8], at: usize, what: &'static str) -> Result<u64, Ktx2Error> {
    b.get(at..at + 8)
        .map(|s| u64::from_le_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]))
        .ok_or(Ktx2Error::UnexpectedEof {
            what,
            needed: at as u64 + 8,
            len: b.len() as u64,
        })
}

/// A byte range of the file, checked against its length.
fn range(
    offset: u64,
    length: u64,
    len: usize,
    what: &'static str,
) -> Result<Range<usize>, Ktx2Error> {
    let end = offset
        .checked_add(length)
        .filter(|&e| e <= len as u64)
        .ok_or(Ktx2Error::UnexpectedEof {
            what,
            needed: offset.saturating_add(length),
            len: len as u64,
        })?;
    Ok(offset as usize..end as usize)
}

/// A KTX2 file of one 2D image of an uncompressed `vk_format`, `width` x
/// `height`, its `pixels` rows tight: what pixels decoded elsewhere become,
/// so they go the way of any file (validated, uploaded in pieces). The data
/// format descriptor is the one the specification gives the format.
pub fn write_image(
    vk_format: u32,
    width: u32,
    height: u32,
    pixels: &[u8],
) -> Result<Vec<u8>, super::file::TextureError> {
    use super::file::TextureError;
    let unsupported = || {
        TextureError::Unsupported(super::UnsupportedFormat {
            magic: format!("VkFormat {vk_format}").into_bytes(),
        })
    };
    let info = format::info(vk_format)
        .filter(|f| !f.is_compressed())
        .ok_or_else(unsupported)?;
    let dfd = super::dfd::BasicDfd::for_format(vk_format)
        .ok_or_else(unsupported)?
        .to_bytes();
    let expected = u64::from(width) * u64::from(height) * u64::from(info.bytes);
    if pixels.len() as u64 != expected || width == 0 || height == 0 {
        return Err(TextureError::PixelBytes {
            expected,
            got: pixels.len() as u64,
        });
    }
    let type_size = super::findings::type_size(vk_format).unwrap_or(1);
    let dfd_off = 80 + 24u32;
    let mut f = super::KTX2_MAGIC.to_vec();
    for v in [vk_format, type_size, width, height, 0, 0, 1, 1, 0] {
        f.extend(v.to_le_bytes());
    }
    for v in [dfd_off, dfd.len() as u32, 0, 0] {
        f.extend(v.to_le_bytes());
    }
    f.extend([0u8; 16]); // no supercompression global data
    let index_at = f.len();
    f.extend([0u8; 24]);
    f.extend(&dfd);
    let align = lcm(u64::from(info.bytes), 4);
    while !(f.len() as u64).is_multiple_of(align) {
        f.push(0);
    }
    let at = f.len() as u64;
    for (i, v) in [at, expected, expected].into_iter().enumerate() {
        f[index_at + 8 * i..index_at + 8 * i + 8].copy_from_slice(&v.to_le_bytes());
    }
    f.extend(pixels);
    Ok(f)
}

fn lcm(a: u64, b: u64) -> u64 {
    fn gcd(a: u64, b: u64) -> u64 {
        if b == 0 {
            a
        } else {
            gcd(b, a % b)
        }
    }
    a / gcd(a, b) * b
}

/// Checks the structure of a KTX2 file and returns where its parts are.
pub fn validate(b: &[u8]) -> Result<Ktx2Layout, Ktx2Error> {
    if b.len() < 12 || b[..12] != KTX2_MAGIC {
        return Err(Ktx2Error::NotKtx2);
    }
    let len = b.len();
    let field = |i: usize| read_u32(b, 12 + 4 * i, "header");
    let vk_format = field(0)?;
    let width = field(2)?;
    let height = field(3)?;
    let depth = field(4)?;
    let layers = field(5)?;
    let faces = field(6)?;
    let level_count = field(7)?;
    let scheme = field(8)?;
    let dfd_off = read_u32(b, 48, "index")? as u64;
    let dfd_len = read_u32(b, 52, "index")? as u64;
    let kvd_off = read_u32(b, 56, "index")? as u64;
    let kvd_len = read_u32(b, 60, "index")? as u64;
    let sgd_off = read_u64(b, 64, "index")?;
    let sgd_len = read_u64(b, 72, "index")?;
    let levels = level_count.max(1);
    let level_index_end = 80 + 24 * levels as u64;
    if (len as u64) < level_index_end {
        return Err(Ktx2Error::UnexpectedEof {
            what: "level index",
            needed: level_index_end,
            len: len as u64,
        });
    }

    // Header fields.
    let fmt = format::info(vk_format);
    if width == 0 {
        return Err(Ktx2Error::ZeroWidth);
    }
    if height == 0 && (depth > 0 || fmt.is_some_and(|f| f.is_compressed())) {
        return Err(Ktx2Error::ZeroHeight { vk_format });
    }
    if faces != 1 && faces != 6 {
        return Err(Ktx2Error::FaceCount(faces));
    }
    if faces == 6 && (width != height || depth != 0) {
        return Err(Ktx2Error::CubeNotSquare { width, height });
    }
    let largest = width.max(height).max(depth).max(1);
    let max_levels = 32 - largest.leading_zeros();
    if level_count > max_levels {
        return Err(Ktx2Error::TooManyLevels {
            levels: level_count,
            max: max_levels,
        });
    }
    let supercompression = match scheme {
        0 => Supercompression::None,
        1 => Supercompression::BasisLz,
        2 => Supercompression::Zstd,
        3 => Supercompression::Zlib,
        4 => Supercompression::UastcHdr6x6Intermediate,
        s @ 0x10000..=0x1FFFF => Supercompression::Vendor(s),
        s => return Err(Ktx2Error::UnknownSupercompression(s)),
    };

    // DFD: right after the level index, 4-aligned, its first word its length.
    if dfd_len < 4 + 24 {
        return Err(Ktx2Error::DfdPlacement(format!(
            "dfdByteLength {dfd_len} is too small for a basic descriptor block"
        )));
    }
    if dfd_off != level_index_end {
        return Err(Ktx2Error::DfdPlacement(format!(
            "dfdByteOffset is {dfd_off} but the DFD must follow the level index at {level_index_end}"
        )));
    }
    let dfd = range(dfd_off, dfd_len, len, "DFD")?;
    let total = read_u32(b, dfd.start, "DFD")? as u64;
    if total != dfd_len {
        return Err(Ktx2Error::DfdPlacement(format!(
            "dfdTotalSize {total} differs from dfdByteLength {dfd_len}"
        )));
    }
    let block_at = dfd.start + 4;
    let color_model = b[block_at + 8];
    let transfer = b[block_at + 10];
    let dims = [
        b[block_at + 12] as u32 + 1,
        b[block_at + 13] as u32 + 1,
        b[block_at + 14] as u32 + 1,
    ];
    // No format has blocks over 12 texels a side; a stored byte of 0xFF (a
    // 256-texel block) is what makes ktx2 0.5 panic, so it is refused here for
    // every format, known or not.
    if dims.iter().any(|&d| d > 16) {
        return Err(Ktx2Error::DfdBlock {
            dfd: dims,
            format: fmt.map_or([0; 3], |f| f.block),
        });
    }
    if let Some(f) = fmt {
        if dims != f.block {
            return Err(Ktx2Error::DfdBlock {
                dfd: dims,
                format: f.block,
            });
        }
    }

    // Key/value data: right after the DFD when present, well-formed pairs.
    let mut key_values = Vec::new();
    let mut end_of_meta = dfd.end as u64;
    if kvd_len > 0 {
        if kvd_off != dfd.end as u64 {
            return Err(Ktx2Error::KeyValue(format!(
                "kvdByteOffset is {kvd_off} but the data must follow the DFD at {}",
                dfd.end
            )));
        }
        let kvd = range(kvd_off, kvd_len, len, "key/value data")?;
        let mut at = kvd.start;
        while at + 4 <= kvd.end {
            let n = read_u32(b, at, "key/value data")? as usize;
            let pair = b
                .get(at + 4..at + 4 + n)
                .filter(|_| at + 4 + n <= kvd.end)
                .ok_or_else(|| {
                    Ktx2Error::KeyValue(format!("a pair of {n} bytes at {at} overruns the data"))
                })?;
            let nul = pair.iter().position(|&c| c == 0).ok_or_else(|| {
                Ktx2Error::KeyValue(format!("the key at {at} has no terminating NUL"))
            })?;
            let key = std::str::from_utf8(&pair[..nul])
                .map_err(|_| Ktx2Error::KeyValue(format!("the key at {at} is not UTF-8")))?
                .to_owned();
            let mut value = pair[nul + 1..].to_vec();
            if value.last() == Some(&0) {
                value.pop();
            }
            key_values.push((key, value));
            at += 4 + n;
            at = at.div_ceil(4) * 4;
        }
        end_of_meta = kvd.end as u64;
    } else if kvd_off != 0 && kvd_off != dfd.end as u64 {
        return Err(Ktx2Error::KeyValue(format!(
            "kvdByteOffset is {kvd_off} with no data"
        )));
    }

    // Supercompression global data: BasisLZ and UASTC HDR 6x6 intermediate
    // need it (codebooks; a descriptor per image), the others have none.
    match supercompression {
        Supercompression::BasisLz | Supercompression::UastcHdr6x6Intermediate => {
            if sgd_len == 0 {
                return Err(Ktx2Error::GlobalData(format!(
                    "{supercompression:?} needs supercompression global data"
                )));
            }
            if sgd_off % 8 != 0 || sgd_off < end_of_meta {
                return Err(Ktx2Error::GlobalData(format!(
                    "sgdByteOffset {sgd_off} is misplaced or not 8-aligned"
                )));
            }
            range(sgd_off, sgd_len, len, "supercompression global data")?;
            end_of_meta = sgd_off + sgd_len;
        }
        // A vendor's scheme may have global data: only its place is checked.
        Supercompression::Vendor(_) if sgd_len != 0 => {
            range(sgd_off, sgd_len, len, "supercompression global data")?;
            end_of_meta = end_of_meta.max(sgd_off + sgd_len);
        }
        _ if sgd_len != 0 => {
            return Err(Ktx2Error::GlobalData(format!(
                "{sgd_len} bytes of global data with a scheme that has none"
            )));
        }
        _ => {}
    }

    // Levels: inside the file, after the metadata, aligned, smallest first, sized.
    let align = match (supercompression, fmt) {
        (Supercompression::None, Some(f)) => lcm(f.bytes as u64, 4),
        (Supercompression::None, None) => 4,
        _ => 1,
    };
    let mut level_ranges = Vec::with_capacity(levels as usize);
    for level in 0..levels {
        let at = 80 + 24 * level as usize;
        let offset = read_u64(b, at, "level index")?;
        let length = read_u64(b, at + 8, "level index")?;
        let inflated = read_u64(b, at + 16, "level index")?;
        // Alignment first: an offset shifted off its alignment usually also
        // runs past the end, and the shift is the cause.
        if offset % align != 0 {
            return Err(Ktx2Error::LevelAlignment {
                level,
                offset,
                align,
            });
        }
        let r = range(offset, length, len, "level").map_err(|_| Ktx2Error::LevelRange {
            level,
            reason: format!(
                "bytes {offset}..{} lie outside the file of {len} bytes",
                offset.saturating_add(length)
            ),
        })?;
        if length == 0 {
            return Err(Ktx2Error::LevelRange {
                level,
                reason: "byteLength is 0".into(),
            });
        }
        if offset < end_of_meta {
            return Err(Ktx2Error::LevelRange {
                level,
                reason: format!(
                    "starts at {offset}, inside the header data (which ends at {end_of_meta})"
                ),
            });
        }
        if supercompression == Supercompression::None && inflated != length {
            return Err(Ktx2Error::LevelRange { level, reason: format!("uncompressedByteLength {inflated} differs from byteLength {length} without supercompression") });
        }
        let sized = !matches!(
            supercompression,
            Supercompression::BasisLz | Supercompression::Vendor(_)
        );
        if let (Some(f), true) = (fmt, sized) {
            let dim = |v: u32, bdim: u32| super::level_extent(v, level).div_ceil(bdim) as u64;
            let expected = dim(width, f.block[0])
                .checked_mul(dim(height, f.block[1]))
                .and_then(|x| x.checked_mul(dim(depth, f.block[2])))
                .and_then(|x| x.checked_mul(layers.max(1) as u64))
                .and_then(|x| x.checked_mul(faces as u64))
                .and_then(|x| x.checked_mul(f.bytes as u64))
                .unwrap_or(u64::MAX);
            if inflated != expected {
                return Err(Ktx2Error::LevelSize {
                    level,
                    stated: inflated,
                    expected,
                });
            }
        }
        level_ranges.push((r, inflated));
    }
    for level in 0..levels.saturating_sub(1) as usize {
        let (bigger, smaller) = (&level_ranges[level].0, &level_ranges[level + 1].0);
        if bigger.start < smaller.end {
            return Err(Ktx2Error::LevelOrder {
                level: level as u32,
            });
        }
    }
    Ok(Ktx2Layout {
        vk_format,
        format: fmt,
        width,
        height: height.max(1),
        depth: depth.max(1),
        layers: layers.max(1),
        faces,
        levels,
        supercompression,
        level_ranges,
        color_model,
        transfer,
        key_values,
    })
}
