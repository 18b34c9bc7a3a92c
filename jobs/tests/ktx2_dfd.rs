//! Data format descriptors: the descriptor forgeflow derives for a format
//! against those libktx wrote into the corpus's files, and each sample rule
//! of `ktx validate` raised by one mutation of a valid file (a rule removed
//! makes its case fail).

use std::collections::BTreeSet;

use forgeflow_jobs::texture::dfd::BasicDfd;
use forgeflow_jobs::texture::findings::{gltf_basisu_findings, is_valid, ktx2_findings, Severity};
use forgeflow_test_support::corpus::ktx2_dir;
use forgeflow_test_support::ktx2::{assert_raises, Ktx2Builder};

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

/// `file` with `bytes` written at `offset` into its DFD (0: dfdTotalSize;
/// 4: the basic block; 28: the first sample).
fn dfd(mut file: Vec<u8>, offset: usize, bytes: &[u8]) -> Vec<u8> {
    let at = u32_at(&file, 48) as usize + offset;
    file[at..at + bytes.len()].copy_from_slice(bytes);
    file
}

/// Offset in the DFD of byte `field` of sample `i`.
fn sample(i: usize, field: usize) -> usize {
    28 + 16 * i + field
}

fn writer() -> (Vec<u8>, Vec<u8>) {
    (b"KTXwriter".to_vec(), b"forgeflow tests\0".to_vec())
}

fn valid(vk: u32) -> Vec<u8> {
    let mut b = Ktx2Builder::for_format(vk, 8, 8);
    b.levels = vec![vec![0u8; b.image_bytes(0) as usize]];
    b.key_values = vec![writer()];
    b.build()
}

/// A UASTC LDR file (VK_FORMAT_UNDEFINED, no supercompression): one 128-bit
/// sample over a 4x4 block of 16 bytes.
fn valid_uastc() -> Vec<u8> {
    let mut b = Ktx2Builder::block_compressed(0, 16, 8, 8);
    b.levels = vec![vec![0u8; b.image_bytes(0) as usize]];
    b.key_values = vec![writer()];
    dfd(b.build(), 12, &[166]) // colorModel UASTC
}

fn corpus(name: &str) -> Option<Vec<u8>> {
    Some(std::fs::read(ktx2_dir()?.join(name)).unwrap())
}

#[track_caller]
fn raises(what: &str, file: &[u8], id: u16, severity: Severity) {
    assert_raises(what, file, id, severity);
}

#[test]
fn derived_descriptors_match_the_ones_libktx_wrote() {
    let Some(dir) = ktx2_dir() else { return };
    let mut formats = BTreeSet::new();
    for sub in ["cts", "t2d", "wgpu", "bevy", "bevy-pr18411"] {
        for entry in std::fs::read_dir(dir.join(sub)).unwrap().flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "ktx2") {
                continue;
            }
            let b = std::fs::read(&path).unwrap();
            let (vk, scheme) = (u32_at(&b, 12), u32_at(&b, 44));
            if vk == 0 {
                continue;
            }
            let at = u32_at(&b, 48) as usize + 4;
            let got = BasicDfd::parse(&b[at..]).unwrap();
            // UASTC HDR 4x4 blocks are stored as ASTC 4x4 SFLOAT with a
            // model of their own.
            let want = if got.model == 167 {
                BasicDfd::uastc_hdr_4x4()
            } else {
                BasicDfd::for_format(vk).unwrap()
            };
            let name = path.display();
            assert_eq!(got.samples, want.samples, "{name}");
            assert_eq!(
                (got.model, got.transfer, got.block),
                (want.model, want.transfer, want.block),
                "{name}"
            );
            if scheme == 0 {
                assert_eq!(got.bytes_planes, want.bytes_planes, "{name}");
            }
            formats.insert(vk);
        }
    }
    // Packed, 8- and 16-bit, shared-exponent, BC, ETC2, EAC and ASTC formats.
    assert!(formats.len() >= 20, "{formats:?}");
}

#[test]
fn valid_files_of_every_derivable_format_have_no_sample_findings() {
    let mut checked = 0;
    for vk in (1..=184).chain([1_000_066_000, 1_000_156_000, 1_000_156_010, 1_000_340_000]) {
        if BasicDfd::for_format(vk).is_none() {
            continue;
        }
        let findings = ktx2_findings(&valid(vk));
        assert!(
            !findings.iter().any(|f| (6000..6300).contains(&f.id)),
            "VkFormat {vk}: {findings:?}"
        );
        checked += 1;
    }
    assert!(checked > 150);
}

#[test]
fn each_sample_rule_raises_its_id() {
    let rgba8 = || valid(37);
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("primaries 12", dfd(rgba8(), 13, &[12]), 6019),
        (
            "RGBA8 as R16G16 (two samples expected)",
            {
                let mut f = rgba8();
                f[12..16].copy_from_slice(&77u32.to_le_bytes());
                f
            },
            6025,
        ),
        ("green at bit 9", dfd(rgba8(), sample(1, 0), &[9]), 6028),
        ("red of 7 bits", dfd(rgba8(), sample(0, 2), &[6]), 6028),
        ("alpha as blue", dfd(rgba8(), sample(3, 3), &[2]), 6028),
        ("red's upper 254", dfd(rgba8(), sample(0, 12), &[254]), 6028),
        ("red's lower 1", dfd(rgba8(), sample(0, 8), &[1]), 6028),
        ("red at x 1", dfd(rgba8(), sample(0, 4), &[1]), 6028),
        (
            "alpha linear in UNORM",
            dfd(rgba8(), sample(3, 3), &[0x1F]),
            6028,
        ),
        (
            "channel 5 in RGBSDA",
            dfd(rgba8(), sample(0, 3), &[5]),
            6101,
        ),
        (
            "green signed only",
            dfd(rgba8(), sample(1, 3), &[0x41]),
            6203,
        ),
        ("red off the origin", dfd(rgba8(), sample(0, 4), &[1]), 6204),
        (
            "red again after green",
            dfd(rgba8(), sample(2, 3), &[0]),
            6205,
        ),
    ];
    for (what, file, id) in cases {
        raises(what, &file, id, Severity::Error);
    }
    // A field the validator compares, changed to what the format expects
    // elsewhere, is still found: BGRA8's channel order in an RGBA8 file.
    let mut f = rgba8();
    f[12..16].copy_from_slice(&44u32.to_le_bytes());
    let channel_findings = ktx2_findings(&f)
        .into_iter()
        .filter(|x| x.id == 6028 && x.message.contains("channelType"))
        .count();
    assert_eq!(channel_findings, 2, "red and blue swapped");
}

#[test]
fn uastc_sample_rules() {
    let findings = ktx2_findings(&valid_uastc());
    assert!(is_valid(&findings), "{findings:?}");
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("8x4 blocks", dfd(valid_uastc(), 16, &[7]), 6020),
        ("bytesPlane0 8", dfd(valid_uastc(), 20, &[8]), 6021),
        ("bit 8", dfd(valid_uastc(), sample(0, 0), &[8]), 6102),
        ("64 bits", dfd(valid_uastc(), sample(0, 2), &[63]), 6104),
        ("lower 1", dfd(valid_uastc(), sample(0, 8), &[1]), 6106),
        (
            "upper 0",
            dfd(valid_uastc(), sample(0, 12), &[0, 0, 0, 0]),
            6107,
        ),
        // descriptorBlockSize 24: no sample.
        ("no sample", dfd(valid_uastc(), 10, &[24]), 6026),
    ];
    for (what, file, id) in cases {
        raises(what, &file, id, Severity::Error);
    }
    // An undefined format of another model: samples and bytesPlane0 needed.
    let rgbsda = dfd(dfd(valid_uastc(), 12, &[1]), 10, &[24]);
    raises("no sample", &rgbsda, 6027, Severity::Error);
    raises(
        "bytesPlane0 0",
        &dfd(rgbsda, 20, &[0]),
        6023,
        Severity::Error,
    );
}

#[test]
fn basislz_sample_rules_on_a_real_etc1s_file() {
    let Some(etc1s) = corpus("bevy-pr18411/ktx2-etc1s-srgb.ktx2") else {
        return;
    };
    assert!(is_valid(&ktx2_findings(&etc1s)));
    // bytesPlane0 0 was the rule before KTX 2.0.4: a warning now.
    raises("unsized planes", &etc1s, 6030, Severity::Warning);
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("6x6 blocks", dfd(etc1s.clone(), 16, &[5, 5]), 6020),
        ("no sample", dfd(etc1s.clone(), 10, &[24]), 6026),
        ("bit 1", dfd(etc1s.clone(), sample(0, 0), &[1]), 6103),
        ("128 bits", dfd(etc1s.clone(), sample(0, 2), &[127]), 6105),
        ("lower 1", dfd(etc1s.clone(), sample(0, 8), &[1]), 6106),
        (
            "upper 1",
            dfd(etc1s.clone(), sample(0, 12), &[1, 0, 0, 0]),
            6107,
        ),
    ];
    for (what, file, id) in cases {
        raises(what, &file, id, Severity::Error);
    }
}

#[test]
fn gltf_basisu_channel_rules() {
    let Some(etc1s) = corpus("bevy-pr18411/ktx2-etc1s-srgb.ktx2") else {
        return;
    };
    let ids = |b: &[u8]| -> Vec<u16> { gltf_basisu_findings(b).iter().map(|f| f.id).collect() };
    assert!(!ids(&etc1s).contains(&6303));
    // ETC1S_GGG first: not RGB or RRR.
    assert!(ids(&dfd(etc1s.clone(), sample(0, 3), &[4])).contains(&6303));
    let uastc = corpus("bevy-pr18411/ktx2-zstd-uastc-srgb-rdo.ktx2").unwrap();
    assert!(!ids(&uastc).contains(&6303));
    // UASTC_RRRG (5): a UASTC channel, not one glTF takes.
    let rrrg = dfd(uastc, sample(0, 3), &[5]);
    assert!(ids(&rrrg).contains(&6303));
    assert!(!ktx2_findings(&rrrg).iter().any(|f| f.id == 6101));
}

#[test]
fn uastc_hdr_6x6_global_data_sizes() {
    // Scheme 4 with 0 bytes of global data, then with 13.
    let mut f = valid_uastc();
    f[44..48].copy_from_slice(&4u32.to_le_bytes());
    raises("no global data", &f, 8201, Severity::Error);
    f[72..80].copy_from_slice(&13u64.to_le_bytes());
    raises("13 bytes", &f, 8202, Severity::Error);
}

#[test]
fn uastc_hdr_4x4_is_astc_4x4_sfloat_with_its_own_model() {
    let Some(hdr) = corpus("bevy-pr18411/ktx2-astc-4x4-hdr.ktx2") else {
        return;
    };
    let findings = ktx2_findings(&hdr);
    assert!(is_valid(&findings), "{findings:?}");
    // The model belongs to the SFLOAT format only.
    let mut unorm = hdr.clone();
    unorm[12..16].copy_from_slice(&157u32.to_le_bytes());
    raises("UASTC HDR as ASTC 4x4 UNORM", &unorm, 6016, Severity::Error);
    // Its sample is unsigned from 0: a signed one is not UASTC HDR's.
    raises(
        "UASTC HDR signed",
        &dfd(hdr, sample(0, 3), &[0xC0]),
        6028,
        Severity::Error,
    );
}

/// Pixels decoded elsewhere become a KTX2 file the validator finds nothing
/// wrong with, whose image is the pixels; a wrong length is a typed error.
#[test]
fn pixels_in_memory_make_a_valid_ktx2_file() {
    use forgeflow_jobs::texture::file::{ImageSelector, Ktx2File, TextureError};
    use forgeflow_jobs::texture::ktx2::write_image;
    for (vk, bytes) in [(37u32, 4u32), (97, 8), (9, 1), (109, 16), (16, 2)] {
        let pixels: Vec<u8> = (0..5 * 3 * bytes).map(|i| (i * 13) as u8).collect();
        let file = write_image(vk, 5, 3, &pixels).unwrap();
        let findings = ktx2_findings(&file);
        assert!(
            findings.iter().all(|f| f.severity == Severity::Warning),
            "VkFormat {vk}: {findings:?}"
        );
        let read = Ktx2File::from_bytes(file).unwrap();
        assert_eq!(&*read.image(ImageSelector::default()).unwrap(), &pixels[..]);
    }
    assert!(matches!(
        write_image(37, 5, 3, &[0; 59]),
        Err(TextureError::PixelBytes {
            expected: 60,
            got: 59
        })
    ));
    assert!(
        write_image(145, 4, 4, &[0; 16]).is_err(),
        "block-compressed"
    );
}
