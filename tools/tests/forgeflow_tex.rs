//! `forgeflow-tex` as a user runs it: exit codes, messages, extracted bytes.

use forgeflow_test_support::corpus::ktx2_dir;
use std::process::Command;

fn tex(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_forgeflow-tex"))
        .args(args)
        .output()
        .expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn validate_exit_codes() {
    let Some(dir) = ktx2_dir() else { return };
    let good = dir.join("t2d/BC7.ktx2");
    let bad = dir.join("cts-invalid/error_TooManyMipLevels_32x16.ktx2");
    let (code, out, _) = tex(&["validate", good.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("valid"));
    let (code, _, err) = tex(&["validate", good.to_str().unwrap(), bad.to_str().unwrap()]);
    assert_eq!(code, 3);
    assert!(
        err.contains("TooManyMipLevels") && err.contains("levelCount is 7"),
        "{err}"
    );
    let (code, _, err) = tex(&["validate", "/nonexistent/x.ktx2"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot read"), "{err}");
    assert_eq!(tex(&["validate"]).0, 1);
    assert_eq!(tex(&["frobnicate"]).0, 1);
    // Every invalid file of the corpus is reported (a file may show more
    // than one finding: one misplaced DFD is also read wrong).
    let invalid: Vec<String> = std::fs::read_dir(dir.join("cts-invalid"))
        .unwrap()
        .flatten()
        .map(|e| e.path().to_string_lossy().into_owned())
        .collect();
    let args: Vec<&str> = std::iter::once("validate")
        .chain(invalid.iter().map(String::as_str))
        .collect();
    let (code, _, err) = tex(&args);
    assert_eq!(code, 3);
    for path in &invalid {
        assert!(
            err.lines().any(|l| l.starts_with(&format!("{path}: "))),
            "{path} not reported: {err}"
        );
    }
    assert!(err
        .lines()
        .all(|l| invalid.iter().any(|p| l.starts_with(p.as_str()))));
}

#[test]
fn info_and_extract() {
    let Some(dir) = ktx2_dir() else { return };
    let cube = dir.join("wgpu/bc7.ktx2");
    let (code, out, _) = tex(&["info", cube.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(
        (
            v["faces"].as_u64(),
            v["levels"].as_u64(),
            v["width"].as_u64()
        ),
        (Some(6), Some(9), Some(256))
    );
    assert_eq!(v["per_level"][0]["bytes"].as_u64(), Some(6 * 64 * 64 * 16));
    // Face 3 of level 1: 128x128 BC7 = 32x32 blocks of 16 bytes, read back
    // independently from the level index.
    let out_path =
        std::env::temp_dir().join(format!("forgeflow-tex-extract-{}.bin", std::process::id()));
    let (code, _, err) = tex(&[
        "extract",
        cube.to_str().unwrap(),
        "--level",
        "1",
        "--face",
        "3",
        "-o",
        out_path.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let got = std::fs::read(&out_path).unwrap();
    let _ = std::fs::remove_file(&out_path);
    let file = std::fs::read(&cube).unwrap();
    let level1 = u64::from_le_bytes(file[80 + 24..80 + 32].try_into().unwrap()) as usize;
    let face = 32 * 32 * 16;
    assert_eq!(got, file[level1 + 3 * face..level1 + 4 * face]);
    // A zlib level is inflated.
    let zlib = dir.join("cts/valid_R8G8B8A8_UNORM_2D_ZLIB_9.ktx2");
    let (code, out, _) = tex(&["extract", zlib.to_str().unwrap(), "-o", "/dev/null"]);
    assert_eq!(code, 0);
    assert!(out.contains("wrote 256 bytes"), "{out}");
    // Out of range, and Basis payloads.
    assert_eq!(
        tex(&[
            "extract",
            cube.to_str().unwrap(),
            "--face",
            "6",
            "-o",
            "/dev/null"
        ])
        .0,
        1
    );
    // A Basis Universal file: what it transcodes to here (lavapipe samples
    // BC: BC7), and by device capability.
    let uastc = dir.join("cts/cimg5293_uastc_zstd.ktx2");
    let (code, out, err) = tex(&["info", uastc.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let here = &v["on_this_adapter"];
    if forgeflow_test_support::gpu::for_test("forgeflow-tex info").is_some() {
        assert!(here["adapter"].is_string(), "{v}");
        assert_eq!(here["target"], v["transcodes_to"]["with_bc"], "{v}");
    }
    assert!(
        v["transcodes_to"]["with_bc"]
            .as_str()
            .is_some_and(|t| t.starts_with("BC7")),
        "{v}"
    );
    assert!(
        v["transcodes_to"]["with_astc"]
            .as_str()
            .is_some_and(|t| t.starts_with("ASTC")),
        "{v}"
    );
    let basis = dir.join("bevy-pr18411/ktx2-etc1s-srgb.ktx2");
    // Its texels of its channels (RGB, 155x155), or the blocks of a target.
    let (code, out, err) = tex(&["extract", basis.to_str().unwrap(), "-o", "/dev/null"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("wrote {} bytes", 155 * 155 * 3)),
        "{out}"
    );
    let (code, out, _) = tex(&[
        "extract",
        basis.to_str().unwrap(),
        "--transcode",
        "bc7",
        "-o",
        "/dev/null",
    ]);
    assert_eq!(code, 0);
    assert!(
        out.contains(&format!("wrote {} bytes", 39 * 39 * 16)),
        "{out}"
    );
    let (code, _, err) = tex(&[
        "extract",
        basis.to_str().unwrap(),
        "--transcode",
        "pvrtc",
        "-o",
        "/dev/null",
    ]);
    assert_eq!(code, 3);
    assert!(err.contains("no transcode target"), "{err}");
}

#[test]
fn decode_writes_the_cpu_decode_as_png() {
    use forgeflow::jobs::texture::decode::decode;
    use forgeflow::jobs::texture::file::{ImageSelector, Ktx2File};
    let Some(dir) = ktx2_dir() else { return };
    let src = dir.join("t2d/BC3.ktx2");
    let out = std::env::temp_dir().join(format!("forgeflow-tex-decode-{}.png", std::process::id()));
    let (code, _, err) = tex(&["decode", src.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let reader = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&out).unwrap()));
    let mut reader = reader.read_info().unwrap();
    let mut pixels = vec![0u8; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    let _ = std::fs::remove_file(&out);
    let file = Ktx2File::open(&src).unwrap();
    let l = file.layout();
    assert_eq!((info.width, info.height), (l.width, l.height));
    let (_, want) = decode(
        l.vk_format,
        &file.image(ImageSelector::default()).unwrap(),
        l.width,
        l.height,
    )
    .unwrap();
    assert!(
        pixels[..want.len()] == want[..],
        "the PNG holds the CPU decode"
    );
}

#[test]
fn upload_reports_its_path_and_a_checksum_of_what_the_gpu_holds() {
    use forgeflow::jobs::texture::file::{ImageSelector, Ktx2File};
    let Some(dir) = ktx2_dir() else { return };
    let Some(gpu) = forgeflow_test_support::gpu::for_test(
        "upload_reports_its_path_and_a_checksum_of_what_the_gpu_holds",
    ) else {
        return;
    };
    let bc7 = dir.join("t2d/BC7.ktx2");
    let (code, out, err) = tex(&["upload", bc7.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    if gpu
        .device
        .features()
        .contains(wgpu::Features::TEXTURE_COMPRESSION_BC)
    {
        assert!(out.contains("natively"), "{out}");
        // One level: the GPU holds exactly the file's blocks.
        let blocks = Ktx2File::open(&bc7)
            .unwrap()
            .image(ImageSelector::default())
            .unwrap()
            .into_owned();
        let hash = blocks.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
        });
        assert!(out.contains(&format!("checksum {hash:016x}")), "{out}");
    }
    let etc2 = dir.join("wgpu/etc2.ktx2");
    let (code, out, err) = tex(&["upload", etc2.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    if !gpu
        .device
        .features()
        .contains(wgpu::Features::TEXTURE_COMPRESSION_ETC2)
    {
        assert!(out.contains("CPU fallback"), "{out}");
    }
}

#[test]
fn dds_png_and_unknown_files() {
    let Some(dir) = ktx2_dir() else { return };
    let tmp =
        |name: &str| std::env::temp_dir().join(format!("ff-tex-{}-{name}", std::process::id()));
    // Legacy DXT1 header (image right after the 128-byte header) and DX10
    // header (after 148 bytes): extract gives exactly the file's blocks.
    for (name, format, w, h, offset) in [
        ("bcdec-dds/kodim23_bc1.dds", "BC1", 768, 512, 128),
        (
            "bcdec-dds/lythwood_room_1k_bc6h_signed.dds",
            "BC6H",
            1024,
            512,
            148,
        ),
    ] {
        let path = dir.join(name);
        let (code, out, err) = tex(&["info", path.to_str().unwrap(), "--json"]);
        assert_eq!(code, 0, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
        assert_eq!(v["container"], "DDS");
        assert_eq!(v["format"], format);
        assert_eq!(
            (v["width"].as_u64(), v["height"].as_u64()),
            (Some(w), Some(h))
        );
        let out_path = tmp("dds.bin");
        let (code, _, err) = tex(&[
            "extract",
            path.to_str().unwrap(),
            "-o",
            out_path.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{err}");
        let got = std::fs::read(&out_path).unwrap();
        let _ = std::fs::remove_file(&out_path);
        let file = std::fs::read(&path).unwrap();
        assert_eq!(got, file[offset..], "{name}");
    }
    // A PNG is an uncompressed RGBA8 source: decoding it round-trips its pixels.
    let png_in = dir.join("bevy-pr18411/png-srgb-rgb.png");
    let png_out = tmp("round.png");
    let (code, _, err) = tex(&[
        "decode",
        png_in.to_str().unwrap(),
        "-o",
        png_out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let pixels = |p: &std::path::Path| {
        let mut dec = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(p).unwrap()));
        dec.set_transformations(png::Transformations::EXPAND);
        let mut r = dec.read_info().unwrap();
        let mut buf = vec![0; r.output_buffer_size().unwrap()];
        let info = r.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        (info.color_type, buf)
    };
    let (ct_in, px_in) = pixels(&png_in);
    let (ct_out, px_out) = pixels(&png_out);
    let _ = std::fs::remove_file(&png_out);
    assert_eq!((ct_in, ct_out), (png::ColorType::Rgb, png::ColorType::Rgba));
    let rgb_out: Vec<u8> = px_out
        .chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    assert_eq!(rgb_out, px_in, "the PNG's pixels, with opaque alpha");
    assert!(px_out.chunks_exact(4).all(|p| p[3] == 255));
    // Anything else is an unsupported format, named by its first bytes.
    let (code, _, err) = tex(&["validate", dir.join("MANIFEST.tsv").to_str().unwrap()]);
    assert_eq!(code, 3);
    assert!(
        err.contains("unsupported format") && err.contains("not KTX2, KTX 1, DDS or PNG"),
        "{err}"
    );
}

#[test]
fn vt_build_writes_packs_of_the_terrain_and_of_images() {
    use forgeflow::jobs::vt::{TileId, TilePack, VtLayout};

    use forgeflow_tools::Terrain;
    let out = std::env::temp_dir().join(format!("ff-vt-{}.vtpack", std::process::id()));
    // Sizes over 32 bits are refused, not truncated (2^32 + 1024 once made
    // a 1024 terrain).
    let (code, _, err) = tex(&["vt-build", "--terrain", "4294968320", "-o", "/dev/null"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("over"), "{err}");
    let (code, stdout, err) = tex(&[
        "vt-build",
        "--terrain",
        "1024",
        "--seed",
        "5",
        "--tile",
        "64",
        "--zstd",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        stdout.contains("1024x1024, 5 levels, 341 tiles"),
        "{stdout}"
    );
    let pack = TilePack::open(&out).unwrap();
    let layout = VtLayout::new(1024, 1024, 64, 4).unwrap();
    assert_eq!(*pack.layout(), layout);
    let terrain = Terrain::new(layout, 5);
    for i in (0..layout.tile_count()).step_by(17) {
        let t = layout.tile_at(i).unwrap();
        assert_eq!(*pack.tile(t).unwrap(), terrain.tile_rgba8(t), "{t:?}");
    }
    let _ = std::fs::remove_file(&out);
    // From an image: a level-0 tile's payload is the image's texels.
    let Some(dir) = ktx2_dir() else { return };
    let png = dir.join("t2d/ferris_512.png");
    let (code, _, err) = tex(&[
        "vt-build",
        "--image",
        png.to_str().unwrap(),
        "--tile",
        "64",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let pack = TilePack::open(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    let img = forgeflow::jobs::texture::source::TextureFile::open(&png).unwrap();
    let px = {
        use forgeflow::jobs::texture::source::TextureSource;
        img.image(Default::default()).unwrap().into_owned()
    };
    let t = TileId { mip: 0, x: 2, y: 3 };
    let slot = pack.tile(t).unwrap();
    for y in 0..64usize {
        let src = ((3 * 64 + y) * 512 + 2 * 64) * 4;
        let dst = ((4 + y) * 72 + 4) * 4;
        assert_eq!(slot[dst..dst + 256], px[src..src + 256], "row {y}");
    }
    // No source, or both: usage errors.
    assert_eq!(tex(&["vt-build", "-o", "/dev/null"]).0, 1);
}

/// `info` names, and `extract` writes as stored, formats of every kind the
/// KTX2 specification allows: packed, depth and stencil, 64-bit, PVRTC and
/// 4:2:2 (files made here; the corpus has none).
#[test]
fn info_and_extract_handle_packed_depth_stencil_and_wide_formats() {
    use forgeflow_test_support::ktx2::Ktx2Builder;
    let dir = std::env::temp_dir().join(format!("forgeflow-tex-formats-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (vk, name) in [
        (4u32, "R5G6B5_UNORM_PACK16"),
        (1, "R4G4_UNORM_PACK8"),
        (125, "X8_D24_UNORM_PACK32"),
        (128, "D16_UNORM_S8_UINT"),
        (130, "D32_SFLOAT_S8_UINT"),
        (121, "R64G64B64A64"),
        (1_000_054_000, "PVRTC1_2BPP"),
        (1_000_156_000, "G8B8G8R8_422_UNORM"),
        (1_000_340_000, "A4R4G4B4_UNORM_PACK16"),
    ] {
        let mut b = Ktx2Builder::for_format(vk, 16, 8);
        let data: Vec<u8> = (0..b.image_bytes(0))
            .map(|i| (i * 7 + vk as u64) as u8)
            .collect();
        b.levels = vec![data.clone()];
        let path = dir.join(format!("{vk}.ktx2"));
        std::fs::write(&path, b.build()).unwrap();
        let (code, out, err) = tex(&["info", path.to_str().unwrap()]);
        assert_eq!(code, 0, "vkFormat {vk}: {err}");
        assert!(
            out.contains(name),
            "info of vkFormat {vk} names {name}: {out}"
        );
        let to = dir.join(format!("{vk}.raw"));
        let (code, _, err) = tex(&[
            "extract",
            path.to_str().unwrap(),
            "-o",
            to.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "extract of vkFormat {vk}: {err}");
        assert_eq!(std::fs::read(&to).unwrap(), data, "vkFormat {vk}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// `validate --json` lists each finding with `ktx validate`'s ID and
/// severity; a file with warnings only is valid (exit 0).
#[test]
fn validate_json_lists_findings_with_the_validators_ids() {
    use forgeflow_test_support::ktx2::Ktx2Builder;
    let Some(dir) = ktx2_dir() else { return };
    let bad = dir.join("cts-invalid/error_CubeHeightWidthMismatch_8x16.ktx2");
    let (code, out, _) = tex(&["validate", "--json", bad.to_str().unwrap()]);
    assert_eq!(code, 3);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["valid"], false);
    assert_eq!(v[0]["findings"][0]["id"], 3008);
    assert_eq!(v[0]["findings"][0]["type"], "error");
    // A 3D array: valid, with warning 3014.
    let mut b = Ktx2Builder::uncompressed(37, 4, 4, 4);
    b.size[2] = 2;
    b.layers = 2;
    b.levels = vec![vec![1u8; b.level_bytes(0) as usize]];
    let path = std::env::temp_dir().join(format!("forgeflow-3d-array-{}.ktx2", std::process::id()));
    std::fs::write(&path, b.build()).unwrap();
    let (code, out, _) = tex(&["validate", "--json", path.to_str().unwrap()]);
    std::fs::remove_file(&path).ok();
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v[0]["valid"], true);
    assert_eq!(v[0]["findings"][0]["id"], 3014);
    assert_eq!(v[0]["findings"][0]["type"], "warning");
}
