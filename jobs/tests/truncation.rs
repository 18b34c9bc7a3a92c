//! A texture file truncated by another writer while it is open: reading it
//! goes on from the copy made at open, never a `SIGBUS` from a mapping
//! whose pages are gone. (With a mapping, as `open` made before, these
//! reads kill the test process.)

use forgeflow_jobs::texture::decode::decode;
use forgeflow_jobs::texture::file::{ImageSelector, Ktx2File};
use forgeflow_jobs::texture::source::{TextureFile, TextureSource};
use forgeflow_test_support::ktx2::Ktx2Builder;
use forgeflow_test_support::SplitMix64;

/// A BC1 KTX2 file of 512x512 with its mips (171 KiB: pages past the first
/// few are gone once it is cut to 64 bytes).
fn file(path: &std::path::Path) -> Ktx2Builder {
    let mut rng = SplitMix64::new(5);
    let mut b = Ktx2Builder::block_compressed(131, 8, 512, 512);
    b.levels = (0..10)
        .map(|level| {
            (0..b.image_bytes(level))
                .map(|_| rng.next_u64() as u8)
                .collect()
        })
        .collect();
    std::fs::write(path, b.build()).unwrap();
    b
}

#[test]
fn a_file_truncated_after_open_reads_and_decodes_as_it_was() {
    let dir = std::env::temp_dir().join(format!("forgeflow-truncation-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("cut.ktx2");
    let b = file(&path);
    let ktx2 = Ktx2File::open(&path).unwrap();
    let any = TextureFile::open(&path).unwrap();
    // Another writer cuts the file short, then a decode thread reads it.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(64)
        .unwrap();
    let reader = std::thread::spawn(move || {
        for (level, want) in b.levels.iter().enumerate() {
            let sel = ImageSelector {
                level: level as u32,
                ..ImageSelector::default()
            };
            assert_eq!(*ktx2.image(sel).unwrap(), want[..], "level {level}");
            let got = any.image(sel).unwrap();
            let side = (512u32 >> level).max(1);
            let (_, a) = decode(131, &got, side, side).unwrap();
            let (_, b) = decode(131, want, side, side).unwrap();
            assert!(a == b, "level {level} decodes as written");
        }
    });
    reader.join().expect("the reads survive the truncation");
    // Opened after the cut, the file is refused with a reason.
    assert!(Ktx2File::open(&path).is_err());
    std::fs::remove_dir_all(&dir).ok();
}
