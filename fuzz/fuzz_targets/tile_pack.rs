//! Any bytes as a tile pack: the header, index and checksums validated, then
//! every tile of the layout read (a few hundred at most). Nothing may panic.
#![no_main]

use forgeflow_jobs::vt::TilePack;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(pack) = TilePack::from_bytes(data.to_vec()) else {
        return;
    };
    let layout = *pack.layout();
    for index in 0..layout.tile_count().min(512) {
        if let Some(tile) = layout.tile_at(index) {
            let _ = pack.tile(tile);
            let mut scratch = Vec::new();
            let _ = pack.tile_if_cached(tile, &mut scratch);
        }
    }
});
