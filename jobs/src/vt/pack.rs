//! The tile pack: a virtual texture's tiles, every level, in one file, read
//! tile by tile with positional reads.
//!
//! ```text
//! header (64 bytes, little-endian)
//!   0  magic "FFVTPAK1"
//!   8  width u32, height u32       level 0 size in texels
//!  16  tile u32, border u32        payload texels per side, border texels
//!  24  format u32                  0 RGBA8, 1 BC1, 2 BC7 (of the whole slot)
//!  28  compression u32             0 none, 1 zstd (per tile)
//!  32  tiles u32                   tiles over all levels (VtLayout::tile_count)
//!  36  reserved u32 (0)
//!  40  index offset u64            = 64
//!  48  data offset u64             = 64 + 24 * tiles
//!  56  reserved u64 (0)
//! index: per tile, in VtLayout::index order (level 0 first, row by row):
//!   offset u64, stored length u32, raw length u32, checksum u64
//! data: the tiles' payloads (a slot: tile + 2 * border texels per side),
//!   compressed or not.
//! ```
//!
//! Everything is checked before it is used: the header against the layout it
//! implies, every index entry against the file's size and the format's slot
//! size, and each tile's bytes, once read (and inflated), against its
//! checksum. A corrupt or truncated pack is a [`PackError`], never a panic and
//! never a wrong tile.
//!
//! [`TilePack::open`] reads the header and index at once and each tile when
//! asked for (`pread`), rather than mapping the file: a pack truncated by
//! another process while open gives a short read, reported as
//! [`PackError::Truncated`], where a mapping would fault (SIGBUS); and the
//! tiles read stay in the page cache, out of the process's resident memory,
//! where a mapping's touched pages count in its RSS until the whole pack has
//! been seen (404 MB for the stress run's 8192x8192 terrain). A read costs a system
//! call and one more copy of the tile (74 KiB for an RGBA8 slot of 136
//! texels).

use std::borrow::Cow;
use std::fmt;
use std::io::Write;
use std::path::Path;

use super::layout::{TileId, VtError, VtLayout};

/// The file identifier.
pub const MAGIC: [u8; 8] = *b"FFVTPAK1";
const HEADER: usize = 64;
const ENTRY: usize = 24;

/// How a tile's texels are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TileFormat {
    /// 4 bytes per texel.
    Rgba8,
    /// BC1 blocks (8 bytes per 4x4).
    Bc1,
    /// BC7 blocks (16 bytes per 4x4).
    Bc7,
}

impl TileFormat {
    /// Bytes of one slot of `side` x `side` texels.
    pub fn slot_bytes(self, side: u32) -> u64 {
        let s = side as u64;
        match self {
            TileFormat::Rgba8 => s * s * 4,
            TileFormat::Bc1 => s.div_ceil(4).pow(2) * 8,
            TileFormat::Bc7 => s.div_ceil(4).pow(2) * 16,
        }
    }

    fn code(self) -> u32 {
        match self {
            TileFormat::Rgba8 => 0,
            TileFormat::Bc1 => 1,
            TileFormat::Bc7 => 2,
        }
    }

    fn from_code(c: u32) -> Option<Self> {
        Some(match c {
            0 => TileFormat::Rgba8,
            1 => TileFormat::Bc1,
            2 => TileFormat::Bc7,
            _ => return None,
        })
    }
}

/// Why a pack cannot be read (or one of its tiles).
#[derive(Debug)]
#[non_exhaustive]
pub enum PackError {
    /// The file could not be read.
    Io(std::io::Error),
    /// Not a tile pack (the first bytes).
    Magic([u8; 8]),
    /// The header's fields are out of range or disagree with each other.
    Header(String),
    /// The layout the header implies is invalid.
    Layout(VtError),
    /// Shorter than its header and index say.
    Truncated {
        /// Bytes needed.
        needed: u64,
        /// Bytes in the file.
        got: u64,
    },
    /// An index entry points outside the data or has the wrong size.
    Index {
        /// The tile.
        tile: TileId,
        /// What is wrong.
        why: String,
    },
    /// A tile's bytes do not inflate to its size, or do not match its checksum.
    Corrupt {
        /// The tile.
        tile: TileId,
        /// What is wrong.
        why: String,
    },
}

impl fmt::Display for PackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PackError::Io(e) => write!(f, "cannot read the pack: {e}"),
            PackError::Magic(m) => write!(f, "not a tile pack (starts with {m:02x?})"),
            PackError::Header(why) => write!(f, "bad pack header: {why}"),
            PackError::Layout(e) => e.fmt(f),
            PackError::Truncated { needed, got } => {
                write!(
                    f,
                    "truncated pack: {needed} bytes needed, {got} in the file"
                )
            }
            PackError::Index { tile, why } => write!(f, "pack index, tile {tile:?}: {why}"),
            PackError::Corrupt { tile, why } => write!(f, "corrupt tile {tile:?}: {why}"),
        }
    }
}

impl std::error::Error for PackError {}

/// The checksum of a tile's raw bytes: 64-bit multiply-xorshift over 8-byte
/// words (fast enough to check every tile read, strong enough to catch
/// corruption; not cryptographic).
pub fn checksum(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h = bytes.len() as u64 ^ K;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        h = (h ^ u64::from_le_bytes(w.try_into().expect("8 bytes"))).wrapping_mul(K);
        h ^= h >> 29;
    }
    for &b in words.remainder() {
        h = (h ^ b as u64).wrapping_mul(K);
        h ^= h >> 29;
    }
    h
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// A validated tile pack.
pub struct TilePack {
    /// The header and the index, read and checked at open.
    index: Vec<u8>,
    store: Store,
    layout: VtLayout,
    format: TileFormat,
    zstd: bool,
}

/// Where a pack's tiles are read from.
enum Store {
    /// The open file, read with positional reads; its length at open.
    File(std::fs::File, u64),
    /// The whole pack in memory.
    Memory(Vec<u8>),
}

impl Store {
    fn len(&self) -> u64 {
        match self {
            Store::File(_, len) => *len,
            Store::Memory(bytes) => bytes.len() as u64,
        }
    }

    /// `len` bytes at `offset`: borrowed from memory, or read from the file
    /// (a short read, as from a file truncated since it was opened, is
    /// [`PackError::Truncated`]).
    fn read(&self, offset: u64, len: usize) -> Result<Cow<'_, [u8]>, PackError> {
        if let Store::Memory(bytes) = self {
            return memory_range(bytes, offset, len).map(Cow::Borrowed);
        }
        let mut out = Vec::new();
        self.read_into(offset, len, &mut out, false)?;
        Ok(Cow::Owned(out))
    }

    /// The same into `scratch` (a buffer reused from read to read: no
    /// allocation once it has grown), or borrowed from memory. With
    /// `nowait`, `None` instead of waiting for the disk when the bytes are
    /// not all in the page cache, after asking the kernel to read them ahead
    /// (Linux with glibc; elsewhere the read waits).
    fn read_into<'a>(
        &'a self,
        offset: u64,
        len: usize,
        scratch: &'a mut Vec<u8>,
        nowait: bool,
    ) -> Result<Option<&'a [u8]>, PackError> {
        let file = match self {
            Store::Memory(bytes) => return memory_range(bytes, offset, len).map(Some),
            Store::File(file, _) => file,
        };
        scratch.clear();
        scratch.resize(len, 0);
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        if nowait {
            match read_nowait(file, scratch, offset) {
                NoWait::Read => return Ok(Some(scratch)),
                NoWait::WouldBlock => return Ok(None),
                NoWait::Unsupported => {} // a blocking read below
            }
        }
        #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
        let _ = nowait;
        match read_exact_at(file, scratch, offset) {
            Ok(()) => Ok(Some(scratch)),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(PackError::Truncated {
                needed: offset + len as u64,
                got: file.metadata().map_or(0, |m| m.len()),
            }),
            Err(e) => Err(PackError::Io(e)),
        }
    }
}

/// `len` bytes of an in-memory pack at `offset`, or `Truncated`.
fn memory_range(bytes: &[u8], offset: u64, len: usize) -> Result<&[u8], PackError> {
    let end = offset + len as u64;
    bytes
        .get(offset as usize..end as usize)
        .ok_or(PackError::Truncated {
            needed: end,
            got: bytes.len() as u64,
        })
}

/// What a read that must not wait did.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
enum NoWait {
    /// All of it came from the page cache.
    Read,
    /// Some of it is on the disk: a read-ahead has been asked for.
    WouldBlock,
    /// The file system cannot say (or the read failed): read normally,
    /// which reports any error.
    Unsupported,
}

/// `preadv2(RWF_NOWAIT)` of all of `buf` at `offset`; on a page-cache miss,
/// `posix_fadvise(WILLNEED)` of the range, so that a later read finds it.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn read_nowait(file: &std::fs::File, buf: &mut [u8], offset: u64) -> NoWait {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    let (mut done, len) = (0usize, buf.len());
    while done < len {
        let iov = libc::iovec {
            iov_base: buf[done..].as_mut_ptr().cast(),
            iov_len: len - done,
        };
        // SAFETY: `iov` describes the unfilled tail of `buf`, which is
        // valid for writes and outlives the call; `fd` is open for reading
        // for as long as `file` is borrowed.
        let n = unsafe {
            libc::preadv2(
                fd,
                &iov,
                1,
                (offset + done as u64) as libc::off_t,
                libc::RWF_NOWAIT,
            )
        };
        match n {
            n if n > 0 => done += n as usize,
            0 => return NoWait::Unsupported, // end of file: `read` says how short
            _ => {
                let err = std::io::Error::last_os_error();
                match err.raw_os_error() {
                    Some(libc::EINTR) => {}
                    Some(libc::EAGAIN) => {
                        // SAFETY: a plain advisory call on an open descriptor.
                        unsafe {
                            libc::posix_fadvise(
                                fd,
                                (offset + done as u64) as libc::off_t,
                                (len - done) as libc::off_t,
                                libc::POSIX_FADV_WILLNEED,
                            )
                        };
                        return NoWait::WouldBlock;
                    }
                    _ => return NoWait::Unsupported,
                }
            }
        }
    }
    NoWait::Read
}

/// Fills `buf` from `file` at `offset` without moving a shared cursor (jobs
/// on several threads read the same pack).
#[cfg(unix)]
fn read_exact_at(file: &std::fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

/// Fills `buf` from `file` at `offset` (`seek_read` moves the file's cursor,
/// which no other read of a pack relies on).
#[cfg(windows)]
fn read_exact_at(file: &std::fs::File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    while !buf.is_empty() {
        match std::os::windows::fs::FileExt::seek_read(file, buf, offset) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl fmt::Debug for TilePack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TilePack")
            .field("layout", &self.layout)
            .field("format", &self.format)
            .field("zstd", &self.zstd)
            .finish_non_exhaustive()
    }
}

impl TilePack {
    /// Opens the pack at `path` and validates its header and index; tiles are
    /// read when asked for (see the [module documentation](self)).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, PackError> {
        let file = std::fs::File::open(path.as_ref()).map_err(PackError::Io)?;
        let len = file.metadata().map_err(PackError::Io)?.len();
        Self::new(Store::File(file, len))
    }

    /// Validates `bytes`.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, PackError> {
        Self::new(Store::Memory(bytes))
    }

    fn new(store: Store) -> Result<Self, PackError> {
        let got = store.len();
        if got < HEADER as u64 {
            return Err(PackError::Truncated {
                needed: HEADER as u64,
                got,
            });
        }
        let header = store.read(0, HEADER)?;
        let bytes = &header[..];
        let magic: [u8; 8] = bytes[..8].try_into().expect("8 bytes");
        if magic != MAGIC {
            return Err(PackError::Magic(magic));
        }
        let layout = VtLayout::new(
            u32_at(bytes, 8),
            u32_at(bytes, 12),
            u32_at(bytes, 16),
            u32_at(bytes, 20),
        )
        .map_err(PackError::Layout)?;
        let format = TileFormat::from_code(u32_at(bytes, 24))
            .ok_or_else(|| PackError::Header(format!("format {}", u32_at(bytes, 24))))?;
        let zstd = match u32_at(bytes, 28) {
            0 => false,
            1 => true,
            c => return Err(PackError::Header(format!("compression {c}"))),
        };
        let tiles = u32_at(bytes, 32);
        if tiles != layout.tile_count() {
            return Err(PackError::Header(format!(
                "{tiles} tiles, the layout has {}",
                layout.tile_count()
            )));
        }
        let data = HEADER as u64 + ENTRY as u64 * tiles as u64;
        if u64_at(bytes, 40) != HEADER as u64 || u64_at(bytes, 48) != data {
            return Err(PackError::Header("index or data offset".into()));
        }
        if got < data {
            return Err(PackError::Truncated { needed: data, got });
        }
        drop(header);
        let index = store.read(0, data as usize)?.into_owned();
        let pack = TilePack {
            index,
            store,
            layout,
            format,
            zstd,
        };
        let raw = format.slot_bytes(layout.slot());
        for i in 0..tiles {
            let tile = layout.tile_at(i).expect("counted");
            let (offset, stored, raw_len, _) = pack.entry(i);
            let bad = |why: String| PackError::Index { tile, why };
            if raw_len as u64 != raw {
                return Err(bad(format!("raw length {raw_len}, a slot is {raw}")));
            }
            if offset < data || offset.checked_add(stored as u64).is_none_or(|e| e > got) {
                return Err(bad(format!(
                    "{stored} bytes at {offset} are outside the data (to {got})"
                )));
            }
            if !zstd && stored as u64 != raw {
                return Err(bad(format!(
                    "stored length {stored} of an uncompressed tile"
                )));
            }
        }
        Ok(pack)
    }

    fn entry(&self, i: u32) -> (u64, u32, u32, u64) {
        let at = HEADER + i as usize * ENTRY;
        (
            u64_at(&self.index, at),
            u32_at(&self.index, at + 8),
            u32_at(&self.index, at + 12),
            u64_at(&self.index, at + 16),
        )
    }

    /// The tiling.
    pub fn layout(&self) -> &VtLayout {
        &self.layout
    }

    /// How tiles are stored.
    pub fn format(&self) -> TileFormat {
        self.format
    }

    /// The slot's bytes of `tile` (payload and borders), inflated, checked
    /// against its checksum: read from the file, or borrowed from memory
    /// when the pack is there and not compressed.
    pub fn tile(&self, tile: TileId) -> Result<Cow<'_, [u8]>, PackError> {
        let i = self.layout.index(tile).map_err(PackError::Layout)?;
        let (offset, stored, _, _) = self.entry(i);
        let stored = self.store.read(offset, stored as usize)?;
        self.check(tile, i, stored)
    }

    /// Like [`tile`](Self::tile), but `None` rather than waiting for the
    /// disk: on Linux (glibc), when the tile's bytes are not all in the page
    /// cache, the kernel is asked to read them ahead and the call returns at
    /// once, so that a page-fault job never stalls a frame on a cold file
    /// (the tile is asked for again in a later frame). Elsewhere, and for a
    /// pack in memory, it reads as `tile` does. The bytes are read into
    /// `scratch`, which the caller reuses: an uncompressed tile then costs
    /// no allocation.
    pub fn tile_if_cached<'a>(
        &'a self,
        tile: TileId,
        scratch: &'a mut Vec<u8>,
    ) -> Result<Option<Cow<'a, [u8]>>, PackError> {
        let i = self.layout.index(tile).map_err(PackError::Layout)?;
        let (offset, stored, _, _) = self.entry(i);
        match self
            .store
            .read_into(offset, stored as usize, scratch, true)?
        {
            Some(stored) => self.check(tile, i, Cow::Borrowed(stored)).map(Some),
            None => Ok(None),
        }
    }

    /// Inflates (if compressed) and checks the stored bytes of tile `i`.
    fn check<'a>(
        &self,
        tile: TileId,
        i: u32,
        stored: Cow<'a, [u8]>,
    ) -> Result<Cow<'a, [u8]>, PackError> {
        let (_, _, raw, sum) = self.entry(i);
        let corrupt = |why: String| PackError::Corrupt { tile, why };
        let bytes = if self.zstd {
            let mut out = vec![0u8; raw as usize];
            let n = ruzstd::decoding::FrameDecoder::new()
                .decode_all(&stored, &mut out)
                .map_err(|e| corrupt(format!("zstd: {e}")))?;
            if n != raw as usize {
                return Err(corrupt(format!("inflates to {n} bytes, not {raw}")));
            }
            Cow::Owned(out)
        } else {
            stored
        };
        if checksum(&bytes) != sum {
            return Err(corrupt("checksum mismatch".into()));
        }
        Ok(bytes)
    }
}

/// Writes a pack of `layout`'s tiles, each made by `make` (the slot's raw
/// bytes, `format.slot_bytes(layout.slot())` of them), in index order, each
/// zstd-compressed if `zstd`. `progress` is called with (tiles done, tiles)
/// after each tile. The file appears at `path` only once complete (it is
/// written beside it, then renamed). Returns its size.
pub fn write_pack(
    path: impl AsRef<Path>,
    layout: VtLayout,
    format: TileFormat,
    zstd: bool,
    mut make: impl FnMut(TileId) -> Vec<u8>,
    mut progress: impl FnMut(u32, u32),
) -> Result<u64, PackError> {
    let tiles = layout.tile_count();
    let raw = format.slot_bytes(layout.slot());
    let data = HEADER as u64 + ENTRY as u64 * tiles as u64;
    let mut header = Vec::with_capacity(HEADER);
    header.extend_from_slice(&MAGIC);
    let (w, h) = layout.size();
    for v in [
        w,
        h,
        layout.tile(),
        layout.border(),
        format.code(),
        zstd as u32,
        tiles,
        0,
    ] {
        header.extend_from_slice(&v.to_le_bytes());
    }
    for v in [HEADER as u64, data, 0] {
        header.extend_from_slice(&v.to_le_bytes());
    }
    let mut index = Vec::with_capacity(ENTRY * tiles as usize);
    let tmp = path.as_ref().with_extension("partial");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp).map_err(PackError::Io)?);
    out.write_all(&header).map_err(PackError::Io)?;
    out.write_all(&vec![0u8; ENTRY * tiles as usize])
        .map_err(PackError::Io)?;
    let mut offset = data;
    for i in 0..tiles {
        let tile = layout.tile_at(i).expect("counted");
        let bytes = make(tile);
        if bytes.len() as u64 != raw {
            return Err(PackError::Index {
                tile,
                why: format!("made {} bytes, a slot is {raw}", bytes.len()),
            });
        }
        let stored = if zstd {
            ruzstd::encoding::compress_to_vec(
                bytes.as_slice(),
                ruzstd::encoding::CompressionLevel::Fastest,
            )
        } else {
            bytes.clone()
        };
        out.write_all(&stored).map_err(PackError::Io)?;
        index.extend_from_slice(&offset.to_le_bytes());
        index.extend_from_slice(&(stored.len() as u32).to_le_bytes());
        index.extend_from_slice(&(raw as u32).to_le_bytes());
        index.extend_from_slice(&checksum(&bytes).to_le_bytes());
        offset += stored.len() as u64;
        progress(i + 1, tiles);
    }
    let mut file = out
        .into_inner()
        .map_err(|e| PackError::Io(e.into_error()))?;
    use std::io::Seek;
    file.seek(std::io::SeekFrom::Start(HEADER as u64))
        .map_err(PackError::Io)?;
    file.write_all(&index).map_err(PackError::Io)?;
    file.sync_all().map_err(PackError::Io)?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(PackError::Io)?;
    Ok(offset)
}

/// Tiles [`write_pack_parallel`] makes at once.
const PARALLEL_BATCH: u32 = 256;

/// [`write_pack`] with the tiles made on all cores (rayon), a batch at a
/// time, and written in index order: for sources whose tiles are costly to
/// make (a procedural terrain, a resampled image).
pub fn write_pack_parallel(
    path: impl AsRef<Path>,
    layout: VtLayout,
    format: TileFormat,
    zstd: bool,
    make: impl Fn(TileId) -> Vec<u8> + Sync,
    progress: impl FnMut(u32, u32),
) -> Result<u64, PackError> {
    use rayon::prelude::*;
    let total = layout.tile_count();
    let (mut batch, mut next) = (std::collections::VecDeque::new(), 0u32);
    write_pack(
        path,
        layout,
        format,
        zstd,
        // `write_pack` asks for the tiles in index order: the batch is the
        // next ones.
        |_| {
            if batch.is_empty() {
                let end = (next + PARALLEL_BATCH).min(total);
                let made: Vec<Vec<u8>> = (next..end)
                    .into_par_iter()
                    .map(|i| make(layout.tile_at(i).expect("an index below the tile count")))
                    .collect();
                batch.extend(made);
                next = end;
            }
            batch.pop_front().expect("a batch was made")
        },
        progress,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use forgeflow_test_support::SplitMix64;

    #[test]
    fn a_pack_made_in_parallel_is_the_pack_made_in_order() {
        let l = VtLayout::new(700, 300, 32, 2).unwrap();
        assert!(l.tile_count() > PARALLEL_BATCH, "more than one batch");
        let raw = TileFormat::Rgba8.slot_bytes(l.slot()) as usize;
        let dir = std::env::temp_dir();
        let (a, b) = (
            dir.join(format!("ff-pack-seq-{}.vtpack", std::process::id())),
            dir.join(format!("ff-pack-par-{}.vtpack", std::process::id())),
        );
        let mut calls = 0;
        write_pack(
            &a,
            l,
            TileFormat::Rgba8,
            true,
            |t| tile_bytes(t, raw),
            |_, _| {},
        )
        .unwrap();
        write_pack_parallel(
            &b,
            l,
            TileFormat::Rgba8,
            true,
            |t| tile_bytes(t, raw),
            |_, _| calls += 1,
        )
        .unwrap();
        assert_eq!(calls, l.tile_count());
        let (a_bytes, b_bytes) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        let _ = (std::fs::remove_file(&a), std::fs::remove_file(&b));
        assert!(a_bytes == b_bytes, "the parallel pack differs");
    }

    fn tile_bytes(t: TileId, n: usize) -> Vec<u8> {
        let mut rng = SplitMix64::new(((t.mip as u64) << 32) | (t.y as u64) << 16 | t.x as u64);
        // Half random, half flat: compressible, and every tile different.
        (0..n)
            .map(|i| {
                if i % 2 == 0 {
                    rng.next_u64() as u8
                } else {
                    t.x as u8
                }
            })
            .collect()
    }

    /// A test pack written to a file of its own (removed when dropped).
    struct PackFile {
        path: std::path::PathBuf,
        bytes: Vec<u8>,
        layout: VtLayout,
    }

    impl Drop for PackFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.path);
        }
    }

    fn pack_file(zstd: bool) -> PackFile {
        let layout = VtLayout::new(500, 300, 64, 4).unwrap();
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("ff-pack-{}-{n}.vtpack", std::process::id()));
        let raw = TileFormat::Rgba8.slot_bytes(layout.slot()) as usize;
        let mut calls = 0;
        write_pack(
            &path,
            layout,
            TileFormat::Rgba8,
            zstd,
            |t| tile_bytes(t, raw),
            |_, _| calls += 1,
        )
        .unwrap();
        assert_eq!(calls, layout.tile_count());
        let bytes = std::fs::read(&path).unwrap();
        PackFile {
            path,
            bytes,
            layout,
        }
    }

    fn pack(zstd: bool) -> (Vec<u8>, VtLayout) {
        let f = pack_file(zstd);
        (f.bytes.clone(), f.layout)
    }

    #[test]
    fn tiles_read_back_as_written() {
        for zstd in [false, true] {
            let f = pack_file(zstd);
            let l = f.layout;
            let from_file = TilePack::open(&f.path).unwrap();
            let in_memory = TilePack::from_bytes(f.bytes.clone()).unwrap();
            let raw = TileFormat::Rgba8.slot_bytes(l.slot()) as usize;
            for p in [from_file, in_memory] {
                for i in 0..l.tile_count() {
                    let t = l.tile_at(i).unwrap();
                    assert_eq!(*p.tile(t).unwrap(), tile_bytes(t, raw), "{t:?}");
                }
            }
        }
    }

    /// A pack truncated by another process after it was opened: the tiles
    /// cut off are `Truncated` errors (a mapping would have faulted with
    /// SIGBUS and killed the test), the others still read back right.
    #[test]
    fn a_pack_truncated_while_open_gives_errors_not_faults() {
        for zstd in [false, true] {
            let f = pack_file(zstd);
            let (bytes, l, path) = (&f.bytes, f.layout, &f.path);
            let p = TilePack::open(path).unwrap();
            let raw = TileFormat::Rgba8.slot_bytes(l.slot()) as usize;
            let cut = bytes.len() as u64 / 2;
            std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .unwrap()
                .set_len(cut)
                .unwrap();
            let (mut read, mut refused) = (0, 0);
            for i in 0..l.tile_count() {
                let t = l.tile_at(i).unwrap();
                let (offset, stored, _, _) = p.entry(i);
                match p.tile(t) {
                    Ok(got) => {
                        assert!(offset + stored as u64 <= cut, "{t:?} read past the cut");
                        assert_eq!(*got, tile_bytes(t, raw), "{t:?}");
                        read += 1;
                    }
                    Err(PackError::Truncated { got, .. }) => {
                        assert!(offset + stored as u64 > cut, "{t:?} refused below the cut");
                        assert_eq!(got, cut);
                        refused += 1;
                    }
                    Err(e) => panic!("{t:?}: {e}"),
                }
            }
            assert!(read > 0 && refused > 0, "{read} read, {refused} refused");
        }
    }

    /// A tile whose bytes are out of the page cache: `tile_if_cached` says
    /// `None` at once and starts a read-ahead, after which the tile reads
    /// back right without waiting. (Skipped, saying why, where the file
    /// system keeps the pages, as tmpfs does.)
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn a_tile_out_of_the_page_cache_is_read_ahead_not_waited_for() {
        use std::os::fd::AsRawFd;
        let f = pack_file(false);
        let (l, path) = (f.layout, &f.path);
        let file = std::fs::File::open(path).unwrap();
        file.sync_all().unwrap();
        // SAFETY: advisory calls on an open descriptor.
        unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        let t = l.tile_at(l.tile_count() - 1).unwrap();
        let p = TilePack::open(path).unwrap();
        let (offset, stored, _, _) = p.entry(l.tile_count() - 1);
        // Which of the tile's pages are in memory: a mapping's `mincore`.
        let resident = || {
            // SAFETY: read-only, and the file is not changed while mapped.
            let map = unsafe { memmap2::Mmap::map(&file) }.unwrap();
            let page = 4096u64;
            let start = offset / page * page;
            let len = (offset + stored as u64 - start) as usize;
            let mut vec = vec![0u8; len.div_ceil(page as usize)];
            // SAFETY: `start` is page-aligned inside the mapping and `vec`
            // has a byte per page of the range.
            let rc = unsafe {
                libc::mincore(
                    map.as_ptr().add(start as usize) as *mut _,
                    len,
                    vec.as_mut_ptr(),
                )
            };
            assert_eq!(rc, 0);
            vec.iter().filter(|&&b| b & 1 == 1).count()
        };
        if resident() > 0 {
            eprintln!("SKIPPED: this file system keeps evicted pages in memory (tmpfs?)");
            return;
        }
        let raw = TileFormat::Rgba8.slot_bytes(l.slot()) as usize;
        assert!(
            p.tile_if_cached(t, &mut Vec::new()).unwrap().is_none(),
            "a tile on the disk is not read in place"
        );
        let start = std::time::Instant::now();
        let mut scratch = Vec::new();
        let got = loop {
            if let Some(got) = p.tile_if_cached(t, &mut scratch).unwrap() {
                break got.into_owned();
            }
            assert!(
                start.elapsed().as_secs() < 10,
                "the read-ahead never landed"
            );
            std::thread::sleep(std::time::Duration::from_millis(1));
        };
        assert_eq!(*got, tile_bytes(t, raw));
    }

    /// An uncompressed tile read from a file lands in the caller's buffer:
    /// borrowed from it, the buffer never reallocated after the first tile
    /// (page-fault jobs keep one per thread, so faults allocate nothing).
    #[test]
    fn tiles_read_into_a_reused_buffer_allocate_nothing() {
        let f = pack_file(false);
        let l = f.layout;
        let p = TilePack::open(&f.path).unwrap();
        let raw = TileFormat::Rgba8.slot_bytes(l.slot()) as usize;
        let mut scratch = Vec::new();
        let mut at = None;
        for i in 0..l.tile_count() {
            let t = l.tile_at(i).unwrap();
            // Just written: in the page cache, so never put off.
            let got = p.tile_if_cached(t, &mut scratch).unwrap().expect("cached");
            assert!(matches!(got, Cow::Borrowed(_)), "{t:?} was copied out");
            assert_eq!(*got, tile_bytes(t, raw), "{t:?}");
            drop(got);
            assert_eq!(*at.get_or_insert(scratch.as_ptr()), scratch.as_ptr());
        }
    }

    #[test]
    fn corrupt_and_truncated_packs_are_errors_never_wrong_tiles() {
        let mut rng = SplitMix64::new(3);
        for zstd in [false, true] {
            let (bytes, l) = pack(zstd);
            let raw = TileFormat::Rgba8.slot_bytes(l.slot()) as usize;
            for cut in (0..200).chain((0..50).map(|_| rng.below(bytes.len() as u64) as usize)) {
                if let Ok(p) = TilePack::from_bytes(bytes[..cut].to_vec()) {
                    panic!("a pack cut to {cut} bytes validated: {p:?}");
                }
            }
            for _ in 0..150 {
                let mut m = bytes.clone();
                let at = rng.below(m.len() as u64) as usize;
                m[at] ^= 1 << rng.below(8);
                // Either refused, or every tile is its own bytes or an error.
                if let Ok(p) = TilePack::from_bytes(m) {
                    for i in 0..l.tile_count() {
                        let t = l.tile_at(i).unwrap();
                        if let Ok(got) = p.tile(t) {
                            assert_eq!(*got, tile_bytes(t, raw), "a wrong tile {t:?}");
                        }
                    }
                }
            }
        }
    }
}
