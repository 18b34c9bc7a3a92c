//! KTX2 files made by tests: the header, level index, a basic data format
//! descriptor and the levels, laid out as the specification says (smallest
//! level first in the file, each level aligned to its block size), so that a
//! test can make the exact file it needs, valid or not, without the corpus.

/// What to write. Payloads are stored as given: with `supercompression` 2
/// (zstd) they must already be compressed, and their uncompressed lengths in
/// the level index come from the header's sizes (in 64-bit arithmetic, so a
/// header that overflows 32 bits can be written).
#[derive(Debug, Clone)]
pub struct Ktx2Builder {
    /// `VkFormat`.
    pub vk_format: u32,
    /// Bytes of one texel block (`typeSize` is derived from it).
    pub block_bytes: u32,
    /// Texel block dimensions (1x1x1 for uncompressed formats).
    pub block: [u32; 3],
    /// `pixelWidth`, `pixelHeight`, `pixelDepth` (0 for 2D).
    pub size: [u32; 3],
    /// `layerCount` (0 for a texture that is not an array).
    pub layers: u32,
    /// `faceCount`: 1, or 6 for a cube.
    pub faces: u32,
    /// `supercompressionScheme`: 0 none, 2 zstd.
    pub supercompression: u32,
    /// Level 0 first: each level's bytes as stored.
    pub levels: Vec<Vec<u8>>,
    /// Key/value entries, written in this order (a key is written as given,
    /// then its NUL; the value as given), each padded to 4 bytes.
    pub key_values: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Ktx2Builder {
    /// A 2D texture of `vk_format`, its block and bytes from forgeflow's
    /// format table, no levels yet.
    ///
    /// # Panics
    /// For a format the table does not know.
    pub fn for_format(vk_format: u32, width: u32, height: u32) -> Self {
        let f = forgeflow::jobs::texture::format::info(vk_format).expect("a known format");
        Self::with_block(vk_format, f.block, f.bytes, width, height)
    }

    /// A 2D texture of an uncompressed format of `texel_bytes` bytes a
    /// texel, no levels yet. The descriptor is the format's where the sizes
    /// agree (see [`Ktx2Builder::build`]).
    pub fn uncompressed(vk_format: u32, texel_bytes: u32, width: u32, height: u32) -> Self {
        Self::with_block(vk_format, [1, 1, 1], texel_bytes, width, height)
    }

    /// A 2D texture of a 4x4 block-compressed format of `block_bytes` bytes a
    /// block (BC1 = 131..=134 with 8, BC7 = 145/146 with 16), no levels yet.
    pub fn block_compressed(vk_format: u32, block_bytes: u32, width: u32, height: u32) -> Self {
        Self::with_block(vk_format, [4, 4, 1], block_bytes, width, height)
    }

    fn with_block(
        vk_format: u32,
        block: [u32; 3],
        block_bytes: u32,
        width: u32,
        height: u32,
    ) -> Self {
        Ktx2Builder {
            vk_format,
            block_bytes,
            block,
            size: [width, height, 0],
            layers: 0,
            faces: 1,
            supercompression: 0,
            levels: Vec::new(),
            key_values: Vec::new(),
        }
    }

    /// Bytes of one image (one layer, face and depth slice) of `level`, in
    /// 64-bit arithmetic.
    pub fn image_bytes(&self, level: u32) -> u64 {
        let dim = |d: u32, b: u32| u64::from((d >> level).max(1).div_ceil(b));
        dim(self.size[0], self.block[0])
            * dim(self.size[1].max(1), self.block[1])
            * u64::from(self.block_bytes)
    }

    /// Bytes of all of `level` once inflated: every layer, face and slice.
    pub fn level_bytes(&self, level: u32) -> u64 {
        let depth = u64::from((self.size[2] >> level).max(1));
        self.image_bytes(level) * u64::from(self.layers.max(1)) * u64::from(self.faces) * depth
    }

    /// The file. Its data format descriptor is the one the KTX2
    /// specification requires for `vk_format` where forgeflow derives one
    /// with this builder's block and bytes; otherwise one sample per byte
    /// (uncompressed) or per block (compressed).
    pub fn build(&self) -> Vec<u8> {
        let levels = self.levels.len().max(1) as u32;
        let dfd = self.dfd();
        let dfd_off = 80 + 24 * levels;
        let mut kvd = Vec::new();
        for (key, value) in &self.key_values {
            let length = (key.len() + 1 + value.len()) as u32;
            kvd.extend(length.to_le_bytes());
            kvd.extend(key);
            kvd.push(0);
            kvd.extend(value);
            while kvd.len() % 4 != 0 {
                kvd.push(0);
            }
        }
        let kvd_off = if kvd.is_empty() {
            0
        } else {
            dfd_off + dfd.len() as u32
        };
        let mut f = vec![
            0xAB, b'K', b'T', b'X', b' ', b'2', b'0', 0xBB, b'\r', b'\n', 0x1A, b'\n',
        ];
        // typeSize: 1 for block-compressed formats and 8-bit channels, the
        // only ones this writer makes.
        let type_size = 1;
        for v in [
            self.vk_format,
            type_size,
            self.size[0],
            self.size[1],
            self.size[2],
            self.layers,
            self.faces,
            self.levels.len() as u32,
            self.supercompression,
        ] {
            f.extend(v.to_le_bytes());
        }
        for v in [dfd_off, dfd.len() as u32, kvd_off, kvd.len() as u32] {
            f.extend(v.to_le_bytes());
        }
        f.extend([0u8; 16]); // no supercompression global data
        let index_at = f.len();
        f.extend(vec![0u8; 24 * levels as usize]);
        f.extend(&dfd);
        f.extend(&kvd);
        // Levels, smallest first, each aligned as the specification asks.
        let align = if self.supercompression == 0 {
            lcm(u64::from(self.block_bytes), 4)
        } else {
            1
        };
        for (level, bytes) in self.levels.iter().enumerate().rev() {
            while !(f.len() as u64).is_multiple_of(align) {
                f.push(0);
            }
            let entry = index_at + 24 * level;
            let uncompressed = if self.supercompression == 0 {
                bytes.len() as u64
            } else {
                self.level_bytes(level as u32)
            };
            for (i, v) in [f.len() as u64, bytes.len() as u64, uncompressed]
                .into_iter()
                .enumerate()
            {
                f[entry + 8 * i..entry + 8 * i + 8].copy_from_slice(&v.to_le_bytes());
            }
            f.extend(bytes);
        }
        f
    }

    /// The data format descriptor: the one the KTX2 specification requires
    /// for the format (forgeflow's `BasicDfd::for_format`) where it has one
    /// of this builder's block; otherwise (a prohibited or unknown format, a
    /// block size a test changed) the texel block, the bytes of a block and
    /// one sample per 8-bit channel (uncompressed), or one sample of the
    /// whole block in the BC colour model of the format.
    fn dfd(&self) -> Vec<u8> {
        use forgeflow::jobs::texture::dfd::BasicDfd;
        if let Some(d) = BasicDfd::for_format(self.vk_format) {
            let block: Vec<u32> = d.block[..3].iter().map(|&b| u32::from(b) + 1).collect();
            if block == self.block && u32::from(d.bytes_planes[0]) == self.block_bytes {
                return d.to_bytes();
            }
        }
        let compressed = self.block != [1, 1, 1];
        let samples: Vec<[u8; 2]> = if compressed {
            vec![[(self.block_bytes * 8 - 1) as u8, 0]]
        } else {
            (0..self.block_bytes)
                .map(|byte| [7, [0u8, 1, 2, 15][byte.min(3) as usize]])
                .collect()
        };
        let model = match self.vk_format {
            131..=134 => 128, // BC1A
            135 | 136 => 129,
            137 | 138 => 130,
            139 | 140 => 131,
            141 | 142 => 132,
            143 | 144 => 133,
            145 | 146 => 134, // BC7
            _ => 1,           // RGBSDA
        };
        let block_size = 24 + 16 * samples.len() as u32;
        let mut d = Vec::new();
        d.extend((4 + block_size).to_le_bytes());
        d.extend(0u32.to_le_bytes()); // Khronos, basic block
        d.extend(2u16.to_le_bytes()); // version
        d.extend((block_size as u16).to_le_bytes());
        d.extend([model, 1, 1, 0]); // model, BT.709, linear, straight alpha
        d.extend([
            (self.block[0] - 1) as u8,
            (self.block[1] - 1) as u8,
            (self.block[2] - 1) as u8,
            0,
        ]);
        d.extend([self.block_bytes as u8, 0, 0, 0, 0, 0, 0, 0]);
        for (i, [bits, channel]) in samples.into_iter().enumerate() {
            let offset = if compressed { 0 } else { 8 * i as u16 };
            d.extend(offset.to_le_bytes());
            d.extend([bits, channel]);
            d.extend([0u8; 4]); // sample positions
            let upper: u32 = if compressed { u32::MAX } else { 255 };
            d.extend(0u32.to_le_bytes());
            d.extend(upper.to_le_bytes());
        }
        d
    }
}

fn lcm(a: u64, b: u64) -> u64 {
    fn gcd(a: u64, b: u64) -> u64 {
        if b == 0 {
            a
        } else {
            gcd(b, a % b)
        }
    }
    a / gcd(a, b) * b
}

/// Asserts that validating `file` raises finding `id` with `severity`
/// (`what` names the case in the failure message); returns every finding,
/// for further checks.
pub fn assert_raises(
    what: &str,
    file: &[u8],
    id: u16,
    severity: forgeflow::jobs::texture::findings::Severity,
) -> Vec<forgeflow::jobs::texture::findings::Finding> {
    let findings = forgeflow::jobs::texture::findings::ktx2_findings(file);
    assert!(
        findings
            .iter()
            .any(|f| f.id == id && f.severity == severity),
        "{what}: expected {severity}-{id:04}, got {findings:?}"
    );
    findings
}
