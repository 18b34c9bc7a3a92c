//! Basis Universal files of the corpus (ETC1S, UASTC with zstd, XUASTC),
//! transcoded: each opens as a Basis file, targets follow what a device
//! samples, and the transcodes agree with independent decoders: ETC1S to
//! ETC1 is lossless (ETC1S is a subset of ETC1), and UASTC and XUASTC carry
//! ASTC blocks, so the texels the transcoder writes equal what an ASTC or
//! ETC decoder of this crate's own makes of its block targets. (Against
//! Binomial's C++ transcoder, every target of these files matched byte for
//! byte when the transcoder was chosen: docs/ARCHITECTURE.md.)
#![cfg(feature = "basis")]

use forgeflow_jobs::texture::basis::{SourceFormat, TargetFormat, TranscodeSupport};
use forgeflow_jobs::texture::decode::decode;
use forgeflow_jobs::texture::file::{ImageSelector, TextureError};
use forgeflow_jobs::texture::source::{TextureFile, TextureSource};
use forgeflow_test_support::corpus::ktx2_dir;

const FILES: [&str; 4] = [
    "bevy-pr18411/ktx2-etc1s-srgb.ktx2",
    "bevy-pr18411/ktx2-zstd-uastc-srgb-rdo.ktx2",
    "cts/cimg5293_uastc_zstd.ktx2",
    "ktxsw/base_xuastc_zstd.ktx2",
];

#[test]
fn the_corpus_basis_files_transcode_as_independent_decoders_read_their_blocks() {
    let Some(dir) = ktx2_dir() else { return };
    for name in FILES {
        let file = TextureFile::open(dir.join(name)).unwrap();
        let TextureFile::Basis(b) = &file else {
            panic!("{name} is not opened as a Basis file")
        };
        let l = b.file().layout();
        let (w, h) = (l.width, l.height);
        let level0 = ImageSelector::default();
        let rgba = b.transcode_image(level0, TargetFormat::Rgba32).unwrap();
        assert_eq!(rgba.len(), (w * h * 4) as usize, "{name}");
        // The block target and how this crate decodes it.
        let (target, vk) = match b.source_format() {
            SourceFormat::Etc1s => (TargetFormat::Etc1Rgb, 147),
            SourceFormat::UastcLdr => (TargetFormat::Astc4x4Rgba, 157),
            SourceFormat::XuastcLdr(block) => {
                assert_eq!(block.dims(), (5, 4), "{name}");
                (block.passthrough_target(), 159)
            }
            other => panic!("{name}: unexpected {other:?}"),
        };
        let blocks = b.transcode_image(level0, target).unwrap();
        let (_, ours) = decode(vk, &blocks, w, h).unwrap();
        let mut worst = 0;
        for (a, c) in rgba.chunks_exact(4).zip(ours.chunks_exact(4)) {
            let channels = if vk == 147 { 3 } else { 4 };
            for k in 0..channels {
                worst = worst.max((a[k] as i32 - c[k] as i32).abs());
            }
        }
        assert!(
            worst <= 1,
            "{name}: RGBA and {target:?} decoded differ by {worst}"
        );
    }
}

#[test]
fn the_target_is_the_best_the_device_samples_in_whole_blocks() {
    let Some(dir) = ktx2_dir() else { return };
    let only = |bc, astc, etc2| TranscodeSupport {
        bc,
        astc,
        astc_hdr: astc,
        etc2,
    };
    // (file, with BC, with ASTC, with ETC2, with nothing): VkFormats.
    let cases = [
        // 155x155: not whole 4x4 blocks, so uncompressed everywhere (sRGB).
        ("bevy-pr18411/ktx2-etc1s-srgb.ktx2", [43, 43, 43, 43]),
        // No alpha: ETC1 RGB where only ETC2 is sampled.
        ("cts/cimg5293_uastc_zstd.ktx2", [146, 158, 148, 43]),
        // 512x512 XUASTC 5x4: 512 is not a multiple of 5, so no ASTC 5x4.
        ("ktxsw/base_xuastc_zstd.ktx2", [146, 43, 148, 43]),
    ];
    for (name, want) in cases {
        let mut file = TextureFile::open(dir.join(name)).unwrap();
        for (support, vk) in [
            only(true, false, false),
            only(false, true, false),
            only(false, false, true),
            only(false, false, false),
        ]
        .into_iter()
        .zip(want)
        {
            file.transcode_for(support);
            assert_eq!(file.desc().vk_format, vk, "{name} with {support:?}");
            let image = file.image(ImageSelector::default()).unwrap();
            let d = file.desc();
            assert_eq!(image.len() as u64, d.image_bytes(0).unwrap(), "{name} {vk}");
        }
    }
}

/// A zstd level whose index states 2^50 bytes is refused when the file is
/// opened: handed over, the transcoder would allocate that much, and a
/// failed allocation aborts the process.
#[test]
fn a_basis_level_stating_more_bytes_than_its_size_holds_is_refused_not_allocated() {
    let Some(dir) = ktx2_dir() else { return };
    let mut bytes = std::fs::read(dir.join("cts/cimg5293_uastc_zstd.ktx2")).unwrap();
    // Level 0's uncompressedByteLength: the level index starts at 80.
    bytes[80 + 16..80 + 24].copy_from_slice(&(1u64 << 50).to_le_bytes());
    match TextureFile::from_bytes(bytes) {
        Err(TextureError::Inflate { level: 0, reason }) => {
            assert!(reason.contains("at most"), "{reason}")
        }
        Err(TextureError::TooLarge { level: 0, .. }) => {}
        other => panic!("expected the level to be refused, got {other:?}"),
    }
}

/// A Basis file whose header names a level 0 of billions of texels (the
/// fuzzer's find: the transcoder multiplies width by height in 32 bits) is
/// refused as too large before the transcoder sees it.
#[test]
fn a_basis_file_of_huge_dimensions_is_refused_before_the_transcoder() {
    let Some(dir) = ktx2_dir() else { return };
    let mut bytes = std::fs::read(dir.join("cts/cimg5293_uastc_zstd.ktx2")).unwrap();
    bytes[20..24].copy_from_slice(&(1u32 << 20).to_le_bytes()); // pixelWidth
    match TextureFile::from_bytes(bytes) {
        Err(TextureError::TooLarge { level: 0, .. }) => {}
        other => panic!("expected TooLarge, got {other:?}"),
    }
}

/// A crash CI's fuzzing found, kept as a regression test (made here from the
/// corpus file it was mutated from, two bytes changed): a UASTC file whose
/// height reads 83886235 made the transcoder multiply width by height in 32
/// bits and overflow. Level 0's widest output is now bounded before the
/// transcoder sees the file.
#[test]
fn the_fuzzers_basis_height_overflow_is_refused() {
    let Some(dir) = ktx2_dir() else { return };
    let mut b = std::fs::read(dir.join("bevy-pr18411/ktx2-zstd-uastc-srgb-rdo.ktx2")).unwrap();
    assert_eq!(b.len(), 13885, "the file the crash was found from");
    b[27] = 5; // pixelHeight 155 -> 83886235
    b[12131] = 51;
    match TextureFile::from_bytes(b) {
        Err(TextureError::TooLarge { level: 0, .. }) => {}
        Err(other) => panic!("refused, but not for its size: {other}"),
        Ok(_) => panic!("a 155 x 83886235 Basis file was opened"),
    }
}
