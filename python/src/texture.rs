//! `forgeflow.texture`: texture files without a GPU. `info`, `validate`,
//! `decode` and `transcode` over the library's file readers, validator and
//! CPU decoders; the GIL is released while a file is read and decoded.

use std::path::PathBuf;

use forgeflow::jobs::texture::basis::ExtractTarget;
use forgeflow::jobs::texture::decode::{decode, decode_3d, DecodeError, DecodedFormat};
use forgeflow::jobs::texture::file::{ImageSelector, TextureError};
use forgeflow::jobs::texture::findings::{gltf_basisu_findings, is_valid, ktx2_findings};
use forgeflow::jobs::texture::source::{TextureFile, TextureSource};
use forgeflow::jobs::texture::{Container, KTX2_MAGIC};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::arrays::array;
use crate::errors;

/// Reads and validates a texture file (KTX2, KTX 1, DDS, PNG).
fn open(py: Python<'_>, path: &PathBuf) -> PyResult<TextureFile> {
    py.detach(|| TextureFile::open(path))
        .map_err(errors::texture)
}

/// What a texture file holds: container, format, size, levels, layers,
/// faces, supercompression, bytes per level.
#[pyfunction]
pub fn info<'py>(py: Python<'py>, path: PathBuf) -> PyResult<Bound<'py, PyDict>> {
    let file = open(py, &path)?;
    let d = file.desc();
    let out = PyDict::new(py);
    out.set_item("file", path.to_string_lossy().as_ref())?;
    out.set_item(
        "container",
        match d.container {
            Container::Ktx2 => "KTX2",
            Container::Ktx1 => "KTX 1",
            Container::Dds => "DDS",
            Container::Png => "PNG",
        },
    )?;
    let (vk_format, format, supercompression) = match &file {
        TextureFile::Basis(b) => (
            b.file().layout().vk_format,
            format!("Basis Universal {:?}", b.source_format()),
            format!("{:?}", b.file().layout().supercompression),
        ),
        TextureFile::Ktx2(k) => (
            d.vk_format,
            d.format.map_or("unknown".into(), |f| f.name.to_owned()),
            format!("{:?}", k.layout().supercompression),
        ),
        _ => (
            d.vk_format,
            d.format.map_or("unknown".into(), |f| f.name.to_owned()),
            "None".to_owned(),
        ),
    };
    out.set_item("vk_format", vk_format)?;
    out.set_item("format", format)?;
    out.set_item("compressed", d.format.is_some_and(|f| f.is_compressed()))?;
    for (k, v) in [
        ("width", d.width),
        ("height", d.height),
        ("depth", d.depth),
        ("layers", d.layers),
        ("faces", d.faces),
        ("levels", d.levels),
    ] {
        out.set_item(k, v)?;
    }
    out.set_item("supercompression", supercompression)?;
    let levels = PyList::empty(py);
    for level in 0..d.levels {
        let l = PyDict::new(py);
        let (w, h) = d.level_size(level);
        l.set_item("level", level)?;
        l.set_item("width", w)?;
        l.set_item("height", h)?;
        l.set_item("bytes", d.level_bytes(level))?;
        levels.append(l)?;
    }
    out.set_item("per_level", levels)?;
    Ok(out)
}

/// Validates a file: for KTX2, the rules of Khronos' `ktx validate` with its
/// issue IDs (and glTF's KHR_texture_basisu rules with `gltf_basisu`); for
/// the other containers, whether forgeflow reads it. Never raises for an
/// invalid file: returns `{"valid": bool, "findings": [{"id", "severity",
/// "message"}]}`.
#[pyfunction]
#[pyo3(signature = (path, gltf_basisu = false))]
pub fn validate<'py>(
    py: Python<'py>,
    path: PathBuf,
    gltf_basisu: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let bytes = py
        .detach(|| std::fs::read(&path))
        .map_err(|e| errors::texture(TextureError::Io(e)))?;
    let findings: Vec<(u16, String, String)> = if bytes.starts_with(&KTX2_MAGIC) {
        let found = py.detach(|| {
            let f = if gltf_basisu {
                gltf_basisu_findings(&bytes)
            } else {
                ktx2_findings(&bytes)
            };
            (is_valid(&f), f)
        });
        let (valid, list) = found;
        let list = list
            .into_iter()
            .map(|f| (f.id, f.severity.to_string(), f.message))
            .collect();
        return report(py, valid, list);
    } else {
        match py.detach(|| TextureFile::from_bytes(bytes)) {
            Ok(_) => Vec::new(),
            Err(e) => vec![(0, "error".to_owned(), e.to_string())],
        }
    };
    report(py, findings.is_empty(), findings)
}

fn report<'py>(
    py: Python<'py>,
    valid: bool,
    findings: Vec<(u16, String, String)>,
) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    out.set_item("valid", valid)?;
    let list = PyList::empty(py);
    for (id, severity, message) in findings {
        let f = PyDict::new(py);
        f.set_item("id", id)?;
        f.set_item("severity", severity)?;
        f.set_item("message", message)?;
        list.append(f)?;
    }
    out.set_item("findings", list)?;
    Ok(out)
}

/// Why an image could not be decoded.
pub enum Failure {
    /// The file could not give the image.
    File(TextureError),
    /// The decoder refused it.
    Decode(DecodeError),
}

impl Failure {
    /// As its Python exception.
    pub fn into_py(self) -> PyErr {
        match self {
            Failure::File(e) => errors::texture(e),
            Failure::Decode(e @ DecodeError::DataSize { .. }) => {
                errors::other("InvalidTextureError", e)
            }
            Failure::Decode(e) => errors::other("UnsupportedFormatError", e),
        }
    }
}

/// An image decoded on the CPU: its bytes, numpy dtype and shape.
pub struct Decoded {
    pub bytes: Vec<u8>,
    pub dtype: &'static str,
    pub shape: Vec<usize>,
}

/// Decodes one image of `file` to RGBA: 8-bit (`uint8`, `int8` for signed
/// formats) or half floats (`float16`) as its format says; 32-bit float
/// files stay `float32`.
pub fn decode_image(file: &TextureFile, sel: ImageSelector) -> Result<Decoded, Failure> {
    let d = file.desc();
    if sel.level >= d.levels || sel.layer >= d.layers || sel.face >= d.faces {
        return Err(Failure::File(TextureError::NoSuchImage {
            selector: format!(
                "{sel:?} of {} level(s), {} layer(s), {} face(s)",
                d.levels, d.layers, d.faces
            ),
        }));
    }
    let (w, h) = d.level_size(sel.level);
    let shape = vec![h as usize, w as usize, 4];
    let out = |bytes, dtype| Decoded {
        bytes,
        dtype,
        shape: shape.clone(),
    };
    if let TextureFile::Basis(b) = file {
        if !b.is_hdr() {
            return Ok(out(
                b.extract(sel, Some(ExtractTarget::Rgba8))
                    .map_err(Failure::File)?,
                "uint8",
            ));
        }
        // Half-float RGB or RGBA: alpha 1.0 where the file has none.
        let texels = b.extract(sel, None).map_err(Failure::File)?;
        let channels = if b.has_alpha() { 4 } else { 3 };
        let rgba = texels
            .chunks_exact(2 * channels)
            .flat_map(|t| {
                let mut px = [0u8; 8];
                px[..2 * channels].copy_from_slice(t);
                if channels == 3 {
                    px[6..].copy_from_slice(&0x3C00u16.to_le_bytes());
                }
                px
            })
            .collect();
        return Ok(out(rgba, "float16"));
    }
    let image = file.image(sel).map_err(Failure::File)?;
    match d.vk_format {
        // R8G8B8A8 UNORM / SRGB.
        37 | 43 => Ok(out(image.into_owned(), "uint8")),
        // B8G8R8A8 UNORM / SRGB.
        44 | 50 => Ok(out(
            image
                .chunks_exact(4)
                .flat_map(|p| [p[2], p[1], p[0], p[3]])
                .collect(),
            "uint8",
        )),
        // R16G16B16A16_SFLOAT, R32G32B32A32_SFLOAT.
        97 => Ok(out(image.into_owned(), "float16")),
        109 => Ok(out(image.into_owned(), "float32")),
        vk => {
            let decoded = if d.format.is_some_and(|f| f.block[2] > 1) {
                decode_3d(vk, &image, w, h, 1)
            } else {
                decode(vk, &image, w, h)
            };
            let (format, px) = decoded.map_err(Failure::Decode)?;
            match format.expand_to_rgba8(&px) {
                Some(rgba) if format.is_snorm() => Ok(out(rgba, "int8")),
                Some(rgba) => Ok(out(rgba, "uint8")),
                None => {
                    debug_assert_eq!(format, DecodedFormat::Rgba16Float);
                    Ok(out(px, "float16"))
                }
            }
        }
    }
}

/// Decodes one image (level, array layer, cube face) of a texture file to a
/// numpy array of shape (height, width, 4): `uint8` RGBA for 8-bit formats,
/// `float16` for HDR ones (BC6H, ASTC HDR, half floats), as the format says.
/// Block-compressed formats are decoded on the CPU; no GPU is needed.
#[pyfunction]
#[pyo3(signature = (path, level = 0, layer = 0, face = 0))]
pub fn decode_file<'py>(
    py: Python<'py>,
    path: PathBuf,
    level: u32,
    layer: u32,
    face: u32,
) -> PyResult<Bound<'py, PyAny>> {
    let file = open(py, &path)?;
    let sel = ImageSelector {
        level,
        layer,
        face,
        depth: 0,
    };
    let d = py
        .detach(|| decode_image(&file, sel))
        .map_err(Failure::into_py)?;
    array(py, &d.bytes, d.dtype, &d.shape)
}

/// Transcodes one image of a Basis Universal file (ETC1S, UASTC) to
/// `target`, as `ktx extract --transcode` does: block targets (`bc1`,
/// `bc3`, `bc4`, `bc5`, `bc7`, `astc`, `etc-rgb`, `etc-rgba`, `eac-r11`,
/// `eac-rg11`) give `uint8` blocks of shape (block rows, block columns,
/// bytes per block); texel targets (`r8`, `rg8`, `rgb8`, `rgba8`) give
/// (height, width, channels).
#[pyfunction]
#[pyo3(signature = (path, target, level = 0, layer = 0, face = 0))]
pub fn transcode<'py>(
    py: Python<'py>,
    path: PathBuf,
    target: &str,
    level: u32,
    layer: u32,
    face: u32,
) -> PyResult<Bound<'py, PyAny>> {
    let target: ExtractTarget = target
        .parse()
        .map_err(|e: String| errors::raise("UnsupportedFormatError", e))?;
    let file = open(py, &path)?;
    let TextureFile::Basis(b) = &file else {
        return Err(errors::raise(
            "UnsupportedFormatError",
            format!(
                "{}: not a Basis Universal file (transcode is for ETC1S/UASTC KTX2 files; decode() reads the others)",
                path.display()
            ),
        ));
    };
    let sel = ImageSelector {
        level,
        layer,
        face,
        depth: 0,
    };
    let bytes = py
        .detach(|| b.extract(sel, Some(target)))
        .map_err(errors::texture)?;
    let (w, h) = file.desc().level_size(level);
    let (w, h) = (w as usize, h as usize);
    let shape = match target {
        ExtractTarget::R8 => vec![h, w, 1],
        ExtractTarget::Rg8 => vec![h, w, 2],
        ExtractTarget::Rgb8 => vec![h, w, 3],
        ExtractTarget::Rgba8 => vec![h, w, 4],
        _ => {
            let (cols, rows) = (w.div_ceil(4), h.div_ceil(4));
            vec![rows, cols, bytes.len() / (rows * cols).max(1)]
        }
    };
    array(py, &bytes, "uint8", &shape)
}

/// The names `transcode` takes, in the order `ktx extract` lists them.
#[pyfunction]
pub fn transcode_targets() -> Vec<&'static str> {
    ExtractTarget::ALL.iter().map(|t| t.name()).collect()
}
