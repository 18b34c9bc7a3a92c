//! KTX2 files to the GPU through the staging ring (lavapipe in CI: BC yes,
//! ETC2/ASTC no, so both paths run). Native uploads read back byte-identical
//! to the file's images; fallback uploads read back identical to the CPU
//! decode of the same image. Readback with plain wgpu copies.

use std::path::{Path, PathBuf};

use forgeflow::gpu::{self, Gpu};
use forgeflow::graph::{Scheduler, SchedulerConfig};
use forgeflow::jobs::texture::decode::decode;
use forgeflow::jobs::texture::file::{ImageSelector, Ktx2File};
use forgeflow::staging::{StagingConfig, StagingRing};
use forgeflow::texture::{load_ktx2, UploadOptions};

fn corpus() -> Option<PathBuf> {
    let dir = std::env::var_os("FORGEFLOW_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"))
        .join("ktx2");
    if dir.is_dir() {
        return Some(dir);
    }
    if std::env::var("FORGEFLOW_REQUIRE_CORPUS").is_ok_and(|v| v == "1") {
        panic!(
            "FORGEFLOW_REQUIRE_CORPUS=1 but no corpus at {}",
            dir.display()
        );
    }
    eprintln!("SKIPPED: no texture corpus at {}", dir.display());
    None
}

/// One image (mip `level`, array layer `z`) read back as tight rows of blocks.
fn read_image(gpu: &Gpu, tex: &wgpu::Texture, level: u32, z: u32) -> Vec<u8> {
    let f = tex.format();
    let (bw, bh) = f.block_dimensions();
    let bytes = f.block_copy_size(None).unwrap();
    let size = tex
        .size()
        .mip_level_size(level, tex.dimension())
        .physical_size(f);
    let (bx, by) = (size.width / bw, size.height / bh);
    let row = bx * bytes;
    let bpr = row.div_ceil(256) * 256;
    let tmp = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: (bpr * by) as u64,
        usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
        mapped_at_creation: false,
    });
    let mut enc = gpu.device.create_command_encoder(&Default::default());
    enc.copy_texture_to_buffer(
        wgpu::TexelCopyTextureInfo {
            texture: tex,
            mip_level: level,
            origin: wgpu::Origin3d { x: 0, y: 0, z },
            aspect: wgpu::TextureAspect::All,
        },
        wgpu::TexelCopyBufferInfo {
            buffer: &tmp,
            layout: wgpu::TexelCopyBufferLayout {
                offset: 0,
                bytes_per_row: Some(bpr),
                rows_per_image: Some(by),
            },
        },
        wgpu::Extent3d {
            width: size.width,
            height: size.height,
            depth_or_array_layers: 1,
        },
    );
    gpu.queue.submit([enc.finish()]);
    tmp.map_async(wgpu::MapMode::Read, .., |r| r.unwrap());
    gpu.device
        .poll(wgpu::PollType::wait_indefinitely())
        .unwrap();
    let view = tmp.get_mapped_range(..).unwrap();
    (0..by as usize)
        .flat_map(|r| view[r * bpr as usize..r * bpr as usize + row as usize].to_vec())
        .collect()
}

/// Loads `file` through a staging frame and a graph frame, submits, waits.
fn load(gpu: &Gpu, file: &Ktx2File, force_fallback: bool) -> forgeflow::texture::LoadedTexture {
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
        let loaded = load_ktx2(
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
    let Some(dir) = corpus() else { return };
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
    ] {
        let file = Ktx2File::open(dir.join(name)).unwrap();
        let loaded = load(&gpu, &file, false);
        let l = file.layout().clone();
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
                    let got = read_image(&gpu, &loaded.texture, level, layer * l.faces + face);
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
    let Some(dir) = corpus() else { return };
    // ETC2 (not on lavapipe) falls back by itself; BC7 is forced to.
    for (name, force) in [
        ("wgpu/etc2.ktx2", false),
        ("wgpu/bc7.ktx2", true),
        ("t2d/ASTC_4x4.ktx2", false),
    ] {
        let file = Ktx2File::open(dir.join(name)).unwrap();
        let loaded = load(&gpu, &file, force);
        let l = file.layout().clone();
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
            let got = read_image(&gpu, &loaded.texture, level, l.faces - 1);
            assert!(
                got == want,
                "{name}: level {level} differs from the CPU decode"
            );
        }
    }
}
