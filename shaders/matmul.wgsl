// y[t, n_off + n] (+)= sum_k x[t, k] * W[w_row0 + n, k] + bias[b_row0 + n]
// W is one row-piece of a weight matrix [N, K] (Hugging Face layout: y = x W^T), read through
// `load_w` (weights.wgsl, prepended at build): f32, f16 / bf16 or llama.cpp quantized blocks.
// Entry points (`Recorder::matmul` picks one per weight piece):
//   k % 32 == 0 (every real model): `matvec_f` / `matvec_q` (matvec.wgsl) for at most 8 rows
//     of x, `matmul_f` / `matmul_q` (register-blocked 32 × 64 tiles, here) above; float /
//     quantized weights, `matmul_q_sums` (64 × 64 tiles, at the end) for the quantized types
//     whose scales factor out of the block sums (`matmul_q_sums_run`, its 8-lane form, for
//     fewer than 64 rows on CPU devices).
//   any other k: `matvec_general` (matvec.wgsl) for at most 4 rows, `matmul_general` (16×16
//     tiles, here) above.
// `Params`, the bindings and the row helpers are in matmul_common.wgsl, the block decoders in
// weight_blocks.wgsl (both prepended at build).

// Any k: 16×16 output tiles; x and W tiles go through workgroup memory.
const TILE: u32 = 16u;
var<workgroup> xs: array<array<f32, 16>, 16>;
var<workgroup> ws: array<array<f32, 16>, 16>;

@compute @workgroup_size(16, 16)
fn matmul_general(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    q = opaque_params(p, wg.z);
    let n0 = wg.y * TILE;
    let t0 = wg.x * TILE;
    let t = t0 + lid.y;
    let n = n0 + lid.x;
    var acc = 0.0;
    for (var k0 = 0u; k0 < q.k; k0 += TILE) {
        let kx = k0 + lid.x;
        // x tile: row t0+ly, column k0+lx.  W tile: row n0+ly, column k0+lx.
        xs[lid.y][lid.x] = select(0.0, x[t * q.k + kx], t < q.t && kx < q.k);
        let wn = n0 + lid.y;
        ws[lid.y][lid.x] = select(0.0, load_w(welem(q.w_row0 + wn, kx, q.k, q.wgroup)), wn < q.n && kx < q.k);
        workgroupBarrier();
        for (var j = 0u; j < TILE; j++) {
            acc += xs[lid.y][j] * ws[lid.x][j];
        }
        workgroupBarrier();
    }
    if (t < q.t && n < q.n) {
        let col = q.n_off + n;
        if (q.has_bias != 0u) {
            acc += bias[q.b_row0 + n];
        }
        let idx = t * q.ldy + col;
        y[idx] = added(acc, idx);
    }
}

// ---- register-blocked product (and decode product, matvec.wgsl), k % 32 == 0 ---------------
// On CPU implementations (lavapipe / llvmpipe) the invocations of a workgroup are SIMD lanes:
// arithmetic runs 8 lanes at once, but every load from a buffer (or from workgroup memory) is
// a scalar load per lane. What counts is FMAs per loaded value, so each thread keeps a block of
// outputs in registers and reads x and W straight from memory (staging tiles in workgroup
// memory only adds a store and a second load; measured slower), a whole vec4 at a time where
// the layout allows. The k loop runs over 32-element blocks: one quant block, 8 vec4 of x.

// y[t, n] for rows t0 + i (acc[j][i]) and columns n0 + j * stride, with bias and accumulate.
// Written out: a rolled loop indexing acc dynamically costs ~10 ns an output on lavapipe
// (measured on the input-gradient kernels' stores).
// `lora`: add the LoRA term here (kernels that have not added it to acc themselves).
fn store_block(acc: array<vec4<f32>, 8>, t0: u32, n0: u32, stride: u32, lora: bool) {
    store_col4(acc[0u], t0, n0, lora);
    store_col4(acc[1u], t0, n0 + stride, lora);
    store_col4(acc[2u], t0, n0 + 2u * stride, lora);
    store_col4(acc[3u], t0, n0 + 3u * stride, lora);
    store_col4(acc[4u], t0, n0 + 4u * stride, lora);
    store_col4(acc[5u], t0, n0 + 5u * stride, lora);
    store_col4(acc[6u], t0, n0 + 6u * stride, lora);
    store_col4(acc[7u], t0, n0 + 7u * stride, lora);
}
// y[t0 .. t0 + 4, n] = v (+ bias[n]) (+ the LoRA term) (+ y; never the gated store, which
// only one-row products take: written out here, its activation made JIT builds ~1.6× as long).
fn store_col4(v: vec4<f32>, t0: u32, n: u32, lora: bool) {
    if (n >= q.n) {
        return;
    }
    var b = 0.0;
    if (q.has_bias != 0u) {
        b = bias[q.b_row0 + n];
    }
    var o = v + vec4<f32>(b);
    if (lora && q.lora_r != 0u) {
        o += lora_col4(t0, n);
    }
    let col = q.n_off + n;
    store_out(t0, col, o.x);
    store_out(t0 + 1u, col, o.y);
    store_out(t0 + 2u, col, o.z);
    store_out(t0 + 3u, col, o.w);
}
fn store_out(t: u32, col: u32, v: f32) {
    if (t < q.t) {
        let idx = t * q.ldy + col;
        y[idx] = added(v, idx);
    }
}

// More than MATVEC_MAX_ROWS rows: a 64-thread workgroup computes a 32 × 64 tile (MATMUL_TILE_T
// × MATMUL_TILE_N in kernels.rs); each thread 4 rows × RB_N = 8 columns strided by RB_WN.
// Measured on lavapipe: 4 × 8 beats 4 × 4, 4 × 12, 4 × 16, 8 × 4 and 8 × 8 (register spills).
// The per-column statements are written out (here and in the matvec kernels): Mesa's NIR does
// not reliably unroll such loops, and the written-out form measured 10-25% faster.
const RB_N: u32 = 8u;
const RB_WN: u32 = 8u; // threads along n; the other 8 of the 64 go along t
// Whole weight groups (a pipeline constant; the runs q_sums / q_sums16 of Q8_0 / Q4_0 / Q4_1
// weights stored in groups of 8 rows, gpu/tensor.rs): a thread's 8 columns are one group's rows,
// n0 .. n0 + 7, whose blocks at one k lie side by side, 10 vec4 loads for the 8 where the
// strided columns take 16, Q8_0 18 for 24 (lavapipe loads lane by lane; a 64 × 576 × 1536
// Q4_1 product: +8 %).
override GROUPED: bool = false;
// The step between a thread's columns.
fn col_step() -> u32 {
    return select(RB_WN, 1u, GROUPED);
}
// A run's first column: `sets` of 64 columns a workgroup, lane j's columns from j (strided) or
// from 8j (GROUPED).
fn run_col0(wg_y: u32, lane: u32, sets: u32) -> u32 {
    return wg_y * (sets * RB_N * RB_WN) + select(lane, lane * RB_N, GROUPED);
}
const RED_WG: u32 = 64u; // reduce.wgsl / reduce_subgroup.wgsl (for lanes8), prepended at build

// One k0 step of matmul_f, in the order of the written-out loop it replaced (fewer live
// registers: measured): `f_words` the packed weights of columns e[j] at k0..k0+7, then
// `f_fma(.., false, xl)` for k0..k0+3 and `f_fma(.., true, xh)` for k0+4..k0+7.
fn f_words(e: array<u32, RB_N>, k0: u32) -> array<vec4<u32>, RB_N> {
    var u: array<vec4<u32>, RB_N>;
    u[0u] = wf_u(e[0u] + k0);
    u[1u] = wf_u(e[1u] + k0);
    u[2u] = wf_u(e[2u] + k0);
    u[3u] = wf_u(e[3u] + k0);
    u[4u] = wf_u(e[4u] + k0);
    u[5u] = wf_u(e[5u] + k0);
    u[6u] = wf_u(e[6u] + k0);
    u[7u] = wf_u(e[7u] + k0);
    return u;
}
fn f_fma(acc: ptr<function, array<vec4<f32>, 8>>, e: array<u32, RB_N>, k0: u32,
         u: array<vec4<u32>, RB_N>, hi: bool, x: mat4x4<f32>) {
    if (hi) {
        (*acc)[0u] += x * wf_hi(e[0u] + k0, u[0u]);
        (*acc)[1u] += x * wf_hi(e[1u] + k0, u[1u]);
        (*acc)[2u] += x * wf_hi(e[2u] + k0, u[2u]);
        (*acc)[3u] += x * wf_hi(e[3u] + k0, u[3u]);
        (*acc)[4u] += x * wf_hi(e[4u] + k0, u[4u]);
        (*acc)[5u] += x * wf_hi(e[5u] + k0, u[5u]);
        (*acc)[6u] += x * wf_hi(e[6u] + k0, u[6u]);
        (*acc)[7u] += x * wf_hi(e[7u] + k0, u[7u]);
    } else {
        (*acc)[0u] += x * wf_lo(e[0u] + k0, u[0u]);
        (*acc)[1u] += x * wf_lo(e[1u] + k0, u[1u]);
        (*acc)[2u] += x * wf_lo(e[2u] + k0, u[2u]);
        (*acc)[3u] += x * wf_lo(e[3u] + k0, u[3u]);
        (*acc)[4u] += x * wf_lo(e[4u] + k0, u[4u]);
        (*acc)[5u] += x * wf_lo(e[5u] + k0, u[5u]);
        (*acc)[6u] += x * wf_lo(e[6u] + k0, u[6u]);
        (*acc)[7u] += x * wf_lo(e[7u] + k0, u[7u]);
    }
}

@compute @workgroup_size(64)
fn matmul_f(ln: Lane) {
    q = opaque_params(p, ln.wg.z);
    let lid = ln.lid;
    let n0 = ln.wg.y * (RB_N * RB_WN) + lid % RB_WN;
    let t0 = ln.wg.x * 32u + (lid / RB_WN) * 4u;
    let r = rows4(t0);
    var e: array<u32, RB_N>;
    e[0u] = row_elem(n0);
    e[1u] = row_elem(n0 + RB_WN);
    e[2u] = row_elem(n0 + 2u * RB_WN);
    e[3u] = row_elem(n0 + 3u * RB_WN);
    e[4u] = row_elem(n0 + 4u * RB_WN);
    e[5u] = row_elem(n0 + 5u * RB_WN);
    e[6u] = row_elem(n0 + 6u * RB_WN);
    e[7u] = row_elem(n0 + 7u * RB_WN);
    var acc: array<vec4<f32>, 8>;
    // Two copies of the loop, chosen once (lavapipe would run both sides of a branch inside).
    if (lanes8(ln)) {
        // Invocation j of the run holds row j / 2, vec4 j % 2 of the 8 k's.
        let j = lid % RB_WN;
        let xi = row_vec4(r, j >> 1u, 0u) + (j & 1u);
        for (var k0 = 0u; k0 < q.k; k0 += 8u) {
            // Here the x rows first (measured faster: the shuffles wait on the load).
            let mine = xv[xi + (k0 >> 2u)];
            let xl = xt4_shared(ln, mine, 0u, 2u);
            let xh = xt4_shared(ln, mine, 1u, 2u);
            let u = f_words(e, k0);
            f_fma(&acc, e, k0, u, false, xl);
            f_fma(&acc, e, k0, u, true, xh);
        }
    } else {
        for (var k0 = 0u; k0 < q.k; k0 += 8u) {
            let u = f_words(e, k0);
            f_fma(&acc, e, k0, u, false, xt4(r, k0));
            f_fma(&acc, e, k0, u, true, xt4(r, k0 + 4u));
        }
    }
    store_block(acc, t0, n0, RB_WN, true);
}

// Step i of a quant block kb in matmul_q: Q8_0 (scales d) against x at k0 + 4i, or Q4 / Q5_0
// (scales and minimums c): the block's word i, then x at k0 + 4i (low nibbles) and at
// k0 + 16 + 4i (high), in that order as in matmul_f.
fn matmul_q8_step(acc: ptr<function, array<vec4<f32>, 8>>, b0: array<u32, RB_N>, kb: u32, i: u32,
                  d: array<f32, RB_N>, xi: mat4x4<f32>) {
    (*acc)[0u] += xi * (q8w4(wword((b0[0u] + wk(kb)) * 9u + 1u + i)) * d[0u]);
    (*acc)[1u] += xi * (q8w4(wword((b0[1u] + wk(kb)) * 9u + 1u + i)) * d[1u]);
    (*acc)[2u] += xi * (q8w4(wword((b0[2u] + wk(kb)) * 9u + 1u + i)) * d[2u]);
    (*acc)[3u] += xi * (q8w4(wword((b0[3u] + wk(kb)) * 9u + 1u + i)) * d[3u]);
    (*acc)[4u] += xi * (q8w4(wword((b0[4u] + wk(kb)) * 9u + 1u + i)) * d[4u]);
    (*acc)[5u] += xi * (q8w4(wword((b0[5u] + wk(kb)) * 9u + 1u + i)) * d[5u]);
    (*acc)[6u] += xi * (q8w4(wword((b0[6u] + wk(kb)) * 9u + 1u + i)) * d[6u]);
    (*acc)[7u] += xi * (q8w4(wword((b0[7u] + wk(kb)) * 9u + 1u + i)) * d[7u]);
}
// The first blocks (`row_block`) of a thread's RB_N columns n0, n0 + col_step(), ...
fn col_blocks(n0: u32) -> array<u32, RB_N> {
    let c = col_step();
    return array<u32, RB_N>(row_block(n0), row_block(n0 + c), row_block(n0 + 2u * c), row_block(n0 + 3u * c),
                            row_block(n0 + 4u * c), row_block(n0 + 5u * c), row_block(n0 + 6u * c),
                            row_block(n0 + 7u * c));
}
// GROUPED: the Q4_0 / Q4_1 blocks of the group whose block kb is at b (its two halves,
// `q4_quad` in matmul_common.wgsl).
fn group_blocks8(b: u32) -> array<Q4Block, 8> {
    let lo = q4_quad(b & ~7u);
    let hi = q4_quad((b & ~7u) + 4u);
    return array<Q4Block, 8>(lo[0u], lo[1u], lo[2u], lo[3u], hi[0u], hi[1u], hi[2u], hi[3u]);
}
fn q4_words(b0: array<u32, RB_N>, kb: u32, i: u32) -> array<vec2<u32>, RB_N> {
    var u: array<vec2<u32>, RB_N>;
    u[0u] = q4w(b0[0u] + wk(kb), i);
    u[1u] = q4w(b0[1u] + wk(kb), i);
    u[2u] = q4w(b0[2u] + wk(kb), i);
    u[3u] = q4w(b0[3u] + wk(kb), i);
    u[4u] = q4w(b0[4u] + wk(kb), i);
    u[5u] = q4w(b0[5u] + wk(kb), i);
    u[6u] = q4w(b0[6u] + wk(kb), i);
    u[7u] = q4w(b0[7u] + wk(kb), i);
    return u;
}
fn q4_fma(acc: ptr<function, array<vec4<f32>, 8>>, u: array<vec2<u32>, RB_N>, c: array<vec2<f32>, RB_N>,
          hi: bool, x: mat4x4<f32>) {
    if (hi) {
        (*acc)[0u] += x * q4hi(u[0u], c[0u]);
        (*acc)[1u] += x * q4hi(u[1u], c[1u]);
        (*acc)[2u] += x * q4hi(u[2u], c[2u]);
        (*acc)[3u] += x * q4hi(u[3u], c[3u]);
        (*acc)[4u] += x * q4hi(u[4u], c[4u]);
        (*acc)[5u] += x * q4hi(u[5u], c[5u]);
        (*acc)[6u] += x * q4hi(u[6u], c[6u]);
        (*acc)[7u] += x * q4hi(u[7u], c[7u]);
    } else {
        (*acc)[0u] += x * q4lo(u[0u], c[0u]);
        (*acc)[1u] += x * q4lo(u[1u], c[1u]);
        (*acc)[2u] += x * q4lo(u[2u], c[2u]);
        (*acc)[3u] += x * q4lo(u[3u], c[3u]);
        (*acc)[4u] += x * q4lo(u[4u], c[4u]);
        (*acc)[5u] += x * q4lo(u[5u], c[5u]);
        (*acc)[6u] += x * q4lo(u[6u], c[6u]);
        (*acc)[7u] += x * q4lo(u[7u], c[7u]);
    }
}

fn q8_scales(b0: array<u32, RB_N>, kb: u32) -> array<f32, RB_N> {
    var d: array<f32, RB_N>;
    d[0u] = unpack2x16float(wword((b0[0u] + wk(kb)) * 9u)).x;
    d[1u] = unpack2x16float(wword((b0[1u] + wk(kb)) * 9u)).x;
    d[2u] = unpack2x16float(wword((b0[2u] + wk(kb)) * 9u)).x;
    d[3u] = unpack2x16float(wword((b0[3u] + wk(kb)) * 9u)).x;
    d[4u] = unpack2x16float(wword((b0[4u] + wk(kb)) * 9u)).x;
    d[5u] = unpack2x16float(wword((b0[5u] + wk(kb)) * 9u)).x;
    d[6u] = unpack2x16float(wword((b0[6u] + wk(kb)) * 9u)).x;
    d[7u] = unpack2x16float(wword((b0[7u] + wk(kb)) * 9u)).x;
    return d;
}
fn q4_scales(b0: array<u32, RB_N>, kb: u32) -> array<vec2<f32>, RB_N> {
    var c: array<vec2<f32>, RB_N>;
    c[0u] = q4s(b0[0u] + wk(kb));
    c[1u] = q4s(b0[1u] + wk(kb));
    c[2u] = q4s(b0[2u] + wk(kb));
    c[3u] = q4s(b0[3u] + wk(kb));
    c[4u] = q4s(b0[4u] + wk(kb));
    c[5u] = q4s(b0[5u] + wk(kb));
    c[6u] = q4s(b0[6u] + wk(kb));
    c[7u] = q4s(b0[7u] + wk(kb));
    return c;
}

@compute @workgroup_size(64)
fn matmul_q(ln: Lane) {
    q = opaque_params(p, ln.wg.z);
    let lid = ln.lid;
    let n0 = ln.wg.y * (RB_N * RB_WN) + lid % RB_WN;
    let t0 = ln.wg.x * 32u + (lid / RB_WN) * 4u;
    let r = rows4(t0);
    let b0 = col_blocks(n0);
    var acc: array<vec4<f32>, 8>;
    let nb = q.k >> 5u;
    // As in matmul_f: the x rows shared across the run of 8 (one copy of the loops) or each
    // invocation's own (the other). Q8_0 steps need 4 vec4s, so invocations j and j + 4 load
    // the same one (row j % 4); Q4 steps 8 (invocation j: row j / 2, low or high half).
    let j = lid % RB_WN;
    if (lanes8(ln) && WDTYPE == 3u) {
        let xi = row_vec4(r, j & 3u, 0u);
        for (var kb = 0u; kb < nb; kb++) {
            let d = q8_scales(b0, kb);
            for (var i = 0u; i < 8u; i++) {
                let mine = xv[xi + kb * 8u + i];
                matmul_q8_step(&acc, b0, kb, i, d, xt4_shared(ln, mine, 0u, 1u));
            }
        }
    } else if (lanes8(ln)) {
        let xi = row_vec4(r, j >> 1u, 0u) + 4u * (j & 1u);
        for (var kb = 0u; kb < nb; kb++) {
            let c = q4_scales(b0, kb);
            for (var i = 0u; i < 4u; i++) {
                let mine = xv[xi + kb * 8u + i];
                let xl = xt4_shared(ln, mine, 0u, 2u);
                let xh = xt4_shared(ln, mine, 1u, 2u);
                let u = q4_words(b0, kb, i);
                q4_fma(&acc, u, c, false, xl);
                q4_fma(&acc, u, c, true, xh);
            }
        }
    } else if (WDTYPE == 3u) {
        for (var kb = 0u; kb < nb; kb++) {
            let d = q8_scales(b0, kb);
            for (var i = 0u; i < 8u; i++) {
                matmul_q8_step(&acc, b0, kb, i, d, xt4(r, kb * 32u + 4u * i));
            }
        }
    } else {
        for (var kb = 0u; kb < nb; kb++) {
            let c = q4_scales(b0, kb);
            for (var i = 0u; i < 4u; i++) {
                let u = q4_words(b0, kb, i);
                q4_fma(&acc, u, c, false, xt4(r, kb * 32u + 4u * i));
                q4_fma(&acc, u, c, true, xt4(r, kb * 32u + 16u + 4u * i));
            }
        }
    }
    store_block(acc, t0, n0, RB_WN, true);
}

// ---- matmul_q_sums: the block types whose every value is c.x · q + c.y (q4s's c, q an integer
// read from the block; `quant::scales_factor_out`): Q8_0 (c.y = 0), Q4_0, Q4_1, Q5_0, Q5_1,
// Q4_K, Q5_K; Q6_K and Q3_K as two halves of 16, each c q with its own c (sums_word).
// The scales come out of the sum: Σ x·(c.x q + c.y) = c.x·Σ x q + c.y·Σ x, so per
// element only the integer decode and the FMAs are left, the scale and offset come once per
// block (Σ x once per block for all the thread's columns). Each thread has 8 rows × 8 columns:
// it gathers its rows' x for the whole block first (two XBlocks, on the stack on CPU devices,
// where they serve as the FMAs' memory operands), then goes column by column, so one decoded
// quant serves 8 rows and only one column's partial sums are live (the 64 accumulators are
// touched once per block instead of at every FMA: fewer spills on lavapipe). Measured on
// lavapipe against matmul_q (4 × 8, scales per element): 1.3-1.6× the GFLOP per CPU-second.
// m[i]: the rows' x at k = 32kb + 4i..4i+3, transposed as xt4 gives it; sum: the rows' Σ x.
struct XBlock {
    m: array<mat4x4<f32>, 8>,
    sum: vec4<f32>,
}
fn x_block_sum(xb: ptr<function, XBlock>) {
    if (WDTYPE == 3u || halves_scaled()) {
        return; // no offsets
    }
    let s = (*xb).m[0u] + (*xb).m[1u] + (*xb).m[2u] + (*xb).m[3u] + (*xb).m[4u] + (*xb).m[5u] +
            (*xb).m[6u] + (*xb).m[7u];
    (*xb).sum = s[0u] + s[1u] + s[2u] + s[3u];
}
// From memory (each invocation its rows).
fn x_block(r: vec4<u32>, kb: u32) -> XBlock {
    var xb: XBlock;
    xb.m[0u] = xt4(r, kb * 32u);
    xb.m[1u] = xt4(r, kb * 32u + 4u);
    xb.m[2u] = xt4(r, kb * 32u + 8u);
    xb.m[3u] = xt4(r, kb * 32u + 12u);
    xb.m[4u] = xt4(r, kb * 32u + 16u);
    xb.m[5u] = xt4(r, kb * 32u + 20u);
    xb.m[6u] = xt4(r, kb * 32u + 24u);
    xb.m[7u] = xt4(r, kb * 32u + 28u);
    x_block_sum(&xb);
    return xb;
}
// Shared across the run of 8 (lanes8): invocation j holds `v`, row j's 8 vec4s of the block;
// rows 4h..4h+3.
fn x_block_shared(ln: Lane, v: array<vec4<f32>, 8>, h: u32) -> XBlock {
    var xb: XBlock;
    xb.m[0u] = xt4_shared(ln, v[0u], 4u * h, 1u);
    xb.m[1u] = xt4_shared(ln, v[1u], 4u * h, 1u);
    xb.m[2u] = xt4_shared(ln, v[2u], 4u * h, 1u);
    xb.m[3u] = xt4_shared(ln, v[3u], 4u * h, 1u);
    xb.m[4u] = xt4_shared(ln, v[4u], 4u * h, 1u);
    xb.m[5u] = xt4_shared(ln, v[5u], 4u * h, 1u);
    xb.m[6u] = xt4_shared(ln, v[6u], 4u * h, 1u);
    xb.m[7u] = xt4_shared(ln, v[7u], 4u * h, 1u);
    if (WDTYPE != 3u && !halves_scaled()) {
        // Each invocation sums its own row (fewer adds than summing the transposed blocks).
        let o = v[0u] + v[1u] + v[2u] + v[3u] + v[4u] + v[5u] + v[6u] + v[7u];
        xb.sum = xt4_shared(ln, vec4<f32>(o.x + o.y + o.z + o.w, 0.0, 0.0, 0.0), 4u * h, 1u)[0u];
    }
    return xb;
}
fn x_row_block(xi: u32, kb: u32) -> array<vec4<f32>, 8> {
    let i = xi + kb * 8u;
    return array<vec4<f32>, 8>(xv[i], xv[i + 1u], xv[i + 2u], xv[i + 3u], xv[i + 4u], xv[i + 5u],
                               xv[i + 6u], xv[i + 7u]);
}
// Quant word i of block b (k = 4i.. and 16+4i..) against the thread's rows into s: columns 0 / 2
// rows 0..3 / 4..7, and for Q6_K / Q3_K (whose halves k < 16 and k ≥ 16 have scales of their
// own) the hi halves apart in columns 1 / 3. block_dot writes the four words out: a loop over
// i that NIR leaves rolled (it did for the types reading two words, Q5_*, Q6_K, Q3_K) indexes
// the XBlocks dynamically, which lavapipe lowers to select ladders (measured 4-5× slower).
fn sums_word(s: ptr<function, mat4x4<f32>>, b: u32, i: u32, xa: ptr<function, XBlock>,
             xc: ptr<function, XBlock>) {
    sums_word_u(s, q4w(b, i), i, xa, xc);
}
fn sums_word_u(s: ptr<function, mat4x4<f32>>, u: vec2<u32>, i: u32, xa: ptr<function, XBlock>,
               xc: ptr<function, XBlock>) {
    let lo = q4_int(u, false);
    let hi = q4_int(u, true);
    if (halves_scaled()) {
        (*s)[0u] = fma_mv((*xa).m[i], lo, (*s)[0u]);
        (*s)[1u] = fma_mv((*xa).m[4u + i], hi, (*s)[1u]);
        (*s)[2u] = fma_mv((*xc).m[i], lo, (*s)[2u]);
        (*s)[3u] = fma_mv((*xc).m[4u + i], hi, (*s)[3u]);
    } else {
        (*s)[0u] = fma_mv((*xa).m[4u + i], hi, fma_mv((*xa).m[i], lo, (*s)[0u]));
        (*s)[2u] = fma_mv((*xc).m[4u + i], hi, fma_mv((*xc).m[i], lo, (*s)[2u]));
    }
}
// The thread's 8 rows (xa: 0..3, xc: 4..7) dotted with block b, added to a (a[0] rows 0..3).
fn block_dot(a: mat2x4<f32>, b: u32, xa: ptr<function, XBlock>, xc: ptr<function, XBlock>) -> mat2x4<f32> {
    if (WDTYPE == 3u) {
        var sa: vec4<f32>;
        var sc: vec4<f32>;
        let base = b * 9u;
        for (var i = 0u; i < 8u; i++) {
            let qv = q8w4(wword(base + 1u + i));
            sa += (*xa).m[i] * qv;
            sc += (*xc).m[i] * qv;
        }
        let d = unpack2x16float(wword(base)).x;
        return mat2x4<f32>(fma(vec4<f32>(d), sa, a[0u]), fma(vec4<f32>(d), sc, a[1u]));
    }
    var s: mat4x4<f32>;
    sums_word(&s, b, 0u, xa, xc);
    sums_word(&s, b, 1u, xa, xc);
    sums_word(&s, b, 2u, xa, xc);
    sums_word(&s, b, 3u, xa, xc);
    let c = q4s(b);
    if (halves_scaled()) {
        return mat2x4<f32>(fma(vec4<f32>(c.x), s[0u], fma(vec4<f32>(c.y), s[1u], a[0u])),
                           fma(vec4<f32>(c.x), s[2u], fma(vec4<f32>(c.y), s[3u], a[1u])));
    }
    return mat2x4<f32>(fma(vec4<f32>(c.x), s[0u], fma(vec4<f32>(c.y), (*xa).sum, a[0u])),
                       fma(vec4<f32>(c.x), s[2u], fma(vec4<f32>(c.y), (*xc).sum, a[1u])));
}
// block_dot of Q8_0 / Q4_0 / Q4_1 with the block's words read as vec4s (w4).
fn block_dot_v4(a: mat2x4<f32>, b: u32, xa: ptr<function, XBlock>, xc: ptr<function, XBlock>) -> mat2x4<f32> {
    if (WDTYPE == 3u) {
        return q8_block_dot(a, q8_block_v4(b), xa, xc);
    }
    return q4_block_dot(a, q4x_block_v4(b), xa, xc);
}
// Q8_0 block k dotted with the 8 rows, added to a.
fn q8_block_dot(a: mat2x4<f32>, k: Q8Block, xa: ptr<function, XBlock>, xc: ptr<function, XBlock>) -> mat2x4<f32> {
    let q = array<vec4<f32>, 8>(q8w4(k.lo.x), q8w4(k.lo.y), q8w4(k.lo.z), q8w4(k.lo.w), q8w4(k.hi.x),
                                q8w4(k.hi.y), q8w4(k.hi.z), q8w4(k.hi.w));
    var sa = (*xa).m[0u] * q[0u] + (*xa).m[1u] * q[1u] + (*xa).m[2u] * q[2u] + (*xa).m[3u] * q[3u];
    sa += (*xa).m[4u] * q[4u] + (*xa).m[5u] * q[5u] + (*xa).m[6u] * q[6u] + (*xa).m[7u] * q[7u];
    var sc = (*xc).m[0u] * q[0u] + (*xc).m[1u] * q[1u] + (*xc).m[2u] * q[2u] + (*xc).m[3u] * q[3u];
    sc += (*xc).m[4u] * q[4u] + (*xc).m[5u] * q[5u] + (*xc).m[6u] * q[6u] + (*xc).m[7u] * q[7u];
    return mat2x4<f32>(fma(vec4<f32>(k.d), sa, a[0u]), fma(vec4<f32>(k.d), sc, a[1u]));
}
// Block k (a Q4Block) dotted with the 8 rows, added to a.
fn q4_block_dot(a: mat2x4<f32>, k: Q4Block, xa: ptr<function, XBlock>, xc: ptr<function, XBlock>) -> mat2x4<f32> {
    var s: mat4x4<f32>;
    sums_word_u(&s, vec2<u32>(k.u.x, k.u2.x), 0u, xa, xc);
    sums_word_u(&s, vec2<u32>(k.u.y, k.u2.y), 1u, xa, xc);
    sums_word_u(&s, vec2<u32>(k.u.z, k.u2.z), 2u, xa, xc);
    sums_word_u(&s, vec2<u32>(k.u.w, k.u2.w), 3u, xa, xc);
    let c = k.c;
    return mat2x4<f32>(fma(vec4<f32>(c.x), s[0u], fma(vec4<f32>(c.y), (*xa).sum, a[0u])),
                       fma(vec4<f32>(c.x), s[2u], fma(vec4<f32>(c.y), (*xc).sum, a[1u])));
}
// GROUPED: block_dots_v4 over the thread's 8 columns, one weight group's rows, from the group's
// block b: Q4_0 / Q4_1 read by group_blocks8, Q8_0 by two q8_quad (18 vec4 loads, not 24).
fn group_dots_v4(acc: ptr<function, array<mat2x4<f32>, 8>>, b: u32, xa: ptr<function, XBlock>,
                 xc: ptr<function, XBlock>) {
    if (WDTYPE == 3u) {
        let lo = q8_quad(b & ~7u);
        let hi = q8_quad((b & ~7u) + 4u);
        (*acc)[0u] = q8_block_dot((*acc)[0u], lo[0u], xa, xc);
        (*acc)[1u] = q8_block_dot((*acc)[1u], lo[1u], xa, xc);
        (*acc)[2u] = q8_block_dot((*acc)[2u], lo[2u], xa, xc);
        (*acc)[3u] = q8_block_dot((*acc)[3u], lo[3u], xa, xc);
        (*acc)[4u] = q8_block_dot((*acc)[4u], hi[0u], xa, xc);
        (*acc)[5u] = q8_block_dot((*acc)[5u], hi[1u], xa, xc);
        (*acc)[6u] = q8_block_dot((*acc)[6u], hi[2u], xa, xc);
        (*acc)[7u] = q8_block_dot((*acc)[7u], hi[3u], xa, xc);
        return;
    }
    let g = group_blocks8(b);
    (*acc)[0u] = q4_block_dot((*acc)[0u], g[0u], xa, xc);
    (*acc)[1u] = q4_block_dot((*acc)[1u], g[1u], xa, xc);
    (*acc)[2u] = q4_block_dot((*acc)[2u], g[2u], xa, xc);
    (*acc)[3u] = q4_block_dot((*acc)[3u], g[3u], xa, xc);
    (*acc)[4u] = q4_block_dot((*acc)[4u], g[4u], xa, xc);
    (*acc)[5u] = q4_block_dot((*acc)[5u], g[5u], xa, xc);
    (*acc)[6u] = q4_block_dot((*acc)[6u], g[6u], xa, xc);
    (*acc)[7u] = q4_block_dot((*acc)[7u], g[7u], xa, xc);
}
fn block_dots_v4(acc: ptr<function, array<mat2x4<f32>, 8>>, b0: array<u32, RB_N>, kb: u32,
                 xa: ptr<function, XBlock>, xc: ptr<function, XBlock>) {
    (*acc)[0u] = block_dot_v4((*acc)[0u], b0[0u] + wk(kb), xa, xc);
    (*acc)[1u] = block_dot_v4((*acc)[1u], b0[1u] + wk(kb), xa, xc);
    (*acc)[2u] = block_dot_v4((*acc)[2u], b0[2u] + wk(kb), xa, xc);
    (*acc)[3u] = block_dot_v4((*acc)[3u], b0[3u] + wk(kb), xa, xc);
    (*acc)[4u] = block_dot_v4((*acc)[4u], b0[4u] + wk(kb), xa, xc);
    (*acc)[5u] = block_dot_v4((*acc)[5u], b0[5u] + wk(kb), xa, xc);
    (*acc)[6u] = block_dot_v4((*acc)[6u], b0[6u] + wk(kb), xa, xc);
    (*acc)[7u] = block_dot_v4((*acc)[7u], b0[7u] + wk(kb), xa, xc);
}
fn block_dots(acc: ptr<function, array<mat2x4<f32>, 8>>, b0: array<u32, RB_N>, kb: u32,
              xa: ptr<function, XBlock>, xc: ptr<function, XBlock>) {
    (*acc)[0u] = block_dot((*acc)[0u], b0[0u] + wk(kb), xa, xc);
    (*acc)[1u] = block_dot((*acc)[1u], b0[1u] + wk(kb), xa, xc);
    (*acc)[2u] = block_dot((*acc)[2u], b0[2u] + wk(kb), xa, xc);
    (*acc)[3u] = block_dot((*acc)[3u], b0[3u] + wk(kb), xa, xc);
    (*acc)[4u] = block_dot((*acc)[4u], b0[4u] + wk(kb), xa, xc);
    (*acc)[5u] = block_dot((*acc)[5u], b0[5u] + wk(kb), xa, xc);
    (*acc)[6u] = block_dot((*acc)[6u], b0[6u] + wk(kb), xa, xc);
    (*acc)[7u] = block_dot((*acc)[7u], b0[7u] + wk(kb), xa, xc);
}

// A 64-thread workgroup computes a 64 × 64 tile (MATMUL_SUMS_TILE_T in kernels.rs): each
// thread 8 rows × RB_N columns strided by RB_WN.
@compute @workgroup_size(64)
fn matmul_q_sums(ln: Lane) {
    q_sums(ln, 64u, false, false);
}
// The blocks read as vec4s, 16 rows a thread (q_sums16): a run of 8 lanes covers 16 rows ×
// 64 columns, four runs the 64 × 64 tile.
@compute @workgroup_size(32)
fn matmul_q_sums_v4(ln: Lane) {
    q_sums16(ln, 64u, false, false);
}
// Few rows on CPU devices (decode, short prefills): one run of 8 lanes a workgroup, 8 rows ×
// 64 columns. In a 64-lane workgroup the runs past the rows still cost (measured on lavapipe:
// a lone run took 1.6× a run of a full workgroup).
@compute @workgroup_size(8)
fn matmul_q_sums_run(ln: Lane) {
    q_sums(ln, 8u, false, false);
}
@compute @workgroup_size(8)
fn matmul_q_sums_run_v4(ln: Lane) {
    q_sums(ln, 8u, true, false);
}
// 8 rows × 128 columns a workgroup (each thread 16 columns, its 8 and the 8 64 on): each x
// block loaded serves twice the FMAs, as in q_sums16's wide form.
@compute @workgroup_size(8)
fn matmul_q_sums_runw_v4(ln: Lane) {
    q_sums(ln, 8u, true, true);
}
// From 16 rows: 16 rows × 64 columns a workgroup.
@compute @workgroup_size(8)
fn matmul_q_sums_run16_v4(ln: Lane) {
    q_sums16(ln, 16u, false, true);
}
// 16 rows × 128 columns a workgroup (each thread 16 columns).
@compute @workgroup_size(8)
fn matmul_q_sums_run16w_v4(ln: Lane) {
    q_sums16(ln, 16u, true, true);
}
// `wg_rows`: rows of x a workgroup covers (8 per run of 8 lanes); `v4`: block_dot_v4; `wide` (a
// constant, so the other form folds away; with v4): also the 8 columns 64 on.
fn q_sums(ln: Lane, wg_rows: u32, v4: bool, wide: bool) {
    q = opaque_params(p, ln.wg.z);
    let lid = ln.lid;
    let n0 = run_col0(ln.wg.y, lid % RB_WN, select(1u, 2u, wide && !glu()));
    let t0 = ln.wg.x * wg_rows + (lid / RB_WN) * 8u;
    if (t0 >= q.t) {
        return; // the whole run of 8 (rows past the last tile's end): skips the work
    }
    let ra = rows4(t0);
    let rc = rows4(t0 + 4u);
    let b0 = col_blocks(n0);
    var b1 = col_blocks(n0 + RB_N * RB_WN);
    if (glu()) {
        b1 = up_blocks(b0);
    }
    var acc: array<mat2x4<f32>, 8>;
    var acc1: array<mat2x4<f32>, 8>;
    let nb = q.k >> 5u;
    if (lanes8(ln)) {
        // Invocation j of the run loads row j of the 8.
        let j = lid % RB_WN;
        let xi = select(rc[j & 3u], ra[j & 3u], j < 4u) * (q.k >> 2u);
        for (var kb = 0u; kb < nb; kb++) {
            let v = x_row_block(xi, kb);
            var xa = x_block_shared(ln, v, 0u);
            var xc = x_block_shared(ln, v, 1u);
            if (GROUPED) {
                group_dots_v4(&acc, b0[0u] + wk(kb), &xa, &xc);
                if (wide) {
                    group_dots_v4(&acc1, b1[0u] + wk(kb), &xa, &xc);
                }
            } else if (v4) {
                block_dots_v4(&acc, b0, kb, &xa, &xc);
                if (wide) {
                    block_dots_v4(&acc1, b1, kb, &xa, &xc);
                }
            } else {
                block_dots(&acc, b0, kb, &xa, &xc);
            }
        }
    } else {
        // Each invocation reads its rows itself: the column sets one after the other.
        for (var cs = 0u; cs < select(1u, 2u, wide); cs++) {
            var bs = b0;
            if (cs != 0u) {
                bs = b1;
            }
            var a: array<mat2x4<f32>, 8>;
            for (var kb = 0u; kb < nb; kb++) {
                var xa = x_block(ra, kb);
                var xc = x_block(rc, kb);
                if (v4) {
                    block_dots_v4(&a, bs, kb, &xa, &xc);
                } else {
                    block_dots(&a, bs, kb, &xa, &xc);
                }
            }
            if (cs == 0u) {
                acc = a;
            } else {
                acc1 = a;
            }
        }
    }
    if (glu()) {
        if (q.lora_r != 0u) {
            lora_block8(&acc, t0, n0, 0u);
            lora_block8(&acc1, t0, n0, q.n);
        }
        var g = array<mat2x4<f32>, 8>(glu2x4(acc[0u], acc1[0u]), glu2x4(acc[1u], acc1[1u]), glu2x4(acc[2u], acc1[2u]),
                                      glu2x4(acc[3u], acc1[3u]), glu2x4(acc[4u], acc1[4u]), glu2x4(acc[5u], acc1[5u]),
                                      glu2x4(acc[6u], acc1[6u]), glu2x4(acc[7u], acc1[7u]));
        store_rows8(&g, t0, n0);
        return;
    }
    store_rows8(&acc, t0, n0);
    if (wide) {
        store_rows8(&acc1, t0, n0 + RB_N * RB_WN);
    }
}
// A thread's 8 rows × RB_N columns (acc[j]: column j, rows 0..3 and 4..7) with their LoRA
// term (the paired gate | up runs add theirs before the activation), stored.
fn store_rows8(acc: ptr<function, array<mat2x4<f32>, 8>>, t0: u32, n0: u32) {
    if (q.lora_r != 0u && !glu()) {
        lora_block8(acc, t0, n0, 0u);
    }
    let a = *acc;
    let lo = array<vec4<f32>, 8>(a[0u][0u], a[1u][0u], a[2u][0u], a[3u][0u], a[4u][0u], a[5u][0u], a[6u][0u], a[7u][0u]);
    let hi = array<vec4<f32>, 8>(a[0u][1u], a[1u][1u], a[2u][1u], a[3u][1u], a[4u][1u], a[5u][1u], a[6u][1u], a[7u][1u]);
    store_block(lo, t0, n0, col_step(), false);
    store_block(hi, t0 + 4u, n0, col_step(), false);
}
