//! Criterion bench of the CPU block decoders, one thread, 1024x1024 images of
//! deterministic random blocks: forgeflow's `decode_rows` into a reused image
//! (as the upload path decodes into staging memory) against bcdec_rs for the
//! BC formats, astc-decode for ASTC and texture2ddecoder for all it has but
//! ASTC, on the same blocks (the peers of `forgeflow_tools::decode_peers`).
//! Random ASTC blocks are mostly illegal (the error colour): the stress
//! tool's `texture --compare` measures the corpus's real ones.
//! Throughput in pixels.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use forgeflow::jobs::texture::decode::{decode_rows, decoded_format};
use forgeflow::jobs::texture::format;
use forgeflow_test_support::SplitMix64;
use forgeflow_tools::decode_peers::{astc_decode_image, bcdec_image, texture2ddecoder_image};

const SIDE: u32 = 1024;

fn blocks(vk: u32, seed: u64) -> Vec<u8> {
    let info = format::info(vk).expect("known format");
    let n = SIDE.div_ceil(info.block[0]) as usize
        * SIDE.div_ceil(info.block[1]) as usize
        * info.bytes as usize;
    let mut rng = SplitMix64::new(seed);
    (0..n).map(|_| rng.next_u64() as u8).collect()
}

fn decoders(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode_1024x1024");
    g.throughput(Throughput::Elements((SIDE * SIDE) as u64));
    g.sample_size(10);
    let formats: [(&str, u32); 13] = [
        ("bc1", 133),
        ("bc2", 135),
        ("bc3", 137),
        ("bc4", 139),
        ("bc5", 141),
        ("bc6h", 143),
        ("bc7", 145),
        ("etc2_rgba", 151),
        ("etc2_rgb_a1", 149),
        ("eac_r11", 153),
        ("eac_rg11", 155),
        ("astc_4x4", 157),
        ("astc_12x12", 183),
    ];
    for (name, vk) in formats {
        let data = blocks(vk, vk as u64);
        let (side, pixels) = (SIDE as usize, (SIDE * SIDE) as usize);
        let bpp = decoded_format(vk).expect("decodable").bytes_per_pixel();
        let mut image = vec![0u8; pixels * bpp];
        let block_rows = SIDE.div_ceil(format::info(vk).expect("known").block[1]);
        g.bench_function(BenchmarkId::new("forgeflow", name), |b| {
            b.iter(|| {
                decode_rows(vk, &data, SIDE, SIDE, 0..block_rows, &mut image).expect("decodes")
            })
        });
        let (mut rgba8, mut half) = (vec![0u8; 4 * pixels], vec![0u16; 3 * pixels]);
        if bcdec_image(vk, side, &data, &mut rgba8, &mut half) {
            g.bench_function(BenchmarkId::new("bcdec_rs", name), |b| {
                b.iter(|| bcdec_image(vk, side, &data, &mut rgba8, &mut half))
            });
        }
        if astc_decode_image(vk, side, &data, &mut rgba8) {
            g.bench_function(BenchmarkId::new("astc-decode", name), |b| {
                b.iter(|| astc_decode_image(vk, side, &data, &mut rgba8))
            });
        }
        // texture2ddecoder panics on corrupt ASTC blocks, as random ones are.
        let mut out = vec![0u32; pixels];
        let astc = matches!(vk, 157 | 183);
        if !astc && texture2ddecoder_image(vk, side, &data, &mut out).is_some() {
            g.bench_function(BenchmarkId::new("texture2ddecoder", name), |b| {
                b.iter(|| texture2ddecoder_image(vk, side, &data, &mut out))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, decoders);
criterion_main!(benches);
