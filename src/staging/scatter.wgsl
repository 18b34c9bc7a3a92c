// GPU scatter of small uploads: one workgroup per piece copies `words` 32-bit
// words from the landing buffer (where the frame's staging bytes were copied
// in one transfer) to the piece's place in the destination buffer. One
// dispatch writes every piece of a destination: no barrier between pieces.

struct Piece {
    src_word: u32,
    dst_word: u32,
    words: u32,
    _unused: u32,
}

@group(0) @binding(0) var<storage, read> landing: array<u32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
@group(0) @binding(2) var<storage, read> pieces: array<Piece>;

@compute @workgroup_size(256)
fn scatter(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let p = pieces[wg.x];
    for (var i = lid; i < p.words; i += 256u) {
        dst[p.dst_word + i] = landing[p.src_word + i];
    }
}
