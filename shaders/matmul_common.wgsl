// The forward weight product's parameters, bindings and x / W row helpers, shared by
// matmul.wgsl (forward products) and matvec.wgsl (decode): prepended to both at pipeline
// build, after weights.wgsl and weight_blocks.wgsl. The product is described in matmul.wgsl.

struct Params {
    t: u32,          // rows of x and y
    k: u32,          // inner dimension
    n: u32,          // output columns computed by this dispatch
    n_off: u32,      // first output column written
    ldy: u32,        // row stride of y
    w_row0: u32,     // first weight row (within this piece) used
    has_bias: u32,
    accumulate: u32, // 1: add into y (fused residual); 2 / 3: y = act(y) · value (`stored`)
    b_row0: u32,     // first weight row in the whole tensor: the bias belongs to the weight rows
    lora_r: u32,     // rank of a LoRA term added as y is stored (0: none; matmul_lora.wgsl)
    lora_scale: f32,
    wgroup: u32,     // rows whose blocks are stored side by side (`wblock` in weights.wgsl)
    lora_ld: u32,    // row stride of the LoRA u (several adapters' x·Aᵀ side by side: `lora_u0`)
    lora_seg0: u32,  // weight rows from which u's next lora_r columns serve (0xffffffff: none)
    lora_seg1: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
// A LoRA adapter's term y += scale · u Bᵀ, added by the product as it stores y (q.lora_r > 0):
// u = x Aᵀ [t, r] computed before, B [N, r]; bound to other buffers when lora_r is 0.
@group(0) @binding(5) var<storage, read> lora_u: array<f32>;
@group(0) @binding(6) var<storage, read> lora_b: array<f32>;

// What a product stores at y[idx] for its value v, by `accumulate`: v; v + y (a fused
// residual add); or act(y) · v with act SiLU (2) or GELU-tanh (3): the gated MLP's up
// projection of one row written over the gate projection's output, so that decoding's
// activation needs no dispatch of its own (on lavapipe each costs ~40 µs of thread handoffs).
// Only the one-row products' few stores take it (`Recorder::linear_gated`); the stores
// written out many times over take `added`.
fn stored(v: f32, idx: u32) -> f32 {
    if (q.accumulate >= 2u) {
        return act_kind(y[idx], q.accumulate - 2u) * v;
    }
    return added(v, idx);
}
// `stored` for accumulate 0 or 1.
fn added(v: f32, idx: u32) -> f32 {
    if (q.accumulate == 1u) {
        return v + y[idx];
    }
    return v;
}

// Mesa lavapipe before 23.x ("inline uniforms") rebuilds and re-JITs a shader at every
// dispatch whose loop bounds or branches depend only on uniform-buffer values, which costs
// milliseconds per dispatch. Every entry point therefore reads its parameters through these,
// adding the workgroup's z id (always 0: every dispatch here is (x, y, 1)), which the driver
// cannot see through.
var<private> q: Params;
fn opaque_params(v: Params, z: u32) -> Params {
    return Params(v.t + z, v.k + z, v.n + z, v.n_off + z, v.ldy + z, v.w_row0 + z, v.has_bias + z,
                  v.accumulate + z, v.b_row0 + z, v.lora_r + z, v.lora_scale, v.wgroup + z, v.lora_ld + z,
                  v.lora_seg0 + z, v.lora_seg1 + z, v._pad0);
}

// The register-blocked and decode kernels (k % 32 == 0, see matmul.wgsl) see x (binding 1) and
// the weights (`wvec`) as vec4s: with k % 32 == 0 every x row and every float weight row starts
// on 16 bytes. Quantized blocks (5 or 9 words) are read as words via `wword`.
@group(0) @binding(1) var<storage, read> xv: array<vec4<f32>>;

// x rows r (already clamped to the last row) at k = kk..kk+3, transposed: column c holds
// k = kk + c, so `xt4(r, kk) * w` is the vector of the four rows' dot products with w.
fn xt4(r: vec4<u32>, kk: u32) -> mat4x4<f32> {
    let kq = q.k >> 2u;
    let c = kk >> 2u;
    return transpose(mat4x4<f32>(xv[r.x * kq + c], xv[r.y * kq + c], xv[r.z * kq + c], xv[r.w * kq + c]));
}

// Rows t0..t0+3 of x, clamped to the last row (their results are not stored).
fn rows4(t0: u32) -> vec4<u32> {
    return min(vec4<u32>(t0) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(q.t - 1u));
}

// Where rows t0..t0+3 of the LoRA u start for weight row `row` (in the whole tensor): a stacked
// product's segments (q | k | v) each read their own adapter's r columns of u.
fn lora_u0(t0: u32, row: u32) -> vec4<u32> {
    return rows4(t0) * q.lora_ld + vec4<u32>(lora_seg_col(row));
}
// The first column of u that weight row `row`'s segment reads.
fn lora_seg_col(row: u32) -> u32 {
    let seg = select(0u, 1u, row >= q.lora_seg0) + select(0u, 1u, row >= q.lora_seg1);
    return seg * q.lora_r;
}
// The term of row t at weight row `row`: scale · u[t, seg..seg + r] · B[row, :] (the decode
// products' stores, a value at a time).
fn lora_dot(t: u32, row: u32) -> f32 {
    let u0 = t * q.lora_ld + lora_seg_col(row);
    let b0 = row * q.lora_r;
    var s = 0.0;
    for (var i = 0u; i < q.lora_r; i++) {
        s = fma(lora_u[u0 + i], lora_b[b0 + i], s);
    }
    return s * q.lora_scale;
}

// First element (float pieces) or block (quantized) of the weight row for output column n,
// clamped to the last column (its results are not stored).
fn row_elem(n: u32) -> u32 {
    return (q.w_row0 + min(n, q.n - 1u)) * q.k;
}
fn row_block(n: u32) -> u32 {
    return wblock(q.w_row0 + min(n, q.n - 1u), 0u, q.k >> 5u, q.wgroup);
}
// The offset of block kb from a row's `row_block` (`wblock`).
fn wk(kb: u32) -> u32 {
    let u = wunit();
    return (kb & ~(u - 1u)) * q.wgroup + (kb & (u - 1u));
}

// The vec4 index of x row r[i] at k (for the shared rows, xt4_shared in reduce_common.wgsl).
fn row_vec4(r: vec4<u32>, i: u32, k: u32) -> u32 {
    return r[i] * (q.k >> 2u) + (k >> 2u);
}

// Q8_0 / Q4_0 / Q4_1 (and Q5_0 / Q5_1 / Q4_K / Q5_K, below) blocks a vec4 at a time: llvmpipe
// loads lane by lane, and a vec4 costs
// about what a word does, so the one-row product (where loads, not FMAs, set the time) and the
// register-blocked ones read a block's words (scale, then 4 or 8 data words) from the aligned
// vec4s they always lie in: Q4's 5 words start at word offset 5b % 4 = b % 4 and fit in 2
// vec4s (2 loads instead of 5), Q8_0's 9 at 9b % 4 = b % 4 in 3 (3 instead of 9).
// `wvec7` reads the piece at binding 7 (binding 2 of the other kernels) as vec4s; the host takes
// these kernels only for pieces of a multiple of 16 bytes, so every such vec4 exists.

// Q8_0 block b: its scale and its 8 quant words (k = 4i.. in lo, 16 + 4i.. in hi).
struct Q8Block {
    d: f32,
    lo: vec4<u32>,
    hi: vec4<u32>,
}
fn q8_block_v4(b: u32) -> Q8Block {
    let r = b & 3u;
    let v = (9u * b) >> 2u;
    let a = wvec7(v);
    let c = wvec7(v + 1u);
    let e = wvec7(v + 2u);
    return Q8Block(unpack2x16float(word_at(a, r)).x, words_after(a, c, r), words_after(c, e, r));
}
fn q4_block_v4(b: u32) -> Q4Block {
    let r = b & 3u;
    let v = (5u * b) >> 2u;
    let a = wvec7(v);
    let sc = unpack2x16float(word_at(a, r));
    return Q4Block(select(sc, vec2<f32>(sc.x, -8.0 * sc.x), WDTYPE == 4u), words_after(a, wvec7(v + 1u), r),
                   vec4<u32>());
}
// Q5_0 / Q5_1: 6 words (scale, qh, 4 quant words) at word offset 0 or 2 of two vec4s.
fn q5_block_v4(b: u32) -> Q4Block {
    let v = (3u * b) >> 1u;
    let a = wvec7(v);
    let c = wvec7(v + 1u);
    let odd = (b & 1u) == 1u;
    let sc = unpack2x16float(select(a.x, a.z, odd));
    let qh = select(a.y, a.w, odd);
    return Q4Block(select(sc, vec2<f32>(sc.x, -16.0 * sc.x), WDTYPE == 6u), select(vec4<u32>(a.zw, c.xy), c, odd),
                   vec4<u32>(qh) >> vec4<u32>(0u, 4u, 8u, 12u));
}
// Q4_K / Q5_K: super-block b / 8's head (d | dmin, the 12 scale bytes) is its first vec4, Q5_K's
// fifth bits the next two, and sub-block b % 8's quants lie in two whole vec4s (low or high
// nibbles): 3 loads instead of 10 (Q5_K 5 instead of 18).
fn qk_block_v4(b: u32) -> Q4Block {
    let q5 = WDTYPE == 10u;
    let v = (b >> 3u) * select(9u, 11u, q5);
    let g = b & 7u;
    let head = wvec7(v);
    let qv = v + select(1u, 3u, q5) + 2u * (g >> 1u);
    let q0 = wvec7(qv);
    let q1 = wvec7(qv + 1u);
    let sh = vec4<u32>(4u * (g & 1u));
    let m = vec4<u32>(0x0f0f0f0fu);
    var u: vec4<u32>;
    var u2: vec4<u32>;
    if (q5) {
        let bit = vec4<u32>(0x01010101u);
        u = ((q0 >> sh) & m) | (((wvec7(v + 1u) >> vec4<u32>(g)) & bit) << vec4<u32>(4u));
        u2 = ((q1 >> sh) & m) | (((wvec7(v + 2u) >> vec4<u32>(g)) & bit) << vec4<u32>(4u));
    } else {
        u = ((q0 >> sh) & m) | (((q1 >> sh) & m) << vec4<u32>(4u));
    }
    // q4k_scale_min (weight_blocks.wgsl) on the head's scale words.
    let s = head.yzw;
    let lo = vec2<u32>(q4k_byte(s, g) & 63u, q4k_byte(s, g + 4u) & 63u);
    let e = q4k_byte(s, g + 4u);
    let hi = vec2<u32>((e & 15u) | ((q4k_byte(s, (g - 4u) & 15u) >> 6u) << 4u),
                       (e >> 4u) | ((q4k_byte(s, g) >> 6u) << 4u));
    let sm = select(hi, lo, g < 4u);
    let dm = unpack2x16float(head.x);
    return Q4Block(vec2<f32>(dm.x * f32(sm.x), -(dm.y * f32(sm.y))), u, u2);
}
// Byte n (0..11) of the scale words s.
fn q4k_byte(s: vec3<u32>, n: u32) -> u32 {
    let word = select(select(s.x, s.y, n >= 4u), s.z, n >= 8u);
    return (word >> (8u * (n % 4u))) & 0xffu;
}
// The 4 Q4_0 / Q4_1 blocks from b, a multiple of 4 (5 words each, so they start at an aligned
// vec4): 5 vec4 loads. The weight groups' reads (matmul.wgsl's GROUPED, matvec_one_row.wgsl's
// ONE_GROUPED).
fn q4_quad(b: u32) -> array<Q4Block, 4> {
    let v = (5u * (b & ~3u)) >> 2u;
    return q4_quad_words(wvec7(v), wvec7(v + 1u), wvec7(v + 2u), wvec7(v + 3u), wvec7(v + 4u));
}
// The 4 Q8_0 blocks from b, a multiple of 4 (9 words each, so they start at an aligned vec4):
// 9 vec4 loads where q8_block_v4 takes 12. The weight groups' reads, as q4_quad.
fn q8_quad(b: u32) -> array<Q8Block, 4> {
    let v = (9u * (b & ~3u)) >> 2u;
    let v0 = wvec7(v);
    let v1 = wvec7(v + 1u);
    let v2 = wvec7(v + 2u);
    let v3 = wvec7(v + 3u);
    let v4 = wvec7(v + 4u);
    let v5 = wvec7(v + 5u);
    let v6 = wvec7(v + 6u);
    return array<Q8Block, 4>(Q8Block(unpack2x16float(v0.x).x, vec4<u32>(v0.yzw, v1.x), vec4<u32>(v1.yzw, v2.x)),
                             Q8Block(unpack2x16float(v2.y).x, vec4<u32>(v2.zw, v3.xy), vec4<u32>(v3.zw, v4.xy)),
                             Q8Block(unpack2x16float(v4.z).x, vec4<u32>(v4.w, v5.xyz), vec4<u32>(v5.w, v6.xyz)),
                             Q8Block(unpack2x16float(v6.w).x, wvec7(v + 7u), wvec7(v + 8u)));
}
// Block b of any of the types above but Q8_0.
fn q4x_block_v4(b: u32) -> Q4Block {
    if (WDTYPE == 7u || WDTYPE == 10u) {
        return qk_block_v4(b);
    }
    if (WDTYPE == 6u || WDTYPE == 9u) {
        return q5_block_v4(b);
    }
    return q4_block_v4(b);
}
