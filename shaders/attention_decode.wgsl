// Decoding attention for head_dim 64 on CPU devices (lavapipe / llvmpipe): compiled as one
// module after shaders/attention.wgsl (gpu/pipeline.rs), whose Params, spans, key_ranges and
// key_lows it uses, and whose `attention` entry point it replaces there for a few queries
// (decoding one sequence or a group's samples).
//
// Why: on llvmpipe every load from storage or workgroup memory is done lane by lane, even at an
// address the whole workgroup shares, and a barrier switches between a workgroup's 8-lane
// batches (see attention_tiled_hd64.wgsl): loads and barriers set the time, not arithmetic.
// So one 8-thread workgroup (a single batch) takes a query row and up to 4 heads of one KV
// head (a GQA group; 7 heads take two workgroups), and every key and value row it loads serves
// all of them: their q rows sit in 16 named mat4x4s (a column a head, so one vec4 of a key
// scores 4 heads at once, vec4 · mat4x4) and the output in 16 more. Thread j walks keys j,
// j + 8, ... of the query's ranges (as in `attention`: prefix, segment, window) with its own
// online softmax, no barrier in the walk; the 8 threads' (max, sum, output) are merged once at
// the end through workgroup memory. Same masks and result (up to rounding) as `attention`.

@group(0) @binding(1) var<storage, read> q4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> k4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> v4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> out4: array<vec4<f32>>;
const DEC_WG: u32 = 8u;
// Each thread's running max and weight sum (a component a head) and output, for the merge.
var<workgroup> dec_m: array<vec4<f32>, DEC_WG>;
var<workgroup> dec_l: array<vec4<f32>, DEC_WG>;
var<workgroup> dec_acc: array<mat4x4<f32>, 128>; // [thread, 16]

// The four heads' q rows, vec4 i of each as the columns of one matrix.
fn q_quad(row: u32, h0: u32, last: u32, i: u32) -> mat4x4<f32> {
    let b = row * p.heads;
    return mat4x4<f32>(q4[(b + h0) * 16u + i], q4[(b + min(h0 + 1u, last)) * 16u + i],
                       q4[(b + min(h0 + 2u, last)) * 16u + i], q4[(b + min(h0 + 3u, last)) * 16u + i]);
}

// a with column c scaled by r[c], plus v · w[c] in column c (one key's value for 4 heads).
fn rescale_add(a: mat4x4<f32>, r: vec4<f32>, v: vec4<f32>, w: vec4<f32>) -> mat4x4<f32> {
    return mat4x4<f32>(a[0] * r.x + v * w.x, a[1] * r.y + v * w.y, a[2] * r.z + v * w.z,
                       a[3] * r.w + v * w.w);
}

fn scale_cols(a: mat4x4<f32>, r: vec4<f32>) -> mat4x4<f32> {
    return mat4x4<f32>(a[0] * r.x, a[1] * r.y, a[2] * r.z, a[3] * r.w);
}

@compute @workgroup_size(8)
fn attention_decode_hd64(ln: Lane) {
    let lid = ln.lid;
    let group = p.heads / p.kv_heads;
    let quads = (group + 3u) / 4u;
    let i = ln.wg.y * ln.nwg.x + ln.wg.x;
    if (i >= p.t * p.kv_heads * quads) {
        return; // uniform per workgroup
    }
    let t = i / (p.kv_heads * quads);
    let kvh = (i / quads) % p.kv_heads;
    // Heads h0 .. h0 + 3 of the group; past its last head a column repeats that head, and its
    // result is not stored.
    let h0 = kvh * group + (i % quads) * 4u;
    let last = kvh * group + group - 1u;
    let qs0 = q_quad(t, h0, last, 0u) * p.scale;
    let qs1 = q_quad(t, h0, last, 1u) * p.scale;
    let qs2 = q_quad(t, h0, last, 2u) * p.scale;
    let qs3 = q_quad(t, h0, last, 3u) * p.scale;
    let qs4 = q_quad(t, h0, last, 4u) * p.scale;
    let qs5 = q_quad(t, h0, last, 5u) * p.scale;
    let qs6 = q_quad(t, h0, last, 6u) * p.scale;
    let qs7 = q_quad(t, h0, last, 7u) * p.scale;
    let qs8 = q_quad(t, h0, last, 8u) * p.scale;
    let qs9 = q_quad(t, h0, last, 9u) * p.scale;
    let qs10 = q_quad(t, h0, last, 10u) * p.scale;
    let qs11 = q_quad(t, h0, last, 11u) * p.scale;
    let qs12 = q_quad(t, h0, last, 12u) * p.scale;
    let qs13 = q_quad(t, h0, last, 13u) * p.scale;
    let qs14 = q_quad(t, h0, last, 14u) * p.scale;
    let qs15 = q_quad(t, h0, last, 15u) * p.scale;
    var a0 = mat4x4<f32>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var a1 = mat4x4<f32>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var a2 = mat4x4<f32>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var a3 = mat4x4<f32>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var a4 = mat4x4<f32>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var a5 = mat4x4<f32>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var a6 = mat4x4<f32>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var a7 = mat4x4<f32>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var a8 = mat4x4<f32>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var a9 = mat4x4<f32>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var a10 = mat4x4<f32>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var a11 = mat4x4<f32>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var a12 = mat4x4<f32>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var a13 = mat4x4<f32>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var a14 = mat4x4<f32>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var a15 = mat4x4<f32>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var m = vec4<f32>(-3.0e38);
    var l = vec4<f32>(0.0);
    let kstep = p.kv_heads * 16u; // vec4s from one key (or value) row to the next
    let kr = key_ranges(t);
    let lows = key_lows(kr);
    for (var range = 0u; range < 2u; range++) {
        let lo = select(lows.y, lows.x, range == 0u);
        let ctx = select(kr.z, kr.x, range == 0u);
        for (var s = lo + lid; s < ctx; s += DEC_WG) {
            let kb = (s * p.kv_heads + kvh) * 16u;
            let score = k4[kb] * qs0 + k4[kb + 1u] * qs1 + k4[kb + 2u] * qs2 + k4[kb + 3u] * qs3
                + k4[kb + 4u] * qs4 + k4[kb + 5u] * qs5 + k4[kb + 6u] * qs6 + k4[kb + 7u] * qs7
                + k4[kb + 8u] * qs8 + k4[kb + 9u] * qs9 + k4[kb + 10u] * qs10
                + k4[kb + 11u] * qs11 + k4[kb + 12u] * qs12 + k4[kb + 13u] * qs13
                + k4[kb + 14u] * qs14 + k4[kb + 15u] * qs15;
            let m_new = max(m, score);
            let r = exp(m - m_new);
            let w = exp(score - m_new);
            l = l * r + w;
            m = m_new;
            a0 = rescale_add(a0, r, v4[kb + 0u], w);
            a1 = rescale_add(a1, r, v4[kb + 1u], w);
            a2 = rescale_add(a2, r, v4[kb + 2u], w);
            a3 = rescale_add(a3, r, v4[kb + 3u], w);
            a4 = rescale_add(a4, r, v4[kb + 4u], w);
            a5 = rescale_add(a5, r, v4[kb + 5u], w);
            a6 = rescale_add(a6, r, v4[kb + 6u], w);
            a7 = rescale_add(a7, r, v4[kb + 7u], w);
            a8 = rescale_add(a8, r, v4[kb + 8u], w);
            a9 = rescale_add(a9, r, v4[kb + 9u], w);
            a10 = rescale_add(a10, r, v4[kb + 10u], w);
            a11 = rescale_add(a11, r, v4[kb + 11u], w);
            a12 = rescale_add(a12, r, v4[kb + 12u], w);
            a13 = rescale_add(a13, r, v4[kb + 13u], w);
            a14 = rescale_add(a14, r, v4[kb + 14u], w);
            a15 = rescale_add(a15, r, v4[kb + 15u], w);
        }
    }
    // Merge the threads: out = Σ e^(m_j - M) a_j / Σ e^(m_j - M) l_j, M the largest m_j (a
    // thread that saw no key has m_j = -3e38 and weighs 0).
    dec_m[lid] = m;
    dec_l[lid] = l;
    dec_acc[lid * 16u + 0u] = a0;
    dec_acc[lid * 16u + 1u] = a1;
    dec_acc[lid * 16u + 2u] = a2;
    dec_acc[lid * 16u + 3u] = a3;
    dec_acc[lid * 16u + 4u] = a4;
    dec_acc[lid * 16u + 5u] = a5;
    dec_acc[lid * 16u + 6u] = a6;
    dec_acc[lid * 16u + 7u] = a7;
    dec_acc[lid * 16u + 8u] = a8;
    dec_acc[lid * 16u + 9u] = a9;
    dec_acc[lid * 16u + 10u] = a10;
    dec_acc[lid * 16u + 11u] = a11;
    dec_acc[lid * 16u + 12u] = a12;
    dec_acc[lid * 16u + 13u] = a13;
    dec_acc[lid * 16u + 14u] = a14;
    dec_acc[lid * 16u + 15u] = a15;
    workgroupBarrier();
    var top = dec_m[0];
    for (var j = 1u; j < DEC_WG; j++) {
        top = max(top, dec_m[j]);
    }
    // Thread lid writes head dims 8 lid .. 8 lid + 7 (vec4s 2 lid, 2 lid + 1) of each head.
    var sum0 = mat4x4<f32>(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    var sum1 = sum0;
    var lsum = vec4<f32>(0.0);
    for (var j = 0u; j < DEC_WG; j++) {
        let f = exp(dec_m[j] - top);
        lsum += f * dec_l[j];
        sum0 += scale_cols(dec_acc[j * 16u + 2u * lid], f);
        sum1 += scale_cols(dec_acc[j * 16u + 2u * lid + 1u], f);
    }
    let ob = t * p.heads;
    for (var c = 0u; c < 4u; c++) {
        if (h0 + c <= last) {
            out4[(ob + h0 + c) * 16u + 2u * lid] = sum0[c] / lsum[c];
            out4[(ob + h0 + c) * 16u + 2u * lid + 1u] = sum1[c] / lsum[c];
        }
    }
}

// ---- head_dim 128 / 256 on CPU devices (`attention_lanes`; Gemma 3 has 256) ----------------
// `attention` gives such heads a 64-thread workgroup per (query, head): a full dot product a
// thread against a q row in workgroup memory, block maxima through barriers, then the values
// a head dim a thread, all loaded lane by lane. Here one 8-thread workgroup takes a (query,
// head): thread j walks keys j, j + 8, ... with its own online softmax, its q row and output
// in 2 × LANES_HD4 vec4s of its own (indexed only by constants, so llvmpipe keeps them as
// values: the same count as attention_decode_hd64's 16 + 16 mat4x4), and the 8 threads merge
// once at the end. Same masks and result (up to rounding) as `attention`. Its walk is a loop
// iteration a key (8 keys per thread per 64), far inside llvmpipe's cap.
override LANES_HD4: u32 = 64u; // head_dim / 4: 32 or 64
var<workgroup> lanes_out: array<vec4<f32>, 512>; // [thread, 64]

// Vec4s 16c .. 16c + 15 of the q row at qb (scaled) into qs.
fn lanes_q16(qs: ptr<function, array<vec4<f32>, 64>>, qb: u32, c: u32) {
    let b = c * 16u;
    (*qs)[b] = q4[qb + b] * p.scale;
    (*qs)[b + 1u] = q4[qb + b + 1u] * p.scale;
    (*qs)[b + 2u] = q4[qb + b + 2u] * p.scale;
    (*qs)[b + 3u] = q4[qb + b + 3u] * p.scale;
    (*qs)[b + 4u] = q4[qb + b + 4u] * p.scale;
    (*qs)[b + 5u] = q4[qb + b + 5u] * p.scale;
    (*qs)[b + 6u] = q4[qb + b + 6u] * p.scale;
    (*qs)[b + 7u] = q4[qb + b + 7u] * p.scale;
    (*qs)[b + 8u] = q4[qb + b + 8u] * p.scale;
    (*qs)[b + 9u] = q4[qb + b + 9u] * p.scale;
    (*qs)[b + 10u] = q4[qb + b + 10u] * p.scale;
    (*qs)[b + 11u] = q4[qb + b + 11u] * p.scale;
    (*qs)[b + 12u] = q4[qb + b + 12u] * p.scale;
    (*qs)[b + 13u] = q4[qb + b + 13u] * p.scale;
    (*qs)[b + 14u] = q4[qb + b + 14u] * p.scale;
    (*qs)[b + 15u] = q4[qb + b + 15u] * p.scale;
}

// The key row at kb against qs over vec4s 16c .. 16c + 15, component-wise.
fn lanes_dot16(qs: ptr<function, array<vec4<f32>, 64>>, kb: u32, c: u32) -> vec4<f32> {
    let b = c * 16u;
    return k4[kb + b] * (*qs)[b] + k4[kb + b + 1u] * (*qs)[b + 1u] + k4[kb + b + 2u] * (*qs)[b + 2u]
        + k4[kb + b + 3u] * (*qs)[b + 3u] + k4[kb + b + 4u] * (*qs)[b + 4u] + k4[kb + b + 5u] * (*qs)[b + 5u]
        + k4[kb + b + 6u] * (*qs)[b + 6u] + k4[kb + b + 7u] * (*qs)[b + 7u] + k4[kb + b + 8u] * (*qs)[b + 8u]
        + k4[kb + b + 9u] * (*qs)[b + 9u] + k4[kb + b + 10u] * (*qs)[b + 10u]
        + k4[kb + b + 11u] * (*qs)[b + 11u] + k4[kb + b + 12u] * (*qs)[b + 12u]
        + k4[kb + b + 13u] * (*qs)[b + 13u] + k4[kb + b + 14u] * (*qs)[b + 14u]
        + k4[kb + b + 15u] * (*qs)[b + 15u];
}

// acc = acc · r + w · (value row at kb), over vec4s 16c .. 16c + 15.
fn lanes_acc16(acc: ptr<function, array<vec4<f32>, 64>>, kb: u32, c: u32, r: f32, w: f32) {
    let b = c * 16u;
    (*acc)[b] = (*acc)[b] * r + v4[kb + b] * w;
    (*acc)[b + 1u] = (*acc)[b + 1u] * r + v4[kb + b + 1u] * w;
    (*acc)[b + 2u] = (*acc)[b + 2u] * r + v4[kb + b + 2u] * w;
    (*acc)[b + 3u] = (*acc)[b + 3u] * r + v4[kb + b + 3u] * w;
    (*acc)[b + 4u] = (*acc)[b + 4u] * r + v4[kb + b + 4u] * w;
    (*acc)[b + 5u] = (*acc)[b + 5u] * r + v4[kb + b + 5u] * w;
    (*acc)[b + 6u] = (*acc)[b + 6u] * r + v4[kb + b + 6u] * w;
    (*acc)[b + 7u] = (*acc)[b + 7u] * r + v4[kb + b + 7u] * w;
    (*acc)[b + 8u] = (*acc)[b + 8u] * r + v4[kb + b + 8u] * w;
    (*acc)[b + 9u] = (*acc)[b + 9u] * r + v4[kb + b + 9u] * w;
    (*acc)[b + 10u] = (*acc)[b + 10u] * r + v4[kb + b + 10u] * w;
    (*acc)[b + 11u] = (*acc)[b + 11u] * r + v4[kb + b + 11u] * w;
    (*acc)[b + 12u] = (*acc)[b + 12u] * r + v4[kb + b + 12u] * w;
    (*acc)[b + 13u] = (*acc)[b + 13u] * r + v4[kb + b + 13u] * w;
    (*acc)[b + 14u] = (*acc)[b + 14u] * r + v4[kb + b + 14u] * w;
    (*acc)[b + 15u] = (*acc)[b + 15u] * r + v4[kb + b + 15u] * w;
}

// Thread lid's vec4s 16c .. 16c + 15 to workgroup memory, for the merge.
fn lanes_keep16(acc: ptr<function, array<vec4<f32>, 64>>, lid: u32, c: u32) {
    let b = c * 16u;
    let o = lid * 64u + b;
    lanes_out[o] = (*acc)[b];
    lanes_out[o + 1u] = (*acc)[b + 1u];
    lanes_out[o + 2u] = (*acc)[b + 2u];
    lanes_out[o + 3u] = (*acc)[b + 3u];
    lanes_out[o + 4u] = (*acc)[b + 4u];
    lanes_out[o + 5u] = (*acc)[b + 5u];
    lanes_out[o + 6u] = (*acc)[b + 6u];
    lanes_out[o + 7u] = (*acc)[b + 7u];
    lanes_out[o + 8u] = (*acc)[b + 8u];
    lanes_out[o + 9u] = (*acc)[b + 9u];
    lanes_out[o + 10u] = (*acc)[b + 10u];
    lanes_out[o + 11u] = (*acc)[b + 11u];
    lanes_out[o + 12u] = (*acc)[b + 12u];
    lanes_out[o + 13u] = (*acc)[b + 13u];
    lanes_out[o + 14u] = (*acc)[b + 14u];
    lanes_out[o + 15u] = (*acc)[b + 15u];
}

@compute @workgroup_size(8)
fn attention_lanes(ln: Lane) {
    let lid = ln.lid;
    let i = ln.wg.y * ln.nwg.x + ln.wg.x;
    if (i >= p.t * p.heads) {
        return; // uniform per workgroup
    }
    let t = i / p.heads;
    let h = i % p.heads;
    let kvh = h / (p.heads / p.kv_heads);
    let wide = LANES_HD4 == 64u;
    var qs: array<vec4<f32>, 64>;
    var acc: array<vec4<f32>, 64>;
    let qb = (t * p.heads + h) * LANES_HD4;
    lanes_q16(&qs, qb, 0u);
    lanes_q16(&qs, qb, 1u);
    if (wide) {
        lanes_q16(&qs, qb, 2u);
        lanes_q16(&qs, qb, 3u);
    }
    var m = -3.0e38;
    var l = 0.0;
    let kr = key_ranges(t);
    let lows = key_lows(kr);
    for (var range = 0u; range < 2u; range++) {
        let lo = select(lows.y, lows.x, range == 0u);
        let ctx = select(kr.z, kr.x, range == 0u);
        for (var s = lo + lid; s < ctx; s += DEC_WG) {
            let kb = (s * p.kv_heads + kvh) * LANES_HD4;
            var d = lanes_dot16(&qs, kb, 0u) + lanes_dot16(&qs, kb, 1u);
            if (wide) {
                d += lanes_dot16(&qs, kb, 2u) + lanes_dot16(&qs, kb, 3u);
            }
            let score = d.x + d.y + d.z + d.w;
            let m_new = max(m, score);
            let r = exp(m - m_new);
            let w = exp(score - m_new);
            l = l * r + w;
            m = m_new;
            lanes_acc16(&acc, kb, 0u, r, w);
            lanes_acc16(&acc, kb, 1u, r, w);
            if (wide) {
                lanes_acc16(&acc, kb, 2u, r, w);
                lanes_acc16(&acc, kb, 3u, r, w);
            }
        }
    }
    // Merge the threads as attention_decode_hd64 does (one head: m and l in .x).
    dec_m[lid] = vec4<f32>(m);
    dec_l[lid] = vec4<f32>(l);
    lanes_keep16(&acc, lid, 0u);
    lanes_keep16(&acc, lid, 1u);
    if (wide) {
        lanes_keep16(&acc, lid, 2u);
        lanes_keep16(&acc, lid, 3u);
    }
    workgroupBarrier();
    var top = dec_m[0].x;
    for (var j = 1u; j < DEC_WG; j++) {
        top = max(top, dec_m[j].x);
    }
    var lsum = 0.0;
    for (var j = 0u; j < DEC_WG; j++) {
        lsum += exp(dec_m[j].x - top) * dec_l[j].x;
    }
    // Thread lid writes vec4s lid · n .. lid · n + n - 1 of the row (n = LANES_HD4 / 8).
    let n = LANES_HD4 / DEC_WG;
    for (var e = lid * n; e < lid * n + n; e++) {
        var sum = vec4<f32>(0.0);
        for (var j = 0u; j < DEC_WG; j++) {
            sum += exp(dec_m[j].x - top) * lanes_out[j * 64u + e];
        }
        out4[qb + e] = sum / lsum;
    }
}

// ---- their backward (`attention_lanes_backward_q` / `_kv`): attention_backward_q / _kv's two
// passes and results (up to rounding), a workgroup of 8 threads per (query, head) / (key, KV
// head) in place of 64, the rows a pass keeps (q and dout; k and v) and its sums (dq; dk and
// dv) in registers, the other side's rows loaded as vec4s, the threads' sums merged once
// through workgroup memory. The helpers below take 16 vec4s of a row (16c .. 16c + 15) with
// constant indices into the registers, as lanes_dot16 does. llvmpipe takes ~20 s to build the
// two (each vec4 load is a lane loop in its code; the forward ~2.5 s), once per machine with
// Mesa's shader cache; reading dout, k and v from memory instead cut neither that nor the
// loads' cost (both passes ~1.8x slower).
@group(0) @binding(5) var<storage, read> o4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> dout4: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> dq4: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read_write> dk4: array<vec4<f32>>;
@group(0) @binding(10) var<storage, read_write> dv4: array<vec4<f32>>;

// dst = the dout row at base.
fn lanes_ld_dout16(dst: ptr<function, array<vec4<f32>, 64>>, base: u32, c: u32) {
    let b = c * 16u;
    (*dst)[b] = dout4[base + b]; (*dst)[b + 1u] = dout4[base + b + 1u];
    (*dst)[b + 2u] = dout4[base + b + 2u]; (*dst)[b + 3u] = dout4[base + b + 3u];
    (*dst)[b + 4u] = dout4[base + b + 4u]; (*dst)[b + 5u] = dout4[base + b + 5u];
    (*dst)[b + 6u] = dout4[base + b + 6u]; (*dst)[b + 7u] = dout4[base + b + 7u];
    (*dst)[b + 8u] = dout4[base + b + 8u]; (*dst)[b + 9u] = dout4[base + b + 9u];
    (*dst)[b + 10u] = dout4[base + b + 10u]; (*dst)[b + 11u] = dout4[base + b + 11u];
    (*dst)[b + 12u] = dout4[base + b + 12u]; (*dst)[b + 13u] = dout4[base + b + 13u];
    (*dst)[b + 14u] = dout4[base + b + 14u]; (*dst)[b + 15u] = dout4[base + b + 15u];
}
// dst = the key row at base.
fn lanes_ld_k16(dst: ptr<function, array<vec4<f32>, 64>>, base: u32, c: u32) {
    let b = c * 16u;
    (*dst)[b] = k4[base + b]; (*dst)[b + 1u] = k4[base + b + 1u];
    (*dst)[b + 2u] = k4[base + b + 2u]; (*dst)[b + 3u] = k4[base + b + 3u];
    (*dst)[b + 4u] = k4[base + b + 4u]; (*dst)[b + 5u] = k4[base + b + 5u];
    (*dst)[b + 6u] = k4[base + b + 6u]; (*dst)[b + 7u] = k4[base + b + 7u];
    (*dst)[b + 8u] = k4[base + b + 8u]; (*dst)[b + 9u] = k4[base + b + 9u];
    (*dst)[b + 10u] = k4[base + b + 10u]; (*dst)[b + 11u] = k4[base + b + 11u];
    (*dst)[b + 12u] = k4[base + b + 12u]; (*dst)[b + 13u] = k4[base + b + 13u];
    (*dst)[b + 14u] = k4[base + b + 14u]; (*dst)[b + 15u] = k4[base + b + 15u];
}
// dst = the value row at base.
fn lanes_ld_v16(dst: ptr<function, array<vec4<f32>, 64>>, base: u32, c: u32) {
    let b = c * 16u;
    (*dst)[b] = v4[base + b]; (*dst)[b + 1u] = v4[base + b + 1u];
    (*dst)[b + 2u] = v4[base + b + 2u]; (*dst)[b + 3u] = v4[base + b + 3u];
    (*dst)[b + 4u] = v4[base + b + 4u]; (*dst)[b + 5u] = v4[base + b + 5u];
    (*dst)[b + 6u] = v4[base + b + 6u]; (*dst)[b + 7u] = v4[base + b + 7u];
    (*dst)[b + 8u] = v4[base + b + 8u]; (*dst)[b + 9u] = v4[base + b + 9u];
    (*dst)[b + 10u] = v4[base + b + 10u]; (*dst)[b + 11u] = v4[base + b + 11u];
    (*dst)[b + 12u] = v4[base + b + 12u]; (*dst)[b + 13u] = v4[base + b + 13u];
    (*dst)[b + 14u] = v4[base + b + 14u]; (*dst)[b + 15u] = v4[base + b + 15u];
}
// The output row at base · r, component-wise.
fn lanes_dot_o16(r: ptr<function, array<vec4<f32>, 64>>, base: u32, c: u32) -> vec4<f32> {
    let b = c * 16u;
    return o4[base + b] * (*r)[b] + o4[base + b + 1u] * (*r)[b + 1u]
        + o4[base + b + 2u] * (*r)[b + 2u] + o4[base + b + 3u] * (*r)[b + 3u]
        + o4[base + b + 4u] * (*r)[b + 4u] + o4[base + b + 5u] * (*r)[b + 5u]
        + o4[base + b + 6u] * (*r)[b + 6u] + o4[base + b + 7u] * (*r)[b + 7u]
        + o4[base + b + 8u] * (*r)[b + 8u] + o4[base + b + 9u] * (*r)[b + 9u]
        + o4[base + b + 10u] * (*r)[b + 10u] + o4[base + b + 11u] * (*r)[b + 11u]
        + o4[base + b + 12u] * (*r)[b + 12u] + o4[base + b + 13u] * (*r)[b + 13u]
        + o4[base + b + 14u] * (*r)[b + 14u] + o4[base + b + 15u] * (*r)[b + 15u];
}
// The value row at base · r, component-wise.
fn lanes_dot_v16(r: ptr<function, array<vec4<f32>, 64>>, base: u32, c: u32) -> vec4<f32> {
    let b = c * 16u;
    return v4[base + b] * (*r)[b] + v4[base + b + 1u] * (*r)[b + 1u]
        + v4[base + b + 2u] * (*r)[b + 2u] + v4[base + b + 3u] * (*r)[b + 3u]
        + v4[base + b + 4u] * (*r)[b + 4u] + v4[base + b + 5u] * (*r)[b + 5u]
        + v4[base + b + 6u] * (*r)[b + 6u] + v4[base + b + 7u] * (*r)[b + 7u]
        + v4[base + b + 8u] * (*r)[b + 8u] + v4[base + b + 9u] * (*r)[b + 9u]
        + v4[base + b + 10u] * (*r)[b + 10u] + v4[base + b + 11u] * (*r)[b + 11u]
        + v4[base + b + 12u] * (*r)[b + 12u] + v4[base + b + 13u] * (*r)[b + 13u]
        + v4[base + b + 14u] * (*r)[b + 14u] + v4[base + b + 15u] * (*r)[b + 15u];
}
// The q row at base · r, component-wise.
fn lanes_dot_q16(r: ptr<function, array<vec4<f32>, 64>>, base: u32, c: u32) -> vec4<f32> {
    let b = c * 16u;
    return q4[base + b] * (*r)[b] + q4[base + b + 1u] * (*r)[b + 1u]
        + q4[base + b + 2u] * (*r)[b + 2u] + q4[base + b + 3u] * (*r)[b + 3u]
        + q4[base + b + 4u] * (*r)[b + 4u] + q4[base + b + 5u] * (*r)[b + 5u]
        + q4[base + b + 6u] * (*r)[b + 6u] + q4[base + b + 7u] * (*r)[b + 7u]
        + q4[base + b + 8u] * (*r)[b + 8u] + q4[base + b + 9u] * (*r)[b + 9u]
        + q4[base + b + 10u] * (*r)[b + 10u] + q4[base + b + 11u] * (*r)[b + 11u]
        + q4[base + b + 12u] * (*r)[b + 12u] + q4[base + b + 13u] * (*r)[b + 13u]
        + q4[base + b + 14u] * (*r)[b + 14u] + q4[base + b + 15u] * (*r)[b + 15u];
}
// The dout row at base · r, component-wise.
fn lanes_dot_dout16(r: ptr<function, array<vec4<f32>, 64>>, base: u32, c: u32) -> vec4<f32> {
    let b = c * 16u;
    return dout4[base + b] * (*r)[b] + dout4[base + b + 1u] * (*r)[b + 1u]
        + dout4[base + b + 2u] * (*r)[b + 2u] + dout4[base + b + 3u] * (*r)[b + 3u]
        + dout4[base + b + 4u] * (*r)[b + 4u] + dout4[base + b + 5u] * (*r)[b + 5u]
        + dout4[base + b + 6u] * (*r)[b + 6u] + dout4[base + b + 7u] * (*r)[b + 7u]
        + dout4[base + b + 8u] * (*r)[b + 8u] + dout4[base + b + 9u] * (*r)[b + 9u]
        + dout4[base + b + 10u] * (*r)[b + 10u] + dout4[base + b + 11u] * (*r)[b + 11u]
        + dout4[base + b + 12u] * (*r)[b + 12u] + dout4[base + b + 13u] * (*r)[b + 13u]
        + dout4[base + b + 14u] * (*r)[b + 14u] + dout4[base + b + 15u] * (*r)[b + 15u];
}
// acc += w · the key row at base.
fn lanes_axpy_k16(acc: ptr<function, array<vec4<f32>, 64>>, base: u32, c: u32, w: f32) {
    let b = c * 16u;
    (*acc)[b] += k4[base + b] * w; (*acc)[b + 1u] += k4[base + b + 1u] * w;
    (*acc)[b + 2u] += k4[base + b + 2u] * w; (*acc)[b + 3u] += k4[base + b + 3u] * w;
    (*acc)[b + 4u] += k4[base + b + 4u] * w; (*acc)[b + 5u] += k4[base + b + 5u] * w;
    (*acc)[b + 6u] += k4[base + b + 6u] * w; (*acc)[b + 7u] += k4[base + b + 7u] * w;
    (*acc)[b + 8u] += k4[base + b + 8u] * w; (*acc)[b + 9u] += k4[base + b + 9u] * w;
    (*acc)[b + 10u] += k4[base + b + 10u] * w; (*acc)[b + 11u] += k4[base + b + 11u] * w;
    (*acc)[b + 12u] += k4[base + b + 12u] * w; (*acc)[b + 13u] += k4[base + b + 13u] * w;
    (*acc)[b + 14u] += k4[base + b + 14u] * w; (*acc)[b + 15u] += k4[base + b + 15u] * w;
}
// acc += w · the q row at base.
fn lanes_axpy_q16(acc: ptr<function, array<vec4<f32>, 64>>, base: u32, c: u32, w: f32) {
    let b = c * 16u;
    (*acc)[b] += q4[base + b] * w; (*acc)[b + 1u] += q4[base + b + 1u] * w;
    (*acc)[b + 2u] += q4[base + b + 2u] * w; (*acc)[b + 3u] += q4[base + b + 3u] * w;
    (*acc)[b + 4u] += q4[base + b + 4u] * w; (*acc)[b + 5u] += q4[base + b + 5u] * w;
    (*acc)[b + 6u] += q4[base + b + 6u] * w; (*acc)[b + 7u] += q4[base + b + 7u] * w;
    (*acc)[b + 8u] += q4[base + b + 8u] * w; (*acc)[b + 9u] += q4[base + b + 9u] * w;
    (*acc)[b + 10u] += q4[base + b + 10u] * w; (*acc)[b + 11u] += q4[base + b + 11u] * w;
    (*acc)[b + 12u] += q4[base + b + 12u] * w; (*acc)[b + 13u] += q4[base + b + 13u] * w;
    (*acc)[b + 14u] += q4[base + b + 14u] * w; (*acc)[b + 15u] += q4[base + b + 15u] * w;
}
// acc += w · the dout row at base.
fn lanes_axpy_dout16(acc: ptr<function, array<vec4<f32>, 64>>, base: u32, c: u32, w: f32) {
    let b = c * 16u;
    (*acc)[b] += dout4[base + b] * w; (*acc)[b + 1u] += dout4[base + b + 1u] * w;
    (*acc)[b + 2u] += dout4[base + b + 2u] * w; (*acc)[b + 3u] += dout4[base + b + 3u] * w;
    (*acc)[b + 4u] += dout4[base + b + 4u] * w; (*acc)[b + 5u] += dout4[base + b + 5u] * w;
    (*acc)[b + 6u] += dout4[base + b + 6u] * w; (*acc)[b + 7u] += dout4[base + b + 7u] * w;
    (*acc)[b + 8u] += dout4[base + b + 8u] * w; (*acc)[b + 9u] += dout4[base + b + 9u] * w;
    (*acc)[b + 10u] += dout4[base + b + 10u] * w; (*acc)[b + 11u] += dout4[base + b + 11u] * w;
    (*acc)[b + 12u] += dout4[base + b + 12u] * w; (*acc)[b + 13u] += dout4[base + b + 13u] * w;
    (*acc)[b + 14u] += dout4[base + b + 14u] * w; (*acc)[b + 15u] += dout4[base + b + 15u] * w;
}

fn hsum(v: vec4<f32>) -> f32 {
    return v.x + v.y + v.z + v.w;
}

// The threads' rows r (dq, dk or dv) into lanes_out, for lanes_merged.
fn lanes_merge(r: ptr<function, array<vec4<f32>, 64>>, lid: u32) {
    workgroupBarrier(); // lanes_out's readers before are done
    lanes_keep16(r, lid, 0u);
    lanes_keep16(r, lid, 1u);
    if (LANES_HD4 == 64u) {
        lanes_keep16(r, lid, 2u);
        lanes_keep16(r, lid, 3u);
    }
    workgroupBarrier();
}

// Vec4 e of the threads' merged rows, summed. Thread lid stores vec4s lid · n .. lid · n + n - 1
// (n = LANES_HD4 / 8).
fn lanes_merged(e: u32) -> vec4<f32> {
    var sum = vec4<f32>(0.0);
    for (var j = 0u; j < DEC_WG; j++) {
        sum += lanes_out[j * 64u + e];
    }
    return sum;
}

@compute @workgroup_size(8)
fn attention_lanes_backward_q(ln: Lane) {
    let lid = ln.lid;
    let i = ln.wg.y * ln.nwg.x + ln.wg.x;
    if (i >= p.t * p.heads) {
        return; // uniform per workgroup
    }
    let t = i / p.heads;
    let kvh = (i % p.heads) / (p.heads / p.kv_heads);
    let wide = LANES_HD4 == 64u;
    let qb = i * LANES_HD4;
    var qs: array<vec4<f32>, 64>;
    var dos: array<vec4<f32>, 64>;
    var acc: array<vec4<f32>, 64>;
    lanes_q16(&qs, qb, 0u);
    lanes_q16(&qs, qb, 1u);
    lanes_ld_dout16(&dos, qb, 0u);
    lanes_ld_dout16(&dos, qb, 1u);
    var dd = lanes_dot_o16(&dos, qb, 0u) + lanes_dot_o16(&dos, qb, 1u);
    if (wide) {
        lanes_q16(&qs, qb, 2u);
        lanes_q16(&qs, qb, 3u);
        lanes_ld_dout16(&dos, qb, 2u);
        lanes_ld_dout16(&dos, qb, 3u);
        dd += lanes_dot_o16(&dos, qb, 2u) + lanes_dot_o16(&dos, qb, 3u);
    }
    let dsum = hsum(dd); // D_i = dout_i · out_i
    // lse_i: each thread a running (max, sum) over its keys, then merged.
    var m = -3.0e38;
    var l = 0.0;
    let kr = key_ranges(t);
    let lows = key_lows(kr);
    for (var range = 0u; range < 2u; range++) {
        let lo = select(lows.y, lows.x, range == 0u);
        let ctx = select(kr.z, kr.x, range == 0u);
        for (var s = lo + lid; s < ctx; s += DEC_WG) {
            let kb = (s * p.kv_heads + kvh) * LANES_HD4;
            var d = lanes_dot16(&qs, kb, 0u) + lanes_dot16(&qs, kb, 1u);
            if (wide) {
                d += lanes_dot16(&qs, kb, 2u) + lanes_dot16(&qs, kb, 3u);
            }
            let score = hsum(d);
            let m_new = max(m, score);
            l = l * exp(m - m_new) + exp(score - m_new);
            m = m_new;
        }
    }
    dec_m[lid] = vec4<f32>(m);
    dec_l[lid] = vec4<f32>(l);
    workgroupBarrier();
    var top = dec_m[0].x;
    for (var j = 1u; j < DEC_WG; j++) {
        top = max(top, dec_m[j].x);
    }
    var lsum = 0.0;
    for (var j = 0u; j < DEC_WG; j++) {
        lsum += exp(dec_m[j].x - top) * dec_l[j].x;
    }
    let lse = top + log(lsum);
    if (lid == 0u) {
        stats[2u * i] = lse;
        stats[2u * i + 1u] = dsum;
    }
    // dq_i = scale Σ_s dS_is k_s, dS_is = P_is (dout_i · v_s - D_i).
    for (var range = 0u; range < 2u; range++) {
        let lo = select(lows.y, lows.x, range == 0u);
        let ctx = select(kr.z, kr.x, range == 0u);
        for (var s = lo + lid; s < ctx; s += DEC_WG) {
            let kb = (s * p.kv_heads + kvh) * LANES_HD4;
            var d = lanes_dot16(&qs, kb, 0u) + lanes_dot16(&qs, kb, 1u);
            var e = lanes_dot_v16(&dos, kb, 0u) + lanes_dot_v16(&dos, kb, 1u);
            if (wide) {
                d += lanes_dot16(&qs, kb, 2u) + lanes_dot16(&qs, kb, 3u);
                e += lanes_dot_v16(&dos, kb, 2u) + lanes_dot_v16(&dos, kb, 3u);
            }
            let ds = exp(hsum(d) - lse) * (hsum(e) - dsum);
            lanes_axpy_k16(&acc, kb, 0u, ds);
            lanes_axpy_k16(&acc, kb, 1u, ds);
            if (wide) {
                lanes_axpy_k16(&acc, kb, 2u, ds);
                lanes_axpy_k16(&acc, kb, 3u, ds);
            }
        }
    }
    lanes_merge(&acc, lid);
    let n = LANES_HD4 / DEC_WG;
    for (var e = lid * n; e < lid * n + n; e++) {
        dq4[qb + e] = lanes_merged(e) * p.scale;
    }
}

@compute @workgroup_size(8)
fn attention_lanes_backward_kv(ln: Lane) {
    let lid = ln.lid;
    let j = ln.wg.y * ln.nwg.x + ln.wg.x;
    if (j >= p.t * p.kv_heads) {
        return; // uniform per workgroup
    }
    let s = j / p.kv_heads;
    let kvh = j % p.kv_heads;
    let group = p.heads / p.kv_heads;
    let wide = LANES_HD4 == 64u;
    let kb = j * LANES_HD4;
    var ks: array<vec4<f32>, 64>;
    var vs: array<vec4<f32>, 64>;
    var gk: array<vec4<f32>, 64>;
    var gv: array<vec4<f32>, 64>;
    lanes_ld_k16(&ks, kb, 0u);
    lanes_ld_k16(&ks, kb, 1u);
    lanes_ld_v16(&vs, kb, 0u);
    lanes_ld_v16(&vs, kb, 1u);
    if (wide) {
        lanes_ld_k16(&ks, kb, 2u);
        lanes_ld_k16(&ks, kb, 3u);
        lanes_ld_v16(&vs, kb, 2u);
        lanes_ld_v16(&vs, kb, 3u);
    }
    // The queries that see key s, range by range (attention.wgsl's key_queries).
    var kq = key_queries(s);
    loop {
        let a = kq.a;
        // Pairs (query t in a .. b, head kvh · group + g), numbered (t - a) · group + g.
        let pairs = (kq.b - a) * group;
        for (var pi = lid; pi < pairs; pi += DEC_WG) {
            let i = (a + pi / group) * p.heads + kvh * group + pi % group;
            let qb = i * LANES_HD4;
            var d = lanes_dot_q16(&ks, qb, 0u) + lanes_dot_q16(&ks, qb, 1u);
            var e = lanes_dot_dout16(&vs, qb, 0u) + lanes_dot_dout16(&vs, qb, 1u);
            if (wide) {
                d += lanes_dot_q16(&ks, qb, 2u) + lanes_dot_q16(&ks, qb, 3u);
                e += lanes_dot_dout16(&vs, qb, 2u) + lanes_dot_dout16(&vs, qb, 3u);
            }
            let pr = exp(hsum(d) * p.scale - stats[2u * i]);
            let ds = pr * (hsum(e) - stats[2u * i + 1u]);
            lanes_axpy_dout16(&gv, qb, 0u, pr);
            lanes_axpy_dout16(&gv, qb, 1u, pr);
            lanes_axpy_q16(&gk, qb, 0u, ds);
            lanes_axpy_q16(&gk, qb, 1u, ds);
            if (wide) {
                lanes_axpy_dout16(&gv, qb, 2u, pr);
                lanes_axpy_dout16(&gv, qb, 3u, pr);
                lanes_axpy_q16(&gk, qb, 2u, ds);
                lanes_axpy_q16(&gk, qb, 3u, ds);
            }
        }
        if (!next_queries(&kq)) {
            break;
        }
    }
    let n = LANES_HD4 / DEC_WG;
    lanes_merge(&gk, lid);
    for (var e = lid * n; e < lid * n + n; e++) {
        dk4[kb + e] = lanes_merged(e) * p.scale;
    }
    lanes_merge(&gv, lid);
    for (var e = lid * n; e < lid * n + n; e++) {
        dv4[kb + e] = lanes_merged(e);
    }
}
