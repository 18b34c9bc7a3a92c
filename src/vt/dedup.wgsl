// forgeflow: a frame's feedback words de-duplicated on the GPU. One
// invocation per word: the word's tile sets its bit in `seen`; the first to
// set it appends the word to `list` (list[0] counts them, capacity aside).

struct DedupParams {
    words: u32,
    capacity: u32,
    groups_x: u32,
    _pad: u32,
    // Per level: first dense tile index, tiles across, tiles down.
    levels: array<vec4<u32>, 16>,
};

@group(0) @binding(0) var<uniform> p: DedupParams;
@group(0) @binding(1) var<storage, read> feedback: array<u32>;
@group(0) @binding(2) var<storage, read_write> seen: array<atomic<u32>>;
@group(0) @binding(3) var<storage, read_write> list: array<atomic<u32>>;

@compute @workgroup_size(64)
fn dedup(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let i = (wg.y * p.groups_x + wg.x) * 64u + li;
    if (i >= p.words) {
        return;
    }
    let w = feedback[i];
    if (w == 0u) {
        return;
    }
    let l = p.levels[(w >> 24u) & 0xfu];
    let x = w & 0xfffu;
    let y = (w >> 12u) & 0xfffu;
    if (x >= l.y || y >= l.z) {
        return;
    }
    let t = l.x + y * l.y + x;
    let bit = 1u << (t & 31u);
    if ((atomicOr(&seen[t >> 5u], bit) & bit) != 0u) {
        return;
    }
    let at = atomicAdd(&list[0], 1u);
    if (at < p.capacity) {
        atomicStore(&list[at + 1u], w);
    }
}
