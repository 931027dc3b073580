// The weight piece in an rgba32uint texture, WTEX_W texels (vec4s of words) a row in buffer
// order (`gpu/weight_texture.rs`); the accessors of weight_buffer.wgsl over it. On lavapipe a
// storage load is a loop over the 8 SIMD lanes (exec-mask test, bounds check, branch each) and
// a texel fetch one vectorized gather: the weight loads that set a decoding product's time.
@group(0) @binding(2) var w_tex: texture_2d<u32>;
@group(0) @binding(7) var w_tex7: texture_2d<u32>;
const WTEX_W: u32 = 2048u; // gpu/weight_texture.rs: WEIGHT_TEXTURE_WIDTH
fn wvec(i: u32) -> vec4<u32> {
    return textureLoad(w_tex, vec2<u32>(i % WTEX_W, i / WTEX_W), 0);
}
fn wword(i: u32) -> u32 {
    // Selects, not a dynamic index: lavapipe turns `v[j]` into a loop over the lanes.
    let v = wvec(i >> 2u);
    let j = i & 3u;
    return select(select(v.x, v.y, j == 1u), select(v.z, v.w, j == 3u), j >= 2u);
}
fn wvec7(i: u32) -> vec4<u32> {
    return textureLoad(w_tex7, vec2<u32>(i % WTEX_W, i / WTEX_W), 0);
}
fn wquad(i: u32) -> vec4<u32> {
    return wvec(i);
}
const WEIGHT_TEXTURE: bool = true;
