//! Criterion bench of the CPU block decoders, one thread, 1024x1024 images of
//! deterministic random blocks: forgeflow's `decode` (the chosen decoder plus
//! the copy into the image) against texture2ddecoder on the same blocks.
//! Throughput in pixels.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use forgeflow::jobs::texture::decode::decode;
use forgeflow::jobs::texture::format;
use forgeflow_test_support::SplitMix64;

const SIDE: u32 = 1024;

/// A texture2ddecoder whole-image decoder.
type T2dDecoder = fn(&[u8], usize, usize, &mut [u32]) -> Result<(), &'static str>;

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
    let formats: [(&str, u32); 10] = [
        ("bc1", 133),
        ("bc3", 137),
        ("bc4", 139),
        ("bc5", 141),
        ("bc6h", 143),
        ("bc7", 145),
        ("etc2_rgba", 151),
        ("eac_r11", 153),
        ("astc_4x4", 157),
        ("astc_12x12", 183),
    ];
    for (name, vk) in formats {
        let data = blocks(vk, vk as u64);
        g.bench_function(BenchmarkId::new("forgeflow", name), |b| {
            b.iter(|| decode(vk, &data, SIDE, SIDE).expect("decodes"))
        });
        let mut out = vec![0u32; (SIDE * SIDE) as usize];
        let (w, h) = (SIDE as usize, SIDE as usize);
        let t2d: Option<T2dDecoder> = match vk {
            133 => Some(texture2ddecoder::decode_bc1),
            137 => Some(texture2ddecoder::decode_bc3),
            139 => Some(texture2ddecoder::decode_bc4),
            141 => Some(texture2ddecoder::decode_bc5),
            143 => Some(texture2ddecoder::decode_bc6_unsigned),
            145 => Some(texture2ddecoder::decode_bc7),
            151 => Some(texture2ddecoder::decode_etc2_rgba8),
            153 => Some(texture2ddecoder::decode_eacr),
            _ => None,
        };
        if let Some(f) = t2d {
            g.bench_function(BenchmarkId::new("texture2ddecoder", name), |b| {
                b.iter(|| f(&data, w, h, &mut out))
            });
        }
    }
    g.finish();
}

criterion_group!(benches, decoders);
criterion_main!(benches);
