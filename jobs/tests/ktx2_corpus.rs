//! KTX2 validation against the real files of `../shared/corpus/ktx2/`: every
//! file the Khronos validator rejects (`cts-invalid/`) is rejected with the
//! error its name describes, every other KTX2 file there validates, and no
//! truncation or corruption of them makes the validator panic.

use forgeflow_test_support::corpus::ktx2_dir;
use std::path::{Path, PathBuf};

use forgeflow_jobs::texture::ktx2::{validate, Ktx2Error};
use forgeflow_jobs::texture::{detect, Container};
use forgeflow_test_support::SplitMix64;

fn ktx2_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for sub in std::fs::read_dir(dir).unwrap().flatten() {
        let p = sub.path();
        if p.is_dir() && p.file_name().is_some_and(|n| n != "cts-invalid") {
            for f in std::fs::read_dir(&p).unwrap().flatten() {
                if f.path().extension().is_some_and(|e| e == "ktx2") {
                    out.push(f.path());
                }
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_file_the_khronos_validator_rejects_is_rejected_for_its_reason() {
    let Some(dir) = ktx2_dir() else { return };
    type Expectation = (&'static str, fn(&Ktx2Error) -> bool);
    let expect: &[Expectation] = &[
        ("error_BlockCompressedNoHeight_BC7_UNORM_BLOCK.ktx2", |e| {
            matches!(e, Ktx2Error::ZeroHeight { vk_format: 145 })
        }),
        ("error_CubeHeightWidthMismatch_8x16.ktx2", |e| {
            matches!(
                e,
                Ktx2Error::CubeNotSquare {
                    width: 8,
                    height: 16
                }
            )
        }),
        (
            "error_IncorrectByteOffsetUnaligned_BC7_L1_plus1.ktx2",
            |e| {
                matches!(
                    e,
                    Ktx2Error::LevelAlignment {
                        offset: 193,
                        align: 16,
                        ..
                    }
                )
            },
        ),
        ("error_IncorrectLevelOrder_10.ktx2", |e| {
            matches!(e, Ktx2Error::LevelOrder { level: 0 })
        }),
        ("error_IndexDFDInvalidOffset_plus1.ktx2", |e| {
            matches!(e, Ktx2Error::DfdPlacement(_))
        }),
        ("error_InvalidFaceCount_0.ktx2", |e| {
            matches!(e, Ktx2Error::FaceCount(0))
        }),
        ("error_InvalidSupercompression_03.ktx2", |e| {
            matches!(e, Ktx2Error::UnknownSupercompression(131072))
        }),
        ("error_TooManyMipLevels_32x16.ktx2", |e| {
            matches!(e, Ktx2Error::TooManyLevels { levels: 7, max: 6 })
        }),
        ("fatal_NotKTX2.ktx2", |e| matches!(e, Ktx2Error::NotKtx2)),
        ("fatal_UnexpectedEOF_80.ktx2", |e| {
            matches!(e, Ktx2Error::UnexpectedEof { .. })
        }),
    ];
    let invalid = dir.join("cts-invalid");
    let mut seen = 0;
    for entry in std::fs::read_dir(&invalid).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let bytes = std::fs::read(entry.path()).unwrap();
        let err = validate(&bytes).expect_err(&format!("{name} must be rejected"));
        let (_, check) = expect
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("no expectation for {name}"));
        assert!(check(&err), "{name}: wrong reason: {err}");
        assert!(!err.to_string().is_empty());
        seen += 1;
    }
    assert_eq!(
        seen,
        expect.len(),
        "every invalid file of the corpus was checked"
    );
}

#[test]
fn every_other_ktx2_file_of_the_corpus_validates() {
    let Some(dir) = ktx2_dir() else { return };
    let files = ktx2_files(&dir);
    assert!(files.len() >= 30, "only {} KTX2 files found", files.len());
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        assert_eq!(detect(&bytes), Ok(Container::Ktx2), "{}", f.display());
        let layout = validate(&bytes).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        assert_eq!(layout.level_ranges.len() as u32, layout.levels);
        assert!(layout
            .level_ranges
            .iter()
            .all(|(r, _)| r.end <= bytes.len()));
    }
}

#[test]
fn truncated_and_corrupted_files_give_errors_not_panics() {
    let Some(dir) = ktx2_dir() else { return };
    let mut rng = SplitMix64::new(5);
    let mut rejected = 0;
    for f in ktx2_files(&dir)
        .iter()
        .filter(|f| std::fs::metadata(f).is_ok_and(|m| m.len() < (1 << 20)))
    {
        let bytes = std::fs::read(f).unwrap();
        for cut in
            (0..bytes.len().min(600)).chain((0..40).map(|_| rng.below(bytes.len() as u64) as usize))
        {
            rejected += validate(&bytes[..cut]).is_err() as u32;
        }
        for _ in 0..300 {
            let mut m = bytes.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(m.len().min(512) as u64) as usize;
                m[at] = rng.next_u64() as u8;
            }
            let _ = validate(&m);
        }
        // The byte ktx2 0.5 panics on: a DFD texel-block dimension of 0xFF.
        let mut m = bytes.clone();
        let dfd = u32::from_le_bytes(m[48..52].try_into().unwrap()) as usize;
        if dfd + 4 + 13 < m.len() {
            m[dfd + 4 + 12] = 0xFF;
            let err = validate(&m).expect_err("a 256-texel block is refused");
            assert!(
                matches!(
                    err,
                    Ktx2Error::DfdBlock {
                        dfd: [256, _, _],
                        ..
                    }
                ),
                "{}: {err}",
                f.display()
            );
        }
    }
    assert!(rejected > 1000);
}

#[test]
fn levels_inflate_to_their_stated_size_and_images_address_them() {
    use forgeflow_jobs::texture::file::{ImageSelector, Ktx2File, TextureError};
    use forgeflow_jobs::texture::ktx2::Supercompression;
    use std::borrow::Cow;
    let Some(dir) = ktx2_dir() else { return };
    let (mut inflated, mut borrowed, mut transcoder, mut images) = (0, 0, 0, 0);
    for f in ktx2_files(&dir) {
        let file = Ktx2File::open(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let l = file.layout().clone();
        let needs_transcoder = l.supercompression == Supercompression::BasisLz || l.vk_format == 0;
        for level in 0..l.levels {
            match file.level(level) {
                Ok(bytes) => {
                    assert!(!needs_transcoder);
                    assert_eq!(
                        bytes.len() as u64,
                        l.level_ranges[level as usize].1,
                        "{} level {level}",
                        f.display()
                    );
                    match (&bytes, l.supercompression) {
                        (Cow::Borrowed(_), Supercompression::None) => borrowed += 1,
                        (Cow::Owned(_), Supercompression::Zstd | Supercompression::Zlib) => {
                            inflated += 1
                        }
                        _ => panic!(
                            "{}: uncompressed levels are borrowed, others inflated",
                            f.display()
                        ),
                    }
                    // Every image of the level is addressable and they tile it.
                    let depth_blocks =
                        ((l.depth >> level).max(1)).div_ceil(l.format.unwrap().block[2]);
                    let mut total = 0;
                    for layer in 0..l.layers {
                        for face in 0..l.faces {
                            for depth in 0..depth_blocks {
                                let img = file
                                    .image(ImageSelector {
                                        level,
                                        layer,
                                        face,
                                        depth,
                                    })
                                    .unwrap();
                                assert_eq!(img.len() as u64, file.image_bytes(level).unwrap());
                                total += img.len();
                                images += 1;
                            }
                        }
                    }
                    assert_eq!(
                        total,
                        bytes.len(),
                        "{} level {level}: images tile the level",
                        f.display()
                    );
                }
                Err(TextureError::NeedsTranscoder { .. }) => {
                    assert!(needs_transcoder);
                    transcoder += 1;
                }
                Err(e) => panic!("{} level {level}: {e}", f.display()),
            }
        }
        let past = file.image(ImageSelector {
            level: l.levels,
            ..Default::default()
        });
        assert!(matches!(
            past,
            Err(TextureError::NoSuchImage { .. }) | Err(TextureError::NeedsTranscoder { .. })
        ));
    }
    eprintln!("{borrowed} levels borrowed, {inflated} inflated, {transcoder} need a transcoder, {images} images");
    assert!(
        borrowed > 20 && inflated >= 3 && transcoder >= 2,
        "the corpus covers each case"
    );
}

#[test]
fn corrupt_supercompressed_levels_are_errors_not_panics() {
    use forgeflow_jobs::texture::file::Ktx2File;
    use forgeflow_jobs::texture::ktx2::Supercompression;
    let Some(dir) = ktx2_dir() else { return };
    let mut rng = SplitMix64::new(9);
    let mut corrupted = 0;
    for f in ktx2_files(&dir) {
        let bytes = std::fs::read(&f).unwrap();
        let Ok(file) = Ktx2File::from_bytes(bytes.clone()) else {
            continue;
        };
        let l = file.layout().clone();
        if !matches!(
            l.supercompression,
            Supercompression::Zstd | Supercompression::Zlib
        ) || l.vk_format == 0
        {
            continue;
        }
        for _ in 0..50 {
            let mut m = bytes.clone();
            let r = l.level_ranges[0].0.clone();
            for _ in 0..1 + rng.below(8) {
                let at = r.start + rng.below(r.len() as u64) as usize;
                m[at] ^= 1 << rng.below(8);
            }
            let file = Ktx2File::from_bytes(m).expect("the structure is intact");
            if let Ok(level) = file.level(0) {
                assert_eq!(
                    level.len() as u64,
                    l.level_ranges[0].1,
                    "a level that inflates has its stated size"
                );
            }
            corrupted += 1;
        }
    }
    assert!(corrupted >= 100);
}
