//! The header rules of `ktx validate`, one mutation each: a valid file made
//! here has no finding; changing one header field raises exactly the
//! validator's ID for it (a rule removed makes its case fail), with the
//! validator's severity (warnings leave the file valid).

use forgeflow_jobs::texture::findings::{is_valid, ktx2_findings, Severity};
use forgeflow_test_support::corpus::ktx2_dir;
use forgeflow_test_support::ktx2::{assert_raises, Ktx2Builder};

/// Header field offsets.
const VK: usize = 12;
const TYPE_SIZE: usize = 16;
const WIDTH: usize = 20;
const HEIGHT: usize = 24;
const DEPTH: usize = 28;
const LAYERS: usize = 32;
const FACES: usize = 36;
const LEVELS: usize = 40;
const SCHEME: usize = 44;

/// A key/value entry: key (without its NUL) and value.
type Entry = (Vec<u8>, Vec<u8>);

/// A writer's name, as writers are asked to give it (7125 otherwise).
fn writer() -> Entry {
    (b"KTXwriter".to_vec(), b"forgeflow tests\0".to_vec())
}

fn rgba8_with(key_values: Vec<Entry>) -> Vec<u8> {
    let mut b = Ktx2Builder::uncompressed(37, 4, 8, 8);
    b.levels = (0..4)
        .map(|l| vec![7u8; b.image_bytes(l) as usize])
        .collect();
    b.key_values = key_values;
    b.build()
}

fn valid_rgba8() -> Vec<u8> {
    rgba8_with(vec![writer()])
}

fn valid_bc1() -> Vec<u8> {
    let mut b = Ktx2Builder::block_compressed(131, 8, 8, 8);
    b.levels = vec![vec![0u8; b.image_bytes(0) as usize]];
    b.key_values = vec![writer()];
    b.build()
}

/// A valid 3D array texture: 4x4x2, 2 layers (ktx validate warns: no API
/// supports them).
fn three_d_array() -> Vec<u8> {
    let mut b = Ktx2Builder::uncompressed(37, 4, 4, 4);
    b.size[2] = 2;
    b.layers = 2;
    b.levels = vec![vec![1u8; b.level_bytes(0) as usize]];
    b.build()
}

/// `file` with `bytes` written at `offset` into its DFD.
fn dfd(mut file: Vec<u8>, offset: usize, bytes: &[u8]) -> Vec<u8> {
    let at = u32::from_le_bytes(file[48..52].try_into().unwrap()) as usize + offset;
    file[at..at + bytes.len()].copy_from_slice(bytes);
    file
}

fn with(mut file: Vec<u8>, fields: &[(usize, u32)]) -> Vec<u8> {
    for &(at, v) in fields {
        file[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }
    file
}

#[test]
fn valid_files_have_no_findings() {
    assert_eq!(ktx2_findings(&valid_rgba8()), vec![]);
    assert_eq!(ktx2_findings(&valid_bc1()), vec![]);
    // The corpus's valid files (those not under cts-invalid/).
    let Some(dir) = ktx2_dir() else { return };
    for sub in ["cts", "t2d", "wgpu", "bevy", "ktxsw", "bevy-pr18411"] {
        for entry in std::fs::read_dir(dir.join(sub)).unwrap().flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "ktx2") {
                let findings = ktx2_findings(&std::fs::read(&path).unwrap());
                assert!(is_valid(&findings), "{}: {findings:?}", path.display());
            }
        }
    }
}

#[test]
fn each_header_rule_raises_its_id() {
    let rgba8 = valid_rgba8;
    let bc1 = valid_bc1;
    // (what, file, the expected ID, its severity)
    let cases: Vec<(&str, Vec<u8>, u16, Severity)> = vec![
        (
            "not KTX2",
            b"KTX 11 not a ktx2 file".to_vec(),
            2001,
            Severity::Fatal,
        ),
        ("cut header", rgba8()[..40].to_vec(), 1003, Severity::Fatal),
        (
            "prohibited USCALED",
            with(rgba8(), &[(VK, 39)]),
            3001,
            Severity::Error,
        ),
        (
            "prohibited multi-planar",
            with(rgba8(), &[(VK, 1_000_156_003)]),
            3001,
            Severity::Error,
        ),
        (
            "unknown extension format",
            with(rgba8(), &[(VK, 1_000_999_000)]),
            3003,
            Severity::Warning,
        ),
        (
            "BasisLZ with a format",
            with(rgba8(), &[(SCHEME, 1)]),
            3004,
            Severity::Error,
        ),
        (
            "typeSize of a compressed format",
            with(bc1(), &[(TYPE_SIZE, 4)]),
            3005,
            Severity::Error,
        ),
        (
            "typeSize of R16",
            with(rgba8(), &[(VK, 70)]),
            3012,
            Severity::Error,
        ),
        (
            "zero width",
            with(rgba8(), &[(WIDTH, 0)]),
            3006,
            Severity::Error,
        ),
        (
            "compressed without height",
            with(bc1(), &[(HEIGHT, 0)]),
            3007,
            Severity::Error,
        ),
        (
            "cube not square",
            with(rgba8(), &[(FACES, 6), (WIDTH, 16)]),
            3008,
            Severity::Error,
        ),
        (
            "depth without height",
            with(rgba8(), &[(HEIGHT, 0), (DEPTH, 4)]),
            3009,
            Severity::Error,
        ),
        (
            "3D ASTC without depth",
            with(rgba8(), &[(VK, 1_000_288_000)]),
            3010,
            Severity::Error,
        ),
        (
            "depth format with depth",
            with(rgba8(), &[(VK, 124), (TYPE_SIZE, 2), (DEPTH, 2)]),
            3011,
            Severity::Error,
        ),
        (
            "cube with depth",
            with(rgba8(), &[(FACES, 6), (DEPTH, 8)]),
            3013,
            Severity::Error,
        ),
        ("3D array", three_d_array(), 3014, Severity::Warning),
        (
            "face count 3",
            with(rgba8(), &[(FACES, 3)]),
            3015,
            Severity::Error,
        ),
        (
            "too many levels",
            with(rgba8(), &[(LEVELS, 5)]),
            3016,
            Severity::Error,
        ),
        (
            "compressed without levels",
            with(bc1(), &[(LEVELS, 0)]),
            3017,
            Severity::Error,
        ),
        (
            "vendor scheme",
            with(rgba8(), &[(SCHEME, 0x10005)]),
            3018,
            Severity::Warning,
        ),
        (
            "invalid scheme",
            with(rgba8(), &[(SCHEME, 9)]),
            3019,
            Severity::Error,
        ),
        // The basic DFD block (it starts 4 bytes into the DFD).
        ("dfdTotalSize", dfd(rgba8(), 0, &[1]), 6001, Severity::Error),
        (
            "not a basic block",
            dfd(rgba8(), 4, &[5]),
            6008,
            Severity::Error,
        ),
        (
            "block size not 24 + 16n",
            dfd(rgba8(), 10, &[100]),
            6009,
            Severity::Error,
        ),
        (
            "block size under 24",
            dfd(rgba8(), 10, &[16]),
            6010,
            Severity::Error,
        ),
        ("version 1.1", dfd(rgba8(), 8, &[0]), 6011, Severity::Error),
        (
            "unknown transfer",
            dfd(rgba8(), 14, &[40]),
            6012,
            Severity::Error,
        ),
        (
            "sRGB format, linear transfer",
            with(rgba8(), &[(VK, 43)]),
            6013,
            Severity::Error,
        ),
        (
            "UNORM format, sRGB transfer",
            dfd(rgba8(), 14, &[2]),
            6014,
            Severity::Error,
        ),
        (
            "RGBA8 as YUV",
            dfd(rgba8(), 12, &[2]),
            6015,
            Severity::Error,
        ),
        ("BC1 as BC7", dfd(bc1(), 12, &[134]), 6016, Severity::Error),
        (
            "bytesPlane0 wrong",
            dfd(rgba8(), 20, &[3]),
            6021,
            Severity::Error,
        ),
        (
            "a second plane",
            dfd(rgba8(), 21, &[4]),
            6024,
            Severity::Error,
        ),
    ];
    for (what, file, id, severity) in cases {
        let findings = assert_raises(what, &file, id, severity);
        if severity == Severity::Warning {
            // No header rule finds an error in a file that only warns.
            assert!(
                !findings
                    .iter()
                    .any(|f| (3000..3100).contains(&f.id) && f.severity != Severity::Warning),
                "{what}: {findings:?}"
            );
        } else {
            assert!(!is_valid(&findings), "{what}: {findings:?}");
        }
    }
    // A core format number that is no format: invalid, not an extension.
    let findings = ktx2_findings(&with(rgba8(), &[(VK, 184 + 1)]));
    assert!(
        findings.iter().any(|f| f.id == 3003 || f.id == 3002),
        "{findings:?}"
    );
}

/// The corpus's cts-invalid files, made by KTX-Software's test suite for
/// the ID in their names: each raises that ID.
#[test]
fn the_conformance_suites_invalid_files_raise_their_ids() {
    let Some(dir) = ktx2_dir() else { return };
    let ids = [
        ("error_BlockCompressedNoHeight_BC7_UNORM_BLOCK.ktx2", 3007),
        ("error_CubeHeightWidthMismatch_8x16.ktx2", 3008),
        ("error_InvalidFaceCount_0.ktx2", 3015),
        ("error_InvalidSupercompression_03.ktx2", 0),
        ("error_TooManyMipLevels_32x16.ktx2", 3016),
        ("fatal_NotKTX2.ktx2", 2001),
        ("fatal_UnexpectedEOF_80.ktx2", 1003),
    ];
    for (name, id) in ids {
        let findings = ktx2_findings(&std::fs::read(dir.join("cts-invalid").join(name)).unwrap());
        assert!(!is_valid(&findings), "{name}: {findings:?}");
        if id != 0 {
            assert!(findings.iter().any(|f| f.id == id), "{name}: {findings:?}");
        }
    }
}

/// A vendor's supercompression scheme: ktx validate only warns (it cannot
/// validate the levels), so the file opens; reading a level is a typed
/// error naming the scheme, not a refusal of the file.
#[test]
fn a_vendor_scheme_file_opens_and_its_levels_are_a_typed_error() {
    use forgeflow_jobs::texture::file::{ImageSelector, Ktx2File, TextureError};
    let mut b = Ktx2Builder::uncompressed(37, 4, 8, 8);
    b.supercompression = 0x10005;
    b.levels = vec![vec![9u8; 40]];
    let bytes = b.build();
    let findings = ktx2_findings(&bytes);
    assert!(is_valid(&findings), "{findings:?}");
    assert!(findings.iter().any(|f| f.id == 3018), "{findings:?}");
    let file = Ktx2File::from_bytes(bytes).expect("a valid file");
    match file.image(ImageSelector::default()) {
        Err(TextureError::VendorSupercompression { scheme: 0x10005 }) => {}
        other => panic!("expected the vendor scheme's typed error, got {other:?}"),
    }
}

/// The key/value data's rules, one bad entry each (entries are given with
/// the writer's name unless the case is about it).
#[test]
fn each_key_value_rule_raises_its_id() {
    let kv = |k: &str, v: &[u8]| (k.as_bytes().to_vec(), v.to_vec());
    let w = writer;
    // (what, entries, expected ID, severity)
    let cases: Vec<(&str, Vec<Entry>, u16, Severity)> = vec![
        ("no writer", vec![], 7125, Severity::Warning),
        (
            "a custom key",
            vec![w(), kv("myTool", b"x\0")],
            7010,
            Severity::Warning,
        ),
        (
            "an unknown KTX key",
            vec![kv("KTXfoo", b"x\0"), w()],
            7009,
            Severity::Error,
        ),
        (
            "out of order",
            vec![w(), kv("KTXorientation", b"rd\0")],
            7012,
            Severity::Error,
        ),
        ("duplicate", vec![w(), w()], 7013, Severity::Error),
        (
            "BOM",
            vec![w(), kv("\u{feff}x", b"\0")],
            7006,
            Severity::Error,
        ),
        (
            "orientation without NUL",
            vec![kv("KTXorientation", b"rd"), w()],
            7107,
            Severity::Error,
        ),
        (
            "orientation of 3 for 2D",
            vec![kv("KTXorientation", b"rdi\0"), w()],
            7108,
            Severity::Error,
        ),
        (
            "orientation letter",
            vec![kv("KTXorientation", b"xd\0"), w()],
            7109,
            Severity::Error,
        ),
        (
            "swizzle size",
            vec![kv("KTXswizzle", b"rgb\0"), w()],
            7118,
            Severity::Error,
        ),
        (
            "swizzle letter",
            vec![kv("KTXswizzle", b"rgbz\0"), w()],
            7119,
            Severity::Error,
        ),
        (
            "writer without NUL",
            vec![kv("KTXwriter", b"me")],
            7122,
            Severity::Error,
        ),
        (
            "writer not UTF-8",
            vec![kv("KTXwriter", b"\xff\0")],
            7123,
            Severity::Error,
        ),
        (
            "ScParams without writer",
            vec![kv("KTXwriterScParams", b"-q\0")],
            7124,
            Severity::Error,
        ),
        (
            "glFormat size",
            vec![kv("KTXglFormat", b"1234"), w()],
            7110,
            Severity::Error,
        ),
        (
            "glFormat with a vkFormat",
            vec![kv("KTXglFormat", &[0; 12]), w()],
            7111,
            Severity::Error,
        ),
        (
            "dxgiFormat size",
            vec![kv("KTXdxgiFormat__", b"12"), w()],
            7113,
            Severity::Error,
        ),
        (
            "metal size",
            vec![kv("KTXmetalPixelFormat", b"12"), w()],
            7115,
            Severity::Error,
        ),
        (
            "cubemapIncomplete size",
            vec![kv("KTXcubemapIncomplete", b"12"), w()],
            7106,
            Severity::Error,
        ),
        (
            "cubemapIncomplete MSB",
            vec![kv("KTXcubemapIncomplete", &[0x81]), w()],
            7101,
            Severity::Error,
        ),
        (
            "cubemapIncomplete all",
            vec![kv("KTXcubemapIncomplete", &[0x3F]), w()],
            7102,
            Severity::Warning,
        ),
        (
            "cubemapIncomplete none",
            vec![kv("KTXcubemapIncomplete", &[0]), w()],
            7103,
            Severity::Error,
        ),
        (
            "cubemapIncomplete layers",
            vec![kv("KTXcubemapIncomplete", &[0b111]), w()],
            7104,
            Severity::Error,
        ),
        (
            "animData size",
            vec![kv("KTXanimData", b"1"), w()],
            7128,
            Severity::Error,
        ),
        (
            "animData not an array",
            vec![kv("KTXanimData", &[0; 12]), w()],
            7129,
            Severity::Error,
        ),
        (
            "astc mode value",
            vec![kv("KTXastcDecodeMode", b"srgb\0"), w()],
            7132,
            Severity::Error,
        ),
        (
            "astc mode on RGBA8",
            vec![kv("KTXastcDecodeMode", b"unorm8\0"), w()],
            7134,
            Severity::Warning,
        ),
    ];
    for (what, entries, id, severity) in cases {
        assert_raises(what, &rgba8_with(entries), id, severity);
    }
}

/// The BasisLZ global data rules, on the corpus's ETC1S file with one field
/// of its global data (or of the header's index to it) changed.
#[test]
fn each_basislz_global_data_rule_raises_its_id() {
    let Some(dir) = ktx2_dir() else { return };
    let file = std::fs::read(dir.join("bevy-pr18411/ktx2-etc1s-srgb.ktx2")).unwrap();
    let clean = ktx2_findings(&file);
    assert!(!clean.iter().any(|f| f.id / 100 == 81), "{clean:?}");
    let sgd = u64::from_le_bytes(file[64..72].try_into().unwrap()) as usize;
    // (what, byte offset, new u32 value, expected ID)
    let cases = [
        ("global data under 20 bytes", 72, 8, 8101),
        (
            "tables one byte longer",
            sgd + 12,
            u32_at(&file, sgd + 12) + 1,
            8102,
        ),
        ("extended data", sgd + 16, 4, 8103),
        ("an unknown image flag", sgd + 20, 0x4, 8104),
        ("a P-frame without KTXanimData", sgd + 20, 0x2, 8105),
        ("an empty RGB slice", sgd + 28, 0, 8106),
        ("an RGB slice past its level", sgd + 24, 0xFFFF_0000, 8107),
        ("an alpha slice past its level", sgd + 32, 0xFFFF_0000, 8108),
        ("an alpha slice the DFD does not have", sgd + 36, 4, 8110),
    ];
    for (what, at, value, id) in cases {
        let mut f = file.clone();
        f[at..at + 4].copy_from_slice(&value.to_le_bytes());
        let findings = ktx2_findings(&f);
        assert!(
            findings
                .iter()
                .any(|x| x.id == id && x.severity == Severity::Error),
            "{what}: expected error-{id}, got {findings:?}"
        );
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// glTF's KHR_texture_basisu rules (`ktx validate --gltf-basisu`): the
/// conformance suite's UASTC file keeps them; one change each breaks one.
#[test]
fn each_gltf_basisu_rule_raises_its_id() {
    use forgeflow_jobs::texture::findings::gltf_basisu_findings;
    let Some(dir) = ktx2_dir() else { return };
    let uastc = std::fs::read(dir.join("cts/cimg5293_uastc_zstd.ktx2")).unwrap();
    let clean = gltf_basisu_findings(&uastc);
    assert!(is_valid(&clean), "{clean:?}");
    // ETC1S of 155x155: not whole 4x4 blocks.
    let etc1s = std::fs::read(dir.join("bevy-pr18411/ktx2-etc1s-srgb.ktx2")).unwrap();
    assert!(gltf_basisu_findings(&etc1s).iter().any(|f| f.id == 3103));
    let dfd = u32_at(&uastc, 48) as usize + 4;
    let byte = |at: usize, v: u8| {
        let mut f = uastc.clone();
        f[at] = v;
        f
    };
    let cases: [(&str, Vec<u8>, &[u16]); 6] = [
        (
            "UASTC with BasisLZ",
            with(uastc.clone(), &[(SCHEME, 1)]),
            &[3101, 6302],
        ),
        ("an array", with(uastc.clone(), &[(LAYERS, 2)]), &[3102]),
        (
            "width not a multiple of 4",
            with(uastc.clone(), &[(WIDTH, 646)]),
            &[3103],
        ),
        (
            "neither one level nor all",
            with(uastc.clone(), &[(LEVELS, 5)]),
            &[3104],
        ),
        ("not a Basis model", byte(dfd + 8, 1), &[6301]),
        ("BT.709 with a linear transfer", byte(dfd + 10, 1), &[6304]),
    ];
    for (what, file, ids) in cases {
        let findings = gltf_basisu_findings(&file);
        for id in ids {
            assert!(
                findings.iter().any(|f| f.id == *id),
                "{what}: expected {id}, got {findings:?}"
            );
        }
    }
    // Swizzle and orientation, given with other values than the defaults.
    let entry = |k: &str, v: &[u8]| (k.as_bytes().to_vec(), v.to_vec());
    let file = rgba8_with(vec![
        entry("KTXorientation", b"ru\0"),
        entry("KTXswizzle", b"rgab\0"),
        writer(),
    ]);
    let findings = gltf_basisu_findings(&file);
    for id in [7201, 7202] {
        assert!(
            findings.iter().any(|f| f.id == id),
            "expected {id}, got {findings:?}"
        );
    }
}
