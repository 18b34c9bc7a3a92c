//! The texture-to-wgpu descriptor step over any file description and any
//! device: `TexturePlan::new` is an error or a descriptor within the
//! device's limits, of whole blocks, with levels its size has. Nothing may
//! panic or overflow (the fuzz profile checks overflows).
#![no_main]

use forgeflow::jobs::texture::format;
use forgeflow::jobs::texture::source::TextureDesc;
use forgeflow::jobs::texture::Container;
use forgeflow::texture::{TexturePlan, UploadOptions};

const FEATURES: [wgpu::Features; 7] = [
    wgpu::Features::TEXTURE_COMPRESSION_BC,
    wgpu::Features::TEXTURE_COMPRESSION_BC_SLICED_3D,
    wgpu::Features::TEXTURE_COMPRESSION_ETC2,
    wgpu::Features::TEXTURE_COMPRESSION_ASTC,
    wgpu::Features::TEXTURE_COMPRESSION_ASTC_HDR,
    wgpu::Features::TEXTURE_COMPRESSION_ASTC_SLICED_3D,
    wgpu::Features::TEXTURE_FORMAT_16BIT_NORM,
];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if data.len() < 40 {
        return;
    }
    let u = |i: usize| u32::from_le_bytes(data[4 * i..4 * i + 4].try_into().unwrap());
    let vk = u(0);
    let desc = TextureDesc {
        container: Container::Ktx2,
        vk_format: vk,
        format: format::info(vk),
        width: u(1),
        height: u(2),
        depth: u(3),
        layers: u(4),
        faces: u(5),
        levels: u(6),
        supercompressed: false,
    };
    let base = wgpu::Limits::default();
    let limits = wgpu::Limits {
        max_texture_dimension_2d: u(7) % (1 << 17),
        max_texture_dimension_3d: u(8) % (1 << 13),
        max_texture_array_layers: u(9) % (1 << 13),
        ..base
    };
    let mask = data.get(40).copied().unwrap_or(0);
    let features = FEATURES
        .iter()
        .enumerate()
        .filter(|(i, _)| mask >> i & 1 == 1)
        .fold(wgpu::Features::empty(), |a, (_, f)| a | *f);
    let options = UploadOptions {
        force_fallback: data.get(41).is_some_and(|b| b & 1 == 1),
        ..UploadOptions::default()
    };
    let Ok(plan) = TexturePlan::new(&desc, features, &limits, options) else {
        return;
    };
    let d = plan.descriptor(wgpu::TextureUsages::empty());
    let s = d.size;
    let side = if d.dimension == wgpu::TextureDimension::D3 {
        limits.max_texture_dimension_3d
    } else {
        limits.max_texture_dimension_2d
    };
    assert!(s.width <= side && s.height <= side);
    assert!(d.mip_level_count >= 1 && d.mip_level_count <= s.max_mips(d.dimension));
    let (bw, bh) = d.format.block_dimensions();
    assert!(s.width % bw == 0 && s.height % bh == 0);
});
