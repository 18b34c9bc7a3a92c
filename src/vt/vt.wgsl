// forgeflow virtual texturing: include this module in your shader (it uses
// bind group VT_GROUP, bindings 0-4, as `VirtualTexture::bind_group` provides)
// and call `vt_sample` where you would sample the texture, `vt_feedback` once
// per fragment.

struct VtParams {
    // Level-0 size in texels.
    virtual_size: vec2<f32>,
    // Atlas size in texels.
    atlas_size: vec2<f32>,
    // Payload texels per tile, border texels, slot texels, levels.
    tile: f32,
    border: f32,
    slot: f32,
    mips: f32,
    // Level-of-detail bias (raised when the working set exceeds the cache).
    bias: f32,
    // Feedback: one word per `divisor` x `divisor` screen block, written by
    // the fragment at `jitter` within it (it moves every frame).
    divisor: u32,
    feedback_width: u32,
    feedback_height: u32,
    jitter: vec2<u32>,
    // The texture's id in feedback words, plus one (0 marks an empty word).
    texture_code: u32,
    _pad: u32,
};

@group(VT_GROUP) @binding(0) var vt_atlas: texture_2d<f32>;
@group(VT_GROUP) @binding(1) var vt_page_table: texture_2d<u32>;
@group(VT_GROUP) @binding(2) var vt_sampler: sampler;
@group(VT_GROUP) @binding(3) var<uniform> vt: VtParams;
@group(VT_GROUP) @binding(4) var<storage, read_write> vt_feedback_words: array<u32>;

// The level a footprint of (ddx, ddy) in texture coordinates wants, biased.
fn vt_level(ddx: vec2<f32>, ddy: vec2<f32>) -> f32 {
    let px = max(length(ddx * vt.virtual_size), length(ddy * vt.virtual_size));
    return clamp(log2(max(px, 1e-6)) + vt.bias, 0.0, vt.mips - 1.0);
}

// The tile of `uv` at `level`.
fn vt_tile(uv: vec2<f32>, level: u32) -> vec2<u32> {
    let texels = vt.tile * f32(1u << level);
    let tiles = max(vec2<u32>(ceil(vt.virtual_size / texels)), vec2<u32>(1u));
    let t = vec2<u32>(clamp(uv, vec2<f32>(0.0), vec2<f32>(1.0)) * vt.virtual_size / texels);
    return min(t, tiles - vec2<u32>(1u));
}

// The texel at `uv` from the tile the page table names for `level` (itself,
// or its nearest resident coarser ancestor), filtered bilinearly.
fn vt_sample_level(uv: vec2<f32>, level: u32) -> vec4<f32> {
    let entry = textureLoad(vt_page_table, vt_tile(uv, level), i32(level)).x;
    let slot = vec2<f32>(f32(entry & 0xffu), f32((entry >> 8u) & 0xffu));
    let mip = (entry >> 16u) & 0xfu;
    let in_tiles = clamp(uv, vec2<f32>(0.0), vec2<f32>(1.0)) * vt.virtual_size
        / (vt.tile * f32(1u << mip));
    let within = in_tiles - vec2<f32>(vt_tile(uv, mip));
    let texel = slot * vt.slot + vec2<f32>(vt.border) + within * vt.tile;
    return textureSampleLevel(vt_atlas, vt_sampler, texel / vt.atlas_size, 0.0);
}

// Samples the virtual texture at `uv` for a footprint of (ddx, ddy): the
// nearest wanted level, bilinear within it.
fn vt_sample(uv: vec2<f32>, ddx: vec2<f32>, ddy: vec2<f32>) -> vec4<f32> {
    return vt_sample_level(uv, u32(round(vt_level(ddx, ddy))));
}

// Records which tile this fragment wants, from one fragment per screen block.
fn vt_feedback(frag_xy: vec2<f32>, uv: vec2<f32>, ddx: vec2<f32>, ddy: vec2<f32>) {
    let p = vec2<u32>(frag_xy);
    if (any(p % vec2<u32>(vt.divisor) != vt.jitter)) {
        return;
    }
    let b = p / vt.divisor;
    if (b.x >= vt.feedback_width || b.y >= vt.feedback_height) {
        return;
    }
    let level = u32(round(vt_level(ddx, ddy)));
    let t = vt_tile(uv, level);
    vt_feedback_words[b.y * vt.feedback_width + b.x] =
        (t.x & 0xfffu) | ((t.y & 0xfffu) << 12u) | ((level & 0xfu) << 24u) | (vt.texture_code << 28u);
}
