//! A small renderer that embeds forgeflow: the reference for embedders.
//!
//! It streams a 16384x16384 procedural terrain as a virtual texture (the
//! page faults run as jobs; the feedback comes from its own pass) and loads a
//! KTX2 texture through the runtime, then draws a low flight over the terrain
//! with the texture in a corner, headless, writing a few frames as PNGs.
//!
//! ```text
//! cargo run --release --example terrain -- [TEXTURE.ktx2] [--frames N] [--out DIR]
//! ```
//!
//! Without a texture argument it takes `t2d/BC7.ktx2` from the shared corpus
//! when there is one, else it draws the terrain alone.

use forgeflow_test_support::gpu::VerifyRead as _;
use std::path::PathBuf;

use forgeflow::jobs::vt::VtLayout;

use forgeflow::runtime::{Runtime, RuntimeConfig, TextureHandle, TextureStatus};
use forgeflow::vt::VtConfig;
use forgeflow_tools::flight::Flight;
use forgeflow_tools::Terrain;

const SIZE: (u32, u32) = (640, 360);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (mut picture, mut frames, mut out) = (None, 240u32, std::env::temp_dir());
    while let Some(a) = args.next() {
        match a.as_str() {
            "--frames" => frames = args.next().ok_or("--frames needs a number")?.parse()?,
            "--out" => out = PathBuf::from(args.next().ok_or("--out needs a folder")?),
            path => picture = Some(PathBuf::from(path)),
        }
    }
    let picture = picture.or_else(|| {
        let corpus = std::env::var_os("FORGEFLOW_CORPUS")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus"));
        Some(corpus.join("ktx2/t2d/BC7.ktx2")).filter(|p| p.is_file())
    });
    std::fs::create_dir_all(&out)?;

    // 1. The embedder's device and queue (forgeflow's helper opens the
    //    default adapter with the compression features it has).
    let gpu = forgeflow::gpu::open()?;
    let (device, queue) = (&gpu.device, &gpu.queue);

    // 2. The runtime, and what it streams.
    let mut rt = Runtime::new(device, queue, RuntimeConfig::default())?;
    let layout = VtLayout::new(16384, 16384, 128, 4)?;
    let terrain = rt.add_virtual_texture(
        Terrain::new(layout, 1),
        VtConfig {
            budget_bytes: 64 << 20,
            ..VtConfig::default()
        },
        SIZE,
    )?;
    let texture: Option<TextureHandle> = picture.as_ref().map(|p| rt.load_texture_path(p));

    // 3. The embedder's own scene: its bind group 0, the virtual texture's at 1.
    let vt_layout = rt.virtual_texture::<Terrain>(terrain)?.bind_group_layout();
    let mut scene = Flight::new(device, vt_layout, wgpu::TextureFormat::Rgba8Unorm);
    let target = forgeflow_tools::flight::target(device, "target", SIZE);
    let target_view = target.create_view(&Default::default()); // once, not per frame

    // 4. The frame loop.
    for f in 0..frames {
        rt.begin_frame()?;
        if let Some(h) = texture.filter(|_| !scene.shows_picture()) {
            match rt.texture(h)? {
                TextureStatus::Ready(t) => scene.show(device, t.texture),
                TextureStatus::Failed(e) => return Err(e.clone().into()),
                _ => {}
            }
        }
        let mut encoder = device.create_command_encoder(&Default::default());
        let report = rt.end_frame(&mut encoder)?; // uploads first, into our encoder
        if let Some(failure) = report.failure {
            eprintln!("frame {f}: {failure}");
        }
        let vt_group = rt.vt_bind_group(terrain)?;
        scene.draw(queue, &mut encoder, &target_view, vt_group, (f, SIZE));
        queue.submit([encoder.finish()]); // the frame's fence follows this submission
        if f % 60 == 59 || f + 1 == frames {
            let pixels = gpu.read_texture(&target, 0, 0..1)?;
            let path = out.join(format!("terrain-{f:04}.png"));
            let mut png = png::Encoder::new(std::fs::File::create(&path)?, SIZE.0, SIZE.1);
            png.set_color(png::ColorType::Rgba);
            png.write_header()?.write_image_data(&pixels)?;
            let vt = rt.vt_stats(terrain)?;
            println!(
                "{}: {} tiles resident, {:.1}% hits, texture {}",
                path.display(),
                vt.resident,
                100.0 * vt.hits as f64 / vt.requests.max(1) as f64,
                if scene.shows_picture() {
                    "shown"
                } else {
                    "loading"
                }
            );
        }
    }
    Ok(())
}
