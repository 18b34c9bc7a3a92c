//! Any bytes as a texture file: detection, validation (KTX2, DDS, KTX 1,
//! PNG), every image read, small ones decoded. Nothing may panic.
#![no_main]

use forgeflow_jobs::texture::decode::decode;
use forgeflow_jobs::texture::file::{ImageSelector, Ktx2File};
use forgeflow_jobs::texture::source::{TextureFile, TextureSource};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // libFuzzer's hook aborts at any panic, before forgeflow's guard around
    // the Basis Universal transcoder can turn one into an error; without the
    // hook, a panic that escapes still aborts (libfuzzer-sys catches it and
    // aborts), so only guarded panics pass.
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| std::panic::set_hook(Box::new(|_| {})));
    // A level inflated beyond this is refused (a real loader sets a limit too).
    let file = match TextureFile::from_bytes(data.to_vec()) {
        Ok(TextureFile::Ktx2(_)) => match Ktx2File::from_bytes(data.to_vec()) {
            Ok(k) => TextureFile::Ktx2(k.with_inflate_limit(16 << 20)),
            Err(_) => return,
        },
        Ok(f) => f,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let d = file.desc();
    for level in 0..d.levels.min(16) {
        for layer in 0..d.layers.min(4) {
            for face in 0..d.faces {
                let sel = ImageSelector {
                    level,
                    layer,
                    face,
                    depth: 0,
                };
                let Ok(image) = file.image(sel) else { continue };
                let (w, h) = d.level_size(level);
                if (w as u64) * (h as u64) <= 1 << 16 && d.format.is_some_and(|f| f.is_compressed()) {
                    let _ = decode(d.vk_format, &image, w, h);
                }
            }
        }
    }
});
