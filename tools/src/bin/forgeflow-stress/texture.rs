//! `forgeflow-stress texture`: CPU decode rates, the job graph's speedup on a
//! batch of decodes, and a 4096x4096 BC7 mip chain loaded to the GPU natively
//! and through the CPU fallback, with readback checks and peak memory.
//!
//! Inputs: the 512x512 images of the corpus (`t2d/*.ktx2`, real blocks; see
//! ARCHITECTURE.md) when it is present, deterministic random blocks otherwise
//! (`inputs_from_corpus` says which). The 4096x4096 chain is a DDS file
//! written to the temporary directory, its levels tiled from the BC7 image,
//! and read back through a memory mapping like any texture file.

use forgeflow_test_support::gpu::VerifyRead as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use forgeflow::graph::{Scheduler, SchedulerConfig};
use forgeflow::jobs::texture::decode::{decode, decode_rows, decoded_format};
use forgeflow::jobs::texture::file::{ImageSelector, Ktx2File};
use forgeflow::jobs::texture::format;
use forgeflow::jobs::texture::source::{TextureFile, TextureSource};
use forgeflow::staging::{StagingConfig, StagingRing};
use forgeflow::texture::{load_texture_blocking, UploadOptions};
use forgeflow_test_support::corpus::ktx2_dir;
use forgeflow_test_support::SplitMix64;
use forgeflow_tools::decode_peers::{astc_decode_image, bcdec_image, texture2ddecoder_image};

use crate::cli::Options;
use crate::report::{Integrity, Progress, ScenarioReport};

/// (metric name, vkFormat, corpus file).
const FORMATS: [(&str, u32, &str); 13] = [
    ("bc1", 133, "t2d/BC1.ktx2"),
    ("bc2", 135, "t2d/BC2.ktx2"),
    ("bc3", 137, "t2d/BC3.ktx2"),
    ("bc4", 139, "t2d/BC4.ktx2"),
    ("bc5", 141, "t2d/BC5.ktx2"),
    ("bc6h", 143, "t2d/BC6H.ktx2"),
    ("bc7", 145, "t2d/BC7.ktx2"),
    ("etc2_rgba", 151, "t2d/ETC2_RGBA.ktx2"),
    ("etc2_rgb_a1", 149, "t2d/ETC2_RGB_A1.ktx2"),
    ("eac_r11", 153, "t2d/EAC_R11.ktx2"),
    ("eac_rg11", 155, "t2d/EAC_RG11.ktx2"),
    ("astc_4x4", 157, "t2d/ASTC_4x4.ktx2"),
    ("astc_12x12", 183, "t2d/ASTC_12x12.ktx2"),
];

/// Side of the decode-rate images.
const SIDE: u32 = 512;
/// Side of the mip chain loaded to the GPU.
const CHAIN_SIDE: u32 = 4096;

/// The blocks of a `SIDE`x`SIDE` image of `vk`: the corpus file's level 0,
/// or random blocks.
fn blocks(vk: u32, corpus: Option<&PathBuf>, seed: u64) -> Result<Vec<u8>, String> {
    if let Some(path) = corpus {
        let f = Ktx2File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let l = f.layout();
        if l.vk_format == vk && l.width == SIDE && l.height == SIDE {
            return f
                .image(ImageSelector::default())
                .map(|c| c.into_owned())
                .map_err(|e| e.to_string());
        }
        return Err(format!(
            "{}: not a {SIDE}x{SIDE} vkFormat {vk}",
            path.display()
        ));
    }
    let info = format::info(vk).ok_or("unknown format")?;
    let n = SIDE.div_ceil(info.block[0]) as usize
        * SIDE.div_ceil(info.block[1]) as usize
        * info.bytes as usize;
    let mut rng = SplitMix64::new(seed ^ vk as u64);
    Ok((0..n).map(|_| rng.next_u64() as u8).collect())
}

/// Megapixels per second of `f`, which decodes one `SIDE`x`SIDE` image, run
/// until `budget` has passed (at least three times); the best of three runs.
fn rate(budget: Duration, mut f: impl FnMut()) -> f64 {
    rates(budget, &mut [&mut f])[0]
}

/// [`rate`] of several decoders of the same blocks, measured in turns: each
/// of three rounds runs every decoder for a third of `budget`, and each keeps
/// its best round. Taking turns, no decoder gains from going first or last
/// (a clock still ramping up, caches warmed by the one before).
fn rates(budget: Duration, decoders: &mut [&mut dyn FnMut()]) -> Vec<f64> {
    let mut best = vec![0.0f64; decoders.len()];
    for _ in 0..3 {
        for (f, best) in decoders.iter_mut().zip(&mut best) {
            let started = Instant::now();
            let mut n = 0u64;
            while n < 3 || started.elapsed() < budget / 3 {
                f();
                n += 1;
            }
            let mpix = n as f64 * (SIDE * SIDE) as f64 / 1e6;
            *best = best.max(mpix / started.elapsed().as_secs_f64());
        }
    }
    best
}

/// A DX10 DDS file of a `CHAIN_SIDE` BC7 mip chain, each level tiled from `tile`
/// (the blocks of a `SIDE`x`SIDE` BC7 image). Returns (path, file bytes).
fn write_chain(tile: &[u8]) -> Result<(PathBuf, u64), String> {
    let levels = 32 - CHAIN_SIDE.leading_zeros();
    let mut b = vec![0u8; 148];
    b[..4].copy_from_slice(b"DDS ");
    let put = |b: &mut Vec<u8>, at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    put(&mut b, 4, 124);
    put(&mut b, 8, 0x1007 | 0x2_0000);
    put(&mut b, 12, CHAIN_SIDE);
    put(&mut b, 16, CHAIN_SIDE);
    put(&mut b, 28, levels);
    put(&mut b, 76, 32);
    put(&mut b, 80, 0x4);
    b[84..88].copy_from_slice(b"DX10");
    put(&mut b, 128, 98); // BC7_UNORM
    put(&mut b, 132, 3); // 2D
    put(&mut b, 140, 1); // array size
    let tile_blocks = (SIDE / 4) as usize;
    for level in 0..levels {
        let blocks = ((CHAIN_SIDE >> level).max(1)).div_ceil(4) as usize;
        for y in 0..blocks {
            for x in 0..blocks {
                let at = ((y % tile_blocks) * tile_blocks + x % tile_blocks) * 16;
                b.extend_from_slice(&tile[at..at + 16]);
            }
        }
    }
    let path =
        std::env::temp_dir().join(format!("forgeflow-stress-bc7-{}.dds", std::process::id()));
    std::fs::write(&path, &b).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((path, b.len() as u64))
}

/// Resident set and its peak since the last reset, in bytes (Linux).
pub(crate) fn rss() -> Option<(u64, u64)> {
    status_bytes(["VmRSS:", "VmHWM:"])
}

/// The resident set's anonymous and file-backed parts, in bytes (Linux):
/// what the process allocated, and the pages of files it maps (shared
/// libraries, mapped textures), which the kernel can drop and re-read.
pub(crate) fn rss_parts() -> Option<(u64, u64)> {
    status_bytes(["RssAnon:", "RssFile:"])
}

/// Two fields of `/proc/self/status` (given in kB), in bytes.
fn status_bytes(names: [&str; 2]) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name| crate::smaps::kb_field(&status, name);
    Some((field(names[0])?, field(names[1])?))
}

/// Resets the peak resident set to the current one (Linux 4.0+).
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

struct Loaded {
    ms: f64,
    native: bool,
    gpu_bytes: u64,
    /// Peak heap bytes above the start of the load (this process's allocator).
    peak_heap: u64,
    /// Peak resident set above the start of the load, if measurable.
    peak_rss: Option<u64>,
    texture: wgpu::Texture,
}

/// Opens the chain file (mapping) and loads it through the staging ring and the
/// job graph, waiting for the GPU: the time from open to completion.
fn load(
    gpu: &forgeflow::gpu::Gpu,
    ring: &mut StagingRing,
    sched: &mut Scheduler,
    path: &PathBuf,
    force_fallback: bool,
) -> Result<Loaded, String> {
    let peak_reset = reset_peak_rss();
    let rss0 = rss();
    crate::alloc::reset_peak();
    let started = Instant::now();
    let file = TextureFile::open(path).map_err(|e| e.to_string())?;
    let options = UploadOptions {
        force_fallback,
        usage: wgpu::TextureUsages::COPY_SRC,
        ..UploadOptions::default()
    };
    let loaded = load_texture_blocking(&gpu.device, &gpu.queue, &file, ring, sched, options)
        .map_err(|e| e.to_string())?;
    let ms = started.elapsed().as_secs_f64() * 1e3;
    let peak_rss = match (peak_reset, rss0, rss()) {
        (true, Some((before, _)), Some((_, peak))) => Some(peak.saturating_sub(before)),
        _ => None,
    };
    Ok(Loaded {
        ms,
        native: loaded.native,
        gpu_bytes: loaded.gpu_bytes,
        peak_heap: crate::alloc::peak_above_reset(),
        peak_rss,
        texture: loaded.texture,
    })
}

pub fn run(opts: &Options, progress: &mut Progress) -> Result<ScenarioReport, String> {
    let gpu = forgeflow::gpu::open().map_err(|e| e.to_string())?;
    let mut report = ScenarioReport::on_gpu(&gpu);
    let mut integrity = Integrity::default();
    let corpus = ktx2_dir();
    report.metric("inputs_from_corpus", corpus.is_some() as u8 as f64);
    if corpus.is_none() {
        report.notes.push(
            "no corpus: decode rates are of random blocks (mostly illegal ASTC and BC7 mode 0 \
             blocks), not comparable with the README's figures"
                .into(),
        );
    }
    // 0.4 s per measured rate by default; `--frames` scales it (CI: less).
    let budget = Duration::from_secs_f64((0.4 * opts.frames as f64 / 2000.0).clamp(0.02, 4.0));

    // 1. Decode rates, one thread, real blocks.
    let mut inputs = Vec::new();
    for (i, &(name, vk, file)) in FORMATS.iter().enumerate() {
        progress.update("texture: decode rates", i as f64 / FORMATS.len() as f64);
        let path = corpus.as_ref().map(|d| d.join(file));
        let data = blocks(vk, path.as_ref(), opts.seed)?;
        // Into an image reused from call to call, as the peers below write
        // theirs and as the upload path decodes into staging memory.
        let bpp = decoded_format(vk).map_or(4, |d| d.bytes_per_pixel());
        let mut image = vec![0u8; (SIDE * SIDE) as usize * bpp];
        let block_rows = SIDE.div_ceil(format::info(vk).map_or(4, |f| f.block[1]));
        let mut ours = || {
            decode_rows(vk, &data, SIDE, SIDE, 0..block_rows, &mut image).expect("decodes");
            std::hint::black_box(&image);
        };
        if !opts.compare {
            report.metric(&format!("decode_mpix_per_s.{name}"), rate(budget, ours));
        } else {
            // The peers that have the format, each writing its own image.
            let mut out = vec![0u32; (SIDE * SIDE) as usize];
            // texture2ddecoder panics on corrupt ASTC blocks: only real ones.
            let astc_random = corpus.is_none() && matches!(vk, 157 | 183);
            let has_t2d = !astc_random
                && texture2ddecoder_image(vk, SIDE as usize, &data, &mut out).is_some();
            let mut astc_rgba8 = vec![0u8; (SIDE * SIDE * 4) as usize];
            let has_astc = astc_decode_image(vk, SIDE as usize, &data, &mut astc_rgba8);
            let mut bc_rgba8 = vec![0u8; (SIDE * SIDE * 4) as usize];
            let mut half = vec![0u16; (SIDE * SIDE * 3) as usize];
            let has_bcdec = bcdec_image(vk, SIDE as usize, &data, &mut bc_rgba8, &mut half);
            let mut t2d = || {
                let _ = std::hint::black_box(texture2ddecoder_image(
                    vk,
                    SIDE as usize,
                    &data,
                    &mut out,
                ));
            };
            let mut astc = || {
                std::hint::black_box(astc_decode_image(vk, SIDE as usize, &data, &mut astc_rgba8));
            };
            let mut bcdec = || {
                std::hint::black_box(bcdec_image(
                    vk,
                    SIDE as usize,
                    &data,
                    &mut bc_rgba8,
                    &mut half,
                ));
            };
            let mut names = vec!["forgeflow"];
            let mut decoders: Vec<&mut dyn FnMut()> = vec![&mut ours];
            for (has, peer, f) in [
                (has_t2d, "texture2ddecoder", &mut t2d as &mut dyn FnMut()),
                (has_astc, "astc-decode", &mut astc),
                (has_bcdec, "bcdec_rs", &mut bcdec),
            ] {
                if has {
                    names.push(peer);
                    decoders.push(f);
                }
            }
            let measured = rates(budget, &mut decoders);
            let metric = format!("decode_mpix_per_s.{name}");
            report.metric(&metric, measured[0]);
            for (peer, r) in names.iter().zip(&measured).skip(1) {
                report.compare(peer, &metric, *r);
            }
            // Against the library forgeflow wraps for the format (for
            // BC1-BC6H, ETC2, EAC and ASTC, the one it wrapped before
            // decoding them itself: bcdec_rs, texture2ddecoder, astc-decode).
            let wrapped = match name {
                n if n.starts_with("bc") => "bcdec_rs",
                n if n.starts_with("astc") => "astc-decode",
                _ => "texture2ddecoder",
            };
            if let Some(i) = names.iter().position(|&n| n == wrapped) {
                let ratio = measured[0] / measured[i];
                report.ratio(&format!("decode_vs_wrapped.{name}"), ratio);
                report.target(
                    &format!("decode_vs_wrapped.{name}"),
                    format!(">= 1.0 ({wrapped}, same blocks, one thread)"),
                    ratio >= 1.0,
                );
            }
        }
        inputs.push((name, vk, data));
    }
    // 1b. Basis Universal transcode rates, one thread, level 0 of the
    // corpus's Basis files, to each target a device may ask for.
    if let Some(dir) = &corpus {
        use forgeflow::jobs::texture::basis::TargetFormat as T;
        for (source, file) in [
            ("etc1s", "bevy-pr18411/ktx2-etc1s-srgb.ktx2"),
            ("uastc", "cts/cimg5293_uastc_zstd.ktx2"),
            ("xuastc", "ktxsw/base_xuastc_zstd.ktx2"),
            ("uastc_hdr", "bevy-pr18411/ktx2-astc-4x4-hdr.ktx2"),
        ] {
            progress.update("texture: transcode rates", 0.0);
            let Ok(TextureFile::Basis(b)) = TextureFile::open(dir.join(file)) else {
                integrity.check(false);
                continue;
            };
            let l = b.file().layout();
            let mpix = f64::from(l.width) * f64::from(l.height) / 1e6;
            for (target_name, target) in [
                ("bc7", T::Bc7Rgba),
                ("astc", T::Astc4x4Rgba),
                ("etc2", T::Etc2Rgba),
                ("rgba8", T::Rgba32),
                ("bc6h", T::Bc6h),
                ("astc_hdr", T::AstcHdr4x4Rgba),
                ("rgba16f", T::RgbaHalf),
            ] {
                let sel = ImageSelector::default();
                if b.transcode_image(sel, target).is_err() {
                    continue; // a target this source has not (XUASTC 5x4 to ASTC 4x4)
                }
                let per_image = rate(budget, || {
                    std::hint::black_box(b.transcode_image(sel, target).ok());
                });
                // `rate` counts SIDE x SIDE images: scale to this image's size.
                let side_mpix = f64::from(SIDE * SIDE) / 1e6;
                report.metric(
                    &format!("transcode_mpix_per_s.{source}_{target_name}"),
                    per_image / side_mpix * mpix,
                );
            }
        }
    }
    let rate_of = |r: &ScenarioReport, name: &str| {
        r.metrics
            .get("decode_mpix_per_s")
            .and_then(|m| m.get(name))
            .and_then(|v| v.as_f64())
            .unwrap_or(0.0)
    };
    for (name, min) in [
        ("bc1", 500.0),
        ("bc7", 100.0),
        ("bc6h", 70.0),
        ("etc2_rgba", 190.0),
        ("astc_4x4", 85.0),
    ] {
        let v = rate_of(&report, name);
        report.target(
            &format!("decode_mpix_per_s.{name}"),
            format!(">= {min} (one thread)"),
            v >= min,
        );
    }

    // 2. The job graph's speedup: every input decoded 8 times, one job per
    // image, on all workers against one.
    progress.update("texture: parallel decode", 0.0);
    let batch = |threads: usize| -> Result<f64, String> {
        let mut sched = Scheduler::new(SchedulerConfig {
            threads: Some(threads),
            auto_signal_fences: true,
            // The speedup of the workers over one: no frame inline.
            inline_below: std::time::Duration::ZERO,
            ..Default::default()
        })
        .map_err(|e| e.to_string())?;
        let mut outs: Vec<Vec<u8>> = inputs
            .iter()
            .flat_map(|(_, vk, _)| {
                let bpp = decoded_format(*vk).map_or(4, |d| d.bytes_per_pixel());
                (0..8).map(move |_| vec![0u8; (SIDE * SIDE) as usize * bpp])
            })
            .collect();
        let mut best = f64::INFINITY;
        for _ in 0..3 {
            let started = Instant::now();
            let mut frame = sched.begin_frame().map_err(|e| e.to_string())?;
            for (i, out) in outs.iter_mut().enumerate() {
                let (_, vk, data) = &inputs[i / 8];
                let (vk, data) = (*vk, data.as_slice());
                let bh = format::info(vk).map_or(4, |f| f.block[1]);
                frame
                    .add("texture decode", move |_| {
                        decode_rows(vk, data, SIDE, SIDE, 0..SIDE.div_ceil(bh), out)?;
                        Ok(())
                    })
                    .map_err(|e| e.to_string())?;
            }
            frame.run().map_err(|e| e.to_string())?;
            best = best.min(started.elapsed().as_secs_f64());
        }
        Ok(best)
    };
    let one = batch(1)?;
    let all = batch(opts.threads)?;
    report.metric("parallel_speedup", one / all);
    report.metric("parallel_threads", opts.threads as f64);
    report.target(
        "parallel_speedup",
        format!(">= 1.8 with 2 threads (here {})", opts.threads),
        one / all >= 1.8_f64.min(opts.threads as f64 * 0.9),
    );

    // 3. A 4096x4096 BC7 chain to the GPU, natively and through the fallback.
    progress.update("texture: 4096x4096 BC7 chain to the GPU", 0.0);
    let bc7 = &inputs
        .iter()
        .find(|(n, _, _)| *n == "bc7")
        .expect("listed")
        .2;
    let (path, file_bytes) = write_chain(bc7)?;
    let result = (|| -> Result<(), String> {
        let mut ring = StagingRing::new(
            &gpu.device,
            StagingConfig {
                buffer_size: 128 << 20,
                ..Default::default()
            },
        )
        .map_err(|e| e.to_string())?;
        let mut sched = Scheduler::new(SchedulerConfig {
            threads: Some(opts.threads),
            auto_signal_fences: true,
            ..Default::default()
        })
        .map_err(|e| e.to_string())?;
        let has_bc = gpu
            .device
            .features()
            .contains(wgpu::Features::TEXTURE_COMPRESSION_BC);
        // Warm-up: the ring's buffers and the workers exist before measuring.
        load(&gpu, &mut ring, &mut sched, &path, true)?;
        let native = load(&gpu, &mut ring, &mut sched, &path, false)?;
        let fallback = load(&gpu, &mut ring, &mut sched, &path, true)?;
        integrity.check(native.native == has_bc && !fallback.native);
        if native.native {
            report.metric("load_to_gpu_ms.native", native.ms);
            report.metric(
                "gpu_bytes_native_over_rgba8",
                native.gpu_bytes as f64 / fallback.gpu_bytes as f64,
            );
        } else {
            report
                .notes
                .push("the adapter has no BC: no native load".into());
        }
        report.metric("load_to_gpu_ms.fallback", fallback.ms);
        report.metric("file_bytes", file_bytes as f64);
        report.metric("peak_heap_bytes.native", native.peak_heap as f64);
        report.metric("peak_heap_bytes.fallback", fallback.peak_heap as f64);
        if let Some(p) = fallback.peak_rss {
            report.metric("peak_rss_over_file_bytes", p as f64 / file_bytes as f64);
        }
        // The bound: the largest level decoded plus its compressed
        // bytes, beyond the mapping (heap: the mapping and the GPU's memory,
        // host memory on a software adapter, are not the loader's).
        let bound = (CHAIN_SIDE * CHAIN_SIDE) as u64 * 4 + (CHAIN_SIDE * CHAIN_SIDE) as u64;
        report.target(
            "peak_heap_bytes.fallback",
            format!("<= {bound} (level 0 decoded + its blocks)"),
            fallback.peak_heap <= bound,
        );
        // Readback: native levels equal the file's blocks, fallback levels the
        // CPU decode of them (a few levels: the base one is 64 MiB of RGBA8).
        let file = TextureFile::open(&path).map_err(|e| e.to_string())?;
        for level in [0, 3, 12] {
            let sel = ImageSelector {
                level,
                ..Default::default()
            };
            let blocks = file.image(sel).map_err(|e| e.to_string())?;
            if native.native {
                let got = gpu
                    .read_texture(&native.texture, level, 0..1)
                    .map_err(|e| e.to_string())?;
                integrity.check(got == *blocks);
            }
            let (w, h) = file.desc().level_size(level);
            let (_, want) = decode(145, &blocks, w, h).map_err(|e| e.to_string())?;
            let got = gpu
                .read_texture(&fallback.texture, level, 0..1)
                .map_err(|e| e.to_string())?;
            integrity.check(got == want);
        }
        Ok(())
    })();
    let _ = std::fs::remove_file(&path);
    result?;
    report.frames = 1;
    report.integrity.add(integrity);
    Ok(report)
}
