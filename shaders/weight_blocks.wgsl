// Decoding weight pieces a vec4 or a quant word at a time, for the register-blocked weight
// kernels (k % 32 == 0): prepended after weights.wgsl to matmul.wgsl, matvec.wgsl and
// matmul_backward.wgsl at pipeline build. Besides `w: array<u32>`, the kernel file declares the
// piece as `wv: array<vec4<u32>>` (the same binding); layouts as in weights.wgsl.

// Float pieces, k = kk..kk+7 of the row starting at element e (kk % 8 == 0): `wf_u` fetches
// the packed 16-bit words (f32: nothing yet), `wf_lo` / `wf_hi` give k = kk..kk+3 / kk+4..kk+7.
fn wf_u(e: u32) -> vec4<u32> {
    if (WDTYPE == 0u) {
        return vec4<u32>(0u);
    }
    return wv[e >> 3u];
}
fn wf_lo(e: u32, u: vec4<u32>) -> vec4<f32> {
    if (WDTYPE == 0u) {
        return bitcast<vec4<f32>>(wv[e >> 2u]);
    }
    if (WDTYPE == 1u) {
        return vec4<f32>(unpack2x16float(u.x), unpack2x16float(u.y));
    }
    return bitcast<vec4<f32>>(vec4<u32>(u.x << 16u, u.x & 0xffff0000u, u.y << 16u, u.y & 0xffff0000u));
}
fn wf_hi(e: u32, u: vec4<u32>) -> vec4<f32> {
    if (WDTYPE == 0u) {
        return bitcast<vec4<f32>>(wv[(e >> 2u) + 1u]);
    }
    if (WDTYPE == 1u) {
        return vec4<f32>(unpack2x16float(u.z), unpack2x16float(u.w));
    }
    return bitcast<vec4<f32>>(vec4<u32>(u.z << 16u, u.z & 0xffff0000u, u.w << 16u, u.w & 0xffff0000u));
}

// Q8_0: the four signed bytes of a quant word (to be scaled by the block's d).
fn q8w4(word: u32) -> vec4<f32> {
    return vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(word) << vec4<u32>(24u, 16u, 8u, 0u)) >> vec4<u32>(24u));
}
// Q4_0 / Q4_1 / Q5_0 blocks: 5 words (Q4) or 6 (Q5_0: d, qh, then the 16 quant bytes).
fn q4_bw() -> u32 {
    return select(5u, 6u, WDTYPE == 6u);
}
// Block b's scales as (d, offset): value = d * q + offset (exact either way: d * q is).
fn q4s(b: u32) -> vec2<f32> {
    let s = unpack2x16float(w[b * q4_bw()]);
    if (WDTYPE == 4u) {
        return vec2<f32>(s.x, -8.0 * s.x);
    }
    if (WDTYPE == 6u) {
        return vec2<f32>(s.x, -16.0 * s.x);
    }
    return s;
}
// Quant word i of block b, with (Q5_0) qh >> 4i: bits 0..3 are the fifth bits of k = 4i..4i+3,
// bits 16..19 those of 4i+16..4i+19. Q4 carries 0 there.
fn q4w(b: u32, i: u32) -> vec2<u32> {
    if (WDTYPE == 6u) {
        return vec2<u32>(w[b * 6u + 2u + i], w[b * 6u + 1u] >> (4u * i));
    }
    return vec2<u32>(w[b * 5u + 1u + i], 0u);
}
// Quant word u.x holds k = 4i..4i+3 (low nibbles) and 4i+16..4i+19 (high).
fn q4lo(u: vec2<u32>, c: vec2<f32>) -> vec4<f32> {
    var qv = (vec4<u32>(u.x) >> vec4<u32>(0u, 8u, 16u, 24u)) & vec4<u32>(15u);
    if (WDTYPE == 6u) {
        qv |= ((vec4<u32>(u.y) >> vec4<u32>(0u, 1u, 2u, 3u)) & vec4<u32>(1u)) << vec4<u32>(4u);
    }
    return vec4<f32>(qv) * c.x + c.y;
}
fn q4hi(u: vec2<u32>, c: vec2<f32>) -> vec4<f32> {
    var qv = (vec4<u32>(u.x) >> vec4<u32>(4u, 12u, 20u, 28u)) & vec4<u32>(15u);
    if (WDTYPE == 6u) {
        qv |= ((vec4<u32>(u.y) >> vec4<u32>(16u, 17u, 18u, 19u)) & vec4<u32>(1u)) << vec4<u32>(4u);
    }
    return vec4<f32>(qv) * c.x + c.y;
}
