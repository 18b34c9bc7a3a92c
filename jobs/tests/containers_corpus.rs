//! DDS, KTX 1 and PNG against real files of `../shared/corpus/ktx2/`: the DDS
//! files of bcdec load and their images are where an independent reading of
//! the header puts them; KTX 1 files written here from corpus KTX2 files give
//! back the KTX2 file's images; PNG files decode to their pixels; truncated
//! and corrupted files give errors, never panics.

use forgeflow_jobs::texture::file::{ImageSelector, Ktx2File, TextureError};
use forgeflow_jobs::texture::source::{TextureFile, TextureSource};
use forgeflow_jobs::texture::{Container, KTX1_MAGIC};
use forgeflow_test_support::corpus::ktx2_dir;
use forgeflow_test_support::SplitMix64;

#[test]
fn corpus_dds_files_load_with_their_images_after_the_header() {
    let Some(dir) = ktx2_dir() else { return };
    for (name, vk, header) in [
        ("bcdec-dds/kodim23_bc1.dds", 133, 128),
        ("bcdec-dds/lythwood_room_1k_bc6h_signed.dds", 144, 148),
    ] {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let file = TextureFile::open(dir.join(name)).unwrap();
        let d = file.desc();
        assert_eq!(
            (d.container, d.vk_format, d.levels),
            (Container::Dds, vk, 1)
        );
        // Independently: width and height at bytes 16 and 12 of the file.
        let at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap());
        assert_eq!((d.width, d.height), (at(16), at(12)));
        let image = file.image(ImageSelector::default()).unwrap();
        assert_eq!(
            image.len(),
            (d.width / 4 * d.height / 4 * 16 / if vk == 133 { 2 } else { 1 }) as usize
        );
        assert_eq!(&*image, &bytes[header..header + image.len()], "{name}");
        assert!(
            matches!(image, std::borrow::Cow::Borrowed(_)),
            "read from the mapping"
        );
    }
}

/// A KTX 1 file with the images of a KTX2 file (no key/value data).
fn ktx1_from(k: &Ktx2File, gl_internal: u32) -> Vec<u8> {
    let l = k.layout();
    let d = k.desc();
    let array = if l.layers > 1 { l.layers } else { 0 };
    let mut b = KTX1_MAGIC.to_vec();
    for v in [
        0x0403_0201u32,
        0,
        1,
        0,
        gl_internal,
        0,
        l.width,
        l.height,
        0,
        array,
        l.faces,
        l.levels,
        0,
    ] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    for level in 0..l.levels {
        let face = d.image_bytes(level).unwrap() as u32;
        let stated = if l.faces == 6 && array == 0 {
            face
        } else {
            face * l.layers * l.faces
        };
        b.extend_from_slice(&stated.to_le_bytes());
        for layer in 0..l.layers {
            for f in 0..l.faces {
                let img = k
                    .image(ImageSelector {
                        level,
                        layer,
                        face: f,
                        depth: 0,
                    })
                    .unwrap();
                b.extend_from_slice(&img);
                b.resize(b.len().next_multiple_of(4), 0);
            }
        }
        b.resize(b.len().next_multiple_of(4), 0);
    }
    b
}

#[test]
fn ktx1_files_give_back_the_images_of_the_ktx2_they_were_written_from() {
    let Some(dir) = ktx2_dir() else { return };
    let mut images = 0;
    for (name, gl) in [
        ("wgpu/bc7.ktx2", 0x8E8C),                   // cube, 9 levels
        ("wgpu/rgba8.ktx2", 0x8C43),                 // sRGB RGBA8 cube, 9 levels
        ("cts/texturearray_bc3_unorm.ktx2", 0x83F3), // array
        ("t2d/ETC2_RGBA.ktx2", 0x9278),
        ("t2d/ASTC_12x12.ktx2", 0x93BD),
    ] {
        let k = Ktx2File::open(dir.join(name)).unwrap();
        let one = TextureFile::from_bytes(ktx1_from(&k, gl)).unwrap();
        let (a, b) = (k.desc(), one.desc());
        assert_eq!(b.container, Container::Ktx1);
        assert_eq!(
            (a.vk_format, a.width, a.height, a.layers, a.faces, a.levels),
            (b.vk_format, b.width, b.height, b.layers, b.faces, b.levels),
            "{name}"
        );
        for level in 0..a.levels {
            for layer in 0..a.layers {
                for face in 0..a.faces {
                    let sel = ImageSelector {
                        level,
                        layer,
                        face,
                        depth: 0,
                    };
                    assert_eq!(
                        k.image(sel).unwrap(),
                        one.image(sel).unwrap(),
                        "{name} {sel:?}"
                    );
                    images += 1;
                }
            }
        }
        // One byte short: a typed error.
        let bytes = ktx1_from(&k, gl);
        assert!(matches!(
            TextureFile::from_bytes(bytes[..bytes.len() - 1].to_vec()),
            Err(TextureError::InvalidKtx1(_))
        ));
    }
    assert!(images > 100, "{images}");
}

#[test]
fn png_files_decode_to_rgba8() {
    let Some(dir) = ktx2_dir() else { return };
    for name in ["t2d/ferris_512.png", "bevy-pr18411/png-srgb-rgb.png"] {
        let file = TextureFile::open(dir.join(name)).unwrap();
        let d = file.desc();
        assert_eq!((d.container, d.vk_format), (Container::Png, 43));
        let px = file.image(ImageSelector::default()).unwrap();
        assert_eq!(px.len(), (d.width * d.height * 4) as usize);
        assert!(
            px.chunks_exact(4).any(|p| p[0] != p[1]),
            "{name}: colour kept"
        );
    }
}

#[test]
fn truncated_and_corrupted_dds_ktx1_and_png_give_errors_not_panics() {
    let Some(dir) = ktx2_dir() else { return };
    let mut rng = SplitMix64::new(11);
    let k = Ktx2File::open(dir.join("wgpu/bc7.ktx2")).unwrap();
    let inputs = [
        std::fs::read(dir.join("bcdec-dds/kodim23_bc1.dds")).unwrap(),
        std::fs::read(dir.join("bcdec-dds/lythwood_room_1k_bc6h_signed.dds")).unwrap(),
        std::fs::read(dir.join("bevy-pr18411/png-srgb-rgb.png")).unwrap(),
        ktx1_from(&k, 0x8E8C),
    ];
    let mut rejected = 0;
    for bytes in &inputs {
        for cut in (0..300).chain((0..40).map(|_| rng.below(bytes.len() as u64) as usize)) {
            rejected +=
                TextureFile::from_bytes(bytes[..cut.min(bytes.len() - 1)].to_vec()).is_err() as u32;
        }
        for _ in 0..300 {
            let mut m = bytes.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(m.len().min(160) as u64) as usize;
                m[at] = rng.next_u64() as u8;
            }
            // Whatever validates must also read every image without panicking.
            if let Ok(f) = TextureFile::from_bytes(m) {
                let d = f.desc();
                for level in 0..d.levels.min(16) {
                    let _ = f.image(ImageSelector {
                        level,
                        ..Default::default()
                    });
                }
            }
        }
    }
    assert!(rejected > 1000, "{rejected}");
}

/// `TextureSource::level` (one inflation for a supercompressed level) holds
/// exactly the level's images one after another, as `image` gives them, for
/// every valid corpus file of every container.
#[test]
fn a_level_is_its_images_one_after_another() {
    let Some(dir) = ktx2_dir() else { return };
    let mut levels = 0;
    let mut supercompressed = 0;
    for sub in std::fs::read_dir(&dir).unwrap().flatten() {
        if !sub.path().is_dir() || sub.file_name() == "cts-invalid" {
            continue;
        }
        for f in std::fs::read_dir(sub.path()).unwrap().flatten() {
            let Ok(file) = TextureFile::open(f.path()) else {
                continue;
            };
            let d = file.desc();
            if d.vk_format == 0 {
                continue; // Basis Universal: no images to read
            }
            for level in 0..d.levels {
                let mut want = Vec::new();
                for layer in 0..d.layers {
                    for face in 0..d.faces {
                        for depth in 0..d.depth_images(level) {
                            let sel = ImageSelector {
                                level,
                                layer,
                                face,
                                depth,
                            };
                            want.extend_from_slice(&file.image(sel).unwrap());
                        }
                    }
                }
                let got = TextureSource::level(&file, level).unwrap();
                assert!(got[..] == want[..], "{}: level {level}", f.path().display());
                levels += 1;
                supercompressed += d.supercompressed as u32;
            }
        }
    }
    assert!(
        levels > 90 && supercompressed > 5,
        "{levels} levels, {supercompressed} supercompressed"
    );
}
