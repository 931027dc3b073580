// Decoding attention for head_dim 64 on CPU devices (lavapipe / llvmpipe): compiled as one
// module after shaders/attention.wgsl (gpu/pipeline.rs), whose Params, spans, key_ranges and
// key_lows it uses, and whose `attention` entry point it replaces there for a few queries
// (decoding one sequence or a group's samples).
//
// Why: on llvmpipe every load from storage or workgroup memory is done lane by lane (see
// attention_tiled_hd64.wgsl), so loads set the time. Per block of 64 keys, `attention` has
// each thread load its key row and the q row a float at a time (128 loads), then the block's
// 64 weights and one value of each key (128 more). Here each thread scores its key with 16 vec4
// loads against q held in 16 named registers, and accumulates a vec4 of head dims (lid % 16)
// over a quarter of the block's keys (lid / 16): 16 vec4 and 16 weight loads. Each thread
// keeps the weight sum of its own keys; the sums and the quarters' accumulators are added once
// at the end. Same key walk (ranges, window), online softmax and masks as `attention`; the
// result equals it up to rounding.

@group(0) @binding(1) var<storage, read> q4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> k4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> v4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> out4: array<vec4<f32>>;
var<workgroup> quarter_acc: array<vec4<f32>, 64>;

@compute @workgroup_size(64)
fn attention_decode_hd64(ln: Lane) {
    let lid = ln.lid;
    let i = ln.wg.y * ln.nwg.x + ln.wg.x;
    if (i >= p.t * p.heads) {
        return; // uniform per workgroup
    }
    let t = i / p.heads;
    let h = i % p.heads;
    let kvh = h / (p.heads / p.kv_heads);
    let qb = i * 16u;
    let q0 = q4[qb];
    let q1 = q4[qb + 1u];
    let q2 = q4[qb + 2u];
    let q3 = q4[qb + 3u];
    let q4_ = q4[qb + 4u];
    let q5 = q4[qb + 5u];
    let q6 = q4[qb + 6u];
    let q7 = q4[qb + 7u];
    let q8 = q4[qb + 8u];
    let q9 = q4[qb + 9u];
    let q10 = q4[qb + 10u];
    let q11 = q4[qb + 11u];
    let q12 = q4[qb + 12u];
    let q13 = q4[qb + 13u];
    let q14 = q4[qb + 14u];
    let q15 = q4[qb + 15u];
    let dims = lid % 16u;
    let quarter = lid / 16u;
    let kstep = p.kv_heads * 16u; // vec4s from one key (or value) row to the next
    var acc = vec4<f32>(0.0);
    var m = -3.0e38;
    var l_own = 0.0;
    let kr = key_ranges(t);
    let lows = key_lows(kr);
    for (var range = 0u; range < 2u; range++) {
        let lo = select(lows.y, lows.x, range == 0u);
        let ctx = select(kr.z, kr.x, range == 0u);
        for (var s0 = lo; s0 < ctx; s0 += 64u) {
            let s = s0 + lid;
            var score = -3.0e38;
            if (s < ctx) {
                let kb = (s * p.kv_heads + kvh) * 16u;
                let d0 = dot(q0, k4[kb]) + dot(q1, k4[kb + 1u]) + dot(q2, k4[kb + 2u])
                    + dot(q3, k4[kb + 3u]);
                let d1 = dot(q4_, k4[kb + 4u]) + dot(q5, k4[kb + 5u]) + dot(q6, k4[kb + 6u])
                    + dot(q7, k4[kb + 7u]);
                let d2 = dot(q8, k4[kb + 8u]) + dot(q9, k4[kb + 9u]) + dot(q10, k4[kb + 10u])
                    + dot(q11, k4[kb + 11u]);
                let d3 = dot(q12, k4[kb + 12u]) + dot(q13, k4[kb + 13u])
                    + dot(q14, k4[kb + 14u]) + dot(q15, k4[kb + 15u]);
                score = (d0 + d1 + d2 + d3) * p.scale;
            }
            let m_new = max(m, wg_max(ln, score));
            let corr = exp(m - m_new);
            var w = 0.0;
            if (s < ctx) {
                w = exp(score - m_new);
            }
            blk_b[lid] = w;
            workgroupBarrier();
            l_own = l_own * corr + w;
            acc *= corr;
            // This thread's quarter of the block's keys (those it holds a weight for: < ctx).
            let first = quarter * 16u;
            let n = min(64u, ctx - s0);
            let count = min(16u, max(n, first) - first);
            var vb = ((s0 + first) * p.kv_heads + kvh) * 16u + dims;
            for (var j = 0u; j < count; j++) {
                acc += blk_b[first + j] * v4[vb];
                vb += kstep;
            }
            m = m_new;
            // No barrier needed before the next block: its write to blk_b comes after wg_max,
            // a barrier that every thread reaches only once done reading this block's.
        }
    }
    let l = wg_sum(ln, l_own);
    quarter_acc[lid] = acc;
    workgroupBarrier();
    if (lid < 16u) {
        let sum = quarter_acc[lid] + quarter_acc[lid + 16u] + quarter_acc[lid + 32u]
            + quarter_acc[lid + 48u];
        out4[qb + lid] = sum / l;
    }
}
