//! Textures against the device's limits (invariant 7): a texture too large
//! for the device is a typed error naming the limit, or starts from the
//! first of its own levels that fits; never a panic inside wgpu. On lavapipe
//! in CI; the sizes are taken from the device's limits, so the same tests
//! hold on any adapter.

use forgeflow::gpu::Gpu;
use forgeflow::jobs::texture::decode::decode;
use forgeflow::jobs::texture::source::TextureFile;
use forgeflow::runtime::{Runtime, RuntimeConfig, RuntimeError, TextureStatus};
use forgeflow::texture::{LoadedTexture, TextureUploadError};
use forgeflow_test_support::gpu::{self, VerifyRead as _};
use forgeflow_test_support::ktx2::Ktx2Builder;
use forgeflow_test_support::SplitMix64;

fn load(gpu: &Gpu, bytes: Vec<u8>) -> Result<LoadedTexture, TextureUploadError> {
    let file = TextureFile::from_bytes(bytes).expect("a valid file");
    gpu::load_texture(gpu, &file, false)
}

fn random(n: u64, seed: u64) -> Vec<u8> {
    let mut rng = SplitMix64::new(seed);
    (0..n).map(|_| rng.next_u64() as u8).collect()
}

fn png(w: u32, h: u32) -> Vec<u8> {
    forgeflow_test_support::png::rgba(w, h, &random(u64::from(w * h * 4), 1))
}

#[test]
fn an_image_wider_than_the_device_allows_is_a_limit_error() {
    let Some(gpu) = gpu::for_test("an_image_wider_than_the_device_allows_is_a_limit_error") else {
        return;
    };
    let limit = gpu.device.limits().max_texture_dimension_2d;
    let width = 20_000.max(limit + 1);
    match load(&gpu, png(width, 4)) {
        Err(TextureUploadError::Limit {
            what,
            value,
            limit: l,
        }) => {
            assert!(what.contains("max_texture_dimension_2d"), "{what}");
            assert_eq!((value, l), (u64::from(width), u64::from(limit)));
        }
        other => panic!("expected a limit error, got {other:?}"),
    }
    // The runtime fails the texture and goes on.
    let mut rt = Runtime::new(&gpu.device, &gpu.queue, RuntimeConfig::default()).unwrap();
    let h = rt.load_texture_bytes(png(width, 4));
    for _ in 0..200 {
        rt.begin_frame().unwrap();
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        rt.end_frame(&mut encoder).unwrap();
        gpu.queue.submit([encoder.finish()]);
        if !matches!(rt.texture(h), Ok(TextureStatus::Loading)) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    match rt.texture(h).unwrap() {
        TextureStatus::Failed(RuntimeError::Upload(e)) => match &**e {
            forgeflow::texture::TextureUploadError::Limit { what, .. } => {
                assert!(what.contains("max_texture_dimension_2d"), "{e}")
            }
            other => panic!("expected a limit error, got {other:?}"),
        },
        other => panic!("expected the texture to fail on the limit, got {other:?}"),
    }
}

#[test]
fn a_file_whose_level_0_is_too_large_starts_from_the_first_level_that_fits() {
    let Some(gpu) =
        gpu::for_test("a_file_whose_level_0_is_too_large_starts_from_the_first_level_that_fits")
    else {
        return;
    };
    let limit = gpu.device.limits().max_texture_dimension_2d;
    // Level 0 twice the limit wide, level 1 at it, two more below.
    let mut b = Ktx2Builder::uncompressed(37, 4, 2 * limit, 4);
    b.levels = (0..4)
        .map(|level| random(b.image_bytes(level), level.into()))
        .collect();
    let loaded = load(&gpu, b.build()).expect("loads from level 1");
    assert_eq!(loaded.first_level, 1);
    let t = &loaded.texture;
    assert_eq!((t.width(), t.height(), t.mip_level_count()), (limit, 2, 3));
    for level in 1..4 {
        let got = gpu.read_texture(t, level - 1, 0..1).unwrap();
        assert!(
            got == b.levels[level as usize],
            "the texture's level {} holds the file's level {level}",
            level - 1
        );
    }
}

#[test]
fn more_array_layers_than_the_device_allows_is_a_limit_error() {
    let Some(gpu) = gpu::for_test("more_array_layers_than_the_device_allows_is_a_limit_error")
    else {
        return;
    };
    let limit = gpu.device.limits().max_texture_array_layers;
    let mut b = Ktx2Builder::uncompressed(37, 4, 4, 4);
    b.layers = 4096.max(limit + 1);
    b.levels = vec![random(b.level_bytes(0), 3)];
    match load(&gpu, b.build()) {
        Err(TextureUploadError::Limit { what, value, .. }) => {
            assert!(what.contains("max_texture_array_layers"), "{what}");
            assert_eq!(value, u64::from(b.layers));
        }
        other => panic!("expected a limit error, got {other:?}"),
    }
}

#[test]
fn a_3d_texture_of_2d_blocks_loads_native_or_decoded() {
    let Some(gpu) = gpu::for_test("a_3d_texture_of_2d_blocks_loads_native_or_decoded") else {
        return;
    };
    // BC1, 4x4x2: two slices of one block each.
    let mut b = Ktx2Builder::block_compressed(131, 8, 4, 4);
    b.size[2] = 2;
    b.levels = vec![random(16, 4)];
    let loaded = load(&gpu, b.build()).expect("a 4x4x2 BC1 texture loads");
    let t = &loaded.texture;
    assert_eq!(t.dimension(), wgpu::TextureDimension::D3);
    assert_eq!(t.depth_or_array_layers(), 2);
    let got = gpu.read_texture(t, 0, 0..2).unwrap();
    if loaded.native {
        assert!(gpu
            .device
            .features()
            .contains(wgpu::Features::TEXTURE_COMPRESSION_BC_SLICED_3D));
        assert_eq!(got, b.levels[0]);
    } else {
        let want: Vec<u8> = b.levels[0]
            .chunks(8)
            .flat_map(|slice| decode(131, slice, 4, 4).unwrap().1)
            .collect();
        assert_eq!(got, want);
    }
}

#[test]
fn a_cube_array_whose_layer_count_overflows_32_bits_is_an_error() {
    let Some(gpu) = gpu::for_test("a_cube_array_whose_layer_count_overflows_32_bits_is_an_error")
    else {
        return;
    };
    // 6 faces of 0x2AAA_AAAB layers: 2^32 + 2 images. A zstd frame header
    // stands for the payload: nothing may inflate it, multiply in 32 bits or
    // reach wgpu.
    let mut b = Ktx2Builder::uncompressed(37, 4, 4, 4);
    b.faces = 6;
    b.layers = 0x2AAA_AAAB;
    b.supercompression = 2;
    b.levels = vec![vec![0x28, 0xB5, 0x2F, 0xFD, 0, 0, 0, 0]];
    let bytes = b.build();
    // The header is valid KTX2: the refusal must come from the plan.
    TextureFile::from_bytes(bytes.clone()).expect("the header validates");
    match load(&gpu, bytes) {
        Err(TextureUploadError::Limit { what, value, .. }) => {
            assert!(what.contains("array layers"), "{what}");
            assert_eq!(value, 6 * 0x2AAA_AAAB);
        }
        other => panic!("expected a limit error, got {other:?}"),
    }
}
