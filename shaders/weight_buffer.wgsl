// Where a kernel reads its weight piece: a storage buffer (this snippet) or a texture
// (weight_texture.wgsl), chosen at pipeline build (`Gpu::weight_textures`) and prepended first
// to every kernel file that reads weights. Binding 2 is the piece as words (`wword`) or vec4s
// (`wvec`); binding 7 the same piece as vec4s for the kernels that read both ways (`wvec7`;
// the host binds it only for pieces of a multiple of 16 bytes, so every such vec4 exists).
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(2) var<storage, read> wv: array<vec4<u32>>;
@group(0) @binding(7) var<storage, read> w4: array<vec4<u32>>;
fn wword(i: u32) -> u32 {
    return w[i];
}
fn wvec(i: u32) -> vec4<u32> {
    return wv[i];
}
fn wvec7(i: u32) -> vec4<u32> {
    return w4[i];
}
// Vec4 i through the word view: for kernels that read words too (one binding, one type).
fn wquad(i: u32) -> vec4<u32> {
    return vec4<u32>(w[4u * i], w[4u * i + 1u], w[4u * i + 2u], w[4u * i + 3u]);
}
const WEIGHT_TEXTURE: bool = false;
