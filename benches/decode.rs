//! Criterion bench of the CPU block decoders, one thread, 1024x1024 images of
//! deterministic random blocks: forgeflow's `decode_rows` into a reused image
//! (as the upload path decodes into staging memory) against bcdec_rs for the
//! BC formats and texture2ddecoder for all it has, on the same blocks.
//! Throughput in pixels.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use forgeflow::jobs::texture::decode::{decode_rows, decoded_format};
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
        let bpp = decoded_format(vk).expect("decodable").bytes_per_pixel();
        let mut image = vec![0u8; (SIDE * SIDE) as usize * bpp];
        let block_rows = SIDE.div_ceil(format::info(vk).expect("known").block[1]);
        g.bench_function(BenchmarkId::new("forgeflow", name), |b| {
            b.iter(|| {
                decode_rows(vk, &data, SIDE, SIDE, 0..block_rows, &mut image).expect("decodes")
            })
        });
        if let Some(bcdec) = bcdec_image(vk) {
            let mut rgba8 = vec![0u8; (SIDE * SIDE * 4) as usize];
            let mut half = vec![0u16; (SIDE * SIDE * 3) as usize];
            g.bench_function(BenchmarkId::new("bcdec_rs", name), |b| {
                b.iter(|| bcdec(&data, &mut rgba8, &mut half))
            });
        }
        let mut out = vec![0u32; (SIDE * SIDE) as usize];
        let (w, h) = (SIDE as usize, SIDE as usize);
        let t2d: Option<T2dDecoder> = match vk {
            133 => Some(texture2ddecoder::decode_bc1),
            135 => Some(texture2ddecoder::decode_bc2),
            137 => Some(texture2ddecoder::decode_bc3),
            139 => Some(texture2ddecoder::decode_bc4),
            141 => Some(texture2ddecoder::decode_bc5),
            143 => Some(texture2ddecoder::decode_bc6_unsigned),
            145 => Some(texture2ddecoder::decode_bc7),
            149 => Some(texture2ddecoder::decode_etc2_rgba1),
            151 => Some(texture2ddecoder::decode_etc2_rgba8),
            153 => Some(texture2ddecoder::decode_eacr),
            155 => Some(texture2ddecoder::decode_eacrg),
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

/// A whole-image decode through bcdec_rs: (blocks, RGBA8 image, RGB-half image).
type BcdecImage = fn(&[u8], &mut [u8], &mut [u16]);

/// bcdec_rs block by block into an image (RGBA8, or RGB halves for BC6H),
/// if it has the format: what forgeflow's BC decoding wraps (BC6H aside,
/// which forgeflow decodes itself).
fn bcdec_image(vk: u32) -> Option<BcdecImage> {
    fn image<const VK: u32>(data: &[u8], rgba8: &mut [u8], half: &mut [u16]) {
        let side = SIDE as usize;
        let bytes = if matches!(VK, 133 | 139) { 8 } else { 16 };
        for (i, block) in data.chunks_exact(bytes).enumerate() {
            let (bx, by) = (i % (side / 4), i / (side / 4));
            let at = (by * 4 * side + bx * 4) * if VK == 143 { 3 } else { 4 };
            match VK {
                133 => bcdec_rs::bc1(block, &mut rgba8[at..], side * 4),
                135 => bcdec_rs::bc2(block, &mut rgba8[at..], side * 4),
                137 => bcdec_rs::bc3(block, &mut rgba8[at..], side * 4),
                139 => bcdec_rs::bc4(block, &mut rgba8[at..], side, false),
                141 => bcdec_rs::bc5(block, &mut rgba8[at..], side * 2, false),
                143 => bcdec_rs::bc6h_half(block, &mut half[at..], side * 3, false),
                _ => bcdec_rs::bc7(block, &mut rgba8[at..], side * 4),
            }
        }
    }
    Some(match vk {
        133 => image::<133>,
        135 => image::<135>,
        137 => image::<137>,
        139 => image::<139>,
        141 => image::<141>,
        143 => image::<143>,
        145 => image::<145>,
        _ => return None,
    })
}

criterion_group!(benches, decoders);
criterion_main!(benches);
