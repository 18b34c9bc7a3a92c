//! Textures to the GPU: a validated texture file (KTX2, DDS, KTX 1 or PNG:
//! anything that is a [`TextureSource`]) becomes a `wgpu::Texture` through the
//! staging ring.
//!
//! Native path: when the adapter has the format's compression feature (BC,
//! ETC2, ASTC) and the base size is a whole number of blocks, the blocks are
//! copied as they are. Fallback: each image is decoded on a worker (a decode
//! job per image) to RGBA8 (sRGB kept, snorm for signed formats) or RGBA16F
//! (BC6H) and that is uploaded. Uncompressed formats are uploaded as they are.
//!
//! ```no_run
//! # fn demo(device: &wgpu::Device, queue: &wgpu::Queue) -> Result<(), Box<dyn std::error::Error>> {
//! use forgeflow::graph::{Scheduler, SchedulerConfig};
//! use forgeflow::jobs::texture::source::TextureFile;
//! use forgeflow::staging::{StagingConfig, StagingRing};
//! use forgeflow::texture::{load_texture, UploadOptions};
//!
//! let file = TextureFile::open("albedo.ktx2")?; // or .dds, .ktx, .png
//! let mut ring = StagingRing::new(device, StagingConfig::default())?;
//! let mut sched = Scheduler::new(SchedulerConfig::default())?;
//! let staging = ring.begin_frame()?;
//! let mut frame = sched.begin_frame()?;
//! let loaded = load_texture(device, &file, &staging, &mut frame, UploadOptions::default())?;
//! frame.run()?; // the copy and decode jobs fill the staging memory
//! let mut encoder = device.create_command_encoder(&Default::default());
//! staging.finish(&mut encoder);
//! queue.submit([encoder.finish()]);
//! println!("{} path", if loaded.native { "native" } else { "fallback" });
//! # Ok(()) }
//! ```

use std::fmt;
use std::sync::{Arc, Mutex};

use forgeflow_graph::{Frame, FrameError, GraphError, JobKey, Scheduler};
use forgeflow_jobs::texture::decode::{self, DecodedFormat};
use forgeflow_jobs::texture::file::{ImageSelector, TextureError};
use forgeflow_jobs::texture::level_extent;
use forgeflow_jobs::texture::source::TextureSource;

use crate::staging::{StagingError, StagingFrame, StagingRing};

/// What a device of `features` samples, for choosing where Basis Universal
/// files are transcoded to ([`TextureFile::transcode_for`](forgeflow_jobs::texture::source::TextureFile::transcode_for)).
#[cfg(feature = "basis")]
pub fn transcode_support(
    features: wgpu::Features,
) -> forgeflow_jobs::texture::basis::TranscodeSupport {
    forgeflow_jobs::texture::basis::TranscodeSupport {
        bc: features.contains(wgpu::Features::TEXTURE_COMPRESSION_BC),
        astc: features.contains(wgpu::Features::TEXTURE_COMPRESSION_ASTC),
        astc_hdr: features.contains(wgpu::Features::TEXTURE_COMPRESSION_ASTC_HDR),
        etc2: features.contains(wgpu::Features::TEXTURE_COMPRESSION_ETC2),
    }
}

/// The wgpu format of a Vulkan format, when wgpu has one (sRGB kept).
pub fn wgpu_format(vk_format: u32) -> Option<wgpu::TextureFormat> {
    use wgpu::{AstcBlock as B, AstcChannel as C, TextureFormat as F};
    const ASTC: [B; 14] = [
        B::B4x4,
        B::B5x4,
        B::B5x5,
        B::B6x5,
        B::B6x6,
        B::B8x5,
        B::B8x6,
        B::B8x8,
        B::B10x5,
        B::B10x6,
        B::B10x8,
        B::B10x10,
        B::B12x10,
        B::B12x12,
    ];
    Some(match vk_format {
        9 => F::R8Unorm,
        10 => F::R8Snorm,
        13 => F::R8Uint,
        14 => F::R8Sint,
        16 => F::Rg8Unorm,
        17 => F::Rg8Snorm,
        20 => F::Rg8Uint,
        21 => F::Rg8Sint,
        37 => F::Rgba8Unorm,
        38 => F::Rgba8Snorm,
        41 => F::Rgba8Uint,
        42 => F::Rgba8Sint,
        43 => F::Rgba8UnormSrgb,
        44 => F::Bgra8Unorm,
        50 => F::Bgra8UnormSrgb,
        64 => F::Rgb10a2Unorm,
        68 => F::Rgb10a2Uint,
        70 => F::R16Unorm,
        71 => F::R16Snorm,
        74 => F::R16Uint,
        75 => F::R16Sint,
        76 => F::R16Float,
        77 => F::Rg16Unorm,
        78 => F::Rg16Snorm,
        81 => F::Rg16Uint,
        82 => F::Rg16Sint,
        83 => F::Rg16Float,
        91 => F::Rgba16Unorm,
        92 => F::Rgba16Snorm,
        95 => F::Rgba16Uint,
        96 => F::Rgba16Sint,
        97 => F::Rgba16Float,
        98 => F::R32Uint,
        99 => F::R32Sint,
        100 => F::R32Float,
        101 => F::Rg32Uint,
        102 => F::Rg32Sint,
        103 => F::Rg32Float,
        107 => F::Rgba32Uint,
        108 => F::Rgba32Sint,
        109 => F::Rgba32Float,
        122 => F::Rg11b10Ufloat,
        123 => F::Rgb9e5Ufloat,
        131 | 133 => F::Bc1RgbaUnorm,
        132 | 134 => F::Bc1RgbaUnormSrgb,
        135 => F::Bc2RgbaUnorm,
        136 => F::Bc2RgbaUnormSrgb,
        137 => F::Bc3RgbaUnorm,
        138 => F::Bc3RgbaUnormSrgb,
        139 => F::Bc4RUnorm,
        140 => F::Bc4RSnorm,
        141 => F::Bc5RgUnorm,
        142 => F::Bc5RgSnorm,
        143 => F::Bc6hRgbUfloat,
        144 => F::Bc6hRgbFloat,
        145 => F::Bc7RgbaUnorm,
        146 => F::Bc7RgbaUnormSrgb,
        147 => F::Etc2Rgb8Unorm,
        148 => F::Etc2Rgb8UnormSrgb,
        149 => F::Etc2Rgb8A1Unorm,
        150 => F::Etc2Rgb8A1UnormSrgb,
        151 => F::Etc2Rgba8Unorm,
        152 => F::Etc2Rgba8UnormSrgb,
        153 => F::EacR11Unorm,
        154 => F::EacR11Snorm,
        155 => F::EacRg11Unorm,
        156 => F::EacRg11Snorm,
        157..=184 => F::Astc {
            block: ASTC[((vk_format - 157) / 2) as usize],
            channel: if vk_format % 2 == 1 {
                C::Unorm
            } else {
                C::UnormSrgb
            },
        },
        1_000_066_000..=1_000_066_013 => F::Astc {
            block: ASTC[(vk_format - 1_000_066_000) as usize],
            channel: C::Hdr,
        },
        _ => return None,
    })
}

fn is_srgb(vk_format: u32) -> bool {
    matches!(
        vk_format,
        29 | 36 | 43 | 50 | 132 | 134 | 136 | 138 | 146 | 148 | 150 | 152
    ) || (157..=184).contains(&vk_format) && vk_format.is_multiple_of(2)
        || (1_000_288_000..=1_000_288_029).contains(&vk_format)
            && (vk_format - 1_000_288_000) % 3 == 1
}

/// How a texture's colour values are to be read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ColorSpace {
    /// As the file says (its format, or sRGB for PNG): the default.
    #[default]
    AsFile,
    /// sRGB: the GPU converts to linear when sampling (colour textures).
    Srgb,
    /// Linear: values are sampled as stored (normal maps, masks, data).
    Linear,
}

/// How to load a texture.
#[derive(Debug, Clone, Copy)]
pub struct UploadOptions {
    /// Decode on the CPU even when the adapter could sample the format (tests, comparisons).
    pub force_fallback: bool,
    /// Extra usages of the texture (`COPY_DST | TEXTURE_BINDING` are always set).
    pub usage: wgpu::TextureUsages,
    /// sRGB or linear, where the format has both variants (formats without
    /// an sRGB variant stay as they are).
    pub color_space: ColorSpace,
    /// The most mip levels to load, from the first (`None`: all the file
    /// has).
    pub max_levels: Option<u32>,
}

impl Default for UploadOptions {
    fn default() -> Self {
        UploadOptions {
            force_fallback: false,
            usage: wgpu::TextureUsages::empty(),
            color_space: ColorSpace::AsFile,
            max_levels: None,
        }
    }
}

/// What a texture's descriptor carries besides the plan: its label and the
/// formats its views may take.
#[derive(Debug, Clone, Default)]
pub struct TextureLabels {
    /// The texture's label (default "forgeflow texture").
    pub label: Option<String>,
    /// `view_formats` (the sRGB or linear twin of the format, typically).
    pub view_formats: Vec<wgpu::TextureFormat>,
}

/// A texture being loaded: created, its images reserved in staging memory and
/// their copy or decode jobs declared. It is complete once the frame's jobs
/// have run and the staging frame's encoder has been submitted.
#[derive(Debug)]
pub struct LoadedTexture {
    /// The texture.
    pub texture: wgpu::Texture,
    /// The file's level that is the texture's level 0: above 0 when the
    /// file's larger levels exceed the device's limits (see
    /// [`TextureUpload::new`]).
    pub first_level: u32,
    /// Whether the blocks were uploaded as they are (true) or decoded on the CPU.
    pub native: bool,
    /// Bytes of GPU memory the texture's images take.
    pub gpu_bytes: u64,
}

/// Why a texture could not be loaded.
#[derive(Debug)]
#[non_exhaustive]
pub enum TextureUploadError {
    /// The file cannot be read as needed.
    Texture(TextureError),
    /// No wgpu format this device can sample, and no CPU conversion, for
    /// this vkFormat (depth and stencil formats, 64-bit channels, PVRTC,
    /// 4:2:2, or a 16-bit normalized format without the device feature).
    Unsupported(u32),
    /// Decoding is not possible for this format.
    Decode(decode::DecodeError),
    /// Staging refused a piece.
    Staging(StagingError),
    /// Declaring a job failed.
    Graph(GraphError),
    /// A job of the frame failed (only from [`load_texture_blocking`]).
    Frame(FrameError),
    /// Waiting for the GPU failed, for instance a lost device (only from
    /// [`load_texture_blocking`]).
    Device(wgpu::PollError),
    /// The texture exceeds one of the device's limits, and no smaller level
    /// of the file fits either.
    Limit {
        /// What exceeds it, naming the `wgpu::Limits` field.
        what: &'static str,
        /// The texture's value.
        value: u64,
        /// The device's limit.
        limit: u64,
    },
    /// wgpu refused the texture's descriptor (a validation error caught by
    /// an error scope, not a panic).
    Validation(String),
    /// Pixels of a format no KTX2 file can hold (a depth format, a
    /// compressed one given as pixels...).
    NoKtx2Format(wgpu::TextureFormat),
}

impl fmt::Display for TextureUploadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TextureUploadError::Texture(e) => e.fmt(f),
            TextureUploadError::Unsupported(vk) => {
                let name = forgeflow_jobs::texture::format::info(*vk).map_or("unknown", |i| i.name);
                write!(
                    f,
                    "vkFormat {vk} ({name}) has no wgpu format this device can sample \
                     and no CPU conversion"
                )
            }
            TextureUploadError::Decode(e) => e.fmt(f),
            TextureUploadError::Staging(e) => e.fmt(f),
            TextureUploadError::Graph(e) => e.fmt(f),
            TextureUploadError::Frame(e) => e.fmt(f),
            TextureUploadError::Device(e) => write!(f, "waiting for the GPU failed: {e}"),
            TextureUploadError::Limit { what, value, limit } => write!(
                f,
                "the texture's {what} is {value}, over the device's limit of {limit}, \
                 and the file has no smaller level that fits"
            ),
            TextureUploadError::Validation(why) => write!(f, "wgpu refused the texture: {why}"),
            TextureUploadError::NoKtx2Format(format) => write!(
                f,
                "pixels of {format:?} cannot be loaded: no uncompressed KTX2 format holds them"
            ),
        }
    }
}

impl std::error::Error for TextureUploadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TextureUploadError::Texture(e) => Some(e),
            TextureUploadError::Decode(e) => Some(e),
            TextureUploadError::Staging(e) => Some(e),
            TextureUploadError::Graph(e) => Some(e),
            TextureUploadError::Frame(e) => Some(e),
            TextureUploadError::Device(e) => Some(e),
            _ => None,
        }
    }
}

impl From<TextureError> for TextureUploadError {
    fn from(e: TextureError) -> Self {
        TextureUploadError::Texture(e)
    }
}
impl From<StagingError> for TextureUploadError {
    fn from(e: StagingError) -> Self {
        TextureUploadError::Staging(e)
    }
}
impl From<GraphError> for TextureUploadError {
    fn from(e: GraphError) -> Self {
        TextureUploadError::Graph(e)
    }
}

/// Loads `file` now: one staging frame and one graph frame of its own,
/// submitted, then waits for the GPU. For tools, tests and loading screens;
/// a renderer that streams while it draws calls [`load_texture`] inside its
/// own frames instead.
pub fn load_texture_blocking<S: TextureSource + ?Sized>(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    file: &S,
    ring: &mut StagingRing,
    sched: &mut Scheduler,
    options: UploadOptions,
) -> Result<LoadedTexture, TextureUploadError> {
    let staging = ring.begin_frame()?;
    let loaded = {
        let mut frame = sched.begin_frame()?;
        let loaded = load_texture(device, file, &staging, &mut frame, options)?;
        frame.run().map_err(TextureUploadError::Frame)?;
        loaded
    };
    let mut encoder = device.create_command_encoder(&Default::default());
    staging.finish(&mut encoder);
    queue.submit([encoder.finish()]);
    device
        .poll(wgpu::PollType::wait_indefinitely())
        .map_err(TextureUploadError::Device)?;
    Ok(loaded)
}

/// Creates the texture of `file` and declares, on `frame`, the jobs that
/// copy its blocks (native) or decode them (fallback) into `staging`: the
/// whole texture in one frame. [`TextureUpload`] spreads one over frames.
pub fn load_texture<'s, S: TextureSource + ?Sized>(
    device: &wgpu::Device,
    file: &'s S,
    staging: &'s StagingFrame<'_>,
    frame: &mut Frame<'s>,
    options: UploadOptions,
) -> Result<LoadedTexture, TextureUploadError> {
    let mut upload = TextureUpload::new(device, file, options)?;
    upload.step(file, staging, frame, u64::MAX)?;
    Ok(upload.into_loaded())
}

/// What a texture file becomes on a device, decided before any wgpu call:
/// the path (its blocks as they are, or decoded on the CPU), the format,
/// the size, the levels and the GPU bytes. [`TextureUpload::new`] creates
/// its texture from it; a tool can show it without creating anything.
///
/// The plan keeps to the device's limits (array layers, the largest
/// dimension of each level): where level 0 is too large but a smaller level
/// of the file fits, the texture starts from the first level that fits (as
/// engines do: [`first_level`](Self::first_level)); where none fits, the
/// error is [`TextureUploadError::Limit`]. A 3D texture of 2D blocks stays
/// compressed only where the device has the format's sliced-3D feature, and
/// is decoded otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TexturePlan {
    /// The texture's format: the file's, or what the CPU decodes it to.
    pub format: wgpu::TextureFormat,
    /// Its size: level `first_level`'s width and height, and its depth (3D)
    /// or array layers (layers times faces).
    pub size: wgpu::Extent3d,
    /// 2D (arrays and cubes included) or 3D.
    pub dimension: wgpu::TextureDimension,
    /// Its levels: the file's from `first_level` on.
    pub mip_level_count: u32,
    /// The file's level that is the texture's level 0.
    pub first_level: u32,
    /// Whether the blocks go up as they are (true) or decoded on the CPU.
    pub native: bool,
    /// Bytes of GPU memory the texture's images take.
    pub gpu_bytes: u64,
}

impl TexturePlan {
    /// The plan for a file of `desc` on a device of `features` and `limits`.
    pub fn new(
        desc: &forgeflow_jobs::texture::source::TextureDesc,
        features: wgpu::Features,
        limits: &wgpu::Limits,
        options: UploadOptions,
    ) -> Result<Self, TextureUploadError> {
        let l = desc;
        let vk = l.vk_format;
        if vk == 0 {
            return Err(TextureUploadError::Texture(TextureError::NeedsTranscoder {
                what: "a VK_FORMAT_UNDEFINED payload (Basis Universal: ETC1S or UASTC)",
            }));
        }
        let stored = wgpu_format(vk);
        let fmt_info = l.format.ok_or(TextureUploadError::Unsupported(vk))?;
        let is_3d = l.depth > 1;
        let levels = l.levels.max(1);
        // No more levels than the size has (a validated file never has
        // them): this also bounds every loop over levels below to 32.
        let largest = l
            .width
            .max(l.height)
            .max(if is_3d { l.depth } else { 1 })
            .max(1);
        let most_levels = 32 - largest.leading_zeros();
        if levels > most_levels {
            return Err(TextureUploadError::Limit {
                what: "mip levels (the most a texture of its size has)",
                value: levels.into(),
                limit: most_levels.into(),
            });
        }
        let (first_level, layers) = fit_to_limits(l, is_3d, limits)?;
        let levels = match options.max_levels {
            Some(n) => levels.min(first_level + n.max(1)),
            None => levels,
        };
        let (width, height) = l.level_size(first_level);
        let depth = level_extent(l.depth, first_level);
        let whole_blocks =
            width.is_multiple_of(fmt_info.block[0]) && height.is_multiple_of(fmt_info.block[1]);
        let native = match stored {
            Some(f) if !options.force_fallback || !fmt_info.is_compressed() => {
                let mut needs = f.required_features();
                if is_3d && fmt_info.is_compressed() {
                    // 3D textures of 2D blocks ("sliced 3D") are a feature of their own.
                    needs |= sliced_3d_feature(f);
                }
                features.contains(needs)
                    && (whole_blocks || !fmt_info.is_compressed())
                    && fmt_info.block[2] == 1
            }
            _ => false,
        };
        let format = if native {
            stored.ok_or(TextureUploadError::Unsupported(vk))?
        } else {
            let decoded = decode::decoded_format(vk).map_err(|e| match e {
                decode::DecodeError::Unsupported { .. } => TextureUploadError::Unsupported(vk),
                e => TextureUploadError::Decode(e),
            })?;
            match decoded {
                DecodedFormat::Rgba8Unorm if is_srgb(vk) => wgpu::TextureFormat::Rgba8UnormSrgb,
                DecodedFormat::Rgba8Unorm => wgpu::TextureFormat::Rgba8Unorm,
                DecodedFormat::Rgba8Snorm => wgpu::TextureFormat::Rgba8Snorm,
                DecodedFormat::Rgba16Float => wgpu::TextureFormat::Rgba16Float,
                DecodedFormat::R8Unorm => wgpu::TextureFormat::R8Unorm,
                DecodedFormat::R8Snorm => wgpu::TextureFormat::R8Snorm,
                DecodedFormat::Rg8Unorm => wgpu::TextureFormat::Rg8Unorm,
                DecodedFormat::Rg8Snorm => wgpu::TextureFormat::Rg8Snorm,
            }
        };
        let format = match options.color_space {
            ColorSpace::AsFile => format,
            ColorSpace::Srgb => format.add_srgb_suffix(),
            ColorSpace::Linear => format.remove_srgb_suffix(),
        };
        let decoded_bpp = decode::decoded_format(vk).map_or(4, |d| d.bytes_per_pixel()) as u64;
        // The texture's bytes, as the copies will write them (tight rows).
        let mut gpu_bytes = 0u64;
        for level in first_level..levels {
            let (w, h) = l.level_size(level);
            let slices = if is_3d {
                level_extent(l.depth, level)
            } else {
                layers
            };
            let per_slice = if native {
                let [bw, bh, _] = fmt_info.block;
                u64::from(w.div_ceil(bw)) * u64::from(h.div_ceil(bh)) * u64::from(fmt_info.bytes)
            } else {
                u64::from(w) * u64::from(h) * decoded_bpp
            };
            gpu_bytes = gpu_bytes.saturating_add(per_slice.saturating_mul(u64::from(slices)));
        }
        Ok(TexturePlan {
            format,
            size: wgpu::Extent3d {
                width,
                height,
                depth_or_array_layers: if is_3d { depth } else { layers },
            },
            dimension: if is_3d {
                wgpu::TextureDimension::D3
            } else {
                wgpu::TextureDimension::D2
            },
            mip_level_count: levels - first_level,
            first_level,
            native,
            gpu_bytes,
        })
    }

    /// The texture descriptor: the plan's, with `COPY_DST | TEXTURE_BINDING`
    /// and `usage`.
    pub fn descriptor(&self, usage: wgpu::TextureUsages) -> wgpu::TextureDescriptor<'static> {
        wgpu::TextureDescriptor {
            label: Some("forgeflow texture"),
            size: self.size,
            mip_level_count: self.mip_level_count,
            sample_count: 1,
            dimension: self.dimension,
            format: self.format,
            usage: wgpu::TextureUsages::COPY_DST | wgpu::TextureUsages::TEXTURE_BINDING | usage,
            view_formats: &[],
        }
    }

    /// The view dimension a texture of this plan is sampled as, from the
    /// file's layers and faces: a cube (array) for 6 faces, an array for
    /// more than one layer, 3D for depth.
    pub fn view_dimension(
        &self,
        desc: &forgeflow_jobs::texture::source::TextureDesc,
    ) -> wgpu::TextureViewDimension {
        use wgpu::TextureViewDimension as V;
        match (self.dimension, desc.faces, desc.layers > 1) {
            (wgpu::TextureDimension::D3, _, _) => V::D3,
            (_, 6, true) => V::CubeArray,
            (_, 6, false) => V::Cube,
            (_, _, true) => V::D2Array,
            _ => V::D2,
        }
    }
}

/// The first level of `l` that fits the device's `limits`, and the texture's
/// array layers (layers times faces; 1 for a 3D texture).
fn fit_to_limits(
    l: &forgeflow_jobs::texture::source::TextureDesc,
    is_3d: bool,
    limits: &wgpu::Limits,
) -> Result<(u32, u32), TextureUploadError> {
    let layers = if is_3d {
        1
    } else {
        let layers = u64::from(l.layers.max(1)) * u64::from(l.faces.max(1));
        let limit = limits.max_texture_array_layers;
        if layers > u64::from(limit) {
            return Err(TextureUploadError::Limit {
                what: "array layers (layers x faces; max_texture_array_layers)",
                value: layers,
                limit: limit.into(),
            });
        }
        layers as u32
    };
    let (what, limit) = if is_3d {
        (
            "largest dimension (max_texture_dimension_3d)",
            limits.max_texture_dimension_3d,
        )
    } else {
        (
            "largest dimension (max_texture_dimension_2d)",
            limits.max_texture_dimension_2d,
        )
    };
    let largest = |level: u32| {
        let (w, h) = l.level_size(level);
        let d = if is_3d {
            level_extent(l.depth, level)
        } else {
            1
        };
        w.max(h).max(d)
    };
    let first = (0..l.levels.max(1))
        .find(|&level| largest(level) <= limit)
        .ok_or(TextureUploadError::Limit {
            what,
            value: largest(0).into(),
            limit: limit.into(),
        })?;
    Ok((first, layers))
}

/// The feature a 3D texture of `format`'s 2D blocks needs (empty for a
/// format that has none: wgpu then refuses it, and the caller decodes).
fn sliced_3d_feature(format: wgpu::TextureFormat) -> wgpu::Features {
    let bc = wgpu::Features::TEXTURE_COMPRESSION_BC;
    let astc =
        wgpu::Features::TEXTURE_COMPRESSION_ASTC | wgpu::Features::TEXTURE_COMPRESSION_ASTC_HDR;
    let required = format.required_features();
    if required.intersects(bc) {
        wgpu::Features::TEXTURE_COMPRESSION_BC_SLICED_3D
    } else if required.intersects(astc) {
        wgpu::Features::TEXTURE_COMPRESSION_ASTC_SLICED_3D
    } else {
        // ETC2 has no sliced-3D feature: asking for one no device has
        // sends such a texture down the decode path.
        wgpu::Features::all()
    }
}

/// Where the next piece of a [`TextureUpload`] starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Cursor {
    level: u32,
    layer: u32,
    face: u32,
    /// Depth image (slab of block depth) within the level.
    z: u32,
    /// Row of blocks within the image.
    row: u32,
}

/// A texture being uploaded piece by piece, a staging budget per frame: the
/// texture is created at once; each [`step`](Self::step) declares the next
/// pieces (bands of block rows of an image; whole images for 3D blocks)
/// until the budget is used. A supercompressed level is inflated once, by a
/// job of the step that reaches it, and kept until the next level: the
/// upload holds one inflated level at most. A renderer that streams large
/// textures while it draws uses it to keep each frame's decode and copy work
/// bounded.
#[derive(Debug)]
pub struct TextureUpload {
    texture: wgpu::Texture,
    native: bool,
    desc: forgeflow_jobs::texture::source::TextureDesc,
    /// Bytes per texel written to staging on the fallback path.
    decoded_bpp: usize,
    /// The file's level that is the texture's level 0.
    first_level: u32,
    /// The next piece; `None` once every piece is declared.
    next: Option<Cursor>,
    gpu_bytes: u64,
    /// The inflated levels being uploaded, for supercompressed files:
    /// inflated once (by a job of a step, or elsewhere and handed over with
    /// [`provide_levels`](Self::provide_levels)), then read by every piece
    /// of those levels, in this frame and later ones.
    level_cache: Option<Arc<LevelCache>>,
    /// Whether a step declares the inflate job of a level it reaches (true)
    /// or stops there until the level is provided.
    inflate_in_frame: bool,
    /// Nanoseconds its copy and decode jobs have run, added by the jobs.
    work_ns: Arc<std::sync::atomic::AtomicU64>,
    view_dimension: wgpu::TextureViewDimension,
    /// The jobs the last [`step`](Self::step) declared: a failure of the
    /// frame is this texture's only when one of them failed.
    jobs: Vec<JobKey>,
}

/// Inflated levels of a supercompressed file: (level, its images one after another).
pub type InflatedLevels = Vec<(u32, Arc<[u8]>)>;

type LevelCache = Mutex<InflatedLevels>;

/// Where pieces read their images: the file, or the inflated level.
struct Images<'s, S: ?Sized> {
    file: &'s S,
    cache: Option<Arc<LevelCache>>,
}

impl<S: ?Sized> Clone for Images<'_, S> {
    fn clone(&self) -> Self {
        Images {
            file: self.file,
            cache: self.cache.clone(),
        }
    }
}

/// An image's bytes: borrowed from the file, or a range of an inflated level.
enum Blocks<'s> {
    File(std::borrow::Cow<'s, [u8]>),
    Shared(Arc<[u8]>, std::ops::Range<usize>),
}

impl std::ops::Deref for Blocks<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Blocks::File(c) => c,
            Blocks::Shared(a, r) => &a[r.clone()],
        }
    }
}

impl<'s, S: TextureSource + ?Sized> Images<'s, S> {
    fn image(&self, sel: ImageSelector) -> Result<Blocks<'s>, TextureError> {
        let Some(cache) = &self.cache else {
            return Ok(Blocks::File(self.file.image(sel)?));
        };
        let no = |why: &str| TextureError::NoSuchImage {
            selector: format!("{sel:?} ({why})"),
        };
        let d = self.file.desc();
        let bytes = match cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(level, _)| *level == sel.level)
        {
            Some((_, bytes)) => Arc::clone(bytes),
            None => return Err(no("its level was not inflated")),
        };
        let image = d.image_bytes(sel.level).ok_or_else(|| no("unknown size"))? as usize;
        let index =
            ((sel.layer * d.faces + sel.face) * d.depth_images(sel.level) + sel.depth) as usize;
        let range = index * image..(index + 1) * image;
        if range.end > bytes.len() {
            return Err(no("beyond the inflated level"));
        }
        Ok(Blocks::Shared(bytes, range))
    }
}

impl TextureUpload {
    /// Chooses the path (native or decoded) and creates the texture, as
    /// [`TexturePlan::new`] plans it for `device`: checked against the
    /// device's limits before wgpu sees it (invariant 7), from the file's
    /// first level that fits. Whatever else wgpu refuses is caught by an
    /// error scope ([`TextureUploadError::Validation`]).
    pub fn new<S: TextureSource + ?Sized>(
        device: &wgpu::Device,
        file: &S,
        options: UploadOptions,
    ) -> Result<Self, TextureUploadError> {
        Self::with_labels(device, file, options, &TextureLabels::default())
    }

    /// [`new`](Self::new), the texture labelled and given view formats.
    pub fn with_labels<S: TextureSource + ?Sized>(
        device: &wgpu::Device,
        file: &S,
        options: UploadOptions,
        labels: &TextureLabels,
    ) -> Result<Self, TextureUploadError> {
        let mut l = file.desc();
        let plan = TexturePlan::new(&l, device.features(), &device.limits(), options)?;
        // Only the levels the plan keeps are uploaded.
        l.levels = l.levels.min(plan.first_level + plan.mip_level_count);
        // What the plan does not cover (a format's own rules, say) is
        // wgpu's to refuse: caught here, never a panic.
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut descriptor = plan.descriptor(options.usage);
        descriptor.label = Some(labels.label.as_deref().unwrap_or("forgeflow texture"));
        descriptor.view_formats = &labels.view_formats;
        let texture = device.create_texture(&descriptor);
        let view_dimension = plan.view_dimension(&l);
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(TextureUploadError::Validation(e.to_string()));
        }
        Ok(TextureUpload {
            texture,
            native: plan.native,
            desc: l,
            decoded_bpp: decode::decoded_format(l.vk_format).map_or(4, |d| d.bytes_per_pixel()),
            first_level: plan.first_level,
            next: Some(Cursor {
                level: plan.first_level,
                ..Cursor::default()
            }),
            gpu_bytes: plan.gpu_bytes,
            level_cache: l.supercompressed.then(|| Arc::new(Mutex::new(Vec::new()))),
            inflate_in_frame: true,
            work_ns: Arc::default(),
            jobs: Vec::new(),
            view_dimension,
        })
    }

    /// How the texture is sampled: 2D, an array, a cube (array) or 3D.
    pub fn view_dimension(&self) -> wgpu::TextureViewDimension {
        self.view_dimension
    }

    /// The file's level that is the texture's level 0 (0 unless the
    /// file's larger levels exceed the device's limits).
    pub fn first_level(&self) -> u32 {
        self.first_level
    }

    /// Whether a [`step`](Self::step) that reaches a supercompressed level
    /// not inflated yet declares its inflate job in the frame (true, the
    /// default) or stops there, leaving the level to the caller: see
    /// [`level_needed`](Self::level_needed). A whole level's inflate cannot
    /// be cut into pieces; a renderer that bounds its frame time runs it on
    /// a background thread.
    pub fn set_inflate_in_frame(&mut self, in_frame: bool) {
        self.inflate_in_frame = in_frame;
    }

    /// The time its copy and decode jobs ran since the last call (summed
    /// over the workers): with the staging bytes a step declared, the cost
    /// of this texture's bytes, which a renderer bounds its frames with.
    pub fn take_work(&self) -> std::time::Duration {
        let ns = self.work_ns.swap(0, std::sync::atomic::Ordering::Relaxed);
        std::time::Duration::from_nanos(ns)
    }

    /// The supercompressed level the next piece reads, when it has not
    /// been inflated (or provided) yet.
    pub fn level_needed(&self) -> Option<u32> {
        let cache = self.level_cache.as_ref()?;
        let level = self.next?.level;
        let have = cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|(l, _)| *l == level);
        (!have).then_some(level)
    }

    /// Hands over levels inflated elsewhere (by [`inflate_levels`](Self::inflate_levels)),
    /// replacing those held. Levels of the wrong size are refused, so that
    /// no piece reads past one.
    pub fn provide_levels(&mut self, levels: InflatedLevels) -> Result<(), TextureError> {
        let Some(cache) = &self.level_cache else {
            return Err(TextureError::NoSuchImage {
                selector: "an inflated level of a file that is not supercompressed".into(),
            });
        };
        for (level, bytes) in &levels {
            let want = self.desc.level_bytes(*level);
            if want != Some(bytes.len() as u64) {
                return Err(TextureError::NoSuchImage {
                    selector: format!(
                        "level {level} inflated to {} bytes, expected {want:?}",
                        bytes.len()
                    ),
                });
            }
        }
        *cache.lock().unwrap_or_else(|p| p.into_inner()) = levels;
        Ok(())
    }

    /// Inflates `first` and the levels after it while they add up to no
    /// more than `first` itself (for a mip chain, the whole tail: it adds a
    /// third), so a background thread's one task serves the rest of the
    /// upload.
    pub fn inflate_levels<S: TextureSource + ?Sized>(
        file: &S,
        first: u32,
    ) -> Result<InflatedLevels, TextureError> {
        let d = file.desc();
        let cap = d.level_bytes(first).unwrap_or(0);
        let mut out = Vec::new();
        let mut total = 0u64;
        for level in first..d.levels {
            let size = d.level_bytes(level).unwrap_or(u64::MAX);
            if level > first && total.saturating_add(size) > 2 * cap {
                break;
            }
            total = total.saturating_add(size);
            out.push((level, Arc::<[u8]>::from(file.level(level)?)));
        }
        Ok(out)
    }

    /// The texture (complete once every step's frame has been submitted and
    /// has finished on the GPU).
    pub fn texture(&self) -> &wgpu::Texture {
        &self.texture
    }

    /// Whether the blocks go up as they are (true) or decoded on the CPU.
    pub fn native(&self) -> bool {
        self.native
    }

    /// Bytes of GPU memory the texture's images take.
    pub fn gpu_bytes(&self) -> u64 {
        self.gpu_bytes
    }

    /// Whether every piece has been declared.
    pub fn is_done(&self) -> bool {
        self.next.is_none()
    }

    /// The texture and what it cost.
    pub fn into_loaded(self) -> LoadedTexture {
        LoadedTexture {
            texture: self.texture,
            first_level: self.first_level,
            native: self.native,
            gpu_bytes: self.gpu_bytes,
        }
    }

    /// The jobs the last [`step`](Self::step) declared (its inflate, copy
    /// and decode jobs): when a frame fails, its
    /// [`FrameError::failures`] name this texture's when one of these failed.
    pub fn jobs(&self) -> &[JobKey] {
        &self.jobs
    }

    /// Declares the next pieces on `frame`, reserving up to `budget` bytes of
    /// `staging` (at least one band of block rows, or one whole image of 3D
    /// blocks, so every step makes progress). Returns
    /// whether the texture is now fully declared. `file` must be the file
    /// the upload was made from.
    pub fn step<'s, S: TextureSource + ?Sized>(
        &mut self,
        file: &'s S,
        staging: &'s StagingFrame<'_>,
        frame: &mut Frame<'s>,
        budget: u64,
    ) -> Result<bool, TextureUploadError> {
        let l = self.desc;
        let vk = l.vk_format;
        let fmt = l.format.ok_or(TextureUploadError::Unsupported(vk))?;
        let [bw, bh, bd] = fmt.block;
        let is_3d = l.depth > 1;
        let mut used = 0u64;
        self.jobs.clear();
        // The inflate job declared by this step, and its level.
        let (mut inflate_job, mut inflating): (Option<JobKey>, Option<u32>) = (None, None);
        while let Some(c) = self.next {
            let (w, h) = l.level_size(c.level);
            let level_depth = level_extent(l.depth, c.level);
            let block_rows = h.div_ceil(bh);
            // Bytes one row of blocks takes in staging (pitch rounded to 256).
            let row_px_bytes = if self.native {
                w.div_ceil(bw) as u64 * fmt.bytes as u64
            } else {
                (w * bh) as u64 * self.decoded_bpp as u64
            };
            let pitch = row_px_bytes.next_multiple_of(256);
            // A band of rows, or the whole image for 3D blocks.
            let whole = bd > 1;
            let rows = if whole {
                block_rows - c.row
            } else {
                let left = budget.saturating_sub(used) / pitch;
                (left as u32).clamp(1, block_rows - c.row)
            };
            if used > 0 && used + rows as u64 * pitch > budget {
                break;
            }
            let sel = ImageSelector {
                level: c.level,
                layer: c.layer,
                face: c.face,
                depth: c.z,
            };
            // A supercompressed level is inflated once, by a job this frame
            // declares before the level's first piece (pieces wait for it),
            // or by the caller, elsewhere.
            if self.level_needed().is_some() && inflating != Some(c.level) {
                if !self.inflate_in_frame {
                    break;
                }
                let cache = Arc::clone(self.level_cache.as_ref().expect("level_needed"));
                let level = c.level;
                inflate_job = Some(frame.add("texture inflate", move |_| {
                    let bytes: Arc<[u8]> = file.level(level)?.into();
                    *cache.lock().unwrap_or_else(|p| p.into_inner()) = vec![(level, bytes)];
                    Ok(())
                })?);
                self.jobs.extend(inflate_job);
                inflating = Some(c.level);
            }
            let images = Images {
                file,
                cache: self.level_cache.clone(),
            };
            let slices = (level_depth - c.z * bd).min(bd);
            let y0 = c.row * bh;
            let origin = wgpu::Origin3d {
                x: 0,
                y: y0,
                z: if is_3d {
                    c.z * bd
                } else {
                    c.layer * l.faces + c.face
                },
            };
            let extent = wgpu::Extent3d {
                width: w,
                height: ((c.row + rows) * bh).min(h) - y0,
                depth_or_array_layers: if bd > 1 { slices } else { 1 },
            };
            let mut piece = staging.write_texture(
                &self.texture,
                c.level - self.first_level,
                origin,
                extent,
                wgpu::TextureAspect::All,
            )?;
            used += piece.layout().staged_bytes;
            let band = c.row..c.row + rows;
            // A job's weight: KiB written to staging.
            let weight = piece.layout().staged_bytes / 1024;
            if self.native {
                let row_bytes = piece.layout().row_bytes as usize;
                let job = add_after(
                    frame,
                    "texture upload",
                    inflate_job,
                    (weight, &self.work_ns),
                    move |_| {
                        let bytes = images.image(sel)?;
                        let (a, b) = (
                            band.start as usize * row_bytes,
                            band.end as usize * row_bytes,
                        );
                        let rows = bytes.get(a..b).ok_or(TextureError::NoSuchImage {
                            selector: format!("{sel:?} rows {band:?}"),
                        })?;
                        Ok(piece.write_tight(rows)?)
                    },
                )?;
                self.jobs.push(job);
            } else if bd > 1 {
                let job = add_after(
                    frame,
                    "texture decode",
                    inflate_job,
                    (weight, &self.work_ns),
                    move |_| {
                        let blocks = images.image(sel)?;
                        let (_, px) = decode::decode_3d(vk, &blocks, w, h, slices)?;
                        Ok(piece.write_tight(&px)?)
                    },
                )?;
                self.jobs.push(job);
            } else {
                declare_decode(
                    frame,
                    &mut self.jobs,
                    images,
                    (inflate_job, &self.work_ns),
                    sel,
                    vk,
                    piece,
                    self.decoded_bpp,
                    band,
                )?;
            }
            self.next = next_piece(&l, c, rows, block_rows);
            if used >= budget {
                break;
            }
        }
        Ok(self.next.is_none())
    }
}

/// The piece after `c` once `rows` rows of blocks (of `block_rows`) are declared.
fn next_piece(
    l: &forgeflow_jobs::texture::source::TextureDesc,
    mut c: Cursor,
    rows: u32,
    block_rows: u32,
) -> Option<Cursor> {
    c.row += rows;
    if c.row < block_rows {
        return Some(c);
    }
    c.row = 0;
    c.z += 1;
    if c.z < l.depth_images(c.level) {
        return Some(c);
    }
    c.z = 0;
    c.face += 1;
    if c.face < l.faces {
        return Some(c);
    }
    c.face = 0;
    c.layer += 1;
    if c.layer < l.layers {
        return Some(c);
    }
    c.layer = 0;
    c.level += 1;
    (c.level < l.levels).then_some(c)
}

/// Declares a job that runs after `dep`, when there is one.
fn add_after<'s, F>(
    frame: &mut Frame<'s>,
    name: &'static str,
    dep: Option<JobKey>,
    (weight, work_ns): (u64, &Arc<std::sync::atomic::AtomicU64>),
    work: F,
) -> Result<JobKey, GraphError>
where
    F: FnOnce(&forgeflow_graph::JobContext<'_>) -> forgeflow_graph::JobResult + Send + 's,
{
    let work_ns = Arc::clone(work_ns);
    let work = move |ctx: &forgeflow_graph::JobContext<'_>| {
        let start = std::time::Instant::now();
        let result = work(ctx);
        let ns = start.elapsed().as_nanos() as u64;
        work_ns.fetch_add(ns, std::sync::atomic::Ordering::Relaxed);
        result
    };
    let job = frame.job(name).weight(weight.min(u32::MAX as u64) as u32);
    match dep {
        Some(d) => job.after(d).spawn(work),
        None => job.spawn(work),
    }
}

/// Pixels a decode job decodes into its scratch at a time (64 KiB of RGBA8):
/// a fallback upload holds one band per worker, never a whole decoded level.
const BAND_PIXELS: usize = 16 << 10;
/// Pixels per decode job at most: an image is split into jobs of block rows
/// so that workers share it. Small, so that a streamed upload's few hundred
/// KiB a frame still spread over the workers (on 16 slow cores a single
/// job of 128K pixels was the frame's longest).
const JOB_PIXELS: usize = 32 << 10;

/// Declares the decode of `block_rows` of one image into `piece` (which
/// covers exactly those rows): jobs of whole block rows,
/// each decoding a band at a time into a small scratch and writing its rows
/// into the staging memory, their keys pushed to `jobs`. The jobs read the image through `images` (the
/// inflated level of a supercompressed file) and run after `after`.
#[allow(clippy::too_many_arguments)]
fn declare_decode<'s, S: TextureSource + ?Sized>(
    frame: &mut Frame<'s>,
    jobs: &mut Vec<JobKey>,
    images: Images<'s, S>,
    (after, work_ns): (Option<JobKey>, &Arc<std::sync::atomic::AtomicU64>),
    sel: ImageSelector,
    vk: u32,
    piece: crate::staging::TextureWrite<'s>,
    bpp: usize,
    block_rows: std::ops::Range<u32>,
) -> Result<(), TextureUploadError> {
    let d = images.file.desc();
    let (w, h) = d.level_size(sel.level);
    let bh = d.format.map_or(1, |f| f.block[1]);
    let layout = *piece.layout();
    let (row_bytes, pitch) = (w as usize * bpp, layout.bytes_per_row as usize);
    let band = (BAND_PIXELS / (w as usize * bh as usize)).max(1) as u32;
    let per_job = ((JOB_PIXELS / (w as usize * bh as usize)).max(1) as u32).div_ceil(band) * band;
    let mut rest = Some(piece.into_raw());
    let mut first = block_rows.start;
    while first < block_rows.end {
        let last = (first + per_job).min(block_rows.end);
        let px_rows = ((last * bh).min(h) - first * bh) as usize;
        let (mut chunk, tail) = rest
            .take()
            .expect("one piece per band of rows")
            .split_at(px_rows * pitch);
        rest = Some(tail);
        let images = images.clone();
        // Weight: KiB decoded (the unit of the other texture jobs).
        let weight = (px_rows * row_bytes / 1024) as u64;
        let job = add_after(
            frame,
            "texture decode",
            after,
            (weight, work_ns),
            move |_| {
                let blocks = images.image(sel)?;
                let mut scratch = vec![0u8; (band * bh) as usize * row_bytes];
                let mut b = first;
                while b < last {
                    let e = (b + band).min(last);
                    let rows = ((e * bh).min(h) - b * bh) as usize;
                    let out = &mut scratch[..rows * row_bytes];
                    decode::decode_rows(vk, &blocks, w, h, b..e, out)?;
                    for (i, row) in out.chunks_exact(row_bytes).enumerate() {
                        let y = ((b - first) * bh) as usize + i;
                        chunk.write_at(y * pitch, row)?;
                    }
                    b = e;
                }
                Ok(())
            },
        )?;
        jobs.push(job);
        first = last;
    }
    Ok(())
}
