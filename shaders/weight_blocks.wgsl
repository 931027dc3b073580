// Decoding weight pieces a vec4 or a quant word at a time, for the register-blocked weight
// kernels (k % 32 == 0): prepended after weights.wgsl to matmul.wgsl, matvec.wgsl and
// matmul_backward.wgsl at pipeline build. The piece is read as words (`wword`) or vec4s
// (`wvec`, `wvec7`) from weight_buffer.wgsl or weight_texture.wgsl; layouts as in weights.wgsl.

// Float pieces, k = kk..kk+7 of the row starting at element e (kk % 8 == 0): `wf_u` fetches
// the packed 16-bit words (f32: nothing yet), `wf_lo` / `wf_hi` give k = kk..kk+3 / kk+4..kk+7.
fn wf_u(e: u32) -> vec4<u32> {
    if (WDTYPE == 0u) {
        return vec4<u32>(0u);
    }
    return wvec(e >> 3u);
}
fn wf_lo(e: u32, u: vec4<u32>) -> vec4<f32> {
    if (WDTYPE == 0u) {
        return bitcast<vec4<f32>>(wvec(e >> 2u));
    }
    if (WDTYPE == 1u) {
        return vec4<f32>(unpack2x16float(u.x), unpack2x16float(u.y));
    }
    return bitcast<vec4<f32>>(vec4<u32>(u.x << 16u, u.x & 0xffff0000u, u.y << 16u, u.y & 0xffff0000u));
}
fn wf_hi(e: u32, u: vec4<u32>) -> vec4<f32> {
    if (WDTYPE == 0u) {
        return bitcast<vec4<f32>>(wvec((e >> 2u) + 1u));
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
// Q4_0 / Q4_1 / IQ4_NL / Q5_0 / Q5_1 blocks: 5 words (Q4, IQ4_NL) or 6 (Q5: d (| m), qh, then
// the 16 quant bytes).
fn q4_bw() -> u32 {
    return select(5u, 6u, WDTYPE == 6u || WDTYPE == 9u);
}
// Every type from Q4_0 on is read through q4s / q4w / q4lo / q4hi, a "block" b of 32 at a time
// (the 256-element super-block types: sub-block b % 8 of super-block b / 8; rows are whole
// super-blocks). q4s(b) gives two floats, q4w(b, i) two words for k = 4i..4i+3 and
// 4i+16..4i+19, and q4lo / q4hi the values of those k from them.
// Q4_K (WDTYPE 7): 36-word super-blocks of 256 (d | dmin, 12 scale bytes, 128 quant bytes); a
// "block" b of 32 below is sub-block b % 8 of super-block b / 8 (rows are whole super-blocks).
// Byte n of the scales of the super-block at word `base`.
fn q4k_sbyte(base: u32, n: u32) -> u32 {
    return (wword(base + 1u + n / 4u) >> (8u * (n % 4u))) & 0xffu;
}
// Sub-block j's 6-bit (scale, min) (ggml's get_scale_min_k4).
fn q4k_scale_min(base: u32, j: u32) -> vec2<u32> {
    if (j < 4u) {
        return vec2<u32>(q4k_sbyte(base, j) & 63u, q4k_sbyte(base, j + 4u) & 63u);
    }
    let e = q4k_sbyte(base, j + 4u);
    return vec2<u32>((e & 15u) | ((q4k_sbyte(base, j - 4u) >> 6u) << 4u),
                     (e >> 4u) | ((q4k_sbyte(base, j) >> 6u) << 4u));
}
// Q6_K (WDTYPE 8): 53-word super-blocks of 256 (d, 32 words of ql, 16 of qh, 4 of i8 scales,
// see src/gpu/quant.rs); "block" b of 32 is sub-block g = b % 8 of super-block b / 8, two
// 16-element halves with their own scales.
// Q5_K (WDTYPE 10): 44-word super-blocks, Q4_K's with 8 words of qh before the quants.
// Q2_K (11): 21-word super-blocks (16 scale bytes, 16 words of qs, d | dmin last); Q3_K (12):
// 28 words (d, hmask, qs, scales, see q3k_scale in weights.wgsl); IQ4_XS (14): 34 words (see
// iq4xs_scale); IQ4_NL (13): Q4_0's blocks, codes through iq4_values.
// Block b's scales as (d, offset): value = d * q + offset (exact either way: d * q is). Q6_K and
// Q3_K: (d·sc of k = 0..15, d·sc of k = 16..31), value scale · (q − 32) (Q3_K: q − 4). Q2_K:
// (d, dmin), each half's 4-bit scale and min riding in q4w's second word. IQ4: (d·scale, 0),
// value scale · kvalues[q].
fn q4s(b: u32) -> vec2<f32> {
    if (WDTYPE == 14u) {
        return vec2<f32>(iq4xs_scale((b >> 3u) * 34u, b & 7u), 0.0);
    }
    if (WDTYPE == 12u) {
        // Scales i = 2g and i + 1 (as q3k_scale) sit a byte apart in the same two words.
        let base = (b >> 3u) * 28u;
        let i = 2u * (b & 7u);
        let lo = wword(base + 25u + (i % 8u) / 4u) >> (8u * (i % 4u) + 4u * (i / 8u));
        let hi = wword(base + 27u) >> (8u * (i % 4u) + 2u * (i / 4u));
        let s = (vec2<u32>(lo, lo >> 8u) & vec2<u32>(15u)) |
                ((vec2<u32>(hi, hi >> 8u) & vec2<u32>(3u)) << vec2<u32>(4u));
        return unpack2x16float(wword(base)).x * vec2<f32>(vec2<i32>(s) - 32);
    }
    if (WDTYPE == 11u) {
        return unpack2x16float(wword((b >> 3u) * 21u + 20u));
    }
    if (WDTYPE == 8u) {
        let base = (b >> 3u) * 53u;
        let d = unpack2x16float(wword(base)).x;
        let g = b & 7u;
        let sw = wword(base + 49u + g / 2u);
        let sh = 16u * (g % 2u);
        let sc = bitcast<vec2<i32>>(vec2<u32>(sw << (24u - sh), sw << (16u - sh))) >> vec2<u32>(24u);
        return d * vec2<f32>(sc);
    }
    if (WDTYPE == 7u || WDTYPE == 10u) {
        let base = (b >> 3u) * select(36u, 44u, WDTYPE == 10u);
        let dm = unpack2x16float(wword(base));
        let sm = q4k_scale_min(base, b & 7u);
        return vec2<f32>(dm.x * f32(sm.x), -(dm.y * f32(sm.y)));
    }
    let s = unpack2x16float(wword(b * q4_bw()));
    if (WDTYPE == 4u) {
        return vec2<f32>(s.x, -8.0 * s.x);
    }
    if (WDTYPE == 6u) {
        return vec2<f32>(s.x, -16.0 * s.x);
    }
    return s;
}
// Quant word i of block b, with (Q5_0, Q5_1) qh >> 4i: bits 0..3 are the fifth bits of k = 4i..4i+3,
// bits 16..19 those of 4i+16..4i+19. Q4 carries 0 there.
// Q4_K: sub-block s holds its 32 elements in nibble half s % 2 of the 8 words of 64-element
// chunk s / 2; k = 4i..4i+3 come from word i, 4i+16..4i+19 from word 4 + i, repacked here into
// the Q4_0 word shape (low nibbles, high nibbles).
// Q6_K: the 6-bit quants of k = 4i..4i+3 (bytes of x) and 4i+16..4i+19 (bytes of y); element
// 128h + 32k + l's low 4 bits are nibble k / 2 of ql byte 64h + 32(k % 2) + l, its top 2 bits
// 2k..2k+1 of qh byte 32h + l.
fn q6k_word(base: u32, h: u32, k: u32, l4: u32) -> u32 {
    let ql = wword(base + 1u + 16u * h + 8u * (k % 2u) + l4);
    let qh = wword(base + 33u + 8u * h + l4);
    return ((ql >> (4u * (k / 2u))) & 0x0f0f0f0fu) | (((qh >> (2u * k)) & 0x03030303u) << 4u);
}
// Q5_K: the Q4_K word with the fifth bits (bit g of qh bytes 4i.. and 16+4i..) added: the
// 5-bit quants a byte each, k = 4i.. in x, 4i+16.. in y.
// Q2_K: the 2-bit quants of k = 4i.. in bits 0..1 and of 4i+16.. in bits 2..3 of each byte of x
// (element 128h + 32k + l is bits 2k..2k+1 of qs byte 32h + l, g = 4h + k), y the two scale
// bytes of the halves. Q3_K: the 3-bit quants a byte each (qs bits 2k.., hmask bit g of byte l
// as bit 2), k = 4i.. in x, 4i+16.. in y. IQ4_XS: sub-block g's quants as IQ4_NL's (Q4_0's).
fn q4w(b: u32, i: u32) -> vec2<u32> {
    if (WDTYPE == 10u) {
        let base = (b >> 3u) * 44u;
        let g = b & 7u;
        let q = base + 12u + 8u * (g >> 1u) + i;
        let sh = 4u * (g & 1u);
        let lo = ((wword(q) >> sh) & 0x0f0f0f0fu) | (((wword(base + 4u + i) >> g) & 0x01010101u) << 4u);
        let hi = ((wword(q + 4u) >> sh) & 0x0f0f0f0fu) | (((wword(base + 8u + i) >> g) & 0x01010101u) << 4u);
        return vec2<u32>(lo, hi);
    }
    if (WDTYPE == 11u) {
        let base = (b >> 3u) * 21u;
        let g = b & 7u;
        let q = base + 4u + 8u * (g >> 2u) + i;
        let sh = 2u * (g & 3u);
        let lo = (wword(q) >> sh) & 0x03030303u;
        let hi = (wword(q + 4u) >> sh) & 0x03030303u;
        return vec2<u32>(lo | (hi << 2u), (wword(base + (g >> 1u)) >> (16u * (g & 1u))) & 0xffffu);
    }
    if (WDTYPE == 12u) {
        let base = (b >> 3u) * 28u;
        let g = b & 7u;
        let q = base + 9u + 8u * (g >> 2u) + i;
        let sh = 2u * (g & 3u);
        let lo = ((wword(q) >> sh) & 0x03030303u) | (((wword(base + 1u + i) >> g) & 0x01010101u) << 2u);
        let hi = ((wword(q + 4u) >> sh) & 0x03030303u) | (((wword(base + 5u + i) >> g) & 0x01010101u) << 2u);
        return vec2<u32>(lo, hi);
    }
    if (WDTYPE == 14u) {
        return vec2<u32>(wword((b >> 3u) * 34u + 2u + 4u * (b & 7u) + i), 0u);
    }
    if (WDTYPE == 8u) {
        let base = (b >> 3u) * 53u;
        let g = b & 7u;
        return vec2<u32>(q6k_word(base, g / 4u, g % 4u, i), q6k_word(base, g / 4u, g % 4u, 4u + i));
    }
    if (WDTYPE == 7u) {
        let q = (b >> 3u) * 36u + 4u + 8u * ((b & 7u) >> 1u) + i;
        let sh = 4u * (b & 1u);
        let lo = (wword(q) >> sh) & 0x0f0f0f0fu;
        let hi = (wword(q + 4u) >> sh) & 0x0f0f0f0fu;
        return vec2<u32>(lo | (hi << 4u), 0u);
    }
    if (WDTYPE == 6u || WDTYPE == 9u) {
        return vec2<u32>(wword(b * 6u + 2u + i), wword(b * 6u + 1u) >> (4u * i));
    }
    return vec2<u32>(wword(b * 5u + 1u + i), 0u);
}
// The four bytes of a word, as a vector.
fn q_bytes(x: u32) -> vec4<u32> {
    return (vec4<u32>(x) >> vec4<u32>(0u, 8u, 16u, 24u)) & vec4<u32>(0xffu);
}
// Q2_K: 2-bit quants q against the scale byte s (low nibble scale, high min) and (d, dmin).
fn q2k_vals(q: vec4<u32>, s: u32, c: vec2<f32>) -> vec4<f32> {
    return vec4<f32>(q) * (c.x * f32(s & 15u)) - vec4<f32>(c.y * f32(s >> 4u));
}
// The integers q of q4w's word u, k = 4i.. (lo) or 4i+16.. (hi), for q4lo / q4hi and the
// kernels that take the scales out of the sums (`quant::scales_factor_out`): value
// c.x · q + c.y with q4s's c, but for Q6_K and Q3_K (`halves_scaled`), whose q comes centred
// (q − 32, q − 4) and whose halves take c.x (lo) and c.y (hi).
fn q4_int(u: vec2<u32>, hi: bool) -> vec4<f32> {
    let x = select(u.x, u.y, hi);
    if (WDTYPE == 8u) {
        return centred_bytes(x, 6u);
    }
    if (WDTYPE == 12u) {
        return centred_bytes(x, 3u);
    }
    if (WDTYPE == 10u) {
        return vec4<f32>(q_bytes(x));
    }
    let h = select(0u, 1u, hi);
    var qv = (vec4<u32>(u.x) >> (vec4<u32>(0u, 8u, 16u, 24u) + 4u * h)) & vec4<u32>(15u);
    if (WDTYPE == 6u || WDTYPE == 9u) {
        qv |= ((vec4<u32>(u.y) >> (vec4<u32>(0u, 1u, 2u, 3u) + 16u * h)) & vec4<u32>(1u)) << vec4<u32>(4u);
    }
    return vec4<f32>(qv);
}
fn halves_scaled() -> bool {
    return WDTYPE == 8u || WDTYPE == 12u;
}
// The `bits`-bit unsigned bytes q of x as q − 2^(bits−1): flipping the top bit and sign-extending
// gives it in the shifts an unsigned decode costs anyway (no subtraction per element).
fn centred_bytes(x: u32, bits: u32) -> vec4<f32> {
    let top = (1u << (bits - 1u)) * 0x01010101u;
    let up = vec4<u32>(32u - bits) - vec4<u32>(0u, 8u, 16u, 24u);
    return vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(x ^ top) << up) >> vec4<u32>(32u - bits));
}
// The values of q4w's word u (c from q4s).
fn q4lo(u: vec2<u32>, c: vec2<f32>) -> vec4<f32> {
    if (WDTYPE == 11u) {
        return q2k_vals(q_bytes(u.x) & vec4<u32>(3u), u.y & 0xffu, c);
    }
    if (WDTYPE == 13u || WDTYPE == 14u) {
        return c.x * iq4_values((vec4<u32>(u.x) >> vec4<u32>(0u, 8u, 16u, 24u)) & vec4<u32>(15u));
    }
    if (halves_scaled()) {
        return c.x * q4_int(u, false);
    }
    return q4_int(u, false) * c.x + c.y;
}
fn q4hi(u: vec2<u32>, c: vec2<f32>) -> vec4<f32> {
    if (WDTYPE == 11u) {
        return q2k_vals(q_bytes(u.x) >> vec4<u32>(2u), u.y >> 8u, c);
    }
    if (WDTYPE == 13u || WDTYPE == 14u) {
        return c.x * iq4_values((vec4<u32>(u.x) >> vec4<u32>(4u, 12u, 20u, 28u)) & vec4<u32>(15u));
    }
    if (halves_scaled()) {
        return c.y * q4_int(u, true);
    }
    return q4_int(u, true) * c.x + c.y;
}

// Block pieces shared by the forward products (matmul_common.wgsl) and the input gradient
// (matmul_backward.wgsl).
// Words r + 1 .. r + 4 of the 8 words (a, c), r in 0..3.
fn words_after(a: vec4<u32>, c: vec4<u32>, r: u32) -> vec4<u32> {
    let lo = select(vec4<u32>(a.yzw, c.x), vec4<u32>(a.zw, c.xy), r == 1u);
    let hi = select(vec4<u32>(a.w, c.xyz), c, r == 3u);
    return select(lo, hi, r >= 2u);
}
// Word r of a.
fn word_at(a: vec4<u32>, r: u32) -> u32 {
    return select(select(a.x, a.y, r == 1u), select(a.z, a.w, r == 3u), r >= 2u);
}
// Q4_0 / Q4_1 / Q5_0 / Q5_1 / Q4_K / Q5_K block b: (scale, offset) as q4s gives them and its
// 4 word pairs as q4w's, (u[i], u2[i]) = q4w(b, i).
struct Q4Block {
    c: vec2<f32>,
    u: vec4<u32>,
    u2: vec4<u32>,
}
// A Q4_0 / Q4_1 block from its scale word and quant words (as q4_block_v4).
fn q4_words_block(sc: u32, u: vec4<u32>) -> Q4Block {
    let d = unpack2x16float(sc);
    return Q4Block(select(d, vec2<f32>(d.x, -8.0 * d.x), WDTYPE == 4u), u, vec4<u32>());
}
// The 4 Q4_0 / Q4_1 blocks in the 5 vec4s v0..v4 (blocks b..b + 3, b a multiple of 4: 5 words
// each, so they start at an aligned vec4).
fn q4_quad_words(v0: vec4<u32>, v1: vec4<u32>, v2: vec4<u32>, v3: vec4<u32>, v4: vec4<u32>) -> array<Q4Block, 4> {
    return array<Q4Block, 4>(q4_words_block(v0.x, vec4<u32>(v0.yzw, v1.x)), q4_words_block(v1.y, vec4<u32>(v1.zw, v2.xy)),
                             q4_words_block(v2.z, vec4<u32>(v2.w, v3.xyz)), q4_words_block(v3.w, v4));
}
