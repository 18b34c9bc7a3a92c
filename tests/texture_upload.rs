//! Texture files (KTX2, DDS, PNG) to the GPU through the staging ring (lavapipe in CI: BC yes,
//! ETC2/ASTC no, so both paths run). Native uploads read back byte-identical
//! to the file's images; fallback uploads read back identical to the CPU
//! decode of the same image. Readback with plain wgpu copies.

use forgeflow::jobs::texture::corpus::ktx2_dir;

use forgeflow::gpu::{self, Gpu};
use forgeflow::graph::{Scheduler, SchedulerConfig};
use forgeflow::jobs::texture::decode::decode;
use forgeflow::jobs::texture::file::ImageSelector;
use forgeflow::jobs::texture::source::{TextureFile, TextureSource};
use forgeflow::staging::{StagingConfig, StagingRing};
use forgeflow::texture::{load_texture, UploadOptions};

/// Loads `file` through a staging frame and a graph frame, submits, waits.
fn load(gpu: &Gpu, file: &TextureFile, force_fallback: bool) -> forgeflow::texture::LoadedTexture {
    let mut ring = StagingRing::new(
        &gpu.device,
        StagingConfig {
            buffer_size: 16 << 20,
            ..Default::default()
        },
    )
    .unwrap();
    let mut sched = Scheduler::new(SchedulerConfig {
        auto_signal_fences: true,
        ..Default::default()
    })
    .unwrap();
    let staging = ring.begin_frame().unwrap();
    let loaded = {
        let mut frame = sched.begin_frame().unwrap();
        let loaded = load_texture(
            &gpu.device,
            file,
            &staging,
            &mut frame,
            UploadOptions {
                force_fallback,
                usage: wgpu::TextureUsages::COPY_SRC,
            },
        )
        .unwrap();
        frame.run().unwrap();
        loaded
    };
    let mut enc = gpu.device.create_command_encoder(&Default::default());
    staging.finish(&mut enc);
    gpu.queue.submit([enc.finish()]);
    gpu.device
        .poll(wgpu::PollType::wait_indefinitely())
        .unwrap();
    loaded
}

#[test]
fn native_uploads_read_back_identical_to_the_file() {
    let Some(gpu) = gpu::for_test("native_uploads_read_back_identical_to_the_file") else {
        return;
    };
    let Some(dir) = ktx2_dir() else { return };
    if !gpu
        .device
        .features()
        .contains(wgpu::Features::TEXTURE_COMPRESSION_BC)
    {
        eprintln!("the adapter has no BC: native BC uploads are not checked here");
    }
    let mut images = 0;
    for name in [
        "t2d/BC1.ktx2",
        "t2d/BC3.ktx2",
        "t2d/BC4.ktx2",
        "t2d/BC5.ktx2",
        "t2d/BC6H.ktx2",
        "t2d/BC7.ktx2",
        "wgpu/bc7.ktx2",
        "cts/texturearray_bc3_unorm.ktx2",
        "wgpu/rgba8.ktx2",
        "bcdec-dds/kodim23_bc1.dds",
        "bcdec-dds/lythwood_room_1k_bc6h_signed.dds",
        "t2d/ferris_512.png",
    ] {
        let file = TextureFile::open(dir.join(name)).unwrap();
        let loaded = load(&gpu, &file, false);
        let l = file.desc();
        let native_possible = gpu
            .device
            .features()
            .contains(wgpu::Features::TEXTURE_COMPRESSION_BC)
            || !l.format.unwrap().is_compressed();
        assert_eq!(loaded.native, native_possible, "{name}");
        if !loaded.native {
            continue;
        }
        for level in 0..l.levels {
            for layer in 0..l.layers {
                for face in 0..l.faces {
                    let want = file
                        .image(ImageSelector {
                            level,
                            layer,
                            face,
                            depth: 0,
                        })
                        .unwrap();
                    let got = {
                        let z = layer * l.faces + face;
                        gpu.read_texture(&loaded.texture, level, z..z + 1).unwrap()
                    };
                    assert!(
                        got == *want,
                        "{name}: level {level} layer {layer} face {face} differs"
                    );
                    images += 1;
                }
            }
        }
    }
    assert!(images > 60, "{images} images checked");
}

#[test]
fn fallback_uploads_read_back_identical_to_the_cpu_decode() {
    let Some(gpu) = gpu::for_test("fallback_uploads_read_back_identical_to_the_cpu_decode") else {
        return;
    };
    let Some(dir) = ktx2_dir() else { return };
    // ETC2 (not on lavapipe) falls back by itself; BC7 is forced to.
    for (name, force) in [
        ("wgpu/etc2.ktx2", false),
        ("wgpu/bc7.ktx2", true),
        ("t2d/ASTC_4x4.ktx2", false),
        ("bcdec-dds/kodim23_bc1.dds", true),
        // 1024x512: split into two decode jobs, each decoding in bands.
        ("bcdec-dds/lythwood_room_1k_bc6h_signed.dds", true),
    ] {
        let file = TextureFile::open(dir.join(name)).unwrap();
        let loaded = load(&gpu, &file, force);
        let l = file.desc();
        if !force
            && gpu.device.features().contains(
                wgpu::Features::TEXTURE_COMPRESSION_ETC2 | wgpu::Features::TEXTURE_COMPRESSION_ASTC,
            )
        {
            continue;
        }
        assert!(!loaded.native, "{name} falls back");
        for level in [0, l.levels - 1] {
            let (w, h) = ((l.width >> level).max(1), (l.height >> level).max(1));
            let blocks = file
                .image(ImageSelector {
                    level,
                    layer: 0,
                    face: l.faces - 1,
                    depth: 0,
                })
                .unwrap();
            let (_, want) = decode(l.vk_format, &blocks, w, h).unwrap();
            let got = gpu
                .read_texture(&loaded.texture, level, l.faces - 1..l.faces)
                .unwrap();
            assert!(
                got == want,
                "{name}: level {level} differs from the CPU decode"
            );
        }
    }
}
