//! The texture-to-wgpu descriptor step, without a GPU: over random file
//! descriptions (every known format, sizes up to 2^20, up to 2^16 layers,
//! cubes, 3D, levels beyond what the size has) on devices of random limits
//! and features, a plan is an error or a descriptor wgpu's own rules accept:
//! within the limits, whole blocks for a compressed format, levels the size
//! has, and never a panic or an overflow.

use forgeflow::jobs::texture::format;
use forgeflow::jobs::texture::source::TextureDesc;
use forgeflow::jobs::texture::Container;
use forgeflow::texture::{TexturePlan, TextureUploadError, UploadOptions};
use forgeflow_test_support::SplitMix64;

fn random_desc(rng: &mut SplitMix64) -> TextureDesc {
    // A known format most of the time, any number otherwise.
    let vk = match rng.below(10) {
        0 => rng.next_u64() as u32,
        1 => 0,
        _ => loop {
            let v = match rng.below(3) {
                0 => rng.below(185) as u32,
                1 => 1_000_066_000 + rng.below(14) as u32,
                _ => 1_000_288_000 + rng.below(30) as u32,
            };
            if format::info(v).is_some() {
                break v;
            }
        },
    };
    // 1 to 2^bits, log-uniform.
    let upto = |rng: &mut SplitMix64, bits: u64| {
        let range = 1u64 << rng.below(bits);
        1 + rng.below(range) as u32
    };
    let dim = |rng: &mut SplitMix64| upto(rng, 21);
    let cube = rng.below(8) == 0;
    let is_3d = !cube && rng.below(6) == 0;
    let width = dim(rng);
    TextureDesc {
        container: Container::Ktx2,
        vk_format: vk,
        format: format::info(vk),
        width,
        height: if cube { width } else { dim(rng) },
        depth: if is_3d { 1 + upto(rng, 12) } else { 1 },
        layers: upto(rng, 17),
        faces: if cube { 6 } else { 1 },
        levels: rng.below(40) as u32,
        supercompressed: false,
    }
}

fn random_limits(rng: &mut SplitMix64) -> (wgpu::Features, wgpu::Limits) {
    let base = match rng.below(3) {
        0 => wgpu::Limits::downlevel_webgl2_defaults(),
        1 => wgpu::Limits::downlevel_defaults(),
        _ => wgpu::Limits::default(),
    };
    let limits = wgpu::Limits {
        max_texture_dimension_2d: base.max_texture_dimension_2d << rng.below(3),
        max_texture_dimension_3d: base.max_texture_dimension_3d << rng.below(3),
        max_texture_array_layers: base.max_texture_array_layers << rng.below(3),
        ..base
    };
    let mut features = wgpu::Features::empty();
    for f in [
        wgpu::Features::TEXTURE_COMPRESSION_BC,
        wgpu::Features::TEXTURE_COMPRESSION_BC_SLICED_3D,
        wgpu::Features::TEXTURE_COMPRESSION_ETC2,
        wgpu::Features::TEXTURE_COMPRESSION_ASTC,
        wgpu::Features::TEXTURE_COMPRESSION_ASTC_HDR,
        wgpu::Features::TEXTURE_COMPRESSION_ASTC_SLICED_3D,
        wgpu::Features::TEXTURE_FORMAT_16BIT_NORM,
    ] {
        if rng.below(2) == 0 {
            features |= f;
        }
    }
    (features, limits)
}

#[test]
fn every_plan_is_an_error_or_a_descriptor_within_the_devices_rules() {
    let mut rng = SplitMix64::new(2026);
    let (mut planned, mut refused_by_limit, mut started_lower) = (0, 0, 0);
    for _ in 0..200_000 {
        let desc = random_desc(&mut rng);
        let (features, limits) = random_limits(&mut rng);
        let options = UploadOptions {
            force_fallback: rng.below(4) == 0,
            ..UploadOptions::default()
        };
        let plan = match TexturePlan::new(&desc, features, &limits, options) {
            Ok(plan) => plan,
            Err(TextureUploadError::Limit { value, limit, .. }) => {
                assert!(value > limit, "{desc:?}: {value} is within {limit}");
                refused_by_limit += 1;
                continue;
            }
            Err(_) => continue,
        };
        planned += 1;
        started_lower += (plan.first_level > 0) as u32;
        let d = plan.descriptor(wgpu::TextureUsages::empty());
        let s = d.size;
        let three_d = d.dimension == wgpu::TextureDimension::D3;
        let side = if three_d {
            limits.max_texture_dimension_3d
        } else {
            limits.max_texture_dimension_2d
        };
        assert!(s.width <= side && s.height <= side, "{desc:?} -> {plan:?}");
        if three_d {
            assert!(s.depth_or_array_layers <= side, "{desc:?} -> {plan:?}");
        } else {
            assert!(s.depth_or_array_layers <= limits.max_texture_array_layers);
        }
        assert!(d.mip_level_count >= 1);
        assert!(
            d.mip_level_count <= s.max_mips(d.dimension),
            "{desc:?} -> {plan:?}"
        );
        assert!(d.format.required_features() - features == wgpu::Features::empty());
        let (bw, bh) = d.format.block_dimensions();
        assert!(
            s.width % bw == 0 && s.height % bh == 0,
            "{desc:?} -> {plan:?}: a compressed texture of partial blocks"
        );
        assert!(plan.gpu_bytes > 0);
        assert_eq!(plan.first_level + plan.mip_level_count, desc.levels.max(1));
    }
    // The sample reaches every outcome.
    assert!(planned > 10_000 && refused_by_limit > 1_000 && started_lower > 100);
    eprintln!(
        "{planned} planned ({started_lower} from a lower level), {refused_by_limit} over a limit"
    );
}
