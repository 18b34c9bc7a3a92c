//! Any texture file, by what it holds rather than how it stores it.
//!
//! [`TextureFile::open`] detects the container from the bytes and validates
//! it; [`TextureSource`] is what loaders and tools need from any of them: a
//! [`TextureDesc`] and the bytes of one image, as rows of blocks (or texels),
//! tightly packed. KTX2, DDS and KTX 1 images are borrowed from the file's
//! bytes when they are stored plainly; a PNG is decoded once, at open, to
//! RGBA8 (an uncompressed source). Files are read into memory; a mapping
//! is an explicit `unsafe` choice ([`TextureFile::open_mapped`]).

use std::borrow::Cow;
use std::path::Path;

use super::dds::{self, DdsLayout};
use super::file::{Bytes, ImageSelector, Ktx2File, TextureError};
use super::format::{self, FormatInfo};
use super::ktx1::{self, Ktx1Layout};
use super::ktx2::Supercompression;
use super::level_extent;
use super::{detect, Container};

/// What a texture holds: format, size and image counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextureDesc {
    /// The container it came from.
    pub container: Container,
    /// The Vulkan format (0 for Basis Universal payloads).
    pub vk_format: u32,
    /// The format's block, when known.
    pub format: Option<FormatInfo>,
    /// Base level size in texels (`height` and `depth` at least 1).
    pub width: u32,
    /// See `width`.
    pub height: u32,
    /// See `width`.
    pub depth: u32,
    /// Array layers (at least 1).
    pub layers: u32,
    /// 1, or 6 for cube maps.
    pub faces: u32,
    /// Mip levels (at least 1).
    pub levels: u32,
    /// Whether levels are supercompressed (KTX2 zstd or zlib): reading an
    /// image then inflates its whole level.
    pub supercompressed: bool,
}

impl TextureDesc {
    /// `(width, height)` of `level`.
    pub fn level_size(&self, level: u32) -> (u32, u32) {
        (
            level_extent(self.width, level),
            level_extent(self.height, level),
        )
    }

    /// Images of `level` along depth: depth slices in blocks of the format's
    /// block depth (1 for 2D textures).
    pub fn depth_images(&self, level: u32) -> u32 {
        let bd = self.format.map_or(1, |f| f.block[2]);
        level_extent(self.depth, level).div_ceil(bd)
    }

    /// Bytes of one image of `level`, when the format is known.
    pub fn image_bytes(&self, level: u32) -> Option<u64> {
        self.format?.slice_bytes(self.width, self.height, level)
    }

    /// Bytes of all images of `level` (what [`TextureSource::level`]
    /// gives), when the format is known.
    pub fn level_bytes(&self, level: u32) -> Option<u64> {
        let images = self.layers as u64 * self.faces as u64 * self.depth_images(level) as u64;
        self.image_bytes(level)?.checked_mul(images)
    }

    fn check(&self, sel: ImageSelector) -> Result<(), TextureError> {
        if sel.level >= self.levels
            || sel.layer >= self.layers
            || sel.face >= self.faces
            || sel.depth >= self.depth_images(sel.level)
        {
            return Err(TextureError::NoSuchImage {
                selector: format!(
                    "{sel:?} (levels {}, layers {}, faces {}, depth {})",
                    self.levels, self.layers, self.faces, self.depth
                ),
            });
        }
        Ok(())
    }
}

/// A texture whose images can be read: what loaders and tools use.
pub trait TextureSource: Sync {
    /// What it holds.
    fn desc(&self) -> TextureDesc;
    /// The bytes of one image, as rows of blocks (or texels) tightly packed.
    fn image(&self, sel: ImageSelector) -> Result<Cow<'_, [u8]>, TextureError>;

    /// Every image of `level` one after another (by layer, then face, then
    /// depth slab), each as [`image`](Self::image) gives it: a supercompressed
    /// level is inflated once for all its images. The default concatenates
    /// the images.
    fn level(&self, level: u32) -> Result<Cow<'_, [u8]>, TextureError> {
        let d = self.desc();
        let mut out = Vec::new();
        for layer in 0..d.layers {
            for face in 0..d.faces {
                for depth in 0..d.depth_images(level) {
                    out.extend_from_slice(&self.image(ImageSelector {
                        level,
                        layer,
                        face,
                        depth,
                    })?);
                }
            }
        }
        Ok(Cow::Owned(out))
    }
}

impl TextureSource for Ktx2File {
    fn desc(&self) -> TextureDesc {
        let l = self.layout();
        TextureDesc {
            container: Container::Ktx2,
            vk_format: l.vk_format,
            format: l.format,
            width: l.width,
            height: l.height,
            depth: l.depth,
            layers: l.layers,
            faces: l.faces,
            levels: l.levels,
            supercompressed: l.supercompression != Supercompression::None,
        }
    }

    fn image(&self, sel: ImageSelector) -> Result<Cow<'_, [u8]>, TextureError> {
        Ktx2File::image(self, sel)
    }

    fn level(&self, level: u32) -> Result<Cow<'_, [u8]>, TextureError> {
        Ktx2File::level(self, level)
    }
}

/// The header of a container whose images are stored plainly, at places the
/// validated header names: DDS and KTX 1. [`PlainFile`] does the rest.
pub trait PlainLayout: std::fmt::Debug + Send + Sync + Sized {
    /// The container, for the description and messages.
    const CONTAINER: Container;
    /// Validates the whole file: every image it names lies inside `bytes`.
    fn validate(bytes: &[u8]) -> Result<Self, TextureError>;
    /// What the file holds.
    fn desc(&self) -> TextureDesc;
    /// Where one image (one depth slice) lies in the file; `None` when the
    /// selector is outside the texture.
    fn image_range(&self, sel: ImageSelector) -> Option<std::ops::Range<usize>>;
}

/// Implements [`PlainLayout`] for a layout with the fields `vk_format`,
/// `format`, `width`, `height`, `depth`, `layers`, `faces`, `levels` and an
/// `image_range(level, layer, face, slice)`.
macro_rules! plain_layout {
    ($layout:ty, $container:expr, $validate:path, $error:path) => {
        impl PlainLayout for $layout {
            const CONTAINER: Container = $container;
            fn validate(bytes: &[u8]) -> Result<Self, TextureError> {
                $validate(bytes).map_err($error)
            }
            fn desc(&self) -> TextureDesc {
                let l = self;
                plain_desc(
                    Self::CONTAINER,
                    l.vk_format,
                    l.format,
                    [l.width, l.height, l.depth],
                    [l.layers, l.faces, l.levels],
                )
            }
            fn image_range(&self, sel: ImageSelector) -> Option<std::ops::Range<usize>> {
                <$layout>::image_range(self, sel.level, sel.layer, sel.face, sel.depth)
            }
        }
    };
}

plain_layout!(
    DdsLayout,
    Container::Dds,
    dds::validate,
    TextureError::InvalidDds
);
plain_layout!(
    Ktx1Layout,
    Container::Ktx1,
    ktx1::validate,
    TextureError::InvalidKtx1
);

fn plain_desc(
    container: Container,
    vk_format: u32,
    format: FormatInfo,
    [width, height, depth]: [u32; 3],
    [layers, faces, levels]: [u32; 3],
) -> TextureDesc {
    TextureDesc {
        container,
        vk_format,
        format: Some(format),
        width,
        height,
        depth,
        layers,
        faces,
        levels,
        supercompressed: false,
    }
}

/// A validated file of a plain container over its bytes; images
/// are borrowed from it.
pub struct PlainFile<L> {
    bytes: Bytes,
    layout: L,
}

/// A validated DDS file.
pub type DdsFile = PlainFile<DdsLayout>;

/// A validated KTX 1 file.
pub type Ktx1File = PlainFile<Ktx1Layout>;

impl<L: PlainLayout> PlainFile<L> {
    /// Reads the file at `path` into memory and validates it.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, TextureError> {
        Self::new(Bytes::read(path.as_ref())?)
    }

    /// Validates `bytes`.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, TextureError> {
        Self::new(Bytes::Owned(bytes))
    }

    fn new(bytes: Bytes) -> Result<Self, TextureError> {
        let layout = L::validate(&bytes)?;
        Ok(PlainFile { bytes, layout })
    }

    /// The validated header.
    pub fn layout(&self) -> &L {
        &self.layout
    }
}

impl<L: PlainLayout> std::fmt::Debug for PlainFile<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlainFile")
            .field("layout", &self.layout)
            .finish()
    }
}

impl<L: PlainLayout> TextureSource for PlainFile<L> {
    fn desc(&self) -> TextureDesc {
        self.layout.desc()
    }

    fn image(&self, sel: ImageSelector) -> Result<Cow<'_, [u8]>, TextureError> {
        self.desc().check(sel)?;
        let range = self
            .layout
            .image_range(sel)
            .expect("checked against the description, validated against the file");
        Ok(Cow::Borrowed(&self.bytes[range]))
    }
}

/// A PNG decoded to RGBA8 (8-bit sRGB: `R8G8B8A8_SRGB`), one image.
#[derive(Debug, Clone)]
pub struct PngImage {
    width: u32,
    height: u32,
    rgba8: Vec<u8>,
}

/// The largest PNG decoded (pixels in memory), 1 GiB.
pub const PNG_DECODE_LIMIT: usize = 1 << 30;

impl PngImage {
    /// Decodes `bytes` (any PNG colour type and depth; 16-bit channels are
    /// cut to 8, palettes and grey expanded, a missing alpha made opaque).
    pub fn decode(bytes: &[u8]) -> Result<Self, TextureError> {
        let bad = |e: png::DecodingError| TextureError::InvalidPng(e.to_string());
        let mut dec = png::Decoder::new_with_limits(
            std::io::Cursor::new(bytes),
            png::Limits {
                bytes: PNG_DECODE_LIMIT,
            },
        );
        dec.set_transformations(png::Transformations::normalize_to_color8());
        let mut reader = dec.read_info().map_err(bad)?;
        let size = reader
            .output_buffer_size()
            .ok_or_else(|| TextureError::InvalidPng("image too large".into()))?;
        // The header's size is not trusted before its buffer is allocated:
        // zlib inflates at most 1032 times, so a file cannot hold more pixels
        // than that (a 50 KB file claiming 2^31 x 2 pixels was found by fuzzing).
        let (w, h) = reader.info().size();
        if size > PNG_DECODE_LIMIT || size as u64 > bytes.len() as u64 * 1032 + (1 << 16) {
            return Err(TextureError::InvalidPng(format!(
                "the header claims {w}x{h} pixels, more than {} bytes of data can hold \
                 (or over the limit of {PNG_DECODE_LIMIT} bytes)",
                bytes.len()
            )));
        }
        let mut buf = vec![0u8; size];
        let out = reader.next_frame(&mut buf).map_err(bad)?;
        buf.truncate(out.buffer_size());
        let rgba8 = match out.color_type {
            png::ColorType::Rgba => buf,
            png::ColorType::Rgb => buf
                .chunks_exact(3)
                .flat_map(|p| [p[0], p[1], p[2], 255])
                .collect(),
            png::ColorType::GrayscaleAlpha => buf
                .chunks_exact(2)
                .flat_map(|p| [p[0], p[0], p[0], p[1]])
                .collect(),
            png::ColorType::Grayscale => buf.iter().flat_map(|&g| [g, g, g, 255]).collect(),
            png::ColorType::Indexed => {
                return Err(TextureError::InvalidPng("a palette left unexpanded".into()))
            }
        };
        if rgba8.len() != out.width as usize * out.height as usize * 4 {
            return Err(TextureError::InvalidPng("short image data".into()));
        }
        Ok(PngImage {
            width: out.width,
            height: out.height,
            rgba8,
        })
    }

    /// The pixels, RGBA8, rows tightly packed.
    pub fn pixels(&self) -> &[u8] {
        &self.rgba8
    }
}

impl TextureSource for PngImage {
    fn desc(&self) -> TextureDesc {
        TextureDesc {
            container: Container::Png,
            vk_format: 43,
            format: format::info(43),
            width: self.width,
            height: self.height,
            depth: 1,
            layers: 1,
            faces: 1,
            levels: 1,
            supercompressed: false,
        }
    }

    fn image(&self, sel: ImageSelector) -> Result<Cow<'_, [u8]>, TextureError> {
        self.desc().check(sel)?;
        Ok(Cow::Borrowed(&self.rgba8))
    }
}

/// A texture file of any supported container.
#[derive(Debug)]
pub enum TextureFile {
    /// KTX 2.0.
    Ktx2(Ktx2File),
    /// KTX 1.1.
    Ktx1(Ktx1File),
    /// DDS.
    Dds(DdsFile),
    /// PNG, decoded.
    Png(PngImage),
    /// A Basis Universal KTX2 file (`vkFormat` 0), transcoded when read:
    /// see [`TextureFile::transcode_for`].
    #[cfg(feature = "basis")]
    Basis(super::basis::BasisFile),
}

impl TextureFile {
    /// Opens the file at `path`: reads it into memory, detects its
    /// container from its first bytes, decodes it (PNG) and validates it.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, TextureError> {
        Self::from(Bytes::read(path.as_ref())?)
    }

    /// [`open`](Self::open) over a memory mapping instead of a copy.
    ///
    /// # Safety
    /// The file must not be truncated while the returned value lives: a
    /// read past its new end faults (`SIGBUS`). See
    /// [`Ktx2File::open_mapped`](super::file::Ktx2File::open_mapped).
    pub unsafe fn open_mapped(path: impl AsRef<Path>) -> Result<Self, TextureError> {
        // SAFETY: the caller's promise, passed on.
        Self::from(unsafe { Bytes::map(path.as_ref()) }?)
    }

    /// Detects and validates `bytes` (a copy in memory).
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, TextureError> {
        Self::from(Bytes::Owned(bytes))
    }

    fn from(bytes: Bytes) -> Result<Self, TextureError> {
        match detect(&bytes).map_err(TextureError::Unsupported)? {
            Container::Ktx2 => {
                let file = Ktx2File::new(bytes)?;
                // Basis Universal: no format of its own, or UASTC HDR 4x4,
                // stored as ASTC 4x4 SFLOAT with its own colour model and
                // transcoded (to BC6H where ASTC HDR is not sampled).
                #[cfg(feature = "basis")]
                if file.layout().vk_format == 0
                    || (file.layout().vk_format == 1_000_066_000
                        && file.layout().color_model == super::dfd::model::UASTC_HDR_4X4)
                {
                    return Ok(TextureFile::Basis(super::basis::BasisFile::new(file)?));
                }
                Ok(TextureFile::Ktx2(file))
            }
            Container::Ktx1 => Ok(TextureFile::Ktx1(Ktx1File::new(bytes)?)),
            Container::Dds => Ok(TextureFile::Dds(DdsFile::new(bytes)?)),
            Container::Png => Ok(TextureFile::Png(PngImage::decode(&bytes)?)),
        }
    }

    fn source(&self) -> &dyn TextureSource {
        match self {
            TextureFile::Ktx2(f) => f,
            TextureFile::Ktx1(f) => f,
            TextureFile::Dds(f) => f,
            TextureFile::Png(f) => f,
            #[cfg(feature = "basis")]
            TextureFile::Basis(f) => f,
        }
    }

    /// For a Basis Universal file, transcodes to the best target that
    /// `support` offers from now on (uncompressed until then); other files
    /// are left as they are.
    #[cfg(feature = "basis")]
    pub fn transcode_for(&mut self, support: super::basis::TranscodeSupport) {
        if let TextureFile::Basis(b) = self {
            b.retarget(support);
        }
    }
}

impl TextureSource for TextureFile {
    fn desc(&self) -> TextureDesc {
        self.source().desc()
    }

    fn image(&self, sel: ImageSelector) -> Result<Cow<'_, [u8]>, TextureError> {
        self.source().image(sel)
    }

    fn level(&self, level: u32) -> Result<Cow<'_, [u8]>, TextureError> {
        self.source().level(level)
    }
}
