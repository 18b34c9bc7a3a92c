//! forgeflow's Basis Universal path against Binomial's own C++ transcoder
//! (what KTX-Software's `ktx extract --transcode` and libktx run), through
//! `basisu_c_sys`:
//!
//! - every image of the corpus's Basis files, extracted to every
//!   `forgeflow-tex extract --transcode` target, byte for byte;
//! - files made here by Binomial's encoder (ETC1S and UASTC LDR with mips
//!   and alpha; UASTC HDR 4x4, ASTC HDR 6x6 and UASTC HDR 6x6 intermediate
//!   from a float image), validated by forgeflow's `ktx validate` rules and
//!   transcoded to every target both transcoders take, byte for byte.

use basisu_c_sys::common;
use basisu_c_sys::extra::types::Extent3d;
use basisu_c_sys::extra::{
    basisu_encoder_init, basisu_transcoder_init, BasisuEncoder, BasisuEncoderParams, SourceImage,
    SourceImageFormat,
};
use basisu_c_sys::BasisTextureFormat;
use forgeflow_jobs::texture::basis::{BasisFile, ExtractTarget, TargetFormat};
use forgeflow_jobs::texture::file::ImageSelector;
use forgeflow_jobs::texture::findings::{ktx2_findings, Severity};
use forgeflow_jobs::texture::source::{TextureFile, TextureSource};

fn corpus_dir() -> std::path::PathBuf {
    let dir = std::env::var_os("FORGEFLOW_CORPUS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus")
        })
        .join("ktx2");
    assert!(
        dir.is_dir(),
        "no corpus at {} (set FORGEFLOW_CORPUS)",
        dir.display()
    );
    dir
}

fn basis(bytes: &[u8]) -> BasisFile {
    match TextureFile::from_bytes(bytes.to_vec()).expect("forgeflow opens the file") {
        TextureFile::Basis(b) => b,
        other => panic!("not read as a Basis file: {:?}", other.desc()),
    }
}

/// Every image of `file`, level-major, as the C++ transcoder orders them.
fn images(file: &BasisFile) -> Vec<ImageSelector> {
    let d = file.desc();
    let mut out = Vec::new();
    for level in 0..d.levels {
        for layer in 0..d.layers {
            for face in 0..d.faces {
                out.push(ImageSelector {
                    level,
                    layer,
                    face,
                    depth: 0,
                });
            }
        }
    }
    out
}

/// The C++ transcoder's output for `target`: every image, level-major, as
/// [`images`] orders them; `None` where it does not transcode this file to
/// `target`. Per image through the raw API (the `extra` wrapper refuses
/// targets it has no wgpu format for).
fn binomial(bytes: &[u8], target: TargetFormat) -> Option<Vec<u8>> {
    use basisu_c_sys::transcoder as bt;
    basisu_transcoder_init();
    let target = target as u32;
    // SAFETY: the raw API takes addresses as integers. `bytes` outlives the
    // handle (closed below, before returning), and every output buffer is
    // allocated to the size the transcoder computes for the image and lives
    // across the call that fills it.
    unsafe {
        let handle = bt::bt_ktx2_open(bytes.as_ptr().addr() as u64, bytes.len() as u32);
        assert_ne!(handle, 0, "the C++ transcoder opens the file");
        let mut out = Vec::new();
        // The C++ transcoder asserts (aborts) on a target its source does
        // not transcode to: ask first.
        let source = bt::bt_ktx2_get_basis_tex_format(handle);
        let mut ok = bt::bt_basis_is_format_supported(target, source).is_ok()
            && bt::bt_ktx2_start_transcoding(handle).is_ok();
        let (levels, layers, faces) = (
            bt::bt_ktx2_get_levels(handle),
            bt::bt_ktx2_get_layers(handle).max(1),
            bt::bt_ktx2_get_faces(handle),
        );
        'images: for level in 0..levels {
            for layer in 0..layers {
                for face in 0..faces {
                    if !ok {
                        break 'images;
                    }
                    let w = bt::bt_ktx2_get_level_orig_width(handle, level, layer, face);
                    let h = bt::bt_ktx2_get_level_orig_height(handle, level, layer, face);
                    let size = bt::bt_basis_compute_transcoded_image_size_in_bytes(target, w, h);
                    let unit = bt::bt_basis_get_bytes_per_block_or_pixel(target);
                    let mut image = vec![0u8; size as usize];
                    ok = bt::bt_ktx2_transcode_image_level(
                        handle,
                        level,
                        layer,
                        face,
                        image.as_mut_ptr().addr() as u64,
                        size / unit,
                        target,
                        0,
                        0,
                        0,
                        -1,
                        -1,
                        0,
                    )
                    .is_ok();
                    out.extend(image);
                }
            }
        }
        bt::bt_ktx2_close(handle);
        ok.then_some(out)
    }
}

/// Extracts every image of `bytes` to every target and compares with the
/// C++ transcoder; returns how many targets matched.
fn extract_matches_binomial(name: &str, bytes: &[u8]) -> usize {
    let file = basis(bytes);
    let mut matched = 0;
    for target in ExtractTarget::ALL {
        let (cpp_target, keep) = target.transcoder_target();
        let Some(mut want) = binomial(bytes, cpp_target) else {
            // Where C++ refuses, forgeflow must not make something up.
            assert!(
                file.extract(images(&file)[0], Some(target)).is_err(),
                "{name}: forgeflow transcodes to {} where Binomial's transcoder refuses",
                target.name()
            );
            continue;
        };
        if keep != 0 {
            want = want
                .chunks_exact(4)
                .flat_map(|px| px[..keep].to_vec())
                .collect();
        }
        let mut got = Vec::new();
        for sel in images(&file) {
            got.extend(file.extract(sel, Some(target)).unwrap_or_else(|e| {
                panic!("{name}: {sel:?} to {}: {e}", target.name());
            }));
        }
        assert!(
            got == want,
            "{name}: {} differs from Binomial's transcoder ({} vs {} bytes)",
            target.name(),
            got.len(),
            want.len()
        );
        matched += 1;
    }
    matched
}

#[test]
fn corpus_files_extract_as_binomials_transcoder_does() {
    let dir = corpus_dir();
    for name in [
        "bevy-pr18411/ktx2-etc1s-srgb.ktx2",
        "bevy-pr18411/ktx2-zstd-uastc-srgb-rdo.ktx2",
        "cts/cimg5293_uastc_zstd.ktx2",
        "ktxsw/base_xuastc_zstd.ktx2",
    ] {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let matched = extract_matches_binomial(name, &bytes);
        // Every target but those a source cannot reach.
        assert!(matched >= 10, "{name}: {matched} targets");
    }
}

/// A test image: smooth gradients and a pattern with an alpha ramp.
fn rgba8(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity((width * height * 4) as usize);
    for y in 0..height {
        for x in 0..width {
            let checker = if (x / 8 + y / 8) % 2 == 0 { 40 } else { 0 };
            out.extend([
                (x * 255 / width) as u8,
                (y * 255 / height) as u8,
                ((x ^ y) as u8).wrapping_add(checker),
                (255 - (x + y) * 255 / (width + height)) as u8,
            ]);
        }
    }
    out
}

/// An HDR test image: radiance up to 24 with a bright spot.
fn rgba_f32(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity((width * height * 16) as usize);
    for y in 0..height {
        for x in 0..width {
            let (u, v) = (x as f32 / width as f32, y as f32 / height as f32);
            let spot = 24.0 * (-((u - 0.7).powi(2) + (v - 0.3).powi(2)) * 40.0).exp();
            for c in [u * 2.0 + spot, v * 0.5 + spot, (u * v) * 4.0 + 0.01, 1.0] {
                out.extend(c.to_le_bytes());
            }
        }
    }
    out
}

fn encode(format: BasisTextureFormat, hdr: bool, mips: bool) -> Vec<u8> {
    basisu_encoder_init();
    let (width, height) = (64u32, 48u32);
    let data = if hdr {
        rgba_f32(width, height)
    } else {
        rgba8(width, height)
    };
    let image = SourceImage {
        data: &data,
        format: if hdr {
            SourceImageFormat::Rgba32Float
        } else {
            SourceImageFormat::Rgba8
        },
        size: Extent3d {
            width,
            height,
            depth_or_array_layers: 1,
        },
    };
    let mut encoder = BasisuEncoder::new();
    encoder
        .set_image(image)
        .expect("the encoder takes the image");
    let mut params = if hdr {
        BasisuEncoderParams::new_with_linear_defaults(format)
    } else {
        BasisuEncoderParams::new_with_srgb_defaults(format)
    };
    if mips {
        params = params.with_flags(common::BU_COMP_FLAGS_GEN_MIPS_CLAMP);
    }
    params.quality_level = 40;
    params.effort_level = 0;
    encoder.compress(params).expect("the encoder compresses")
}

#[test]
fn encoded_ldr_files_extract_as_binomials_transcoder_does() {
    for (format, what) in [
        (BasisTextureFormat::Etc1s, "ETC1S"),
        (BasisTextureFormat::UastcLdr4x4, "UASTC LDR"),
    ] {
        for mips in [false, true] {
            let bytes = encode(format, false, mips);
            let name = format!("{what} (mips: {mips})");
            let findings = ktx2_findings(&bytes);
            assert!(
                findings.iter().all(|f| f.severity == Severity::Warning),
                "{name}: {findings:?}"
            );
            assert_eq!(basis(&bytes).desc().levels > 1, mips, "{name}");
            assert_eq!(extract_matches_binomial(&name, &bytes), 14, "{name}");
        }
    }
}

#[test]
fn encoded_hdr_files_transcode_as_binomials_transcoder_does() {
    // ASTC HDR 6x6 is a plain KTX2 file of ASTC 6x6 SFLOAT blocks: valid,
    // and read as the format it names.
    let astc = encode(BasisTextureFormat::AstcHdr6x6, true, true);
    let findings = ktx2_findings(&astc);
    assert!(
        findings.iter().all(|f| f.severity == Severity::Warning),
        "ASTC HDR 6x6: {findings:?}"
    );
    let file = TextureFile::from_bytes(astc).unwrap();
    assert_eq!(file.desc().vk_format, 1_000_066_004);
    assert!(matches!(file, TextureFile::Ktx2(_)));

    for (format, what) in [
        (BasisTextureFormat::UastcHdr4x4, "UASTC HDR 4x4"),
        (
            BasisTextureFormat::UastcHdr6x6,
            "UASTC HDR 6x6 intermediate",
        ),
    ] {
        let bytes = encode(format, true, true);
        let findings = ktx2_findings(&bytes);
        assert!(
            findings.iter().all(|f| f.severity == Severity::Warning),
            "{what}: {findings:?}"
        );
        let file = basis(&bytes);
        assert!(file.is_hdr(), "{what}");
        let mut matched = 0;
        for target in [
            TargetFormat::Bc6h,
            TargetFormat::AstcHdr4x4Rgba,
            TargetFormat::AstcHdr6x6Rgba,
            TargetFormat::RgbaHalf,
            TargetFormat::RgbHalf,
            TargetFormat::Rgb9e5,
        ] {
            let Some(want) = binomial(&bytes, target) else {
                continue;
            };
            let mut got = Vec::new();
            for sel in images(&file) {
                got.extend(
                    file.transcode_image(sel, target)
                        .unwrap_or_else(|e| panic!("{what}: {sel:?} to {target:?}: {e}")),
                );
            }
            assert!(got == want, "{what}: {target:?} differs from Binomial's");
            matched += 1;
        }
        // BC6H, one ASTC HDR size, and the uncompressed targets.
        assert!(matched >= 4, "{what}: {matched} targets");
        // The target forgeflow picks for a BC device is BC6H, for a device
        // with neither BC nor ASTC HDR half floats.
        use forgeflow_jobs::texture::basis::TranscodeSupport;
        let bc = TranscodeSupport {
            bc: true,
            ..Default::default()
        };
        assert_eq!(file.best_target(bc).target, TargetFormat::Bc6h, "{what}");
        assert_eq!(
            file.best_target(TranscodeSupport::default()).target,
            TargetFormat::RgbaHalf,
            "{what}"
        );
    }
}

/// The UASTC HDR 6x6 intermediate global data rules (`ktx validate`'s
/// 8203-8209) on a file from Binomial's encoder: valid as written, and each
/// rule raised by one mutation of its first image descriptor or bitstream.
#[test]
fn each_uastc_hdr_6x6_global_data_rule_raises_its_id() {
    let file = encode(BasisTextureFormat::UastcHdr6x6, true, true);
    assert!(ktx2_findings(&file)
        .iter()
        .all(|f| f.severity == Severity::Warning));
    let u64_at = |b: &[u8], at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
    let sgd = u64_at(&file, 64) as usize;
    let (level0, level0_len) = (u64_at(&file, 80) as usize, u64_at(&file, 88) as u32);
    let slice = level0 + u32::from_le_bytes(file[sgd..sgd + 4].try_into().unwrap()) as usize;
    let with = |at: usize, bytes: &[u8]| {
        let mut f = file.clone();
        f[at..at + bytes.len()].copy_from_slice(bytes);
        f
    };
    for (what, mutated, id) in [
        ("empty slice", with(sgd + 4, &[0, 0, 0, 0]), 8203),
        (
            "slice past its level",
            with(sgd, &level0_len.to_le_bytes()),
            8204,
        ),
        ("profile 0xAA", with(sgd + 9, &[0xAA]), 8205),
        ("version 0xCC", with(sgd + 8, &[0xCC]), 8206),
        ("bitstream profile 0xAA", with(slice + 1, &[0xAA]), 8207),
        ("bitstream version 0xCE", with(slice, &[0xCE]), 8208),
        ("bitstream 65 wide", with(slice + 2, &[65, 0]), 8209),
    ] {
        let findings = ktx2_findings(&mutated);
        assert!(
            findings
                .iter()
                .any(|f| f.id == id && f.severity == Severity::Error),
            "{what}: expected {id}, got {findings:?}"
        );
    }
}
