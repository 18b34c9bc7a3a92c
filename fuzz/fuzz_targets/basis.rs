//! Any bytes as a Basis Universal KTX2 file (seeded with the corpus's ETC1S,
//! UASTC and XUASTC files): opened, every level of the first image
//! transcoded to BC7 and to RGBA8. forgeflow turns a transcoder panic into
//! an error (its guard, tested in jobs/tests); what this target hunts is
//! what no guard catches: an allocation the file asks for that aborts, a
//! hang, an overflow.
#![no_main]

use forgeflow_jobs::texture::basis::TargetFormat;
use forgeflow_jobs::texture::file::ImageSelector;
use forgeflow_jobs::texture::source::TextureFile;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // libFuzzer's hook aborts at any panic, before forgeflow's guard sees it;
    // without it, a panic that escapes still aborts (libfuzzer-sys catches
    // it and aborts).
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    let Ok(TextureFile::Basis(b)) = TextureFile::from_bytes(data.to_vec()) else {
        return;
    };
    let levels = b.file().layout().levels.clamp(1, 4);
    for level in 0..levels {
        for target in [TargetFormat::Bc7Rgba, TargetFormat::Rgba32] {
            let sel = ImageSelector {
                level,
                ..ImageSelector::default()
            };
            let _ = b.transcode_image(sel, target);
        }
    }
});
