//! Texture files (KTX2, DDS, PNG) to the GPU through the staging ring (lavapipe in CI: BC yes,
//! ETC2/ASTC no, so both paths run). Native uploads read back byte-identical
//! to the file's images; fallback uploads read back identical to the CPU
//! decode of the same image. Readback with plain wgpu copies.

use forgeflow_test_support::corpus::ktx2_dir;
use forgeflow_test_support::gpu::VerifyRead as _;

use forgeflow::gpu::Gpu;
use forgeflow::graph::{Scheduler, SchedulerConfig};
use forgeflow::jobs::texture::decode::decode;
use forgeflow::jobs::texture::file::ImageSelector;
use forgeflow::jobs::texture::source::{TextureFile, TextureSource};
use forgeflow::staging::{StagingConfig, StagingRing};
use forgeflow::texture::{TextureUpload, UploadOptions};
use forgeflow_test_support::gpu;

/// Loads `file` through a staging frame and a graph frame, submits, waits.
fn load(gpu: &Gpu, file: &TextureFile, force_fallback: bool) -> forgeflow::texture::LoadedTexture {
    try_load(gpu, file, force_fallback).unwrap()
}

/// [`load`], returning what `load_texture` refuses.
fn try_load(
    gpu: &Gpu,
    file: &TextureFile,
    force_fallback: bool,
) -> Result<forgeflow::texture::LoadedTexture, forgeflow::texture::TextureUploadError> {
    gpu::load_texture(gpu, file, force_fallback)
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
        // 1024x512: split into decode jobs, each decoding in bands.
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

/// Uploads `file` with [`TextureUpload`], at most `budget` staging bytes a
/// frame; returns the texture, the frames it took and the inflate jobs run.
fn load_stepped(
    gpu: &Gpu,
    file: &TextureFile,
    force_fallback: bool,
    budget: u64,
) -> (wgpu::Texture, u32, u32) {
    let mut ring = StagingRing::new(&gpu.device, StagingConfig::default()).unwrap();
    let mut sched = Scheduler::new(SchedulerConfig {
        auto_signal_fences: true,
        ..Default::default()
    })
    .unwrap();
    let options = UploadOptions {
        force_fallback,
        usage: wgpu::TextureUsages::COPY_SRC,
        ..UploadOptions::default()
    };
    let mut upload = TextureUpload::new(&gpu.device, file, options).unwrap();
    let (mut frames, mut inflates) = (0, 0);
    while !upload.is_done() {
        let staging = ring.begin_frame().unwrap();
        {
            let mut frame = sched.begin_frame().unwrap();
            upload.step(file, &staging, &mut frame, budget).unwrap();
            // The step names its jobs: the frame holds those and no other.
            assert_eq!(upload.jobs().len(), frame.len());
            let distinct: std::collections::HashSet<_> = upload.jobs().iter().collect();
            assert_eq!(distinct.len(), frame.len());
            frame.run().unwrap();
        }
        inflates += sched
            .last_frame_stats()
            .by_name
            .iter()
            .filter(|n| n.name == "texture inflate")
            .map(|n| n.count)
            .sum::<u32>();
        assert!(
            staging.bytes() <= budget.max(1 << 20),
            "a step stays near its budget: {} bytes",
            staging.bytes()
        );
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        staging.finish(&mut encoder);
        gpu.queue.submit([encoder.finish()]);
        let _ = gpu.device.poll(wgpu::PollType::wait_indefinitely());
        frames += 1;
    }
    (upload.into_loaded().texture, frames, inflates)
}

#[test]
fn uploads_spread_over_frames_equal_one_shot_uploads() {
    let Some(gpu) = gpu::for_test("uploads_spread_over_frames_equal_one_shot_uploads") else {
        return;
    };
    let Some(dir) = ktx2_dir() else { return };
    // Native and decoded, mips, an array, a supercompressed cube (whole
    // images), odd sizes.
    for (name, force) in [
        ("wgpu/bc7.ktx2", false),
        ("wgpu/bc7.ktx2", true),
        ("cts/texturearray_bc3_unorm.ktx2", false),
        ("bevy/Ryfjallet_cubemap_bc7.ktx2", true),
        ("bcdec-dds/lythwood_room_1k_bc6h_signed.dds", true),
        ("t2d/ferris_512.png", false),
        ("bevy-pr18411/ktx2-zstd-astc-4x4-srgb.ktx2", false),
    ] {
        let file = TextureFile::open(dir.join(name)).unwrap();
        let whole = load(&gpu, &file, force);
        let (stepped, frames, inflates) = load_stepped(&gpu, &file, force, 64 << 10);
        let l = file.desc();
        assert!(frames > 1, "{name}: spread over {frames} frames");
        // A supercompressed level is inflated once, however many pieces read it.
        let want = if l.supercompressed { l.levels } else { 0 };
        assert_eq!(inflates, want, "{name}: inflate jobs");
        for level in 0..l.levels {
            let z = l.layers * l.faces;
            let a = gpu.read_texture(&whole.texture, level, 0..z).unwrap();
            let b = gpu.read_texture(&stepped, level, 0..z).unwrap();
            assert!(a == b, "{name} (fallback {force}): level {level} differs");
        }
    }
}

/// Every texel of one image of `tex`, as the GPU samples it (`textureLoad`,
/// so the GPU's own block decoder for a native texture): RGBA f32.
fn sampled(gpu: &Gpu, tex: &wgpu::Texture, level: u32, layer: u32) -> Vec<[f32; 4]> {
    const SHADER: &str = "
        @group(0) @binding(0) var t: texture_2d_array<f32>;
        @group(0) @binding(1) var<storage, read_write> out: array<vec4<f32>>;
        @group(0) @binding(2) var<uniform> p: vec4<u32>; // level, layer, w, h
        @compute @workgroup_size(8, 8)
        fn main(@builtin(global_invocation_id) id: vec3<u32>) {
            if (id.x >= p.z || id.y >= p.w) { return; }
            out[id.y * p.z + id.x] = textureLoad(t, vec2<i32>(id.xy), i32(p.y), i32(p.x));
        }";
    let d = &gpu.device;
    let size = tex.size().mip_level_size(level, tex.dimension());
    let (w, h) = (size.width, size.height);
    let module = d.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("sample texels"),
        source: wgpu::ShaderSource::Wgsl(SHADER.into()),
    });
    let pipeline = d.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: None,
        layout: None,
        module: &module,
        entry_point: Some("main"),
        compilation_options: Default::default(),
        cache: None,
    });
    let bytes = (w * h) as u64 * 16;
    let out = d.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: bytes,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let params = d.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: 16,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let p: Vec<u8> = [level, layer, w, h]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    gpu.queue.write_buffer(&params, 0, &p);
    let view = tex.create_view(&wgpu::TextureViewDescriptor {
        dimension: Some(wgpu::TextureViewDimension::D2Array),
        ..Default::default()
    });
    let bind = d.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[
            wgpu::BindGroupEntry {
                binding: 0,
                resource: wgpu::BindingResource::TextureView(&view),
            },
            wgpu::BindGroupEntry {
                binding: 1,
                resource: out.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 2,
                resource: params.as_entire_binding(),
            },
        ],
    });
    let mut enc = d.create_command_encoder(&Default::default());
    {
        let mut pass = enc.begin_compute_pass(&Default::default());
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind, &[]);
        pass.dispatch_workgroups(w.div_ceil(8), h.div_ceil(8), 1);
    }
    gpu.queue.submit([enc.finish()]);
    gpu.read_buffer(&out, 0, bytes)
        .unwrap()
        .chunks_exact(16)
        .map(|c| {
            std::array::from_fn(|i| f32::from_le_bytes(c[4 * i..4 * i + 4].try_into().unwrap()))
        })
        .collect()
}

#[test]
fn native_and_fallback_bc_textures_sample_the_same() {
    let Some(gpu) = gpu::for_test("native_and_fallback_bc_textures_sample_the_same") else {
        return;
    };
    let Some(dir) = ktx2_dir() else { return };
    if !gpu::has_features(&gpu, wgpu::Features::TEXTURE_COMPRESSION_BC, "BC") {
        return;
    }
    // The GPU's decoder (lavapipe: Mesa's) against ours, through the same
    // shader. BC1-BC3 interpolate colours (and BC3 alpha) by thirds and
    // sevenths whose rounding Direct3D leaves to the implementation: Mesa's
    // differ from the exact ones by up to 2 steps (bcdec and Pillow agree
    // within 1), a wrong mode or channel by far more. BC4, BC5 and BC7 within
    // one step of 8 bits (snorm: of 7), BC6H within 1e-3 relative.
    // Hardware decoders round their own way too: NVIDIA's (an H100)
    // interpolates BC1-BC3 colours in 5:6:5 before widening them to 8 bits
    // (rgbcx's `cBC1NVidia` mode), up to 5 steps from the exact result, and
    // BC4/BC5 up to 3.2 steps off; its BC6H and BC7 are exact.
    let hardware = gpu.info.device_type != wgpu::DeviceType::Cpu;
    let bc123 = if hardware { 6.01 } else { 2.01 } / 255.0;
    let bc45 = if hardware { 4.01 } else { 1.01 } / 255.0;
    let mut failures = Vec::new();
    for (name, tolerance) in [
        ("t2d/BC1.ktx2", bc123),
        ("t2d/BC2.ktx2", bc123),
        ("t2d/BC3.ktx2", bc123),
        ("t2d/BC4.ktx2", bc45),
        ("t2d/BC5.ktx2", bc45),
        ("t2d/BC7.ktx2", 1.01 / 255.0),
        ("cts/output_BC5_SNORM_BLOCK_2D.ktx2", 1.01 / 127.0),
        ("cts/pattern_02_bc2.ktx2", bc123),
        ("wgpu/bc7.ktx2", 1.01 / 255.0),
        ("bcdec-dds/kodim23_bc1.dds", bc123),
        ("t2d/BC6H.ktx2", 1e-3),
        ("bcdec-dds/lythwood_room_1k_bc6h_signed.dds", 1e-3),
    ] {
        let file = TextureFile::open(dir.join(name)).unwrap();
        let native = load(&gpu, &file, false);
        let fallback = load(&gpu, &file, true);
        assert!(native.native && !fallback.native, "{name}");
        let d = file.desc();
        let mut worst = 0.0f32;
        for level in [0, d.levels - 1] {
            for layer in [0, d.layers * d.faces - 1] {
                let a = sampled(&gpu, &native.texture, level, layer);
                let b = sampled(&gpu, &fallback.texture, level, layer);
                assert_eq!(a.len(), b.len());
                for (p, q) in a.iter().zip(&b) {
                    for c in 0..4 {
                        let diff = (p[c] - q[c]).abs();
                        let scale = if tolerance < 0.002 {
                            p[c].abs().max(1.0)
                        } else {
                            1.0
                        };
                        worst = worst.max(diff / scale);
                    }
                }
            }
        }
        eprintln!("{name}: GPU and CPU decodes differ by {worst} (tolerance {tolerance})");
        if worst > tolerance {
            failures.push(format!("{name}: differ by {worst}, more than {tolerance}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn every_valid_corpus_file_uploads_basis_universal_ones_transcoded() {
    let Some(gpu) =
        gpu::for_test("every_valid_corpus_file_uploads_basis_universal_ones_transcoded")
    else {
        return;
    };
    let Some(dir) = ktx2_dir() else { return };
    let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap();
    let (mut uploaded, mut basis) = (0, 0);
    for line in manifest.lines().skip(1) {
        let name = line.split('\t').next().unwrap();
        if name.starts_with("cts-invalid/") {
            continue;
        }
        let mut file = TextureFile::open(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        // Basis Universal files go up as what this adapter samples best.
        file.transcode_for(forgeflow::texture::transcode_support(gpu.device.features()));
        let vk = file.desc().vk_format;
        match try_load(&gpu, &file, false) {
            Ok(loaded) => {
                // Three-channel texels are expanded to four: check one image.
                if vk == 29 {
                    let rgb = file.image(ImageSelector::default()).unwrap();
                    let want: Vec<u8> = rgb
                        .chunks_exact(3)
                        .flat_map(|p| [p[0], p[1], p[2], 255])
                        .collect();
                    assert_eq!(
                        gpu.read_texture(&loaded.texture, 0, 0..1).unwrap(),
                        want,
                        "{name}"
                    );
                }
                // A Basis file's texture holds its transcode, level for level.
                if let TextureFile::Basis(b) = &file {
                    assert!(
                        loaded.native,
                        "{name}: its target is a format the adapter has"
                    );
                    for level in 0..loaded.texture.mip_level_count() {
                        let sel = ImageSelector {
                            level,
                            ..ImageSelector::default()
                        };
                        let want = b.transcode_image(sel, b.target().target).unwrap();
                        let got = gpu.read_texture(&loaded.texture, level, 0..1).unwrap();
                        assert!(got == want, "{name}: level {level}");
                    }
                    basis += 1;
                }
                uploaded += 1;
            }
            Err(e) => panic!("{name}: {e}"),
        }
    }
    // Basis Universal: the ETC1S, UASTC (two) and XUASTC files, and the
    // UASTC HDR 4x4 one that names ASTC 4x4 SFLOAT (transcoded to BC6H here).
    assert_eq!(
        (uploaded, basis),
        (45, 5),
        "uploaded, of them Basis Universal"
    );
}

/// Formats beyond the corpus's, in files made here: packed 16-bit formats
/// wgpu lacks are expanded to RGBA8 on the CPU, 16- and 32-bit integer and
/// normalized formats upload as they are (16-bit normalized ones where the
/// device has the feature), and formats nothing can hold are refused with
/// an error that names them.
#[test]
fn formats_without_a_corpus_file_upload_or_are_refused_by_name() {
    use forgeflow::texture::TextureUploadError;
    use forgeflow_test_support::ktx2::Ktx2Builder;
    use forgeflow_test_support::SplitMix64;
    let Some(gpu) = gpu::for_test("formats_without_a_corpus_file_upload_or_are_refused_by_name")
    else {
        return;
    };
    let mut rng = SplitMix64::new(12);
    let norm16 = gpu
        .device
        .features()
        .contains(wgpu::Features::TEXTURE_FORMAT_16BIT_NORM);
    for vk in [
        4u32,          // R5G6B5_UNORM_PACK16: expanded
        2,             // R4G4B4A4_UNORM_PACK16: expanded
        8,             // A1R5G5B5_UNORM_PACK16: expanded
        1,             // R4G4_UNORM_PACK8: expanded to RG8
        75,            // R16_SINT
        101,           // R32G32_UINT
        70,            // R16_UNORM: with the feature
        91,            // R16G16B16A16_UNORM: with the feature
        110,           // R64_UINT: refused
        130,           // D32_SFLOAT_S8_UINT: refused
        1_000_054_001, // PVRTC1_4BPP: refused
    ] {
        let info = forgeflow::jobs::texture::format::info(vk).unwrap();
        let mut b = Ktx2Builder::for_format(vk, 8, 8);
        let data: Vec<u8> = (0..b.image_bytes(0))
            .map(|_| rng.next_u64() as u8)
            .collect();
        b.levels = vec![data.clone()];
        let file = TextureFile::from_bytes(b.build()).expect("a valid file");
        let expected_native = forgeflow::texture::wgpu_format(vk)
            .is_some_and(|f| gpu.device.features().contains(f.required_features()));
        let expanded = decode(vk, &data, 8, 8).ok();
        match (try_load(&gpu, &file, false), expected_native, expanded) {
            (Ok(t), true, _) => {
                assert!(t.native, "vkFormat {vk}");
                let got = gpu.read_texture(&t.texture, 0, 0..1).unwrap();
                assert_eq!(got, data, "vkFormat {vk} reads back as stored");
            }
            (Ok(t), false, Some((_, px))) => {
                assert!(!t.native, "vkFormat {vk}");
                let got = gpu.read_texture(&t.texture, 0, 0..1).unwrap();
                assert_eq!(got, px, "vkFormat {vk} reads back as expanded on the CPU");
            }
            (Err(TextureUploadError::Unsupported(v)), false, None) => {
                assert_eq!(v, vk);
                let msg = TextureUploadError::Unsupported(v).to_string();
                assert!(msg.contains(info.name), "{msg} names {}", info.name);
            }
            (other, native, expanded) => panic!(
                "vkFormat {vk}: {other:?} (native expected: {native}, CPU path: {})",
                expanded.is_some()
            ),
        }
        if matches!(vk, 70 | 91) {
            eprintln!("vkFormat {vk}: 16-bit normalized feature {norm16}");
        }
    }
}
