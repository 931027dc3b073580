// Causal attention with grouped-query heads against a KV cache.
// q: [t, heads, hd] for positions p0 .. p0+t; k, v cache: [max_seq, kv_heads, hd] holding
// positions 0 .. p0+t. Online softmax in f32, hd <= 256.
//
// Packed sequences (p.packed = 1, training, p0 = 0): several completions of one prompt in one
// sequence, the prompt once (tokens 0 .. prefix) and then each completion's tokens as a
// segment. A token sees the prefix and its own segment up to itself: its keys are the two
// ranges [0, min(prefix, seg0)) and [seg0, t], seg0 = spans[2t] (0 inside the prefix). Keys are
// walked range by range, so blocks never straddle the gap and the loops keep their shape.
//
// Sliding window (p.window = W > 0, Gemma 3's local layers): a query at position P sees a key
// at position S only if P - S < W. Positions: without packing the key index, and p0 + t for
// query t; packed, index i < prefix is at position i and a segment's tokens continue from
// prefix. Within each of the two key ranges positions are contiguous and end at P (the query's
// own key), so the window only raises each range's lower bound (key_lows): the walks start
// there, they never mask key by key. W = 0 is no window; the host passes 0 for a window that
// covers every position, so such calls run exactly the unwindowed kernel.
//
// One 64-thread workgroup per (query, head), walking the keys in blocks of 64: each thread
// scores one key of the block (a full head_dim dot product against the q row, held in workgroup
// memory), the block's max is reduced (wg_max, reduce.wgsl), the running (m, l) and the output are
// rescaled by exp(m - m_new), and each thread accumulates the head dims it owns (lid, lid+64,
// lid+128, lid+192) over the block's keys, together with the block's weight sum (every thread
// adds the same weights in the same order, so all agree on l).
//
// Loop iterations per invocation: llvmpipe / lavapipe cap them at 65,535 for one invocation,
// over all loops of the shader together, and past that loops silently exit. Here a block of 64
// keys costs one thread 1 (block loop) + hd/4 + 3 (dot) + 6 (max) + 64 (accumulate) iterations:
// 106 at hd 128, so 4096 keys take about 64 × 106 = 6,784, and the cap is reached only past
// ~39,000 keys at hd 128 (~30,000 at hd 256). A window only shortens the walks. Keep it so when
// changing this kernel.

struct Params {
    t: u32,
    heads: u32,
    kv_heads: u32,
    hd: u32,
    p0: u32,
    scale: f32,
    prefix: u32,
    packed: u32,
    window: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> kc: array<f32>;
@group(0) @binding(3) var<storage, read> vc: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
// Packed sequences only, [t, 2]: per token the first key of its segment (0 in the prefix) and
// one past the last query that sees it as a key.
@group(0) @binding(11) var<storage, read> spans: array<u32>;

// The keys query t sees: [0, x) and [y, z). Without packing the first range is empty.
// Decoding (p.packed = 2): spans hold each query's [segment start, end) in the cache.
fn key_ranges(t: u32) -> vec3<u32> {
    var seg0 = 0u;
    var end = p.p0 + t + 1u;
    if (p.packed != 0u) {
        seg0 = spans[2u * t];
    }
    if (p.packed == 2u) {
        end = spans[2u * t + 1u];
    }
    return vec3<u32>(min(p.prefix, seg0), seg0, end);
}

// Where the window starts each of the ranges kr = key_ranges(t): [lows.x, kr.x) and
// [lows.y, kr.z). The query's position is P = kr.x + (kr.z - kr.y) - 1 (the prefix's keys, then
// its segment's up to itself); the first range's keys sit at their index, so they start at
// P + 1 - W; the second's positions run up to P at key kr.z - 1, so they start at kr.z - W.
fn key_lows(kr: vec3<u32>) -> vec2<u32> {
    if (p.window == 0u) {
        return vec2<u32>(0u, kr.y);
    }
    let reach = kr.x + kr.z - kr.y; // P + 1
    let lo1 = select(0u, reach - p.window, reach > p.window);
    let lo2 = select(0u, kr.z - p.window, kr.z > p.window);
    return vec2<u32>(min(lo1, kr.x), max(kr.y, lo2));
}

const MAX_HD: u32 = 256u;
const FWG: u32 = 64u;
const RED_WG: u32 = FWG; // reduce.wgsl / reduce_subgroup.wgsl, prepended at build
// 1 KiB for the q row, plus blk_b (declared with the backward below) and the reduction's
// scratch.
var<workgroup> q_row: array<f32, MAX_HD>;

// scale * q_row · k[kb ..], four terms a step.
fn score_row(kb: u32) -> f32 {
    var acc = 0.0;
    var d = 0u;
    for (; d + 4u <= p.hd; d += 4u) {
        acc += q_row[d] * kc[kb + d] + q_row[d + 1u] * kc[kb + d + 1u]
             + q_row[d + 2u] * kc[kb + d + 2u] + q_row[d + 3u] * kc[kb + d + 3u];
    }
    for (; d < p.hd; d++) {
        acc += q_row[d] * kc[kb + d];
    }
    return acc * p.scale;
}

@compute @workgroup_size(64)
fn attention(ln: Lane) {
    let lid = ln.lid;
    let i = ln.wg.y * ln.nwg.x + ln.wg.x;
    if (i >= p.t * p.heads) {
        return; // uniform per workgroup
    }
    let t = i / p.heads;
    let h = i % p.heads;
    let kvh = h / (p.heads / p.kv_heads);
    let qb = i * p.hd;
    for (var d = lid; d < p.hd; d += FWG) {
        q_row[d] = q[qb + d];
    }
    workgroupBarrier();
    // The head dims this thread owns, clamped into the row: a thread past hd reads a valid
    // element of the same row and never stores it. Branches on p.hd are uniform.
    let last = p.hd - 1u;
    let dx = min(lid, last);
    let dy = min(lid + 64u, last);
    let dz = min(lid + 128u, last);
    let dw = min(lid + 192u, last);
    var acc = vec4<f32>(0.0);
    var m = -3.0e38;
    var l = 0.0;
    let kr = key_ranges(t);
    let lows = key_lows(kr);
    for (var range = 0u; range < 2u; range++) {
        let lo = select(lows.y, lows.x, range == 0u);
        let ctx = select(kr.z, kr.x, range == 0u);
        for (var s0 = lo; s0 < ctx; s0 += FWG) {
            let s = s0 + lid;
            var score = -3.0e38;
            if (s < ctx) {
                score = score_row((s * p.kv_heads + kvh) * p.hd);
            }
            let m_new = max(m, wg_max(ln, score));
            let corr = exp(m - m_new);
            var w = 0.0;
            if (s < ctx) {
                w = exp(score - m_new);
            }
            blk_b[lid] = w;
            workgroupBarrier();
            acc *= corr;
            let n = min(FWG, ctx - s0);
            // One key loop per head-dim width, chosen outside the loop (uniformly), so the
            // loop body has no branch: llvmpipe runs such branches masked on every iteration.
            var lsum = 0.0;
            var vb = (s0 * p.kv_heads + kvh) * p.hd;
            let vstep = p.kv_heads * p.hd;
            if (p.hd <= 64u) {
                for (var j = 0u; j < n; j++) {
                    let wj = blk_b[j];
                    lsum += wj;
                    acc.x += wj * vc[vb + dx];
                    vb += vstep;
                }
            } else if (p.hd <= 128u) {
                for (var j = 0u; j < n; j++) {
                    let wj = blk_b[j];
                    lsum += wj;
                    acc.x += wj * vc[vb + dx];
                    acc.y += wj * vc[vb + dy];
                    vb += vstep;
                }
            } else {
                for (var j = 0u; j < n; j++) {
                    let wj = blk_b[j];
                    lsum += wj;
                    acc += wj * vec4<f32>(vc[vb + dx], vc[vb + dy], vc[vb + dz], vc[vb + dw]);
                    vb += vstep;
                }
            }
            l = l * corr + lsum;
            m = m_new;
            // No barrier needed before the next block: its write to blk_b comes after wg_max,
            // a barrier that every thread reaches only once done reading this block's.
        }
    }
    let dims = vec4<u32>(lid, lid + 64u, lid + 128u, lid + 192u);
    let res = acc / l;
    if (dims.x < p.hd) { out[qb + dims.x] = res.x; }
    if (dims.y < p.hd) { out[qb + dims.y] = res.y; }
    if (dims.z < p.hd) { out[qb + dims.z] = res.z; }
    if (dims.w < p.hd) { out[qb + dims.w] = res.w; }
}

// ---- backward over a whole sequence (p0 = 0, k and v hold exactly t positions) ------------
// With P = softmax(scale * q·k) (causal or packed), out = P v and dP_ij = dout_i · v_j:
//   D_i  = dout_i · out_i,   dS_ij = P_ij (dP_ij - D_i)
//   dq_i = scale Σ_j dS_ij k_j,   dk_j = scale Σ_i dS_ij q_i,   dv_j = Σ_i P_ij dout_i.
// Two dispatches of 64-thread workgroups. Pass 1, one workgroup per (query, head): stats =
// (lse_i, D_i), then dq. Pass 2, one per (key, kv head): the (query ≥ key, head of the group)
// pairs, for dk and dv; with a window only the queries in it, a prompt key's range by range
// (one more loop iteration per completion). Both walk their keys / pairs in blocks of 64: each
// thread scores one item of the block (full head_dim dot products), the block's weights go
// through workgroup memory, then each thread accumulates head dims lid, lid+64, lid+128, lid+192
// over the block.
// (Work per thread stays small: llvmpipe also caps the loop iterations of one invocation.)

@group(0) @binding(5) var<storage, read> o: array<f32>;        // forward output [t, heads, hd]
@group(0) @binding(6) var<storage, read> dout: array<f32>;     // [t, heads, hd]
@group(0) @binding(7) var<storage, read_write> dq: array<f32>; // [t, heads, hd]
@group(0) @binding(8) var<storage, read_write> stats: array<f32>; // [t, heads, 2]
@group(0) @binding(9) var<storage, read_write> dk: array<f32>; // [t, kv_heads, hd]
@group(0) @binding(10) var<storage, read_write> dv: array<f32>; // [t, kv_heads, hd]

const BWG: u32 = 64u;
var<workgroup> blk_a: array<f32, 64>;
var<workgroup> blk_b: array<f32, 64>;

// scale * q[qb ..] · k[kb ..] and dout[qb ..] · v[kb ..], four terms a step.
fn score_at(qb: u32, kb: u32) -> f32 {
    var acc = 0.0;
    var d = 0u;
    for (; d + 4u <= p.hd; d += 4u) {
        acc += q[qb + d] * kc[kb + d] + q[qb + d + 1u] * kc[kb + d + 1u]
             + q[qb + d + 2u] * kc[kb + d + 2u] + q[qb + d + 3u] * kc[kb + d + 3u];
    }
    for (; d < p.hd; d++) {
        acc += q[qb + d] * kc[kb + d];
    }
    return acc * p.scale;
}

fn dout_dot_v(qb: u32, kb: u32) -> f32 {
    var acc = 0.0;
    var d = 0u;
    for (; d + 4u <= p.hd; d += 4u) {
        acc += dout[qb + d] * vc[kb + d] + dout[qb + d + 1u] * vc[kb + d + 1u]
             + dout[qb + d + 2u] * vc[kb + d + 2u] + dout[qb + d + 3u] * vc[kb + d + 3u];
    }
    for (; d < p.hd; d++) {
        acc += dout[qb + d] * vc[kb + d];
    }
    return acc;
}

// Sum of blk_a over the workgroup, left in blk_a[0].
fn block_sum(lid: u32) {
    workgroupBarrier();
    for (var k = BWG / 2u; k > 0u; k >>= 1u) {
        if (lid < k) {
            blk_a[lid] += blk_a[lid + k];
        }
        workgroupBarrier();
    }
}

@compute @workgroup_size(64)
fn attention_backward_q(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                        @builtin(local_invocation_index) lid: u32) {
    let i = wg.y * nwg.x + wg.x;
    if (i >= p.t * p.heads) {
        return; // uniform per workgroup
    }
    let t = i / p.heads;
    let h = i % p.heads;
    let kvh = h / (p.heads / p.kv_heads);
    let qb = i * p.hd;
    // D_i = dout_i · out_i, threads over head dims.
    var part = 0.0;
    for (var d = lid; d < p.hd; d += BWG) {
        part += dout[qb + d] * o[qb + d];
    }
    blk_a[lid] = part;
    block_sum(lid);
    let dsum = blk_a[0];
    workgroupBarrier();
    // lse_i: each thread a running (max, sum) over keys lid, lid+64, …; then merged.
    var m = -3.0e38;
    var l = 0.0;
    let kr = key_ranges(t);
    let lows = key_lows(kr);
    for (var range = 0u; range < 2u; range++) {
        let hi = select(kr.z, kr.x, range == 0u);
        for (var s = select(lows.y, lows.x, range == 0u) + lid; s < hi; s += BWG) {
            let score = score_at(qb, (s * p.kv_heads + kvh) * p.hd);
            let m_new = max(m, score);
            l = l * exp(m - m_new) + exp(score - m_new);
            m = m_new;
        }
    }
    blk_a[lid] = m;
    blk_b[lid] = l;
    workgroupBarrier();
    for (var k = BWG / 2u; k > 0u; k >>= 1u) {
        if (lid < k) {
            let m2 = max(blk_a[lid], blk_a[lid + k]);
            blk_b[lid] = blk_b[lid] * exp(blk_a[lid] - m2) + blk_b[lid + k] * exp(blk_a[lid + k] - m2);
            blk_a[lid] = m2;
        }
        workgroupBarrier();
    }
    let lse = blk_a[0] + log(blk_b[0]);
    if (lid == 0u) {
        stats[2u * i] = lse;
        stats[2u * i + 1u] = dsum;
    }
    workgroupBarrier();
    // dq_i = scale Σ_s dS_is k_s, keys in blocks of 64.
    var acc = vec4<f32>(0.0);
    for (var range = 0u; range < 2u; range++) {
        let hi = select(kr.z, kr.x, range == 0u);
        for (var s0 = select(lows.y, lows.x, range == 0u); s0 < hi; s0 += BWG) {
            let s = s0 + lid;
            var ds = 0.0;
            if (s < hi) {
                let kb = (s * p.kv_heads + kvh) * p.hd;
                ds = exp(score_at(qb, kb) - lse) * (dout_dot_v(qb, kb) - dsum);
            }
            blk_b[lid] = ds;
            workgroupBarrier();
            let n = min(BWG, hi - s0);
            for (var j = 0u; j < n; j++) {
                let kb = ((s0 + j) * p.kv_heads + kvh) * p.hd + lid;
                let w = blk_b[j];
                // Dims past hd read a neighbouring row and are never stored; the branches are
                // uniform.
                acc.x += w * kc[kb];
                if (p.hd > 64u) {
                    acc.y += w * kc[kb + 64u];
                    if (p.hd > 128u) {
                        acc.z += w * kc[kb + 128u];
                        if (p.hd > 192u) {
                            acc.w += w * kc[kb + 192u];
                        }
                    }
                }
            }
            workgroupBarrier();
        }
    }
    let dims = vec4<u32>(lid, lid + 64u, lid + 128u, lid + 192u);
    if (dims.x < p.hd) { dq[qb + dims.x] = acc.x * p.scale; }
    if (dims.y < p.hd) { dq[qb + dims.y] = acc.y * p.scale; }
    if (dims.z < p.hd) { dq[qb + dims.z] = acc.z * p.scale; }
    if (dims.w < p.hd) { dq[qb + dims.w] = acc.w * p.scale; }
}

// The queries that see key s come in ranges [a, b): without a window one, s .. end (end: one
// past the last query that sees it). With a window W the first is s .. min(end, s + W), and in
// a packed sequence a prompt key (s < prefix) is seen from the prompt up to min(prefix, s + W),
// then by the first `reach` = s + W - prefix queries of each completion's segment (positions
// prefix ..), segment after segment: seg is the next one's first token (spans[2 seg + 1] its
// end). (Uniform: all of it from the key, the uniforms and spans.)
struct KeyQueries {
    a: u32,
    b: u32,
    seg: u32,
    reach: u32,
    end: u32,
}
fn key_queries(s: u32) -> KeyQueries {
    var end = p.t;
    if (p.packed != 0u) {
        end = spans[2u * s + 1u];
    }
    var kq = KeyQueries(s, end, end, 0u, end);
    if (p.window != 0u) {
        kq.b = min(end, s + p.window);
        if (p.packed != 0u && s < p.prefix) {
            kq.b = min(kq.b, p.prefix);
            if (s + p.window > p.prefix) {
                kq.reach = s + p.window - p.prefix;
                kq.seg = p.prefix;
            }
        }
    }
    return kq;
}
// Moves kq to its next range (the next segment's first `reach` queries; a malformed span still
// moves on); false past the last.
fn next_queries(kq: ptr<function, KeyQueries>) -> bool {
    if ((*kq).seg >= (*kq).end) {
        return false;
    }
    let seg_end = clamp(spans[2u * (*kq).seg + 1u], (*kq).seg + 1u, (*kq).end);
    (*kq).a = (*kq).seg;
    (*kq).b = min(seg_end, (*kq).seg + (*kq).reach);
    (*kq).seg = seg_end;
    return true;
}

@compute @workgroup_size(64)
fn attention_backward_kv(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                         @builtin(local_invocation_index) lid: u32) {
    let j = wg.y * nwg.x + wg.x;
    if (j >= p.t * p.kv_heads) {
        return; // uniform per workgroup
    }
    let s = j / p.kv_heads;
    let kvh = j % p.kv_heads;
    let group = p.heads / p.kv_heads;
    let kb = j * p.hd;
    var kq = key_queries(s);
    var gk = vec4<f32>(0.0);
    var gv = vec4<f32>(0.0);
    loop {
        let a = kq.a;
        // Pairs (query t in a .. b, head kvh*group + g), numbered (t - a) * group + g.
        let pairs = (kq.b - a) * group;
        for (var p0 = 0u; p0 < pairs; p0 += BWG) {
            let pi = p0 + lid;
            var pr = 0.0;
            var ds = 0.0;
            if (pi < pairs) {
                let i = (a + pi / group) * p.heads + kvh * group + pi % group;
                let qb = i * p.hd;
                pr = exp(score_at(qb, kb) - stats[2u * i]);
                ds = pr * (dout_dot_v(qb, kb) - stats[2u * i + 1u]);
            }
            blk_a[lid] = pr;
            blk_b[lid] = ds;
            workgroupBarrier();
            let n = min(BWG, pairs - p0);
            for (var e = 0u; e < n; e++) {
                let pe = p0 + e;
                let qb = ((a + pe / group) * p.heads + kvh * group + pe % group) * p.hd + lid;
                let wp = blk_a[e];
                let ws = blk_b[e];
                gv.x += wp * dout[qb];
                gk.x += ws * q[qb];
                if (p.hd > 64u) {
                    gv.y += wp * dout[qb + 64u];
                    gk.y += ws * q[qb + 64u];
                    if (p.hd > 128u) {
                        gv.z += wp * dout[qb + 128u];
                        gk.z += ws * q[qb + 128u];
                        if (p.hd > 192u) {
                            gv.w += wp * dout[qb + 192u];
                            gk.w += ws * q[qb + 192u];
                        }
                    }
                }
            }
            workgroupBarrier();
        }
        if (!next_queries(&kq)) {
            break;
        }
    }
    let dims = vec4<u32>(lid, lid + 64u, lid + 128u, lid + 192u);
    if (dims.x < p.hd) { dk[kb + dims.x] = gk.x * p.scale; dv[kb + dims.x] = gv.x; }
    if (dims.y < p.hd) { dk[kb + dims.y] = gk.y * p.scale; dv[kb + dims.y] = gv.y; }
    if (dims.z < p.hd) { dk[kb + dims.z] = gk.z * p.scale; dv[kb + dims.z] = gv.z; }
    if (dims.w < p.hd) { dk[kb + dims.w] = gk.w * p.scale; dv[kb + dims.w] = gv.w; }
}

// ---- bidirectional attention over images (the vision tower, forward only) ------------------
// q, k, v: [images × seq, heads, hd] (no grouped heads); a query of image b sees every key of
// image b whose key_mask entry is nonzero (the patch-attention mask: padded patches are never
// keys, but their own rows are still computed, as transformers does). Each image needs at
// least one unmasked key (the caller checks). The walk is `attention`'s: one 64-thread
// workgroup per (query, head), keys in blocks of 64, online softmax; a masked key scores
// -3e38 and weighs 0, exactly the exp(−inf) of the additive mask. Loop budget as `attention`'s:
// seq 4096 at hd 256 stays far below llvmpipe's cap.

struct BidirectionalParams {
    t: u32,
    seq: u32,
    heads: u32,
    hd: u32,
    scale: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> pb: BidirectionalParams;
// [images × seq]: 1 where the token may be attended to.
@group(0) @binding(12) var<storage, read> key_mask: array<u32>;

fn score_bidirectional(kb: u32) -> f32 {
    var acc = 0.0;
    var d = 0u;
    for (; d + 4u <= pb.hd; d += 4u) {
        acc += q_row[d] * kc[kb + d] + q_row[d + 1u] * kc[kb + d + 1u]
             + q_row[d + 2u] * kc[kb + d + 2u] + q_row[d + 3u] * kc[kb + d + 3u];
    }
    for (; d < pb.hd; d++) {
        acc += q_row[d] * kc[kb + d];
    }
    return acc * pb.scale;
}

@compute @workgroup_size(64)
fn attention_bidirectional(ln: Lane) {
    let lid = ln.lid;
    let i = ln.wg.y * ln.nwg.x + ln.wg.x;
    if (i >= pb.t * pb.heads) {
        return; // uniform per workgroup
    }
    let t = i / pb.heads;
    let h = i % pb.heads;
    let qb = i * pb.hd;
    for (var d = lid; d < pb.hd; d += FWG) {
        q_row[d] = q[qb + d];
    }
    workgroupBarrier();
    let last = pb.hd - 1u;
    let dx = min(lid, last);
    let dy = min(lid + 64u, last);
    let dz = min(lid + 128u, last);
    let dw = min(lid + 192u, last);
    var acc = vec4<f32>(0.0);
    var m = -3.0e38;
    var l = 0.0;
    let lo = (t / pb.seq) * pb.seq;
    let ctx = lo + pb.seq;
    let step = pb.heads * pb.hd;
    for (var s0 = lo; s0 < ctx; s0 += FWG) {
        let s = s0 + lid;
        var live = false;
        var score = -3.0e38;
        if (s < ctx) {
            live = key_mask[s] != 0u;
        }
        if (live) {
            score = score_bidirectional(s * step + h * pb.hd);
        }
        let m_new = max(m, wg_max(ln, score));
        let corr = exp(m - m_new);
        var w = 0.0;
        if (live) {
            w = exp(score - m_new);
        }
        blk_b[lid] = w;
        workgroupBarrier();
        acc *= corr;
        let n = min(FWG, ctx - s0);
        var lsum = 0.0;
        var vb = s0 * step + h * pb.hd;
        if (pb.hd <= 64u) {
            for (var j = 0u; j < n; j++) {
                let wj = blk_b[j];
                lsum += wj;
                acc.x += wj * vc[vb + dx];
                vb += step;
            }
        } else {
            for (var j = 0u; j < n; j++) {
                let wj = blk_b[j];
                lsum += wj;
                acc += wj * vec4<f32>(vc[vb + dx], vc[vb + dy], vc[vb + dz], vc[vb + dw]);
                vb += step;
            }
        }
        l = l * corr + lsum;
        m = m_new;
    }
    let dims = vec4<u32>(lid, lid + 64u, lid + 128u, lid + 192u);
    let res = acc / l;
    if (dims.x < pb.hd) { out[qb + dims.x] = res.x; }
    if (dims.y < pb.hd) { out[qb + dims.y] = res.y; }
    if (dims.z < pb.hd) { out[qb + dims.z] = res.z; }
    if (dims.w < pb.hd) { out[qb + dims.w] = res.w; }
}
