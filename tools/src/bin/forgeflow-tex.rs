//! `forgeflow-tex`: the texture tool.
//!
//! - `info FILE [--json]`: container, format, size, levels, layers, faces,
//!   supercompression, per-level bytes.
//! - `validate FILE...`: exit 0 when all are valid, 3 when any is invalid (one
//!   line per problem), 2 when a file is missing or unreadable, 1 on bad usage.
//! - `extract FILE [--level L] [--layer A] [--face F] [--depth Z] -o OUT`: the raw
//!   bytes of one image, supercompression inflated, exactly as stored uncompressed.
//!
//! - `decode FILE [same selectors] -o OUT.png`: the image decoded to an RGBA8 PNG
//!   (BC6H clamped to [0, 1]; signed formats mapped to [0, 255]).
//! - `upload FILE`: through the GPU path; says native or fallback, reads every
//!   image back and prints a checksum (exit 2 without a GPU).

use forgeflow_test_support::gpu::VerifyRead as _;
use std::path::PathBuf;
use std::process::ExitCode;

use forgeflow::jobs::texture::file::ImageSelector;
use forgeflow::jobs::texture::source::{TextureFile, TextureSource};
use forgeflow::jobs::texture::Container;
use serde_json::json;

const USAGE: &str = "\
usage: forgeflow-tex COMMAND ...

commands:
  info FILE [--json]            what the file holds
  validate [--json] [--gltf-basisu] FILE...
                                check structure (exit 0 valid, 3 invalid, 2 unreadable);
                                KTX2 findings carry ktx validate's IDs, warnings stay valid;
                                --gltf-basisu adds glTF's KHR_texture_basisu rules
  extract FILE [--level L] [--layer A] [--face F] [--depth Z] [--transcode T] -o OUT
                                write one image's bytes, supercompression inflated
                                (Basis Universal: transcoded to T, one of etc-rgb,
                                etc-rgba, eac-r11, eac-rg11, bc1, bc3, bc4, bc5, bc7,
                                astc, r8, rg8, rgb8, rgba8; else texels of its channels)
  decode FILE [same selectors] -o OUT.png
                                write one image decoded to an RGBA8 PNG
  upload FILE                   upload through the GPU path, read back, print a checksum
  vt-build (--terrain SIZE [--seed S] | --image FILE) [--tile T] [--border B] [--zstd] -o OUT
                                write a virtual-texture tile pack (RGBA8, every level) of a
                                procedural terrain SIZE texels square, or of an image";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("info") => info(&args[1..]),
        Some("validate") => validate(&args[1..]),
        Some("extract") => extract(&args[1..], false),
        Some("decode") => extract(&args[1..], true),
        Some("upload") => upload(&args[1..]),
        Some("vt-build") => vt_build(&args[1..]),
        Some("-h" | "--help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(other) => usage(&format!("unknown command {other:?}")),
        None => usage("no command"),
    }
}

fn usage(msg: &str) -> ExitCode {
    eprintln!("forgeflow-tex: {msg}\n{USAGE}");
    ExitCode::from(1)
}

/// Reads `path`, telling unreadable (exit 2) from invalid.
fn read(path: &str) -> Result<Vec<u8>, ExitCode> {
    std::fs::read(path).map_err(|e| {
        eprintln!("{path}: cannot read: {e}");
        ExitCode::from(2)
    })
}

/// Reads and validates `path` (exit 2 unreadable, 3 invalid).
fn load(path: &str) -> Result<TextureFile, ExitCode> {
    open(path, read(path)?)
}

/// Validates the bytes of `path` (exit 3 when invalid).
fn open(path: &str, bytes: Vec<u8>) -> Result<TextureFile, ExitCode> {
    TextureFile::from_bytes(bytes).map_err(|e| {
        eprintln!("{path}: {e}");
        ExitCode::from(3)
    })
}

fn info(args: &[String]) -> ExitCode {
    let json_out = args.iter().any(|a| a == "--json");
    let files: Vec<&String> = args.iter().filter(|a| *a != "--json").collect();
    let [path] = files[..] else {
        return usage("info takes one FILE");
    };
    let file = match load(path) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let d = file.desc();
    let container = match d.container {
        Container::Ktx2 => "KTX2",
        Container::Ktx1 => "KTX 1",
        Container::Dds => "DDS",
        Container::Png => "PNG",
    };
    let format = d.format.map_or("unknown".to_owned(), |f| f.name.to_owned());
    // Per level: bytes stored in the file and bytes once inflated (the same
    // unless KTX2 supercompression).
    let ktx2 = match &file {
        TextureFile::Ktx2(k) => Some(k),
        TextureFile::Basis(b) => Some(b.file()),
        _ => None,
    };
    let per_level: Vec<(u64, u64)> = match ktx2 {
        Some(k) => k
            .layout()
            .level_ranges
            .iter()
            .map(|(r, inflated)| (r.len() as u64, *inflated))
            .collect(),
        _ => (0..d.levels)
            .map(|level| {
                let b = d.image_bytes(level).unwrap_or(0)
                    * (d.layers * d.faces * d.depth_images(level)) as u64;
                (b, b)
            })
            .collect(),
    };
    let (supercompression, details) = match &file {
        TextureFile::Ktx2(k) => {
            let l = k.layout();
            (
                format!("{:?}", l.supercompression),
                json!({
                    "color_model": l.color_model, "transfer": l.transfer,
                    "key_values": l.key_values.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(String::from_utf8_lossy(v).into_owned()))).collect::<serde_json::Map<_, _>>(),
                }),
            )
        }
        TextureFile::Dds(f) => (
            "None".to_owned(),
            json!({ "source_format": f.layout().source_format, "dx10_header": f.layout().dx10 }),
        ),
        TextureFile::Ktx1(f) => (
            "None".to_owned(),
            json!({ "gl_internal_format": f.layout().gl_internal_format }),
        ),
        TextureFile::Png(_) => ("None".to_owned(), json!({ "decoded_to": "RGBA8 sRGB" })),
        TextureFile::Basis(b) => {
            use forgeflow::jobs::texture::basis::TranscodeSupport;
            let l = b.file().layout();
            let to = |support| {
                let t = b.best_target(support);
                let name =
                    forgeflow::jobs::texture::format::info(t.vk_format).map_or("?", |f| f.name);
                format!("{name} (vkFormat {})", t.vk_format)
            };
            let only = |bc, astc, etc2| TranscodeSupport {
                bc,
                astc,
                astc_hdr: astc,
                etc2,
            };
            // What it becomes on the adapter a load would use (null where
            // there is none).
            let here = adapter_support()
                .map(|(adapter, support)| json!({ "adapter": adapter, "target": to(support) }));
            (
                format!("{:?}", l.supercompression),
                json!({
                    "color_model": l.color_model, "transfer": l.transfer,
                    "basis_universal": format!("{:?}", b.source_format()),
                    "on_this_adapter": here,
                    "transcodes_to": {
                        "with_bc": to(only(true, false, false)),
                        "with_astc": to(only(false, true, false)),
                        "with_etc2": to(only(false, false, true)),
                        "otherwise": to(only(false, false, false)),
                    },
                }),
            )
        }
    };
    // A Basis file's own format: none (vkFormat 0), or the ASTC 4x4 SFLOAT
    // that UASTC HDR 4x4 files name.
    let (vk_format, format) = match &file {
        TextureFile::Basis(b) => (
            b.file().layout().vk_format,
            format!("Basis Universal {:?}", b.source_format()),
        ),
        _ => (d.vk_format, format),
    };
    if json_out {
        let levels: Vec<_> = per_level
            .iter()
            .enumerate()
            .map(|(i, (stored, bytes))| json!({ "level": i, "stored_bytes": stored, "bytes": bytes }))
            .collect();
        let mut v = json!({
            "file": path, "container": container, "vk_format": vk_format, "format": format,
            "width": d.width, "height": d.height, "depth": d.depth, "layers": d.layers,
            "faces": d.faces, "levels": d.levels, "supercompression": supercompression,
            "per_level": levels,
        });
        if let (Some(m), serde_json::Value::Object(extra)) = (v.as_object_mut(), details) {
            m.extend(extra);
        }
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        println!("{path}: {container}, vkFormat {vk_format} ({format})");
        println!(
            "  size {}x{}x{}, {} layer(s), {} face(s), {} level(s)",
            d.width, d.height, d.depth, d.layers, d.faces, d.levels
        );
        println!("  supercompression {supercompression}, {details}");
        for (i, (stored, bytes)) in per_level.iter().enumerate() {
            println!("  level {i}: {stored} bytes stored, {bytes} bytes");
        }
    }
    ExitCode::SUCCESS
}

/// The adapter `upload` and the runtime would open (the same environment
/// overrides apply) and the block formats it samples, without opening a
/// device; `None` where there is no adapter.
fn adapter_support() -> Option<(String, forgeflow::jobs::texture::basis::TranscodeSupport)> {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle().with_env());
    let adapter = pollster::block_on(wgpu::util::initialize_adapter_from_env_or_default(
        &instance, None,
    ))
    .ok()?;
    Some((
        adapter.get_info().name,
        forgeflow::texture::transcode_support(adapter.features()),
    ))
}

fn validate(args: &[String]) -> ExitCode {
    use forgeflow::jobs::texture::findings::{gltf_basisu_findings, is_valid, ktx2_findings};
    let json_out = args.iter().any(|a| a == "--json");
    let gltf = args.iter().any(|a| a == "--gltf-basisu");
    let paths: Vec<&String> = args
        .iter()
        .filter(|a| *a != "--json" && *a != "--gltf-basisu")
        .collect();
    if paths.is_empty() {
        return usage("validate takes at least one FILE");
    }
    let mut worst = 0u8;
    let mut reports = Vec::new();
    for path in paths {
        let bytes = match read(path) {
            Ok(b) => b,
            Err(_) => {
                worst = worst.max(2);
                continue;
            }
        };
        // KTX2: the findings of `ktx validate`'s rules, with its IDs.
        if bytes.starts_with(&[0xAB, b'K', b'T', b'X', b' ', b'2', b'0', 0xBB]) {
            let findings = if gltf {
                gltf_basisu_findings(&bytes)
            } else {
                ktx2_findings(&bytes)
            };
            let valid = is_valid(&findings);
            if !valid {
                worst = worst.max(3);
            }
            if json_out {
                let list: Vec<_> = findings
                    .iter()
                    .map(|f| json!({ "id": f.id, "type": f.severity.to_string(), "message": f.message }))
                    .collect();
                reports.push(json!({ "file": path, "valid": valid, "findings": list }));
                continue;
            }
            for f in &findings {
                if valid {
                    println!("{path}: {f}");
                } else {
                    eprintln!("{path}: {f}");
                }
            }
            if valid {
                println!("{path}: valid");
            }
            continue;
        }
        let result = open(path, bytes);
        if json_out {
            let findings: Vec<_> = match &result {
                Ok(_) => Vec::new(),
                Err(_) => vec![
                    json!({ "id": 0, "type": "error", "message": "invalid (see the text report)" }),
                ],
            };
            reports.push(json!({ "file": path, "valid": result.is_ok(), "findings": findings }));
        } else if result.is_ok() {
            println!("{path}: valid");
        }
        if result.is_err() {
            worst = worst.max(3);
        }
    }
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(&reports).unwrap_or_default()
        );
    }
    // Exit 2 (unreadable) takes precedence only when nothing was invalid.
    ExitCode::from(match worst {
        3 => 3,
        2 => 2,
        _ => 0,
    })
}

fn extract(args: &[String], decode_png: bool) -> ExitCode {
    let mut sel = ImageSelector::default();
    let (mut path, mut out): (Option<&String>, Option<PathBuf>) = (None, None);
    let mut transcode: Option<String> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut number = |name: &str| -> Result<u32, ExitCode> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| usage(&format!("{name} needs a whole number")))
        };
        let r = match a.as_str() {
            "--level" => number("--level").map(|v| sel.level = v),
            "--layer" => number("--layer").map(|v| sel.layer = v),
            "--face" => number("--face").map(|v| sel.face = v),
            "--depth" => number("--depth").map(|v| sel.depth = v),
            "--transcode" if !decode_png => match it.next() {
                Some(t) => {
                    transcode = Some(t.clone());
                    Ok(())
                }
                None => Err(usage("--transcode needs a target (bc7, astc, rgba8, ...)")),
            },
            "-o" => match it.next() {
                Some(p) => {
                    out = Some(PathBuf::from(p));
                    Ok(())
                }
                None => Err(usage("-o needs a path")),
            },
            s if s.starts_with('-') => Err(usage(&format!("unknown option {s:?}"))),
            _ if path.is_none() => {
                path = Some(a);
                Ok(())
            }
            _ => Err(usage("extract takes one FILE")),
        };
        if let Err(code) = r {
            return code;
        }
    }
    let (Some(path), Some(out)) = (path, out) else {
        return usage("extract needs FILE and -o OUT");
    };
    let file = match load(path) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let image = match (&file, &transcode) {
        (TextureFile::Basis(b), t) if !decode_png => basis_extract(b, sel, t.as_deref()),
        (_, Some(_)) => Err("--transcode is for Basis Universal files".to_owned()),
        _ => file.image(sel).map_err(|e| e.to_string()),
    };
    let image = if decode_png {
        image.and_then(|blocks| to_png(&file, sel, &blocks).map(std::borrow::Cow::Owned))
    } else {
        image
    };
    match image {
        Err(e) if e.starts_with("no image") => usage(&format!("{path}: {e}")),
        Err(e) => {
            eprintln!("{path}: {e}");
            ExitCode::from(3)
        }
        Ok(img) => match std::fs::write(&out, &img) {
            Ok(()) => {
                println!(
                    "{path}: wrote {} bytes ({sel:?}) to {}",
                    img.len(),
                    out.display()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{}: cannot write: {e}", out.display());
                ExitCode::from(2)
            }
        },
    }
}

/// An image's blocks (or pixels) as an RGBA8 PNG.
fn to_png(file: &TextureFile, sel: ImageSelector, blocks: &[u8]) -> Result<Vec<u8>, String> {
    use forgeflow::jobs::texture::decode::decode;
    let d = file.desc();
    let (w, h) = d.level_size(sel.level);
    let unit = |v: f32| (v.clamp(0.0, 1.0) * 255.0 + 0.5) as u8;
    let rgba8 = match d.vk_format {
        37 | 43 => blocks.to_vec(),
        44 | 50 => blocks
            .chunks_exact(4)
            .flat_map(|p| [p[2], p[1], p[0], p[3]])
            .collect(),
        // Float formats: clamped to [0, 1] (no tone mapping).
        97 => blocks
            .chunks_exact(2)
            .map(|h| unit(half_to_f32(u16::from_le_bytes([h[0], h[1]]))))
            .collect(),
        109 => blocks
            .chunks_exact(4)
            .map(|f| unit(f32::from_le_bytes([f[0], f[1], f[2], f[3]])))
            .collect(),
        123 => blocks
            .chunks_exact(4)
            .flat_map(|p| {
                let v = u32::from_le_bytes([p[0], p[1], p[2], p[3]]);
                let scale = 2f32.powi((v >> 27) as i32 - 15 - 9);
                let c = |shift: u32| unit(((v >> shift) & 511) as f32 * scale);
                [c(0), c(9), c(18), 255]
            })
            .collect(),
        vk => {
            // A 3D block format: the first slice of the selected slab.
            let (fmt, px) = if d.format.is_some_and(|f| f.block[2] > 1) {
                forgeflow::jobs::texture::decode::decode_3d(vk, blocks, w, h, 1)
            } else {
                decode(vk, blocks, w, h)
            }
            .map_err(|e| e.to_string())?;
            match fmt.expand_to_rgba8(&px) {
                // Signed formats mapped to [0, 255].
                Some(rgba) if fmt.is_snorm() => rgba
                    .iter()
                    .map(|&v| ((v as i8 as i32 + 128).clamp(0, 255)) as u8)
                    .collect(),
                Some(rgba) => rgba,
                // Half floats clamped to [0, 1].
                None => px
                    .chunks_exact(2)
                    .map(|h| unit(half_to_f32(u16::from_le_bytes([h[0], h[1]]))))
                    .collect(),
            }
        }
    };
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()
        .and_then(|mut wr| wr.write_image_data(&rgba8))
        .map_err(|e| format!("PNG: {e}"))?;
    Ok(out)
}

/// IEEE half to f32 (normal, subnormal, infinity and NaN).
fn half_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = (h >> 10) & 31;
    let frac = (h & 1023) as f32;
    sign * match exp {
        0 => frac * 2f32.powi(-24),
        31 if frac == 0.0 => f32::INFINITY,
        31 => f32::NAN,
        e => (1.0 + frac / 1024.0) * 2f32.powi(e as i32 - 15),
    }
}

fn upload(args: &[String]) -> ExitCode {
    use forgeflow::graph::{Scheduler, SchedulerConfig};
    use forgeflow::staging::{StagingConfig, StagingRing};
    use forgeflow::texture::{load_texture_blocking, UploadOptions};
    let [path] = args else {
        return usage("upload takes one FILE");
    };
    let mut file = match load(path) {
        Ok(f) => f,
        Err(code) => return code,
    };
    let gpu = match forgeflow::gpu::open() {
        Ok(g) => g,
        Err(e) => {
            eprintln!("forgeflow-tex: {e}");
            return ExitCode::from(2);
        }
    };
    // A Basis Universal file goes up as what this adapter samples best.
    file.transcode_for(forgeflow::texture::transcode_support(gpu.device.features()));
    if let TextureFile::Basis(b) = &file {
        let t = b.target();
        let name = forgeflow::jobs::texture::format::info(t.vk_format).map_or("?", |f| f.name);
        println!(
            "{path}: Basis Universal {:?}, transcoded to {name}",
            b.source_format()
        );
    }
    let run = || -> Result<(bool, u32, u64, u64), String> {
        let mut ring = StagingRing::new(
            &gpu.device,
            StagingConfig {
                buffer_size: 256 << 20,
                ..Default::default()
            },
        )
        .map_err(|e| e.to_string())?;
        let mut sched = Scheduler::new(SchedulerConfig {
            auto_signal_fences: true,
            ..Default::default()
        })
        .map_err(|e| e.to_string())?;
        let options = UploadOptions {
            force_fallback: false,
            usage: wgpu::TextureUsages::COPY_SRC,
            ..UploadOptions::default()
        };
        let loaded = load_texture_blocking(
            &gpu.device,
            &gpu.queue,
            &file,
            &mut ring,
            &mut sched,
            options,
        )
        .map_err(|e| e.to_string())?;
        // Read every image back and hash it (FNV-1a, 64 bits).
        let tex = &loaded.texture;
        let (mut hash, mut total) = (0xcbf2_9ce4_8422_2325u64, 0u64);
        for level in 0..tex.mip_level_count() {
            let layers = tex
                .size()
                .mip_level_size(level, tex.dimension())
                .depth_or_array_layers;
            let image = gpu
                .read_texture(tex, level, 0..layers)
                .map_err(|e| e.to_string())?;
            for b in image {
                hash = (hash ^ b as u64).wrapping_mul(0x100_0000_01b3);
                total += 1;
            }
        }
        Ok((loaded.native, loaded.first_level, total, hash))
    };
    match run() {
        Ok((native, first_level, bytes, hash)) => {
            println!(
                "{path}: uploaded {} to {} ({:?}), read back {bytes} bytes, checksum {hash:016x}",
                if native {
                    "natively"
                } else {
                    "through the CPU fallback"
                },
                gpu.info.name,
                gpu.info.backend
            );
            if first_level > 0 {
                println!(
                    "{path}: from level {first_level}: the larger levels exceed the device's limits"
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{path}: {e}");
            ExitCode::from(3)
        }
    }
}

/// One image of a Basis Universal file as `ktx extract` writes it (see
/// `BasisFile::extract`).
fn basis_extract(
    b: &forgeflow::jobs::texture::basis::BasisFile,
    sel: ImageSelector,
    target: Option<&str>,
) -> Result<std::borrow::Cow<'static, [u8]>, String> {
    let target = target.map(str::parse).transpose()?;
    b.extract(sel, target)
        .map(std::borrow::Cow::Owned)
        .map_err(|e| e.to_string())
}

/// `vt-build`: a tile pack from the procedural terrain or from an image.
fn vt_build(args: &[String]) -> ExitCode {
    use forgeflow::jobs::vt::{write_pack_parallel, TileFormat, TileId, VtLayout};

    use forgeflow_tools::Terrain;
    use std::io::IsTerminal;
    let (mut terrain, mut image, mut out): (Option<u32>, Option<&String>, Option<&String>) =
        (None, None, None);
    let (mut seed, mut tile, mut border, mut zstd) = (1u64, 128u32, 4u32, false);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .ok_or_else(|| usage(&format!("{name} needs a value")))
        };
        let number = |name: &str, v: &String| -> Result<u64, ExitCode> {
            v.parse()
                .map_err(|_| usage(&format!("{name} {v:?} is not a whole number")))
        };
        // Sizes are 32-bit: a larger number is refused, not truncated.
        let small = |name: &str, v: &String| -> Result<u32, ExitCode> {
            u32::try_from(number(name, v)?)
                .map_err(|_| usage(&format!("{name} {v} is over {}", u32::MAX)))
        };
        let r: Result<(), ExitCode> = (|| {
            match a.as_str() {
                "--terrain" => terrain = Some(small("--terrain", value("--terrain")?)?),
                "--seed" => seed = number("--seed", value("--seed")?)?,
                "--tile" => tile = small("--tile", value("--tile")?)?,
                "--border" => border = small("--border", value("--border")?)?,
                "--image" => image = Some(value("--image")?),
                "--zstd" => zstd = true,
                "-o" => out = Some(value("-o")?),
                other => return Err(usage(&format!("vt-build: unexpected {other:?}"))),
            }
            Ok(())
        })();
        if let Err(code) = r {
            return code;
        }
    }
    let Some(out) = out else {
        return usage("vt-build needs -o OUT");
    };
    // The source: the terrain, or an image's level 0 as RGBA8 with a box-filtered chain.
    /// An image's levels: width, height, RGBA8 texels.
    type Chain = Vec<(u32, u32, Vec<u8>)>;
    let (layout, levels): (VtLayout, Option<Chain>) = match (terrain, image) {
        (Some(size), None) => match VtLayout::new(size, size, tile, border) {
            Ok(l) => (l, None),
            Err(e) => return usage(&e.to_string()),
        },
        (None, Some(path)) => {
            let file = match TextureFile::open(path) {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("{path}: {e}");
                    return ExitCode::from(3);
                }
            };
            let d = file.desc();
            let px = match (d.vk_format, file.image(ImageSelector::default())) {
                (37 | 43, Ok(px)) => px.into_owned(),
                (_, Err(e)) => {
                    eprintln!("{path}: {e}");
                    return ExitCode::from(3);
                }
                (vk, _) => {
                    eprintln!("{path}: vt-build takes RGBA8 images (PNG, or KTX2/DDS of R8G8B8A8), not vkFormat {vk}");
                    return ExitCode::from(3);
                }
            };
            let layout = match VtLayout::new(d.width, d.height, tile, border) {
                Ok(l) => l,
                Err(e) => return usage(&e.to_string()),
            };
            let mut chain = vec![(d.width, d.height, px)];
            for _ in 1..layout.mips() {
                let (w, h, src) = chain.last().expect("level 0");
                // In usize: an image of more than 4 GiB of texels must not
                // wrap 32-bit indices.
                let (w, h) = (*w as usize, *h as usize);
                let (nw, nh) = ((w / 2).max(1), (h / 2).max(1));
                let mut dst = vec![0u8; nw * nh * 4];
                for y in 0..nh {
                    for x in 0..nw {
                        for c in 0..4 {
                            let at = |xx: usize, yy: usize| {
                                u32::from(src[(yy.min(h - 1) * w + xx.min(w - 1)) * 4 + c])
                            };
                            let sum = at(2 * x, 2 * y)
                                + at(2 * x + 1, 2 * y)
                                + at(2 * x, 2 * y + 1)
                                + at(2 * x + 1, 2 * y + 1);
                            dst[(y * nw + x) * 4 + c] = ((sum + 2) / 4) as u8;
                        }
                    }
                }
                let (nw, nh) = (nw as u32, nh as u32);
                chain.push((nw, nh, dst));
            }
            (layout, Some(chain))
        }
        _ => return usage("vt-build takes --terrain SIZE or --image FILE"),
    };
    let source = Terrain::new(layout, seed);
    let make = |t: TileId| -> Vec<u8> {
        match &levels {
            None => source.tile_rgba8(t),
            Some(chain) => {
                let (w, h, px) = &chain[t.mip as usize];
                let slot = layout.slot() as i64;
                let (x0, y0) = (
                    t.x as i64 * layout.tile() as i64 - layout.border() as i64,
                    t.y as i64 * layout.tile() as i64 - layout.border() as i64,
                );
                let mut out = Vec::with_capacity((slot * slot * 4) as usize);
                for y in 0..slot {
                    for x in 0..slot {
                        // Outside the image: its edge texel (clamp-to-edge).
                        let sx = (x0 + x).clamp(0, *w as i64 - 1) as usize;
                        let sy = (y0 + y).clamp(0, *h as i64 - 1) as usize;
                        let at = (sy * *w as usize + sx) * 4;
                        out.extend_from_slice(&px[at..at + 4]);
                    }
                }
                out
            }
        }
    };
    // Tiles are made on all cores, written in order.
    let total = layout.tile_count();
    let terminal = std::io::stderr().is_terminal();
    let started = std::time::Instant::now();
    let result = write_pack_parallel(out, layout, TileFormat::Rgba8, zstd, make, |done, all| {
        if terminal && (done % 64 == 0 || done == all) {
            let width = 40;
            let filled = (done as usize * width) / all as usize;
            eprint!(
                "\r[{}{}] {done}/{all} tiles",
                "#".repeat(filled),
                " ".repeat(width - filled)
            );
        }
    });
    if terminal {
        eprintln!();
    }
    match result {
        Ok(bytes) => {
            let (w, h) = layout.size();
            println!(
                "{out}: {w}x{h}, {} levels, {total} tiles of {}+2x{} texels, {bytes} bytes, {:.1} s",
                layout.mips(),
                layout.tile(),
                layout.border(),
                started.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{out}: {e}");
            ExitCode::from(2)
        }
    }
}
