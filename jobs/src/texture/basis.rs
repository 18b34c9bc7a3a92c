//! Basis Universal KTX2 files (KHR_texture_basisu: BasisLZ/ETC1S, UASTC LDR
//! and HDR, XUASTC), transcoded to a format the GPU samples.
//!
//! A Basis file has no GPU format of its own (`vkFormat` 0): each level is
//! transcoded, when it is read, to the best target the device has
//! ([`TranscodeSupport`]): BC7 (or BC6H for HDR) where BC is sampled, ASTC
//! where ASTC is, ETC2 where ETC2 is, else uncompressed RGBA8 (or RGBA16F
//! for HDR). [`BasisFile`] is a [`TextureSource`] of the transcoded blocks:
//! its description names the target's format, and reading a level
//! transcodes it (once per level: the upload path reads supercompressed
//! levels whole, as it inflates zstd ones).
//!
//! The transcoder is the `basisu` crate: pure Rust (no C++ toolchain or
//! libclang at build time, wasm-friendly), a port of Binomial's transcoder
//! whose output for every target and corpus file matched Binomial's own
//! (docs/ARCHITECTURE.md, "Dependencies"). A transcoder panic on a corrupt
//! file is caught and becomes an error.

use std::borrow::Cow;
use std::sync::Arc;

use basisu::Transcoder;
pub use basisu::{SourceFormat, TargetFormat};

use super::file::{ImageSelector, Ktx2File, TextureError};
use super::format;
use super::ktx2::Supercompression;
use super::source::{TextureDesc, TextureSource};

/// The block formats a device samples, for choosing a transcode target.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TranscodeSupport {
    /// BC1-BC7 (and BC6H).
    pub bc: bool,
    /// ASTC LDR.
    pub astc: bool,
    /// ASTC HDR.
    pub astc_hdr: bool,
    /// ETC2 and EAC.
    pub etc2: bool,
}

/// Where a Basis file is transcoded to: the transcoder's target and the
/// Vulkan format of its blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TranscodeTarget {
    /// The `basisu` target.
    pub target: TargetFormat,
    /// Its `VkFormat` (sRGB where the file's transfer function is sRGB).
    pub vk_format: u32,
}

/// A validated Basis Universal KTX2 file and the target it transcodes to.
pub struct BasisFile {
    file: Arc<Ktx2File>,
    source: SourceFormat,
    srgb: bool,
    has_alpha: bool,
    target: TranscodeTarget,
}

impl std::fmt::Debug for BasisFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasisFile")
            .field("source", &self.source)
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// The KTX2 transfer function of sRGB (KHR_DF_TRANSFER_SRGB).
const TRANSFER_SRGB: u8 = 2;

impl BasisFile {
    /// A Basis file over a validated KTX2 file of `vkFormat` 0 (or UASTC HDR
    /// 4x4, stored as ASTC 4x4 SFLOAT), transcoding
    /// to uncompressed RGBA8 (RGBA16F for HDR) until [`retarget`](Self::retarget).
    pub fn new(file: Ktx2File) -> Result<Self, TextureError> {
        check_sizes(&file)?;
        let (source, has_alpha) = guard(|| {
            let t = Transcoder::new(file.raw()).map_err(transcode_error)?;
            Ok((t.source_format(), t.has_alpha()))
        })?;
        let srgb = file.layout().transfer == TRANSFER_SRGB;
        let mut basis = BasisFile {
            file: Arc::new(file),
            source,
            srgb,
            has_alpha,
            target: TranscodeTarget {
                target: TargetFormat::Rgba32,
                vk_format: 37,
            },
        };
        basis.retarget(TranscodeSupport::default());
        Ok(basis)
    }

    /// The source codec.
    pub fn source_format(&self) -> SourceFormat {
        self.source
    }

    /// Whether the file has an alpha channel.
    pub fn has_alpha(&self) -> bool {
        self.has_alpha
    }

    /// Whether the file is HDR (UASTC HDR, ASTC HDR 6x6).
    pub fn is_hdr(&self) -> bool {
        matches!(
            self.source,
            SourceFormat::UastcHdr4x4 | SourceFormat::AstcHdr6x6 | SourceFormat::UastcHdr6x6
        )
    }

    /// The target now.
    pub fn target(&self) -> TranscodeTarget {
        self.target
    }

    /// The KTX2 file.
    pub fn file(&self) -> &Ktx2File {
        &self.file
    }

    /// Picks the best target `support` offers (see the module documentation).
    pub fn retarget(&mut self, support: TranscodeSupport) {
        self.target = self.best_target(support);
    }

    /// The target [`retarget`](Self::retarget) would pick for `support`:
    /// a block format only where level 0 is whole blocks of it (a GPU
    /// texture of a block format must be), else uncompressed, which keeps
    /// more than a block format decoded again on the CPU would.
    pub fn best_target(&self, support: TranscodeSupport) -> TranscodeTarget {
        let l = self.file.layout();
        let whole =
            |(bw, bh): (u32, u32)| l.width.is_multiple_of(bw) && l.height.max(1).is_multiple_of(bh);
        let astc_dims = match self.source {
            SourceFormat::XuastcLdr(b) | SourceFormat::AstcLdr(b) => b.dims(),
            SourceFormat::AstcHdr6x6 | SourceFormat::UastcHdr6x6 => (6, 6),
            _ => (4, 4),
        };
        let support = TranscodeSupport {
            bc: support.bc && whole((4, 4)),
            etc2: support.etc2 && whole((4, 4)),
            astc: support.astc && whole(astc_dims),
            astc_hdr: support.astc_hdr && whole(astc_dims),
        };
        let srgb = self.srgb;
        let pick = |target, unorm: u32, srgb_vk: u32| TranscodeTarget {
            target,
            vk_format: if srgb { srgb_vk } else { unorm },
        };
        if self.is_hdr() {
            let six = matches!(
                self.source,
                SourceFormat::AstcHdr6x6 | SourceFormat::UastcHdr6x6
            );
            return if support.bc {
                pick(TargetFormat::Bc6h, 143, 143)
            } else if support.astc_hdr && six {
                pick(TargetFormat::AstcHdr6x6Rgba, 1_000_066_004, 1_000_066_004)
            } else if support.astc_hdr {
                pick(TargetFormat::AstcHdr4x4Rgba, 1_000_066_000, 1_000_066_000)
            } else {
                pick(TargetFormat::RgbaHalf, 97, 97)
            };
        }
        // XUASTC and raw ASTC keep their block size in ASTC.
        let astc_block = match self.source {
            SourceFormat::XuastcLdr(b) | SourceFormat::AstcLdr(b) => Some(b),
            _ => None,
        };
        if support.bc {
            pick(TargetFormat::Bc7Rgba, 145, 146)
        } else if support.astc {
            match astc_block {
                Some(b) => {
                    let (w, h) = b.dims();
                    let index = format::ASTC_BLOCKS
                        .iter()
                        .position(|&d| d == (w, h))
                        .unwrap_or(0) as u32;
                    pick(b.passthrough_target(), 157 + 2 * index, 158 + 2 * index)
                }
                None => pick(TargetFormat::Astc4x4Rgba, 157, 158),
            }
        } else if support.etc2 && self.has_alpha {
            pick(TargetFormat::Etc2Rgba, 151, 152)
        } else if support.etc2 {
            pick(TargetFormat::Etc1Rgb, 147, 148)
        } else {
            pick(TargetFormat::Rgba32, 37, 43)
        }
    }

    /// Transcodes one image to `target` (any target the source supports:
    /// what `forgeflow-tex extract --transcode` writes).
    pub fn transcode_image(
        &self,
        sel: ImageSelector,
        target: TargetFormat,
    ) -> Result<Vec<u8>, TextureError> {
        self.with_transcoder(|t| self.transcode_with(t, sel, target))
    }

    /// Runs `f` with a transcoder over the file, a panic in it an error.
    fn with_transcoder<T>(
        &self,
        f: impl FnOnce(&Transcoder<'_>) -> Result<T, TextureError>,
    ) -> Result<T, TextureError> {
        guard(|| f(&Transcoder::new(self.file.raw()).map_err(transcode_error)?))
    }

    /// One image through `t`: its output size bounded first (the transcoder
    /// allocates it at once).
    fn transcode_with(
        &self,
        t: &Transcoder<'_>,
        sel: ImageSelector,
        target: TargetFormat,
    ) -> Result<Vec<u8>, TextureError> {
        let limit = self.file.inflate_limit();
        let bytes = t.output_size(sel.level, target).map_err(transcode_error)? as u64;
        if bytes > limit {
            return Err(TextureError::TooLarge {
                level: sel.level,
                bytes,
                limit,
            });
        }
        t.transcode_image(
            sel.level,
            sel.layer,
            sel.face,
            target,
            basisu::DecodeFlags::NONE,
        )
        .map_err(transcode_error)
    }
}

/// A target of `forgeflow-tex extract --transcode`, the targets of
/// KTX-Software's `ktx extract --transcode`: a block format, or uncompressed
/// 8-bit texels of 1 to 4 channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtractTarget {
    /// ETC1 RGB blocks (`etc-rgb`).
    EtcRgb,
    /// ETC2 RGBA blocks (`etc-rgba`).
    EtcRgba,
    /// EAC R11 blocks (`eac-r11`).
    EacR11,
    /// EAC RG11 blocks (`eac-rg11`).
    EacRg11,
    /// BC1 blocks (`bc1`).
    Bc1,
    /// BC3 blocks (`bc3`).
    Bc3,
    /// BC4 blocks (`bc4`).
    Bc4,
    /// BC5 blocks (`bc5`).
    Bc5,
    /// BC7 blocks (`bc7`).
    Bc7,
    /// ASTC 4x4 blocks (`astc`).
    Astc,
    /// R8 texels (`r8`).
    R8,
    /// RG8 texels (`rg8`).
    Rg8,
    /// RGB8 texels (`rgb8`).
    Rgb8,
    /// RGBA8 texels (`rgba8`).
    Rgba8,
}

impl ExtractTarget {
    /// Every target, in the order `ktx extract` lists them.
    pub const ALL: [ExtractTarget; 14] = [
        Self::EtcRgb,
        Self::EtcRgba,
        Self::EacR11,
        Self::EacRg11,
        Self::Bc1,
        Self::Bc3,
        Self::Bc4,
        Self::Bc5,
        Self::Bc7,
        Self::Astc,
        Self::R8,
        Self::Rg8,
        Self::Rgb8,
        Self::Rgba8,
    ];

    /// The target's name on the command line.
    pub fn name(self) -> &'static str {
        const NAMES: [&str; 14] = [
            "etc-rgb", "etc-rgba", "eac-r11", "eac-rg11", "bc1", "bc3", "bc4", "bc5", "bc7",
            "astc", "r8", "rg8", "rgb8", "rgba8",
        ];
        NAMES[Self::ALL.iter().position(|&t| t == self).expect("listed")]
    }

    /// The target named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The transcoder's target, and how many 8-bit channels of its RGBA
    /// texels to keep (0: blocks, kept whole).
    pub fn transcoder_target(self) -> (TargetFormat, usize) {
        match self {
            Self::EtcRgb => (TargetFormat::Etc1Rgb, 0),
            Self::EtcRgba => (TargetFormat::Etc2Rgba, 0),
            Self::EacR11 => (TargetFormat::EacR11, 0),
            Self::EacRg11 => (TargetFormat::EacRg11, 0),
            Self::Bc1 => (TargetFormat::Bc1Rgb, 0),
            Self::Bc3 => (TargetFormat::Bc3Rgba, 0),
            Self::Bc4 => (TargetFormat::Bc4R, 0),
            Self::Bc5 => (TargetFormat::Bc5Rg, 0),
            Self::Bc7 => (TargetFormat::Bc7Rgba, 0),
            Self::Astc => (TargetFormat::Astc4x4Rgba, 0),
            Self::R8 => (TargetFormat::Rgba32, 1),
            Self::Rg8 => (TargetFormat::Rgba32, 2),
            Self::Rgb8 => (TargetFormat::Rgba32, 3),
            Self::Rgba8 => (TargetFormat::Rgba32, 4),
        }
    }
}

impl std::str::FromStr for ExtractTarget {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::from_name(s).ok_or_else(|| {
            let names: Vec<_> = Self::ALL.iter().map(|t| t.name()).collect();
            format!("no transcode target {s:?} (one of {})", names.join(", "))
        })
    }
}

impl BasisFile {
    /// One image as `ktx extract` writes it: with a target, its blocks or
    /// texels; without, uncompressed texels with the file's channels (RGB or
    /// RGBA: 8-bit for LDR, half floats for HDR).
    pub fn extract(
        &self,
        sel: ImageSelector,
        target: Option<ExtractTarget>,
    ) -> Result<Vec<u8>, TextureError> {
        let channels = if self.has_alpha { 4 } else { 3 };
        let (target, keep, texel) = match target {
            Some(t) => {
                let (target, keep) = t.transcoder_target();
                (target, keep, 4)
            }
            None if self.is_hdr() => (TargetFormat::RgbaHalf, channels, 8),
            None => (TargetFormat::Rgba32, channels, 4),
        };
        let d = self.file.desc();
        if sel.level >= d.levels || sel.layer >= d.layers || sel.face >= d.faces || sel.depth > 0 {
            return Err(TextureError::NoSuchImage {
                selector: format!("{sel:?}"),
            });
        }
        let texels = self.transcode_image(sel, target)?;
        if keep == 0 || keep == 4 {
            return Ok(texels);
        }
        let bytes = keep * texel / 4;
        Ok(texels
            .chunks_exact(texel)
            .flat_map(|px| &px[..bytes])
            .copied()
            .collect())
    }
}

/// What the transcoder would allocate or compute, checked before it sees the
/// file: it
/// inflates a zstd level into a buffer of the size the level index states
/// (a corrupt index asked it for 34 PB, and a failed allocation aborts the
/// process, which no guard catches). A zstd level may state at most what a
/// UASTC level of its size holds (16 bytes a 4x4 block, the densest Basis
/// payload), and at most the file's inflate limit.
fn check_sizes(file: &Ktx2File) -> Result<(), TextureError> {
    let l = file.layout();
    // The transcoder multiplies width by height in 32 bits: a level 0 whose
    // widest output (RGBA16F) exceeds the inflate limit is refused first.
    let widest = u64::from(l.width)
        .saturating_mul(u64::from(l.height.max(1)))
        .saturating_mul(8);
    if widest > file.inflate_limit() {
        return Err(TextureError::TooLarge {
            level: 0,
            bytes: widest,
            limit: file.inflate_limit(),
        });
    }
    if l.supercompression != Supercompression::Zstd {
        return Ok(());
    }
    let images = u64::from(l.layers.max(1)) * u64::from(l.faces.max(1));
    for (level, (_, stated)) in l.level_ranges.iter().enumerate() {
        let level = level as u32;
        let blocks = |extent: u32| u64::from(super::level_extent(extent, level).div_ceil(4));
        let depth = u64::from(super::level_extent(l.depth, level));
        let most = blocks(l.width)
            .saturating_mul(blocks(l.height))
            .saturating_mul(16)
            .saturating_mul(images)
            .saturating_mul(depth);
        if *stated > most {
            return Err(TextureError::Inflate {
                level,
                reason: format!(
                    "the level index states {stated} bytes; a Basis level of its size has at most {most}"
                ),
            });
        }
        if *stated > file.inflate_limit() {
            return Err(TextureError::TooLarge {
                level,
                bytes: *stated,
                limit: file.inflate_limit(),
            });
        }
    }
    Ok(())
}

fn transcode_error(e: basisu::Error) -> TextureError {
    TextureError::Transcode(format!("{e:?}"))
}

/// Runs the transcoder, turning a panic (a corrupt file the transcoder does
/// not check) into an error.
fn guard<T>(f: impl FnOnce() -> Result<T, TextureError>) -> Result<T, TextureError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(TextureError::Transcode(
            "the Basis Universal transcoder failed on this file (corrupt data)".into(),
        ))
    })
}

impl TextureSource for BasisFile {
    fn desc(&self) -> TextureDesc {
        let mut d = self.file.desc();
        d.vk_format = self.target.vk_format;
        d.format = format::info(self.target.vk_format);
        // Read a level at a time (transcoded once), as zstd levels are.
        d.supercompressed = true;
        d
    }

    fn image(&self, sel: ImageSelector) -> Result<Cow<'_, [u8]>, TextureError> {
        let d = self.file.desc();
        if sel.level >= d.levels || sel.layer >= d.layers || sel.face >= d.faces || sel.depth > 0 {
            return Err(TextureError::NoSuchImage {
                selector: format!("{sel:?}"),
            });
        }
        self.transcode_image(sel, self.target.target)
            .map(Cow::Owned)
    }

    /// Every image of `level` through one transcoder (making one parses the
    /// file, and for ETC1S decodes its codebooks).
    fn level(&self, level: u32) -> Result<Cow<'_, [u8]>, TextureError> {
        let d = self.file.desc();
        if level >= d.levels {
            return Err(TextureError::NoSuchImage {
                selector: format!("level {level}"),
            });
        }
        self.with_transcoder(|t| {
            let mut out = Vec::new();
            for layer in 0..d.layers {
                for face in 0..d.faces {
                    let sel = ImageSelector {
                        level,
                        layer,
                        face,
                        depth: 0,
                    };
                    out.extend(self.transcode_with(t, sel, self.target.target)?);
                }
            }
            Ok(Cow::Owned(out))
        })
    }
}
